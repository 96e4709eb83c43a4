// The control socket: `pgnap status`, `wake`, `sleep` and `reload` talk to the running
// daemon over a local Unix socket ([gateway] control_socket), one JSON object per line each
// way (docs/control.md is the protocol's reference: every request, response and field).
//
//   request   {"version": 1, "command": "wake", "instance": "main", "for": "10m"}
//   response  {"version": 1, "ok": true, "message": "..."}  or  {"version": 1, "ok": false, "error": "..."}
//
// Who may connect is decided by the file system: the socket is mode 0660, owned by the
// service user and its group, so root, the service user and the members of its group may
// connect (there is no TCP). The peer's uid, gid and pid (SO_PEERCRED) are logged with every
// action.
//
// ControlServer is the I/O: the socket file, the accept loop, one coroutine per connection,
// the bounds (connections at once, line length, deadlines) and the protocol's errors. What a
// command does is asked of a ControlHandler, which the Gateway implements (and the unit
// tests fake). control_call() is the client side, for the CLI: blocking, with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include "config/config.h"
#include "daemon/instance.h"

namespace pgnap::daemon {

namespace asio = boost::asio;

inline constexpr std::int64_t kControlProtocolVersion = 1;

// Who is on the other end of a control connection (SO_PEERCRED).
struct ControlPeer {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  // "uid 1000 (pid 1234)": as logged, and as `who` for the instance and the ledger.
  [[nodiscard]] std::string to_string() const;
};

// What a command answers. `ok` false: `message` is the error, saying what to do. `data` holds
// the command's own fields, added to the response beside "version", "ok" and "message"/"error".
struct ControlReply {
  bool ok = false;
  std::string message;
  boost::json::object data;
};

// What the commands do; called on the event loop thread.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // Whether an instance of that name is served (a removed one is not).
  [[nodiscard]] virtual bool has_instance(const std::string& name) const = 0;
  // The status response's fields: {"instances": [...]} (status_json()).
  [[nodiscard]] virtual boost::json::object status() = 0;
  // Completes once the instance is awake or its wake failed.
  virtual asio::awaitable<ControlReply> wake(std::string instance, config::Duration hold, ControlPeer peer) = 0;
  virtual ControlReply sleep(std::string instance, ControlPeer peer) = 0;
  virtual ControlReply reload(ControlPeer peer) = 0;
};

// The status response's "instances" array, every field documented in docs/control.md: times
// as RFC 3339 UTC strings, durations as integer milliseconds (`*_ms`).
[[nodiscard]] boost::json::object status_json(const std::vector<InstanceStatus>& instances,
                                              std::chrono::system_clock::time_point now);
// One session as the status response shows it (also the sleep refusal's "blocking" entries).
[[nodiscard]] boost::json::object session_json(const SessionStatus& session);
// "2026-11-01T08:00:00Z"; the epoch (an unset time) reads "".
[[nodiscard]] std::string rfc3339(std::chrono::system_clock::time_point t);

// Whether a process answers on the Unix socket `path`: 0 when one does (connected, or its
// backlog is full), otherwise the errno of the attempt (ECONNREFUSED: a stale file; ENOENT: none).
[[nodiscard]] int probe_control_socket(const std::string& path);

// Another process answers on the socket file: another pgnap runs with this configuration.
class ControlSocketInUse : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ControlServer {
 public:
  struct Limits {
    std::size_t max_connections = 16;                           // at once; more are told so and closed
    std::size_t max_line = 64 * 1024;                           // bytes of one request, newline excluded
    config::Duration read_timeout = std::chrono::seconds(10);   // for each request line
    config::Duration write_timeout = std::chrono::seconds(10);  // for each response
  };

  // Creates the socket file at `path` (mode 0660) and listens. A stale file that nothing
  // answers on is replaced. Throws ControlSocketInUse when something answers on it, and
  // std::runtime_error naming the path and the reason when it cannot be created (a missing
  // directory, permissions). Does not accept before start().
  ControlServer(asio::io_context& io, std::string path, ControlHandler& handler, Limits limits);
  ControlServer(asio::io_context& io, std::string path, ControlHandler& handler)
      : ControlServer(io, std::move(path), handler, Limits{}) {}
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void start();
  // Stops accepting, ends the open connections (a wake in progress goes on without its
  // requester) and removes the socket file. Idempotent.
  void stop();
  [[nodiscard]] const std::string& path() const { return path_; }

  struct State;  // control.cpp's: the acceptor and the open connections

 private:
  std::string path_;
  std::shared_ptr<State> state_;  // shared with the connections' coroutines
};

// ---- The client side (the CLI): blocking, every step under a deadline --------------------

struct ControlCallResult {
  enum class Status {
    kOk,       // `reply` holds the response line (without its newline)
    kMissing,  // no socket file, or nothing listens on it
    kDenied,   // the file system refused the connection (EACCES/EPERM)
    kTimeout,  // no connection or no complete response within the deadline
    kError,    // another failure: `error` says what
  };
  Status status = Status::kError;
  std::string reply;
  std::string error;
};

// Connects to `path` within `connect_timeout`, sends `request` and a newline, and reads one
// response line within `reply_timeout`.
[[nodiscard]] ControlCallResult control_call(const std::string& path, const std::string& request,
                                             std::chrono::milliseconds connect_timeout,
                                             std::chrono::milliseconds reply_timeout);

}  // namespace pgnap::daemon

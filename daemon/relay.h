// The relay of an established session: bytes in both directions between the client and
// PostgreSQL, unchanged, with the message scanner walking each direction beside the copy
// to see what pgnap must know (BackendKeyData, ReadyForQuery, Terminate) and to enforce
// the client's maximum message size.
//
// Memory: a session owns no read buffer. Each direction waits for readability, reads into
// one scratch buffer shared by the thread, and writes it on at once; only when the
// destination cannot take everything is the remainder copied into a buffer of the
// session's own, and reading that direction pauses until it is written (backpressure).
// An idle session therefore costs its sockets and two coroutine frames.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "daemon/kernel_relay.h"
#include "daemon/net.h"
#include "daemon/session_activity.h"
#include "daemon/stream.h"
#include "protocol/message_scanner.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

struct RelayEnd {
  enum class Why {
    kClientClosed,    // EOF or reset from the client (normal after Terminate)
    kServerClosed,    // EOF or reset from PostgreSQL; `server_sqlstate` says what it said before
    kClientProtocol,  // the client's stream broke the framing
    kClientTooLarge,  // the client sent a message above max_message_size
    kServerProtocol,  // PostgreSQL's stream broke the framing (never expected)
    kWriteFailed,     // a write to either side failed
    kIdleClosed,      // close_idle(): the instance closed the session so that it can sleep
    kParked,          // request_park(): stopped at rest, to detach the server (the session goes on)
    kShutdown,        // cancelled: the gateway is shutting down
    kToKernel,        // (inside run() only) at rest: the session's bytes go into the kernel relay
  };
  Why why = Why::kClientClosed;
  std::string detail;  // for the log: the socket error, or what was wrong with the stream
  // kServerClosed: the SQLSTATE of the last ErrorResponse PostgreSQL sent since its last
  // ReadyForQuery — the FATAL that said why it closed ("" if none; "?" if its code lay
  // beyond the scanner's captured head).
  std::string server_sqlstate;
};

[[nodiscard]] std::string_view to_string(RelayEnd::Why why);

struct RelayCounters {
  std::uint64_t* bytes_to_server = nullptr;
  std::uint64_t* bytes_to_client = nullptr;
};

class Relay {
 public:
  // `max_client_message`: the largest message a client may send (PostgreSQL's own limit
  // is 1 GiB). `on_backend_key` is called when PostgreSQL sends BackendKeyData.
  // Without TLS on either side, the relay works on the sockets directly (the fast path
  // described above); with TLS, each direction reads into a buffer of its own (16 kB) and
  // writes through the TLS stream.
  Relay(Stream& client, Stream& server, std::uint32_t max_client_message,
        std::function<void(const protocol::BackendKeyData&)> on_backend_key, RelayCounters counters);

  // Session pooling: the client's Terminate is not forwarded, so that the server connection
  // outlives the client (server_reusable() then says whether it may serve another one), and
  // the ParameterStatus values PostgreSQL reports are kept up to date in `parameters`.
  // The server has just said ReadyForQuery (its login, or the client's SETs): at rest.
  void keep_server(protocol::ParameterList* parameters) {
    keep_server_ = true;
    parameters_ = parameters;
    transaction_status_ = 'I';
    activity_.at_rest = true;
  }
  // After run(): the client ended with a Terminate that was held back, the server's stream
  // is between messages, idle, outside a transaction, with nothing in flight, and every
  // parameter it reported was seen whole. Only then may the connection serve another client.
  [[nodiscard]] bool server_reusable() const;

  // Bytes of the client's stream that pgnap read before the relay (the authenticating
  // mode's queue, starting at a message boundary): run() scans and sends them first.
  // `then` runs once they are written (at once when there are none): the authenticating mode
  // points its cancel key at the server there, so that a cancel cannot reach the backend
  // before the query it is for.
  void send_first_to_server(std::string bytes, std::function<void()> then = {}) {
    first_to_server_ = std::move(bytes);
    after_first_to_server_ = std::move(then);
  }
  // The kernel relay (kernel_relay.h), for a session whose both sides are plaintext TCP: each
  // time the session is at rest, its bytes go into the kernel until something needs pgnap
  // (relay_kernel.cpp). Without it, or when it refuses the sockets, all is relayed here.
  void use_kernel(KernelRelay* kernel) { kernel_ = kernel; }
  // Relays until either side closes or fails. Cancellation (shutdown) ends it.
  [[nodiscard]] asio::awaitable<RelayEnd> run();

  // Whether the server-to-client stream is between messages (pgnap may then add its own
  // ErrorResponse without corrupting the client's stream).
  [[nodiscard]] bool client_stream_at_boundary() const;
  // The transaction status of the last ReadyForQuery: 'I', 'T', 'E', or 0 before the first.
  [[nodiscard]] char transaction_status() const { return transaction_status_; }
  [[nodiscard]] bool client_terminated() const { return client_terminated_; }

  // The session's use, for its instance's idle decisions.
  [[nodiscard]] SessionActivity& activity() { return activity_; }
  // Ends run() now (it returns kIdleClosed), for an idle session the instance closes so that
  // the database can sleep.
  void close_idle();

  // Parking (gateway_session.cpp): the session may be asked to park while it is parkable().
  void allow_parking() { may_park_ = true; }
  // At rest, outside a transaction, not listening, nothing half-sent either way, every
  // reported parameter seen whole: the server connection can be detached from the client
  // without either noticing.
  [[nodiscard]] bool parkable() const;
  // Ends run() now (it returns kParked) if parkable(); false otherwise. Bytes the client sends
  // meanwhile stay in its socket, unread. After run() returns kParked, check parkable() again:
  // with TLS a read that was already complete is relayed first.
  bool request_park();
  // Before run() is called again, after a park that did not happen.
  void resume_after_park() {
    park_requested_ = false;
    activity_.parking = false;
  }

 private:
  enum class Direction { kToServer, kToClient };
  asio::awaitable<RelayEnd> pump(Direction direction);
  asio::awaitable<RelayEnd> pump_stream(Direction direction);
  // Scans bytes about to be forwarded; nullopt while the stream is valid, else how it ends.
  // A Terminate held back (keep_server) ends the client's direction: `forward` is then the
  // number of bytes before it, still to be sent.
  std::optional<RelayEnd> inspect(Direction direction, protocol::Bytes bytes, std::size_t& forward);
  // The kernel relay (relay_kernel.cpp). `may_enter_kernel`: at rest, both streams between
  // messages, nothing pending either way. `kernel_phase` arms both sockets, waits for them to
  // come back, and hands the session back to the pumps (nullopt) or ends it.
  [[nodiscard]] bool may_enter_kernel() const;
  asio::awaitable<std::optional<RelayEnd>> kernel_phase();
  // Both sockets back to user space: disarmed, what the kernel still sent awaited, the
  // walkers' positions and counts taken over. False: the kernel did not let go in time.
  asio::awaitable<bool> leave_kernel(std::string& why);
  void resume_direction(Direction direction, const pgnap_walk& walk);
  // While in the kernel: the session's use from the program's counts (activity().refresh).
  void refresh_from_kernel();
  void on_client_message(const protocol::ScannedMessage& m);
  void on_server_message(const protocol::ScannedMessage& m);
  // The end of a pump that was cancelled (shutdown or close_idle) or whose peer closed.
  [[nodiscard]] RelayEnd cancelled() const;
  [[nodiscard]] RelayEnd closed(Direction direction, std::string detail) const;

  Stream& client_stream_;
  Stream& server_stream_;
  Socket& client_;
  Socket& server_;
  protocol::MessageScanner from_client_;
  protocol::MessageScanner from_server_;
  std::function<void(const protocol::BackendKeyData&)> on_backend_key_;
  RelayCounters counters_;
  char transaction_status_ = 0;
  bool client_terminated_ = false;
  std::string server_error_;
  bool to_client_pending_ = false;  // a partial write to the client is in flight
  bool to_server_pending_ = false;  // a partial write to the server is in flight
  // For activity_.at_rest: queries and Syncs sent and not yet answered by a ReadyForQuery,
  // and an extended-protocol batch sent without its Sync.
  std::uint32_t unanswered_ = 0;
  bool unsynced_ = false;
  SessionActivity activity_;
  std::string first_to_server_;
  std::function<void()> after_first_to_server_;
  bool idle_closed_ = false;
  bool may_park_ = false;
  bool park_requested_ = false;
  bool keep_server_ = false;
  protocol::ParameterList* parameters_ = nullptr;
  bool terminate_held_ = false;      // the client's Terminate ended its stream, and was not forwarded
  bool parameters_unknown_ = false;  // a ParameterStatus too long to be read from the scanner's head

  // The kernel relay (relay_kernel.cpp).
  std::uint32_t max_client_message_;
  KernelRelay* kernel_ = nullptr;
  bool kernel_refused_ = false;  // a socket could not be enrolled: user space for good
  bool to_kernel_ = false;       // a pump found the session at rest: both return kToKernel
  bool in_kernel_ = false;
  std::optional<KernelSocket> kernel_client_;
  std::optional<KernelSocket> kernel_server_;
  std::uint32_t kernel_epoch_ = 0;
  struct KernelBase {
    std::uint64_t client_redirected = 0;  // the program's counts when armed
    std::uint64_t server_redirected = 0;
    std::uint64_t client_taken = 0;  // what each socket had taken for sending when armed
    std::uint64_t server_taken = 0;
    char transaction_status = 'I';
    std::uint64_t client_counted = 0;  // redirected bytes already added to the byte counters
    std::uint64_t server_counted = 0;
  } kernel_base_;
  // Adds what the kernel redirected since the last count to the instance's byte counters.
  void count_kernel_bytes(const KernelSocketState& client_state, const KernelSocketState& server_state);
  std::function<void()> kernel_wake_;  // ends the kernel phase's wait
  // Bytes of a message the kernel began to forward, to be forwarded unscanned (the walker had
  // already counted it) before the scanner takes over again.
  std::uint64_t skip_to_server_ = 0;
  std::uint64_t skip_to_client_ = 0;
};

}  // namespace pgnap::daemon

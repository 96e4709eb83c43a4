#include "daemon/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <list>
#include <string_view>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "daemon/log.h"
#include "daemon/net.h"

namespace pgnap::daemon {

namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

std::int64_t millis(std::chrono::system_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

json::object client_json(const ClientIdentity& client) {
  return json::object{{"user", client.user},
                      {"database", client.database},
                      {"application_name", client.application_name},
                      {"address", client.address}};
}

json::object response(bool ok, std::string_view text) {
  json::object o;
  o["version"] = kControlProtocolVersion;
  o["ok"] = ok;
  o[ok ? "message" : "error"] = text;
  return o;
}

json::object error_response(std::string_view text) { return response(false, text); }

std::string errno_text(int error) { return std::strerror(error); }

// What a line read from a connection turned out to be.
enum class LineRead { kLine, kClosed, kTimeout, kTooLong };

}  // namespace

std::string ControlPeer::to_string() const {
  return "uid " + std::to_string(uid) + " (pid " + std::to_string(pid) + ")";
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return {};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

json::object session_json(const SessionStatus& s) {
  return json::object{{"id", s.id},
                      {"user", s.client.user},
                      {"database", s.client.database},
                      {"application_name", s.client.application_name},
                      {"client_address", s.client.address},
                      {"state", s.state},
                      {"idle_for_ms", s.idle_for.count()},
                      {"connected_for_ms", s.connected_for.count()},
                      {"keeps_awake", s.keeps_awake},
                      {"why", s.why}};
}

json::object status_json(const std::vector<InstanceStatus>& instances, std::chrono::system_clock::time_point now) {
  json::array list;
  for (const auto& i : instances) {
    json::object o;
    o["name"] = i.name;
    o["state"] = i.state;
    o["since"] = rfc3339(i.since);
    o["for_ms"] = i.since == std::chrono::system_clock::time_point{} ? 0 : millis(now - i.since);
    o["mode"] = i.mode;
    if (i.last_wake) {
      const auto& w = *i.last_wake;
      o["last_wake"] = json::object{
          {"at", rfc3339(w.at)},         {"ago_ms", millis(now - w.at)},
          {"cause", to_string(w.cause)}, {"client", client_json(w.client)},
          {"detail", w.detail},          {"outcome", w.outcome.empty() ? std::string("running") : w.outcome}};
    } else {
      o["last_wake"] = nullptr;
    }
    json::array next;
    for (const auto& p : i.next) {
      next.push_back(
          json::object{{"what", p.what}, {"at", rfc3339(p.at)}, {"in_ms", millis(p.at - now)}, {"detail", p.detail}});
    }
    o["next"] = std::move(next);
    o["waiting"] = i.waiting;
    json::array sessions;
    for (const auto& s : i.sessions) sessions.push_back(session_json(s));
    o["sessions"] = std::move(sessions);
    list.push_back(std::move(o));
  }
  return json::object{{"now", rfc3339(now)}, {"instances", std::move(list)}};
}

// ---- The server ---------------------------------------------------------------------------

struct ControlServer::State {
  State(asio::io_context& io, std::string p, ControlHandler& h, Limits l)
      : io(io), path(std::move(p)), handler(&h), limits(l), acceptor(io) {}
  asio::io_context& io;
  std::string path;
  ControlHandler* handler;
  Limits limits;
  Acceptor acceptor;
  ino_t inode = 0;  // of the socket file this server created: only that one is removed
  bool started = false;
  bool stopped = false;
  std::size_t active = 0;
  // One per open connection: stop() ends each (its reads, and the wait for a wake).
  struct Connection {
    Socket* socket = nullptr;
    asio::cancellation_signal cancel;
  };
  std::list<Connection> connections;
  log::LineBudget warnings{5};
};

namespace {

asio::awaitable<LineRead> read_line(Socket& socket, std::string& buffer, std::string& line, std::size_t max_line,
                                    Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  char chunk[4096];
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      if (newline > max_line) co_return LineRead::kTooLong;
      line.assign(buffer, 0, newline);
      buffer.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      co_return LineRead::kLine;
    }
    if (buffer.size() > max_line) co_return LineRead::kTooLong;
    asio::steady_timer timer(executor, deadline);
    auto r = co_await (socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return LineRead::kTimeout;
    const auto [ec, n] = std::get<0>(r);
    if (ec || n == 0) co_return LineRead::kClosed;
    buffer.append(chunk, n);
  }
}

asio::awaitable<bool> write_line(Socket& socket, json::object reply, config::Duration timeout) {
  std::string text = json::serialize(reply);
  text += '\n';
  const auto ec = co_await write_all(socket, text, Clock::now() + timeout);
  co_return !ec;
}

std::optional<std::string> string_field(const json::object& request, std::string_view key) {
  const auto* v = request.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

// One request line to its response; a request that cannot be served gets an error response
// that says what to send instead.
asio::awaitable<json::object> answer(std::shared_ptr<ControlServer::State> state, std::string line, ControlPeer peer) {
  boost::system::error_code ec;
  json::value parsed = json::parse(line, ec);
  if (ec) co_return error_response("malformed request: not JSON (" + ec.message() + "); send one JSON object per line");
  if (!parsed.is_object()) co_return error_response("malformed request: expected a JSON object");
  const json::object& request = parsed.as_object();

  const auto* version = request.if_contains("version");
  if (version == nullptr) {
    co_return error_response("missing \"version\": send {\"version\": 1, \"command\": ...}");
  }
  if (!version->is_int64() && !version->is_uint64()) co_return error_response("\"version\" must be an integer");
  const std::int64_t v = version->is_int64() ? version->as_int64() : static_cast<std::int64_t>(version->as_uint64());
  if (v != kControlProtocolVersion) {
    co_return error_response("protocol version " + std::to_string(v) + " is not supported: this pgnap speaks version " +
                             std::to_string(kControlProtocolVersion) + "; use the pgnap command of the same release");
  }
  const auto command = string_field(request, "command");
  if (!command) {
    co_return error_response("missing \"command\": expected one of status, wake, sleep, reload");
  }
  const auto instance_field = request.if_contains("instance");
  if (instance_field != nullptr && !instance_field->is_string()) {
    co_return error_response("\"instance\" must be a string");
  }
  const std::string instance = string_field(request, "instance").value_or("");
  ControlHandler& handler = *state->handler;
  auto check_instance = [&](bool required) -> std::optional<std::string> {
    if (instance.empty()) {
      if (required) return "\"" + *command + "\" needs \"instance\": the name of an instance";
      return std::nullopt;
    }
    if (!handler.has_instance(instance)) {
      return "no instance \"" + instance + "\" is served by this gateway; `pgnap status` lists them";
    }
    return std::nullopt;
  };

  if (*command == "status") {
    if (auto error = check_instance(false)) co_return error_response(*error);
    json::object data = handler.status();
    if (!instance.empty()) {
      if (auto* list = data.if_contains("instances"); list != nullptr && list->is_array()) {
        json::array& a = list->as_array();
        json::array kept;
        for (auto& i : a) {
          if (i.is_object() && i.as_object().if_contains("name") && i.as_object().at("name") == instance.c_str()) {
            kept.push_back(i);
          }
        }
        a = std::move(kept);
      }
    }
    json::object reply = response(true, "");
    reply.erase("message");
    for (auto& [key, value] : data) reply[key] = value;
    co_return reply;
  }
  ControlReply result;
  if (*command == "wake") {
    if (auto error = check_instance(true)) co_return error_response(*error);
    config::Duration hold{0};
    if (const auto* f = request.if_contains("for"); f != nullptr) {
      std::optional<config::Duration> d;
      if (f->is_string()) d = config::parse_duration(f->as_string());
      if (!d) {
        co_return error_response("bad \"for\": expected a duration such as \"30s\", \"10m\" or \"2h\", got " +
                                 json::serialize(*f));
      }
      hold = *d;
    }
    result = co_await handler.wake(instance, hold, peer);
  } else if (*command == "sleep") {
    if (auto error = check_instance(true)) co_return error_response(*error);
    result = handler.sleep(instance, peer);
  } else if (*command == "reload") {
    result = handler.reload(peer);
  } else {
    co_return error_response("unknown command \"" + *command + "\": expected one of status, wake, sleep, reload");
  }
  json::object reply = response(result.ok, result.message);
  for (auto& [key, value] : result.data) reply[key] = value;
  co_return reply;
}

asio::awaitable<void> serve_connection(std::shared_ptr<ControlServer::State> state, Socket socket, ControlPeer peer,
                                       std::list<ControlServer::State::Connection>::iterator slot) {
  slot->socket = &socket;
  struct Release {
    std::shared_ptr<ControlServer::State> state;
    std::list<ControlServer::State::Connection>::iterator slot;
    ~Release() {
      --state->active;
      state->connections.erase(slot);
    }
  } release{state, slot};
  const std::string who = peer.to_string();
  PGNAP_LOG(kDebug, "control", "connection from " << who << " gid " << peer.gid);
  std::string buffer;
  std::string line;
  for (;;) {
    const auto read = co_await read_line(socket, buffer, line, state->limits.max_line,
                                         Clock::now() + state->limits.read_timeout);
    if (read == LineRead::kClosed || state->stopped) co_return;
    if (read == LineRead::kTimeout) {
      PGNAP_LOG(kDebug, "control",
                "connection from " << who << ": no request within "
                                   << config::format_duration(state->limits.read_timeout));
      co_return;
    }
    if (read == LineRead::kTooLong) {
      // The rest of the line cannot be told from the next request: answer and close.
      PGNAP_LOG(kWarning, "control",
                "request from " << who << " longer than " << state->limits.max_line << " bytes: connection closed");
      auto reply = error_response("request longer than " + std::to_string(state->limits.max_line) +
                                  " bytes: connection closed");
      co_await write_line(socket, std::move(reply), state->limits.write_timeout);
      co_return;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // a blank line asks nothing
    json::object reply = co_await answer(state, line, peer);
    if (!reply.at("ok").as_bool() && reply.contains("error")) {
      std::size_t left_out = 0;
      if (state->warnings.take(Clock::now(), left_out) == log::LineBudget::Verdict::kWrite) {
        PGNAP_LOG(kInfo, "control",
                  "request from " << who << " answered with an error: " << reply.at("error").as_string().c_str());
      }
    }
    if (state->stopped) co_return;
    if (!co_await write_line(socket, std::move(reply), state->limits.write_timeout)) co_return;
  }
}

asio::awaitable<void> refuse_connection(Socket socket, config::Duration timeout, std::size_t max) {
  auto reply = error_response("too many control connections (" + std::to_string(max) + " at once); retry later");
  co_await write_line(socket, std::move(reply), timeout);
}

asio::awaitable<void> accept_loop(std::shared_ptr<ControlServer::State> state) {
  for (;;) {
    auto [ec, socket] = co_await state->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (state->stopped || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      PGNAP_LOG(kWarning, "control", "accept on " << state->path << " failed: " << ec.message());
      asio::steady_timer pause(state->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (state->active >= state->limits.max_connections) {
      asio::co_spawn(state->io,
                     refuse_connection(std::move(socket), std::chrono::seconds(1), state->limits.max_connections),
                     asio::detached);
      continue;
    }
    ControlPeer peer;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer = {cred.uid, cred.gid, cred.pid};
    }
    ++state->active;
    state->connections.emplace_back();
    auto slot = std::prev(state->connections.end());
    asio::co_spawn(state->io, serve_connection(state, std::move(socket), peer, slot),
                   asio::bind_cancellation_slot(slot->cancel.slot(), [](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       PGNAP_LOG(kError, "control", "connection ended with an error: " << ex.what());
                     }
                   }));
  }
}

}  // namespace


ControlServer::ControlServer(asio::io_context& io, std::string path, ControlHandler& handler, Limits limits)
    : path_(std::move(path)), state_(std::make_shared<State>(io, path_, handler, limits)) {
  sockaddr_un addr{};
  if (path_.empty() || path_.size() >= sizeof addr.sun_path) {
    throw std::runtime_error("cannot create the control socket " + path_ + ": a Unix socket path must have 1 to " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  // A socket file left by a crashed pgnap is replaced; one that someone answers on means
  // another pgnap runs. The probe does not block: a full backlog (EAGAIN) is alive too.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw std::runtime_error("cannot create the control socket " + path_ +
                               ": a file that is not a socket is in the way; remove it or set another "
                               "[gateway] control_socket");
    }
    const int error = probe_control_socket(path_);
    if (error == 0) {
      throw ControlSocketInUse("cannot create the control socket " + path_ +
                               ": another process answers on it (is another pgnap running with this "
                               "configuration?)");
    }
    if (error != ECONNREFUSED) {
      throw std::runtime_error("cannot create the control socket " + path_ + ": " + errno_text(error));
    }
    ::unlink(path_.c_str());
  }
  Acceptor& acceptor = state_->acceptor;
  acceptor.open(asio::generic::stream_protocol(asio::local::stream_protocol()));
  // Created 0660 from the start: the file is never, even for a moment, open to others.
  const mode_t old_mask = ::umask(0117);
  boost::system::error_code ec;
  acceptor.bind(asio::local::stream_protocol::endpoint(path_), ec);
  ::umask(old_mask);
  if (ec) throw std::runtime_error("cannot create the control socket " + path_ + ": " + ec.message());
  // 0660 whatever the umask was: the service user and its group (the operators added to it)
  // may connect; nobody else. That is the whole access control (docs/control.md).
  if (::chmod(path_.c_str(), 0660) != 0 || ::lstat(path_.c_str(), &st) != 0) {
    const int error = errno;
    ::unlink(path_.c_str());
    throw std::runtime_error("cannot set the mode of the control socket " + path_ + ": " + errno_text(error));
  }
  state_->inode = st.st_ino;
  acceptor.listen(static_cast<int>(limits.max_connections));
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
  if (state_->started || state_->stopped) return;
  state_->started = true;
  asio::co_spawn(state_->io, accept_loop(state_), asio::detached);
}

void ControlServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  for (auto& c : state_->connections) {
    if (c.socket != nullptr) c.socket->close(ec);
    c.cancel.emit(asio::cancellation_type::terminal);
  }
  // Only our own file: a pgnap started since may have replaced it.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == state_->inode) ::unlink(path_.c_str());
}

}  // namespace pgnap::daemon

#include "daemon/relay.h"

#include <array>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocol/messages.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;
namespace msg = protocol::backend_msg;
namespace fmsg = protocol::frontend_msg;

namespace {

// One scratch buffer for every session of the thread: it is only used between a
// non-blocking read and the write that follows, with no suspension in between.
constexpr std::size_t kScratchSize = 64 * 1024;
thread_local std::array<std::uint8_t, kScratchSize> g_scratch;

// A direction that always has data would otherwise keep the thread to itself: after this
// many reads without waiting, it yields to the other sessions.
constexpr int kReadsBeforeYield = 16;

// Backend messages are PostgreSQL's own: trust their lengths up to the protocol's limit.
constexpr std::uint32_t kMaxServerMessage = 0x7fffffff;

std::bitset<256> types(std::initializer_list<char> list) {
  std::bitset<256> set;
  for (char c : list) set.set(static_cast<unsigned char>(c));
  return set;
}

}  // namespace

Relay::Relay(Stream& client, Stream& server, std::uint32_t max_client_message,
             std::function<void(const protocol::BackendKeyData&)> on_backend_key, RelayCounters counters)
    : client_stream_(client),
      server_stream_(server),
      client_(client.socket()),
      server_(server.socket()),
      from_client_(max_client_message,
                   types({fmsg::kTerminate, fmsg::kQuery, fmsg::kFunctionCall, fmsg::kSync, fmsg::kParse, fmsg::kBind,
                          fmsg::kExecute, fmsg::kDescribe, fmsg::kClose, fmsg::kFlush})),
      from_server_(kMaxServerMessage,
                   types({msg::kBackendKeyData, msg::kReadyForQuery, msg::kErrorResponse, msg::kCommandComplete,
                          msg::kNotificationResponse, msg::kParameterStatus})),
      on_backend_key_(std::move(on_backend_key)),
      counters_(counters),
      max_client_message_(max_client_message) {}

void Relay::close_idle() {
  idle_closed_ = true;
  if (kernel_wake_) kernel_wake_();
  boost::system::error_code ec;
  client_.cancel(ec);
  server_.cancel(ec);
}

bool Relay::parkable() const {
  if (in_kernel_) {
    // activity_ is refreshed from the program; the walkers' positions are checked again when
    // the session leaves the kernel (relay_phase.cpp asks parkable() after a park).
    return may_park_ && activity_.at_rest && !activity_.listening && activity_.transaction_status == 'I';
  }
  return may_park_ && activity_.at_rest && !activity_.listening && transaction_status_ == 'I' &&
         from_client_.at_boundary() && from_server_.at_boundary() && !to_client_pending_ && !client_terminated_ &&
         !parameters_unknown_;
}

bool Relay::request_park() {
  if (!parkable()) return false;
  park_requested_ = true;
  activity_.parking = true;
  if (kernel_wake_) kernel_wake_();
  boost::system::error_code ec;
  client_.cancel(ec);
  server_.cancel(ec);
  return true;
}

bool Relay::client_stream_at_boundary() const { return from_server_.at_boundary() && !to_client_pending_; }

bool Relay::server_reusable() const {
  return keep_server_ && terminate_held_ && activity_.at_rest && from_server_.at_boundary() && !parameters_unknown_;
}

std::string_view to_string(RelayEnd::Why why) {
  using Why = RelayEnd::Why;
  switch (why) {
    case Why::kClientClosed: return "client closed";
    case Why::kServerClosed: return "server closed";
    case Why::kClientProtocol: return "client broke the protocol";
    case Why::kClientTooLarge: return "client message too large";
    case Why::kServerProtocol: return "server broke the protocol";
    case Why::kWriteFailed: return "write failed";
    case Why::kIdleClosed: return "closed while idle";
    case Why::kParked: return "parked";
    case Why::kShutdown: return "shutdown";
    case Why::kToKernel: return "into the kernel relay";
  }
  return "?";
}

void Relay::on_client_message(const protocol::ScannedMessage& m) {
  switch (m.type) {
    case fmsg::kTerminate:
      client_terminated_ = true;
      return;  // the end of the client's stream, not a use of the server
    case fmsg::kQuery:
    case fmsg::kFunctionCall:
      ++unanswered_;  // each ends with a ReadyForQuery
      break;
    case fmsg::kSync:
      ++unanswered_;
      unsynced_ = false;
      break;
    default:  // Parse, Bind, Execute, Describe, Close, Flush: answered after a Sync
      unsynced_ = true;
  }
  activity_.at_rest = false;
  activity_.busy = true;
}

void Relay::on_server_message(const protocol::ScannedMessage& m) {
  if (m.type == msg::kReadyForQuery) {
    if (auto s = protocol::parse_ready_for_query(m)) transaction_status_ = *s;
    server_error_.clear();
    if (unanswered_ > 0) --unanswered_;
    activity_.at_rest = transaction_status_ == 'I' && unanswered_ == 0 && !unsynced_;
    activity_.transaction_status = transaction_status_;
    activity_.busy = unanswered_ > 0 || unsynced_;
  } else if (m.type == msg::kCommandComplete) {
    // The command tag: a LISTEN keeps the session's notifications coming; DISCARD ALL
    // (a pool's reset) ends them.
    const std::string_view tag(reinterpret_cast<const char*>(m.head.data()), m.head.size());
    if (tag.starts_with(std::string_view("LISTEN\0", 7))) activity_.listening = true;
    if (tag.starts_with(std::string_view("DISCARD ALL\0", 12))) activity_.listening = false;
  } else if (m.type == msg::kNotificationResponse) {
    activity_.listening = true;
  } else if (m.type == msg::kErrorResponse) {
    server_error_ = protocol::parse_error_sqlstate(m).value_or("?");
  } else if (m.type == msg::kBackendKeyData) {
    if (auto key = protocol::parse_backend_key_data(m); key && on_backend_key_) on_backend_key_(*key);
  } else if (m.type == msg::kParameterStatus && parameters_ != nullptr) {
    // Name and value, both NUL-terminated: whole only if the body fits the captured head.
    const auto changed = m.length - 4 == m.head.size() ? protocol::parse_parameter_status(m.head) : std::nullopt;
    if (!changed) {
      parameters_unknown_ = true;
      return;
    }
    protocol::set_parameter(*parameters_, changed->first, std::move(changed->second));
  }
}

std::optional<RelayEnd> Relay::inspect(Direction direction, protocol::Bytes all, std::size_t& forward) {
  forward = all.size();
  // The rest of a message the kernel relay began to forward goes on unscanned.
  std::uint64_t& skip = direction == Direction::kToServer ? skip_to_server_ : skip_to_client_;
  const std::size_t skipped = static_cast<std::size_t>(std::min<std::uint64_t>(skip, all.size()));
  skip -= skipped;
  const protocol::Bytes bytes = all.subspan(skipped);
  if (direction == Direction::kToServer) {
    if (from_client_.scan(bytes, [this](const protocol::ScannedMessage& m) { on_client_message(m); }) ==
        protocol::ScanStatus::kOk) {
      if (!keep_server_ || !client_terminated_) return std::nullopt;
      // A Terminate is the client's last message: held back when it is the whole end of
      // these bytes. Anything else (split across reads, followed by more) forwards as it is,
      // and the connection is not reused.
      constexpr std::uint8_t kTerminate[5] = {'X', 0, 0, 0, 4};
      if (bytes.size() >= 5 && from_client_.at_boundary() &&
          std::equal(bytes.end() - 5, bytes.end(), std::begin(kTerminate))) {
        forward = all.size() - 5;
        terminate_held_ = true;
        return RelayEnd{RelayEnd::Why::kClientClosed, "Terminate (the server connection is kept)", {}};
      }
      return std::nullopt;
    }
    const bool too_large = from_client_.error_kind() == protocol::ScanError::kLengthAboveMaximum;
    return RelayEnd{too_large ? RelayEnd::Why::kClientTooLarge : RelayEnd::Why::kClientProtocol,
                    from_client_.error(),
                    {}};
  }
  if (from_server_.scan(bytes, [this](const protocol::ScannedMessage& m) { on_server_message(m); }) ==
      protocol::ScanStatus::kOk) {
    return std::nullopt;
  }
  return RelayEnd{RelayEnd::Why::kServerProtocol, from_server_.error(), {}};
}

RelayEnd Relay::cancelled() const {
  if (to_kernel_ && !idle_closed_ && !park_requested_) return RelayEnd{RelayEnd::Why::kToKernel, {}, {}};
  if (park_requested_ && !idle_closed_) return RelayEnd{RelayEnd::Why::kParked, {}, {}};
  return RelayEnd{idle_closed_ ? RelayEnd::Why::kIdleClosed : RelayEnd::Why::kShutdown, {}, {}};
}

RelayEnd Relay::closed(Direction direction, std::string detail) const {
  if (direction == Direction::kToServer) return RelayEnd{RelayEnd::Why::kClientClosed, std::move(detail), {}};
  return RelayEnd{RelayEnd::Why::kServerClosed, std::move(detail), server_error_};
}

asio::awaitable<RelayEnd> Relay::pump(Direction direction) {
  auto executor = co_await asio::this_coro::executor;
  const bool to_server = direction == Direction::kToServer;
  Socket& src = to_server ? client_ : server_;
  Socket& dst = to_server ? server_ : client_;
  std::uint64_t* counter = to_server ? counters_.bytes_to_server : counters_.bytes_to_client;
  std::vector<std::uint8_t> pending;  // only used under backpressure
  int reads_without_wait = 0;
  // A read shorter than the buffer emptied the socket: wait for readiness at once instead
  // of paying for a read that can only say EAGAIN. (Safe with Asio's edge-triggered epoll:
  // data arriving after the short read raises a new edge, harvested only at the next
  // epoll_wait, by which time the wait below is queued. Every other path reads first,
  // since an edge that came while no wait was queued is not remembered.)
  bool drained = false;

  for (;;) {
    boost::system::error_code ec;
    if (drained) {
      drained = false;
      reads_without_wait = 0;
      auto [wec] = co_await src.async_wait(Socket::wait_read, asio::as_tuple(asio::use_awaitable));
      if (wec == asio::error::operation_aborted) co_return cancelled();
    }
    if (idle_closed_ || park_requested_ || to_kernel_) co_return cancelled();
    const std::size_t n = src.read_some(asio::buffer(g_scratch), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      reads_without_wait = 0;
      auto [wec] = co_await src.async_wait(Socket::wait_read, asio::as_tuple(asio::use_awaitable));
      if (wec == asio::error::operation_aborted) co_return cancelled();
      continue;  // an error shows up on the next read
    }
    if (ec == asio::error::interrupted) continue;
    if (ec) co_return closed(direction, ec == asio::error::eof ? std::string() : ec.message());
    activity_.last_traffic = Clock::now();

    std::size_t forward = n;
    if (auto end = inspect(direction, protocol::Bytes(g_scratch.data(), n), forward)) {
      if (forward == 0 || end->why != RelayEnd::Why::kClientClosed) co_return std::move(*end);
      // A held Terminate: what came before it still goes to the server.
      if (counter) *counter += forward;
      pending.assign(g_scratch.begin(), g_scratch.begin() + static_cast<std::ptrdiff_t>(forward));
      auto [wec, _] = co_await asio::async_write(dst, asio::buffer(pending), asio::as_tuple(asio::use_awaitable));
      if (wec == asio::error::operation_aborted) co_return cancelled();
      if (wec) co_return RelayEnd{RelayEnd::Why::kWriteFailed, wec.message(), {}};
      co_return std::move(*end);
    }
    if (counter) *counter += n;

    std::size_t written = dst.write_some(asio::buffer(g_scratch.data(), n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      written = 0;
      ec = {};
    }
    if (ec) co_return RelayEnd{RelayEnd::Why::kWriteFailed, ec.message(), {}};
    if (written < n) {
      // The destination is slower than the source: keep the rest and stop reading this
      // direction until it is delivered.
      pending.assign(g_scratch.begin() + static_cast<std::ptrdiff_t>(written),
                     g_scratch.begin() + static_cast<std::ptrdiff_t>(n));
      bool& in_flight = to_server ? to_server_pending_ : to_client_pending_;
      in_flight = true;
      auto [wec, _] = co_await asio::async_write(dst, asio::buffer(pending), asio::as_tuple(asio::use_awaitable));
      in_flight = false;
      if (wec == asio::error::operation_aborted) co_return cancelled();
      if (wec) co_return RelayEnd{RelayEnd::Why::kWriteFailed, wec.message(), {}};
      std::vector<std::uint8_t>().swap(pending);  // give the memory back: idle sessions hold none
      reads_without_wait = 0;
      continue;
    }
    if (n < g_scratch.size()) {
      // The server's answer is through and the session at rest: its next bytes may go by the
      // kernel. (The other pump, waiting, is cancelled by the || in run().)
      if (!to_server && may_enter_kernel()) {
        to_kernel_ = true;
        co_return RelayEnd{RelayEnd::Why::kToKernel, {}, {}};
      }
      drained = true;
      continue;
    }
    if (++reads_without_wait >= kReadsBeforeYield) {
      reads_without_wait = 0;
      co_await asio::post(executor, asio::use_awaitable);
    }
  }
}

asio::awaitable<RelayEnd> Relay::pump_stream(Direction direction) {
  const bool to_server = direction == Direction::kToServer;
  Stream& src = to_server ? client_stream_ : server_stream_;
  Stream& dst = to_server ? server_stream_ : client_stream_;
  std::uint64_t* counter = to_server ? counters_.bytes_to_server : counters_.bytes_to_client;
  // TLS decrypts into memory of the session's own: the shared scratch buffer cannot be
  // lent across the suspension an SSL read may need.
  std::vector<std::uint8_t> buffer(16 * 1024);
  for (;;) {
    if (idle_closed_ || park_requested_) co_return cancelled();
    auto [ec, n] = co_await src.read_some(asio::buffer(buffer));
    if (ec == asio::error::operation_aborted) co_return cancelled();
    if (n > 0) {
      activity_.last_traffic = Clock::now();
      std::size_t forward = n;
      auto end = inspect(direction, protocol::Bytes(buffer.data(), n), forward);
      if (end && (forward == 0 || end->why != RelayEnd::Why::kClientClosed)) co_return std::move(*end);
      if (counter) *counter += forward;
      if (!to_server) to_client_pending_ = true;
      const auto wec = co_await dst.write(asio::const_buffer(buffer.data(), forward));
      if (!to_server) to_client_pending_ = false;
      if (wec == asio::error::operation_aborted) co_return cancelled();
      if (wec) co_return RelayEnd{RelayEnd::Why::kWriteFailed, wec.message(), {}};
      if (end) co_return std::move(*end);  // a held Terminate, after what came before it
    }
    if (ec) {
      const bool eof = ec == asio::error::eof || ec == ssl::error::stream_truncated;
      co_return closed(direction, eof ? std::string() : ec.message());
    }
  }
}

asio::awaitable<RelayEnd> Relay::run() {
  if (!first_to_server_.empty()) {
    const std::string first = std::exchange(first_to_server_, {});
    activity_.last_traffic = Clock::now();
    std::size_t forward = first.size();
    auto end = inspect(Direction::kToServer, protocol::as_bytes(first), forward);
    if (end && (forward == 0 || end->why != RelayEnd::Why::kClientClosed)) co_return std::move(*end);
    if (counters_.bytes_to_server) *counters_.bytes_to_server += forward;
    const auto ec = co_await server_stream_.write(std::string_view(first).substr(0, forward));
    if (ec == asio::error::operation_aborted) co_return cancelled();
    if (ec) co_return RelayEnd{RelayEnd::Why::kWriteFailed, ec.message(), {}};
    if (end) co_return std::move(*end);
  }
  if (after_first_to_server_) std::exchange(after_first_to_server_, {})();
  if (client_stream_.tls() || server_stream_.tls()) {
    auto r = co_await (pump_stream(Direction::kToServer) || pump_stream(Direction::kToClient));
    co_return r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
  }
  for (;;) {
    boost::system::error_code ec;
    client_.non_blocking(true, ec);
    server_.non_blocking(true, ec);
    auto r = co_await (pump(Direction::kToServer) || pump(Direction::kToClient));
    RelayEnd end = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
    if (end.why != RelayEnd::Why::kToKernel) co_return end;
    if (auto kernel_end = co_await kernel_phase()) co_return std::move(*kernel_end);
  }
}

}  // namespace pgnap::daemon

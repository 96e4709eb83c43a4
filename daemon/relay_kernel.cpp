// The relay's kernel phase (relay.h, kernel_relay.h): a session at rest hands its bytes to the
// kernel relay, waits, and takes them back when something needs pgnap. The protocol with the
// BPF program, step by step, is in docs/architecture.md ("The kernel relay"); in short:
//
//   enter   count what the program passed to pgnap's queues (`passed`), check that pgnap has
//           read all of it, then arm both sockets with that count: the program forwards a
//           segment only while nothing it passed is unread, so no byte overtakes another.
//   wait    out of Asio's reactor (which would wake at every segment), for the program's
//           event ring (a segment it handed back) or a socket closed or failed.
//   leave   disarm, wait until no verdict is between reading the control block and committing
//           (busy), wait until each socket has taken what the kernel redirected to it, then
//           give the walkers' positions and counts to the scanners: a message the walker was
//           in the middle of is either replayed into the scanner (its head, if not counted
//           yet) or forwarded unscanned (its rest, if it was).
#include <sys/ioctl.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/log.h"
#include "daemon/relay.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

namespace msg = protocol::backend_msg;
namespace fmsg = protocol::frontend_msg;

namespace {

void stop_on(pgnap_walk_cfg& cfg, char type) {
  const auto t = static_cast<unsigned char>(type);
  cfg.stop_mask[t >> 6] |= std::uint64_t{1} << (t & 63);
}

// Bytes waiting to be read by pgnap: what the program passed, unread.
bool unread(Socket& socket) {
  int n = 0;
  return ::ioctl(socket.native_handle(), FIONREAD, &n) != 0 || n > 0;
}

// How long leave_kernel waits for a socket to take what the kernel redirected to it: a slow
// client holds it up as long as it would hold up a write of pgnap's own.
constexpr auto kLeaveTimeout = std::chrono::seconds(30);

// The program resets a socket's walker at its first segment after an arming; before that, the
// walker it holds is the previous arming's: nothing has been walked since this one.
void current_walk(KernelSocketState& state, std::uint32_t epoch) {
  if (state.epoch != epoch) state.walk = pgnap_walk{};
}

}  // namespace

bool Relay::may_enter_kernel() const {
  return kernel_ != nullptr && !kernel_refused_ && activity_.at_rest && transaction_status_ == 'I' &&
         !activity_.listening && from_client_.at_boundary() && from_server_.at_boundary() && !to_client_pending_ &&
         !to_server_pending_ && skip_to_server_ == 0 && skip_to_client_ == 0 && !client_terminated_ && !idle_closed_ &&
         !park_requested_ && first_to_server_.empty();
}

asio::awaitable<std::optional<RelayEnd>> Relay::kernel_phase() {
  to_kernel_ = false;
  if (!kernel_client_) {
    kernel_client_ = kernel_->enroll(client_);
    if (kernel_client_) kernel_server_ = kernel_->enroll(server_);
    if (!kernel_client_ || !kernel_server_) {
      kernel_refused_ = true;
      co_return std::nullopt;
    }
  }
  KernelSocketState client_state;
  KernelSocketState server_state;
  if (!kernel_->read(*kernel_client_, client_state) || !kernel_->read(*kernel_server_, server_state)) {
    kernel_refused_ = true;
    co_return std::nullopt;
  }
  // Read after the counts: nothing unread now means everything counted was read.
  if (unread(client_) || unread(server_)) co_return std::nullopt;
  const auto client_taken = KernelRelay::bytes_taken(client_.native_handle());
  const auto server_taken = KernelRelay::bytes_taken(server_.native_handle());
  if (!client_taken || !server_taken) {
    kernel_refused_ = true;
    co_return std::nullopt;
  }
  kernel_base_ = {.client_redirected = client_state.redirected,
                  .server_redirected = server_state.redirected,
                  .client_taken = *client_taken,
                  .server_taken = *server_taken,
                  .transaction_status = transaction_status_,
                  .client_counted = client_state.redirected,
                  .server_counted = server_state.redirected};

  ++kernel_epoch_;
  KernelControl to_server{.epoch = kernel_epoch_,
                          .peer = kernel_server_->slot,
                          .kernel = true,
                          .armed_passed = client_state.passed,
                          .cfg = {}};
  to_server.cfg.max_length = max_client_message_;
  to_server.cfg.side = PGNAP_SIDE_CLIENT;
  stop_on(to_server.cfg, fmsg::kTerminate);
  KernelControl to_client{.epoch = kernel_epoch_,
                          .peer = kernel_client_->slot,
                          .kernel = true,
                          .armed_passed = server_state.passed,
                          .cfg = {}};
  to_client.cfg.max_length = 0x7fffffff;
  to_client.cfg.side = PGNAP_SIDE_SERVER;
  for (char type : {msg::kErrorResponse, msg::kNotificationResponse, msg::kBackendKeyData}) stop_on(to_client.cfg, type);
  if (keep_server_) stop_on(to_client.cfg, msg::kParameterStatus);  // the pool tracks them
  in_kernel_ = true;
  std::string why;
  if (!kernel_->write(*kernel_server_, to_client) || !kernel_->write(*kernel_client_, to_server)) {
    kernel_refused_ = true;
    if (!co_await leave_kernel(why)) co_return RelayEnd{RelayEnd::Why::kWriteFailed, why, {}};
    co_return std::nullopt;
  }
  // Bytes that arrived between the counts and the arming went to pgnap's queue, and the
  // program now passes what follows them too: the pumps take them all.
  KernelSocketState client_now;
  KernelSocketState server_now;
  if (!kernel_->read(*kernel_client_, client_now) || !kernel_->read(*kernel_server_, server_now) ||
      client_now.passed != client_state.passed || server_now.passed != server_state.passed) {
    if (!co_await leave_kernel(why)) co_return RelayEnd{RelayEnd::Why::kWriteFailed, why, {}};
    co_return std::nullopt;
  }
  auto& counters = kernel_->counters();
  ++counters.kernel_entries;
  ++counters.kernel_sessions;

  // Out of Asio's reactor meanwhile: its registration would wake the loop at every segment.
  boost::system::error_code ec;
  const auto client_protocol = client_.local_endpoint(ec).protocol();
  const auto server_protocol = server_.local_endpoint(ec).protocol();
  const int client_fd = client_.release(ec);
  const int server_fd = server_.release(ec);
  asio::steady_timer wait(co_await asio::this_coro::executor, Clock::time_point::max());
  bool woken = false;
  kernel_wake_ = [&wait, &woken] {
    woken = true;
    wait.cancel();
  };
  kernel_->watch(*kernel_client_, client_fd, kernel_wake_);
  kernel_->watch(*kernel_server_, server_fd, kernel_wake_);
  activity_.refresh = [this] { refresh_from_kernel(); };
  if (!idle_closed_ && !park_requested_) {
    (void)co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
  } else {
    woken = true;
  }
  const bool shutdown = !woken;  // the session was cancelled
  if (shutdown) co_await asio::this_coro::reset_cancellation_state();
  kernel_wake_ = nullptr;
  kernel_->unwatch(*kernel_client_, client_fd);
  kernel_->unwatch(*kernel_server_, server_fd);
  client_.assign(client_protocol, client_fd, ec);
  server_.assign(server_protocol, server_fd, ec);
  activity_.refresh = nullptr;
  --counters.kernel_sessions;
  ++counters.kernel_handbacks;
  if (!co_await leave_kernel(why)) co_return RelayEnd{RelayEnd::Why::kWriteFailed, why, {}};
  if (shutdown) co_return RelayEnd{RelayEnd::Why::kShutdown, {}, {}};
  if (idle_closed_ || park_requested_) co_return cancelled();
  co_return std::nullopt;
}

asio::awaitable<bool> Relay::leave_kernel(std::string& why) {
  auto executor = co_await asio::this_coro::executor;
  in_kernel_ = false;
  KernelControl off{.epoch = kernel_epoch_, .peer = 0, .kernel = false, .armed_passed = 0, .cfg = {}};
  off.peer = kernel_server_->slot;
  const bool disarmed = kernel_->write(*kernel_client_, off);
  off.peer = kernel_client_->slot;
  if (!kernel_->write(*kernel_server_, off) || !disarmed) {
    why = "the kernel relay could not be disarmed";
    co_return false;
  }
  // No verdict between its reading of the control block and its commit: every later one
  // reads "disarmed".
  KernelSocketState client_state;
  KernelSocketState server_state;
  const auto deadline = Clock::now() + kLeaveTimeout;
  auto delay = std::chrono::microseconds(50);
  for (;;) {
    if (!kernel_->read(*kernel_client_, client_state) || !kernel_->read(*kernel_server_, server_state)) {
      why = "the kernel relay's state could not be read";
      co_return false;
    }
    current_walk(client_state, kernel_epoch_);
    current_walk(server_state, kernel_epoch_);
    if (!client_state.busy && !server_state.busy) {
      // Everything the kernel redirected has reached the socket it went to (its send queue):
      // what pgnap writes from now on comes after it.
      const auto client_taken = KernelRelay::bytes_taken(client_.native_handle());
      const auto server_taken = KernelRelay::bytes_taken(server_.native_handle());
      const bool to_server_done =
          !server_taken || *server_taken - kernel_base_.server_taken >= client_state.redirected - kernel_base_.client_redirected;
      const bool to_client_done =
          !client_taken || *client_taken - kernel_base_.client_taken >= server_state.redirected - kernel_base_.server_redirected;
      if (to_server_done && to_client_done) break;
    }
    if (Clock::now() > deadline) {
      why = "the kernel relay did not deliver its bytes within " + std::to_string(kLeaveTimeout.count()) + " s";
      co_return false;
    }
    asio::steady_timer pause(executor, delay);
    (void)co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    delay = std::min<std::chrono::microseconds>(delay * 2, std::chrono::milliseconds(10));
  }
  count_kernel_bytes(client_state, server_state);
  // The counts since arming, when the session was at rest (nothing unanswered).
  const std::uint32_t sent = client_state.walk.sync_points;
  const std::uint32_t answered = server_state.walk.ready;
  unanswered_ = sent > answered ? sent - answered : 0;
  unsynced_ = client_state.walk.unsynced != 0;
  if (server_state.walk.status != 0) transaction_status_ = static_cast<char>(server_state.walk.status);
  activity_.transaction_status = transaction_status_;
  activity_.at_rest = transaction_status_ == 'I' && unanswered_ == 0 && !unsynced_;
  activity_.busy = unanswered_ > 0 || unsynced_;
  const std::uint64_t last_ns = std::max(client_state.last_traffic_ns, server_state.last_traffic_ns);
  if (last_ns > 0) {
    const Clock::time_point last{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(last_ns))};
    activity_.last_traffic = std::max(activity_.last_traffic, last);
  }
  // After the counts: a message replayed into a scanner counts there (a ReadyForQuery the walker
  // had not read the status of yet).
  resume_direction(Direction::kToServer, client_state.walk);
  resume_direction(Direction::kToClient, server_state.walk);
  co_return true;
}

void Relay::resume_direction(Direction direction, const pgnap_walk& w) {
  const bool to_server = direction == Direction::kToServer;
  protocol::MessageScanner& scanner = to_server ? from_client_ : from_server_;
  auto on_message = [this, to_server](const protocol::ScannedMessage& m) {
    if (to_server) {
      on_client_message(m);
    } else {
      on_server_message(m);
    }
  };
  if (w.header_have == 0) return;  // at a boundary
  std::string prefix;
  if (w.header_have < 5) {
    // Inside a header: its first bytes went by the kernel; the scanner reads them again.
    for (int i = w.header_have - 1; i >= 0; --i) prefix.push_back(static_cast<char>((w.header >> (8 * i)) & 0xff));
  } else if (w.committed) {
    // Counted by the walker: the rest is forwarded as it comes.
    (to_server ? skip_to_server_ : skip_to_client_) = w.remaining;
    return;
  } else {
    // A ReadyForQuery before its status, or a CommandComplete inside a tag that might be
    // LISTEN or DISCARD ALL: the scanner reads the header and the tag's bytes so far again.
    prefix.push_back(static_cast<char>(w.type));
    for (int i = 3; i >= 0; --i) prefix.push_back(static_cast<char>((w.length >> (8 * i)) & 0xff));
    static constexpr std::string_view kTags[] = {"", "LISTEN", "DISCARD ALL"};
    if (w.tag == 1 || w.tag == 2) prefix.append(kTags[w.tag].substr(0, w.tag_match));
  }
  (void)scanner.scan(protocol::as_bytes(prefix), on_message);
}

void Relay::count_kernel_bytes(const KernelSocketState& client_state, const KernelSocketState& server_state) {
  if (counters_.bytes_to_server) *counters_.bytes_to_server += client_state.redirected - kernel_base_.client_counted;
  if (counters_.bytes_to_client) *counters_.bytes_to_client += server_state.redirected - kernel_base_.server_counted;
  kernel_base_.client_counted = client_state.redirected;
  kernel_base_.server_counted = server_state.redirected;
}

void Relay::refresh_from_kernel() {
  KernelSocketState client_state;
  KernelSocketState server_state;
  if (!in_kernel_ || !kernel_->read(*kernel_client_, client_state) || !kernel_->read(*kernel_server_, server_state)) {
    return;
  }
  current_walk(client_state, kernel_epoch_);
  current_walk(server_state, kernel_epoch_);
  count_kernel_bytes(client_state, server_state);
  const std::uint32_t sent = client_state.walk.sync_points;
  const std::uint32_t answered = server_state.walk.ready;
  const bool unsynced = client_state.walk.unsynced != 0;
  const char status = server_state.walk.status != 0 ? static_cast<char>(server_state.walk.status)
                                                    : kernel_base_.transaction_status;
  activity_.transaction_status = status;
  activity_.busy = sent > answered || unsynced;
  activity_.at_rest = status == 'I' && !activity_.busy && client_state.walk.header_have == 0 &&
                      server_state.walk.header_have == 0;
  const std::uint64_t last_ns = std::max(client_state.last_traffic_ns, server_state.last_traffic_ns);
  if (last_ns > 0) {
    const Clock::time_point last{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(last_ns))};
    activity_.last_traffic = std::max(activity_.last_traffic, last);
  }
}

}  // namespace pgnap::daemon

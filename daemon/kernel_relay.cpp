#include "daemon/kernel_relay.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "bpf/relay_object.h"
#include "daemon/log.h"

namespace pgnap::daemon {

namespace {

// The kernel's struct tcp_info up to tcpi_bytes_acked (glibc's <netinet/tcp.h> stops at
// tcpi_total_retrans; <linux/tcp.h> cannot be included beside it). The layout is the ABI.
struct TcpInfoWithBytesAcked {
  struct tcp_info base;
  std::uint64_t pacing_rate;
  std::uint64_t max_pacing_rate;
  std::uint64_t bytes_acked;
};

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

int silent_print(enum libbpf_print_level, const char*, va_list) { return 0; }

}  // namespace

std::unique_ptr<KernelRelay> KernelRelay::load(const asio::any_io_executor& executor, std::string& why_not,
                                               metrics::RelayCounters* counters) {
  libbpf_set_print(silent_print);
  std::unique_ptr<KernelRelay> relay(new KernelRelay());
  if (counters != nullptr) relay->counters_ = counters;
  const auto object = bpf::relay_object();
  LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = "pgnap_relay");
  relay->object_ = bpf_object__open_mem(object.data(), object.size(), &options);
  if (relay->object_ == nullptr) {
    why_not = errno_text("the BPF object could not be opened");
    return nullptr;
  }
  if (const int err = bpf_object__load(relay->object_); err != 0) {
    errno = -err;
    why_not = errno == EPERM || errno == EACCES
                  ? "loading the BPF program was refused (it needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; see docs/operations.md, \"The kernel relay\")"
                  : errno_text("the BPF program could not be loaded (Linux 5.17 or later is needed)");
    return nullptr;
  }
  relay->socks_fd_ = bpf_object__find_map_fd_by_name(relay->object_, "socks");
  relay->ctl_fd_ = bpf_object__find_map_fd_by_name(relay->object_, "ctl");
  relay->state_fd_ = bpf_object__find_map_fd_by_name(relay->object_, "state");
  const int events_fd = bpf_object__find_map_fd_by_name(relay->object_, "events");
  bpf_program* verdict = bpf_object__find_program_by_name(relay->object_, "pgnap_verdict");
  if (relay->socks_fd_ < 0 || relay->ctl_fd_ < 0 || relay->state_fd_ < 0 || events_fd < 0 || verdict == nullptr) {
    why_not = "the BPF object lacks a map or its program";
    return nullptr;
  }
  relay->verdict_fd_ = bpf_program__fd(verdict);
  if (bpf_prog_attach(relay->verdict_fd_, relay->socks_fd_, BPF_SK_SKB_VERDICT, 0) != 0) {
    why_not = errno_text("the verdict program could not be attached to the sockmap");
    return nullptr;
  }
  relay->ring_ = ring_buffer__new(
      events_fd,
      [](void* context, void* data, std::size_t size) -> int {
        if (size >= sizeof(pgnap_event)) {
          pgnap_event event;
          std::memcpy(&event, data, sizeof(event));
          static_cast<KernelRelay*>(context)->on_ring_event(event.cookie);
        }
        return 0;
      },
      relay.get(), nullptr);
  if (relay->ring_ == nullptr) {
    why_not = errno_text("the event ring could not be opened");
    return nullptr;
  }
  relay->closed_epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (relay->closed_epoll_ < 0) {
    why_not = errno_text("epoll_create1");
    return nullptr;
  }
  relay->slot_cookie_.assign(PGNAP_MAX_SOCKETS, 0);
  relay->free_slots_.reserve(PGNAP_MAX_SOCKETS);
  for (std::uint32_t slot = PGNAP_MAX_SOCKETS; slot > 0; --slot) relay->free_slots_.push_back(slot - 1);
  relay->start(executor);
  relay->counters_->relay = "kernel";
  return relay;
}

void KernelRelay::stop() {
  *alive_ = false;
  boost::system::error_code ec;
  if (ring_wait_) ring_wait_->cancel(ec);
  if (closed_wait_) closed_wait_->cancel(ec);
}

KernelRelay::~KernelRelay() {
  *alive_ = false;
  ring_wait_.reset();
  closed_wait_.reset();
  if (ring_ != nullptr) ring_buffer__free(ring_);
  if (closed_epoll_ >= 0) ::close(closed_epoll_);
  if (verdict_fd_ >= 0 && socks_fd_ >= 0) bpf_prog_detach2(verdict_fd_, socks_fd_, BPF_SK_SKB_VERDICT);
  if (object_ != nullptr) bpf_object__close(object_);
}

// Two waits on the event loop, each a descriptor that Asio polls: the ring's epoll (a
// segment handed back) and the epoll of the sockets whose bytes are in the kernel (closed or
// failed). Each drains what is there before it waits again, so no edge is missed.
void KernelRelay::start(const asio::any_io_executor& executor) {
  ring_wait_ = std::make_unique<asio::posix::stream_descriptor>(executor, ::dup(ring_buffer__epoll_fd(ring_)));
  closed_wait_ = std::make_unique<asio::posix::stream_descriptor>(executor, ::dup(closed_epoll_));
  auto alive = alive_;
  asio::co_spawn(
      executor,
      [this, alive]() -> asio::awaitable<void> {
        for (;;) {
          ring_buffer__consume(ring_);
          auto [ec] = co_await ring_wait_->async_wait(asio::posix::stream_descriptor::wait_read,
                                                      asio::as_tuple(asio::use_awaitable));
          if (ec || !*alive) co_return;
        }
      },
      asio::detached);
  asio::co_spawn(
      executor,
      [this, alive]() -> asio::awaitable<void> {
        for (;;) {
          drain_closed_events();
          auto [ec] = co_await closed_wait_->async_wait(asio::posix::stream_descriptor::wait_read,
                                                        asio::as_tuple(asio::use_awaitable));
          if (ec || !*alive) co_return;
        }
      },
      asio::detached);
}

void KernelRelay::on_ring_event(std::uint64_t cookie) {
  if (auto it = waiting_.find(cookie); it != waiting_.end()) it->second();
}

void KernelRelay::drain_closed_events() {
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(closed_epoll_, events, 64, 0);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) on_ring_event(events[i].data.u64);
    if (n < 64) return;
  }
}

void KernelRelay::watch(const KernelSocket& socket, int fd, std::function<void()> wake) {
  waiting_[socket.cookie] = std::move(wake);
  epoll_event event{};
  // Once: the session unwatches on its first event, and until it runs (later on the loop) a
  // closed socket would be reported again at every epoll_wait.
  event.events = EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLONESHOT;
  event.data.u64 = socket.cookie;
  epoll_ctl(closed_epoll_, EPOLL_CTL_ADD, fd, &event);
}

void KernelRelay::unwatch(const KernelSocket& socket, int fd) {
  waiting_.erase(socket.cookie);
  epoll_ctl(closed_epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

std::optional<KernelSocket> KernelRelay::enroll(Socket& socket) {
  const int fd = socket.native_handle();
  std::uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) != 0 || cookie == 0) return std::nullopt;
  if (auto it = slot_of_.find(cookie); it != slot_of_.end()) return KernelSocket{cookie, it->second};
  if (free_slots_.empty() || ++enrolled_since_collect_ >= 1024) {
    enrolled_since_collect_ = 0;
    collect_closed();
  }
  if (free_slots_.empty()) {
    ++counters_->kernel_refused;
    return std::nullopt;
  }
  const std::uint32_t slot = free_slots_.back();
  // Its control block and state first: the program passes (and counts) every byte of a
  // socket it has no entry for as well, but pgnap must count from the first one.
  pgnap_ctl control{};
  control.peer = slot;
  pgnap_state state{};
  if (bpf_map_update_elem(ctl_fd_, &cookie, &control, BPF_ANY) != 0 ||
      bpf_map_update_elem(state_fd_, &cookie, &state, BPF_ANY) != 0) {
    ++counters_->kernel_refused;
    bpf_map_delete_elem(ctl_fd_, &cookie);
    return std::nullopt;
  }
  std::uint64_t value = static_cast<std::uint64_t>(fd);
  if (bpf_map_update_elem(socks_fd_, &slot, &value, BPF_ANY) != 0) {
    const std::string why = errno_text("the sockmap refused a socket");
    ++counters_->kernel_refused;
    bpf_map_delete_elem(ctl_fd_, &cookie);
    bpf_map_delete_elem(state_fd_, &cookie);
    if (!refusal_logged_) {
      refusal_logged_ = true;
      PGNAP_LOG(kWarning, "kernel relay", why << "; such sessions are relayed in user space (said once)");
    }
    return std::nullopt;
  }
  free_slots_.pop_back();
  slot_cookie_[slot] = cookie;
  slot_of_[cookie] = slot;
  // Bytes that arrived before the socket joined the sockmap wait in its receive queue, unseen
  // by the program until more arrive: setting SO_RCVLOWAT makes TCP signal them now.
  int lowat = 1;
  length = sizeof(lowat);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &length) == 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
  }
  return KernelSocket{cookie, slot};
}

void KernelRelay::collect_closed() {
  for (std::uint32_t slot = 0; slot < slot_cookie_.size(); ++slot) {
    const std::uint64_t cookie = slot_cookie_[slot];
    if (cookie == 0) continue;
    std::uint64_t current = 0;
    if (bpf_map_lookup_elem(socks_fd_, &slot, &current) == 0 && current == cookie) continue;
    bpf_map_delete_elem(ctl_fd_, &cookie);
    bpf_map_delete_elem(state_fd_, &cookie);
    slot_of_.erase(cookie);
    slot_cookie_[slot] = 0;
    free_slots_.push_back(slot);
  }
}

bool KernelRelay::read(const KernelSocket& socket, KernelSocketState& out) const {
  pgnap_state state{};
  if (bpf_map_lookup_elem_flags(state_fd_, &socket.cookie, &state, BPF_F_LOCK) != 0) return false;
  out.epoch = state.epoch;
  out.busy = state.busy != 0;
  out.stop = state.stop;
  out.passed = state.passed;
  out.redirected = state.redirected;
  out.last_traffic_ns = state.last_traffic_ns;
  out.walk = state.walk;
  return true;
}

bool KernelRelay::write(const KernelSocket& socket, const KernelControl& control) {
  pgnap_ctl value{};
  value.epoch = control.epoch;
  value.peer = control.peer;
  value.mode = control.kernel ? PGNAP_MODE_KERNEL : PGNAP_MODE_USER;
  value.armed_passed = control.armed_passed;
  value.cfg = control.cfg;
  return bpf_map_update_elem(ctl_fd_, &socket.cookie, &value, BPF_F_LOCK) == 0;
}

std::optional<std::uint64_t> KernelRelay::bytes_taken(int fd) {
  TcpInfoWithBytesAcked info{};
  socklen_t length = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 || length < sizeof(info)) return std::nullopt;
  int unacknowledged = 0;  // SIOCOUTQ: written and not yet acknowledged
  if (ioctl(fd, SIOCOUTQ, &unacknowledged) != 0) return std::nullopt;
  return info.bytes_acked + static_cast<std::uint64_t>(unacknowledged);
}

ConfiguredRelay open_configured_relay(const std::string& mode, const asio::any_io_executor& executor,
                                      metrics::RelayCounters* counters) {
  ConfiguredRelay out;
  if (mode == "user") {
    out.description = "user space (relay = \"user\")";
    return out;
  }
  std::string why;
  out.kernel = KernelRelay::load(executor, why, counters);
  if (out.kernel) {
    out.description = "kernel (sockmap) for plaintext TCP sessions at rest, user space otherwise";
    return out;
  }
  out.description = "user space (the kernel relay is unavailable: " + why + ")";
  if (mode == "kernel") out.refusal = "relay = \"kernel\", and the kernel relay is unavailable: " + why;
  return out;
}

}  // namespace pgnap::daemon

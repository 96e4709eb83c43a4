// The kernel relay: a session's bytes go from the client's socket to the server's and back
// inside the kernel (a sockmap and the SK_SKB verdict program of bpf/relay.bpf.c), with no
// system call, copy or wake-up of pgnap per message. This file is the user-space side: it
// loads the program, enrolls sockets, arms and disarms them, and wakes a session when the
// kernel hands its bytes back. The relay (relay.cpp) decides when a session goes in and comes
// back; docs/architecture.md ("The kernel relay") describes the protocol between the two.
//
// Needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (root has them) and Linux 5.17 or later (bpf_loop, sockmap
// verdict programs for TCP). Without them pgnap relays in user space, as it says once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "bpf/relay_maps.h"
#include "daemon/net.h"
#include "metrics/instance_metrics.h"

struct bpf_object;
struct ring_buffer;

namespace pgnap::daemon {

// A socket known to the program: its cookie (the maps' key) and its slot in the sockmap.
struct KernelSocket {
  std::uint64_t cookie = 0;
  std::uint32_t slot = 0;
};

// What pgnap tells the program about one socket (pgnap_ctl without its lock).
struct KernelControl {
  std::uint32_t epoch = 0;
  std::uint32_t peer = 0;
  bool kernel = false;  // its bytes go to `peer` inside the kernel
  std::uint64_t armed_passed = 0;
  pgnap_walk_cfg cfg{};
};

// What the program says about one socket (pgnap_state, read under its lock).
struct KernelSocketState {
  std::uint32_t epoch = 0;
  bool busy = false;
  std::uint32_t stop = PGNAP_STOP_NONE;
  std::uint64_t passed = 0;
  std::uint64_t redirected = 0;
  std::uint64_t last_traffic_ns = 0;
  pgnap_walk walk{};
};


class KernelRelay {
 public:
  // The program loaded and attached, or nullptr and why not (for the log and `pgnap check`).
  // `counters` (the gateway's metrics) is kept up to date; none for a trial load (pgnap check).
  static std::unique_ptr<KernelRelay> load(const asio::any_io_executor& executor, std::string& why_not,
                                           metrics::RelayCounters* counters = nullptr);
  ~KernelRelay();
  KernelRelay(const KernelRelay&) = delete;
  KernelRelay& operator=(const KernelRelay&) = delete;

  // Puts a connected TCP socket into the sockmap for the rest of its life, its bytes still
  // going to pgnap (a socket leaves the sockmap only when it is closed: removing it earlier
  // would drop what the kernel holds for it). Idempotent. nullopt: refused (logged once).
  std::optional<KernelSocket> enroll(Socket& socket);

  [[nodiscard]] bool read(const KernelSocket& socket, KernelSocketState& out) const;
  [[nodiscard]] bool write(const KernelSocket& socket, const KernelControl& control);

  // Bytes the socket has taken for sending since it was created (acknowledged or queued):
  // what the kernel relay sent through it can be told apart from what it still holds.
  [[nodiscard]] static std::optional<std::uint64_t> bytes_taken(int fd);

  // A session whose bytes are in the kernel waits for either socket to come back: a segment
  // handed back by the program (its ring), or the connection closed or failed (EPOLLRDHUP,
  // EPOLLHUP, EPOLLERR on the descriptors, which are out of Asio's reactor meanwhile). `wake`
  // is called once per event, on the event loop.
  void watch(const KernelSocket& socket, int fd, std::function<void()> wake);
  void unwatch(const KernelSocket& socket, int fd);

  [[nodiscard]] metrics::RelayCounters& counters() { return *counters_; }

  // Ends the two waits on the event loop (the gateway's shutdown: io_context::run() returns
  // when nothing waits any more). No session may be in the kernel by then.
  void stop();

 private:
  KernelRelay() = default;
  void start(const asio::any_io_executor& executor);
  void collect_closed();  // forgets sockets that were closed (the sockmap dropped them)
  void on_ring_event(std::uint64_t cookie);
  void drain_closed_events();

  bpf_object* object_ = nullptr;
  int socks_fd_ = -1;
  int ctl_fd_ = -1;
  int state_fd_ = -1;
  int verdict_fd_ = -1;
  ring_buffer* ring_ = nullptr;
  int closed_epoll_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> ring_wait_;
  std::unique_ptr<asio::posix::stream_descriptor> closed_wait_;
  std::vector<std::uint64_t> slot_cookie_;  // 0: free
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<std::uint64_t, std::uint32_t> slot_of_;
  std::unordered_map<std::uint64_t, std::function<void()>> waiting_;
  std::size_t enrolled_since_collect_ = 0;
  bool refusal_logged_ = false;
  metrics::RelayCounters own_counters_;
  metrics::RelayCounters* counters_ = &own_counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The relay `[gateway] relay` asks for, as this process may run it: the loaded kernel relay
// (none: user space), what it is in words (the start-up log, `pgnap check`), and, for
// relay = "kernel" when it cannot be loaded, why pgnap must not start.
struct ConfiguredRelay {
  std::unique_ptr<KernelRelay> kernel;
  std::string description;
  std::string refusal;
};
[[nodiscard]] ConfiguredRelay open_configured_relay(const std::string& mode, const asio::any_io_executor& executor,
                                                    metrics::RelayCounters* counters = nullptr);

}  // namespace pgnap::daemon

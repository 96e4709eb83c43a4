// The running gateway: the io_context and its one thread, the instances, the listeners,
// the sessions, and the signals that reload and end them.
//
//   gateway.cpp         start-up, listeners, sessions, signals, the drain on SIGTERM, the
//                       control socket's commands (daemon/control.h)
//   gateway_reload.cpp  SIGHUP (and `pgnap reload`): applying a new configuration to the
//                       running gateway
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accounting/ledger.h"
#include "config/config.h"
#include "daemon/cancel_registry.h"
#include "daemon/control.h"
#include "daemon/instance.h"
#include "daemon/instance_auth.h"
#include "daemon/kernel_relay.h"
#include "daemon/ledger_recorder.h"
#include "daemon/usage_sampler.h"
#include "daemon/metrics_endpoint.h"
#include "daemon/router.h"
#include "daemon/server_pool.h"
#include "daemon/session.h"
#include "daemon/tls.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

// How the ledger names a configuration file: its absolute path.
[[nodiscard]] std::string config_key(const std::string& path);

// The control socket's commands are the Gateway's: it is their ControlHandler.
class Gateway : private ControlHandler {
 public:
  // Builds the backends (resolving pg_ctl's directory and the OS user), loads TLS and opens
  // the ledger: throws std::runtime_error with a message for the user when that is impossible.
  explicit Gateway(config::Config config);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Runs until SIGTERM/SIGINT and everything has ended. Returns the process exit status.
  int run();

 private:
  using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
  struct Listener {
    Acceptor acceptor;
    std::string name;               // as logged: "127.0.0.1:6432" or the socket path
    std::string unlink_path;        // Unix socket file to remove at exit
    config::ListenAddress address;  // as configured (socket activation: none)
    bool closed = false;
  };
  struct SessionSlot {
    asio::cancellation_signal cancel;
  };

  asio::awaitable<void> start();
  [[nodiscard]] std::string render_metrics();
  // Opens one configured listener (throws std::runtime_error when it cannot).
  [[nodiscard]] std::unique_ptr<Listener> open_listener(const config::ListenAddress& address);
  void open_listeners();
  void start_listener(Listener& listener);
  asio::awaitable<void> accept_loop(Listener& listener);
  void spawn_session(Socket socket);
  asio::awaitable<void> refuse_connection(Socket socket);
  // Once no session is left after many connections (a burst), gives the heap's free pages back.
  void release_memory_when_idle();
  asio::awaitable<void> handle_signals();
  void arm_watchdog();
  [[nodiscard]] std::unique_ptr<Instance> make_instance(
      const config::InstanceConfig& config, const std::map<std::string, accounting::LifetimeTotals>& lifetime,
      const std::map<std::string, accounting::ReportedCounters>& reported);
  void rebuild_router();
  void begin_shutdown(const std::string& why);
  asio::awaitable<void> finish_shutdown();
  [[noreturn]] void exit_now(int status);
  // Removes the Unix socket files of the listeners and of the control socket.
  void unlink_sockets();
  // The control socket, after the listeners: a missing directory or another failure is a
  // warning (the gateway runs without it); a live pgnap's socket throws ControlSocketInUse.
  void open_control_socket();
  // [gateway] relay: loads the kernel relay's program, or says why sessions stay in user space.
  void open_kernel_relay();
  // An instance clients may use (not removed by a reload), or nullptr.
  [[nodiscard]] Instance* active_instance(const std::string& name) const;
  // ControlHandler: `pgnap status`, `wake`, `sleep`, `reload`.
  [[nodiscard]] bool has_instance(const std::string& name) const override;
  [[nodiscard]] boost::json::object status() override;
  asio::awaitable<ControlReply> wake(std::string instance, config::Duration hold, ControlPeer peer) override;
  ControlReply sleep(std::string instance, ControlPeer peer) override;
  ControlReply reload(ControlPeer peer) override;
  // gateway_reload.cpp
  struct ReloadResult {
    bool ok = false;
    std::string message;  // what it did, or why nothing changed
  };
  ReloadResult reload();
  void apply_listeners(const std::vector<config::ListenAddress>& next);
  void apply_instances(const config::Config& next);

  // Declared first: destroyed last, after everything that holds its handlers.
  asio::io_context io_;
  config::Config config_;
  // The thread the samplers read /proc and cgroup files on, off the event loop.
  boost::asio::thread_pool usage_reader_{1};
  // Before the instances: they report to the recorder until they are destroyed.
  std::unique_ptr<accounting::Ledger> ledger_;
  std::unique_ptr<LedgerRecorder> recorder_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<Instance*> retired_;  // removed by a reload: no new clients, sessions finish
  // Each instance's authenticating-mode state; destroyed before the instances it refers to.
  std::map<const Instance*, std::unique_ptr<InstanceAuth>> auths_;
  // Each instance's server connection pool; destroyed before the instances too.
  std::map<const Instance*, std::unique_ptr<ServerPool>> pools_;
  // Each instance's usage sampler (the report's measured basis); the same.
  std::map<const Instance*, std::unique_ptr<UsageSampler>> samplers_;
  Router router_;
  CancelRegistry cancels_;
  metrics::GatewayMetrics gateway_metrics_;
  TlsServer tls_;
  SessionEnv env_;
  std::list<std::unique_ptr<Listener>> listeners_;
  bool socket_activated_ = false;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  std::unique_ptr<KernelRelay> kernel_relay_;  // none: [gateway] relay = "user", or it could not be loaded
  std::unique_ptr<ControlServer> control_;  // none when control_socket = "" or it could not be created
  std::list<SessionSlot> sessions_;
  std::size_t active_connections_ = 0;
  std::size_t refusing_ = 0;               // refused connections whose startup is being read
  std::uint64_t connections_at_trim_ = 0;  // connections_total when memory was last given back
  log::LineBudget max_clients_log_{1};
  std::uint64_t next_session_id_ = 1;
  asio::signal_set signals_;
  asio::steady_timer watchdog_;
  bool shutting_down_ = false;
  bool shutdown_finished_ = false;
  int exit_status_ = 0;
};

}  // namespace pgnap::daemon

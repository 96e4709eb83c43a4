// The running gateway: the io_context and its one thread, the instances, the listeners,
// the sessions, and the signals that end them.
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

#include "daemon/cancel_registry.h"
#include "daemon/config.h"
#include "daemon/instance.h"
#include "daemon/ledger_recorder.h"
#include "daemon/metrics_endpoint.h"
#include "metrics/ledger.h"
#include "daemon/router.h"
#include "daemon/session.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

class Gateway {
 public:
  // Builds the backends (resolving pg_ctl's directory and the OS user): throws
  // std::runtime_error with a message for the user when that is impossible.
  explicit Gateway(Config config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Runs until SIGTERM/SIGINT and everything has ended. Returns the process exit status.
  int run();

 private:
  using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
  struct Listener {
    Acceptor acceptor;
    std::string name;         // as logged: "127.0.0.1:6432" or the socket path
    std::string unlink_path;  // Unix socket file to remove at exit
  };
  struct SessionSlot {
    asio::cancellation_signal cancel;
  };

  asio::awaitable<void> start();
  [[nodiscard]] std::string render_metrics();
  void open_listeners();
  asio::awaitable<void> accept_loop(Listener& listener);
  void spawn_session(Socket socket);
  asio::awaitable<void> refuse_connection(Socket socket);
  asio::awaitable<void> handle_signals();
  void begin_shutdown(const std::string& why);
  asio::awaitable<void> finish_shutdown();
  [[noreturn]] void exit_now(int status);

  // Declared first: destroyed last, after everything that holds its handlers.
  asio::io_context io_;
  Config config_;
  // Before the instances: they report to the recorder until they are destroyed.
  std::unique_ptr<metrics::Ledger> ledger_;
  std::unique_ptr<LedgerRecorder> recorder_;
  std::vector<std::unique_ptr<Instance>> instances_;
  Router router_;
  CancelRegistry cancels_;
  metrics::GatewayMetrics gateway_metrics_;
  SessionEnv env_;
  std::list<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  std::list<SessionSlot> sessions_;
  std::size_t active_connections_ = 0;
  std::uint64_t next_session_id_ = 1;
  asio::signal_set signals_;
  bool shutting_down_ = false;
  bool shutdown_finished_ = false;
  int exit_status_ = 0;
};

}  // namespace pgnap::daemon

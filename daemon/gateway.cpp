#include "daemon/gateway.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/backend_factory.h"
#include "daemon/log.h"
#include "metrics/exposition.h"
#include "protocol/encode.h"

namespace pgnap::daemon {


Gateway::Gateway(Config config) : config_(std::move(config)), signals_(io_, SIGTERM, SIGINT, SIGHUP) {
  log::Level level = log::Level::kInfo;
  if (log::parse_level(config_.gateway.log_level, level)) log::set_level(level);
  ledger_ = metrics::Ledger::open(config_.gateway.ledger);
  if (ledger_->recovered_intervals() > 0) {
    PGNAP_LOG(kWarning, "ledger", ledger_->path() << ": " << ledger_->recovered_intervals()
                                                  << " interval(s) left open by an unclean stop were closed at their "
                                                     "last heartbeat");
  }
  recorder_ = std::make_unique<LedgerRecorder>(io_.get_executor(), *ledger_, config_.gateway.ledger_heartbeat);
  // Lifetime counters continue from the ledger rather than restarting at zero.
  const auto lifetime = metrics::read_lifetime_totals(config_.gateway.ledger);
  const auto reported = metrics::read_reported_counters(config_.gateway.ledger);
  std::vector<Instance*> raw;
  for (const auto& ic : config_.instances) {
    instances_.push_back(std::make_unique<Instance>(io_.get_executor(), ic, make_backend(ic)));
    instances_.back()->set_observer(recorder_.get());
    if (auto it = lifetime.find(ic.name); it != lifetime.end()) instances_.back()->metrics().set_lifetime(it->second);
    if (auto it = reported.find(ic.name); it != reported.end()) {
      instances_.back()->metrics().set_reported_floor(it->second);
    }
    raw.push_back(instances_.back().get());
  }
  router_ = Router(raw);
  env_.gateway = &config_.gateway;
  env_.router = &router_;
  env_.cancels = &cancels_;
  env_.metrics = &gateway_metrics_;
}

Gateway::~Gateway() = default;

int Gateway::run() {
  // Writes to a closed socket or pipe must return EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  open_listeners();
  asio::co_spawn(io_, start(), [this](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      PGNAP_LOG(kError, "gateway", "start-up failed: " << ex.what());
    }
    exit_status_ = 1;
    begin_shutdown("start-up failed");
  });
  asio::co_spawn(io_, handle_signals(), asio::detached);
  io_.run();
  ledger_->flush();
  for (const auto& l : listeners_) {
    if (!l->unlink_path.empty()) ::unlink(l->unlink_path.c_str());
  }
  PGNAP_LOG(kInfo, "gateway", "stopped");
  return exit_status_;
}

std::string Gateway::render_metrics() {
  std::vector<const metrics::InstanceMetrics*> instances;
  for (const auto& instance : instances_) instances.push_back(&instance->metrics());
  gateway_metrics_.ledger_write_errors = ledger_->failed_writes();
  const auto now = metrics::InstanceMetrics::Clock::now();
  std::string text = metrics::render_exposition(instances, gateway_metrics_, PGNAP_VERSION, now);
  // What was shown is now a floor for every later run (queued: the scrape never waits).
  for (const auto& instance : instances_) {
    ledger_->record_reported(instance->name(), instance->metrics().counters(now));
  }
  return text;
}

void Gateway::open_listeners() {
  if (!config_.metrics.listen.empty()) {
    metrics_endpoint_ = std::make_unique<MetricsEndpoint>(io_, config_.metrics.listen, [this] { return render_metrics(); });
  }
  for (const auto& address : config_.gateway.listen) {
    auto listener = std::make_unique<Listener>(Listener{Acceptor(io_), {}, {}});
    Acceptor& acceptor = listener->acceptor;
    if (address.kind == ListenAddress::Kind::kUnix) {
      // A socket file left by a crashed pgnap is replaced; one that someone answers on is not.
      asio::local::stream_protocol::endpoint ep(address.path);
      {
        asio::local::stream_protocol::socket probe(io_);
        boost::system::error_code ec;
        probe.connect(ep, ec);
        if (!ec) throw std::runtime_error("cannot listen on " + address.path + ": another process is listening there");
      }
      ::unlink(address.path.c_str());
      acceptor.open(asio::generic::stream_protocol(asio::local::stream_protocol()));
      acceptor.bind(ep);
      // Like PostgreSQL's default unix_socket_permissions (0777): access is decided by the
      // directory and by PostgreSQL's own authentication.
      ::chmod(address.path.c_str(), 0777);
      listener->unlink_path = address.path;
      listener->name = address.path;
    } else {
      asio::ip::tcp::resolver resolver(io_);
      // Start-up only, before the loop runs: a blocking lookup is acceptable here.
      auto results = resolver.resolve(address.host, std::to_string(address.port),
                                      asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
      if (results.empty()) throw std::runtime_error("cannot resolve listen address " + address.to_string());
      const asio::ip::tcp::endpoint ep = results.begin()->endpoint();
      acceptor.open(asio::generic::stream_protocol(ep.protocol()));
      acceptor.set_option(asio::socket_base::reuse_address(true));
      acceptor.bind(ep);
      listener->name.clear();
    }
    acceptor.listen(asio::socket_base::max_listen_connections);
    if (listener->name.empty()) listener->name = endpoint_to_string(acceptor.local_endpoint());
    listeners_.push_back(std::move(listener));
  }
}

asio::awaitable<void> Gateway::start() {
  recorder_->start();
  // Adopt every instance before admitting anyone: a client must never trigger a start of a
  // server that is already running.
  for (auto& instance : instances_) co_await instance->adopt();
  if (shutting_down_) co_return;
  if (metrics_endpoint_) {
    PGNAP_LOG(kInfo, "gateway", "metrics on http://" << metrics_endpoint_->name() << "/metrics");
    metrics_endpoint_->start();
  }
  for (auto& listener : listeners_) {
    PGNAP_LOG(kInfo, "gateway", "listening on " << listener->name);
    asio::co_spawn(io_, accept_loop(*listener), asio::detached);
  }
}

asio::awaitable<void> Gateway::accept_loop(Listener& listener) {
  for (;;) {
    auto [ec, socket] = co_await listener.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (shutting_down_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      // EMFILE and friends: log and back off briefly rather than spin.
      PGNAP_LOG(kWarning, "gateway", "accept on " << listener.name << " failed: " << ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    ++gateway_metrics_.connections_total;
    if (active_connections_ >= config_.gateway.max_clients) {
      gateway_metrics_.error(protocol::sqlstate::kTooManyConnections);
      asio::co_spawn(io_, refuse_connection(std::move(socket)), asio::detached);
      continue;
    }
    spawn_session(std::move(socket));
  }
}

asio::awaitable<void> Gateway::refuse_connection(Socket socket) {
  PGNAP_LOG(kWarning, "gateway", "refused a connection: max_clients (" << config_.gateway.max_clients << ") reached");
  const ClientError error{std::string(protocol::sqlstate::kTooManyConnections), "too many connections",
                          "max_clients (" + std::to_string(config_.gateway.max_clients) +
                              ") connections are already open",
                          "Retry later, or raise max_clients in pgnap's configuration."};
  co_await send_fatal(socket, error);
}

void Gateway::spawn_session(Socket socket) {
  ++active_connections_;
  sessions_.emplace_back();
  auto slot = std::prev(sessions_.end());
  const std::uint64_t id = next_session_id_++;
  asio::co_spawn(io_, run_session(env_, std::move(socket), id),
                 asio::bind_cancellation_slot(slot->cancel.slot(), [this, slot, id](std::exception_ptr e) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const boost::system::system_error& ex) {
                       if (ex.code() != asio::error::operation_aborted) {
                         PGNAP_LOG(kWarning, "session=" << id, "ended with an error: " << ex.what());
                       }
                     } catch (const std::exception& ex) {
                       PGNAP_LOG(kError, "session=" << id, "ended with an error: " << ex.what());
                     }
                   }
                   --active_connections_;
                   sessions_.erase(slot);
                 }));
}

asio::awaitable<void> Gateway::handle_signals() {
  while (!shutdown_finished_) {
    auto [ec, signo] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (signo == SIGHUP) {
      PGNAP_LOG(kWarning, "gateway", "SIGHUP: configuration reload is not supported yet; restart pgnap to apply "
                                     "changes");
      continue;
    }
    if (shutting_down_) {
      PGNAP_LOG(kWarning, "gateway", "second " << (signo == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping at once");
      exit_now(1);
    }
    begin_shutdown(signo == SIGINT ? "SIGINT" : "SIGTERM");
  }
}

void Gateway::exit_now(int status) {
  // Even a forced exit closes the ledger's intervals: the time up to now is known.
  recorder_->stop("pgnap stopped (forced)");
  ledger_->flush();
  std::_Exit(status);
}

void Gateway::begin_shutdown(const std::string& why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  PGNAP_LOG(kInfo, "gateway", why << ": shutting down");
  for (auto& l : listeners_) {
    boost::system::error_code ec;
    l->acceptor.close(ec);
  }
  for (auto& instance : instances_) instance->begin_shutdown();
  if (metrics_endpoint_) metrics_endpoint_->stop();
  for (auto& s : sessions_) s.cancel.emit(asio::cancellation_type::terminal);
  asio::co_spawn(io_, finish_shutdown(), asio::detached);
}

asio::awaitable<void> Gateway::finish_shutdown() {
  // Sessions end quickly once cancelled (each says goodbye with a short deadline); wait for
  // them, bounded, then let instances configured to do so suspend.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  asio::steady_timer poll(io_);
  while (!sessions_.empty() && Clock::now() < deadline) {
    poll.expires_after(std::chrono::milliseconds(10));
    co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!sessions_.empty()) {
    PGNAP_LOG(kWarning, "gateway", sessions_.size() << " session(s) did not end in time: exiting anyway");
    exit_now(exit_status_);
  }
  for (auto& instance : instances_) co_await instance->suspend_for_exit();
  recorder_->stop("pgnap stopped");
  // Nothing is left to stop: let the signal handler end, and with it io_context::run().
  shutdown_finished_ = true;
  signals_.cancel();
}

}  // namespace pgnap::daemon

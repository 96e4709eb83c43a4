#include "daemon/gateway.h"

#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/backend_factory.h"
#include "daemon/build_info.h"
#include "daemon/cancel_forward.h"
#include "daemon/instance_auth.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "daemon/startup_reader.h"
#include "daemon/stream.h"
#include "daemon/systemd_notify.h"
#include "metrics/exposition.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

namespace {

// Each session holds two descriptors (the client's socket and the server's). Shells and
// containers commonly start programs with a soft RLIMIT_NOFILE of 1024, which would cap
// pgnap near 500 sessions whatever max_clients says: beyond that, accepts and connections
// to the instance fail with EMFILE. So raise the soft limit to the hard one, as systemd asks
// of programs that need many descriptors (its unit sets LimitNOFILE for both, so children
// see nothing new), and say so when even that is too few.
void raise_descriptor_limit(std::uint64_t max_clients) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  // Two per session, plus listeners, the metrics endpoint, the ledger, probes, children's
  // pipes and refusals in progress.
  const std::uint64_t needed = 2 * max_clients + 128;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    PGNAP_LOG(kWarning, "gateway",
              "only " << limit.rlim_cur << " file descriptors allowed (RLIMIT_NOFILE), " << needed
                      << " needed for max_clients = " << max_clients
                      << ": raise LimitNOFILE (systemd) or ulimit -n, or lower max_clients");
  }
}

}  // namespace

std::string config_key(const std::string& path) { return std::filesystem::absolute(path).lexically_normal().string(); }

Gateway::Gateway(config::Config config)
    : config_(std::move(config)), signals_(io_, SIGTERM, SIGINT, SIGHUP), watchdog_(io_) {
  log::Level level = log::Level::kInfo;
  if (log::parse_level(config_.gateway.log_level, level)) log::set_level(level);
  tls_.load(config_.gateway.tls);
  // Another pgnap running with this configuration answers on the control socket: refuse before
  // the ledger is opened (opening it would close that pgnap's open intervals as crashed).
  if (!config_.gateway.control_socket.empty() && probe_control_socket(config_.gateway.control_socket) == 0) {
    throw std::runtime_error("another process answers on the control socket " + config_.gateway.control_socket +
                             ": is another pgnap running with this configuration?");
  }
  ledger_ = accounting::Ledger::open(config_.gateway.ledger);
  if (ledger_->recovered_intervals() > 0) {
    PGNAP_LOG(kWarning, "ledger",
              ledger_->path() << ": " << ledger_->recovered_intervals()
                              << " interval(s) left open by an unclean stop were closed at their "
                                 "last heartbeat");
  }
  // `pgnap check` compares a file with the configuration the gateway runs.
  ledger_->record_running_config(config_key(config_.source), config_.text, false);
  recorder_ = std::make_unique<LedgerRecorder>(io_.get_executor(), *ledger_, config_.gateway.ledger_heartbeat);
  // Lifetime counters continue from the ledger rather than restarting at zero.
  const auto lifetime = accounting::read_lifetime_totals(config_.gateway.ledger);
  const auto reported = accounting::read_reported_counters(config_.gateway.ledger);
  env_.instance_tls = make_client_context();
  for (const auto& ic : config_.instances) instances_.push_back(make_instance(ic, lifetime, reported));
  rebuild_router();
  env_.gateway = &config_.gateway;
  env_.router = &router_;
  env_.cancels = &cancels_;
  env_.metrics = &gateway_metrics_;
  env_.tls = &tls_;
  env_.auth_of = [this](const Instance& instance) -> InstanceAuth* {
    const auto it = auths_.find(&instance);
    if (it == auths_.end() || instance.config().auth.mode != "gateway") return nullptr;
    return it->second.get();
  };
  env_.pool_of = [this](const Instance& instance) -> ServerPool* {
    const auto it = pools_.find(&instance);
    return it == pools_.end() ? nullptr : it->second.get();
  };
  open_kernel_relay();
}

void Gateway::open_kernel_relay() {
  auto relay = open_configured_relay(config_.gateway.relay, io_.get_executor(), &gateway_metrics_.relay);
  if (!relay.refusal.empty()) throw std::runtime_error(relay.refusal);
  PGNAP_LOG(kInfo, "gateway", "relay: " << relay.description);
  kernel_relay_ = std::move(relay.kernel);
  env_.kernel = kernel_relay_.get();
}

Gateway::~Gateway() = default;

std::unique_ptr<Instance> Gateway::make_instance(const config::InstanceConfig& config,
                                                 const std::map<std::string, accounting::LifetimeTotals>& lifetime,
                                                 const std::map<std::string, accounting::ReportedCounters>& reported) {
  auto instance = std::make_unique<Instance>(io_.get_executor(), config, make_backend(config));
  instance->add_observer(recorder_.get());
  // Every instance can authenticate clients itself: a reload may switch it to gateway mode.
  auto auth = std::make_unique<InstanceAuth>(*instance, *ledger_, env_.instance_tls,
                                             accounting::read_credentials(config_.gateway.ledger),
                                             accounting::read_session_parameters(config_.gateway.ledger));
  auth->configure(config.auth);
  instance->add_observer(auth.get());
  auths_[instance.get()] = std::move(auth);
  auto pool = std::make_unique<ServerPool>(*instance, gateway_metrics_, env_.instance_tls);
  instance->add_observer(pool.get());
  pools_[instance.get()] = std::move(pool);
  auto sampler = std::make_unique<UsageSampler>(*instance, *ledger_, usage_reader_);
  instance->add_observer(sampler.get());
  samplers_[instance.get()] = std::move(sampler);
  if (auto it = lifetime.find(config.name); it != lifetime.end()) {
    instance->metrics().set_lifetime(it->second);
    if (it->second.last_awake_at > 0) {
      instance->set_last_awake(
          std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::duration<double>(it->second.last_awake_at))));
    }
  }
  if (auto it = reported.find(config.name); it != reported.end()) instance->metrics().set_reported_floor(it->second);
  return instance;
}

void Gateway::rebuild_router() {
  std::vector<Instance*> active;
  for (const auto& instance : instances_) {
    if (std::find(retired_.begin(), retired_.end(), instance.get()) == retired_.end()) active.push_back(instance.get());
  }
  router_ = Router(active);
}

int Gateway::run() {
  // Writes to a closed socket or pipe must return EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  PGNAP_LOG(kInfo, "gateway", "event loop: " << event_loop_name());
  raise_descriptor_limit(config_.gateway.max_clients);
  open_listeners();
  open_control_socket();
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
  unlink_sockets();
  PGNAP_LOG(kInfo, "gateway", "stopped");
  return exit_status_;
}

std::string Gateway::render_metrics() {
  std::vector<const metrics::InstanceMetrics*> instances;
  for (const auto& instance : instances_) {
    instance->refresh_activities();  // sessions in the kernel relay: their bytes so far
    instances.push_back(&instance->metrics());
  }
  gateway_metrics_.ledger_write_errors = ledger_->failed_writes();
  gateway_metrics_.ledger_pending_writes = ledger_->pending_writes();
  const auto now = metrics::InstanceMetrics::Clock::now();
  std::string text = metrics::render_exposition(instances, gateway_metrics_, {version(), revision()}, now);
  // What was shown is now a floor for every later run (queued: the scrape never waits).
  for (const auto& instance : instances_) {
    ledger_->record_reported(instance->name(), instance->metrics().counters(now));
  }
  return text;
}

std::unique_ptr<Gateway::Listener> Gateway::open_listener(const config::ListenAddress& address) {
  auto listener = std::make_unique<Listener>(Listener{Acceptor(io_), {}, {}, address});
  Acceptor& acceptor = listener->acceptor;
  if (address.kind == config::ListenAddress::Kind::kUnix) {
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
    boost::system::error_code ec;
    asio::ip::tcp::endpoint ep(asio::ip::make_address(address.host, ec), address.port);
    if (ec) {
      // A host name: resolved when the listener opens (start-up, or a reload that adds it);
      // listen addresses are nearly always numeric.
      asio::ip::tcp::resolver resolver(io_);
      auto results = resolver.resolve(address.host, std::to_string(address.port),
                                      asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
      if (results.empty()) throw std::runtime_error("cannot resolve listen address " + address.to_string());
      ep = results.begin()->endpoint();
    }
    acceptor.open(asio::generic::stream_protocol(ep.protocol()));
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
  }
  acceptor.listen(asio::socket_base::max_listen_connections);
  if (listener->name.empty()) listener->name = endpoint_to_string(acceptor.local_endpoint());
  return listener;
}

void Gateway::open_listeners() {
  if (!config_.metrics.listen.empty()) {
    metrics_endpoint_ = std::make_unique<MetricsEndpoint>(io_, config_.metrics.listen,
                                                          [this] { return render_metrics(); });
  }
  // Socket activation (pgnap.socket): systemd owns the listening sockets and passes them
  // here; they replace [gateway] listen.
  for (const int fd : systemd::listen_fds()) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
      PGNAP_LOG(kWarning, "gateway", "ignoring passed descriptor " << fd << ": not a stream socket");
      continue;
    }
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen);
    auto listener = std::make_unique<Listener>(Listener{Acceptor(io_), {}, {}, {}});
    const asio::generic::stream_protocol protocol(addr.ss_family, addr.ss_family == AF_UNIX ? 0 : IPPROTO_TCP);
    listener->acceptor.assign(protocol, fd);
    listener->name = endpoint_to_string(listener->acceptor.local_endpoint()) + " (socket activation)";
    listeners_.push_back(std::move(listener));
    socket_activated_ = true;
  }
  if (socket_activated_) return;
  for (const auto& address : config_.gateway.listen) listeners_.push_back(open_listener(address));
}

void Gateway::start_listener(Listener& listener) {
  PGNAP_LOG(kInfo, "gateway", "listening on " << listener.name);
  asio::co_spawn(io_, accept_loop(listener), asio::detached);
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
  for (auto& listener : listeners_) start_listener(*listener);
  if (control_) {
    control_->start();
    PGNAP_LOG(kInfo, "gateway",
              "control socket " << control_->path() << " (mode 0660: the service user and its group may connect)");
  }
  systemd::notify("READY=1\nSTATUS=accepting connections");
  arm_watchdog();
}

void Gateway::arm_watchdog() {
  // Only when the unit sets WatchdogSec: otherwise no timer at all (an idle gateway sleeps).
  const auto interval = systemd::watchdog_interval();
  if (!interval || shutdown_finished_) return;
  watchdog_.expires_after(*interval);
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    systemd::notify("WATCHDOG=1");
    arm_watchdog();
  });
}

asio::awaitable<void> Gateway::accept_loop(Listener& listener) {
  for (;;) {
    auto [ec, socket] = co_await listener.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (shutting_down_ || listener.closed || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor) {
      co_return;
    }
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
      gateway_metrics_.limit_hit("max_clients");
      asio::co_spawn(io_, refuse_connection(std::move(socket)), asio::detached);
      continue;
    }
    spawn_session(std::move(socket));
  }
}

asio::awaitable<void> Gateway::refuse_connection(Socket socket) {
  // One warning a second at most: a flood of refusals must not become a flood of log lines.
  // The line counts the refusals left out since the last one.
  std::size_t left_out = 0;
  if (max_clients_log_.take(Clock::now(), left_out) == log::LineBudget::Verdict::kWrite) {
    PGNAP_LOG(kWarning, "gateway",
              "refused " << left_out + 1 << " connection(s): max_clients (" << config_.gateway.max_clients
                         << ") reached");
  }
  const protocol::ErrorResponse error{
      "FATAL", std::string(protocol::sqlstate::kTooManyConnections), "too many connections",
      "max_clients (" + std::to_string(config_.gateway.max_clients) + ") connections are already open",
      "Retry later, or raise max_clients in pgnap's configuration."};
  // As PostgreSQL does, the refusal comes after the client's startup (its SSLRequest answered,
  // TLS included): libpq shows an error sent in the middle of SSL negotiation only as "server
  // sent an error response during SSL exchange". A cancel request is still forwarded: it is
  // how an overloaded server's clients stop their queries. Refusals that read a startup are
  // bounded; beyond kMaxRefusing at once the error is written at once and the socket closed.
  constexpr std::size_t kMaxRefusing = 64;
  if (refusing_ >= kMaxRefusing) {
    co_await send_fatal(socket, error);
    co_return;
  }
  ++refusing_;
  struct Release {
    std::size_t& n;
    ~Release() { --n; }
  } release{refusing_};
  Stream client(std::move(socket));
  const auto deadline = Clock::now() +
                        std::min<config::Duration>(config_.gateway.login_timeout, std::chrono::seconds(5));
  const auto startup = co_await read_startup(client, deadline, &tls_);
  if (startup.kind == StartupOutcome::Kind::kCancel) {
    co_await forward_cancel(cancels_, gateway_metrics_, startup.cancel, "refused connection");
  } else if (startup.kind == StartupOutcome::Kind::kStartup) {
    co_await send_fatal(client, error);
  }
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
                   release_memory_when_idle();
                 }));
}

void Gateway::release_memory_when_idle() {
  // A burst of connections (a flood refused at max_clients, a pool reconnecting) leaves the
  // heap at its high-water mark: glibc keeps freed memory for reuse and only trims the top
  // of the heap, which the long-lived objects allocated meanwhile (Asio's per-descriptor
  // state, kept in a pool) pin. When the last connection is gone after such a burst, hand
  // the free pages back: an idle gateway should be small. malloc_trim costs about 2 ms on
  // the loop for the 10 MB heap of a few thousand connections, at most once per kBurst
  // connections; a refusal still being written meanwhile does not matter (only free pages
  // are given back).
  constexpr std::uint64_t kBurst = 256;  // connections (sessions and refusals) since the last trim
  if (active_connections_ != 0) return;
  if (gateway_metrics_.connections_total - connections_at_trim_ < kBurst) return;
  connections_at_trim_ = gateway_metrics_.connections_total;
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

asio::awaitable<void> Gateway::handle_signals() {
  while (!shutdown_finished_) {
    auto [ec, signo] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (signo == SIGHUP) {
      if (!shutting_down_) (void)reload();
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
  for (auto& [instance, sampler] : samplers_) sampler->flush();
  recorder_->stop("pgnap stopped (forced)");
  ledger_->flush();
  unlink_sockets();
  std::_Exit(status);
}

void Gateway::unlink_sockets() {
  for (const auto& l : listeners_) {
    if (!l->unlink_path.empty()) ::unlink(l->unlink_path.c_str());
  }
  if (control_) control_->stop();
}

void Gateway::begin_shutdown(const std::string& why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  systemd::notify("STOPPING=1\nSTATUS=draining sessions");
  PGNAP_LOG(kInfo, "gateway", why << ": shutting down");
  for (auto& l : listeners_) {
    boost::system::error_code ec;
    l->acceptor.close(ec);
  }
  // Clients waiting for a wake are told at once; sessions in progress may finish; sessions
  // with no server attached have nothing to finish and end now.
  for (auto& instance : instances_) instance->begin_shutdown();
  env_.draining = true;
  for (asio::steady_timer* events : env_.unattached_sessions) events->cancel();
  asio::co_spawn(io_, finish_shutdown(), asio::detached);
}

asio::awaitable<void> Gateway::finish_shutdown() {
  asio::steady_timer poll(io_);
  auto wait_for_sessions = [&](Clock::time_point deadline) -> asio::awaitable<void> {
    while (!sessions_.empty() && Clock::now() < deadline) {
      poll.expires_after(std::chrono::milliseconds(20));
      co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  };
  if (!sessions_.empty()) {
    PGNAP_LOG(kInfo, "gateway",
              "draining " << sessions_.size() << " session(s) for up to "
                          << config::format_duration(config_.gateway.shutdown_timeout));
    co_await wait_for_sessions(Clock::now() + config_.gateway.shutdown_timeout);
  }
  if (!sessions_.empty()) {
    // Time is up: each remaining session is told 57P01 (between messages) and closed.
    PGNAP_LOG(kInfo, "gateway", "ending " << sessions_.size() << " session(s) still open after shutdown_timeout");
    for (auto& s : sessions_) s.cancel.emit(asio::cancellation_type::terminal);
    co_await wait_for_sessions(Clock::now() + std::chrono::seconds(5));
  }
  if (!sessions_.empty()) {
    PGNAP_LOG(kWarning, "gateway", sessions_.size() << " session(s) did not end: exiting anyway");
    exit_now(exit_status_);
  }
  // The pools' idle connections close before any suspend_on_exit stop, as before a suspend.
  for (auto& [instance, pool] : pools_) pool->shut_down();
  for (auto& instance : instances_) co_await instance->suspend_for_exit();
  for (auto& [instance, sampler] : samplers_) sampler->stop();
  recorder_->stop("pgnap stopped");
  if (metrics_endpoint_) metrics_endpoint_->stop();
  // Open until now, so that `pgnap status` shows the drain.
  if (control_) control_->stop();
  if (kernel_relay_) kernel_relay_->stop();
  // Nothing is left to stop: let the signal handler end, and with it io_context::run().
  shutdown_finished_ = true;
  watchdog_.cancel();
  signals_.cancel();
}

}  // namespace pgnap::daemon

// SIGHUP (and `pgnap reload` on the control socket): re-read the configuration and apply to
// the running gateway what can change without a restart. Each key's behaviour is declared
// with it (config/schema.cpp); a key that needs a restart keeps its running value and is
// logged. A file that does not load changes nothing: every error is logged and the running
// configuration stays.
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "daemon/gateway.h"
#include "daemon/log.h"
#include "daemon/systemd_notify.h"

namespace pgnap::daemon {

Gateway::ReloadResult Gateway::reload() {
  systemd::notify_reloading();
  config::Config next;
  try {
    next = config::load_config(config_.source);
  } catch (const config::ConfigLoadError& e) {
    ++gateway_metrics_.reloads_failed;
    std::string errors;
    for (const auto& error : e.errors()) {
      PGNAP_LOG(kError, "reload", error.to_string());
      errors += "\n" + error.to_string();
    }
    const std::string message = config_.source + " has " + std::to_string(e.errors().size()) +
                                " error(s): keeping the running configuration";
    PGNAP_LOG(kError, "reload", message);
    systemd::notify("READY=1\nSTATUS=reload failed: keeping the running configuration");
    return {false, message + errors};
  }

  const auto changes = config::diff_config(config_, next);
  const config::Config merged = config::merge_live(config_, next);
  std::size_t applied = 0;
  std::string restart;  // the keys that need a restart, for the control socket's answer
  for (const auto& change : changes) {
    if (change.needs_restart) {
      PGNAP_LOG(kWarning, "reload", change.key << " " << change.what << ": needs a restart (the running value stays)");
      restart += (restart.empty() ? "" : ", ") + change.key;
    } else {
      PGNAP_LOG(kInfo, "reload", change.key << " " << change.what);
      ++applied;
    }
  }

  // [gateway]: sessions read it through env_.gateway, so assigning applies it to new work.
  log::Level level = log::Level::kInfo;
  if (log::parse_level(merged.gateway.log_level, level)) log::set_level(level);
  // Certificates are re-read on every reload, changed paths or not: renewals (certbot, an
  // ACME client) replace the files in place.
  if (merged.gateway.tls.mode != "disable" || !(merged.gateway.tls == config_.gateway.tls)) {
    std::string error;
    if (tls_.reload(merged.gateway.tls, error)) {
      PGNAP_LOG(kInfo, "reload", "TLS: " << (tls_.mode() == "disable" ? "disabled" : "certificate loaded"));
    } else {
      PGNAP_LOG(kError, "reload", "TLS: " << error << "; keeping the previous certificate");
    }
  }
  if (!(merged.gateway.listen == config_.gateway.listen)) apply_listeners(merged.gateway.listen);
  if (merged.gateway.ledger_heartbeat != config_.gateway.ledger_heartbeat) {
    recorder_->set_heartbeat(merged.gateway.ledger_heartbeat);
  }
  if (merged.metrics.listen != config_.metrics.listen) {
    if (metrics_endpoint_) metrics_endpoint_->stop();
    metrics_endpoint_.reset();
    if (!merged.metrics.listen.empty()) {
      try {
        metrics_endpoint_ = std::make_unique<MetricsEndpoint>(io_, merged.metrics.listen,
                                                              [this] { return render_metrics(); });
        metrics_endpoint_->start();
        PGNAP_LOG(kInfo, "gateway", "metrics on http://" << metrics_endpoint_->name() << "/metrics");
      } catch (const std::exception& e) {
        PGNAP_LOG(kError, "reload", "cannot serve metrics on " << merged.metrics.listen << ": " << e.what());
      }
    }
  }
  // The ledger keeps its file: a new path needs a restart (merge_live kept the old one).
  const std::string source = config_.source;
  config_.gateway = merged.gateway;
  config_.metrics = merged.metrics;
  apply_instances(merged);
  config_.instances = merged.instances;
  config_.text = merged.text;
  config_.source = source;
  ledger_->record_running_config(config_key(config_.source), next.text, true);
  ++gateway_metrics_.reloads_ok;
  std::string message = "configuration reloaded: " + std::to_string(applied) + " change(s) applied";
  PGNAP_LOG(kInfo, "reload", message);
  systemd::notify("READY=1\nSTATUS=accepting connections");
  if (!restart.empty()) message += "; needs a restart (the running value stays): " + restart;
  return {true, message};
}

void Gateway::apply_listeners(const std::vector<config::ListenAddress>& next) {
  if (socket_activated_) {
    PGNAP_LOG(kWarning, "reload",
              "[gateway] listen changed, but the listening sockets come from systemd "
              "(socket activation): change pgnap.socket instead");
    return;
  }
  // Close what is no longer listed...
  for (auto& l : listeners_) {
    if (l->closed || std::find(next.begin(), next.end(), l->address) != next.end()) continue;
    boost::system::error_code ec;
    l->closed = true;
    l->acceptor.close(ec);
    if (!l->unlink_path.empty()) ::unlink(l->unlink_path.c_str());
    PGNAP_LOG(kInfo, "gateway", "stopped listening on " << l->name);
  }
  // ...and open what is new. One that cannot be opened is logged; the others still apply.
  for (const auto& address : next) {
    const bool open = std::any_of(listeners_.begin(), listeners_.end(),
                                  [&](const auto& l) { return !l->closed && l->address == address; });
    if (open) continue;
    try {
      listeners_.push_back(open_listener(address));
      start_listener(*listeners_.back());
    } catch (const std::exception& e) {
      PGNAP_LOG(kError, "reload", "cannot listen on " << address.to_string() << ": " << e.what());
    }
  }
}

void Gateway::apply_instances(const config::Config& next) {
  const auto lifetime = accounting::read_lifetime_totals(config_.gateway.ledger);
  const auto reported = accounting::read_reported_counters(config_.gateway.ledger);
  auto find_config = [&](const std::string& name) -> const config::InstanceConfig* {
    for (const auto& ic : next.instances) {
      if (ic.name == name) return &ic;
    }
    return nullptr;
  };
  // Removed: no new clients; sessions in progress finish, and the instance keeps suspending
  // as before. It is never stopped because it was removed.
  for (const auto& instance : instances_) {
    const bool retired = std::find(retired_.begin(), retired_.end(), instance.get()) != retired_.end();
    if (retired) continue;
    if (const config::InstanceConfig* ic = find_config(instance->name())) {
      instance->reconfigure(*ic);
      auths_.at(instance.get())->configure(instance->config().auth);
    } else {
      retired_.push_back(instance.get());
      PGNAP_LOG(kInfo, "instance=" << instance->name(), "removed from the configuration: no new clients");
    }
  }
  // Added: built, adopted, then routed. A name removed by an earlier reload comes back as
  // the same instance (its state, counters and sessions are still there).
  for (const auto& ic : next.instances) {
    const auto same_name = std::find_if(instances_.begin(), instances_.end(),
                                        [&](const auto& i) { return i->name() == ic.name; });
    if (same_name != instances_.end()) {
      const auto retired = std::find(retired_.begin(), retired_.end(), same_name->get());
      if (retired != retired_.end()) {
        retired_.erase(retired);
        (*same_name)->reconfigure(ic);
        auths_.at(same_name->get())->configure((*same_name)->config().auth);
        PGNAP_LOG(kInfo, "instance=" << ic.name, "back in the configuration");
      }
      continue;
    }
    try {
      instances_.push_back(make_instance(ic, lifetime, reported));
      asio::co_spawn(io_, instances_.back()->adopt(), asio::detached);
      PGNAP_LOG(kInfo, "instance=" << ic.name, "added by a reload");
    } catch (const std::exception& e) {
      PGNAP_LOG(kError, "reload", "cannot add instance \"" << ic.name << "\": " << e.what());
    }
  }
  rebuild_router();
}

}  // namespace pgnap::daemon

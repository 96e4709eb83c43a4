#include "metrics/exposition.h"

#include <cstdio>
#include <limits>
#include <sstream>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace pgnap::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Every family pgnap exports: name, type, help. Names follow Prometheus conventions (base
// units, _total counters). `db_instance`, not `instance`: Prometheus owns `instance` (the
// scrape target) and would rename ours to `exported_instance`.
struct FamilySpec {
  const char* name;
  MetricType type;
  const char* help;
};
enum Family : std::size_t {
  kBuildInfo,
  kConnections,
  kGatewayErrors,
  kCancelRequests,
  kLedgerWriteErrors,
  kLedgerPendingWrites,
  kLimitHits,
  kTlsHandshakeFailures,
  kReloads,
  kRelayInfo,
  kKernelRelayEntries,
  kKernelRelayHandbacks,
  kKernelRelaySessions,
  kKernelRelayRefused,
  kState,
  kWakes,
  kSuspends,
  kUnexpectedStops,
  kWakesIgnored,
  kIdleSessionsClosed,
  kWakeDuration,
  kAsleepSeconds,
  kAwakeSeconds,
  kEnergySaved,
  kCarbonSaved,
  kCostSaved,
  kEmbodiedSaved,
  kSavingsBasis,
  kMeasuredIdleCpu,
  kMeasuredIdleMemory,
  kMeasuredCpuAvoided,
  kMeasuredMemoryFreed,
  kMeasuredEnergySaved,
  kMeasuredCarbonSaved,
  kSessions,
  kSessionsTotal,
  kWaiting,
  kClientWait,
  kClientErrors,
  kRelayBytes,
  kAccountingInfo,
  kAuthentications,
  kWakeCauses,
  kQueuedMessages,
  kQueuedBytes,
  kQueuedCancelled,
  kServerConnections,
  kServerLoginsSaved,
  kPoolWaits,
  kParkedSessions,
  kSessionParks,
  kSessionResumes,
  kRestoreFailures,
  kParksRefused,
  kFamilyCount,
};
constexpr FamilySpec kFamilies[kFamilyCount] = {
    {"pgnap_build_info", MetricType::Gauge, "pgnap's version and git revision, as labels; always 1."},
    {"pgnap_connections_total", MetricType::Counter, "Client connections accepted."},
    {"pgnap_gateway_errors_total", MetricType::Counter,
     "Errors sent to clients before they reached an instance, by SQLSTATE (08P01 bad startup packet or login "
     "timeout, 28000 TLS required, 3D000 database not served, 53300 max_clients)."},
    {"pgnap_cancel_requests_total", MetricType::Counter,
     "Cancel requests, by outcome: forwarded to the server serving the key's session, queued (the query was still "
     "queued while its instance woke: answered by pgnap with 57014), or unmatched."},
    {"pgnap_ledger_write_errors_total", MetricType::Counter,
     "Ledger writes that failed, each counted once (kept in memory and written when the file accepts them again)."},
    {"pgnap_ledger_pending_writes", MetricType::Gauge,
     "Ledger writes kept in memory because the file refused them (a full disk), waiting to be written."},
    {"pgnap_limit_hits_total", MetricType::Counter,
     "Clients turned away or sessions ended by a limit: max_clients, login_timeout, max_message_size, "
     "connect_timeout (to an instance), max_waiting, queue_limit, queue_limit_total, pool_size (a client waited "
     "for a full pool), pool_wait_timeout (and was then refused)."},
    {"pgnap_tls_handshake_failures_total", MetricType::Counter, "Client TLS handshakes that failed."},
    {"pgnap_config_reloads_total", MetricType::Counter, "Configuration reloads (SIGHUP), by outcome."},
    {"pgnap_relay_info", MetricType::Gauge,
     "The relay in use, as a label: kernel (plaintext TCP sessions at rest move into the kernel) or user; "
     "always 1."},
    {"pgnap_kernel_relay_entries_total", MetricType::Counter,
     "Times a session's bytes went into the kernel relay (at rest, after a query's answer)."},
    {"pgnap_kernel_relay_handbacks_total", MetricType::Counter,
     "Times a session's bytes came back from the kernel relay to user space (a message pgnap handles, a park, "
     "an idle close, the shutdown, a closed connection)."},
    {"pgnap_kernel_relay_sessions", MetricType::Gauge, "Sessions whose bytes are in the kernel relay now."},
    {"pgnap_kernel_relay_refused_sockets_total", MetricType::Counter,
     "Sockets the kernel relay's sockmap refused; their sessions are relayed in user space."},
    {"pgnap_instance_state", MetricType::Gauge, "1 for the instance's current lifecycle state, 0 for the others."},
    {"pgnap_instance_wakes_total", MetricType::Counter, "Wakes that finished, by outcome (ok, failed, timeout)."},
    {"pgnap_instance_suspends_total", MetricType::Counter,
     "Clean stops by pgnap, by reason (idle: idle_timeout; exit: suspend_on_exit)."},
    {"pgnap_instance_unexpected_stops_total", MetricType::Counter,
     "Times the instance was found down without pgnap having stopped it."},
    {"pgnap_wakes_ignored_total", MetricType::Counter,
     "Clients refused with 57P03 while the instance slept because a wake rule ignores them."},
    {"pgnap_idle_sessions_closed_total", MetricType::Counter,
     "Sessions pgnap closed because they were idle (idle_session_timeout) when the instance suspended."},
    {"pgnap_instance_wake_duration_seconds", MetricType::Histogram,
     "Time from a wake's start to the instance accepting connections (successful wakes)."},
    {"pgnap_instance_asleep_seconds_total", MetricType::Counter,
     "Seconds asleep over the ledger's lifetime, advancing while asleep."},
    {"pgnap_instance_awake_seconds_total", MetricType::Counter,
     "Seconds waking, awake or suspending over the ledger's lifetime, advancing while awake."},
    {"pgnap_energy_saved_joules_total", MetricType::Counter,
     "Net energy saved by sleeping (docs/accounting.md), over the ledger's lifetime; held while a wake's cost "
     "is made good."},
    {"pgnap_carbon_saved_grams_total", MetricType::Counter,
     "Net operational carbon saved, gCO2e (energy saved x grid intensity), over the ledger's lifetime."},
    {"pgnap_cost_saved_total", MetricType::Counter,
     "Net money saved (hours asleep x price - starts x minimum billed time), in the labelled currency."},
    {"pgnap_embodied_carbon_saved_grams_total", MetricType::Counter,
     "Embodied carbon attributed to the hours asleep, gCO2e (0 unless embodied_g_per_hour is set)."},
    {"pgnap_savings_basis", MetricType::Gauge,
     "1 for the basis pgnap report's headline uses for the instance now: measured (an idle-awake rate was "
     "measured) or model (the configured coefficients)."},
    {"pgnap_measured_idle_cpu_utilisation", MetricType::Gauge,
     "vCPUs the instance's own processes used while awake and idle (CPU-seconds per second), measured over the "
     "last 30 days; absent until measured."},
    {"pgnap_measured_idle_memory_bytes", MetricType::Gauge,
     "Memory the instance's own processes held while awake and idle (PSS or the cgroup's memory.current), "
     "measured over the last 30 days; absent until measured."},
    {"pgnap_measured_cpu_seconds_avoided_total", MetricType::Counter,
     "CPU time the instance did not use while asleep: the measured idle rate x seconds asleep (ledger lifetime)."},
    {"pgnap_measured_memory_freed_byte_seconds_total", MetricType::Counter,
     "Memory freed while asleep, bytes x seconds: the measured idle memory x seconds asleep (3.6e12 per GB-hour)."},
    {"pgnap_measured_energy_saved_joules_total", MetricType::Counter,
     "Energy saved on the measured basis: CPU at utilisation x (max - min) W per vCPU plus memory x W/GB, times "
     "PUE, over the hours asleep, net of starts."},
    {"pgnap_measured_carbon_saved_grams_total", MetricType::Counter,
     "Carbon saved on the measured basis, gCO2e (measured energy x grid intensity)."},
    {"pgnap_client_sessions", MetricType::Gauge, "Client sessions relayed to the instance now."},
    {"pgnap_client_sessions_total", MetricType::Counter, "Client sessions relayed to the instance."},
    {"pgnap_waiting_clients", MetricType::Gauge, "Clients waiting for the instance to wake now."},
    {"pgnap_client_wait_seconds", MetricType::Histogram,
     "How long clients waited for a wake before they were served "
     "or refused."},
    {"pgnap_client_errors_total", MetricType::Counter, "Errors pgnap sent to clients of the instance, by SQLSTATE."},
    {"pgnap_relay_bytes_total", MetricType::Counter, "Bytes relayed, by direction."},
    {"pgnap_accounting_info", MetricType::Gauge,
     "The coefficients the savings use, as labels (watts, PUE, gCO2e/kWh, price per hour); always 1."},
    {"pgnap_authentications_total", MetricType::Counter,
     "Logins pgnap answered itself (auth.mode = gateway), by method and outcome (ok, wrong_password, "
     "protocol_error, gone, timeout)."},
    {"pgnap_instance_wake_causes_total", MetricType::Counter,
     "Wakes started, by what needed the server: connect (a relayed connection), query (a first query of an "
     "authenticated session), login (a user to look up, a first login), adoption."},
    {"pgnap_queued_messages_total", MetricType::Counter,
     "Client messages queued while no server was attached (auth.mode = gateway)."},
    {"pgnap_queued_bytes", MetricType::Gauge, "Bytes of client messages queued now, waiting for a server."},
    {"pgnap_queued_queries_cancelled_total", MetricType::Counter,
     "Queued queries a cancel request ended before they reached a server (answered with 57014)."},
    {"pgnap_server_connections", MetricType::Gauge,
     "Server connections of the session pool now, by state: active (lent to a session), idle (in the pool)."},
    {"pgnap_server_logins_saved_total", MetricType::Counter,
     "Client sessions served by a pooled server connection, with no login to PostgreSQL."},
    {"pgnap_pool_waits_total", MetricType::Counter, "Clients that waited for room in a full pool (pool_size)."},
    {"pgnap_parked_sessions", MetricType::Gauge,
     "Sessions parked now: the client connected, its state kept, no server connection (auth.mode = gateway)."},
    {"pgnap_session_parks_total", MetricType::Counter,
     "Idle sessions parked (their server connection detached, the client kept)."},
    {"pgnap_session_resumes_total", MetricType::Counter,
     "Parked sessions given a server connection again, their state restored."},
    {"pgnap_session_restore_failures_total", MetricType::Counter,
     "Parked sessions whose state could not be restored (the client got a FATAL naming what)."},
    {"pgnap_session_parks_refused_total", MetricType::Counter,
     "Idle sessions not parked, by what they held that cannot be restored (temporary tables, advisory locks, "
     "open cursors, listened channels, a multi-statement PREPARE, a PREPARE with standard_conforming_strings off; "
     "capture failed)."},
};

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

ClientMetric gauge(Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

ClientMetric counter(Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

ClientMetric histogram(Labels labels, const DurationHistogram& h) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
    cumulative += h.buckets[i];
    m.histogram.bucket.push_back({cumulative, kDurationBuckets[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  return m;
}

}  // namespace

std::string render_exposition(const std::vector<const InstanceMetrics*>& instances, const GatewayMetrics& gateway,
                              const BuildInfo& build, InstanceMetrics::Clock::time_point now) {
  std::vector<MetricFamily> families(kFamilyCount);
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    families[f].name = kFamilies[f].name;
    families[f].help = kFamilies[f].help;
    families[f].type = kFamilies[f].type;
  }
  auto add = [&](Family f, ClientMetric m) { families[f].metric.push_back(std::move(m)); };

  add(kBuildInfo, gauge({{"version", std::string(build.version)}, {"revision", std::string(build.revision)}}, 1));
  add(kConnections, counter({}, static_cast<double>(gateway.connections_total)));
  for (const auto& [code, n] : gateway.errors)
    add(kGatewayErrors, counter({{"sqlstate", code}}, static_cast<double>(n)));
  add(kCancelRequests, counter({{"outcome", "forwarded"}}, static_cast<double>(gateway.cancels_forwarded)));
  add(kCancelRequests, counter({{"outcome", "unmatched"}}, static_cast<double>(gateway.cancels_unmatched)));
  add(kCancelRequests, counter({{"outcome", "queued"}}, static_cast<double>(gateway.cancels_queued)));
  add(kLedgerWriteErrors, counter({}, static_cast<double>(gateway.ledger_write_errors)));
  add(kLedgerPendingWrites, gauge({}, static_cast<double>(gateway.ledger_pending_writes)));
  for (const auto& [limit, n] : gateway.limit_hits)
    add(kLimitHits, counter({{"limit", limit}}, static_cast<double>(n)));
  add(kTlsHandshakeFailures, counter({}, static_cast<double>(gateway.tls_handshake_failures)));
  add(kReloads, counter({{"outcome", "ok"}}, static_cast<double>(gateway.reloads_ok)));
  add(kReloads, counter({{"outcome", "failed"}}, static_cast<double>(gateway.reloads_failed)));
  add(kRelayInfo, gauge({{"relay", gateway.relay.relay}}, 1));
  add(kKernelRelayEntries, counter({}, static_cast<double>(gateway.relay.kernel_entries)));
  add(kKernelRelayHandbacks, counter({}, static_cast<double>(gateway.relay.kernel_handbacks)));
  add(kKernelRelaySessions, gauge({}, static_cast<double>(gateway.relay.kernel_sessions)));
  add(kKernelRelayRefused, counter({}, static_cast<double>(gateway.relay.kernel_refused)));

  for (const InstanceMetrics* im : instances) {
    const std::string& name = im->name();
    auto labels = [&](std::initializer_list<ClientMetric::Label> more = {}) {
      Labels l{{"db_instance", name}};
      l.insert(l.end(), more.begin(), more.end());
      return l;
    };
    for (auto state : kStates) {
      add(kState, gauge(labels({{"state", std::string(state)}}), im->state() == state ? 1 : 0));
    }
    for (auto outcome : kWakeOutcomes) {
      add(kWakes, counter(labels({{"outcome", std::string(outcome)}}), static_cast<double>(im->wakes(outcome))));
    }
    for (auto reason : kSuspendReasons) {
      add(kSuspends, counter(labels({{"reason", std::string(reason)}}), static_cast<double>(im->suspends(reason))));
    }
    add(kUnexpectedStops, counter(labels(), static_cast<double>(im->unexpected_stops())));
    add(kWakesIgnored, counter(labels(), static_cast<double>(im->wakes_ignored())));
    add(kIdleSessionsClosed, counter(labels(), static_cast<double>(im->idle_sessions_closed())));
    add(kWakeDuration, histogram(labels(), im->wake_duration()));

    const ReportedCounters held = im->counters(now);
    add(kAsleepSeconds, counter(labels(), held.asleep_seconds));
    add(kAwakeSeconds, counter(labels(), held.awake_seconds));
    const Accounting& a = im->accounting();
    add(kEnergySaved, counter(labels(), held.energy_kwh * 3.6e6));
    add(kCarbonSaved, counter(labels(), held.carbon_g));
    add(kCostSaved, counter(labels({{"currency", a.currency}}), held.cost));
    add(kEmbodiedSaved, counter(labels(), held.embodied_g));
    const auto rates = im->measured_rates();
    add(kSavingsBasis, gauge(labels({{"basis", "measured"}}), rates ? 1 : 0));
    add(kSavingsBasis, gauge(labels({{"basis", "model"}}), rates ? 0 : 1));
    if (rates) {
      add(kMeasuredIdleCpu, gauge(labels(), rates->cpu_utilisation));
      add(kMeasuredIdleMemory, gauge(labels(), rates->memory_gb * 1e9));
      add(kMeasuredCpuAvoided, counter(labels(), held.measured_cpu_seconds));
      add(kMeasuredMemoryFreed, counter(labels(), held.measured_memory_gb_hours * 3.6e12));
      add(kMeasuredEnergySaved, counter(labels(), held.measured_energy_kwh * 3.6e6));
      add(kMeasuredCarbonSaved, counter(labels(), held.measured_carbon_g));
    }

    add(kSessions, gauge(labels(), static_cast<double>(im->sessions())));
    add(kSessionsTotal, counter(labels(), static_cast<double>(im->sessions_total())));
    add(kWaiting, gauge(labels(), static_cast<double>(im->waiting())));
    add(kClientWait, histogram(labels(), im->client_wait()));
    for (const auto& [code, n] : im->client_errors()) {
      add(kClientErrors, counter(labels({{"sqlstate", code}}), static_cast<double>(n)));
    }
    add(kRelayBytes,
        counter(labels({{"direction", "client_to_server"}}), static_cast<double>(im->bytes_client_to_server)));
    add(kRelayBytes,
        counter(labels({{"direction", "server_to_client"}}), static_cast<double>(im->bytes_server_to_client)));

    for (const auto& [key, n] : im->authentications()) {
      add(kAuthentications, counter(labels({{"method", key.first}, {"outcome", key.second}}), static_cast<double>(n)));
    }
    for (const auto& [cause, n] : im->wake_causes()) {
      add(kWakeCauses, counter(labels({{"cause", cause}}), static_cast<double>(n)));
    }
    add(kQueuedMessages, counter(labels(), static_cast<double>(im->queued_messages)));
    add(kQueuedBytes, gauge(labels(), static_cast<double>(im->queued_bytes)));
    add(kQueuedCancelled, counter(labels(), static_cast<double>(im->queued_cancelled)));
    add(kServerConnections, gauge(labels({{"state", "active"}}), static_cast<double>(im->server_connections_active)));
    add(kServerConnections, gauge(labels({{"state", "idle"}}), static_cast<double>(im->server_connections_idle)));
    add(kServerLoginsSaved, counter(labels(), static_cast<double>(im->server_logins_saved)));
    add(kPoolWaits, counter(labels(), static_cast<double>(im->pool_waits)));
    add(kParkedSessions, gauge(labels(), static_cast<double>(im->parked_sessions)));
    add(kSessionParks, counter(labels(), static_cast<double>(im->session_parks)));
    add(kSessionResumes, counter(labels(), static_cast<double>(im->session_resumes)));
    add(kRestoreFailures, counter(labels(), static_cast<double>(im->session_restore_failures)));
    for (const auto& [reason, n] : im->parks_refused) {
      add(kParksRefused, counter(labels({{"reason", reason}}), static_cast<double>(n)));
    }

    const Power p = power_of(a);
    add(kAccountingInfo, gauge(labels({{"grid_source", a.grid_source},
                                       {"grid_year", std::to_string(a.grid_year)},
                                       {"grid_intensity", number(a.grid_intensity)},
                                       {"currency", a.currency},
                                       {"pue", number(a.pue)},
                                       {"idle_watts", number(p.idle_watts)},
                                       {"busy_watts", number(p.busy_watts)},
                                       {"price_per_hour", number(a.price_per_hour)}}),
                               1));
  }

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace pgnap::metrics

// One client connection, from accept to close (docs/architecture.md, "The life of a
// connection"), as a sequence of named steps, each another file's job:
//
//   read the startup (startup_reader) → route (router) → admit, waiting for the shared wake
//   if need be (instance), and connect (server_connection) → forward the startup → relay
//   (relay) → release the lease.
//
// This file strings them together and turns every failure into the ErrorResponse the
// client sees.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.h"
#include "daemon/cancel_registry.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "daemon/router.h"
#include "daemon/tls.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

class KernelRelay;

class Instance;
class InstanceAuth;
class ServerPool;
struct Refusal;

// What sessions share, owned by the gateway.
struct SessionEnv {
  const config::GatewayConfig* gateway = nullptr;  // the running configuration (a reload updates it in place)
  Router* router = nullptr;
  CancelRegistry* cancels = nullptr;
  metrics::GatewayMetrics* metrics = nullptr;
  const TlsServer* tls = nullptr;              // clients' TLS
  std::shared_ptr<ssl::context> instance_tls;  // TLS to instances
  // Refusals before a client reaches an instance are logged within this budget.
  static constexpr std::size_t kRefusalLinesPerSecond = 20;
  log::LineBudget refusal_log{kRefusalLinesPerSecond};
  // The authenticating mode's state of an instance (nullptr in the transparent mode).
  std::function<InstanceAuth*(const Instance&)> auth_of;
  // Its server connection pool (the authenticating mode's sessions attach through it).
  std::function<ServerPool*(const Instance&)> pool_of;
  // Bytes every session has queued while its instance wakes ([gateway] queue_limit_total).
  std::uint64_t queued_bytes = 0;
  // Sessions of the authenticating mode while no server is attached: on SIGTERM nothing of
  // theirs is in flight, so the drain ends them at once (their event timers are cancelled).
  bool draining = false;
  std::list<asio::steady_timer*> unattached_sessions;
  // The kernel relay ([gateway] relay), nullptr when sessions are relayed in user space only.
  KernelRelay* kernel = nullptr;
  // The largest message a client may send after its startup ([gateway] max_message_size).
  [[nodiscard]] std::uint32_t max_client_message() const {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(gateway->max_message_size, 0xffffffffu));
  }
};

// Runs the session to its end. Cancelling it (gateway shutdown) ends it with 57P01 when the
// client's stream is between messages, or by closing otherwise.
asio::awaitable<void> run_session(SessionEnv& env, Socket client, std::uint64_t id);

// Completes when the client closes its connection while it waits (for a wake, a lookup).
// Data from the client ends the watch, not the wait.
asio::awaitable<void> client_gone(Socket& client);

// Counts and logs a refusal of a client that reached an instance.
void count_refusal(SessionEnv& env, Instance& instance, const std::string& context, const Refusal& refusal);

// A refusal any client can cause at will: logged within the session budget, so a flood of
// bad connections does not flood the journal (the metrics count every one).
void log_refusal(SessionEnv& env, const std::string& context, const std::string& text);

}  // namespace pgnap::daemon

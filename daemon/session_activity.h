// What a session's traffic says about its use. The relay keeps it as bytes pass (plain
// fields, no call into the instance per message); the instance reads it when its idle timer
// decides whether the sessions left are used or only open, as an application's connection
// pool keeps them all day (docs/pooled-apps.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace pgnap::daemon {

// Who a client is, as far as the wake rules, the ledger and `pgnap status` care.
struct ClientIdentity {
  std::string user;
  std::string database;
  std::string application_name;
  std::string address;  // "127.0.0.1:50312", "[::1]:50312", or "unix" for a Unix socket
  // The client's IP address without its port ("" for a Unix socket), for CIDR rules.
  [[nodiscard]] std::string ip() const;
};

struct SessionActivity {
  std::chrono::steady_clock::time_point last_traffic{};  // the last bytes read, either way
  // PostgreSQL's last ReadyForQuery said 'I' (not in a transaction) and everything the
  // client sent since has been answered: no query, COPY or extended-protocol batch in flight.
  bool at_rest = false;
  bool busy = false;              // a query, COPY or extended-protocol batch in flight (not only "in a transaction")
  char transaction_status = 'I';  // of the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' a failed one
  bool listening = false;  // a LISTEN completed, or a notification arrived
  bool ignored = false;    // a wake rule matches its client: it never keeps the instance awake
  // Brings the fields above up to date before the instance reads them, when the relay does not
  // see the traffic itself (its bytes are in the kernel relay); empty otherwise.
  std::function<void()> refresh;
  // Ends the session with pgnap's "terminating idle connection" FATAL, now.
  std::function<void()> close;
  // Parking (gateway-auth instances): `park` asks the session to detach its server connection
  // and keep its client (false: not possible right now). A park refused for what the session
  // holds (a temporary table, ...) records the session's last traffic then: it is not asked
  // again before newer traffic, and is closed like any other when the instance would sleep.
  std::function<bool()> park;
  std::chrono::steady_clock::time_point park_refused_at{};
  bool parking = false;  // asked to park, not yet detached: in use until it is

  // Whether the instance may ask this session to park (once it is at rest and idle long enough).
  [[nodiscard]] bool may_be_parked() const { return park && !listening && last_traffic > park_refused_at; }
};

// A session as its instance knows it for `pgnap status` (Instance::register_session).
struct SessionEntry {
  std::uint64_t id = 0;
  ClientIdentity client;
  std::chrono::steady_clock::time_point connected_at{};
  std::chrono::steady_clock::time_point last_seen{};  // its last message while not relayed
  const SessionActivity* activity = nullptr;          // while relayed
  bool waiting = false;                               // queued for a wake (its first query, in the authenticating mode)
  bool parked = false;
  bool ignored = false;  // a wake rule matches it: it never keeps the instance awake
};

}  // namespace pgnap::daemon

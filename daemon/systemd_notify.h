// What pgnap tells systemd (sd_notify) and takes from it (socket activation), through
// libsystemd. Every call is a no-op outside systemd.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

namespace pgnap::daemon::systemd {

// READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1, STATUS=...: a datagram to $NOTIFY_SOCKET.
void notify(std::string_view state);
// RELOADING=1 with MONOTONIC_USEC, as systemd 253's Type=notify-reload expects.
void notify_reloading();
// How often to send WATCHDOG=1 (half of WatchdogSec), when the unit sets it for us.
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval();
// Sockets passed by systemd (LISTEN_FDS, for this process): non-blocking, close-on-exec.
[[nodiscard]] std::vector<int> listen_fds();

}  // namespace pgnap::daemon::systemd

#include "daemon/systemd_notify.h"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace pgnap::daemon::systemd {

void notify(std::string_view state) {
  const std::string text(state);
  (void)sd_notify(0, text.c_str());
}

void notify_reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ull +
                    static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

std::vector<int> listen_fds() {
  std::vector<int> fds;
  // unset_environment = 1: children (pg_ctl, commands) must not think they were activated.
  const int n = sd_listen_fds(1);
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace pgnap::daemon::systemd

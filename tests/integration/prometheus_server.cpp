// A real Prometheus server for the integration tests (prometheus_server.h): the dashboard's
// PromQL is checked by the engine Grafana will send it to, not by a parser of our own.
#include "tests/integration/prometheus_server.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/harness.h"  // free_tcp_port
#include "tests/integration/harness_internal.h"

namespace pgnap::it {

using namespace internal;

namespace {

// Debian's package installs both tools in /usr/bin; PATH is the fallback elsewhere.
std::string installed_tool(const char* env, const char* path, const char* name) {
  if (const char* given = std::getenv(env); given != nullptr && *given != '\0') return given;
  if (::access(path, X_OK) == 0) return path;
  return name;
}

std::string seconds(Millis interval) { return std::to_string(std::max<long long>(1, interval.count() / 1000)) + "s"; }

}  // namespace

std::string prometheus_binary() { return installed_tool("PGNAP_IT_PROMETHEUS", "/usr/bin/prometheus", "prometheus"); }

std::string promtool_binary() { return installed_tool("PGNAP_IT_PROMTOOL", "/usr/bin/promtool", "promtool"); }

PrometheusServer::PrometheusServer(std::uint16_t target_port, Millis scrape_interval) : dir_(false) {
  // scrape_timeout may not exceed scrape_interval (Prometheus refuses the config otherwise).
  const std::string interval = seconds(scrape_interval);
  write_file(config_path(),
             "# written by pgnap's integration-test harness\n"
             "global:\n"
             "  scrape_interval: " +
                 interval +
                 "\n"
                 "  scrape_timeout: " +
                 interval +
                 "\n"
                 "  evaluation_interval: " +
                 interval +
                 "\n"
                 "scrape_configs:\n"
                 "  - job_name: pgnap\n"
                 "    static_configs:\n"
                 "      - targets: ['127.0.0.1:" +
                 std::to_string(target_port) + "']\n");

  // free_tcp_port() can lose a race with another process; Prometheus then exits at once
  // with "address already in use", and a second port is tried.
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_tcp_port();
    if (start(why)) return;
  }
  fail("prometheus did not start: " + why + "\nconfig " + config_path() + ":\n" + read_file(config_path()) +
       "\nprometheus log:\n" + tail_lines(log(), 40));
}

bool PrometheusServer::start(std::string& why) {
  const std::vector<std::string> argv{
      prometheus_binary(),
      "--config.file=" + config_path(),
      "--storage.tsdb.path=" + dir_.path() + "/data",
      "--storage.tsdb.retention.time=1d",
      "--web.listen-address=127.0.0.1:" + std::to_string(port_),
      // Debian's defaults point at /etc/prometheus; nothing of the host's is used.
      "--web.console.templates=" + dir_.path(),
      "--web.console.libraries=" + dir_.path(),
  };
  reaped_ = false;
  pid_ = spawn_logged(argv, log_path());

  // /-/ready answers 503 until the TSDB is open and the scrape manager runs, then 200.
  const bool ready = wait_until([&] { return !running() || http_get(port_, "/-/ready", 1s).status == 200; }, 30s, 50ms);
  if (ready && running()) return true;
  why = running() ? "/-/ready did not answer 200 within 30 s"
                  : "it exited with status " + std::to_string(decode_wait_status(status_));
  stop();
  return false;
}

PrometheusServer::~PrometheusServer() {
  if (test_failed()) print_section("prometheus log " + log_path() + " (tail)", tail_lines(log(), 40));
  stop();
}

bool PrometheusServer::running() {
  if (pid_ <= 0 || reaped_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

void PrometheusServer::stop() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  if (wait_until([&] { return !running(); }, 10s, 20ms)) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  (void)wait_until([&] { return !running(); }, 10s, 10ms);
}

std::string PrometheusServer::log() const { return read_file(log_path()); }

HttpResponse PrometheusServer::query(std::string_view promql) const {
  return http_get(port_, "/api/v1/query?query=" + url_encode(promql));
}

}  // namespace pgnap::it

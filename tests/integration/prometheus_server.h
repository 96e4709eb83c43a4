// A real Prometheus server for the integration tests (prometheus_server.cpp): the dashboard's
// PromQL is checked by the engine Grafana will send it to, not by a parser of our own. Like
// everything a test starts, it is private to the test (its own TempDir and port), so tests
// run in parallel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "tests/integration/http_client.h"  // HttpResponse
#include "tests/integration/process.h"      // Millis, TempDir

namespace pgnap::it {

// The Debian package `prometheus`'s tools: /usr/bin/prometheus and /usr/bin/promtool, else
// from PATH; $PGNAP_IT_PROMETHEUS and $PGNAP_IT_PROMTOOL override.
[[nodiscard]] std::string prometheus_binary();
[[nodiscard]] std::string promtool_binary();

// Prometheus as a child, scraping http://127.0.0.1:TARGET_PORT/metrics (job "pgnap") every
// `scrape_interval`, its TSDB in a TempDir, its web API on 127.0.0.1 at a port chosen at
// start. The constructor returns once /-/ready answers 200 (throws with the log if it does
// not within 30 s). The destructor stops it (SIGTERM, then SIGKILL); on a failed test it
// first prints the tail of its log.
class PrometheusServer {
 public:
  explicit PrometheusServer(std::uint16_t target_port, Millis scrape_interval = 1s);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string config_path() const { return dir_.path() + "/prometheus.yml"; }
  [[nodiscard]] std::string log_path() const { return dir_.path() + "/prometheus.log"; }
  [[nodiscard]] std::string log() const;
  // GET /api/v1/query?query=PROMQL, evaluated at the current time. The body is Prometheus's
  // JSON: {"status":"success","data":{"resultType":...,"result":[...]}} or
  // {"status":"error","errorType":...,"error":...} (with HTTP 400 or 422).
  [[nodiscard]] HttpResponse query(std::string_view promql) const;

 private:
  bool start(std::string& why);  // false (and stopped) if it exited or never became ready
  bool running();
  void stop();

  TempDir dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;  // raw waitpid status once reaped
  std::uint16_t port_ = 0;
};

}  // namespace pgnap::it

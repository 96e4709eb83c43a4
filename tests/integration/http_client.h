// HTTP for the integration tests (http_client.cpp), for /metrics and Prometheus's API: a
// minimal HTTP/1.1 client (loopback only, one request per connection, bounded by a deadline)
// and the little the tests need to read a Prometheus exposition and build a query string.
//
// A request that fails is not a setup failure but something a test checks: it comes back as
// a response with status 0 and the reason, for EXPECT/ASSERT.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tests/integration/process.h"  // Millis

namespace pgnap::it {

struct HttpResponse {
  int status = 0;       // 0 when no valid response arrived
  std::string headers;  // the raw header block
  std::string body;
  std::string error;  // why status is 0
};
// A plain HTTP/1.1 GET to 127.0.0.1:port (Connection: close), read to EOF, with a deadline.
[[nodiscard]] HttpResponse http_get(std::uint16_t port, const std::string& target, Millis timeout = 10s);
// The value of the line `series value` ("name{labels}" exactly as exposed) in a Prometheus
// exposition; -1 if absent.
[[nodiscard]] double metric_value(const std::string& exposition, const std::string& series);
// One scrape of pgnap's /metrics on `metrics_port`: metric_value(), or -2 if the scrape failed.
[[nodiscard]] double scrape_metric(std::uint16_t metrics_port, const std::string& series);
// Percent-encodes a query-string value.
[[nodiscard]] std::string url_encode(std::string_view text);

}  // namespace pgnap::it

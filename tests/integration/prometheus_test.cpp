// pgnap's /metrics as Prometheus and Grafana see it: the exposition passes `promtool check
// metrics`, and a real Prometheus server, scraping a real pgnap through a wake and a suspend,
// evaluates every PromQL expression of the shipped dashboard (docs/grafana/pgnap.json): each
// must parse and return data. The dashboard's own shape (what Grafana's import and file
// provisioning need) is checked without starting anything.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pgnap::it {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr std::uint32_t kCancelRequest = 80877102;  // PostgreSQL's CancelRequest code
// What every panel and target must name: the datasource variable, which UI import replaces
// with the chosen datasource and file provisioning resolves at view time.
constexpr const char* kDatasourceUid = "${DS_PROMETHEUS}";

// ---- The dashboard ------------------------------------------------------------------------------

std::string dashboard_path() { return source_dir() + "/docs/grafana/pgnap.json"; }

json::value load_dashboard() {
  const std::string text = read_file(dashboard_path());
  if (text.empty()) throw std::runtime_error("cannot read " + dashboard_path());
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw std::runtime_error(dashboard_path() + " is not valid JSON: " + ec.message());
  return v;
}

std::string str(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string str(const json::object& o, std::string_view key) { return str(o.if_contains(key)); }

// Every panel, rows' nested panels (a collapsed row keeps its panels inside it) included.
void collect_panels(const json::array& panels, std::vector<const json::object*>& out) {
  for (const auto& p : panels) {
    if (!p.is_object()) continue;
    out.push_back(&p.as_object());
    if (const auto* nested = p.as_object().if_contains("panels"); nested && nested->is_array()) {
      collect_panels(nested->as_array(), out);
    }
  }
}

std::vector<const json::object*> all_panels(const json::value& dashboard) {
  std::vector<const json::object*> out;
  if (const auto* panels = dashboard.as_object().if_contains("panels"); panels && panels->is_array()) {
    collect_panels(panels->as_array(), out);
  }
  return out;
}

std::vector<const json::object*> variables(const json::value& dashboard) {
  std::vector<const json::object*> out;
  const auto* templating = dashboard.as_object().if_contains("templating");
  if (templating == nullptr || !templating->is_object()) return out;
  const auto* list = templating->as_object().if_contains("list");
  if (list == nullptr || !list->is_array()) return out;
  for (const auto& v : list->as_array()) {
    if (v.is_object()) out.push_back(&v.as_object());
  }
  return out;
}

const json::object* variable(const json::value& dashboard, std::string_view name) {
  for (const auto* v : variables(dashboard)) {
    if (str(*v, "name") == name) return v;
  }
  return nullptr;
}

struct DashboardQuery {
  std::string where;  // "panel \"Wake duration\" target B", "variable db_instance"
  std::string expr;   // as written in the dashboard, Grafana variables and all
};

// Every PromQL expression Grafana would send: each panel target's `expr`, and the query of
// every query variable (a string, or an object with `query` in Grafana 10's editor format).
std::vector<DashboardQuery> dashboard_queries(const json::value& dashboard) {
  std::vector<DashboardQuery> out;
  for (const auto* panel : all_panels(dashboard)) {
    const auto* targets = panel->if_contains("targets");
    if (targets == nullptr || !targets->is_array()) continue;
    for (const auto& t : targets->as_array()) {
      if (!t.is_object()) continue;
      out.push_back({"panel \"" + str(*panel, "title") + "\" target " + str(t.as_object(), "refId"),
                     str(t.as_object(), "expr")});
    }
  }
  for (const auto* v : variables(dashboard)) {
    if (str(*v, "type") != "query") continue;
    const auto* q = v->if_contains("query");
    std::string expr = str(q);
    if (q != nullptr && q->is_object()) expr = str(q->as_object(), "query");
    out.push_back({"variable " + str(*v, "name"), expr});
  }
  return out;
}

// Grafana's variables as Grafana would fill them in for this test: the one instance, a range
// that covers the whole run, and a rate window of several 1 s scrapes.
std::string substitute(std::string expr) {
  static const std::vector<std::pair<std::string, std::string>> values{
      {"${db_instance}", "main"}, {"$db_instance", "main"}, {"${__rate_interval}", "15s"}, {"$__rate_interval", "15s"},
      {"${__range}", "5m"},       {"$__range", "5m"},       {"${__interval}", "5s"},       {"$__interval", "5s"},
  };
  for (const auto& [name, value] : values) {
    for (auto at = expr.find(name); at != std::string::npos; at = expr.find(name, at + value.size())) {
      expr.replace(at, name.size(), value);
    }
  }
  return expr;
}

// label_values(METRIC, LABEL) is Grafana's, not PromQL: what it needs is series of METRIC
// carrying LABEL, which `count by (LABEL) (METRIC)` returns.
std::optional<std::string> label_values_as_promql(const std::string& expr) {
  static const std::regex re(R"(^\s*label_values\(\s*(.+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$)");
  std::smatch m;
  if (!std::regex_match(expr, m, re)) return std::nullopt;
  return "count by (" + m[2].str() + ") (" + m[1].str() + ")";
}

// ---- Prometheus's answers -----------------------------------------------------------------------

struct Evaluation {
  bool ok = false;              // HTTP 200 and status "success"
  std::string error;            // Prometheus's errorType and error, or what went wrong on the way
  std::size_t series = 0;       // samples in the result (a scalar counts as one)
  std::string first;            // the first sample, "{labels} value", for the log
  std::optional<double> value;  // the first sample's value
};

Evaluation evaluate(const PrometheusServer& prom, const std::string& promql) {
  Evaluation e;
  const HttpResponse r = prom.query(promql);
  if (r.status == 0) {
    e.error = "no HTTP response from Prometheus: " + r.error;
    return e;
  }
  json::error_code ec;
  const json::value body = json::parse(r.body, ec);
  if (ec || !body.is_object()) {
    e.error = "HTTP " + std::to_string(r.status) + ", not JSON: " + r.body.substr(0, 300);
    return e;
  }
  const auto& o = body.as_object();
  if (str(o, "status") != "success") {
    e.error = "HTTP " + std::to_string(r.status) + ", " + str(o, "errorType") + ": " + str(o, "error");
    return e;
  }
  e.ok = true;
  const auto* data = o.if_contains("data");
  if (data == nullptr || !data->is_object()) return e;
  const std::string type = str(data->as_object(), "resultType");
  const auto* result = data->as_object().if_contains("result");
  if (result == nullptr || !result->is_array()) return e;
  const auto& rows = result->as_array();
  auto sample_value = [](const json::value& pair) -> std::optional<double> {
    if (!pair.is_array() || pair.as_array().size() != 2 || !pair.as_array()[1].is_string()) return std::nullopt;
    try {
      return std::stod(std::string(pair.as_array()[1].as_string()));
    } catch (const std::exception&) {
      return std::nullopt;  // "NaN" parses; anything else is not a number
    }
  };
  if (type == "scalar" || type == "string") {
    e.series = 1;
    e.value = sample_value(*result);
    e.first = json::serialize(*result);
    return e;
  }
  e.series = rows.size();
  if (!rows.empty() && rows[0].is_object()) {
    const auto& row = rows[0].as_object();
    const auto* metric = row.if_contains("metric");
    const auto* value = row.if_contains("value");
    e.first = (metric ? json::serialize(*metric) : "{}") + " " + (value ? json::serialize(*value) : "");
    if (value != nullptr) e.value = sample_value(*value);
  }
  return e;
}

// Polls `promql` until its first sample satisfies `good`.
bool wait_for_value(const PrometheusServer& prom, const std::string& promql, const std::function<bool(double)>& good,
                    Millis timeout, std::string& last) {
  return wait_until(
      [&] {
        const Evaluation e = evaluate(prom, promql);
        last = e.ok ? (e.series == 0 ? "no data" : e.first) : e.error;
        return e.ok && e.value && good(*e.value);
      },
      timeout, 250ms);
}

// ---- The dashboard's shape: what Grafana needs to import and provision it ------------------------

TEST(PrometheusDashboardTest, DeclaresItsDatasourceForImportAndForFileProvisioning) {
  const json::value dashboard = load_dashboard();
  const auto& d = dashboard.as_object();
  EXPECT_EQ(str(d, "title"), "pgnap");
  EXPECT_EQ(str(d, "uid"), "pgnap");

  // UI import: __inputs names the datasource the user picks; __requires the plugins.
  bool input_found = false;
  if (const auto* inputs = d.if_contains("__inputs"); inputs && inputs->is_array()) {
    for (const auto& i : inputs->as_array()) {
      input_found = input_found ||
                    (i.is_object() && str(i.as_object(), "name") == "DS_PROMETHEUS" &&
                     str(i.as_object(), "type") == "datasource" && str(i.as_object(), "pluginId") == "prometheus");
    }
  }
  EXPECT_TRUE(input_found) << "__inputs must declare DS_PROMETHEUS (type datasource, pluginId prometheus)";
  std::set<std::string> required;
  if (const auto* requires_ = d.if_contains("__requires"); requires_ && requires_->is_array()) {
    for (const auto& r : requires_->as_array()) {
      if (r.is_object()) required.insert(str(r.as_object(), "type") + ":" + str(r.as_object(), "id"));
    }
  }
  EXPECT_TRUE(required.contains("grafana:grafana"));
  EXPECT_TRUE(required.contains("datasource:prometheus"));

  // File provisioning ignores __inputs: ${DS_PROMETHEUS} must also be a datasource variable.
  const auto* ds = variable(dashboard, "DS_PROMETHEUS");
  ASSERT_NE(ds, nullptr) << "no templating variable DS_PROMETHEUS";
  EXPECT_EQ(str(*ds, "type"), "datasource");
  EXPECT_EQ(str(*ds, "query"), "prometheus");
  const auto* inst = variable(dashboard, "db_instance");
  ASSERT_NE(inst, nullptr) << "no templating variable db_instance";
  EXPECT_EQ(str(*inst, "type"), "query");
  EXPECT_TRUE(inst->contains("multi") && inst->at("multi").is_bool() && inst->at("multi").as_bool());
  EXPECT_TRUE(inst->contains("includeAll") && inst->at("includeAll").is_bool() && inst->at("includeAll").as_bool());
  EXPECT_EQ(str(inst->if_contains("datasource") ? inst->at("datasource").as_object().if_contains("uid") : nullptr),
            kDatasourceUid);

  // Every panel: a unique id, a place on the 24-column grid not shared with another panel, and
  // the datasource variable on the panel and on each of its targets.
  std::set<std::int64_t> ids;
  struct Box {
    std::string title;
    std::int64_t x, y, w, h;
  };
  std::vector<Box> boxes;
  for (const auto* panel : all_panels(dashboard)) {
    const std::string title = str(*panel, "title");
    const std::string type = str(*panel, "type");
    SCOPED_TRACE("panel \"" + title + "\"");
    ASSERT_TRUE(panel->contains("id") && panel->at("id").is_int64());
    EXPECT_TRUE(ids.insert(panel->at("id").as_int64()).second) << "duplicate panel id";
    ASSERT_TRUE(panel->contains("gridPos") && panel->at("gridPos").is_object());
    const auto& g = panel->at("gridPos").as_object();
    auto num = [&](const char* k) { return g.contains(k) && g.at(k).is_int64() ? g.at(k).as_int64() : -1; };
    const Box box{title, num("x"), num("y"), num("w"), num("h")};
    EXPECT_GE(box.x, 0);
    EXPECT_GE(box.y, 0);
    EXPECT_GE(box.w, 1);
    EXPECT_GE(box.h, 1);
    EXPECT_LE(box.x + box.w, 24);
    for (const auto& other : boxes) {
      const bool overlap = box.x < other.x + other.w && other.x < box.x + box.w && box.y < other.y + other.h &&
                           other.y < box.y + box.h;
      EXPECT_FALSE(overlap) << "overlaps panel \"" << other.title << "\"";
    }
    boxes.push_back(box);
    if (type == "row") continue;
    EXPECT_TRUE(required.contains("panel:" + type)) << "__requires lacks panel " << type;
    auto uid_of = [](const json::object& o) {
      const auto* ds_ = o.if_contains("datasource");
      if (ds_ == nullptr || !ds_->is_object()) return std::string("(none)");
      return str(ds_->as_object(), "type") + " " + str(ds_->as_object(), "uid");
    };
    EXPECT_EQ(uid_of(*panel), std::string("prometheus ") + kDatasourceUid);
    const auto* targets = panel->if_contains("targets");
    ASSERT_TRUE(targets && targets->is_array() && !targets->as_array().empty()) << "no targets";
    for (const auto& t : targets->as_array()) {
      ASSERT_TRUE(t.is_object());
      EXPECT_EQ(uid_of(t.as_object()), std::string("prometheus ") + kDatasourceUid);
      EXPECT_FALSE(str(t.as_object(), "expr").empty()) << "target " << str(t.as_object(), "refId");
    }
  }
  // Only the variables the evaluation test knows how to fill in.
  for (const auto& q : dashboard_queries(dashboard)) {
    EXPECT_EQ(substitute(q.expr).find('$'), std::string::npos)
        << q.where << " uses a variable the tests do not substitute: " << q.expr;
  }
}

// ---- Against a real Prometheus ------------------------------------------------------------------

GatewayOptions metrics_options(const Cluster& cluster) {
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  options.metrics_listen = "127.0.0.1:0";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";
  return options;
}

// One wake (with its client held while it runs), one session with a little traffic, one
// cancel request for no session, and the suspend for idleness that follows.
void drive_a_wake_and_a_suspend(Gateway& gateway) {
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const auto r = psql(gateway.conninfo(), "select repeat('x', 1000)");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto raw = RawClient::tcp(gateway.port());
  ASSERT_TRUE(raw.send(be32(16) + be32(kCancelRequest) + be32(12345) + be32(67890)));
  EXPECT_TRUE(raw.read_until_closed(10s).closed);
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
}

TEST(PrometheusTest, EveryDashboardExpressionParsesAndReturnsData) {
  const json::value dashboard = load_dashboard();
  const auto queries = dashboard_queries(dashboard);
  ASSERT_GE(queries.size(), 20u) << "the walk over " << dashboard_path() << " found too few queries";

  Cluster cluster;
  Gateway gateway(metrics_options(cluster), &cluster);
  ASSERT_NE(gateway.metrics_port(), 0) << gateway.log();
  PrometheusServer prom(gateway.metrics_port());

  std::string last;
  ASSERT_TRUE(wait_for_value(
      prom, R"(up{job="pgnap"})", [](double v) { return v == 1; }, 30s, last))
      << "Prometheus never scraped pgnap's /metrics successfully; last answer to up: " << last;

  drive_a_wake_and_a_suspend(gateway);
  if (HasFatalFailure()) return;

  // Prometheus has seen the whole cycle, and a few scrapes of the sleep after it (rates and
  // increases need two samples in their window).
  ASSERT_TRUE(wait_for_value(
      prom, R"(pgnap_instance_wakes_total{db_instance="main", outcome="ok"})", [](double v) { return v >= 1; }, 30s,
      last))
      << "pgnap_instance_wakes_total{outcome=\"ok\"} never reached 1 in Prometheus; last: " << last;
  ASSERT_TRUE(wait_for_value(
      prom, R"(pgnap_instance_suspends_total{db_instance="main", reason="idle"})", [](double v) { return v >= 1; }, 30s,
      last))
      << "no idle suspend in Prometheus; last: " << last;
  ASSERT_TRUE(wait_for_value(
      prom, R"(pgnap_instance_state{db_instance="main", state="asleep"})", [](double v) { return v == 1; }, 30s, last))
      << "Prometheus never saw the instance asleep again; last: " << last;
  ASSERT_TRUE(wait_for_value(
      prom, R"(increase(pgnap_instance_asleep_seconds_total{db_instance="main"}[15s]))", [](double v) { return v > 0; },
      30s, last))
      << "asleep seconds did not advance between scrapes; last: " << last;

  std::ostringstream report;
  std::vector<std::string> failures;
  for (const auto& q : queries) {
    std::string promql = substitute(q.expr);
    if (const auto lv = label_values_as_promql(promql)) promql = *lv;
    const Evaluation e = evaluate(prom, promql);
    const bool good = e.ok && e.series > 0;
    report << (good ? "[data] " : "[FAIL] ") << q.where << ": "
           << (!e.ok           ? e.error
               : e.series == 0 ? "no data"
                               : std::to_string(e.series) + " series, first " + e.first)
           << "\n";
    if (!e.ok) {
      failures.push_back(q.where + "\n    expression: " + promql + "\n    Prometheus: " + e.error);
    } else if (e.series == 0) {
      failures.push_back(q.where + "\n    expression: " + promql + "\n    parses, but returned no data");
    }
  }
  std::cout << "dashboard expressions evaluated by Prometheus:\n" << report.str();
  std::string all;
  for (const auto& f : failures) all += "  " + f + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << queries.size() << " dashboard expressions failed:\n"
                                << all;
}

TEST(PrometheusTest, MetricsPassPromtoolCheck) {
  Cluster cluster;
  Gateway gateway(metrics_options(cluster), &cluster);
  ASSERT_NE(gateway.metrics_port(), 0) << gateway.log();
  // After a full cycle every family has series with labels and histograms have observations.
  drive_a_wake_and_a_suspend(gateway);
  if (HasFatalFailure()) return;

  const HttpResponse r = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(r.status, 200) << r.error << r.headers;
  EXPECT_THAT(r.headers, HasSubstr("text/plain")) << r.headers;
  EXPECT_THAT(r.headers, HasSubstr("version=0.0.4")) << r.headers;
  ASSERT_THAT(r.body, HasSubstr("pgnap_instance_state")) << r.body;

  // promtool prints one line per problem (and exits non-zero); a clean exposition prints nothing.
  const auto check = run_command({promtool_binary(), "check", "metrics"}, 30s, r.body);
  EXPECT_EQ(check.exit_code, 0) << check.describe() << "\nexposition:\n" << r.body;
  EXPECT_EQ(check.out + check.err, "") << "promtool printed lint problems:\n"
                                       << check.out << check.err << "\nexposition:\n"
                                       << r.body;
}

// The value of NAME{db_instance="main",...} in an exposition (the first such series).
std::optional<double> exposed(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(name + "{") || line.find("db_instance=\"main\"") == std::string::npos) continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    try {
      return std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// "A restart doesn't reset them", as Prometheus sees it: any decrease of a counter, however
// small, is taken for a reset to 0, and increase()/rate() then count the whole new value
// again, so a range panel would show the instance's entire lifetime saved in one scrape.
// The riskiest moment is a restart right after a wake (the instance awake, the wake's cost
// not yet made good by sleep), which is when upgrades tend to happen.
TEST(PrometheusTest, LifetimeCountersNeverGoDownAcrossARestart) {
  Cluster cluster;
  TempDir keep(false);
  auto options = metrics_options(cluster);
  options.idle_timeout = "1m";  // stays awake through the restart
  options.ledger = keep.path() + "/ledger.db";
  const std::vector<std::string> names{"pgnap_instance_asleep_seconds_total", "pgnap_instance_awake_seconds_total",
                                       "pgnap_energy_saved_joules_total", "pgnap_carbon_saved_grams_total",
                                       "pgnap_cost_saved_total"};
  options.extra_toml = "[instances.main.accounting]\nprice_per_hour = 0.5\nwake_billed_minimum = \"1s\"\n";

  std::map<std::string, double> before;
  {
    Gateway gateway(options, &cluster);
    ASSERT_NE(gateway.metrics_port(), 0) << gateway.log();
    ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
    std::this_thread::sleep_for(2s);  // some sleep to have savings to lose
    // A scrape just before the wake: Prometheus has seen the savings at their highest.
    ASSERT_EQ(http_get(gateway.metrics_port(), "/metrics").status, 200);
    const auto r = psql(gateway.conninfo(), "select 1");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const HttpResponse m = http_get(gateway.metrics_port(), "/metrics");
    ASSERT_EQ(m.status, 200) << m.error;
    for (const auto& name : names) {
      const auto v = exposed(m.body, name);
      ASSERT_TRUE(v) << name << " missing from:\n" << m.body;
      before[name] = *v;
    }
    ASSERT_EQ(gateway.terminate(), 0) << gateway.log();
  }
  EXPECT_GT(before["pgnap_energy_saved_joules_total"], 0);

  Gateway again(options, &cluster);
  ASSERT_NE(again.metrics_port(), 0) << again.log();
  ASSERT_TRUE(again.wait_for_log("adopted awake", 10s)) << again.log();
  const HttpResponse m = http_get(again.metrics_port(), "/metrics");
  ASSERT_EQ(m.status, 200) << m.error;
  for (const auto& name : names) {
    const auto v = exposed(m.body, name);
    ASSERT_TRUE(v) << name << " missing after the restart:\n" << m.body;
    EXPECT_GE(*v, before[name]) << name << " went down across a clean restart: Prometheus takes that "
                                << "for a counter reset";
  }
}

}  // namespace
}  // namespace pgnap::it

// libFuzzer target for the config loader: parse_config() on arbitrary text must either return
// a Config that keeps every promise of the schema (bounds, routing, absolute paths, required
// backend tables), or throw ConfigLoadError whose every error names the file and says what is
// wrong. Anything else thrown, or a crash, is a bug. A loaded config must also describe
// itself (`pgnap check`), reload onto itself as a no-op, and print addresses and durations
// that load back to the same values.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

using namespace pgnap;

namespace {

constexpr std::string_view kSource = "fuzz.toml";
// Absolute, so the loader never asks the process for its working directory.
constexpr std::string_view kBaseDir = "/fuzz/etc";

// An invariant; a broken one names its line and aborts, which libFuzzer reports as a crash.
void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_config.cpp:%d: invariant broken\n", line);
  std::abort();
}

bool one_of(std::string_view value, std::initializer_list<std::string_view> choices) {
  return std::find(choices.begin(), choices.end(), value) != choices.end();
}

bool absolute(const std::string& path) { return std::filesystem::path(path).is_absolute(); }

// In [min, max], and printed by format_duration() as something parse_duration() reads back.
void check_duration(config::Duration d, config::Duration min, config::Duration max) {
  check(d >= min && d <= max);
  check(config::parse_duration(config::format_duration(d)) == d);
}

constexpr config::Duration kYear = std::chrono::hours(24 * 365);

void check_instance(const config::InstanceConfig& instance) {
  check(!instance.name.empty() && std::all_of(instance.name.begin(), instance.name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }));
  check(one_of(instance.backend, {"pg_ctl", "exec", "systemd"}));
  check(!instance.databases.empty());
  check(std::set<std::string>(instance.databases.begin(), instance.databases.end()).size() ==
        instance.databases.size());
  for (const std::string& database : instance.databases) check(!database.empty());
  if (instance.address.kind == config::BackendAddress::Kind::kTcp) {
    check(!instance.address.host.empty() && instance.address.port != 0);
  } else {
    check(absolute(instance.address.socket_dir) && instance.address.port != 0);
  }
  check_duration(instance.idle_timeout, config::Duration(1), kYear);
  check_duration(instance.min_awake, config::Duration(0), std::chrono::hours(24));
  check_duration(instance.wake_timeout, config::Duration(1), kYear);
  check_duration(instance.connect_timeout, config::Duration(1), kYear);
  check(instance.max_waiting <= 1'000'000);
  check(one_of(instance.effective_tls(), {"disable", "prefer", "require"}));
  check(instance.tls.empty() || instance.tls == instance.effective_tls());
  if (instance.backend == "pg_ctl") {
    check(absolute(instance.pg_ctl.data_dir) && absolute(instance.pg_ctl.log_file));
    check(instance.pg_ctl.bin_dir.empty() || absolute(instance.pg_ctl.bin_dir));
    check(!instance.pg_ctl.os_user.empty());
  }
  if (instance.backend == "exec") {
    const config::ExecConfig& exec = instance.exec;
    check(!exec.start.empty() && !exec.stop.empty());
    for (const auto* command : {&exec.start, &exec.stop, &exec.status}) {
      for (const std::string& word : *command) check(!word.empty());
    }
    for (const auto& [name, value] : exec.env) check(!name.empty() && name.find('=') == std::string::npos);
    check_duration(instance.exec_start_timeout(), config::Duration(1), kYear);
    check_duration(exec.stop_timeout, config::Duration(1), kYear);
    check_duration(exec.status_timeout, config::Duration(1), kYear);
  }
  if (instance.backend == "systemd") {
    // The driver's unit name: a suffix is added when there is none.
    check(instance.systemd.unit.find('.') != std::string::npos);
    check_duration(instance.systemd.stop_timeout, config::Duration(1), kYear);
  }
  const auto& a = instance.accounting;
  for (const double v : {a.vcpus, a.memory_gb, a.idle_watts_per_vcpu, a.busy_watts_per_vcpu, a.watts_per_gb,
                         a.residual_watts, a.pue, a.grid_intensity, a.price_per_hour, a.embodied_g_per_hour}) {
    check(std::isfinite(v) && v >= 0);
  }
  check(a.vcpus > 0 && a.pue >= 1);
  check(!a.power_watts || (std::isfinite(*a.power_watts) && *a.power_watts > 0));
  check(!a.busy_power_watts || (std::isfinite(*a.busy_power_watts) && *a.busy_power_watts > 0));
  check(a.currency.size() == 3 &&
        std::all_of(a.currency.begin(), a.currency.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  check(a.grid_year >= 1990 && a.grid_year <= 2100);
  check_duration(a.wake_billed_minimum, config::Duration(0), kYear);
}

void check_gateway(const config::GatewayConfig& gateway) {
  check(!gateway.listen.empty());
  std::set<std::string> listen;
  for (const config::ListenAddress& address : gateway.listen) {
    check(listen.insert(address.to_string()).second);
    if (address.kind == config::ListenAddress::Kind::kUnix) check(absolute(address.path) && address.port != 0);
  }
  check(gateway.max_clients >= 1 && gateway.max_clients <= 1'000'000);
  check(gateway.tcp_keepalive_count >= 1 && gateway.tcp_keepalive_count <= 127);
  check(gateway.max_message_size >= 1024 && gateway.max_message_size <= (1ull << 30));
  check(one_of(gateway.log_level, {"debug", "info", "warning", "error"}));
  check(absolute(gateway.ledger));
  check_duration(gateway.login_timeout, config::Duration(1), kYear);
  check_duration(gateway.ledger_heartbeat, config::Duration(1), kYear);
  check_duration(gateway.shutdown_timeout, config::Duration(0), kYear);
  check_duration(gateway.tcp_keepalive_idle, config::Duration(1), kYear);
  check_duration(gateway.tcp_keepalive_interval, config::Duration(1), kYear);
  check(one_of(gateway.tls.mode, {"disable", "allow", "require"}));
  if (gateway.tls.mode != "disable") check(!gateway.tls.cert.empty() && !gateway.tls.key.empty());
  for (const std::string* path : {&gateway.tls.cert, &gateway.tls.key, &gateway.tls.ca}) {
    check(path->empty() || absolute(*path));
  }
}

// A TOML basic string holding `s` (which came out of a TOML string, so it is valid UTF-8).
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The addresses as pgnap prints them (logs, `pgnap check`) must load back to the same.
void check_addresses_round_trip(const config::Config& config) {
  std::string text = "[gateway]\nlisten = [";
  for (const config::ListenAddress& address : config.gateway.listen) text += toml_string(address.to_string()) + ", ";
  text += "]\n[metrics]\nlisten = " + toml_string(config.metrics.listen) + "\n";
  for (const config::InstanceConfig& instance : config.instances) {
    text += "[instances." + instance.name +
            "]\nbackend = \"exec\"\naddress = " + toml_string(instance.address.to_string()) + "\ndatabases = [" +
            toml_string(instance.name) + "]\nexec = { start = [\"true\"], stop = [\"true\"] }\n";
  }
  config::Config again;
  try {
    again = config::parse_config(text, std::string(kSource), std::string(kBaseDir));
  } catch (const config::ConfigLoadError& e) {
    std::fprintf(stderr, "fuzz_config: printed addresses do not load back:\n%s\n%s\n", text.c_str(), e.what());
    std::abort();
  }
  check(again.gateway.listen == config.gateway.listen);
  check(again.metrics.listen == config.metrics.listen);
  check(again.instances.size() == config.instances.size());
  for (std::size_t i = 0; i < config.instances.size(); ++i) {
    check(again.instances[i].name == config.instances[i].name);
    check(again.instances[i].address == config.instances[i].address);
  }
}

void check_config(const config::Config& config, std::string_view text) {
  check(config.source == kSource && config.text == text);
  check_gateway(config.gateway);
  check(config.metrics.listen.empty() || config.metrics.listen.find(':') != std::string::npos);
  check(!config.instances.empty());
  std::set<std::string> names;
  std::set<std::string> routed;
  for (const config::InstanceConfig& instance : config.instances) {
    check_instance(instance);
    check(names.insert(instance.name).second);
    // Every database name, and "*", routes to exactly one instance.
    for (const std::string& database : instance.databases) check(routed.insert(database).second);
  }

  const std::string description = config::describe_config(config);
  for (const config::InstanceConfig& instance : config.instances) {
    check(description.find("\nInstance " + instance.name + "\n") != std::string::npos);
  }

  // Reloading onto the same configuration changes nothing.
  check(config::diff_config(config, config).empty());
  const config::Config merged = config::merge_live(config, config);
  check(merged.gateway == config.gateway && merged.metrics == config.metrics && merged.instances == config.instances);

  check_addresses_round_trip(config);
}

void check_errors(const config::ConfigLoadError& e, std::string_view text) {
  check(!e.errors().empty() && *e.what() != '\0');
  const auto lines = static_cast<std::uint32_t>(std::count(text.begin(), text.end(), '\n') + 1);
  for (std::size_t i = 0; i < e.errors().size(); ++i) {
    const config::ConfigError& error = e.errors()[i];
    check(error.file == kSource && !error.message.empty());
    check(error.line <= lines);
    // In file order; errors without a position last.
    if (i > 0) {
      const config::ConfigError& before = e.errors()[i - 1];
      check(error.line == 0 || (before.line != 0 && before.line <= error.line));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const config::Config config = config::parse_config(text, std::string(kSource), std::string(kBaseDir));
    check_config(config, text);
  } catch (const config::ConfigLoadError& e) {
    check_errors(e, text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_config: config::parse_config threw something other than config::ConfigLoadError: %s\n",
                 e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz_config: config::parse_config threw something other than an exception\n");
    std::abort();
  }
  return 0;
}

#include "daemon/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <boost/json.hpp>

#include "accounting/ledger.h"
#include "accounting/report.h"
#include "config/config.h"
#include "daemon/backend_factory.h"
#include "daemon/build_info.h"
#include "daemon/control.h"
#include "daemon/gateway.h"
#include "daemon/kernel_relay.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "daemon/tls.h"

namespace pgnap::daemon {

namespace {

constexpr std::string_view kUsage =
    "usage: pgnap run    [-c FILE]  run the gateway in the foreground\n"
    "       pgnap check  [-c FILE]  validate the configuration and show what it would do\n"
    "       pgnap report [-c FILE] [--since WHEN] [--until WHEN] [--instance NAME]\n"
    "                    [--format table|json|csv|html]\n"
    "       pgnap status [-c FILE] [--format table|json]\n"
    "       pgnap wake NAME [--for DURATION] [-c FILE]\n"
    "       pgnap sleep NAME [-c FILE]\n"
    "       pgnap reload [-c FILE]\n"
    "       pgnap --help | --version\n";

constexpr std::string_view kHelp =
    "pgnap - a scale-to-zero gateway for PostgreSQL\n"
    "\n"
    "Applications connect to pgnap instead of PostgreSQL. pgnap starts the database when a\n"
    "client arrives, holds clients while it starts, relays their traffic unchanged, and\n"
    "stops the database after it has been idle.\n"
    "\n"
    "Commands:\n"
    "  run   -c FILE    run the gateway in the foreground (as systemd runs it)\n"
    "  check -c FILE    validate the configuration and print the listeners, the routing\n"
    "                   table and the commands each instance would run; when a gateway\n"
    "                   runs this file, which changes a reload (SIGHUP) applies and which\n"
    "                   need a restart; exit 0 or 1\n"
    "  report -c FILE   the savings from the ledger, per instance and in total: hours\n"
    "                   asleep and awake, wakes, kWh, gCO2e and money saved. Reads the\n"
    "                   ledger read-only, so it works while the gateway runs.\n"
    "      --since WHEN, --until WHEN   a date (2026-11-01), a UTC time\n"
    "                   (2026-11-01T08:00Z) or a duration back from now (7d, 12h);\n"
    "                   default: everything up to now\n"
    "      --instance NAME              only this instance\n"
    "      --format table|json|csv|html table by default; html is one self-contained\n"
    "                   page with a timeline per instance (docs/accounting.md)\n"
    "\n"
    "Control of the running gateway, over its control socket ([gateway] control_socket,\n"
    "read from FILE; docs/control.md). Root, the service user and the members of its group\n"
    "may use them:\n"
    "  status -c FILE   each instance: its state and since when, the last wake and its\n"
    "                   cause, what is planned next, waiting clients, and every session\n"
    "                   (user, database, application, client, state, idle for) with\n"
    "                   whether it keeps the instance awake and why\n"
    "      --format table|json          table by default; json is the protocol's response\n"
    "  wake NAME -c FILE                wake the instance now; exits once it is awake (0)\n"
    "                   or its wake failed (1)\n"
    "      --for DURATION               and keep it awake at least that long (30s, 10m, 2h)\n"
    "  sleep NAME -c FILE               suspend the instance now; refused (1) while a\n"
    "                   session is in use, naming the sessions\n"
    "  reload -c FILE   reload the configuration, as SIGHUP does, and say what changed\n"
    "      --socket PATH                the control socket to use instead of the file's\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   the configuration file (TOML; man pgnap.toml); default:\n"
    "                      ";
// The rest of the help, after the default configuration file.
constexpr std::string_view kHelpTail =
    "\n"
    "  -v, --verbose       log at debug level (overrides log_level)\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version and the git revision it was built from\n"
    "\n"
    "Signals to `run`: SIGHUP reloads the configuration; SIGTERM or SIGINT stops accepting,\n"
    "lets sessions finish for up to shutdown_timeout, then ends them with 57P01; a second one\n"
    "stops at once.\n"
    "\n"
    "Exit status: 0 success, 1 configuration or start-up error, or a control command\n"
    "refused or failed (no gateway running, permission denied, a failed wake, a refused\n"
    "sleep), 2 usage error.\n";

int usage_error(std::string_view message) {
  std::cerr << "pgnap: " << message << "\n" << kUsage;
  return kExitUsage;
}

struct Args {
  std::string command;
  std::string config;
  // report
  std::string since;
  std::string until;
  std::string instance;
  std::string format = "table";
  // the control commands
  std::string name;  // wake, sleep: the instance
  std::string hold;  // wake --for
  std::string socket;
};

bool is_control_command(std::string_view command) {
  return command == "status" || command == "wake" || command == "sleep" || command == "reload";
}

// Returns nullopt (after printing) on a usage error.
std::optional<Args> parse(int argc, char** argv, int& status) {
  Args args;
  bool seen_report_option = false;
  bool seen_format = false;
  bool seen_for = false;
  std::vector<std::string_view> rest(argv + 1, argv + argc);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::string_view a = rest[i];
    if (a == "-h" || a == "--help" || a == "help") {
      args.command = "help";
      return args;
    }
    if (a == "-v" || a == "--verbose") {
      log::pin_level(log::Level::kDebug);
      continue;
    }
    if (a == "-V" || a == "--version") {
      args.command = "version";
      return args;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 >= rest.size()) {
        status = usage_error(std::string(a) + " needs a file name");
        return std::nullopt;
      }
      args.config = rest[++i];
      continue;
    }
    if (a.rfind("--config=", 0) == 0) {
      args.config = a.substr(9);
      continue;
    }
    // Report options: "--name VALUE" or "--name=VALUE".
    bool matched = false;
    for (auto [name, field] :
         {std::pair{std::string_view("--since"), &args.since}, std::pair{std::string_view("--until"), &args.until},
          std::pair{std::string_view("--instance"), &args.instance},
          std::pair{std::string_view("--format"), &args.format}, std::pair{std::string_view("--for"), &args.hold},
          std::pair{std::string_view("--socket"), &args.socket}}) {
      if (a == name) {
        if (i + 1 >= rest.size()) {
          status = usage_error(std::string(a) + " needs a value");
          return std::nullopt;
        }
        *field = rest[++i];
        matched = true;
      } else if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        *field = a.substr(name.size() + 1);
        matched = true;
      }
      if (matched) {
        if (name == "--format") seen_format = true;
        else if (name == "--for") seen_for = true;
        else if (name != "--socket") seen_report_option = true;
        break;
      }
    }
    if (matched) continue;
    if (!a.empty() && a.front() == '-') {
      status = usage_error("unknown option " + std::string(a));
      return std::nullopt;
    }
    if ((args.command == "wake" || args.command == "sleep") && args.name.empty()) {
      args.name = a;
      continue;
    }
    if (!args.command.empty()) {
      status = usage_error("unexpected argument \"" + std::string(a) + "\"");
      return std::nullopt;
    }
    args.command = a;
  }
  if (args.command.empty()) {
    status = usage_error("no command given");
    return std::nullopt;
  }
  if (args.command != "run" && args.command != "check" && args.command != "report" &&
      !is_control_command(args.command)) {
    status = usage_error("unknown command \"" + args.command + "\"");
    return std::nullopt;
  }
  if (seen_report_option && args.command != "report") {
    status = usage_error("--since, --until and --instance belong to the report command");
    return std::nullopt;
  }
  if (seen_format && args.command != "report" && args.command != "status") {
    status = usage_error("--format belongs to the report and status commands");
    return std::nullopt;
  }
  if (seen_for && args.command != "wake") {
    status = usage_error("--for belongs to the wake command");
    return std::nullopt;
  }
  if (!args.socket.empty() && !is_control_command(args.command)) {
    status = usage_error("--socket belongs to the status, wake, sleep and reload commands");
    return std::nullopt;
  }
  if (args.command == "status" && args.format != "table" && args.format != "json") {
    status = usage_error("--format must be table or json, not \"" + args.format + "\"");
    return std::nullopt;
  }
  if (args.format != "table" && args.format != "json" && args.format != "csv" && args.format != "html") {
    status = usage_error("--format must be table, json, csv or html, not \"" + args.format + "\"");
    return std::nullopt;
  }
  if ((args.command == "wake" || args.command == "sleep") && args.name.empty()) {
    status = usage_error(args.command + " needs the name of an instance: pgnap " + args.command + " NAME [-c FILE]");
    return std::nullopt;
  }
  if (seen_for && !config::parse_duration(args.hold)) {
    status = usage_error("--for: expected a duration such as 30s, 10m or 2h, got \"" + args.hold + "\"");
    return std::nullopt;
  }
  if (is_control_command(args.command) && !args.socket.empty()) return args;
  if (args.config.empty()) args.config = default_config_file();
  return args;
}

std::optional<config::Config> load(const std::string& path) {
  try {
    return config::load_config(path);
  } catch (const config::ConfigLoadError& e) {
    for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
    std::cerr << "pgnap: " << e.errors().size() << " error(s) in the configuration\n";
    return std::nullopt;
  }
}

// The relay `pgnap run` would use with `config`, as this user on this kernel (it loads the
// program to find out).
ConfiguredRelay trial_relay(const config::Config& config) {
  asio::io_context io;
  auto relay = open_configured_relay(config.gateway.relay, io.get_executor());
  relay.kernel.reset();  // closed while its io_context lives
  return relay;
}

// What `check` can verify beyond the file itself without touching any instance.
std::vector<std::string> environment_problems(const config::Config& config) {
  std::vector<std::string> problems;
  // The certificate and key, loaded as `pgnap run` would (readable, PEM, matching).
  if (config.gateway.tls.mode != "disable") {
    std::string error;
    if (!make_server_context(config.gateway.tls, error)) problems.push_back("gateway.tls: " + error);
  }
  for (const auto& instance : config.instances) {
    for (auto& p : backend_problems(instance)) problems.push_back(std::move(p));
  }
  if (auto refused = event_loop_refused()) problems.push_back(std::move(*refused));
  if (config.gateway.relay == "kernel") {
    if (auto refusal = trial_relay(config).refusal; !refusal.empty()) problems.push_back(std::move(refusal));
  }
  return problems;
}

// What a reload of `config` would do to the gateway running this file, as the ledger
// records the configuration it runs.
void compare_with_running(const config::Config& config) {
  std::optional<accounting::RunningConfig> running;
  try {
    running = accounting::read_running_config(config.gateway.ledger, config_key(config.source));
  } catch (const std::exception&) {
    return;
  }
  if (!running) return;
  const std::string base = std::filesystem::absolute(config.source).parent_path().string();
  config::Config effective;
  try {
    effective = config::parse_config(running->started_text, config.source, base);
    if (!running->reloaded_text.empty()) {
      effective = config::merge_live(effective, config::parse_config(running->reloaded_text, config.source, base));
    }
  } catch (const config::ConfigLoadError&) {
    return;  // written by another version: nothing useful to compare
  }
  const auto changes = config::diff_config(effective, config);
  std::cout << "\nCompared with the configuration the gateway runs (" << config.gateway.ledger << "):\n";
  if (changes.empty()) {
    std::cout << "  no changes\n";
    return;
  }
  for (const auto& change : changes) {
    std::cout << "  " << change.key << " " << change.what << ": "
              << (change.needs_restart ? "needs a restart" : "applied by a reload (SIGHUP)") << "\n";
  }
}

int check(const std::string& path) {
  auto config = load(path);
  if (!config) return kExitConfig;
  std::cout << config::describe_config(*config);
  // Not the file's: how this binary was built (cmake -DPGNAP_IO_URING).
  std::cout << "\nBuild\n  event loop        " << event_loop_name() << "\n";
  std::cout << "  relay             " << trial_relay(*config).description << "\n";
  compare_with_running(*config);
  const auto problems = environment_problems(*config);
  for (const auto& p : problems) std::cerr << "pgnap: " << p << "\n";
  if (!problems.empty()) return kExitConfig;
  std::cout << "\n" << path << ": configuration is valid\n";
  return kExitOk;
}

int report(const Args& args) {
  auto config = load(args.config);
  if (!config) return kExitConfig;
  const accounting::UnixTime now = accounting::unix_now();
  accounting::UnixTime since = 0;
  accounting::UnixTime until = now;
  for (auto [text, out, name] :
       {std::tuple{&args.since, &since, "--since"}, std::tuple{&args.until, &until, "--until"}}) {
    if (text->empty()) continue;
    const auto parsed = accounting::parse_report_time(*text, now);
    if (!parsed) {
      return usage_error(std::string(name) +
                         ": expected a date (2026-11-01), a UTC time (2026-11-01T08:00Z) or a "
                         "duration back from now (7d), got \"" +
                         *text + "\"");
    }
    *out = *parsed;
  }
  if (until <= since) return usage_error("--until must be later than --since");

  std::vector<std::pair<std::string, accounting::Accounting>> instances;
  std::map<std::string, std::string> not_measurable;
  for (const auto& instance : config->instances) {
    if (args.instance.empty() || instance.name == args.instance) {
      instances.emplace_back(instance.name, instance.accounting);
      if (auto why = config::measure_unavailable(instance); !why.empty()) not_measurable[instance.name] = why;
    }
  }
  if (!args.instance.empty() && instances.empty()) {
    // No longer configured: its history is still in the ledger (default coefficients).
    instances.emplace_back(args.instance, accounting::Accounting{});
  }
  try {
    auto data = accounting::read_ledger(config->gateway.ledger, since, until, args.instance);
    if (args.since.empty()) {
      // "Everything": from the ledger's first record (a day back when it has none yet).
      since = until;
      for (const auto& i : data.intervals) since = std::min(since, i.start);
      for (const auto& w : data.wakes) since = std::min(since, w.requested_at);
      if (since >= until) since = until - 86400;
    }
    auto result = accounting::build_report(data, since, until, instances, not_measurable);
    if (!args.instance.empty()) {
      std::erase_if(result.instances, [&](const auto& i) { return i.name != args.instance; });
    }
    if (args.format == "json") std::cout << accounting::format_json(result);
    else if (args.format == "csv") std::cout << accounting::format_csv(result);
    else if (args.format == "html") std::cout << accounting::format_html(result);
    else std::cout << accounting::format_table(result);
    std::cout.flush();
    return std::cout ? kExitOk : kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "pgnap: " << e.what() << "\n";
    return kExitConfig;
  }
}

int control(const Args& args) {
  // Where the socket is, and how long a wake may take: from the configuration.
  std::string path = args.socket;
  config::Duration wake_timeout = std::chrono::seconds(60);
  if (!args.config.empty()) {
    auto config = load(args.config);
    if (!config) return kExitConfig;
    if (path.empty()) path = config->gateway.control_socket;
    for (const auto& instance : config->instances) {
      if (instance.name == args.name) wake_timeout = instance.wake_timeout;
    }
    if (path.empty()) {
      std::cerr << "pgnap: " << args.config
                << " sets control_socket = \"\": the gateway runs without a control socket (set [gateway] "
                   "control_socket, restart it, or pass --socket PATH)\n";
      return kExitFailed;
    }
  }
  ControlCommand command;
  command.command = args.command;
  command.name = args.name;
  command.hold = args.hold;
  command.format = args.format;
  command.socket = path;
  command.wake_timeout = wake_timeout;
  return run_control_command(command);
}

int run(const std::string& path) {
  auto config = load(path);
  if (!config) return kExitConfig;
  // Before anything is opened: an io_uring build on a kernel that refuses io_uring would
  // otherwise fail on its first socket with only "io_uring_queue_init: ...".
  if (auto refused = event_loop_refused()) {
    PGNAP_LOG(kError, "gateway", "cannot start: " << *refused);
    return kExitConfig;
  }
  try {
    Gateway gateway(std::move(*config));
    return gateway.run();
  } catch (const std::exception& e) {
    PGNAP_LOG(kError, "gateway", "cannot start: " << e.what());
    return kExitConfig;
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  int status = kExitOk;
  auto args = parse(argc, argv, status);
  if (!args) return status;
  if (args->command == "help") {
    std::cout << kHelp << default_config_file() << kHelpTail;
    return kExitOk;
  }
  if (args->command == "version") {
    std::cout << "pgnap " << version() << " (git " << revision() << ")\n";
    return kExitOk;
  }
  if (args->command == "check") return check(args->config);
  if (args->command == "report") return report(*args);
  if (is_control_command(args->command)) return control(*args);
  return run(args->config);
}

}  // namespace pgnap::daemon

#include "daemon/cli.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/pg_ctl_backend.h"
#include "daemon/config.h"
#include "daemon/gateway.h"
#include "daemon/log.h"

namespace pgnap::daemon {

namespace {

constexpr std::string_view kUsage =
    "usage: pgnap run   -c FILE     run the gateway in the foreground\n"
    "       pgnap check -c FILE     validate the configuration and show what it would do\n"
    "       pgnap --help | --version\n";

constexpr std::string_view kHelp =
    "pgnap - a scale-to-zero gateway for PostgreSQL\n"
    "\n"
    "Applications connect to pgnap instead of PostgreSQL. pgnap starts the database when a\n"
    "client arrives, holds clients while it starts, relays their traffic unchanged, and\n"
    "stops the database after it has been idle.\n"
    "\n"
    "Commands:\n"
    "  run   -c FILE    run the gateway in the foreground (as systemd runs it); SIGTERM or\n"
    "                   SIGINT stops it\n"
    "  check -c FILE    validate the configuration and print the listeners, the routing\n"
    "                   table and the commands each instance would run; exit 0 or 1\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   the configuration file (TOML; see docs/configuration.md)\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "\n"
    "Exit status: 0 success, 1 configuration or start-up error, 2 usage error.\n";

int usage_error(std::string_view message) {
  std::cerr << "pgnap: " << message << "\n" << kUsage;
  return kExitUsage;
}

struct Args {
  std::string command;
  std::string config;
};

// Returns nullopt (after printing) on a usage error.
std::optional<Args> parse(int argc, char** argv, int& status) {
  Args args;
  std::vector<std::string_view> rest(argv + 1, argv + argc);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::string_view a = rest[i];
    if (a == "-h" || a == "--help" || a == "help") {
      args.command = "help";
      return args;
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
    if (!a.empty() && a.front() == '-') {
      status = usage_error("unknown option " + std::string(a));
      return std::nullopt;
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
  if (args.command != "run" && args.command != "check") {
    status = usage_error("unknown command \"" + args.command + "\"");
    return std::nullopt;
  }
  if (args.config.empty()) {
    status = usage_error(args.command + " needs a configuration file: -c FILE");
    return std::nullopt;
  }
  return args;
}

std::optional<Config> load(const std::string& path) {
  try {
    return load_config(path);
  } catch (const ConfigLoadError& e) {
    for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
    std::cerr << "pgnap: " << e.errors().size() << " error(s) in the configuration\n";
    return std::nullopt;
  }
}

// What `check` can verify beyond the file itself without touching any instance.
std::vector<std::string> environment_problems(const Config& config) {
  std::vector<std::string> problems;
  for (const auto& instance : config.instances) {
    if (instance.backend != "pg_ctl") continue;
    const std::string bin = instance.pg_ctl.bin_dir.empty() ? backends::find_pg_bin_dir() : instance.pg_ctl.bin_dir;
    if (bin.empty()) {
      problems.push_back("instance \"" + instance.name + "\": cannot find pg_ctl; set bin_dir");
    } else if (::access((bin + "/pg_ctl").c_str(), X_OK) != 0) {
      problems.push_back("instance \"" + instance.name + "\": " + bin + "/pg_ctl is not an executable file");
    }
    if (::geteuid() == 0) {
      std::string error;
      auto user = backends::lookup_user(instance.pg_ctl.os_user, error);
      if (!user) problems.push_back("instance \"" + instance.name + "\": " + error);
      else if (user->uid == 0) problems.push_back("instance \"" + instance.name + "\": os_user must not be root");
    }
  }
  return problems;
}

int check(const std::string& path) {
  auto config = load(path);
  if (!config) return kExitConfig;
  std::cout << describe_config(*config);
  const auto problems = environment_problems(*config);
  for (const auto& p : problems) std::cerr << "pgnap: " << p << "\n";
  if (!problems.empty()) return kExitConfig;
  std::cout << "\n" << path << ": configuration is valid\n";
  return kExitOk;
}

int run(const std::string& path) {
  auto config = load(path);
  if (!config) return kExitConfig;
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
    std::cout << kHelp;
    return kExitOk;
  }
  if (args->command == "version") {
    std::cout << "pgnap " << PGNAP_VERSION << "\n";
    return kExitOk;
  }
  if (args->command == "check") return check(args->config);
  return run(args->config);
}

}  // namespace pgnap::daemon

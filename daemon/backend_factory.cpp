#include "daemon/backend_factory.h"

#include <unistd.h>

#include <stdexcept>

#include "backends/exec_backend.h"
#include "backends/pg_ctl_backend.h"
#include "backends/systemd_backend.h"

namespace pgnap::daemon {

namespace {

// The user a driver's commands run as. PostgreSQL refuses to run as root, and pgnap runs no
// command as root that the configuration did not ask for: when pgnap is root, pg_ctl always
// switches to its os_user (default "postgres"); exec commands need an os_user, which may be
// "root" when that is really meant.
std::optional<backends::RunAs> run_as(const config::InstanceConfig& config, const std::string& os_user,
                                      bool refuse_root) {
  if (::geteuid() != 0) return std::nullopt;
  if (os_user.empty()) {
    throw std::runtime_error("instance \"" + config.name + "\": pgnap runs as root and [instances." + config.name +
                             "." + config.backend +
                             "] has no os_user, so its commands would run as root; set os_user to the user "
                             "they should run as (os_user = \"root\" if they must run as root)");
  }
  std::string error;
  auto user = backends::lookup_user(os_user, error);
  if (!user) throw std::runtime_error("instance \"" + config.name + "\": " + error);
  if (refuse_root && user->uid == 0) {
    throw std::runtime_error("instance \"" + config.name + "\": os_user \"" + os_user +
                             "\" is root; PostgreSQL refuses to run as root");
  }
  return user;
}

std::string pg_ctl_dir(const config::InstanceConfig& config) {
  return config.pg_ctl.bin_dir.empty() ? backends::find_pg_bin_dir() : config.pg_ctl.bin_dir;
}

}  // namespace

std::unique_ptr<backends::Backend> make_backend(const config::InstanceConfig& config) {
  if (config.backend == "pg_ctl") {
    backends::PgCtlOptions options;
    options.bin_dir = pg_ctl_dir(config);
    if (options.bin_dir.empty()) {
      throw std::runtime_error("instance \"" + config.name +
                               "\": cannot find pg_ctl (not on PATH, not in /usr/lib/postgresql/*/bin); set "
                               "[instances." +
                               config.name + ".pg_ctl] bin_dir");
    }
    options.data_dir = config.pg_ctl.data_dir;
    options.log_file = config.pg_ctl.log_file;
    options.run_as = run_as(config, config.pg_ctl.os_user, true);
    return std::make_unique<backends::PgCtlBackend>(std::move(options));
  }
  if (config.backend == "exec") {
    backends::ExecOptions options;
    options.start = config.exec.start;
    options.stop = config.exec.stop;
    options.status = config.exec.status;
    options.env = config.exec.env;
    options.run_as = run_as(config, config.exec.os_user, false);
    // Unset, the start runs until the wake's deadline, which follows wake_timeout, also when
    // a reload changes it.
    options.start_timeout = config.exec.start_timeout != config::Duration(0)
                                ? std::chrono::duration_cast<std::chrono::milliseconds>(config.exec.start_timeout)
                                : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 365));
    options.stop_timeout = config.exec.stop_timeout;
    options.status_timeout = config.exec.status_timeout;
    return std::make_unique<backends::ExecBackend>(std::move(options));
  }
  if (config.backend == "systemd") {
    backends::SystemdOptions options;
    options.unit = config.systemd.unit;
    options.stop_timeout = config.systemd.stop_timeout;
    return std::make_unique<backends::SystemdBackend>(std::move(options));
  }
  throw std::runtime_error("instance \"" + config.name + "\": backend \"" + config.backend + "\" is not supported");
}

std::vector<std::string> backend_problems(const config::InstanceConfig& config) {
  std::vector<std::string> problems;
  const std::string who = "instance \"" + config.name + "\": ";
  auto check_program = [&](const std::vector<std::string>& argv, const char* which) {
    if (argv.empty()) return;
    const std::string& program = argv.front();
    bool found = false;
    if (program.find('/') != std::string::npos) {
      found = ::access(program.c_str(), X_OK) == 0;
    } else {
      // The PATH the command will run with (backends/child_process.cpp): the instance's env
      // may set its own.
      std::string dirs;
      if (const char* path = ::getenv("PATH")) dirs = path;
      for (const auto& [name, value] : config.exec.env) {
        if (name == "PATH") dirs = value;
      }
      std::size_t start = 0;
      while (!found && start <= dirs.size()) {
        const std::size_t end = std::min(dirs.find(':', start), dirs.size());
        const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
        found = ::access((dir + "/" + program).c_str(), X_OK) == 0;
        start = end + 1;
      }
    }
    if (!found) problems.push_back(who + which + " command's program \"" + program + "\" is not an executable here");
  };
  try {
    (void)make_backend(config);
  } catch (const std::exception& e) {
    problems.push_back(e.what());
  }
  if (config.backend == "pg_ctl") {
    const std::string bin = pg_ctl_dir(config);
    if (!bin.empty() && ::access((bin + "/pg_ctl").c_str(), X_OK) != 0) {
      problems.push_back(who + bin + "/pg_ctl is not an executable file");
    }
  } else if (config.backend == "exec") {
    check_program(config.exec.start, "start");
    check_program(config.exec.stop, "stop");
    check_program(config.exec.status, "status");
  }
  return problems;
}

}  // namespace pgnap::daemon

// The small public pieces of config.h: systemd unit names, the instance defaults that follow
// other keys, errors, and reading the file. The schema lives in config/schema.cpp, the value
// grammars in config/values.cpp and config/address.cpp, durations in config/duration.cpp.
#include "config/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pgnap::config {
namespace {

std::string join_errors(const std::vector<ConfigError>& errors) {
  std::string text;
  for (const ConfigError& error : errors) {
    if (!text.empty()) text += '\n';
    text += error.to_string();
  }
  return text;
}

}  // namespace

std::string measure_unavailable(const InstanceConfig& instance) {
  if (instance.backend != "exec" || !instance.exec.cgroup.empty() || !instance.exec.pid_file.empty()) return {};
  return "an exec instance with neither pid_file nor cgroup (a remote or cloud database pgnap cannot read)";
}

std::string systemd_unit_name(const std::string& name) {
  static const char* kSuffixes[] = {".service", ".socket", ".target", ".mount", ".timer", ".scope", ".slice"};
  for (const char* suffix : kSuffixes) {
    const std::size_t n = std::strlen(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) return name;
  }
  return name + ".service";
}

std::string InstanceConfig::effective_tls() const {
  if (!tls.empty()) return tls;
  // Pointless on a Unix socket or loopback, welcome across a network.
  return address.local() ? "disable" : "prefer";
}

Duration InstanceConfig::exec_start_timeout() const {
  return exec.start_timeout == Duration(0) ? wake_timeout : exec.start_timeout;
}

std::string ConfigError::to_string() const {
  std::string text = file;
  if (line != 0) {
    text += (text.empty() ? "" : ":") + std::to_string(line);
    if (column != 0) text += ":" + std::to_string(column);
  }
  if (!key.empty()) text += (text.empty() ? "" : ": ") + key;
  if (!message.empty()) text += (text.empty() ? "" : ": ") + message;
  return text;
}

ConfigLoadError::ConfigLoadError(std::vector<ConfigError> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

Config load_config(const std::string& path) {
  auto fail = [&path](int error) {
    throw ConfigLoadError({ConfigError{path, 0, 0, "", "cannot read: " + std::generic_category().message(error)}});
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail(errno);
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // A directory opens fine and fails on the first read (EISDIR).
  if (std::ferror(file.get())) fail(errno);

  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  return parse_config(text, path, base.lexically_normal().string());
}

}  // namespace pgnap::config

#include "backends/systemd_backend.h"

#include <poll.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <pwd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::backends {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr const char* kDestination = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw ? pw->pw_name : std::to_string(::geteuid());
}

// One connection to the system bus for one operation, driven by the event loop until the
// operation says it is done or the deadline passes.
class Bus {
 public:
  ~Bus() {
    if (bus_ != nullptr) sd_bus_close_unref(bus_);  // no flush: it could block
  }

  // Connects; on failure returns why (the address, the error, what the driver needs).
  std::optional<std::string> open() {
    sd_bus* bus = nullptr;
    const int r = sd_bus_open_system(&bus);
    if (r < 0) {
      return "cannot connect to the system bus (" + system_bus_address() + "): " + errno_text(r) +
             ". The systemd backend talks to systemd over D-Bus; is this a systemd host with dbus running?";
    }
    bus_ = bus;
    // Never wait for a password prompt: pgnap runs unattended.
    sd_bus_set_allow_interactive_authorization(bus_, 0);
    return std::nullopt;
  }

  sd_bus* get() const { return bus_; }

  // Processes the connection until `done()` or `deadline`. Returns false on timeout or a
  // broken connection (with `error` set).
  template <typename Done>
  asio::awaitable<bool> drive(Done done, Clock::time_point deadline, std::string& error) {
    auto executor = co_await asio::this_coro::executor;
    auto cancellation = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (cancellation.cancelled() != asio::cancellation_type::none) {
        throw boost::system::system_error(asio::error::operation_aborted);
      }
      for (;;) {
        const int r = sd_bus_process(bus_, nullptr);
        if (r < 0) {
          error = "the system bus connection failed: " + errno_text(r);
          co_return false;
        }
        if (done()) co_return true;
        if (r == 0) break;
      }
      if (Clock::now() >= deadline) {
        error = "no answer from systemd in time";
        co_return false;
      }
      const int fd = sd_bus_get_fd(bus_);
      const int events = sd_bus_get_events(bus_);
      if (fd < 0 || events < 0) {
        error = "the system bus connection failed: " + errno_text(fd < 0 ? fd : events);
        co_return false;
      }
      // sd-bus's own timeout (a method call's) is on CLOCK_MONOTONIC, like steady_clock.
      auto until = deadline;
      std::uint64_t usec = 0;
      if (sd_bus_get_timeout(bus_, &usec) >= 0 && usec != UINT64_MAX) {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        const std::uint64_t now_us = static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
                                     static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
        const auto in = std::chrono::microseconds(usec > now_us ? usec - now_us : 0);
        until = std::min(until, Clock::now() + in);
      }
      asio::posix::stream_descriptor sd(executor, fd);  // borrowed: released below
      asio::steady_timer timer(executor, until);
      const auto which = (events & POLLOUT) ? asio::posix::stream_descriptor::wait_write
                                            : asio::posix::stream_descriptor::wait_read;
      co_await (sd.async_wait(which, asio::as_tuple(asio::use_awaitable)) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      sd.release();
    }
  }

 private:
  sd_bus* bus_ = nullptr;
};

// The reply to one asynchronous method call.
struct Reply {
  bool done = false;
  std::string error_name;  // empty on success
  std::string error_message;
  std::string object_path;   // for calls returning "o"
  std::string string_value;  // for Properties.Get of a string

  static int on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Reply*>(userdata);
    self->done = true;
    if (const sd_bus_error* e = sd_bus_message_get_error(m)) {
      self->error_name = e->name ? e->name : "";
      self->error_message = e->message ? e->message : "";
      return 0;
    }
    const char* sig = sd_bus_message_get_signature(m, 1);
    if (sig != nullptr && std::strcmp(sig, "o") == 0) {
      const char* path = nullptr;
      if (sd_bus_message_read(m, "o", &path) >= 0 && path) self->object_path = path;
    } else if (sig != nullptr && std::strcmp(sig, "v") == 0) {
      const char* value = nullptr;
      if (sd_bus_message_read(m, "v", "s", &value) >= 0 && value) self->string_value = value;
    }
    return 0;
  }
};

struct SlotCloser {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using Slot = std::unique_ptr<sd_bus_slot, SlotCloser>;

// Jobs systemd reports finished (JobRemoved: id, job path, unit, result).
struct JobWatch {
  std::string job_path;                                      // set once StartUnit/StopUnit answers
  std::vector<std::pair<std::string, std::string>> removed;  // (job path, result)
  bool match_installed = false;

  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<JobWatch*>(userdata);
    std::uint32_t id = 0;
    const char* path = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) >= 0 && path && result) {
      self->removed.emplace_back(path, result);
    }
    return 0;
  }
  static int on_match_installed(sd_bus_message*, void* userdata, sd_bus_error*) {
    static_cast<JobWatch*>(userdata)->match_installed = true;
    return 0;
  }
  std::optional<std::string> result() const {
    if (job_path.empty()) return std::nullopt;
    for (const auto& [path, result] : removed) {
      if (path == job_path) return result;
    }
    return std::nullopt;
  }
};

std::string method_failure(const Reply& reply, const std::string& unit, const std::string& action) {
  return explain_bus_error(reply.error_name, reply.error_message, unit, action);
}

}  // namespace

std::string system_bus_address() {
  if (const char* a = std::getenv("DBUS_SYSTEM_BUS_ADDRESS"); a && *a) return a;
  return "unix:path=/run/dbus/system_bus_socket";
}

std::string explain_bus_error(const std::string& error_name, const std::string& message, const std::string& unit,
                              const std::string& action) {
  if (error_name == "org.freedesktop.DBus.Error.AccessDenied" ||
      error_name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") {
    return "permission denied to " + action + " " + unit + " (" + message + "): the OS user \"" + current_user() +
           "\" needs the polkit action org.freedesktop.systemd1.manage-units for this unit (a rule is in "
           "docs/operations.md), or pgnap must run as root";
  }
  if (error_name == "org.freedesktop.systemd1.NoSuchUnit" || error_name == "org.freedesktop.systemd1.LoadFailed") {
    return "systemd has no unit " + unit + " (" + message + "); check [systemd] unit, or `systemctl status " + unit +
           "`";
  }
  if (error_name == "org.freedesktop.DBus.Error.ServiceUnknown" || error_name == "org.freedesktop.DBus.Error.NoReply" ||
      error_name == "org.freedesktop.DBus.Error.Disconnected") {
    return "systemd did not answer on the system bus (" + error_name + ": " + message +
           "); is systemd the init system here?";
  }
  return "systemd refused to " + action + " " + unit + ": " + error_name + ": " + message;
}

SystemdBackend::SystemdBackend(SystemdOptions options) : options_(std::move(options)) {}

std::vector<std::string> SystemdBackend::calls() const {
  return {
      "start:  org.freedesktop.systemd1.Manager.StartUnit(\"" + options_.unit +
          "\", \"replace\"), then wait for "
          "its job (JobRemoved)",
      "stop:   org.freedesktop.systemd1.Manager.StopUnit(\"" + options_.unit +
          "\", \"replace\"), then wait for "
          "its job",
      "status: org.freedesktop.systemd1.Manager.LoadUnit(\"" + options_.unit + "\") -> Unit.ActiveState",
  };
}

std::vector<std::string> SystemdBackend::describe() const {
  auto lines = calls();
  lines.push_back("on the system bus at " + system_bus_address());
  return lines;
}

asio::awaitable<std::optional<std::string>> SystemdBackend::unit_property(const char* interface, const char* property,
                                                                          std::string& error) {
  Bus bus;
  if (auto why = bus.open()) {
    error = *why;
    co_return std::nullopt;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);

  Reply load;
  sd_bus_slot* raw = nullptr;
  int r = sd_bus_call_method_async(bus.get(), &raw, kDestination, kManagerPath, kManager, "LoadUnit", &Reply::on_reply,
                                   &load, "s", options_.unit.c_str());
  Slot load_slot(raw);
  if (r < 0) {
    error = "LoadUnit: " + errno_text(r);
    co_return std::nullopt;
  }
  if (!co_await bus.drive([&] { return load.done; }, deadline, error)) co_return std::nullopt;
  if (!load.error_name.empty()) {
    error = method_failure(load, options_.unit, "inspect");
    co_return std::nullopt;
  }

  Reply value;
  r = sd_bus_call_method_async(bus.get(), &raw, kDestination, load.object_path.c_str(),
                               "org.freedesktop.DBus.Properties", "Get", &Reply::on_reply, &value, "ss", interface,
                               property);
  Slot value_slot(raw);
  if (r < 0) {
    error = std::string("Get ") + property + ": " + errno_text(r);
    co_return std::nullopt;
  }
  if (!co_await bus.drive([&] { return value.done; }, deadline, error)) co_return std::nullopt;
  if (!value.error_name.empty()) {
    error = method_failure(value, options_.unit, "inspect");
    co_return std::nullopt;
  }
  co_return value.string_value;
}

asio::awaitable<Status> SystemdBackend::status() {
  std::string error;
  const auto state = co_await unit_property("org.freedesktop.systemd1.Unit", "ActiveState", error);
  if (!state) co_return Status{RunState::kUnknown, error};
  // active, reloading, activating: a server process exists (or is being started).
  // inactive, failed, deactivating: none, or on its way out (a start queues behind the stop).
  const std::string& s = *state;
  const bool running = s == "active" || s == "reloading" || s == "activating";
  co_return Status{running ? RunState::kRunning : RunState::kStopped, options_.unit + " is " + s};
}

asio::awaitable<std::string> SystemdBackend::cgroup() {
  std::string error;
  // A service's cgroup, relative to the cgroup v2 root ("/system.slice/postgresql@15-main.service").
  const auto group = co_await unit_property("org.freedesktop.systemd1.Service", "ControlGroup", error);
  co_return group.value_or(std::string());
}

asio::awaitable<Outcome> SystemdBackend::start(Clock::time_point deadline) { return run_job("StartUnit", deadline); }

asio::awaitable<Outcome> SystemdBackend::stop(Clock::time_point deadline) {
  return run_job("StopUnit", std::min(deadline, Clock::now() + options_.stop_timeout));
}

asio::awaitable<Outcome> SystemdBackend::run_job(const char* method, Clock::time_point deadline) {
  const std::string action = std::strcmp(method, "StartUnit") == 0 ? "start" : "stop";
  Bus bus;
  if (auto why = bus.open()) co_return Outcome::failure(*why);
  std::string error;

  // JobRemoved is only broadcast to clients that subscribed; the match is installed (and
  // acknowledged) before the job is queued, so its end cannot be missed.
  JobWatch watch;
  sd_bus_slot* raw = nullptr;
  int r = sd_bus_match_signal_async(bus.get(), &raw, kDestination, kManagerPath, kManager, "JobRemoved",
                                    &JobWatch::on_job_removed, &JobWatch::on_match_installed, &watch);
  Slot match_slot(raw);
  if (r < 0) co_return Outcome::failure("cannot watch systemd's jobs: " + errno_text(r));
  Reply subscribe;
  r = sd_bus_call_method_async(bus.get(), &raw, kDestination, kManagerPath, kManager, "Subscribe", &Reply::on_reply,
                               &subscribe, "");
  Slot subscribe_slot(raw);
  if (r < 0) co_return Outcome::failure("Subscribe: " + errno_text(r));
  if (!co_await bus.drive([&] { return subscribe.done && watch.match_installed; }, deadline, error)) {
    co_return Outcome::failure(error);
  }
  if (!subscribe.error_name.empty()) co_return Outcome::failure(method_failure(subscribe, options_.unit, action));

  Reply queued;
  r = sd_bus_call_method_async(bus.get(), &raw, kDestination, kManagerPath, kManager, method, &Reply::on_reply, &queued,
                               "ss", options_.unit.c_str(), "replace");
  Slot queued_slot(raw);
  if (r < 0) co_return Outcome::failure(std::string(method) + ": " + errno_text(r));
  if (!co_await bus.drive([&] { return queued.done; }, deadline, error)) co_return Outcome::failure(error);
  if (!queued.error_name.empty()) co_return Outcome::failure(method_failure(queued, options_.unit, action));
  watch.job_path = queued.object_path;

  if (!co_await bus.drive([&] { return watch.result().has_value(); }, deadline, error)) {
    co_return Outcome::failure("systemd's " + action + " job for " + options_.unit + " (" + watch.job_path +
                               ") did not finish in time");
  }
  const std::string result = *watch.result();
  if (result == "done") co_return Outcome::success();
  co_return Outcome::failure("systemd could not " + action + " " + options_.unit + " (job result \"" + result +
                             "\"); see `systemctl status " + options_.unit + "` and `journalctl -u " + options_.unit +
                             "`");
}

}  // namespace pgnap::backends

// A stand-in for systemd's D-Bus API, for the systemd backend's integration tests
// (systemd_test.cpp), where there is no systemd and no system bus: the test runs a private
// dbus-daemon and this program on it.
//
// It connects to the "system bus" at $DBUS_SYSTEM_BUS_ADDRESS (sd_bus_open_system honours
// it), takes the name org.freedesktop.systemd1, and serves the part of
// org.freedesktop.systemd1.Manager that pgnap uses, for one unit:
//   Subscribe()                       accepted (JobRemoved is sent to everyone anyway)
//   StartUnit(s name, s mode) -> o    replies with a job path, runs --start, then emits
//   StopUnit(s name, s mode) -> o     JobRemoved(u id, o job, s unit, s "done" | "failed")
//   LoadUnit(s name) -> o             the unit's object path
// and, on that object, org.freedesktop.systemd1.Unit's ActiveState ("active" when --status
// exits 0, else "inactive") and org.freedesktop.systemd1.Service's ControlGroup (--cgroup, ""
// by default) through org.freedesktop.DBus.Properties.Get. Another unit name
// gets org.freedesktop.systemd1.NoSuchUnit, as from systemd. With --deny, StartUnit and
// StopUnit answer org.freedesktop.DBus.Error.AccessDenied, as systemd does when polkit says no.
//
// Each call is logged on stdout ("fake-systemd: StartUnit x.service replace"), so a test can
// count them; "fake-systemd: ready" once the name is owned.
//
// usage: fake_systemd --unit NAME --start SH --stop SH --status SH [--cgroup PATH] [--deny]
//   (SH: a shell command line, run with /bin/sh -c)
#include <sys/wait.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

struct Fake {
  sd_bus* bus = nullptr;
  std::string unit;
  std::string unit_path;
  std::string start;
  std::string stop;
  std::string status;
  std::string cgroup;
  bool deny = false;
  std::uint32_t next_job = 1;
};

// The command's exit status (128+N if killed by signal N).
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1) return 127;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

int no_such_unit(sd_bus_error* error, const char* name) {
  return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", name);
}

int on_subscribe(sd_bus_message* m, void*, sd_bus_error*) {
  std::printf("fake-systemd: Subscribe\n");
  return sd_bus_reply_method_return(m, "");
}

// StartUnit / StopUnit: like systemd, the reply (the job) comes first and JobRemoved when the
// job is over; here the job runs in between, while the caller waits for the signal.
int run_job(sd_bus_message* m, Fake& fake, const char* method, const std::string& command, sd_bus_error* error) {
  const char* name = nullptr;
  const char* mode = nullptr;
  int r = sd_bus_message_read(m, "ss", &name, &mode);
  if (r < 0) return r;
  std::printf("fake-systemd: %s %s %s\n", method, name, mode);
  if (fake.deny) return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Access denied");
  if (fake.unit != name) return no_such_unit(error, name);

  const std::uint32_t id = fake.next_job++;
  const std::string job = std::string(kManagerPath) + "/job/" + std::to_string(id);
  r = sd_bus_reply_method_return(m, "o", job.c_str());
  if (r < 0) return r;
  sd_bus_flush(fake.bus);
  const int status = run_shell(command);
  const char* result = status == 0 ? "done" : "failed";
  std::printf("fake-systemd: job %u %s %s: %s (exit %d)\n", id, method, name, result, status);
  r = sd_bus_emit_signal(fake.bus, kManagerPath, kManager, "JobRemoved", "uoss", id, job.c_str(), name, result);
  if (r < 0) std::printf("fake-systemd: JobRemoved: %s\n", std::strerror(-r));
  return 1;
}

int on_start_unit(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& fake = *static_cast<Fake*>(userdata);
  return run_job(m, fake, "StartUnit", fake.start, error);
}

int on_stop_unit(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& fake = *static_cast<Fake*>(userdata);
  return run_job(m, fake, "StopUnit", fake.stop, error);
}

int on_load_unit(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& fake = *static_cast<Fake*>(userdata);
  const char* name = nullptr;
  const int r = sd_bus_message_read(m, "s", &name);
  if (r < 0) return r;
  std::printf("fake-systemd: LoadUnit %s\n", name);
  if (fake.unit != name) return no_such_unit(error, name);
  return sd_bus_reply_method_return(m, "o", fake.unit_path.c_str());
}

int get_active_state(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                     sd_bus_error*) {
  auto& fake = *static_cast<Fake*>(userdata);
  const char* state = run_shell(fake.status) == 0 ? "active" : "inactive";
  std::printf("fake-systemd: Get ActiveState of %s: %s\n", fake.unit.c_str(), state);
  return sd_bus_message_append(reply, "s", state);
}

int get_control_group(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                      sd_bus_error*) {
  auto& fake = *static_cast<Fake*>(userdata);
  std::printf("fake-systemd: Get ControlGroup of %s: %s\n", fake.unit.c_str(), fake.cgroup.c_str());
  return sd_bus_message_append(reply, "s", fake.cgroup.c_str());
}

const sd_bus_vtable kServiceVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("ControlGroup", "s", get_control_group, 0, 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Subscribe", "", "", on_subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StartUnit", "ss", "o", on_start_unit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("StopUnit", "ss", "o", on_stop_unit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("LoadUnit", "s", "o", on_load_unit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable kUnitVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("ActiveState", "s", get_active_state, 0, 0),
    SD_BUS_VTABLE_END,
};

int usage() {
  std::fprintf(stderr, "usage: fake_systemd --unit NAME --start SH --stop SH --status SH [--cgroup PATH] [--deny]\n");
  return 2;
}

int fatal(const char* what, int r) {
  std::fprintf(stderr, "fake-systemd: %s: %s\n", what, std::strerror(-r));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Fake fake;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--deny") {
      fake.deny = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    if (a == "--unit") fake.unit = argv[++i];
    else if (a == "--start") fake.start = argv[++i];
    else if (a == "--stop") fake.stop = argv[++i];
    else if (a == "--status") fake.status = argv[++i];
    else if (a == "--cgroup") fake.cgroup = argv[++i];
    else return usage();
  }
  if (fake.unit.empty() || fake.start.empty() || fake.stop.empty() || fake.status.empty()) return usage();

  int r = sd_bus_open_system(&fake.bus);
  if (r < 0) return fatal("cannot connect to the bus at $DBUS_SYSTEM_BUS_ADDRESS", r);
  char* path = nullptr;
  r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", fake.unit.c_str(), &path);
  if (r < 0) return fatal("sd_bus_path_encode", r);
  fake.unit_path = path;
  std::free(path);

  r = sd_bus_add_object_vtable(fake.bus, nullptr, kManagerPath, kManager, kManagerVtable, &fake);
  if (r < 0) return fatal("add the Manager object", r);
  r = sd_bus_add_object_vtable(fake.bus, nullptr, fake.unit_path.c_str(), "org.freedesktop.systemd1.Unit", kUnitVtable,
                               &fake);
  if (r < 0) return fatal("add the Unit object", r);
  r = sd_bus_add_object_vtable(fake.bus, nullptr, fake.unit_path.c_str(), "org.freedesktop.systemd1.Service",
                               kServiceVtable, &fake);
  if (r < 0) return fatal("add the Service interface", r);
  r = sd_bus_request_name(fake.bus, "org.freedesktop.systemd1", 0);
  if (r < 0) return fatal("request the name org.freedesktop.systemd1", r);
  std::printf("fake-systemd: ready, serving %s at %s%s\n", fake.unit.c_str(), fake.unit_path.c_str(),
              fake.deny ? " (denying every job)" : "");

  for (;;) {
    r = sd_bus_process(fake.bus, nullptr);
    if (r < 0) return fatal("the bus connection failed", r);
    if (r > 0) continue;
    r = sd_bus_wait(fake.bus, UINT64_MAX);
    if (r < 0 && r != -EINTR) return fatal("waiting on the bus", r);
  }
}

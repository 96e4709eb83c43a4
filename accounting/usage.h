// What a running database actually uses (docs/accounting.md, "Measured"): readings of the CPU
// time and memory of an instance's own processes, from /proc (the postmaster and its
// children) or from the cgroup systemd runs it in, and the arithmetic that turns successive
// readings into idle and busy rates. Readers take the root of the tree they read (/proc,
// /sys/fs/cgroup/...) so that the unit tests run them on recorded files (tests/accounting/
// fixtures/). Plain file reads of kernel pseudo-files, no Asio: the daemon calls them off its
// event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgnap::accounting {

// ---- Parsers of one file's text (nullopt when the text is not what the kernel writes) ----

// /proc/PID/stat: the fields pgnap uses. The command name is in parentheses and may itself
// contain spaces and ')', so the fields after it are found from the LAST ')'.
struct ProcStat {
  int pid = 0;
  std::string comm;
  int ppid = 0;
  // In clock ticks (sysconf(_SC_CLK_TCK)). cutime/cstime are the children this process has
  // waited for: PostgreSQL's backends that exited count there once the postmaster reaps them.
  std::uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
};
[[nodiscard]] std::optional<ProcStat> parse_proc_stat(std::string_view text);

// /proc/PID/schedstat: its first field, the time the process has run on a CPU, in
// nanoseconds (what stat's utime + stime are scaled to, in clock ticks of 10 ms: too coarse
// for an idle PostgreSQL over a few seconds).
[[nodiscard]] std::optional<std::uint64_t> parse_schedstat_ns(std::string_view text);

// /proc/PID/smaps_rollup: the "Pss:" line, in bytes (the file says kB).
[[nodiscard]] std::optional<std::uint64_t> parse_smaps_rollup_pss(std::string_view text);

// /proc/PID/statm: resident and shared pages (fields 2 and 3).
struct Statm {
  std::uint64_t resident_pages = 0;
  std::uint64_t shared_pages = 0;
};
[[nodiscard]] std::optional<Statm> parse_statm(std::string_view text);

// /proc/PID/task/PID/children: the pids, space-separated (possibly empty).
[[nodiscard]] std::optional<std::vector<int>> parse_children(std::string_view text);

// PostgreSQL's postmaster.pid: its first line is the postmaster's pid.
[[nodiscard]] std::optional<int> parse_postmaster_pid(std::string_view text);

// A setting of postgresql.conf ("data_directory = '/var/lib/postgresql/15/main'  # comment"):
// the value of its last uncommented line, quotes removed ('' inside quotes is one quote);
// nullopt when the file does not set it. For Debian's layout, where pg_ctl's -D is the
// configuration directory and postmaster.pid is elsewhere (external_pid_file, data_directory).
[[nodiscard]] std::optional<std::string> parse_conf_setting(std::string_view text, std::string_view name);

// cgroup v2 cpu.stat: "usage_usec N", in microseconds.
[[nodiscard]] std::optional<std::uint64_t> parse_cgroup_cpu_usage_usec(std::string_view text);

// cgroup v2 memory.current: one number of bytes.
[[nodiscard]] std::optional<std::uint64_t> parse_cgroup_memory_current(std::string_view text);

// ---- One reading ----

enum class CpuSource { kProc, kCgroup };
enum class MemorySource { kPss, kRss, kCgroup };
[[nodiscard]] std::string_view to_string(CpuSource);     // "proc", "cgroup"
[[nodiscard]] std::string_view to_string(MemorySource);  // "pss", "rss", "cgroup"

struct UsageReading {
  double cpu_seconds = 0;  // cumulative user + system CPU time of the processes, reaped children included
  std::optional<std::uint64_t> memory_bytes;  // nullopt: memory could not be read
  CpuSource cpu_source = CpuSource::kProc;
  MemorySource memory_source = MemorySource::kPss;
  int root_pid = 0;         // the postmaster (0 for a cgroup reading)
  std::size_t processes = 0;  // how many were read (0 for a cgroup reading)
};

// The postmaster `pid` and all its descendants, read under `proc_root` ("/proc"):
//  - CPU: for each process its schedstat run time (nanoseconds), or utime + stime / `ticks_per_second`
//    where schedstat cannot be read, plus the postmaster's cutime + cstime (what its exited
//    backends used, only kept in ticks);
//  - memory: the sum of each process's PSS from smaps_rollup (PSS shares shared_buffers out
//    among the processes mapping it, so the sum counts it once). When a smaps_rollup cannot be
//    read (another user's process and no CAP_SYS_PTRACE), RSS instead: the postmaster's
//    resident pages plus each descendant's resident minus shared pages (an estimate, labelled
//    kRss), × `page_size`.
// Children come from task/PID/children; a process that exits between two reads is skipped.
// nullopt when the postmaster's own stat cannot be read or parsed (it is not running).
[[nodiscard]] std::optional<UsageReading> read_process_tree(const std::filesystem::path& proc_root, int pid,
                                                            long ticks_per_second, long page_size);

// A cgroup v2 directory (/sys/fs/cgroup/system.slice/postgresql@15-main.service): cpu.stat's
// usage_usec and memory.current (which includes the page cache the cgroup is charged for).
// nullopt when cpu.stat cannot be read.
[[nodiscard]] std::optional<UsageReading> read_cgroup(const std::filesystem::path& cgroup_dir);

// ---- From readings to rates ----

// Time the database was measured awake, split by whether any session was in use, and what it
// used meanwhile. Summable: the ledger stores these per period and the report adds them up.
struct UsageTotals {
  double seconds = 0;              // wall time covered by the intervals summed below
  double cpu_seconds = 0;          // CPU used over those intervals
  double memory_seconds = 0;       // wall time of the intervals with a memory reading
  double memory_byte_seconds = 0;  // ∫ memory dt over those (bytes × seconds)
  std::uint64_t samples = 0;       // intervals counted

  [[nodiscard]] double cpu_utilisation() const { return seconds > 0 ? cpu_seconds / seconds : 0; }  // vCPUs in use
  [[nodiscard]] double memory_bytes() const { return memory_seconds > 0 ? memory_byte_seconds / memory_seconds : 0; }
  UsageTotals& operator+=(const UsageTotals& other);
};

// Turns successive readings into UsageTotals. Each reading closes the interval since the
// previous one, counted as idle when no session was in use at any moment of it (the caller
// says so with `busy`), busy otherwise. An interval is discarded (and the reading starts a
// new one) when the processes changed under it: another postmaster pid, a CPU counter that
// went backwards, a change of source, or a non-positive duration. Memory over an interval is
// the mean of its two readings (the trapezoid), when both have one.
class UsageAccumulator {
 public:
  // `at`: seconds on a monotonic clock. `busy`: a session was in use during the interval
  // that this reading closes.
  void add(double at, const UsageReading& reading, bool busy);
  // Forget the previous reading: the next one starts a new interval (after a suspend).
  void restart() { previous_.reset(); }

  // What was accumulated since the last take, and reset to zero.
  [[nodiscard]] UsageTotals take_idle();
  [[nodiscard]] UsageTotals take_busy();
  [[nodiscard]] const UsageTotals& idle() const { return idle_; }
  [[nodiscard]] const UsageTotals& busy() const { return busy_; }

 private:
  struct Previous {
    double at;
    UsageReading reading;
  };
  std::optional<Previous> previous_;
  UsageTotals idle_;
  UsageTotals busy_;
};

}  // namespace pgnap::accounting

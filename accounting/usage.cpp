#include "accounting/usage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <deque>
#include <limits>
#include <unordered_set>

namespace pgnap::accounting {

namespace {

// Far above any procfs or cgroup file pgnap reads (a smaps_rollup is under 1 KiB): a file that
// keeps going is not one of them, and a bounded read bounds what a hostile tree can cost.
constexpr std::size_t kMaxFileBytes = 1 << 20;

// A postgres cluster has max_connections plus a handful of auxiliary processes; this is only
// a bound on the work of one reading should the tree be something else entirely.
constexpr std::size_t kMaxProcesses = 10000;

// procfs files report size 0 in stat, so read until EOF rather than by size. POSIX read
// rather than a stream: a read error (ESRCH from a process that exited under us) must be a
// failure, not a silently shorter text.
std::optional<std::string> read_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return std::nullopt;
    }
    if (text.size() + static_cast<std::size_t>(n) > kMaxFileBytes) {
      ::close(fd);
      return std::nullopt;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Whole-token numbers only: from_chars alone would accept "12abc" as 12.
template <typename T>
std::optional<T> to_number(std::string_view token) {
  T value{};
  const char* end = token.data() + token.size();
  const auto [ptr, ec] = std::from_chars(token.data(), end, value);
  if (token.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// Successive whitespace-separated tokens of a text.
class Tokens {
 public:
  explicit Tokens(std::string_view text) : rest_(text) {}
  std::optional<std::string_view> next() {
    while (!rest_.empty() && is_space(rest_.front())) rest_.remove_prefix(1);
    if (rest_.empty()) return std::nullopt;
    std::size_t n = 0;
    while (n < rest_.size() && !is_space(rest_[n])) ++n;
    const std::string_view token = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return token;
  }

 private:
  std::string_view rest_;
};

std::uint64_t add_saturating(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

std::uint64_t mul_saturating(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

struct StatWithState {
  ProcStat stat;
  char state = 0;
};

// parse_proc_stat keeps the state to itself (the header has no use for it); the tree reader
// needs it to tell a zombie, which has CPU times but no memory to read.
std::optional<StatWithState> parse_stat_with_state(std::string_view text) {
  const std::size_t space = text.find(' ');
  if (space == std::string_view::npos || space + 1 >= text.size() || text[space + 1] != '(') return std::nullopt;
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos || close < space + 1) return std::nullopt;

  StatWithState out;
  const auto pid = to_number<int>(text.substr(0, space));
  if (!pid || *pid <= 0) return std::nullopt;
  out.stat.pid = *pid;
  out.stat.comm = std::string(text.substr(space + 2, close - space - 2));

  // Fields 3 to 17 after the comm; field n is fields[n - 3].
  std::string_view fields[15];
  Tokens tokens(text.substr(close + 1));
  for (auto& field : fields) {
    const auto token = tokens.next();
    if (!token) return std::nullopt;
    field = *token;
  }
  if (fields[0].size() != 1) return std::nullopt;
  out.state = fields[0][0];
  const auto ppid = to_number<int>(fields[4 - 3]);
  const auto utime = to_number<std::uint64_t>(fields[14 - 3]);
  const auto stime = to_number<std::uint64_t>(fields[15 - 3]);
  // Signed in the kernel: a negative value is no count of ticks.
  const auto cutime = to_number<std::int64_t>(fields[16 - 3]);
  const auto cstime = to_number<std::int64_t>(fields[17 - 3]);
  if (!ppid || *ppid < 0 || !utime || !stime || !cutime || *cutime < 0 || !cstime || *cstime < 0) {
    return std::nullopt;
  }
  out.stat.ppid = *ppid;
  out.stat.utime = *utime;
  out.stat.stime = *stime;
  out.stat.cutime = static_cast<std::uint64_t>(*cutime);
  out.stat.cstime = static_cast<std::uint64_t>(*cstime);
  return out;
}

std::filesystem::path pid_dir(const std::filesystem::path& proc_root, int pid) {
  return proc_root / std::to_string(pid);
}

std::optional<StatWithState> read_stat(const std::filesystem::path& proc_root, int pid) {
  const auto text = read_file(pid_dir(proc_root, pid) / "stat");
  if (!text) return std::nullopt;
  auto parsed = parse_stat_with_state(*text);
  // Another pid's file would mean the directory is not what it claims to be.
  if (!parsed || parsed->stat.pid != pid) return std::nullopt;
  return parsed;
}

// A zombie (or a task being torn down) keeps its CPU times but has no address space left:
// smaps_rollup fails with ESRCH and statm reads all zeroes.
bool is_dead(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

struct ProcessMemory {
  std::optional<std::uint64_t> pss_bytes;
  std::optional<Statm> statm;
};

ProcessMemory read_memory(const std::filesystem::path& dir) {
  ProcessMemory m;
  if (const auto text = read_file(dir / "smaps_rollup")) m.pss_bytes = parse_smaps_rollup_pss(*text);
  if (const auto text = read_file(dir / "statm")) m.statm = parse_statm(*text);
  return m;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  auto parsed = parse_stat_with_state(text);
  if (!parsed) return std::nullopt;
  return std::move(parsed->stat);
}

std::optional<std::uint64_t> parse_smaps_rollup_pss(std::string_view text) {
  constexpr std::string_view kKey = "Pss:";  // not Pss_Anon:, Pss_File:, Pss_Shmem:
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (!line.starts_with(kKey)) continue;
    Tokens tokens(line.substr(kKey.size()));
    const auto number = tokens.next();
    const auto unit = tokens.next();
    if (!number || !unit || *unit != "kB" || tokens.next()) return std::nullopt;
    const auto kb = to_number<std::uint64_t>(*number);
    if (!kb || *kb > std::numeric_limits<std::uint64_t>::max() / 1024) return std::nullopt;
    return *kb * 1024;
  }
  return std::nullopt;
}

std::optional<Statm> parse_statm(std::string_view text) {
  // The kernel writes seven numbers; only the first three are used, but all must be numbers.
  Tokens tokens(text);
  Statm out;
  int count = 0;
  while (const auto token = tokens.next()) {
    const auto value = to_number<std::uint64_t>(*token);
    if (!value) return std::nullopt;
    if (count == 1) out.resident_pages = *value;
    if (count == 2) out.shared_pages = *value;
    ++count;
  }
  if (count < 3) return std::nullopt;
  return out;
}

std::optional<std::vector<int>> parse_children(std::string_view text) {
  std::vector<int> out;
  Tokens tokens(text);
  while (const auto token = tokens.next()) {
    const auto pid = to_number<int>(*token);
    if (!pid || *pid <= 0) return std::nullopt;
    out.push_back(*pid);
  }
  return out;
}

std::optional<int> parse_postmaster_pid(std::string_view text) {
  const auto pid = to_number<int>(trim(text.substr(0, text.find('\n'))));
  // A negative pid is a standalone (single-user) backend's lock, not a postmaster's.
  if (!pid || *pid <= 0) return std::nullopt;
  return pid;
}

std::optional<std::uint64_t> parse_cgroup_cpu_usage_usec(std::string_view text) {
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    Tokens tokens(line);
    const auto key = tokens.next();
    if (!key || *key != "usage_usec") continue;
    const auto value = tokens.next();
    if (!value || tokens.next()) return std::nullopt;
    return to_number<std::uint64_t>(*value);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_cgroup_memory_current(std::string_view text) {
  return to_number<std::uint64_t>(trim(text));
}

std::string_view to_string(CpuSource source) {
  switch (source) {
    case CpuSource::kProc: return "proc";
    case CpuSource::kCgroup: return "cgroup";
  }
  return "unknown";
}

std::string_view to_string(MemorySource source) {
  switch (source) {
    case MemorySource::kPss: return "pss";
    case MemorySource::kRss: return "rss";
    case MemorySource::kCgroup: return "cgroup";
  }
  return "unknown";
}

std::optional<std::string> parse_conf_setting(std::string_view text, std::string_view name) {
  std::optional<std::string> value;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) continue;
    line = trim(line.substr(name.size()));
    if (line.empty() || line.front() != '=') continue;  // another setting with this prefix
    line = trim(line.substr(1));
    std::string v;
    if (!line.empty() && line.front() == '\'') {
      // Quoted: up to the closing quote; '' is a quote.
      std::size_t i = 1;
      bool closed = false;
      for (; i < line.size(); ++i) {
        if (line[i] != '\'') {
          v.push_back(line[i]);
        } else if (i + 1 < line.size() && line[i + 1] == '\'') {
          v.push_back('\'');
          ++i;
        } else {
          closed = true;
          break;
        }
      }
      if (!closed) continue;
    } else {
      const std::size_t end = line.find_first_of(" \t#");
      v = std::string(line.substr(0, end));
    }
    value = std::move(v);  // the last one wins, as in PostgreSQL
  }
  return value;
}

std::optional<std::uint64_t> parse_schedstat_ns(std::string_view text) {
  const std::size_t end = text.find_first_of(" \n");
  const std::string_view first = text.substr(0, end);
  std::uint64_t ns = 0;
  const auto [ptr, ec] = std::from_chars(first.data(), first.data() + first.size(), ns);
  if (first.empty() || ec != std::errc() || ptr != first.data() + first.size()) return std::nullopt;
  return ns;
}

namespace {

// A live process's CPU time: schedstat's nanoseconds, else its stat's ticks.
double process_cpu_seconds(const std::filesystem::path& dir, const ProcStat& stat, long ticks_per_second) {
  if (const auto text = read_file(dir / "schedstat")) {
    if (const auto ns = parse_schedstat_ns(*text)) return static_cast<double>(*ns) / 1e9;
  }
  return static_cast<double>(add_saturating(stat.utime, stat.stime)) / static_cast<double>(ticks_per_second);
}

}  // namespace

std::optional<UsageReading> read_process_tree(const std::filesystem::path& proc_root, int pid, long ticks_per_second,
                                              long page_size) {
  if (pid <= 0 || ticks_per_second <= 0 || page_size <= 0) return std::nullopt;
  const auto root = read_stat(proc_root, pid);
  // A zombie postmaster has exited: only its parent has yet to reap it.
  if (!root || is_dead(root->state)) return std::nullopt;

  double cpu_seconds =
      static_cast<double>(add_saturating(root->stat.cutime, root->stat.cstime)) / static_cast<double>(ticks_per_second) +
      process_cpu_seconds(pid_dir(proc_root, pid), root->stat, ticks_per_second);
  std::size_t processes = 1;

  const ProcessMemory root_memory = read_memory(pid_dir(proc_root, pid));
  bool all_pss = root_memory.pss_bytes.has_value();
  std::uint64_t pss_bytes = root_memory.pss_bytes.value_or(0);
  // Only the postmaster counts its shared pages: they are mostly shared_buffers, which every
  // backend maps too and would otherwise be counted once per process.
  std::uint64_t rss_pages = root_memory.statm ? root_memory.statm->resident_pages : 0;

  struct Pending {
    int pid;
    int parent;
  };
  std::deque<Pending> queue;
  std::unordered_set<int> seen{pid};
  const auto enqueue_children = [&](int parent) {
    const auto text = read_file(pid_dir(proc_root, parent) / "task" / std::to_string(parent) / "children");
    // No list (the process just exited, or a kernel without CONFIG_PROC_CHILDREN): no children.
    if (!text) return;
    const auto children = parse_children(*text);
    if (!children) return;
    for (const int child : *children) {
      if (seen.size() >= kMaxProcesses) return;
      if (seen.insert(child).second) queue.push_back({child, parent});
    }
  };
  enqueue_children(pid);

  while (!queue.empty()) {
    const Pending p = queue.front();
    queue.pop_front();
    const auto stat = read_stat(proc_root, p.pid);
    // Gone since its parent listed it, or the pid already reused by a process of another parent.
    if (!stat || stat->stat.ppid != p.parent) continue;
    ++processes;
    cpu_seconds += process_cpu_seconds(pid_dir(proc_root, p.pid), stat->stat, ticks_per_second);
    enqueue_children(p.pid);

    if (is_dead(stat->state)) continue;
    const ProcessMemory memory = read_memory(pid_dir(proc_root, p.pid));
    if (!memory.pss_bytes) {
      // Exited while being read: its memory is freed, which is no reason to fall back to RSS.
      const auto again = read_stat(proc_root, p.pid);
      if (!again || is_dead(again->state)) continue;
      all_pss = false;
    }
    pss_bytes = add_saturating(pss_bytes, memory.pss_bytes.value_or(0));
    if (memory.statm && memory.statm->resident_pages > memory.statm->shared_pages) {
      rss_pages = add_saturating(rss_pages, memory.statm->resident_pages - memory.statm->shared_pages);
    }
  }

  UsageReading reading;
  reading.cpu_seconds = cpu_seconds;
  reading.cpu_source = CpuSource::kProc;
  reading.root_pid = pid;
  reading.processes = processes;
  if (all_pss) {
    reading.memory_source = MemorySource::kPss;
    reading.memory_bytes = pss_bytes;
  } else {
    reading.memory_source = MemorySource::kRss;
    if (root_memory.statm) reading.memory_bytes = mul_saturating(rss_pages, static_cast<std::uint64_t>(page_size));
  }
  return reading;
}

std::optional<UsageReading> read_cgroup(const std::filesystem::path& cgroup_dir) {
  const auto cpu_stat = read_file(cgroup_dir / "cpu.stat");
  if (!cpu_stat) return std::nullopt;
  const auto usage_usec = parse_cgroup_cpu_usage_usec(*cpu_stat);
  if (!usage_usec) return std::nullopt;

  UsageReading reading;
  reading.cpu_seconds = static_cast<double>(*usage_usec) / 1e6;
  reading.cpu_source = CpuSource::kCgroup;
  reading.memory_source = MemorySource::kCgroup;
  // Without the memory controller enabled for the cgroup there is no memory.current.
  if (const auto text = read_file(cgroup_dir / "memory.current"))
    reading.memory_bytes = parse_cgroup_memory_current(*text);
  return reading;
}

UsageTotals& UsageTotals::operator+=(const UsageTotals& other) {
  seconds += other.seconds;
  cpu_seconds += other.cpu_seconds;
  memory_seconds += other.memory_seconds;
  memory_byte_seconds += other.memory_byte_seconds;
  samples += other.samples;
  return *this;
}

void UsageAccumulator::add(double at, const UsageReading& reading, bool busy) {
  if (previous_) {
    const UsageReading& before = previous_->reading;
    const double dt = at - previous_->at;
    const double cpu = reading.cpu_seconds - before.cpu_seconds;
    // Anything else means the counters are not the same processes' at both ends (a restart,
    // a fallback to another source, a clock that did not advance): the delta would be noise.
    const bool same_processes = before.root_pid == reading.root_pid && before.cpu_source == reading.cpu_source &&
                                before.memory_source == reading.memory_source;
    if (same_processes && dt > 0 && std::isfinite(dt) && cpu >= 0 && std::isfinite(cpu)) {
      UsageTotals& totals = busy ? busy_ : idle_;
      totals.seconds += dt;
      totals.cpu_seconds += cpu;
      if (before.memory_bytes && reading.memory_bytes) {
        totals.memory_seconds += dt;
        totals.memory_byte_seconds +=
            (static_cast<double>(*before.memory_bytes) + static_cast<double>(*reading.memory_bytes)) / 2 * dt;
      }
      ++totals.samples;
    }
  }
  previous_ = Previous{at, reading};
}

UsageTotals UsageAccumulator::take_idle() {
  const UsageTotals out = idle_;
  idle_ = {};
  return out;
}

UsageTotals UsageAccumulator::take_busy() {
  const UsageTotals out = busy_;
  busy_ = {};
  return out;
}

}  // namespace pgnap::accounting

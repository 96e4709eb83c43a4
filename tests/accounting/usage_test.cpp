// Measured usage: the parsers of /proc and cgroup files, the process-tree and cgroup readers on
// files recorded from a PostgreSQL 15 cluster (tests/accounting/fixtures/README.md), and the
// accumulator's arithmetic. Each test writes its arithmetic out from the recorded numbers, so
// a reader can check the expected value against the fixture files without running anything.
#include "accounting/usage.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace pgnap::accounting {
namespace {

namespace fs = std::filesystem;

// This machine's `getconf PAGESIZE` and `getconf CLK_TCK` when the fixtures were recorded.
constexpr long kPageSize = 4096;
constexpr long kTicks = 100;

// The postmaster of the recorded cluster (fixtures/postmaster.pid).
constexpr int kPostmaster = 13692;

const fs::path kFixtures = PGNAP_USAGE_FIXTURES;

void expect_near_rel(double actual, double expected) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::max(1.0, std::abs(expected))) << "expected " << expected;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void spit(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// ---- /proc/PID/stat ----

TEST(ProcStat, ParsesTheRecordedPostmaster) {
  // fixtures/proc/13692/stat: "13692 (postgres) S 1 ... 3 5 26 6 ..."
  const auto s = parse_proc_stat(slurp(kFixtures / "proc/13692/stat"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, 13692);
  EXPECT_EQ(s->comm, "postgres");
  EXPECT_EQ(s->ppid, 1);
  EXPECT_EQ(s->utime, 3u);
  EXPECT_EQ(s->stime, 5u);
  EXPECT_EQ(s->cutime, 26u);  // a psql -c session that did work and exited before the recording
  EXPECT_EQ(s->cstime, 6u);
}

TEST(ProcStat, CommWithSpacesAndParenthesesEndsAtTheLastParenthesis) {
  const auto s = parse_proc_stat("4567 (postgres: a) b) S 13692 4567 4567 0 -1 4194368 652 0 1 0 11 7 2 1 20 0 1 0\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, 4567);
  EXPECT_EQ(s->comm, "postgres: a) b");
  EXPECT_EQ(s->ppid, 13692);
  EXPECT_EQ(s->utime, 11u);
  EXPECT_EQ(s->stime, 7u);
  EXPECT_EQ(s->cutime, 2u);
  EXPECT_EQ(s->cstime, 1u);

  const auto empty = parse_proc_stat("9 () R 1 9 9 0 -1 0 0 0 0 0 1 2 3 4");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->comm, "");
  EXPECT_EQ(empty->utime + empty->stime + empty->cutime + empty->cstime, 1u + 2 + 3 + 4);
}

TEST(ProcStat, RejectsGarbage) {
  for (const char* text : {"", " ", "garbage", ")", "(", "()", "12", "12 ", "12 (",
                           "12 x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4", "abc (postgres) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4",
                           "0 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4", "-5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4",
                           "5 (x) SS 1 1 1 0 -1 0 0 0 0 0 1 2 3 4", "5 (x) S -1 1 1 0 -1 0 0 0 0 0 1 2 3 4",
                           "5 (x) S 1 1 1 0 -1 0 0 0 0 0 1x 2 3 4", "5 ) (x S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4"}) {
    EXPECT_FALSE(parse_proc_stat(text)) << '"' << text << '"';
  }
}

TEST(ProcStat, RejectsNegativeOrOverflowingTimes) {
  // cutime and cstime are signed in the kernel: negative is no count of ticks.
  EXPECT_FALSE(parse_proc_stat("5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 -3 4"));
  EXPECT_FALSE(parse_proc_stat("5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 -4"));
  EXPECT_FALSE(parse_proc_stat("5 (x) S 1 1 1 0 -1 0 0 0 0 0 +1 2 3 4"));
  EXPECT_FALSE(parse_proc_stat("5 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551616 2 3 4"));  // 2^64
  const auto max = parse_proc_stat("5 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 2 3 4");
  ASSERT_TRUE(max);
  EXPECT_EQ(max->utime, 18446744073709551615u);
}

TEST(ProcStat, RejectsEveryTruncationBeforeCstime) {
  const std::string line = slurp(kFixtures / "proc/13692/stat");
  // The recorded line up to the start of field 17 (cstime): 14 fields after the comm.
  const std::string before_cstime = "13692 (postgres) S 1 13692 13692 0 -1 4194304 3832 2296 0 0 3 5 26 ";
  ASSERT_EQ(line.substr(0, before_cstime.size()), before_cstime);
  for (std::size_t n = 0; n <= before_cstime.size(); ++n) {
    EXPECT_FALSE(parse_proc_stat(std::string_view(line).substr(0, n))) << n;
  }
  // One byte more is cstime's single digit, "6": the line parses.
  const auto s = parse_proc_stat(std::string_view(line).substr(0, before_cstime.size() + 1));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cstime, 6u);
}

TEST(ProcStat, SurvivesEverySingleByteMutation) {
  // No crash and no UB (the sanitizer build checks) whatever one byte becomes; whatever still
  // parses has a positive pid.
  const std::string line = slurp(kFixtures / "proc/13725/stat");
  for (std::size_t i = 0; i < line.size(); ++i) {
    for (const char c : {'\0', ' ', '(', ')', '-', '9', '\n', 'x'}) {
      std::string mutated = line;
      mutated[i] = c;
      if (const auto s = parse_proc_stat(mutated)) {
        EXPECT_GT(s->pid, 0);
      }
    }
  }
}

// ---- The other /proc files, postmaster.pid and the cgroup files ----

TEST(UsageParse, SmapsRollupPssIsInKilobytes) {
  // fixtures/proc/13692/smaps_rollup: "Pss:               15117 kB" → 15117 × 1024 = 15479808 B
  // (and not Pss_Dirty, Pss_Anon, Pss_File or Pss_Shmem, the lines after it)
  EXPECT_EQ(parse_smaps_rollup_pss(slurp(kFixtures / "proc/13692/smaps_rollup")), 15479808u);
  EXPECT_EQ(parse_smaps_rollup_pss("Rss: 9 kB\nPss:\t12 kB\n"), 12u * 1024);
  EXPECT_EQ(parse_smaps_rollup_pss("Pss: 12 kB"), 12u * 1024);  // no final newline
  EXPECT_FALSE(parse_smaps_rollup_pss(""));
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss_Anon: 12 kB\nPss_File: 3 kB\n"));
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss: 12 MB\n"));
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss: 12\n"));
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss: -12 kB\n"));
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss: 12 kB extra\n"));
  // 2^54 kB is 2^64 B, one more than fits; one kB less fits.
  EXPECT_FALSE(parse_smaps_rollup_pss("Pss: 18014398509481984 kB\n"));
  EXPECT_EQ(parse_smaps_rollup_pss("Pss: 18014398509481983 kB\n"), 18014398509481983u * 1024);
}

TEST(UsageParse, StatmResidentAndShared) {
  // fixtures/proc/13692/statm: "54280 7347 6769 1322 0 429 0"
  const auto m = parse_statm(slurp(kFixtures / "proc/13692/statm"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->resident_pages, 7347u);
  EXPECT_EQ(m->shared_pages, 6769u);
  EXPECT_TRUE(parse_statm("1 2 3"));
  EXPECT_FALSE(parse_statm(""));
  EXPECT_FALSE(parse_statm("1 2"));
  EXPECT_FALSE(parse_statm("1 2 x 4 5 6 7"));
  EXPECT_FALSE(parse_statm("1 -2 3 4 5 6 7"));
}

TEST(UsageParse, Children) {
  // fixtures/proc/13692/task/13692/children: each pid followed by a space, no newline
  const auto c = parse_children(slurp(kFixtures / "proc/13692/task/13692/children"));
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, (std::vector<int>{13693, 13694, 13696, 13697, 13698, 13725, 13726}));
  // fixtures/proc/13693/task/13693/children: empty (the checkpointer has none)
  const auto none = parse_children(slurp(kFixtures / "proc/13693/task/13693/children"));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(parse_children(" 12  34 \n"), (std::vector<int>{12, 34}));
  EXPECT_FALSE(parse_children("12 x"));
  EXPECT_FALSE(parse_children("0"));
  EXPECT_FALSE(parse_children("-3"));
  EXPECT_FALSE(parse_children("99999999999"));
}

TEST(UsageParse, PostmasterPid) {
  // fixtures/postmaster.pid's first line: 13692
  EXPECT_EQ(parse_postmaster_pid(slurp(kFixtures / "postmaster.pid")), kPostmaster);
  EXPECT_EQ(parse_postmaster_pid("42"), 42);
  EXPECT_EQ(parse_postmaster_pid("42\r\n/data\n"), 42);
  EXPECT_FALSE(parse_postmaster_pid(""));
  EXPECT_FALSE(parse_postmaster_pid("\n42\n"));
  EXPECT_FALSE(parse_postmaster_pid("abc\n"));
  EXPECT_FALSE(parse_postmaster_pid("0\n"));
  // A single-user backend writes its pid negated: there is no postmaster.
  EXPECT_FALSE(parse_postmaster_pid("-13692\n/data\n"));
}

TEST(UsageParse, CgroupCpuStatUsageUsec) {
  // fixtures/cgroup/cpu.stat: "usage_usec 115854352000" on the first of four lines
  EXPECT_EQ(parse_cgroup_cpu_usage_usec(slurp(kFixtures / "cgroup/cpu.stat")), 115854352000u);
  EXPECT_EQ(parse_cgroup_cpu_usage_usec("usage_usec_other 5\nusage_usec 7\n"), 7u);
  EXPECT_FALSE(parse_cgroup_cpu_usage_usec(""));
  EXPECT_FALSE(parse_cgroup_cpu_usage_usec("user_usec 5\nsystem_usec 6\n"));
  EXPECT_FALSE(parse_cgroup_cpu_usage_usec("usage_usec\n"));
  EXPECT_FALSE(parse_cgroup_cpu_usage_usec("usage_usec x\n"));
  EXPECT_FALSE(parse_cgroup_cpu_usage_usec("usage_usec 5 6\n"));
}

TEST(UsageParse, CgroupMemoryCurrent) {
  // fixtures/cgroup/memory.current: 111497216
  EXPECT_EQ(parse_cgroup_memory_current(slurp(kFixtures / "cgroup/memory.current")), 111497216u);
  EXPECT_FALSE(parse_cgroup_memory_current(""));
  EXPECT_FALSE(parse_cgroup_memory_current("max\n"));
  EXPECT_FALSE(parse_cgroup_memory_current("12 13\n"));
  EXPECT_FALSE(parse_cgroup_memory_current("-12\n"));
}

TEST(UsageParse, SourceNames) {
  EXPECT_EQ(to_string(CpuSource::kProc), "proc");
  EXPECT_EQ(to_string(CpuSource::kCgroup), "cgroup");
  EXPECT_EQ(to_string(MemorySource::kPss), "pss");
  EXPECT_EQ(to_string(MemorySource::kRss), "rss");
  EXPECT_EQ(to_string(MemorySource::kCgroup), "cgroup");
}

// ---- read_process_tree on the recorded cluster ----

TEST(UsageTree, RecordedClusterSumsCpuAndPss) {
  const auto r = read_process_tree(kFixtures / "proc", kPostmaster, kTicks, kPageSize);
  ASSERT_TRUE(r);
  // CPU, utime + stime of each (fields 14 and 15), plus the postmaster's cutime + cstime:
  //   13692 postmaster      3 + 5 + 26 + 6 = 40
  //   13693 checkpointer    0 + 0           =  0
  //   13694 bgwriter        1 + 0           =  1
  //   13696 walwriter       1 + 1           =  2
  //   13697 autovacuum      0 + 0           =  0
  //   13698 logical repl.   0 + 0           =  0
  //   13725 session 1      26 + 6           = 32
  //   13726 session 2       1 + 0           =  1
  //   = 76 ticks / 100 = 0.76 s
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.76);
  // PSS: 15117 + 1007 + 1160 + 3045 + 1844 + 1645 + 4820 + 4215 = 32853 kB × 1024 = 33641472 B
  EXPECT_EQ(r->memory_bytes, 33641472u);
  EXPECT_EQ(r->memory_source, MemorySource::kPss);
  EXPECT_EQ(r->cpu_source, CpuSource::kProc);
  EXPECT_EQ(r->root_pid, kPostmaster);
  EXPECT_EQ(r->processes, 8u);
}

TEST(UsageTree, OneMissingSmapsRollupMeansRssForTheWholeTree) {
  // fixtures/proc-no-smaps: fixtures/proc with 13726/smaps_rollup removed by hand.
  const auto r = read_process_tree(kFixtures / "proc-no-smaps", kPostmaster, kTicks, kPageSize);
  ASSERT_TRUE(r);
  // statm, the postmaster's resident pages, then each descendant's resident − shared:
  //   13692 7347
  //   13693 1578 − 984  = 594
  //   13694 1683 − 1092 = 591
  //   13696 2605 − 2015 = 590
  //   13697 2325 − 1669 = 656
  //   13698 2135 − 1486 = 649
  //   13725 3709 − 2817 = 892
  //   13726 3540 − 2721 = 819
  //   = 7347 + 4791 = 12138 pages × 4096 = 49717248 B
  EXPECT_EQ(r->memory_bytes, 49717248u);
  EXPECT_EQ(r->memory_source, MemorySource::kRss);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.76);  // CPU is read as before
  EXPECT_EQ(r->processes, 8u);
}

TEST(UsageTree, LaterSnapshotShowsTheSessionsWork) {
  // fixtures/proc-later: the same tree after `select count(*) from generate_series(1,3000000)`
  // in session 1 (13725).
  const auto before = read_process_tree(kFixtures / "proc", kPostmaster, kTicks, kPageSize);
  const auto after = read_process_tree(kFixtures / "proc-later", kPostmaster, kTicks, kPageSize);
  ASSERT_TRUE(before && after);
  // CPU: as before but 13725 has 49 + 11 = 60 ticks (was 32): 76 − 32 + 60 = 104 ticks = 1.04 s
  EXPECT_DOUBLE_EQ(after->cpu_seconds, 1.04);
  // Δ = 1.04 − 0.76 = 0.28 s, all of it session 1's
  EXPECT_GT(after->cpu_seconds - before->cpu_seconds, 0);
  expect_near_rel(after->cpu_seconds - before->cpu_seconds, 0.28);
  // PSS: 15112 + 1007 + 1160 + 3045 + 1843 + 1644 + 5937 + 4213 = 33961 kB × 1024 = 34776064 B
  EXPECT_EQ(after->memory_bytes, 34776064u);
  EXPECT_EQ(after->processes, 8u);
}

TEST(UsageTree, NoSuchProcessIsNullopt) {
  EXPECT_FALSE(read_process_tree(kFixtures / "proc", 99999, kTicks, kPageSize));
  EXPECT_FALSE(read_process_tree(kFixtures / "no-such-dir", kPostmaster, kTicks, kPageSize));
  EXPECT_FALSE(read_process_tree(kFixtures / "proc", 0, kTicks, kPageSize));
  EXPECT_FALSE(read_process_tree(kFixtures / "proc", -1, kTicks, kPageSize));
  EXPECT_FALSE(read_process_tree(kFixtures / "proc", kPostmaster, 0, kPageSize));
  EXPECT_FALSE(read_process_tree(kFixtures / "proc", kPostmaster, kTicks, 0));
}

// ---- read_process_tree on trees made up here, for what a recording cannot catch ----

class UsageTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgnap-usage-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A process with `ticks` of utime, its memory files (smaps_rollup only when pss_kb >= 0)
  // and its children list.
  void process(int pid, int ppid, int ticks, const std::string& children, long pss_kb = 10, char state = 'S',
               const std::string& statm = "100 20 5 1 0 10 0\n") {
    const fs::path dir = root_ / std::to_string(pid);
    spit(dir / "stat", std::to_string(pid) + " (postgres) " + state + " " + std::to_string(ppid) +
                           " 1 1 0 -1 0 0 0 0 0 " + std::to_string(ticks) + " 0 0 0 20 0 1 0\n");
    if (!statm.empty()) spit(dir / "statm", statm);
    if (pss_kb >= 0) spit(dir / "smaps_rollup", "Pss: " + std::to_string(pss_kb) + " kB\n");
    spit(dir / "task" / std::to_string(pid) / "children", children);
  }

  fs::path root_;
};

TEST_F(UsageTreeTest, VanishedChildIsSkipped) {
  process(100, 1, 5, "101 102 ");
  process(101, 100, 7, "");
  // 102 is listed but has no directory: it exited before its stat was read.
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 2u);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.12);  // (5 + 7) / 100
  EXPECT_EQ(r->memory_bytes, 20u * 1024);  // 10 + 10 kB, still PSS
  EXPECT_EQ(r->memory_source, MemorySource::kPss);
}

TEST_F(UsageTreeTest, CyclesAreReadOnce) {
  process(100, 1, 5, "101 ");
  process(101, 100, 7, "100 101 101 ");
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 2u);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.12);
}

TEST_F(UsageTreeTest, AReusedPidOfAnotherParentIsSkipped) {
  process(100, 1, 5, "101 ");
  process(101, 55, 7, "");  // its ppid is not 100: the listed child exited and the pid was reused
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 1u);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.05);
}

TEST_F(UsageTreeTest, GrandchildrenAreRead) {
  process(100, 1, 1, "101 ");
  process(101, 100, 2, "102 ");
  process(102, 101, 4, "");
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 3u);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.07);  // (1 + 2 + 4) / 100
  EXPECT_EQ(r->memory_bytes, 30u * 1024);
}

TEST_F(UsageTreeTest, SchedstatNanosecondsWinOverTicksButNotOverReapedChildren) {
  process(100, 1, 5, "101 ");
  process(101, 100, 7, "");
  // The postmaster's stat says utime 5 ticks; its schedstat 52.5 ms. The child has no schedstat
  // (7 ticks). Reaped children (cutime, cstime) exist only in ticks: none here.
  spit(root_ / "100" / "schedstat", "52500000 1000 12\n");
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.0525 + 0.07);
}

TEST(UsageParse, Schedstat) {
  EXPECT_EQ(parse_schedstat_ns("3843089 0 2\n"), 3843089u);
  EXPECT_EQ(parse_schedstat_ns("336240904 73279342 1552"), 336240904u);
  EXPECT_FALSE(parse_schedstat_ns(""));
  EXPECT_FALSE(parse_schedstat_ns("-1 0 0\n"));
  EXPECT_FALSE(parse_schedstat_ns("12x 0 0\n"));
}

TEST_F(UsageTreeTest, ZombieChildCountsItsCpuButNoMemory) {
  process(100, 1, 5, "101 ");
  // A zombie: no smaps_rollup to read, statm all zeroes. Not a reason to fall back to RSS.
  process(101, 100, 7, "", -1, 'Z', "0 0 0 0 0 0 0\n");
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 2u);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.12);
  EXPECT_EQ(r->memory_source, MemorySource::kPss);
  EXPECT_EQ(r->memory_bytes, 10u * 1024);
}

TEST_F(UsageTreeTest, ZombiePostmasterIsNotRunning) {
  process(100, 1, 5, "", -1, 'Z', "0 0 0 0 0 0 0\n");
  EXPECT_FALSE(read_process_tree(root_, 100, kTicks, kPageSize));
}

TEST_F(UsageTreeTest, RssWithoutThePostmastersStatmHasNoMemory) {
  process(100, 1, 5, "101 ", -1, 'S', "");  // neither smaps_rollup nor statm
  process(101, 100, 7, "");
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->memory_source, MemorySource::kRss);
  EXPECT_FALSE(r->memory_bytes);
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.12);  // CPU still read
}

TEST_F(UsageTreeTest, SharedAboveResidentCountsZero) {
  process(100, 1, 0, "101 ", -1, 'S', "100 20 5 1 0 10 0\n");
  process(101, 100, 0, "", -1, 'S', "100 3 9 1 0 10 0\n");  // resident 3 − shared 9: 0, not a wrap
  const auto r = read_process_tree(root_, 100, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->memory_bytes, 20u * 4096);
}

TEST_F(UsageTreeTest, GarbageOrForeignPostmasterStatIsNullopt) {
  spit(root_ / "100" / "stat", "garbage\n");
  EXPECT_FALSE(read_process_tree(root_, 100, kTicks, kPageSize));
  process(200, 1, 5, "");
  fs::create_directories(root_ / "300");
  fs::copy_file(root_ / "200" / "stat", root_ / "300" / "stat");  // 300/stat says pid 200
  EXPECT_FALSE(read_process_tree(root_, 300, kTicks, kPageSize));
}

TEST_F(UsageTreeTest, StopsAtTenThousandProcesses) {
  // The bound counts the pids taken from children lists: the postmaster and the first 9999 of
  // its 10100 children (1001 to 10999). Only 10999 and 11000 exist here, so the reading shows
  // whether the bound falls between them without writing ten thousand files.
  std::string children;
  for (int pid = 1001; pid <= 11100; ++pid) children += std::to_string(pid) + " ";
  process(1000, 1, 1, children);
  process(10999, 1000, 2, "");
  process(11000, 1000, 4, "");
  const auto r = read_process_tree(root_, 1000, kTicks, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processes, 2u);             // 1000 and 10999; 11000 is past the bound
  EXPECT_DOUBLE_EQ(r->cpu_seconds, 0.03);  // (1 + 2) / 100
}

// ---- read_cgroup ----

TEST(UsageCgroup, RecordedCgroup) {
  const auto r = read_cgroup(kFixtures / "cgroup");
  ASSERT_TRUE(r);
  // usage_usec 115854352000 / 1e6 = 115854.352 s
  expect_near_rel(r->cpu_seconds, 115854.352);
  EXPECT_EQ(r->memory_bytes, 111497216u);
  EXPECT_EQ(r->cpu_source, CpuSource::kCgroup);
  EXPECT_EQ(r->memory_source, MemorySource::kCgroup);
  EXPECT_EQ(r->root_pid, 0);
  EXPECT_EQ(r->processes, 0u);
}

TEST_F(UsageTreeTest, CgroupWithoutMemoryCurrentHasNoMemory) {
  // A root cgroup, or one without the memory controller: cpu.stat only.
  fs::copy_file(kFixtures / "cgroup" / "cpu.stat", root_ / "cpu.stat");
  const auto r = read_cgroup(root_);
  ASSERT_TRUE(r);
  expect_near_rel(r->cpu_seconds, 115854.352);
  EXPECT_FALSE(r->memory_bytes);
  EXPECT_EQ(r->memory_source, MemorySource::kCgroup);

  spit(root_ / "cpu.stat", "user_usec 5\n");
  EXPECT_FALSE(read_cgroup(root_));
  EXPECT_FALSE(read_cgroup(root_ / "no-such-cgroup"));
}

// ---- UsageAccumulator and UsageTotals ----

UsageReading reading(double cpu, std::optional<std::uint64_t> memory, int pid = 13692,
                     MemorySource memory_source = MemorySource::kPss, CpuSource cpu_source = CpuSource::kProc) {
  UsageReading r;
  r.cpu_seconds = cpu;
  r.memory_bytes = memory;
  r.root_pid = pid;
  r.memory_source = memory_source;
  r.cpu_source = cpu_source;
  r.processes = 8;
  return r;
}

constexpr std::uint64_t kMB = 1'000'000;

TEST(UsageAccumulator, SplitsIdleAndBusyWithTrapezoidMemory) {
  UsageAccumulator acc;
  acc.add(100, reading(10.0, 100 * kMB), false);  // the first reading only starts an interval
  EXPECT_EQ(acc.idle().samples + acc.busy().samples, 0u);
  acc.add(110, reading(10.5, 100 * kMB), false);
  acc.add(120, reading(14.5, 300 * kMB), true);

  // idle: 110 − 100 = 10 s, 10.5 − 10 = 0.5 CPU s, memory (100 + 100) / 2 MB × 10 s = 1000 MB·s
  const UsageTotals& idle = acc.idle();
  EXPECT_DOUBLE_EQ(idle.seconds, 10);
  EXPECT_DOUBLE_EQ(idle.cpu_seconds, 0.5);
  EXPECT_DOUBLE_EQ(idle.memory_seconds, 10);
  EXPECT_DOUBLE_EQ(idle.memory_byte_seconds, 1000.0 * kMB);
  EXPECT_EQ(idle.samples, 1u);
  EXPECT_DOUBLE_EQ(idle.cpu_utilisation(), 0.05);  // 0.5 / 10
  EXPECT_DOUBLE_EQ(idle.memory_bytes(), 100.0 * kMB);

  // busy: 10 s, 14.5 − 10.5 = 4 CPU s, memory (100 + 300) / 2 = 200 MB × 10 s = 2000 MB·s
  const UsageTotals& busy = acc.busy();
  EXPECT_DOUBLE_EQ(busy.seconds, 10);
  EXPECT_DOUBLE_EQ(busy.cpu_seconds, 4);
  EXPECT_DOUBLE_EQ(busy.memory_byte_seconds, 2000.0 * kMB);
  EXPECT_EQ(busy.samples, 1u);
  EXPECT_DOUBLE_EQ(busy.cpu_utilisation(), 0.4);
  EXPECT_DOUBLE_EQ(busy.memory_bytes(), 200.0 * kMB);
}

TEST(UsageAccumulator, MemoryOnlyWhereBothEndsHaveIt) {
  UsageAccumulator acc;
  acc.add(0, reading(1, 100 * kMB), false);
  acc.add(10, reading(2, std::nullopt), false);  // counted, but no memory
  acc.add(30, reading(3, 200 * kMB), false);     // counted, but no memory
  acc.add(40, reading(4, 300 * kMB), false);     // memory (200 + 300) / 2 = 250 MB × 10 s
  const UsageTotals& idle = acc.idle();
  EXPECT_DOUBLE_EQ(idle.seconds, 40);
  EXPECT_DOUBLE_EQ(idle.cpu_seconds, 3);
  EXPECT_EQ(idle.samples, 3u);
  EXPECT_DOUBLE_EQ(idle.memory_seconds, 10);
  EXPECT_DOUBLE_EQ(idle.memory_byte_seconds, 2500.0 * kMB);
  EXPECT_DOUBLE_EQ(idle.memory_bytes(), 250.0 * kMB);
}

TEST(UsageAccumulator, DiscardsTheIntervalWhenThePostmasterChanged) {
  UsageAccumulator acc;
  acc.add(0, reading(50, kMB, 13692), false);
  acc.add(10, reading(0.5, kMB, 20000), false);  // restarted: a new pid, its counters from 0
  EXPECT_EQ(acc.idle().samples, 0u);
  acc.add(20, reading(1.5, kMB, 20000), false);  // and the new one is counted from there
  EXPECT_EQ(acc.idle().samples, 1u);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 10);
  EXPECT_DOUBLE_EQ(acc.idle().cpu_seconds, 1);
}

TEST(UsageAccumulator, DiscardsTheIntervalWhenCpuWentBackwards) {
  UsageAccumulator acc;
  acc.add(0, reading(5, kMB), false);
  acc.add(10, reading(4, kMB), true);  // a backend exited before the postmaster reaped it
  EXPECT_EQ(acc.busy().samples, 0u);
  acc.add(20, reading(4, kMB), true);  // no CPU used is a valid interval
  EXPECT_EQ(acc.busy().samples, 1u);
  EXPECT_DOUBLE_EQ(acc.busy().cpu_seconds, 0);
  EXPECT_DOUBLE_EQ(acc.busy().seconds, 10);
}

TEST(UsageAccumulator, DiscardsTheIntervalWhenASourceChanged) {
  UsageAccumulator acc;
  acc.add(0, reading(1, kMB, 13692, MemorySource::kPss), false);
  acc.add(10, reading(2, kMB, 13692, MemorySource::kRss), false);  // a smaps_rollup became unreadable
  EXPECT_EQ(acc.idle().samples, 0u);
  acc.add(20, reading(3, kMB, 13692, MemorySource::kRss), false);
  EXPECT_EQ(acc.idle().samples, 1u);
  acc.add(30, reading(4, kMB, 0, MemorySource::kRss, CpuSource::kCgroup), false);
  acc.add(40, reading(5, kMB, 0, MemorySource::kCgroup, CpuSource::kCgroup), false);
  EXPECT_EQ(acc.idle().samples, 1u);
  acc.add(50, reading(6, kMB, 0, MemorySource::kCgroup, CpuSource::kCgroup), false);
  EXPECT_EQ(acc.idle().samples, 2u);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 20);  // 20 → 10 and 40 → 50
}

TEST(UsageAccumulator, DiscardsANonPositiveDuration) {
  UsageAccumulator acc;
  acc.add(10, reading(1, kMB), false);
  acc.add(10, reading(2, kMB), false);
  acc.add(5, reading(3, kMB), false);
  EXPECT_EQ(acc.idle().samples, 0u);
  acc.add(6, reading(3.5, kMB), false);  // counted from the last reading (at 5)
  EXPECT_EQ(acc.idle().samples, 1u);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 1);
  EXPECT_DOUBLE_EQ(acc.idle().cpu_seconds, 0.5);
}

TEST(UsageAccumulator, RestartForgetsThePreviousReading) {
  UsageAccumulator acc;
  acc.add(0, reading(1, kMB), false);
  acc.restart();                            // suspended in between
  acc.add(3600, reading(1.5, kMB), false);  // an hour asleep is not an idle interval
  EXPECT_EQ(acc.idle().samples, 0u);
  acc.add(3610, reading(2, kMB), false);
  EXPECT_EQ(acc.idle().samples, 1u);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 10);
}

TEST(UsageAccumulator, TakeReturnsAndResets) {
  UsageAccumulator acc;
  acc.add(0, reading(1, kMB), false);
  acc.add(10, reading(2, kMB), false);
  acc.add(20, reading(4, kMB), true);
  const UsageTotals idle = acc.take_idle();
  EXPECT_EQ(idle.samples, 1u);
  EXPECT_DOUBLE_EQ(idle.cpu_seconds, 1);
  EXPECT_EQ(acc.idle().samples, 0u);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 0);
  EXPECT_EQ(acc.busy().samples, 1u);  // untouched by take_idle
  const UsageTotals busy = acc.take_busy();
  EXPECT_DOUBLE_EQ(busy.cpu_seconds, 2);
  EXPECT_EQ(acc.busy().samples, 0u);
  // The previous reading is kept: the next interval runs on from 20.
  acc.add(25, reading(4.5, kMB), false);
  EXPECT_DOUBLE_EQ(acc.idle().seconds, 5);
}

TEST(UsageAccumulator, RecordedSnapshotsAsOneBusyInterval) {
  const auto before = read_process_tree(kFixtures / "proc", kPostmaster, kTicks, kPageSize);
  const auto after = read_process_tree(kFixtures / "proc-later", kPostmaster, kTicks, kPageSize);
  ASSERT_TRUE(before && after);
  UsageAccumulator acc;
  acc.add(0, *before, false);
  acc.add(5, *after, true);  // taken as 5 s apart
  const UsageTotals busy = acc.take_busy();
  // 1.04 − 0.76 = 0.28 s over 5 s = 0.056 vCPU
  expect_near_rel(busy.cpu_utilisation(), 0.056);
  // (33641472 + 34776064) / 2 = 34208768 B
  EXPECT_DOUBLE_EQ(busy.memory_bytes(), 34208768.0);
}

TEST(UsageTotals, RatesAreZeroWithNothingMeasured) {
  const UsageTotals t;
  EXPECT_EQ(t.cpu_utilisation(), 0);
  EXPECT_EQ(t.memory_bytes(), 0);
}

TEST(UsageTotals, PlusEqualsAddsEveryField) {
  UsageTotals a{.seconds = 10, .cpu_seconds = 1, .memory_seconds = 10, .memory_byte_seconds = 1000, .samples = 1};
  const UsageTotals b{.seconds = 30, .cpu_seconds = 5, .memory_seconds = 20, .memory_byte_seconds = 8000, .samples = 3};
  a += b;
  EXPECT_DOUBLE_EQ(a.seconds, 40);
  EXPECT_DOUBLE_EQ(a.cpu_seconds, 6);
  EXPECT_DOUBLE_EQ(a.memory_seconds, 30);
  EXPECT_DOUBLE_EQ(a.memory_byte_seconds, 9000);
  EXPECT_EQ(a.samples, 4u);
  // (1 + 5) / (10 + 30) = 0.15 vCPU; (1000 + 8000) / (10 + 20) = 300 B
  EXPECT_DOUBLE_EQ(a.cpu_utilisation(), 0.15);
  EXPECT_DOUBLE_EQ(a.memory_bytes(), 300);
}

}  // namespace
}  // namespace pgnap::accounting

namespace pgnap::accounting {
namespace {

TEST(UsageParse, ConfSettingAsPostgresqlReadsIt) {
  const std::string conf =
      "# data_directory = '/commented'\n"
      "data_directory_x = '/other'\n"
      "data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory\n"
      "external_pid_file = '/var/run/postgresql/15-main.pid'  # write an extra PID file\n"
      "port = 5433\n"
      "cluster_name = 'it''s'\n"
      "broken = 'unterminated\n";
  EXPECT_EQ(parse_conf_setting(conf, "data_directory"), "/var/lib/postgresql/15/main");
  EXPECT_EQ(parse_conf_setting(conf, "external_pid_file"), "/var/run/postgresql/15-main.pid");
  EXPECT_EQ(parse_conf_setting(conf, "port"), "5433");
  EXPECT_EQ(parse_conf_setting(conf, "cluster_name"), "it's");
  EXPECT_FALSE(parse_conf_setting(conf, "broken"));
  EXPECT_FALSE(parse_conf_setting(conf, "hba_file"));
  // The last setting wins, as in PostgreSQL.
  EXPECT_EQ(parse_conf_setting("port = 1\nport = 2\n", "port"), "2");
}

}  // namespace
}  // namespace pgnap::accounting

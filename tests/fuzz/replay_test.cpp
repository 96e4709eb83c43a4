// Replays every checked-in input of the fuzz targets in the normal build: each file of
// tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/ is one test, run through
// the target's own LLVMFuzzerTestOneInput (compiled here under another name, see
// CMakeLists.txt). A target checks its invariants with abort(), so a failing input kills its
// test, and the test's name says which file it was. Tests are listed when ctest runs, so a
// regression input added by tests/fuzz/run.sh is replayed without rebuilding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <set>
#include <string>
#include <vector>

extern "C" int fuzz_startup_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_message_scanner_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_backend_messages_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_frontend_messages_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_config_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_scram_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_auth_file_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_sql_text_one_input(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_kernel_walk_one_input(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;  // fuzz_<name>.cpp, corpus/<name>/, regressions/<name>/
  int (*one_input)(const std::uint8_t*, std::size_t);
};

constexpr Target kTargets[] = {
    {"startup", fuzz_startup_one_input},
    {"message_scanner", fuzz_message_scanner_one_input},
    {"backend_messages", fuzz_backend_messages_one_input},
    {"frontend_messages", fuzz_frontend_messages_one_input},
    {"config", fuzz_config_one_input},
    {"scram", fuzz_scram_one_input},
    {"auth_file", fuzz_auth_file_one_input},
    {"sql_text", fuzz_sql_text_one_input},
    {"kernel_walk", fuzz_kernel_walk_one_input},
};

const fs::path kFuzzDir = PGNAP_FUZZ_DIR;

struct Input {
  const Target* target;
  fs::path file;
  std::string test_name;  // "<target>_<corpus|regressions>_<file>", as gtest allows
};

// Files in a directory, sorted; README* files are documentation, not inputs.
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && !entry.path().filename().string().starts_with("README")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string identifier(const std::string& text) {
  std::string out;
  for (const char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::vector<Input> all_inputs() {
  std::vector<Input> inputs;
  std::set<std::string> names;
  for (const Target& target : kTargets) {
    for (const char* kind : {"corpus", "regressions"}) {
      for (const fs::path& file : files_in(kFuzzDir / kind / target.name)) {
        std::string name = identifier(std::string(target.name) + "_" + kind + "_" + file.filename().string());
        while (!names.insert(name).second) name += "_";
        inputs.push_back({&target, file, name});
      }
    }
  }
  return inputs;
}

std::vector<std::uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// How gtest (and so ctest's test list) shows an input: its path under tests/fuzz.
void PrintTo(const Input& input, std::ostream* out) { *out << input.file.lexically_relative(kFuzzDir).string(); }

class Replay : public ::testing::TestWithParam<Input> {};

TEST_P(Replay, KeepsTheTargetsInvariants) {
  const Input& input = GetParam();
  ASSERT_TRUE(fs::is_regular_file(input.file)) << input.file;
  const std::vector<std::uint8_t> bytes = read_file(input.file);
  // Printed first: a broken invariant aborts the process.
  std::fprintf(stderr, "replaying %s (%zu bytes) through fuzz_%s\n", input.file.c_str(), bytes.size(),
               input.target->name);
  EXPECT_EQ(input.target->one_input(bytes.data(), bytes.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Inputs, Replay, ::testing::ValuesIn(all_inputs()),
                         [](const ::testing::TestParamInfo<Input>& info) { return info.param.test_name; });

// Every target has seeds, and every corpus directory belongs to a target replayed here.
TEST(ReplaySetup, EveryTargetHasSeedsAndEveryCorpusATarget) {
  std::set<std::string> known;
  for (const Target& target : kTargets) {
    known.insert(target.name);
    EXPECT_FALSE(files_in(kFuzzDir / "corpus" / target.name).empty()) << "no seeds for fuzz_" << target.name;
    EXPECT_TRUE(fs::exists(kFuzzDir / ("fuzz_" + std::string(target.name) + ".cpp"))) << target.name;
  }
  for (const char* kind : {"corpus", "regressions"}) {
    if (!fs::is_directory(kFuzzDir / kind)) continue;
    for (const auto& entry : fs::directory_iterator(kFuzzDir / kind)) {
      if (entry.is_directory()) {
        EXPECT_TRUE(known.contains(entry.path().filename().string()))
            << entry.path() << " has no fuzz target in replay_test.cpp's kTargets";
      }
    }
  }
}

}  // namespace

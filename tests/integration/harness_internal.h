// Helpers shared by the harness's own .cpp files (not for tests).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pgnap::it::internal {

// Setup failures throw: GoogleTest reports the message as the test's failure.
[[noreturn]] void fail(const std::string& what);
// A waitpid status as an exit code: the code, or 128+N when killed by signal N.
int decode_wait_status(int status);
// argv for execv; the strings must outlive it.
std::vector<char*> c_argv(const std::vector<std::string>& argv);
// In a freshly forked child: its own process group, and death with the test process.
void child_setup();
// In a forked child whose exec failed: say so on stderr and _exit(127).
[[noreturn]] void child_exec_failed(const char* what);
// Starts argv (execvp: PATH lookup) as a child in its own process group, stdin from
// /dev/null, stdout and stderr appended to `log_path` (truncated first), with `env` added to
// (or replacing entries of) the test's environment. Returns the pid; throws if it cannot fork.
int spawn_logged(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::vector<std::pair<std::string, std::string>>& env = {});
// True while a test runs and has failed: time to print what explains it.
bool test_failed();
// Prints a titled block to stderr (ctest --output-on-failure shows it).
void print_section(const std::string& title, const std::string& body);
// Sanitizer builds (make test-sanitize): ASan, LeakSanitizer and UBSan print their report on
// the program's stderr, then abort. A program the harness stops with SIGKILL, or whose exit
// status no test looks at, would hide it, so the harness passes what each program it ran
// printed here: a report in `output` fails the current test, quoting it. (No-op otherwise.)
void expect_no_sanitizer_report(const std::string& who, const std::string& output);

}  // namespace pgnap::it::internal

# pgnap: build, test and try it. Every target first makes sure the Debian packages it needs
# are installed (scripts/install-deps.sh asks apt only for what is missing).
#
#   make build   configure and build into $(BUILD_DIR) (the binary: $(BUILD_DIR)/pgnap)
#   make test    build, then run unit and integration tests (ctest, $(TEST_JOBS) at a time: the
#                integration tests mostly wait on PostgreSQL, so more than the cores), with the
#                kernel relay when run as root ($(TEST_RELAY))
#   make test-sanitize  the same tests built with ASan+UBSan into $(SANITIZE_BUILD_DIR), the
#                integration tests with the user-space relay;
#                any sanitizer report (a leak too) fails the test that caused it
#                (build-sanitize: only its build)
#   make demo    build, then run pgnap in front of a throwaway cluster (scripts/demo.sh)
#   make deb     build, then the Debian package of that build into dist/ (DEB_REVISION=1)
#   make test-package  build two packages (revisions 1 and 2) and test them on this machine:
#                lintian, install, upgrade, remove, purge (root; tests/package/deb_test.sh)
#   make bench   build, then measure pgnap next to PostgreSQL direct and PgBouncer
#                (bench/run.sh; about 40 minutes; writes docs/benchmarks.md)
#   make fuzz    build the libFuzzer targets with clang, run them for FUZZ_SECONDS=90 (tests/fuzz/run.sh)
#   make format  apply .clang-format to every source file (format-check: only list the changes)
#   make clean   remove $(BUILD_DIR); `make distclean` also removes var/ (the demo cluster)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
SANITIZE_BUILD_DIR ?= build-sanitize
TEST_JOBS ?= 4
# The relay the integration tests run pgnap with ($PGNAP_TEST_RELAY, tests/integration/harness.h):
# as root the kernel relay (its clusters then listen on TCP, which it needs), else user space.
# `make test-sanitize` runs them again with the user-space relay, so CI covers both.
TEST_RELAY ?= $(shell [ "$$(id -u)" -eq 0 ] && echo kernel || echo user)

.PHONY: all deps build test demo bench fuzz format format-check clean distclean deb test-package

all: build

deps:
	scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$$(nproc)

test: build
	PGNAP_TEST_RELAY=$(TEST_RELAY) ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(TEST_JOBS)
	@if [ "$$(id -u)" -eq 0 ]; then \
	  $(MAKE) --no-print-directory test-package; \
	else \
	  echo "make test: NOT RUN: the package test (it installs the package): run 'sudo make test-package'"; \
	fi

# Every report is fatal (abort_on_error / halt_on_error), leaks included. lsan.supp is for
# known leaks in system libraries only, each explained there.
SANITIZE_ENV = \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
  LSAN_OPTIONS=suppressions=$(abspath tests/sanitizers/lsan.supp):print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1

.PHONY: test-sanitize build-sanitize
# The sanitized build holds pgnap and the unit tests; the integration tests (which only drive
# pgnap from outside) are the main build's, run against the sanitized pgnap ($PGNAP_BINARY):
# the half of the build they would add buys nothing the sanitized daemon does not already show.
# The pure libraries' own unit tests (protocol_test, auth_test, config_test, fuzz_replay_test)
# are left out too, for CI's time: `make fuzz`, in the same CI run, runs that code under
# ASan+UBSan (from fuzz_replay_test's inputs, its seeds, onwards).
SANITIZE_TARGETS = pgnap accounting_test backends_test bpf_test daemon_test metrics_test
build-sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DPGNAP_SANITIZE=ON
	cmake --build $(SANITIZE_BUILD_DIR) -j$$(nproc) --target $(SANITIZE_TARGETS)

# The sanitized run leaves out the tests that are about scale or wall-clock waits (thousands
# of connections, the soak, a keep-warm window a minute ahead) and the packaging checks: they
# run in `make test`, reach no code the smaller tests do not reach, and would add minutes
# under ASan.
SANITIZE_SKIP ?= soak|TwoThousandConnections|TwoHundredClients|AHundredParkedSessions|Serves500Requests|KeepWarmWindow|systemd_units|install_layout
SANITIZE_TEST_JOBS ?= 5

# The two halves, run on what is already built (CI builds the sanitized pgnap first and
# compiles the sanitized unit tests while the integration tests run against that pgnap):
#   test-sanitize-units        the unit tests of $(SANITIZE_BUILD_DIR)
#   test-sanitize-integration  the main build's integration tests against the sanitized pgnap
# test-sanitize builds both and runs them side by side (the unit tests are CPU-bound, the
# integration tests mostly wait on PostgreSQL); the unit tests' output follows.
.PHONY: test-sanitize-units test-sanitize-integration
# Each sanitized test binary runs once, all its cases in one process: ctest's one process per
# case paid an ASan start-up for each of ~330 cases (about 700 s of CPU in CI, for 20 s of
# tests). A failing case is named in the binary's output, and the binary's exit fails the run.
SANITIZE_UNIT_TESTS = $(filter-out pgnap,$(SANITIZE_TARGETS))
test-sanitize-units:
	@failed=""; for t in $(SANITIZE_UNIT_TESTS); do \
	  bin=$$(find $(SANITIZE_BUILD_DIR)/tests -name $$t -type f | head -1); \
	  echo "--- $$t"; \
	  if [ -z "$$bin" ]; then echo "$$t was not built"; failed="$$failed $$t"; continue; fi; \
	  $(SANITIZE_ENV) $$bin --gtest_brief=1 || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "sanitized unit tests failed:$$failed"; exit 1; fi

test-sanitize-integration:
	$(SANITIZE_ENV) PGNAP_TEST_RELAY=user PGNAP_BINARY=$(abspath $(SANITIZE_BUILD_DIR))/pgnap ctest --test-dir $(BUILD_DIR) \
	  --output-on-failure -j$(SANITIZE_TEST_JOBS) -L integration -E '$(SANITIZE_SKIP)'

test-sanitize: build-sanitize build
	@$(MAKE) --no-print-directory test-sanitize-units > $(SANITIZE_BUILD_DIR)/unit-tests.log 2>&1 & unit=$$!; \
	integration=0; $(MAKE) --no-print-directory test-sanitize-integration || integration=$$?; \
	units=0; wait $$unit || units=$$?; \
	echo "--- the sanitized unit tests ($(SANITIZE_BUILD_DIR)/unit-tests.log):"; cat $(SANITIZE_BUILD_DIR)/unit-tests.log; \
	[ $$integration -eq 0 ] && [ $$units -eq 0 ]

# The Debian package (debian/), built by dpkg-buildpackage and debhelper from the tree
# `make build` made: debian/rules gives it Debian's install paths (/usr) and compiles nothing
# again. The version is CHANGELOG.md's; DEB_REVISION is the package's revision of it. The
# packages, .buildinfo and .changes land in dist/.
DEB_REVISION ?= 1
DEB_DIR ?= dist
deb: build
	scripts/debian-changelog.sh $(DEB_REVISION)
	PGNAP_BUILD_DIR=$(abspath $(BUILD_DIR)) dpkg-buildpackage --build=binary --no-sign
	mkdir -p $(DEB_DIR)
	version=$$(dpkg-parsechangelog -SVersion) && \
	  mv ../pgnap_$${version}_*.deb ../pgnap-dbgsym_$${version}_*.deb ../pgnap_$${version}_*.buildinfo \
	     ../pgnap_$${version}_*.changes $(DEB_DIR)/ && \
	  ls -l $(DEB_DIR)/*_$${version}_*

# The package test (tests/package/deb_test.sh): lintian, then the package of this tree
# installed, upgraded to a rebuild with the next Debian revision, removed and purged, on this
# machine. Root only, and only where no pgnap package is installed (CI, a throwaway VM).
PACKAGE_TEST_DIR ?= $(BUILD_DIR)/deb
test-package: build
	rm -rf $(PACKAGE_TEST_DIR)
	$(MAKE) --no-print-directory deb DEB_REVISION=1 DEB_DIR=$(PACKAGE_TEST_DIR)
	$(MAKE) --no-print-directory deb DEB_REVISION=2 DEB_DIR=$(PACKAGE_TEST_DIR)
	scripts/debian-changelog.sh 1
	tests/package/deb_test.sh $(PACKAGE_TEST_DIR)/pgnap_*-1_*.deb $(PACKAGE_TEST_DIR)/pgnap_*-2_*.deb

demo: build
	PGNAP=$(abspath $(BUILD_DIR))/pgnap scripts/demo.sh

bench: build
	BUILD_DIR=$(abspath $(BUILD_DIR)) bench/run.sh

fuzz: deps
	tests/fuzz/run.sh

# .clang-format matches the code's style; format applies it, format-check lists what it would change.
FORMAT_SOURCES = find protocol auth config accounting metrics backends daemon tests bench \( -name '*.cpp' -o -name '*.h' \) \
  -not -path 'tests/fuzz/corpus/*' -print0
format:
	$(FORMAT_SOURCES) | xargs -0 clang-format -i

format-check:
	$(FORMAT_SOURCES) | xargs -0 clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD_DIR)

distclean: clean
	scripts/demo.sh --stop
	rm -rf var

# pgnap: build, test and try it. Every target first makes sure the Debian packages it needs
# are installed (scripts/install-deps.sh asks apt only for what is missing).
#
#   make build   configure and build into $(BUILD_DIR) (the binary: $(BUILD_DIR)/pgnap)
#   make test    build, then run unit and integration tests (ctest, two at a time)
#   make demo    build, then run pgnap in front of a throwaway cluster (scripts/demo.sh)
#   make bench   build, then measure pgnap next to PostgreSQL direct and PgBouncer
#                (bench/run.sh; about 15 minutes; writes docs/benchmarks.md)
#   make fuzz    build the libFuzzer targets with clang, run them for FUZZ_SECONDS=90 (tests/fuzz/run.sh)
#   make clean   remove $(BUILD_DIR); `make distclean` also removes var/ (the demo cluster)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps build test demo bench fuzz clean distclean

all: build

deps:
	scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$$(nproc)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

demo: build
	PGNAP=$(abspath $(BUILD_DIR))/pgnap scripts/demo.sh

bench: build
	BUILD_DIR=$(abspath $(BUILD_DIR)) bench/run.sh

fuzz: deps
	tests/fuzz/run.sh

clean:
	rm -rf $(BUILD_DIR)

distclean: clean
	scripts/demo.sh --stop
	rm -rf var

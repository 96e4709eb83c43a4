#!/bin/sh
# Bounded-time fuzzing, for CI and `make fuzz`: configures a clang build with -DPGNAP_FUZZ=ON
# in $1 (default build-fuzz, under the source tree), builds every fuzz target, and runs each
# on a scratch copy of its seeds and regression inputs, so that all of them together take
# about FUZZ_SECONDS (default 90) seconds, build not included. The checked-in corpora are never
# written to.
#
# A crash, leak, timeout (> 10 s for one input) or out-of-memory (> 2 GB) is copied into
# tests/fuzz/regressions/<target>/, where fuzz_replay_test replays it from then on; the run
# goes on with the other targets and exits non-zero naming each target and file.
#
#   tests/fuzz/run.sh                       # 90 s in build-fuzz
#   FUZZ_SECONDS=600 tests/fuzz/run.sh /tmp/fuzz-build
set -eu

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$FUZZ_DIR/../.." && pwd)
BUILD_DIR=${1:-$ROOT/build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-90}
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# The targets: one fuzz_<name>.cpp each (CMakeLists.txt builds the same list).
TARGETS=""
count=0
for source in "$FUZZ_DIR"/fuzz_*.cpp; do
  name=$(basename "$source" .cpp)
  TARGETS="$TARGETS ${name#fuzz_}"
  count=$((count + 1))
done
per_target=$((FUZZ_SECONDS / count))
[ "$per_target" -ge 1 ] || per_target=1

# A directory configured with another compiler keeps it: refuse rather than build nothing.
if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$BUILD_DIR/CMakeCache.txt"; then
  echo "run.sh: $BUILD_DIR is configured with a compiler other than clang; give another directory" >&2
  exit 2
fi
echo "run.sh: building the fuzz targets in $BUILD_DIR"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -DPGNAP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target fuzz_all -j"$(nproc)"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pgnap-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT INT TERM

failures=""
echo "run.sh: fuzzing$TARGETS for ${per_target}s each"
for target in $TARGETS; do
  corpus="$SCRATCH/corpus/$target"
  artifacts="$SCRATCH/artifacts/$target"
  log="$SCRATCH/$target.log"
  mkdir -p "$corpus" "$artifacts"
  for dir in "$FUZZ_DIR/corpus/$target" "$FUZZ_DIR/regressions/$target"; do
    [ -d "$dir" ] || continue
    find "$dir" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$corpus/" \;
  done
  seeds=$(find "$corpus" -type f | wc -l)
  dict=""
  [ -f "$FUZZ_DIR/dict/$target.dict" ] && dict="-dict=$FUZZ_DIR/dict/$target.dict"

  rc=0
  # shellcheck disable=SC2086
  "$BUILD_DIR/tests/fuzz/fuzz_$target" -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" $dict "$corpus" >"$log" 2>&1 || rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  echo "  fuzz_$target: ${execs:-?} runs, ${rate:-?}/s, $cov, corpus $seeds -> $(find "$corpus" -type f | wc -l)"

  if [ "$rc" -ne 0 ]; then
    found=""
    for file in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
      [ -f "$file" ] || continue
      mkdir -p "$FUZZ_DIR/regressions/$target"
      cp "$file" "$FUZZ_DIR/regressions/$target/"
      found="$found tests/fuzz/regressions/$target/$(basename "$file")"
    done
    echo "run.sh: fuzz_$target failed (exit $rc):${found:- no input saved}" >&2
    grep -v '^#[0-9]' "$log" | tail -n 60 >&2
    failures="$failures
  fuzz_$target:${found:- (exit $rc, no input saved)}"
  fi
done

if [ -n "$failures" ]; then
  echo "run.sh: FAILED; reproduce with the target binary in $BUILD_DIR/tests/fuzz and the file:$failures" >&2
  exit 1
fi
echo "run.sh: no failures"

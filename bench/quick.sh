#!/usr/bin/env bash
# A quick, one-run comparison (the full suite with PgBouncer comes with bench/README.md):
#   1. cold wake: a client's `select 1` through pgnap while the cluster is asleep, next to
#      `pg_ctl start -w` alone on the same cluster, interleaved, REPS times each;
#   2. relay: pgbench select-only (-S) TPS direct vs through pgnap, interleaved.
# Ratios matter, not absolute numbers. Run as root or as a user that can run PostgreSQL.
#
#   bench/quick.sh [REPS] [PGBENCH_SECONDS] [CLIENTS]
set -euo pipefail

REPS=${1:-5}
SECS=${2:-10}
CLIENTS=${3:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
PGNAP=${PGNAP:-$ROOT/build/pgnap}
PG_BIN=${PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
WORK=$(mktemp -d /tmp/pgnap-bench-XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
cleanup() {
  [ -n "${PGNAP_PID:-}" ] && kill "$PGNAP_PID" 2>/dev/null && wait "$PGNAP_PID" 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" stop -D "$WORK/data" -m immediate >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free TCP port for the cluster's direct TCP listener (nothing answers on it).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
PG_PORT=$(free_port)
as_pg "$PG_BIN/initdb" -D "$WORK/data" -U postgres --auth=trust >/dev/null
as_pg mkdir "$WORK/sock"
cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/sock'
max_connections = 100
CONF
DIRECT="host=$WORK/sock port=$PG_PORT user=postgres dbname=postgres"
DIRECT_TCP="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"

cat > "$WORK/pgnap.toml" <<CONF
[gateway]
listen = ["127.0.0.1:0"]
log_level = "info"
[metrics]
listen = ""
[instances.main]
backend = "pg_ctl"
address = "$WORK/sock/.s.PGSQL.$PG_PORT"
idle_timeout = "1h"
min_awake = "0s"
[instances.main.pg_ctl]
data_dir = "$WORK/data"
bin_dir = "$PG_BIN"
log_file = "$WORK/server.log"
CONF

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$PGNAP" run -c "$WORK/pgnap.toml" 2> "$WORK/pgnap.log" &
PGNAP_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/pgnap.log" && break; sleep 0.05; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/pgnap.log" | sed 's/.*://')
VIA="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

stop_cluster() { as_pg "$PG_BIN/pg_ctl" stop -D "$WORK/data" -m fast -w -s >/dev/null; }

echo "== cold wake ($REPS repetitions, interleaved)"
: > "$WORK/direct.txt"; : > "$WORK/pgnap.txt"
for i in $(seq "$REPS"); do
  t0=$(now_ms); as_pg "$PG_BIN/pg_ctl" start -D "$WORK/data" -l "$WORK/server.log" -w -s >/dev/null
  psql "$DIRECT" -Atc "select 1" >/dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/direct.txt"
  stop_cluster
  # The manual start and stop happen behind pgnap's back; when it still believes the
  # cluster awake, its first connect is refused and it wakes it (that is part of the time).
  t0=$(now_ms); psql "$VIA" -Atc "select 1" >/dev/null; t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/pgnap.txt"
  stop_cluster
done
d=$(median < "$WORK/direct.txt"); p=$(median < "$WORK/pgnap.txt")
echo "pg_ctl start -w + first query, median ms: $d   (all: $(tr '\n' ' ' < "$WORK/direct.txt"))"
echo "through pgnap, connect to first row, median ms: $p   (all: $(tr '\n' ' ' < "$WORK/pgnap.txt"))"
awk -v d="$d" -v p="$p" 'BEGIN { printf "ratio pgnap / pg_ctl: %.2f\n", p / d }'

echo "== pgbench -S, $CLIENTS clients, ${SECS}s per run, $REPS runs each, interleaved"
echo "   (direct over TCP, as an app's DATABASE_URL would be, and over the Unix socket pgnap uses)"
as_pg "$PG_BIN/pg_ctl" start -D "$WORK/data" -l "$WORK/server.log" -w -s >/dev/null
pgbench -i -q -s 10 "$DIRECT" >/dev/null 2>&1
psql "$VIA" -Atc "select 1" >/dev/null   # pgnap finds the running cluster (no start)
tps() { pgbench -S -n -c "$CLIENTS" -j 2 -T "$SECS" "$1" 2>/dev/null | awk '/^tps/ {print int($3)}'; }
: > "$WORK/tps_tcp.txt"; : > "$WORK/tps_unix.txt"; : > "$WORK/tps_pgnap.txt"
for i in $(seq "$REPS"); do
  tps "$DIRECT_TCP" >> "$WORK/tps_tcp.txt"
  tps "$VIA" >> "$WORK/tps_pgnap.txt"
  tps "$DIRECT" >> "$WORK/tps_unix.txt"
done
t=$(median < "$WORK/tps_tcp.txt"); u=$(median < "$WORK/tps_unix.txt"); p=$(median < "$WORK/tps_pgnap.txt")
echo "direct TCP   TPS median: $t   (all: $(tr '\n' ' ' < "$WORK/tps_tcp.txt"))"
echo "direct unix  TPS median: $u   (all: $(tr '\n' ' ' < "$WORK/tps_unix.txt"))"
echo "pgnap        TPS median: $p   (all: $(tr '\n' ' ' < "$WORK/tps_pgnap.txt"))"
awk -v t="$t" -v u="$u" -v p="$p" 'BEGIN { printf "ratio pgnap / direct TCP: %.2f, pgnap / direct unix: %.2f\n", p / t, p / u }'
grep -c "waking" "$WORK/pgnap.log" | sed 's/^/wakes seen by pgnap: /'

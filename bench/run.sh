#!/usr/bin/env bash
# `make bench`: pgnap side by side with PostgreSQL direct and PgBouncer (session mode), on
# this machine, in one run, interleaved (A B C A B C ...), reporting medians and ratios, and
# writing docs/benchmarks.md. Benchmarks are not tests: nothing here decides CI.
#
#   bench/run.sh                       everything (about 40 minutes on 2 cores)
#   REPS=3 SECS=10 IDLE_SECS=60 bench/run.sh
#   SECTIONS="relay wake burst memory idle startup auth pool park" bench/run.sh   (a subset)
#   SECTIONS=auth AUTH_REPS=10 AUTH_IDLE_SECS=30 bench/run.sh          (a quick auth run)
#   SECTIONS=park PARK_SESSIONS=200 PARK_REPS=3 PARK_RUN_SECS=60 PARK_EVERY=6 PARK_IDLE=2s bench/run.sh
#                                                                      (a quick park run)
#   SECTIONS=relay PGNAP_URING_BINARY=build-uring/pgnap bench/run.sh   (epoll vs io_uring)
#
# Section 1 (relay): WORKLOADS="select-only prepared read-write" and CLIENT_COUNTS="8 32" by
# default, then select-only at one client (added latency). Systems: direct; pgnap's kernel
# relay (relay = "kernel", reaching PostgreSQL over TCP, which it needs; root only: the bench
# fails if no session goes into the kernel); pgnap's user relay (relay = "user", over the Unix
# socket); PgBouncer, session mode (Unix socket). PGNAP_URING_BINARY, a pgnap built with
# `cmake -DPGNAP_IO_URING=ON`, adds it as one more system in the same interleaved runs (its
# own listener, the same cluster; not by default), and the table gains its TPS, its ratio to
# the epoll user relay ($BUILD_DIR/pgnap) and its CPU.
#
# Run as root (PostgreSQL and PgBouncer run as the postgres OS user) or as a user that can
# run PostgreSQL itself.
set -euo pipefail

REPS=${REPS:-3}
SECS=${SECS:-10}
IDLE_SECS=${IDLE_SECS:-60}
WAKE_REPS=${WAKE_REPS:-7}
BURST=${BURST:-500}
HOLD=${HOLD:-200}
AUTH_REPS=${AUTH_REPS:-30}            # auth: interleaved repetitions (one connection per variant each)
AUTH_IDLE_SECS=${AUTH_IDLE_SECS:-300} # auth: how long the idle session and pg_isready go on
AUTH_ISREADY_EVERY=${AUTH_ISREADY_EVERY:-10}
PARK_SESSIONS=${PARK_SESSIONS:-1000}  # park: sessions parked at once (RSS per parked session)
PARK_ATTACHED=${PARK_ATTACHED:-200}   # park: sessions attached, for comparison
PARK_REPS=${PARK_REPS:-7}             # park: interleaved repetitions of the resume latency
PARK_RUN_SECS=${PARK_RUN_SECS:-600}   # park: the app pool's run, three set-ups at once
PARK_EVERY=${PARK_EVERY:-30}          # park: the app's query interval (s)
PARK_IDLE=${PARK_IDLE:-10s}           # park: idle_timeout of the app run's three pgnaps
SECTIONS=${SECTIONS:-"relay wake burst memory idle startup auth pool park"}
WORKLOADS=${WORKLOADS:-"select-only prepared read-write"}
CLIENT_COUNTS=${CLIENT_COUNTS:-"8 32"}
PGNAP_URING_BINARY=${PGNAP_URING_BINARY:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${BUILD_DIR:-$ROOT/build}
PGNAP=$BUILD/pgnap
TOOL=$BUILD/pgnap-bench
OUT=${OUT:-$ROOT/docs/benchmarks.md}
PG_BIN=${PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

[ -x "$PGNAP" ] && [ -x "$TOOL" ] || { echo "bench: build first (make build)" >&2; exit 1; }
[ -z "$PGNAP_URING_BINARY" ] || [ -x "$PGNAP_URING_BINARY" ] ||
  { echo "bench: PGNAP_URING_BINARY=$PGNAP_URING_BINARY is not an executable" >&2; exit 1; }
command -v pgbouncer >/dev/null || { echo "bench: pgbouncer is not installed (scripts/install-deps.sh)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pgnap-bench-XXXXXX)
# This run's pgnap, copied: a rebuild of $BUILD during the run does not mix two versions.
cp "$BUILD/pgnap" "$WORK/pgnap"
PGNAP=$WORK/pgnap
URING=""
if [ -n "$PGNAP_URING_BINARY" ]; then
  cp "$PGNAP_URING_BINARY" "$WORK/pgnap-uring"
  URING=$WORK/pgnap-uring
fi
AUTH_DATA=$WORK/auth-data   # the auth section's cluster
AUTH_NAP_PID=""             # the auth section's pgnap of the moment
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$AUTH_NAP_PID" ] && { kill "$AUTH_NAP_PID" 2>/dev/null || true; }
  wait 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" stop -D "$WORK/data" -m immediate >/dev/null 2>&1 || true
  [ -d "$AUTH_DATA" ] && { as_pg "$PG_BIN/pg_ctl" stop -D "$AUTH_DATA" -m immediate >/dev/null 2>&1 || true; }
  for d in "$WORK"/park-data-* "$WORK/park-init"; do
    [ -d "$d" ] && { as_pg "$PG_BIN/pg_ctl" stop -D "$d" -m immediate >/dev/null 2>&1 || true; }
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A port nothing listens on, below Linux's ephemeral range (32768-60999: a port some client
# connection, or one in TIME_WAIT, holds cannot always be bound), and not handed out before in
# this run (a cluster's port is chosen long before the cluster first listens on it).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    grep -qx "$p" "$WORK/ports" 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p" >> "$WORK/ports"; echo "$p"; return; }
  done
}
# A cluster whose roles log in with SCRAM (the auth and park sections): on 127.0.0.1 and the
# run's socket directory, pg_hba asking SCRAM of everyone but postgres over the socket.
scram_conf() {
  printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\npassword_encryption = 'scram-sha-256'\n" \
    "$SOCK" >> "$1/postgresql.conf"
  printf 'local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n' \
    > "$1/pg_hba.conf"
}
# pgnap in front of one SCRAM cluster (the auth, pool and park sections): FILE PORT
# METRICS_PORT PG_PORT DATA_DIR SERVER_LOG IDLE_TIMEOUT AUTH_MODE AUTH_FILE [INSTANCE_LINES
# [GATEWAY_LINES]]. (auth.file is ignored in passthrough mode.)
write_scram_config() {
  cat > "$1" <<CONF
[gateway]
listen = ["127.0.0.1:$2"]
ledger = "$WORK/ledger-$2.db"
log_level = "info"
${11:-}
[metrics]
listen = "127.0.0.1:$3"
[instances.main]
backend = "pg_ctl"
address = "$SOCK/.s.PGSQL.$4"
idle_timeout = "$7"
min_awake = "0s"
wake_timeout = "60s"
${10:-}
[instances.main.pg_ctl]
data_dir = "$5"
bin_dir = "$PG_BIN"
log_file = "$6"
[instances.main.auth]
mode = "$8"
file = "$9"
CONF
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p95() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print 0; exit}; r=int(0.95*NR); if (r < 0.95*NR) r++; print a[r]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

PG_PORT=$(free_port)
NAP_PORT=$(free_port)
IDLE_PORT=$(free_port)
BOUNCER_PORT=$(free_port)
SOCK=$WORK/sock
as_pg mkdir -p "$SOCK"

# ---- PostgreSQL ------------------------------------------------------------------------------
log "initdb and pgbench -i (scale 10) in $WORK"
as_pg "$PG_BIN/initdb" -D "$WORK/data" -U postgres --auth=trust >/dev/null
cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK'
max_connections = $((BURST + 200))
shared_buffers = 128MB
synchronous_commit = off
CONF
pg_start() { as_pg "$PG_BIN/pg_ctl" start -D "$WORK/data" -l "$WORK/server.log" -w -s >/dev/null; }
pg_stop() { as_pg "$PG_BIN/pg_ctl" stop -D "$WORK/data" -m fast -w -s >/dev/null 2>&1 || true; }
pg_running() { as_pg "$PG_BIN/pg_ctl" status -D "$WORK/data" >/dev/null 2>&1; }
pg_start
pgbench -i -q -s 10 "host=$SOCK port=$PG_PORT user=postgres dbname=postgres" >/dev/null 2>&1

has() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- pgnap: one for the relay (never suspends), one that suspends after 1 s -----------------
# The relay's pgnap runs the user-space relay (relay = "user") and reaches PostgreSQL over its
# Unix socket; section 1 adds a second one with the kernel relay, over TCP (see there).
write_pgnap_config() {  # FILE PORT IDLE_TIMEOUT [GATEWAY_LINES [INSTANCE_ADDRESS [METRICS_LISTEN]]]
  cat > "$1" <<CONF
[gateway]
listen = ["127.0.0.1:$2"]
max_clients = 2000
ledger = "$WORK/ledger-$2.db"
log_level = "info"
${4:-}
[metrics]
listen = "${6:-}"
[instances.main]
backend = "pg_ctl"
address = "${5:-$SOCK/.s.PGSQL.$PG_PORT}"
idle_timeout = "$3"
min_awake = "0s"
wake_timeout = "60s"
max_waiting = $((BURST * 2))
[instances.main.pg_ctl]
data_dir = "$WORK/data"
bin_dir = "$PG_BIN"
log_file = "$WORK/server.log"
CONF
}
start_pgnap() {  # CONFIG LOG [BINARY] -> pid on stdout once listening
  "${3:-$PGNAP}" run -c "$1" 2> "$2" > /dev/null &
  local pid=$!
  for _ in $(seq 500); do grep -q "listening on" "$2" && break; sleep 0.01; done
  grep -q "listening on" "$2" || { echo "bench: pgnap did not start:" >&2; cat "$2" >&2; exit 1; }
  echo "$pid"
}
write_pgnap_config "$WORK/relay.toml" "$NAP_PORT" "1h" 'relay = "user"'
write_pgnap_config "$WORK/idle.toml" "$IDLE_PORT" "1s"
NAP_PID=$(start_pgnap "$WORK/relay.toml" "$WORK/pgnap-relay.log"); PIDS+=("$NAP_PID")
# The io_uring build beside it, on the same cluster (both adopt it awake; neither suspends
# within the section). Its own control socket: the default one is the epoll pgnap's.
URING_PID=""
if [ -n "$URING" ] && has relay; then
  URING_PORT=$(free_port)
  write_pgnap_config "$WORK/relay-uring.toml" "$URING_PORT" "1h" "control_socket = \"$WORK/control-uring.sock\""
  URING_PID=$(start_pgnap "$WORK/relay-uring.toml" "$WORK/pgnap-relay-uring.log" "$URING"); PIDS+=("$URING_PID")
  grep -q "event loop: io_uring" "$WORK/pgnap-relay-uring.log" ||
    { echo "bench: $PGNAP_URING_BINARY does not run on io_uring:" >&2; cat "$WORK/pgnap-relay-uring.log" >&2; exit 1; }
fi
# Section 1's kernel relay: relay = "kernel" moves a plaintext session whose both sides are TCP
# into the kernel (sockmap + BPF verdict program) once it is at rest, so this pgnap reaches
# PostgreSQL over TCP on 127.0.0.1 (over the Unix socket its sessions would stay in user
# space). Its own control socket and a metrics listener, to check that sessions really go in.
KERNEL_PID=""
if has relay; then
  KERNEL_PORT=$(free_port); KERNEL_METRICS_PORT=$(free_port)
  write_pgnap_config "$WORK/relay-kernel.toml" "$KERNEL_PORT" "1h" \
    "relay = \"kernel\"
control_socket = \"$WORK/control-kernel.sock\"" "127.0.0.1:$PG_PORT" "127.0.0.1:$KERNEL_METRICS_PORT"
  KERNEL_PID=$(start_pgnap "$WORK/relay-kernel.toml" "$WORK/pgnap-relay-kernel.log"); PIDS+=("$KERNEL_PID")
fi
# One series of the kernel relay's pgnap's /metrics, e.g. kernel_metric pgnap_kernel_relay_entries_total
kernel_metric() {
  curl -fsS --max-time 5 "http://127.0.0.1:$KERNEL_METRICS_PORT/metrics" | awk -v n="$1" '$1 == n {print $2; f = 1} END {if (!f) print ""}'
}

# ---- PgBouncer, session mode -----------------------------------------------------------------
printf '"postgres" ""\n' > "$WORK/userlist.txt"
cat > "$WORK/pgbouncer.ini" <<CONF
[databases]
postgres = host=$SOCK port=$PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = $((BURST + 100))
max_db_connections = 0
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
CONF
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pgbouncer.ini" "$WORK/userlist.txt"
as_pg pgbouncer -q "$WORK/pgbouncer.ini" > /dev/null 2>&1 &
for _ in $(seq 200); do [ -s "$WORK/pgbouncer.pid" ] && break; sleep 0.05; done
BOUNCER_PID=$(cat "$WORK/pgbouncer.pid"); PIDS+=("$BOUNCER_PID")

DIRECT="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
VIA_PGNAP="host=127.0.0.1 port=$NAP_PORT user=postgres dbname=postgres"
VIA_BOUNCER="host=127.0.0.1 port=$BOUNCER_PORT user=postgres dbname=postgres"
"$TOOL" first-row "$VIA_PGNAP" >/dev/null
"$TOOL" first-row "$VIA_BOUNCER" >/dev/null
VIA_KERNEL=""
if [ -n "$KERNEL_PID" ]; then
  VIA_KERNEL="host=127.0.0.1 port=$KERNEL_PORT user=postgres dbname=postgres"
  "$TOOL" first-row "$VIA_KERNEL" >/dev/null
  awk -v v="$(kernel_metric 'pgnap_relay_info{relay="kernel"}')" 'BEGIN {exit !(v == 1)}' ||
    { echo "bench: the kernel relay's pgnap does not report pgnap_relay_info{relay=\"kernel\"} 1:" >&2
      cat "$WORK/pgnap-relay-kernel.log" >&2; exit 1; }
fi
VIA_URING=""
if [ -n "$URING_PID" ]; then
  VIA_URING="host=127.0.0.1 port=$URING_PORT user=postgres dbname=postgres"
  "$TOOL" first-row "$VIA_URING" >/dev/null
fi

RESULTS=$WORK/results.md
: > "$RESULTS"
section() { printf '\n### %s\n\n' "$1" >> "$RESULTS"; }
out() { printf '%s\n' "$*" >> "$RESULTS"; }

# ---- 1. relay throughput and latency ---------------------------------------------------------
# Interleaved: direct, the kernel relay, the user relay, PgBouncer (and the io_uring pgnap if
# given), once each per repetition. Per run: pgbench's TPS and latency average, the proxy
# process's CPU (/proc/PID/stat) and the whole machine's (/proc/stat), each per transaction.
# The whole machine's busy time in clock ticks: user + nice + system + irq + softirq + steal
# (guest time is already in user). The kernel relay's forwarding runs in softirq and kworker
# context, which no process's own counters show.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
RELAY_FAILED=0
relay_run() {  # SYSTEM PGBENCH_FLAGS CLIENTS THREADS FILE_SUFFIX
  local sys=$1 ci proxy t0=0 t1=0 m0 m1 res tx
  case $sys in
    direct) ci=$DIRECT; proxy="" ;;
    kernel) ci=$VIA_KERNEL; proxy=$KERNEL_PID ;;
    user) ci=$VIA_PGNAP; proxy=$NAP_PID ;;
    bouncer) ci=$VIA_BOUNCER; proxy=$BOUNCER_PID ;;
    uring) ci=$VIA_URING; proxy=$URING_PID ;;
  esac
  [ -n "$proxy" ] && t0=$(cpu_ticks "$proxy")
  m0=$(machine_ticks)
  # shellcheck disable=SC2086
  res=$(pgbench -n $2 -c "$3" -j "$4" -T "$SECS" "$ci" 2>&1 || true)
  m1=$(machine_ticks)
  [ -n "$proxy" ] && t1=$(cpu_ticks "$proxy")
  tx=$(echo "$res" | awk '/actually processed/ {print $NF}')
  if [ -z "$tx" ] || [ "$tx" -eq 0 ] || echo "$res" | grep -q "aborted in command"; then
    RELAY_FAILED=$((RELAY_FAILED + 1))
    log "pgbench through $sys failed (not counted): $(echo "$res" | grep -m1 -i 'error\|fatal\|abort')"
    return 0
  fi
  log "  $sys: $(echo "$res" | awk '/^tps/ {printf "tps %s", $3}'), $tx transactions"
  echo "$res" | awk '/^tps/ {print $3}' >> "$WORK/tps-$sys$5"
  echo "$res" | awk '/^latency average/ {print $4}' >> "$WORK/lat-$sys$5"
  awk -v a="$t0" -v b="$t1" -v n="$tx" -v hz="$HZ" 'BEGIN { printf "%.1f\n", (b - a) * 1e6 / hz / n }' >> "$WORK/cpu-$sys$5"
  awk -v a="$m0" -v b="$m1" -v n="$tx" -v hz="$HZ" 'BEGIN { printf "%.1f\n", (b - a) * 1e6 / hz / n }' >> "$WORK/mcpu-$sys$5"
}
if has relay; then
  HZ=$(getconf CLK_TCK)
  RELAY_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  SYSTEMS="direct kernel user bouncer"
  [ -n "$URING_PID" ] && SYSTEMS+=" uring"
  kernel_entries0=$(kernel_metric pgnap_kernel_relay_entries_total)
  kernel_handbacks0=$(kernel_metric pgnap_kernel_relay_handbacks_total)
  kernel_checked=""
  ROWS=$WORK/relay-rows; TARGETS=$WORK/relay-targets
  : > "$ROWS"; : > "$TARGETS"
  for workload in $WORKLOADS; do
    case $workload in
      select-only) flags="-S" ;;
      prepared) flags="-S -M prepared" ;;
      read-write) flags="" ;;
      *) echo "bench: unknown workload $workload (select-only, prepared, read-write)" >&2; exit 1 ;;
    esac
    for clients in $CLIENT_COUNTS; do
      for sys in $SYSTEMS; do : > "$WORK/tps-$sys"; : > "$WORK/lat-$sys"; : > "$WORK/cpu-$sys"; : > "$WORK/mcpu-$sys"; done
      for rep in $(seq "$REPS"); do
        for sys in $SYSTEMS; do
          log "relay $workload c=$clients rep $rep: $sys"
          relay_run "$sys" "$flags" "$clients" 2 ""
          if [ "$sys" = kernel ] && [ -z "$kernel_checked" ]; then
            # The first run through the kernel relay: its sessions must have gone into the kernel,
            # or the "kernel relay" column would be the user relay under another name.
            entries=$(kernel_metric pgnap_kernel_relay_entries_total)
            if ! awk -v a="${kernel_entries0:-0}" -v b="${entries:-0}" 'BEGIN {exit !(b > a)}'; then
              echo "bench: FAILED: no session went into the kernel relay during the first run through it" >&2
              echo "bench: pgnap_kernel_relay_entries_total ${kernel_entries0:-?} before, ${entries:-?} after; its log:" >&2
              tail -20 "$WORK/pgnap-relay-kernel.log" >&2
              exit 1
            fi
            log "kernel relay engaged: pgnap_kernel_relay_entries_total ${kernel_entries0} -> ${entries}"
            kernel_checked=1
          fi
        done
      done
      m() { median < "$WORK/$1-$2"; }
      d=$(m tps direct); k=$(m tps kernel); u=$(m tps user); b=$(m tps bouncer)
      md=$(m mcpu direct)
      added() { awk -v s="$(m mcpu "$1")" -v d="$md" 'BEGIN {printf "%.1f", s - d}'; }
      row="| $workload | $clients | $(printf %.0f "$d") | $(printf %.0f "$k") | $(printf %.0f "$u") | $(printf %.0f "$b")"
      row+=" | $(ratio "$k" "$d") | $(ratio "$k" "$b") | $(ratio "$u" "$b")"
      row+=" | $(m lat direct) / $(m lat kernel) / $(m lat user) / $(m lat bouncer)"
      row+=" | $(m cpu kernel) / $(m cpu user) / $(m cpu bouncer)"
      row+=" | $md | $(added kernel) / $(added user) / $(added bouncer) |"
      if [ -n "$URING_PID" ]; then
        row+=" $(printf %.0f "$(m tps uring)") | $(ratio "$(m tps uring)" "$u") | $(m cpu uring) | $(added uring) |"
      fi
      echo "$row" >> "$ROWS"
      case $workload in
        select-only | prepared) echo "$workload $clients $(ratio "$k" "$b") $(ratio "$k" "$d")" >> "$TARGETS" ;;
      esac
    done
  done
  # Added latency at one client: select-only, one connection, one thread; a transaction is one
  # query, one round trip, so µs per round trip = 1e6 / TPS. Each system's minus direct's in
  # the same repetition, median over the repetitions.
  for sys in $SYSTEMS; do : > "$WORK/tps-$sys-c1"; : > "$WORK/lat-$sys-c1"; : > "$WORK/cpu-$sys-c1"; : > "$WORK/mcpu-$sys-c1"; done
  for rep in $(seq "$REPS"); do
    for sys in $SYSTEMS; do
      log "relay one client, select-only, rep $rep: $sys"
      relay_run "$sys" "-S" 1 1 "-c1"
    done
  done
  # At one client the machine is not saturated, so its CPU per transaction is each system's
  # cost rather than 2 cores / TPS: the same pairing, on /proc/stat's figure.
  rt() { awk '{printf "%.1f\n", 1e6 / $1}' "$WORK/tps-$1-c1"; }
  rt_added() { paste <(rt "$1") <(rt direct) | awk 'NF == 2 {printf "%.1f\n", $1 - $2}' | median; }
  mc_added() { paste "$WORK/mcpu-$1-c1" "$WORK/mcpu-direct-c1" | awk 'NF == 2 {printf "%.1f\n", $1 - $2}' | median; }
  one_direct=$(rt direct | median)
  one_kernel=$(rt_added kernel); one_user=$(rt_added user); one_bouncer=$(rt_added bouncer)
  kernel_entries=$(kernel_metric pgnap_kernel_relay_entries_total)
  kernel_handbacks=$(kernel_metric pgnap_kernel_relay_handbacks_total)
  kernel_refused=$(kernel_metric pgnap_kernel_relay_refused_sockets_total)
  RELAY_LOAD="$RELAY_LOAD before, $(cut -d' ' -f1-3 /proc/loadavg) after"

  section "1. Relay: pgbench, ${SECS} s runs, ${REPS} interleaved repetitions, medians"
  uring_text=""
  [ -n "$URING_PID" ] && uring_text="; **pgnap io_uring** (the user relay's pgnap built with \`cmake -DPGNAP_IO_URING=ON\`, Asio's event loop on io_uring instead of epoll)"
  out "Systems, in this order in every repetition: **direct** (pgbench to PostgreSQL); **kernel relay**"
  out "(pgnap, \`relay = \"kernel\"\`: a plaintext session whose both sides are TCP moves its bytes into"
  out "the kernel, sockmap + BPF verdict program, once it is at rest); **user relay** (pgnap, \`relay ="
  out "\"user\"\`, the relay of earlier runs); **PgBouncer** (session mode)$uring_text."
  out "Every client connects over TCP on 127.0.0.1; pgbench \`-j 2\`. PgBouncer and the user relay"
  out "reach PostgreSQL over its Unix socket, their faster path; the kernel relay reaches it over TCP"
  out "loopback (\`address = \"127.0.0.1:port\"\`), which it needs."
  out ""
  out "*Proxy-process CPU* is the proxy process's own user + system time (/proc/PID/stat) over a run"
  out "divided by its transactions; the kernel relay forwards in softirq and kworker context, outside"
  out "pgnap's process, so for it this figure is near zero and is not its cost. *Added machine CPU*"
  out "is the whole machine's busy time (/proc/stat: user + nice + system + irq + softirq + steal)"
  out "per transaction minus direct's in the same runs, so it counts what a proxy costs wherever"
  out "that work runs (pgbench's and PostgreSQL's own share is in both terms)."
  out ""
  out "- Command: \`SECTIONS=\"$SECTIONS\" REPS=$REPS SECS=$SECS WORKLOADS=\"$WORKLOADS\" CLIENT_COUNTS=\"$CLIENT_COUNTS\"${URING:+ PGNAP_URING_BINARY=$PGNAP_URING_BINARY} bench/run.sh\`"
  out "- Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) vCPU ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), Linux $(uname -r); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), PgBouncer $(pgbouncer --version | awk 'NR==1 {print $2}'); load average (1, 5, 15 min) $RELAY_LOAD"
  out "- Kernel relay, from its pgnap's /metrics over the section: $(awk -v a="${kernel_entries0:-0}" -v b="${kernel_entries:-0}" 'BEGIN {print b - a}') entries into the kernel (\`pgnap_kernel_relay_entries_total\`), $(awk -v a="${kernel_handbacks0:-0}" -v b="${kernel_handbacks:-0}" 'BEGIN {print b - a}') handbacks to user space, ${kernel_refused:-?} sockets refused by the sockmap."
  [ "$RELAY_FAILED" -gt 0 ] && out "- **$RELAY_FAILED pgbench runs failed** and are left out of the medians (see the run's log)."
  out ""
  hdr="| workload | clients | direct TPS | kernel TPS | user TPS | PgBouncer TPS | kernel / direct | kernel / PgBouncer | user / PgBouncer | latency ms direct / kernel / user / PgBouncer | proxy-process CPU µs/txn kernel / user / PgBouncer | machine CPU µs/txn direct | added machine CPU µs/txn vs direct, kernel / user / PgBouncer |"
  rule="| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |"
  if [ -n "$URING_PID" ]; then
    hdr+=" pgnap io_uring TPS | io_uring / user (epoll) | proxy-process CPU µs/txn, io_uring | added machine CPU µs/txn, io_uring |"
    rule+=" ---: | ---: | ---: | ---: |"
  fi
  out "$hdr"
  out "$rule"
  cat "$ROWS" >> "$RESULTS"
  out ""
  out "At one client: \`pgbench -S -c 1 -j 1\`, ${SECS} s runs in the same interleaved order. A"
  out "transaction is one query, one round trip, so µs per round trip = 10⁶ / TPS; each proxy's figure"
  out "is its run's minus direct's in the same repetition, median of ${REPS}. One client leaves the"
  out "machine partly idle, so there machine CPU per transaction is the work done; at 8 and 32"
  out "clients the machine is close to saturated (machine CPU per transaction ≈ $(nproc) cores ÷ TPS), so"
  out "the added machine CPU there mostly restates the TPS gap, and a negative figure means that"
  out "system's runs left part of the machine idle."
  out ""
  uhdr=""; urule=""; ulat=""; ucpu=""
  if [ -n "$URING_PID" ]; then
    uhdr=" pgnap io_uring, added |"; urule=" ---: |"; ulat=" $(rt_added uring) |"; ucpu=" $(mc_added uring) |"
  fi
  out "| at one client | direct | kernel relay, added | user relay, added | PgBouncer, added |$uhdr"
  out "| --- | ---: | ---: | ---: | ---: |$urule"
  out "| µs per round trip | $one_direct | **$one_kernel** | $one_user | $one_bouncer |$ulat"
  out "| machine CPU µs per transaction | $(median < "$WORK/mcpu-direct-c1") | $(mc_added kernel) | $(mc_added user) | $(mc_added bouncer) |$ucpu"
  out ""
  out "Targets for the kernel relay, measured here:"
  out ""
  verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "-" || v == "") print "MISS (no figure)"; else if (v + 0 >= t) print "PASS"; else print "MISS" }'; }
  while read -r w c kb kd; do
    out "- kernel / PgBouncer >= 1.2, $w, $c clients: **$kb** $(verdict "$kb" 1.2)"
  done < "$TARGETS"
  while read -r w c kb kd; do
    out "- kernel / direct >= 0.8, $w, $c clients: **$kd** $(verdict "$kd" 0.8)"
  done < "$TARGETS"
  lat_verdict=$(awk -v k="$one_kernel" -v b="$one_bouncer" 'BEGIN {print (k < b) ? "PASS" : "MISS"}')
  out "- added latency at one client below PgBouncer's: kernel **$one_kernel µs**, PgBouncer $one_bouncer µs $lat_verdict"
fi
# The kernel relay's and the io_uring pgnap only serve section 1: their CPU is not taken from
# the later sections.
if [ -n "$KERNEL_PID" ]; then kill "$KERNEL_PID" 2>/dev/null || true; fi
if [ -n "$URING_PID" ]; then kill "$URING_PID" 2>/dev/null || true; fi

# ---- the suspending pgnap for wake, burst, idle ----------------------------------------------
IDLE_PID=""
wait_asleep() {  # until the suspending pgnap has stopped the cluster
  for _ in $(seq 600); do pg_running || return 0; sleep 0.05; done
  echo "bench: the cluster did not go to sleep" >&2; return 1
}
if has wake || has burst || has idle; then
  kill "$NAP_PID" 2>/dev/null || true
  pg_stop
  IDLE_PID=$(start_pgnap "$WORK/idle.toml" "$WORK/pgnap-idle.log"); PIDS+=("$IDLE_PID")
fi
VIA_IDLE="host=127.0.0.1 port=$IDLE_PORT user=postgres dbname=postgres"

# ---- 2. cold wake ----------------------------------------------------------------------------
if has wake; then
  section "2. Cold wake: connect to first row, ${WAKE_REPS} interleaved repetitions"
  : > "$WORK/wake-pg"; : > "$WORK/wake-pgnap"
  START_CMD="$( [ "$(id -u)" -eq 0 ] && echo "runuser -u postgres -- " )$PG_BIN/pg_ctl start -D $WORK/data -l $WORK/server.log -W -s"
  for rep in $(seq "$WAKE_REPS"); do
    wait_asleep
    log "wake rep $rep: PostgreSQL's own start-to-first-row"
    # pgnap must not take part: it is idle and believes the cluster asleep; the cluster is
    # started behind its back and stopped again before pgnap sees a client.
    "$TOOL" start-to-first-row "host=$SOCK port=$PG_PORT user=postgres dbname=postgres" --start "$START_CMD" \
      | sed -n 's/.*ms=\([0-9.]*\).*/\1/p' >> "$WORK/wake-pg"
    pg_stop
    log "wake rep $rep: through pgnap"
    "$TOOL" first-row "$VIA_IDLE" | sed -n 's/.*ms=\([0-9.]*\).*/\1/p' >> "$WORK/wake-pgnap"
  done
  p=$(median < "$WORK/wake-pg"); n=$(median < "$WORK/wake-pgnap")
  out "| | median ms | all runs (ms) |"
  out "| --- | ---: | --- |"
  out "| PostgreSQL's own: \`pg_ctl start\` + polling connect every 5 ms to first row | $p | $(tr '\n' ' ' < "$WORK/wake-pg") |"
  out "| through pgnap: a client's connect while asleep to its first row | $n | $(tr '\n' ' ' < "$WORK/wake-pgnap") |"
  out ""
  out "Ratio pgnap / PostgreSQL's own: **$(ratio "$n" "$p")** (target <= 1.10)."
fi

# ---- 3. burst --------------------------------------------------------------------------------
if has burst; then
  section "3. Burst: $BURST clients connecting at once while asleep"
  wait_asleep
  before=$(grep -c "ready to accept connections" "$WORK/server.log" || true)
  wakes_before=$(grep -c "waking" "$WORK/pgnap-idle.log" || true)
  log "burst of $BURST"
  res=$("$TOOL" burst "$VIA_IDLE" --clients "$BURST" --timeout 120 || true)
  after=$(grep -c "ready to accept connections" "$WORK/server.log" || true)
  wakes_after=$(grep -c "waking" "$WORK/pgnap-idle.log" || true)
  out "| starts (server log) | wakes (pgnap log) | served | failed | p50 ms to first row | p99 ms | max ms |"
  out "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  ok=$(echo "$res" | sed -n 's/.*ok=\([0-9]*\).*/\1/p'); failed=$(echo "$res" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
  p50=$(echo "$res" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p'); p99=$(echo "$res" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  mx=$(echo "$res" | sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p')
  out "| $((after - before)) | $((wakes_after - wakes_before)) | $ok | $failed | $p50 | $p99 | $mx |"
  err=$(echo "$res" | sed -n 's/.*error="\(.*\)"/\1/p'); [ -n "$err" ] && out "" && out "First error: \`$err\`"
fi

# ---- 5. idle cost ----------------------------------------------------------------------------
if has idle; then
  section "4. Idle cost: pgnap with its instance asleep, ${IDLE_SECS} s"
  wait_asleep
  sleep 2
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
  t0=$(ticks "$IDLE_PID"); s0=$(switches "$IDLE_PID")
  sleep "$IDLE_SECS"
  t1=$(ticks "$IDLE_PID"); s1=$(switches "$IDLE_PID")
  hz=$(getconf CLK_TCK)
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.3f", (b - a) / hz}')
  wps=$(awk -v a="$s0" -v b="$s1" -v s="$IDLE_SECS" 'BEGIN {printf "%.3f", (b - a) / s}')
  out "| CPU seconds used | wakeups (context switches, all threads) | wakeups per second |"
  out "| ---: | ---: | ---: |"
  out "| $cpu | $((s1 - s0)) | $wps |"
  out ""
  out "The ledger heartbeat (default 30 s) is the only timer while asleep."
fi

# ---- 4. memory -------------------------------------------------------------------------------
if has memory; then
  section "5. Memory: RSS idle and with $HOLD relayed sessions"
  if [ -n "$IDLE_PID" ]; then
    # The relay's pgnap made way for the suspending one: bring it back.
    kill "$IDLE_PID" 2>/dev/null || true
    pg_running || pg_start
    NAP_PID=$(start_pgnap "$WORK/relay.toml" "$WORK/pgnap-relay2.log"); PIDS+=("$NAP_PID")
  fi
  "$TOOL" first-row "$VIA_PGNAP" >/dev/null
  measure() {  # PID CONNINFO -> "idle_kb held_kb"
    local idle held
    sleep 1
    idle=$(rss_kb "$1")
    "$TOOL" hold "$2" --clients "$HOLD" --seconds 6 > "$WORK/hold.out" &
    local h=$!
    for _ in $(seq 200); do [ -s "$WORK/hold.out" ] && break; sleep 0.05; done
    sleep 1
    held=$(rss_kb "$1")
    wait "$h" || true
    echo "$idle $held"
  }
  read -r ni nh < <(measure "$NAP_PID" "$VIA_PGNAP")
  read -r bi bh < <(measure "$BOUNCER_PID" "$VIA_BOUNCER")
  out "| | RSS idle (kB) | RSS with $HOLD sessions (kB) | kB per session |"
  out "| --- | ---: | ---: | ---: |"
  out "| pgnap | $ni | $nh | $(awk -v a="$ni" -v b="$nh" -v n="$HOLD" 'BEGIN {printf "%.1f", (b - a) / n}') |"
  out "| PgBouncer | $bi | $bh | $(awk -v a="$bi" -v b="$bh" -v n="$HOLD" 'BEGIN {printf "%.1f", (b - a) / n}') |"
fi

# ---- 6. start-up time ------------------------------------------------------------------------
if has startup; then
  section "6. pgnap's start-up time to listening (instance asleep), 5 runs"
  pg_stop
  : > "$WORK/startup"
  SU_PORT=$(free_port)
  write_pgnap_config "$WORK/startup.toml" "$SU_PORT" "1h"
  for rep in 1 2 3 4 5; do
    t0=$(now_ms)
    "$PGNAP" run -c "$WORK/startup.toml" 2> "$WORK/startup.log" > /dev/null &
    pid=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$SU_PORT") 2>/dev/null; do sleep 0.002; done
    t1=$(now_ms)
    echo $((t1 - t0)) >> "$WORK/startup"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  out "| median ms from exec to accepting connections | all runs (ms) |"
  out "| ---: | --- |"
  out "| $(median < "$WORK/startup") | $(tr '\n' ' ' < "$WORK/startup") |"
fi

# The SCRAM cluster of the auth and pool sections, set up once: the other sections' servers
# have done their work and are stopped, so these have the machine to themselves.
AUTH_READY=""
auth_setup() {
  [ -n "$AUTH_READY" ] && return 0
  AUTH_READY=yes
  kill "$NAP_PID" 2>/dev/null || true
  [ -n "$IDLE_PID" ] && { kill "$IDLE_PID" 2>/dev/null || true; }
  kill "$BOUNCER_PID" 2>/dev/null || true
  sleep 0.5
  pg_stop
  AUTH_PW=bench-secret
  AUTH_PG_PORT=$(free_port); GW_PORT=$(free_port); TR_PORT=$(free_port)
  GW_METRICS=$(free_port); TR_METRICS=$(free_port)
  AUTH_LOG=$WORK/auth-server.log
  log "auth: initdb a cluster with a SCRAM role"
  as_pg "$PG_BIN/initdb" -D "$AUTH_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  scram_conf "$AUTH_DATA"
  echo "port = $AUTH_PG_PORT" >> "$AUTH_DATA/postgresql.conf"
  auth_pg() { as_pg "$PG_BIN/pg_ctl" "$@" -D "$AUTH_DATA" >/dev/null 2>&1; }
  auth_pg start -l "$AUTH_LOG" -w -s
  AUTH_ADMIN="host=$SOCK port=$AUTH_PG_PORT user=postgres dbname=postgres"
  psql -qAtX "$AUTH_ADMIN" -c "CREATE ROLE bench LOGIN PASSWORD '$AUTH_PW'"
  verifier=$(psql -qAtX "$AUTH_ADMIN" -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
  case $verifier in SCRAM-SHA-256\$*) ;; *) echo "bench: expected a SCRAM verifier, got $verifier" >&2; exit 1 ;; esac
  printf '"bench" "%s"\n' "$verifier" > "$WORK/auth-users.txt"
  auth_pg stop -m fast -w -s
  AUTH_CI="user=bench password=$AUTH_PW dbname=postgres"
  VIA_GW="host=127.0.0.1 port=$GW_PORT $AUTH_CI"
  VIA_TR="host=127.0.0.1 port=$TR_PORT $AUTH_CI"
  AUTH_DIRECT="host=127.0.0.1 port=$AUTH_PG_PORT $AUTH_CI"

  write_auth_config() {  # FILE PORT METRICS_PORT MODE [IDLE_TIMEOUT [INSTANCE_LINES]]
    write_scram_config "$1" "$2" "$3" "$AUTH_PG_PORT" "$AUTH_DATA" "$AUTH_LOG" "${5:-1s}" "$4" \
      "$WORK/auth-users.txt" "${6:-}"
  }
  write_auth_config "$WORK/auth-gateway.toml" "$GW_PORT" "$GW_METRICS" gateway
  write_auth_config "$WORK/auth-passthrough.toml" "$TR_PORT" "$TR_METRICS" passthrough
}

# ---- 7. the authenticating gateway -----------------------------------------------------------
# A cluster of its own, as a real one with passwords: password_encryption = scram-sha-256, a
# role "bench" that logs in with SCRAM over TCP and the socket, trust for postgres over the
# socket only (the set-up). Every variant runs against this one cluster, one pgnap at a time
# (a gateway-mode one and a transparent one take turns, never both in front of it), one
# connection per variant per repetition, interleaved.
if has auth; then
  auth_setup
  AUTH_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  auth_run() {  # gateway|passthrough: that pgnap in front of the cluster, the other stopped
    auth_halt
    AUTH_NAP_PID=$(start_pgnap "$WORK/auth-$1.toml" "$WORK/pgnap-auth-$1.log")
    AUTH_METRICS=$([ "$1" = gateway ] && echo "$GW_METRICS" || echo "$TR_METRICS")
  }
  auth_halt() {
    [ -n "$AUTH_NAP_PID" ] || return 0
    kill "$AUTH_NAP_PID" 2>/dev/null || true
    for _ in $(seq 500); do kill -0 "$AUTH_NAP_PID" 2>/dev/null || break; sleep 0.01; done
    AUTH_NAP_PID=""
  }
  metric_sum() {  # NAME: the sum of its series
    curl -s "http://127.0.0.1:$AUTH_METRICS/metrics" |
      awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'
  }
  auth_asleep() {  # until pgnap says asleep and the cluster is down
    for _ in $(seq 1200); do
      if curl -s "http://127.0.0.1:$AUTH_METRICS/metrics" | grep -q 'pgnap_instance_state{.*state="asleep".*} 1' &&
        ! auth_pg status; then return 0; fi
      sleep 0.05
    done
    echo "bench: the auth cluster did not go to sleep" >&2; return 1
  }
  auth_starts() { grep -c "database system is ready to accept connections" "$AUTH_LOG" || true; }
  field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }  # KEY: its value in the tool's output line
  auth_measure() {  # FILE_PREFIX TOOL_ARGS...: rfq_ms and first_row_ms into FILE_PREFIX-rfq / -row
    local out prefix=$1; shift
    out=$("$TOOL" "$@" || true)
    case $out in ok=1*) ;; *) log "auth: $prefix failed: $out"; echo "$out" >> "$WORK/auth-errors"; return 0 ;; esac
    echo "$out" | field rfq_ms >> "$WORK/$prefix-rfq"
    echo "$out" | field first_row_ms >> "$WORK/$prefix-row"
    case " $* " in *" --cold "*) ;; *) echo "$out" | field stub_ms >> "$WORK/stub-rfq" ;; esac
  }
  auth_own() {  # FILE_PREFIX TOOL_OPTIONS...: PostgreSQL's own start to first row into FILE_PREFIX-row
    local out prefix=$1; shift
    out=$("$TOOL" start-to-first-row "$AUTH_DIRECT" --warm "$@" || true)
    case $out in ok=1*) ;; *) log "auth: $prefix failed: $out"; echo "$out" >> "$WORK/auth-errors"; return 0 ;; esac
    echo "$out" | field ms >> "$WORK/$prefix-row"
  }
  : > "$WORK/auth-errors"
  for f in stub gw-asleep gw-cold gw-first gw-awake tr-asleep tr-awake pg-poll pg-w; do : > "$WORK/$f-rfq"; : > "$WORK/$f-row"; done
  PG_START="$( [ "$(id -u)" -eq 0 ] && echo "runuser -u postgres -- " )$PG_BIN/pg_ctl start -D $AUTH_DATA -l $AUTH_LOG -s"

  # The first login of a user to a database is a real one (pgnap learns the server's
  # parameters from it): done once here, not measured.
  auth_run gateway
  "$TOOL" connect "$VIA_GW" --query >/dev/null
  auth_asleep
  gw_connect_starts=0
  for rep in $(seq "$AUTH_REPS"); do
    log "auth rep $rep/$AUTH_REPS: gateway mode (asleep, asleep cold, asleep + query, awake)"
    s0=$(auth_starts)
    auth_measure gw-asleep connect "$VIA_GW"
    auth_measure gw-cold connect "$VIA_GW" --cold
    gw_connect_starts=$((gw_connect_starts + $(auth_starts) - s0))
    auth_measure gw-first connect "$VIA_GW" --query
    auth_measure gw-awake connect "$VIA_GW" --keep-awake
    auth_asleep
    log "auth rep $rep/$AUTH_REPS: transparent mode (asleep + query, awake)"
    auth_run passthrough
    auth_measure tr-asleep connect "$VIA_TR" --query
    auth_measure tr-awake connect "$VIA_TR" --keep-awake
    auth_asleep
    auth_halt
    # PostgreSQL's own, pgnap out of the way: the wake section's baseline (pg_ctl start
    # without waiting, a connect every 5 ms), and pg_ctl start -w then one connect.
    log "auth rep $rep/$AUTH_REPS: PostgreSQL's own start (polling, then pg_ctl start -w)"
    auth_own pg-poll --start "$PG_START -W"
    auth_pg stop -m fast -w -s
    auth_own pg-w --start "$PG_START -w" --wait
    auth_pg stop -m fast -w -s
    auth_run gateway
  done

  # 3. An idle authenticated session and pg_isready every AUTH_ISREADY_EVERY s, asleep.
  log "auth: an idle session and pg_isready every ${AUTH_ISREADY_EVERY} s for ${AUTH_IDLE_SECS} s"
  auth_asleep
  idle_starts0=$(auth_starts); idle_wakes0=$(metric_sum pgnap_instance_wakes_total)
  idle_waking0=$(grep -c "waking (" "$WORK/pgnap-auth-gateway.log" || true)
  rm -f "$WORK/idle.fifo"; mkfifo "$WORK/idle.fifo"
  "$TOOL" idle-session "$VIA_GW" < "$WORK/idle.fifo" > "$WORK/idle-session.out" &
  idle_tool=$!
  exec 7> "$WORK/idle.fifo"
  for _ in $(seq 500); do [ -s "$WORK/idle-session.out" ] && break; sleep 0.01; done
  isready_sent=0; isready_ok=0
  t_start=$(now_ms)
  while [ $(( $(now_ms) - t_start )) -lt $((AUTH_IDLE_SECS * 1000)) ]; do
    next=$((t_start + (isready_sent + 1) * AUTH_ISREADY_EVERY * 1000))
    isready_sent=$((isready_sent + 1))
    pg_isready -q -t 5 -h 127.0.0.1 -p "$GW_PORT" -U bench -d postgres && isready_ok=$((isready_ok + 1))
    left=$((next - $(now_ms))); end_left=$((t_start + AUTH_IDLE_SECS * 1000 - $(now_ms)))
    [ "$end_left" -lt "$left" ] && left=$end_left
    [ "$left" -gt 0 ] && sleep "$(awk -v ms="$left" 'BEGIN {printf "%.3f", ms / 1000}')"
  done
  idle_starts=$(( $(auth_starts) - idle_starts0 ))
  idle_wakes=$(( $(metric_sum pgnap_instance_wakes_total) - idle_wakes0 ))
  idle_waking=$(( $(grep -c "waking (" "$WORK/pgnap-auth-gateway.log" || true) - idle_waking0 ))
  idle_asleep=$(auth_pg status && echo "no: running" || echo "yes")
  exec 7>&-   # the session's first query, after the idle period
  wait "$idle_tool" || true
  idle_out=$(tail -1 "$WORK/idle-session.out")
  after_starts=$(( $(auth_starts) - idle_starts0 - idle_starts ))
  auth_halt
  AUTH_LOAD="$AUTH_LOAD before, $(cut -d' ' -f1-3 /proc/loadavg) after"

  section "7. Authenticating gateway (\`auth.mode = \"gateway\"\`, SCRAM-SHA-256): ${AUTH_REPS} interleaved repetitions"
  out "A cluster of its own (PostgreSQL's defaults, \`password_encryption = scram-sha-256\`, pg_hba"
  out "\`scram-sha-256\` for the role \`bench\`, its verifier in pgnap's \`auth.file\`); clients connect"
  out "over TCP on 127.0.0.1 with libpq's defaults and the role's password, timed inside"
  out "\`pgnap-bench\` from \`PQconnectStart\`; pgnap \`idle_timeout = \"1s\"\`. Each repetition: gateway"
  out "mode (asleep; asleep from a fresh process; asleep + \`select 1\`; awake), transparent mode"
  out "(asleep + \`select 1\`; awake), PostgreSQL's own two ways; one connection each; a gateway-mode"
  out "and a transparent pgnap take turns in front of the cluster. Awake means another session's"
  out "\`select pg_sleep()\` is in flight. Unless it says *fresh process*, the client has first done"
  out "the same SCRAM login twice against a stub server in its own process, which answers at once:"
  out "libpq's one-time costs (OpenSSL's and Kerberos' configuration) are paid before the timed"
  out "connection, as in an application or a pool, and the second stub login is the client's own"
  out "cost (mostly PBKDF2 with 4096 iterations), the floor for any server."
  out ""
  out "- Command: \`SECTIONS=\"$SECTIONS\" AUTH_REPS=$AUTH_REPS AUTH_IDLE_SECS=$AUTH_IDLE_SECS AUTH_ISREADY_EVERY=$AUTH_ISREADY_EVERY bench/run.sh\`"
  out "- Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) vCPU ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), Linux $(uname -r); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); load average (1, 5, 15 min) $AUTH_LOAD"
  out ""
  n_of() { wc -l < "$1" | tr -d ' '; }
  out "Connect to ReadyForQuery:"
  out ""
  out "| | n | median ms | p95 ms | min – max ms |"
  out "| --- | ---: | ---: | ---: | --- |"
  auth_row() {  # LABEL FILE
    out "| $1 | $(n_of "$2") | $(median < "$2") | $(p95 < "$2") | $(sort -g "$2" | head -1) – $(sort -g "$2" | tail -1) |"
  }
  auth_row "floor: libpq against the stub (the client's own cost)" "$WORK/stub-rfq"
  auth_row "gateway mode, instance asleep (pgnap checks the SCRAM proof)" "$WORK/gw-asleep-rfq"
  auth_row "gateway mode, instance asleep, a fresh process's first connection (as psql)" "$WORK/gw-cold-rfq"
  auth_row "gateway mode, instance awake" "$WORK/gw-awake-rfq"
  auth_row "transparent mode, instance asleep (waits for the whole wake)" "$WORK/tr-asleep-rfq"
  auth_row "transparent mode, instance awake (PostgreSQL checks the proof)" "$WORK/tr-awake-rfq"
  gwa=$(median < "$WORK/gw-asleep-rfq"); tra=$(median < "$WORK/tr-asleep-rfq")
  out ""
  out "Gateway mode asleep: median **$gwa ms**, p95 $(p95 < "$WORK/gw-asleep-rfq") ms (target < 5 ms median); the floor, the"
  out "client's own work for the same login, $(median < "$WORK/stub-rfq") ms in the same runs;"
  out "$(ratio "$gwa" "$tra") x transparent mode asleep, $(ratio "$gwa" "$(median < "$WORK/tr-awake-rfq")") x transparent mode awake. Starts during the"
  out "gateway-mode connections while asleep: **$gw_connect_starts** (expected 0)."
  out ""
  out "Connect to first row of \`select 1\`, instance asleep:"
  out ""
  out "| | n | median ms | p95 ms | min – max ms |"
  out "| --- | ---: | ---: | ---: | --- |"
  auth_row "PostgreSQL's own: \`pg_ctl start\` + a connect every 5 ms (the wake section's baseline)" "$WORK/pg-poll-row"
  auth_row "PostgreSQL's own: \`pg_ctl start -w\`, then connect" "$WORK/pg-w-row"
  auth_row "through pgnap, gateway mode (logged in at once; the query wakes)" "$WORK/gw-first-row"
  auth_row "through pgnap, transparent mode (the startup wakes)" "$WORK/tr-asleep-row"
  gwf=$(median < "$WORK/gw-first-row"); trf=$(median < "$WORK/tr-asleep-row")
  pgp=$(median < "$WORK/pg-poll-row"); pgw=$(median < "$WORK/pg-w-row")
  out ""
  out "Ratio gateway mode / PostgreSQL's own: **$(ratio "$gwf" "$pgp")** against the polling baseline, $(ratio "$gwf" "$pgw") against"
  out "\`pg_ctl start -w\` (target <= 1.10); gateway / transparent mode: $(ratio "$gwf" "$trf"); transparent /"
  out "PostgreSQL's own (polling): $(ratio "$trf" "$pgp")."
  out ""
  out "An idle authenticated session (gateway mode, logged in while asleep, no query) and"
  out "\`pg_isready\` every ${AUTH_ISREADY_EVERY} s, instance asleep, ${AUTH_IDLE_SECS} s:"
  out ""
  out "| pg_isready answered | starts (server log) | wakes (\`pgnap_instance_wakes_total\`) | wakes (pgnap log) | still asleep at the end | the session's first query afterwards |"
  out "| ---: | ---: | ---: | ---: | --- | --- |"
  idle_row_ms=$(echo "$idle_out" | field first_row_ms)
  idle_alive=$(echo "$idle_out" | field alive)
  out "| $isready_ok of $isready_sent | **$idle_starts** | $idle_wakes | $idle_waking | $idle_asleep | $( [ "$idle_alive" = 1 ] && echo "answered in $idle_row_ms ms, $after_starts start" || echo "failed: $idle_out" ) |"
  out ""
  out "Expected: 0 starts while idle; the session alive after the idle period, and its first query"
  out "answered after one start."
  if [ -s "$WORK/auth-errors" ]; then
    out ""
    out "Failures during the run ($(n_of "$WORK/auth-errors")), the first: \`$(head -1 "$WORK/auth-errors")\`"
  fi
fi

# ---- 8. connect per request: the session pool ------------------------------------------------
# The auth section's SCRAM cluster, kept awake for the whole section (nothing here measures a
# wake): clients that open a connection per transaction (pgbench -C) or per request (a psycopg
# loop), over TCP with the role's password, direct, through pgnap in gateway mode with its pool,
# and through PgBouncer in session mode with the same auth_file (the SCRAM verifier).
if has pool; then
  auth_setup
  POOL_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  # The auth section's last query may have left it running (its pgnap exits without a stop).
  auth_pg status || auth_pg start -l "$AUTH_LOG" -w -s
  log "pool: pgbench -i (scale 1) in the SCRAM cluster"
  pgbench -i -q -s 1 "$AUTH_ADMIN" >/dev/null 2>&1
  psql -qAtX "$AUTH_ADMIN" -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO bench"
  POOL_PORT=$(free_port); POOL_METRICS=$(free_port); POOL_BOUNCER_PORT=$(free_port)
  write_auth_config "$WORK/pool.toml" "$POOL_PORT" "$POOL_METRICS" gateway "1h" "pool_size = 20"
  POOL_NAP_PID=$(start_pgnap "$WORK/pool.toml" "$WORK/pgnap-pool.log"); PIDS+=("$POOL_NAP_PID")
  cat > "$WORK/pool-bouncer.ini" <<CONF
[databases]
postgres = host=$SOCK port=$AUTH_PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $POOL_BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/auth-users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = $WORK/pool-bouncer.log
pidfile = $WORK/pool-bouncer.pid
CONF
  [ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pool-bouncer.ini"
  as_pg pgbouncer -q "$WORK/pool-bouncer.ini" > /dev/null 2>&1 &
  for _ in $(seq 200); do [ -s "$WORK/pool-bouncer.pid" ] && break; sleep 0.05; done
  PIDS+=("$(cat "$WORK/pool-bouncer.pid")")
  POOL_PY_N=${POOL_PY_N:-2000}
  pool_ci() {  # direct|pgnap|bouncer
    case $1 in
      direct) echo "host=127.0.0.1 port=$AUTH_PG_PORT user=bench dbname=postgres" ;;
      pgnap) echo "host=127.0.0.1 port=$POOL_PORT user=bench dbname=postgres" ;;
      bouncer) echo "host=127.0.0.1 port=$POOL_BOUNCER_PORT user=bench dbname=postgres" ;;
    esac
  }
  py_loop() {  # CONNINFO N: milliseconds per request (connect, one SELECT, close), timed inside
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, time, psycopg
conninfo, n = sys.argv[1], int(sys.argv[2])
psycopg.connect(conninfo).close()  # the process's one-time costs, before the clock
start = time.perf_counter()
for _ in range(n):
    with psycopg.connect(conninfo) as conn:
        conn.execute("select 1").fetchone()
print("%.3f" % ((time.perf_counter() - start) * 1000 / n))
PY
  }
  export PGPASSWORD=$AUTH_PW
  for sys in direct pgnap bouncer; do
    : > "$WORK/pool-tps-$sys"; : > "$WORK/pool-py-$sys"
    pgbench -n -S -c 1 -t 5 "$(pool_ci "$sys")" >/dev/null 2>&1 || { echo "bench: pool: $sys does not answer" >&2; exit 1; }
  done
  for rep in $(seq "$REPS"); do
    for sys in direct pgnap bouncer; do
      log "pool rep $rep/$REPS: pgbench -S -C -c 4, $sys"
      pgbench -n -S -C -c 4 -j 2 -T "$SECS" "$(pool_ci "$sys")" 2>/dev/null | awk '/^tps/ {print $3}' >> "$WORK/pool-tps-$sys"
    done
  done
  # The loop interleaved too: REPS rounds of POOL_PY_N / REPS requests per system.
  for rep in $(seq "$REPS"); do
    for sys in direct pgnap bouncer; do
      log "pool rep $rep/$REPS: psycopg connect-per-request loop, $((POOL_PY_N / REPS)) requests, $sys"
      py_loop "$(pool_ci "$sys")" "$((POOL_PY_N / REPS))" >> "$WORK/pool-py-$sys" || true
    done
  done
  unset PGPASSWORD
  saved=$(curl -s "http://127.0.0.1:$POOL_METRICS/metrics" | awk '/^pgnap_server_logins_saved_total/ {print $2}')
  sessions=$(curl -s "http://127.0.0.1:$POOL_METRICS/metrics" | awk '/^pgnap_client_sessions_total/ {print $2}')
  kill "$POOL_NAP_PID" 2>/dev/null || true
  auth_pg stop -m fast -w -s

  section "8. Connect per request: the session pool (SCRAM-SHA-256 over TCP), ${REPS} interleaved repetitions"
  out "The auth section's cluster (\`password_encryption = scram-sha-256\`), awake throughout; pgbench"
  out "scale 1, role \`bench\` logging in with its password over TCP on 127.0.0.1. pgnap in gateway"
  out "mode (\`pool_size = 20\`, \`server_reset_query = \"DISCARD ALL\"\`); PgBouncer in session mode,"
  out "\`auth_type = scram-sha-256\`, the same auth_file (the role's SCRAM verifier), \`default_pool_size = 20\`."
  out ""
  out "- Command: \`SECTIONS=\"$SECTIONS\" REPS=$REPS SECS=$SECS POOL_PY_N=$POOL_PY_N bench/run.sh\`"
  out "- Date: $(date -u +%Y-%m-%dT%H:%MZ); PgBouncer $(pgbouncer --version | awk 'NR==1 {print $2}')"
  out "- Load average (1, 5, 15 min) before: $POOL_LOAD; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  out ""
  d=$(median < "$WORK/pool-tps-direct"); n=$(median < "$WORK/pool-tps-pgnap"); b=$(median < "$WORK/pool-tps-bouncer")
  out "\`pgbench -n -S -C -c 4 -j 2 -T $SECS\` (a new connection per transaction), TPS, median of $REPS:"
  out ""
  out "| direct | pgnap | PgBouncer | pgnap / direct | pgnap / PgBouncer | PgBouncer / direct |"
  out "| ---: | ---: | ---: | ---: | ---: | ---: |"
  out "| $(printf %.0f "$d") | $(printf %.0f "$n") | $(printf %.0f "$b") | **$(ratio "$n" "$d")** | **$(ratio "$n" "$b")** | $(ratio "$b" "$d") |"
  out ""
  out "Each run's TPS: direct $(tr '\n' ' ' < "$WORK/pool-tps-direct")/ pgnap $(tr '\n' ' ' < "$WORK/pool-tps-pgnap")/ PgBouncer $(tr '\n' ' ' < "$WORK/pool-tps-bouncer")"
  out ""
  pd=$(median < "$WORK/pool-py-direct"); pn=$(median < "$WORK/pool-py-pgnap"); pb=$(median < "$WORK/pool-py-bouncer")
  out "A connect-per-request Python loop (psycopg 3: connect, \`select 1\`, close; $POOL_PY_N times in $REPS"
  out "interleaved rounds, timed inside the process), milliseconds per request, median of the rounds:"
  out ""
  out "| direct | pgnap | PgBouncer | direct / pgnap | PgBouncer / pgnap |"
  out "| ---: | ---: | ---: | ---: | ---: |"
  out "| $pd | $pn | $pb | $(ratio "$pd" "$pn") | $(ratio "$pb" "$pn") |"
  out ""
  out "Targets: pgnap >= 1.0 x PgBouncer session mode and >= 4 x direct for \`pgbench -S -C -c 4\`."
  out "pgnap's pool over the section: $saved of $sessions sessions served by a kept connection"
  out "(\`pgnap_server_logins_saved_total\` / \`pgnap_client_sessions_total\`)."
fi

# ---- 9. parked sessions ----------------------------------------------------------------------
# auth.mode = "gateway" parks a session idle for idle_session_timeout: its state is captured,
# its server connection goes back to the pool, its client connection stays open; its next
# query wakes the instance if asleep and gets the state restored on a server connection.
# Clusters of their own (copies of one initdb with a SCRAM role), each with its own pgnap;
# the clients are bench/park.py (psycopg 3, psycopg_pool), timed inside the process.
if has park; then
  kill "$NAP_PID" 2>/dev/null || true
  [ -n "$IDLE_PID" ] && { kill "$IDLE_PID" 2>/dev/null || true; }
  kill "$BOUNCER_PID" 2>/dev/null || true
  [ -n "$AUTH_READY" ] && { auth_halt 2>/dev/null || true; auth_pg stop -m fast -w -s || true; }
  sleep 0.5
  pg_stop
  PARK_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  PARK_NAP_SHA=$(sha256sum "$PGNAP" | cut -c1-12)
  PARK_PY=(/usr/bin/python3 "$ROOT/bench/park.py")
  need=$((PARK_SESSIONS * 2 + 256))
  [ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need"
  PARK_PW=bench-secret
  declare -A PARK_PG_PORT
  park_data() { echo "$WORK/park-data-$1"; }
  park_log() { echo "$WORK/park-server-$1.log"; }
  park_pg() {  # CLUSTER pg_ctl-ARGS...
    local c=$1; shift
    as_pg "$PG_BIN/pg_ctl" "$@" -D "$(park_data "$c")" >/dev/null 2>&1
  }
  park_starts() { grep -c "database system is ready to accept connections" "$(park_log "$1")" || true; }
  kv() { sed -nE "s/(^|.* )$1=([^ ]*).*/\2/p"; }  # KEY: its value in park.py's output line

  # m: the memory and resume measures (max_connections room for PARK_ATTACHED attached
  # sessions); a, b, c: the three set-ups of the app run. One initdb, copied.
  log "park: initdb a cluster with a SCRAM role, copied four times"
  as_pg "$PG_BIN/initdb" -D "$WORK/park-init" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  scram_conf "$WORK/park-init"
  PARK_INIT_PORT=$(free_port)
  as_pg "$PG_BIN/pg_ctl" start -D "$WORK/park-init" -l "$WORK/park-init.log" -o "-p $PARK_INIT_PORT" -w -s >/dev/null
  park_admin="host=$SOCK port=$PARK_INIT_PORT user=postgres dbname=postgres"
  psql -qAtX "$park_admin" -c "CREATE ROLE bench LOGIN PASSWORD '$PARK_PW'"
  verifier=$(psql -qAtX "$park_admin" -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
  case $verifier in SCRAM-SHA-256\$*) ;; *) echo "bench: expected a SCRAM verifier, got $verifier" >&2; exit 1 ;; esac
  printf '"bench" "%s"\n' "$verifier" > "$WORK/park-users.txt"
  as_pg "$PG_BIN/pg_ctl" stop -D "$WORK/park-init" -m fast -w -s >/dev/null
  for c in m a b c; do
    cp -a "$WORK/park-init" "$(park_data "$c")"
    PARK_PG_PORT[$c]=$(free_port)
    echo "port = ${PARK_PG_PORT[$c]}" >> "$(park_data "$c")/postgresql.conf"
    as_pg touch "$(park_log "$c")"
  done
  echo "max_connections = $((PARK_ATTACHED + 60))" >> "$(park_data m)/postgresql.conf"
  rm -rf "$WORK/park-init"

  write_park_config() {  # FILE CLUSTER PORT METRICS_PORT gateway|transparent IDLE_TIMEOUT [INSTANCE_LINES]
    local mode=gateway
    [ "$5" = gateway ] || mode=passthrough
    write_scram_config "$1" "$3" "$4" "${PARK_PG_PORT[$2]}" "$(park_data "$2")" "$(park_log "$2")" "$6" "$mode" \
      "$WORK/park-users.txt" "${7:-}" "max_clients = $((PARK_SESSIONS + 200))"
  }
  park_ci() { echo "host=127.0.0.1 port=$1 user=bench password=$PARK_PW dbname=postgres"; }
  park_metric() {  # METRICS_PORT NAME: the sum of its series
    curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'
  }
  park_asleep() {  # METRICS_PORT CLUSTER: until pgnap says asleep and the cluster is down
    for _ in $(seq 2400); do
      if curl -s "http://127.0.0.1:$1/metrics" | grep -q 'pgnap_instance_state{.*state="asleep".*} 1' &&
        ! park_pg "$2" status; then return 0; fi
      sleep 0.05
    done
    echo "bench: park: cluster $2 did not go to sleep" >&2; return 1
  }
  park_halt() {  # PGNAP_PID CLUSTER: that pgnap stopped, its cluster stopped
    kill "$1" 2>/dev/null || true
    for _ in $(seq 500); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
    park_pg "$2" stop -m fast -w -s || true
  }

  # 9.1 RSS per parked session, and per attached session for comparison.
  P_PORT=$(free_port); P_MET=$(free_port)
  write_park_config "$WORK/park-hold.toml" m "$P_PORT" "$P_MET" gateway "1h" 'idle_session_timeout = "1s"'
  P_PID=$(start_pgnap "$WORK/park-hold.toml" "$WORK/pgnap-park-hold.log"); PIDS+=("$P_PID")
  log "park: $PARK_SESSIONS sessions parked, in waves of 20 (pool_size 20, idle_session_timeout 1s)"
  hold_out=$("${PARK_PY[@]}" hold "$(park_ci "$P_PORT")" --metrics "http://127.0.0.1:$P_MET/metrics" --pid "$P_PID" \
    --sessions "$PARK_SESSIONS" --wave 20 || true)
  log "park: $hold_out"
  hold_parks=$(park_metric "$P_MET" pgnap_session_parks_total)
  park_halt "$P_PID" m
  A_PORT=$(free_port); A_MET=$(free_port)
  write_park_config "$WORK/park-attached.toml" m "$A_PORT" "$A_MET" gateway "1h" \
    "idle_session_timeout = \"0s\"
pool_size = $((PARK_ATTACHED + 20))"
  A_PID=$(start_pgnap "$WORK/park-attached.toml" "$WORK/pgnap-park-attached.log"); PIDS+=("$A_PID")
  log "park: $PARK_ATTACHED sessions attached (idle_session_timeout 0s, pool_size $((PARK_ATTACHED + 20)))"
  att_out=$("${PARK_PY[@]}" hold "$(park_ci "$A_PORT")" --metrics "http://127.0.0.1:$A_MET/metrics" --pid "$A_PID" \
    --sessions "$PARK_ATTACHED" --wave 20 --attached || true)
  log "park: $att_out"
  park_halt "$A_PID" m

  # 9.2 A parked session's next query against a new connection's first query, asleep and awake.
  R_PORT=$(free_port); R_MET=$(free_port)
  write_park_config "$WORK/park-resume.toml" m "$R_PORT" "$R_MET" gateway "1s"
  R_PID=$(start_pgnap "$WORK/park-resume.toml" "$WORK/pgnap-park-resume.log"); PIDS+=("$R_PID")
  log "park: resume against a fresh connection, $PARK_REPS interleaved repetitions"
  "${PARK_PY[@]}" resume "$(park_ci "$R_PORT")" --metrics "http://127.0.0.1:$R_MET/metrics" --data-dir "$(park_data m)" \
    --server-log "$(park_log m)" --reps "$PARK_REPS" > "$WORK/park-resume.out" 2> "$WORK/park-resume.err" || true
  park_halt "$R_PID" m
  for k in asleep_resume asleep_fresh awake_resume awake_fresh; do
    awk -v k="$k" '$1 == k {print $2}' "$WORK/park-resume.out" > "$WORK/park-$k"
  done
  resume_done=$(grep '^done' "$WORK/park-resume.out" || echo "done failures=? (park.py resume: $(tail -1 "$WORK/park-resume.err"))")
  odd_starts=$(awk '($1 ~ /^asleep/ && $3 != "starts=1") || ($1 ~ /^awake/ && $3 != "starts=0")' "$WORK/park-resume.out" | wc -l)

  # 9.3 An application's pool against three set-ups side by side, PARK_RUN_SECS.
  declare -A V_PORT V_MET V_PID V_S0 V_A0 V_W0 V_OUT
  for v in a b c; do V_PORT[$v]=$(free_port); V_MET[$v]=$(free_port); done
  write_park_config "$WORK/park-a.toml" a "${V_PORT[a]}" "${V_MET[a]}" gateway "$PARK_IDLE"
  write_park_config "$WORK/park-b.toml" b "${V_PORT[b]}" "${V_MET[b]}" gateway "$PARK_IDLE" "park_sessions = false"
  write_park_config "$WORK/park-c.toml" c "${V_PORT[c]}" "${V_MET[c]}" transparent "$PARK_IDLE"
  for v in a b c; do
    V_PID[$v]=$(start_pgnap "$WORK/park-$v.toml" "$WORK/pgnap-park-$v.log"); PIDS+=("${V_PID[$v]}")
    # The user's first login through a gateway is a real one: done before the run.
    PGPASSWORD=$PARK_PW psql -qAtX "host=127.0.0.1 port=${V_PORT[$v]} user=bench dbname=postgres" -c "select 1" >/dev/null
  done
  for v in a b c; do park_asleep "${V_MET[$v]}" "$v"; done
  for v in a b c; do
    V_S0[$v]=$(park_starts "$v")
    V_A0[$v]=$(park_metric "${V_MET[$v]}" pgnap_instance_asleep_seconds_total)
    V_W0[$v]=$(park_metric "${V_MET[$v]}" pgnap_instance_wakes_total)
  done
  log "park: an app pool (min 2, max 4), select 1 every ${PARK_EVERY} s for ${PARK_RUN_SECS} s, idle_timeout $PARK_IDLE, three set-ups at once"
  app_t0=$(now_ms)
  app_pids=()
  for v in a b c; do
    "${PARK_PY[@]}" app "$(park_ci "${V_PORT[$v]}")" --secs "$PARK_RUN_SECS" --every "$PARK_EVERY" \
      > "$WORK/park-app-$v.out" 2> "$WORK/park-app-$v.err" &
    app_pids+=($!); PIDS+=($!)
  done
  for p in "${app_pids[@]}"; do wait "$p" || log "park: an app exited with an error"; done
  app_secs=$(( ($(now_ms) - app_t0) / 1000 ))
  for v in a b c; do
    V_OUT[$v]="$(tail -1 "$WORK/park-app-$v.out") starts=$(( $(park_starts "$v") - ${V_S0[$v]} ))"
    V_OUT[$v]+=" asleep=$(awk -v a="${V_A0[$v]}" -v b="$(park_metric "${V_MET[$v]}" pgnap_instance_asleep_seconds_total)" 'BEGIN {printf "%.0f", b - a}')"
    V_OUT[$v]+=" wakes=$(awk -v a="${V_W0[$v]}" -v b="$(park_metric "${V_MET[$v]}" pgnap_instance_wakes_total)" 'BEGIN {print b - a}')"
    V_OUT[$v]+=" parks=$(park_metric "${V_MET[$v]}" pgnap_session_parks_total)"
    V_OUT[$v]+=" resumes=$(park_metric "${V_MET[$v]}" pgnap_session_resumes_total)"
    V_OUT[$v]+=" closed=$(park_metric "${V_MET[$v]}" pgnap_idle_sessions_closed_total)"
    log "park: set-up $v: ${V_OUT[$v]}"
  done
  for v in a b c; do park_halt "${V_PID[$v]}" "$v"; done

  section "9. Parked sessions (\`auth.mode = \"gateway\"\`, SCRAM-SHA-256)"
  out "Clusters of their own (copies of one \`initdb\`: PostgreSQL's defaults, \`password_encryption ="
  out "scram-sha-256\`, pg_hba \`scram-sha-256\` for the role \`bench\`, its verifier in pgnap's \`auth.file\`),"
  out "each behind its own pgnap (\`pool_size = 20\`, the default, \`min_awake = \"0s\"\`). The clients are"
  out "\`bench/park.py\` (psycopg $(/usr/bin/python3 -c 'import psycopg; print(psycopg.__version__)'), psycopg_pool $(/usr/bin/python3 -c 'import psycopg_pool; print(psycopg_pool.__version__)')), over TCP on 127.0.0.1 with the"
  out "role's password, timed inside the process. Each session's state: \`SET search_path = public\` and"
  out "\`PREPARE park_q (int) AS SELECT \$1 + 1\`."
  out ""
  out "- Command: \`SECTIONS=\"$SECTIONS\" PARK_SESSIONS=$PARK_SESSIONS PARK_ATTACHED=$PARK_ATTACHED PARK_REPS=$PARK_REPS PARK_RUN_SECS=$PARK_RUN_SECS PARK_EVERY=$PARK_EVERY PARK_IDLE=$PARK_IDLE bench/run.sh\`"
  out "- Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) vCPU ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); pgnap $("$PGNAP" --version | awk '{print $2}') (binary sha256 $PARK_NAP_SHA); load average (1, 5, 15 min) $PARK_LOAD before, $(cut -d' ' -f1-3 /proc/loadavg) after"
  out ""
  out "**Memory.** pgnap's RSS (\`VmRSS\`) with no session, then with N sessions; the difference over"
  out "N. No session: the same pgnap after one wave of 20 sessions came and went (its pool's 20 server"
  out "connections open, idle). Parked: \`idle_timeout = \"1h\"\` (awake throughout),"
  out "\`idle_session_timeout = \"1s\"\`; sessions opened in waves of 20 (the pool's size), each wave"
  out "waited for until \`pgnap_parked_sessions\` counts it, so no session ever waits for a server"
  out "connection. Attached: \`idle_session_timeout = \"0s\"\` (nothing parks), \`pool_size = $((PARK_ATTACHED + 20))\` and the"
  out "cluster's \`max_connections = $((PARK_ATTACHED + 60))\`: each session holds a server connection of its own, as"
  out "in section 5 but in gateway mode and with the same state. The cluster is awake throughout."
  out ""
  out "| | sessions | RSS no session (kB) | RSS with the sessions (kB) | kB per session | \`pgnap_parked_sessions\` | server connections active / idle |"
  out "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
  mem_row() {  # LABEL OUTPUT
    case $2 in ok=1*) ;; *) out "| $1 | failed: \`$2\` | | | | | |"; return 0 ;; esac
    out "| $1 | $(echo "$2" | kv sessions) | $(echo "$2" | kv rss0_kb) | $(echo "$2" | kv rss1_kb) | **$(echo "$2" | kv kb_per_session)** | $(echo "$2" | kv parked) | $(echo "$2" | kv server_active) / $(echo "$2" | kv server_idle) |"
  }
  mem_row "parked" "$hold_out"
  mem_row "attached (relayed, not parked)" "$att_out"
  out ""
  out "Opening and parking the $PARK_SESSIONS sessions took $(echo "$hold_out" | kv secs) s ($hold_parks parks counted by"
  out "\`pgnap_session_parks_total\`, the warm-up wave's 20 included)."
  out ""
  out "**Resume latency.** One pgnap, \`idle_timeout = \"1s\"\` (and so \`idle_session_timeout\`). One"
  out "session with its state, parked; per repetition, interleaved (the order of the two alternating):"
  out "its next \`select 1\` (from sending it to its row) and a new connection's connect + SCRAM login +"
  out "first \`select 1\` (from \`psycopg.connect\` to the row), each with the instance asleep (waited for:"
  out "pgnap says asleep and \`postmaster.pid\` is gone); then the same two with the instance awake (a"
  out "second session's open transaction keeps it so, and server connections wait idle in the pool"
  out "before each, so neither opens one, every one of them having run the same SET, PREPARE and"
  out "EXECUTE once: PostgreSQL's catalog caches are warm, as the first PREPARE in a new backend"
  out "costs a few ms whoever sends it): the restore's own cost (set_config, PREPARE) against a"
  out "login. After each resume the session's \`search_path\` and \`EXECUTE park_q\` are checked."
  out ""
  out "| | n | median ms | min – max ms | all runs (ms) |"
  out "| --- | ---: | ---: | --- | --- |"
  res_row() {  # LABEL KIND
    local f="$WORK/park-$2"
    out "| $1 | $(wc -l < "$f" | tr -d ' ') | $(median < "$f") | $(sort -g "$f" | head -1) – $(sort -g "$f" | tail -1) | $(tr '\n' ' ' < "$f")|"
  }
  res_row "asleep: the parked session's next query (wakes the instance)" asleep_resume
  res_row "asleep: a new connection, connect + login + first query (wakes the instance)" asleep_fresh
  res_row "awake: the parked session's next query (a pooled connection, state restored)" awake_resume
  res_row "awake: a new connection, connect + login + first query (a pooled connection)" awake_fresh
  ar=$(median < "$WORK/park-asleep_resume"); af=$(median < "$WORK/park-asleep_fresh")
  wr=$(median < "$WORK/park-awake_resume"); wf=$(median < "$WORK/park-awake_fresh")
  out ""
  out "Ratio resume / new connection: asleep **$(ratio "$ar" "$af")**, awake **$(ratio "$wr" "$wf")**."
  out "Checks: \`$resume_done\`; measurements where the server log did not show exactly one start"
  out "(asleep) or none (awake): $odd_starts."
  out ""
  out "**An application's pool.** A Python app: \`psycopg_pool.ConnectionPool(min_size=2, max_size=4)\`"
  out "(psycopg_pool's defaults otherwise: no check of a connection before handing it out), \`with"
  out "pool.connection() as conn: conn.execute(\"select 1\")\` every $PARK_EVERY s for $PARK_RUN_SECS s; an attempt that"
  out "fails is counted and retried at once until the request is served (at most 10 attempts: more"
  out "than the pool can hold dead connections), as an application with a retry loop. Three set-ups at the"
  out "same time, each with its own cluster and pgnap, \`idle_timeout = \"$PARK_IDLE\"\`,"
  out "\`idle_session_timeout\` unset (= \`idle_timeout\`): (a) gateway mode, parking on (the default);"
  out "(b) gateway mode, \`park_sessions = false\`; (c) transparent mode (no \`auth\` table: PostgreSQL"
  out "checks the password). Before the run each pgnap saw one login and query and its cluster went"
  out "to sleep; starts are the server log's \`database system is ready to accept connections\` lines"
  out "after that, seconds asleep the increase of \`pgnap_instance_asleep_seconds_total\` over the run"
  out "($app_secs s, wall clock)."
  out ""
  out "| set-up | starts (server log) | wakes (\`pgnap_instance_wakes_total\`) | seconds asleep | requests | served | errors the app saw | requests that needed a retry | parks / resumes | idle sessions closed (57P01) | ms per request, median / max |"
  out "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
  app_row() {  # LABEL SETUP
    local o=${V_OUT[$2]}
    out "| $1 | **$(echo "$o" | kv starts)** | $(echo "$o" | kv wakes) | $(echo "$o" | kv asleep) | $(echo "$o" | kv ticks) | $(echo "$o" | kv served) | **$(echo "$o" | kv errors)** | $(echo "$o" | kv retried) | $(echo "$o" | kv parks) / $(echo "$o" | kv resumes) | $(echo "$o" | kv closed) | $(echo "$o" | kv p50_ms) / $(echo "$o" | kv max_ms) |"
  }
  app_row "(a) gateway, parking" a
  app_row "(b) gateway, \`park_sessions = false\`" b
  app_row "(c) transparent" c
  for v in a b c; do
    e=$(echo "${V_OUT[$v]}" | sed -n 's/.*first_error="\([^"]*\)".*/\1/p')
    [ -n "$e" ] && { out ""; out "First error in ($v): \`$e\`"; }
  done
  starts_a=$(echo "${V_OUT[a]}" | kv starts); starts_b=$(echo "${V_OUT[b]}" | kv starts); starts_c=$(echo "${V_OUT[c]}" | kv starts)
  out ""
  out "Starts saved by parking: $((starts_b - starts_a)) against (b), $((starts_c - starts_a)) against (c)."
  idle_s=$(echo "$PARK_IDLE" | awk '/ms$/ {print $1 / 1000; next} /m$/ {print $1 * 60; next} {print $1 + 0}')
  if awk -v e="$PARK_EVERY" -v i="$idle_s" 'BEGIN {exit !(e > 2 * i)}'; then
    out "With a request every $PARK_EVERY s, more than \`idle_session_timeout\` + \`idle_timeout\` = $(awk -v i="$idle_s" 'BEGIN {print 2 * i}') s"
    out "after the previous one, the instance is asleep again when each request comes, in every"
    out "set-up: each request needs a start whether its session was parked, closed (b) or closed and"
    out "reopened by the pool (c). What parking changes here is what the application sees."
  fi
fi

# ---- docs/benchmarks.md ----------------------------------------------------------------------
targets_md() {  # the targets, the same for a full run and a partial one
  echo "## Targets"
  echo
  echo "- relay: the kernel relay's throughput >= 0.80 x direct and >= 1.2 x PgBouncer (session mode), select-only and prepared, 8 and 32 clients; its added latency at one client below PgBouncer's;"
  echo "- cold wake <= 1.10 x PostgreSQL's own start-to-first-row;"
  echo "- gateway mode: connect to ReadyForQuery while asleep < 5 ms median; connect to first row while asleep <= 1.10 x PostgreSQL's own;"
  echo "- session pool, \`pgbench -S -C -c 4\` over SCRAM: >= 1.0 x PgBouncer session mode, >= 4 x direct;"
  echo "- burst: 1 start, $BURST of $BURST served;"
  echo "- idle: ~0 CPU, no periodic wakeups faster than the heartbeat; <= 16 kB RSS per relayed session."
}
relay_reading_md() {  # how to read section 1, the same for a full run and one that runs it
  echo "## Reading the relay figures"
  echo
  echo "On a machine whose 2 vCPUs pgbench and the PostgreSQL backends already keep busy, any"
  echo "proxy costs throughput, and what it costs is CPU taken from them. A proxy in a process of"
  echo "its own (the user relay, PgBouncer) receives and sends every query and every result once"
  echo "more, and wakes one more process for each. A profile of the user relay under this load"
  echo "(\`perf record -e cpu-clock -g\`) puts about 90% of its time in the kernel (socket wake-ups"
  echo "and the context switches they cause: finish_task_switch, sock_def_readable), not in the"
  echo "relay code, which makes one recv and one send per message and direction with no"
  echo "per-message allocation or copy. (An epoll set of its own for the relay's sockets cut system"
  echo "calls by a third but not CPU per transaction, so it was not kept.) That cost is the"
  echo "kernel's socket work, which no relay in a process of its own avoids, so such a relay cannot"
  echo "lead PgBouncer by much."
  echo
  echo "The kernel relay removes that cost instead of trimming it: once a session is at rest, its"
  echo "bytes go from one socket to the other inside the kernel (a BPF verdict program on a sockmap"
  echo "redirects each segment, in softirq context), with no wake-up of pgnap and no copy to user"
  echo "space; pgnap takes the session back only for a message it must act on. Its cost is"
  echo "therefore not in pgnap's process, and section 1's *added machine CPU* column is the figure"
  echo "to read. It needs TCP on both sides, so it reaches PostgreSQL over TCP loopback where the"
  echo "user relay and PgBouncer use the cheaper Unix socket."
}
# A run of some sections only (SECTIONS=...) into an existing file replaces those sections in
# it and keeps the others, each of which says how and when it was measured; the header then
# lists the partial runs. A full run rewrites the file.
if [ "$SECTIONS" != "relay wake burst memory idle startup auth pool park" ] && [ -f "$OUT" ]; then
  /usr/bin/python3 - "$OUT" "$RESULTS" "$(date -u +%Y-%m-%dT%H:%MZ)" "SECTIONS=\"$SECTIONS\"${URING:+ PGNAP_URING_BINARY=$PGNAP_URING_BINARY} bench/run.sh" "$(targets_md)" "$(relay_reading_md)" <<'PY'
import re, sys
out_path, results_path, date, command, targets, reading = sys.argv[1:7]
doc = open(out_path).read()
new = open(results_path).read()
def sections(text):
    # "### N. title" blocks, up to the next "### " or "## " heading
    return {m.group(1): m.group(0).rstrip("\n") + "\n"
            for m in re.finditer(r"^### (\d+)\..*?(?=^### |^## |\Z)", text, re.M | re.S)}
for number, block in sections(new).items():
    old = sections(doc).get(number)
    if old:
        doc = doc.replace(old, block)
    else:
        at = doc.index("\n## Targets")
        doc = doc[:at] + "\n" + block + doc[at:]
doc = re.sub(r"^## Targets\n.*?(?=^## |\Z)", lambda m: targets.rstrip("\n") + "\n\n", doc, flags=re.M | re.S)
if "1" in sections(new):  # how to read section 1 goes with it
    doc = re.sub(r"^## Reading the relay figures\n.*?(?=^## |\Z)",
                 lambda m: reading.rstrip("\n") + ("\n" if m.end() == len(m.string) else "\n\n"),
                 doc, flags=re.M | re.S)
note = "- Sections %s updated on %s by `%s`" % (", ".join(sorted(sections(new))), date, command)
head, sep, rest = doc.partition("\n### ")
doc = head.rstrip("\n") + "\n" + note + "\n\n" + sep.lstrip("\n") + rest if sep else doc
open(out_path, "w").write(doc)
PY
  log "updated sections of $OUT"
  cat "$RESULTS"
  exit 0
fi
cpu=$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
{
  echo "# Benchmarks"
  echo
  echo "pgnap next to PostgreSQL direct and PgBouncer (session mode), measured in one run on one"
  echo "machine, the systems interleaved (A B C A B C ...). Only the ratios mean anything elsewhere."
  echo "Produced by \`make bench\` (bench/run.sh); regenerate it rather than editing it."
  echo
  echo "- Date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- Machine: $(nproc) vCPU ($cpu), $mem RAM, Linux $(uname -r)"
  echo "- PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), PgBouncer $(pgbouncer --version | awk 'NR==1 {print $2}'), pgnap $("$PGNAP" --version | awk '{print $2}')"
  echo "- Settings: pgbench scale 10, \`synchronous_commit = off\`, shared_buffers 128MB; every"
  echo "  client connects over TCP on 127.0.0.1; pgnap (the user relay) and PgBouncer reach PostgreSQL"
  echo "  over its Unix socket, section 1's kernel relay over TCP on 127.0.0.1; pgbench \`-j 2\`."
  echo "- Command: \`REPS=$REPS SECS=$SECS IDLE_SECS=$IDLE_SECS WAKE_REPS=$WAKE_REPS BURST=$BURST HOLD=$HOLD AUTH_REPS=$AUTH_REPS AUTH_IDLE_SECS=$AUTH_IDLE_SECS POOL_PY_N=${POOL_PY_N:-2000} PARK_SESSIONS=$PARK_SESSIONS PARK_REPS=$PARK_REPS PARK_RUN_SECS=$PARK_RUN_SECS PARK_EVERY=$PARK_EVERY bench/run.sh\`"
  if [ -n "$URING" ]; then echo "- Section 1's pgnap io_uring: \`PGNAP_URING_BINARY=$PGNAP_URING_BINARY\` (\`cmake -DPGNAP_IO_URING=ON\`)"; fi
  cat "$RESULTS"
  echo
  targets_md
  echo
  relay_reading_md
} > "$OUT"
log "wrote $OUT"
cat "$RESULTS"

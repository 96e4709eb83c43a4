#!/usr/bin/env bash
# `make demo`: pgnap in the foreground on 127.0.0.1:6432, in front of a throwaway PostgreSQL
# cluster under var/demo/ that it wakes on the first client and suspends after 30 s idle.
#
#   scripts/demo.sh           set up (once; reused afterwards) and run pgnap until Ctrl-C
#   scripts/demo.sh --stop    stop the demo cluster if it is running (make distclean)
#
# var/demo/data      the cluster (initdb as the `postgres` OS user when run as root);
#                    it listens only on a Unix socket in var/demo/run, port 5432
# var/demo/postgres.log   its server log
# var/demo/pgnap.toml     examples/demo.toml with its @DEMO_DIR@/@PG_BIN_DIR@ filled in
#
# pgnap runs as a child of this script rather than replacing it (exec), so that when it
# exits — Ctrl-C, or an error — the trap below can stop the demo cluster it may have woken,
# and nothing is left running. Environment: PGNAP (the binary; default build/pgnap),
# PG_BIN_DIR (PostgreSQL's server binaries; default the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
DEMO_DIR=$ROOT/var/demo
DATA=$DEMO_DIR/data
RUN=$DEMO_DIR/run
CONFIG=$DEMO_DIR/pgnap.toml
PORT=6432
PGNAP=${PGNAP:-$ROOT/build/pgnap}

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
# PostgreSQL refuses to run as root: as root, its commands run as the postgres OS user.
as_postgres() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_pg_bin_dir() {
  if [ -n "${PG_BIN_DIR:-}" ]; then
    printf '%s\n' "$PG_BIN_DIR"
    return
  fi
  local dir
  while IFS= read -r dir; do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      printf '%s\n' "$dir"
      return
    fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/pg_ctl" ]; then
    pg_config --bindir
  fi
}

PG_BIN=$(find_pg_bin_dir)
[ -n "$PG_BIN" ] || die "PostgreSQL's server binaries (initdb, pg_ctl) were not found; run scripts/install-deps.sh, or set PG_BIN_DIR"

cluster_running() { [ -f "$DATA/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

stop_cluster() {
  if cluster_running; then
    say "demo: stopping the demo cluster ($DATA)"
    as_postgres "$PG_BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 -s || true
  fi
}

if [ "${1:-}" = "--stop" ]; then
  stop_cluster
  exit 0
fi
[ $# -eq 0 ] || die "usage: scripts/demo.sh [--stop]"

[ -x "$PGNAP" ] || die "no pgnap binary at $PGNAP: run 'make build' first (or set PGNAP=/path/to/pgnap)"

SOCKET=$RUN/.s.PGSQL.5432
[ "${#SOCKET}" -le 107 ] || die "the demo's socket path $SOCKET is longer than the 107 bytes a Unix socket path may have; clone the repository at a shorter path"

mkdir -p "$DEMO_DIR" "$RUN"
chmod a+rx "$ROOT/var"  # var/ is the demo's own (git-ignored); keep it enterable
chmod 700 "$RUN"

# ---- The postgres OS user must be able to reach var/demo -------------------------------------
if is_root; then
  id postgres >/dev/null 2>&1 ||
    die "running as root, but there is no 'postgres' OS user to run PostgreSQL as (PostgreSQL refuses to run as root); scripts/install-deps.sh installs the postgresql package, which creates it"
  # Path resolution needs search (x) permission on every directory on the way.
  dir=""
  IFS=/ read -r -a parts <<<"${ROOT#/}"
  for part in "${parts[@]}" var; do
    dir="$dir/$part"
    if ! runuser -u postgres -- test -x "$dir"; then
      die "the postgres OS user cannot reach $DEMO_DIR: it may not enter $dir ($(stat -c '%A, owner %U:%G' "$dir")).
PostgreSQL runs as postgres, so its data directory must be on a path postgres can traverse.
Either allow it (chmod o+x '$dir'), or clone the repository somewhere postgres can reach (e.g. under /srv or /tmp) and run 'make demo' there."
    fi
  done
  chown postgres: "$DEMO_DIR" "$RUN"
fi

# ---- The cluster (created once, reused afterwards) -------------------------------------------

created=no
if [ ! -f "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"
  say "demo: creating a throwaway PostgreSQL cluster in $DATA (initdb)"
  if ! as_postgres "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C \
      --no-instructions >"$DEMO_DIR/initdb.log" 2>&1; then
    cat "$DEMO_DIR/initdb.log" >&2
    die "initdb failed (output above, and in $DEMO_DIR/initdb.log)"
  fi
  created=yes
fi
# Only a Unix socket in var/demo/run, no TCP. Checked on every run: if the repository moved,
# the socket directory moves with it (the last setting in postgresql.conf wins).
if ! grep -qxF "unix_socket_directories = '$RUN'" "$DATA/postgresql.conf"; then
  cat >>"$DATA/postgresql.conf" <<EOF

# pgnap demo (scripts/demo.sh): reachable only through pgnap, via this socket directory.
listen_addresses = ''
port = 5432
unix_socket_directories = '$RUN'
EOF
fi

sed -e "s|@DEMO_DIR@|$DEMO_DIR|g" -e "s|@PG_BIN_DIR@|$PG_BIN|g" "$ROOT/examples/demo.toml" >"$CONFIG"
if ! check_out=$("$PGNAP" check -c "$CONFIG" 2>&1); then
  printf '%s\n' "$check_out" >&2
  die "pgnap check rejected $CONFIG (made from examples/demo.toml)"
fi

# ---- Port 6432 must be free ------------------------------------------------------------------
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "127.0.0.1:$PORT is already in use (another pgnap? PgBouncer?), so the demo cannot listen there.
Find it with: ss -ltnp 'sport = :$PORT'   — stop it, then run 'make demo' again."
fi

if cluster_running; then state="running now (pgnap adopts it awake)"; else state="stopped (asleep)"; fi
if [ "$created" = yes ]; then how="created now"; else how="reused"; fi
cat <<EOF

pgnap demo
  cluster     $DATA ($how; $state)
              PostgreSQL from $PG_BIN, listening only on the Unix socket in $RUN
  server log  $DEMO_DIR/postgres.log
  config      $CONFIG (from examples/demo.toml)
  pgnap       listens on 127.0.0.1:$PORT; suspends the cluster after 30 s without sessions

Try it, from another terminal:
  psql "host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

Watch pgnap's log below:
  waking       a client arrived while the cluster was asleep: pgnap starts it
  ready after  the cluster accepts connections: the waiting clients go through
  suspending   30 s without sessions: pgnap stops the cluster (pg_ctl stop -m fast)
  asleep       it is stopped; the next client wakes it again

Ctrl-C stops pgnap, and the demo cluster with it.

EOF

trap stop_cluster EXIT
"$PGNAP" run -c "$CONFIG" &
pgnap_pid=$!
# Ctrl-C reaches pgnap directly from the terminal too; forwarding SIGTERM also covers a
# `kill` of this script, and a child started with & may have inherited SIGINT ignored.
trap 'kill -TERM "$pgnap_pid" 2>/dev/null || true' INT TERM
set +e
while :; do
  wait "$pgnap_pid"
  status=$?
  kill -0 "$pgnap_pid" 2>/dev/null || break
done
set -e
say "demo: pgnap exited (status $status)"
exit "$status"

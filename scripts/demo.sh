#!/usr/bin/env bash
# `make demo`: pgnap in the foreground on 127.0.0.1:6432, in front of a throwaway PostgreSQL
# cluster under var/demo/. pgnap authenticates clients itself (auth.mode = "gateway"): a login
# is answered at once while the cluster sleeps, the session's first query wakes it, and pgnap
# suspends it after 30 s idle.
#
#   scripts/demo.sh           set up (once; reused afterwards) and run pgnap until Ctrl-C
#   scripts/demo.sh --stop    stop the demo cluster if it is running (make distclean)
#
# var/demo/data      the cluster (initdb as the `postgres` OS user when run as root);
#                    it listens only on a Unix socket in var/demo/run, port 5432. The role
#                    `postgres` is trusted on that socket (the demo's own setup, pgnap's
#                    readiness probe); every other role logs in with its password.
# var/demo/postgres.log   its server log
# var/demo/userlist.txt   the auth_file pgnap reads (mode 0600): role `demo` (password `demo`)
#                         with its SCRAM verifier, read from pg_authid on every run
# var/demo/pgnap.toml     examples/demo.toml with its @DEMO_DIR@/@PG_BIN_DIR@ filled in
# var/demo/setup-pgnap.log  the log of the short-lived pgnap that makes demo's first login
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
    say "demo: stopping the demo cluster ($DATA)${1:+; $1}"
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

# The role `postgres` is trusted on the socket, as initdb --auth=trust made it: the setup below
# and pgnap's readiness probe log in as it. Every other role must give its password, so that
# pgnap's login to PostgreSQL for a client is a real SCRAM exchange (with the key the client
# proved to pgnap), as on a real server. Rewritten when it differs; the cluster reads it at start.
HBA="# pgnap demo (scripts/demo.sh): Unix socket only (see postgresql.conf), reached through pgnap.
local   all   postgres   trust
local   all   all        scram-sha-256"
if [ "$(cat "$DATA/pg_hba.conf")" != "$HBA" ]; then
  printf '%s\n' "$HBA" >"$DATA/pg_hba.conf"
  if is_root; then chown postgres: "$DATA/pg_hba.conf"; fi
  if cluster_running; then as_postgres "$PG_BIN/pg_ctl" reload -D "$DATA" -s; fi
fi

sed -e "s|@DEMO_DIR@|$DEMO_DIR|g" -e "s|@PG_BIN_DIR@|$PG_BIN|g" "$ROOT/examples/demo.toml" >"$CONFIG"

# ---- Port 6432 must be free ------------------------------------------------------------------
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "127.0.0.1:$PORT is already in use (another pgnap? PgBouncer?), so the demo cannot listen there.
Find it with: ss -ltnp 'sport = :$PORT'   — stop it, then run 'make demo' again."
fi

# ---- The role `demo` and pgnap's auth_file ---------------------------------------------------
# The cluster runs for the setup only if it has to; it is stopped again afterwards, so that
# the demo starts with it asleep (a cluster found running stays running: pgnap adopts it).
if cluster_running; then was_running=yes; else was_running=no; fi
setup_pid=""
setup_cleanup() {
  if [ -n "$setup_pid" ]; then kill -TERM "$setup_pid" 2>/dev/null || true; wait "$setup_pid" 2>/dev/null || true; fi
  if [ "$was_running" = no ]; then stop_cluster "${1:-}"; fi
}
trap setup_cleanup EXIT
if [ "$was_running" = no ]; then
  say "demo: starting the demo cluster for the setup (role demo, its verifier, a first login through pgnap)"
  as_postgres "$PG_BIN/pg_ctl" start -D "$DATA" -l "$DEMO_DIR/postgres.log" -w -t 60 -s ||
    die "the demo cluster did not start; see $DEMO_DIR/postgres.log"
fi

PSQL=$PG_BIN/psql
[ -x "$PSQL" ] || PSQL=$(command -v psql) || die "psql was not found (in $PG_BIN or on PATH)"
psql_postgres() { as_postgres "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -h "$RUN" -p 5432 -U postgres -d postgres "$@"; }

# Created once, with a SCRAM verifier (PostgreSQL 15's default password_encryption, set
# explicitly here); reused afterwards, its password left as it is.
role_state=$(psql_postgres -c "SELECT CASE WHEN rolpassword IS NULL THEN 'nopassword' ELSE 'reused' END
                                 FROM pg_authid WHERE rolname = 'demo'")
if [ "$role_state" != reused ]; then
  if [ -z "$role_state" ]; then verb=CREATE; role_state="created now"; else verb=ALTER; role_state="password set now"; fi
  psql_postgres -c "SET password_encryption = 'scram-sha-256'" -c "$verb ROLE demo LOGIN PASSWORD 'demo'" ||
    die "could not set up the role demo in the demo cluster"
fi
# pgnap must hold the verifier PostgreSQL holds (pg_authid.rolpassword), in PgBouncer's
# auth_file format: "user" "verifier". Read again on every run.
verifier=$(psql_postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'demo'")
case $verifier in
  'SCRAM-SHA-256$'*) ;;
  *) die "the role demo has no SCRAM verifier (pg_authid.rolpassword starts with '${verifier:0:8}'); run 'make distclean' and 'make demo' again" ;;
esac
AUTH_FILE=$DEMO_DIR/userlist.txt
(
  umask 077
  printf '; pgnap demo (scripts/demo.sh): role demo, password demo; its verifier from pg_authid\n"demo" "%s"\n' \
    "$verifier" >"$AUTH_FILE.new"
)
chmod 600 "$AUTH_FILE.new"
mv -f "$AUTH_FILE.new" "$AUTH_FILE"

if ! check_out=$("$PGNAP" check -c "$CONFIG" 2>&1); then
  printf '%s\n' "$check_out" >&2
  die "pgnap check rejected $CONFIG (made from examples/demo.toml)"
fi

# pgnap answers a login at once only for a user and database it has already seen log in for
# real: it gives the client the server's parameters (server_version, TimeZone, ...) of that
# last login, kept in its ledger. Make that login now, through a short-lived pgnap on the same
# configuration, so that the demo's first connection is already answered without a wake.
"$PGNAP" run -c "$CONFIG" >"$DEMO_DIR/setup-pgnap.log" 2>&1 &
setup_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  kill -0 "$setup_pid" 2>/dev/null || break
  sleep 0.1
done
if ! PGPASSWORD=demo PGCONNECT_TIMEOUT=30 "$PSQL" -X -q -At \
    "host=127.0.0.1 port=$PORT user=demo dbname=postgres sslmode=disable" -c 'SELECT 1' >/dev/null; then
  cat "$DEMO_DIR/setup-pgnap.log" >&2
  die "the first login of demo through pgnap failed (pgnap's log above, in $DEMO_DIR/setup-pgnap.log)"
fi
kill -TERM "$setup_pid" 2>/dev/null || true
wait "$setup_pid" 2>/dev/null || true
setup_pid=""
setup_cleanup "set up, so the demo starts with it asleep"
trap - EXIT

if cluster_running; then state="running now (pgnap adopts it awake)"; else state="stopped (asleep)"; fi
if [ "$created" = yes ]; then how="created now"; else how="reused"; fi
if is_root; then status_cmd="runuser -u postgres -- $PG_BIN/pg_ctl status -D $DATA"; else status_cmd="$PG_BIN/pg_ctl status -D $DATA"; fi
cat <<EOF

pgnap demo
  cluster     $DATA ($how; $state)
              PostgreSQL from $PG_BIN, listening only on the Unix socket in $RUN
  role        demo, password demo ($role_state; SCRAM-SHA-256)
  auth_file   $AUTH_FILE (demo's verifier, read from pg_authid)
  server log  $DEMO_DIR/postgres.log
  config      $CONFIG (from examples/demo.toml)
  pgnap       listens on 127.0.0.1:$PORT and authenticates clients itself (auth.mode = "gateway");
              suspends the cluster after 30 s with no session in use

Try it, from another terminal:
  psql "postgresql://demo:demo@127.0.0.1:$PORT/postgres"

  Connecting does not wake the cluster: pgnap checks the password itself and answers at once.
  Its log below stays quiet, and the cluster is still stopped:
    $status_cmd
  The first query wakes it: SELECT 1; waits while pgnap logs "waking (..., cause: query)" and
  "ready after N ms", then answers.

  Who keeps it awake, and why (every session, what it does, the next suspend):
    $PGNAP status -c $CONFIG
  Wake it for 10 minutes, or put it to sleep now:
    $PGNAP wake main --for 10m -c $CONFIG
    $PGNAP sleep main -c $CONFIG

Watch pgnap's log below:
  waking        a query arrived while the cluster sleeps: pgnap starts it
  ready after   the cluster accepts connections: pgnap logs in to it for the session, and
                the query runs
  parking N idle session(s)
                a session left open with no traffic for 30 s: pgnap detaches it from the
                cluster and keeps psql connected; your next command resumes it, with its
                settings and prepared statements restored (waking the cluster if it sleeps)
  suspending    30 s with no session in use: pgnap stops the cluster (pg_ctl stop -m fast)
  asleep        it is stopped; logging in does not wake it, the next query does

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

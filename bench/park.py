#!/usr/bin/python3
"""The clients of bench/run.sh's park section (parked sessions, auth.mode = "gateway").

psycopg 3 (and psycopg_pool for `app`); every time is taken inside this process. Prints
key=value lines that run.sh reads.

  park.py hold CONNINFO --metrics URL --pid PID --sessions N [--wave W] [--attached]
      pgnap's RSS (VmRSS of PID) with no session, then with N sessions each logged in
      (SCRAM), with a SET and a PREPARE done, and parked (waits for pgnap_parked_sessions == N
      after each wave of W, so that no wave needs more than the pool's W server connections).
      --attached: the gateway does not park (idle_session_timeout = "0s"); the sessions stay
      attached to server connections of their own.
  park.py resume CONNINFO --metrics URL --data-dir D --server-log F --reps R
      one session with a SET and a PREPARE, parked; per repetition, interleaved: its next query
      with the instance asleep, a new connection's connect + login + first query with the
      instance asleep, then the same two with the instance awake (a second session's open
      transaction keeps it so) and an idle pooled server connection ready for either
  park.py app CONNINFO --secs S --every E
      an application's pool (psycopg_pool.ConnectionPool, min_size=2, max_size=4) running
      `select 1` every E seconds for S seconds; an attempt that fails is counted and retried at
      once, as an application with a retry loop does, until the request is served (at most 10
      attempts: more than the pool can hold dead connections)
"""
import argparse
import os
import statistics
import sys
import time
import urllib.request

import psycopg

STATE = ["SET search_path = public", "PREPARE park_q (int) AS SELECT $1 + 1"]


def metrics(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def metric(url, name, labels=""):
    """The sum of the series of NAME whose labels contain LABELS (e.g. 'state="idle"')."""
    total = 0.0
    for line in metrics(url).splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series == name or (series.startswith(name + "{") and labels in series):
            total += float(value)
    return total


def wait_for(what, test, timeout=60.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(step)
    raise SystemExit("park.py: timed out waiting for " + what)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("park.py: no VmRSS for %d" % pid)


def session(conninfo):
    conn = psycopg.connect(conninfo, autocommit=True)
    for sql in STATE:
        conn.execute(sql)
    return conn


def check_state(conn):
    """The session's state after a resume: its search_path and its prepared statement."""
    ok = conn.execute("SHOW search_path").fetchone()[0] == "public"
    return ok and conn.execute("EXECUTE park_q (41)").fetchone()[0] == 42


def hold(a):
    parked = lambda: metric(a.metrics, "pgnap_parked_sessions")  # noqa: E731
    psycopg.connect(a.conninfo).close()  # the user's first login (a real one) and this process's one-time costs
    # One wave first, closed again: the pool's server connections opened and the allocator warm,
    # so that the baseline is the same gateway with no session.
    warm = [session(a.conninfo) for _ in range(a.wave)]
    if not a.attached:
        wait_for("the warm-up wave to park", lambda: parked() == len(warm))
    for c in warm:
        c.close()
    wait_for("the warm-up sessions to end", lambda: metric(a.metrics, "pgnap_client_sessions") == 0 and parked() == 0)
    time.sleep(1)
    rss0 = rss_kb(a.pid)
    conns = []
    t0 = time.monotonic()
    while len(conns) < a.sessions:
        conns += [session(a.conninfo) for _ in range(min(a.wave, a.sessions - len(conns)))]
        if not a.attached:
            wait_for("wave to park (%d sessions)" % len(conns), lambda: parked() == len(conns))
    secs = time.monotonic() - t0
    time.sleep(1)
    rss1 = rss_kb(a.pid)
    print("ok=1 sessions=%d rss0_kb=%d rss1_kb=%d kb_per_session=%.2f parked=%d server_active=%d server_idle=%d secs=%.1f"
          % (len(conns), rss0, rss1, (rss1 - rss0) / len(conns), parked(),
             metric(a.metrics, "pgnap_server_connections", 'state="active"'),
             metric(a.metrics, "pgnap_server_connections", 'state="idle"'), secs))
    sys.stdout.flush()
    for c in conns:
        c.close()


def resume(a):
    url = a.metrics
    parked = lambda: metric(url, "pgnap_parked_sessions")  # noqa: E731

    def starts():
        with open(a.server_log, errors="replace") as f:
            return f.read().count("database system is ready to accept connections")

    def asleep():
        return (metric(url, "pgnap_instance_state", 'state="asleep"') == 1
                and not os.path.exists(os.path.join(a.data_dir, "postmaster.pid")))

    def timed_resume(conn):
        t = time.perf_counter()
        conn.execute("select 1").fetchone()
        return (time.perf_counter() - t) * 1000

    def timed_fresh():
        t = time.perf_counter()
        conn = psycopg.connect(a.conninfo, autocommit=True)
        conn.execute("select 1").fetchone()
        ms = (time.perf_counter() - t) * 1000
        conn.close()
        return ms

    psycopg.connect(a.conninfo).close()  # one-time costs (libpq, OpenSSL), before any clock
    s = session(a.conninfo)
    failures = 0
    for rep in range(a.reps):
        # Asleep: the same sleeping instance woken by the parked session's query, or by a new
        # connection's first query (the parked session stays parked), order alternating.
        order = ["resume", "fresh"] if rep % 2 == 0 else ["fresh", "resume"]
        for kind in order:
            wait_for("the instance to sleep with the session parked", lambda: asleep() and parked() == 1, 120)
            s0 = starts()
            ms = timed_resume(s) if kind == "resume" else timed_fresh()
            if kind == "resume" and not check_state(s):
                failures += 1
            print("asleep_%s %.3f starts=%d" % (kind, ms, starts() - s0))
        # Awake: another session's open transaction keeps it awake (it is never parked), and
        # server connections wait idle in the pool before each timed query, every one of them
        # having run the same SET, PREPARE and EXECUTE once (PostgreSQL's caches warm: the
        # first PREPARE in a new backend costs it a few ms of catalog lookups, whoever sends it).
        keeper = psycopg.connect(a.conninfo)
        keeper.execute("select 1")  # BEGIN ... and the transaction stays open
        order = ["resume", "fresh"] if rep % 2 == 0 else ["fresh", "resume"]
        for kind in order:
            wait_for("the session parked", lambda: parked() == 1)
            spares = [session(a.conninfo)
                      for _ in range(int(metric(url, "pgnap_server_connections", 'state="idle"')) + 1)]
            for c in spares:
                c.execute("EXECUTE park_q (1)").fetchone()
            for c in spares:
                c.close()  # their server connections go back to the pool
            wait_for("the session parked and an idle pooled connection",
                     lambda: parked() == 1 and metric(url, "pgnap_server_connections", 'state="idle"') >= 1)
            s0 = starts()
            ms = timed_resume(s) if kind == "resume" else timed_fresh()
            if kind == "resume" and not check_state(s):
                failures += 1
            print("awake_%s %.3f starts=%d" % (kind, ms, starts() - s0))
        keeper.rollback()
        keeper.close()
        sys.stdout.flush()
    print("done failures=%d resumes=%d parks=%d restore_failures=%d" % (
        failures, metric(url, "pgnap_session_resumes_total"), metric(url, "pgnap_session_parks_total"),
        metric(url, "pgnap_session_restore_failures_total")))
    s.close()


def app(a):
    import logging
    from psycopg_pool import ConnectionPool, PoolTimeout
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    ticks = served = errors = retried = 0
    first_error = ""
    lat = []
    start = time.monotonic()
    with ConnectionPool(a.conninfo, min_size=2, max_size=4, timeout=120) as pool:
        while True:
            at = start + ticks * a.every
            if at >= start + a.secs:
                break
            time.sleep(max(0.0, at - time.monotonic()))
            ticks += 1
            t = time.perf_counter()
            for attempt in range(10):
                try:
                    with pool.connection() as conn:
                        conn.execute("select 1").fetchone()
                    served += 1
                    retried += attempt > 0
                    lat.append((time.perf_counter() - t) * 1000)
                    break
                except (psycopg.Error, PoolTimeout) as e:
                    errors += 1
                    msg = " ".join(str(e).split())
                    first_error = first_error or msg
                    print("%.1f s: %s" % (time.monotonic() - start, msg), file=sys.stderr)
        time.sleep(max(0.0, start + a.secs - time.monotonic()))
    print('ticks=%d served=%d errors=%d retried=%d p50_ms=%.1f max_ms=%.1f first_error="%s"' % (
        ticks, served, errors, retried, statistics.median(lat) if lat else 0, max(lat) if lat else 0,
        first_error.replace('"', "'")))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["hold", "resume", "app"])
    p.add_argument("conninfo")
    p.add_argument("--metrics")
    p.add_argument("--pid", type=int)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--wave", type=int, default=20)
    p.add_argument("--attached", action="store_true")
    p.add_argument("--data-dir")
    p.add_argument("--server-log")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--secs", type=float, default=600)
    p.add_argument("--every", type=float, default=30)
    a = p.parse_args()
    {"hold": hold, "resume": resume, "app": app}[a.mode](a)


if __name__ == "__main__":
    main()

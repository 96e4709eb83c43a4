#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (run from anywhere; output is checked in):
real packets for the protocol targets, the example configurations for fuzz_config.
Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))


def u32(v):
    return struct.pack("!I", v)


def startup(code, body=b""):
    return u32(8 + len(body)) + u32(code) + body


def msg(t, body=b""):
    return t + u32(4 + len(body)) + body


def write(sub, name, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.join(HERE, sub), exist_ok=True)
    with open(os.path.join(HERE, sub, name), "wb") as f:
        f.write(data)


P3 = 3 << 16
write("startup", "startup_user_db", startup(P3, b"user\0alice\0database\0shop\0\0"))
write("startup", "startup_many_params",
      startup(P3, b"user\0bob\0application_name\0psql\0client_encoding\0UTF8\0"
                  b"options\0-c search_path=x\0_pq_.ext\0on\0\0"))
write("startup", "startup_3_2", startup((3 << 16) | 2, b"user\0u\0\0"))
write("startup", "startup_protocol_2", startup(2 << 16, b"user\0u\0\0"))
write("startup", "ssl_request", startup((1234 << 16) | 5679))
write("startup", "gssenc_request", startup((1234 << 16) | 5680))
write("startup", "cancel_request", startup((1234 << 16) | 5678, u32(4242) + u32(0xDEADBEEF)))
write("startup", "two_packets", startup((1234 << 16) | 5679) + startup(P3, b"user\0a\0\0"))

# Scanner inputs: N, N chunk sizes, 32-byte watched mask, then the stream.
def scanner_input(chunks, watched, stream):
    mask = bytearray(32)
    for t in watched:
        mask[t // 8] |= 1 << (t % 8)
    return bytes([len(chunks)]) + bytes(c - 1 for c in chunks) + bytes(mask) + stream

RELAY = b"RKZE"
backend = (msg(b"R", u32(0)) + msg(b"S", b"server_version\x0015.6\0") + msg(b"K", u32(4242) + u32(7))
           + msg(b"Z", b"I") + msg(b"T", b"\0\x01n\0" + u32(0) + b"\0\0" + u32(23) + b"\0\x04" + u32(0xFFFFFFFF) + b"\0\0")
           + msg(b"D", b"\0\x01" + u32(1) + b"1") + msg(b"C", b"SELECT 1\0")
           + msg(b"E", b"SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0Fparse_relation.c\0\0")
           + msg(b"Z", b"T"))
write("message_scanner", "backend_session_whole", scanner_input([256], RELAY, backend))
write("message_scanner", "backend_session_bytewise", scanner_input([], RELAY, backend))
write("message_scanner", "backend_session_chunks", scanner_input([3, 7, 1, 64, 5], RELAY, backend))
write("message_scanner", "frontend_query_terminate",
      scanner_input([2, 9], b"QXS", msg(b"Q", b"SELECT 1;\0") + msg(b"P", b"\0SELECT $1\0\0\0") + msg(b"S") + msg(b"X")))
write("message_scanner", "sasl_auth",
      scanner_input([4], RELAY, msg(b"R", u32(10) + b"SCRAM-SHA-256\0\0") + msg(b"R", u32(11) + b"r=abc,s=xyz,i=4096")))
write("message_scanner", "long_data_row", scanner_input([100, 1], b"D", msg(b"D", b"\0\x01" + u32(300) + b"x" * 300)))


# fuzz_backend_messages: 1 byte chunk size (0 = whole stream), then a server-to-client stream.
# ErrorResponse/NoticeResponse bodies as PostgreSQL writes them (protocol-error-fields.html).
def fields(*pairs):
    return b"".join(code + value + b"\0" for code, value in pairs) + b"\0"

ERROR_42P01 = msg(b"E", fields((b"S", b"ERROR"), (b"V", b"ERROR"), (b"C", b"42P01"),
                                (b"M", b'relation "nope" does not exist'), (b"P", b"15"),
                                (b"F", b"parse_relation.c"), (b"L", b"1392"), (b"R", b"parserOpenTable")))
LOGIN = (msg(b"R", u32(0)) + msg(b"S", b"server_version\x0015.6\0") + msg(b"S", b"client_encoding\0UTF8\0")
         + msg(b"K", u32(4242) + u32(0x5EC12E7)) + msg(b"Z", b"I"))
write("backend_messages", "login_trust", b"\0" + LOGIN)
write("backend_messages", "login_scram_chunked",
      b"\x07" + msg(b"R", u32(10) + b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")
      + msg(b"R", u32(11) + b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
      + msg(b"R", u32(12) + b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") + LOGIN)
write("backend_messages", "login_md5_cleartext", b"\x03" + msg(b"R", u32(5) + b"\x01\x02\x03\x04") + msg(b"R", u32(3)))
write("backend_messages", "query_error_in_transaction",
      b"\x0b" + msg(b"T", b"\0\x01n\0" + u32(0) + b"\0\0" + u32(23) + b"\0\x04" + u32(0xFFFFFFFF) + b"\0\0")
      + msg(b"D", b"\0\x01" + u32(1) + b"1") + msg(b"C", b"SELECT 1\0") + msg(b"Z", b"T")
      + ERROR_42P01 + msg(b"Z", b"E"))
write("backend_messages", "notice_then_fatal",
      b"\0" + msg(b"N", fields((b"S", b"WARNING"), (b"V", b"WARNING"), (b"C", b"01000"), (b"M", b"careful")))
      + msg(b"E", fields((b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"57P01"),
                         (b"M", b"terminating connection due to administrator command"))))
# The 'C' field beyond the 64 captured bytes: no SQLSTATE can be read.
write("backend_messages", "error_sqlstate_past_head",
      b"\0" + msg(b"E", fields((b"M", b"m" * 70), (b"C", b"XX000"))))
# Protocol 3.2 (PostgreSQL 18) sends longer cancel keys; pgnap speaks 3.0 and ignores them.
write("backend_messages", "negotiate_and_long_key",
      b"\x05" + msg(b"v", u32(0) + u32(1) + b"_pq_.unknown\0") + msg(b"K", u32(7) + b"k" * 32) + msg(b"Z", b"X"))
write("backend_messages", "length_below_minimum", b"\0" + msg(b"Z", b"I") + b"Z" + u32(3))
# The encoders' strings: severity, SQLSTATE, message, detail, hint, cut at 0x1f.
write("backend_messages", "encoder_fields",
      b"\0FATAL\x1f57P03\x1fthe database system is starting up\x1fwoken by pgnap\x1fretry in a moment")

# fuzz_config: the example configurations as they ship, the demo's template filled in, and a
# few small documents that reach the other keys and the cross-key checks.
for rel in ["examples/pgnap.toml", "examples/demo.toml"] + [
        "examples/operations/" + f for f in sorted(os.listdir(os.path.join(ROOT, "examples", "operations")))]:
    with open(os.path.join(ROOT, rel), "rb") as f:
        text = f.read()
    write("config", os.path.basename(rel), text)
    if rel == "examples/demo.toml":
        write("config", "demo_filled.toml",
              text.replace(b"@DEMO_DIR@", b"/var/lib/pgnap/demo").replace(b"@PG_BIN_DIR@", b"/usr/lib/postgresql/15/bin"))
write("config", "every_gateway_key.toml", """\
[gateway]
listen = ["[::1]:6432", "0.0.0.0:0", "/run/pgnap/.s.PGSQL.6432"]
max_clients = 50
login_timeout = "250ms"
ledger = "state/ledger.db"
ledger_heartbeat = "1m"
shutdown_timeout = "0s"
log_level = "debug"
max_message_size = "16 MB"
tcp_keepalive_idle = "2h"
tcp_keepalive_interval = "1d"
tcp_keepalive_count = 127

[gateway.tls]
mode = "require"
cert = "tls/server.crt"
key = "/etc/pgnap/tls/server.key"
ca = "tls/ca.crt"

[metrics]
listen = "[::]:9932"

[instances.a-1]
backend = "systemd"
address = "db.internal:5432"
tls = "require"
suspend_on_exit = true
max_waiting = 0
connect_timeout = "3s"
systemd = { unit = "postgresql@15-main", stop_timeout = "2m" }
""")
write("config", "exec_env_accounting.toml", """\
[instances.app]
databases = ["app", "app_test"]
backend = "exec"
address = "/var/run/postgresql/.s.PGSQL.5433"

[instances.app.exec]
start = ["sh", "-c", "exec docker start 'db'"]
stop = ["docker", "stop", "db"]
status = ["true"]
env = { DOCKER_HOST = "unix:///run/docker.sock", "X Y" = "1" }
os_user = "pgnap"
start_timeout = "1d"

[instances.app.accounting]
vcpus = 0.5
memory_gb = 2
power_watts = 12.5
busy_power_watts = 40
residual_watts = 1
pue = 1.0
grid_intensity = 0
grid_source = "measured"
grid_year = 2100
price_per_hour = 0.034
currency = "EUR"
wake_billed_minimum = "10m"
embodied_g_per_hour = 1e-3

[instances.other]
databases = ["*"]
backend = "pg_ctl"
address = "/tmp"
pg_ctl = { data_dir = "../data", bin_dir = "", log_file = "log/../pg.log" }
""")
write("config", "errors_many.toml", """\
[gateway]
listen = []
max_message_size = "99999999999GB"
log_level = "loud"
unknown = 1

[instances."bad name"]
backend = "kubernetes"
address = "localhost"
idle_timeout = "10"
databases = ["x", "x", ""]
exec = { start = [] }

[instances.b]
backend = "pg_ctl"
address = "[::1]:99999"
databases = ["x"]
""")
write("config", "errors_toml_syntax.toml", "[instances.main\nbackend = 'pg_ctl\n")

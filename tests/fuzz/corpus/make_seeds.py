#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (run from anywhere; output is checked in):
real packets for the protocol targets, the example configurations for fuzz_config, SCRAM
exchanges and auth_files for auth/'s targets.
With target names as arguments (e.g. `make_seeds.py frontend_messages`), writes only theirs.
Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
ONLY = set(sys.argv[1:])


def u32(v):
    return struct.pack("!I", v)


def i32(v):
    return struct.pack("!i", v)


def u16(v):
    return struct.pack("!H", v)


def startup(code, body=b""):
    return u32(8 + len(body)) + u32(code) + body


def msg(t, body=b""):
    return t + u32(4 + len(body)) + body


def write(sub, name, data):
    if ONLY and sub not in ONLY:
        return
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

# What pgnap reads back when it logs in for a client and runs its auth_query: the
# extended-protocol answers, a row with a NULL, a French server's error (S localized, V not).
write("backend_messages", "auth_query_answers",
      b"\x09" + msg(b"1") + msg(b"2")
      + msg(b"T", u16(2) + b"usename\0" + u32(0) + b"\0\0" + u32(19) + b"\0\x40" + u32(0xFFFFFFFF) + b"\0\0"
            + b"passwd\0" + u32(0) + b"\0\0" + u32(25) + b"\xff\xff" + u32(0xFFFFFFFF) + b"\0\0")
      + msg(b"D", u16(2) + i32(5) + b"alice" + i32(-1)) + msg(b"C", b"SELECT 1\0") + msg(b"Z", b"I")
      + msg(b"E", fields((b"S", b"ERREUR"), (b"V", b"ERROR"), (b"C", b"42501"),
                         (b"M", b"droit refus\xc3\xa9 pour la table pg_authid"), (b"F", b"aclchk.c"),
                         (b"L", b"3650"), (b"R", b"aclcheck_error")))
      + msg(b"Z", b"I"))
# A wrong password, as PostgreSQL 15 ends the login (auth_failed() in auth.c).
write("backend_messages", "login_password_failed",
      b"\0" + msg(b"R", u32(3))
      + msg(b"E", fields((b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"28P01"),
                         (b"M", b'password authentication failed for user "x"'), (b"F", b"auth.c"),
                         (b"L", b"335"), (b"R", b"auth_failed"))))

# fuzz_kernel_walk: 1 byte of flags (bit 0: server side; bits 1-2: stop mask none, the relay's,
# from the input, both), 2 bytes choosing max_length (0: 0x7fffffff, 1: 0xffffffff, n: n + 1),
# N, N segment sizes (each 1..256), how many segments go by before the hand-back, [32 bytes of
# stop mask], then the stream.
def walk_input(server, mask_mode, limit, segments, forward, stream, stop_types=b""):
    out = bytes([(1 if server else 0) | (mask_mode << 1)]) + struct.pack("!H", limit)
    out += bytes([len(segments)]) + bytes(n - 1 for n in segments) + bytes([forward])
    if mask_mode >= 2:
        mask = bytearray(32)
        for t in stop_types:
            mask[t // 8] |= 1 << (t % 8)
        out += bytes(mask)
    return out + stream

ROW_DESCRIPTION = msg(b"T", b"\0\x01n\0" + u32(0) + b"\0\0" + u32(23) + b"\0\x04" + u32(0xFFFFFFFF) + b"\0\0")
write("kernel_walk", "server_session_chunks",
      walk_input(True, 1, 0, [3, 7, 1, 64, 5], 3,
                 ROW_DESCRIPTION + msg(b"D", b"\0\x01" + u32(1) + b"1") + msg(b"C", b"SELECT 1\0") + msg(b"Z", b"T")
                 + msg(b"C", b"COMMIT\0") + msg(b"Z", b"I") + msg(b"C", b"LISTEN\0") + msg(b"Z", b"I")))
write("kernel_walk", "client_extended_bytewise",
      walk_input(False, 1, 1000, [1], 17,
                 msg(b"P", b"\0SELECT $1\0\0\0") + msg(b"B", b"\0\0\0\0\0\x01" + i32(1) + b"7\0\0")
                 + msg(b"D", b"P\0") + msg(b"E", b"\0" + u32(0)) + msg(b"S") + msg(b"Q", b"SELECT 1;\0") + msg(b"X")))
write("kernel_walk", "server_tags_split",
      walk_input(True, 0, 0, [8, 3], 2,
                 msg(b"C", b"SELECT 1\0") + msg(b"C", b"LISTENER\0") + msg(b"C", b"DISCARD PLANS\0")
                 + msg(b"Z", b"I") + msg(b"C", b"DISCARD ALL\0") + msg(b"Z", b"I")))
write("kernel_walk", "server_error_in_mask",
      walk_input(True, 2, 0, [11], 1,
                 ROW_DESCRIPTION + msg(b"C", b"SELECT 0\0") + ERROR_42P01 + msg(b"Z", b"E") + msg(b"Z"), b"E"))
write("kernel_walk", "client_above_limit",
      walk_input(False, 0, 30, [], 0,
                 msg(b"Q", b"SELECT 1;\0") + msg(b"Q", b"SELECT 'longer than the limit';\0") + b"Q" + u32(3)))

# fuzz_frontend_messages: 1 byte for the length limit (0: 1 GiB; n: 4 + 8n), then a
# client-to-server stream. A 0x1f byte also cuts the stream into the encoders' strings.
CLIENT_FIRST = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"
write("frontend_messages", "scram_login",
      b"\0" + msg(b"p", b"SCRAM-SHA-256\0" + i32(len(CLIENT_FIRST)) + CLIENT_FIRST)
      + msg(b"p", b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                  b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
      + msg(b"Q", b"SELECT 1;\0") + msg(b"X"))
write("frontend_messages", "sasl_without_initial_data", b"\0" + msg(b"p", b"SCRAM-SHA-256\0" + i32(-1)))
write("frontend_messages", "md5_password_then_extended_query",
      b"\x40" + msg(b"p", b"md5" + b"0123456789abcdef" * 2 + b"\0")
      + msg(b"P", b"\0SELECT $1::text\0\0\0")
      + msg(b"B", b"\0\0\0\0\0\x02" + i32(5) + b"alice" + i32(-1) + b"\0\0")
      + msg(b"D", b"P\0") + msg(b"E", b"\0" + u32(0)) + msg(b"S"))
write("frontend_messages", "cleartext_password", b"\x01" + msg(b"p", b"s3cr\xc3\xa9t\0"))
# Above the limit of 4 + 8 * 2 = 20 bytes, then a length below 4.
write("frontend_messages", "length_above_limit", b"\x02" + msg(b"Q", b"SELECT 'far too long';\0"))
write("frontend_messages", "length_below_minimum", b"\0" + msg(b"Q", b";\0") + b"p" + u32(2))
# The encoders' strings: portal or mechanism, statement or data, then Bind's parameters.
write("frontend_messages", "encoder_parts",
      b"\0SCRAM-SHA-256\x1fSELECT usename, passwd FROM pg_shadow WHERE usename = $1\x1falice\x1f\\N\x1f")

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


# fuzz_scram: "<mechanism>\0<client-first>\0<client-final>" for the ScramServers, and the same
# three parts as "<ignored>\0<server-first>\0<server-final>" for the pass-through ScramClients
# (fuzz_scram.cpp). RFC 7677 section 3's nonces and salt, password "pencil"; the proofs for
# "n=" and for SCRAM-SHA-256-PLUS (binding data SHA-256(b"pgnap test certificate")) computed
# with hashlib, as in tests/auth/scram_exchange_test.cpp.
NONCE = b"rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SERVER_FIRST = b"r=" + NONCE + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
write("scram", "rfc7677_exchange",
      b"SCRAM-SHA-256\0n,,n=user,r=rOprNGfwEbeRWgbNEkqO\0c=biws,r=" + NONCE
      + b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
write("scram", "libpq_exchange",
      b"SCRAM-SHA-256\0n,,n=,r=rOprNGfwEbeRWgbNEkqO\0c=biws,r=" + NONCE
      + b",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")
write("scram", "plus_exchange",
      b"SCRAM-SHA-256-PLUS\0p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO\0"
      b"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws9bcRWoX7T9Aozkg8J/EGrbvNG0TPq5x6i2zu5NQDYmc=,r=" + NONCE
      + b",p=wCIWjM5HlmP24u3hfv6q7GXHVbw1QjpX+WbTZMyYs68=")
write("scram", "client_supports_binding_exchange",
      b"SCRAM-SHA-256\0y,,n=,r=rOprNGfwEbeRWgbNEkqO\0c=eSws,r=" + NONCE
      + b",p=VpuC5DGQa5ro9tXE9MnKs69NH1nxnuregZZcclqIGfM=")
write("scram", "extensions_and_authzid",
      b"SCRAM-SHA-256\0n,a=admin,n=,r=rOprNGfwEbeRWgbNEkqO,x=ext\0c=biws,r=" + NONCE
      + b",y=1,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")
write("scram", "mandatory_extension", b"SCRAM-SHA-256-PLUS\0m=ext,n=,r=abc\0c=biws,r=abc,p=AAAA")
write("scram", "pass_through_client",
      b"SCRAM-SHA-256\0" + SERVER_FIRST + b"\0v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=")
write("scram", "server_error", b"\0" + SERVER_FIRST + b"\0e=invalid-proof")
write("scram", "server_with_another_salt", b"\0r=" + NONCE + b",s=c2FsdA==,i=10000\0v=")
# A verifier PostgreSQL 15 stored for "pencil" (pg_authid.rolpassword).
write("scram", "postgresql_verifier",
      b"SCRAM-SHA-256$4096:xUv35rCwGy4LhMIbRKk04g==$LoGOamCuwWWqZS0Trr7h50dZrlFHM15U6bmVwf3QjUY=:"
      b"bc1G1seESOy3FB6R+Gg8V2joPkjY7bzWMxqdGHVhak8=")

# fuzz_auth_file: PgBouncer's auth_file as people write it, and broken lines.
VERIFIER = (b"SCRAM-SHA-256$4096:xUv35rCwGy4LhMIbRKk04g==$LoGOamCuwWWqZS0Trr7h50dZrlFHM15U6bmVwf3QjUY=:"
            b"bc1G1seESOy3FB6R+Gg8V2joPkjY7bzWMxqdGHVhak8=")
write("auth_file", "userlist.txt",
      b'; pgbouncer userlist\n"alice" "pencil"\n"bob" "md50098e7fab7b4d8d091067152a80b3f12"\n'
      b'"carol" "' + VERIFIER + b'"\n')
write("auth_file", "quotes_comments_third_field",
      b'  ; indented comment\n\n"we""ird" "p""w;d" "third field"\n"x" "y" trailing words\n"x" "last wins"\n')
write("auth_file", "crlf.txt", b'"alice" "pencil"\r\n\r\n"bob" "' + VERIFIER + b'"\r\n')
write("auth_file", "broken_lines",
      b'bob "b"\n"unterminated\n"erin"\n"" "x"\n"frank" ""\n"grace" "SCRAM-SHA-256$4096:broken"\n'
      b'# hash comment\n"heidi" "h"\n"nul\0byte" "x"\n"ivan" "multi\nline"')

# fuzz_sql_text: statement texts PostgreSQL records for a PREPARE, one statement or several.
write("sql_text", "prepare_one", "PREPARE p (int, text) AS SELECT $1, $2;")
write("sql_text", "multi_statement", "select 1; PREPARE p2 AS select 2; select 3")
write("sql_text", "quotes_and_comments",
      "PREPARE p AS SELECT 'a;b', E'\\';', \"x;y\", $$;$$, $t$ $$ ; $t$ /* ; /* ; */ */ -- ;\n + 1")
write("sql_text", "unterminated", "PREPARE p AS SELECT 'open; DELETE FROM t")

#!/usr/bin/env python3
"""Writes the seed corpora of the protocol fuzz targets (run from anywhere; output is
checked in). Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u32(v):
    return struct.pack("!I", v)


def startup(code, body=b""):
    return u32(8 + len(body)) + u32(code) + body


def msg(t, body=b""):
    return t + u32(4 + len(body)) + body


def write(sub, name, data):
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

/* The PostgreSQL stream walker of the kernel relay, shared by the BPF program (bpf/relay.bpf.c)
 * and user space (the relay's hand-back in daemon/kernel_relay.cpp, the unit tests and the
 * fuzzer). Plain C that the BPF verifier accepts: no variable indexing, bounded work per call.
 *
 * A stream is a sequence of messages, each a type byte and a 4-byte big-endian length that
 * counts itself (protocol/frame.h says the same in C++). The walker reads every header,
 * skips every body, and says when a message needs pgnap in user space ("stop"): a type the
 * relay must see (a BackendKeyData, an ErrorResponse, a Terminate held back for the pool...),
 * a CommandComplete for LISTEN or DISCARD ALL, or a length that breaks the framing or the size
 * limit. Everything else it only counts: the client's Query/FunctionCall/Sync against the
 * server's ReadyForQuery and its transaction status, which is what idle detection and parking
 * need (daemon/session_activity.h).
 *
 * Bytes are read through PGNAP_WALK_LOAD(src, offset, destination, length), which returns 0 on
 * success: bpf_skb_load_bytes() in the kernel, memcpy() in user space. */
#ifndef PGNAP_BPF_PG_WALK_H
#define PGNAP_BPF_PG_WALK_H

#include <linux/types.h>


enum pgnap_walk_side { PGNAP_SIDE_CLIENT = 0, PGNAP_SIDE_SERVER = 1 };

enum pgnap_walk_result {
  PGNAP_WALK_MORE = 0,      /* a step was taken; call again while bytes remain */
  PGNAP_WALK_STOP = 1,      /* a message pgnap must handle in user space starts here */
  PGNAP_WALK_BAD_LENGTH = 2 /* a length below 4 or above the limit: user space ends the session */
};

/* What a direction's walker is told (set by pgnap, read-only here). */
struct pgnap_walk_cfg {
  __u32 max_length;   /* the largest length word accepted (max_message_size for a client) */
  __u32 side;         /* enum pgnap_walk_side */
  __u64 stop_mask[4]; /* bit t: a message of type t goes to user space */
};

/* A direction's position in its stream, and what it counted. All zero: at a message boundary,
 * nothing counted. */
struct pgnap_walk {
  __u64 header;       /* the header bytes read so far, most significant first */
  __u32 length;       /* the current message's length word (header complete) */
  __u32 remaining;    /* body bytes of the current message not yet walked */
  __u8 header_have;   /* 0: at a boundary; 1-4: inside a header; 5: inside a body */
  __u8 type;          /* the current message's type (header complete) */
  __u8 tag_match;     /* CommandComplete: bytes of the candidate tag matched so far */
  __u8 tag;           /* 0: none, 1: "LISTEN", 2: "DISCARD ALL" */
  __u8 committed;     /* the current message has been counted; its rest is only skipped */
  __u8 unsynced;      /* client: extended-protocol messages sent since the last Sync */
  __u8 status;        /* server: the last ReadyForQuery's transaction status ('I', 'T', 'E'), 0 before */
  __u8 pad;
  __u32 sync_points;  /* client: Query, FunctionCall and Sync messages (each answered by one ReadyForQuery) */
  __u32 ready;        /* server: ReadyForQuery messages */
};

/* The functions need PGNAP_WALK_LOAD; the types alone do not (bpf/relay_maps.h). */
#ifdef PGNAP_WALK_LOAD

static __inline int pgnap_walk_stops(const struct pgnap_walk_cfg *cfg, __u8 type) {
  return (cfg->stop_mask[(type >> 6) & 3] >> (type & 63)) & 1;
}

/* The candidate tags of a CommandComplete that matter, NUL included: "LISTEN\0" (7 bytes) and
 * "DISCARD ALL\0" (12 bytes). */
static __inline __u8 pgnap_tag_byte(__u8 tag, __u8 i) {
  if (tag == 1) {
    switch (i) {
      case 0: return 'L'; case 1: return 'I'; case 2: return 'S'; case 3: return 'T';
      case 4: return 'E'; case 5: return 'N'; default: return 0;
    }
  }
  switch (i) {
    case 0: return 'D'; case 1: return 'I'; case 2: return 'S'; case 3: return 'C';
    case 4: return 'A'; case 5: return 'R'; case 6: return 'D'; case 7: return ' ';
    case 8: return 'A'; case 9: return 'L'; case 10: return 'L'; default: return 0;
  }
}
static __inline __u8 pgnap_tag_length(__u8 tag) { return tag == 1 ? 7 : 12; }

/* The message whose header (and, for a CommandComplete, tag) has just been read counts. */
static __inline void pgnap_walk_commit(struct pgnap_walk *w, const struct pgnap_walk_cfg *cfg) {
  w->committed = 1;
  if (cfg->side != PGNAP_SIDE_CLIENT) return; /* a server's messages count at 'Z' only */
  switch (w->type) {
    case 'Q': case 'F': w->sync_points++; break;
    case 'S':
      w->sync_points++;
      w->unsynced = 0;
      break;
    case 'P': case 'B': case 'E': case 'D': case 'C': case 'H': w->unsynced = 1; break;
    default: break;
  }
}

/* One step from `*offset` in a buffer of `length` bytes: a header (or what of it is there), a
 * ReadyForQuery's status, a CommandComplete's tag, or a body skipped. Advances `*offset` and
 * updates `w`; on STOP or BAD_LENGTH neither is meaningful (the caller keeps its copy of the
 * state from before the buffer). */
static __inline int pgnap_walk_step(struct pgnap_walk *w, const struct pgnap_walk_cfg *cfg, void *src, __u32 *offset,
                                    __u32 length) {
  __u32 off = *offset;
  if (off >= length) return PGNAP_WALK_MORE;
  __u32 avail = length - off;

  if (w->header_have < 5) {
    __u8 bytes[5];
    if (w->header_have == 0 && avail >= 5) {
      if (PGNAP_WALK_LOAD(src, off, bytes, 5)) return PGNAP_WALK_STOP;
      w->header = ((__u64)bytes[0] << 32) | ((__u64)bytes[1] << 24) | ((__u64)bytes[2] << 16) | ((__u64)bytes[3] << 8) |
                  bytes[4];
      w->header_have = 5;
      off += 5;
    } else {
      if (PGNAP_WALK_LOAD(src, off, bytes, 1)) return PGNAP_WALK_STOP;
      w->header = (w->header << 8) | bytes[0];
      w->header_have++;
      off += 1;
    }
    *offset = off;
    if (w->header_have < 5) return PGNAP_WALK_MORE;
    w->type = (__u8)(w->header >> 32);
    w->length = (__u32)w->header;
    if (w->length < 4 || w->length > cfg->max_length) return PGNAP_WALK_BAD_LENGTH;
    if (pgnap_walk_stops(cfg, w->type)) return PGNAP_WALK_STOP;
    w->remaining = w->length - 4;
    w->committed = 0;
    w->tag = 0;
    w->tag_match = 0;
    if (cfg->side == PGNAP_SIDE_SERVER) {
      if (w->type == 'Z') return PGNAP_WALK_MORE; /* its status byte comes next */
      if (w->type == 'C') {
        w->tag = 3; /* not decided: the first byte says which candidate */
        return PGNAP_WALK_MORE;
      }
    }
    pgnap_walk_commit(w, cfg);
    if (w->remaining == 0) w->header_have = 0;
    return PGNAP_WALK_MORE;
  }

  if (!w->committed && w->type == 'Z' && cfg->side == PGNAP_SIDE_SERVER) {
    __u8 status;
    if (w->remaining == 0) return PGNAP_WALK_STOP; /* no status byte: let the relay see it */
    if (PGNAP_WALK_LOAD(src, off, &status, 1)) return PGNAP_WALK_STOP;
    w->status = status;
    w->ready++;
    w->committed = 1;
    w->remaining--;
    *offset = off + 1;
    if (w->remaining == 0) w->header_have = 0;
    return PGNAP_WALK_MORE;
  }

  if (!w->committed && w->tag != 0) {
    /* A CommandComplete's tag, one byte per step, until it cannot be a candidate any more. */
    __u8 c;
    if (w->remaining == 0) {
      w->committed = 1;
      w->header_have = 0;
      return PGNAP_WALK_MORE;
    }
    if (PGNAP_WALK_LOAD(src, off, &c, 1)) return PGNAP_WALK_STOP;
    if (w->tag == 3) w->tag = c == 'L' ? 1 : c == 'D' ? 2 : 0;
    if (w->tag != 0 && c == pgnap_tag_byte(w->tag, w->tag_match)) {
      w->tag_match++;
      if (w->tag_match == pgnap_tag_length(w->tag)) return PGNAP_WALK_STOP;
    } else {
      w->tag = 0;
      w->committed = 1; /* an ordinary command: nothing to count */
    }
    w->remaining--;
    *offset = off + 1;
    if (w->remaining == 0) {
      w->committed = 1;
      w->header_have = 0;
    }
    return PGNAP_WALK_MORE;
  }

  /* The rest of a body. */
  __u32 skip = w->remaining < avail ? w->remaining : avail;
  w->remaining -= skip;
  *offset = off + skip;
  if (w->remaining == 0) w->header_have = 0;
  return PGNAP_WALK_MORE;
}

#endif /* PGNAP_WALK_LOAD */
#endif

/* The maps shared by the kernel relay's BPF program (relay.bpf.c) and pgnap
 * (daemon/kernel_relay.cpp): one layout, compiled by both. */
#ifndef PGNAP_BPF_RELAY_MAPS_H
#define PGNAP_BPF_RELAY_MAPS_H

#include <linux/bpf.h>
#include <linux/types.h>

#include "pg_walk.h"

#define PGNAP_MAX_SOCKETS 65536
/* Walker steps per segment (a header, a status byte, a tag byte or a body skip each): a 64 kB
 * segment of 20-byte rows needs about 7 000. Beyond, the segment goes to user space. */
#define PGNAP_MAX_STEPS 65536

enum pgnap_mode { PGNAP_MODE_USER = 0, PGNAP_MODE_KERNEL = 1 };

/* Why a socket's bytes went back to user space (state.stop), the first reason after arming. */
enum pgnap_stop {
  PGNAP_STOP_NONE = 0,
  PGNAP_STOP_MESSAGE = 1,    /* a message pgnap handles itself (pgnap_walk_cfg.stop_mask, a tag) */
  PGNAP_STOP_BAD_LENGTH = 2, /* the framing is broken or a message is above the limit */
  PGNAP_STOP_STEPS = 3,      /* more messages in one segment than PGNAP_MAX_STEPS */
  PGNAP_STOP_EOF = 4,        /* the peer closed */
  PGNAP_STOP_UNARMED = 5,    /* bytes arrived while pgnap had not read all it was passed */
};

struct pgnap_ctl {
  struct bpf_spin_lock lock;
  __u32 epoch;        /* a new value resets the walker: pgnap arms at a message boundary */
  __u32 peer;         /* the slot in `socks` of the socket this one's bytes go to */
  __u32 mode;         /* enum pgnap_mode */
  __u32 pad;
  __u64 armed_passed; /* state.passed when pgnap armed: all of it read by pgnap */
  struct pgnap_walk_cfg cfg;
};

struct pgnap_state {
  struct bpf_spin_lock lock;
  __u32 epoch;
  __u32 busy;            /* a verdict is between reading ctl and committing */
  __u32 stop;            /* enum pgnap_stop */
  __u64 passed;          /* bytes given to pgnap through the socket's own queue, ever */
  __u64 redirected;      /* bytes sent to the peer inside the kernel, ever */
  __u64 last_traffic_ns; /* CLOCK_MONOTONIC of the last redirected segment */
  struct pgnap_walk walk;
  /* The verdict's working copies (a socket's verdicts never run concurrently): the walker
   * advances `scratch` and it becomes `walk` only when the whole segment is redirected. Kept
   * in the map value rather than on the stack so that the verifier need not follow each
   * value through every step of the loop. */
  struct pgnap_walk scratch;
  struct pgnap_walk_cfg cfg;
  __u32 offset;
  __u32 length;
  __s32 result;
  __u32 pad;
};

struct pgnap_event {
  __u64 cookie; /* the socket whose bytes went back to pgnap */
};

#endif

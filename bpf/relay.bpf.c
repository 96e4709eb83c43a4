/* pgnap's kernel relay: the bytes of a plaintext session in its relay phase go from one TCP
 * socket to its peer inside the kernel (a sockmap and an SK_SKB verdict program), while a
 * walker (pg_walk.h) keeps what pgnap's user-space relay would know about the stream. The
 * user-space side, and how a session goes into the kernel and comes back, is
 * daemon/kernel_relay.cpp; docs/architecture.md ("The kernel relay") is the overview.
 *
 * Per socket, keyed by its cookie:
 *   ctl   written by pgnap: where its bytes go (the peer's slot in `socks`), whether they may
 *         go there now (mode, arm), the walker's configuration;
 *   state written here: how many bytes went where, the walker, the last traffic.
 * A segment is redirected only while ctl says so *and* every byte ever passed to the socket's
 * own queue has been read by pgnap (state.passed == ctl.armed_passed): user-space bytes and
 * kernel bytes never overtake each other. Anything the walker must not decide (a stop) passes
 * the whole segment to pgnap and tells it through the `events` ring. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PGNAP_WALK_LOAD(src, offset, destination, length) \
  bpf_skb_load_bytes((const struct __sk_buff *)(src), (offset), (destination), (length))
#include "pg_walk.h"
#include "relay_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_SOCKMAP);
  __uint(max_entries, PGNAP_MAX_SOCKETS);
  __type(key, __u32);
  __type(value, __u64);
} socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PGNAP_MAX_SOCKETS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct pgnap_ctl);
} ctl SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PGNAP_MAX_SOCKETS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct pgnap_state);
} state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct walk_ctx {
  struct __sk_buff *skb;
  struct pgnap_state *s;
};

static long walk_one(__u32 index, void *data) {
  struct walk_ctx *c = data;
  struct pgnap_state *s = c->s;
  (void)index;
  if (s->offset >= s->length) return 1;
  s->result = pgnap_walk_step(&s->scratch, &s->cfg, c->skb, &s->offset, s->length);
  return s->result != PGNAP_WALK_MORE;
}

SEC("sk_skb")
int pgnap_verdict(struct __sk_buff *skb) {
  __u64 cookie = bpf_get_socket_cookie(skb);
  struct pgnap_ctl *control = bpf_map_lookup_elem(&ctl, &cookie);
  struct pgnap_state *s = bpf_map_lookup_elem(&state, &cookie);
  if (!control || !s) return SK_PASS;
  __u32 length = skb->len;

  __u32 epoch, peer, mode, armed_passed;

  /* Busy first, then the control block: pgnap, after changing ctl, waits until it reads
   * busy == 0, and any verdict that starts later reads the new ctl (docs/architecture.md). */
  bpf_spin_lock(&s->lock);
  s->busy = 1;
  bpf_spin_unlock(&s->lock);

  bpf_spin_lock(&control->lock);
  epoch = control->epoch;
  peer = control->peer;
  mode = control->mode;
  armed_passed = control->armed_passed;
  s->cfg = control->cfg;
  bpf_spin_unlock(&control->lock);

  bpf_spin_lock(&s->lock);
  if (s->epoch != epoch) {
    __builtin_memset(&s->walk, 0, sizeof(s->walk));
    s->epoch = epoch;
    s->stop = 0;
  }
  int redirect = mode == PGNAP_MODE_KERNEL && s->passed == armed_passed && length > 0;
  s->scratch = s->walk;
  bpf_spin_unlock(&s->lock);

  int stop = 0;
  if (redirect) {
    struct walk_ctx c = {.skb = skb, .s = s};
    s->offset = 0;
    s->length = length;
    s->result = PGNAP_WALK_MORE;
    bpf_loop(PGNAP_MAX_STEPS, walk_one, &c, 0);
    if (s->result != PGNAP_WALK_MORE) stop = s->result == PGNAP_WALK_STOP ? PGNAP_STOP_MESSAGE : PGNAP_STOP_BAD_LENGTH;
    else if (s->offset < length) stop = PGNAP_STOP_STEPS;
    if (stop) redirect = 0;
  }

  int notify = 0;
  __u64 now = bpf_ktime_get_ns();
  bpf_spin_lock(&s->lock);
  if (redirect) {
    s->walk = s->scratch;
    s->redirected += length;
    s->last_traffic_ns = now;
  } else {
    notify = mode == PGNAP_MODE_KERNEL && s->passed == armed_passed;
    s->passed += length;
    if (notify && s->stop == 0) s->stop = length == 0 ? PGNAP_STOP_EOF : stop ? stop : PGNAP_STOP_UNARMED;
  }
  s->busy = 0;
  bpf_spin_unlock(&s->lock);

  if (notify) {
    struct pgnap_event event = {.cookie = cookie};
    bpf_ringbuf_output(&events, &event, sizeof(event), 0);
  }
  if (redirect) return bpf_sk_redirect_map(skb, &socks, peer, 0);
  return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";

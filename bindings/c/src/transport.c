/*
 * The node's sockets and what arrives on them: opening the SUB socket (daemon events
 * and every input's sender), the XPUB data socket and the PULL drop-token socket;
 * draining the SUB socket into the queues; decoding data messages (inline payloads or
 * views of shared memory) into Input events, with sequence gaps reported to the sender
 * as lost; and the same decoding and encoding without a dataflow, for the vector checks.
 */
#include "node.h"

#define OUTPUT_LINGER_MS 1000       /* flush end-of-stream to live receivers, never hang on dead ones */

/* ---- sockets ------------------------------------------------------------------------ */

static int socket_opt(void *s, int opt, int value) { return zmq_setsockopt(s, opt, &value, sizeof value); }

int dora__open_sockets(DoraContext *ctx) {
  const dora_json *c = ctx->config;
  ctx->zctx = zmq_ctx_new();
  if (!ctx->zctx) return dora__fail(DORA_E_ZMQ, "zmq_ctx_new failed: %s", zmq_strerror(errno));
  ctx->sub = zmq_socket(ctx->zctx, ZMQ_SUB);
  ctx->req = zmq_socket(ctx->zctx, ZMQ_DEALER);
  if (!ctx->sub || !ctx->req) return dora__fail(DORA_E_ZMQ, "zmq_socket failed: %s", zmq_strerror(errno));
  /* Connected first: closing a context that failed to open sends on it, and a DEALER
     without a connection blocks its sender for ever (with one, ZeroMQ queues, and the
     linger bounds how long closing waits for a daemon that is not there). */
  socket_opt(ctx->req, ZMQ_LINGER, OUTPUT_LINGER_MS);
  const char *requests = dora__jstr(c, DORA_CFG_DAEMON_REQUESTS);
  if (zmq_connect(ctx->req, requests)) return dora__fail(DORA_E_ZMQ, "cannot connect to %s: %s", requests, zmq_strerror(errno));
  /* receivers own the queueing policy (drop the oldest): ZeroMQ must never drop, or an end of stream could be lost */
  socket_opt(ctx->sub, ZMQ_RCVHWM, 0);
  socket_opt(ctx->sub, ZMQ_LINGER, 0);
  const char *events = dora__jstr(c, DORA_CFG_DAEMON_EVENTS);
  if (zmq_connect(ctx->sub, events)) return dora__fail(DORA_E_ZMQ, "cannot connect to %s: %s", events, zmq_strerror(errno));
  zmq_setsockopt(ctx->sub, ZMQ_SUBSCRIBE, ctx->event_topic, ctx->event_topic_len);
  /* A late node (restarted, or dynamic) joins a running dataflow whose senders may not
   * count it among their samples' holders yet: it connects to them when the daemon starts
   * it, once every sender has said it does. Its timers start then too: one subscription per
   * join, so a node that leaves and joins again never gets a tick twice. */
  if (dora__remote_open(ctx)) return -1; /* keys, and the socket for other machines' receivers (remote.c) */
  if (!ctx->late && dora__connect_inputs(ctx)) return -1;

  const char *data = dora__jstr(c, DORA_CFG_DATA_ENDPOINT), *drops = dora__jstr(c, DORA_CFG_DROP_ENDPOINT);
  if (data && ctx->n_outputs > 0) {
    ctx->pub = zmq_socket(ctx->zctx, ZMQ_XPUB);
    if (!ctx->pub) return dora__fail(DORA_E_ZMQ, "zmq_socket failed: %s", zmq_strerror(errno));
    socket_opt(ctx->pub, ZMQ_SNDHWM, 0);
    socket_opt(ctx->pub, ZMQ_XPUB_VERBOSE, 1); /* every subscriber's subscription counts for the start barrier */
    socket_opt(ctx->pub, ZMQ_LINGER, OUTPUT_LINGER_MS);
    if (zmq_bind(ctx->pub, data)) return dora__fail(DORA_E_ZMQ, "cannot bind %s: %s", data, zmq_strerror(errno));
  }

  if (drops && ctx->n_outputs > 0) {
    ctx->pull = zmq_socket(ctx->zctx, ZMQ_PULL);
    if (!ctx->pull) return dora__fail(DORA_E_ZMQ, "zmq_socket failed: %s", zmq_strerror(errno));
    socket_opt(ctx->pull, ZMQ_LINGER, 0);
    if (zmq_bind(ctx->pull, drops)) return dora__fail(DORA_E_ZMQ, "cannot bind %s: %s", drops, zmq_strerror(errno));
  }
  /* what dora_wait polls: each socket's signalling descriptor (readable when its state may have changed) */
  size_t fd_size = sizeof ctx->sub_fd;
  if (zmq_getsockopt(ctx->sub, ZMQ_FD, &ctx->sub_fd, &fd_size)) return dora__fail(DORA_E_ZMQ, "zmq_getsockopt(ZMQ_FD) failed: %s", zmq_strerror(errno));
  fd_size = sizeof ctx->pull_fd;
  if (ctx->pull && zmq_getsockopt(ctx->pull, ZMQ_FD, &ctx->pull_fd, &fd_size)) return dora__fail(DORA_E_ZMQ, "zmq_getsockopt(ZMQ_FD) failed: %s", zmq_strerror(errno));
  return 0;
}

/* Subscribes to every input's topic and connects the SUB socket to their senders (timers come with the daemon's events), on this machine or others. */
int dora__connect_inputs(DoraContext *ctx) {
  if (ctx->inputs_connected) return 0;
  ctx->inputs_connected = true;
  for (size_t i = 0; i < ctx->n_topics; i++) zmq_setsockopt(ctx->sub, ZMQ_SUBSCRIBE, ctx->topics[i].topic, ctx->topics[i].topic_len);
  const char *events = dora__jstr(ctx->config, DORA_CFG_DAEMON_EVENTS);
  const dora_json *inputs = dora__json_get(ctx->config, DORA_CFG_INPUTS);
  /* senders on this machine first, then those on others (CURVE: remote.c, dora__remote_connect) */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < inputs->count; i++) {
      const char *endpoint = dora__jstr(&inputs->items[i], DORA_CFG_INPUT_ENDPOINT);
      bool seen = strcmp(endpoint, events) == 0;
      for (size_t k = 0; k < i && !seen; k++) seen = strcmp(dora__jstr(&inputs->items[k], DORA_CFG_INPUT_ENDPOINT), endpoint) == 0;
      if (seen) continue;
      bool remote = false;
      if (pass == 1 && dora__remote_connect(ctx, endpoint, &remote)) return -1;
      if (pass == 0 && ctx->remote && dora__jstr(dora__json_get(ctx->remote, "servers"), endpoint)) continue;
      if (pass == 0 && zmq_connect(ctx->sub, endpoint)) return dora__fail(DORA_E_ZMQ, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
    }
  }
  return 0;
}

/* ---- receiving ---------------------------------------------------------------------- */

/* Builds the payload of a data message: frames[1] inline, or a view of a shared-memory segment. */
static int make_payload(DoraContext *ctx, dora_segment_cache *cache, pthread_mutex_t *lock, const dora_header *h, zmq_msg_t *frames,
                        size_t n_frames, int sender, payload **out) {
  *out = NULL;
  payload *p = calloc(1, sizeof *p);
  if (!p) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  p->refs = 1;
  p->sender = sender;
  p->cache = cache;
  if (h->location == DORA_LOC_INLINE) {
    size_t have = n_frames > 1 ? zmq_msg_size(&frames[1]) : 0;
    if (have != h->inline_length) {
      free(p);
      return dora__fail(DORA_E_MALFORMED_MESSAGE, "payload frame holds %zu bytes, the header announced %llu", have, (unsigned long long)h->inline_length);
    }
    if (n_frames > 2) {
      free(p);
      return dora__fail(DORA_E_MALFORMED_MESSAGE, "data message has %zu frames, expected at most 3", n_frames + 1);
    }
    if (have > 0) {
      zmq_msg_init(&p->msg);
      zmq_msg_move(&p->msg, &frames[1]);
      p->has_msg = true;
      p->data = zmq_msg_data(&p->msg);
      p->len = have;
      if ((uintptr_t)p->data % 8 != 0) { /* typed views need aligned buffers */
        if (posix_memalign((void **)&p->copy, 64, have) != 0) {
          zmq_msg_close(&p->msg);
          free(p);
          return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
        }
        memcpy(p->copy, p->data, have);
        p->data = p->copy;
      }
    }
  } else {
    if (n_frames > 1) {
      free(p);
      return dora__fail(DORA_E_MALFORMED_MESSAGE, "shared-memory message has %zu frames, expected 2", n_frames + 1);
    }
    if (h->shm_offset % 64 != 0) {
      free(p);
      return dora__fail(DORA_E_MALFORMED_MESSAGE, "shared-memory payload offset %llu is not a multiple of 64", (unsigned long long)h->shm_offset);
    }
    pthread_mutex_lock(lock);
    int rc = dora__cache_view(cache, h->segment, h->shm_offset, h->shm_length, &p->mapping);
    pthread_mutex_unlock(lock);
    if (rc) {
      free(p);
      return -1;
    }
    p->data = p->mapping->ptr + h->shm_offset;
    p->len = h->shm_length;
    p->sample = h->sample;
  }
  if (!p->data) p->data = dora__empty_payload;
  if (ctx) {
    p->ctx = ctx;
    __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL);
  }
  *out = p;
  return 0;
}

/* Decodes frames (after the topic) into an Input event; *eos for an end of stream. */
static int decode(DoraContext *ctx, dora_segment_cache *cache, pthread_mutex_t *lock, zmq_msg_t *frames, size_t n_frames, int sender,
                  DoraEvent **out, bool *eos, uint64_t *seq) {
  *out = NULL;
  *eos = false;
  if (n_frames == 0) return dora__fail(DORA_E_MALFORMED_MESSAGE, "message without header");
  dora_header h;
  if (dora__header_read(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), &h)) return -1;
  if (h.kind == DORA_KIND_END_OF_STREAM) {
    if (n_frames > 1) return dora__fail(DORA_E_MALFORMED_MESSAGE, "end-of-stream message has %zu frames, expected 2", n_frames + 1);
    *eos = true;
    return 0;
  }
  payload *p;
  if (make_payload(ctx, cache, lock, &h, frames, n_frames, sender, &p)) {
    dora__header_free(&h);
    return -1;
  }
  if (dora__layout_validate(h.layout, p->data, p->len)) {
    dora__header_free(&h);
    dora__payload_unref(p);
    return -1;
  }
  DoraEvent *ev = dora__event_new(DoraEventType_Input, NULL, NULL);
  if (!ev) {
    dora__header_free(&h);
    dora__payload_unref(p);
    return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  }
  ev->timestamp = h.timestamp;
  ev->seq = h.seq;
  ev->metadata = h.metadata;
  ev->layout = h.layout;
  ev->payload = p;
  *seq = h.seq;
  free(h.segment);
  *out = ev;
  return 0;
}

int dora__decode_frames(const uint8_t *const *frames, const size_t *lens, size_t n, DoraEvent **out_event, bool *out_eos) {
  zmq_msg_t msgs[8];
  if (n > 8) return dora__fail(DORA_E_INVALID_ARGUMENT, "too many frames");
  for (size_t i = 0; i < n; i++) {
    zmq_msg_init_size(&msgs[i], lens[i]);
    if (lens[i]) memcpy(zmq_msg_data(&msgs[i]), frames[i], lens[i]);
  }
  uint64_t seq;
  int rc = decode(NULL, &dora__standalone_cache, &dora__standalone_lock, msgs, n, -1, out_event, out_eos, &seq);
  for (size_t i = 0; i < n; i++) zmq_msg_close(&msgs[i]);
  return rc;
}

uint64_t dora__event_seq(const DoraEvent *ev) { return ev ? ev->seq : 0; }

int dora__encode_inline(const struct ArrowArray *array, const struct ArrowSchema *schema, const DoraMetadata *metadata, uint64_t timestamp,
                        uint64_t seq, uint8_t **header, size_t *header_len, uint8_t **out_payload, size_t *payload_len) {
  dora_plan plan;
  if (dora__plan_arrow(array, schema, &plan)) return -1;
  dora_header h = {0};
  h.kind = DORA_KIND_DATA;
  h.location = DORA_LOC_INLINE;
  h.timestamp = timestamp;
  h.seq = seq;
  h.metadata = (DoraMetadata *)metadata;
  h.inline_length = plan.size;
  h.layout = plan.layout;
  dora_buf b = {0};
  int rc = dora__header_write(&b, &h);
  uint8_t *data = rc == 0 ? malloc(plan.size + 1) : NULL;
  if (rc == 0 && !data) rc = dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  if (rc == 0) {
    dora__plan_write(&plan, data);
    *header = b.data;
    *header_len = b.len;
    *out_payload = data;
    *payload_len = plan.size;
  } else {
    dora__buf_free(&b);
  }
  dora__plan_free(&plan);
  return rc;
}

int dora__find_topic(const DoraContext *ctx, const void *data, size_t len) {
  for (size_t i = 0; i < ctx->n_topics; i++)
    if (ctx->topics[i].topic_len == len && memcmp(ctx->topics[i].topic, data, len) == 0) return (int)i;
  return -1;
}

/* The clocks a drain reads once, at its first data message, for every message it moves
   (messages drained together arrived together, to within the drain's own duration). */
typedef struct {
  bool read;
  int64_t now_ms;   /* monotonic, for input timeouts (only when some input has one) */
  uint64_t arrived; /* wall clock, for latency (stats.h) */
} drain_clock;

static void on_data(DoraContext *ctx, int ti, zmq_msg_t *frames, size_t n, drain_clock *clock) {
  topic_t *t = &ctx->topics[ti];
  DoraEvent *ev;
  bool eos;
  uint64_t seq = 0;
  if (decode(ctx, &ctx->cache, &ctx->lock, frames, n, t->sender, &ev, &eos, &seq)) {
    /* never reaches the node's code; the sequence gap it leaves is reported at the next message */
    dora__log_to_daemon(ctx, "warn", "dropped a malformed message from %s: %s", t->source, dora_last_error());
    return;
  }
  if (eos) {
    for (size_t i = 0; i < ctx->n_inputs; i++) {
      if (ctx->inputs[i].topic != ti) continue;
      if (ctx->inputs[i].restartable) ctx->inputs[i].eos_pending = true; /* the daemon says whether it comes back */
      else dora__close_input(ctx, i);
    }
    return;
  }
  dora__clock_observe(&ctx->clock, ev->timestamp);
  if (t->seen && seq > t->next_seq) dora__add_lost(ctx, t, t->next_seq, seq - 1);
  /* late: the sender counted us as a holder of what it sent before we connected */
  else if (!t->seen && ctx->late && seq > 0) dora__add_lost(ctx, t, 0, seq - 1);
  if (!t->seen || seq >= t->next_seq) t->next_seq = seq + 1;
  t->seen = true;
  /* one event per input subscribed to this topic, sharing the payload */
  DoraEvent *first = ev;
  if (!clock->read) {
    clock->read = true;
    clock->now_ms = ctx->any_timeout ? dora__now_ms() : 0;
    clock->arrived = dora__wall_ns(); /* stats.h: latency from the message's timestamp */
  }
  int64_t now = clock->now_ms;
  uint64_t arrived = clock->arrived;
  for (size_t i = 0; i < ctx->n_inputs; i++) {
    if (ctx->inputs[i].topic != ti || !ctx->inputs[i].open) continue;
    input_t *in = &ctx->inputs[i];
    in->last_ms = now;
    dora__count_received(&in->stats, ev->payload->len, ev->timestamp, arrived);
    if (in->timed_out) {
      in->timed_out = false;
      DoraEvent *recovered = dora__event_new(DoraEventType_InputRecovered, in->id, NULL);
      if (recovered) recovered->input = (int)i;
      dora__push_event(ctx, recovered);
    }
    DoraEvent *e = first;
    if (!e) {
      e = dora__event_new(DoraEventType_Input, NULL, NULL);
      if (!e) continue;
      e->timestamp = ev->timestamp;
      e->metadata = NULL;
      e->layout = NULL;
    }
    first = NULL;
    free(e->id);
    e->id_len = strlen(ctx->inputs[i].id);
    e->id = malloc(e->id_len + 1);
    if (e->id) memcpy(e->id, ctx->inputs[i].id, e->id_len + 1);
    e->input = (int)i;
    if (e != ev) {
      /* a second input on the same topic: share the payload, copy the small parts */
      dora_buf b = {0};
      dora__layout_write(&b, ev->layout);
      dora_reader r = {b.data, b.len, 0};
      dora__layout_read(&r, &e->layout, 0);
      dora__buf_free(&b);
      dora__metadata_write(&b, ev->metadata);
      dora_reader rm = {b.data, b.len, 0};
      dora__metadata_read(&rm, &e->metadata);
      dora__buf_free(&b);
      __atomic_add_fetch(&ev->payload->refs, 1, __ATOMIC_ACQ_REL);
      e->payload = ev->payload;
    }
    dora__push_input(ctx, e);
  }
  if (first) free_dora_event(first); /* no open input wants it */
}

/* Moves every message waiting on the SUB socket into the queues. */
void dora__drain(DoraContext *ctx) {
  drain_clock clock = {0};
  for (;;) {
    zmq_msg_t frames[5];
    size_t n = 0;
    int more = 1;
    zmq_msg_init(&frames[0]);
    if (zmq_msg_recv(&frames[0], ctx->sub, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&frames[0]);
      return;
    }
    n = 1;
    more = zmq_msg_more(&frames[0]);
    size_t extra = 0;
    while (more) {
      zmq_msg_t *m = n < 5 ? &frames[n] : NULL;
      zmq_msg_t sink;
      if (!m) m = &sink;
      zmq_msg_init(m);
      if (zmq_msg_recv(m, ctx->sub, 0) < 0) {
        zmq_msg_close(m);
        break;
      }
      more = zmq_msg_more(m);
      if (m == &sink) {
        zmq_msg_close(m);
        extra++;
      } else {
        n++;
      }
    }
    const void *topic = zmq_msg_data(&frames[0]);
    size_t topic_len = zmq_msg_size(&frames[0]);
    if (topic_len == ctx->event_topic_len && memcmp(topic, ctx->event_topic, topic_len) == 0) {
      if (n >= 2) dora__on_control(ctx, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]));
    } else {
      int ti = dora__find_topic(ctx, topic, topic_len);
      if (ti >= 0 && extra > 0) dora__log_to_daemon(ctx, "warn", "dropped a malformed message from %s: %zu frames", ctx->topics[ti].source, n + extra);
      else if (ti >= 0) on_data(ctx, ti, frames + 1, n - 1, &clock);
    }
    for (size_t i = 0; i < n; i++) zmq_msg_close(&frames[i]);
  }
}

void dora__pump(DoraContext *ctx) {
  dora__active(ctx);
  dora__drain(ctx);
  if (ctx->any_timeout) dora__check_timeouts(ctx, dora__now_ms());
  dora__read_tokens(ctx);
  dora__flush_tokens(ctx);
  dora__report_shrunk(ctx);
}

void dora__report_shrunk(DoraContext *ctx) {
  uint64_t faults = dora__guard_faults();
  if (faults == ctx->guard_faults) return; /* the usual case: one atomic load */
  ctx->guard_faults = faults;
  dora_buf names = {0};
  pthread_mutex_lock(&ctx->lock);
  dora__cache_shrunk(&ctx->cache, &names);
  pthread_mutex_unlock(&ctx->lock);
  for (size_t at = 0; at < names.len; at += strlen((const char *)names.data + at) + 1)
    dora__log_to_daemon(ctx, "warn",
                        "shared-memory segment %s shrank while this node read it (truncated by its sender or another process of this user): "
                        "the bytes past its new end read as zeros, and messages that no longer fit in it are dropped",
                        (const char *)names.data + at);
  dora__buf_free(&names);
}

/* Waits up to ms for the SUB (or drop-token) socket; then checks the daemon. */
void dora__wait_readable(DoraContext *ctx, long ms) {
  zmq_pollitem_t items[2] = {{ctx->sub, 0, ZMQ_POLLIN, 0}, {ctx->pull, 0, ZMQ_POLLIN, 0}};
  zmq_poll(items, ctx->pull ? 2 : 1, ms);
  dora__check_daemon(ctx);
}

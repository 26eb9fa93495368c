/*
 * The node runtime: joining the dataflow (configuration, registration, start
 * barrier), receiving into bounded per-input queues, sending inline or through
 * pooled shared memory, and returning samples with drop tokens. It follows
 * docs/protocol.md; node-api/node.ts is the TypeScript twin.
 *
 * Threads: the context is driven by one thread at a time (the caller's). Events and
 * exported arrays may be released from any thread, so what their release touches
 * (the mapping cache and pending drop tokens) is guarded by ctx->lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "internal.h"

#define NODE_CONFIG_ENV "DORA_NODE_CONFIG"
#define POLL_MS 100                 /* how often a waiting node checks that its daemon lives */
#define REGISTER_TIMEOUT_MS 30000
#define MIN_SEGMENT (64 * 1024)
#define OUTPUT_LINGER_MS 1000       /* flush end-of-stream to live receivers, never hang on dead ones */
#define RELEASE_WAIT_MS 2000        /* how long a closing node waits for its samples to come back */

/* ---- types ------------------------------------------------------------------------ */

typedef struct payload {
  long refs;
  DoraContext *ctx; /* NULL when decoded without a dataflow (vector checks) */
  const uint8_t *data;
  size_t len;
  zmq_msg_t msg;
  bool has_msg;
  uint8_t *copy;          /* an aligned copy of a misaligned inline payload */
  dora_mapping *mapping;  /* shared memory */
  dora_segment_cache *cache;
  uint64_t sample;
  int sender;             /* index in ctx->senders, -1 for none */
} payload;

struct DoraEvent {
  enum DoraEventType type;
  char *id;
  size_t id_len;
  char *message;
  uint64_t timestamp, seq;
  DoraMetadata *metadata;
  dora_layout *layout;
  payload *payload;
  int input;
  struct DoraEvent *next;
};

typedef struct {
  const char *id;
  size_t queue_size, queued;
  int topic;
  bool open;
} input_t;

typedef struct {
  const char *topic;
  size_t topic_len;
  const char *source; /* node/output, for messages */
  const char *output; /* the sender's output name (after the '/') */
  int sender;         /* -1 for timers */
  bool seen;
  uint64_t next_seq;
} topic_t;

typedef struct {
  const char *endpoint;
  void *push;
  uint64_t *samples;
  size_t n, cap;
} sender_t;

typedef struct {
  const char *name;
  const char *topic;
  size_t topic_len;
  uint64_t seq;
  const dora_json *subscribers; /* array of node ids */
  size_t subscriptions_seen;
} output_t;

enum { SAMPLE_FREE, SAMPLE_ACQUIRED, SAMPLE_OUT };

typedef struct {
  dora_segment seg;
  uint64_t id;
  int state;
  int output;
  uint64_t seq;
  const char **holders;
  size_t n_holders;
} sample_t;

struct DoraOutputSample {
  uint8_t *data;
  size_t len;
  int sample; /* index in ctx->samples, -1 for an inline buffer */
};

struct DoraContext {
  long refs;
  pthread_mutex_t lock;
  bool closed;
  dora_json *config;
  const char *node_id, *dataflow_id, *segment_prefix, *event_topic_src;
  char *event_topic;
  size_t event_topic_len;
  long daemon_pid;
  uint64_t threshold;
  void *zctx, *sub, *req, *pub, *pull;
  input_t *inputs;
  size_t n_inputs, open_inputs;
  topic_t *topics;
  size_t n_topics;
  output_t *outputs;
  size_t n_outputs;
  sender_t *senders;
  size_t n_senders;
  sample_t *samples;
  size_t n_samples;
  uint64_t next_sample_id;
  const char **exited;
  size_t n_exited;
  dora_segment_cache cache;
  DoraEvent *head, *tail;
  bool started, stop_requested, ended, daemon_gone;
  dora_clock clock;
};

static void ctx_unref(DoraContext *ctx);
static void log_to_daemon(DoraContext *ctx, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- small helpers ------------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(const dora_json *object, const char *key) {
  const dora_json *v = dora__json_get(object, key);
  return v && v->type == DJ_STRING ? v->string : NULL;
}

static void *grow(void *items, size_t n, size_t size) { return realloc(items, (n + 1) * size); }

static bool is_exited(const DoraContext *ctx, const char *node) {
  for (size_t i = 0; i < ctx->n_exited; i++)
    if (strcmp(ctx->exited[i], node) == 0) return true;
  return false;
}

static int zsend(void *socket, const void *data, size_t len, int flags) {
  for (;;) {
    if (zmq_send(socket, data, len, flags) >= 0) return 0;
    if (errno != EINTR) return dora__fail("zmq_send failed: %s", zmq_strerror(errno));
  }
}

static void check_daemon(DoraContext *ctx);

/* ---- payloads and events -------------------------------------------------------------- */

static pthread_mutex_t standalone_lock = PTHREAD_MUTEX_INITIALIZER;
/* What an empty payload points at: never NULL, so buffer arithmetic stays defined. */
static const uint8_t empty_payload[64] __attribute__((aligned(64)));
static dora_segment_cache standalone_cache;

static void payload_unref(payload *p) {
  if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (p->mapping) {
    DoraContext *ctx = p->ctx;
    pthread_mutex_t *lock = ctx ? &ctx->lock : &standalone_lock;
    pthread_mutex_lock(lock);
    dora__cache_unref(p->cache, p->mapping);
    if (ctx && !ctx->closed && p->sender >= 0) {
      sender_t *s = &ctx->senders[p->sender];
      if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *grown = realloc(s->samples, cap * sizeof *grown);
        if (grown) {
          s->samples = grown;
          s->cap = cap;
        }
      }
      if (s->n < s->cap) s->samples[s->n++] = p->sample; /* else the sender learns when this node exits */
    }
    pthread_mutex_unlock(lock);
  }
  if (p->has_msg) zmq_msg_close(&p->msg);
  free(p->copy);
  DoraContext *ctx = p->ctx;
  free(p);
  if (ctx) ctx_unref(ctx);
}

static void payload_release_cb(void *p) { payload_unref(p); }

static DoraEvent *event_new(enum DoraEventType type, const char *id, const char *message) {
  DoraEvent *ev = calloc(1, sizeof *ev);
  if (!ev) return NULL;
  ev->type = type;
  ev->input = -1;
  if (id) {
    ev->id_len = strlen(id);
    ev->id = malloc(ev->id_len + 1);
    if (!ev->id) goto oom;
    memcpy(ev->id, id, ev->id_len + 1);
  }
  if (message) {
    ev->message = malloc(strlen(message) + 1);
    if (!ev->message) goto oom;
    strcpy(ev->message, message);
  }
  return ev;
oom:
  free(ev->id);
  free(ev);
  return NULL;
}

void free_dora_event(void *dora_event) {
  DoraEvent *ev = dora_event;
  if (!ev) return;
  payload_unref(ev->payload);
  dora_metadata_free(ev->metadata);
  dora__layout_free(ev->layout);
  free(ev->id);
  free(ev->message);
  free(ev);
}

static void push_event(DoraContext *ctx, DoraEvent *ev) {
  if (!ev) return;
  ev->next = NULL;
  if (ctx->tail) ctx->tail->next = ev;
  else ctx->head = ev;
  ctx->tail = ev;
}

/* Queues an input event; when its input's queue is full the oldest of that input goes. */
static void push_input(DoraContext *ctx, DoraEvent *ev) {
  input_t *in = &ctx->inputs[ev->input];
  push_event(ctx, ev);
  if (++in->queued <= in->queue_size) return;
  DoraEvent **pe = &ctx->head;
  while (*pe && !((*pe)->type == DoraEventType_Input && (*pe)->input == ev->input)) pe = &(*pe)->next;
  DoraEvent *oldest = *pe;
  *pe = oldest->next;
  if (ctx->tail == oldest) {
    ctx->tail = NULL;
    for (DoraEvent *e = ctx->head; e; e = e->next) ctx->tail = e;
  }
  in->queued--;
  free_dora_event(oldest); /* returns a shared-memory sample to its sender */
}

static void close_input(DoraContext *ctx, size_t i) {
  input_t *in = &ctx->inputs[i];
  if (!in->open) return;
  in->open = false;
  ctx->open_inputs--;
  push_event(ctx, event_new(DoraEventType_InputClosed, in->id, NULL));
}

/* ---- drop tokens -------------------------------------------------------------------- */

static void sample_release(DoraContext *ctx, sample_t *s, const char *holder) {
  if (s->state != SAMPLE_OUT) return;
  for (size_t i = 0; i < s->n_holders; i++) {
    if (strcmp(s->holders[i], holder) == 0) {
      s->holders[i] = s->holders[--s->n_holders];
      break;
    }
  }
  if (s->n_holders == 0) s->state = SAMPLE_FREE;
  (void)ctx;
}

static void release_all(DoraContext *ctx, const char *holder) {
  for (size_t i = 0; i < ctx->n_samples; i++) sample_release(ctx, &ctx->samples[i], holder);
}

/* Applies the drop tokens receivers sent us. */
static void read_tokens(DoraContext *ctx) {
  if (!ctx->pull) return;
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, ctx->pull, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return;
    }
    dora_tokens t;
    if (dora__tokens_read(zmq_msg_data(&msg), zmq_msg_size(&msg), &t)) {
      log_to_daemon(ctx, "warn", "ignored malformed drop tokens: %s", dora_last_error());
    } else {
      for (size_t i = 0; i < t.n_samples; i++)
        for (size_t k = 0; k < ctx->n_samples; k++)
          if (ctx->samples[k].id == t.samples[i]) sample_release(ctx, &ctx->samples[k], t.receiver);
      for (size_t i = 0; i < t.n_lost; i++)
        for (size_t k = 0; k < ctx->n_samples; k++) {
          sample_t *s = &ctx->samples[k];
          if (s->state == SAMPLE_OUT && strcmp(ctx->outputs[s->output].name, t.lost[i].output) == 0 && s->seq >= t.lost[i].first &&
              s->seq <= t.lost[i].last)
            sample_release(ctx, s, t.receiver);
        }
      dora__tokens_free(&t);
    }
    zmq_msg_close(&msg);
  }
}

/* The PUSH socket to a sender's drop-token endpoint, connected on first use. */
static void *sender_socket(DoraContext *ctx, sender_t *s) {
  if (!s->push) {
    s->push = zmq_socket(ctx->zctx, ZMQ_PUSH);
    if (!s->push) return NULL;
    int zero = 0;
    zmq_setsockopt(s->push, ZMQ_LINGER, &zero, sizeof zero); /* a sender that is gone released everything anyway */
    zmq_setsockopt(s->push, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_connect(s->push, s->endpoint);
  }
  return s->push;
}

static void add_lost(DoraContext *ctx, topic_t *t, uint64_t first, uint64_t last) {
  if (t->sender < 0) return;
  sender_t *s = &ctx->senders[t->sender];
  dora_buf b = {0};
  dora_lost lost = {(char *)t->output, first, last};
  dora__tokens_write(&b, ctx->node_id, NULL, 0, &lost, 1);
  if (!b.oom && sender_socket(ctx, s)) zmq_send(s->push, b.data, b.len, ZMQ_DONTWAIT);
  dora__buf_free(&b);
}

/* Sends the samples this node released back to their senders, one frame per sender. */
static void flush_tokens(DoraContext *ctx) {
  pthread_mutex_lock(&ctx->lock);
  for (size_t i = 0; i < ctx->n_senders; i++) {
    sender_t *s = &ctx->senders[i];
    if (s->n == 0) continue;
    dora_buf b = {0};
    dora__tokens_write(&b, ctx->node_id, s->samples, s->n, NULL, 0);
    if (!b.oom && sender_socket(ctx, s)) zmq_send(s->push, b.data, b.len, ZMQ_DONTWAIT);
    dora__buf_free(&b);
    s->n = 0;
  }
  pthread_mutex_unlock(&ctx->lock);
}

/* ---- receiving ---------------------------------------------------------------------- */

static void on_control(DoraContext *ctx, const uint8_t *data, size_t len) {
  dora_json *msg = dora__json_parse((const char *)data, len);
  const char *t = msg ? jstr(msg, "t") : NULL;
  if (!t) {
    log_to_daemon(ctx, "warn", "ignored a malformed control message from the daemon");
  } else if (strcmp(t, "start") == 0) {
    ctx->started = true;
  } else if (strcmp(t, "stop") == 0) {
    ctx->stop_requested = true;
    const char *cause = jstr(msg, "cause");
    push_event(ctx, event_new(DoraEventType_Stop, NULL, cause ? cause : "MANUAL"));
  } else if (strcmp(t, "peer-exited") == 0) {
    const char *node = jstr(msg, "node");
    if (node && !is_exited(ctx, node)) {
      /* the exited list keeps strings of the config, which outlives it */
      const char *kept = NULL;
      for (size_t i = 0; i < ctx->n_outputs && !kept; i++)
        for (size_t k = 0; ctx->outputs[i].subscribers && k < ctx->outputs[i].subscribers->count && !kept; k++)
          if (strcmp(ctx->outputs[i].subscribers->items[k].string, node) == 0) kept = ctx->outputs[i].subscribers->items[k].string;
      if (kept) {
        const char **grown = grow(ctx->exited, ctx->n_exited, sizeof *grown);
        if (grown) {
          ctx->exited = grown;
          ctx->exited[ctx->n_exited++] = kept;
        }
        release_all(ctx, kept);
      }
    }
  } else if (strcmp(t, "inputs-closed") == 0) {
    const dora_json *ids = dora__json_get(msg, "inputs");
    for (size_t k = 0; ids && ids->type == DJ_ARRAY && k < ids->count; k++)
      for (size_t i = 0; i < ctx->n_inputs; i++)
        if (ids->items[k].type == DJ_STRING && strcmp(ids->items[k].string, ctx->inputs[i].id) == 0) close_input(ctx, i);
  }
  dora__json_free(msg);
}

/* Builds the payload of a data message: frames[1] inline, or a view of a shared-memory segment. */
static int make_payload(DoraContext *ctx, dora_segment_cache *cache, pthread_mutex_t *lock, const dora_header *h, zmq_msg_t *frames,
                        size_t n_frames, int sender, payload **out) {
  *out = NULL;
  payload *p = calloc(1, sizeof *p);
  if (!p) return dora__fail("out of memory");
  p->refs = 1;
  p->sender = sender;
  p->cache = cache;
  if (h->location == DORA_LOC_INLINE) {
    size_t have = n_frames > 1 ? zmq_msg_size(&frames[1]) : 0;
    if (have != h->inline_length) {
      free(p);
      return dora__fail("payload frame holds %zu bytes, the header announced %llu", have, (unsigned long long)h->inline_length);
    }
    if (n_frames > 2) {
      free(p);
      return dora__fail("data message has %zu frames, expected at most 3", n_frames + 1);
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
          return dora__fail("out of memory");
        }
        memcpy(p->copy, p->data, have);
        p->data = p->copy;
      }
    }
  } else {
    if (n_frames > 1) {
      free(p);
      return dora__fail("shared-memory message has %zu frames, expected 2", n_frames + 1);
    }
    if (h->shm_offset % 64 != 0) {
      free(p);
      return dora__fail("shared-memory payload offset %llu is not a multiple of 64", (unsigned long long)h->shm_offset);
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
  if (!p->data) p->data = empty_payload;
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
  if (n_frames == 0) return dora__fail("message without header");
  dora_header h;
  if (dora__header_read(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), &h)) return -1;
  if (h.kind == DORA_KIND_EOS) {
    if (n_frames > 1) return dora__fail("end-of-stream message has %zu frames, expected 2", n_frames + 1);
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
    payload_unref(p);
    return -1;
  }
  DoraEvent *ev = event_new(DoraEventType_Input, NULL, NULL);
  if (!ev) {
    dora__header_free(&h);
    payload_unref(p);
    return dora__fail("out of memory");
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
  if (n > 8) return dora__fail("too many frames");
  for (size_t i = 0; i < n; i++) {
    zmq_msg_init_size(&msgs[i], lens[i]);
    if (lens[i]) memcpy(zmq_msg_data(&msgs[i]), frames[i], lens[i]);
  }
  uint64_t seq;
  int rc = decode(NULL, &standalone_cache, &standalone_lock, msgs, n, -1, out_event, out_eos, &seq);
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
  if (rc == 0 && !data) rc = dora__fail("out of memory");
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

static int find_topic(const DoraContext *ctx, const void *data, size_t len) {
  for (size_t i = 0; i < ctx->n_topics; i++)
    if (ctx->topics[i].topic_len == len && memcmp(ctx->topics[i].topic, data, len) == 0) return (int)i;
  return -1;
}

static void on_data(DoraContext *ctx, int ti, zmq_msg_t *frames, size_t n) {
  topic_t *t = &ctx->topics[ti];
  DoraEvent *ev;
  bool eos;
  uint64_t seq = 0;
  if (decode(ctx, &ctx->cache, &ctx->lock, frames, n, t->sender, &ev, &eos, &seq)) {
    /* never reaches the node's code; the sequence gap it leaves is reported at the next message */
    log_to_daemon(ctx, "warn", "dropped a malformed message from %s: %s", t->source, dora_last_error());
    return;
  }
  if (eos) {
    for (size_t i = 0; i < ctx->n_inputs; i++)
      if (ctx->inputs[i].topic == ti) close_input(ctx, i);
    return;
  }
  dora__clock_observe(&ctx->clock, ev->timestamp);
  if (t->seen && seq > t->next_seq) add_lost(ctx, t, t->next_seq, seq - 1);
  if (!t->seen || seq >= t->next_seq) t->next_seq = seq + 1;
  t->seen = true;
  /* one event per input subscribed to this topic, sharing the payload */
  DoraEvent *first = ev;
  for (size_t i = 0; i < ctx->n_inputs; i++) {
    if (ctx->inputs[i].topic != ti || !ctx->inputs[i].open) continue;
    DoraEvent *e = first;
    if (!e) {
      e = event_new(DoraEventType_Input, NULL, NULL);
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
    push_input(ctx, e);
  }
  if (first) free_dora_event(first); /* no open input wants it */
}

/* Moves every message waiting on the SUB socket into the queues. */
static void drain(DoraContext *ctx) {
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
      if (n >= 2) on_control(ctx, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]));
    } else {
      int ti = find_topic(ctx, topic, topic_len);
      if (ti >= 0 && extra > 0) log_to_daemon(ctx, "warn", "dropped a malformed message from %s: %zu frames", ctx->topics[ti].source, n + extra);
      else if (ti >= 0) on_data(ctx, ti, frames + 1, n - 1);
    }
    for (size_t i = 0; i < n; i++) zmq_msg_close(&frames[i]);
  }
}

static void pump(DoraContext *ctx) {
  drain(ctx);
  read_tokens(ctx);
  flush_tokens(ctx);
}

/* Waits up to ms for the SUB (or drop-token) socket; then checks the daemon. */
static void wait_readable(DoraContext *ctx, long ms) {
  zmq_pollitem_t items[2] = {{ctx->sub, 0, ZMQ_POLLIN, 0}, {ctx->pull, 0, ZMQ_POLLIN, 0}};
  zmq_poll(items, ctx->pull ? 2 : 1, ms);
  check_daemon(ctx);
}

/* The daemon is our parent: if the parent changed, it is gone and this node must not linger. */
static void check_daemon(DoraContext *ctx) {
  if (ctx->daemon_gone || getppid() == (pid_t)ctx->daemon_pid) return;
  ctx->daemon_gone = true;
  char message[256];
  snprintf(message, sizeof message, "the dora daemon (pid %ld) is gone; node \"%s\" is shutting down", ctx->daemon_pid, ctx->node_id);
  push_event(ctx, event_new(DoraEventType_Error, NULL, message));
}

/* ---- daemon requests ---------------------------------------------------------------- */

static int request(DoraContext *ctx, dora_buf *json) {
  int rc = json->oom ? dora__fail("out of memory") : zsend(ctx->req, json->data, json->len, 0);
  dora__buf_free(json);
  return rc;
}

static void json_field(dora_buf *b, const char *key, const char *value, bool first) {
  if (!first) dora__buf_u8(b, ',');
  dora__json_quote(b, key, strlen(key));
  dora__buf_u8(b, ':');
  dora__json_quote(b, value, strlen(value));
}

static void simple_request(DoraContext *ctx, const char *t) {
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  json_field(&b, "t", t, true);
  json_field(&b, "node", ctx->node_id, false);
  dora__buf_u8(&b, '}');
  request(ctx, &b);
}

static void log_to_daemon(DoraContext *ctx, const char *level, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (!ctx || !ctx->req) {
    fprintf(stderr, "[%s] %s\n", level, message);
    return;
  }
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  json_field(&b, "t", "log", true);
  json_field(&b, "node", ctx->node_id, false);
  json_field(&b, "level", level, false);
  json_field(&b, "message", message, false);
  dora__buf_u8(&b, '}');
  request(ctx, &b);
}

int dora_log(void *dora_context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len) {
  DoraContext *ctx = dora_context;
  if (!ctx || ctx->closed) return dora__fail("dora_log: no open context");
  static const char *levels[] = {"error", "warn", "info", "debug", "trace"};
  const char *level = NULL;
  for (size_t i = 0; i < 5; i++)
    if (level_ptr && strlen(levels[i]) == level_len && strncmp(levels[i], level_ptr, level_len) == 0) level = levels[i];
  if (!level) return dora__fail("dora_log: level must be error, warn, info, debug or trace");
  if (!msg_ptr && msg_len) return dora__fail("dora_log: message is NULL");
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  json_field(&b, "t", "log", true);
  json_field(&b, "node", ctx->node_id, false);
  json_field(&b, "level", level, false);
  dora__buf_raw(&b, ",\"message\":", 11);
  dora__json_quote(&b, msg_ptr ? msg_ptr : "", msg_len);
  dora__buf_u8(&b, '}');
  return request(ctx, &b);
}

/* ---- joining the dataflow ------------------------------------------------------------- */

static int read_config(DoraContext *ctx) {
  const char *text = getenv(NODE_CONFIG_ENV);
  if (!text) {
    return dora__fail(NODE_CONFIG_ENV " is not set: this program is a dora node and must be started by dora, "
                                      "e.g. `dora run dataflow.yml` with this node in the dataflow");
  }
  ctx->config = dora__json_parse(text, strlen(text));
  if (!ctx->config) return dora__fail(NODE_CONFIG_ENV " is not valid JSON: %s", dora_last_error());
  const dora_json *c = ctx->config;
  const dora_json *version = dora__json_get(c, "protocolVersion");
  if (!version || version->type != DJ_NUMBER || version->number != DORA_PROTOCOL_VERSION) {
    return dora__fail("the dora daemon speaks protocol version %g, this library version %d; use matching dora-ts versions",
                      version && version->type == DJ_NUMBER ? version->number : -1.0, DORA_PROTOCOL_VERSION);
  }
  ctx->node_id = jstr(c, "nodeId");
  ctx->dataflow_id = jstr(c, "dataflowId");
  ctx->segment_prefix = jstr(c, "segmentPrefix");
  const dora_json *pid = dora__json_get(c, "daemonPid");
  const dora_json *threshold = dora__json_get(c, "sharedMemoryThreshold");
  const dora_json *inputs = dora__json_get(c, "inputs");
  const dora_json *outputs = dora__json_get(c, "outputs");
  const dora_json *subscribers = dora__json_get(c, "subscribers");
  if (!ctx->node_id || !ctx->dataflow_id || !ctx->segment_prefix || !pid || pid->type != DJ_NUMBER || !threshold ||
      threshold->type != DJ_NUMBER || !inputs || inputs->type != DJ_ARRAY || !outputs || outputs->type != DJ_ARRAY ||
      !jstr(c, "daemonRequests") || !jstr(c, "daemonEvents"))
    return dora__fail(NODE_CONFIG_ENV " lacks required fields");
  ctx->daemon_pid = (long)pid->number;
  ctx->threshold = (uint64_t)threshold->number;
  size_t id_len = strlen(ctx->node_id);
  ctx->event_topic_len = strlen("dora/events/") + id_len + 1; /* with the trailing NUL */
  ctx->event_topic = malloc(ctx->event_topic_len + 1);
  if (!ctx->event_topic) return dora__fail("out of memory");
  snprintf(ctx->event_topic, ctx->event_topic_len + 1, "dora/events/%s", ctx->node_id);

  ctx->inputs = calloc(inputs->count + 1, sizeof *ctx->inputs);
  ctx->topics = calloc(inputs->count + 1, sizeof *ctx->topics);
  ctx->senders = calloc(inputs->count + 1, sizeof *ctx->senders);
  ctx->outputs = calloc(outputs->count + 1, sizeof *ctx->outputs);
  if (!ctx->inputs || !ctx->topics || !ctx->senders || !ctx->outputs) return dora__fail("out of memory");
  for (size_t i = 0; i < inputs->count; i++) {
    const dora_json *in = &inputs->items[i];
    const dora_json *topic = dora__json_get(in, "topic");
    const dora_json *queue = dora__json_get(in, "queueSize");
    const char *id = jstr(in, "id"), *source = jstr(in, "source"), *endpoint = jstr(in, "endpoint");
    const char *drop = jstr(in, "dropEndpoint");
    if (!id || !source || !endpoint || !topic || topic->type != DJ_STRING || !queue || queue->type != DJ_NUMBER)
      return dora__fail(NODE_CONFIG_ENV ": input %zu lacks required fields", i);
    int sender = -1;
    if (drop) {
      for (size_t k = 0; k < ctx->n_senders; k++)
        if (strcmp(ctx->senders[k].endpoint, drop) == 0) sender = (int)k;
      if (sender < 0) {
        sender = (int)ctx->n_senders++;
        ctx->senders[sender].endpoint = drop;
      }
    }
    int ti = find_topic(ctx, topic->string, topic->string_len);
    if (ti < 0) {
      ti = (int)ctx->n_topics++;
      const char *slash = strchr(source, '/');
      ctx->topics[ti] = (topic_t){topic->string, topic->string_len, source, slash ? slash + 1 : source, sender, false, 0};
    }
    ctx->inputs[i] = (input_t){id, queue->number < 1 ? 1 : (size_t)queue->number, 0, ti, true};
  }
  ctx->n_inputs = ctx->open_inputs = inputs->count;
  for (size_t i = 0; i < outputs->count; i++) {
    const char *name = outputs->items[i].type == DJ_STRING ? outputs->items[i].string : NULL;
    if (!name) return dora__fail(NODE_CONFIG_ENV ": output %zu is not a string", i);
    output_t *o = &ctx->outputs[i];
    o->name = name;
    o->topic_len = id_len + 1 + strlen(name) + 1;
    char *topic = malloc(o->topic_len + 1);
    if (!topic) return dora__fail("out of memory");
    snprintf(topic, o->topic_len + 1, "%s/%s", ctx->node_id, name);
    o->topic = topic;
    const dora_json *subs = dora__json_get(subscribers, name);
    o->subscribers = subs && subs->type == DJ_ARRAY ? subs : NULL;
    ctx->n_outputs++;
  }
  return 0;
}

static int socket_opt(void *s, int opt, int value) { return zmq_setsockopt(s, opt, &value, sizeof value); }

static int open_sockets(DoraContext *ctx) {
  const dora_json *c = ctx->config;
  ctx->zctx = zmq_ctx_new();
  if (!ctx->zctx) return dora__fail("zmq_ctx_new failed: %s", zmq_strerror(errno));
  ctx->sub = zmq_socket(ctx->zctx, ZMQ_SUB);
  ctx->req = zmq_socket(ctx->zctx, ZMQ_DEALER);
  if (!ctx->sub || !ctx->req) return dora__fail("zmq_socket failed: %s", zmq_strerror(errno));
  /* receivers own the queueing policy (drop the oldest): ZeroMQ must never drop, or an end of stream could be lost */
  socket_opt(ctx->sub, ZMQ_RCVHWM, 0);
  socket_opt(ctx->sub, ZMQ_LINGER, 0);
  const char *events = jstr(c, "daemonEvents");
  if (zmq_connect(ctx->sub, events)) return dora__fail("cannot connect to %s: %s", events, zmq_strerror(errno));
  zmq_setsockopt(ctx->sub, ZMQ_SUBSCRIBE, ctx->event_topic, ctx->event_topic_len);
  const dora_json *inputs = dora__json_get(c, "inputs");
  for (size_t i = 0; i < inputs->count; i++) {
    const char *endpoint = jstr(&inputs->items[i], "endpoint");
    bool seen = strcmp(endpoint, events) == 0;
    for (size_t k = 0; k < i && !seen; k++) seen = strcmp(jstr(&inputs->items[k], "endpoint"), endpoint) == 0;
    if (!seen && zmq_connect(ctx->sub, endpoint)) return dora__fail("cannot connect to %s: %s", endpoint, zmq_strerror(errno));
  }
  for (size_t i = 0; i < ctx->n_topics; i++) zmq_setsockopt(ctx->sub, ZMQ_SUBSCRIBE, ctx->topics[i].topic, ctx->topics[i].topic_len);

  const char *data = jstr(c, "dataEndpoint"), *drops = jstr(c, "dropEndpoint");
  if (data && ctx->n_outputs > 0) {
    ctx->pub = zmq_socket(ctx->zctx, ZMQ_XPUB);
    if (!ctx->pub) return dora__fail("zmq_socket failed: %s", zmq_strerror(errno));
    socket_opt(ctx->pub, ZMQ_SNDHWM, 0);
    socket_opt(ctx->pub, ZMQ_XPUB_VERBOSE, 1); /* every subscriber's subscription counts for the start barrier */
    socket_opt(ctx->pub, ZMQ_LINGER, OUTPUT_LINGER_MS);
    if (zmq_bind(ctx->pub, data)) return dora__fail("cannot bind %s: %s", data, zmq_strerror(errno));
  }
  if (drops && ctx->n_outputs > 0) {
    ctx->pull = zmq_socket(ctx->zctx, ZMQ_PULL);
    if (!ctx->pull) return dora__fail("zmq_socket failed: %s", zmq_strerror(errno));
    socket_opt(ctx->pull, ZMQ_LINGER, 0);
    if (zmq_bind(ctx->pull, drops)) return dora__fail("cannot bind %s: %s", drops, zmq_strerror(errno));
  }
  socket_opt(ctx->req, ZMQ_LINGER, OUTPUT_LINGER_MS);
  const char *requests = jstr(c, "daemonRequests");
  if (zmq_connect(ctx->req, requests)) return dora__fail("cannot connect to %s: %s", requests, zmq_strerror(errno));
  return 0;
}

static int register_node(DoraContext *ctx) {
  dora_buf b = {0};
  char tail[64];
  dora__buf_u8(&b, '{');
  json_field(&b, "t", "register", true);
  json_field(&b, "node", ctx->node_id, false);
  snprintf(tail, sizeof tail, ",\"version\":%d,\"pid\":%ld}", DORA_PROTOCOL_VERSION, (long)getpid());
  dora__buf_raw(&b, tail, strlen(tail));
  if (request(ctx, &b)) return -1;
  int64_t deadline = now_ms() + REGISTER_TIMEOUT_MS;
  for (;;) {
    zmq_pollitem_t item = {ctx->req, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, POLL_MS);
    if (item.revents & ZMQ_POLLIN) break;
    check_daemon(ctx);
    if (ctx->daemon_gone) return dora__fail("the dora daemon went away while node \"%s\" was starting", ctx->node_id);
    if (now_ms() > deadline)
      return dora__fail("node \"%s\" could not register with the dora daemon within %d s", ctx->node_id, REGISTER_TIMEOUT_MS / 1000);
  }
  zmq_msg_t reply;
  zmq_msg_init(&reply);
  zmq_msg_recv(&reply, ctx->req, 0);
  dora_json *msg = dora__json_parse(zmq_msg_data(&reply), zmq_msg_size(&reply));
  zmq_msg_close(&reply);
  const char *t = msg ? jstr(msg, "t") : NULL;
  int rc = 0;
  if (!t) rc = dora__fail("node \"%s\": malformed registration reply from the daemon", ctx->node_id);
  else if (strcmp(t, "ok") != 0) rc = dora__fail("the dora daemon refused node \"%s\": %s", ctx->node_id, jstr(msg, "message") ? jstr(msg, "message") : "no reason given");
  dora__json_free(msg);
  return rc;
}

static bool subscribers_joined(const DoraContext *ctx) {
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    const output_t *o = &ctx->outputs[i];
    size_t expected = 0;
    for (size_t k = 0; o->subscribers && k < o->subscribers->count; k++)
      if (o->subscribers->items[k].type == DJ_STRING && !is_exited(ctx, o->subscribers->items[k].string)) expected++;
    if (o->subscriptions_seen < expected) return false;
  }
  return true;
}

/* The start barrier: our subscribers have joined, then every node is ready. */
static int await_start(DoraContext *ctx) {
  while (ctx->pub && !subscribers_joined(ctx) && !ctx->stop_requested) {
    drain(ctx);
    zmq_pollitem_t items[2] = {{ctx->pub, 0, ZMQ_POLLIN, 0}, {ctx->sub, 0, ZMQ_POLLIN, 0}};
    zmq_poll(items, 2, POLL_MS);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, ctx->pub, ZMQ_DONTWAIT) >= 0) {
      const uint8_t *d = zmq_msg_data(&msg);
      size_t n = zmq_msg_size(&msg);
      if (n > 0 && d[0] == 1)
        for (size_t i = 0; i < ctx->n_outputs; i++)
          if (ctx->outputs[i].topic_len == n - 1 && memcmp(ctx->outputs[i].topic, d + 1, n - 1) == 0) ctx->outputs[i].subscriptions_seen++;
    }
    zmq_msg_close(&msg);
    check_daemon(ctx);
    if (ctx->daemon_gone) return dora__fail("the dora daemon went away while node \"%s\" was starting", ctx->node_id);
  }
  simple_request(ctx, "ready");
  /* a stop during start-up (Ctrl-C while nodes load) ends the wait: the stream then yields STOP */
  while (!ctx->started && !ctx->stop_requested) {
    drain(ctx);
    if (ctx->started || ctx->stop_requested) break;
    wait_readable(ctx, POLL_MS);
    if (ctx->daemon_gone) return dora__fail("the dora daemon went away while node \"%s\" was starting", ctx->node_id);
  }
  return 0;
}

void *init_dora_context_from_env(void) {
  DoraContext *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    dora__fail("out of memory");
    return NULL;
  }
  ctx->refs = 1;
  ctx->next_sample_id = 1;
  pthread_mutex_init(&ctx->lock, NULL);
  if (read_config(ctx) || open_sockets(ctx) || register_node(ctx) || await_start(ctx)) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", dora_last_error() ? dora_last_error() : "unknown error");
    free_dora_context(ctx);
    dora__fail("%s", saved);
    return NULL;
  }
  return ctx;
}

/* ---- events ------------------------------------------------------------------------- */

DoraEvent *dora_next_event_timeout(DoraContext *ctx, int64_t timeout_ms) {
  if (!ctx || ctx->closed) {
    dora__fail("dora_next_event: no open context");
    return NULL;
  }
  int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : INT64_MAX;
  for (;;) {
    pump(ctx);
    if (ctx->head) {
      DoraEvent *ev = ctx->head;
      ctx->head = ev->next;
      if (!ctx->head) ctx->tail = NULL;
      ev->next = NULL;
      if (ev->type == DoraEventType_Input) ctx->inputs[ev->input].queued--;
      if (ev->type == DoraEventType_Stop || ev->type == DoraEventType_Error) ctx->ended = true;
      return ev;
    }
    if (ctx->ended) return NULL;
    if (ctx->n_inputs > 0 && ctx->open_inputs == 0) {
      ctx->ended = true;
      return NULL;
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) return NULL;
    wait_readable(ctx, left < POLL_MS ? (long)left : POLL_MS);
  }
}

void *dora_next_event(void *dora_context) { return dora_next_event_timeout(dora_context, -1); }

bool dora_event_stream_ended(const DoraContext *ctx) { return !ctx || ctx->closed || ctx->ended; }

enum DoraEventType read_dora_event_type(void *dora_event) {
  DoraEvent *ev = dora_event;
  return ev ? ev->type : DoraEventType_Unknown;
}

void read_dora_input_id(void *dora_event, char **out_ptr, size_t *out_len) {
  DoraEvent *ev = dora_event;
  bool has = ev && (ev->type == DoraEventType_Input || ev->type == DoraEventType_InputClosed) && ev->id;
  if (out_ptr) *out_ptr = has ? ev->id : NULL;
  if (out_len) *out_len = has ? ev->id_len : 0;
}

void read_dora_input_data(void *dora_event, char **out_ptr, size_t *out_len) {
  DoraEvent *ev = dora_event;
  if (out_ptr) *out_ptr = NULL;
  if (out_len) *out_len = 0;
  if (!ev || ev->type != DoraEventType_Input || !ev->layout || !ev->payload) return;
  const dora_layout *l = ev->layout;
  uint64_t width = dora__fixed_width(l->format);
  if (width == 0 || l->length == 0 || l->n_buffers < 2 || !l->buffers[1].present) return;
  if (out_ptr) *out_ptr = (char *)(ev->payload->data + l->buffers[1].offset + l->offset * width);
  if (out_len) *out_len = (size_t)(l->length * width);
}

unsigned long long read_dora_input_timestamp(void *dora_event) {
  DoraEvent *ev = dora_event;
  return ev ? ev->timestamp : 0;
}

const char *dora_event_message(const DoraEvent *ev) {
  return ev && (ev->type == DoraEventType_Stop || ev->type == DoraEventType_Error) ? ev->message : NULL;
}

const DoraMetadata *dora_event_metadata(const DoraEvent *ev) { return ev && ev->metadata ? ev->metadata : dora__metadata_empty(); }

int dora_event_arrow(const DoraEvent *ev, struct ArrowArray *out_array, struct ArrowSchema *out_schema) {
  if (!ev || ev->type != DoraEventType_Input || !ev->layout || !out_array || !out_schema)
    return dora__fail("dora_event_arrow: not an input event (or NULL output structs)");
  payload *p = ev->payload;
  const uint8_t *data = p && p->data ? p->data : empty_payload;
  if (p) __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
  if (dora__layout_export(ev->layout, data, out_array, out_schema, p ? payload_release_cb : NULL, p)) {
    payload_unref(p);
    return -1;
  }
  return 0;
}

const char *dora_node_id(const DoraContext *ctx) { return ctx ? ctx->node_id : NULL; }
const char *dora_dataflow_id(const DoraContext *ctx) { return ctx ? ctx->dataflow_id : NULL; }

/* ---- sending ------------------------------------------------------------------------ */

static int find_output(DoraContext *ctx, const char *id, size_t len) {
  if (!ctx || ctx->closed) return dora__fail("send: no open context");
  for (size_t i = 0; ctx->pub && i < ctx->n_outputs; i++)
    if (strlen(ctx->outputs[i].name) == len && memcmp(ctx->outputs[i].name, id, len) == 0) return (int)i;
  char declared[512] = "";
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    size_t at = strlen(declared);
    snprintf(declared + at, sizeof declared - at, "%s%s", i ? ", " : "", ctx->outputs[i].name);
  }
  return dora__fail("node \"%s\" has no output \"%.*s\" (declared outputs: %s)", ctx->node_id, (int)(len > 200 ? 200 : len), id ? id : "",
                    ctx->n_outputs ? declared : "none");
}

/* A free sample of at least size bytes, or a new segment. Returns its index. */
static int acquire(DoraContext *ctx, size_t size) {
  int best = -1;
  for (size_t i = 0; i < ctx->n_samples; i++) {
    sample_t *s = &ctx->samples[i];
    size_t limit = size * 4 > MIN_SEGMENT ? size * 4 : MIN_SEGMENT;
    if (s->state == SAMPLE_FREE && s->seg.size >= size && s->seg.size <= limit && (best < 0 || s->seg.size < ctx->samples[best].seg.size))
      best = (int)i;
  }
  if (best < 0) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t want = size < MIN_SEGMENT ? MIN_SEGMENT : (size + page - 1) / page * page;
    sample_t *grown = grow(ctx->samples, ctx->n_samples, sizeof *grown);
    if (!grown) return dora__fail("out of memory");
    ctx->samples = grown;
    sample_t *s = &ctx->samples[ctx->n_samples];
    memset(s, 0, sizeof *s);
    if (dora__segment_create(ctx->segment_prefix, want, &s->seg)) return -1;
    best = (int)ctx->n_samples++;
  }
  sample_t *s = &ctx->samples[best];
  s->state = SAMPLE_ACQUIRED;
  s->id = ctx->next_sample_id++;
  return best;
}

/* Records who will hold a sent sample (call before sending: a token may come back at once). */
static void mark_sent(DoraContext *ctx, int index, int output, uint64_t seq) {
  sample_t *s = &ctx->samples[index];
  const dora_json *subs = ctx->outputs[output].subscribers;
  size_t n = subs ? subs->count : 0;
  free(s->holders);
  s->holders = calloc(n + 1, sizeof *s->holders);
  s->n_holders = 0;
  for (size_t k = 0; s->holders && k < n; k++)
    if (subs->items[k].type == DJ_STRING && !is_exited(ctx, subs->items[k].string)) s->holders[s->n_holders++] = subs->items[k].string;
  s->output = output;
  s->seq = seq;
  s->state = s->n_holders > 0 ? SAMPLE_OUT : SAMPLE_FREE;
}

static void free_buffer(void *data, void *hint) {
  (void)hint;
  free(data);
}

/*
 * Sends one message on output o: the payload either in shared-memory sample `shm`
 * (>= 0) or inline in `inline_data` (ownership passes to ZeroMQ, freed with free()).
 */
static int send_message(DoraContext *ctx, int o, const dora_layout *layout, const DoraMetadata *metadata, int shm, uint8_t *inline_data,
                        size_t size) {
  output_t *out = &ctx->outputs[o];
  dora_header h = {0};
  h.kind = DORA_KIND_DATA;
  h.timestamp = dora__clock_now(&ctx->clock);
  h.seq = out->seq;
  h.metadata = (DoraMetadata *)metadata;
  h.layout = (dora_layout *)layout;
  if (shm >= 0) {
    h.location = DORA_LOC_SHM;
    h.segment = ctx->samples[shm].seg.name;
    h.sample = ctx->samples[shm].id;
    h.shm_length = size;
  } else {
    h.location = DORA_LOC_INLINE;
    h.inline_length = size;
  }
  dora_buf header = {0};
  int rc = dora__header_write(&header, &h);
  if (rc == 0) {
    if (shm >= 0) mark_sent(ctx, shm, o, out->seq);
    bool has_payload = shm < 0 && size > 0;
    rc = zsend(ctx->pub, out->topic, out->topic_len, ZMQ_SNDMORE);
    if (rc == 0) rc = zsend(ctx->pub, header.data, header.len, has_payload ? ZMQ_SNDMORE : 0);
    if (rc == 0 && has_payload) {
      zmq_msg_t msg;
      zmq_msg_init_data(&msg, inline_data, size, free_buffer, NULL); /* no copy: ZeroMQ frees it when sent */
      inline_data = NULL;
      while ((rc = zmq_msg_send(&msg, ctx->pub, 0)) < 0 && errno == EINTR) {
      }
      if (rc < 0) {
        zmq_msg_close(&msg);
        rc = dora__fail("zmq_msg_send failed: %s", zmq_strerror(errno));
      } else {
        rc = 0;
      }
    }
    out->seq++;
  }
  free(inline_data);
  dora__buf_free(&header);
  return rc;
}

static int send_plan(DoraContext *ctx, int o, const dora_plan *plan, const DoraMetadata *metadata) {
  read_tokens(ctx);
  if (plan->size > 0 && plan->size >= ctx->threshold) {
    int s = acquire(ctx, plan->size);
    if (s < 0) return -1;
    dora__plan_write(plan, ctx->samples[s].seg.ptr);
    int rc = send_message(ctx, o, plan->layout, metadata, s, NULL, plan->size);
    if (rc) ctx->samples[s].state = SAMPLE_FREE;
    return rc;
  }
  uint8_t *data = NULL;
  if (plan->size > 0) {
    data = malloc(plan->size);
    if (!data) return dora__fail("out of memory");
    dora__plan_write(plan, data);
  }
  return send_message(ctx, o, plan->layout, metadata, -1, data, plan->size);
}

int dora_send_output_with_metadata(DoraContext *ctx, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len,
                                   const DoraMetadata *metadata) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  if (!data_ptr && data_len) return dora__fail("send: data is NULL");
  struct dora_copy copy = {data_ptr, 0, data_len};
  dora_plan plan = {dora__layout_uint8(data_len), data_len, 1, &copy};
  if (!plan.layout) return dora__fail("out of memory");
  int rc = send_plan(ctx, o, &plan, metadata);
  dora__layout_free(plan.layout);
  return rc;
}

int dora_send_output(void *dora_context, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len) {
  return dora_send_output_with_metadata(dora_context, id_ptr, id_len, data_ptr, data_len, NULL);
}

int dora_send_output_arrow(DoraContext *ctx, const char *id_ptr, size_t id_len, const struct ArrowArray *array, const struct ArrowSchema *schema,
                           const DoraMetadata *metadata) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  dora_plan plan;
  if (dora__plan_arrow(array, schema, &plan)) return -1;
  int rc = send_plan(ctx, o, &plan, metadata);
  dora__plan_free(&plan);
  return rc;
}

DoraOutputSample *dora_allocate_output(DoraContext *ctx, size_t len) {
  if (!ctx || ctx->closed) {
    dora__fail("dora_allocate_output: no open context");
    return NULL;
  }
  DoraOutputSample *out = calloc(1, sizeof *out);
  if (!out) {
    dora__fail("out of memory");
    return NULL;
  }
  out->len = len;
  out->sample = -1;
  read_tokens(ctx);
  if (ctx->pub && len > 0 && len >= ctx->threshold) {
    out->sample = acquire(ctx, len);
    if (out->sample < 0) {
      free(out);
      return NULL;
    }
    out->data = ctx->samples[out->sample].seg.ptr;
  } else {
    out->data = malloc(len ? len : 1);
    if (!out->data) {
      free(out);
      dora__fail("out of memory");
      return NULL;
    }
  }
  return out;
}

uint8_t *dora_output_sample_data(DoraOutputSample *sample) { return sample ? sample->data : NULL; }

void dora_discard_output_sample(DoraContext *ctx, DoraOutputSample *sample) {
  if (!sample) return;
  if (sample->sample >= 0 && ctx && !ctx->closed) ctx->samples[sample->sample].state = SAMPLE_FREE;
  else if (sample->sample < 0) free(sample->data);
  free(sample);
}

int dora_send_output_sample(DoraContext *ctx, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const DoraMetadata *metadata) {
  if (!sample) return dora__fail("send: sample is NULL");
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", dora_last_error());
    dora_discard_output_sample(ctx, sample);
    return dora__fail("%s", saved);
  }
  dora_layout *layout = dora__layout_uint8(sample->len);
  int rc;
  if (!layout) {
    rc = dora__fail("out of memory");
    dora_discard_output_sample(ctx, sample);
  } else if (sample->sample >= 0) {
    rc = send_message(ctx, o, layout, metadata, sample->sample, NULL, sample->len);
    if (rc) ctx->samples[sample->sample].state = SAMPLE_FREE;
    free(sample);
  } else {
    rc = send_message(ctx, o, layout, metadata, -1, sample->data, sample->len); /* takes the buffer */
    free(sample);
  }
  dora__layout_free(layout);
  return rc;
}

/* ---- closing ------------------------------------------------------------------------ */

static void ctx_unref(DoraContext *ctx) {
  if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  /* every event and array is gone: what is still mapped can go */
  dora__cache_close(&ctx->cache);
  for (size_t i = 0; i < ctx->n_senders; i++) free(ctx->senders[i].samples);
  for (size_t i = 0; i < ctx->n_outputs; i++) free((char *)ctx->outputs[i].topic);
  free(ctx->senders);
  free(ctx->outputs);
  free(ctx->inputs);
  free(ctx->topics);
  free(ctx->exited);
  free(ctx->event_topic);
  dora__json_free(ctx->config);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

static void close_socket(void **s) {
  if (*s) zmq_close(*s);
  *s = NULL;
}

static void close_context(DoraContext *ctx) {
  if (ctx->pub) {
    dora_buf eos = {0};
    dora__eos_write(&eos, dora__clock_now(&ctx->clock));
    for (size_t i = 0; i < ctx->n_outputs; i++) {
      zsend(ctx->pub, ctx->outputs[i].topic, ctx->outputs[i].topic_len, ZMQ_SNDMORE);
      zsend(ctx->pub, eos.data, eos.len, 0);
    }
    dora__buf_free(&eos);
    if (ctx->req) simple_request(ctx, "outputs-closed");
  }
  if (ctx->zctx) flush_tokens(ctx);
  /* Give receivers a moment to take (and return) what was just sent: a sample still held
     after that stays in place (unlinking it could lose a message not yet opened); the
     daemon removes every segment of the dataflow when the run ends. */
  int64_t deadline = now_ms() + RELEASE_WAIT_MS;
  while (ctx->pull && !ctx->daemon_gone && now_ms() < deadline) {
    bool outstanding = false;
    for (size_t i = 0; i < ctx->n_samples && !outstanding; i++) outstanding = ctx->samples[i].state == SAMPLE_OUT;
    if (!outstanding) break;
    drain(ctx); /* peer-exited events release too */
    read_tokens(ctx);
    zmq_pollitem_t item = {ctx->pull, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, 5);
    check_daemon(ctx);
  }
  while (ctx->head) {
    DoraEvent *ev = ctx->head;
    ctx->head = ev->next;
    free_dora_event(ev);
  }
  ctx->tail = NULL;
  pthread_mutex_lock(&ctx->lock);
  ctx->closed = true; /* from now on releases send no tokens */
  pthread_mutex_unlock(&ctx->lock);
  close_socket(&ctx->sub);
  close_socket(&ctx->pull);
  for (size_t i = 0; i < ctx->n_senders; i++) close_socket(&ctx->senders[i].push);
  close_socket(&ctx->pub);
  close_socket(&ctx->req);
  for (size_t i = 0; i < ctx->n_samples; i++) {
    sample_t *s = &ctx->samples[i];
    if (s->state == SAMPLE_OUT) { /* still held: unmap ours, leave the name for the daemon */
      munmap(s->seg.ptr, s->seg.size);
      free(s->seg.name);
    } else {
      dora__segment_destroy(&s->seg); /* receivers keep their own mappings */
    }
    free(s->holders);
  }
  free(ctx->samples);
  ctx->samples = NULL;
  ctx->n_samples = 0;
  if (ctx->zctx) {
    while (zmq_ctx_term(ctx->zctx) < 0 && errno == EINTR) {
    }
    ctx->zctx = NULL;
  }
  pthread_mutex_lock(&ctx->lock);
  dora__cache_close(&ctx->cache);
  pthread_mutex_unlock(&ctx->lock);
}

void free_dora_context(void *dora_context) {
  DoraContext *ctx = dora_context;
  if (!ctx) return;
  if (!ctx->closed) close_context(ctx);
  ctx_unref(ctx);
}

/*
 * Unit checks of the node core: the per-input queues (events.c), the sender's sample
 * pool and drop tokens (pool.c), segments and the receiver's mapping cache (shm.c),
 * the SIGBUS guard over receive mappings (guard.c), mapping references (record.c) and
 * data to and from other machines over TCP with CURVE (remote.c).
 *
 *   check-core [segment-prefix [check ...]]   (every check when none is named)
 *
 * Prints one JSON line per check: {"check":"<name>","ok":true} or
 * {"check":"<name>","ok":false,"failures":["line N: ..."]}, and exits 1 when a check
 * failed. tests/core.test.ts runs it in the normal and the sanitizer build.
 *
 * Contexts are built by hand (the configuration through dora__read_config, no
 * registration, no daemon). Where a path of the core only reads a socket (draining
 * messages, reading drop tokens) the socket is an inproc one in the context's own ZeroMQ
 * context, fed by a peer socket of the check: nothing touches the file system or the
 * network, except remote.curve-tcp (loopback TCP, key files in a temporary folder). Every segment is created under the segment prefix (argv[1], or a random one);
 * after each check, whatever is left in /dev/shm under it fails that check and is removed.
 *
 * The pool checks speak about behaviour (placement, sample ids, holders, counters), read
 * from what the sender puts on the wire (the data-message header), not about how samples
 * sit in segments; the helpers tx_* and rx_* are the one place that knows the harness.
 * Pool checks use samples above 256 KiB (whole segments, with or without slab slots);
 * slab checks can be added with the same helpers (tx_send gives segment and offset).
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node.h"

/* ---- reporting ------------------------------------------------------------------------ */

static char prefix[160];
static dora_buf failures; /* JSON strings, comma-separated */
static int n_failures;

static void fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_at(int line, const char *fmt, ...) {
  char msg[768], full[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(full, sizeof full, "line %d: %s", line, msg);
  if (n_failures++) dora__buf_u8(&failures, ',');
  dora__json_quote(&failures, full, strlen(full));
}

static const char *last_error(void) { return dora_last_error() ? dora_last_error() : "(no error)"; }

#define CHECK(c)                                  \
  do {                                            \
    if (!(c)) fail_at(__LINE__, "%s", #c);        \
  } while (0)
/* A precondition: the check cannot go on without it. */
#define REQUIRE(c)                                                               \
  do {                                                                           \
    if (!(c)) {                                                                  \
      fail_at(__LINE__, "required: %s (last error: %s)", #c, last_error());      \
      return;                                                                    \
    }                                                                            \
  } while (0)
#define CHECK_EQ(a, b)                                                                                       \
  do {                                                                                                       \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                                         \
    if (a_ != b_) fail_at(__LINE__, "%s is %" PRIu64 ", expected %s = %" PRIu64, #a, a_, #b, b_);            \
  } while (0)
#define CHECK_LE(a, b)                                                                                       \
  do {                                                                                                       \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                                         \
    if (a_ > b_) fail_at(__LINE__, "%s is %" PRIu64 ", expected at most %s = %" PRIu64, #a, a_, #b, b_);     \
  } while (0)
#define CHECK_STR(a, b)                                                                                     \
  do {                                                                                                      \
    const char *a_ = (a), *b_ = (b);                                                                        \
    if (!a_ || strcmp(a_, b_) != 0) fail_at(__LINE__, "%s is \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_); \
  } while (0)
#define CHECK_CONTAINS(a, b)                                                                                 \
  do {                                                                                                       \
    const char *a_ = (a), *b_ = (b);                                                                         \
    if (!a_ || !strstr(a_, b_)) fail_at(__LINE__, "%s is \"%s\", expected it to contain \"%s\"", #a, a_ ? a_ : "(null)", b_); \
  } while (0)

/* ---- /dev/shm ------------------------------------------------------------------------- */

static size_t count_segments(void) {
  size_t n = 0, plen = strlen(prefix);
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, plen) == 0;
  closedir(d);
  return n;
}

/* Fails the current check for every segment left under the prefix, and removes it. */
static void sweep_segments(void) {
  size_t plen = strlen(prefix);
  DIR *d = opendir("/dev/shm");
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, prefix, plen) != 0) continue;
    fail_at(0, "left /dev/shm/%s behind", e->d_name);
    char path[320];
    snprintf(path, sizeof path, "/%s", e->d_name);
    shm_unlink(path);
  }
  closedir(d);
}

/* The permissions /proc/self/maps shows for the mapping holding p ("r--s", ...). */
static const char *perms_of(const void *p, char out[8]) {
  strcpy(out, "none");
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return out;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
      strcpy(out, perms);
      break;
    }
  }
  fclose(f);
  return out;
}

/* ---- contexts built by hand ------------------------------------------------------------ */

/*
 * What open_context (context.c) does, without sockets: the configuration is read the way
 * a node reads DORA_NODE_CONFIG. free_dora_context frees it (close_context skips what is
 * NULL). inputs/outputs/subscribers are JSON texts.
 */
static DoraContext *node_new_extra(const char *node_id, const char *inputs, const char *outputs, const char *subscribers, const char *extra) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f,
          "{\"protocolVersion\":%d,\"nodeId\":\"%s\",\"dataflowId\":\"check-core\",\"segmentPrefix\":\"%s\",\"daemonPid\":%ld,"
          "\"sharedMemoryThreshold\":4096,\"daemonRequests\":\"inproc://daemon-requests\",\"daemonEvents\":\"inproc://daemon-events\","
          "\"inputs\":%s,\"outputs\":%s,\"subscribers\":%s%s}",
          DORA_PROTOCOL_VERSION, node_id, prefix, (long)getppid(), inputs, outputs, subscribers, extra);
  fclose(f);
  DoraContext *ctx = dora__context_new();
  if (!ctx) {
    free(text);
    return NULL;
  }
  int rc = dora__read_config(ctx, text);
  free(text);
  if (rc) {
    fail_at(__LINE__, "configuration refused: %s", last_error());
    free_dora_context(ctx);
    return NULL;
  }
  return ctx;
}

static DoraContext *node_new(const char *node_id, const char *inputs, const char *outputs, const char *subscribers) {
  return node_new_extra(node_id, inputs, outputs, subscribers, "");
}

/* An input whose sender returns samples to inproc://returns; its topic is "<source>\0". */
#define INPUT(id, source, queue)                                                                                                 \
  "{\"id\":\"" id "\",\"source\":\"" source "\",\"endpoint\":\"inproc://data\",\"topic\":\"" source "\\u0000\",\"queueSize\":" #queue \
  ",\"dropEndpoint\":\"inproc://returns\"}"
#define TIMER_INPUT(id, timer, queue)                                                                                                   \
  "{\"id\":\"" id "\",\"source\":\"" timer "\",\"endpoint\":\"inproc://daemon-events\",\"topic\":\"" timer "\\u0000\",\"queueSize\":" #queue \
  ",\"dropEndpoint\":null}"

/* A control message from the daemon, applied as the drain applies it. */
static void control(DoraContext *ctx, const char *json) { dora__on_control(ctx, (const uint8_t *)json, strlen(json)); }

static int input_index(const DoraContext *ctx, const char *id) {
  for (size_t i = 0; i < ctx->n_inputs; i++)
    if (strcmp(ctx->inputs[i].id, id) == 0) return (int)i;
  return -1;
}

/* Queues an input event the way the drain does, labelled by its timestamp. */
static void push(DoraContext *ctx, const char *input, uint64_t timestamp) {
  int i = input_index(ctx, input);
  DoraEvent *ev = i >= 0 ? dora__event_new(DoraEventType_Input, input, NULL) : NULL;
  if (!ev) {
    fail_at(__LINE__, "cannot queue an event for input %s", input);
    return;
  }
  ev->input = i;
  ev->timestamp = timestamp;
  dora__push_input(ctx, ev);
}

static void append_label(dora_buf *b, const DoraEvent *ev) {
  char label[128];
  switch (read_dora_event_type((void *)ev)) {
  case DoraEventType_Input:
    snprintf(label, sizeof label, "%s:%llu", ev->id, read_dora_input_timestamp((void *)ev));
    break;
  case DoraEventType_InputClosed:
    snprintf(label, sizeof label, "closed:%s", ev->id);
    break;
  case DoraEventType_Stop:
    snprintf(label, sizeof label, "STOP");
    break;
  case DoraEventType_Error:
    snprintf(label, sizeof label, "ERROR");
    break;
  default:
    snprintf(label, sizeof label, "?");
  }
  if (b->len) dora__buf_u8(b, ' ');
  dora__buf_raw(b, label, strlen(label));
}

/* Every event waiting, through dora_next_event_timeout (no wait), as "input:timestamp ..." labels. */
static char *take_all(DoraContext *ctx) {
  dora_buf b = {0};
  for (DoraEvent *ev; (ev = dora_next_event_timeout(ctx, 0));) {
    append_label(&b, ev);
    free_dora_event(ev);
  }
  dora__buf_u8(&b, 0);
  return (char *)b.data;
}

#define CHECK_EVENTS(ctx, expected)                                                                  \
  do {                                                                                               \
    char *events_ = take_all(ctx);                                                                   \
    if (!events_ || strcmp(events_, expected) != 0)                                                  \
      fail_at(__LINE__, "the events were \"%s\", expected \"%s\"", events_ ? events_ : "(null)", expected); \
    free(events_);                                                                                   \
  } while (0)

static void *socket_in(void *zctx, int type, const char *bind, const char *connect) {
  void *s = zmq_socket(zctx, type);
  if (!s) return NULL;
  int zero = 0, timeout = 2000;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  if ((bind && zmq_bind(s, bind)) || (connect && zmq_connect(s, connect))) {
    zmq_close(s);
    return NULL;
  }
  return s;
}

static bool readable(void *socket, long ms) {
  zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
  return zmq_poll(&item, 1, ms) == 1;
}

/* ---- receiver harness: a node with inputs, its data socket fed by the check ------------- */

typedef struct {
  DoraContext *ctx;
  void *feed;    /* PUSH → the node's data socket (a PULL: drain only reads it) */
  void *returns; /* PULL ← the drop tokens the node returns to its senders */
} rx_t;

static bool rx_open(rx_t *r, const char *inputs) {
  memset(r, 0, sizeof *r);
  r->ctx = node_new("rx", inputs, "[]", "{}");
  if (!r->ctx) return false;
  DoraContext *ctx = r->ctx;
  ctx->zctx = zmq_ctx_new();
  ctx->sub = ctx->zctx ? socket_in(ctx->zctx, ZMQ_PULL, "inproc://data", NULL) : NULL;
  r->feed = ctx->sub ? socket_in(ctx->zctx, ZMQ_PUSH, NULL, "inproc://data") : NULL;
  r->returns = r->feed ? socket_in(ctx->zctx, ZMQ_PULL, "inproc://returns", NULL) : NULL;
  return r->returns != NULL;
}

static void rx_close(rx_t *r) {
  if (r->feed) zmq_close(r->feed);
  if (r->returns) zmq_close(r->returns);
  free_dora_context(r->ctx); /* closes the node's sockets, terminates its ZeroMQ context */
  memset(r, 0, sizeof *r);
}

static void send_frames(void *socket, const void *a, size_t a_len, const void *b, size_t b_len, const void *c, size_t c_len) {
  zmq_send(socket, a, a_len, ZMQ_SNDMORE);
  zmq_send(socket, b, b_len, c ? ZMQ_SNDMORE : 0);
  if (c) zmq_send(socket, c, c_len, 0);
}

/* A data message from source ("node/output") as its sender publishes it: inline, or in a segment. */
static void rx_feed(rx_t *r, const char *source, uint64_t seq, uint64_t timestamp, const void *data, size_t len, const char *segment,
                    uint64_t sample, uint64_t offset) {
  dora_header h = {0};
  h.kind = DORA_KIND_DATA;
  h.location = segment ? DORA_LOC_SHARED_MEMORY : DORA_LOC_INLINE;
  h.timestamp = timestamp;
  h.seq = seq;
  h.inline_length = segment ? 0 : len;
  h.segment = (char *)segment;
  h.sample = sample;
  h.shm_offset = offset;
  h.shm_length = len;
  h.layout = dora__layout_uint8(len);
  dora_buf b = {0};
  if (h.layout && dora__header_write(&b, &h) == 0) {
    bool with_payload = !segment && len > 0;
    send_frames(r->feed, source, strlen(source) + 1, b.data, b.len, with_payload ? data : NULL, len);
  } else {
    fail_at(__LINE__, "cannot encode a data message: %s", last_error());
  }
  dora__layout_free(h.layout);
  dora__buf_free(&b);
}

static void rx_feed_eos(rx_t *r, const char *source) {
  dora_buf b = {0};
  dora__eos_write(&b, 1);
  send_frames(r->feed, source, strlen(source) + 1, b.data, b.len, NULL, 0);
  dora__buf_free(&b);
}

/* A control message from the daemon, on the node's event topic. */
static void rx_feed_control(rx_t *r, const char *json) {
  send_frames(r->feed, r->ctx->event_topic, r->ctx->event_topic_len, json, strlen(json), NULL, 0);
}

/* Moves what was fed into the queues (inproc: everything sent is already there). */
static void rx_deliver(rx_t *r) {
  if (!readable(r->ctx->sub, 2000)) fail_at(__LINE__, "nothing arrived on the node's data socket");
  dora__drain(r->ctx);
}

/* The sample ids the node sends back to its senders now (flush), in one drop-token frame. */
static size_t rx_returned(rx_t *r, uint64_t *ids, size_t cap) {
  dora__flush_tokens(r->ctx);
  if (!readable(r->returns, 100)) return 0;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  size_t n = 0;
  if (zmq_msg_recv(&msg, r->returns, 0) >= 0) {
    dora_tokens t;
    if (dora__tokens_read(zmq_msg_data(&msg), zmq_msg_size(&msg), &t) == 0) {
      if (strcmp(t.receiver, "rx") != 0) fail_at(__LINE__, "drop tokens from \"%s\", expected \"rx\"", t.receiver);
      for (size_t i = 0; i < t.n_samples && n < cap; i++) ids[n++] = t.samples[i];
      dora__tokens_free(&t);
    } else {
      fail_at(__LINE__, "malformed drop tokens: %s", last_error());
    }
  }
  zmq_msg_close(&msg);
  return n;
}

/* ---- sender harness: a node with outputs; the check reads the wire and sends tokens ------ */

typedef struct {
  DoraContext *ctx;
  void *wire;   /* SUB ← the node's data socket (an XPUB, as in a node) */
  void *tokens; /* PUSH → the node's drop-token socket */
} tx_t;

/* One sent message, as its header describes it. */
typedef struct {
  bool ok;
  uint64_t id, seq, offset, length;
  char segment[256];
  uint8_t *data; /* where the sender wrote it */
} sent_t;

static bool tx_open(tx_t *t, const char *outputs, const char *subscribers) {
  memset(t, 0, sizeof *t);
  t->ctx = node_new("tx", "[]", outputs, subscribers);
  if (!t->ctx) return false;
  DoraContext *ctx = t->ctx;
  ctx->zctx = zmq_ctx_new();
  ctx->pub = ctx->zctx ? socket_in(ctx->zctx, ZMQ_XPUB, "inproc://out", NULL) : NULL;
  ctx->pull = ctx->pub ? socket_in(ctx->zctx, ZMQ_PULL, "inproc://drops", NULL) : NULL;
  t->wire = ctx->pull ? socket_in(ctx->zctx, ZMQ_SUB, NULL, "inproc://out") : NULL;
  t->tokens = t->wire ? socket_in(ctx->zctx, ZMQ_PUSH, NULL, "inproc://drops") : NULL;
  if (!t->tokens) return false;
  zmq_setsockopt(t->wire, ZMQ_SUBSCRIBE, "", 0);
  char subscription[8];
  return zmq_recv(ctx->pub, subscription, sizeof subscription, 0) == 1; /* it reached the XPUB: nothing sent is lost */
}

static void tx_close(tx_t *t) {
  if (t->wire) zmq_close(t->wire);
  if (t->tokens) zmq_close(t->tokens);
  free_dora_context(t->ctx);
  memset(t, 0, sizeof *t);
}

/* Sends len bytes on output through dora_allocate_output (written in place) and reads the message back. */
static sent_t tx_send_at(int line, tx_t *t, const char *output, size_t len) {
  sent_t s = {0};
  DoraOutputSample *o = dora_allocate_output(t->ctx, len);
  if (!o) {
    fail_at(line, "dora_allocate_output(%zu): %s", len, last_error());
    return s;
  }
  s.data = dora_output_sample_data(o);
  memset(s.data, 0x5a, len < 64 ? len : 64);
  if (dora_send_output_sample(t->ctx, output, strlen(output), o, NULL)) {
    fail_at(line, "dora_send_output_sample(%s): %s", output, last_error());
    return s;
  }
  zmq_msg_t topic, header;
  zmq_msg_init(&topic);
  zmq_msg_init(&header);
  if (zmq_msg_recv(&topic, t->wire, 0) < 0 || !zmq_msg_more(&topic) || zmq_msg_recv(&header, t->wire, 0) < 0) {
    fail_at(line, "the message on %s did not arrive", output);
  } else {
    dora_header h;
    if (dora__header_read(zmq_msg_data(&header), zmq_msg_size(&header), &h)) {
      fail_at(line, "the message on %s has a malformed header: %s", output, last_error());
    } else {
      if (h.location == DORA_LOC_SHARED_MEMORY) {
        s.ok = true;
        s.id = h.sample;
        s.seq = h.seq;
        s.offset = h.shm_offset;
        s.length = h.shm_length;
        snprintf(s.segment, sizeof s.segment, "%s", h.segment);
      } else if (len >= t->ctx->threshold) {
        fail_at(line, "a %zu-byte message on %s was not sent in shared memory", len, output);
      }
      dora__header_free(&h);
    }
    while (zmq_msg_more(&header)) { /* an inline payload */
      zmq_msg_close(&header);
      zmq_msg_init(&header);
      if (zmq_msg_recv(&header, t->wire, 0) < 0) break;
    }
  }
  zmq_msg_close(&topic);
  zmq_msg_close(&header);
  return s;
}
#define tx_send(t, output, len) tx_send_at(__LINE__, t, output, len)

/* Where a sample sits: the same segment and offset is the same memory. */
static bool same_place(const sent_t *a, const sent_t *b) { return a->ok && b->ok && strcmp(a->segment, b->segment) == 0 && a->offset == b->offset; }

/* Drop tokens from receiver for ids (and lost ranges), as a receiver sends them; applied at once. */
static void tx_tokens_at(int line, tx_t *t, const char *receiver, const uint64_t *ids, size_t n, const dora_lost *lost, size_t n_lost) {
  dora_buf b = {0};
  dora__tokens_write(&b, receiver, ids, n, lost, n_lost);
  zmq_send(t->tokens, b.data, b.len, 0);
  dora__buf_free(&b);
  if (!readable(t->ctx->pull, 2000)) fail_at(line, "the drop tokens did not arrive");
  dora__read_tokens(t->ctx);
}
#define tx_release(t, receiver, id)                 \
  do {                                              \
    uint64_t id_ = (id);                            \
    tx_tokens_at(__LINE__, t, receiver, &id_, 1, NULL, 0); \
  } while (0)

static DoraSharedMemoryStats stats_of(const DoraContext *ctx) {
  DoraSharedMemoryStats s;
  if (dora_shared_memory_stats(ctx, &s)) memset(&s, 0xff, sizeof s);
  return s;
}

/* =========================================================================================
 * Queues (events.c)
 * ========================================================================================= */

static void queue_newest_per_input(void) {
  DoraContext *ctx = node_new("rx", "[" INPUT("a", "src/a", 2) "," INPUT("b", "src/b", 10) "," INPUT("x", "src/x", 10) "]", "[]", "{}");
  REQUIRE(ctx);
  push(ctx, "a", 1);
  push(ctx, "b", 2);
  push(ctx, "a", 3);
  dora__close_input(ctx, (size_t)input_index(ctx, "x"));
  push(ctx, "a", 4); /* a holds 2: a:1 goes */
  CHECK_EQ(dora_dropped_messages(ctx, "a"), 1);
  CHECK_EQ(dora_dropped_messages(ctx, "b"), 0);
  CHECK_EQ(dora_dropped_messages(ctx, "nope"), 0);
  control(ctx, "{\"t\":\"stop\"}");
  push(ctx, "b", 5); /* after the stop, still in arrival order */
  CHECK_EVENTS(ctx, "b:2 a:3 closed:x a:4 STOP b:5");
  CHECK(dora_event_stream_ended(ctx));
  free_dora_context(ctx);
}

static void queue_deep_order_and_bound(void) {
  DoraContext *ctx = node_new("rx", "[" INPUT("a", "src/a", 1000) "]", "[]", "{}");
  REQUIRE(ctx);
  uint64_t *out = malloc(5000 * sizeof *out);
  REQUIRE(out);
  size_t n = 0;
  for (uint64_t i = 0; i < 5000; i++) { /* take one every third push: the head moves while the queue is full */
    push(ctx, "a", i);
    if (i % 3 == 0) {
      DoraEvent *ev = dora_next_event_timeout(ctx, 0);
      if (ev) out[n++] = read_dora_input_timestamp(ev);
      free_dora_event(ev);
    }
  }
  size_t kept = 0;
  for (DoraEvent *ev; (ev = dora_next_event_timeout(ctx, 0)); kept++) {
    out[n++] = read_dora_input_timestamp(ev);
    free_dora_event(ev);
  }
  CHECK_EQ(kept, 1000);
  size_t disorder = 0;
  for (size_t i = 1; i < n; i++) disorder += out[i] <= out[i - 1];
  CHECK_EQ(disorder, 0);
  size_t newest = 0;
  for (size_t i = 0; i < 1000 && i < n; i++) newest += out[n - 1000 + i] == 4000 + i;
  CHECK_EQ(newest, 1000);
  CHECK_EQ(dora_dropped_messages(ctx, "a"), 5000 - n);
  free(out);
  free_dora_context(ctx);
}

/* Through the drain: what arrives on the data socket, control messages and timers included. */
static void queue_drain_arrival_order(void) {
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 2) "," INPUT("b", "src/b", 10) "," TIMER_INPUT("tick", "dora/timer/millis/10", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    return;
  }
  const uint8_t bytes[3] = {7, 8, 9};
  rx_feed(&r, "src/a", 0, 1, bytes, 3, NULL, 0, 0);
  rx_feed(&r, "src/b", 0, 2, bytes, 3, NULL, 0, 0);
  rx_feed(&r, "src/a", 1, 3, bytes, 3, NULL, 0, 0);
  rx_feed(&r, "dora/timer/millis/10", 0, 4, NULL, 0, NULL, 0, 0);
  rx_feed(&r, "src/a", 2, 5, bytes, 3, NULL, 0, 0); /* a:1 goes */
  rx_feed_eos(&r, "src/b");
  rx_feed_control(&r, "{\"t\":\"stop\",\"cause\":\"MANUAL\"}");
  rx_deliver(&r);
  CHECK_EQ(dora_dropped_messages(r.ctx, "a"), 1);
  CHECK_EQ(dora_dropped_messages(r.ctx, "b"), 0);
  DoraEvent *first = dora_next_event_timeout(r.ctx, 0);
  REQUIRE(first);
  char *data = NULL;
  size_t len = 0;
  read_dora_input_data(first, &data, &len);
  CHECK_EQ(len, 3);
  CHECK(data && memcmp(data, bytes, 3) == 0);
  CHECK_STR(first->id, "b");
  free_dora_event(first);
  CHECK_EVENTS(r.ctx, "a:3 tick:4 a:5 closed:b STOP");
  rx_close(&r);
}

static void queue_unknown_inputs_ignored(void) {
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 10) "," INPUT("b", "src/b", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    return;
  }
  const uint8_t byte = 1;
  rx_feed(&r, "src/zzz", 0, 1, &byte, 1, NULL, 0, 0); /* no input has it */
  rx_feed(&r, "src/ab", 0, 2, &byte, 1, NULL, 0, 0);  /* a near miss */
  rx_feed(&r, "src", 0, 3, &byte, 1, NULL, 0, 0);
  rx_feed(&r, "src/a", 0, 4, &byte, 1, NULL, 0, 0);
  rx_feed_control(&r, "{\"t\":\"inputs-closed\",\"inputs\":[\"a\",\"nope\"]}");
  rx_feed(&r, "src/a", 1, 5, &byte, 1, NULL, 0, 0); /* a is closed */
  rx_feed(&r, "src/b", 0, 6, &byte, 1, NULL, 0, 0);
  rx_deliver(&r);
  CHECK_EVENTS(r.ctx, "a:4 closed:a b:6");
  CHECK_EQ(dora_dropped_messages(r.ctx, "a"), 0);
  CHECK_EQ(r.ctx->open_inputs, 1);
  rx_close(&r);
}

/* A message a full queue drops returns its sample to the sender at once; the others when freed. */
static void queue_drop_returns_sample(void) {
  dora_segment seg = {0};
  REQUIRE(dora__segment_create(prefix, 64 * 1024, &seg) == 0);
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 2) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    dora__segment_destroy(&seg);
    return;
  }
  for (int i = 0; i < 3; i++) {
    memset(seg.ptr + 64 * i, 10 + i, 8);
    rx_feed(&r, "src/a", (uint64_t)i, (uint64_t)(i + 1), NULL, 8, seg.name, 11 + (uint64_t)i, 64 * (uint64_t)i);
  }
  rx_deliver(&r);
  CHECK_EQ(dora_dropped_messages(r.ctx, "a"), 1);
  uint64_t ids[8];
  size_t n = rx_returned(&r, ids, 8);
  CHECK_EQ(n, 1);
  if (n >= 1) CHECK_EQ(ids[0], 11);
  CHECK_EQ(stats_of(r.ctx).mapped, 1); /* one mapping for every message of the segment */
  DoraEvent *e2 = dora_next_event_timeout(r.ctx, 0), *e3 = dora_next_event_timeout(r.ctx, 0);
  REQUIRE(e2 && e3);
  char *d2, *d3;
  size_t l2, l3;
  read_dora_input_data(e2, &d2, &l2);
  read_dora_input_data(e3, &d3, &l3);
  CHECK((uint8_t *)d2 != seg.ptr + 64 && d2 && d2[0] == 11 && l2 == 8); /* a read-only mapping of its own, same bytes */
  CHECK(d3 && d3[0] == 12 && l3 == 8);
  CHECK_EQ(rx_returned(&r, ids, 8), 0); /* held by the node's code */
  free_dora_event(e2);
  free_dora_event(e3);
  n = rx_returned(&r, ids, 8);
  CHECK_EQ(n, 2);
  if (n == 2) CHECK((ids[0] == 12 && ids[1] == 13) || (ids[0] == 13 && ids[1] == 12));
  rx_close(&r);
  dora__segment_destroy(&seg);
}

/* =========================================================================================
 * Segments and the receiver's mapping cache (shm.c)
 * ========================================================================================= */

static bool all_hex(const char *s) {
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
  return true;
}

static void segment_mode_and_names(void) {
  dora_segment a = {0}, b = {0};
  REQUIRE(dora__segment_create(prefix, 4096, &a) == 0);
  if (dora__segment_create(prefix, 4096, &b)) {
    fail_at(__LINE__, "second segment: %s", last_error());
    dora__segment_destroy(&a);
    return;
  }
  char path[320];
  snprintf(path, sizeof path, "/dev/shm/%s", a.name);
  struct stat st;
  CHECK(stat(path, &st) == 0);
  if ((st.st_mode & 0777) != 0600) fail_at(__LINE__, "%s has mode %03o, expected 0600", path, (unsigned)(st.st_mode & 0777));
  CHECK_EQ(st.st_size, 4096);
  size_t plen = strlen(prefix);
  CHECK(strncmp(a.name, prefix, plen) == 0 && strncmp(b.name, prefix, plen) == 0);
  CHECK(strcmp(a.name, b.name) != 0);
  CHECK(strlen(a.name) - plen >= 24);
  CHECK(all_hex(a.name + plen) && all_hex(b.name + plen));
  CHECK(dora__segment_name_valid(a.name));
  CHECK_EQ(count_segments(), 2);
  dora__segment_destroy(&a);
  dora__segment_destroy(&b);
  CHECK_EQ(count_segments(), 0);
}

static void segment_names_checked(void) {
  static const char *refused[] = {"passwd",      "../etc/passwd",   "dora-ts-../../etc/passwd", "dora-ts-x/../../etc/passwd", "/dev/shm/dora-ts-x",
                                  "dora-ts-a b", "dora-ts-x\n",     "",                         "dora-ts",                    "dora-ts-\xc3\xa9"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    if (dora__segment_name_valid(refused[i])) fail_at(__LINE__, "name \"%s\" is accepted", refused[i]);
  char longest[256];
  memset(longest, 'a', sizeof longest - 1);
  memcpy(longest, "dora-ts-", 8);
  longest[sizeof longest - 1] = 0;
  CHECK(!dora__segment_name_valid(longest));
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL;
  CHECK(dora__cache_view(&cache, "passwd", 0, 1, &m) != 0);
  CHECK_CONTAINS(dora_last_error(), "not a dora-ts segment name");
  CHECK(dora__cache_view(&cache, "../dev/shm/x", 0, 1, &m) != 0);
  CHECK_CONTAINS(dora_last_error(), "not a dora-ts segment name");
  char missing[256];
  snprintf(missing, sizeof missing, "%sdoes-not-exist", prefix);
  CHECK(dora__cache_view(&cache, missing, 0, 1, &m) != 0);
  CHECK_CONTAINS(dora_last_error(), "does not exist");
  CHECK(cache.head == NULL); /* nothing mapped, nothing cached */
  dora__cache_close(&cache);
}

static void segment_receiver_maps_same_memory(void) {
  dora_segment seg = {0};
  REQUIRE(dora__segment_create(prefix, 1 << 20, &seg) == 0);
  seg.ptr[1000] = 1, seg.ptr[1001] = 2, seg.ptr[1002] = 3;
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL, *again = NULL;
  if (dora__cache_view(&cache, seg.name, 1000, 3, &m)) {
    fail_at(__LINE__, "cache_view: %s", last_error());
    dora__segment_destroy(&seg);
    return;
  }
  CHECK_EQ(m->size, 1 << 20);
  CHECK(m->ptr != seg.ptr);
  CHECK(m->ptr[1000] == 1 && m->ptr[1001] == 2 && m->ptr[1002] == 3);
  seg.ptr[1000] = 42; /* same memory, not a copy */
  CHECK_EQ(m->ptr[1000], 42);
  char perms[8];
  CHECK_STR(perms_of(m->ptr, perms), "r--s"); /* the receiver's view is read-only */
  CHECK_STR(perms_of(seg.ptr, perms), "rw-s");
  CHECK(dora__cache_view(&cache, seg.name, 4096, 64, &again) == 0); /* cached: one mapping per segment */
  CHECK(again == m);
  CHECK_EQ(m->refs, 2);
  CHECK(dora__cache_view(&cache, seg.name, (1 << 20) - 2, 3, &again) != 0);
  CHECK_CONTAINS(dora_last_error(), "lies outside");
  CHECK(dora__cache_view(&cache, seg.name, (1 << 20) + 64, 0, &again) != 0);
  CHECK(dora__cache_view(&cache, seg.name, UINT64_MAX - 1, 4, &again) != 0); /* no overflow */
  CHECK(dora__cache_view(&cache, seg.name, 64, UINT64_MAX, &again) != 0);
  CHECK_EQ(m->refs, 2);
  dora__cache_unref(&cache, m);
  dora__cache_unref(&cache, m);
  dora__segment_destroy(&seg); /* unlinked: the receiver's mapping stays valid */
  CHECK_EQ(m->ptr[1000], 42);
  dora__cache_close(&cache);
  CHECK(cache.head == NULL);
}

/* =========================================================================================
 * The SIGBUS guard (guard.c): a receive mapping whose segment shrinks reads zeros
 * ========================================================================================= */

static bool shrink_segment(const char *name, off_t size) {
  char path[320];
  snprintf(path, sizeof path, "/%s", name);
  int fd = shm_open(path, O_RDWR, 0);
  if (fd < 0) return false;
  bool ok = ftruncate(fd, size) == 0;
  close(fd);
  return ok;
}

/* Reads every byte as a consumer would; volatile, so each read really touches the mapping. */
static uint64_t sum_bytes(const volatile uint8_t *p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += p[i];
  return sum;
}

static void guard_shrunk_segment_reads_zeros(void) {
  enum { SIZE = 256 * 1024, KEPT = 64 * 1024 };
  dora_segment seg = {0};
  REQUIRE(dora__segment_create(prefix, SIZE, &seg) == 0);
  memset(seg.ptr, 0x5a, SIZE);
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL, *again = NULL;
  if (dora__cache_view(&cache, seg.name, 0, SIZE, &m)) {
    fail_at(__LINE__, "cache_view: %s", last_error());
    dora__segment_destroy(&seg);
    return;
  }
  uint64_t faults = dora__guard_faults();
  CHECK(!dora__guard_damaged(m->guard));
  CHECK(shrink_segment(seg.name, KEPT));
  const volatile uint8_t *p = m->ptr;
  CHECK_EQ(p[200 * 1024], 0);      /* past the new end: zeros from that page on ... */
  CHECK_EQ(p[KEPT - 1], 0x5a);     /* ... the bytes still in the segment are untouched */
  CHECK_EQ(sum_bytes(p, SIZE), (uint64_t)KEPT * 0x5a);
  CHECK(dora__guard_damaged(m->guard));
  CHECK(dora__guard_faults() >= faults + 2); /* one fault at 200 KiB, one at the new end */
  char perms[8];
  CHECK_STR(perms_of(m->ptr, perms), "r--s");
  CHECK_STR(perms_of(m->ptr + KEPT, perms), "r--p"); /* anonymous zero pages, still read-only */
  /* a damaged mapping serves no new message: a fresh one is made, which checks the size now */
  CHECK(dora__cache_view(&cache, seg.name, 0, SIZE, &again) != 0);
  CHECK_CONTAINS(dora_last_error(), "lies outside the 65536-byte segment");
  if (dora__cache_view(&cache, seg.name, 64, 64, &again) == 0) {
    CHECK(again != m);
    CHECK_EQ(again->size, KEPT);
    CHECK_EQ(again->ptr[64], 0x5a);
    CHECK(!dora__guard_damaged(again->guard));
    dora__cache_unref(&cache, again);
  } else {
    fail_at(__LINE__, "cache_view of the shrunk segment: %s", last_error());
  }
  dora_buf names = {0};
  dora__cache_shrunk(&cache, &names);
  CHECK_EQ(names.len, strlen(seg.name) + 1);
  CHECK(names.len && memcmp(names.data, seg.name, names.len) == 0);
  names.len = 0;
  dora__cache_shrunk(&cache, &names); /* once per segment */
  CHECK_EQ(names.len, 0);
  dora__buf_free(&names);
  dora__cache_unref(&cache, m);
  dora__cache_close(&cache);
  CHECK(cache.head == NULL && cache.shrunk.data == NULL);
  dora__segment_destroy(&seg);
}

static void guard_reported_after_unmap(void) {
  dora_segment shrunk = {0};
  REQUIRE(dora__segment_create(prefix, 4096, &shrunk) == 0);
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL;
  if (dora__cache_view(&cache, shrunk.name, 0, 4096, &m)) {
    fail_at(__LINE__, "cache_view: %s", last_error());
    dora__segment_destroy(&shrunk);
    return;
  }
  CHECK(shrink_segment(shrunk.name, 0));
  CHECK_EQ(sum_bytes(m->ptr, 4096), 0);
  dora__cache_unref(&cache, m);
  /* 32 more idle mappings: the shrunk one, least recently used, is unmapped before any report */
  for (int i = 0; i < 32; i++) {
    dora_segment other = {0};
    dora_mapping *o = NULL;
    if (dora__segment_create(prefix, 4096, &other) || dora__cache_view(&cache, other.name, 0, 64, &o)) {
      fail_at(__LINE__, "segment %d: %s", i, last_error());
      dora__segment_destroy(&other);
      break;
    }
    dora__cache_unref(&cache, o);
    dora__segment_destroy(&other);
  }
  bool still_mapped = false;
  for (dora_mapping *k = cache.head; k; k = k->next) still_mapped |= strcmp(k->name, shrunk.name) == 0;
  CHECK(!still_mapped);
  dora_buf names = {0};
  dora__cache_shrunk(&cache, &names);
  CHECK_EQ(names.len, strlen(shrunk.name) + 1);
  CHECK(names.len && memcmp(names.data, shrunk.name, names.len) == 0);
  dora__buf_free(&names);
  dora__cache_close(&cache);
  dora__segment_destroy(&shrunk);
}

static void guard_registry_grows(void) {
  /* more mappings than a chunk of slots holds (256): the mapping read here sits in a later chunk */
  enum { DUMMIES = 300 };
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uint8_t *area = mmap(NULL, DUMMIES * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(area != MAP_FAILED);
  dora_guard *dummies[DUMMIES];
  for (size_t i = 0; i < DUMMIES; i++) dummies[i] = dora__guard_add(area + i * page, page);
  dora_segment seg = {0};
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL;
  if (dora__segment_create(prefix, 64 * 1024, &seg) == 0 && dora__cache_view(&cache, seg.name, 0, 64, &m) == 0) {
    CHECK(shrink_segment(seg.name, 0));
    CHECK_EQ(sum_bytes(m->ptr, 64 * 1024), 0);
    CHECK(dora__guard_damaged(m->guard));
    dora__cache_unref(&cache, m);
  } else {
    fail_at(__LINE__, "segment: %s", last_error());
  }
  for (size_t i = 0; i < DUMMIES; i++) CHECK(dummies[i] && !dora__guard_remove(dummies[i]));
  dora__cache_close(&cache);
  dora__segment_destroy(&seg);
  munmap(area, DUMMIES * page);
}

/* Threads that map, shrink, read and unmap at once: the registry is shared by all of them. */
static void *shrink_and_read(void *arg) {
  uintptr_t bad = 0;
  for (int i = 0; i < 25; i++) {
    dora_segment seg = {0};
    dora_segment_cache cache = {0};
    dora_mapping *m = NULL;
    if (dora__segment_create(prefix, 64 * 1024, &seg) || dora__cache_view(&cache, seg.name, 0, 64, &m)) {
      dora__segment_destroy(&seg);
      return (void *)(uintptr_t)1;
    }
    memset(seg.ptr, 1, 4096);
    bad += !shrink_segment(seg.name, 4096 * (uintptr_t)(arg != NULL));
    bad += sum_bytes(m->ptr, 64 * 1024) != (arg ? 4096u : 0u);
    bad += !dora__guard_damaged(m->guard);
    dora__cache_unref(&cache, m);
    dora__cache_close(&cache);
    dora__segment_destroy(&seg);
  }
  return (void *)bad;
}

static void guard_threads(void) {
  pthread_t threads[4];
  int started = 0;
  for (int i = 0; i < 4; i++) started += pthread_create(&threads[i], NULL, shrink_and_read, i % 2 ? (void *)threads : NULL) == 0;
  CHECK_EQ(started, 4);
  for (int i = 0; i < started; i++) {
    void *bad;
    pthread_join(threads[i], &bad);
    CHECK_EQ((uintptr_t)bad, 0);
  }
}

/*
 * Another SIGBUS goes where it went before the guard: each scenario runs in a fresh
 * process (this program again, CHECK_CORE_SIGBUS=<scenario>), where the guard installs
 * after the scenario's own handler. A shrunk receive mapping reads zeros there too.
 * Under AddressSanitizer the guard chains to ASan's handler in the other checks; with
 * ASAN_OPTIONS=allow_user_segv_handler=0 ASan would refuse it (then use handle_sigbus=0).
 */
static volatile sig_atomic_t handled;
static void exit_42(int sig, siginfo_t *info, void *context) {
  (void)sig, (void)info, (void)context;
  _exit(42);
}
static void count_signal(int sig) {
  (void)sig;
  handled++;
}

static int sigbus_scenario(const char *scenario) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core); /* the default action would dump core */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  if (strcmp(scenario, "handler") == 0) {
    sa.sa_sigaction = exit_42;
    sa.sa_flags = SA_SIGINFO;
  } else if (strcmp(scenario, "kill") == 0) {
    sa.sa_handler = count_signal;
  } else {
    sa.sa_handler = SIG_DFL;
  }
  if (sigaction(SIGBUS, &sa, NULL) != 0) return 2;
  dora_segment received = {0}, own = {0};
  dora_segment_cache cache = {0};
  dora_mapping *m = NULL;
  if (dora__segment_create(prefix, 8192, &received) || dora__cache_view(&cache, received.name, 0, 64, &m)) return 3; /* installs the guard */
  if (!shrink_segment(received.name, 0)) return 4;
  dora__segment_destroy(&received);
  if (sum_bytes(m->ptr, 8192) != 0) return 5;
  if (strcmp(scenario, "kill") == 0) {
    kill(getpid(), SIGBUS); /* sent, not a fault: the earlier handler's */
    dora__cache_unref(&cache, m);
    dora__cache_close(&cache);
    return handled == 1 ? 43 : 6;
  }
  /* a fault outside every receive mapping: the sender's own mapping of a shrunk segment */
  if (dora__segment_create(prefix, 8192, &own)) return 7;
  char path[320];
  snprintf(path, sizeof path, "/%s", own.name);
  if (!shrink_segment(own.name, 0) || shm_unlink(path) != 0) return 8;
  sum_bytes(own.ptr, 8192);
  return 0; /* survived: the guard took a fault that was not its own */
}

static int run_scenario(const char *scenario) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setenv("CHECK_CORE_SIGBUS", scenario, 1);
    execl("/proc/self/exe", "check-core", prefix, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

static void guard_chains_other_sigbus(void) {
  int status = run_scenario("handler");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 42) fail_at(__LINE__, "handler scenario: status %#x", status);
  status = run_scenario("kill");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 43) fail_at(__LINE__, "kill scenario: status %#x", status);
  status = run_scenario("default");
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS) fail_at(__LINE__, "default scenario: status %#x, expected killed by SIGBUS", status);
}

/* =========================================================================================
 * The sample pool and drop tokens (pool.c, send.c)
 * ========================================================================================= */

#define OUTPUTS "[\"both\",\"one\",\"other\",\"stream\",\"leave\"]"
#define SUBSCRIBERS                                                                                                      \
  "{\"both\":[\"r1\",\"r2\"],\"one\":[\"r1\"],\"other\":[\"r2\"],\"stream\":[\"fast\",\"slow\"],\"leave\":[\"crashed\",\"alive\"]}"
#define BIG (3u << 20) /* above any slab slot: a whole segment per sample */

#define OPEN_TX(t)                                                           \
  do {                                                                       \
    if (!tx_open(t, OUTPUTS, SUBSCRIBERS)) {                                 \
      fail_at(__LINE__, "sender harness: %s", last_error());                 \
      tx_close(t);                                                           \
      return;                                                                \
    }                                                                        \
  } while (0)

static void pool_reuse_after_every_holder(void) {
  tx_t t;
  OPEN_TX(&t);
  sent_t first = tx_send(&t, "both", 3000000);
  sent_t second = tx_send(&t, "one", 3000000);
  if (!first.ok || !second.ok) {
    tx_close(&t);
    return;
  }
  CHECK(!same_place(&first, &second)); /* first is still held */
  CHECK(first.id != second.id);
  tx_release(&t, "r1", first.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 2);
  CHECK_EQ(stats_of(t.ctx).free, 0);
  tx_release(&t, "r1", first.id); /* a duplicate token changes nothing */
  tx_release(&t, "r9", first.id); /* nor does one from a receiver that does not hold it */
  CHECK_EQ(stats_of(t.ctx).outstanding, 2);
  CHECK_EQ(stats_of(t.ctx).free, 0);
  tx_release(&t, "r2", first.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 1);
  CHECK_EQ(stats_of(t.ctx).free, 1);
  sent_t third = tx_send(&t, "both", 2500000);
  CHECK(same_place(&third, &first)); /* reused */
  CHECK(third.data == first.data);
  CHECK(third.id != first.id && third.id != second.id); /* under a new id */
  tx_release(&t, "r1", first.id); /* stale tokens cannot free it */
  tx_release(&t, "r2", first.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 2);
  sent_t fourth = tx_send(&t, "one", 3000000);
  CHECK(!same_place(&fourth, &third) && !same_place(&fourth, &second));
  uint64_t ids[3] = {second.id, third.id, fourth.id};
  tx_tokens_at(__LINE__, &t, "r1", ids, 3, NULL, 0); /* several in one frame */
  CHECK_EQ(stats_of(t.ctx).outstanding, 1);            /* third still waits for r2 */
  tx_release(&t, "r2", third.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  CHECK_EQ(stats_of(t.ctx).created, 3);
  tx_close(&t);
}

static void pool_steady_stream_lagging_receiver(void) {
  tx_t t;
  OPEN_TX(&t);
  uint64_t held[4];
  size_t n_held = 0;
  for (int i = 0; i < 1000; i++) {
    sent_t s = tx_send(&t, "stream", 4u << 20);
    if (!s.ok) break;
    tx_release(&t, "fast", s.id);
    held[n_held++] = s.id;
    if (n_held > 3) { /* the slow receiver lags three samples behind */
      tx_release(&t, "slow", held[0]);
      memmove(held, held + 1, --n_held * sizeof *held);
    }
  }
  DoraSharedMemoryStats st = stats_of(t.ctx);
  CHECK_LE(st.created, 5);
  CHECK_EQ(st.outstanding, 3);
  CHECK_LE(st.peak_outstanding, 4);
  CHECK(st.peak_outstanding >= 3);
  for (size_t i = 0; i < n_held; i++) tx_release(&t, "slow", held[i]);
  st = stats_of(t.ctx);
  CHECK_EQ(st.outstanding, 0);
  CHECK_EQ(st.free, st.created);
  tx_close(&t);
}

static void pool_receiver_leaves(void) {
  tx_t t;
  OPEN_TX(&t);
  for (int i = 0; i < 20; i++) tx_send(&t, "leave", 300000); /* above the slab sizes: whole segments */
  CHECK_EQ(stats_of(t.ctx).outstanding, 20);
  control(t.ctx, "{\"t\":\"peer-exited\",\"node\":\"crashed\"}");
  CHECK_EQ(stats_of(t.ctx).outstanding, 20); /* alive still holds them */
  control(t.ctx, "{\"t\":\"peer-exited\",\"node\":\"alive\"}");
  DoraSharedMemoryStats st = stats_of(t.ctx);
  CHECK_EQ(st.outstanding, 0);
  CHECK_EQ(st.free, 20); /* as many as were in flight are kept for reuse */
  CHECK_EQ(st.created, 20);
  CHECK_EQ(count_segments(), 20);
  sent_t s = tx_send(&t, "leave", 300000); /* every subscriber has left: free at once, nothing new */
  CHECK(s.ok);
  st = stats_of(t.ctx);
  CHECK_EQ(st.outstanding, 0);
  CHECK_EQ(st.created, 20);
  sent_t other = tx_send(&t, "one", 300000); /* r1 is still there */
  CHECK_EQ(stats_of(t.ctx).outstanding, 1);
  CHECK_EQ(stats_of(t.ctx).created, 20);
  tx_release(&t, "r1", other.id);
  tx_close(&t);
  CHECK_EQ(count_segments(), 0); /* a closing sender unlinks its free segments */
}

static void pool_free_kept_for_reuse(void) {
  tx_t t;
  OPEN_TX(&t);
  sent_t a[5], b[5];
  for (int i = 0; i < 5; i++) a[i] = tx_send(&t, "one", BIG);
  for (int i = 0; i < 5; i++) tx_release(&t, "r1", a[i].id);
  CHECK_EQ(stats_of(t.ctx).free, 5);
  for (int i = 0; i < 5; i++) b[i] = tx_send(&t, "one", BIG);
  CHECK_EQ(stats_of(t.ctx).created, 5);
  size_t reused = 0;
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 5; k++) reused += same_place(&b[i], &a[k]);
  CHECK_EQ(reused, 5);
  for (int i = 0; i < 5; i++) tx_release(&t, "r1", b[i].id);
  tx_close(&t);
}

/* Small samples are slots of shared slab segments, 64-byte aligned; a returned slot is reused. */
static void pool_slab_slots(void) {
  tx_t t;
  OPEN_TX(&t);
  enum { N = 300 };
  static sent_t s[N];
  for (int i = 0; i < N; i++) s[i] = tx_send(&t, "one", 4096);
  CHECK_EQ(stats_of(t.ctx).created, 2); /* 256 slots of 4 KiB per 1 MiB slab */
  size_t distinct = 0, aligned = 0;
  for (int i = 0; i < N; i++) {
    bool seen = false;
    for (int k = 0; k < i && !seen; k++) seen = same_place(&s[i], &s[k]);
    distinct += !seen;
    aligned += s[i].offset % 64 == 0 && s[i].offset + 4096 <= (1u << 20);
  }
  CHECK_EQ(distinct, N);
  CHECK_EQ(aligned, N);
  CHECK_EQ(stats_of(t.ctx).outstanding, N);
  for (int i = 0; i < N; i++) tx_release(&t, "r1", s[i].id);
  sent_t again = tx_send(&t, "one", 4096); /* (the threshold is 4096: smaller ones go inline) */
  CHECK_EQ(stats_of(t.ctx).created, 2); /* a returned slot is reused */
  bool reused = false;
  for (int i = 0; i < N && !reused; i++) reused = same_place(&again, &s[i]);
  CHECK(reused);
  sent_t small = tx_send(&t, "one", 5000); /* another size class (8 KiB slots): a slab of its own */
  CHECK_EQ(stats_of(t.ctx).created, 3);
  tx_release(&t, "r1", small.id);
  size_t before = count_segments();
  tx_close(&t); /* the slab holding the outstanding slot stays for the daemon to remove */
  CHECK_EQ(count_segments(), 1);
  CHECK(before >= 1);
  DIR *d = opendir("/dev/shm"); /* as the daemon would at the end of the run */
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
}

static void pool_lost_ranges_release(void) {
  tx_t t;
  OPEN_TX(&t);
  sent_t s[3];
  for (int i = 0; i < 3; i++) s[i] = tx_send(&t, "one", BIG);
  sent_t o = tx_send(&t, "other", BIG);
  CHECK(s[1].seq == s[0].seq + 1 && s[2].seq == s[1].seq + 1);
  dora_lost elsewhere = {(char *)"other", s[0].seq, s[1].seq};
  tx_tokens_at(__LINE__, &t, "r1", NULL, 0, &elsewhere, 1); /* r1 does not hold "other"; "one" is another output */
  CHECK_EQ(stats_of(t.ctx).outstanding, 4);
  dora_lost lost = {(char *)"one", s[0].seq, s[1].seq};
  tx_tokens_at(__LINE__, &t, "r1", NULL, 0, &lost, 1); /* a receiver found them lost */
  CHECK_EQ(stats_of(t.ctx).outstanding, 2);
  tx_release(&t, "r1", s[2].id);
  tx_release(&t, "r2", o.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  tx_close(&t);
}

static void pool_stats(void) {
  tx_t t;
  OPEN_TX(&t);
  DoraSharedMemoryStats st = stats_of(t.ctx);
  CHECK(st.created == 0 && st.outstanding == 0 && st.peak_outstanding == 0 && st.free == 0 && st.mapped == 0);
  CHECK(dora_shared_memory_stats(NULL, &st) != 0);
  CHECK(dora_shared_memory_stats(t.ctx, NULL) != 0);
  tx_send(&t, "one", 100); /* below the threshold: inline, no segment */
  CHECK_EQ(stats_of(t.ctx).created, 0);
  sent_t a = tx_send(&t, "one", BIG), b = tx_send(&t, "both", BIG), c = tx_send(&t, "other", BIG);
  st = stats_of(t.ctx);
  CHECK_EQ(st.created, 3);
  CHECK_EQ(st.outstanding, 3);
  CHECK_EQ(st.peak_outstanding, 3);
  CHECK_EQ(st.free, 0);
  tx_release(&t, "r1", a.id);
  tx_release(&t, "r2", c.id);
  st = stats_of(t.ctx);
  CHECK_EQ(st.outstanding, 1);
  CHECK_EQ(st.peak_outstanding, 3);
  CHECK_EQ(st.free, 2);
  DoraOutputSample *o = dora_allocate_output(t.ctx, BIG); /* being written: neither free nor outstanding */
  REQUIRE(o);
  st = stats_of(t.ctx);
  CHECK_EQ(st.created, 3);
  CHECK_EQ(st.free, 1);
  CHECK_EQ(st.outstanding, 1);
  dora_discard_output_sample(t.ctx, o); /* given back unsent */
  CHECK_EQ(stats_of(t.ctx).free, 2);
  sent_t d = tx_send(&t, "both", BIG);
  st = stats_of(t.ctx);
  CHECK_EQ(st.created, 3);
  CHECK_EQ(st.outstanding, 2);
  CHECK_EQ(st.free, 1);
  CHECK_EQ(st.peak_outstanding, 3);
  uint64_t ids[2] = {b.id, d.id};
  tx_tokens_at(__LINE__, &t, "r1", ids, 2, NULL, 0);
  tx_tokens_at(__LINE__, &t, "r2", ids, 2, NULL, 0);
  st = stats_of(t.ctx);
  CHECK_EQ(st.outstanding, 0);
  CHECK_EQ(st.free, 3);
  CHECK_EQ(st.mapped, 0);
  tx_close(&t);
}

/* =========================================================================================
 * Taps (tap.c) and the observability counters (stats.h, stats.c)
 * ========================================================================================= */

/* The node's counters as dora_stats_json gives them (parsed; free with dora__json_free). */
static dora_json *stats_json(const DoraContext *ctx) {
  char text[4096];
  int64_t n = dora_stats_json(ctx, text, sizeof text);
  if (n < 0 || (size_t)n >= sizeof text) return NULL;
  return dora__json_parse(text, (size_t)n);
}

/* A counter of stats_json: section ("outputs"/"inputs"), port, field; -1 when absent. */
static double stat_of(const DoraContext *ctx, const char *section, const char *port, const char *field) {
  dora_json *j = stats_json(ctx);
  const dora_json *v = j ? dora__json_get(dora__json_get(dora__json_get(j, section), port), field) : NULL;
  double out = v && v->type == DJ_NUMBER ? v->number : -1;
  dora__json_free(j);
  return out;
}

static void tap_holds_until_it_leaves(void) {
  tx_t t;
  OPEN_TX(&t);
  /* a tap of "one" (not among its configured subscribers) and of an output the node does not have */
  control(t.ctx, "{\"t\":\"node-restarted\",\"node\":\"dora/tap/1\",\"first\":true,\"outputs\":[\"one\",\"nope\"]}");
  sent_t a = tx_send(&t, "one", BIG);
  tx_release(&t, "r1", a.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 1); /* the tap holds it */
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "held"), 1);
  tx_release(&t, "dora/tap/1", a.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "held"), 0);
  sent_t o = tx_send(&t, "other", BIG); /* not tapped: r2 alone holds it */
  tx_release(&t, "r2", o.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  /* what it missed before connecting comes back as a lost range */
  sent_t b = tx_send(&t, "one", BIG), c = tx_send(&t, "one", BIG);
  uint64_t ids[2] = {b.id, c.id};
  tx_tokens_at(__LINE__, &t, "r1", ids, 2, NULL, 0);
  dora_lost lost = {(char *)"one", b.seq, b.seq};
  tx_tokens_at(__LINE__, &t, "dora/tap/1", NULL, 0, &lost, 1);
  CHECK_EQ(stats_of(t.ctx).outstanding, 1);
  /* it leaves holding c: released at once, and it holds nothing sent later */
  control(t.ctx, "{\"t\":\"peer-exited\",\"node\":\"dora/tap/1\"}");
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  sent_t d = tx_send(&t, "one", BIG);
  tx_release(&t, "r1", d.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  CHECK_EQ(t.ctx->outputs[1].n_taps, 0);
  /* a second join of the same tap id counts once; a restart of a configured subscriber is not a tap */
  control(t.ctx, "{\"t\":\"node-restarted\",\"node\":\"dora/tap/2\",\"first\":true,\"outputs\":[\"one\"]}");
  control(t.ctx, "{\"t\":\"node-restarted\",\"node\":\"dora/tap/2\",\"first\":true,\"outputs\":[\"one\"]}");
  control(t.ctx, "{\"t\":\"node-restarted\",\"node\":\"r1\"}");
  CHECK_EQ(t.ctx->outputs[1].n_taps, 1);
  sent_t e = tx_send(&t, "one", BIG);
  tx_release(&t, "r1", e.id);
  tx_release(&t, "dora/tap/2", e.id);
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "messages"), 5);
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "bytes"), 5.0 * BIG);
  tx_close(&t); /* the tap's name is freed with the context (ASan build) */
}

static void tap_that_stops_reading_is_bounded(void) {
  tx_t t;
  OPEN_TX(&t);
  control(t.ctx, "{\"t\":\"node-restarted\",\"node\":\"dora/tap/9\",\"first\":true,\"outputs\":[\"one\"]}");
  sent_t first = {0};
  for (int i = 0; i < 40; i++) { /* r1 reads everything, the tap nothing */
    sent_t s = tx_send(&t, "one", 300000);
    if (i == 0) first = s;
    tx_release(&t, "r1", s.id);
    CHECK_LE(stats_of(t.ctx).outstanding, 8);
  }
  CHECK_EQ(stats_of(t.ctx).outstanding, 8); /* the tap keeps its 8 newest */
  CHECK_LE(stats_of(t.ctx).created, 9);
  CHECK_EQ(t.ctx->outputs[1].taps[0].held, 8);
  tx_release(&t, "dora/tap/9", first.id); /* a late token for a sample it lost changes nothing */
  CHECK_EQ(stats_of(t.ctx).outstanding, 8);
  sent_t last = tx_send(&t, "one", 300000);
  tx_release(&t, "r1", last.id);
  tx_release(&t, "dora/tap/9", last.id); /* it reads again */
  CHECK_EQ(t.ctx->outputs[1].taps[0].held, 7);
  CHECK_EQ(stats_of(t.ctx).outstanding, 7);
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "held"), 7);
  control(t.ctx, "{\"t\":\"peer-exited\",\"node\":\"dora/tap/9\"}");
  CHECK_EQ(stats_of(t.ctx).outstanding, 0);
  CHECK_EQ(stat_of(t.ctx, "outputs", "one", "held"), 0);
  tx_close(&t);
}

static void stats_receiver_counters(void) {
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 2) "," INPUT("b", "src/b", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    return;
  }
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "messages"), 0);
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "latencyP50Us"), -1); /* nothing arrived: no latency */
  uint64_t now = dora__wall_ns();
  for (uint64_t i = 0; i < 5; i++) rx_feed(&r, "src/a", i, now - 5000000, "abcdefgh", 8, NULL, 0, 0); /* sent 5 ms ago */
  rx_feed(&r, "src/b", 0, now - 200000, "xy", 2, NULL, 0, 0);                                         /* 200 µs ago */
  rx_deliver(&r);
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "messages"), 5);
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "bytes"), 40);
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "dropped"), 3); /* a queue of 2 */
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "queued"), 2);
  CHECK_EQ(stat_of(r.ctx, "inputs", "b", "queued"), 1);
  double p50 = stat_of(r.ctx, "inputs", "a", "latencyP50Us"), p99b = stat_of(r.ctx, "inputs", "b", "latencyP99Us");
  if (!(p50 >= 5000 * 0.8 && p50 <= 5000 * 1.4)) fail_at(__LINE__, "p50 latency of a is %.0f µs, expected about 5000", p50);
  if (!(p99b >= 200 * 0.8 && p99b <= 200 * 1.4 + 100)) fail_at(__LINE__, "p99 latency of b is %.0f µs, expected about 200", p99b);
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "latencyCount"), 5);
  free(take_all(r.ctx));
  CHECK_EQ(stat_of(r.ctx, "inputs", "a", "queued"), 0);
  /* the buckets: exact below 4 µs, then 4 per power of two, monotonic, bounded */
  CHECK_EQ(dora__latency_bucket(0), 0);
  CHECK_EQ(dora__latency_bucket(3), 3);
  CHECK_EQ(dora__latency_bucket(4), 4);
  CHECK_EQ(dora__latency_bucket(7), 7);
  CHECK_EQ(dora__latency_bucket(8), 8);
  CHECK_EQ(dora__latency_bucket(UINT64_MAX / 2), DORA_LATENCY_BUCKETS - 1);
  int last = 0;
  for (uint64_t us = 1; us < (1ull << 30); us = us * 9 / 8 + 1) {
    int b = dora__latency_bucket(us);
    if (b < last) fail_at(__LINE__, "bucket of %llu µs is %d, below %d", (unsigned long long)us, b, last);
    last = b;
  }
  CHECK(dora_stats_json(NULL, NULL, 0) < 0);
  rx_close(&r);
}

/* =========================================================================================
 * Mapping references (record.c)
 * ========================================================================================= */

enum { R_EVENT = 16, R_PAYLOAD_ADDRESS = 24, R_MAPPING = 40, R_MAPPING_ADDRESS = 48, R_MAPPING_LENGTH = 56 }; /* dora_next_event_record */

static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* One shared-memory message through the record path: the event, its mapping and where it was mapped. */
static bool record_of_shm(rx_t *r, dora_segment *seg, uint64_t sample, DoraEvent **ev, void **mapping, const uint8_t **base, int line) {
  rx_feed(r, "src/a", sample, sample, NULL, 16, seg->name, sample, 64);
  rx_deliver(r);
  uint8_t record[1024];
  int64_t n = dora_next_event_record(r->ctx, record, sizeof record);
  if (n <= 0 || record[0] != DoraEventType_Input || !(record[1] & 1)) {
    fail_at(line, "no shared-memory record (%lld): %s", (long long)n, last_error());
    return false;
  }
  *ev = (DoraEvent *)(uintptr_t)rd64(record + R_EVENT);
  *mapping = (void *)(uintptr_t)rd64(record + R_MAPPING);
  *base = (const uint8_t *)(uintptr_t)rd64(record + R_MAPPING_ADDRESS);
  if (rd64(record + R_PAYLOAD_ADDRESS) != rd64(record + R_MAPPING_ADDRESS) + 64 || rd64(record + R_MAPPING_LENGTH) != seg->size)
    fail_at(line, "the record's payload is not at offset 64 of its %zu-byte mapping", seg->size);
  return true;
}

static void sweep_cache(DoraContext *ctx) { /* unmaps every mapping nobody references */
  pthread_mutex_lock(&ctx->lock);
  dora__cache_close(&ctx->cache);
  pthread_mutex_unlock(&ctx->lock);
}

static void mapping_retain_release(void) {
  dora_segment seg = {0};
  REQUIRE(dora__segment_create(prefix, 64 * 1024, &seg) == 0);
  memset(seg.ptr + 64, 0x33, 16);
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    dora__segment_destroy(&seg);
    return;
  }
  DoraEvent *ev;
  void *mapping;
  const uint8_t *base;
  if (record_of_shm(&r, &seg, 21, &ev, &mapping, &base, __LINE__)) {
    CHECK(dora_mapping_retain(r.ctx, mapping) == 0);
    CHECK(dora_mapping_retain(NULL, mapping) != 0);
    free_dora_event(ev); /* its last event: the sample goes back, the mapping stays */
    uint64_t ids[4];
    size_t n = rx_returned(&r, ids, 4);
    CHECK_EQ(n, 1);
    if (n) CHECK_EQ(ids[0], 21);
    sweep_cache(r.ctx);
    CHECK_EQ(stats_of(r.ctx).mapped, 1);
    CHECK_EQ(base[64], 0x33);
    seg.ptr[64] = 0x44; /* still the sender's memory */
    CHECK_EQ(base[64], 0x44);
    dora_mapping_release(r.ctx, mapping);
    sweep_cache(r.ctx);
    CHECK_EQ(stats_of(r.ctx).mapped, 0);
  }
  /* without a reference, a freed event's mapping goes with the sweep */
  if (record_of_shm(&r, &seg, 22, &ev, &mapping, &base, __LINE__)) {
    CHECK_EQ(stats_of(r.ctx).mapped, 1);
    free_dora_event(ev);
    sweep_cache(r.ctx);
    CHECK_EQ(stats_of(r.ctx).mapped, 0);
  }
  rx_close(&r);
  dora__segment_destroy(&seg);
}

/* Failing calls record a code of the error catalogue beside their message (dora_last_error_code, dora_error_name), and
   dora_init_context / dora_join_dataflow hand it over with the message. */
static void errors_codes(void) {
  CHECK_STR(dora_error_name(DORA_E_OK), "OK");
  CHECK_STR(dora_error_name(DORA_E_UNDECLARED_OUTPUT), "UNDECLARED_OUTPUT");
  CHECK(dora_error_name(-1) == NULL);
  CHECK(dora_error_name(100000) == NULL);

  /* sending on an output the node did not declare */
  DoraContext *ctx = node_new("tx", "[]", "[\"out\"]", "{}");
  if (!ctx) return;
  CHECK_EQ(dora_send_output(ctx, "nope", 4, "x", 1), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_UNDECLARED_OUTPUT);
  CHECK_CONTAINS(dora_last_error(), "has no output \"nope\" (declared outputs: out)");
  /* a log level that does not exist, and a parameter that is not there */
  CHECK_EQ(dora_log(ctx, "loud", 4, "x", 1), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_INVALID_ARGUMENT);
  /* log fields that are not one JSON object are refused here, not dropped by the daemon */
  CHECK_EQ(dora_log_with_fields(ctx, "info", 4, "x", 1, NULL, 0, "[1]", 3), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_INVALID_ARGUMENT);
  CHECK_CONTAINS(dora_last_error(), "fields_json must be the text of one JSON object");
  CHECK_EQ(dora_log_with_fields(ctx, "info", 4, "x", 1, NULL, 0, "{\"a\":", 5), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_INVALID_ARGUMENT);
  DoraMetadata *m = dora_metadata_new();
  int64_t v;
  CHECK_EQ(dora_metadata_get_int(m, "missing", &v), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_PARAMETER);
  dora_metadata_free(m);
  free_dora_context(ctx);

  /* no context at all */
  uint8_t record[128];
  CHECK_EQ(dora_next_event_record(NULL, record, sizeof record), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_NO_CONTEXT);
  char error[256] = "";
  int code = -1;
  CHECK_EQ(dora_join_dataflow(NULL, error, sizeof error, &code), -1);
  CHECK_EQ(code, DORA_E_NO_CONTEXT);
  CHECK_CONTAINS(error, "no open context");

  /* configurations a node refuses: not JSON, another protocol version, a missing field */
  code = -1;
  CHECK(dora_init_context("{not json", error, sizeof error, &code) == NULL);
  CHECK_EQ(code, DORA_E_CONFIG);
  CHECK_EQ(dora_last_error_code(), DORA_E_CONFIG);
  CHECK_CONTAINS(error, DORA_NODE_CONFIG_ENV " is not valid JSON: invalid JSON at byte");
  CHECK(dora_init_context("{\"protocolVersion\":99}", error, sizeof error, &code) == NULL);
  CHECK_EQ(code, DORA_E_PROTOCOL_VERSION);
  CHECK(dora_init_context("{\"protocolVersion\":1}", error, sizeof error, NULL) == NULL); /* out_code may be NULL */
  CHECK_EQ(dora_last_error_code(), DORA_E_CONFIG);
  CHECK_CONTAINS(error, "lacks required fields");

  /* a frame that is not a dora-ts message */
  const uint8_t junk[] = "XORA\x01\x00";
  const uint8_t *frames[] = {junk};
  size_t lens[] = {sizeof junk - 1};
  DoraEvent *ev = NULL;
  bool eos = false;
  CHECK_EQ(dora__decode_frames(frames, lens, 1, &ev, &eos), -1);
  CHECK_EQ(dora_last_error_code(), DORA_E_MALFORMED_MESSAGE);
  CHECK_CONTAINS(dora_last_error(), "bad magic");
}

/* A retained mapping outlives its context (and its segment's name): released last, it frees the context. */
/* dora_wait (for bindings without an event loop): times out, is interrupted, wakes when a message arrives. */
static void wait_times_out_wakes_and_interrupts(void) {
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    return;
  }
  DoraContext *ctx = r.ctx;
  size_t size = sizeof ctx->sub_fd;
  CHECK(zmq_getsockopt(ctx->sub, ZMQ_FD, &ctx->sub_fd, &size) == 0);
  ctx->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int fds[2] = {-1, -1};
  CHECK_EQ(dora_wait_descriptors(ctx, fds, 2), 1); /* no outputs: no drop-token socket */
  CHECK_EQ(fds[0], ctx->sub_fd);
  dora__drain(ctx); /* found empty: the descriptor is quiet until something arrives */
  int64_t t0 = dora__now_ms();
  CHECK_EQ(dora_wait(ctx, 60), 0);
  CHECK(dora__now_ms() - t0 >= 50);
  dora_interrupt_wait(ctx);
  t0 = dora__now_ms();
  CHECK_EQ(dora_wait(ctx, 5000), 0);
  CHECK(dora__now_ms() - t0 < 1000);
  rx_feed(&r, "src/a", 0, 1, "x", 1, NULL, 0, 0);
  t0 = dora__now_ms();
  CHECK_EQ(dora_wait(ctx, 5000), 1);
  CHECK(dora__now_ms() - t0 < 1000);
  rx_close(&r);
}

static void mapping_outlives_context(void) {
  dora_segment seg = {0};
  REQUIRE(dora__segment_create(prefix, 64 * 1024, &seg) == 0);
  memset(seg.ptr + 64, 0x55, 16);
  rx_t r;
  if (!rx_open(&r, "[" INPUT("a", "src/a", 10) "]")) {
    fail_at(__LINE__, "receiver harness: %s", last_error());
    rx_close(&r);
    dora__segment_destroy(&seg);
    return;
  }
  DoraEvent *ev;
  void *mapping;
  const uint8_t *base;
  bool ok = record_of_shm(&r, &seg, 31, &ev, &mapping, &base, __LINE__);
  if (ok) {
    CHECK(dora_mapping_retain(r.ctx, mapping) == 0);
    free_dora_event(ev);
  }
  DoraContext *ctx = r.ctx;
  rx_close(&r);                 /* free_dora_context */
  dora__segment_destroy(&seg);  /* unlinked and unmapped by the sender */
  if (ok) {
    CHECK_EQ(base[64], 0x55);   /* the receiver's mapping is still there */
    dora_mapping_release(ctx, mapping); /* the last reference: the context goes (ASan checks it) */
  }
}


/* =========================================================================================
 * Other machines (remote.c): TCP with CURVE, a ZAP handler admitting the dataflow's keys
 * ========================================================================================= */

/* Writes a fresh CURVE key pair as the daemon does (JSON, mode `mode`); public key into pub. */
static bool key_file(const char *path, mode_t mode, char pub[41]) {
  char sec[41];
  if (zmq_curve_keypair(pub, sec)) return false;
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) return false;
  fchmod(fd, mode);
  char text[160];
  int n = snprintf(text, sizeof text, "{\"publicKey\":\"%s\",\"secretKey\":\"%s\"}\n", pub, sec);
  bool ok = write(fd, text, (size_t)n) == n;
  close(fd);
  return ok;
}

/* A receiver of tx/out at endpoint on another machine, with the keys in key (NULL: server key unknown). */
static DoraContext *remote_rx(const char *id, const char *endpoint, const char *key, const char *server_key) {
  char inputs[512], extra[1024];
  snprintf(inputs, sizeof inputs,
           "[{\"id\":\"in\",\"source\":\"tx/out\",\"endpoint\":\"%s\",\"topic\":\"tx/out\\u0000\",\"queueSize\":10,\"dropEndpoint\":null}]", endpoint);
  snprintf(extra, sizeof extra, ",\"remote\":{\"keyFile\":\"%s\",\"endpoint\":null,\"clientKeys\":[],\"subscribers\":{},\"servers\":{\"%s\":\"%s\"}}", key,
           endpoint, server_key);
  DoraContext *ctx = node_new_extra(id, inputs, "[]", "{}", extra);
  if (!ctx) return NULL;
  ctx->zctx = zmq_ctx_new();
  ctx->sub = ctx->zctx ? zmq_socket(ctx->zctx, ZMQ_SUB) : NULL;
  int zero = 0;
  if (ctx->sub) zmq_setsockopt(ctx->sub, ZMQ_LINGER, &zero, sizeof zero);
  if (!ctx->sub || dora__remote_open(ctx) || dora__connect_inputs(ctx)) {
    fail_at(__LINE__, "receiver %s: %s", id, last_error());
    free_dora_context(ctx);
    return NULL;
  }
  return ctx;
}

static void remote_curve_tcp(void) {
  char dir[] = "/tmp/check-core-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  char sender_key[96], rx_key[96], stranger_key[96], open_key[96];
  snprintf(sender_key, sizeof sender_key, "%s/sender.key", dir);
  snprintf(rx_key, sizeof rx_key, "%s/rx.key", dir);
  snprintf(stranger_key, sizeof stranger_key, "%s/stranger.key", dir);
  snprintf(open_key, sizeof open_key, "%s/open.key", dir);
  char sender_pub[41], rx_pub[41], stranger_pub[41], open_pub[41];
  bool keys = key_file(sender_key, 0600, sender_pub) && key_file(rx_key, 0600, rx_pub) && key_file(stranger_key, 0600, stranger_pub) &&
              key_file(open_key, 0644, open_pub);
  DoraContext *tx = NULL, *rx = NULL, *stranger = NULL;
  void *raw_zctx = NULL, *raw = NULL;
  if (!keys) {
    fail_at(__LINE__, "cannot write key files in %s", dir);
    goto out;
  }
  /* a key file others can read is refused, naming it */
  char extra[1024];
  snprintf(extra, sizeof extra, ",\"remote\":{\"keyFile\":\"%s\",\"endpoint\":null,\"clientKeys\":[],\"subscribers\":{},\"servers\":{}}", open_key);
  DoraContext *careless = node_new_extra("careless", "[]", "[]", "{}", extra);
  if (careless) {
    CHECK(dora__remote_open(careless) != 0);
    CHECK_CONTAINS(last_error(), "others can read it");
    CHECK_CONTAINS(last_error(), open_key);
    free_dora_context(careless);
  }
  /* the sender: subscribers rx (on another machine) and local (on this one) */
  snprintf(extra, sizeof extra,
           ",\"remote\":{\"keyFile\":\"%s\",\"endpoint\":\"tcp://127.0.0.1:*\",\"clientKeys\":[\"%s\"],\"subscribers\":{\"out\":[\"rx\"]},\"servers\":{}}",
           sender_key, rx_pub);
  tx = node_new_extra("tx", "[]", "[\"out\"]", "{\"out\":[\"rx\",\"local\"]}", extra);
  if (!tx) goto out;
  tx->zctx = zmq_ctx_new();
  tx->pub = socket_in(tx->zctx, ZMQ_XPUB, "inproc://out", NULL);
  tx->pull = socket_in(tx->zctx, ZMQ_PULL, "inproc://drops", NULL);
  tx->sub = socket_in(tx->zctx, ZMQ_SUB, NULL, NULL);
  if (!tx->pub || !tx->pull || !tx->sub || dora__remote_open(tx)) {
    fail_at(__LINE__, "sender: %s", last_error());
    goto out;
  }
  char endpoint[128];
  size_t endpoint_len = sizeof endpoint;
  REQUIRE(zmq_getsockopt(tx->rpub, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_len) == 0);
  CHECK_EQ(tx->outputs[0].local_subscribers, 1);
  rx = remote_rx("rx", endpoint, rx_key, sender_pub);
  stranger = remote_rx("stranger", endpoint, stranger_key, sender_pub); /* right server key, its own key not admitted */
  raw_zctx = zmq_ctx_new();
  raw = socket_in(raw_zctx, ZMQ_SUB, NULL, endpoint); /* no keys at all */
  if (!rx || !stranger || !raw) goto out;
  zmq_setsockopt(raw, ZMQ_SUBSCRIBE, "", 0);
  /* the start barrier's view: one subscription (rx's) reaches the TCP XPUB, and only that one */
  int subscriptions = 0;
  for (int64_t until = dora__now_ms() + 5000; dora__now_ms() < until && subscriptions < 1;) {
    char frame[64];
    if (readable(tx->rpub, 100) && zmq_recv(tx->rpub, frame, sizeof frame, ZMQ_DONTWAIT) > 0 && frame[0] == 1) subscriptions++;
  }
  CHECK_EQ(subscriptions, 1);
  for (int64_t until = dora__now_ms() + 500; dora__now_ms() < until;) {
    char frame[64];
    if (readable(tx->rpub, 50) && zmq_recv(tx->rpub, frame, sizeof frame, ZMQ_DONTWAIT) > 0 && frame[0] == 1) subscriptions++;
  }
  CHECK_EQ(subscriptions, 1);
  /* an inline message, then one in shared memory (held by local only; rx gets its bytes) */
  uint8_t big[65536];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + 3);
  CHECK(dora_send_output(tx, "out", 3, "hello", 5) == 0);
  CHECK(dora_send_output(tx, "out", 3, (const char *)big, sizeof big) == 0);
  CHECK_EQ(tx->outstanding, 1);
  DoraEvent *ev = dora_next_event_timeout(rx, 3000);
  CHECK(ev && read_dora_event_type(ev) == DoraEventType_Input);
  if (ev) {
    char *data;
    size_t len;
    read_dora_input_data(ev, &data, &len);
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    CHECK(rx->clock.last >= read_dora_input_timestamp(ev)); /* the receiver's clock merged the sender's timestamp */
    free_dora_event(ev);
  }
  ev = dora_next_event_timeout(rx, 3000);
  CHECK(ev && read_dora_event_type(ev) == DoraEventType_Input);
  if (ev) {
    char *data;
    size_t len;
    read_dora_input_data(ev, &data, &len);
    CHECK(len == sizeof big && memcmp(data, big, sizeof big) == 0);
    CHECK(ev->payload && ev->payload->mapping == NULL); /* bytes, not a handle */
    free_dora_event(ev);
  }
  ev = dora_next_event_timeout(stranger, 300);
  CHECK(ev == NULL);
  free_dora_event(ev);
  CHECK(!readable(raw, 300));
  pthread_mutex_lock(&tx->lock);
  dora__release_all(tx, "local");
  pthread_mutex_unlock(&tx->lock);
  CHECK_EQ(tx->outstanding, 0);
out:
  if (raw) zmq_close(raw);
  if (raw_zctx) zmq_ctx_term(raw_zctx);
  free_dora_context(stranger);
  free_dora_context(rx);
  free_dora_context(tx);
  unlink(sender_key);
  unlink(rx_key);
  unlink(stranger_key);
  unlink(open_key);
  rmdir(dir);
}

/* ---- main ------------------------------------------------------------------------------ */

static const struct {
  const char *name;
  void (*run)(void);
} checks[] = {
    {"queue.newest-per-input", queue_newest_per_input},
    {"queue.deep-order-and-bound", queue_deep_order_and_bound},
    {"queue.drain-arrival-order", queue_drain_arrival_order},
    {"queue.unknown-inputs-ignored", queue_unknown_inputs_ignored},
    {"queue.drop-returns-sample", queue_drop_returns_sample},
    {"segment.mode-and-names", segment_mode_and_names},
    {"segment.names-checked", segment_names_checked},
    {"segment.receiver-maps-same-memory", segment_receiver_maps_same_memory},
    {"guard.shrunk-segment-reads-zeros", guard_shrunk_segment_reads_zeros},
    {"guard.reported-after-unmap", guard_reported_after_unmap},
    {"guard.registry-grows", guard_registry_grows},
    {"guard.threads", guard_threads},
    {"guard.chains-other-sigbus", guard_chains_other_sigbus},
    {"pool.reuse-after-every-holder", pool_reuse_after_every_holder},
    {"pool.steady-stream-lagging-receiver", pool_steady_stream_lagging_receiver},
    {"pool.receiver-leaves", pool_receiver_leaves},
    {"pool.free-kept-for-reuse", pool_free_kept_for_reuse},
    {"pool.lost-ranges-release", pool_lost_ranges_release},
    {"pool.slab-slots", pool_slab_slots},
    {"pool.stats", pool_stats},
    {"tap.holds-until-it-leaves", tap_holds_until_it_leaves},
    {"tap.one-that-stops-reading-is-bounded", tap_that_stops_reading_is_bounded},
    {"stats.receiver-counters", stats_receiver_counters},
    {"mapping.retain-release", mapping_retain_release},
    {"mapping.outlives-context", mapping_outlives_context},
    {"wait.times-out-wakes-interrupts", wait_times_out_wakes_and_interrupts},
    {"errors.codes", errors_codes},
    {"remote.curve-tcp", remote_curve_tcp},
};

int main(int argc, char **argv) {
  if (argc > 1) {
    snprintf(prefix, sizeof prefix, "%s", argv[1]);
  } else {
    uint8_t random[6];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) return 2;
    snprintf(prefix, sizeof prefix, "dora-ts-check-core-%02x%02x%02x%02x%02x%02x-", random[0], random[1], random[2], random[3], random[4],
             random[5]);
  }
  if (!dora__segment_name_valid(prefix) || strlen(prefix) > 120) {
    fprintf(stderr, "check-core: the segment prefix must be a dora-ts segment name (dora-ts-...), got \"%s\"\n", prefix);
    return 2;
  }
  const char *scenario = getenv("CHECK_CORE_SIGBUS");
  if (scenario) return sigbus_scenario(scenario); /* a child of guard.chains-other-sigbus */
  int failed = 0, ran = 0;
  for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
    bool wanted = argc <= 2;
    for (int a = 2; a < argc; a++) wanted |= strcmp(argv[a], checks[i].name) == 0;
    if (!wanted) continue;
    ran++;
    failures.len = 0;
    n_failures = 0;
    checks[i].run();
    sweep_segments();
    printf("{\"check\":\"%s\",\"ok\":%s", checks[i].name, n_failures ? "false" : "true");
    if (n_failures) printf(",\"failures\":[%.*s]", (int)failures.len, (const char *)failures.data);
    printf("}\n");
    fflush(stdout);
    failed += n_failures > 0;
  }
  dora__buf_free(&failures);
  if (!ran) fprintf(stderr, "check-core: no such check\n");
  return failed || !ran ? 1 : 0;
}

/*
 * The node runtime: joining the dataflow (configuration, registration, start
 * barrier), receiving into bounded per-input queues, sending inline or through
 * pooled shared memory, and returning samples with drop tokens. It follows
 * docs/protocol.md; node-api/node.ts is the TypeScript twin.
 *
 * Threads: the context is driven by one thread at a time (the caller's). Events and
 * exported arrays may be released from any thread, so what their release touches
 * (the mapping cache and pending drop tokens) is guarded by ctx->lock.
 *
 * This header is private to the runtime's files: config.c (reading DORA_NODE_CONFIG),
 * transport.c (sockets, draining the SUB socket, decoding data messages), control.c
 * (daemon requests and logs, control messages, registration and the start barrier,
 * the daemon-liveness check), dynamic.c (finding the dataflow a dynamic node joins),
 * events.c (payloads, events, the per-input queues,
 * next_event and the event readers), pool.c (the sample pool and drop tokens), send.c
 * (every send function), remote.c (data to and from other machines: TCP, CURVE), stats.c (reporting the counters of stats.h), tap.c (holders
 * that are not configured subscribers) and context.c (opening, closing and freeing a context). It
 * holds the structures they share and the functions that cross between them; like
 * internal.h, every such symbol is prefixed dora__ and hidden from the exports.
 */
#ifndef DORA_NODE_H
#define DORA_NODE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "internal.h"
#include "stats.h"

#define POLL_MS 100                 /* how often a waiting node checks that its daemon lives */

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
  uint64_t dropped; /* messages a full queue dropped */
  dora_buf last_layout; /* the encoded layout of this input's last event record (record.c) */
  int topic;
  bool open;
  bool restartable;   /* its sender has a restart policy: its end of stream waits for the daemon's verdict */
  bool eos_pending;   /* ... and that end of stream has arrived */
  int64_t timeout_ms; /* input_timeout, 0 for none */
  int64_t last_ms;    /* when the last message arrived (0: none yet, the timeout is not armed) */
  bool timed_out;     /* closed by its timeout; the next message reopens it (INPUT_RECOVERED) */
  dora_input_stats stats; /* stats.h */
} input_t;

typedef struct {
  const char *topic;
  size_t topic_len;
  const char *source; /* node/output, for messages */
  const char *output; /* the sender's output name (after the '/') */
  int sender;         /* -1 for timers, the inputs the daemon feeds and senders on other machines */
  bool remote;        /* its sender is on another machine (remote.c) */
  bool seen;
  uint64_t next_seq;
} topic_t;

typedef struct {
  const char *endpoint;
  void *push;
  uint64_t *samples;
  size_t n, cap;
} sender_t;

struct dora_tap {
  char *id;
  size_t held; /* samples of the output it holds now */
};

typedef struct {
  const char *name;
  const char *topic;
  size_t topic_len;
  uint64_t seq;
  const dora_json *subscribers; /* array of node ids */
  size_t subscriptions_seen;
  const char *type_urn, *type_format; /* its declared type, when checked at run time (send.c) */
  bool type_warned;             /* a mismatch was logged (DORA_RUNTIME_TYPE_CHECK=warn: once) */
  dora_buf encoded;             /* the last encoded layout sent (dora_send_output_*_encoded) ... */
  dora_layout *encoded_layout;  /* ... and its parsed form */
  dora_output_stats stats;      /* stats.h */
  struct dora_tap *taps;        /* holders that are not configured subscribers (tap.c) */
  size_t n_taps;
  const dora_json *remote_subscribers; /* subscribers on other machines (remote.c): never holders of a sample */
  size_t local_subscribers;            /* how many are on this machine */
} output_t;

enum { SAMPLE_FREE, SAMPLE_ACQUIRED, SAMPLE_OUT };

/* Small samples are power-of-two slots of slab segments (pool.c): SLAB_CLASSES sizes from 64 B. */
#define SLAB_CLASSES 13 /* 64 B ... 256 KiB */

typedef struct {
  dora_segment seg;
  size_t slot; /* a slab's slot size; 0 for a segment holding one sample */
} segment_t;

typedef struct {
  int *items;
  size_t n, cap;
} slot_stack;

typedef struct {
  int segment; /* index in ctx->segments */
  size_t offset, capacity;
  uint64_t id; /* unique over the context's life; its low bits are the sample's index */
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
  segment_t *segments;
  size_t n_segments;
  sample_t *samples;
  size_t n_samples;
  uint64_t next_sample_id;
  size_t outstanding;
  slot_stack free_slots[SLAB_CLASSES]; /* free slab samples by class, reused last in first out */
  const char **exited;
  size_t n_exited;
  dora_segment_cache cache;
  uint64_t guard_faults; /* dora__guard_faults() when this node last looked for shrunk segments */
  DoraEvent *head, *tail;
  bool started, stop_requested, ended, daemon_gone;
  bool join_cancelled; /* dora_cancel_join, from another thread (atomic) */
  bool restarting; /* stopped to be restarted (dora node restart): no end of stream, its receivers stay open */
  int64_t last_daemon_check; /* ms, for the rate-limited check when sending */
  int64_t last_pump;         /* ms, when dora_next_event_record last drained the sockets */
  size_t peak_outstanding;
  dora_clock clock;
  int restart_count;          /* 0 for a node's first run; a dynamic node's joins before this one */
  int type_check;             /* DORA_RUNTIME_TYPE_CHECK: 0 off, 1 warn, 2 error; -1 not read yet */
  bool dynamic;               /* `path: dynamic`: started by the user, its daemon is not its parent (dynamic.c) */
  char daemon_start[32];      /* a dynamic node's: the daemon's start time ("" when unknown) ... */
  const char *daemon_socket;  /* ... and its request socket's path: gone once the dataflow has ended */
  int64_t last_liveness_ms;   /* a dynamic node's last check of its daemon (rate-limited: it reads /proc) */
  bool late;                  /* joins a running dataflow (restarted or dynamic): connects to its senders and timers at start */
  bool registered;            /* the daemon accepted its registration */
  bool inputs_connected;      /* a late node connects to its senders at start (control.c) */
  bool any_timeout;           /* some input has an input_timeout */
  int64_t health_ms;          /* health_check_timeout, 0 for none */
  int64_t activity_ms;        /* (atomic) when the node's code last called in: heartbeats are sent while it is recent */
  /* dora_wait (wait.c): the file descriptors it polls, and who is inside it (under lock) */
  int wake_fd, sub_fd, pull_fd;
  int waiters;
  bool closing;
  pthread_cond_t idle;
  dora_buf scratch; /* event records (record.c) */
  /* the watchdog thread (watchdog.c): notices a dead daemon whatever the node's code is doing */
  pthread_t watchdog;
  bool watchdog_running, watchdog_stop;
  pthread_cond_t watchdog_cond; /* on CLOCK_MONOTONIC; signalled to stop it (under lock) */
  struct dora_stats_state *stats_state; /* the watchdog's last report (stats.c) */
  /* other machines (remote.c): the configuration's `remote`, the TCP XPUB, CURVE keys, the ZAP handler */
  const dora_json *remote;
  void *rpub;
  char curve_public[41], curve_secret[41];
  uint8_t (*client_keys)[32];
  size_t n_client_keys;
  void *zap_socket;
  pthread_t zap_thread;
  bool zap_running, zap_stop;
};

/* ---- small helpers ------------------------------------------------------------------ */

static inline int64_t dora__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline const char *dora__jstr(const dora_json *object, const char *key) {
  const dora_json *v = dora__json_get(object, key);
  return v && v->type == DJ_STRING ? v->string : NULL;
}

static inline void *dora__grow(void *items, size_t n, size_t size) { return realloc(items, (n + 1) * size); }

static inline bool dora__is_exited(const DoraContext *ctx, const char *node) {
  for (size_t i = 0; i < ctx->n_exited; i++)
    if (strcmp(ctx->exited[i], node) == 0) return true;
  return false;
}

static inline int dora__zsend(void *socket, const void *data, size_t len, int flags) {
  for (;;) {
    if (zmq_send(socket, data, len, flags) >= 0) return 0;
    if (errno != EINTR) return dora__fail(DORA_E_ZMQ, "zmq_send failed: %s", zmq_strerror(errno));
  }
}

/* ---- functions shared between the runtime's files ----------------------------------- */

/* config.c: text is the configuration JSON, or NULL to read DORA_NODE_CONFIG */
int dora__read_config(DoraContext *ctx, const char *text);

/* transport.c */
int dora__open_sockets(DoraContext *ctx);
int dora__connect_inputs(DoraContext *ctx);
int dora__find_topic(const DoraContext *ctx, const void *data, size_t len);
void dora__drain(DoraContext *ctx);
void dora__pump(DoraContext *ctx);
/* Logs a warning for each segment found shrunk under this node's reads (guard.c), once each. */
void dora__report_shrunk(DoraContext *ctx);
void dora__wait_readable(DoraContext *ctx, long ms);

/* remote.c: data to and from other machines */
/* Reads the part's keys; for a sender with receivers elsewhere, starts the ZAP handler and binds the TCP XPUB. */
int dora__remote_open(DoraContext *ctx);
void dora__remote_close(DoraContext *ctx);
/* Connects ctx->sub to endpoint as a CURVE client when it is a remote sender's (*is_remote); does nothing otherwise. */
int dora__remote_connect(DoraContext *ctx, const char *endpoint, bool *is_remote);
bool dora__is_remote_subscriber(const output_t *out, const char *node);
/* Publishes on ctx->rpub what `local` describes, inline: `shared` (moved, may be NULL) is a copy of the
   local inline message, else size bytes are copied from data (a shared-memory sample). `encoded`, when
   `local` is inline, is its encoding, sent as it is (NULL: encoded here). */
int dora__remote_publish(DoraContext *ctx, const output_t *out, const dora_header *local, const dora_buf *encoded, const uint8_t *data, size_t size,
                         zmq_msg_t *shared);

/* control.c */
void dora__simple_request(DoraContext *ctx, const char *t);
void dora__log_to_daemon(DoraContext *ctx, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void dora__on_control(DoraContext *ctx, const uint8_t *data, size_t len);
void dora__check_daemon(DoraContext *ctx);
/* Whether the daemon lives: it is still our parent, or for a dynamic node, its process and the
   dataflow's request socket are still there. Any thread; reads /proc for a dynamic node. */
bool dora__daemon_alive(const DoraContext *ctx);
int dora__register_node(DoraContext *ctx);
int dora__await_start(DoraContext *ctx);

/* events.c */
extern pthread_mutex_t dora__standalone_lock;
extern const uint8_t dora__empty_payload[64];
extern dora_segment_cache dora__standalone_cache;
void dora__payload_unref(payload *p);
DoraEvent *dora__event_new(enum DoraEventType type, const char *id, const char *message);
void dora__push_event(DoraContext *ctx, DoraEvent *ev);
void dora__push_input(DoraContext *ctx, DoraEvent *ev);
void dora__close_input(DoraContext *ctx, size_t i);
/* Closes inputs whose input_timeout expired; returns ms until the next such deadline (-1: none). */
int64_t dora__check_timeouts(DoraContext *ctx, int64_t now);
/* The node's code is active (health checks): called on every entry into the runtime. */
static inline void dora__active(DoraContext *ctx) {
  if (ctx->health_ms) __atomic_store_n(&ctx->activity_ms, dora__now_ms(), __ATOMIC_RELAXED);
}
/* Takes the event at the head of the queue (NULL when empty), marking the stream ended after STOP or ERROR. */
DoraEvent *dora__pop_event(DoraContext *ctx);

/* pool.c */
void dora__release_all(DoraContext *ctx, const char *holder);
void dora__read_tokens(DoraContext *ctx);
void dora__add_lost(DoraContext *ctx, topic_t *t, uint64_t first, uint64_t last);
void dora__flush_tokens(DoraContext *ctx);
int dora__acquire(DoraContext *ctx, size_t size);
void dora__mark_sent(DoraContext *ctx, int index, int output, uint64_t seq);
sample_t *dora__sample_by_id(DoraContext *ctx, uint64_t id);
/* A sample that will not be sent (or whose send failed) is free again. */
void dora__sample_free(DoraContext *ctx, int index);
/* Where a sample's bytes are, and in which segment. */
static inline uint8_t *dora__sample_data(const DoraContext *ctx, int index) {
  return ctx->segments[ctx->samples[index].segment].seg.ptr + ctx->samples[index].offset;
}
static inline const dora_segment *dora__sample_segment(const DoraContext *ctx, int index) {
  return &ctx->segments[ctx->samples[index].segment].seg;
}
/* Unmaps the pool at close: segments still holding a sample a receiver reads keep their name (the daemon removes it). */
void dora__pool_close(DoraContext *ctx);

/* dynamic.c: the configuration of dynamic node node_id from the daemon of the running dataflow
   that declares it (dataflow, an id or name, or NULL: $DORA_DATAFLOW, chooses among several);
   *out is JSON text the caller frees. */
int dora__dynamic_config(const char *node_id, const char *dataflow, char **out);
/* The start time of live process pid (/proc/<pid>/stat field 22) into out; -1 when it is gone or a zombie. */
int dora__process_start_time(long pid, char *out, size_t capacity);

/* watchdog.c: started once the configuration is read; stopped (and joined) before closing */
void dora__watchdog_start(DoraContext *ctx);
void dora__watchdog_stop(DoraContext *ctx);

/* stats.c: called by the watchdog thread (without ctx->lock: it reads only the counters,
   atomically, and the configuration) at each of its checks; reports the node's counters to
   the daemon once a second when they changed, on the watchdog's socket */
void dora__stats_tick(DoraContext *ctx, void **socket);
void dora__stats_end(DoraContext *ctx);

/* tap.c: peers reading our outputs that are not configured subscribers (dora topic echo, ...) */
/* node-restarted with `outputs`: peer holds the samples of those outputs from now on; returns whether it reads any of ours */
bool dora__tap_join(DoraContext *ctx, const char *peer, const dora_json *outputs);
/* peer-exited: a tap that left holds nothing any more; returns whether peer was one */
bool dora__tap_leave(DoraContext *ctx, const char *peer);
void dora__taps_free(DoraContext *ctx);
/* mark_sent: adds output o's taps to sample s's holders; a tap holding TAP_MAX_HELD samples of o loses its oldest first */
void dora__tap_hold(DoraContext *ctx, sample_t *s, int o);
/* a holder left sample s (pool.c): a tap's count goes down */
void dora__tap_unhold(DoraContext *ctx, const sample_t *s, const char *holder);
/* pool.c: removes holder from sample s, freeing s when it was the last */
void dora__sample_release(DoraContext *ctx, sample_t *s, const char *holder);

/* context.c: a context with no configuration or sockets yet (free with free_dora_context) */
DoraContext *dora__context_new(void);
void dora__ctx_unref(DoraContext *ctx);

#endif /* DORA_NODE_H */

/*
 * A context's life: init_dora_context_from_env and init_dora_context_from_node_id
 * (configuration, sockets, registration, start barrier), its identity accessors, and closing: end of stream on every output,
 * a short wait for samples to come back, then the sockets and segments. The context
 * itself is freed when its last reference (it, or a payload still held) goes.
 */
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "node.h"

#define RELEASE_WAIT_MS 2000        /* how long a closing node waits for its samples to come back */
#define CLOSING_WAIT_MS 2000        /* how long it waits for the daemon to have served its requests */

/* ---- opening ------------------------------------------------------------------------ */

/* Copies the calling thread's last error (message and code) where a binding on another thread can read it. */
static void copy_error(char *error, size_t error_len, int *out_code) {
  if (error && error_len > 0) snprintf(error, error_len, "%s", dora_last_error() ? dora_last_error() : "unknown error");
  if (out_code) *out_code = dora_last_error_code();
}

/* Frees a context that failed to open or join, keeping the failure's message. */
static void fail_context(DoraContext *ctx) {
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", dora_last_error() ? dora_last_error() : "unknown error");
  int code = dora_last_error_code();
  free_dora_context(ctx);
  dora__fail(code, "%s", saved);
}

DoraContext *dora__context_new(void) {
  DoraContext *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  ctx->refs = 1;
  ctx->type_check = -1;
  /* Sample ids differ between a node's runs: a receiver may still return tokens of the
     node's previous process (restart_policy), which must not free this one's samples. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ctx->next_sample_id = ((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16)) & 0xffffffffu;
  ctx->wake_fd = ctx->sub_fd = ctx->pull_fd = -1;
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_cond_init(&ctx->idle, NULL);
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  pthread_cond_init(&ctx->watchdog_cond, &monotonic);
  pthread_condattr_destroy(&monotonic);
  return ctx;
}

static DoraContext *open_context(const char *config_text) {
  DoraContext *ctx = dora__context_new();
  if (!ctx) return NULL;
  ctx->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ctx->wake_fd < 0) dora__fail(DORA_E_SYSTEM, "eventfd failed: %s", strerror(errno));
  if (ctx->wake_fd < 0 || dora__read_config(ctx, config_text) || dora__open_sockets(ctx)) {
    fail_context(ctx);
    return NULL;
  }
  dora__watchdog_start(ctx);
  return ctx;
}

void *init_dora_context_from_env(void) {
  DoraContext *ctx = open_context(NULL);
  if (ctx && (dora__register_node(ctx) || dora__await_start(ctx))) {
    fail_context(ctx);
    return NULL;
  }
  return ctx;
}

void *init_dora_context_from_node_id(const char *node_id) {
  if (getenv(DORA_NODE_CONFIG_ENV)) return init_dora_context_from_env(); /* started by dora: its configuration wins, as in dora */
  char *config;
  if (dora__dynamic_config(node_id, NULL, &config)) return NULL;
  DoraContext *ctx = open_context(config);
  free(config); /* parsed: the context keeps its own copy */
  if (ctx && (dora__register_node(ctx) || dora__await_start(ctx))) {
    fail_context(ctx);
    return NULL;
  }
  return ctx;
}

DoraContext *dora_init_context(const char *config_json, char *error, size_t error_len, int *out_code) {
  DoraContext *ctx = open_context(config_json);
  if (!ctx) copy_error(error, error_len, out_code);
  return ctx;
}

int dora_join_dataflow(DoraContext *ctx, char *error, size_t error_len, int *out_code) {
  int rc = !ctx || ctx->closed ? dora__fail(DORA_E_NO_CONTEXT, "dora_join_dataflow: no open context") : dora__register_node(ctx) || dora__await_start(ctx) ? -1 : 0;
  if (rc) copy_error(error, error_len, out_code);
  return rc;
}

const char *dora_node_id(const DoraContext *ctx) { return ctx ? ctx->node_id : NULL; }
const char *dora_dataflow_id(const DoraContext *ctx) { return ctx ? ctx->dataflow_id : NULL; }
int dora_node_restart_count(const DoraContext *ctx) { return ctx ? ctx->restart_count : -1; }

/* ---- closing ------------------------------------------------------------------------ */

void dora__ctx_unref(DoraContext *ctx) {
  if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  /* every event and array is gone: what is still mapped can go */
  dora__cache_close(&ctx->cache);
  for (size_t i = 0; i < ctx->n_senders; i++) free(ctx->senders[i].samples);
  for (size_t i = 0; i < ctx->n_inputs; i++) dora__buf_free(&ctx->inputs[i].last_layout);
  dora__taps_free(ctx);
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    free((char *)ctx->outputs[i].topic);
    dora__buf_free(&ctx->outputs[i].encoded);
    dora__layout_free(ctx->outputs[i].encoded_layout);
  }
  free(ctx->senders);
  free(ctx->outputs);
  free(ctx->inputs);
  free(ctx->topics);
  free(ctx->exited);
  free(ctx->event_topic);
  dora__json_free(ctx->config);
  dora__buf_free(&ctx->scratch);
  pthread_cond_destroy(&ctx->idle);
  pthread_cond_destroy(&ctx->watchdog_cond);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

static void close_socket(void **s) {
  if (*s) zmq_close(*s);
  *s = NULL;
}

static void close_context(DoraContext *ctx) {
  dora__report_shrunk(ctx);
  /* A DEALER without a connected peer blocks a send for ever: a daemon that died (or was
     never reached) must not keep a closing node alive, its watchdog being stopped now. */
  if (ctx->req) {
    int ms = CLOSING_WAIT_MS;
    zmq_setsockopt(ctx->req, ZMQ_SNDTIMEO, &ms, sizeof ms);
  }
  if (ctx->pub && !ctx->restarting) {
    dora_buf eos = {0};
    dora__eos_write(&eos, dora__clock_now(&ctx->clock));
    for (size_t i = 0; i < ctx->n_outputs; i++) {
      dora__zsend(ctx->pub, ctx->outputs[i].topic, ctx->outputs[i].topic_len, ZMQ_SNDMORE);
      dora__zsend(ctx->pub, eos.data, eos.len, 0);
      if (!ctx->rpub || !ctx->outputs[i].remote_subscribers) continue;
      dora__zsend(ctx->rpub, ctx->outputs[i].topic, ctx->outputs[i].topic_len, ZMQ_SNDMORE); /* receivers on other machines */
      dora__zsend(ctx->rpub, eos.data, eos.len, 0);
    }
    dora__buf_free(&eos);
    if (ctx->req && ctx->registered && !ctx->daemon_gone && dora__daemon_alive(ctx)) dora__simple_request(ctx, DORA_T_OUTPUTS_CLOSED);
  }
  if (ctx->zctx) dora__flush_tokens(ctx);
  /* Give receivers a moment to take (and return) what was just sent: a sample still held
     after that stays in place (unlinking it could lose a message not yet opened); the
     daemon removes every segment of the dataflow when the run ends. */
  int64_t deadline = dora__now_ms() + RELEASE_WAIT_MS;
  while (ctx->pull && !ctx->daemon_gone && dora__now_ms() < deadline) {
    bool outstanding = false;
    outstanding = ctx->outstanding > 0;
    if (!outstanding) break;
    dora__drain(ctx); /* peer-exited events release too */
    dora__read_tokens(ctx);
    zmq_pollitem_t item = {ctx->pull, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, 5);
    dora__check_daemon(ctx);
  }
  /* Last request: answered once the daemon served every earlier one. A ZeroMQ peer that
     disconnects loses what the daemon had not read yet (its last log records). */
  /* (a dynamic node that registered leaves with it even before it started: it may join again) */
  if (ctx->req && (ctx->started || (ctx->dynamic && ctx->registered)) && !ctx->daemon_gone && dora__daemon_alive(ctx)) {
    dora__simple_request(ctx, DORA_T_CLOSING);
    zmq_pollitem_t item = {ctx->req, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, CLOSING_WAIT_MS) > 0 && (item.revents & ZMQ_POLLIN)) {
      zmq_msg_t reply;
      zmq_msg_init(&reply);
      zmq_msg_recv(&reply, ctx->req, ZMQ_DONTWAIT);
      zmq_msg_close(&reply);
    }
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
  dora__remote_close(ctx); /* the TCP XPUB, then the ZAP handler */
  close_socket(&ctx->req);
  dora__pool_close(ctx);
  /* with the daemon gone, nobody else will remove the dataflow's segments (receivers keep their mappings) */
  if (ctx->segment_prefix && (ctx->daemon_gone || !dora__daemon_alive(ctx))) dora__unlink_segments(ctx->segment_prefix);
  if (ctx->zctx) {
    while (zmq_ctx_term(ctx->zctx) < 0 && errno == EINTR) {
    }
    ctx->zctx = NULL;
  }
  pthread_mutex_lock(&ctx->lock);
  dora__cache_close(&ctx->cache);
  pthread_mutex_unlock(&ctx->lock);
  if (ctx->wake_fd >= 0) close(ctx->wake_fd);
  ctx->wake_fd = -1;
}

void free_dora_context(void *dora_context) {
  DoraContext *ctx = dora_context;
  if (!ctx) return;
  dora__watchdog_stop(ctx);
  /* a dora_wait on another thread polls the sockets' descriptors: end it before closing them */
  pthread_mutex_lock(&ctx->lock);
  ctx->closing = true;
  dora_interrupt_wait(ctx);
  while (ctx->waiters > 0) pthread_cond_wait(&ctx->idle, &ctx->lock);
  pthread_mutex_unlock(&ctx->lock);
  if (!ctx->closed) close_context(ctx);
  dora__ctx_unref(ctx);
}

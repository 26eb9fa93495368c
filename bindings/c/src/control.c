/*
 * Talking with the daemon: requests on the DEALER socket (logs, dora_log, ready,
 * outputs-closed), the control messages it publishes to this node (start, stop,
 * peer-exited, inputs-closed), registration and the start barrier that
 * init_dora_context_from_env waits on, and the check that the daemon (our parent, or a
 * dynamic node's daemon) lives.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"

#define REGISTER_TIMEOUT_MS 30000
#define LIVENESS_MS 100 /* how often a dynamic node's thread looks at its daemon (a read of /proc) */

/* ---- daemon requests ---------------------------------------------------------------- */

static int request(DoraContext *ctx, dora_buf *json) {
  int rc = json->oom ? dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory") : dora__zsend(ctx->req, json->data, json->len, 0);
  dora__buf_free(json);
  return rc;
}

static void json_field(dora_buf *b, const char *key, const char *value, bool first) {
  if (!first) dora__buf_u8(b, ',');
  dora__json_quote(b, key, strlen(key));
  dora__buf_u8(b, ':');
  dora__json_quote(b, value, strlen(value));
}

void dora__simple_request(DoraContext *ctx, const char *t) {
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  json_field(&b, "t", t, true);
  json_field(&b, "node", ctx->node_id, false);
  dora__buf_u8(&b, '}');
  request(ctx, &b);
}

void dora__log_to_daemon(DoraContext *ctx, const char *level, const char *fmt, ...) {
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
  json_field(&b, "t", DORA_T_LOG, true);
  json_field(&b, "node", ctx->node_id, false);
  json_field(&b, "level", level, false);
  json_field(&b, "message", message, false);
  dora__buf_u8(&b, '}');
  request(ctx, &b);
}

int dora_log(void *dora_context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len) {
  return dora_log_with_target(dora_context, level_ptr, level_len, msg_ptr, msg_len, NULL, 0);
}

int dora_log_with_target(DoraContext *ctx, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len, const char *target_ptr,
                         size_t target_len) {
  return dora_log_with_fields(ctx, level_ptr, level_len, msg_ptr, msg_len, target_ptr, target_len, NULL, 0);
}

int dora_log_with_fields(DoraContext *ctx, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len, const char *target_ptr,
                         size_t target_len, const char *fields_json, size_t fields_len) {
  if (!ctx || ctx->closed) return dora__fail(DORA_E_NO_CONTEXT, "dora_log: no open context");
  if (!fields_json && fields_len) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_log: fields_json is NULL");
  if (fields_len) {
    /* checked here, where the caller can be told: the daemon drops a request it cannot read */
    dora_json *fields = dora__json_parse(fields_json, fields_len);
    bool object = fields && fields->type == DJ_OBJECT;
    dora__json_free(fields);
    if (!object) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_log: fields_json must be the text of one JSON object");
  }
  static const char *levels[] = DORA_LOG_LEVELS;
  const char *level = NULL;
  for (size_t i = 0; i < DORA_LOG_LEVEL_COUNT; i++)
    if (level_ptr && strlen(levels[i]) == level_len && strncmp(levels[i], level_ptr, level_len) == 0) level = levels[i];
  if (!level) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_log: level must be " DORA_LOG_LEVELS_TEXT);
  if ((!msg_ptr && msg_len) || (!target_ptr && target_len)) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_log: message or target is NULL");
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  json_field(&b, "t", DORA_T_LOG, true);
  json_field(&b, "node", ctx->node_id, false);
  json_field(&b, "level", level, false);
  dora__buf_raw(&b, ",\"message\":", 11);
  dora__json_quote(&b, msg_ptr ? msg_ptr : "", msg_len);
  if (target_len) {
    dora__buf_raw(&b, ",\"target\":", 10);
    dora__json_quote(&b, target_ptr, target_len);
  }
  if (fields_len) {
    dora__buf_raw(&b, ",\"fields\":", 10);
    dora__buf_raw(&b, fields_json, fields_len);
  }
  dora__buf_u8(&b, '}');
  return request(ctx, &b);
}

/* ---- control messages from the daemon ----------------------------------------------- */

/* Whether a topic's source ("node/output") is that node's. */
static bool from_node(const topic_t *t, const char *node) {
  size_t n = strlen(node);
  return strncmp(t->source, node, n) == 0 && t->source[n] == '/';
}

/* node-restarted / node-failed: as its sender, count a restarted node among our samples'
 * holders again and tell the daemon; as its receiver, reopen our inputs from it and
 * tell the node's code, unless it is a dynamic node joining for the first time (`first`:
 * our inputs from it were open all along, and it has sent nothing yet). */
static void on_peer_news(DoraContext *ctx, const char *node, bool restarted, bool first, const dora_json *tapped) {
  if (restarted) {
    bool subscriber = tapped && dora__tap_join(ctx, node, tapped); /* a tap reading our outputs (tap.c) */
    for (size_t i = 0; i < ctx->n_outputs; i++)
      for (size_t k = 0; ctx->outputs[i].subscribers && k < ctx->outputs[i].subscribers->count; k++)
        subscriber |= ctx->outputs[i].subscribers->items[k].type == DJ_STRING && strcmp(ctx->outputs[i].subscribers->items[k].string, node) == 0;
    for (size_t i = 0; i < ctx->n_exited; i++)
      if (strcmp(ctx->exited[i], node) == 0) ctx->exited[i--] = ctx->exited[--ctx->n_exited];
    if (subscriber) {
      dora_buf b = {0};
      dora__buf_u8(&b, '{');
      json_field(&b, "t", DORA_T_RESTART_SEEN, true);
      json_field(&b, "node", ctx->node_id, false);
      json_field(&b, "peer", node, false);
      dora__buf_u8(&b, '}');
      request(ctx, &b);
    }
  }
  if (first) return;
  bool feeds_us = false;
  for (size_t i = 0; i < ctx->n_inputs; i++) {
    input_t *in = &ctx->inputs[i];
    topic_t *t = &ctx->topics[in->topic];
    if ((t->sender < 0 && !t->remote) || !from_node(t, node)) continue; /* a sender elsewhere returns no samples, yet restarts too */
    feeds_us = true;
    if (restarted) {
      in->eos_pending = false;
      t->seen = false; /* the new process numbers its messages from 0 */
    }
  }
  if (!feeds_us) return;
  DoraEvent *ev = dora__event_new(restarted ? DoraEventType_NodeRestarted : DoraEventType_NodeFailed, node, node);
  dora__push_event(ctx, ev);
}

void dora__on_control(DoraContext *ctx, const uint8_t *data, size_t len) {
  dora_json *msg = dora__json_parse((const char *)data, len);
  const char *t = msg ? dora__jstr(msg, "t") : NULL;
  if (!t) {
    dora__log_to_daemon(ctx, "warn", "ignored a malformed control message from the daemon");
  } else if (strcmp(t, DORA_T_START) == 0) {
    if (dora__connect_inputs(ctx)) dora__log_to_daemon(ctx, "error", "%s", dora_last_error()); /* a restarted node's, deferred */
    __atomic_store_n(&ctx->started, true, __ATOMIC_RELEASE); /* read by dora_allocate_output on another thread */
  } else if (strcmp(t, DORA_T_STOP) == 0) {
    const char *cause = dora__jstr(msg, "cause");
    const dora_json *restarting = dora__json_get(msg, "restarting");
    if (restarting && restarting->type == DJ_BOOL && restarting->boolean) ctx->restarting = true;
    if (!ctx->stop_requested) dora__push_event(ctx, dora__event_new(DoraEventType_Stop, NULL, cause ? cause : DORA_STOP_MANUAL));
    ctx->stop_requested = true;
  } else if (strcmp(t, DORA_T_NODE_RESTARTED) == 0 || strcmp(t, DORA_T_NODE_FAILED) == 0) {
    const char *node = dora__jstr(msg, "node");
    const dora_json *first = dora__json_get(msg, "first");
    if (node)
      on_peer_news(ctx, node, strcmp(t, DORA_T_NODE_RESTARTED) == 0, first && first->type == DJ_BOOL && first->boolean, dora__json_get(msg, "outputs"));
  } else if (strcmp(t, DORA_T_PEER_EXITED) == 0) {
    const char *node = dora__jstr(msg, "node");
    if (node && !dora__tap_leave(ctx, node) && !dora__is_exited(ctx, node)) {
      /* the exited list keeps strings of the config, which outlives it */
      const char *kept = NULL;
      for (size_t i = 0; i < ctx->n_outputs && !kept; i++)
        for (size_t k = 0; ctx->outputs[i].subscribers && k < ctx->outputs[i].subscribers->count && !kept; k++)
          if (strcmp(ctx->outputs[i].subscribers->items[k].string, node) == 0) kept = ctx->outputs[i].subscribers->items[k].string;
      if (kept) {
        const char **grown = dora__grow(ctx->exited, ctx->n_exited, sizeof *grown);
        if (grown) {
          ctx->exited = grown;
          ctx->exited[ctx->n_exited++] = kept;
        }
        pthread_mutex_lock(&ctx->lock); /* see dora_allocate_output */
        dora__release_all(ctx, kept);
        pthread_mutex_unlock(&ctx->lock);
      }
    }
  } else if (strcmp(t, DORA_T_INPUTS_CLOSED) == 0) {
    const dora_json *ids = dora__json_get(msg, "inputs");
    for (size_t k = 0; ids && ids->type == DJ_ARRAY && k < ids->count; k++)
      for (size_t i = 0; i < ctx->n_inputs; i++)
        if (ids->items[k].type == DJ_STRING && strcmp(ids->items[k].string, ctx->inputs[i].id) == 0) dora__close_input(ctx, i);
  }
  dora__json_free(msg);
}

bool dora__daemon_alive(const DoraContext *ctx) {
  if (!ctx->dynamic) return getppid() == (pid_t)ctx->daemon_pid; /* a spawned node's daemon is its parent */
  /* A dynamic node's daemon is some other process: its PID with the start time it had
     (not a later process given the same PID), and the dataflow's request socket, which
     the daemon removes when the dataflow ends (a coordinator outlives its dataflows). */
  char now[32];
  struct stat st;
  return dora__process_start_time(ctx->daemon_pid, now, sizeof now) == 0 && (!ctx->daemon_start[0] || strcmp(now, ctx->daemon_start) == 0) &&
         ctx->daemon_socket && stat(ctx->daemon_socket, &st) == 0;
}

/* A node whose daemon is gone must not linger: its stream ends with an ERROR event. */
void dora__check_daemon(DoraContext *ctx) {
  if (ctx->daemon_gone) return;
  if (ctx->dynamic) {
    int64_t now = dora__now_ms();
    if (now - ctx->last_liveness_ms < LIVENESS_MS) return;
    ctx->last_liveness_ms = now;
  }
  if (dora__daemon_alive(ctx)) return;
  ctx->daemon_gone = true;
  char message[256];
  if (ctx->dynamic)
    snprintf(message, sizeof message, "dataflow %s has ended, or its dora daemon (pid %ld) is gone; dynamic node \"%s\" is no longer part of it", ctx->dataflow_id,
             ctx->daemon_pid, ctx->node_id);
  else
    snprintf(message, sizeof message, "the dora daemon (pid %ld) is gone; node \"%s\" is shutting down", ctx->daemon_pid, ctx->node_id);
  dora__push_event(ctx, dora__event_new(DoraEventType_Error, NULL, message));
}

/* ---- joining the dataflow ------------------------------------------------------------- */

/* dora_cancel_join was called: the join gives up (a registered node leaves when it is freed). */
static bool join_cancelled(DoraContext *ctx) {
  if (!__atomic_load_n(&ctx->join_cancelled, __ATOMIC_ACQUIRE)) return false;
  dora__fail(DORA_E_NO_CONTEXT, "node \"%s\" was closed while it joined the dataflow", ctx->node_id);
  return true;
}

void dora_cancel_join(DoraContext *ctx) {
  if (ctx) __atomic_store_n(&ctx->join_cancelled, true, __ATOMIC_RELEASE);
}

int dora__register_node(DoraContext *ctx) {
  dora_buf b = {0};
  char tail[64];
  dora__buf_u8(&b, '{');
  json_field(&b, "t", DORA_T_REGISTER, true);
  json_field(&b, "node", ctx->node_id, false);
  snprintf(tail, sizeof tail, ",\"version\":%d,\"pid\":%ld}", DORA_PROTOCOL_VERSION, (long)getpid());
  dora__buf_raw(&b, tail, strlen(tail));
  if (request(ctx, &b)) return -1;
  int64_t deadline = dora__now_ms() + REGISTER_TIMEOUT_MS;
  for (;;) {
    zmq_pollitem_t item = {ctx->req, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, POLL_MS);
    if (item.revents & ZMQ_POLLIN) break; /* (not cancelled meanwhile: a registered node must know it is, to leave) */
    dora__check_daemon(ctx);
    if (ctx->daemon_gone) return dora__fail(DORA_E_DAEMON_GONE, "the dora daemon went away while node \"%s\" was starting", ctx->node_id);
    if (dora__now_ms() > deadline)
      return dora__fail(DORA_E_TIMEOUT, "node \"%s\" could not register with the dora daemon within %d s", ctx->node_id, REGISTER_TIMEOUT_MS / 1000);
  }
  zmq_msg_t reply;
  zmq_msg_init(&reply);
  zmq_msg_recv(&reply, ctx->req, 0);
  dora_json *msg = dora__json_parse(zmq_msg_data(&reply), zmq_msg_size(&reply));
  zmq_msg_close(&reply);
  const char *t = msg ? dora__jstr(msg, "t") : NULL;
  int rc = 0;
  if (!t) rc = dora__fail(DORA_E_REGISTRATION, "node \"%s\": malformed registration reply from the daemon", ctx->node_id);
  else if (strcmp(t, DORA_T_OK) != 0) rc = dora__fail(DORA_E_REGISTRATION, "the dora daemon refused node \"%s\": %s", ctx->node_id, dora__jstr(msg, "message") ? dora__jstr(msg, "message") : "no reason given");
  else ctx->registered = true;
  dora__json_free(msg);
  return rc;
}

static bool subscribers_joined(const DoraContext *ctx) {
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    const output_t *o = &ctx->outputs[i];
    size_t expected = 0;
    for (size_t k = 0; o->subscribers && k < o->subscribers->count; k++)
      if (o->subscribers->items[k].type == DJ_STRING && !dora__is_exited(ctx, o->subscribers->items[k].string)) expected++;
    if (o->subscriptions_seen < expected) return false;
  }
  return true;
}

/* The start barrier: our subscribers have joined, then every node is ready. */
int dora__await_start(DoraContext *ctx) {
  while (ctx->pub && !subscribers_joined(ctx) && !ctx->stop_requested) {
    dora__drain(ctx);
    /* subscriptions of receivers on this machine (ipc) and on others (TCP, remote.c) alike */
    zmq_pollitem_t items[3] = {{ctx->sub, 0, ZMQ_POLLIN, 0}, {ctx->pub, 0, ZMQ_POLLIN, 0}, {ctx->rpub, 0, ZMQ_POLLIN, 0}};
    zmq_poll(items, ctx->rpub ? 3 : 2, POLL_MS);
    for (void *pub = ctx->pub; pub; pub = pub == ctx->pub ? ctx->rpub : NULL) {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      while (zmq_msg_recv(&msg, pub, ZMQ_DONTWAIT) >= 0) {
        const uint8_t *d = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        if (n > 0 && d[0] == 1)
          for (size_t i = 0; i < ctx->n_outputs; i++)
            if (ctx->outputs[i].topic_len == n - 1 && memcmp(ctx->outputs[i].topic, d + 1, n - 1) == 0) ctx->outputs[i].subscriptions_seen++;
      }
      zmq_msg_close(&msg);
    }
    dora__check_daemon(ctx);
    if (ctx->daemon_gone) return dora__fail(DORA_E_DAEMON_GONE, "the dora daemon went away while node \"%s\" was starting", ctx->node_id);
    if (join_cancelled(ctx)) return -1;
  }
  if (join_cancelled(ctx)) return -1;
  dora__simple_request(ctx, DORA_T_READY);
  /* a stop during start-up (Ctrl-C while nodes load) ends the wait: the stream then yields STOP */
  while (!ctx->started && !ctx->stop_requested) {
    dora__drain(ctx);
    if (ctx->started || ctx->stop_requested) break;
    dora__wait_readable(ctx, POLL_MS);
    if (ctx->daemon_gone) return dora__fail(DORA_E_DAEMON_GONE, "the dora daemon went away while node \"%s\" was starting", ctx->node_id);
    if (join_cancelled(ctx)) return -1;
  }
  return 0;
}

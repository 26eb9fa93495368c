/*
 * The watchdog: a thread per context that notices the daemon is gone whatever the
 * node's code is doing (waiting, sending, or computing without calling the library).
 * Nodes are the daemon's children, so a changed parent means it died. The node then has
 * a grace period to notice by itself (its next wait yields an ERROR event, its next send
 * fails) and exit; if it has not, the watchdog removes the dataflow's shared-memory
 * segments, which nobody else would remove now, and ends the process: an orphan must not
 * go on sending, let alone creating segments, for ever.
 *
 * A dynamic node's process is the user's (a terminal, a notebook's kernel): its daemon is
 * not its parent (dora__daemon_alive looks at the daemon's process and socket instead),
 * and the watchdog never ends it. It removes the segments after the grace period and
 * stops watching; the node's stream has ended with an ERROR event and its sends fail.
 *
 * With a health check (health_check_timeout) it also sends the daemon heartbeats, on a
 * socket of its own, while the node's code is active: it called into the library
 * lately, or is waiting in it. A node stuck in its own code goes silent and the daemon
 * kills it; a node waiting for input that does not come is healthy.
 */
#include <stdio.h>
#include <unistd.h>

#include "node.h"

#define CHECK_MS 200   /* how often the parent is checked */
#define GRACE_MS 1000  /* how long the node's code has to exit by itself */

/* Waits up to ms, or until the watchdog is stopped; returns whether it was. Called with ctx->lock held. */
static bool wait_stopped(DoraContext *ctx, long ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  while (!ctx->watchdog_stop && pthread_cond_timedwait(&ctx->watchdog_cond, &ctx->lock, &until) == 0) {
  }
  return ctx->watchdog_stop;
}

/* A heartbeat when one is due and the node's code is active (called with ctx->lock held). */
static void heartbeat(DoraContext *ctx, void **socket, int64_t *last_beat) {
  int64_t now = dora__now_ms(), period = ctx->health_ms / 4 > 1 ? ctx->health_ms / 4 : 1;
  bool active = ctx->waiters > 0 || now - __atomic_load_n(&ctx->activity_ms, __ATOMIC_RELAXED) < ctx->health_ms / 2;
  if (!active || now - *last_beat < period) return;
  if (!*socket) {
    *socket = zmq_socket(ctx->zctx, ZMQ_DEALER);
    int zero = 0;
    if (!*socket || zmq_setsockopt(*socket, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_connect(*socket, dora__jstr(ctx->config, DORA_CFG_DAEMON_REQUESTS)))
      return;
  }
  char beat[512];
  int n = snprintf(beat, sizeof beat, "{\"t\":\"" DORA_T_HEARTBEAT "\",\"node\":\"%s\"}", ctx->node_id); /* node ids need no escaping */
  if (n > 0 && (size_t)n < sizeof beat) zmq_send(*socket, beat, (size_t)n, ZMQ_DONTWAIT);
  *last_beat = now;
}

static void *watch(void *arg) {
  DoraContext *ctx = arg;
  void *beats = NULL;
  int64_t last_beat = 0;
  long check_ms = CHECK_MS;
  if (ctx->health_ms && ctx->health_ms / 4 < check_ms) check_ms = ctx->health_ms / 4 > 5 ? (long)(ctx->health_ms / 4) : 5;
  pthread_mutex_lock(&ctx->lock);
  while (!wait_stopped(ctx, check_ms)) {
    if (ctx->health_ms && __atomic_load_n(&ctx->started, __ATOMIC_ACQUIRE)) heartbeat(ctx, &beats, &last_beat);
    if (__atomic_load_n(&ctx->started, __ATOMIC_ACQUIRE)) {
      /* the report is built without the lock: the node's thread takes it to release
         samples and events, and must not wait while the counters are written out */
      pthread_mutex_unlock(&ctx->lock);
      dora__stats_tick(ctx, &beats); /* stats.c */
      pthread_mutex_lock(&ctx->lock);
    }
    if (dora__daemon_alive(ctx)) continue;
    pthread_mutex_unlock(&ctx->lock);
    dora_interrupt_wait(ctx); /* a binding waiting on another thread looks again, and finds the ERROR event */
    pthread_mutex_lock(&ctx->lock);
    if (wait_stopped(ctx, GRACE_MS)) break; /* the node is closing by itself */
    size_t removed = dora__unlink_segments(ctx->segment_prefix);
    if (ctx->dynamic) {
      fprintf(stderr, "dora: dataflow %s of dynamic node \"%s\" has ended or lost its daemon (pid %ld); removed %zu shared-memory segments\n",
              ctx->dataflow_id, ctx->node_id, ctx->daemon_pid, removed);
      break;
    }
    fprintf(stderr, "dora: the daemon (pid %ld) of node \"%s\" is gone and the node did not exit; exiting (removed %zu shared-memory segments)\n",
            ctx->daemon_pid, ctx->node_id, removed);
    _exit(1); /* from a library thread: no exit handlers, which may belong to code still running */
  }
  dora__stats_end(ctx);
  pthread_mutex_unlock(&ctx->lock);
  if (beats) zmq_close(beats);
  return NULL;
}

void dora__watchdog_start(DoraContext *ctx) {
  if (!dora__daemon_alive(ctx)) return; /* not started by the daemon, or it is gone: dora__check_daemon reports it */
  ctx->watchdog_running = pthread_create(&ctx->watchdog, NULL, watch, ctx) == 0;
}

void dora__watchdog_stop(DoraContext *ctx) {
  if (!ctx->watchdog_running) return;
  pthread_mutex_lock(&ctx->lock);
  ctx->watchdog_stop = true;
  pthread_cond_signal(&ctx->watchdog_cond);
  pthread_mutex_unlock(&ctx->lock);
  pthread_join(ctx->watchdog, NULL);
  ctx->watchdog_running = false;
}

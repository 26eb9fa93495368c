/*
 * Reporting the node's counters (stats.h): the watchdog thread sends them to the daemon as
 * a `stats` request once a second, only when they changed, on the socket it already uses
 * for heartbeats; dora_stats_json hands the same counters to the node's own code. The
 * daemon turns them into rates (dora top, the web view); the latency percentiles cover
 * what arrived since the previous report.
 */
#include <stdio.h>

#include "node.h"

#define REPORT_MS 1000

struct dora_stats_state {
  int64_t last_ms;
  dora_buf last;                         /* the last report sent: an unchanged one is not sent again */
  uint32_t (*seen)[DORA_LATENCY_BUCKETS]; /* per input, the latency buckets as last reported */
};

static uint64_t load(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

/* The middle of a latency bucket, in µs (stats.h's bucket layout). */
static uint64_t bucket_us(int b) {
  if (b < 4) return (uint64_t)b;
  int e = b / 4 + 1, sub = b % 4;
  uint64_t width = (uint64_t)1 << (e - 2);
  return ((uint64_t)(4 + sub) << (e - 2)) + width / 2;
}

static uint64_t percentile(const uint32_t *delta, uint64_t total, double q) {
  uint64_t want = (uint64_t)(q * (double)total + 0.999999), seen = 0;
  for (int b = 0; b < DORA_LATENCY_BUCKETS; b++)
    if ((seen += delta[b]) >= want) return bucket_us(b);
  return bucket_us(DORA_LATENCY_BUCKETS - 1);
}

static void field(dora_buf *b, const char *key, uint64_t v, bool first) {
  char text[64];
  int n = snprintf(text, sizeof text, "%s\"%s\":%llu", first ? "" : ",", key, (unsigned long long)v);
  dora__buf_raw(b, text, (size_t)n);
}

/* The counters as a JSON object's members (no braces); with seen, percentiles since then (and seen updated). */
static void counters(const DoraContext *ctx, dora_buf *b, uint32_t (*seen)[DORA_LATENCY_BUCKETS]) {
  dora__buf_raw(b, "\"outputs\":{", 11);
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    const dora_output_stats *s = &ctx->outputs[i].stats;
    if (i) dora__buf_u8(b, ',');
    dora__json_quote(b, ctx->outputs[i].name, strlen(ctx->outputs[i].name));
    dora__buf_raw(b, ":{", 2);
    field(b, "messages", load(&s->messages), true);
    field(b, "bytes", load(&s->bytes), false);
    field(b, "held", load(&s->held), false);
    dora__buf_u8(b, '}');
  }
  dora__buf_raw(b, "},\"inputs\":{", 12);
  for (size_t i = 0; i < ctx->n_inputs; i++) {
    const input_t *in = &ctx->inputs[i];
    if (i) dora__buf_u8(b, ',');
    dora__json_quote(b, in->id, strlen(in->id));
    dora__buf_raw(b, ":{", 2);
    field(b, "messages", load(&in->stats.messages), true);
    field(b, "bytes", load(&in->stats.bytes), false);
    field(b, "dropped", load(&in->dropped), false);
    field(b, "queued", __atomic_load_n(&in->queued, __ATOMIC_RELAXED), false);
    uint32_t delta[DORA_LATENCY_BUCKETS];
    uint64_t total = 0;
    for (int k = 0; k < DORA_LATENCY_BUCKETS; k++) {
      uint32_t now = __atomic_load_n(&in->stats.latency[k], __ATOMIC_RELAXED);
      delta[k] = now - (seen ? seen[i][k] : 0);
      if (seen) seen[i][k] = now;
      total += delta[k];
    }
    if (total) {
      field(b, "latencyCount", total, false);
      field(b, "latencyP50Us", percentile(delta, total, 0.5), false);
      field(b, "latencyP99Us", percentile(delta, total, 0.99), false);
    }
    dora__buf_u8(b, '}');
  }
  dora__buf_u8(b, '}');
}

void dora__stats_tick(DoraContext *ctx, void **socket) {
  struct dora_stats_state *st = ctx->stats_state;
  int64_t now = dora__now_ms();
  if (!st) {
    st = ctx->stats_state = calloc(1, sizeof *st);
    if (!st || !(st->seen = calloc(ctx->n_inputs + 1, sizeof *st->seen))) return;
  }
  if (st->last_ms && now - st->last_ms < REPORT_MS) return;
  st->last_ms = now;
  dora_buf b = {0};
  static const char head[] = "{\"t\":\"" DORA_T_STATS "\",\"node\":";
  dora__buf_raw(&b, head, sizeof head - 1);
  dora__json_quote(&b, ctx->node_id, strlen(ctx->node_id));
  dora__buf_u8(&b, ',');
  counters(ctx, &b, st->seen);
  dora__buf_u8(&b, '}');
  bool changed = !b.oom && (b.len != st->last.len || memcmp(b.data, st->last.data, b.len) != 0);
  if (changed && !*socket) {
    *socket = zmq_socket(ctx->zctx, ZMQ_DEALER);
    int zero = 0;
    if (*socket && (zmq_setsockopt(*socket, ZMQ_LINGER, &zero, sizeof zero) || zmq_connect(*socket, dora__jstr(ctx->config, DORA_CFG_DAEMON_REQUESTS)))) {
      zmq_close(*socket);
      *socket = NULL;
    }
  }
  if (changed && *socket) {
    zmq_send(*socket, b.data, b.len, ZMQ_DONTWAIT);
    dora_buf old = st->last;
    st->last = b;
    b = old;
  }
  dora__buf_free(&b);
}

void dora__stats_end(DoraContext *ctx) {
  struct dora_stats_state *st = ctx->stats_state;
  if (!st) return;
  dora__buf_free(&st->last);
  free(st->seen);
  free(st);
  ctx->stats_state = NULL;
}

int64_t dora_stats_json(const DoraContext *ctx, char *out, size_t capacity) {
  if (!ctx) return dora__fail(DORA_E_NO_CONTEXT, "dora_stats_json: NULL context");
  dora_buf b = {0};
  dora__buf_u8(&b, '{');
  counters(ctx, &b, NULL);
  dora__buf_u8(&b, '}');
  if (b.oom) {
    dora__buf_free(&b);
    return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  }
  int64_t len = (int64_t)b.len;
  if (out && b.len < capacity) {
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
  }
  dora__buf_free(&b);
  return len;
}

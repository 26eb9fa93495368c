/*
 * The sender's pool of shared-memory samples and drop tokens in both directions: a
 * sample is reused once every subscriber has returned it (or exited); tokens from our
 * receivers free our samples, and the samples this node released (or the messages it
 * found lost) go back to their senders, one frame per sender.
 */
#include <unistd.h>

#include "node.h"

#define MIN_SEGMENT (64 * 1024)

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

void dora__release_all(DoraContext *ctx, const char *holder) {
  for (size_t i = 0; i < ctx->n_samples; i++) sample_release(ctx, &ctx->samples[i], holder);
}

/* Applies the drop tokens receivers sent us. */
void dora__read_tokens(DoraContext *ctx) {
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
      dora__log_to_daemon(ctx, "warn", "ignored malformed drop tokens: %s", dora_last_error());
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

void dora__add_lost(DoraContext *ctx, topic_t *t, uint64_t first, uint64_t last) {
  if (t->sender < 0) return;
  sender_t *s = &ctx->senders[t->sender];
  dora_buf b = {0};
  dora_lost lost = {(char *)t->output, first, last};
  dora__tokens_write(&b, ctx->node_id, NULL, 0, &lost, 1);
  if (!b.oom && sender_socket(ctx, s)) zmq_send(s->push, b.data, b.len, ZMQ_DONTWAIT);
  dora__buf_free(&b);
}

/* Sends the samples this node released back to their senders, one frame per sender. */
void dora__flush_tokens(DoraContext *ctx) {
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

/* ---- the sample pool ---------------------------------------------------------------- */

/* A free sample of at least size bytes, or a new segment. Returns its index. */
int dora__acquire(DoraContext *ctx, size_t size) {
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
    sample_t *grown = dora__grow(ctx->samples, ctx->n_samples, sizeof *grown);
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
void dora__mark_sent(DoraContext *ctx, int index, int output, uint64_t seq) {
  sample_t *s = &ctx->samples[index];
  const dora_json *subs = ctx->outputs[output].subscribers;
  size_t n = subs ? subs->count : 0;
  free(s->holders);
  s->holders = calloc(n + 1, sizeof *s->holders);
  s->n_holders = 0;
  for (size_t k = 0; s->holders && k < n; k++)
    if (subs->items[k].type == DJ_STRING && !dora__is_exited(ctx, subs->items[k].string)) s->holders[s->n_holders++] = subs->items[k].string;
  s->output = output;
  s->seq = seq;
  s->state = s->n_holders > 0 ? SAMPLE_OUT : SAMPLE_FREE;
  size_t outstanding = 0;
  for (size_t i = 0; i < ctx->n_samples; i++) outstanding += ctx->samples[i].state == SAMPLE_OUT;
  if (outstanding > ctx->peak_outstanding) ctx->peak_outstanding = outstanding;
}

int dora_shared_memory_stats(const DoraContext *ctx, DoraSharedMemoryStats *out) {
  if (!ctx || !out) return dora__fail("dora_shared_memory_stats: NULL context or output");
  memset(out, 0, sizeof *out);
  out->created = ctx->n_samples;
  out->peak_outstanding = ctx->peak_outstanding;
  for (size_t i = 0; i < ctx->n_samples; i++) {
    out->outstanding += ctx->samples[i].state == SAMPLE_OUT;
    out->free += ctx->samples[i].state == SAMPLE_FREE;
  }
  pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
  for (const dora_mapping *m = ctx->cache.head; m; m = m->next) out->mapped++;
  pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
  return 0;
}

/*
 * The sender's pool of shared-memory samples and drop tokens in both directions: a
 * sample is reused once every subscriber has returned it (or exited); tokens from our
 * receivers free our samples, and the samples this node released (or the messages it
 * found lost) go back to their senders, one frame per sender.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "node.h"

/* ---- drop tokens -------------------------------------------------------------------- */

void dora__sample_release(DoraContext *ctx, sample_t *s, const char *holder) {
  if (s->state != SAMPLE_OUT) return;
  for (size_t i = 0; i < s->n_holders; i++) {
    if (strcmp(s->holders[i], holder) == 0) {
      if (ctx->outputs[s->output].n_taps) dora__tap_unhold(ctx, s, s->holders[i]);
      s->holders[i] = s->holders[--s->n_holders];
      break;
    }
  }
  if (s->n_holders == 0) dora__sample_free(ctx, (int)(s - ctx->samples));
}

void dora__release_all(DoraContext *ctx, const char *holder) {
  for (size_t i = 0; i < ctx->n_samples; i++) dora__sample_release(ctx, &ctx->samples[i], holder);
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
      for (size_t i = 0; i < t.n_samples; i++) {
        sample_t *s = dora__sample_by_id(ctx, t.samples[i]);
        if (s) dora__sample_release(ctx, s, t.receiver);
      }
      for (size_t i = 0; i < t.n_lost; i++)
        for (size_t k = 0; k < ctx->n_samples; k++) {
          sample_t *s = &ctx->samples[k];
          if (s->state == SAMPLE_OUT && strcmp(ctx->outputs[s->output].name, t.lost[i].output) == 0 && s->seq >= t.lost[i].first &&
              s->seq <= t.lost[i].last)
            dora__sample_release(ctx, s, t.receiver);
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

/*
 * Samples up to 256 KiB are slots of slab segments: power-of-two sizes from 64 bytes
 * (so payloads stay 64-byte aligned), up to SLAB_SLOTS of them in a segment of about
 * SLAB_BYTES. A burst of small messages then neither creates nor makes receivers map a
 * segment per message. Larger samples are whole segments, reused for payloads of
 * between a quarter and all of their size. Nothing is unmapped before the context closes.
 */
#define SLAB_MIN_SLOT 64
#define SLAB_MAX_SLOT (256 * 1024)
#define SLAB_BYTES (1024 * 1024)
#define SLAB_SLOTS 256
#define INDEX_BITS 24 /* a sample id's low bits: its index, so tokens find it at once */

static int slab_class(size_t slot) {
  int c = 0;
  while ((size_t)SLAB_MIN_SLOT << c < slot) c++;
  return c;
}

static int push_free_slot(DoraContext *ctx, int c, int index) {
  slot_stack *stack = &ctx->free_slots[c];
  if (stack->n == stack->cap) {
    size_t cap = stack->cap ? stack->cap * 2 : 64;
    int *grown = realloc(stack->items, cap * sizeof *grown);
    if (!grown) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    stack->items = grown;
    stack->cap = cap;
  }
  stack->items[stack->n++] = index;
  return 0;
}

void dora__sample_free(DoraContext *ctx, int index) {
  sample_t *s = &ctx->samples[index];
  if (s->state == SAMPLE_FREE) return;
  if (s->state == SAMPLE_OUT) {
    ctx->outstanding--;
    dora__count(&ctx->outputs[s->output].stats.held, (uint64_t)-1);
  }
  s->state = SAMPLE_FREE;
  size_t slot = ctx->segments[s->segment].slot;
  if (slot) push_free_slot(ctx, slab_class(slot), index); /* on failure the slot is only lost for reuse */
}

/* Adds a segment of `size` bytes holding `n` samples of `slot` bytes (one sample of `size` when slot is 0). */
static int add_segment(DoraContext *ctx, size_t size, size_t slot, size_t n) {
  if (ctx->n_samples + n >= (1u << INDEX_BITS)) return dora__fail(DORA_E_SHARED_MEMORY, "too many shared-memory samples");
  segment_t *segments = realloc(ctx->segments, (ctx->n_segments + 1) * sizeof *segments);
  if (!segments) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  ctx->segments = segments;
  sample_t *samples = realloc(ctx->samples, (ctx->n_samples + n) * sizeof *samples);
  if (!samples) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  ctx->samples = samples;
  segment_t *seg = &ctx->segments[ctx->n_segments];
  if (dora__segment_create(ctx->segment_prefix, size, &seg->seg)) return -1;
  seg->slot = slot;
  int first = (int)ctx->n_samples;
  for (size_t k = 0; k < n; k++) {
    samples[first + k] = (sample_t){.segment = (int)ctx->n_segments, .offset = k * slot, .capacity = slot ? slot : size, .state = SAMPLE_FREE};
    if (k > 0) push_free_slot(ctx, slab_class(slot), first + (int)(n - k)); /* first + 1 ends on top */
  }
  ctx->n_segments++;
  ctx->n_samples += n;
  return first;
}

/* A free sample of at least size bytes, or one in a new segment. Returns its index. */
int dora__acquire(DoraContext *ctx, size_t size) {
  int best = -1;
  if (size <= SLAB_MAX_SLOT) {
    size_t slot = SLAB_MIN_SLOT;
    while (slot < size) slot <<= 1;
    slot_stack *stack = &ctx->free_slots[slab_class(slot)];
    if (stack->n > 0) {
      best = stack->items[--stack->n];
    } else {
      size_t n = SLAB_BYTES / slot;
      n = n < 1 ? 1 : n > SLAB_SLOTS ? SLAB_SLOTS : n;
      size_t page = (size_t)sysconf(_SC_PAGESIZE);
      best = add_segment(ctx, (n * slot + page - 1) / page * page, slot, n);
      if (best < 0) return -1;
    }
  } else {
    for (size_t i = 0; i < ctx->n_samples; i++) {
      const sample_t *s = &ctx->samples[i];
      if (s->state == SAMPLE_FREE && ctx->segments[s->segment].slot == 0 && s->capacity >= size && s->capacity / 4 <= size &&
          (best < 0 || s->capacity < ctx->samples[best].capacity))
        best = (int)i;
    }
    if (best < 0) {
      size_t page = (size_t)sysconf(_SC_PAGESIZE);
      best = add_segment(ctx, (size + page - 1) / page * page, 0, 1);
      if (best < 0) return -1;
    }
  }
  sample_t *s = &ctx->samples[best];
  s->state = SAMPLE_ACQUIRED;
  s->id = (++ctx->next_sample_id << INDEX_BITS) | (uint64_t)best;
  return best;
}

/* The sample a token names, if that sample is still out under that id. */
sample_t *dora__sample_by_id(DoraContext *ctx, uint64_t id) {
  uint64_t index = id & ((1u << INDEX_BITS) - 1);
  return index < ctx->n_samples && ctx->samples[index].id == id ? &ctx->samples[index] : NULL;
}

/* Records who will hold a sent sample (call before sending: a token may come back at once). */
void dora__mark_sent(DoraContext *ctx, int index, int output, uint64_t seq) {
  sample_t *s = &ctx->samples[index];
  const output_t *out = &ctx->outputs[output];
  const dora_json *subs = out->subscribers;
  size_t n = subs ? subs->count : 0;
  free(s->holders);
  s->holders = calloc(n + out->n_taps + 1, sizeof *s->holders);
  s->n_holders = 0;
  for (size_t k = 0; s->holders && k < n; k++)
    if (subs->items[k].type == DJ_STRING && !dora__is_exited(ctx, subs->items[k].string) && !dora__is_remote_subscriber(out, subs->items[k].string))
      s->holders[s->n_holders++] = subs->items[k].string; /* one on another machine got bytes, not the sample */
  s->output = output;
  s->seq = seq;
  if (s->holders && out->n_taps) dora__tap_hold(ctx, s, output);
  if (s->n_holders == 0) {
    dora__sample_free(ctx, index);
    return;
  }
  s->state = SAMPLE_OUT;
  dora__count(&ctx->outputs[output].stats.held, 1);
  if (++ctx->outstanding > ctx->peak_outstanding) ctx->peak_outstanding = ctx->outstanding;
}

void dora__pool_close(DoraContext *ctx) {
  for (size_t i = 0; i < ctx->n_segments; i++) {
    bool held = false;
    for (size_t k = 0; k < ctx->n_samples && !held; k++) held = ctx->samples[k].segment == (int)i && ctx->samples[k].state == SAMPLE_OUT;
    dora_segment *seg = &ctx->segments[i].seg;
    if (held) { /* a receiver may not have opened it yet: unmap ours, leave the name for the daemon */
      munmap(seg->ptr, seg->size);
      free(seg->name);
    } else {
      dora__segment_destroy(seg); /* receivers keep their own mappings */
    }
  }
  for (size_t i = 0; i < ctx->n_samples; i++) free(ctx->samples[i].holders);
  for (int c = 0; c < SLAB_CLASSES; c++) free(ctx->free_slots[c].items);
  memset(ctx->free_slots, 0, sizeof ctx->free_slots);
  free(ctx->samples);
  free(ctx->segments);
  ctx->samples = NULL;
  ctx->segments = NULL;
  ctx->n_samples = ctx->n_segments = 0;
  ctx->outstanding = 0;
}

int dora_shared_memory_stats(const DoraContext *ctx, DoraSharedMemoryStats *out) {
  if (!ctx || !out) return dora__fail(DORA_E_NO_CONTEXT, "dora_shared_memory_stats: NULL context or output");
  memset(out, 0, sizeof *out);
  out->created = ctx->n_segments;
  out->outstanding = ctx->outstanding;
  out->peak_outstanding = ctx->peak_outstanding;
  for (size_t i = 0; i < ctx->n_samples; i++) out->free += ctx->samples[i].state == SAMPLE_FREE;
  pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
  for (const dora_mapping *m = ctx->cache.head; m; m = m->next) out->mapped++;
  pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
  return 0;
}

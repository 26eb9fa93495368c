/*
 * Taps: a process that is not in the dataflow's descriptor (dora topic echo, dora topic
 * hz, the web view) reading one of our outputs. It joins like a dynamic node (Lifecycle 9
 * in docs/architecture.md): the daemon gives it a configuration with one input, tells us
 * `node-restarted` naming it with `first` and the `outputs` it reads, and starts it once we
 * answered `restart-seen`. From then on it holds our shared-memory samples of those
 * outputs like a configured subscriber, reports what it missed before it connected as
 * lost, and returns what it reads (or drops: its queue is small) with drop tokens. When
 * it leaves, the daemon tells us `peer-exited` and we release what it held: a tap never
 * keeps our memory after it is gone.
 *
 * Nor while it is there: a tap that stops reading (stopped, or its event loop blocked)
 * would otherwise hold every sample sent meanwhile, through ZeroMQ's unbounded pipes. A tap
 * holds at most TAP_MAX_HELD samples of an output; sending one more takes its claim on the
 * oldest back. What it then reads of that message may be a later one's bytes: a tool's
 * view, never a node's data.
 */
#include "node.h"

#define TAP_MAX_HELD 8 /* its queue (4), what is on its way, and the one it shows */

static int output_index(const DoraContext *ctx, const char *name) {
  for (size_t i = 0; i < ctx->n_outputs; i++)
    if (strcmp(ctx->outputs[i].name, name) == 0) return (int)i;
  return -1;
}

static bool has_tap(const output_t *o, const char *peer) {
  for (size_t k = 0; k < o->n_taps; k++)
    if (strcmp(o->taps[k].id, peer) == 0) return true;
  return false;
}

bool dora__tap_join(DoraContext *ctx, const char *peer, const dora_json *outputs) {
  bool reads = false;
  for (size_t i = 0; outputs && outputs->type == DJ_ARRAY && i < outputs->count; i++) {
    int o = outputs->items[i].type == DJ_STRING ? output_index(ctx, outputs->items[i].string) : -1;
    if (o < 0) continue;
    output_t *out = &ctx->outputs[o];
    reads = true;
    if (has_tap(out, peer)) continue;
    struct dora_tap *grown = dora__grow(out->taps, out->n_taps, sizeof *grown);
    char *copy = strdup(peer);
    if (!grown || !copy) {
      free(copy);
      if (grown) out->taps = grown;
      continue; /* out of memory: the tap is not counted as a holder, which only risks its reads */
    }
    out->taps = grown;
    out->taps[out->n_taps++] = (struct dora_tap){copy, 0};
  }
  return reads;
}

bool dora__tap_leave(DoraContext *ctx, const char *peer) {
  bool was = false;
  for (size_t i = 0; i < ctx->n_outputs && !was; i++) was = has_tap(&ctx->outputs[i], peer);
  if (!was) return false;
  pthread_mutex_lock(&ctx->lock); /* see dora_allocate_output */
  dora__release_all(ctx, peer); /* before its name goes: the samples' holders point to it */
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    output_t *o = &ctx->outputs[i];
    for (size_t k = 0; k < o->n_taps; k++) {
      if (strcmp(o->taps[k].id, peer) != 0) continue;
      free(o->taps[k].id);
      o->taps[k] = o->taps[--o->n_taps];
      break;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  return was;
}

void dora__taps_free(DoraContext *ctx) {
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    for (size_t k = 0; k < ctx->outputs[i].n_taps; k++) free(ctx->outputs[i].taps[k].id);
    free(ctx->outputs[i].taps);
    ctx->outputs[i].taps = NULL;
    ctx->outputs[i].n_taps = 0;
  }
}

void dora__tap_hold(DoraContext *ctx, sample_t *s, int o) {
  output_t *out = &ctx->outputs[o];
  for (size_t k = 0; k < out->n_taps; k++) {
    struct dora_tap *tap = &out->taps[k];
    while (tap->held >= TAP_MAX_HELD) { /* a tap that stopped reading: its oldest sample goes back */
      sample_t *oldest = NULL;
      for (size_t i = 0; i < ctx->n_samples; i++) {
        sample_t *c = &ctx->samples[i];
        if (c == s || c->state != SAMPLE_OUT || c->output != o || (oldest && c->seq >= oldest->seq)) continue;
        for (size_t h = 0; h < c->n_holders; h++)
          if (c->holders[h] == tap->id) oldest = c;
      }
      if (!oldest) {
        tap->held = 0; /* (cannot happen: the count says it holds some) */
        break;
      }
      dora__sample_release(ctx, oldest, tap->id);
    }
    s->holders[s->n_holders++] = tap->id;
    tap->held++;
  }
}

void dora__tap_unhold(DoraContext *ctx, const sample_t *s, const char *holder) {
  output_t *out = &ctx->outputs[s->output];
  for (size_t k = 0; k < out->n_taps; k++)
    if (out->taps[k].id == holder && out->taps[k].held > 0) out->taps[k].held--;
}

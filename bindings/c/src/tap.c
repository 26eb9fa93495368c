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
 */
#include "node.h"

static int output_index(const DoraContext *ctx, const char *name) {
  for (size_t i = 0; i < ctx->n_outputs; i++)
    if (strcmp(ctx->outputs[i].name, name) == 0) return (int)i;
  return -1;
}

static bool has_tap(const output_t *o, const char *peer) {
  for (size_t k = 0; k < o->n_taps; k++)
    if (strcmp(o->taps[k], peer) == 0) return true;
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
    char **grown = dora__grow(out->taps, out->n_taps, sizeof *grown);
    char *copy = strdup(peer);
    if (!grown || !copy) {
      free(copy);
      if (grown) out->taps = grown;
      continue; /* out of memory: the tap is not counted as a holder, which only risks its reads */
    }
    out->taps = grown;
    out->taps[out->n_taps++] = copy;
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
      if (strcmp(o->taps[k], peer) != 0) continue;
      free(o->taps[k]);
      o->taps[k] = o->taps[--o->n_taps];
      break;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  return was;
}

void dora__taps_free(DoraContext *ctx) {
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    for (size_t k = 0; k < ctx->outputs[i].n_taps; k++) free(ctx->outputs[i].taps[k]);
    free(ctx->outputs[i].taps);
    ctx->outputs[i].taps = NULL;
    ctx->outputs[i].n_taps = 0;
  }
}

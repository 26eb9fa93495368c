/*
 * Events and the payloads they share: creating and freeing events, a payload's
 * reference count (the last release returns a shared-memory sample to its sender),
 * the per-input queues where a full queue drops its oldest event, dora_next_event
 * and the readers of an event (id, data, timestamp, message, metadata, Arrow export).
 */
#include "node.h"

/* ---- payloads and events -------------------------------------------------------------- */

pthread_mutex_t dora__standalone_lock = PTHREAD_MUTEX_INITIALIZER;
/* What an empty payload points at: never NULL, so buffer arithmetic stays defined. */
const uint8_t dora__empty_payload[64] __attribute__((aligned(64)));
dora_segment_cache dora__standalone_cache;

void dora__payload_unref(payload *p) {
  if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (p->mapping) {
    DoraContext *ctx = p->ctx;
    pthread_mutex_t *lock = ctx ? &ctx->lock : &dora__standalone_lock;
    pthread_mutex_lock(lock);
    dora__cache_unref(p->cache, p->mapping);
    if (ctx && !ctx->closed && p->sender >= 0) {
      sender_t *s = &ctx->senders[p->sender];
      if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *grown = realloc(s->samples, cap * sizeof *grown);
        if (grown) {
          s->samples = grown;
          s->cap = cap;
        }
      }
      if (s->n < s->cap) s->samples[s->n++] = p->sample; /* else the sender learns when this node exits */
    }
    pthread_mutex_unlock(lock);
  }
  if (p->has_msg) zmq_msg_close(&p->msg);
  free(p->copy);
  DoraContext *ctx = p->ctx;
  free(p);
  if (ctx) dora__ctx_unref(ctx);
}

static void payload_release_cb(void *p) { dora__payload_unref(p); }

DoraEvent *dora__event_new(enum DoraEventType type, const char *id, const char *message) {
  DoraEvent *ev = calloc(1, sizeof *ev);
  if (!ev) return NULL;
  ev->type = type;
  ev->input = -1;
  if (id) {
    ev->id_len = strlen(id);
    ev->id = malloc(ev->id_len + 1);
    if (!ev->id) goto oom;
    memcpy(ev->id, id, ev->id_len + 1);
  }
  if (message) {
    ev->message = malloc(strlen(message) + 1);
    if (!ev->message) goto oom;
    strcpy(ev->message, message);
  }
  return ev;
oom:
  free(ev->id);
  free(ev);
  return NULL;
}

void free_dora_event(void *dora_event) {
  DoraEvent *ev = dora_event;
  if (!ev) return;
  dora__payload_unref(ev->payload);
  dora_metadata_free(ev->metadata);
  dora__layout_free(ev->layout);
  free(ev->id);
  free(ev->message);
  free(ev);
}

void dora__push_event(DoraContext *ctx, DoraEvent *ev) {
  if (!ev) return;
  ev->next = NULL;
  if (ctx->tail) ctx->tail->next = ev;
  else ctx->head = ev;
  ctx->tail = ev;
}

/* Queues an input event; when its input's queue is full the oldest of that input goes. */
void dora__push_input(DoraContext *ctx, DoraEvent *ev) {
  input_t *in = &ctx->inputs[ev->input];
  dora__push_event(ctx, ev);
  if (++in->queued <= in->queue_size) return;
  DoraEvent **pe = &ctx->head;
  while (*pe && !((*pe)->type == DoraEventType_Input && (*pe)->input == ev->input)) pe = &(*pe)->next;
  DoraEvent *oldest = *pe;
  *pe = oldest->next;
  if (ctx->tail == oldest) {
    ctx->tail = NULL;
    for (DoraEvent *e = ctx->head; e; e = e->next) ctx->tail = e;
  }
  in->queued--;
  in->dropped++;
  free_dora_event(oldest); /* returns a shared-memory sample to its sender */
}

void dora__close_input(DoraContext *ctx, size_t i) {
  input_t *in = &ctx->inputs[i];
  if (!in->open) return;
  in->open = false;
  ctx->open_inputs--;
  DoraEvent *ev = NULL;
  if (!in->timed_out) { /* its timeout already said it closed */
    ev = dora__event_new(DoraEventType_InputClosed, in->id, NULL);
    if (ev) ev->input = (int)i;
    dora__push_event(ctx, ev);
  }
  /* as in dora: nothing left to receive is a reason to stop (a timed-out input can recover, so it still counts as open) */
  if (ctx->open_inputs == 0 && !ctx->stop_requested) {
    ctx->stop_requested = true;
    dora__push_event(ctx, dora__event_new(DoraEventType_Stop, NULL, DORA_STOP_ALL_INPUTS_CLOSED));
  }
}

int64_t dora__check_timeouts(DoraContext *ctx, int64_t now) {
  int64_t next = -1;
  for (size_t i = 0; i < ctx->n_inputs; i++) {
    input_t *in = &ctx->inputs[i];
    if (!in->timeout_ms || !in->open || !in->last_ms || in->timed_out) continue;
    int64_t left = in->last_ms + in->timeout_ms - now;
    if (left > 0) {
      if (next < 0 || left < next) next = left;
      continue;
    }
    in->timed_out = true;
    DoraEvent *ev = dora__event_new(DoraEventType_InputClosed, in->id, NULL);
    if (ev) ev->input = (int)i;
    dora__push_event(ctx, ev);
  }
  return next;
}

DoraEvent *dora__pop_event(DoraContext *ctx) {
  DoraEvent *ev = ctx->head;
  if (!ev) return NULL;
  ctx->head = ev->next;
  if (!ctx->head) ctx->tail = NULL;
  ev->next = NULL;
  if (ev->type == DoraEventType_Input) ctx->inputs[ev->input].queued--;
  if (ev->type == DoraEventType_Stop || ev->type == DoraEventType_Error) ctx->ended = true;
  return ev;
}

/* ---- events ------------------------------------------------------------------------- */

DoraEvent *dora_next_event_timeout(DoraContext *ctx, int64_t timeout_ms) {
  if (!ctx || ctx->closed) {
    dora__fail(DORA_E_NO_CONTEXT, "dora_next_event: no open context");
    return NULL;
  }
  int64_t deadline = timeout_ms >= 0 ? dora__now_ms() + timeout_ms : INT64_MAX;
  for (;;) {
    dora__pump(ctx);
    if (ctx->head) return dora__pop_event(ctx);
    if (ctx->ended) return NULL;
    if (ctx->n_inputs > 0 && ctx->open_inputs == 0) {
      ctx->ended = true;
      return NULL;
    }
    int64_t now = dora__now_ms(), left = deadline - now;
    if (left <= 0) return NULL;
    int64_t wake = dora_wake_after_ms(ctx);
    if (wake >= 0 && wake < left) left = wake;
    dora__wait_readable(ctx, left < POLL_MS ? (long)left : POLL_MS);
  }
}

void *dora_next_event(void *dora_context) { return dora_next_event_timeout(dora_context, -1); }

bool dora_event_stream_ended(const DoraContext *ctx) { return !ctx || ctx->closed || ctx->ended; }

enum DoraEventType read_dora_event_type(void *dora_event) {
  DoraEvent *ev = dora_event;
  return ev ? ev->type : DoraEventType_Unknown;
}

void read_dora_input_id(void *dora_event, char **out_ptr, size_t *out_len) {
  DoraEvent *ev = dora_event;
  bool has = ev && ev->type != DoraEventType_Stop && ev->type != DoraEventType_Error && ev->id;
  if (out_ptr) *out_ptr = has ? ev->id : NULL;
  if (out_len) *out_len = has ? ev->id_len : 0;
}

void read_dora_input_data(void *dora_event, char **out_ptr, size_t *out_len) {
  DoraEvent *ev = dora_event;
  if (out_ptr) *out_ptr = NULL;
  if (out_len) *out_len = 0;
  if (!ev || ev->type != DoraEventType_Input || !ev->layout || !ev->payload) return;
  const dora_layout *l = ev->layout;
  uint64_t width = dora__fixed_width(l->format);
  if (width == 0 || l->length == 0 || l->n_buffers < 2 || !l->buffers[1].present) return;
  if (out_ptr) *out_ptr = (char *)(ev->payload->data + l->buffers[1].offset + l->offset * width);
  if (out_len) *out_len = (size_t)(l->length * width);
}

unsigned long long read_dora_input_timestamp(void *dora_event) {
  DoraEvent *ev = dora_event;
  return ev ? ev->timestamp : 0;
}

const char *dora_event_message(const DoraEvent *ev) {
  return ev && ev->type != DoraEventType_Input ? ev->message : NULL;
}

uint64_t dora_dropped_messages(const DoraContext *ctx, const char *input) {
  for (size_t i = 0; ctx && input && i < ctx->n_inputs; i++)
    if (strcmp(ctx->inputs[i].id, input) == 0) return ctx->inputs[i].dropped;
  return 0;
}

const DoraMetadata *dora_event_metadata(const DoraEvent *ev) { return ev && ev->metadata ? ev->metadata : dora__metadata_empty(); }

int dora_event_arrow(const DoraEvent *ev, struct ArrowArray *out_array, struct ArrowSchema *out_schema) {
  if (!ev || ev->type != DoraEventType_Input || !ev->layout || !out_array || !out_schema)
    return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_event_arrow: not an input event (or NULL output structs)");
  payload *p = ev->payload;
  const uint8_t *data = p && p->data ? p->data : dora__empty_payload;
  if (p) __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
  if (dora__layout_export(ev->layout, data, out_array, out_schema, p ? payload_release_cb : NULL, p)) {
    dora__payload_unref(p);
    return -1;
  }
  return 0;
}

/*
 * Event records: an event handed to a binding in one call, as bytes it can read
 * without further calls into the library (node-api/receive.ts reads them). The layout
 * is protocol/facts.json's eventRecord: offsets DORA_R_* and flags DORA_RECORD_* in
 * facts.h, documented with dora_next_event_record in the header. Inline payloads are
 * copied into the record and their event freed at once; a shared-memory payload stays
 * in place, its event handle travels in the record, and the binding frees the event
 * when the data is released. The binding keeps one view per mapped segment, holding a
 * reference on the mapping (dora_mapping_retain/release) so that the segment stays
 * mapped while any of its views can be reached.
 */
#include "node.h"

/* Within a burst, queued events are handed out without draining the sockets before each (a system call). */
#define PUMP_INTERVAL_MS 1

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof v); } /* little-endian hosts only, like the rest */
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof v); }

int64_t dora_next_event_record(DoraContext *ctx, uint8_t *record, size_t capacity) {
  if (!ctx || ctx->closed) return dora__fail(DORA_E_NO_CONTEXT, "dora_next_event_record: no open context");
  int64_t now = dora__now_ms();
  if (!ctx->head || now - ctx->last_pump >= PUMP_INTERVAL_MS) {
    dora__pump(ctx);
    ctx->last_pump = now;
  }
  if (!ctx->head && !ctx->ended) dora__check_daemon(ctx); /* an ERROR event if it is gone */
  DoraEvent *ev = ctx->head;
  if (!ev) {
    if (ctx->n_inputs > 0 && ctx->open_inputs == 0) ctx->ended = true;
    return 0;
  }
  dora_buf *b = &ctx->scratch;
  b->len = 0;
  size_t layout_len = 0;
  if (ev->type == DoraEventType_Input) {
    dora__layout_write(b, ev->layout);
    layout_len = b->len;
    dora__metadata_write(b, ev->metadata ? ev->metadata : dora__metadata_empty());
    if (b->oom) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  }
  const payload *p = ev->type == DoraEventType_Input ? ev->payload : NULL;
  bool shared = p && p->mapping;
  size_t message_len = ev->message ? strlen(ev->message) : 0;
  size_t inline_len = p && !shared ? p->len : 0;
  size_t end = DORA_R_BODY + b->len + message_len;
  size_t total = inline_len > 0 ? ((end + 7) & ~(size_t)7) + inline_len : end;
  if (total > (size_t)INT64_MAX) return dora__fail(DORA_E_INVALID_ARGUMENT, "event record too large");
  if (total > capacity || !record) return (int64_t)total; /* the caller grows its buffer and asks again */

  dora__pop_event(ctx);
  memset(record, 0, DORA_R_BODY);
  record[DORA_R_TYPE] = (uint8_t)ev->type;
  record[DORA_R_FLAGS] = shared ? DORA_RECORD_SHARED : 0;
  if (ev->type == DoraEventType_Input && ev->input >= 0) {
    /* the binding may reuse what it decoded from this input's previous layout */
    dora_buf *last = &ctx->inputs[ev->input].last_layout;
    if (last->len == layout_len && memcmp(last->data, b->data, layout_len) == 0) {
      record[DORA_R_FLAGS] |= DORA_RECORD_SAME_LAYOUT;
    } else {
      last->len = 0;
      dora__buf_raw(last, b->data, layout_len);
      if (last->oom) last->len = 0, last->oom = false;
    }
  }
  put16(record + DORA_R_INPUT, ev->input >= 0 ? (uint16_t)ev->input : DORA_RECORD_NO_INPUT);
  put32(record + DORA_R_LENGTH, (uint32_t)total);
  put64(record + DORA_R_TIMESTAMP, ev->timestamp);
  put32(record + DORA_R_LAYOUT_LENGTH, (uint32_t)layout_len);
  put32(record + DORA_R_PARAMETERS_LENGTH, (uint32_t)(b->len - layout_len));
  put32(record + DORA_R_MESSAGE_LENGTH, (uint32_t)message_len);
  put32(record + DORA_R_INLINE_LENGTH, (uint32_t)inline_len);
  if (b->len) memcpy(record + DORA_R_BODY, b->data, b->len);
  if (message_len) memcpy(record + DORA_R_BODY + b->len, ev->message, message_len);
  if (shared) {
    put64(record + DORA_R_EVENT, (uint64_t)(uintptr_t)ev);
    put64(record + DORA_R_PAYLOAD_ADDRESS, (uint64_t)(uintptr_t)p->data);
    put64(record + DORA_R_PAYLOAD_LENGTH, p->len);
    put64(record + DORA_R_MAPPING, (uint64_t)(uintptr_t)p->mapping);
    put64(record + DORA_R_MAPPING_ADDRESS, (uint64_t)(uintptr_t)p->mapping->ptr);
    put64(record + DORA_R_MAPPING_LENGTH, p->mapping->size);
  } else {
    if (inline_len) memcpy(record + total - inline_len, p->data, inline_len);
    free_dora_event(ev);
  }
  return (int64_t)total;
}

int dora_mapping_retain(DoraContext *ctx, void *mapping) {
  if (!ctx || !mapping) return dora__fail(DORA_E_NO_CONTEXT, "dora_mapping_retain: NULL context or mapping");
  pthread_mutex_lock(&ctx->lock);
  ((dora_mapping *)mapping)->refs++;
  pthread_mutex_unlock(&ctx->lock);
  __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL); /* the context outlives the mapping */
  return 0;
}

void dora_mapping_release(DoraContext *ctx, void *mapping) {
  if (!ctx || !mapping) return;
  pthread_mutex_lock(&ctx->lock);
  dora__cache_unref(&ctx->cache, mapping);
  pthread_mutex_unlock(&ctx->lock);
  dora__ctx_unref(ctx);
}

/* Binary messages (docs/protocol.md §5.1 and §8.3) and the hybrid logical clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"


static int read_preamble(dora_reader *r, const char *what) {
  const uint8_t *magic;
  uint16_t version;
  if (dora__rd_raw(r, DORA_MAGIC_LEN, &magic, what)) return -1;
  if (memcmp(magic, DORA_MAGIC, DORA_MAGIC_LEN) != 0) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: not a dora-ts message (bad magic)", what);
  if (dora__rd_u16(r, &version, what)) return -1;
  if (version != DORA_PROTOCOL_VERSION) {
    return dora__fail(DORA_E_PROTOCOL_VERSION, "%s: protocol version %u, this node speaks version %d; run every node with the same dora-ts release", what, version,
                      DORA_PROTOCOL_VERSION);
  }
  return 0;
}

void dora__header_free(dora_header *h) {
  dora_metadata_free(h->metadata);
  dora__layout_free(h->layout);
  free(h->segment);
  memset(h, 0, sizeof *h);
}

int dora__header_read(const uint8_t *p, size_t len, dora_header *h) {
  memset(h, 0, sizeof *h);
  dora_reader r = {p, len, 0};
  if (read_preamble(&r, "data header") || dora__rd_u8(&r, &h->kind, "message kind") || dora__rd_u8(&r, &h->location, "payload location") ||
      dora__rd_u64(&r, &h->timestamp, "timestamp"))
    return -1;
  if (h->kind == DORA_KIND_END_OF_STREAM) {
    if (h->location != DORA_LOC_NONE) return dora__fail(DORA_E_MALFORMED_MESSAGE, "end-of-stream message with payload location %u", h->location);
    if (r.at != r.len) return dora__fail(DORA_E_MALFORMED_MESSAGE, "end-of-stream message: %zu unexpected trailing bytes", r.len - r.at);
    return 0;
  }
  if (h->kind != DORA_KIND_DATA) return dora__fail(DORA_E_MALFORMED_MESSAGE, "unknown message kind %u", h->kind);
  if (dora__rd_u64(&r, &h->seq, "sequence number") || dora__metadata_read(&r, &h->metadata)) goto fail;
  if (h->location == DORA_LOC_INLINE) {
    if (dora__rd_u64(&r, &h->inline_length, "payload length")) goto fail;
  } else if (h->location == DORA_LOC_SHARED_MEMORY) {
    if (dora__rd_str16(&r, &h->segment, NULL, "segment name") || dora__rd_u64(&r, &h->sample, "sample id") ||
        dora__rd_u64(&r, &h->shm_offset, "payload offset") || dora__rd_u64(&r, &h->shm_length, "payload length"))
      goto fail;
  } else {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "unknown payload location %u", h->location);
    goto fail;
  }
  if (dora__layout_read(&r, &h->layout, 0)) goto fail;
  if (r.at != r.len) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "data header: %zu unexpected trailing bytes", r.len - r.at);
    goto fail;
  }
  return 0;
fail:
  dora__header_free(h);
  return -1;
}

int dora__header_write(dora_buf *b, const dora_header *h) {
  dora__buf_raw(b, DORA_MAGIC, DORA_MAGIC_LEN);
  dora__buf_u16(b, DORA_PROTOCOL_VERSION);
  dora__buf_u8(b, DORA_KIND_DATA);
  dora__buf_u8(b, h->location);
  dora__buf_u64(b, h->timestamp);
  dora__buf_u64(b, h->seq);
  if (h->raw_metadata) dora__buf_raw(b, h->raw_metadata, h->raw_metadata_len);
  else if (dora__metadata_write(b, h->metadata)) return -1;
  if (h->location == DORA_LOC_INLINE) {
    dora__buf_u64(b, h->inline_length);
  } else {
    dora__buf_str16(b, h->segment, strlen(h->segment));
    dora__buf_u64(b, h->sample);
    dora__buf_u64(b, h->shm_offset);
    dora__buf_u64(b, h->shm_length);
  }
  if (h->raw_layout) dora__buf_raw(b, h->raw_layout, h->raw_layout_len);
  else dora__layout_write(b, h->layout);
  return b->oom ? dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory (or a name longer than 65535 bytes)") : 0;
}

void dora__eos_write(dora_buf *b, uint64_t timestamp) {
  dora__buf_raw(b, DORA_MAGIC, DORA_MAGIC_LEN);
  dora__buf_u16(b, DORA_PROTOCOL_VERSION);
  dora__buf_u8(b, DORA_KIND_END_OF_STREAM);
  dora__buf_u8(b, DORA_LOC_NONE);
  dora__buf_u64(b, timestamp);
}

void dora__tokens_free(dora_tokens *t) {
  free(t->receiver);
  free(t->samples);
  for (size_t i = 0; i < t->n_lost; i++) free(t->lost[i].output);
  free(t->lost);
  memset(t, 0, sizeof *t);
}

int dora__tokens_read(const uint8_t *p, size_t len, dora_tokens *t) {
  memset(t, 0, sizeof *t);
  dora_reader r = {p, len, 0};
  uint8_t kind, reserved;
  uint32_t n, m;
  if (read_preamble(&r, "drop tokens") || dora__rd_u8(&r, &kind, "message kind")) return -1;
  if (kind != DORA_KIND_DROP_TOKENS) return dora__fail(DORA_E_MALFORMED_MESSAGE, "expected drop tokens (kind 3), got kind %u", kind);
  if (dora__rd_u8(&r, &reserved, "reserved")) return -1;
  if (reserved != 0) return dora__fail(DORA_E_MALFORMED_MESSAGE, "drop tokens: reserved byte must be 0");
  if (dora__rd_str16(&r, &t->receiver, NULL, "receiver node id") || dora__rd_u32(&r, &n, "sample count")) goto fail;
  if (n > DORA_MAX_DROP_TOKEN_ENTRIES || (size_t)n * 8 > r.len - r.at) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "drop tokens: %u samples exceed the frame", n);
    goto fail;
  }
  t->samples = malloc((size_t)n * 8 + 8);
  if (!t->samples) goto oom;
  for (uint32_t i = 0; i < n; i++) {
    if (dora__rd_u64(&r, &t->samples[i], "sample id")) goto fail;
    t->n_samples++;
  }
  if (dora__rd_u32(&r, &m, "lost range count")) goto fail;
  if (m > DORA_MAX_DROP_TOKEN_ENTRIES || (size_t)m * 18 > r.len - r.at) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "drop tokens: %u lost ranges exceed the frame", m);
    goto fail;
  }
  t->lost = calloc((size_t)m + 1, sizeof *t->lost);
  if (!t->lost) goto oom;
  for (uint32_t i = 0; i < m; i++) {
    dora_lost *l = &t->lost[i];
    if (dora__rd_str16(&r, &l->output, NULL, "output")) goto fail;
    t->n_lost++;
    if (dora__rd_u64(&r, &l->first, "first lost sequence number") || dora__rd_u64(&r, &l->last, "last lost sequence number")) goto fail;
    if (l->last < l->first) {
      dora__fail(DORA_E_MALFORMED_MESSAGE, "drop tokens: lost range [%llu, %llu] is empty", (unsigned long long)l->first, (unsigned long long)l->last);
      goto fail;
    }
  }
  if (r.at != r.len) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "drop tokens: %zu unexpected trailing bytes", r.len - r.at);
    goto fail;
  }
  return 0;
oom:
  dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
fail:
  dora__tokens_free(t);
  return -1;
}

void dora__tokens_write(dora_buf *b, const char *receiver, const uint64_t *samples, size_t n, const dora_lost *lost, size_t n_lost) {
  dora__buf_raw(b, DORA_MAGIC, DORA_MAGIC_LEN);
  dora__buf_u16(b, DORA_PROTOCOL_VERSION);
  dora__buf_u8(b, DORA_KIND_DROP_TOKENS);
  dora__buf_u8(b, 0);
  dora__buf_str16(b, receiver, strlen(receiver));
  dora__buf_u32(b, (uint32_t)n);
  for (size_t i = 0; i < n; i++) dora__buf_u64(b, samples[i]);
  dora__buf_u32(b, (uint32_t)n_lost);
  for (size_t i = 0; i < n_lost; i++) {
    dora__buf_str16(b, lost[i].output, strlen(lost[i].output));
    dora__buf_u64(b, lost[i].first);
    dora__buf_u64(b, lost[i].last);
  }
}

static uint64_t ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t dora__clock_now(dora_clock *c) {
  /* wall time fixed at the first call plus monotonic progress: no jumps backwards */
  static _Thread_local uint64_t epoch;
  if (!epoch) epoch = ns(CLOCK_REALTIME) - ns(CLOCK_MONOTONIC);
  uint64_t physical = epoch + ns(CLOCK_MONOTONIC);
  c->last = physical > c->last ? physical : c->last + 1;
  return c->last;
}

void dora__clock_observe(dora_clock *c, uint64_t remote) {
  if (remote > c->last) c->last = remote;
}

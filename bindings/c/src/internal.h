/*
 * Internals of libdora_node_api shared between its modules. Nothing here is public:
 * every symbol is prefixed dora__ and hidden from the shared library's exports.
 */
#ifndef DORA_INTERNAL_H
#define DORA_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dora_node_api.h"
#include "facts.h" /* generated from protocol/facts.json: the protocol's constants */

/* ---- errors (wire.c) ------------------------------------------------------------- */

/* Records the calling thread's last error, a code (enum DoraErrorCode) and a message (what
   dora_last_error_code and dora_last_error return); returns -1. */
int dora__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records the last error again with another code, its message prefixed by prefix (may be NULL); returns -1. */
int dora__fail_again(int code, const char *prefix);

/* ---- growable byte buffer and bounds-checked reader (wire.c) ----------------------- */

typedef struct {
  uint8_t *data;
  size_t len, cap;
  bool oom;
} dora_buf;

void dora__buf_free(dora_buf *b);
void dora__buf_raw(dora_buf *b, const void *p, size_t n);
void dora__buf_u8(dora_buf *b, uint8_t v);
void dora__buf_u16(dora_buf *b, uint16_t v);
void dora__buf_u32(dora_buf *b, uint32_t v);
void dora__buf_u64(dora_buf *b, uint64_t v);
void dora__buf_f64(dora_buf *b, double v);
void dora__buf_str16(dora_buf *b, const char *s, size_t n);
void dora__buf_str32(dora_buf *b, const char *s, size_t n);

typedef struct {
  const uint8_t *p;
  size_t len, at;
} dora_reader;

int dora__rd_u8(dora_reader *r, uint8_t *out, const char *what);
int dora__rd_u16(dora_reader *r, uint16_t *out, const char *what);
int dora__rd_u32(dora_reader *r, uint32_t *out, const char *what);
int dora__rd_u64(dora_reader *r, uint64_t *out, const char *what);
int dora__rd_f64(dora_reader *r, double *out, const char *what);
int dora__rd_raw(dora_reader *r, size_t n, const uint8_t **out, const char *what);
/* A str16/str32 as a fresh NUL-terminated copy (the caller frees); checks UTF-8. */
int dora__rd_str16(dora_reader *r, char **out, size_t *len, const char *what);
int dora__rd_str32(dora_reader *r, char **out, size_t *len, const char *what);
bool dora__utf8_valid(const uint8_t *p, size_t n);

static inline uint64_t dora__le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* ---- JSON (json.c): just enough for the node configuration and control messages ---- */

typedef enum { DJ_NULL, DJ_BOOL, DJ_NUMBER, DJ_STRING, DJ_ARRAY, DJ_OBJECT } dora_json_type;

typedef struct dora_json {
  dora_json_type type;
  bool boolean;
  double number;
  char *string; /* DJ_STRING: UTF-8, NUL-terminated (it may also contain NULs: see string_len) */
  size_t string_len;
  size_t count; /* DJ_ARRAY / DJ_OBJECT: number of items */
  struct dora_json *items;
  char **keys; /* DJ_OBJECT */
} dora_json;

/* Parses text[0..len); NULL on error (dora_last_error says where). Free with dora__json_free. */
dora_json *dora__json_parse(const char *text, size_t len);
void dora__json_free(dora_json *v);
const dora_json *dora__json_get(const dora_json *object, const char *key);
/* Appends s as a JSON string literal (quoted, escaped). */
void dora__json_quote(dora_buf *b, const char *s, size_t n);

/* ---- metadata parameters (metadata.c) ---------------------------------------------- */

int dora__metadata_write(dora_buf *b, const DoraMetadata *m);
/* Reads parameters; *out is a new map (NULL on error). */
int dora__metadata_read(dora_reader *r, DoraMetadata **out);
const DoraMetadata *dora__metadata_empty(void);
/* Checks that p[0..len) is exactly one encoded parameter map, without building it. */
int dora__metadata_check(const uint8_t *p, size_t len);

/* ---- Arrow layout (arrow.c) -------------------------------------------------------- */

typedef struct {
  bool present;
  uint64_t offset, length;
} dora_range;

typedef struct dora_layout {
  char *format;
  char *name;
  bool nullable;
  uint64_t length;
  int64_t null_count;
  uint64_t offset;
  uint8_t n_buffers;
  dora_range *buffers;
  uint8_t n_children;
  struct dora_layout **children;
} dora_layout;

int dora__layout_read(dora_reader *r, dora_layout **out, int depth);
void dora__layout_write(dora_buf *b, const dora_layout *l);
void dora__layout_free(dora_layout *l);
/* Checks every range, size and offset of l against payload[0..len) (docs/protocol.md §9). */
int dora__layout_validate(const dora_layout *l, const uint8_t *payload, size_t len);
/* Builds C Data Interface structs over the payload; calls on_release(ctx) once when the root array is released. */
int dora__layout_export(const dora_layout *l, const uint8_t *payload, struct ArrowArray *array, struct ArrowSchema *schema,
                        void (*on_release)(void *), void *release_ctx);

/* A payload plan for an outgoing array: its layout and where to copy each buffer from. */
typedef struct {
  dora_layout *layout;
  size_t size;
  size_t n_copies;
  struct dora_copy {
    const void *src;
    size_t at, len;
  } *copies;
} dora_plan;

int dora__plan_arrow(const struct ArrowArray *array, const struct ArrowSchema *schema, dora_plan *out);
void dora__plan_write(const dora_plan *plan, uint8_t *target);
void dora__plan_free(dora_plan *plan);
dora_layout *dora__layout_uint8(uint64_t length);
/* Bytes per value of a fixed-width primitive format ("C", "i", "g", "w:3", ...); 0 for any other. */
uint64_t dora__fixed_width(const char *format);

/* ---- data messages (message.c) ----------------------------------------------------- */

typedef struct {
  uint8_t kind, location;
  uint64_t timestamp, seq;
  DoraMetadata *metadata;
  uint64_t inline_length;
  char *segment;
  uint64_t sample, shm_offset, shm_length;
  dora_layout *layout;
  /* when set, written instead of metadata / layout: bytes already in their wire encoding */
  const uint8_t *raw_metadata, *raw_layout;
  size_t raw_metadata_len, raw_layout_len;
} dora_header;

int dora__header_read(const uint8_t *p, size_t len, dora_header *out);
void dora__header_free(dora_header *h);
int dora__header_write(dora_buf *b, const dora_header *h);
void dora__eos_write(dora_buf *b, uint64_t timestamp);

typedef struct {
  char *output;
  uint64_t first, last;
} dora_lost;

typedef struct {
  char *receiver;
  size_t n_samples;
  uint64_t *samples;
  size_t n_lost;
  dora_lost *lost;
} dora_tokens;

int dora__tokens_read(const uint8_t *p, size_t len, dora_tokens *out);
void dora__tokens_write(dora_buf *b, const char *receiver, const uint64_t *samples, size_t n, const dora_lost *lost, size_t n_lost);
void dora__tokens_free(dora_tokens *t);

/* ---- the SIGBUS guard (guard.c) ---------------------------------------------------- */

typedef struct dora_guard dora_guard;

/* Registers a receive mapping [start, start + len), installing the process's SIGBUS handler
   on first use: a read past the end of its segment, once shrunk, then reads zeros. NULL
   when out of memory. Any thread; never from a signal handler. */
dora_guard *dora__guard_add(const void *start, size_t len);
/* Unregisters g (NULL: nothing) before its mapping goes, waiting for a handler repairing it;
   returns whether a read ever faulted in it. */
bool dora__guard_remove(dora_guard *g);
/* Whether a read past the end of g's shrunk segment was turned into zeros. */
bool dora__guard_damaged(const dora_guard *g);
/* Faults the guard absorbed in this process so far: a change means some mapping was damaged. */
uint64_t dora__guard_faults(void);

/* ---- shared memory (shm.c) --------------------------------------------------------- */

typedef struct dora_mapping {
  char *name;
  uint8_t *ptr;
  size_t size;
  long refs;
  uint64_t last_used;
  struct dora_mapping *next;
  dora_guard *guard; /* NULL for an empty segment (nothing mapped) */
  bool reported;     /* its damage was handed to dora__cache_shrunk */
} dora_mapping;

/* Receiver side: mappings by name, read-only, cached. Not thread-safe: callers lock. */
typedef struct {
  dora_mapping *head;
  uint64_t tick;
  dora_buf shrunk; /* names (NUL-terminated) of damaged mappings unmapped before they were reported */
} dora_segment_cache;

int dora__segment_name_valid(const char *name);
/* Maps (or reuses, unless damaged) segment name and checks [offset, offset + length) lies inside; takes a reference. */
int dora__cache_view(dora_segment_cache *c, const char *name, uint64_t offset, uint64_t length, dora_mapping **out);
void dora__cache_unref(dora_segment_cache *c, dora_mapping *m);
void dora__cache_close(dora_segment_cache *c);
/* Appends to names (NUL-terminated each) the segments found shrunk since the last call: each once. */
void dora__cache_shrunk(dora_segment_cache *c, dora_buf *names);

/* Sender side: a writable segment. */
typedef struct {
  char *name;
  uint8_t *ptr;
  size_t size;
} dora_segment;

int dora__segment_create(const char *prefix, size_t size, dora_segment *out);
void dora__segment_destroy(dora_segment *s);
/* Unlinks every segment whose name starts with prefix (a dataflow's, once its daemon is gone); returns how many. */
size_t dora__unlink_segments(const char *prefix);

/* ---- clock (message.c) ------------------------------------------------------------- */

typedef struct {
  uint64_t last;
} dora_clock;

uint64_t dora__clock_now(dora_clock *c);
void dora__clock_observe(dora_clock *c, uint64_t remote);

/* ---- checks without a dataflow (used by the vector tests) -------------------------- */

/*
 * Decodes a data message from its frames (after the topic) the way a node does, shared
 * memory included. On success *out_event is an Input event (free with free_dora_event)
 * or, for end of stream, NULL with *out_eos set.
 */
uint64_t dora__event_seq(const DoraEvent *ev);
/* Encodes an inline data message of `array` (for tools and tests); *header and *out_payload are malloc'd: the caller frees both. */
int dora__encode_inline(const struct ArrowArray *array, const struct ArrowSchema *schema, const DoraMetadata *metadata, uint64_t timestamp,
                        uint64_t seq, uint8_t **header, size_t *header_len, uint8_t **out_payload, size_t *payload_len);
int dora__decode_frames(const uint8_t *const *frames, const size_t *lens, size_t n, DoraEvent **out_event, bool *out_eos);

#endif /* DORA_INTERNAL_H */

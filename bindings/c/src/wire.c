/* Little-endian encoding, bounds-checked decoding, UTF-8 checks and the per-thread error (code and message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[1024];
static _Thread_local bool has_error;
static _Thread_local int last_code;

int dora__fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  has_error = true;
  last_code = code;
  return -1;
}

int dora__fail_again(int code, const char *prefix) {
  char saved[sizeof last_error];
  snprintf(saved, sizeof saved, "%s", has_error ? last_error : "unknown error");
  return dora__fail(code, "%s%s", prefix ? prefix : "", saved);
}

const char *dora_last_error(void) { return has_error ? last_error : NULL; }

int dora_last_error_code(void) { return has_error ? last_code : DORA_E_OK; }

const char *dora_error_name(int code) {
  static const char *const names[] = DORA_ERROR_NAMES;
  return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : NULL;
}

void dora__buf_free(dora_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static bool reserve(dora_buf *b, size_t n) {
  if (b->oom) return false;
  if (b->len + n <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  uint8_t *data = realloc(b->data, cap);
  if (!data) {
    b->oom = true;
    return false;
  }
  b->data = data;
  b->cap = cap;
  return true;
}

void dora__buf_raw(dora_buf *b, const void *p, size_t n) {
  if (n == 0 || !reserve(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void put_le(dora_buf *b, uint64_t v, int bytes) {
  uint8_t tmp[8];
  for (int i = 0; i < bytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
  dora__buf_raw(b, tmp, (size_t)bytes);
}

void dora__buf_u8(dora_buf *b, uint8_t v) { put_le(b, v, 1); }
void dora__buf_u16(dora_buf *b, uint16_t v) { put_le(b, v, 2); }
void dora__buf_u32(dora_buf *b, uint32_t v) { put_le(b, v, 4); }
void dora__buf_u64(dora_buf *b, uint64_t v) { put_le(b, v, 8); }

void dora__buf_f64(dora_buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  put_le(b, bits, 8);
}

void dora__buf_str16(dora_buf *b, const char *s, size_t n) {
  if (n > 0xffff) {
    b->oom = true; /* callers check lengths first; this only guards */
    return;
  }
  dora__buf_u16(b, (uint16_t)n);
  dora__buf_raw(b, s, n);
}

void dora__buf_str32(dora_buf *b, const char *s, size_t n) {
  dora__buf_u32(b, (uint32_t)n);
  dora__buf_raw(b, s, n);
}

static int take(dora_reader *r, size_t n, const char *what, const uint8_t **out) {
  if (n > r->len - r->at) {
    return dora__fail(DORA_E_MALFORMED_MESSAGE, "truncated frame: %s needs %zu bytes at offset %zu, %zu left", what, n, r->at, r->len - r->at);
  }
  *out = r->p + r->at;
  r->at += n;
  return 0;
}

static int get_le(dora_reader *r, int bytes, uint64_t *out, const char *what) {
  const uint8_t *p = NULL;
  if (take(r, (size_t)bytes, what, &p)) return -1;
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  *out = v;
  return 0;
}

int dora__rd_u8(dora_reader *r, uint8_t *out, const char *what) {
  uint64_t v;
  if (get_le(r, 1, &v, what)) return -1;
  *out = (uint8_t)v;
  return 0;
}

int dora__rd_u16(dora_reader *r, uint16_t *out, const char *what) {
  uint64_t v;
  if (get_le(r, 2, &v, what)) return -1;
  *out = (uint16_t)v;
  return 0;
}

int dora__rd_u32(dora_reader *r, uint32_t *out, const char *what) {
  uint64_t v;
  if (get_le(r, 4, &v, what)) return -1;
  *out = (uint32_t)v;
  return 0;
}

int dora__rd_u64(dora_reader *r, uint64_t *out, const char *what) { return get_le(r, 8, out, what); }

int dora__rd_f64(dora_reader *r, double *out, const char *what) {
  uint64_t v;
  if (get_le(r, 8, &v, what)) return -1;
  memcpy(out, &v, 8);
  return 0;
}

int dora__rd_raw(dora_reader *r, size_t n, const uint8_t **out, const char *what) { return take(r, n, what, out); }

bool dora__utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (extra > n - i - 1) return false;
    for (size_t k = 1; k <= extra; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    /* no overlong forms, no surrogates, nothing past U+10FFFF */
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += extra + 1;
  }
  return true;
}

static int read_str(dora_reader *r, size_t n, char **out, size_t *len, const char *what) {
  const uint8_t *p = NULL;
  if (take(r, n, what, &p)) return -1;
  if (!dora__utf8_valid(p, n)) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s is not valid UTF-8", what);
  char *s = malloc(n + 1);
  if (!s) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  memcpy(s, p, n);
  s[n] = 0;
  *out = s;
  if (len) *len = n;
  return 0;
}

int dora__rd_str16(dora_reader *r, char **out, size_t *len, const char *what) {
  uint16_t n;
  if (dora__rd_u16(r, &n, what)) return -1;
  return read_str(r, n, out, len, what);
}

int dora__rd_str32(dora_reader *r, char **out, size_t *len, const char *what) {
  uint32_t n;
  if (dora__rd_u32(r, &n, what)) return -1;
  return read_str(r, n, out, len, what);
}

/* Metadata parameters: the typed key → value map of docs/protocol.md §5.2. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  char *ptr;
  size_t len;
} dora_str;

typedef struct {
  char *key;
  enum DoraParameterType type;
  union {
    bool b;
    int64_t i;
    double f;
    dora_str s;
  } v;
  size_t n;     /* list length */
  void *items;  /* uint8_t[] (bool), int64_t[], double[] or dora_str[] */
} param;

struct DoraMetadata {
  param *items;
  size_t n, cap;
};

static const DoraMetadata EMPTY = {NULL, 0, 0};

const DoraMetadata *dora__metadata_empty(void) { return &EMPTY; }

static void clear(param *p) {
  free(p->key);
  if (p->type == DORA_PARAMETER_STRING) free(p->v.s.ptr);
  if (p->type == DORA_PARAMETER_LIST_STRING) {
    dora_str *s = p->items;
    for (size_t i = 0; i < p->n; i++) free(s[i].ptr);
  }
  free(p->items);
  memset(p, 0, sizeof *p);
}

DoraMetadata *dora_metadata_new(void) {
  DoraMetadata *m = calloc(1, sizeof *m);
  if (!m) dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  return m;
}

void dora_metadata_free(DoraMetadata *m) {
  if (!m || m == &EMPTY) return;
  for (size_t i = 0; i < m->n; i++) clear(&m->items[i]);
  free(m->items);
  free(m);
}

size_t dora_metadata_len(const DoraMetadata *m) { return m ? m->n : 0; }

const char *dora_metadata_key(const DoraMetadata *m, size_t index) { return m && index < m->n ? m->items[index].key : NULL; }

static const param *find(const DoraMetadata *m, const char *key) {
  if (!m || !key) return NULL;
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->items[i].key, key) == 0) return &m->items[i];
  return NULL;
}

enum DoraParameterType dora_metadata_type(const DoraMetadata *m, const char *key) {
  const param *p = find(m, key);
  return p ? p->type : DORA_PARAMETER_NONE;
}

static const param *typed(const DoraMetadata *m, const char *key, enum DoraParameterType a, enum DoraParameterType b) {
  const param *p = find(m, key);
  if (!p) {
    dora__fail(DORA_E_PARAMETER, "no parameter \"%s\"", key ? key : "(null)");
    return NULL;
  }
  if (p->type != a && p->type != b) {
    dora__fail(DORA_E_PARAMETER, "parameter \"%s\" has type %d, not %d", key, (int)p->type, (int)a);
    return NULL;
  }
  return p;
}

int dora_metadata_get_bool(const DoraMetadata *m, const char *key, bool *out) {
  const param *p = typed(m, key, DORA_PARAMETER_BOOL, DORA_PARAMETER_BOOL);
  if (!p) return -1;
  if (out) *out = p->v.b;
  return 0;
}

int dora_metadata_get_int(const DoraMetadata *m, const char *key, int64_t *out) {
  const param *p = typed(m, key, DORA_PARAMETER_INT, DORA_PARAMETER_TIMESTAMP);
  if (!p) return -1;
  if (out) *out = p->v.i;
  return 0;
}

int dora_metadata_get_float(const DoraMetadata *m, const char *key, double *out) {
  const param *p = typed(m, key, DORA_PARAMETER_FLOAT, DORA_PARAMETER_INT);
  if (!p) return -1;
  if (out) *out = p->type == DORA_PARAMETER_INT ? (double)p->v.i : p->v.f;
  return 0;
}

int dora_metadata_get_string(const DoraMetadata *m, const char *key, const char **out_ptr, size_t *out_len) {
  const param *p = typed(m, key, DORA_PARAMETER_STRING, DORA_PARAMETER_STRING);
  if (!p) return -1;
  if (out_ptr) *out_ptr = p->v.s.ptr;
  if (out_len) *out_len = p->v.s.len;
  return 0;
}

static bool is_list(enum DoraParameterType t) { return t >= DORA_PARAMETER_LIST_BOOL && t <= DORA_PARAMETER_LIST_STRING; }

int dora_metadata_list_len(const DoraMetadata *m, const char *key, size_t *out_len) {
  const param *p = find(m, key);
  if (!p || !is_list(p->type)) return dora__fail(DORA_E_PARAMETER, "no list parameter \"%s\"", key ? key : "(null)");
  if (out_len) *out_len = p->n;
  return 0;
}

int dora_metadata_get_int_list(const DoraMetadata *m, const char *key, const int64_t **out_ptr, size_t *out_len) {
  const param *p = typed(m, key, DORA_PARAMETER_LIST_INT, DORA_PARAMETER_LIST_INT);
  if (!p) return -1;
  if (out_ptr) *out_ptr = p->items;
  if (out_len) *out_len = p->n;
  return 0;
}

int dora_metadata_get_float_list(const DoraMetadata *m, const char *key, const double **out_ptr, size_t *out_len) {
  const param *p = typed(m, key, DORA_PARAMETER_LIST_FLOAT, DORA_PARAMETER_LIST_FLOAT);
  if (!p) return -1;
  if (out_ptr) *out_ptr = p->items;
  if (out_len) *out_len = p->n;
  return 0;
}

int dora_metadata_get_list_item(const DoraMetadata *m, const char *key, size_t index, const char **out_string, size_t *out_len, bool *out_bool) {
  const param *p = typed(m, key, DORA_PARAMETER_LIST_STRING, DORA_PARAMETER_LIST_BOOL);
  if (!p) return -1;
  if (index >= p->n) return dora__fail(DORA_E_PARAMETER, "parameter \"%s\" has %zu elements, no element %zu", key, p->n, index);
  if (p->type == DORA_PARAMETER_LIST_STRING) {
    const dora_str *s = (const dora_str *)p->items + index;
    if (out_string) *out_string = s->ptr;
    if (out_len) *out_len = s->len;
  } else if (out_bool) {
    *out_bool = ((const uint8_t *)p->items)[index] != 0;
  }
  return 0;
}

/* A slot for key: the existing parameter (cleared) or a new one. */
static param *slot(DoraMetadata *m, const char *key) {
  if (!m || !key || m == &EMPTY) {
    dora__fail(DORA_E_INVALID_ARGUMENT, "dora_metadata_set_*: metadata and key must not be NULL");
    return NULL;
  }
  size_t klen = strlen(key);
  if (klen > 0xffff || !dora__utf8_valid((const uint8_t *)key, klen)) {
    dora__fail(DORA_E_INVALID_ARGUMENT, "parameter key is not valid UTF-8 of at most 65535 bytes");
    return NULL;
  }
  char *copy = malloc(klen + 1);
  if (!copy) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  memcpy(copy, key, klen + 1);
  for (size_t i = 0; i < m->n; i++) {
    if (strcmp(m->items[i].key, key) == 0) {
      clear(&m->items[i]);
      m->items[i].key = copy;
      return &m->items[i];
    }
  }
  if (m->n >= DORA_MAX_PARAMETERS) {
    free(copy);
    dora__fail(DORA_E_INVALID_ARGUMENT, "too many parameters (at most %d)", DORA_MAX_PARAMETERS);
    return NULL;
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 8;
    param *items = realloc(m->items, cap * sizeof *items);
    if (!items) {
      free(copy);
      dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
      return NULL;
    }
    m->items = items;
    m->cap = cap;
  }
  param *p = &m->items[m->n++];
  memset(p, 0, sizeof *p);
  p->key = copy;
  return p;
}

/* Drops a slot whose value could not be set. */
static int abandon(DoraMetadata *m, param *p) {
  size_t i = (size_t)(p - m->items);
  clear(p);
  memmove(&m->items[i], &m->items[i + 1], (m->n - i - 1) * sizeof *p);
  m->n--;
  return -1;
}

int dora_metadata_set_bool(DoraMetadata *m, const char *key, bool value) {
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_BOOL;
  p->v.b = value;
  return 0;
}

int dora_metadata_set_int(DoraMetadata *m, const char *key, int64_t value) {
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_INT;
  p->v.i = value;
  return 0;
}

int dora_metadata_set_timestamp(DoraMetadata *m, const char *key, int64_t ns) {
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_TIMESTAMP;
  p->v.i = ns;
  return 0;
}

int dora_metadata_set_float(DoraMetadata *m, const char *key, double value) {
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_FLOAT;
  p->v.f = value;
  return 0;
}

static int copy_str(dora_str *out, const char *s, size_t len) {
  if (!s && len > 0) return dora__fail(DORA_E_INVALID_ARGUMENT, "string is NULL");
  if (len > UINT32_MAX || !dora__utf8_valid((const uint8_t *)s, len)) return dora__fail(DORA_E_INVALID_ARGUMENT, "string parameter is not valid UTF-8");
  out->ptr = malloc(len + 1);
  if (!out->ptr) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  if (len) memcpy(out->ptr, s, len);
  out->ptr[len] = 0;
  out->len = len;
  return 0;
}

int dora_metadata_set_string(DoraMetadata *m, const char *key, const char *value, size_t len) {
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_STRING;
  if (copy_str(&p->v.s, value, len)) {
    p->type = 0;
    return abandon(m, p);
  }
  return 0;
}

static int set_list(DoraMetadata *m, const char *key, enum DoraParameterType type, const void *values, size_t len, size_t width) {
  if (len > 0 && !values) return dora__fail(DORA_E_INVALID_ARGUMENT, "list values are NULL");
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = type;
  p->n = len;
  p->items = malloc(len * width + 1);
  if (!p->items) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return abandon(m, p);
  }
  if (len) memcpy(p->items, values, len * width);
  return 0;
}

int dora_metadata_set_int_list(DoraMetadata *m, const char *key, const int64_t *values, size_t len) {
  return set_list(m, key, DORA_PARAMETER_LIST_INT, values, len, sizeof(int64_t));
}

int dora_metadata_set_float_list(DoraMetadata *m, const char *key, const double *values, size_t len) {
  return set_list(m, key, DORA_PARAMETER_LIST_FLOAT, values, len, sizeof(double));
}

int dora_metadata_set_bool_list(DoraMetadata *m, const char *key, const bool *values, size_t len) {
  if (set_list(m, key, DORA_PARAMETER_LIST_BOOL, values, len, sizeof(bool)) != 0) return -1;
  /* stored as bytes 0/1 (the wire's form), whatever the platform's bool representation */
  const param *p = find(m, key);
  uint8_t *items = p->items;
  for (size_t i = 0; i < len; i++) items[i] = values[i] ? 1 : 0;
  return 0;
}

int dora_metadata_set_string_list(DoraMetadata *m, const char *key, const char *const *values, size_t len) {
  if (len > 0 && !values) return dora__fail(DORA_E_INVALID_ARGUMENT, "list values are NULL");
  param *p = slot(m, key);
  if (!p) return -1;
  p->type = DORA_PARAMETER_LIST_STRING;
  dora_str *items = calloc(len + 1, sizeof *items);
  if (!items) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return abandon(m, p);
  }
  p->items = items;
  for (size_t i = 0; i < len; i++) {
    if (!values[i] || copy_str(&items[i], values[i], strlen(values[i]))) {
      p->n = i;
      if (!values[i]) dora__fail(DORA_E_INVALID_ARGUMENT, "list element %zu is NULL", i);
      return abandon(m, p);
    }
  }
  p->n = len;
  return 0;
}

int dora__metadata_write(dora_buf *b, const DoraMetadata *m) {
  size_t n = m ? m->n : 0;
  dora__buf_u32(b, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    const param *p = &m->items[i];
    dora__buf_str16(b, p->key, strlen(p->key));
    dora__buf_u8(b, (uint8_t)p->type);
    switch (p->type) {
      case DORA_PARAMETER_BOOL: dora__buf_u8(b, p->v.b ? 1 : 0); break;
      case DORA_PARAMETER_INT:
      case DORA_PARAMETER_TIMESTAMP: dora__buf_u64(b, (uint64_t)p->v.i); break;
      case DORA_PARAMETER_FLOAT: dora__buf_f64(b, p->v.f); break;
      case DORA_PARAMETER_STRING: dora__buf_str32(b, p->v.s.ptr, p->v.s.len); break;
      case DORA_PARAMETER_LIST_BOOL:
        dora__buf_u32(b, (uint32_t)p->n);
        for (size_t k = 0; k < p->n; k++) dora__buf_u8(b, ((uint8_t *)p->items)[k] ? 1 : 0);
        break;
      case DORA_PARAMETER_LIST_INT:
        dora__buf_u32(b, (uint32_t)p->n);
        for (size_t k = 0; k < p->n; k++) dora__buf_u64(b, (uint64_t)((int64_t *)p->items)[k]);
        break;
      case DORA_PARAMETER_LIST_FLOAT:
        dora__buf_u32(b, (uint32_t)p->n);
        for (size_t k = 0; k < p->n; k++) dora__buf_f64(b, ((double *)p->items)[k]);
        break;
      case DORA_PARAMETER_LIST_STRING:
        dora__buf_u32(b, (uint32_t)p->n);
        for (size_t k = 0; k < p->n; k++) dora__buf_str32(b, ((dora_str *)p->items)[k].ptr, ((dora_str *)p->items)[k].len);
        break;
      case DORA_PARAMETER_NONE: break;
    }
  }
  return b->oom ? dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory") : 0;
}

int dora__metadata_read(dora_reader *r, DoraMetadata **out) {
  *out = NULL;
  uint32_t count;
  if (dora__rd_u32(r, &count, "parameter count")) return -1;
  if (count > DORA_MAX_PARAMETERS) return dora__fail(DORA_E_MALFORMED_MESSAGE, "too many parameters (%u)", count);
  DoraMetadata *m = calloc(1, sizeof *m);
  if (!m) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  if (count) {
    m->items = calloc(count, sizeof *m->items);
    if (!m->items) {
      free(m);
      return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    }
    m->cap = count;
  }
  for (uint32_t i = 0; i < count; i++) {
    param *p = &m->items[m->n];
    uint8_t tag;
    uint32_t n = 0;
    if (dora__rd_str16(r, &p->key, NULL, "parameter key")) goto fail;
    m->n++;
    if (dora__rd_u8(r, &tag, "parameter tag")) goto fail;
    if (tag >= DORA_PARAMETER_LIST_BOOL && tag <= DORA_PARAMETER_LIST_STRING) {
      if (dora__rd_u32(r, &n, "parameter list length")) goto fail;
      /* every element takes at least one byte: a longer list is a lie */
      if (n > r->len - r->at) {
        dora__fail(DORA_E_MALFORMED_MESSAGE, "parameter \"%s\": list of %u elements exceeds the frame", p->key, n);
        goto fail;
      }
    }
    p->type = tag;
    p->n = n;
    switch (tag) {
      case DORA_PARAMETER_BOOL: {
        uint8_t v;
        if (dora__rd_u8(r, &v, "parameter")) goto fail;
        p->v.b = v != 0;
        break;
      }
      case DORA_PARAMETER_INT:
      case DORA_PARAMETER_TIMESTAMP: {
        uint64_t v;
        if (dora__rd_u64(r, &v, "parameter")) goto fail;
        p->v.i = (int64_t)v;
        break;
      }
      case DORA_PARAMETER_FLOAT:
        if (dora__rd_f64(r, &p->v.f, "parameter")) goto fail;
        break;
      case DORA_PARAMETER_STRING:
        if (dora__rd_str32(r, &p->v.s.ptr, &p->v.s.len, "parameter")) goto fail;
        break;
      case DORA_PARAMETER_LIST_BOOL: {
        uint8_t *items = malloc(n + 1);
        if (!items) goto oom;
        p->items = items;
        for (uint32_t k = 0; k < n; k++)
          if (dora__rd_u8(r, &items[k], "parameter")) goto fail;
        break;
      }
      case DORA_PARAMETER_LIST_INT: {
        int64_t *items = malloc((size_t)n * 8 + 1);
        if (!items) goto oom;
        p->items = items;
        for (uint32_t k = 0; k < n; k++) {
          uint64_t v;
          if (dora__rd_u64(r, &v, "parameter")) goto fail;
          items[k] = (int64_t)v;
        }
        break;
      }
      case DORA_PARAMETER_LIST_FLOAT: {
        double *items = malloc((size_t)n * 8 + 1);
        if (!items) goto oom;
        p->items = items;
        for (uint32_t k = 0; k < n; k++)
          if (dora__rd_f64(r, &items[k], "parameter")) goto fail;
        break;
      }
      case DORA_PARAMETER_LIST_STRING: {
        dora_str *items = calloc((size_t)n + 1, sizeof *items);
        if (!items) goto oom;
        p->items = items;
        p->n = 0;
        for (uint32_t k = 0; k < n; k++) {
          if (dora__rd_str32(r, &items[k].ptr, &items[k].len, "parameter")) goto fail;
          p->n++;
        }
        break;
      }
      default:
        p->type = DORA_PARAMETER_NONE;
        dora__fail(DORA_E_MALFORMED_MESSAGE, "parameter \"%s\" has unknown tag %u", p->key, tag);
        goto fail;
    }
  }
  *out = m;
  return 0;
oom:
  dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
fail:
  dora_metadata_free(m);
  return -1;
}

int dora__metadata_check(const uint8_t *p, size_t len) {
  dora_reader r = {p, len, 0};
  uint32_t count;
  if (dora__rd_u32(&r, &count, "parameter count")) return -1;
  if (count > DORA_MAX_PARAMETERS) return dora__fail(DORA_E_MALFORMED_MESSAGE, "too many parameters (%u)", count);
  for (uint32_t i = 0; i < count; i++) {
    uint16_t key_len;
    uint8_t tag;
    const uint8_t *key;
    if (dora__rd_u16(&r, &key_len, "parameter key") || dora__rd_raw(&r, key_len, &key, "parameter key")) return -1;
    if (!dora__utf8_valid(key, key_len)) return dora__fail(DORA_E_MALFORMED_MESSAGE, "parameter key is not valid UTF-8");
    if (dora__rd_u8(&r, &tag, "parameter tag")) return -1;
    uint32_t n = 1;
    bool list = tag >= DORA_PARAMETER_LIST_BOOL && tag <= DORA_PARAMETER_LIST_STRING;
    if (list && dora__rd_u32(&r, &n, "parameter list length")) return -1;
    for (uint32_t k = 0; k < n; k++) {
      const uint8_t *v;
      uint32_t slen;
      switch (tag) {
        case DORA_PARAMETER_BOOL:
        case DORA_PARAMETER_LIST_BOOL:
          if (dora__rd_raw(&r, 1, &v, "parameter")) return -1;
          break;
        case DORA_PARAMETER_INT:
        case DORA_PARAMETER_TIMESTAMP:
        case DORA_PARAMETER_FLOAT:
        case DORA_PARAMETER_LIST_INT:
        case DORA_PARAMETER_LIST_FLOAT:
          if (dora__rd_raw(&r, 8, &v, "parameter")) return -1;
          break;
        case DORA_PARAMETER_STRING:
        case DORA_PARAMETER_LIST_STRING:
          if (dora__rd_u32(&r, &slen, "parameter") || dora__rd_raw(&r, slen, &v, "parameter")) return -1;
          if (!dora__utf8_valid(v, slen)) return dora__fail(DORA_E_MALFORMED_MESSAGE, "parameter \"%.*s\" is not valid UTF-8", (int)key_len, (const char *)key);
          break;
        default:
          return dora__fail(DORA_E_MALFORMED_MESSAGE, "parameter \"%.*s\" has unknown tag %u", (int)key_len, (const char *)key, tag);
      }
    }
  }
  return r.at == r.len ? 0 : dora__fail(DORA_E_MALFORMED_MESSAGE, "%zu trailing bytes after the parameters", r.len - r.at);
}

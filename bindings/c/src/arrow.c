/*
 * Arrow data on the wire (docs/protocol.md §5.3–5.4): the layout tree, its checks,
 * its export as Arrow C Data Interface structs over the received bytes, and the
 * payload plan of an array to send.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ABSENT UINT64_MAX
#define MAX_SAFE ((UINT64_C(1) << 53) - 1)

typedef dora_arrow_layout kind; /* the kinds of layout of protocol/facts.json */

typedef struct {
  kind k;
  uint64_t width; /* bytes per value (DORA_AL_FIXED) or list size (DORA_AL_FIXED_LIST) */
} fclass;

static bool positive(const char *s, uint64_t *out) {
  if (*s < '1' || *s > '9') return false;
  uint64_t v = 0;
  for (int i = 0; s[i]; i++) {
    if (s[i] < '0' || s[i] > '9' || i >= 10) return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > INT32_MAX) return false;
  *out = v;
  return true;
}

static bool classify(const char *f, fclass *out) {
  static const struct {
    const char *format;
    kind k;
    uint64_t width;
  } simple[] = {
#define FORMAT(format, layout, width) {format, layout, width},
      DORA_ARROW_FORMATS(FORMAT)
#undef FORMAT
  };
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (strcmp(f, simple[i].format) == 0) {
      out->k = simple[i].k;
      out->width = simple[i].width;
      return true;
    }
  }
  if (strncmp(f, "w:", 2) == 0 && positive(f + 2, &out->width)) {
    out->k = DORA_AL_FIXED;
    return true;
  }
  if (strncmp(f, "+w:", 3) == 0 && positive(f + 3, &out->width)) {
    out->k = DORA_AL_FIXED_LIST;
    return true;
  }
  if (strncmp(f, "ts", 2) == 0 && f[2] && strchr("smun", f[2]) && f[3] == ':') {
    out->k = DORA_AL_FIXED;
    out->width = 8;
    return true;
  }
  return false;
}

static int expected_buffers(kind k) {
  static const int buffers[] = DORA_ARROW_LAYOUT_BUFFERS;
  return buffers[k];
}

static bool is_structural(kind k) { return k == DORA_AL_LIST32 || k == DORA_AL_LIST64 || k == DORA_AL_FIXED_LIST || k == DORA_AL_STRUCT; }

/* ---- layout tree ------------------------------------------------------------------ */

void dora__layout_free(dora_layout *l) {
  if (!l) return;
  for (int i = 0; i < l->n_children; i++) dora__layout_free(l->children[i]);
  free(l->children);
  free(l->buffers);
  free(l->format);
  free(l->name);
  free(l);
}

int dora__layout_read(dora_reader *r, dora_layout **out, int depth) {
  *out = NULL;
  if (depth > DORA_MAX_DEPTH) return dora__fail(DORA_E_MALFORMED_MESSAGE, "Arrow layout nested too deeply");
  dora_layout *l = calloc(1, sizeof *l);
  if (!l) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  uint8_t flags;
  uint64_t null_count;
  if (dora__rd_str16(r, &l->format, NULL, "format") || dora__rd_str16(r, &l->name, NULL, "field name") ||
      dora__rd_u8(r, &flags, "nullable flag"))
    goto fail;
  if (flags > 1) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "invalid nullable flag %u", flags);
    goto fail;
  }
  l->nullable = flags == 1;
  if (dora__rd_u64(r, &l->length, "array length") || dora__rd_u64(r, &null_count, "null count") ||
      dora__rd_u64(r, &l->offset, "array offset"))
    goto fail;
  l->null_count = (int64_t)null_count;
  if (l->length > MAX_SAFE || l->offset > MAX_SAFE) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "array length or offset is out of range");
    goto fail;
  }
  if (l->null_count < -1 || (l->null_count > 0 && (uint64_t)l->null_count > l->length)) {
    dora__fail(DORA_E_MALFORMED_MESSAGE, "null count %lld is out of range for length %llu", (long long)l->null_count, (unsigned long long)l->length);
    goto fail;
  }
  if (dora__rd_u8(r, &l->n_buffers, "buffer count")) goto fail;
  l->buffers = calloc(l->n_buffers + 1u, sizeof *l->buffers);
  if (!l->buffers) goto oom;
  for (int i = 0; i < l->n_buffers; i++) {
    uint64_t at, len;
    if (dora__rd_u64(r, &at, "buffer offset") || dora__rd_u64(r, &len, "buffer length")) goto fail;
    if (at == ABSENT) continue;
    if (at > MAX_SAFE || len > MAX_SAFE) {
      dora__fail(DORA_E_MALFORMED_MESSAGE, "buffer offset %llu or length %llu is out of range", (unsigned long long)at, (unsigned long long)len);
      goto fail;
    }
    l->buffers[i] = (dora_range){true, at, len};
  }
  if (dora__rd_u8(r, &l->n_children, "child count")) goto fail;
  l->children = calloc(l->n_children + 1u, sizeof *l->children);
  if (!l->children) goto oom;
  for (int i = 0; i < l->n_children; i++)
    if (dora__layout_read(r, &l->children[i], depth + 1)) goto fail;
  *out = l;
  return 0;
oom:
  dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
fail:
  dora__layout_free(l);
  return -1;
}

void dora__layout_write(dora_buf *b, const dora_layout *l) {
  dora__buf_str16(b, l->format, strlen(l->format));
  dora__buf_str16(b, l->name, strlen(l->name));
  dora__buf_u8(b, l->nullable ? 1 : 0);
  dora__buf_u64(b, l->length);
  dora__buf_u64(b, (uint64_t)l->null_count);
  dora__buf_u64(b, l->offset);
  dora__buf_u8(b, l->n_buffers);
  for (int i = 0; i < l->n_buffers; i++) {
    dora__buf_u64(b, l->buffers[i].present ? l->buffers[i].offset : ABSENT);
    dora__buf_u64(b, l->buffers[i].present ? l->buffers[i].length : 0);
  }
  dora__buf_u8(b, l->n_children);
  for (int i = 0; i < l->n_children; i++) dora__layout_write(b, l->children[i]);
}

/* ---- checks --------------------------------------------------------------------- */

typedef struct {
  const uint8_t *payload;
  size_t len;
} vctx;

/* `path` names the array in messages: $ for the top level, $.field for children. */
static int check_range(const vctx *v, const dora_range *r, uint64_t need, uint64_t align, const char *path, const char *what) {
  if (!r->present) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s %s buffer is absent", path, what);
  if (r->offset > v->len || r->length > v->len - r->offset) {
    return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s %s: buffer [%llu, %llu) lies outside the %zu-byte payload", path, what, (unsigned long long)r->offset,
                      (unsigned long long)(r->offset + r->length), v->len);
  }
  if (r->length < need) {
    return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s %s: buffer of %llu bytes is shorter than the %llu bytes its length requires", path, what,
                      (unsigned long long)r->length, (unsigned long long)need);
  }
  if (align > 1 && ((uintptr_t)(v->payload + r->offset)) % align != 0) {
    return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s %s: buffer at payload offset %llu is not aligned to %llu bytes", path, what, (unsigned long long)r->offset,
                      (unsigned long long)align);
  }
  return 0;
}

static uint64_t read_offset(const uint8_t *p, uint64_t i, bool wide) {
  if (wide) {
    int64_t v;
    memcpy(&v, p + i * 8, 8);
    return v < 0 ? UINT64_MAX : (uint64_t)v;
  }
  int32_t v;
  memcpy(&v, p + i * 4, 4);
  return v < 0 ? UINT64_MAX : (uint64_t)v;
}

/* Offsets [0, total] must be non-negative, non-decreasing and end at or before `limit`. */
static int check_offsets(const vctx *v, const dora_range *r, uint64_t total, bool wide, uint64_t limit, const char *path, const char *of) {
  const uint8_t *p = v->payload + r->offset;
  uint64_t prev = 0;
  for (uint64_t i = 0; i <= total; i++) {
    uint64_t o = read_offset(p, i, wide);
    if (o == UINT64_MAX || (i > 0 && o < prev) || o > limit) {
      return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: offsets [%llu, %llu] exceed the %s (%llu)", path, (unsigned long long)read_offset(p, 0, wide),
                        (unsigned long long)read_offset(p, total, wide), of, (unsigned long long)limit);
    }
    prev = o;
  }
  return 0;
}

static int validate(const vctx *v, const dora_layout *l, const char *path, int depth) {
  if (depth > DORA_MAX_DEPTH) return dora__fail(DORA_E_MALFORMED_MESSAGE, "Arrow layout nested too deeply");
  fclass fc;
  if (!classify(l->format, &fc)) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: unsupported Arrow format string \"%s\"", path, l->format);
  uint64_t total = l->offset + l->length; /* both <= 2^53 */
  if (!is_structural(fc.k) && l->n_children > 0) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: format \"%s\" has no children, got %u", path, l->format, l->n_children);
  if ((fc.k == DORA_AL_LIST32 || fc.k == DORA_AL_LIST64 || fc.k == DORA_AL_FIXED_LIST) && l->n_children != 1)
    return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: format \"%s\" needs exactly one child, got %u", path, l->format, l->n_children);
  for (int i = 0; i < l->n_children; i++) {
    char child[256];
    if (l->children[i]->name[0]) snprintf(child, sizeof child, "%s.%s", path, l->children[i]->name);
    else snprintf(child, sizeof child, "%s.%d", path, i);
    if (validate(v, l->children[i], child, depth + 1)) return -1;
  }
  int nb = expected_buffers(fc.k);
  if (l->n_buffers != nb) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: format \"%s\" has %d buffers, got %u", path, l->format, nb, l->n_buffers);
  if (nb > 0 && l->buffers[0].present && check_range(v, &l->buffers[0], (total + 7) / 8, 1, path, "validity bitmap")) return -1;
  switch (fc.k) {
    case DORA_AL_NULL: return 0;
    case DORA_AL_BOOL: return check_range(v, &l->buffers[1], (total + 7) / 8, 1, path, "values");
    case DORA_AL_FIXED: {
      uint64_t need;
      if (__builtin_mul_overflow(total, fc.width, &need)) return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: offset + length overflows", path);
      bool word = l->format[0] != 'w' && (fc.width == 2 || fc.width == 4 || fc.width == 8); /* w:N is bytes */
      return check_range(v, &l->buffers[1], need, word ? fc.width : 1, path, "values");
    }
    case DORA_AL_VAR32:
    case DORA_AL_VAR64: {
      bool wide = fc.k == DORA_AL_VAR64;
      if (check_range(v, &l->buffers[1], (total + 1) * (wide ? 8 : 4), wide ? 8 : 4, path, "offsets")) return -1;
      if (check_range(v, &l->buffers[2], 0, 1, path, "data")) return -1;
      return check_offsets(v, &l->buffers[1], total, wide, l->buffers[2].length, path, "data buffer");
    }
    case DORA_AL_LIST32:
    case DORA_AL_LIST64: {
      bool wide = fc.k == DORA_AL_LIST64;
      if (check_range(v, &l->buffers[1], (total + 1) * (wide ? 8 : 4), wide ? 8 : 4, path, "offsets")) return -1;
      return check_offsets(v, &l->buffers[1], total, wide, l->children[0]->length, path, "child's elements");
    }
    case DORA_AL_FIXED_LIST: {
      uint64_t need;
      if (__builtin_mul_overflow(total, fc.width, &need) || l->children[0]->length < need)
        return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: child has %llu elements, %llu x %llu needed", path, (unsigned long long)l->children[0]->length,
                          (unsigned long long)total, (unsigned long long)fc.width);
      return 0;
    }
    case DORA_AL_STRUCT:
      for (int i = 0; i < l->n_children; i++)
        if (l->children[i]->length < total)
          return dora__fail(DORA_E_MALFORMED_MESSAGE, "%s: field \"%s\" has %llu elements, %llu needed", path, l->children[i]->name,
                            (unsigned long long)l->children[i]->length, (unsigned long long)total);
      return 0;
  }
  return 0;
}

int dora__layout_validate(const dora_layout *l, const uint8_t *payload, size_t len) {
  vctx v = {payload, len};
  return validate(&v, l, "$", 0);
}

/* ---- export as C Data Interface structs ------------------------------------------ */

typedef struct {
  const void **buffers;
  struct ArrowArray *children; /* storage of the children */
  struct ArrowArray **child_ptrs;
  void (*on_release)(void *);
  void *release_ctx;
} array_private;

typedef struct {
  char *format, *name;
  struct ArrowSchema *children;
  struct ArrowSchema **child_ptrs;
} schema_private;

static void release_array(struct ArrowArray *a) {
  if (!a || !a->release) return;
  array_private *p = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++)
    if (p->children[i].release) p->children[i].release(&p->children[i]);
  if (p->on_release) p->on_release(p->release_ctx);
  free(p->buffers);
  free(p->children);
  free(p->child_ptrs);
  free(p);
  a->release = NULL;
}

static void release_schema(struct ArrowSchema *s) {
  if (!s || !s->release) return;
  schema_private *p = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++)
    if (p->children[i].release) p->children[i].release(&p->children[i]);
  free(p->format);
  free(p->name);
  free(p->children);
  free(p->child_ptrs);
  free(p);
  s->release = NULL;
}

static char *dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

static int export_node(const dora_layout *l, const uint8_t *payload, struct ArrowArray *a, struct ArrowSchema *s) {
  memset(a, 0, sizeof *a);
  memset(s, 0, sizeof *s);
  array_private *ap = calloc(1, sizeof *ap);
  schema_private *sp = calloc(1, sizeof *sp);
  if (!ap || !sp) goto oom;
  ap->buffers = calloc(l->n_buffers + 1u, sizeof *ap->buffers);
  ap->children = calloc(l->n_children + 1u, sizeof *ap->children);
  ap->child_ptrs = calloc(l->n_children + 1u, sizeof *ap->child_ptrs);
  sp->children = calloc(l->n_children + 1u, sizeof *sp->children);
  sp->child_ptrs = calloc(l->n_children + 1u, sizeof *sp->child_ptrs);
  sp->format = dup(l->format);
  sp->name = dup(l->name);
  if (!ap->buffers || !ap->children || !ap->child_ptrs || !sp->children || !sp->child_ptrs || !sp->format || !sp->name) goto oom;
  for (int i = 0; i < l->n_buffers; i++) ap->buffers[i] = l->buffers[i].present ? payload + l->buffers[i].offset : NULL;
  *a = (struct ArrowArray){(int64_t)l->length, l->null_count, (int64_t)l->offset, l->n_buffers, 0, ap->buffers, ap->child_ptrs, NULL,
                           release_array, ap};
  *s = (struct ArrowSchema){sp->format, sp->name, NULL, l->nullable ? ARROW_FLAG_NULLABLE : 0, 0, sp->child_ptrs, NULL, release_schema, sp};
  for (int i = 0; i < l->n_children; i++) {
    ap->child_ptrs[i] = &ap->children[i];
    sp->child_ptrs[i] = &sp->children[i];
    if (export_node(l->children[i], payload, &ap->children[i], &sp->children[i])) return -1; /* parents release what exists */
    a->n_children = s->n_children = i + 1;
  }
  return 0;
oom:
  if (ap) {
    free(ap->buffers);
    free(ap->children);
    free(ap->child_ptrs);
  }
  if (sp) {
    free(sp->children);
    free(sp->child_ptrs);
    free(sp->format);
    free(sp->name);
  }
  free(ap);
  free(sp);
  memset(a, 0, sizeof *a);
  memset(s, 0, sizeof *s);
  return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
}

int dora__layout_export(const dora_layout *l, const uint8_t *payload, struct ArrowArray *array, struct ArrowSchema *schema,
                        void (*on_release)(void *), void *release_ctx) {
  if (export_node(l, payload, array, schema)) {
    release_array(array);
    release_schema(schema);
    return -1;
  }
  array_private *ap = array->private_data;
  ap->on_release = on_release;
  ap->release_ctx = release_ctx;
  return 0;
}

/* ---- planning a payload from C Data Interface structs ----------------------------- */

typedef struct {
  dora_plan *plan;
  size_t cap;
} planner;

static int place(planner *pl, const void *src, uint64_t len, dora_range *out) {
  dora_plan *p = pl->plan;
  if (len > 0 && !src) return dora__fail(DORA_E_INVALID_ARGUMENT, "a required buffer is NULL");
  if (p->n_copies == pl->cap) {
    size_t cap = pl->cap ? pl->cap * 2 : 8;
    struct dora_copy *c = realloc(p->copies, cap * sizeof *c);
    if (!c) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    p->copies = c;
    pl->cap = cap;
  }
  p->copies[p->n_copies++] = (struct dora_copy){src, p->size, len};
  *out = (dora_range){true, p->size, len};
  p->size = (p->size + len + DORA_BUFFER_ALIGNMENT - 1) / DORA_BUFFER_ALIGNMENT * DORA_BUFFER_ALIGNMENT;
  return 0;
}

static int64_t count_nulls(const uint8_t *bitmap, uint64_t offset, uint64_t length) {
  int64_t nulls = 0;
  for (uint64_t i = offset; i < offset + length; i++)
    if (!(bitmap[i >> 3] & (1u << (i & 7)))) nulls++;
  return nulls;
}

static int plan_node(planner *pl, const struct ArrowArray *a, const struct ArrowSchema *s, bool top, int depth, dora_layout **out) {
  *out = NULL;
  if (depth > DORA_MAX_DEPTH) return dora__fail(DORA_E_INVALID_ARGUMENT, "Arrow array nested too deeply");
  if (!a || !s || !a->release || !s->release || !s->format) return dora__fail(DORA_E_INVALID_ARGUMENT, "Arrow array or schema is NULL or released");
  if (s->dictionary || a->dictionary) return dora__fail(DORA_E_UNSUPPORTED_TYPE, "dictionary-encoded arrays cannot be sent yet");
  fclass fc;
  if (!classify(s->format, &fc)) {
    return dora__fail(DORA_E_UNSUPPORTED_TYPE, "Arrow format \"%s\" cannot be sent yet (see docs/protocol.md for the supported types)", s->format);
  }
  int nb = expected_buffers(fc.k);
  if (a->n_buffers != nb) return dora__fail(DORA_E_INVALID_ARGUMENT, "format \"%s\" has %d buffers, the array has %lld", s->format, nb, (long long)a->n_buffers);
  if (a->n_children != s->n_children) return dora__fail(DORA_E_INVALID_ARGUMENT, "the array has %lld children, its schema %lld", (long long)a->n_children, (long long)s->n_children);
  if (!is_structural(fc.k) && a->n_children != 0) return dora__fail(DORA_E_INVALID_ARGUMENT, "format \"%s\" has no children", s->format);
  if (fc.k != DORA_AL_STRUCT && is_structural(fc.k) && a->n_children != 1) return dora__fail(DORA_E_INVALID_ARGUMENT, "format \"%s\" needs one child", s->format);
  if (a->length < 0 || a->offset < 0) return dora__fail(DORA_E_INVALID_ARGUMENT, "negative array length or offset");
  dora_layout *l = calloc(1, sizeof *l);
  if (!l) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  l->format = dup(s->format);
  l->name = dup(top ? "" : s->name ? s->name : "");
  l->nullable = top || (s->flags & ARROW_FLAG_NULLABLE);
  l->length = (uint64_t)a->length;
  l->offset = (uint64_t)a->offset;
  l->n_buffers = (uint8_t)nb;
  l->buffers = calloc((size_t)nb + 1, sizeof *l->buffers);
  l->n_children = (uint8_t)a->n_children;
  l->children = calloc((size_t)a->n_children + 1, sizeof *l->children);
  *out = l;
  if (!l->format || !l->name || !l->buffers || !l->children) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  uint64_t total = l->offset + l->length;
  const uint8_t *bitmap = nb > 0 ? a->buffers[0] : NULL;
  int64_t nulls = a->null_count;
  if (fc.k == DORA_AL_NULL) nulls = a->length;
  else if (nulls < 0) nulls = bitmap ? count_nulls(bitmap, l->offset, l->length) : 0;
  else if (!bitmap) nulls = 0;
  l->null_count = nulls; /* a null array's elements are all null */
  if (fc.k == DORA_AL_NULL) return 0;
  if (nulls > 0 && place(pl, bitmap, (total + 7) / 8, &l->buffers[0])) return -1;
  switch (fc.k) {
    case DORA_AL_BOOL: return place(pl, a->buffers[1], (total + 7) / 8, &l->buffers[1]);
    case DORA_AL_FIXED: return place(pl, a->buffers[1], total * fc.width, &l->buffers[1]);
    case DORA_AL_VAR32:
    case DORA_AL_VAR64: {
      bool wide = fc.k == DORA_AL_VAR64;
      const uint8_t *offsets = a->buffers[1];
      if (!offsets) return dora__fail(DORA_E_INVALID_ARGUMENT, "offsets buffer is NULL");
      uint64_t end = read_offset(offsets, total, wide);
      if (end == UINT64_MAX) return dora__fail(DORA_E_INVALID_ARGUMENT, "negative offset");
      if (place(pl, offsets, (total + 1) * (wide ? 8 : 4), &l->buffers[1])) return -1;
      return place(pl, a->buffers[2], end, &l->buffers[2]);
    }
    case DORA_AL_LIST32:
    case DORA_AL_LIST64: {
      bool wide = fc.k == DORA_AL_LIST64;
      if (place(pl, a->buffers[1], (total + 1) * (wide ? 8 : 4), &l->buffers[1])) return -1;
      break;
    }
    default: break;
  }
  for (int64_t i = 0; i < a->n_children; i++)
    if (plan_node(pl, a->children[i], s->children[i], false, depth + 1, &l->children[i])) return -1;
  return 0;
}

int dora__plan_arrow(const struct ArrowArray *array, const struct ArrowSchema *schema, dora_plan *out) {
  memset(out, 0, sizeof *out);
  planner pl = {out, 0};
  if (plan_node(&pl, array, schema, true, 0, &out->layout)) {
    dora__plan_free(out);
    return -1;
  }
  /* the payload ends with the last buffer, without trailing padding */
  out->size = out->n_copies ? out->copies[out->n_copies - 1].at + out->copies[out->n_copies - 1].len : 0;
  return 0;
}

void dora__plan_write(const dora_plan *plan, uint8_t *target) {
  size_t end = 0;
  for (size_t i = 0; i < plan->n_copies; i++) {
    const struct dora_copy *c = &plan->copies[i];
    memset(target + end, 0, c->at - end); /* zero padding: equal arrays, equal bytes */
    if (c->len) memcpy(target + c->at, c->src, c->len);
    end = c->at + c->len;
  }
}

void dora__plan_free(dora_plan *plan) {
  dora__layout_free(plan->layout);
  free(plan->copies);
  memset(plan, 0, sizeof *plan);
}

dora_layout *dora__layout_uint8(uint64_t length) {
  dora_layout *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->format = dup("C");
  l->name = dup("");
  l->nullable = true;
  l->length = length;
  l->n_buffers = 2;
  l->buffers = calloc(3, sizeof *l->buffers);
  l->children = calloc(1, sizeof *l->children);
  if (!l->format || !l->name || !l->buffers || !l->children) {
    dora__layout_free(l);
    return NULL;
  }
  l->buffers[1] = (dora_range){true, 0, length};
  return l;
}

uint64_t dora__fixed_width(const char *format) {
  fclass fc;
  return classify(format, &fc) && fc.k == DORA_AL_FIXED ? fc.width : 0;
}

void dora_arrow_release(struct ArrowArray *array, struct ArrowSchema *schema) {
  if (array && array->release) array->release(array);
  if (schema && schema->release) schema->release(schema);
}

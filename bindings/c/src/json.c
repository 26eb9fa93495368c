/*
 * A small strict JSON reader: the node configuration (DORA_NODE_CONFIG) and the
 * daemon's control messages are all the library reads, so no dependency is worth it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  const char *p;
  size_t len, at;
  int depth;
} parser;

static int parse_value(parser *ps, dora_json *out);

static void skip_ws(parser *ps) {
  while (ps->at < ps->len && (ps->p[ps->at] == ' ' || ps->p[ps->at] == '\t' || ps->p[ps->at] == '\n' || ps->p[ps->at] == '\r')) ps->at++;
}

static int fail_at(parser *ps, const char *what) { return dora__fail(DORA_E_MALFORMED_MESSAGE, "invalid JSON at byte %zu: %s", ps->at, what); }

static void put_utf8(dora_buf *b, uint32_t cp) {
  if (cp < 0x80) {
    dora__buf_u8(b, (uint8_t)cp);
  } else if (cp < 0x800) {
    dora__buf_u8(b, (uint8_t)(0xc0 | (cp >> 6)));
    dora__buf_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    dora__buf_u8(b, (uint8_t)(0xe0 | (cp >> 12)));
    dora__buf_u8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
    dora__buf_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
  } else {
    dora__buf_u8(b, (uint8_t)(0xf0 | (cp >> 18)));
    dora__buf_u8(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
    dora__buf_u8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
    dora__buf_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
  }
}

static int hex4(parser *ps, uint32_t *out) {
  if (ps->len - ps->at < 4) return fail_at(ps, "short \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = ps->p[ps->at++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return fail_at(ps, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static int parse_string(parser *ps, char **out, size_t *out_len) {
  dora_buf b = {0};
  ps->at++; /* opening quote */
  for (;;) {
    if (ps->at >= ps->len) {
      dora__buf_free(&b);
      return fail_at(ps, "unterminated string");
    }
    unsigned char c = (unsigned char)ps->p[ps->at++];
    if (c == '"') break;
    if (c < 0x20) {
      dora__buf_free(&b);
      return fail_at(ps, "control character in string");
    }
    if (c != '\\') {
      dora__buf_u8(&b, c);
      continue;
    }
    if (ps->at >= ps->len) {
      dora__buf_free(&b);
      return fail_at(ps, "unterminated escape");
    }
    char e = ps->p[ps->at++];
    uint32_t cp;
    switch (e) {
      case '"': dora__buf_u8(&b, '"'); break;
      case '\\': dora__buf_u8(&b, '\\'); break;
      case '/': dora__buf_u8(&b, '/'); break;
      case 'b': dora__buf_u8(&b, '\b'); break;
      case 'f': dora__buf_u8(&b, '\f'); break;
      case 'n': dora__buf_u8(&b, '\n'); break;
      case 'r': dora__buf_u8(&b, '\r'); break;
      case 't': dora__buf_u8(&b, '\t'); break;
      case 'u':
        if (hex4(ps, &cp)) {
          dora__buf_free(&b);
          return -1;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t low;
          if (ps->len - ps->at < 2 || ps->p[ps->at] != '\\' || ps->p[ps->at + 1] != 'u') {
            dora__buf_free(&b);
            return fail_at(ps, "unpaired surrogate");
          }
          ps->at += 2;
          if (hex4(ps, &low) || low < 0xdc00 || low > 0xdfff) {
            dora__buf_free(&b);
            return fail_at(ps, "unpaired surrogate");
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          dora__buf_free(&b);
          return fail_at(ps, "unpaired surrogate");
        }
        put_utf8(&b, cp);
        break;
      default:
        dora__buf_free(&b);
        return fail_at(ps, "unknown escape");
    }
  }
  size_t len = b.len;
  dora__buf_u8(&b, 0);
  if (b.oom) {
    dora__buf_free(&b);
    return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  }
  *out = (char *)b.data;
  if (out_len) *out_len = len;
  return 0;
}

static int parse_number(parser *ps, dora_json *out) {
  size_t start = ps->at;
  while (ps->at < ps->len && strchr("+-0123456789.eE", ps->p[ps->at])) ps->at++;
  char tmp[64];
  size_t n = ps->at - start;
  if (n == 0 || n >= sizeof tmp) return fail_at(ps, "bad number");
  memcpy(tmp, ps->p + start, n);
  tmp[n] = 0;
  char *end;
  double v = strtod(tmp, &end);
  if (*end != 0 || !isfinite(v)) return fail_at(ps, "bad number");
  out->type = DJ_NUMBER;
  out->number = v;
  return 0;
}

static int literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if (ps->len - ps->at < n || memcmp(ps->p + ps->at, word, n) != 0) return fail_at(ps, "unexpected token");
  ps->at += n;
  return 0;
}

static int push_item(dora_json *container, size_t *cap, dora_json **slot) {
  if (container->count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    dora_json *items = realloc(container->items, ncap * sizeof *items);
    if (!items) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    container->items = items;
    if (container->type == DJ_OBJECT) {
      char **keys = realloc(container->keys, ncap * sizeof *keys);
      if (!keys) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
      container->keys = keys;
    }
    *cap = ncap;
  }
  *slot = &container->items[container->count];
  memset(*slot, 0, sizeof **slot);
  return 0;
}

static void free_contents(dora_json *v) {
  free(v->string);
  for (size_t i = 0; i < v->count; i++) {
    free_contents(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

static int parse_container(parser *ps, dora_json *out, bool object) {
  out->type = object ? DJ_OBJECT : DJ_ARRAY;
  size_t cap = 0;
  if (++ps->depth > 128) return fail_at(ps, "nested too deeply");
  ps->at++;
  skip_ws(ps);
  if (ps->at < ps->len && ps->p[ps->at] == (object ? '}' : ']')) {
    ps->at++;
    ps->depth--;
    return 0;
  }
  for (;;) {
    dora_json *slot = NULL;
    char *key = NULL;
    skip_ws(ps);
    if (object) {
      if (ps->at >= ps->len || ps->p[ps->at] != '"') return fail_at(ps, "expected a key");
      if (parse_string(ps, &key, NULL)) return -1;
      skip_ws(ps);
      if (ps->at >= ps->len || ps->p[ps->at] != ':') {
        free(key);
        return fail_at(ps, "expected ':'");
      }
      ps->at++;
    }
    if (push_item(out, &cap, &slot)) {
      free(key);
      return -1;
    }
    if (object) out->keys[out->count] = key;
    out->count++;
    if (parse_value(ps, slot)) return -1;
    skip_ws(ps);
    if (ps->at < ps->len && ps->p[ps->at] == ',') {
      ps->at++;
      continue;
    }
    if (ps->at < ps->len && ps->p[ps->at] == (object ? '}' : ']')) {
      ps->at++;
      ps->depth--;
      return 0;
    }
    return fail_at(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_value(parser *ps, dora_json *out) {
  skip_ws(ps);
  if (ps->at >= ps->len) return fail_at(ps, "unexpected end");
  char c = ps->p[ps->at];
  switch (c) {
    case '{': return parse_container(ps, out, true);
    case '[': return parse_container(ps, out, false);
    case '"': out->type = DJ_STRING; return parse_string(ps, &out->string, &out->string_len);
    case 't': out->type = DJ_BOOL; out->boolean = true; return literal(ps, "true");
    case 'f': out->type = DJ_BOOL; out->boolean = false; return literal(ps, "false");
    case 'n': out->type = DJ_NULL; return literal(ps, "null");
    default: return parse_number(ps, out);
  }
}

dora_json *dora__json_parse(const char *text, size_t len) {
  parser ps = {text, len, 0, 0};
  dora_json *root = calloc(1, sizeof *root);
  if (!root) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  if (parse_value(&ps, root) == 0) {
    skip_ws(&ps);
    if (ps.at == ps.len) return root;
    fail_at(&ps, "trailing characters");
  }
  dora__json_free(root);
  return NULL;
}

void dora__json_free(dora_json *v) {
  if (!v) return;
  free_contents(v);
  free(v);
}

const dora_json *dora__json_get(const dora_json *object, const char *key) {
  if (!object || object->type != DJ_OBJECT) return NULL;
  for (size_t i = 0; i < object->count; i++)
    if (strcmp(object->keys[i], key) == 0) return &object->items[i];
  return NULL;
}

void dora__json_quote(dora_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  dora__buf_u8(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      dora__buf_u8(b, '\\');
      dora__buf_u8(b, c);
    } else if (c == '\n') {
      dora__buf_raw(b, "\\n", 2);
    } else if (c == '\r') {
      dora__buf_raw(b, "\\r", 2);
    } else if (c == '\t') {
      dora__buf_raw(b, "\\t", 2);
    } else if (c < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      dora__buf_raw(b, esc, 6);
    } else {
      dora__buf_u8(b, c);
    }
  }
  dora__buf_u8(b, '"');
}

/*
 * Golden-vector checker for the C library (tests/vectors/README.md).
 *
 *   check-vectors <vectors-dir> [folder/vector.json ...]   (all vectors when none is named)
 *
 * Decodes every vector the way a node does and prints one JSON line per vector:
 * what it decoded (type, values, parameters, handle...), whether re-encoding gives
 * the same bytes, or the error a refused frame produced. tests/c-api.test.ts compares
 * the lines with the vectors' descriptions. Shared-memory vectors expect their
 * segments to exist (the test creates them).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc((size_t)n + 1);
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  if (data) {
    data[n] = 0;
    *len = (size_t)n;
  }
  return data;
}

static dora_buf out; /* the current output line */

static void put(const char *s) { dora__buf_raw(&out, s, strlen(s)); }

static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void putf(const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(tmp);
}

static void put_hex(const uint8_t *p, size_t n) {
  put("\"");
  for (size_t i = 0; i < n; i++) putf("%02x", p[i]);
  put("\"");
}

static double half_to_double(uint16_t h) {
  int sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) return sign * mant * (1.0 / 16777216.0);
  double v = (1 + mant / 1024.0);
  for (int e = exp - 15; e > 0; e--) v *= 2;
  for (int e = exp - 15; e < 0; e++) v /= 2;
  return sign * v;
}

static int64_t offset_at(const struct ArrowArray *a, bool wide, int64_t i) {
  if (wide) return ((const int64_t *)a->buffers[1])[i];
  return ((const int32_t *)a->buffers[1])[i];
}

static void put_element(const struct ArrowArray *a, const struct ArrowSchema *s, int64_t idx);

/* Elements [from, from + n) of a, as physical indices (offset already applied). */
static void put_range(const struct ArrowArray *a, const struct ArrowSchema *s, int64_t from, int64_t n) {
  put("[");
  for (int64_t i = 0; i < n; i++) {
    if (i) put(",");
    put_element(a, s, from + i);
  }
  put("]");
}

static void put_element(const struct ArrowArray *a, const struct ArrowSchema *s, int64_t idx) {
  const char *f = s->format;
  const uint8_t *validity = a->n_buffers > 0 ? a->buffers[0] : NULL;
  if (strcmp(f, "n") == 0 || (validity && !(validity[idx >> 3] & (1 << (idx & 7))))) {
    put("null");
    return;
  }
  const void *v = a->n_buffers > 1 ? a->buffers[1] : NULL;
  if (strcmp(f, "b") == 0) put(((const uint8_t *)v)[idx >> 3] & (1 << (idx & 7)) ? "true" : "false");
  else if (strcmp(f, "c") == 0) putf("%d", ((const int8_t *)v)[idx]);
  else if (strcmp(f, "C") == 0) putf("%u", ((const uint8_t *)v)[idx]);
  else if (strcmp(f, "s") == 0) putf("%d", ((const int16_t *)v)[idx]);
  else if (strcmp(f, "S") == 0) putf("%u", ((const uint16_t *)v)[idx]);
  else if (!strcmp(f, "i") || !strcmp(f, "tdD") || !strcmp(f, "tts") || !strcmp(f, "ttm")) putf("%" PRId32, ((const int32_t *)v)[idx]);
  else if (strcmp(f, "I") == 0) putf("%" PRIu32, ((const uint32_t *)v)[idx]);
  else if (strcmp(f, "L") == 0) putf("\"%" PRIu64 "\"", ((const uint64_t *)v)[idx]);
  else if (!strcmp(f, "l") || !strcmp(f, "tdm") || !strncmp(f, "tt", 2) || !strncmp(f, "tD", 2) || !strncmp(f, "ts", 2))
    putf("\"%" PRId64 "\"", ((const int64_t *)v)[idx]);
  else if (strcmp(f, "e") == 0) putf("%.17g", half_to_double(((const uint16_t *)v)[idx]));
  else if (strcmp(f, "f") == 0) putf("%.17g", (double)((const float *)v)[idx]);
  else if (strcmp(f, "g") == 0) putf("%.17g", ((const double *)v)[idx]);
  else if (strncmp(f, "w:", 2) == 0) {
    int width = atoi(f + 2);
    put_hex((const uint8_t *)v + idx * width, (size_t)width);
  } else if (!strcmp(f, "u") || !strcmp(f, "U") || !strcmp(f, "z") || !strcmp(f, "Z")) {
    bool wide = f[0] == 'U' || f[0] == 'Z';
    int64_t start = offset_at(a, wide, idx), end = offset_at(a, wide, idx + 1);
    const uint8_t *data = (const uint8_t *)a->buffers[2] + start;
    if (f[0] == 'u' || f[0] == 'U') dora__json_quote(&out, (const char *)data, (size_t)(end - start));
    else put_hex(data, (size_t)(end - start));
  } else if (!strcmp(f, "+l") || !strcmp(f, "+L")) {
    bool wide = f[1] == 'L';
    int64_t start = offset_at(a, wide, idx), end = offset_at(a, wide, idx + 1);
    put_range(a->children[0], s->children[0], a->children[0]->offset + start, end - start);
  } else if (strncmp(f, "+w:", 3) == 0) {
    int64_t n = atoi(f + 3);
    put_range(a->children[0], s->children[0], a->children[0]->offset + idx * n, n);
  } else if (strcmp(f, "+s") == 0) {
    put("{");
    for (int64_t k = 0; k < a->n_children; k++) {
      if (k) put(",");
      dora__json_quote(&out, s->children[k]->name, strlen(s->children[k]->name));
      put(":");
      put_element(a->children[k], s->children[k], a->children[k]->offset + idx);
    }
    put("}");
  } else {
    putf("\"unsupported format %s\"", f);
  }
}

static void put_type(const struct ArrowSchema *s) {
  put("{\"format\":");
  dora__json_quote(&out, s->format, strlen(s->format));
  put(",\"name\":");
  dora__json_quote(&out, s->name, strlen(s->name));
  put((s->flags & ARROW_FLAG_NULLABLE) ? ",\"nullable\":true,\"children\":[" : ",\"nullable\":false,\"children\":[");
  for (int64_t i = 0; i < s->n_children; i++) {
    if (i) put(",");
    put_type(s->children[i]);
  }
  put("]}");
}

static void put_parameters(const DoraMetadata *m) {
  static const char *names[] = {"none", "bool", "int", "float", "string", "list-bool", "list-int", "list-float", "list-string", "timestamp"};
  put("{");
  for (size_t i = 0; i < dora_metadata_len(m); i++) {
    const char *key = dora_metadata_key(m, i);
    enum DoraParameterType t = dora_metadata_type(m, key);
    if (i) put(",");
    dora__json_quote(&out, key, strlen(key));
    putf(":{\"type\":\"%s\",\"value\":", names[t]);
    bool b;
    int64_t n;
    double d;
    const char *str;
    size_t len, count;
    const int64_t *ints;
    const double *floats;
    switch (t) {
      case DORA_PARAMETER_BOOL: dora_metadata_get_bool(m, key, &b); put(b ? "true" : "false"); break;
      case DORA_PARAMETER_INT:
      case DORA_PARAMETER_TIMESTAMP: dora_metadata_get_int(m, key, &n); putf("\"%" PRId64 "\"", n); break;
      case DORA_PARAMETER_FLOAT: dora_metadata_get_float(m, key, &d); putf("%.17g", d); break;
      case DORA_PARAMETER_STRING: dora_metadata_get_string(m, key, &str, &len); dora__json_quote(&out, str, len); break;
      case DORA_PARAMETER_LIST_INT:
        dora_metadata_get_int_list(m, key, &ints, &count);
        put("[");
        for (size_t k = 0; k < count; k++) putf("%s\"%" PRId64 "\"", k ? "," : "", ints[k]);
        put("]");
        break;
      case DORA_PARAMETER_LIST_FLOAT:
        dora_metadata_get_float_list(m, key, &floats, &count);
        put("[");
        for (size_t k = 0; k < count; k++) putf("%s%.17g", k ? "," : "", floats[k]);
        put("]");
        break;
      case DORA_PARAMETER_LIST_BOOL:
      case DORA_PARAMETER_LIST_STRING:
        dora_metadata_list_len(m, key, &count);
        put("[");
        for (size_t k = 0; k < count; k++) {
          if (k) put(",");
          dora_metadata_get_list_item(m, key, k, &str, &len, &b);
          if (t == DORA_PARAMETER_LIST_BOOL) put(b ? "true" : "false");
          else dora__json_quote(&out, str, len);
        }
        put("]");
        break;
      default: put("null");
    }
    put("}");
  }
  put("}");
}

/* Is p inside a mapping of /dev/shm/<segment> in this process? */
static bool mapped_from(const void *p, const char *segment) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  bool found = false;
  while (f && !found && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi && strstr(line, segment)) found = true;
  }
  if (f) fclose(f);
  return found;
}

/* Loads the frames a vector lists (relative to its folder). */
static size_t load_frames(const char *dir, const dora_json *files, uint8_t **frames, size_t *lens) {
  size_t n = 0;
  for (size_t i = 0; files && i < files->count && n < 8; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files->items[i].string);
    frames[n] = read_file(path, &lens[n]);
    if (frames[n]) n++;
  }
  return n;
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) { return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0); }

static void check_data(const char *dir, const dora_json *v, bool reencode) {
  uint8_t *frames[8];
  size_t lens[8];
  size_t n = load_frames(dir, dora__json_get(v, "frames"), frames, lens);
  DoraEvent *ev = NULL;
  bool eos = false;
  if (dora__decode_frames((const uint8_t *const *)frames, lens, n, &ev, &eos)) {
    put(",\"ok\":false,\"error\":");
    const char *e = dora_last_error();
    dora__json_quote(&out, e, strlen(e));
  } else if (eos) {
    put(",\"ok\":true,\"eos\":true");
  } else {
    struct ArrowArray a;
    struct ArrowSchema s;
    dora_event_arrow(ev, &a, &s);
    putf(",\"ok\":true,\"timestamp\":\"%llu\",\"seq\":\"%" PRIu64 "\",\"length\":%" PRId64 ",\"type\":", read_dora_input_timestamp(ev),
         dora__event_seq(ev), a.length);
    put_type(&s);
    put(",\"parameters\":");
    put_parameters(dora_event_metadata(ev));
    const dora_json *segment = dora__json_get(v, "segment");
    if (segment && a.n_buffers > 1) {
      /* a shared-memory vector: compare bytes with the segment file instead of printing 4096 values */
      char path[2048];
      size_t seg_len = 0;
      snprintf(path, sizeof path, "%s/%s", dir, dora__json_get(segment, "file")->string);
      uint8_t *seg = read_file(path, &seg_len);
      const dora_json *handle = dora__json_get(v, "handle");
      size_t at = (size_t)dora__json_get(handle, "offset")->number;
      put(same(a.buffers[1], (size_t)a.length, seg + at, (size_t)a.length) ? ",\"bytesEqual\":true" : ",\"bytesEqual\":false");
      put(mapped_from(a.buffers[1], dora__json_get(segment, "name")->string) ? ",\"inPlace\":true" : ",\"inPlace\":false");
      free(seg);
    } else {
      put(",\"values\":");
      put_range(&a, &s, a.offset, a.length);
    }
    if (reencode) {
      dora_plan plan;
      if (dora__plan_arrow(&a, &s, &plan) == 0) {
        dora_header h = {0};
        h.kind = DORA_KIND_DATA;
        h.location = DORA_LOC_INLINE;
        h.timestamp = read_dora_input_timestamp(ev);
        h.seq = dora__event_seq(ev);
        h.metadata = (DoraMetadata *)dora_event_metadata(ev);
        h.inline_length = plan.size;
        h.layout = plan.layout;
        dora_buf header = {0};
        dora__header_write(&header, &h);
        uint8_t *payload = malloc(plan.size + 1);
        dora__plan_write(&plan, payload);
        bool equal = same(header.data, header.len, frames[0], lens[0]) &&
                     (plan.size == 0 ? n == 1 : n == 2 && same(payload, plan.size, frames[1], lens[1]));
        put(equal ? ",\"reencoded\":true" : ",\"reencoded\":false");
        free(payload);
        dora__buf_free(&header);
        dora__plan_free(&plan);
      } else {
        put(",\"reencoded\":false,\"reencodeError\":");
        dora__json_quote(&out, dora_last_error(), strlen(dora_last_error()));
      }
    }
    a.release(&a);
    s.release(&s);
    free_dora_event(ev);
  }
  for (size_t i = 0; i < n; i++) free(frames[i]);
}

static void check_tokens(const char *dir, const dora_json *v) {
  uint8_t *frames[8];
  size_t lens[8];
  size_t n = load_frames(dir, dora__json_get(v, "frames"), frames, lens);
  dora_tokens t;
  if (n == 0 || dora__tokens_read(frames[0], lens[0], &t)) {
    put(",\"ok\":false,\"error\":");
    dora__json_quote(&out, dora_last_error(), strlen(dora_last_error()));
  } else {
    put(",\"ok\":true,\"receiver\":");
    dora__json_quote(&out, t.receiver, strlen(t.receiver));
    put(",\"samples\":[");
    for (size_t i = 0; i < t.n_samples; i++) putf("%s\"%" PRIu64 "\"", i ? "," : "", t.samples[i]);
    put("],\"lost\":[");
    for (size_t i = 0; i < t.n_lost; i++) {
      put(i ? ",{\"output\":" : "{\"output\":");
      dora__json_quote(&out, t.lost[i].output, strlen(t.lost[i].output));
      putf(",\"first\":\"%" PRIu64 "\",\"last\":\"%" PRIu64 "\"}", t.lost[i].first, t.lost[i].last);
    }
    put("]");
    dora_buf again = {0};
    dora__tokens_write(&again, t.receiver, t.samples, t.n_samples, t.lost, t.n_lost);
    put(same(again.data, again.len, frames[0], lens[0]) ? ",\"reencoded\":true" : ",\"reencoded\":false");
    dora__buf_free(&again);
    dora__tokens_free(&t);
  }
  for (size_t i = 0; i < n; i++) free(frames[i]);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Checks one vector, `folder/name` under root, and prints its line. */
static void check_file(const char *root, const char *folder, const char *name) {
  char dir[1024], path[2048];
  size_t len;
  snprintf(dir, sizeof dir, "%s/%s", root, folder);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *text = (char *)read_file(path, &len);
  dora_json *v = text ? dora__json_parse(text, len) : NULL;
  out.len = 0;
  put("{\"file\":");
  char rel[1100];
  snprintf(rel, sizeof rel, "%s/%s", folder, name);
  dora__json_quote(&out, rel, strlen(rel));
  const dora_json *message = dora__json_get(v, "message");
  bool tokens = message && message->type == DJ_STRING && strcmp(message->string, "drop-tokens") == 0;
  if (!v) put(",\"ok\":false,\"error\":\"unreadable vector\"");
  else if (tokens) check_tokens(dir, v);
  else check_data(dir, v, strcmp(folder, "arrow") == 0);
  put("}\n");
  fwrite(out.data, 1, out.len, stdout);
  fflush(stdout);
  dora__json_free(v);
  free(text);
}

static void check_folder(const char *root, const char *folder) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", root, folder);
  DIR *d = opendir(dir);
  if (!d) return;
  char *names[512];
  size_t count = 0;
  struct dirent *e;
  while ((e = readdir(d)) && count < 512) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && strcmp(e->d_name, "control.json") != 0) names[count++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, count, sizeof names[0], by_name);
  for (size_t i = 0; i < count; i++) {
    check_file(root, folder, names[i]);
    free(names[i]);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <vectors-dir> [folder/vector.json ...]\n", argv[0]);
    return 2;
  }
  if (argc == 2) {
    check_folder(argv[1], "arrow");
    check_folder(argv[1], "messages");
    check_folder(argv[1], "invalid");
  }
  for (int i = 2; i < argc; i++) {
    char folder[256];
    const char *slash = strchr(argv[i], '/');
    if (!slash || (size_t)(slash - argv[i]) >= sizeof folder) continue;
    memcpy(folder, argv[i], (size_t)(slash - argv[i]));
    folder[slash - argv[i]] = 0;
    check_file(argv[1], folder, slash + 1);
  }
  dora__buf_free(&out);
  return 0;
}

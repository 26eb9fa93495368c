/* POSIX shared memory: senders' segments and receivers' cached read-only mappings. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Idle mappings (no reference) kept for reuse; beyond this the least recently used go. */
#define MAX_IDLE_MAPPINGS 32
/* Names of shrunk segments kept for a report nobody may ask for (decoding without a node). */
#define MAX_SHRUNK_NAMES_BYTES 4096

int dora__segment_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n > DORA_SEGMENT_NAME_MAX || strncmp(name, DORA_SEGMENT_PREFIX, strlen(DORA_SEGMENT_PREFIX)) != 0) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return 0;
  }
  return 1;
}

/* Unmaps m, already out of the list; a damage not reported yet waits in c->shrunk. */
static void unmap(dora_segment_cache *c, dora_mapping *m) {
  if (dora__guard_remove(m->guard) && !m->reported && c->shrunk.len < MAX_SHRUNK_NAMES_BYTES) dora__buf_raw(&c->shrunk, m->name, strlen(m->name) + 1);
  if (m->ptr) munmap(m->ptr, m->size);
  free(m->name);
  free(m);
}

static void evict(dora_segment_cache *c) {
  size_t idle = 0;
  for (dora_mapping *m = c->head; m; m = m->next) idle += m->refs == 0;
  while (idle > MAX_IDLE_MAPPINGS) {
    dora_mapping **oldest = NULL;
    for (dora_mapping **pm = &c->head; *pm; pm = &(*pm)->next)
      if ((*pm)->refs == 0 && (!oldest || (*pm)->last_used < (*oldest)->last_used)) oldest = pm;
    dora_mapping *m = *oldest;
    *oldest = m->next;
    unmap(c, m);
    idle--;
  }
}

int dora__cache_view(dora_segment_cache *c, const char *name, uint64_t offset, uint64_t length, dora_mapping **out) {
  if (!dora__segment_name_valid(name)) return dora__fail(DORA_E_SHARED_MEMORY, "shared-memory segment \"%s\": refusing to open, not a dora-ts segment name", name);
  /* A damaged mapping (its segment shrank) serves no new message: a fresh one checks the size now. */
  dora_mapping *m = c->head;
  while (m && (strcmp(m->name, name) != 0 || dora__guard_damaged(m->guard))) m = m->next;
  if (!m) {
    char path[256];
    snprintf(path, sizeof path, "/%s", name);
    int fd = shm_open(path, O_RDONLY, 0);
    if (fd < 0) {
      int err = errno;
      return dora__fail(DORA_E_SHARED_MEMORY, "shared-memory segment \"%s\" %s", name, err == ENOENT ? "does not exist" : strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      return dora__fail(DORA_E_SHARED_MEMORY, "shared-memory segment \"%s\": %s", name, strerror(err));
    }
    void *ptr = NULL;
    if (st.st_size > 0) {
      ptr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
      if (ptr == MAP_FAILED) {
        int err = errno;
        close(fd);
        return dora__fail(DORA_E_SHARED_MEMORY, "mmap of shared-memory segment \"%s\" failed: %s", name, strerror(err));
      }
    }
    close(fd);
    m = calloc(1, sizeof *m);
    char *copy = malloc(strlen(name) + 1);
    dora_guard *guard = ptr ? dora__guard_add(ptr, (size_t)st.st_size) : NULL;
    if (!m || !copy || (ptr && !guard)) {
      dora__guard_remove(guard);
      if (ptr) munmap(ptr, (size_t)st.st_size);
      free(m);
      free(copy);
      return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    }
    strcpy(copy, name);
    *m = (dora_mapping){copy, ptr, (size_t)st.st_size, 0, 0, c->head, guard, false};
    c->head = m;
  }
  m->last_used = ++c->tick;
  if (offset > m->size || length > m->size - offset) {
    int rc = dora__fail(DORA_E_SHARED_MEMORY, "payload [%llu, %llu) lies outside the %zu-byte segment %s", (unsigned long long)offset,
                        (unsigned long long)(offset + length), m->size, name);
    evict(c);
    return rc;
  }
  m->refs++;
  *out = m;
  return 0;
}

void dora__cache_unref(dora_segment_cache *c, dora_mapping *m) {
  if (--m->refs == 0) evict(c);
}

void dora__cache_close(dora_segment_cache *c) {
  dora_mapping **pm = &c->head;
  while (*pm) {
    dora_mapping *m = *pm;
    if (m->refs > 0) { /* still viewed by an array the user holds: leave it mapped */
      pm = &m->next;
      continue;
    }
    *pm = m->next;
    unmap(c, m);
  }
  if (!c->head) dora__buf_free(&c->shrunk); /* the last close: nobody reports any more */
}

void dora__cache_shrunk(dora_segment_cache *c, dora_buf *names) {
  for (dora_mapping *m = c->head; m; m = m->next) {
    if (m->reported || !dora__guard_damaged(m->guard)) continue;
    m->reported = true;
    dora__buf_raw(names, m->name, strlen(m->name) + 1);
  }
  dora__buf_raw(names, c->shrunk.data, c->shrunk.len);
  c->shrunk.len = 0;
}

int dora__segment_create(const char *prefix, size_t size, dora_segment *out) {
  uint8_t random[DORA_SEGMENT_RANDOM_HEX_DIGITS / 2];
  if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) return dora__fail(DORA_E_SYSTEM, "getrandom failed: %s", strerror(errno));
  size_t plen = strlen(prefix);
  char *name = malloc(plen + 2 * sizeof random + 1);
  if (!name) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  memcpy(name, prefix, plen);
  for (size_t i = 0; i < sizeof random; i++) snprintf(name + plen + 2 * i, 3, "%02x", random[i]);
  char path[300];
  snprintf(path, sizeof path, "/%s", name);
  int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    int err = errno;
    free(name);
    return dora__fail(DORA_E_SHARED_MEMORY, "shm_open(%s) failed: %s", path, strerror(err));
  }
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(path);
    free(name);
    return dora__fail(DORA_E_SHARED_MEMORY, "ftruncate(%s, %zu) failed: %s", path, size, strerror(err));
  }
  /* pre-faulted: first-touch page faults would cost more than the copy itself */
  void *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int err = errno;
  close(fd);
  if (ptr == MAP_FAILED) {
    shm_unlink(path);
    free(name);
    return dora__fail(DORA_E_SHARED_MEMORY, "mmap(%s, %zu) failed: %s", path, size, strerror(err));
  }
  *out = (dora_segment){name, ptr, size};
  return 0;
}

void dora__segment_destroy(dora_segment *s) {
  if (!s->name) return;
  char path[300];
  snprintf(path, sizeof path, "/%s", s->name);
  shm_unlink(path);
  if (s->ptr) munmap(s->ptr, s->size);
  free(s->name);
  memset(s, 0, sizeof *s);
}

size_t dora__unlink_segments(const char *prefix) {
  size_t n = 0, len = strlen(prefix);
  DIR *dir = opendir("/dev/shm");
  if (!dir) return 0;
  for (struct dirent *e; (e = readdir(dir));) {
    if (strncmp(e->d_name, prefix, len) != 0 || !dora__segment_name_valid(e->d_name)) continue;
    char path[300];
    snprintf(path, sizeof path, "/%s", e->d_name);
    n += shm_unlink(path) == 0;
  }
  closedir(dir);
  return n;
}

/*
 * Dynamic nodes (`path: dynamic`): a process the user starts by hand joins a running
 * dataflow as one of its nodes. It has no DORA_NODE_CONFIG, so it looks in the user's
 * runtime directory (the rules of coordinator/userdirs.ts, repeated here) for the
 * dataflows whose daemon lives and whose daemon.json declares the node, picks one, and
 * asks that daemon for the node's configuration (`dynamic-config`, docs/protocol.md
 * section 6.1). Its daemon is not its parent: it lives while the daemon's process (PID
 * and start time) and the dataflow's request socket do (dora__daemon_alive).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"

#define DAEMON_FILE "daemon.json"
#define MAX_RECORD_BYTES 65536   /* a daemon.json is a few hundred bytes */
#define MAX_RUNS 64              /* running dataflows considered (named in errors) */
#define CONFIG_WAIT_MS 5000      /* how long the daemon may take to answer */

/* What a live run's daemon.json says. */
typedef struct {
  dora_json *record;
  const char *id, *name, *requests;
  bool declares; /* lists the wanted node among its dynamic nodes */
} run_t;

int dora__process_start_time(long pid, char *out, size_t capacity) {
  char path[64], stat[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return -1;
  stat[n] = '\0';
  /* the command name (field 2) may hold spaces and parentheses: count from the last ')' */
  char *p = strrchr(stat, ')');
  if (!p || p[1] != ' ' || p[2] == 'Z') return -1; /* a zombie is gone */
  p += 2;
  for (int field = 3; field < 22 && p; field++) p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
  if (!p) return -1;
  size_t len = strcspn(p, " \n");
  if (len == 0 || len >= capacity) return -1;
  memcpy(out, p, len);
  out[len] = '\0';
  return 0;
}

/* The user's runtime directory, as coordinator/userdirs.ts chooses it, refused when others can reach it. */
static int runtime_dir(char *out, size_t capacity) {
  const char *env = getenv("DORA_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
  struct stat st;
  int n;
  if (env && *env) n = snprintf(out, capacity, "%s", env);
  else if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid()) n = snprintf(out, capacity, "%s/dora-ts", xdg);
  else n = snprintf(out, capacity, "/tmp/dora-ts-%u", (unsigned)getuid());
  if (n < 0 || (size_t)n >= capacity) return dora__fail(DORA_E_CONFIG, "the runtime directory's path is too long");
  if (lstat(out, &st) != 0) {
    if (errno == ENOENT) return dora__fail(DORA_E_CONFIG, "no dataflow is running: the runtime directory %s does not exist", out);
    return dora__fail(DORA_E_SYSTEM, "cannot read the runtime directory %s: %s", out, strerror(errno));
  }
  const char *problem = S_ISLNK(st.st_mode) ? "is a symbolic link" : !S_ISDIR(st.st_mode) ? "is not a directory" : st.st_uid != getuid() ? "belongs to another user" : (st.st_mode & 077) ? "is open to other users" : NULL;
  if (problem)
    return dora__fail(DORA_E_SYSTEM, "refusing the runtime directory %s: it %s, so other users could reach what dora-ts keeps there; set DORA_RUNTIME_DIR to a directory of your own", out, problem);
  return 0;
}

static bool is_dataflow_id(const char *name) {
  if (strlen(name) != 36) return false;
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? name[i] != '-' : !((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
  }
  return true;
}

/* Reads dir/id/daemon.json into *run when its daemon lives; false for anything else. */
static bool read_run(const char *dir, const char *id, const char *node_id, run_t *run) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/%s/" DAEMON_FILE, dir, id) >= sizeof path) return false;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  char *text = malloc(MAX_RECORD_BYTES);
  ssize_t n = text ? read(fd, text, MAX_RECORD_BYTES) : -1;
  close(fd);
  dora_json *record = n > 0 && n < MAX_RECORD_BYTES ? dora__json_parse(text, (size_t)n) : NULL;
  free(text);
  if (!record) return false; /* being written, or not ours */
  const dora_json *pid = dora__json_get(record, "pid"), *nodes = dora__json_get(record, "dynamicNodes");
  const char *started = dora__jstr(record, "startTime"), *dataflow = dora__jstr(record, "dataflow"), *requests = dora__jstr(record, "requests");
  char now[32];
  bool alive = pid && pid->type == DJ_NUMBER && dora__process_start_time((long)pid->number, now, sizeof now) == 0 && (!started || strcmp(started, now) == 0);
  if (!alive || !dataflow || strcmp(dataflow, id) != 0 || !requests) {
    dora__json_free(record);
    return false;
  }
  *run = (run_t){record, dataflow, dora__jstr(record, "name"), requests, false};
  for (size_t k = 0; nodes && nodes->type == DJ_ARRAY && k < nodes->count; k++)
    run->declares |= nodes->items[k].type == DJ_STRING && strcmp(nodes->items[k].string, node_id) == 0;
  return true;
}

/* "<id> (name)" of a run, appended to b. */
static void describe_run(dora_buf *b, const run_t *run) {
  dora__buf_raw(b, run->id, strlen(run->id));
  if (run->name) {
    dora__buf_raw(b, " (", 2);
    dora__buf_raw(b, run->name, strlen(run->name));
    dora__buf_u8(b, ')');
  }
}

/* The running dataflows, each with its dynamic nodes, for an error message. */
static void describe_runs(dora_buf *b, const run_t *runs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) dora__buf_raw(b, "; ", 2);
    describe_run(b, &runs[i]);
    const dora_json *nodes = dora__json_get(runs[i].record, "dynamicNodes");
    size_t count = nodes && nodes->type == DJ_ARRAY ? nodes->count : 0;
    dora__buf_raw(b, count ? " with dynamic nodes " : " without dynamic nodes", count ? 20 : 22);
    for (size_t k = 0; k < count; k++) {
      if (k) dora__buf_raw(b, ", ", 2);
      if (nodes->items[k].type == DJ_STRING) dora__buf_raw(b, nodes->items[k].string, strlen(nodes->items[k].string));
    }
  }
  dora__buf_u8(b, '\0');
}

/* Asks the daemon at endpoint for node_id's configuration; *out is the JSON text (the caller frees). */
static int request_config(const char *endpoint, const char *node_id, char **out) {
  void *zctx = zmq_ctx_new();
  void *s = zctx ? zmq_socket(zctx, ZMQ_DEALER) : NULL;
  int zero = 0, rc = -1;
  if (!s) {
    dora__fail(DORA_E_ZMQ, "cannot open a socket: %s", zmq_strerror(errno));
  } else if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) || zmq_connect(s, endpoint)) {
    dora__fail(DORA_E_ZMQ, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
  } else {
    dora_buf b = {0};
    static const char head[] = "{\"t\":\"" DORA_T_DYNAMIC_CONFIG "\",\"node\":";
    dora__buf_raw(&b, head, sizeof head - 1);
    dora__json_quote(&b, node_id, strlen(node_id));
    char tail[32];
    snprintf(tail, sizeof tail, ",\"version\":%d}", DORA_PROTOCOL_VERSION);
    dora__buf_raw(&b, tail, strlen(tail));
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    if (b.oom) dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    else if (dora__zsend(s, b.data, b.len, 0) == 0 && zmq_poll(&item, 1, CONFIG_WAIT_MS) <= 0)
      dora__fail(DORA_E_TIMEOUT, "the daemon at %s did not answer within %d s", endpoint, CONFIG_WAIT_MS / 1000);
    else if (item.revents & ZMQ_POLLIN) {
      zmq_msg_t reply;
      zmq_msg_init(&reply);
      if (zmq_msg_recv(&reply, s, 0) >= 0) {
        size_t len = zmq_msg_size(&reply);
        dora_json *msg = dora__json_parse(zmq_msg_data(&reply), len);
        const char *t = msg ? dora__jstr(msg, "t") : NULL;
        if (!msg) dora__fail(DORA_E_CONFIG, "the daemon answered with something that is not JSON");
        else if (t) dora__fail(DORA_E_CONFIG, "%s", dora__jstr(msg, "message") ? dora__jstr(msg, "message") : "the daemon refused the node");
        else if (!(*out = malloc(len + 1))) dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
        else {
          memcpy(*out, zmq_msg_data(&reply), len);
          (*out)[len] = '\0';
          rc = 0;
        }
        dora__json_free(msg);
      }
      zmq_msg_close(&reply);
    }
    dora__buf_free(&b);
  }
  if (s) zmq_close(s);
  if (zctx) zmq_ctx_term(zctx);
  return rc;
}

int dora__dynamic_config(const char *node_id, const char *dataflow, char **out) {
  *out = NULL;
  if (!node_id || !*node_id || strlen(node_id) > 256) return dora__fail(DORA_E_INVALID_ARGUMENT, "a dynamic node needs its node id (the `id` of its `path: dynamic` entry)");
  if (!dataflow || !*dataflow) dataflow = getenv("DORA_DATAFLOW");
  if (dataflow && !*dataflow) dataflow = NULL;
  char dir[PATH_MAX - 64];
  if (runtime_dir(dir, sizeof dir)) return -1;
  DIR *d = opendir(dir);
  if (!d) return dora__fail(DORA_E_SYSTEM, "cannot list the runtime directory %s: %s", dir, strerror(errno));
  run_t runs[MAX_RUNS];
  size_t n = 0, matches = 0, chosen = 0;
  for (struct dirent *e; n < MAX_RUNS && (e = readdir(d));) {
    if (!is_dataflow_id(e->d_name) || !read_run(dir, e->d_name, node_id, &runs[n])) continue;
    bool selected = !dataflow || strcmp(runs[n].id, dataflow) == 0 || (runs[n].name && strcmp(runs[n].name, dataflow) == 0);
    if (runs[n].declares && selected) matches++, chosen = n;
    n++;
  }
  closedir(d);
  int rc = -1;
  dora_buf b = {0};
  if (n == 0) {
    dora__fail(DORA_E_CONFIG, "no dataflow is running (none in %s): start the dataflow that declares node \"%s\" with `path: dynamic` first", dir, node_id);
  } else if (matches == 0) {
    describe_runs(&b, runs, n);
    if (dataflow)
      dora__fail(DORA_E_CONFIG, "no running dataflow with the id or name \"%s\" declares a dynamic node \"%s\" (running: %s)", dataflow, node_id, b.oom ? "?" : (char *)b.data);
    else
      dora__fail(DORA_E_CONFIG, "no running dataflow declares a dynamic node \"%s\" (`path: dynamic`); running: %s", node_id, b.oom ? "?" : (char *)b.data);
  } else if (matches > 1) {
    for (size_t i = 0; i < n; i++) {
      if (!runs[i].declares) continue;
      if (b.len) dora__buf_raw(&b, ", ", 2);
      describe_run(&b, &runs[i]);
    }
    dora__buf_u8(&b, '\0');
    dora__fail(DORA_E_CONFIG, "%zu running dataflows declare a dynamic node \"%s\": %s; set DORA_DATAFLOW to the id or name of the one to join", matches, node_id,
               b.oom ? "?" : (char *)b.data);
  } else if (request_config(runs[chosen].requests, node_id, out) == 0) {
    rc = 0;
  } else {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "dynamic node \"%.40s\" cannot join dataflow %s: ", node_id, runs[chosen].id);
    dora__fail_again(dora_last_error_code(), prefix);
  }
  dora__buf_free(&b);
  for (size_t i = 0; i < n; i++) dora__json_free(runs[i].record);
  return rc;
}

int64_t dora_dynamic_config(const char *node_id, const char *dataflow, char *out, size_t capacity) {
  char *text;
  if (dora__dynamic_config(node_id, dataflow, &text)) return -1;
  size_t len = strlen(text);
  if (out && len < capacity) memcpy(out, text, len + 1);
  free(text);
  return (int64_t)len;
}

/*
 * dora-runtime: the process that runs a node's C operators (a node whose operators are
 * all shared libraries; a node with a Python operator runs in the Python runtime, which
 * hosts C operators too). The daemon starts it with the node's DORA_NODE_CONFIG, where
 * the node's inputs are its operators' inputs named `<operator>/<input>` and its outputs
 * `<operator>/<output>`, and with one group of arguments per operator:
 *
 *     dora-runtime --operator <id> shared-library <path of lib<name>.so> <inputs> <outputs>
 *
 * (inputs and outputs comma-separated, possibly empty). It loads every operator, joins
 * the dataflow as the node, and hands each event to the operator it belongs to, under
 * the operator's own input id. An operator is done when it returns STOP or STOP_ALL, when
 * all its inputs have closed, or at STOP; the process ends when all are done. STOP_ALL
 * asks the daemon to stop the dataflow (a log record it recognizes: STOP_ALL_PREFIX).
 * An operator's error ends the process with status 1.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dora_node_api.h"
#include "host.h"
#include "operator_types.h"

/* The daemon stops the dataflow when a runtime node logs a record starting with this
 * (coordinator/operators.ts, STOP_ALL_PREFIX). */
#define STOP_ALL_PREFIX "dora-runtime stop-all:"
/* Longest wait for an event with the context locked: an operator thread that sends waits
 * at most this long for the context. */
#define WAIT_SLICE_MS 20

typedef struct {
  const char *id, *path;
  char **inputs, **outputs;
  size_t n_inputs, n_outputs;
  bool *open; /* per input */
  DoraOperatorHost *host;
  bool done;
} operator_t;

static DoraContext *context;
static pthread_mutex_t context_lock = PTHREAD_MUTEX_INITIALIZER;
static operator_t *operators;
static size_t n_operators, n_live;

/* Splits a comma-separated list; an empty string is an empty list. */
static char **split(const char *text, size_t *count) {
  size_t n = text[0] ? 1 : 0;
  for (const char *c = text; *c; c++) n += *c == ',';
  char **items = calloc(n ? n : 1, sizeof *items);
  char *copy = strdup(text);
  if (!items || !copy) {
    fprintf(stderr, "dora-runtime: out of memory\n");
    exit(1);
  }
  size_t i = 0;
  for (char *item = copy, *next; n && item; item = next) {
    next = strchr(item, ',');
    if (next) *next++ = '\0';
    items[i++] = item;
  }
  if (n == 0) free(copy);
  *count = n;
  return items;
}

static int index_of(char *const *items, size_t n, const char *item, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(items[i]) == len && memcmp(items[i], item, len) == 0) return (int)i;
  return -1;
}

static int send_output(void *user, const char *output_id, const uint8_t *data, size_t len, char *error, size_t error_len) {
  operator_t *op = user;
  if (index_of(op->outputs, op->n_outputs, output_id, strlen(output_id)) < 0) {
    size_t used = (size_t)snprintf(error, error_len, "operator %s has no output \"%s\" (declared outputs:", op->id, output_id);
    for (size_t i = 0; i < op->n_outputs && used < error_len; i++) used += (size_t)snprintf(error + used, error_len - used, " %s", op->outputs[i]);
    if (used < error_len) snprintf(error + used, error_len - used, "%s)", op->n_outputs ? "" : " none");
    return -1;
  }
  char *id = malloc(strlen(op->id) + strlen(output_id) + 2);
  if (!id) return snprintf(error, error_len, "out of memory"), -1;
  sprintf(id, "%s/%s", op->id, output_id);
  pthread_mutex_lock(&context_lock);
  int rc = context ? dora_send_output(context, id, strlen(id), (const char *)data, len) : -1;
  if (rc != 0) snprintf(error, error_len, "%s", context ? dora_last_error() : "outputs cannot be sent before the node has joined the dataflow");
  pthread_mutex_unlock(&context_lock);
  free(id);
  return rc;
}

static void finish(operator_t *op) {
  if (op->done) return;
  op->done = true;
  n_live--;
  char error[1024];
  if (dora_operator_drop(op->host, error, sizeof error) != 0) fprintf(stderr, "dora-runtime: operator %s: %s\n", op->id, error);
  op->host = NULL;
}

static void stop_all(const operator_t *op) {
  char message[512];
  int n = snprintf(message, sizeof message, STOP_ALL_PREFIX " operator %s returned STOP_ALL: stopping the dataflow", op->id);
  pthread_mutex_lock(&context_lock);
  if (dora_log(context, "info", 4, message, (size_t)n) != 0) fprintf(stderr, "dora-runtime: cannot ask for the dataflow to stop: %s\n", dora_last_error());
  pthread_mutex_unlock(&context_lock);
}

/* Acts on what an operator's call returned; false when the process must fail. */
static bool handle(operator_t *op, int status, const char *error) {
  if (status < 0) {
    fprintf(stderr, "dora-runtime: operator %s: %s\n", op->id, error);
    return false;
  }
  if (status == DORA_STATUS_STOP_ALL) stop_all(op);
  if (status != DORA_STATUS_CONTINUE) finish(op);
  return true;
}

/* The operator an event's input id `<operator>/<input>` belongs to; *input is the rest. */
static operator_t *route(const char *id, size_t len, const char **input) {
  const char *slash = memchr(id, '/', len);
  if (!slash) return NULL;
  for (size_t i = 0; i < n_operators; i++) {
    operator_t *op = &operators[i];
    if (strlen(op->id) == (size_t)(slash - id) && memcmp(op->id, id, (size_t)(slash - id)) == 0) {
      *input = slash + 1;
      return op;
    }
  }
  return NULL;
}

/* Delivers one event; false when an operator failed. */
static bool dispatch(DoraEvent *event) {
  char error[1024] = "";
  enum DoraEventType type = read_dora_event_type(event);
  if (type == DoraEventType_Input || type == DoraEventType_InputClosed) {
    char *id, *data;
    size_t id_len, data_len;
    read_dora_input_id(event, &id, &id_len);
    const char *input;
    operator_t *op = route(id, id_len, &input);
    if (!op || op->done) return true; /* a finished operator gets nothing more */
    if (type == DoraEventType_Input) {
      read_dora_input_data(event, &data, &data_len);
      return handle(op, dora_operator_input(op->host, input, (const uint8_t *)data, data_len, error, sizeof error), error);
    }
    int i = index_of(op->inputs, op->n_inputs, input, strlen(input));
    if (i >= 0) op->open[i] = false;
    if (!handle(op, dora_operator_input_closed(op->host, input, error, sizeof error), error)) return false;
    bool any_open = false;
    for (size_t k = 0; k < op->n_inputs; k++) any_open = any_open || op->open[k];
    if (!any_open) finish(op); /* nothing more can come: dora ends the operator */
    return true;
  }
  if (type == DoraEventType_Stop || type == DoraEventType_Error) {
    const char *message = dora_event_message(event);
    for (size_t i = 0; i < n_operators; i++) {
      operator_t *op = &operators[i];
      if (op->done) continue;
      int status = type == DoraEventType_Stop ? dora_operator_stop(op->host, error, sizeof error) : dora_operator_error(op->host, message, error, sizeof error);
      if (!handle(op, status, error)) return false;
      if (type == DoraEventType_Stop) finish(op);
    }
  }
  return true; /* C operators have no events for recovered inputs or restarted peers */
}

static int usage(const char *why) {
  fprintf(stderr,
          "dora-runtime: %s\n"
          "usage: dora-runtime (--operator <id> shared-library <library path> <inputs,...> <outputs,...>)...\n"
          "it is started by the dora daemon for a node with operators, with the node's DORA_NODE_CONFIG\n",
          why);
  return 2;
}

int main(int argc, char **argv) {
  operators = calloc((size_t)argc, sizeof *operators);
  if (!operators) return usage("out of memory");
  for (int i = 1; i < argc; i += 6) {
    if (strcmp(argv[i], "--operator") != 0 || i + 5 >= argc) return usage("expected --operator followed by 5 values");
    if (strcmp(argv[i + 2], "shared-library") != 0) return usage("this runtime hosts shared-library operators only (a node with a Python operator runs in the Python runtime)");
    operator_t *op = &operators[n_operators++];
    op->id = argv[i + 1];
    op->path = argv[i + 3];
    op->inputs = split(argv[i + 4], &op->n_inputs);
    op->outputs = split(argv[i + 5], &op->n_outputs);
    op->open = calloc(op->n_inputs ? op->n_inputs : 1, sizeof *op->open);
    if (!op->open) return usage("out of memory");
    for (size_t k = 0; k < op->n_inputs; k++) op->open[k] = true;
  }
  if (n_operators == 0) return usage("no operators");

  char error[1024];
  for (size_t i = 0; i < n_operators; i++) {
    operator_t *op = &operators[i];
    op->host = dora_operator_load(op->path, send_output, op, error, sizeof error);
    if (!op->host) {
      fprintf(stderr, "dora-runtime: operator %s: %s\n", op->id, error);
      while (i-- > 0) finish(&operators[i]);
      return 1;
    }
    n_live++;
  }

  DoraContext *ctx = init_dora_context_from_env();
  if (!ctx) {
    fprintf(stderr, "dora-runtime: %s\n", dora_last_error());
    for (size_t i = 0; i < n_operators; i++) finish(&operators[i]);
    return 1;
  }
  pthread_mutex_lock(&context_lock);
  context = ctx;
  pthread_mutex_unlock(&context_lock);

  bool ok = true;
  while (ok && n_live > 0) {
    pthread_mutex_lock(&context_lock);
    DoraEvent *event = dora_next_event_timeout(ctx, WAIT_SLICE_MS);
    bool ended = !event && dora_event_stream_ended(ctx);
    pthread_mutex_unlock(&context_lock);
    if (ended) break;
    if (!event) continue;
    ok = dispatch(event);
    free_dora_event(event);
  }
  for (size_t i = 0; i < n_operators; i++) finish(&operators[i]);

  pthread_mutex_lock(&context_lock);
  context = NULL;
  pthread_mutex_unlock(&context_lock);
  free_dora_context(ctx);
  for (size_t i = 0; i < n_operators; i++) {
    if (operators[i].n_inputs) free(operators[i].inputs[0]);
    if (operators[i].n_outputs) free(operators[i].outputs[0]);
    free(operators[i].inputs);
    free(operators[i].outputs);
    free(operators[i].open);
  }
  free(operators);
  return ok ? 0 : 1;
}

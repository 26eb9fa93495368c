/*
 * Hosting one C operator (host.h). The library is opened RTLD_LOCAL, so that operators
 * exporting the same three names do not see each other's; it is never closed, because
 * an operator may leave threads or exit handlers behind in it.
 */
#include "host.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "abi.h"

struct DoraOperatorHost {
  DoraInitResult_t (*init)(void);
  DoraResult_t (*drop)(void *);
  OnEventResult_t (*on_event)(RawEvent_t *, const SendOutput_t *, void *);
  void *context;
  DoraOperatorSendFn send;
  void *user;
  SendOutput_t send_output;
};

/* Copies a result's error message into error[], after `prefix`, and frees it; -1. */
static int take_error(DoraResult_t result, const char *prefix, char *error, size_t error_len) {
  Vec_uint8_t *e = result.error;
  size_t len = e && e->ptr ? e->len : 0;
  if (error_len) snprintf(error, error_len, "%s%.*s", prefix, (int)(len > 4096 ? 4096 : len), e && e->ptr ? (const char *)e->ptr : "");
  if (e) free(e->ptr);
  free(e);
  return -1;
}

static DoraResult_t send_output(void *env, Output_t output) {
  DoraOperatorHost *host = env;
  if (output.abi != DORA_OPERATOR_ABI) {
    return dora__operator_error("the operator was built against another version of the operator API: rebuild it with this dora-ts's operator_types.h and libdora_operator_api_c");
  }
  char message[1024] = "";
  if (host->send(host->user, output.id, output.data, output.len, message, sizeof message) != 0) return dora__operator_error("%s", message);
  DoraResult_t ok = {NULL};
  return ok;
}

/* The host lives until the operator is dropped: nothing to count. */
static void keep(void *env) { (void)env; }

/* dlsym into a function pointer without ISO C's object-to-function cast. */
static bool symbol(void *library, const char *name, void *out_fn, size_t size) {
  void *address = dlsym(library, name);
  if (!address) return false;
  memcpy(out_fn, &address, size);
  return true;
}

DoraOperatorHost *dora_operator_load(const char *path, DoraOperatorSendFn send, void *user, char *error, size_t error_len) {
  if (error_len) error[0] = '\0';
  void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *why = dlerror();
    snprintf(error, error_len, "cannot load %s: %s", path, why ? why : "unknown error");
    return NULL;
  }
  DoraOperatorHost *host = calloc(1, sizeof *host);
  if (!host) {
    snprintf(error, error_len, "out of memory");
    dlclose(library);
    return NULL;
  }
  const char *missing = !symbol(library, "dora_init_operator", &host->init, sizeof host->init)   ? "dora_init_operator"
                        : !symbol(library, "dora_drop_operator", &host->drop, sizeof host->drop) ? "dora_drop_operator"
                        : !symbol(library, "dora_on_event", &host->on_event, sizeof host->on_event) ? "dora_on_event"
                                                                                                    : NULL;
  if (missing) {
    snprintf(error, error_len, "%s does not export %s: an operator defines dora_init_operator, dora_on_event and dora_drop_operator (operator_api.h)", path, missing);
    free(host);
    dlclose(library);
    return NULL;
  }
  host->send = send;
  host->user = user;
  host->send_output.send_output = (ArcDynFn1_DoraResult_Output_t){host, send_output, keep, keep};
  DoraInitResult_t init = host->init();
  if (init.result.error) {
    take_error(init.result, "dora_init_operator failed: ", error, error_len);
    free(host);
    return NULL;
  }
  host->context = init.operator_context;
  return host;
}

static int deliver(DoraOperatorHost *host, RawEvent_t *event, char *error, size_t error_len) {
  if (error_len) error[0] = '\0';
  OnEventResult_t r = host->on_event(event, &host->send_output, host->context);
  if (r.result.error) return take_error(r.result, "dora_on_event failed: ", error, error_len);
  if (r.status > DORA_STATUS_STOP_ALL) {
    snprintf(error, error_len, "dora_on_event returned the unknown status %u (CONTINUE 0, STOP 1, STOP_ALL 2)", (unsigned)r.status);
    return -1;
  }
  return r.status;
}

/* A read-only string as a Vec for RawEvent_t (the operator must not free or change it). */
static Vec_uint8_t borrowed(const char *text) {
  size_t len = strlen(text);
  return (Vec_uint8_t){(uint8_t *)(uintptr_t)text, len, len};
}

int dora_operator_input(DoraOperatorHost *host, const char *input_id, const uint8_t *data, size_t len, char *error, size_t error_len) {
  Input_t input = {DORA_OPERATOR_ABI, input_id, strlen(input_id), data, len};
  RawEvent_t event = {0};
  event.input = &input;
  return deliver(host, &event, error, error_len);
}

int dora_operator_input_closed(DoraOperatorHost *host, const char *input_id, char *error, size_t error_len) {
  RawEvent_t event = {0};
  event.input_closed = borrowed(input_id);
  return deliver(host, &event, error, error_len);
}

int dora_operator_stop(DoraOperatorHost *host, char *error, size_t error_len) {
  RawEvent_t event = {0};
  event.stop = true;
  return deliver(host, &event, error, error_len);
}

int dora_operator_error(DoraOperatorHost *host, const char *message, char *error, size_t error_len) {
  RawEvent_t event = {0};
  event.error = borrowed(message && message[0] ? message : "unknown error");
  return deliver(host, &event, error, error_len);
}

int dora_operator_drop(DoraOperatorHost *host, char *error, size_t error_len) {
  if (error_len) error[0] = '\0';
  if (!host) return 0;
  DoraResult_t r = host->drop(host->context);
  free(host);
  return r.error ? take_error(r, "dora_drop_operator failed: ", error, error_len) : 0;
}

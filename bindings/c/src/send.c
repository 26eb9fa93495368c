/*
 * Sending: every dora_send_output* function, and output samples allocated for writing
 * in place (dora_allocate_output, dora_send_output_sample, dora_discard_output_sample).
 * A payload at or above the shared-memory threshold goes through a pooled sample,
 * anything smaller inline, in a buffer ZeroMQ takes over (no further copy).
 */
#include <stdio.h>

#include "node.h"

#define DAEMON_CHECK_MS 250 /* how often sending checks that the daemon lives (a system call) */

/* What a message carries beside its payload: parsed, or (raw_*) already in its wire encoding. */
typedef struct {
  const dora_layout *layout;
  const DoraMetadata *metadata;
  const uint8_t *raw_layout, *raw_metadata;
  size_t raw_layout_len, raw_metadata_len;
} described;

/* ---- sending ------------------------------------------------------------------------ */

/* A sender whose daemon is gone must stop: nobody would remove what it creates. */
static int check_daemon_alive(DoraContext *ctx) {
  int64_t now = dora__now_ms();
  if (ctx->health_ms) __atomic_store_n(&ctx->activity_ms, now, __ATOMIC_RELAXED);
  if (now - ctx->last_daemon_check >= DAEMON_CHECK_MS) {
    ctx->last_daemon_check = now;
    dora__drain(ctx); /* a node that only sends still hears the daemon (a restarted receiver waits for our restart-seen) */
    dora__check_daemon(ctx);
  }
  return ctx->daemon_gone ? dora__fail(DORA_E_DAEMON_GONE, "the dora daemon of node \"%s\" is gone", ctx->node_id) : 0;
}

static int find_output(DoraContext *ctx, const char *id, size_t len) {
  if (!ctx || ctx->closed) return dora__fail(DORA_E_NO_CONTEXT, "send: no open context");
  for (size_t i = 0; ctx->pub && i < ctx->n_outputs; i++)
    if (strlen(ctx->outputs[i].name) == len && memcmp(ctx->outputs[i].name, id, len) == 0) return check_daemon_alive(ctx) ? -1 : (int)i;
  char declared[512] = "";
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    size_t at = strlen(declared);
    snprintf(declared + at, sizeof declared - at, "%s%s", i ? ", " : "", ctx->outputs[i].name);
  }
  return dora__fail(DORA_E_UNDECLARED_OUTPUT, "node \"%s\" has no output \"%.*s\" (declared outputs: %s)", ctx->node_id, (int)(len > 200 ? 200 : len), id ? id : "",
                    ctx->n_outputs ? declared : "none");
}

static void free_buffer(void *data, void *hint) {
  (void)hint;
  free(data);
}

/*
 * Sends one message on output o: the payload either in shared-memory sample `shm`
 * (>= 0) or inline in `inline_data` (ownership passes to ZeroMQ, freed with free()).
 */
/* Whether a layout has the format a declared type fixes: "g", or "+l<g>" for a list of it. */
static bool layout_is(const dora_layout *l, const char *format) {
  if (strncmp(format, "+l<", 3) == 0) {
    size_t n = strlen(format);
    if ((strcmp(l->format, "+l") != 0 && strcmp(l->format, "+L") != 0) || l->n_children != 1 || n < 4) return false;
    char inner[64];
    if (n - 4 >= sizeof inner) return false;
    memcpy(inner, format + 3, n - 4);
    inner[n - 4] = '\0';
    return layout_is(l->children[0], inner);
  }
  if (strcmp(format, "u") == 0) return strcmp(l->format, "u") == 0 || strcmp(l->format, "U") == 0; /* utf8, large or not */
  return strcmp(l->format, format) == 0;
}

/* DORA_RUNTIME_TYPE_CHECK=warn|error: what an output sends against its declared type
 * (output_types, resolved by the daemon into the configuration's outputTypes). */
static int check_type(DoraContext *ctx, int o, const dora_layout *layout) {
  if (ctx->type_check < 0) {
    const char *mode = getenv("DORA_RUNTIME_TYPE_CHECK");
    ctx->type_check = !mode ? 0 : strcmp(mode, "error") == 0 ? 2 : strcmp(mode, "warn") == 0 ? 1 : 0;
    const dora_json *types = ctx->type_check ? dora__json_get(ctx->config, DORA_CFG_OUTPUT_TYPES) : NULL;
    for (size_t i = 0; types && i < ctx->n_outputs; i++) {
      const dora_json *t = dora__json_get(types, ctx->outputs[i].name);
      ctx->outputs[i].type_urn = t ? dora__jstr(t, "urn") : NULL;
      ctx->outputs[i].type_format = t ? dora__jstr(t, "format") : NULL;
    }
  }
  output_t *out = &ctx->outputs[o];
  if (!ctx->type_check || !out->type_format || !layout || layout_is(layout, out->type_format)) return 0;
  if (ctx->type_check == 2)
    return dora__fail(DORA_E_INVALID_ARGUMENT, "output \"%s\" is declared %s, but this message's Arrow format is \"%s\" (DORA_RUNTIME_TYPE_CHECK=error)",
                      out->name, out->type_urn, layout->format);
  if (!out->type_warned) {
    out->type_warned = true;
    dora__log_to_daemon(ctx, "warn", "output \"%s\" is declared %s, but sent Arrow format \"%s\" (DORA_RUNTIME_TYPE_CHECK=warn: reported once per output)",
                        out->name, out->type_urn, layout->format);
  }
  return 0;
}

static int send_message(DoraContext *ctx, int o, const described *what, int shm, uint8_t *inline_data, size_t size) {
  if (ctx->type_check != 0 && check_type(ctx, o, what->layout)) {
    free(inline_data); /* as on every other failure: the caller gave it to us */
    return -1;
  }
  output_t *out = &ctx->outputs[o];
  dora_header h = {0};
  h.kind = DORA_KIND_DATA;
  h.timestamp = dora__clock_now(&ctx->clock);
  h.seq = out->seq;
  h.metadata = (DoraMetadata *)what->metadata;
  h.layout = (dora_layout *)what->layout;
  h.raw_metadata = what->raw_metadata;
  h.raw_metadata_len = what->raw_metadata_len;
  h.raw_layout = what->raw_layout;
  h.raw_layout_len = what->raw_layout_len;
  if (shm >= 0) {
    h.location = DORA_LOC_SHARED_MEMORY;
    h.segment = dora__sample_segment(ctx, shm)->name;
    h.sample = ctx->samples[shm].id;
    h.shm_offset = ctx->samples[shm].offset;
    h.shm_length = size;
  } else {
    h.location = DORA_LOC_INLINE;
    h.inline_length = size;
  }
  dora_buf header = {0};
  int rc = dora__header_write(&header, &h);
  if (rc == 0) {
    /* receivers on other machines get the same message inline (remote.c), copied out of the sample now,
       before mark_sent may give it back (no local holder) */
    bool remote = ctx->rpub && out->remote_subscribers && out->remote_subscribers->count > 0;
    int remote_rc = remote && shm >= 0 ? dora__remote_publish(ctx, out, &h, NULL, dora__sample_data(ctx, shm), size, NULL) : 0;
    if (shm >= 0) dora__mark_sent(ctx, shm, o, out->seq);
    bool has_payload = shm < 0 && size > 0;
    rc = dora__zsend(ctx->pub, out->topic, out->topic_len, ZMQ_SNDMORE);
    if (rc == 0) rc = dora__zsend(ctx->pub, header.data, header.len, has_payload ? ZMQ_SNDMORE : 0);
    zmq_msg_t msg, remote_msg;
    if (has_payload) {
      zmq_msg_init_data(&msg, inline_data, size, free_buffer, NULL); /* no copy: ZeroMQ frees it when sent */
      inline_data = NULL;
      zmq_msg_init(&remote_msg);
      if (remote) zmq_msg_copy(&remote_msg, &msg); /* the same buffer, counted twice */
    }
    if (rc == 0 && has_payload) {
      while ((rc = zmq_msg_send(&msg, ctx->pub, 0)) < 0 && errno == EINTR) {
      }
      if (rc < 0) {
        zmq_msg_close(&msg);
        rc = dora__fail(DORA_E_ZMQ, "zmq_msg_send failed: %s", zmq_strerror(errno));
      } else {
        rc = 0;
      }
    } else if (has_payload) {
      zmq_msg_close(&msg);
    }
    if (remote && shm < 0) remote_rc = dora__remote_publish(ctx, out, &h, &header, NULL, size, has_payload ? &remote_msg : NULL); /* inline: its header as encoded */
    else if (has_payload) zmq_msg_close(&remote_msg);
    if (rc == 0) rc = remote_rc;
    out->seq++;
    if (rc == 0) {
      dora__count(&out->stats.messages, 1);
      dora__count(&out->stats.bytes, size);
    }
  }
  free(inline_data);
  dora__buf_free(&header);
  return rc;
}

static int send_plan(DoraContext *ctx, int o, const dora_plan *plan, const described *what) {
  /* an output read only on other machines goes inline: shared memory would cost a copy more */
  bool local = ctx->outputs[o].local_subscribers > 0 || ctx->outputs[o].n_taps > 0 || !ctx->outputs[o].remote_subscribers;
  if (plan->size > 0 && plan->size >= ctx->threshold && local) {
    dora__read_tokens(ctx); /* returned samples are reusable at once (an inline send needs none: no system call) */
    int s = dora__acquire(ctx, plan->size);
    if (s < 0) return -1;
    dora__plan_write(plan, dora__sample_data(ctx, s));
    int rc = send_message(ctx, o, what, s, NULL, plan->size);
    if (rc) dora__sample_free(ctx, s);
    return rc;
  }
  uint8_t *data = NULL;
  if (plan->size > 0) {
    data = malloc(plan->size);
    if (!data) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    dora__plan_write(plan, data);
  }
  return send_message(ctx, o, what, -1, data, plan->size);
}

int dora_send_output_with_metadata(DoraContext *ctx, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len,
                                   const DoraMetadata *metadata) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  if (!data_ptr && data_len) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: data is NULL");
  struct dora_copy copy = {data_ptr, 0, data_len};
  dora_plan plan = {dora__layout_uint8(data_len), data_len, 1, &copy};
  if (!plan.layout) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  int rc = send_plan(ctx, o, &plan, &(described){.layout = plan.layout, .metadata = metadata});
  dora__layout_free(plan.layout);
  return rc;
}

int dora_send_output(void *dora_context, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len) {
  return dora_send_output_with_metadata(dora_context, id_ptr, id_len, data_ptr, data_len, NULL);
}

int dora_send_output_arrow(DoraContext *ctx, const char *id_ptr, size_t id_len, const struct ArrowArray *array, const struct ArrowSchema *schema,
                           const DoraMetadata *metadata) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  dora_plan plan;
  if (dora__plan_arrow(array, schema, &plan)) return -1;
  int rc = send_plan(ctx, o, &plan, &(described){.layout = plan.layout, .metadata = metadata});
  dora__plan_free(&plan);
  return rc;
}

DoraOutputSample *dora_allocate_output(DoraContext *ctx, size_t len) {
  if (!ctx || ctx->closed) {
    dora__fail(DORA_E_NO_CONTEXT, "dora_allocate_output: no open context");
    return NULL;
  }
  DoraOutputSample *out = calloc(1, sizeof *out);
  if (!out) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  out->len = len;
  out->sample = -1;
  if (ctx->pub && len > 0 && len >= ctx->threshold) {
    /* no tokens before the start (and the drop-token socket is not ours to read while another thread joins) */
    if (__atomic_load_n(&ctx->started, __ATOMIC_ACQUIRE)) dora__read_tokens(ctx);
    pthread_mutex_lock(&ctx->lock); /* the pool may also change on the joining thread (see dora_join_dataflow) */
    out->sample = dora__acquire(ctx, len);
    pthread_mutex_unlock(&ctx->lock);
    if (out->sample < 0) {
      free(out);
      return NULL;
    }
    out->data = dora__sample_data(ctx, out->sample);
  } else {
    out->data = malloc(len ? len : 1);
    if (!out->data) {
      free(out);
      dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
      return NULL;
    }
  }
  return out;
}

uint8_t *dora_output_sample_data(DoraOutputSample *sample) { return sample ? sample->data : NULL; }

void dora_discard_output_sample(DoraContext *ctx, DoraOutputSample *sample) {
  if (!sample) return;
  if (sample->sample >= 0 && ctx && !ctx->closed) dora__sample_free(ctx, sample->sample);
  else if (sample->sample < 0) free(sample->data);
  free(sample);
}

/* Gives a sample back after a failure, keeping the failure's message. */
static int discard_failed(DoraContext *ctx, DoraOutputSample *sample) {
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", dora_last_error() ? dora_last_error() : "unknown error");
  int code = dora_last_error_code();
  dora_discard_output_sample(ctx, sample);
  return dora__fail(code, "%s", saved);
}

/* Sends a sample filled in place, as `layout` describes its bytes; takes the sample. */
static int send_sample(DoraContext *ctx, int o, DoraOutputSample *sample, const described *what) {
  int rc;
  if (sample->sample >= 0) {
    rc = send_message(ctx, o, what, sample->sample, NULL, sample->len);
    if (rc) dora__sample_free(ctx, sample->sample);
  } else {
    rc = send_message(ctx, o, what, -1, sample->data, sample->len); /* takes the buffer */
  }
  free(sample);
  return rc;
}

int dora_send_output_sample(DoraContext *ctx, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const DoraMetadata *metadata) {
  if (!sample) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: sample is NULL");
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return discard_failed(ctx, sample);
  dora_layout *layout = dora__layout_uint8(sample->len);
  if (!layout) {
    dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    return discard_failed(ctx, sample);
  }
  int rc = send_sample(ctx, o, sample, &(described){.layout = layout, .metadata = metadata});
  dora__layout_free(layout);
  return rc;
}

int dora_output_sample_segment(const DoraContext *ctx, const DoraOutputSample *sample, uint64_t *out_location) {
  if (!ctx || ctx->closed || !sample || !out_location) return dora__fail(DORA_E_NO_CONTEXT, "dora_output_sample_segment: no open context, sample or output");
  if (sample->sample < 0) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_output_sample_segment: the sample is not in shared memory (it is below the threshold)");
  const dora_segment *seg = dora__sample_segment(ctx, sample->sample);
  out_location[0] = (uint64_t)(uintptr_t)seg->ptr;
  out_location[1] = seg->size;
  return 0;
}

/* ---- pre-encoded payloads (for bindings that lay out their own arrays) ---------------- */

/*
 * Checks a layout and parameters in their wire encoding and describes a message with them:
 * the bytes go into the header as they are. A node sends the same layout again and again,
 * so each output keeps the last one it parsed (for checking payloads against it).
 */
static int describe_encoded(DoraContext *ctx, int o, const uint8_t *layout, size_t layout_len, const uint8_t *parameters, size_t parameters_len,
                            described *out) {
  if ((!layout && layout_len) || (!parameters && parameters_len)) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: layout or parameters are NULL");
  if (parameters_len && dora__metadata_check(parameters, parameters_len)) return dora__fail_again(DORA_E_INVALID_ARGUMENT, "send: invalid parameters: ");
  output_t *output = &ctx->outputs[o];
  if (!output->encoded_layout || output->encoded.len != layout_len || memcmp(output->encoded.data, layout, layout_len) != 0) {
    dora_reader r = {layout, layout_len, 0};
    dora_layout *parsed = NULL;
    if (dora__layout_read(&r, &parsed, 0)) return dora__fail_again(DORA_E_INVALID_ARGUMENT, "send: invalid Arrow layout: ");
    if (r.at != r.len) {
      dora__layout_free(parsed);
      return dora__fail(DORA_E_INVALID_ARGUMENT, "send: invalid Arrow layout: %zu trailing bytes", r.len - r.at);
    }
    dora__layout_free(output->encoded_layout);
    output->encoded_layout = parsed;
    output->encoded.len = 0;
    dora__buf_raw(&output->encoded, layout, layout_len);
    if (output->encoded.oom) {
      dora__layout_free(output->encoded_layout);
      output->encoded_layout = NULL;
      output->encoded.len = 0;
      output->encoded.oom = false;
      return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    }
  }
  *out = (described){.layout = output->encoded_layout, .metadata = parameters_len ? NULL : dora__metadata_empty(),
                     .raw_layout = layout, .raw_layout_len = layout_len,
                     .raw_metadata = parameters_len ? parameters : NULL, .raw_metadata_len = parameters_len};
  return 0;
}

int dora_send_output_encoded(DoraContext *ctx, const char *id_ptr, size_t id_len, const uint8_t *layout, size_t layout_len,
                             const uint8_t *parameters, size_t parameters_len, const uint8_t *data, size_t data_len) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  if (!data && data_len) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: data is NULL");
  if (!layout_len) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: an Arrow layout is required");
  described what;
  if (describe_encoded(ctx, o, layout, layout_len, parameters, parameters_len, &what)) return -1;
  if (dora__layout_validate(what.layout, data ? data : dora__empty_payload, data_len)) return dora__fail_again(DORA_E_INVALID_ARGUMENT, "send: ");
  struct dora_copy copy = {data, 0, data_len};
  dora_plan plan = {(dora_layout *)what.layout, data_len, data_len ? 1 : 0, &copy};
  return send_plan(ctx, o, &plan, &what);
}

int dora_send_output_sample_encoded(DoraContext *ctx, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const uint8_t *layout,
                                    size_t layout_len, const uint8_t *parameters, size_t parameters_len) {
  if (!sample) return dora__fail(DORA_E_INVALID_ARGUMENT, "send: sample is NULL");
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return discard_failed(ctx, sample);
  if (!layout_len) {
    /* a uint8 array over the sample's bytes, as dora_send_output_sample sends */
    if (parameters_len && dora__metadata_check(parameters, parameters_len)) {
      dora__fail_again(DORA_E_INVALID_ARGUMENT, "send: invalid parameters: ");
      return discard_failed(ctx, sample);
    }
    dora_layout *l = dora__layout_uint8(sample->len);
    if (!l) {
      dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
      return discard_failed(ctx, sample);
    }
    int rc = send_sample(ctx, o, sample, &(described){.layout = l, .metadata = parameters_len ? NULL : dora__metadata_empty(),
                                                         .raw_metadata = parameters_len ? parameters : NULL, .raw_metadata_len = parameters_len});
    dora__layout_free(l);
    return rc;
  }
  described what;
  if (describe_encoded(ctx, o, layout, layout_len, parameters, parameters_len, &what)) return discard_failed(ctx, sample);
  if (dora__layout_validate(what.layout, sample->data, sample->len)) {
    dora__fail_again(DORA_E_INVALID_ARGUMENT, "send: ");
    return discard_failed(ctx, sample);
  }
  return send_sample(ctx, o, sample, &what);
}

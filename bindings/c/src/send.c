/*
 * Sending: every dora_send_output* function, and output samples allocated for writing
 * in place (dora_allocate_output, dora_send_output_sample, dora_discard_output_sample).
 * A payload at or above the shared-memory threshold goes through a pooled sample,
 * anything smaller inline, in a buffer ZeroMQ takes over (no further copy).
 */
#include <stdio.h>

#include "node.h"

/* ---- sending ------------------------------------------------------------------------ */

static int find_output(DoraContext *ctx, const char *id, size_t len) {
  if (!ctx || ctx->closed) return dora__fail("send: no open context");
  for (size_t i = 0; ctx->pub && i < ctx->n_outputs; i++)
    if (strlen(ctx->outputs[i].name) == len && memcmp(ctx->outputs[i].name, id, len) == 0) return (int)i;
  char declared[512] = "";
  for (size_t i = 0; i < ctx->n_outputs; i++) {
    size_t at = strlen(declared);
    snprintf(declared + at, sizeof declared - at, "%s%s", i ? ", " : "", ctx->outputs[i].name);
  }
  return dora__fail("node \"%s\" has no output \"%.*s\" (declared outputs: %s)", ctx->node_id, (int)(len > 200 ? 200 : len), id ? id : "",
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
static int send_message(DoraContext *ctx, int o, const dora_layout *layout, const DoraMetadata *metadata, int shm, uint8_t *inline_data,
                        size_t size) {
  output_t *out = &ctx->outputs[o];
  dora_header h = {0};
  h.kind = DORA_KIND_DATA;
  h.timestamp = dora__clock_now(&ctx->clock);
  h.seq = out->seq;
  h.metadata = (DoraMetadata *)metadata;
  h.layout = (dora_layout *)layout;
  if (shm >= 0) {
    h.location = DORA_LOC_SHM;
    h.segment = ctx->samples[shm].seg.name;
    h.sample = ctx->samples[shm].id;
    h.shm_length = size;
  } else {
    h.location = DORA_LOC_INLINE;
    h.inline_length = size;
  }
  dora_buf header = {0};
  int rc = dora__header_write(&header, &h);
  if (rc == 0) {
    if (shm >= 0) dora__mark_sent(ctx, shm, o, out->seq);
    bool has_payload = shm < 0 && size > 0;
    rc = dora__zsend(ctx->pub, out->topic, out->topic_len, ZMQ_SNDMORE);
    if (rc == 0) rc = dora__zsend(ctx->pub, header.data, header.len, has_payload ? ZMQ_SNDMORE : 0);
    if (rc == 0 && has_payload) {
      zmq_msg_t msg;
      zmq_msg_init_data(&msg, inline_data, size, free_buffer, NULL); /* no copy: ZeroMQ frees it when sent */
      inline_data = NULL;
      while ((rc = zmq_msg_send(&msg, ctx->pub, 0)) < 0 && errno == EINTR) {
      }
      if (rc < 0) {
        zmq_msg_close(&msg);
        rc = dora__fail("zmq_msg_send failed: %s", zmq_strerror(errno));
      } else {
        rc = 0;
      }
    }
    out->seq++;
  }
  free(inline_data);
  dora__buf_free(&header);
  return rc;
}

static int send_plan(DoraContext *ctx, int o, const dora_plan *plan, const DoraMetadata *metadata) {
  dora__read_tokens(ctx);
  if (plan->size > 0 && plan->size >= ctx->threshold) {
    int s = dora__acquire(ctx, plan->size);
    if (s < 0) return -1;
    dora__plan_write(plan, ctx->samples[s].seg.ptr);
    int rc = send_message(ctx, o, plan->layout, metadata, s, NULL, plan->size);
    if (rc) ctx->samples[s].state = SAMPLE_FREE;
    return rc;
  }
  uint8_t *data = NULL;
  if (plan->size > 0) {
    data = malloc(plan->size);
    if (!data) return dora__fail("out of memory");
    dora__plan_write(plan, data);
  }
  return send_message(ctx, o, plan->layout, metadata, -1, data, plan->size);
}

int dora_send_output_with_metadata(DoraContext *ctx, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len,
                                   const DoraMetadata *metadata) {
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) return -1;
  if (!data_ptr && data_len) return dora__fail("send: data is NULL");
  struct dora_copy copy = {data_ptr, 0, data_len};
  dora_plan plan = {dora__layout_uint8(data_len), data_len, 1, &copy};
  if (!plan.layout) return dora__fail("out of memory");
  int rc = send_plan(ctx, o, &plan, metadata);
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
  int rc = send_plan(ctx, o, &plan, metadata);
  dora__plan_free(&plan);
  return rc;
}

DoraOutputSample *dora_allocate_output(DoraContext *ctx, size_t len) {
  if (!ctx || ctx->closed) {
    dora__fail("dora_allocate_output: no open context");
    return NULL;
  }
  DoraOutputSample *out = calloc(1, sizeof *out);
  if (!out) {
    dora__fail("out of memory");
    return NULL;
  }
  out->len = len;
  out->sample = -1;
  dora__read_tokens(ctx);
  if (ctx->pub && len > 0 && len >= ctx->threshold) {
    out->sample = dora__acquire(ctx, len);
    if (out->sample < 0) {
      free(out);
      return NULL;
    }
    out->data = ctx->samples[out->sample].seg.ptr;
  } else {
    out->data = malloc(len ? len : 1);
    if (!out->data) {
      free(out);
      dora__fail("out of memory");
      return NULL;
    }
  }
  return out;
}

uint8_t *dora_output_sample_data(DoraOutputSample *sample) { return sample ? sample->data : NULL; }

void dora_discard_output_sample(DoraContext *ctx, DoraOutputSample *sample) {
  if (!sample) return;
  if (sample->sample >= 0 && ctx && !ctx->closed) ctx->samples[sample->sample].state = SAMPLE_FREE;
  else if (sample->sample < 0) free(sample->data);
  free(sample);
}

int dora_send_output_sample(DoraContext *ctx, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const DoraMetadata *metadata) {
  if (!sample) return dora__fail("send: sample is NULL");
  int o = find_output(ctx, id_ptr, id_len);
  if (o < 0) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", dora_last_error());
    dora_discard_output_sample(ctx, sample);
    return dora__fail("%s", saved);
  }
  dora_layout *layout = dora__layout_uint8(sample->len);
  int rc;
  if (!layout) {
    rc = dora__fail("out of memory");
    dora_discard_output_sample(ctx, sample);
  } else if (sample->sample >= 0) {
    rc = send_message(ctx, o, layout, metadata, sample->sample, NULL, sample->len);
    if (rc) ctx->samples[sample->sample].state = SAMPLE_FREE;
    free(sample);
  } else {
    rc = send_message(ctx, o, layout, metadata, -1, sample->data, sample->len); /* takes the buffer */
    free(sample);
  }
  dora__layout_free(layout);
  return rc;
}

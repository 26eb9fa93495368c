/*
 * Reading the node's configuration: DORA_NODE_CONFIG, the JSON the daemon hands every
 * node it starts (docs/protocol.md), into the context's inputs (with their queue sizes),
 * the topics they subscribe to, the senders to return shared-memory samples to, and the
 * outputs with their subscribers. The strings stay in the parsed config, which lives as
 * long as the context.
 */
#include <stdio.h>

#include "node.h"

int dora__read_config(DoraContext *ctx, const char *text) {
  if (!text) text = getenv(DORA_NODE_CONFIG_ENV);
  if (!text) {
    return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV " is not set: this program is a dora node and must be started by dora, "
                                      "e.g. `dora run dataflow.yml` with this node in the dataflow");
  }
  ctx->config = dora__json_parse(text, strlen(text));
  if (!ctx->config) return dora__fail_again(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV " is not valid JSON: ");
  const dora_json *c = ctx->config;
  const dora_json *version = dora__json_get(c, DORA_CFG_PROTOCOL_VERSION);
  if (!version || version->type != DJ_NUMBER || version->number != DORA_PROTOCOL_VERSION) {
    return dora__fail(DORA_E_PROTOCOL_VERSION, "the dora daemon speaks protocol version %g, this library version %d; use matching dora-ts versions",
                      version && version->type == DJ_NUMBER ? version->number : -1.0, DORA_PROTOCOL_VERSION);
  }
  ctx->node_id = dora__jstr(c, DORA_CFG_NODE_ID);
  ctx->dataflow_id = dora__jstr(c, DORA_CFG_DATAFLOW_ID);
  ctx->segment_prefix = dora__jstr(c, DORA_CFG_SEGMENT_PREFIX);
  const dora_json *pid = dora__json_get(c, DORA_CFG_DAEMON_PID);
  const dora_json *threshold = dora__json_get(c, DORA_CFG_SHARED_MEMORY_THRESHOLD);
  const dora_json *inputs = dora__json_get(c, DORA_CFG_INPUTS);
  const dora_json *outputs = dora__json_get(c, DORA_CFG_OUTPUTS);
  const dora_json *subscribers = dora__json_get(c, DORA_CFG_SUBSCRIBERS);
  if (!ctx->node_id || !ctx->dataflow_id || !ctx->segment_prefix || !pid || pid->type != DJ_NUMBER || !threshold ||
      threshold->type != DJ_NUMBER || !inputs || inputs->type != DJ_ARRAY || !outputs || outputs->type != DJ_ARRAY ||
      !dora__jstr(c, DORA_CFG_DAEMON_REQUESTS) || !dora__jstr(c, DORA_CFG_DAEMON_EVENTS))
    return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV " lacks required fields");
  ctx->daemon_pid = (long)pid->number;
  const dora_json *restarts = dora__json_get(c, DORA_CFG_RESTART_COUNT), *health = dora__json_get(c, DORA_CFG_HEALTH_CHECK_TIMEOUT_MS);
  ctx->restart_count = restarts && restarts->type == DJ_NUMBER && restarts->number > 0 ? (int)restarts->number : 0;
  const dora_json *dynamic = dora__json_get(c, DORA_CFG_DYNAMIC);
  ctx->dynamic = dynamic && dynamic->type == DJ_BOOL && dynamic->boolean;
  ctx->late = ctx->restart_count > 0 || ctx->dynamic;
  const char *started = dora__jstr(c, DORA_CFG_DAEMON_START_TIME), *requests = dora__jstr(c, DORA_CFG_DAEMON_REQUESTS);
  if (started) snprintf(ctx->daemon_start, sizeof ctx->daemon_start, "%s", started);
  ctx->daemon_socket = strncmp(requests, "ipc://", 6) == 0 ? requests + 6 : NULL;
  ctx->health_ms = health && health->type == DJ_NUMBER && health->number > 0 ? (int64_t)health->number : 0;
  ctx->threshold = (uint64_t)threshold->number;
  const dora_json *remote = dora__json_get(c, DORA_CFG_REMOTE);
  if (remote && remote->type != DJ_NULL && remote->type != DJ_OBJECT) return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": `remote` is not an object");
  ctx->remote = remote && remote->type == DJ_OBJECT ? remote : NULL;
  size_t id_len = strlen(ctx->node_id);
  ctx->event_topic_len = strlen(DORA_EVENTS_TOPIC_PREFIX) + id_len + 1; /* with the trailing NUL */
  ctx->event_topic = malloc(ctx->event_topic_len + 1);
  if (!ctx->event_topic) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  snprintf(ctx->event_topic, ctx->event_topic_len + 1, DORA_EVENTS_TOPIC_PREFIX "%s", ctx->node_id);

  ctx->inputs = calloc(inputs->count + 1, sizeof *ctx->inputs);
  ctx->topics = calloc(inputs->count + 1, sizeof *ctx->topics);
  ctx->senders = calloc(inputs->count + 1, sizeof *ctx->senders);
  ctx->outputs = calloc(outputs->count + 1, sizeof *ctx->outputs);
  if (!ctx->inputs || !ctx->topics || !ctx->senders || !ctx->outputs) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < inputs->count; i++) {
    const dora_json *in = &inputs->items[i];
    const dora_json *topic = dora__json_get(in, DORA_CFG_INPUT_TOPIC);
    const dora_json *queue = dora__json_get(in, DORA_CFG_INPUT_QUEUE_SIZE);
    const char *id = dora__jstr(in, DORA_CFG_INPUT_ID), *source = dora__jstr(in, DORA_CFG_INPUT_SOURCE), *endpoint = dora__jstr(in, DORA_CFG_INPUT_ENDPOINT);
    const char *drop = dora__jstr(in, DORA_CFG_INPUT_DROP_ENDPOINT);
    if (!id || !source || !endpoint || !topic || topic->type != DJ_STRING || !queue || queue->type != DJ_NUMBER)
      return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": input %zu lacks required fields", i);
    int sender = -1;
    if (drop) {
      for (size_t k = 0; k < ctx->n_senders; k++)
        if (strcmp(ctx->senders[k].endpoint, drop) == 0) sender = (int)k;
      if (sender < 0) {
        sender = (int)ctx->n_senders++;
        ctx->senders[sender].endpoint = drop;
      }
    }
    int ti = dora__find_topic(ctx, topic->string, topic->string_len);
    if (ti < 0) {
      ti = (int)ctx->n_topics++;
      const char *slash = strchr(source, '/');
      const dora_json *servers = ctx->remote ? dora__json_get(ctx->remote, "servers") : NULL;
      ctx->topics[ti] = (topic_t){topic->string, topic->string_len, source, slash ? slash + 1 : source, sender, dora__jstr(servers, endpoint) != NULL, false, 0};
    }
    const dora_json *timeout = dora__json_get(in, DORA_CFG_INPUT_TIMEOUT_MS), *restartable = dora__json_get(in, DORA_CFG_INPUT_RESTARTABLE);
    ctx->inputs[i] = (input_t){.id = id,
                               .queue_size = queue->number < 1 ? 1 : (size_t)queue->number,
                               .topic = ti,
                               .open = true,
                               .restartable = restartable && restartable->type == DJ_BOOL && restartable->boolean,
                               .timeout_ms = timeout && timeout->type == DJ_NUMBER && timeout->number > 0 ? (int64_t)timeout->number : 0};
    if (ctx->inputs[i].timeout_ms) ctx->any_timeout = true;
  }
  ctx->n_inputs = ctx->open_inputs = inputs->count;
  for (size_t i = 0; i < outputs->count; i++) {
    const char *name = outputs->items[i].type == DJ_STRING ? outputs->items[i].string : NULL;
    if (!name) return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": output %zu is not a string", i);
    output_t *o = &ctx->outputs[i];
    o->name = name;
    o->topic_len = id_len + 1 + strlen(name) + 1;
    char *topic = malloc(o->topic_len + 1);
    if (!topic) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    snprintf(topic, o->topic_len + 1, "%s/%s", ctx->node_id, name);
    o->topic = topic;
    const dora_json *subs = dora__json_get(subscribers, name);
    o->subscribers = subs && subs->type == DJ_ARRAY ? subs : NULL;
    const dora_json *remote_subs = ctx->remote ? dora__json_get(dora__json_get(ctx->remote, "subscribers"), name) : NULL;
    o->remote_subscribers = remote_subs && remote_subs->type == DJ_ARRAY ? remote_subs : NULL;
    for (size_t k = 0; o->subscribers && k < o->subscribers->count; k++)
      if (o->subscribers->items[k].type == DJ_STRING && !dora__is_remote_subscriber(o, o->subscribers->items[k].string)) o->local_subscribers++;
    ctx->n_outputs++;
  }
  return 0;
}

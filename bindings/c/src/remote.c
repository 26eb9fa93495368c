/*
 * Data between machines, node to node (docs/architecture.md, "Several machines"). A
 * shared-memory handle means nothing on another machine, so a sender whose outputs have
 * receivers elsewhere binds a second XPUB, on TCP at the endpoint its daemon reserved for
 * it, and publishes there the same messages inline: bytes copied out of its sample when
 * the payload went to shared memory for its local receivers (who keep zero copy). That
 * socket is a CURVE server; a ZAP handler on a thread of its own admits only the public
 * keys of the dataflow's parts (configuration `remote.clientKeys`). Its subscriptions count
 * at the start barrier like local ones.
 *
 * A receiver connects its one SUB socket to remote senders as a CURVE client (their server
 * keys are in `remote.servers`, its own key pair in the file `remote.keyFile`, 0600 in the
 * run folder: no secret in the environment, which a node's children inherit).
 */
#include <stdio.h>
#include <sys/stat.h>

#include "node.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01" /* ZeroMQ RFC 27: where libzmq asks, per context */
#define ZAP_DOMAIN "dora-data"
#define ZAP_POLL_MS 100 /* how often the handler looks whether it must stop */
/* How long a closing sender keeps sending what its receivers elsewhere have not taken yet
   (their end of stream last): a TCP link falls behind a sender far more than a unix socket
   (4 MiB frames at 100 Hz is a backlog of seconds over CURVE). A receiver that is gone
   closes its connection, which ends the wait for it; only a machine that vanished without
   a word holds a closing node this long (and `dora stop` signals it after its grace). */
#define REMOTE_LINGER_MS 30000

static int socket_opt(void *s, int opt, int value) { return zmq_setsockopt(s, opt, &value, sizeof value); }

/* Reads the part's key pair: a JSON {"publicKey","secretKey"} (Z85) only its owner may read. */
static int read_keys(DoraContext *ctx, const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) return dora__fail(DORA_E_CONFIG, "node \"%s\": cannot read its CURVE key file %s: %s", ctx->node_id, file, strerror(errno));
  struct stat st;
  char text[512];
  bool stated = fstat(fileno(f), &st) == 0;
  size_t n = stated ? fread(text, 1, sizeof text - 1, f) : 0;
  fclose(f);
  if (!stated) return dora__fail(DORA_E_CONFIG, "node \"%s\": cannot read its CURVE key file %s: %s", ctx->node_id, file, strerror(errno));
  if ((st.st_mode & 077) != 0) return dora__fail(DORA_E_CONFIG, "node \"%s\": its CURVE key file %s holds a secret key but others can read it (mode %03o)", ctx->node_id, file, st.st_mode & 0777);
  dora_json *keys = dora__json_parse(text, n);
  const char *pub = keys ? dora__jstr(keys, "publicKey") : NULL, *sec = keys ? dora__jstr(keys, "secretKey") : NULL;
  uint8_t check[32];
  bool ok = pub && sec && strlen(pub) == 40 && strlen(sec) == 40 && zmq_z85_decode(check, pub) && zmq_z85_decode(check, sec);
  if (ok) {
    memcpy(ctx->curve_public, pub, 41);
    memcpy(ctx->curve_secret, sec, 41);
  }
  dora__json_free(keys);
  return ok ? 0 : dora__fail(DORA_E_CONFIG, "node \"%s\": %s does not hold a CURVE key pair ({\"publicKey\", \"secretKey\"} in Z85)", ctx->node_id, file);
}

/* ---- the ZAP handler ---------------------------------------------------------------- */

static bool admitted(const DoraContext *ctx, const uint8_t *key) {
  for (size_t i = 0; i < ctx->n_client_keys; i++)
    if (memcmp(ctx->client_keys[i], key, 32) == 0) return true;
  return false;
}

/* Answers one ZAP request (version, request id, domain, address, identity, mechanism, credentials...). */
static void answer(DoraContext *ctx, void *rep) {
  zmq_msg_t frames[8];
  size_t n = 0;
  int more = 1;
  while (more) {
    zmq_msg_t *m = &frames[n < 8 ? n : 7];
    if (n >= 8) zmq_msg_close(m);
    zmq_msg_init(m);
    if (zmq_msg_recv(m, rep, 0) < 0) {
      zmq_msg_close(m);
      break;
    }
    more = zmq_msg_more(m);
    if (n < 8) n++;
  }
  bool allowed = false;
  if (n >= 6) {
    const char *mechanism = zmq_msg_data(&frames[5]);
    size_t mlen = zmq_msg_size(&frames[5]);
    /* NULL: the node's own unix sockets, in the dataflow's 0700 folder (a CURVE server never
       completes a NULL handshake, so no TCP client gets here without keys) */
    if (mlen == 4 && memcmp(mechanism, "NULL", 4) == 0) allowed = true;
    else if (mlen == 5 && memcmp(mechanism, "CURVE", 5) == 0 && n >= 7 && zmq_msg_size(&frames[6]) == 32)
      allowed = admitted(ctx, zmq_msg_data(&frames[6]));
  }
  const char *status = allowed ? "200" : "400", *text = allowed ? "OK" : "key not authorised";
  zmq_send(rep, n > 0 ? zmq_msg_data(&frames[0]) : "1.0", n > 0 ? zmq_msg_size(&frames[0]) : 3, ZMQ_SNDMORE);
  zmq_send(rep, n > 1 ? zmq_msg_data(&frames[1]) : "", n > 1 ? zmq_msg_size(&frames[1]) : 0, ZMQ_SNDMORE);
  zmq_send(rep, status, 3, ZMQ_SNDMORE);
  zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
  zmq_send(rep, "", 0, ZMQ_SNDMORE); /* user id */
  zmq_send(rep, "", 0, 0);           /* metadata */
  for (size_t i = 0; i < n; i++) zmq_msg_close(&frames[i]);
}

static void *serve_zap(void *arg) {
  DoraContext *ctx = arg;
  void *rep = ctx->zap_socket;
  while (!__atomic_load_n(&ctx->zap_stop, __ATOMIC_ACQUIRE)) {
    zmq_pollitem_t item = {rep, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, ZAP_POLL_MS) > 0 && (item.revents & ZMQ_POLLIN)) answer(ctx, rep);
  }
  zmq_close(rep);
  return NULL;
}

/* ---- opening and closing -------------------------------------------------------------- */

int dora__remote_open(DoraContext *ctx) {
  const dora_json *remote = ctx->remote;
  if (!remote) return 0;
  const char *key_file = dora__jstr(remote, "keyFile"), *endpoint = dora__jstr(remote, "endpoint");
  if (!key_file) return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": `remote` lacks `keyFile`");
  if (!zmq_has("curve"))
    return dora__fail(DORA_E_ZMQ, "node \"%s\" exchanges data with other machines, which takes CURVE, but this libzmq was built without it (build it with libsodium)", ctx->node_id);
  if (read_keys(ctx, key_file)) return -1;
  if (!endpoint || ctx->n_outputs == 0) return 0; /* receives from other machines only */
  const dora_json *clients = dora__json_get(remote, "clientKeys");
  size_t n = clients && clients->type == DJ_ARRAY ? clients->count : 0;
  ctx->client_keys = calloc(n + 1, sizeof *ctx->client_keys);
  if (!ctx->client_keys) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const char *key = clients->items[i].type == DJ_STRING ? clients->items[i].string : NULL;
    if (!key || strlen(key) != 40 || !zmq_z85_decode(ctx->client_keys[ctx->n_client_keys], key))
      return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": `remote.clientKeys[%zu]` is not a CURVE public key (40 characters of Z85)", i);
    ctx->n_client_keys++;
  }
  /* the handler first: libzmq admits every CURVE client of a context that has none */
  ctx->zap_socket = zmq_socket(ctx->zctx, ZMQ_REP);
  if (!ctx->zap_socket) return dora__fail(DORA_E_ZMQ, "zmq_socket failed: %s", zmq_strerror(errno));
  socket_opt(ctx->zap_socket, ZMQ_LINGER, 0);
  if (zmq_bind(ctx->zap_socket, ZAP_ENDPOINT)) {
    zmq_close(ctx->zap_socket);
    ctx->zap_socket = NULL;
    return dora__fail(DORA_E_ZMQ, "cannot bind %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
  }
  if (pthread_create(&ctx->zap_thread, NULL, serve_zap, ctx) != 0) {
    zmq_close(ctx->zap_socket);
    ctx->zap_socket = NULL;
    return dora__fail(DORA_E_SYSTEM, "cannot start the ZAP handler thread: %s", strerror(errno));
  }
  ctx->zap_running = true;
  ctx->rpub = zmq_socket(ctx->zctx, ZMQ_XPUB);
  if (!ctx->rpub) return dora__fail(DORA_E_ZMQ, "zmq_socket failed: %s", zmq_strerror(errno));
  socket_opt(ctx->rpub, ZMQ_SNDHWM, 0);
  socket_opt(ctx->rpub, ZMQ_XPUB_VERBOSE, 1); /* each remote receiver's subscription counts at the start barrier */
  socket_opt(ctx->rpub, ZMQ_LINGER, REMOTE_LINGER_MS);
  if (socket_opt(ctx->rpub, ZMQ_CURVE_SERVER, 1) || zmq_setsockopt(ctx->rpub, ZMQ_CURVE_SECRETKEY, ctx->curve_secret, 40) ||
      zmq_setsockopt(ctx->rpub, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)))
    return dora__fail(DORA_E_ZMQ, "node \"%s\": cannot make its data socket for other machines a CURVE server: %s", ctx->node_id, zmq_strerror(errno));
  /* the daemon reserved this port for this node: the same one on every (re)start, which
     receivers on other machines keep reconnecting to (libzmq sets SO_REUSEADDR) */
  if (zmq_bind(ctx->rpub, endpoint))
    return dora__fail(DORA_E_ZMQ, "node \"%s\": cannot bind its data socket for other machines at %s: %s", ctx->node_id, endpoint, zmq_strerror(errno));
  return 0;
}

void dora__remote_close(DoraContext *ctx) {
  if (ctx->rpub) zmq_close(ctx->rpub); /* its listener goes now: no client asks the handler after this */
  ctx->rpub = NULL;
  if (ctx->zap_running) {
    __atomic_store_n(&ctx->zap_stop, true, __ATOMIC_RELEASE);
    pthread_join(ctx->zap_thread, NULL); /* it closes its socket: zmq_ctx_term waits for every socket */
    ctx->zap_running = false;
  }
  ctx->zap_socket = NULL;
  free(ctx->client_keys);
  ctx->client_keys = NULL;
  explicit_bzero(ctx->curve_secret, sizeof ctx->curve_secret);
}

/*
 * Connects the SUB socket to a sender's endpoint: as a CURVE client when `remote.servers`
 * names it (a sender on another machine), as it is (NULL mechanism, a unix socket) otherwise.
 * One SUB socket for both, rather than a second one polled with it: libzmq takes the
 * security options at each connect, and one socket keeps one descriptor for dora_wait and
 * the bindings' event loops, and one arrival order for the queues. The caller connects
 * local endpoints before remote ones: the CURVE options then stay set for nothing else.
 */
int dora__remote_connect(DoraContext *ctx, const char *endpoint, bool *is_remote) {
  const dora_json *servers = ctx->remote ? dora__json_get(ctx->remote, "servers") : NULL;
  const char *server_key = servers ? dora__jstr(servers, endpoint) : NULL;
  *is_remote = server_key != NULL;
  if (!server_key) return 0;
  if (strlen(server_key) != 40 || !ctx->curve_public[0])
    return dora__fail(DORA_E_CONFIG, DORA_NODE_CONFIG_ENV ": no CURVE keys to connect to %s (`remote.servers` or `remote.keyFile`)", endpoint);
  if (zmq_setsockopt(ctx->sub, ZMQ_CURVE_SERVERKEY, server_key, 40) || zmq_setsockopt(ctx->sub, ZMQ_CURVE_PUBLICKEY, ctx->curve_public, 40) ||
      zmq_setsockopt(ctx->sub, ZMQ_CURVE_SECRETKEY, ctx->curve_secret, 40))
    return dora__fail(DORA_E_CONFIG, "node \"%s\": cannot use the CURVE keys for %s (server key %s): %s", ctx->node_id, endpoint, server_key, zmq_strerror(errno));
  if (zmq_connect(ctx->sub, endpoint)) return dora__fail(DORA_E_ZMQ, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
  return 0;
}

bool dora__is_remote_subscriber(const output_t *out, const char *node) {
  for (size_t k = 0; out->remote_subscribers && k < out->remote_subscribers->count; k++)
    if (out->remote_subscribers->items[k].type == DJ_STRING && strcmp(out->remote_subscribers->items[k].string, node) == 0) return true;
  return false;
}

/* ---- publishing ----------------------------------------------------------------------- */

static void free_buffer(void *data, void *hint) {
  (void)hint;
  free(data);
}

int dora__remote_publish(DoraContext *ctx, const output_t *out, const dora_header *local, const dora_buf *encoded, const uint8_t *data, size_t size,
                         zmq_msg_t *shared) {
  if (shared && size == 0) zmq_msg_close(shared);
  dora_buf header = {0};
  if (local->location != DORA_LOC_INLINE || !encoded) {
    /* the local message's payload is in shared memory: the same header, describing bytes inline */
    dora_header h = *local;
    h.location = DORA_LOC_INLINE;
    h.inline_length = size;
    h.segment = NULL;
    h.sample = h.shm_offset = h.shm_length = 0;
    if (dora__header_write(&header, &h)) return -1;
    encoded = &header;
  }
  int rc = dora__zsend(ctx->rpub, out->topic, out->topic_len, ZMQ_SNDMORE);
  if (rc == 0) rc = dora__zsend(ctx->rpub, encoded->data, encoded->len, size > 0 ? ZMQ_SNDMORE : 0);
  dora__buf_free(&header);
  if (rc || size == 0) {
    if (shared && size > 0) zmq_msg_close(shared);
    return rc;
  }
  zmq_msg_t msg;
  if (shared) {
    zmq_msg_init(&msg);
    zmq_msg_move(&msg, shared); /* a copy of the local message: the same buffer, not copied */
  } else {
    /* out of the shared-memory sample: local receivers keep reading it in place */
    uint8_t *copy = malloc(size);
    if (!copy) return dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
    memcpy(copy, data, size);
    zmq_msg_init_data(&msg, copy, size, free_buffer, NULL);
  }
  while ((rc = zmq_msg_send(&msg, ctx->rpub, 0)) < 0 && errno == EINTR) {
  }
  if (rc < 0) {
    zmq_msg_close(&msg);
    return dora__fail(DORA_E_ZMQ, "zmq_msg_send failed: %s", zmq_strerror(errno));
  }
  return 0;
}

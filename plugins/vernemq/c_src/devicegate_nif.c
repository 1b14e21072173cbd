/*
 * devicegate_nif: the Erlang NIF over libdevicegate (include/devicegate.h).
 *
 * The engine lives in a resource: start/1 creates it, stop/1 frees it on a
 * dirty I/O scheduler (freeing waits for queued database writes); the
 * resource's destructor frees an engine that was never stopped. Every hook
 * finishes in microseconds, so they run on normal schedulers.
 *
 * Terms in: binaries and iolists (mountpoints are charlists), the atom
 * `undefined` for an absent username or password. Terms out: `ok`, `next`,
 * `consumed`, `{ok, Binary}`, `{error, Reason, Message}` with Reason one
 * of invalid_credentials, not_allowed, client_identifier_not_valid,
 * server_unavailable, bad_argument, internal.
 *
 * Build (see plugins/vernemq/README.md):
 *   cc -shared -fPIC -O2 -I/usr/lib/erlang/usr/include -Iinclude \
 *      -o plugins/vernemq/priv/devicegate_nif.so plugins/vernemq/c_src/devicegate_nif.c \
 *      -Ltarget/release -ldevicegate -Wl,-rpath,'$ORIGIN'
 */
#include <stdatomic.h>
#include <string.h>

#include <erl_nif.h>

#include "devicegate.h"

typedef struct {
    _Atomic(dg_engine *) engine;
} engine_resource;

static ErlNifResourceType *ENGINE_TYPE;

static ERL_NIF_TERM atom(ErlNifEnv *env, const char *name) {
    ERL_NIF_TERM a;
    if (!enif_make_existing_atom(env, name, &a, ERL_NIF_LATIN1)) a = enif_make_atom(env, name);
    return a;
}

/* {error, Reason, Message} for a failed call, Message from dg_last_error. */
static ERL_NIF_TERM error_term(ErlNifEnv *env, dg_result rc) {
    const char *reason;
    switch (rc) {
    case DG_ERR_INVALID_CREDENTIALS: reason = "invalid_credentials"; break;
    case DG_ERR_NOT_AUTHORIZED: reason = "not_allowed"; break;
    case DG_ERR_CLIENT_ID_INVALID: reason = "client_identifier_not_valid"; break;
    case DG_ERR_UNAVAILABLE: reason = "server_unavailable"; break;
    case DG_ERR_BAD_ARGUMENT: reason = "bad_argument"; break;
    default: reason = "internal"; break;
    }
    uint8_t text[512];
    dg_out_buf message = {text, sizeof text, 0};
    if (dg_last_error(&message) != DG_OK) message.len = 0;
    ERL_NIF_TERM bin;
    unsigned char *dst = enif_make_new_binary(env, message.len, &bin);
    if (message.len) memcpy(dst, text, message.len);
    return enif_make_tuple3(env, atom(env, "error"), atom(env, reason), bin);
}

static ERL_NIF_TERM bad_argument(ErlNifEnv *env, const char *what) {
    ERL_NIF_TERM bin;
    size_t len = strlen(what);
    memcpy(enif_make_new_binary(env, len, &bin), what, len);
    return enif_make_tuple3(env, atom(env, "error"), atom(env, "bad_argument"), bin);
}

/* A binary or iolist as a dg_str; `undefined` as an absent one. The bytes
 * live as long as the call's environment. */
static int get_str(ErlNifEnv *env, ERL_NIF_TERM term, dg_str *out) {
    ErlNifBinary bin;
    if (enif_is_identical(term, atom(env, "undefined"))) {
        out->ptr = NULL;
        out->len = 0;
        return 1;
    }
    if (!enif_inspect_iolist_as_binary(env, term, &bin)) return 0;
    /* A non-NULL pointer even for an empty binary: empty is not absent. */
    out->ptr = bin.size ? bin.data : (const uint8_t *)"";
    out->len = bin.size;
    return 1;
}

static dg_engine *get_engine(ErlNifEnv *env, ERL_NIF_TERM term) {
    engine_resource *res;
    if (!enif_get_resource(env, term, ENGINE_TYPE, (void **)&res)) return NULL;
    return atomic_load(&res->engine);
}

static ERL_NIF_TERM result_term(ErlNifEnv *env, dg_result rc) {
    switch (rc) {
    case DG_OK: return atom(env, "ok");
    case DG_NEXT: return atom(env, "next");
    case DG_CONSUMED: return atom(env, "consumed");
    default: return error_term(env, rc);
    }
}

static void engine_dtor(ErlNifEnv *env, void *obj) {
    (void)env;
    engine_resource *res = obj;
    dg_engine *engine = atomic_exchange(&res->engine, NULL);
    if (engine) dg_engine_free(engine);
}

/* start(ConfigJson) -> {ok, Engine} | {error, Reason, Message} */
static ERL_NIF_TERM nif_start(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str config;
    if (!get_str(env, argv[0], &config) || !config.ptr) return bad_argument(env, "config must be a binary");
    dg_engine *engine = dg_engine_new(config);
    if (!engine) return error_term(env, DG_ERR_BAD_ARGUMENT);
    engine_resource *res = enif_alloc_resource(ENGINE_TYPE, sizeof *res);
    atomic_init(&res->engine, engine);
    ERL_NIF_TERM term = enif_make_resource(env, res);
    enif_release_resource(res);
    return enif_make_tuple2(env, atom(env, "ok"), term);
}

/* stop(Engine) -> ok | {error, Reason, Message}; waits for queued writes. */
static ERL_NIF_TERM nif_stop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    engine_resource *res;
    if (!enif_get_resource(env, argv[0], ENGINE_TYPE, (void **)&res)) return bad_argument(env, "not an engine");
    dg_engine *engine = atomic_exchange(&res->engine, NULL);
    if (!engine) return bad_argument(env, "the engine was stopped");
    return result_term(env, dg_engine_free(engine));
}

/* auth_on_register(Engine, PeerIp, PeerPort, Mountpoint, ClientId, UserName,
 *                  Password, CleanSession) -> ok | {ok, CanonicalId} | next | {error, ...} */
static ERL_NIF_TERM nif_auth_on_register(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str ip, mp, client_id, username, password;
    unsigned port;
    if (!get_str(env, argv[1], &ip) || !enif_get_uint(env, argv[2], &port) || port > 65535 ||
        !get_str(env, argv[3], &mp) || !get_str(env, argv[4], &client_id) || !get_str(env, argv[5], &username) ||
        !get_str(env, argv[6], &password))
        return bad_argument(env, "auth_on_register: bad argument types");
    int clean = enif_is_identical(argv[7], atom(env, "true"));
    uint8_t id[DG_CLIENT_ID_MAX];
    dg_out_buf canonical = {id, sizeof id, 0};
    dg_result rc = dg_auth_on_register(get_engine(env, argv[0]), ip, (uint16_t)port, mp, client_id, username,
                                       password, clean, &canonical);
    if (rc == DG_OK && canonical.len > 0) {
        ERL_NIF_TERM bin;
        memcpy(enif_make_new_binary(env, canonical.len, &bin), id, canonical.len);
        return enif_make_tuple2(env, atom(env, "ok"), bin);
    }
    return result_term(env, rc);
}

/* auth_on_publish(Engine, Mountpoint, ClientId, Topic, Payload, Retain)
 *   -> ok | consumed | next | {error, ...} */
static ERL_NIF_TERM nif_auth_on_publish(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str mp, client_id, topic, payload;
    if (!get_str(env, argv[1], &mp) || !get_str(env, argv[2], &client_id) || !get_str(env, argv[3], &topic) ||
        !get_str(env, argv[4], &payload))
        return bad_argument(env, "auth_on_publish: bad argument types");
    dg_str no_user = {NULL, 0};
    int retain = enif_is_identical(argv[5], atom(env, "true"));
    return result_term(env, dg_auth_on_publish(get_engine(env, argv[0]), no_user, mp, client_id, 0, topic, payload,
                                               retain));
}

/* auth_on_subscribe(Engine, Mountpoint, ClientId, [{Filter, QoS}])
 *   -> {ok, [QoS | not_allowed]} | next | {error, ...} */
static ERL_NIF_TERM nif_auth_on_subscribe(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str mp, client_id;
    unsigned n;
    if (!get_str(env, argv[1], &mp) || !get_str(env, argv[2], &client_id) || !enif_get_list_length(env, argv[3], &n))
        return bad_argument(env, "auth_on_subscribe: bad argument types");
    if (n > 4096) return bad_argument(env, "auth_on_subscribe: too many filters");
    dg_topic_qos *topics = enif_alloc(sizeof *topics * (n ? n : 1));
    uint8_t *granted = enif_alloc(n ? n : 1);
    ERL_NIF_TERM list = argv[3], head, answer;
    for (unsigned i = 0; i < n; i++) {
        const ERL_NIF_TERM *pair;
        int arity;
        unsigned qos;
        if (!enif_get_list_cell(env, list, &head, &list) || !enif_get_tuple(env, head, &arity, &pair) || arity != 2 ||
            !get_str(env, pair[0], &topics[i].topic) || !enif_get_uint(env, pair[1], &qos) || qos > 2) {
            enif_free(topics);
            enif_free(granted);
            return bad_argument(env, "auth_on_subscribe: topics must be [{Filter, QoS}]");
        }
        topics[i].qos = (uint8_t)qos;
    }
    dg_str no_user = {NULL, 0};
    dg_result rc = dg_auth_on_subscribe(get_engine(env, argv[0]), no_user, mp, client_id, topics, n, granted);
    if (rc == DG_OK) {
        answer = enif_make_list(env, 0);
        for (unsigned i = n; i-- > 0;) {
            ERL_NIF_TERM g = granted[i] == DG_SUBACK_FAILURE ? atom(env, "not_allowed") : enif_make_uint(env, granted[i]);
            answer = enif_make_list_cell(env, g, answer);
        }
        answer = enif_make_tuple2(env, atom(env, "ok"), answer);
    } else {
        answer = result_term(env, rc);
    }
    enif_free(topics);
    enif_free(granted);
    return answer;
}

/* on_register(Engine, Mountpoint, ClientId) -> ok | next | {error, ...} */
static ERL_NIF_TERM nif_on_register(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str mp, client_id, none = {NULL, 0};
    if (!get_str(env, argv[1], &mp) || !get_str(env, argv[2], &client_id))
        return bad_argument(env, "on_register: bad argument types");
    return result_term(env, dg_on_register(get_engine(env, argv[0]), none, 0, mp, client_id, none));
}

/* client_left(Engine, Mountpoint, ClientId, offline | gone) -> ok | next | {error, ...} */
static ERL_NIF_TERM nif_client_left(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_str mp, client_id;
    if (!get_str(env, argv[1], &mp) || !get_str(env, argv[2], &client_id))
        return bad_argument(env, "client_left: bad argument types");
    dg_engine *engine = get_engine(env, argv[0]);
    if (enif_is_identical(argv[3], atom(env, "offline"))) return result_term(env, dg_on_client_offline(engine, mp, client_id));
    return result_term(env, dg_on_client_gone(engine, mp, client_id));
}

static ERL_NIF_TERM copy_out(ErlNifEnv *env, const dg_out_buf *buf) {
    ERL_NIF_TERM bin;
    unsigned char *dst = enif_make_new_binary(env, buf->len, &bin);
    if (buf->len) memcpy(dst, buf->ptr, buf->len);
    return bin;
}

/* poll_effect(Engine) -> none | {publish, {MP, ClientId}, Topic, Payload, QoS}
 *                     | {kick, {MP, ClientId}} | {error, ...} */
static ERL_NIF_TERM nif_poll_effect(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    dg_engine *engine = get_engine(env, argv[0]);
    uint8_t mp[256], id[1024], topic[1024], small[4096];
    dg_effect e = {0, 0, {mp, sizeof mp, 0}, {id, sizeof id, 0}, {topic, sizeof topic, 0}, {small, sizeof small, 0}};
    dg_result rc = dg_poll_effect(engine, &e);
    uint8_t *large = NULL;
    if (rc == DG_ERR_BUFFER_TOO_SMALL) {
        /* Only a payload can outgrow its buffer in practice; retry with the size asked. */
        if (e.mountpoint.len > sizeof mp || e.client_id.len > sizeof id || e.topic.len > sizeof topic)
            return error_term(env, rc);
        large = enif_alloc(e.payload.len);
        e.payload.ptr = large;
        e.payload.cap = e.payload.len;
        e.mountpoint.cap = sizeof mp;
        e.client_id.cap = sizeof id;
        e.topic.cap = sizeof topic;
        rc = dg_poll_effect(engine, &e);
    }
    ERL_NIF_TERM answer;
    if (rc == DG_NEXT) {
        answer = atom(env, "none");
    } else if (rc != DG_OK) {
        answer = error_term(env, rc);
    } else {
        /* VerneMQ mountpoints are charlists. */
        ERL_NIF_TERM sid = enif_make_tuple2(env, enif_make_string_len(env, (const char *)mp, e.mountpoint.len, ERL_NIF_LATIN1),
                                            copy_out(env, &e.client_id));
        if (e.kind == DG_EFFECT_KICK)
            answer = enif_make_tuple2(env, atom(env, "kick"), sid);
        else
            answer = enif_make_tuple5(env, atom(env, "publish"), sid, copy_out(env, &e.topic), copy_out(env, &e.payload),
                                      enif_make_uint(env, e.qos));
    }
    if (large) enif_free(large);
    return answer;
}

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info) {
    (void)priv;
    (void)info;
    ENGINE_TYPE = enif_open_resource_type(env, NULL, "devicegate_engine", engine_dtor, ERL_NIF_RT_CREATE, NULL);
    return ENGINE_TYPE == NULL || dg_abi_version() != DG_ABI_VERSION;
}

static int upgrade(ErlNifEnv *env, void **priv, void **old_priv, ERL_NIF_TERM info) {
    (void)old_priv;
    ENGINE_TYPE = enif_open_resource_type(env, NULL, "devicegate_engine", engine_dtor, ERL_NIF_RT_TAKEOVER, NULL);
    (void)priv;
    (void)info;
    return ENGINE_TYPE == NULL;
}

static ErlNifFunc funcs[] = {
    {"start", 1, nif_start, 0},
    {"stop", 1, nif_stop, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"auth_on_register", 8, nif_auth_on_register, 0},
    {"auth_on_publish", 6, nif_auth_on_publish, 0},
    {"auth_on_subscribe", 4, nif_auth_on_subscribe, 0},
    {"on_register", 3, nif_on_register, 0},
    {"client_left", 4, nif_client_left, 0},
    {"poll_effect", 1, nif_poll_effect, 0},
};

ERL_NIF_INIT(devicegate_nif, funcs, load, NULL, upgrade, NULL)

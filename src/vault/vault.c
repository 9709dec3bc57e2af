/* SPDX-License-Identifier: Apache-2.0 */
/* The Vault client (see vault.h). Two locks: auth_mu guards the token and is held across a
 * login or renewal, so concurrent callers share one; mu guards the cache, whose entries live
 * until the client is freed and carry an in-flight flag plus a generation so waiters take the
 * result of the single request they joined. Secret values, tokens and JWTs are wiped on free and
 * never formatted into a log line or an error. */
#include "vault/vault.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"

typedef struct entry {
    struct entry *next;
    char *path;
    json_object *data; /* data.data of the last good read, owned; NULL when none */
    int64_t version;
    char created[40];
    int64_t fetched_mono;
    int fresh_ok;       /* 0 after invalidate: data may only go to the flight's own waiters */
    int inflight;       /* a leader is fetching this path */
    uint64_t gen;       /* bumped when a flight lands */
    uint64_t epoch;     /* bumped by invalidate */
    ait_status last_st; /* result of the last flight */
    ait_error last_err;
} entry;

struct ait_vault {
    char *addr;
    char *ca_file;
    ait_vault_auth auth;
    char *token_file;
    char *k8s_role;
    char *jwt_file;
    char *k8s_mount;
    char *kv_mount;
    int64_t cache_ttl_ns;
    long timeout_ms;
    ait_vault_audit audit;
    const ait_clock *clock;
    ait_vault_transport transport;
    int allow_http;

    pthread_mutex_t auth_mu;
    char *token;           /* NULL before the first login */
    uint64_t token_serial; /* bumped by each login, so a 403 re-login happens once */
    int64_t token_ttl_ns;  /* 0: never expires */
    int64_t login_ttl_ns;  /* the TTL the last login granted */
    int64_t token_mono;    /* when token_ttl_ns was last set */
    int renewable;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    entry *entries;
    ait_vault_stats stats;
};

static void wipe(void *p, size_t n)
{
    volatile unsigned char *q = p;
    while (n--) {
        *q++ = 0;
    }
}

static void free_secret_str(char *s)
{
    if (s != NULL) {
        wipe(s, strlen(s));
        ait_free(s);
    }
}

static int64_t mono(const ait_vault *v)
{
    return v->clock->mono_ns(v->clock->ctx);
}

/* ---- libcurl transport ------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t curl_write_cb(char *p, size_t size, size_t n, void *ud)
{
    ait_buf *b = ud;
    if (ait_buf_append(b, p, size * n) != AIT_OK) {
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return size * n;
}

static ait_status curl_do_request(void *ctx, const char *method, const char *url, const char *token,
                                  const char *body, long *http_status, ait_buf *resp,
                                  ait_error *err)
{
    ait_vault *v = ctx;
    pthread_once(&curl_once, curl_init_once);
    *http_status = 0;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "curl_easy_init failed");
    }
    struct curl_slist *hdrs = NULL;
    char *tok_hdr = NULL;
    hdrs = curl_slist_append(hdrs, "X-Vault-Request: true");
    if (token != NULL) {
        tok_hdr = ait_asprintf("X-Vault-Token: %s", token);
        hdrs = curl_slist_append(hdrs, tok_hdr);
    }
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, v->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, v->timeout_ms < 5000 ? v->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, v->allow_http ? "https,http" : "https");
    if (v->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, v->ca_file);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    CURLcode rc = curl_easy_perform(c);
    ait_status st = AIT_OK;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, http_status);
    } else if (rc == CURLE_WRITE_ERROR) {
        st = ait_error_set(err, AIT_ERR_TOO_LARGE, "vault %s %s: reply over %zu bytes", method, url,
                           resp->max);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = ait_error_set(err, AIT_ERR_TIMEOUT, "vault %s %s: timed out after %ld ms", method, url,
                           v->timeout_ms);
    } else {
        st = ait_error_set(err, AIT_ERR_IO, "vault %s %s: %s", method, url, curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    free_secret_str(tok_hdr);
    curl_easy_cleanup(c);
    return st;
}

/* ---- reply parsing ------------------------------------------------------------------------ */

/* Copies the first of Vault's {"errors": [...]} messages (cut, newlines flattened) into out. */
static void vault_errors(const char *body, size_t len, char *out, size_t size)
{
    json_object *root = NULL;
    out[0] = '\0';
    if (ait_json_parse(body, len, &root, NULL) != AIT_OK) {
        return;
    }
    json_object *errs = ait_json_array(root, "errors");
    if (errs != NULL && json_object_array_length(errs) > 0) {
        const char *m = json_object_get_string(json_object_array_get_idx(errs, 0));
        if (m != NULL) {
            snprintf(out, size, "%.160s", m);
            for (char *p = out; *p; p++) {
                if (*p == '\n' || *p == '\t') {
                    *p = ' ';
                }
            }
        }
    }
    json_object_put(root);
}

/* Parses a KV v2 reply; *data gets a new reference to data.data. */
static ait_status parse_kv_tree(const char *body, size_t len, json_object **data, int64_t *version,
                                char *created, size_t created_size, ait_error *err)
{
    json_object *root = NULL;
    ait_status st = ait_json_parse(body, len, &root, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "vault KV v2 reply");
        return st;
    }
    json_object *d = ait_json_path(root, "data.data");
    json_object *md = ait_json_path(root, "data.metadata");
    if (d == NULL || !json_object_is_type(d, json_type_object) || md == NULL) {
        json_object_put(root);
        return ait_error_set(err, AIT_ERR_PARSE, "vault KV v2 reply: no data.data object");
    }
    int64_t ver = ait_json_int(md, "version", -1);
    if (ver < 0) {
        json_object_put(root);
        return ait_error_set(err, AIT_ERR_PARSE, "vault KV v2 reply: no metadata.version");
    }
    if (version != NULL) {
        *version = ver;
    }
    if (created != NULL && created_size > 0) {
        const char *ct = ait_json_str(md, "created_time");
        snprintf(created, created_size, "%s", ct ? ct : "");
    }
    *data = json_object_get(d);
    json_object_put(root);
    return AIT_OK;
}

/* Returns an owned copy of data[key]: a string as is, anything else as JSON text. */
static ait_status extract_key(json_object *data, const char *key, char **value)
{
    json_object *val = NULL;
    if (key == NULL || !json_object_object_get_ex(data, key, &val) || val == NULL) {
        return AIT_ERR_NOT_FOUND;
    }
    if (json_object_is_type(val, json_type_string)) {
        *value = ait_strndup(json_object_get_string(val), (size_t)json_object_get_string_len(val));
    } else {
        *value = ait_strdup(json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
    }
    return AIT_OK;
}

ait_status ait_vault_parse_kv(const char *body, size_t len, const char *key, char **value,
                              int64_t *version, char *created, size_t created_size, ait_error *err)
{
    json_object *data = NULL;
    if (value != NULL) {
        *value = NULL;
    }
    ait_status st = parse_kv_tree(body, len, &data, version, created, created_size, err);
    if (st != AIT_OK) {
        return st;
    }
    if (key != NULL && value != NULL && extract_key(data, key, value) != AIT_OK) {
        st = ait_error_set(err, AIT_ERR_NOT_FOUND, "vault KV v2 reply: no key \"%.64s\"", key);
    }
    json_object_put(data);
    return st;
}

ait_status ait_vault_parse_auth(const char *body, size_t len, char **token, int64_t *ttl_s,
                                int *renewable, ait_error *err)
{
    json_object *root = NULL;
    *token = NULL;
    ait_status st = ait_json_parse(body, len, &root, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "vault auth reply");
        return st;
    }
    const char *tok = ait_json_str(root, "auth.client_token");
    int64_t ttl = ait_json_int(root, "auth.lease_duration", -1);
    int ren = ait_json_bool(root, "auth.renewable", 0);
    if (tok == NULL) { /* lookup-self */
        tok = ait_json_str(root, "data.id");
        ttl = ait_json_int(root, "data.ttl", -1);
        ren = ait_json_bool(root, "data.renewable", 0);
    }
    if (tok == NULL || tok[0] == '\0' || ttl < 0) {
        json_object_put(root);
        return ait_error_set(err, AIT_ERR_PARSE, "vault auth reply: no token or ttl");
    }
    *token = ait_strdup(tok);
    if (ttl_s != NULL) {
        *ttl_s = ttl;
    }
    if (renewable != NULL) {
        *renewable = ren;
    }
    json_object_put(root);
    return AIT_OK;
}

/* ---- construction ------------------------------------------------------------------------- */

static char *dup_or(const char *s, const char *fallback)
{
    return ait_strdup(s != NULL && s[0] != '\0' ? s : fallback);
}

ait_status ait_vault_new(const ait_vault_options *o, ait_vault **out, ait_error *err)
{
    *out = NULL;
    if (o == NULL || o->addr == NULL || o->addr[0] == '\0') {
        return ait_error_set(err, AIT_ERR_INVALID, "vault: no address");
    }
    if (strncmp(o->addr, "https://", 8) != 0 &&
        !(o->allow_http && strncmp(o->addr, "http://", 7) == 0)) {
        return ait_error_set(err, AIT_ERR_INVALID, "vault: address %.200s is not https://",
                             o->addr);
    }
    if (o->auth == AIT_VAULT_AUTH_TOKEN_FILE && (o->token_file == NULL || !o->token_file[0])) {
        return ait_error_set(err, AIT_ERR_INVALID, "vault: token-file auth needs token_file");
    }
    if (o->auth == AIT_VAULT_AUTH_KUBERNETES && (o->k8s_role == NULL || !o->k8s_role[0])) {
        return ait_error_set(err, AIT_ERR_INVALID, "vault: kubernetes auth needs a role");
    }
    ait_vault *v = ait_calloc(1, sizeof(*v));
    v->addr = ait_strdup(o->addr);
    size_t n = strlen(v->addr);
    while (n > 0 && v->addr[n - 1] == '/') {
        v->addr[--n] = '\0';
    }
    v->ca_file = o->ca_file ? ait_strdup(o->ca_file) : NULL;
    v->auth = o->auth;
    v->allow_http = o->allow_http;
    v->token_file = o->token_file ? ait_strdup(o->token_file) : NULL;
    v->k8s_role = o->k8s_role ? ait_strdup(o->k8s_role) : NULL;
    v->jwt_file = dup_or(o->jwt_file, AIT_VAULT_DEFAULT_JWT_FILE);
    v->k8s_mount = dup_or(o->k8s_mount, "kubernetes");
    v->kv_mount = dup_or(o->kv_mount, "secret");
    v->cache_ttl_ns = o->cache_ttl_ns == 0 ? AIT_VAULT_DEFAULT_CACHE_TTL_NS : o->cache_ttl_ns;
    v->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : AIT_VAULT_DEFAULT_TIMEOUT_MS;
    v->audit = o->audit;
    v->clock = o->clock ? o->clock : ait_clock_system();
    if (o->transport != NULL && o->transport->do_request_cb != NULL) {
        v->transport = *o->transport;
    } else {
        v->transport.ctx = v;
        v->transport.do_request_cb = curl_do_request;
    }
    pthread_mutex_init(&v->auth_mu, NULL);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cond, NULL);
    *out = v;
    return AIT_OK;
}

void ait_vault_free(ait_vault *v)
{
    if (v == NULL) {
        return;
    }
    entry *e = v->entries;
    while (e != NULL) {
        entry *next = e->next;
        json_object_put(e->data);
        ait_free(e->path);
        ait_free(e);
        e = next;
    }
    free_secret_str(v->token);
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->mu);
    pthread_mutex_destroy(&v->auth_mu);
    ait_free(v->addr);
    ait_free(v->ca_file);
    ait_free(v->token_file);
    ait_free(v->k8s_role);
    ait_free(v->jwt_file);
    ait_free(v->k8s_mount);
    ait_free(v->kv_mount);
    ait_free(v);
}

/* ---- auth --------------------------------------------------------------------------------- */

/* One request; resp is initialised here (bounded) and must be freed by the caller. */
static ait_status vault_send(ait_vault *v, const char *method, const char *path, const char *token,
                             const char *body, long *status, ait_buf *resp, ait_error *err)
{
    char *url = ait_asprintf("%s/v1/%s", v->addr, path);
    ait_buf_init(resp, AIT_VAULT_MAX_BODY);
    *status = 0;
    ait_status st =
        v->transport.do_request_cb(v->transport.ctx, method, url, token, body, status, resp, err);
    ait_free(url);
    return st;
}

/* Reads a whole small file (a token or a JWT), trimmed; returns owned, wipe when done. */
static ait_status read_secret_file(const char *path, char **out, ait_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return ait_error_set(err, AIT_ERR_IO, "vault: cannot open %s: %s", path, strerror(errno));
    }
    char *buf = ait_malloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        buf[--n] = '\0';
    }
    if (n == 0) {
        ait_free(buf);
        return ait_error_set(err, AIT_ERR_INVALID, "vault: %s is empty", path);
    }
    *out = ait_strdup(buf);
    wipe(buf, n);
    ait_free(buf);
    return AIT_OK;
}

/* Maps a non-2xx Vault answer to a typed error with Vault's own message (never a secret). */
static ait_status http_error(ait_error *err, long status, const ait_buf *resp, const char *what)
{
    char msg[200];
    vault_errors(resp->data ? resp->data : "", resp->len, msg, sizeof(msg));
    ait_status code = ait_status_from_http(status);
    if (status == 503) {
        code = AIT_ERR_RETRY;
    }
    if (code == AIT_OK) {
        code = AIT_ERR_INTERNAL;
    }
    ait_error_set(err, code, "%s: HTTP %ld%s%s", what, status, msg[0] ? ": " : "", msg);
    if (err != NULL) {
        err->http_status = (int)status;
    }
    return code;
}

/* Sets the token state from a login/renew/lookup answer. Caller holds auth_mu. */
static void set_token(ait_vault *v, char *token, int64_t ttl_s, int renewable, int is_login)
{
    if (v->token != token) {
        free_secret_str(v->token);
        v->token = token;
    }
    v->token_ttl_ns = ttl_s * AIT_NS_PER_S;
    v->token_mono = mono(v);
    v->renewable = renewable && ttl_s > 0;
    if (is_login) {
        v->login_ttl_ns = v->token_ttl_ns;
        v->token_serial++;
    }
}

/* Caller holds auth_mu. */
static ait_status do_login(ait_vault *v, ait_error *err)
{
    ait_buf resp;
    long status = 0;
    char *secret = NULL;
    char *token = NULL;
    int64_t ttl = 0;
    int renewable = 0;
    ait_status st;
    if (v->auth == AIT_VAULT_AUTH_TOKEN_FILE) {
        st = read_secret_file(v->token_file, &secret, err);
        if (st != AIT_OK) {
            return st;
        }
        st = vault_send(v, "GET", "auth/token/lookup-self", secret, NULL, &status, &resp, err);
        if (st == AIT_OK && status != 200) {
            st = http_error(err, status, &resp, "vault token lookup-self (token file)");
        }
        if (st == AIT_OK) {
            char *id = NULL;
            st = ait_vault_parse_auth(resp.data, resp.len, &id, &ttl, &renewable, err);
            free_secret_str(id);
        }
        if (st == AIT_OK) {
            token = secret;
            secret = NULL;
        }
    } else {
        st = read_secret_file(v->jwt_file, &secret, err);
        if (st != AIT_OK) {
            return st;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "role", json_object_new_string(v->k8s_role));
        json_object_object_add(o, "jwt", json_object_new_string(secret));
        char *body = ait_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        char *path = ait_asprintf("auth/%s/login", v->k8s_mount);
        st = vault_send(v, "POST", path, NULL, body, &status, &resp, err);
        free_secret_str(body);
        if (st == AIT_OK && status != 200) {
            char what[160];
            snprintf(what, sizeof(what), "vault kubernetes login (role %.64s)", v->k8s_role);
            st = http_error(err, status, &resp, what);
        }
        ait_free(path);
        if (st == AIT_OK) {
            st = ait_vault_parse_auth(resp.data, resp.len, &token, &ttl, &renewable, err);
        }
    }
    if (resp.data != NULL) {
        wipe(resp.data, resp.len);
    }
    ait_buf_free(&resp);
    free_secret_str(secret);
    if (st != AIT_OK) {
        AIT_LOG_ERROR(err ? err->msg : ait_status_str(st), "vault login failed");
        return st;
    }
    set_token(v, token, ttl, renewable, 1);
    pthread_mutex_lock(&v->mu);
    v->stats.logins++;
    pthread_mutex_unlock(&v->mu);
    char ttl_s[32];
    snprintf(ttl_s, sizeof(ttl_s), "%lld", (long long)ttl);
    AIT_LOG_INFO(1, "vault login", "method",
                 v->auth == AIT_VAULT_AUTH_TOKEN_FILE ? "token-file" : "kubernetes", "ttlSeconds",
                 ttl_s);
    return AIT_OK;
}

/* Caller holds auth_mu. */
static ait_status do_renew(ait_vault *v, ait_error *err)
{
    ait_buf resp;
    long status = 0;
    ait_status st =
        vault_send(v, "POST", "auth/token/renew-self", v->token, "{}", &status, &resp, err);
    if (st == AIT_OK && status != 200) {
        st = http_error(err, status, &resp, "vault token renew-self");
    }
    char *tok = NULL;
    int64_t ttl = 0;
    int renewable = 0;
    if (st == AIT_OK) {
        st = ait_vault_parse_auth(resp.data, resp.len, &tok, &ttl, &renewable, err);
    }
    if (resp.data != NULL) {
        wipe(resp.data, resp.len);
    }
    ait_buf_free(&resp);
    free_secret_str(tok); /* renew-self keeps the same token */
    if (st != AIT_OK) {
        return st;
    }
    /* Near the role's max TTL renewals shrink: log in again rather than renew ever more often. */
    if (ttl * AIT_NS_PER_S < v->login_ttl_ns / 2) {
        return ait_error_set(err, AIT_ERR_RETRY, "vault token renew-self: near its max TTL");
    }
    set_token(v, v->token, ttl, renewable, 0);
    pthread_mutex_lock(&v->mu);
    v->stats.renewals++;
    pthread_mutex_unlock(&v->mu);
    AIT_LOG_INFO(2, "vault token renewed");
    return AIT_OK;
}

ait_status ait_vault_login(ait_vault *v, ait_error *err)
{
    pthread_mutex_lock(&v->auth_mu);
    ait_status st = do_login(v, err);
    pthread_mutex_unlock(&v->auth_mu);
    return st;
}

/* Returns an owned copy of a usable token (wipe when done), logging in or renewing when due. When
 * stale_serial is non-zero and still current, that token was refused: log in again. */
static ait_status get_token(ait_vault *v, uint64_t stale_serial, char **tok, uint64_t *serial,
                            ait_error *err)
{
    ait_status st = AIT_OK;
    pthread_mutex_lock(&v->auth_mu);
    int64_t now = mono(v);
    int expired = v->token == NULL ||
                  (v->token_ttl_ns > 0 && now >= v->token_mono + v->token_ttl_ns) ||
                  (stale_serial != 0 && stale_serial == v->token_serial);
    if (expired) {
        st = do_login(v, err);
    } else if (v->renewable && now >= v->token_mono + v->token_ttl_ns * 2 / 3) {
        ait_error rerr = {0};
        if (do_renew(v, &rerr) != AIT_OK) {
            AIT_LOG_INFO(1, "vault token renewal failed, logging in again", "err", rerr.msg);
            ait_error lerr = {0};
            if (do_login(v, &lerr) != AIT_OK) {
                /* The current token still works until it expires: keep it. */
                AIT_LOG_ERROR(lerr.msg, "vault re-login failed, keeping the current token");
            }
        }
    }
    if (st == AIT_OK) {
        *tok = ait_strdup(v->token);
        *serial = v->token_serial;
    }
    pthread_mutex_unlock(&v->auth_mu);
    return st;
}

/* ---- KV reads ----------------------------------------------------------------------------- */

static int valid_path(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '/' || strstr(p, "..") != NULL) {
        return 0;
    }
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '?' || c == '#' || c == '%' || c == '\\' || c >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* One KV GET (with a single re-login and retry on 403). On AIT_OK *data is owned. */
static ait_status fetch(ait_vault *v, const char *path, json_object **data, int64_t *version,
                        char *created, size_t created_size, ait_error *err)
{
    char *rel = ait_asprintf("%s/data/%s", v->kv_mount, path);
    uint64_t stale = 0;
    ait_status st = AIT_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *tok = NULL;
        uint64_t serial = 0;
        st = get_token(v, stale, &tok, &serial, err);
        if (st != AIT_OK) {
            ait_error_wrap(err, "reading %s/%s", v->kv_mount, path);
            break;
        }
        ait_buf resp;
        long status = 0;
        st = vault_send(v, "GET", rel, tok, NULL, &status, &resp, err);
        free_secret_str(tok);
        pthread_mutex_lock(&v->mu);
        v->stats.kv_requests++;
        pthread_mutex_unlock(&v->mu);
        if (st == AIT_OK) {
            if (status == 200) {
                st = parse_kv_tree(resp.data, resp.len, data, version, created, created_size, err);
            } else if (status == 403 && attempt == 0) {
                stale = serial; /* expired or revoked token: log in again once */
                st = AIT_ERR_FORBIDDEN;
            } else if (status == 403) {
                st = ait_error_set(err, AIT_ERR_FORBIDDEN, "vault: permission denied reading %s/%s",
                                   v->kv_mount, path);
            } else if (status == 404) {
                st = ait_error_set(err, AIT_ERR_NOT_FOUND, "vault: no secret at %s/%s", v->kv_mount,
                                   path);
            } else {
                char what[300];
                snprintf(what, sizeof(what), "vault: reading %s/%s", v->kv_mount, path);
                st = http_error(err, status, &resp, what);
            }
            if (err != NULL && st != AIT_OK && status >= 300) {
                err->http_status = (int)status;
            }
        }
        if (resp.data != NULL) {
            wipe(resp.data, resp.len);
        }
        ait_buf_free(&resp);
        if (st != AIT_ERR_FORBIDDEN || stale == 0 || attempt == 1) {
            break;
        }
    }
    ait_free(rel);
    return st;
}

static entry *find_entry(ait_vault *v, const char *path, int create)
{
    for (entry *e = v->entries; e != NULL; e = e->next) {
        if (strcmp(e->path, path) == 0) {
            return e;
        }
    }
    if (!create) {
        return NULL;
    }
    entry *e = ait_calloc(1, sizeof(*e));
    e->path = ait_strdup(path);
    e->next = v->entries;
    v->entries = e;
    return e;
}

/* Fills out from e->data (caller holds mu). */
static ait_status serve(ait_vault *v, entry *e, const char *path, const char *key, int from_cache,
                        ait_vault_secret *out, ait_error *err)
{
    char *value = NULL;
    if (extract_key(e->data, key, &value) != AIT_OK) {
        return ait_error_set(err, AIT_ERR_NOT_FOUND, "vault: no key \"%.64s\" in %s/%s", key,
                             v->kv_mount, path);
    }
    out->value = value;
    out->version = e->version;
    snprintf(out->created_time, sizeof(out->created_time), "%s", e->created);
    out->from_cache = from_cache;
    return AIT_OK;
}

static void audit(ait_vault *v, const char *path, int64_t version, const char *task, ait_status st,
                  int from_cache)
{
    if (v->audit.on_read_cb != NULL) {
        char *full = ait_asprintf("%s/%s", v->kv_mount, path);
        v->audit.on_read_cb(v->audit.ctx, full, st == AIT_OK ? version : 0, task, st, from_cache);
        ait_free(full);
    }
}

ait_status ait_vault_read(ait_vault *v, const char *path, const char *key, const char *task,
                          ait_vault_secret *out, ait_error *err)
{
    memset(out, 0, sizeof(*out));
    ait_vault_secret got = {0};
    if (!valid_path(path) || key == NULL || key[0] == '\0') {
        return ait_error_set(err, AIT_ERR_INVALID, "vault: bad secret path or key");
    }
    ait_status st;
    pthread_mutex_lock(&v->mu);
    entry *e = find_entry(v, path, 1);
    for (;;) {
        int64_t now = mono(v);
        if (e->data != NULL && e->fresh_ok && v->cache_ttl_ns > 0 &&
            now - e->fetched_mono < v->cache_ttl_ns) {
            v->stats.cache_hits++;
            st = serve(v, e, path, key, 1, &got, err);
            break;
        }
        if (e->inflight) {
            /* Join the flight in progress and take its result, whatever it is. */
            uint64_t gen = e->gen;
            while (e->inflight && e->gen == gen) {
                pthread_cond_wait(&v->cond, &v->mu);
            }
            if (e->last_st != AIT_OK) {
                st = e->last_st;
                if (err != NULL) {
                    *err = e->last_err;
                }
                break;
            }
            if (e->data != NULL) {
                v->stats.cache_hits++;
                st = serve(v, e, path, key, 1, &got, err);
                break;
            }
            continue;
        }
        /* Lead a flight. */
        e->inflight = 1;
        uint64_t epoch = e->epoch;
        pthread_mutex_unlock(&v->mu);
        json_object *data = NULL;
        int64_t version = 0;
        char created[40] = "";
        ait_error ferr = {0};
        st = fetch(v, path, &data, &version, created, sizeof(created), &ferr);
        pthread_mutex_lock(&v->mu);
        e->inflight = 0;
        e->gen++;
        e->last_st = st;
        e->last_err = ferr;
        if (st == AIT_OK) {
            json_object_put(e->data);
            e->data = data;
            e->version = version;
            memcpy(e->created, created, sizeof(e->created));
            e->fetched_mono = mono(v);
            e->fresh_ok = e->epoch == epoch; /* invalidated meanwhile: do not cache it */
            st = serve(v, e, path, key, 0, &got, err);
        } else {
            if (st == AIT_ERR_NOT_FOUND || st == AIT_ERR_FORBIDDEN) {
                json_object_put(e->data); /* deleted or no longer allowed */
                e->data = NULL;
            }
            if (err != NULL) {
                *err = ferr;
            }
        }
        pthread_cond_broadcast(&v->cond);
        break;
    }
    pthread_mutex_unlock(&v->mu);
    audit(v, path, got.version, task, st, got.from_cache);
    if (st != AIT_OK) {
        ait_vault_secret_clear(&got);
        char tag[160];
        snprintf(tag, sizeof(tag), "%s/%s", v->kv_mount, path);
        AIT_LOG_INFO(1, "vault read failed", "path", tag, "err", err ? err->msg : NULL);
        return st;
    }
    *out = got;
    return AIT_OK;
}

void ait_vault_secret_clear(ait_vault_secret *s)
{
    if (s == NULL) {
        return;
    }
    free_secret_str(s->value);
    memset(s, 0, sizeof(*s));
}

void ait_vault_invalidate(ait_vault *v, const char *path)
{
    if (path == NULL) {
        return;
    }
    pthread_mutex_lock(&v->mu);
    entry *e = find_entry(v, path, 0);
    if (e != NULL) {
        e->epoch++;
        e->fresh_ok = 0;
    }
    pthread_mutex_unlock(&v->mu);
}

void ait_vault_get_stats(ait_vault *v, ait_vault_stats *out)
{
    pthread_mutex_lock(&v->mu);
    *out = v->stats;
    pthread_mutex_unlock(&v->mu);
}

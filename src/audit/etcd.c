/* SPDX-License-Identifier: Apache-2.0 */
/* etcd v3 through its JSON gRPC gateway, with libcurl. Requests are built with json-c (keys and
 * values base64, int64 as decimal strings); answers are parsed defensively, since they are
 * untrusted input (fuzzed). A mutex-guarded pool of curl easy handles gives connection reuse
 * without sharing a handle between threads. */
#include "audit/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/crypto.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

#define ETCD_POOL_MAX 8
#define ETCD_BODY_MAX (64u * 1024u * 1024u)

struct ait_etcd {
    char *endpoint;
    char *ca_file;
    char *cert_file;
    char *key_file;
    long timeout_ms;
    long connect_timeout_ms;
    const ait_transport *transport;
    pthread_mutex_t mu;
    CURL *pool[ETCD_POOL_MAX];
    int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

ait_status ait_etcd_new(const ait_etcd_options *opts, ait_etcd **out, ait_error *err)
{
    if (opts == NULL || opts->endpoint == NULL ||
        (strncmp(opts->endpoint, "http://", 7) != 0 &&
         strncmp(opts->endpoint, "https://", 8) != 0)) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "etcd endpoint must start with http:// or https://");
    }
    pthread_once(&curl_once, curl_init_once);
    ait_etcd *c = ait_calloc(1, sizeof *c);
    c->endpoint = ait_strdup(opts->endpoint);
    size_t n = strlen(c->endpoint);
    while (n > 0 && c->endpoint[n - 1] == '/') {
        c->endpoint[--n] = '\0';
    }
    c->ca_file = ait_strdup(opts->ca_file);
    c->cert_file = ait_strdup(opts->cert_file);
    c->key_file = ait_strdup(opts->key_file);
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000;
    c->transport = opts->transport;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return AIT_OK;
}

void ait_etcd_free(ait_etcd *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < c->npool; i++) {
        curl_easy_cleanup(c->pool[i]);
    }
    pthread_mutex_destroy(&c->mu);
    ait_free(c->endpoint);
    ait_free(c->ca_file);
    ait_free(c->cert_file);
    ait_free(c->key_file);
    ait_free(c);
}

const char *ait_etcd_endpoint(const ait_etcd *c)
{
    return c->endpoint;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ait_buf *b = ud;
    if (ait_buf_append(b, ptr, size * nmemb) != AIT_OK) {
        return 0; /* over the bound: curl aborts with CURLE_WRITE_ERROR */
    }
    return size * nmemb;
}

static CURL *handle_get(ait_etcd *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->npool > 0) {
        h = c->pool[--c->npool];
    }
    pthread_mutex_unlock(&c->mu);
    if (h == NULL) {
        h = curl_easy_init();
    } else {
        curl_easy_reset(h);
    }
    return h;
}

static void handle_put(ait_etcd *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->npool < ETCD_POOL_MAX) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
}

/* POSTs body to endpoint+path. On any HTTP answer returns AIT_OK with *status and resp filled
 * (the caller decodes non-2xx); without one, AIT_ERR_IO or AIT_ERR_TIMEOUT. */
static ait_status post_raw(ait_etcd *c, const char *path, const char *body, long *status,
                           ait_buf *resp, ait_error *err)
{
    char *url = ait_asprintf("%s%s", c->endpoint, path);
    ait_status st = AIT_OK;
    if (c->transport != NULL) {
        ait_http_request req = {.method = "POST",
                                .url = url,
                                .content_type = "application/json",
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = c->timeout_ms};
        ait_http_response r = {0};
        ait_buf_init(&r.body, ETCD_BODY_MAX);
        st = c->transport->do_request(c->transport->ctx, &req, &r, err);
        if (st == AIT_OK) {
            *status = r.status;
            ait_buf_reset(resp);
            if (ait_buf_append(resp, r.body.data ? r.body.data : "", r.body.len) != AIT_OK) {
                st = ait_error_set(err, AIT_ERR_TOO_LARGE, "etcd %s: answer too large", path);
            }
        }
        ait_buf_free(&r.body);
        ait_free(r.retry_after);
        ait_free(url);
        return st;
    }
    CURL *h = handle_get(c);
    if (h == NULL) {
        ait_free(url);
        return ait_error_set(err, AIT_ERR_INTERNAL, "etcd: curl_easy_init failed");
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert_file != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
    }
    if (c->key_file != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
    }
    ait_buf_reset(resp);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    } else if (rc == CURLE_WRITE_ERROR) {
        st = ait_error_set(err, AIT_ERR_TOO_LARGE, "etcd %s: answer over %u bytes", path,
                           ETCD_BODY_MAX);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = ait_error_set(err, AIT_ERR_TIMEOUT, "etcd %s: %s", url,
                           ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else {
        st = ait_error_set(err, AIT_ERR_IO, "etcd %s: %s", url,
                           ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    /* A handle whose transfer failed may hold a broken connection: do not pool it. */
    if (st == AIT_OK) {
        handle_put(c, h);
    } else {
        curl_easy_cleanup(h);
    }
    ait_free(url);
    return st;
}

static const char *grpc_code_name(int64_t code)
{
    static const char *names[] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    if (code >= 0 && code < (int64_t)(sizeof names / sizeof names[0])) {
        return names[code];
    }
    return "?";
}

ait_status ait_etcd_decode_error(long http_status, const char *body, size_t len, ait_error *err)
{
    json_object *root = NULL;
    int64_t code = -1;
    const char *msg = NULL;
    if (body != NULL && len > 0 && ait_json_parse(body, len, &root, NULL) == AIT_OK &&
        json_object_is_type(root, json_type_object)) {
        json_object *jc = ait_json_path(root, "code");
        if (jc != NULL && json_object_is_type(jc, json_type_int)) {
            code = json_object_get_int64(jc);
        }
        msg = ait_json_str(root, "message");
        if (msg == NULL || msg[0] == '\0') {
            msg = ait_json_str(root, "error");
        }
    }
    ait_status st;
    switch (code) {
    case 3:
    case 12:
        st = AIT_ERR_INVALID;
        break;
    case 4:
        st = AIT_ERR_TIMEOUT;
        break;
    case 5:
        st = AIT_ERR_NOT_FOUND;
        break;
    case 6:
        st = AIT_ERR_EXISTS;
        break;
    case 7:
        st = AIT_ERR_FORBIDDEN;
        break;
    case 8:
        st = (msg != NULL && strstr(msg, "space exceeded") != NULL) ? AIT_ERR_QUOTA : AIT_ERR_RETRY;
        break;
    case 9:
    case 10:
        st = AIT_ERR_CONFLICT;
        break;
    case 11:
        st = AIT_ERR_GONE;
        break;
    case 1:
    case 2:
    case 13:
    case 14:
    case 15:
        st = AIT_ERR_RETRY;
        break;
    case 16:
        st = AIT_ERR_UNAUTHORIZED;
        break;
    default:
        st = ait_status_from_http(http_status);
        if (st == AIT_OK) {
            st = AIT_ERR_PARSE; /* a 2xx passed here is a caller bug; never report success */
        }
        break;
    }
    if (code >= 0) {
        ait_error_set(err, st, "etcd: %s (HTTP %ld): %.300s", grpc_code_name(code), http_status,
                      msg ? msg : "");
    } else {
        /* body is not NUL-terminated (it is len bytes of a peer's answer): bound the print. */
        int shown = body != NULL ? (int)(len < 200 ? len : 200) : 0;
        ait_error_set(err, st, "etcd: HTTP %ld: %.*s", http_status, shown > 0 ? shown : 12,
                      shown > 0 ? body : "(empty body)");
    }
    if (err != NULL) {
        err->http_status = (int)http_status;
    }
    json_object_put(root);
    return st;
}

/* POSTs req to path and returns the parsed 2xx answer (owned) in *out. */
static ait_status call(ait_etcd *c, const char *path, json_object *req, json_object **out,
                       ait_error *err)
{
    const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    ait_buf resp;
    ait_buf_init(&resp, ETCD_BODY_MAX);
    long status = 0;
    ait_status st = post_raw(c, path, body, &status, &resp, err);
    if (st != AIT_OK) {
        goto out;
    }
    if (status < 200 || status > 299) {
        st = ait_etcd_decode_error(status, resp.data, resp.len, err);
        goto out;
    }
    st = ait_json_parse(resp.data ? resp.data : "", resp.len, out, err);
    if (st == AIT_OK && !json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        st = ait_error_set(err, AIT_ERR_PARSE, "etcd %s: answer is not a JSON object", path);
    }
    if (st != AIT_OK) {
        ait_error_wrap(err, "etcd %s", path);
    }
out:
    ait_buf_free(&resp);
    return st;
}

static json_object *b64_string(const void *data, size_t len)
{
    char *s = ait_base64_encode(data, len);
    json_object *o = json_object_new_string(s);
    ait_free(s);
    return o;
}

static json_object *int64_string(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_object_new_string(buf);
}

/* Reads an int64 that the gateway writes as a decimal string (or, leniently, a JSON int). A
 * field of another type is malformed. */
static ait_status get_i64(json_object *o, const char *field, int64_t *out, ait_error *err)
{
    json_object *v = NULL;
    *out = 0;
    if (!json_object_object_get_ex(o, field, &v) || v == NULL) {
        return AIT_OK; /* proto3 leaves zero values out */
    }
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return AIT_OK;
    }
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end = NULL;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno == 0 && end != s && *end == '\0') {
            *out = (int64_t)x;
            return AIT_OK;
        }
    }
    return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: field %s is not an int64", field);
}

static ait_status get_b64(json_object *o, const char *field, char **out, size_t *out_len,
                          ait_error *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, field, &v) || v == NULL) {
        *out = ait_strdup("");
        *out_len = 0;
        return AIT_OK;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: field %s is not a string", field);
    }
    unsigned char *d = NULL;
    ait_status st = ait_base64_decode(json_object_get_string(v),
                                      (size_t)json_object_get_string_len(v), &d, out_len, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "etcd answer: field %s", field);
        return st;
    }
    *out = (char *)d;
    return AIT_OK;
}

void ait_etcd_range_result_clear(ait_etcd_range_result *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        ait_free(r->kvs[i].key);
        ait_free(r->kvs[i].value);
    }
    ait_free(r->kvs);
    memset(r, 0, sizeof *r);
}

static ait_status parse_range_obj(json_object *root, ait_etcd_range_result *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    ait_status st;
    json_object *hdr = ait_json_path(root, "header");
    if (hdr != NULL && (st = get_i64(hdr, "revision", &out->revision, err)) != AIT_OK) {
        return st;
    }
    if ((st = get_i64(root, "count", &out->count, err)) != AIT_OK) {
        return st;
    }
    json_object *more = NULL;
    if (json_object_object_get_ex(root, "more", &more) && more != NULL) {
        if (!json_object_is_type(more, json_type_boolean)) {
            return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: more is not a boolean");
        }
        out->more = json_object_get_boolean(more);
    }
    json_object *kvs = NULL;
    if (!json_object_object_get_ex(root, "kvs", &kvs) || kvs == NULL) {
        return AIT_OK;
    }
    if (!json_object_is_type(kvs, json_type_array)) {
        return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: kvs is not an array");
    }
    size_t n = json_object_array_length(kvs);
    out->kvs = ait_calloc(n > 0 ? n : 1, sizeof *out->kvs);
    for (size_t i = 0; i < n; i++) {
        json_object *kv = json_object_array_get_idx(kvs, i);
        ait_etcd_kv *d = &out->kvs[i];
        if (!json_object_is_type(kv, json_type_object)) {
            st = ait_error_set(err, AIT_ERR_PARSE, "etcd answer: kvs[%zu] is not an object", i);
            goto fail;
        }
        out->n = i + 1; /* so clear frees what this entry already holds */
        if ((st = get_b64(kv, "key", &d->key, &d->key_len, err)) != AIT_OK ||
            (st = get_b64(kv, "value", &d->value, &d->value_len, err)) != AIT_OK ||
            (st = get_i64(kv, "create_revision", &d->create_revision, err)) != AIT_OK ||
            (st = get_i64(kv, "mod_revision", &d->mod_revision, err)) != AIT_OK ||
            (st = get_i64(kv, "version", &d->version, err)) != AIT_OK ||
            (st = get_i64(kv, "lease", &d->lease, err)) != AIT_OK) {
            goto fail;
        }
    }
    return AIT_OK;
fail:
    ait_etcd_range_result_clear(out);
    return st;
}

ait_status ait_etcd_parse_range(const char *body, size_t len, ait_etcd_range_result *out,
                                ait_error *err)
{
    json_object *root = NULL;
    memset(out, 0, sizeof *out);
    ait_status st = ait_json_parse(body, len, &root, err);
    if (st != AIT_OK) {
        return st;
    }
    if (!json_object_is_type(root, json_type_object)) {
        st = ait_error_set(err, AIT_ERR_PARSE, "etcd answer: not an object");
    } else {
        st = parse_range_obj(root, out, err);
    }
    json_object_put(root);
    return st;
}

void ait_etcd_txn_result_clear(ait_etcd_txn_result *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        ait_etcd_range_result_clear(&r->ranges[i]);
    }
    ait_free(r->ranges);
    memset(r, 0, sizeof *r);
}

static ait_status parse_txn_obj(json_object *root, ait_etcd_txn_result *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    json_object *v = NULL;
    ait_status st;
    if (json_object_object_get_ex(root, "succeeded", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_boolean)) {
            return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: succeeded is not a boolean");
        }
        out->succeeded = json_object_get_boolean(v);
    }
    json_object *hdr = ait_json_path(root, "header");
    if (hdr != NULL && (st = get_i64(hdr, "revision", &out->revision, err)) != AIT_OK) {
        return st;
    }
    json_object *resps = NULL;
    if (!json_object_object_get_ex(root, "responses", &resps) || resps == NULL) {
        return AIT_OK;
    }
    if (!json_object_is_type(resps, json_type_array)) {
        return ait_error_set(err, AIT_ERR_PARSE, "etcd answer: responses is not an array");
    }
    size_t n = json_object_array_length(resps);
    out->ranges = ait_calloc(n > 0 ? n : 1, sizeof *out->ranges);
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(resps, i);
        if (!json_object_is_type(r, json_type_object)) {
            st = ait_error_set(err, AIT_ERR_PARSE, "etcd answer: responses[%zu] not an object", i);
            goto fail;
        }
        json_object *rr = NULL;
        if (json_object_object_get_ex(r, "response_range", &rr) && rr != NULL) {
            if (!json_object_is_type(rr, json_type_object)) {
                st = ait_error_set(err, AIT_ERR_PARSE, "etcd answer: response_range not an object");
                goto fail;
            }
            if ((st = parse_range_obj(rr, &out->ranges[i], err)) != AIT_OK) {
                goto fail;
            }
        }
    }
    return AIT_OK;
fail:
    ait_etcd_txn_result_clear(out);
    return st;
}

ait_status ait_etcd_parse_txn(const char *body, size_t len, ait_etcd_txn_result *out,
                              ait_error *err)
{
    json_object *root = NULL;
    memset(out, 0, sizeof *out);
    ait_status st = ait_json_parse(body, len, &root, err);
    if (st != AIT_OK) {
        return st;
    }
    if (!json_object_is_type(root, json_type_object)) {
        st = ait_error_set(err, AIT_ERR_PARSE, "etcd answer: not an object");
    } else {
        st = parse_txn_obj(root, out, err);
    }
    json_object_put(root);
    return st;
}

char *ait_etcd_prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = ait_strdup(prefix);
    while (n > 0) {
        unsigned char ch = (unsigned char)end[n - 1];
        if (ch < 0xff) {
            end[n - 1] = (char)(ch + 1);
            end[n] = '\0';
            return end;
        }
        n--;
    }
    /* All 0xff (or empty): the range end "\0" means "to the end of the keyspace". */
    ait_free(end);
    return ait_strdup("");
}

/* A range end of "" stands for the single byte 0 (etcd's "everything from key on"). */
static json_object *range_end_json(const char *range_end)
{
    if (range_end[0] == '\0') {
        return json_object_new_string("AA==");
    }
    return b64_string(range_end, strlen(range_end));
}

static json_object *range_req(const char *key, const char *range_end, int64_t limit)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "key", b64_string(key, strlen(key)));
    if (range_end != NULL) {
        json_object_object_add(r, "range_end", range_end_json(range_end));
    }
    if (limit > 0) {
        json_object_object_add(r, "limit", int64_string(limit));
    }
    return r;
}

static json_object *put_req(const char *key, const void *value, size_t value_len, int64_t lease)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "key", b64_string(key, strlen(key)));
    json_object_object_add(r, "value", b64_string(value, value_len));
    if (lease != 0) {
        json_object_object_add(r, "lease", int64_string(lease));
    }
    return r;
}

static json_object *delete_req(const char *key, const char *range_end)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "key", b64_string(key, strlen(key)));
    if (range_end != NULL) {
        json_object_object_add(r, "range_end", range_end_json(range_end));
    }
    return r;
}

ait_status ait_etcd_put(ait_etcd *c, const char *key, const void *value, size_t value_len,
                        int64_t lease, int64_t *revision, ait_error *err)
{
    json_object *req = put_req(key, value, value_len, lease);
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/kv/put", req, &resp, err);
    if (st == AIT_OK && revision != NULL) {
        *revision = ait_json_int(resp, "header.revision", 0);
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

ait_status ait_etcd_range(ait_etcd *c, const char *key, const char *range_end, int64_t limit,
                          ait_etcd_range_result *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    json_object *req = range_req(key, range_end, limit);
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/kv/range", req, &resp, err);
    if (st == AIT_OK) {
        st = parse_range_obj(resp, out, err);
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

ait_status ait_etcd_delete(ait_etcd *c, const char *key, const char *range_end, int64_t *deleted,
                           ait_error *err)
{
    json_object *req = delete_req(key, range_end);
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/kv/deleterange", req, &resp, err);
    if (st == AIT_OK && deleted != NULL) {
        *deleted = ait_json_int(resp, "deleted", 0);
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

static json_object *ops_json(const ait_etcd_op *ops, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        switch (ops[i].type) {
        case AIT_ETCD_OP_PUT:
            json_object_object_add(
                o, "request_put",
                put_req(ops[i].key, ops[i].value, ops[i].value_len, ops[i].lease));
            break;
        case AIT_ETCD_OP_RANGE:
            json_object_object_add(o, "request_range",
                                   range_req(ops[i].key, ops[i].range_end, ops[i].limit));
            break;
        case AIT_ETCD_OP_DELETE:
            json_object_object_add(o, "request_delete_range",
                                   delete_req(ops[i].key, ops[i].range_end));
            break;
        }
        json_object_array_add(a, o);
    }
    return a;
}

ait_status ait_etcd_txn(ait_etcd *c, const ait_etcd_compare *cmp, size_t ncmp,
                        const ait_etcd_op *success, size_t nsuccess, const ait_etcd_op *failure,
                        size_t nfailure, ait_etcd_txn_result *out, ait_error *err)
{
    static const char *targets[] = {"CREATE", "MOD", "VERSION"};
    static const char *fields[] = {"create_revision", "mod_revision", "version"};
    static const char *results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
    memset(out, 0, sizeof *out);
    json_object *req = json_object_new_object();
    json_object *ca = json_object_new_array();
    for (size_t i = 0; i < ncmp; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "key", b64_string(cmp[i].key, strlen(cmp[i].key)));
        json_object_object_add(o, "target", json_object_new_string(targets[cmp[i].target]));
        json_object_object_add(o, "result", json_object_new_string(results[cmp[i].result]));
        json_object_object_add(o, fields[cmp[i].target], int64_string(cmp[i].value));
        json_object_array_add(ca, o);
    }
    json_object_object_add(req, "compare", ca);
    json_object_object_add(req, "success", ops_json(success, nsuccess));
    json_object_object_add(req, "failure", ops_json(failure, nfailure));
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/kv/txn", req, &resp, err);
    if (st == AIT_OK) {
        st = parse_txn_obj(resp, out, err);
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

ait_status ait_etcd_lease_grant(ait_etcd *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                                ait_error *err)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "TTL", int64_string(ttl_s));
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/lease/grant", req, &resp, err);
    if (st == AIT_OK) {
        const char *e = ait_json_str(resp, "error");
        int64_t v = 0, t = 0;
        if (e != NULL && e[0] != '\0') {
            st = ait_error_set(err, AIT_ERR_RETRY, "etcd lease grant: %.300s", e);
        } else if ((st = get_i64(resp, "ID", &v, err)) == AIT_OK &&
                   (st = get_i64(resp, "TTL", &t, err)) == AIT_OK) {
            if (v == 0) {
                st = ait_error_set(err, AIT_ERR_PARSE, "etcd lease grant: no lease id in answer");
            } else {
                *id = v;
                if (granted_ttl != NULL) {
                    *granted_ttl = t;
                }
            }
        }
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

ait_status ait_etcd_lease_keepalive(ait_etcd *c, int64_t id, int64_t *ttl, ait_error *err)
{
    /* The gateway maps the bidirectional stream onto one POST: each request line gets one
     * answer line {"result": {...}} (or {"error": {...}}), and the stream ends with our body. */
    json_object *req = json_object_new_object();
    json_object_object_add(req, "ID", int64_string(id));
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/lease/keepalive", req, &resp, err);
    if (st == AIT_OK) {
        json_object *res = ait_json_path(resp, "result");
        json_object *e = ait_json_path(resp, "error");
        int64_t t = 0;
        if (e != NULL) {
            const char *m = ait_json_str(e, "message");
            st = ait_error_set(err, AIT_ERR_RETRY, "etcd lease keepalive: %.300s", m ? m : "error");
        } else if (res == NULL || !json_object_is_type(res, json_type_object)) {
            st = ait_error_set(err, AIT_ERR_PARSE, "etcd lease keepalive: no result in answer");
        } else if ((st = get_i64(res, "TTL", &t, err)) == AIT_OK) {
            if (t <= 0) {
                st = ait_error_set(err, AIT_ERR_NOT_FOUND, "etcd lease %" PRId64 " not found", id);
            } else if (ttl != NULL) {
                *ttl = t;
            }
        }
    }
    json_object_put(req);
    json_object_put(resp);
    return st;
}

ait_status ait_etcd_lease_revoke(ait_etcd *c, int64_t id, ait_error *err)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "ID", int64_string(id));
    json_object *resp = NULL;
    ait_status st = call(c, "/v3/lease/revoke", req, &resp, err);
    json_object_put(req);
    json_object_put(resp);
    return st;
}

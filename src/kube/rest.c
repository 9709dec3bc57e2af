/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes REST client: URL building, the typed verbs, list pagination, Status decoding and
 * the default libcurl transport. Invariants: every request passes the limiter, carries a total
 * timeout (streams: an idle limit instead) and reports to the observer once; response bodies are
 * bounded by AIT_REST_MAX_BODY; the libcurl transport keeps one easy handle per thread and client
 * so connections stay alive, and shares TLS sessions and DNS between those handles. */
#include "kube/rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "core/version.h"
#include "kube/ratelimit.h"

#define REST_ERROR_BODY_MAX (64u * 1024u)
#define REST_TOKEN_REREAD_NS (60 * AIT_NS_PER_S)
#define REST_DEFAULT_TIMEOUT_MS 30000L
#define REST_DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define REST_STREAM_POLL_MS 200

const ait_gvr AIT_GVR_PODS = {"", "v1", "pods", "Pod", 1};
const ait_gvr AIT_GVR_CONFIGMAPS = {"", "v1", "configmaps", "ConfigMap", 1};
const ait_gvr AIT_GVR_SECRETS = {"", "v1", "secrets", "Secret", 1};
const ait_gvr AIT_GVR_NAMESPACES = {"", "v1", "namespaces", "Namespace", 0};
const ait_gvr AIT_GVR_SERVICEACCOUNTS = {"", "v1", "serviceaccounts", "ServiceAccount", 1};
const ait_gvr AIT_GVR_LEASES = {"coordination.k8s.io", "v1", "leases", "Lease", 1};
const ait_gvr AIT_GVR_EVENTS = {"events.k8s.io", "v1", "events", "Event", 1};
const ait_gvr AIT_GVR_NETWORKPOLICIES = {"networking.k8s.io", "v1", "networkpolicies",
                                         "NetworkPolicy", 1};
const ait_gvr AIT_GVR_AITASKS = {"aitask.dev", "v1alpha1", "aitasks", "AITask", 1};

/* ---- URL pieces ---- */

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static void append_escaped(ait_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char ch = *p;
        char enc[3];
        ait_status st;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            st = ait_buf_append(b, p, 1);
        } else {
            enc[0] = '%';
            enc[1] = hex[ch >> 4];
            enc[2] = hex[ch & 15];
            st = ait_buf_append(b, enc, 3);
        }
        /* Unbounded buffers only fail by aborting in the allocator. */
        (void)st;
    }
}

static void append_str(ait_buf *b, const char *s)
{
    ait_status st = ait_buf_appends(b, s);
    (void)st;
}

/* Appends "&key=value" (or "key=value" first) with value percent-encoded. */
static void query_add(ait_buf *q, const char *key, const char *value)
{
    if (q->len > 0) {
        append_str(q, "&");
    }
    append_str(q, key);
    append_str(q, "=");
    append_escaped(q, value);
}

char *ait_rest_path(const ait_gvr *gvr, const char *ns, const char *name, const char *subresource)
{
    ait_buf b;
    ait_buf_init(&b, 0);
    if (gvr->group == NULL || gvr->group[0] == '\0') {
        append_str(&b, "/api/");
        append_escaped(&b, gvr->version);
    } else {
        append_str(&b, "/apis/");
        append_escaped(&b, gvr->group);
        append_str(&b, "/");
        append_escaped(&b, gvr->version);
    }
    if (gvr->namespaced && ns != NULL && ns[0] != '\0') {
        append_str(&b, "/namespaces/");
        append_escaped(&b, ns);
    }
    append_str(&b, "/");
    append_escaped(&b, gvr->resource);
    if (name != NULL) {
        append_str(&b, "/");
        append_escaped(&b, name);
        if (subresource != NULL && subresource[0] != '\0') {
            append_str(&b, "/");
            append_escaped(&b, subresource);
        }
    }
    return ait_buf_take(&b);
}

/* ---- Status decoding ---- */

static ait_status reason_code(const char *reason, long http)
{
    static const struct {
        const char *reason;
        ait_status code;
    } map[] = {
        {"AlreadyExists", AIT_ERR_EXISTS},
        {"Conflict", AIT_ERR_CONFLICT},
        {"Gone", AIT_ERR_GONE},
        {"Expired", AIT_ERR_GONE},
        {"Invalid", AIT_ERR_INVALID},
        {"BadRequest", AIT_ERR_INVALID},
        {"MethodNotAllowed", AIT_ERR_INVALID},
        {"UnsupportedMediaType", AIT_ERR_INVALID},
        {"NotAcceptable", AIT_ERR_INVALID},
        {"Forbidden", AIT_ERR_FORBIDDEN},
        {"Unauthorized", AIT_ERR_UNAUTHORIZED},
        {"NotFound", AIT_ERR_NOT_FOUND},
        {"TooManyRequests", AIT_ERR_RETRY},
        {"ServerTimeout", AIT_ERR_RETRY},
        {"Timeout", AIT_ERR_RETRY},
        {"InternalError", AIT_ERR_RETRY},
        {"ServiceUnavailable", AIT_ERR_RETRY},
        {"RequestEntityTooLarge", AIT_ERR_TOO_LARGE},
    };
    if (reason != NULL) {
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            if (strcmp(reason, map[i].reason) == 0) {
                return map[i].code;
            }
        }
    }
    /* No or an unknown reason: the HTTP status decides, as client-go's errors.ReasonForError
     * falls back to the code. */
    if (http == 429 || http >= 500) {
        return AIT_ERR_RETRY;
    }
    if (http == 409) {
        return AIT_ERR_CONFLICT;
    }
    ait_status st = ait_status_from_http(http);
    return st == AIT_OK ? AIT_ERR_IO : st;
}

/* Writes a printable, tag-stripped, whitespace-collapsed excerpt of body into out (size >= 8),
 * ending in "..." when cut. */
static void body_excerpt(const char *body, size_t len, char *out, size_t size)
{
    /* Room kept at the end: one space and one character per step, "..." and the NUL. */
    const size_t reserve = 6;
    size_t o = 0;
    int in_tag = 0, space = 0, cut = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch == '<') {
            in_tag = 1;
            space = o > 0;
            continue;
        }
        if (in_tag) {
            in_tag = ch != '>';
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            space = o > 0;
            continue;
        }
        if (o + reserve >= size) {
            cut = 1;
            break;
        }
        if (space) {
            out[o++] = ' ';
            space = 0;
        }
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

ait_status ait_rest_decode_status(long http_status, const char *body, size_t len, ait_error *err)
{
    if (http_status >= 200 && http_status < 300) {
        ait_error_clear(err);
        return AIT_OK;
    }
    if (body == NULL) {
        len = 0;
    }
    ait_status code;
    json_object *j = NULL;
    if (http_status == 0) {
        code = ait_error_set(err, AIT_ERR_IO, "no HTTP answer from the API server");
    } else if (len > 0 && ait_json_parse(body, len, &j, NULL) == AIT_OK &&
               json_object_is_type(j, json_type_object)) {
        const char *reason = ait_json_str(j, "reason");
        const char *message = ait_json_str(j, "message");
        int64_t retry = ait_json_int(j, "details.retryAfterSeconds", 0);
        code = reason_code(reason, http_status);
        char excerpt[160];
        if (message == NULL || message[0] == '\0') {
            body_excerpt(body, len, excerpt, sizeof excerpt);
            message = excerpt;
        }
        if (retry > 0) {
            ait_error_set(err, code, "%s (HTTP %ld %s) (retry after %llds)", message, http_status,
                          reason != NULL ? reason : ait_status_str(code), (long long)retry);
        } else {
            ait_error_set(err, code, "%s (HTTP %ld %s)", message, http_status,
                          reason != NULL ? reason : ait_status_str(code));
        }
    } else if (len == 0) {
        code = reason_code(NULL, http_status);
        ait_error_set(err, code, "the API server answered HTTP %ld with an empty body",
                      http_status);
    } else {
        char excerpt[200];
        body_excerpt(body, len, excerpt, sizeof excerpt);
        code = reason_code(NULL, http_status);
        ait_error_set(err, code,
                      "the API server (or a proxy before it) answered HTTP %ld with a non-JSON "
                      "body: %s",
                      http_status, excerpt);
    }
    json_object_put(j);
    if (err != NULL) {
        err->http_status = (int)http_status;
    }
    return code;
}

long ait_rest_retry_after_seconds(const ait_error *err)
{
    if (err == NULL) {
        return -1;
    }
    const char *marker = "(retry after ";
    const char *p = NULL;
    for (const char *q = strstr(err->msg, marker); q != NULL; q = strstr(q + 1, marker)) {
        p = q;
    }
    if (p == NULL) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(p + strlen(marker), &end, 10);
    if (errno != 0 || end == NULL || *end != 's' || v < 0) {
        return -1;
    }
    return v;
}

/* Parses a Retry-After header (delta seconds or an HTTP date) into seconds, or -1. */
static long parse_retry_after(const char *v)
{
    if (v == NULL) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long s = strtol(v, &end, 10);
    if (errno == 0 && end != v && (*end == '\0' || *end == ' ' || *end == '\r')) {
        return s < 0 ? 0 : s;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == -1) {
        return -1;
    }
    long d = (long)(t - time(NULL));
    return d < 0 ? 0 : d;
}

/* ---- the libcurl transport ---- */

typedef struct curl_tr curl_tr;

typedef struct tr_handle {
    CURL *h;
    curl_tr *tr;
    struct tr_handle *prev, *next;
} tr_handle;

struct curl_tr {
    char *ca_file, *ca_data, *cert_file, *cert_data, *key_file, *key_data;
    char *token, *token_file;
    int insecure;
    long connect_timeout_ms;
    char *user_agent;
    pthread_key_t key;
    pthread_mutex_t mu; /* guards handles and the token cache */
    tr_handle *handles;
    char *cached_token;
    int64_t token_read_ns;
    int token_read_once;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)h;
    (void)access;
    curl_tr *tr = userp;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST) {
        pthread_mutex_lock(&tr->share_mu[data]);
    }
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
    (void)h;
    curl_tr *tr = userp;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST) {
        pthread_mutex_unlock(&tr->share_mu[data]);
    }
}

/* Thread-exit destructor of a thread's handle. */
static void handle_destroy(void *p)
{
    tr_handle *th = p;
    if (th == NULL) {
        return;
    }
    pthread_mutex_lock(&th->tr->mu);
    if (th->prev != NULL) {
        th->prev->next = th->next;
    } else {
        th->tr->handles = th->next;
    }
    if (th->next != NULL) {
        th->next->prev = th->prev;
    }
    pthread_mutex_unlock(&th->tr->mu);
    curl_easy_cleanup(th->h);
    ait_free(th);
}

static CURL *thread_handle(curl_tr *tr)
{
    tr_handle *th = pthread_getspecific(tr->key);
    if (th != NULL) {
        return th->h;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        return NULL;
    }
    th = ait_calloc(1, sizeof *th);
    th->h = h;
    th->tr = tr;
    pthread_mutex_lock(&tr->mu);
    th->next = tr->handles;
    if (tr->handles != NULL) {
        tr->handles->prev = th;
    }
    tr->handles = th;
    pthread_mutex_unlock(&tr->mu);
    pthread_setspecific(tr->key, th);
    return h;
}

/* Returns the bearer token to send (owned, or NULL): the token file's contents, re-read at most
 * once a minute since projected tokens rotate, else the configured token. */
static char *current_token(curl_tr *tr)
{
    if (tr->token_file == NULL) {
        return ait_strdup(tr->token);
    }
    pthread_mutex_lock(&tr->mu);
    int64_t now = ait_time_mono_ns();
    if (!tr->token_read_once || now - tr->token_read_ns >= REST_TOKEN_REREAD_NS) {
        FILE *f = fopen(tr->token_file, "rb");
        if (f != NULL) {
            char buf[16384];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
                n--;
            }
            if (n > 0) {
                ait_free(tr->cached_token);
                tr->cached_token = ait_strndup(buf, n);
            }
            memset(buf, 0, sizeof buf);
        } else {
            AIT_LOG_ERROR(strerror(errno),
                          "cannot read the bearer token file; keeping the last "
                          "token",
                          "file", tr->token_file);
        }
        tr->token_read_ns = now;
        tr->token_read_once = 1;
    }
    char *t = ait_strdup(tr->cached_token != NULL ? tr->cached_token : tr->token);
    pthread_mutex_unlock(&tr->mu);
    return t;
}

/* Sets the options every request shares; returns the header list to free after the transfer. */
static struct curl_slist *setup_handle(curl_tr *tr, CURL *h, const char *url, long timeout_ms,
                                       const char *content_type, char *errbuf)
{
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tr->connect_timeout_ms);
    if (timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_SHARE, tr->share);
    curl_easy_setopt(h, CURLOPT_USERAGENT, tr->user_agent);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L);
    if (tr->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (tr->ca_data != NULL) {
        struct curl_blob blob = {tr->ca_data, strlen(tr->ca_data), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    } else if (tr->ca_file != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, tr->ca_file);
    }
    if (tr->cert_data != NULL) {
        struct curl_blob blob = {tr->cert_data, strlen(tr->cert_data), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (tr->cert_file != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, tr->cert_file);
    }
    if (tr->key_data != NULL) {
        struct curl_blob blob = {tr->key_data, strlen(tr->key_data), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (tr->key_file != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLKEY, tr->key_file);
    }
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    /* No "Expect: 100-continue" round trip for large bodies. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (content_type != NULL) {
        char *ct = ait_asprintf("Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
        ait_free(ct);
    }
    char *token = current_token(tr);
    if (token != NULL && token[0] != '\0') {
        char *auth = ait_asprintf("Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
        memset(auth, 0, strlen(auth));
        ait_free(auth);
    }
    if (token != NULL) {
        memset(token, 0, strlen(token));
    }
    ait_free(token);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

typedef struct body_sink {
    ait_buf *b;
    int too_large;
} body_sink;

static size_t body_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    body_sink *s = userp;
    size_t n = size * nmemb;
    if (ait_buf_append(s->b, data, n) != AIT_OK) {
        s->too_large = 1;
        return 0;
    }
    return n;
}

static ait_status curl_failure(CURLcode rc, const char *errbuf, ait_error *err)
{
    const char *detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ait_error_set(err, AIT_ERR_TIMEOUT, "timed out: %s", detail);
    case CURLE_ABORTED_BY_CALLBACK:
        return ait_error_set(err, AIT_ERR_CANCELLED, "cancelled");
    default:
        return ait_error_set(err, AIT_ERR_IO, "%s", detail);
    }
}

static ait_status curl_do_request(void *ctx, const ait_http_request *req, ait_http_response *resp,
                                  ait_error *err)
{
    curl_tr *tr = ctx;
    CURL *h = thread_handle(tr);
    if (h == NULL) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "curl_easy_init failed");
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    struct curl_slist *hdrs =
        setup_handle(tr, h, req->url, req->timeout_ms, req->content_type, errbuf);
    body_sink sink = {&resp->body, 0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(req->method, "POST") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        }
        if (req->body != NULL || strcmp(req->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)(req->body != NULL ? req->body_len : 0));
        }
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    resp->status = code;
    struct curl_header *ra = NULL;
    if (code != 0 && curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK &&
        ra != NULL && ra->value != NULL) {
        resp->retry_after = ait_strdup(ra->value);
    }
    /* The handle keeps pointers to these: clear them before they go away. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK) {
        return AIT_OK;
    }
    if (rc == CURLE_WRITE_ERROR && sink.too_large) {
        return ait_error_set(err, AIT_ERR_TOO_LARGE, "response body larger than %zu bytes",
                             resp->body.max);
    }
    return curl_failure(rc, errbuf, err);
}

typedef struct stream_sink {
    CURL *h;
    ait_stream_cb on_data;
    void *cb_ctx;
    long *status_out;
    const volatile int *cancel;
    int stopped;
} stream_sink;

static size_t stream_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    stream_sink *s = userp;
    size_t n = size * nmemb;
    if (*s->status_out == 0) {
        long code = 0;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
        *s->status_out = code;
    }
    if (s->on_data(s->cb_ctx, data, n) != 0) {
        s->stopped = 1;
        return 0;
    }
    return n;
}

static int stream_xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    stream_sink *s = userp;
    return s->cancel != NULL && *s->cancel != 0;
}

/* A watch gets its own easy handle driven by a multi handle, so the cancel flag is polled every
 * REST_STREAM_POLL_MS (curl_easy_perform only calls back about once a second when idle). */
static ait_status curl_stream(void *ctx, const char *url, long timeout_ms, ait_stream_cb on_data,
                              void *cb_ctx, const volatile int *cancel, long *status_out,
                              ait_error *err)
{
    curl_tr *tr = ctx;
    long status = 0;
    if (status_out == NULL) {
        status_out = &status;
    }
    *status_out = 0;
    CURL *h = curl_easy_init();
    CURLM *m = curl_multi_init();
    if (h == NULL || m == NULL) {
        curl_easy_cleanup(h);
        curl_multi_cleanup(m);
        return ait_error_set(err, AIT_ERR_INTERNAL, "curl init failed");
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    struct curl_slist *hdrs = setup_handle(tr, h, url, 0, NULL, errbuf);
    stream_sink sink = {h, on_data, cb_ctx, status_out, cancel, 0};
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stream_xferinfo_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &sink);
    if (timeout_ms > 0) {
        /* No total timeout: a watch lives long. A connection silent for timeout_ms is dead. */
        long secs = (timeout_ms + 999) / 1000;
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
    }
    curl_multi_add_handle(m, h);
    int running = 1, cancelled = 0;
    CURLcode rc = CURLE_OK;
    while (running) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            rc = CURLE_RECV_ERROR;
            snprintf(errbuf, sizeof errbuf, "curl_multi_perform: %s", curl_multi_strerror(mc));
            break;
        }
        if (cancel != NULL && *cancel != 0) {
            cancelled = 1;
            break;
        }
        if (running) {
            mc = curl_multi_poll(m, NULL, 0, REST_STREAM_POLL_MS, NULL);
            if (mc != CURLM_OK) {
                rc = CURLE_RECV_ERROR;
                snprintf(errbuf, sizeof errbuf, "curl_multi_poll: %s", curl_multi_strerror(mc));
                break;
            }
        }
    }
    int msgs = 0;
    CURLMsg *msg;
    while (!cancelled && (msg = curl_multi_info_read(m, &msgs)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) {
            rc = msg->data.result;
        }
    }
    if (*status_out == 0) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        *status_out = code;
    }
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    if (cancelled || (cancel != NULL && *cancel != 0 && rc == CURLE_ABORTED_BY_CALLBACK)) {
        return ait_error_set(err, AIT_ERR_CANCELLED, "stream cancelled");
    }
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && sink.stopped)) {
        return AIT_OK;
    }
    return curl_failure(rc, errbuf, err);
}

static void curl_tr_destroy(void *ctx)
{
    curl_tr *tr = ctx;
    if (tr == NULL) {
        return;
    }
    /* Handles of threads still alive; those of finished threads freed themselves. */
    pthread_key_delete(tr->key);
    tr_handle *th = tr->handles;
    while (th != NULL) {
        tr_handle *next = th->next;
        curl_easy_cleanup(th->h);
        ait_free(th);
        th = next;
    }
    curl_share_cleanup(tr->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_destroy(&tr->share_mu[i]);
    }
    pthread_mutex_destroy(&tr->mu);
    ait_free(tr->ca_file);
    ait_free(tr->ca_data);
    ait_free(tr->cert_file);
    ait_free(tr->cert_data);
    ait_free(tr->key_file);
    if (tr->key_data != NULL) {
        memset(tr->key_data, 0, strlen(tr->key_data));
    }
    ait_free(tr->key_data);
    if (tr->token != NULL) {
        memset(tr->token, 0, strlen(tr->token));
    }
    ait_free(tr->token);
    if (tr->cached_token != NULL) {
        memset(tr->cached_token, 0, strlen(tr->cached_token));
    }
    ait_free(tr->cached_token);
    ait_free(tr->token_file);
    ait_free(tr->user_agent);
    ait_free(tr);
}

static ait_status curl_tr_new(const ait_kube_config *cfg, long connect_timeout_ms,
                              const char *user_agent, curl_tr **out, ait_error *err)
{
    pthread_once(&curl_once, curl_global);
    curl_tr *tr = ait_calloc(1, sizeof *tr);
    if (pthread_key_create(&tr->key, handle_destroy) != 0) {
        ait_free(tr);
        return ait_error_set(err, AIT_ERR_INTERNAL, "pthread_key_create failed");
    }
    pthread_mutex_init(&tr->mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_init(&tr->share_mu[i], NULL);
    }
    tr->share = curl_share_init();
    if (tr->share != NULL) {
        curl_share_setopt(tr->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(tr->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(tr->share, CURLSHOPT_USERDATA, tr);
        curl_share_setopt(tr->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(tr->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    tr->ca_file = ait_strdup(cfg->ca_file);
    tr->ca_data = ait_strdup(cfg->ca_data);
    tr->cert_file = ait_strdup(cfg->client_cert_file);
    tr->cert_data = ait_strdup(cfg->client_cert_data);
    tr->key_file = ait_strdup(cfg->client_key_file);
    tr->key_data = ait_strdup(cfg->client_key_data);
    tr->token = ait_strdup(cfg->token);
    tr->token_file = ait_strdup(cfg->token_file);
    tr->insecure = cfg->insecure_skip_tls_verify;
    tr->connect_timeout_ms = connect_timeout_ms;
    tr->user_agent = ait_strdup(user_agent);
    *out = tr;
    return AIT_OK;
}

/* ---- the client ---- */

struct ait_rest {
    char *server;
    const ait_transport *tr;
    ait_transport own; /* the libcurl transport when none was given */
    int owns_transport;
    ait_ratelimit *rl;
    long timeout_ms;
    ait_rest_observe_cb observe;
    void *observe_ctx;
};

ait_status ait_rest_new(const ait_kube_config *cfg, const ait_rest_options *opts, ait_rest **out,
                        ait_error *err)
{
    if (cfg == NULL || out == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_new: NULL argument");
    }
    *out = NULL;
    if (cfg->server == NULL ||
        (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0)) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "REST client: the server must be an http(s) URL, not \"%s\"",
                             cfg->server != NULL ? cfg->server : "(none)");
    }
    ait_rest_options o = {0};
    if (opts != NULL) {
        o = *opts;
    }
    ait_rest *c = ait_calloc(1, sizeof *c);
    c->server = ait_strdup(cfg->server);
    size_t n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/') {
        c->server[--n] = '\0';
    }
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : REST_DEFAULT_TIMEOUT_MS;
    c->observe = o.observe;
    c->observe_ctx = o.observe_ctx;
    if (o.qps > 0) {
        c->rl = ait_ratelimit_new(o.qps, o.burst > 0 ? o.burst : 10, NULL);
    }
    if (o.transport != NULL) {
        c->tr = o.transport;
    } else {
        curl_tr *ctr = NULL;
        char *ua = o.user_agent != NULL ? ait_strdup(o.user_agent)
                                        : ait_asprintf("aitask-operator/%s", AIT_VERSION);
        ait_status st = curl_tr_new(
            cfg, o.connect_timeout_ms > 0 ? o.connect_timeout_ms : REST_DEFAULT_CONNECT_TIMEOUT_MS,
            ua, &ctr, err);
        ait_free(ua);
        if (st != AIT_OK) {
            ait_rest_free(c);
            return st;
        }
        c->own.ctx = ctr;
        c->own.do_request = curl_do_request;
        c->own.stream = curl_stream;
        c->own.destroy = curl_tr_destroy;
        c->owns_transport = 1;
        c->tr = &c->own;
    }
    *out = c;
    return AIT_OK;
}

void ait_rest_free(ait_rest *c)
{
    if (c == NULL) {
        return;
    }
    if (c->owns_transport && c->own.destroy != NULL) {
        c->own.destroy(c->own.ctx);
    }
    ait_ratelimit_free(c->rl);
    ait_free(c->server);
    ait_free(c);
}

static char *make_url(const ait_rest *c, const char *path, const char *query)
{
    if (query != NULL && query[0] != '\0') {
        return ait_asprintf("%s%s?%s", c->server, path, query);
    }
    return ait_asprintf("%s%s", c->server, path);
}

/* Appends " (retry after Ns)" from the Retry-After header unless the Status already gave it. */
static void note_retry_after(ait_error *err, const char *header)
{
    if (err == NULL || ait_rest_retry_after_seconds(err) >= 0) {
        return;
    }
    long s = parse_retry_after(header);
    if (s < 0) {
        return;
    }
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, " (retry after %lds)", s);
}

/* Sends one request. A 2xx body is decoded into *out (when out is non-NULL), or handed over
 * undecoded in *text_out (when text_out is non-NULL: initialised here, free with ait_buf_free). */
static ait_status do_request(ait_rest *c, const char *method, const char *path, const char *query,
                             const char *content_type, const char *body, size_t body_len,
                             json_object **out, ait_buf *text_out, ait_error *err)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (text_out != NULL) {
        ait_buf_init(text_out, 0);
    }
    char *url = make_url(c, path, query);
    ait_ratelimit_wait(c->rl);
    ait_http_request req = {
        .method = method,
        .url = url,
        .content_type = body != NULL ? content_type : NULL,
        .body = body,
        .body_len = body_len,
        .timeout_ms = c->timeout_ms,
    };
    ait_http_response resp = {0};
    ait_buf_init(&resp.body, AIT_REST_MAX_BODY);
    ait_error terr = {0};
    int64_t t0 = ait_time_mono_ns();
    ait_status st = c->tr->do_request(c->tr->ctx, &req, &resp, &terr);
    int64_t dt = ait_time_mono_ns() - t0;
    if (c->observe != NULL) {
        c->observe(c->observe_ctx, method, st == AIT_OK ? resp.status : 0, dt);
    }
    if (st != AIT_OK) {
        if (err != NULL) {
            *err = terr;
            err->code = st;
            err->http_status = 0;
        }
        ait_error_wrap(err, "%s %s", method, path);
    } else if (resp.status < 200 || resp.status >= 300) {
        st = ait_rest_decode_status(resp.status, resp.body.data, resp.body.len, err);
        if (st == AIT_ERR_RETRY) {
            note_retry_after(err, resp.retry_after);
        }
    } else if (text_out != NULL) {
        *text_out = resp.body;
        ait_buf_init(&resp.body, 0);
    } else if (out != NULL && resp.body.len > 0) {
        st = ait_json_parse(resp.body.data, resp.body.len, out, err);
        if (st != AIT_OK) {
            ait_error_wrap(err, "%s %s: decoding the answer", method, path);
        }
    }
    if (st != AIT_OK && err != NULL) {
        err->code = st;
    }
    ait_buf_free(&resp.body);
    ait_free(resp.retry_after);
    ait_free(url);
    return st;
}

ait_status ait_rest_request(ait_rest *c, const char *method, const char *path, const char *query,
                            const char *content_type, const char *body, json_object **out,
                            ait_error *err)
{
    if (c == NULL || method == NULL || path == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_request: NULL argument");
    }
    return do_request(c, method, path, query, content_type, body, body != NULL ? strlen(body) : 0,
                      out, NULL, err);
}

ait_status ait_rest_get_text(ait_rest *c, const char *path, const char *query, ait_buf *out,
                             ait_error *err)
{
    if (c == NULL || path == NULL || out == NULL) {
        if (out != NULL) {
            ait_buf_init(out, 0);
        }
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_get_text: NULL argument");
    }
    return do_request(c, "GET", path, query, NULL, NULL, 0, NULL, out, err);
}

ait_status ait_rest_get(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                        json_object **out, ait_error *err)
{
    if (c == NULL || gvr == NULL || name == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_get: NULL argument");
    }
    char *path = ait_rest_path(gvr, ns, name, NULL);
    ait_status st = do_request(c, "GET", path, NULL, NULL, NULL, 0, out, NULL, err);
    ait_free(path);
    return st;
}

/* Fetches one page into *page. */
static ait_status list_page(ait_rest *c, const char *path, const ait_list_options *opts,
                            const char *cont, json_object **page, ait_error *err)
{
    ait_buf q;
    ait_buf_init(&q, 0);
    if (opts != NULL && opts->label_selector != NULL && opts->label_selector[0] != '\0') {
        query_add(&q, "labelSelector", opts->label_selector);
    }
    if (opts != NULL && opts->field_selector != NULL && opts->field_selector[0] != '\0') {
        query_add(&q, "fieldSelector", opts->field_selector);
    }
    if (opts != NULL && opts->limit > 0) {
        char lim[32];
        snprintf(lim, sizeof lim, "%d", opts->limit);
        query_add(&q, "limit", lim);
    }
    if (cont != NULL) {
        query_add(&q, "continue", cont);
    }
    ait_status st = do_request(c, "GET", path, ait_buf_str(&q), NULL, NULL, 0, page, NULL, err);
    ait_buf_free(&q);
    if (st == AIT_OK && (*page == NULL || !json_object_is_type(*page, json_type_object) ||
                         !json_object_is_type(ait_json_path(*page, "items"), json_type_array))) {
        /* "items": null is how Go encodes an empty list in some versions. */
        if (*page != NULL && json_object_is_type(*page, json_type_object) &&
            json_object_object_get_ex(*page, "items", NULL) &&
            ait_json_path(*page, "items") == NULL) {
            json_object_object_add(*page, "items", json_object_new_array());
            return AIT_OK;
        }
        json_object_put(*page);
        *page = NULL;
        return ait_error_set(err, AIT_ERR_PARSE, "GET %s: the answer is not a List", path);
    }
    return st;
}

ait_status ait_rest_list(ait_rest *c, const ait_gvr *gvr, const char *ns,
                         const ait_list_options *opts, json_object **out, ait_error *err)
{
    if (c == NULL || gvr == NULL || out == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_list: NULL argument");
    }
    *out = NULL;
    char *path = ait_rest_path(gvr, ns, NULL, NULL);
    json_object *result = NULL;
    ait_status st = AIT_OK;
    int restarted = 0;
    char *cont = NULL;
    for (;;) {
        json_object *page = NULL;
        st = list_page(c, path, opts, cont, &page, err);
        if (st == AIT_ERR_GONE && cont != NULL && !restarted) {
            /* The continue token expired (compaction): start over once, from a fresh snapshot. */
            AIT_LOG_INFO(2, "list continue token expired; restarting the list", "path", path);
            restarted = 1;
            json_object_put(result);
            result = NULL;
            ait_free(cont);
            cont = NULL;
            continue;
        }
        if (st != AIT_OK) {
            break;
        }
        const char *next = ait_json_str(page, "metadata.continue");
        char *next_copy = (next != NULL && next[0] != '\0') ? ait_strdup(next) : NULL;
        if (result == NULL) {
            result = page;
        } else {
            json_object *dst = ait_json_path(result, "items");
            json_object *src = ait_json_path(page, "items");
            size_t n = json_object_array_length(src);
            for (size_t i = 0; i < n; i++) {
                json_object_array_add(dst, json_object_get(json_object_array_get_idx(src, i)));
            }
            json_object_put(page);
        }
        ait_free(cont);
        cont = next_copy;
        if (cont == NULL) {
            break;
        }
    }
    ait_free(cont);
    ait_free(path);
    if (st != AIT_OK) {
        json_object_put(result);
        return st;
    }
    json_object *md = ait_json_path(result, "metadata");
    if (md != NULL) {
        json_object_object_del(md, "continue");
        json_object_object_del(md, "remainingItemCount");
    }
    *out = result;
    return AIT_OK;
}

/* The namespace to write into: ns, else the object's metadata.namespace. */
static ait_status write_ns(const ait_gvr *gvr, const char *ns, json_object *obj, const char **out,
                           ait_error *err)
{
    *out = NULL;
    if (!gvr->namespaced) {
        return AIT_OK;
    }
    if (ns == NULL || ns[0] == '\0') {
        ns = ait_json_str(obj, "metadata.namespace");
    }
    if (ns == NULL || ns[0] == '\0') {
        return ait_error_set(err, AIT_ERR_INVALID, "writing %s needs a namespace", gvr->resource);
    }
    *out = ns;
    return AIT_OK;
}

static ait_status send_object(ait_rest *c, const char *method, const char *path, json_object *obj,
                              json_object **out, ait_error *err)
{
    size_t len = 0;
    const char *body = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    json_object *res = NULL;
    ait_status st = do_request(c, method, path, NULL, "application/json", body, len,
                               out ? &res : NULL, NULL, err);
    if (out != NULL) {
        *out = res;
    }
    return st;
}

ait_status ait_rest_create(ait_rest *c, const ait_gvr *gvr, const char *ns, json_object *obj,
                           json_object **out, ait_error *err)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (c == NULL || gvr == NULL || obj == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_create: NULL argument");
    }
    const char *wns = NULL;
    ait_status st = write_ns(gvr, ns, obj, &wns, err);
    if (st != AIT_OK) {
        return st;
    }
    char *path = ait_rest_path(gvr, wns, NULL, NULL);
    st = send_object(c, "POST", path, obj, out, err);
    ait_free(path);
    return st;
}

ait_status ait_rest_update(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                           const char *subresource, json_object *obj, json_object **out,
                           ait_error *err)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (c == NULL || gvr == NULL || obj == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_update: NULL argument");
    }
    if (name == NULL) {
        name = ait_json_str(obj, "metadata.name");
    }
    if (name == NULL || name[0] == '\0') {
        return ait_error_set(err, AIT_ERR_INVALID, "updating %s needs a name", gvr->resource);
    }
    const char *wns = NULL;
    ait_status st = write_ns(gvr, ns, obj, &wns, err);
    if (st != AIT_OK) {
        return st;
    }
    char *path = ait_rest_path(gvr, wns, name, subresource);
    st = send_object(c, "PUT", path, obj, out, err);
    ait_free(path);
    return st;
}

ait_status ait_rest_patch(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                          ait_patch_type type, const char *patch, const ait_patch_options *opts,
                          json_object **out, ait_error *err)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (c == NULL || gvr == NULL || name == NULL || patch == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_patch: NULL argument");
    }
    if (gvr->namespaced && (ns == NULL || ns[0] == '\0')) {
        return ait_error_set(err, AIT_ERR_INVALID, "patching %s needs a namespace", gvr->resource);
    }
    const char *ct;
    switch (type) {
    case AIT_PATCH_MERGE:
        ct = "application/merge-patch+json";
        break;
    case AIT_PATCH_JSON:
        ct = "application/json-patch+json";
        break;
    case AIT_PATCH_APPLY:
        ct = "application/apply-patch+yaml";
        break;
    default:
        return ait_error_set(err, AIT_ERR_INVALID, "unknown patch type %d", (int)type);
    }
    ait_buf q;
    ait_buf_init(&q, 0);
    const char *fm = opts != NULL ? opts->field_manager : NULL;
    if (type == AIT_PATCH_APPLY) {
        query_add(&q, "fieldManager", fm != NULL && fm[0] != '\0' ? fm : "aitask-controller");
        if (opts != NULL && opts->force) {
            query_add(&q, "force", "true");
        }
    } else if (fm != NULL && fm[0] != '\0') {
        query_add(&q, "fieldManager", fm);
    }
    char *path = ait_rest_path(gvr, ns, name, opts != NULL ? opts->subresource : NULL);
    ait_status st =
        do_request(c, "PATCH", path, ait_buf_str(&q), ct, patch, strlen(patch), out, NULL, err);
    ait_free(path);
    ait_buf_free(&q);
    return st;
}

ait_status ait_rest_delete(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                           const ait_delete_options *opts, ait_error *err)
{
    if (c == NULL || gvr == NULL || name == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_delete: NULL argument");
    }
    if (gvr->namespaced && (ns == NULL || ns[0] == '\0')) {
        return ait_error_set(err, AIT_ERR_INVALID, "deleting %s needs a namespace", gvr->resource);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("DeleteOptions"));
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    if (opts != NULL) {
        if (opts->propagation != NULL) {
            json_object_object_add(o, "propagationPolicy",
                                   json_object_new_string(opts->propagation));
        }
        if (opts->grace_period_seconds >= 0) {
            json_object_object_add(o, "gracePeriodSeconds",
                                   json_object_new_int64(opts->grace_period_seconds));
        }
        if (opts->precondition_uid != NULL || opts->precondition_rv != NULL) {
            json_object *pre = json_object_new_object();
            if (opts->precondition_uid != NULL) {
                json_object_object_add(pre, "uid", json_object_new_string(opts->precondition_uid));
            }
            if (opts->precondition_rv != NULL) {
                json_object_object_add(pre, "resourceVersion",
                                       json_object_new_string(opts->precondition_rv));
            }
            json_object_object_add(o, "preconditions", pre);
        }
    }
    size_t len = 0;
    const char *body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    char *path = ait_rest_path(gvr, ns, name, NULL);
    ait_status st =
        do_request(c, "DELETE", path, NULL, "application/json", body, len, NULL, NULL, err);
    ait_free(path);
    json_object_put(o);
    return st;
}

typedef struct stream_shim {
    ait_stream_cb on_data;
    void *cb_ctx;
    const long *status;
    ait_buf errbody;
} stream_shim;

/* Forwards 2xx bodies to the caller; keeps the start of an error body for decoding. */
static int stream_shim_cb(void *ctx, const char *data, size_t len)
{
    stream_shim *s = ctx;
    long st = *s->status;
    if (st >= 200 && st < 300) {
        return s->on_data(s->cb_ctx, data, len);
    }
    size_t room = s->errbody.max - s->errbody.len;
    if (ait_buf_append(&s->errbody, data, len < room ? len : room) != AIT_OK || len >= room) {
        return 1;
    }
    return 0;
}

ait_status ait_rest_stream(ait_rest *c, const char *path, const char *query, ait_stream_cb on_data,
                           void *cb_ctx, const volatile int *cancel, long *status_out,
                           ait_error *err)
{
    long status = 0;
    if (status_out != NULL) {
        *status_out = 0;
    }
    if (c == NULL || path == NULL || on_data == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_rest_stream: NULL argument");
    }
    if (c->tr->stream == NULL) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "the transport cannot stream");
    }
    char *url = make_url(c, path, query);
    stream_shim shim = {on_data, cb_ctx, &status, {0}};
    ait_buf_init(&shim.errbody, REST_ERROR_BODY_MAX);
    ait_ratelimit_wait(c->rl);
    ait_error terr = {0};
    int64_t t0 = ait_time_mono_ns();
    ait_status st = c->tr->stream(c->tr->ctx, url, AIT_REST_STREAM_IDLE_MS, stream_shim_cb, &shim,
                                  cancel, &status, &terr);
    if (c->observe != NULL) {
        c->observe(c->observe_ctx, "WATCH", status, ait_time_mono_ns() - t0);
    }
    if (status_out != NULL) {
        *status_out = status;
    }
    if (status != 0 && (status < 200 || status >= 300)) {
        /* The error body decides, even when the transport stopped early on it. */
        st = ait_rest_decode_status(status, shim.errbody.data, shim.errbody.len, err);
        if (st == AIT_OK) {
            st = AIT_ERR_INTERNAL;
        }
    } else if (st != AIT_OK) {
        if (err != NULL) {
            *err = terr;
            err->code = st;
            err->http_status = (int)status;
        }
        if (st != AIT_ERR_CANCELLED) {
            ait_error_wrap(err, "watch %s", path);
        }
    } else if (status == 0) {
        st = ait_error_set(err, AIT_ERR_IO, "watch %s: no HTTP answer", path);
    }
    ait_buf_free(&shim.errbody);
    ait_free(url);
    return st;
}

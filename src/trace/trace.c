/* SPDX-License-Identifier: Apache-2.0 */
/* The OTLP/HTTP JSON trace exporter behind trace.h. Invariants: ait_span_end never blocks on the
 * network (it only takes the queue mutex); the queue holds at most queue_max spans; only the
 * exporter thread touches the transport; every span that is not exported is counted as dropped
 * exactly once. */
#include "trace/trace.h"

#include <openssl/evp.h>

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"
#include "core/log.h"
#include "core/version.h"

#define SCOPE_NAME "aitask-operator"
#define MAX_ATTRS 128
#define MAX_EVENTS 128
#define MAX_VALUE_LEN 4096
#define RESP_MAX (64 * 1024)
#define BACKOFF_CAP_MS 5000
#define RETRY_AFTER_CAP_MS 30000
#define DEFAULT_SHUTDOWN_MS 5000

typedef enum attr_type { ATTR_STR, ATTR_INT, ATTR_BOOL, ATTR_DOUBLE } attr_type;

typedef struct attr {
    char *key;
    attr_type type;
    union {
        char *s;
        int64_t i;
        int b;
        double d;
    } v;
} attr;

typedef struct attr_list {
    attr *items;
    size_t n, cap;
    uint32_t dropped;
} attr_list;

typedef struct event {
    char *name;
    int64_t time_ns;
    attr_list attrs;
} event;

struct ait_span {
    ait_tracer *t;
    ait_span *next; /* queue link */
    char *name;
    ait_span_kind kind;
    ait_span_ctx ctx;
    char parent_span_id[17];
    int recording;
    int64_t start_ns;   /* wall clock */
    int64_t start_mono; /* the duration comes from the monotonic clock */
    int64_t end_ns;
    attr_list attrs;
    event *events;
    size_t nevents, capevents;
    uint32_t dropped_events;
    ait_span_status status;
    char *status_msg;
};

typedef struct curl_transport {
    CURL *curl;
    char *ca_file;
    struct ait_tracer *tracer; /* for the shutdown deadline */
} curl_transport;

struct ait_tracer {
    int enabled;
    char *url;
    char **headers; /* "Name: value", NULL-terminated; secret values, never logged */
    attr_list resource;
    ait_trace_sampler sampler;
    double ratio;
    size_t queue_max, batch_max;
    int64_t interval_ms, export_timeout_ms, backoff_ms;
    int max_retries;
    ait_trace_drop_cb on_drop;
    void *on_drop_ctx;
    const ait_clock *clock;
    ait_trace_transport transport;
    curl_transport curl;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* the exporter waits here */
    pthread_cond_t done; /* flush waiters wait here */
    ait_span *head, *tail;
    size_t qlen;
    int stopping, stopped, thread_running;
    int64_t stop_deadline; /* monotonic ns */
    uint64_t flush_req, flush_done;
    pthread_t thread;

    _Atomic uint64_t started, exported, dropped, requests;
};

/* ---- small helpers ---- */

static int64_t mono_now(void)
{
    return ait_time_mono_ns();
}

static void abs_timespec(int64_t mono_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ns / AIT_NS_PER_S);
    ts->tv_nsec = (long)(mono_ns % AIT_NS_PER_S);
}

static int is_hex_lower(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
        nonzero |= c != '0';
    }
    return nonzero;
}

static void random_hex(char *out, size_t nbytes)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char b[16];
    ait_assert(nbytes <= sizeof(b));
    int nonzero = 0;
    while (!nonzero) {
        ait_assert(RAND_bytes(b, (int)nbytes) == 1);
        for (size_t i = 0; i < nbytes; i++) {
            nonzero |= b[i] != 0;
        }
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

/* Copies at most max bytes of s as valid UTF-8: invalid bytes become U+FFFD and a sequence is
 * never cut in half. The collector's JSON decoder rejects invalid UTF-8 in a whole request. */
static char *dup_utf8(const char *s, size_t max)
{
    if (s == NULL) {
        s = "";
    }
    size_t len = strlen(s);
    char *out = ait_malloc(len * 3 + 1);
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            n = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        }
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                ok = 0;
            } else {
                cp = (cp << 6) | (p[i + k] & 0x3f);
            }
        }
        if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
                   cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) {
            ok = 0;
        }
        const char *src = (const char *)p + i;
        size_t srclen = n;
        if (!ok) {
            src = "\xef\xbf\xbd";
            srclen = 3;
            n = 1;
        }
        if (o + srclen > max) {
            break;
        }
        memcpy(out + o, src, srclen);
        o += srclen;
        i += n;
    }
    out[o] = '\0';
    return out;
}

/* ---- attribute lists ---- */

static void attr_clear(attr *a)
{
    if (a->type == ATTR_STR) {
        ait_free(a->v.s);
    }
    a->v.s = NULL;
}

static void attrs_free(attr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ait_free(l->items[i].key);
        attr_clear(&l->items[i]);
    }
    ait_free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Returns the slot for key (existing one cleared, or a new one), NULL when the list is full. */
static attr *attrs_slot(attr_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            attr_clear(&l->items[i]);
            return &l->items[i];
        }
    }
    if (l->n >= MAX_ATTRS) {
        l->dropped++;
        return NULL;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = ait_realloc(l->items, l->cap * sizeof(*l->items));
    }
    attr *a = &l->items[l->n++];
    memset(a, 0, sizeof(*a));
    a->key = dup_utf8(key, MAX_VALUE_LEN);
    return a;
}

static void attrs_set_str(attr_list *l, const char *key, const char *value)
{
    attr *a = key ? attrs_slot(l, key) : NULL;
    if (a != NULL) {
        a->type = ATTR_STR;
        a->v.s = dup_utf8(value, MAX_VALUE_LEN);
    }
}

/* ---- sampling ---- */

int ait_trace_sample(ait_trace_sampler sampler, double ratio, const char *trace_id_hex,
                     int parent_sampled)
{
    switch (sampler) {
    case AIT_SAMPLER_ALWAYS_ON:
        return 1;
    case AIT_SAMPLER_ALWAYS_OFF:
        return 0;
    case AIT_SAMPLER_PARENTBASED_ALWAYS_ON:
        return parent_sampled < 0 ? 1 : parent_sampled != 0;
    case AIT_SAMPLER_PARENTBASED_ALWAYS_OFF:
        return parent_sampled < 0 ? 0 : parent_sampled != 0;
    case AIT_SAMPLER_PARENTBASED_TRACEIDRATIO:
        if (parent_sampled >= 0) {
            return parent_sampled != 0;
        }
        break;
    case AIT_SAMPLER_TRACEIDRATIO:
        break;
    }
    if (!(ratio > 0.0)) {
        return 0;
    }
    if (ratio >= 1.0) {
        return 1;
    }
    if (trace_id_hex == NULL || strlen(trace_id_hex) != 32) {
        return 0;
    }
    uint64_t x = 0;
    for (int i = 16; i < 32; i++) {
        char c = trace_id_hex[i];
        unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                     : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                              : 0u;
        x = (x << 4) | d;
    }
    uint64_t bound = (uint64_t)(ratio * 9223372036854775808.0); /* ratio * 2^63 */
    return (x >> 1) < bound;
}

/* ---- env parsing ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Trims spaces and tabs and percent-decodes s[0..n) into an owned string; NULL on a bad
 * escape. */
static char *trim_decode(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    char *out = ait_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                ait_free(out);
                return NULL;
            }
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0) {
                ait_free(out);
                return NULL;
            }
            out[o++] = (char)(a * 16 + b);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

int ait_trace_parse_kv_list(const char *value,
                            void (*cb)(void *ctx, const char *key, const char *value), void *ctx)
{
    int skipped = 0;
    if (value == NULL) {
        return 0;
    }
    const char *p = value;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        int blank = 1;
        for (size_t i = 0; i < n; i++) {
            blank &= p[i] == ' ' || p[i] == '\t';
        }
        if (!blank) {
            char *k = eq ? trim_decode(p, (size_t)(eq - p)) : NULL;
            char *v = eq ? trim_decode(eq + 1, n - (size_t)(eq - p) - 1) : NULL;
            if (k != NULL && v != NULL && k[0] != '\0') {
                cb(ctx, k, v);
            } else {
                skipped++;
            }
            ait_free(k);
            ait_free(v);
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return skipped;
}

static const char *env_first(const char *a, const char *b)
{
    const char *v = a ? getenv(a) : NULL;
    if (v != NULL && v[0] != '\0') {
        return v;
    }
    v = b ? getenv(b) : NULL;
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static int64_t env_int(const char *name, int64_t fallback, int64_t min)
{
    const char *v = env_first(name, NULL);
    if (v == NULL) {
        return fallback;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min) {
        AIT_LOG_ERROR("invalid value", "tracing: ignoring a bad variable", "name", name);
        return fallback;
    }
    return (int64_t)x;
}

static void resource_cb(void *ctx, const char *key, const char *value)
{
    attrs_set_str(ctx, key, value);
}

static int header_ok(const char *s, int name)
{
    if (name && s[0] == '\0') {
        return 0;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n' || c == 0x7f || (c < 0x20 && c != '\t') || (name && c <= ' ') ||
            (name && c == ':')) {
            return 0;
        }
    }
    return 1;
}

typedef struct header_acc {
    char **items;
    size_t n, cap;
    int bad;
} header_acc;

static void header_cb(void *ctx, const char *key, const char *value)
{
    header_acc *h = ctx;
    if (!header_ok(key, 1) || !header_ok(value, 0)) {
        h->bad++;
        return;
    }
    size_t klen = strlen(key);
    /* A later list (the traces one) overrides a header of the same name. */
    for (size_t i = 0; i < h->n; i++) {
        if (strncasecmp(h->items[i], key, klen) == 0 && h->items[i][klen] == ':') {
            ait_free(h->items[i]);
            h->items[i] = ait_asprintf("%s: %s", key, value);
            return;
        }
    }
    if (h->n + 2 > h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->items = ait_realloc(h->items, h->cap * sizeof(char *));
    }
    h->items[h->n++] = ait_asprintf("%s: %s", key, value);
    h->items[h->n] = NULL;
}

static int parse_sampler(const char *name, ait_trace_sampler *out)
{
    static const struct {
        const char *name;
        ait_trace_sampler s;
    } table[] = {
        {"always_on", AIT_SAMPLER_ALWAYS_ON},
        {"always_off", AIT_SAMPLER_ALWAYS_OFF},
        {"traceidratio", AIT_SAMPLER_TRACEIDRATIO},
        {"parentbased_always_on", AIT_SAMPLER_PARENTBASED_ALWAYS_ON},
        {"parentbased_always_off", AIT_SAMPLER_PARENTBASED_ALWAYS_OFF},
        {"parentbased_traceidratio", AIT_SAMPLER_PARENTBASED_TRACEIDRATIO},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcasecmp(name, table[i].name) == 0) {
            *out = table[i].s;
            return 1;
        }
    }
    return 0;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcasecmp(v, "true") == 0;
}

/* ---- libcurl transport ---- */

static size_t curl_write_cb(char *p, size_t size, size_t n, void *ud)
{
    ait_buf *b = ud;
    /* Past the bound the rest is ignored: only partialSuccess is read from it. */
    if (ait_buf_append(b, p, size * n) != AIT_OK) {
        return size * n;
    }
    return size * n;
}

/* Aborts a transfer still running when a shutdown deadline has passed, so shutdown keeps its
 * timeout even with a long per-request timeout. */
static int curl_progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    ait_tracer *t = ud;
    pthread_mutex_lock(&t->mu);
    int late = t->stopping && mono_now() >= t->stop_deadline;
    pthread_mutex_unlock(&t->mu);
    return late;
}

static ait_status curl_post(void *ctx, const char *url, const char *const *headers,
                            const char *body, size_t len, int64_t timeout_ms, long *http_status,
                            ait_buf *resp, int64_t *retry_after_ms)
{
    curl_transport *ct = ctx;
    *http_status = 0;
    *retry_after_ms = 0;
    if (ct->curl == NULL) {
        ct->curl = curl_easy_init();
        if (ct->curl == NULL) {
            return AIT_ERR_IO;
        }
    }
    CURL *c = ct->curl;
    curl_easy_reset(c);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "aitask-operator/" AIT_VERSION);
    if (ct->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, ct->ca_file);
    }
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, curl_progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, ct->tracer);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        return AIT_ERR_TIMEOUT;
    }
    if (rc != CURLE_OK) {
        return AIT_ERR_IO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, http_status);
    curl_off_t ra = 0;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
        *retry_after_ms = (int64_t)ra * 1000;
    }
    return AIT_OK;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- OTLP/JSON encoding ---- */

static json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static json_object *jnanos(int64_t ns)
{
    char b[32];
    snprintf(b, sizeof(b), "%" PRIu64, (uint64_t)(ns < 0 ? 0 : ns));
    return json_object_new_string(b);
}

static json_object *encode_attrs(const attr_list *l)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < l->n; i++) {
        const attr *a = &l->items[i];
        json_object *val = json_object_new_object();
        char b[32];
        switch (a->type) {
        case ATTR_STR:
            json_object_object_add(val, "stringValue", jstr(a->v.s));
            break;
        case ATTR_INT:
            /* ProtoJSON writes int64 as a decimal string. */
            snprintf(b, sizeof(b), "%" PRId64, a->v.i);
            json_object_object_add(val, "intValue", jstr(b));
            break;
        case ATTR_BOOL:
            json_object_object_add(val, "boolValue", json_object_new_boolean(a->v.b != 0));
            break;
        case ATTR_DOUBLE:
            if (isnan(a->v.d)) {
                json_object_object_add(val, "doubleValue", jstr("NaN"));
            } else if (isinf(a->v.d)) {
                json_object_object_add(val, "doubleValue",
                                       jstr(a->v.d > 0 ? "Infinity" : "-Infinity"));
            } else {
                json_object_object_add(val, "doubleValue", json_object_new_double(a->v.d));
            }
            break;
        }
        json_object *kv = json_object_new_object();
        json_object_object_add(kv, "key", jstr(a->key));
        json_object_object_add(kv, "value", val);
        json_object_array_add(arr, kv);
    }
    return arr;
}

static json_object *encode_span(const ait_span *s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "traceId", jstr(s->ctx.trace_id));
    json_object_object_add(o, "spanId", jstr(s->ctx.span_id));
    if (s->parent_span_id[0] != '\0') {
        json_object_object_add(o, "parentSpanId", jstr(s->parent_span_id));
    }
    json_object_object_add(o, "name", jstr(s->name));
    json_object_object_add(o, "kind", json_object_new_int((int)s->kind));
    json_object_object_add(o, "startTimeUnixNano", jnanos(s->start_ns));
    json_object_object_add(o, "endTimeUnixNano", jnanos(s->end_ns));
    json_object_object_add(o, "attributes", encode_attrs(&s->attrs));
    if (s->attrs.dropped > 0) {
        json_object_object_add(o, "droppedAttributesCount",
                               json_object_new_int64((int64_t)s->attrs.dropped));
    }
    json_object *events = json_object_new_array();
    for (size_t i = 0; i < s->nevents; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "timeUnixNano", jnanos(s->events[i].time_ns));
        json_object_object_add(e, "name", jstr(s->events[i].name));
        json_object_object_add(e, "attributes", encode_attrs(&s->events[i].attrs));
        json_object_array_add(events, e);
    }
    json_object_object_add(o, "events", events);
    if (s->dropped_events > 0) {
        json_object_object_add(o, "droppedEventsCount",
                               json_object_new_int64((int64_t)s->dropped_events));
    }
    json_object *st = json_object_new_object();
    json_object_object_add(st, "code", json_object_new_int((int)s->status));
    if (s->status_msg != NULL) {
        json_object_object_add(st, "message", jstr(s->status_msg));
    }
    json_object_object_add(o, "status", st);
    /* W3C trace flags in the low byte: sampled. */
    json_object_object_add(o, "flags", json_object_new_int(1));
    return o;
}

/* Returns the request body for n spans from list, owned (free with ait_free). */
static char *encode_request(const ait_tracer *t, ait_span *list, size_t *len)
{
    json_object *spans = json_object_new_array();
    for (ait_span *s = list; s != NULL; s = s->next) {
        json_object_array_add(spans, encode_span(s));
    }
    json_object *scope = json_object_new_object();
    json_object_object_add(scope, "name", jstr(SCOPE_NAME));
    json_object_object_add(scope, "version", jstr(AIT_VERSION));
    json_object *ss = json_object_new_object();
    json_object_object_add(ss, "scope", scope);
    json_object_object_add(ss, "spans", spans);
    json_object *ssa = json_object_new_array();
    json_object_array_add(ssa, ss);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "attributes", encode_attrs(&t->resource));
    json_object *rs = json_object_new_object();
    json_object_object_add(rs, "resource", res);
    json_object_object_add(rs, "scopeSpans", ssa);
    json_object *rsa = json_object_new_array();
    json_object_array_add(rsa, rs);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "resourceSpans", rsa);
    size_t n = 0;
    const char *txt = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    char *out = ait_strndup(txt, n);
    *len = n;
    json_object_put(root);
    return out;
}

/* ---- spans ---- */

static void span_free(ait_span *s)
{
    if (s == NULL) {
        return;
    }
    ait_free(s->name);
    attrs_free(&s->attrs);
    for (size_t i = 0; i < s->nevents; i++) {
        ait_free(s->events[i].name);
        attrs_free(&s->events[i].attrs);
    }
    ait_free(s->events);
    ait_free(s->status_msg);
    ait_free(s);
}

static void count_dropped(ait_tracer *t, uint64_t n)
{
    if (n == 0) {
        return;
    }
    atomic_fetch_add(&t->dropped, n);
    if (t->on_drop != NULL) {
        t->on_drop(t->on_drop_ctx, n);
    }
}

static ait_span *span_new(ait_tracer *t, const char *name, ait_span_kind kind, const char *trace_id,
                          const char *parent_id, int sampled)
{
    ait_span *s = ait_calloc(1, sizeof(*s));
    s->t = t;
    s->kind = kind;
    memcpy(s->ctx.trace_id, trace_id, 33);
    random_hex(s->ctx.span_id, 8);
    if (parent_id != NULL) {
        memcpy(s->parent_span_id, parent_id, 17);
    }
    s->ctx.sampled = sampled;
    s->recording = sampled;
    if (sampled) {
        s->name = dup_utf8(name, MAX_VALUE_LEN);
        s->start_ns = t->clock->now_ns(t->clock->ctx);
        s->start_mono = t->clock->mono_ns(t->clock->ctx);
        atomic_fetch_add(&t->started, 1);
    }
    return s;
}

ait_span *ait_span_start(ait_tracer *t, const char *name, ait_span_kind kind,
                         const ait_span_ctx *parent)
{
    if (t == NULL || !t->enabled) {
        return NULL;
    }
    if (parent != NULL && ait_span_ctx_valid(parent)) {
        int sampled = ait_trace_sample(t->sampler, t->ratio, parent->trace_id, parent->sampled);
        return span_new(t, name, kind, parent->trace_id, parent->span_id, sampled);
    }
    char trace_id[33];
    random_hex(trace_id, 16);
    return span_new(t, name, kind, trace_id, NULL,
                    ait_trace_sample(t->sampler, t->ratio, trace_id, -1));
}

ait_span *ait_span_start_in_trace(ait_tracer *t, const char *name, ait_span_kind kind,
                                  const char *trace_id_hex, const char *parent_span_id_hex)
{
    if (t == NULL || !t->enabled || trace_id_hex == NULL || strlen(trace_id_hex) != 32 ||
        !is_hex_lower(trace_id_hex, 32)) {
        return NULL;
    }
    if (parent_span_id_hex != NULL &&
        (strlen(parent_span_id_hex) != 16 || !is_hex_lower(parent_span_id_hex, 16))) {
        return NULL;
    }
    int sampled = ait_trace_sample(t->sampler, t->ratio, trace_id_hex, -1);
    return span_new(t, name, kind, trace_id_hex, parent_span_id_hex, sampled);
}

void ait_span_set_attr_str(ait_span *s, const char *key, const char *value)
{
    if (s != NULL && s->recording) {
        attrs_set_str(&s->attrs, key, value);
    }
}

void ait_span_set_attr_int(ait_span *s, const char *key, int64_t value)
{
    attr *a = (s != NULL && s->recording && key) ? attrs_slot(&s->attrs, key) : NULL;
    if (a != NULL) {
        a->type = ATTR_INT;
        a->v.i = value;
    }
}

void ait_span_set_attr_bool(ait_span *s, const char *key, int value)
{
    attr *a = (s != NULL && s->recording && key) ? attrs_slot(&s->attrs, key) : NULL;
    if (a != NULL) {
        a->type = ATTR_BOOL;
        a->v.b = value != 0;
    }
}

void ait_span_set_attr_double(ait_span *s, const char *key, double value)
{
    attr *a = (s != NULL && s->recording && key) ? attrs_slot(&s->attrs, key) : NULL;
    if (a != NULL) {
        a->type = ATTR_DOUBLE;
        a->v.d = value;
    }
}

void ait_span_add_event(ait_span *s, const char *name, ...)
{
    if (s == NULL || !s->recording || name == NULL) {
        return;
    }
    if (s->nevents >= MAX_EVENTS) {
        s->dropped_events++;
        return;
    }
    if (s->nevents == s->capevents) {
        s->capevents = s->capevents ? s->capevents * 2 : 4;
        s->events = ait_realloc(s->events, s->capevents * sizeof(*s->events));
    }
    event *e = &s->events[s->nevents++];
    memset(e, 0, sizeof(*e));
    e->name = dup_utf8(name, MAX_VALUE_LEN);
    e->time_ns = s->start_ns + (s->t->clock->mono_ns(s->t->clock->ctx) - s->start_mono);
    va_list ap;
    va_start(ap, name);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) {
            break;
        }
        const char *v = va_arg(ap, const char *);
        attrs_set_str(&e->attrs, k, v);
    }
    va_end(ap);
}

void ait_span_set_status(ait_span *s, ait_span_status code, const char *msg)
{
    if (s == NULL || !s->recording) {
        return;
    }
    s->status = code;
    ait_free(s->status_msg);
    /* OTLP: the message is only meaningful with ERROR. */
    s->status_msg =
        (code == AIT_SPAN_STATUS_ERROR && msg != NULL) ? dup_utf8(msg, MAX_VALUE_LEN) : NULL;
}

void ait_span_set_error(ait_span *s, const char *msg)
{
    ait_span_set_status(s, AIT_SPAN_STATUS_ERROR, msg);
}

ait_span_ctx ait_span_context(const ait_span *s)
{
    ait_span_ctx c;
    memset(&c, 0, sizeof(c));
    if (s != NULL) {
        c = s->ctx;
    }
    return c;
}

void ait_span_set_span_id(ait_span *s, const char *span_id_hex)
{
    if (s == NULL || span_id_hex == NULL || strlen(span_id_hex) != 16 ||
        !is_hex_lower(span_id_hex, 16)) {
        return;
    }
    memcpy(s->ctx.span_id, span_id_hex, 17);
}

void ait_trace_derive_id(const char *seed, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(seed, strlen(seed), md, &n, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    if (len > 32) {
        len = 32;
    }
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
}

void ait_span_end_at(ait_span *s, int64_t start_ns, int64_t end_ns)
{
    if (s == NULL) {
        return;
    }
    if (s->recording) {
        if (end_ns < start_ns) {
            end_ns = start_ns;
        }
        /* ait_span_end measures end - start on the monotonic clock: shift the start so the
         * measured duration is exactly end_ns - start_ns. */
        s->start_ns = start_ns;
        s->start_mono = s->t->clock->mono_ns(s->t->clock->ctx) - (end_ns - start_ns);
    }
    ait_span_end(s);
}

void ait_span_end(ait_span *s)
{
    if (s == NULL) {
        return;
    }
    if (!s->recording) {
        span_free(s);
        return;
    }
    ait_tracer *t = s->t;
    s->end_ns = s->start_ns + (t->clock->mono_ns(t->clock->ctx) - s->start_mono);
    if (s->end_ns < s->start_ns) {
        s->end_ns = s->start_ns;
    }
    int drop = 0;
    pthread_mutex_lock(&t->mu);
    if (t->stopping || t->qlen >= t->queue_max) {
        drop = 1;
    } else {
        s->next = NULL;
        if (t->tail != NULL) {
            t->tail->next = s;
        } else {
            t->head = s;
        }
        t->tail = s;
        t->qlen++;
        if (t->qlen == t->batch_max) {
            pthread_cond_signal(&t->wake);
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (drop) {
        span_free(s);
        count_dropped(t, 1);
    }
}

/* ---- span contexts and traceparent ---- */

int ait_span_ctx_valid(const ait_span_ctx *ctx)
{
    return ctx != NULL && strlen(ctx->trace_id) == 32 && is_hex_lower(ctx->trace_id, 32) &&
           strlen(ctx->span_id) == 16 && is_hex_lower(ctx->span_id, 16);
}

void ait_trace_new_trace_id(char out[33])
{
    random_hex(out, 16);
}

ait_status ait_traceparent_format(const ait_span_ctx *ctx, char *buf, size_t size)
{
    if (!ait_span_ctx_valid(ctx) || buf == NULL || size < 56) {
        return AIT_ERR_INVALID;
    }
    snprintf(buf, size, "00-%s-%s-%s", ctx->trace_id, ctx->span_id, ctx->sampled ? "01" : "00");
    return AIT_OK;
}

ait_status ait_traceparent_parse(const char *value, ait_span_ctx *out)
{
    if (value == NULL || out == NULL) {
        return AIT_ERR_PARSE;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t')) {
        n--;
    }
    /* version(2) - trace(32) - span(16) - flags(2) = 55 characters. */
    if (n < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') {
        return AIT_ERR_PARSE;
    }
    int v1 = hexval(value[0]), v2 = hexval(value[1]);
    int f1 = hexval(value[53]), f2 = hexval(value[54]);
    if (v1 < 0 || v2 < 0 || f1 < 0 || f2 < 0 || isupper((unsigned char)value[0]) ||
        isupper((unsigned char)value[1]) || isupper((unsigned char)value[53]) ||
        isupper((unsigned char)value[54])) {
        return AIT_ERR_PARSE;
    }
    int version = v1 * 16 + v2;
    if (version == 0xff || (version == 0 && n != 55) ||
        (version > 0 && n > 55 && value[55] != '-')) {
        return AIT_ERR_PARSE;
    }
    if (!is_hex_lower(value + 3, 32) || !is_hex_lower(value + 36, 16)) {
        return AIT_ERR_PARSE;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->trace_id, value + 3, 32);
    memcpy(out->span_id, value + 36, 16);
    out->sampled = (f2 & 1) != 0;
    return AIT_OK;
}

static _Thread_local ait_span_ctx tl_current;
static _Thread_local int tl_current_set;

const ait_span_ctx *ait_trace_current(void)
{
    return tl_current_set ? &tl_current : NULL;
}

void ait_trace_set_current(const ait_span_ctx *ctx)
{
    if (ctx == NULL || !ait_span_ctx_valid(ctx)) {
        tl_current_set = 0;
        memset(&tl_current, 0, sizeof(tl_current));
        return;
    }
    tl_current = *ctx;
    tl_current_set = 1;
}

/* ---- the exporter thread ---- */

/* Waits on the wake condition until the monotonic deadline (or a broadcast). Locked. */
static void wait_until(ait_tracer *t, int64_t deadline)
{
    struct timespec ts;
    abs_timespec(deadline, &ts);
    pthread_cond_timedwait(&t->wake, &t->mu, &ts);
}

/* Reads partialSuccess.rejectedSpans from an OTLP answer (0 when absent). */
static uint64_t rejected_spans(const ait_buf *resp)
{
    if (resp->len == 0) {
        return 0;
    }
    json_object *o = NULL;
    if (ait_json_parse(resp->data, resp->len, &o, NULL) != AIT_OK) {
        return 0;
    }
    int64_t r = ait_json_int(o, "partialSuccess.rejectedSpans", 0);
    json_object_put(o);
    return r > 0 ? (uint64_t)r : 0;
}

/* Sends one batch with retries. Called without the lock. */
static void export_batch(ait_tracer *t, ait_span *list, size_t n)
{
    size_t len = 0;
    char *body = encode_request(t, list, &len);
    int64_t backoff = t->backoff_ms;
    int attempt = 0;
    const char *why = NULL;
    long code = 0;
    for (;;) {
        int64_t timeout = t->export_timeout_ms;
        pthread_mutex_lock(&t->mu);
        int stopping = t->stopping;
        int64_t deadline = t->stop_deadline;
        pthread_mutex_unlock(&t->mu);
        if (stopping) {
            int64_t left = (deadline - mono_now()) / AIT_NS_PER_MS;
            if (left <= 0) {
                why = "shutdown deadline passed";
                break;
            }
            if (left < timeout) {
                timeout = left;
            }
        }
        ait_buf resp;
        ait_buf_init(&resp, RESP_MAX);
        int64_t retry_after = 0;
        code = 0;
        atomic_fetch_add(&t->requests, 1);
        ait_status st = t->transport.post(t->transport.ctx, t->url, (const char *const *)t->headers,
                                          body, len, timeout, &code, &resp, &retry_after);
        int retry = 0;
        if (st != AIT_OK) {
            why = st == AIT_ERR_TIMEOUT ? "timeout" : "connection failed";
            retry = 1;
        } else if (code >= 200 && code < 300) {
            uint64_t rej = rejected_spans(&resp);
            if (rej > n) {
                rej = n;
            }
            ait_buf_free(&resp);
            atomic_fetch_add(&t->exported, (uint64_t)n - rej);
            if (rej > 0) {
                AIT_LOG_ERROR("partial success", "tracing: the receiver rejected spans");
                count_dropped(t, rej);
            }
            ait_free(body);
            return;
        } else if (code == 429 || code >= 500) {
            why = "retryable HTTP status";
            retry = 1;
        } else {
            why = "HTTP status not retryable";
        }
        ait_buf_free(&resp);
        if (!retry || attempt >= t->max_retries) {
            break;
        }
        attempt++;
        /* Full jitter over [backoff/2, backoff], or the server's Retry-After when longer. */
        unsigned char r = 0;
        if (RAND_bytes(&r, 1) != 1) {
            r = 128;
        }
        int64_t wait = backoff / 2 + (backoff / 2) * r / 255;
        if (retry_after > wait) {
            wait = retry_after < RETRY_AFTER_CAP_MS ? retry_after : RETRY_AFTER_CAP_MS;
        }
        backoff = backoff * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff * 2;
        int64_t until = mono_now() + wait * AIT_NS_PER_MS;
        pthread_mutex_lock(&t->mu);
        while (mono_now() < until) {
            int64_t d = until;
            if (t->stopping) {
                if (mono_now() >= t->stop_deadline) {
                    break;
                }
                d = t->stop_deadline < until ? t->stop_deadline : until;
            }
            wait_until(t, d);
        }
        pthread_mutex_unlock(&t->mu);
    }
    ait_free(body);
    char codebuf[16], nbuf[24], abuf[16];
    snprintf(codebuf, sizeof(codebuf), "%ld", code);
    snprintf(nbuf, sizeof(nbuf), "%zu", n);
    snprintf(abuf, sizeof(abuf), "%d", attempt + 1);
    AIT_LOG_ERROR(why, "tracing: dropping a batch of spans", "status", codebuf, "spans", nbuf,
                  "attempts", abuf);
    count_dropped(t, n);
}

static void *exporter_main(void *arg)
{
    ait_tracer *t = arg;
    pthread_mutex_lock(&t->mu);
    int64_t next = mono_now() + t->interval_ms * AIT_NS_PER_MS;
    for (;;) {
        while (!t->stopping && t->qlen < t->batch_max && t->flush_req == t->flush_done &&
               mono_now() < next) {
            wait_until(t, next);
        }
        if (t->qlen == 0) {
            if (t->flush_done != t->flush_req) {
                t->flush_done = t->flush_req;
                pthread_cond_broadcast(&t->done);
            }
            if (t->stopping) {
                break;
            }
            next = mono_now() + t->interval_ms * AIT_NS_PER_MS;
            continue;
        }
        if (t->stopping && mono_now() >= t->stop_deadline) {
            /* Out of time: everything left is dropped and counted. */
            size_t n = t->qlen;
            ait_span *list = t->head;
            t->head = t->tail = NULL;
            t->qlen = 0;
            pthread_mutex_unlock(&t->mu);
            while (list != NULL) {
                ait_span *nx = list->next;
                span_free(list);
                list = nx;
            }
            count_dropped(t, n);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        ait_span *list = t->head, *last = t->head;
        size_t n = 1;
        while (n < t->batch_max && last->next != NULL) {
            last = last->next;
            n++;
        }
        t->head = last->next;
        if (t->head == NULL) {
            t->tail = NULL;
        }
        last->next = NULL;
        t->qlen -= n;
        pthread_mutex_unlock(&t->mu);
        export_batch(t, list, n);
        while (list != NULL) {
            ait_span *nx = list->next;
            span_free(list);
            list = nx;
        }
        pthread_mutex_lock(&t->mu);
        if (t->qlen < t->batch_max) {
            next = mono_now() + t->interval_ms * AIT_NS_PER_MS;
        }
    }
    pthread_cond_broadcast(&t->done);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- the tracer ---- */

int ait_tracer_enabled(const ait_tracer *t)
{
    return t != NULL && t->enabled;
}

static void tracer_destroy(ait_tracer *t)
{
    ait_free(t->url);
    for (size_t i = 0; t->headers != NULL && t->headers[i] != NULL; i++) {
        ait_free(t->headers[i]);
    }
    ait_free(t->headers);
    attrs_free(&t->resource);
    if (t->curl.curl != NULL) {
        curl_easy_cleanup(t->curl.curl);
    }
    ait_free(t->curl.ca_file);
    if (t->enabled) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->done);
    }
    ait_free(t);
}

static char *endpoint_from_env(void)
{
    const char *v = env_first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", NULL);
    if (v != NULL) {
        return ait_strdup(v);
    }
    v = env_first("OTEL_EXPORTER_OTLP_ENDPOINT", NULL);
    if (v == NULL) {
        return NULL;
    }
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/') {
        n--;
    }
    return ait_asprintf("%.*s/v1/traces", (int)n, v);
}

ait_status ait_tracer_new_from_env(const ait_trace_options *opts, ait_tracer **out, ait_error *err)
{
    static const ait_trace_options none;
    if (opts == NULL) {
        opts = &none;
    }
    *out = NULL;
    ait_tracer *t = ait_calloc(1, sizeof(*t));
    t->clock = opts->clock ? opts->clock : ait_clock_system();
    t->on_drop = opts->on_drop;
    t->on_drop_ctx = opts->on_drop_ctx;
    const char *exporter = getenv("OTEL_TRACES_EXPORTER");
    int off =
        env_true("OTEL_SDK_DISABLED") || (exporter != NULL && strcasecmp(exporter, "none") == 0);
    t->url = off ? NULL : endpoint_from_env();
    if (t->url == NULL) {
        *out = t; /* disabled: nothing else to set up */
        return AIT_OK;
    }
    if (strncasecmp(t->url, "http://", 7) != 0 && strncasecmp(t->url, "https://", 8) != 0) {
        ait_error_set(err, AIT_ERR_INVALID, "tracing: the OTLP endpoint must be http(s)://");
        tracer_destroy(t);
        return AIT_ERR_INVALID;
    }
    if (exporter != NULL && strcasecmp(exporter, "otlp") != 0) {
        AIT_LOG_ERROR("unsupported", "tracing: OTEL_TRACES_EXPORTER other than otlp ignored");
    }
    const char *proto =
        env_first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");
    if (proto != NULL && strcmp(proto, "http/json") != 0) {
        AIT_LOG_ERROR("unsupported", "tracing: only the http/json OTLP protocol is spoken",
                      "protocol", proto);
    }

    /* Sampler. */
    t->sampler = AIT_SAMPLER_PARENTBASED_ALWAYS_ON;
    t->ratio = 1.0;
    const char *sv = env_first("OTEL_TRACES_SAMPLER", NULL);
    if (sv != NULL && !parse_sampler(sv, &t->sampler)) {
        AIT_LOG_ERROR("unsupported", "tracing: unknown OTEL_TRACES_SAMPLER, using the default",
                      "sampler", sv);
    }
    const char *arg = env_first("OTEL_TRACES_SAMPLER_ARG", NULL);
    if (arg != NULL && (t->sampler == AIT_SAMPLER_TRACEIDRATIO ||
                        t->sampler == AIT_SAMPLER_PARENTBASED_TRACEIDRATIO)) {
        char *end = NULL;
        errno = 0;
        double r = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0' || !(r >= 0.0 && r <= 1.0)) {
            AIT_LOG_ERROR("invalid value", "tracing: OTEL_TRACES_SAMPLER_ARG must be in [0, 1]",
                          "arg", arg);
        } else {
            t->ratio = r;
        }
    }

    /* Resource: service.name first, OTEL_SERVICE_NAME winning over the attribute list. */
    const char *svc = env_first("OTEL_SERVICE_NAME", NULL);
    attrs_set_str(&t->resource, "service.name",
                  opts->default_service_name ? opts->default_service_name : "aitask-operator");
    int bad =
        ait_trace_parse_kv_list(getenv("OTEL_RESOURCE_ATTRIBUTES"), resource_cb, &t->resource);
    if (bad > 0) {
        AIT_LOG_ERROR("invalid value", "tracing: skipped malformed OTEL_RESOURCE_ATTRIBUTES items");
    }
    if (svc != NULL) {
        attrs_set_str(&t->resource, "service.name", svc);
    }

    /* Headers: the generic list, then the traces one overriding it. Values are secrets. */
    header_acc h = {0};
    h.items = ait_calloc(1, sizeof(char *));
    h.cap = 1;
    int hb = ait_trace_parse_kv_list(getenv("OTEL_EXPORTER_OTLP_HEADERS"), header_cb, &h);
    hb += ait_trace_parse_kv_list(getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), header_cb, &h);
    if (hb + h.bad > 0) {
        AIT_LOG_ERROR("invalid value", "tracing: skipped malformed OTLP header items");
    }
    t->headers = h.items;

    t->curl.ca_file = ait_strdup(
        env_first("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"));
    int64_t otlp_timeout = env_int("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", -1, 1);
    if (otlp_timeout < 0) {
        otlp_timeout = env_int("OTEL_EXPORTER_OTLP_TIMEOUT", 10000, 1);
    }
    t->queue_max =
        opts->queue_max ? opts->queue_max : (size_t)env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1);
    t->batch_max = opts->batch_max ? opts->batch_max
                                   : (size_t)env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1);
    if (t->batch_max > t->queue_max) {
        t->batch_max = t->queue_max;
    }
    t->interval_ms =
        opts->interval_ms > 0 ? opts->interval_ms : env_int("OTEL_BSP_SCHEDULE_DELAY", 5000, 1);
    t->export_timeout_ms = opts->export_timeout_ms > 0 ? opts->export_timeout_ms : otlp_timeout;
    t->max_retries = opts->max_retries < 0 ? 0 : (opts->max_retries ? opts->max_retries : 5);
    t->backoff_ms = opts->backoff_ms > 0 ? opts->backoff_ms : 100;
    if (opts->transport != NULL) {
        t->transport = *opts->transport;
    } else {
        pthread_once(&curl_once, curl_global);
        t->curl.tracer = t;
        t->transport.ctx = &t->curl;
        t->transport.post = curl_post;
    }

    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_cond_init(&t->done, &ca);
    pthread_condattr_destroy(&ca);
    t->enabled = 1;
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        ait_error_set(err, AIT_ERR_INTERNAL, "tracing: cannot start the exporter thread");
        tracer_destroy(t);
        return AIT_ERR_INTERNAL;
    }
    t->thread_running = 1;
    char qb[24];
    snprintf(qb, sizeof(qb), "%zu", t->queue_max);
    AIT_LOG_INFO(1, "tracing: exporting spans over OTLP/HTTP JSON", "queueMax", qb);
    *out = t;
    return AIT_OK;
}

ait_status ait_tracer_flush(ait_tracer *t, int64_t timeout_ms)
{
    if (t == NULL || !t->enabled) {
        return AIT_OK;
    }
    int64_t deadline = mono_now() + timeout_ms * AIT_NS_PER_MS;
    struct timespec ts;
    abs_timespec(deadline, &ts);
    ait_status st = AIT_OK;
    pthread_mutex_lock(&t->mu);
    if (!t->stopped) {
        uint64_t want = ++t->flush_req;
        pthread_cond_signal(&t->wake);
        while (t->flush_done < want && !t->stopped) {
            if (pthread_cond_timedwait(&t->done, &t->mu, &ts) != 0 && mono_now() >= deadline) {
                st = t->flush_done >= want ? AIT_OK : AIT_ERR_TIMEOUT;
                break;
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

void ait_tracer_shutdown(ait_tracer *t, int64_t timeout_ms)
{
    if (t == NULL || !t->enabled) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    int join = t->thread_running && !t->stopping;
    if (!t->stopping) {
        t->stopping = 1;
        t->stop_deadline = mono_now() + (timeout_ms > 0 ? timeout_ms : 0) * AIT_NS_PER_MS;
        pthread_cond_broadcast(&t->wake);
    }
    pthread_mutex_unlock(&t->mu);
    if (join) {
        pthread_join(t->thread, NULL);
        pthread_mutex_lock(&t->mu);
        t->stopped = 1;
        t->thread_running = 0;
        pthread_cond_broadcast(&t->done);
        pthread_mutex_unlock(&t->mu);
    }
}

void ait_tracer_stats_get(const ait_tracer *t, ait_tracer_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (t == NULL || !t->enabled) {
        return;
    }
    ait_tracer *m = (ait_tracer *)t; /* the mutex is not part of the observable state */
    out->started = atomic_load(&m->started);
    out->exported = atomic_load(&m->exported);
    out->dropped = atomic_load(&m->dropped);
    out->requests = atomic_load(&m->requests);
    pthread_mutex_lock(&m->mu);
    out->queued = m->qlen;
    pthread_mutex_unlock(&m->mu);
}

void ait_tracer_free(ait_tracer *t)
{
    if (t == NULL) {
        return;
    }
    ait_tracer_shutdown(t, DEFAULT_SHUTDOWN_MS);
    if (t->enabled) {
        /* Spans ended after the thread left are freed here (none are queued after stopping). */
        ait_span *s = t->head;
        while (s != NULL) {
            ait_span *nx = s->next;
            span_free(s);
            s = nx;
        }
    }
    tracer_destroy(t);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/trace: the exact OTLP/JSON request (hex ids, decimal-string nanos, integer
 * enums, typed attribute values, events, status), sampler decisions, OTEL_* parsing, the bounded
 * queue and its drop counting, retries, traceparent round trips, the thread-local current span
 * and the disabled no-op mode. The HTTP seam records requests and plays scripted answers; one
 * test uses the real libcurl transport against a closed loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "trace/trace.h"

/* ---- a recording transport with scripted answers ---- */

#define MAX_REQ 64

typedef struct answer {
    ait_status st;
    long code;
    const char *body;
} answer;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nreq;
    char *url[MAX_REQ];
    char *body[MAX_REQ];
    char *headers[MAX_REQ]; /* joined with '\n' */
    answer script[MAX_REQ];
    int nscript;
    int gate_closed; /* post() waits while set */
    int inside;      /* post() calls waiting at the gate */
} recorder;

static ait_status rec_post(void *ctx, const char *url, const char *const *headers, const char *body,
                           size_t len, int64_t timeout_ms, long *http_status, ait_buf *resp,
                           int64_t *retry_after_ms)
{
    recorder *r = ctx;
    (void)timeout_ms;
    *retry_after_ms = 0;
    pthread_mutex_lock(&r->mu);
    r->inside++;
    pthread_cond_broadcast(&r->cv);
    while (r->gate_closed) {
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->inside--;
    int i = r->nreq++;
    assert_true(i < MAX_REQ);
    r->url[i] = ait_strdup(url);
    r->body[i] = ait_strndup(body, len);
    ait_buf h;
    ait_buf_init(&h, 0);
    for (size_t k = 0; headers != NULL && headers[k] != NULL; k++) {
        assert_int_equal(ait_buf_appendf(&h, "%s\n", headers[k]), AIT_OK);
    }
    r->headers[i] = ait_buf_take(&h);
    answer a = i < r->nscript ? r->script[i] : (answer){AIT_OK, 200, "{}"};
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    *http_status = a.code;
    if (a.body != NULL) {
        assert_int_equal(ait_buf_appends(resp, a.body), AIT_OK);
    }
    return a.st;
}

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_free(recorder *r)
{
    for (int i = 0; i < r->nreq; i++) {
        ait_free(r->url[i]);
        ait_free(r->body[i]);
        ait_free(r->headers[i]);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void drop_cb(void *ctx, uint64_t n)
{
    _Atomic uint64_t *c = ctx;
    atomic_fetch_add(c, n);
}

/* A fixed wall clock and a monotonic clock the test moves by hand. */
typedef struct fake_time {
    int64_t wall;
    _Atomic int64_t mono;
} fake_time;

static int64_t ft_now(void *ctx)
{
    return ((fake_time *)ctx)->wall;
}

static int64_t ft_mono(void *ctx)
{
    return atomic_load(&((fake_time *)ctx)->mono);
}

static void clear_env(void)
{
    static const char *vars[] = {"OTEL_EXPORTER_OTLP_ENDPOINT",
                                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                 "OTEL_SERVICE_NAME",
                                 "OTEL_RESOURCE_ATTRIBUTES",
                                 "OTEL_EXPORTER_OTLP_HEADERS",
                                 "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                 "OTEL_TRACES_SAMPLER",
                                 "OTEL_TRACES_SAMPLER_ARG",
                                 "OTEL_SDK_DISABLED",
                                 "OTEL_TRACES_EXPORTER",
                                 "OTEL_EXPORTER_OTLP_PROTOCOL",
                                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                 "OTEL_BSP_MAX_QUEUE_SIZE",
                                 "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                                 "OTEL_BSP_SCHEDULE_DELAY",
                                 "OTEL_EXPORTER_OTLP_TIMEOUT",
                                 "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
}

static ait_tracer *tracer_with(recorder *r, ait_trace_options *o)
{
    ait_trace_transport tr = {r, rec_post};
    static ait_trace_transport keep;
    keep = tr;
    o->transport = &keep;
    if (o->interval_ms == 0) {
        o->interval_ms = 60000; /* only flushes and full batches export */
    }
    ait_tracer *t = NULL;
    ait_error err;
    assert_int_equal(ait_tracer_new_from_env(o, &t, &err), AIT_OK);
    assert_true(ait_tracer_enabled(t));
    return t;
}

static json_object *parse_body(const char *body)
{
    json_object *o = NULL;
    assert_int_equal(ait_json_parse(body, strlen(body), &o, NULL), AIT_OK);
    return o;
}

static json_object *spans_of(json_object *root)
{
    json_object *rs = json_object_array_get_idx(ait_json_array(root, "resourceSpans"), 0);
    json_object *ss = json_object_array_get_idx(ait_json_array(rs, "scopeSpans"), 0);
    return ait_json_array(ss, "spans");
}

/* Returns the attribute value object for key in an OTLP attribute array, or NULL. */
static json_object *attr_value(json_object *attrs, const char *key)
{
    for (size_t i = 0; i < json_object_array_length(attrs); i++) {
        json_object *kv = json_object_array_get_idx(attrs, i);
        const char *k = ait_json_str(kv, "key");
        if (k != NULL && strcmp(k, key) == 0) {
            return ait_json_path(kv, "value");
        }
    }
    return NULL;
}

static json_object *span_named(json_object *spans, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        if (strcmp(ait_json_str(s, "name"), name) == 0) {
            return s;
        }
    }
    fail_msg("no span named %s", name);
    return NULL;
}

static int is_lower_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* ---- tests ---- */

static void test_disabled_is_noop(void **state)
{
    (void)state;
    clear_env();
    ait_tracer *t = NULL;
    assert_int_equal(ait_tracer_new_from_env(NULL, &t, NULL), AIT_OK);
    assert_non_null(t);
    assert_false(ait_tracer_enabled(t));
    ait_span *s = ait_span_start(t, "x", AIT_SPAN_KIND_INTERNAL, NULL);
    assert_null(s);
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL,
                                        "0af7651916cd43dd8448eb211c80319c", NULL));
    /* Every span call takes NULL. */
    ait_span_set_attr_str(s, "k", "v");
    ait_span_set_attr_int(s, "k", 1);
    ait_span_add_event(s, "e", "a", "b", NULL);
    ait_span_set_error(s, "boom");
    ait_span_ctx c = ait_span_context(s);
    assert_string_equal(c.trace_id, "");
    assert_false(ait_span_ctx_valid(&c));
    ait_span_end(s);
    assert_int_equal(ait_tracer_flush(t, 10), AIT_OK);
    ait_tracer_stats st;
    ait_tracer_stats_get(t, &st);
    assert_int_equal(st.started + st.exported + st.dropped + st.requests, 0);
    ait_tracer_free(t);
    ait_tracer_free(NULL);
    assert_false(ait_tracer_enabled(NULL));
    assert_null(ait_span_start(NULL, "x", AIT_SPAN_KIND_INTERNAL, NULL));

    /* An endpoint plus OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none stays off. */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_SDK_DISABLED", "true", 1);
    assert_int_equal(ait_tracer_new_from_env(NULL, &t, NULL), AIT_OK);
    assert_false(ait_tracer_enabled(t));
    ait_tracer_free(t);
    unsetenv("OTEL_SDK_DISABLED");
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    assert_int_equal(ait_tracer_new_from_env(NULL, &t, NULL), AIT_OK);
    assert_false(ait_tracer_enabled(t));
    ait_tracer_free(t);
    clear_env();
}

static void test_bad_endpoint(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://127.0.0.1:4318", 1);
    ait_tracer *t = (ait_tracer *)&t;
    ait_error err;
    assert_int_equal(ait_tracer_new_from_env(NULL, &t, &err), AIT_ERR_INVALID);
    assert_null(t);
    assert_int_equal(err.code, AIT_ERR_INVALID);
    clear_env();
}

static void test_json_encoding(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318/", 1);
    setenv("OTEL_SERVICE_NAME", "svc-a", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES",
           "service.name=ignored, deployment.environment = prod%20eu ,team=a%2Cb,broken,=x", 1);
    recorder r;
    rec_init(&r);
    fake_time ft = {INT64_C(1700000000123456789), 1000};
    ait_clock clk = {&ft, ft_now, ft_mono};
    ait_trace_options o = {0};
    o.clock = &clk;
    ait_tracer *t = tracer_with(&r, &o);

    ait_span *root = ait_span_start(t, "reconcile", AIT_SPAN_KIND_SERVER, NULL);
    assert_non_null(root);
    ait_span_set_attr_str(root, "k8s.namespace.name", "ns1");
    ait_span_set_attr_int(root, "attempt", INT64_C(9007199254740993)); /* > 2^53 */
    ait_span_set_attr_int(root, "neg", -5);
    ait_span_set_attr_bool(root, "healed", 1);
    ait_span_set_attr_double(root, "ratio", 0.25);
    ait_span_set_attr_str(root, "replaced", "first");
    ait_span_set_attr_str(root, "replaced", "second");
    ait_span_set_attr_str(root, "bad.utf8",
                          "a\xff"
                          "b");
    atomic_store(&ft.mono, 1000 + 500);
    ait_span_add_event(root, "pod.created", "pod", "p-1", "phase", "Pending", NULL);
    ait_span_ctx rc = ait_span_context(root);
    ait_span *child = ait_span_start(t, "provider.call", AIT_SPAN_KIND_CLIENT, &rc);
    ait_span_set_error(child, "HTTP 503 \"unavailable\"");
    atomic_store(&ft.mono, 1000 + 2000);
    ait_span_end(child);
    atomic_store(&ft.mono, 1000 + 3000);
    ait_span_end(root);
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);

    assert_int_equal(r.nreq, 1);
    assert_string_equal(r.url[0], "http://collector.example:4318/v1/traces");
    json_object *body = parse_body(r.body[0]);
    /* Resource: OTEL_SERVICE_NAME wins; values percent-decoded and trimmed; bad items skipped. */
    json_object *rs = json_object_array_get_idx(ait_json_array(body, "resourceSpans"), 0);
    json_object *rattrs = ait_json_array(rs, "resource.attributes");
    assert_int_equal(json_object_array_length(rattrs), 3);
    assert_string_equal(ait_json_str(attr_value(rattrs, "service.name"), "stringValue"), "svc-a");
    assert_string_equal(ait_json_str(attr_value(rattrs, "deployment.environment"), "stringValue"),
                        "prod eu");
    assert_string_equal(ait_json_str(attr_value(rattrs, "team"), "stringValue"), "a,b");
    json_object *ss = json_object_array_get_idx(ait_json_array(rs, "scopeSpans"), 0);
    assert_string_equal(ait_json_str(ss, "scope.name"), "aitask-operator");

    json_object *spans = spans_of(body);
    assert_int_equal(json_object_array_length(spans), 2);
    json_object *jr = span_named(spans, "reconcile");
    json_object *jc = span_named(spans, "provider.call");
    /* Ids: lowercase hex strings of 32 and 16 digits; the child carries the parent's. */
    assert_true(is_lower_hex(ait_json_str(jr, "traceId"), 32));
    assert_true(is_lower_hex(ait_json_str(jr, "spanId"), 16));
    assert_string_equal(ait_json_str(jr, "traceId"), rc.trace_id);
    assert_string_equal(ait_json_str(jr, "spanId"), rc.span_id);
    assert_null(ait_json_path(jr, "parentSpanId"));
    assert_string_equal(ait_json_str(jc, "traceId"), rc.trace_id);
    assert_string_equal(ait_json_str(jc, "parentSpanId"), rc.span_id);
    assert_string_not_equal(ait_json_str(jc, "spanId"), rc.span_id);
    /* Enums are JSON integers. */
    json_object *kind = ait_json_path(jr, "kind");
    assert_true(json_object_is_type(kind, json_type_int));
    assert_int_equal(json_object_get_int(kind), 2);
    assert_int_equal(json_object_get_int(ait_json_path(jc, "kind")), 3);
    json_object *code = ait_json_path(jc, "status.code");
    assert_true(json_object_is_type(code, json_type_int));
    assert_int_equal(json_object_get_int(code), 2);
    assert_string_equal(ait_json_str(jc, "status.message"), "HTTP 503 \"unavailable\"");
    assert_int_equal(json_object_get_int(ait_json_path(jr, "status.code")), 0);
    /* Times: decimal strings of the wall start plus the monotonic duration. */
    json_object *st = ait_json_path(jr, "startTimeUnixNano");
    assert_true(json_object_is_type(st, json_type_string));
    assert_string_equal(json_object_get_string(st), "1700000000123456789");
    assert_string_equal(ait_json_str(jr, "endTimeUnixNano"), "1700000000123459789");
    assert_string_equal(ait_json_str(jc, "startTimeUnixNano"), "1700000000123456789");
    assert_string_equal(ait_json_str(jc, "endTimeUnixNano"), "1700000000123458289");
    /* Attribute values: string, int as a decimal string, bool, double. */
    json_object *at = ait_json_array(jr, "attributes");
    assert_int_equal(json_object_array_length(at), 7);
    assert_string_equal(ait_json_str(attr_value(at, "k8s.namespace.name"), "stringValue"), "ns1");
    json_object *iv = ait_json_path(attr_value(at, "attempt"), "intValue");
    assert_true(json_object_is_type(iv, json_type_string));
    assert_string_equal(json_object_get_string(iv), "9007199254740993");
    assert_string_equal(ait_json_str(attr_value(at, "neg"), "intValue"), "-5");
    json_object *bv = ait_json_path(attr_value(at, "healed"), "boolValue");
    assert_true(json_object_is_type(bv, json_type_boolean));
    assert_true(json_object_get_boolean(bv));
    json_object *dv = ait_json_path(attr_value(at, "ratio"), "doubleValue");
    assert_true(json_object_is_type(dv, json_type_double));
    assert_true(json_object_get_double(dv) == 0.25);
    assert_string_equal(ait_json_str(attr_value(at, "replaced"), "stringValue"), "second");
    assert_string_equal(ait_json_str(attr_value(at, "bad.utf8"), "stringValue"), "a\xef\xbf\xbd"
                                                                                 "b");
    /* Event: time (string), name, string attributes. */
    json_object *ev = json_object_array_get_idx(ait_json_array(jr, "events"), 0);
    assert_int_equal(json_object_array_length(ait_json_array(jr, "events")), 1);
    assert_string_equal(ait_json_str(ev, "name"), "pod.created");
    assert_string_equal(ait_json_str(ev, "timeUnixNano"), "1700000000123457289");
    assert_string_equal(
        ait_json_str(attr_value(ait_json_array(ev, "attributes"), "phase"), "stringValue"),
        "Pending");
    json_object_put(body);

    ait_tracer_stats s;
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.started, 2);
    assert_int_equal(s.exported, 2);
    assert_int_equal(s.dropped, 0);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_attribute_limits(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://otel.example/custom/path", 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318", 1);
    recorder r;
    rec_init(&r);
    ait_trace_options o = {0};
    ait_tracer *t = tracer_with(&r, &o);
    ait_span *s = ait_span_start(t, "many", AIT_SPAN_KIND_INTERNAL, NULL);
    for (int i = 0; i < 130; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        ait_span_set_attr_int(s, k, i);
    }
    ait_span_end(s);
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 1);
    /* The traces endpoint is used as is. */
    assert_string_equal(r.url[0], "https://otel.example/custom/path");
    json_object *body = parse_body(r.body[0]);
    json_object *js = json_object_array_get_idx(spans_of(body), 0);
    assert_int_equal(json_object_array_length(ait_json_array(js, "attributes")), 128);
    assert_int_equal(ait_json_int(js, "droppedAttributesCount", 0), 2);
    json_object_put(body);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_headers(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS",
           "Authorization=Bearer%20tok%3D%3D, X-Tenant = t1,bad header=x,X-Evil=a%0d%0aInjected: 1",
           1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=t2", 1);
    recorder r;
    rec_init(&r);
    ait_trace_options o = {0};
    ait_tracer *t = tracer_with(&r, &o);
    ait_span_end(ait_span_start(t, "h", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 1);
    assert_string_equal(r.headers[0], "Authorization: Bearer tok==\nx-tenant: t2\n");
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

typedef struct kv_acc {
    char out[512];
} kv_acc;

static void kv_cb(void *ctx, const char *k, const char *v)
{
    kv_acc *a = ctx;
    size_t n = strlen(a->out);
    snprintf(a->out + n, sizeof(a->out) - n, "[%s]=[%s]", k, v);
}

static void test_kv_list(void **state)
{
    (void)state;
    kv_acc a = {{0}};
    assert_int_equal(
        ait_trace_parse_kv_list(" a=1 ,b = x%3Dy,, c=%zz,d, e=%4, f=%41%42,g=", kv_cb, &a), 3);
    assert_string_equal(a.out, "[a]=[1][b]=[x=y][f]=[AB][g]=[]");
    a.out[0] = '\0';
    assert_int_equal(ait_trace_parse_kv_list("", kv_cb, &a), 0);
    assert_int_equal(ait_trace_parse_kv_list(NULL, kv_cb, &a), 0);
    assert_string_equal(a.out, "");
}

static void test_sampler_decisions(void **state)
{
    (void)state;
    /* The low 8 bytes, big endian, >> 1, against ratio * 2^63. */
    const char *low = "ffffffffffffffff0000000000000001";  /* x>>1 = 0 */
    const char *mid = "00000000000000007fffffffffffffff";  /* x>>1 = 2^62 - 1 */
    const char *half = "00000000000000008000000000000000"; /* x>>1 = 2^62 */
    const char *high = "0000000000000000ffffffffffffffff";
    assert_true(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.5, low, -1));
    assert_true(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.5, mid, -1));
    assert_false(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.5, half, -1));
    assert_false(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.5, high, -1));
    assert_true(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 1.0, high, -1));
    assert_false(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.0, low, -1));
    /* traceidratio ignores the parent; parentbased follows it. */
    assert_false(ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.5, high, 1));
    assert_true(ait_trace_sample(AIT_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5, high, 1));
    assert_false(ait_trace_sample(AIT_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5, low, 0));
    assert_true(ait_trace_sample(AIT_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5, low, -1));
    assert_true(ait_trace_sample(AIT_SAMPLER_ALWAYS_ON, 0, high, 0));
    assert_false(ait_trace_sample(AIT_SAMPLER_ALWAYS_OFF, 1, low, 1));
    assert_true(ait_trace_sample(AIT_SAMPLER_PARENTBASED_ALWAYS_ON, 0, high, -1));
    assert_false(ait_trace_sample(AIT_SAMPLER_PARENTBASED_ALWAYS_ON, 0, high, 0));
    assert_false(ait_trace_sample(AIT_SAMPLER_PARENTBASED_ALWAYS_OFF, 0, high, -1));
    assert_true(ait_trace_sample(AIT_SAMPLER_PARENTBASED_ALWAYS_OFF, 0, high, 1));
    /* Over many random ids, a ratio of 0.25 samples about a quarter. */
    int hits = 0;
    for (int i = 0; i < 4000; i++) {
        char id[33];
        ait_trace_new_trace_id(id);
        hits += ait_trace_sample(AIT_SAMPLER_TRACEIDRATIO, 0.25, id, -1);
    }
    assert_in_range(hits, 800, 1200);
}

static void test_sampler_from_env(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.5", 1);
    recorder r;
    rec_init(&r);
    ait_trace_options o = {0};
    ait_tracer *t = tracer_with(&r, &o);
    /* Roots decide on the trace id; the same id decides the same way every time. */
    ait_span *a = ait_span_start_in_trace(t, "a", AIT_SPAN_KIND_INTERNAL,
                                          "00000000000000010000000000000001", NULL);
    ait_span *b = ait_span_start_in_trace(t, "b", AIT_SPAN_KIND_INTERNAL,
                                          "0000000000000001ffffffffffffffff", "00f067aa0ba902b7");
    ait_span_ctx ac = ait_span_context(a), bc = ait_span_context(b);
    assert_true(ac.sampled);
    assert_false(bc.sampled);
    /* A dropped span still has ids to propagate, with the flag cleared. */
    assert_true(ait_span_ctx_valid(&bc));
    assert_string_equal(bc.trace_id, "0000000000000001ffffffffffffffff");
    char tp[64];
    assert_int_equal(ait_traceparent_format(&bc, tp, sizeof(tp)), AIT_OK);
    assert_int_equal(strlen(tp), 55);
    assert_string_equal(tp + 53, "00");
    /* Children follow the parent's flag whatever their own trace id would say. */
    ait_span *bchild = ait_span_start(t, "bchild", AIT_SPAN_KIND_INTERNAL, &bc);
    assert_false(ait_span_context(bchild).sampled);
    ait_span_ctx forced = bc;
    forced.sampled = 1;
    ait_span *fchild = ait_span_start(t, "fchild", AIT_SPAN_KIND_INTERNAL, &forced);
    assert_true(ait_span_context(fchild).sampled);
    ait_span_set_attr_str(bchild, "ignored", "x"); /* non-recording: no-op */
    ait_span_end(bchild);
    ait_span_end(fchild);
    ait_span_end(b);
    ait_span_end(a);
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 1);
    json_object *body = parse_body(r.body[0]);
    json_object *spans = spans_of(body);
    assert_int_equal(json_object_array_length(spans), 2);
    span_named(spans, "a");
    json_object *f = span_named(spans, "fchild");
    assert_string_equal(ait_json_str(f, "parentSpanId"), bc.span_id);
    json_object_put(body);
    ait_tracer_stats s;
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.started, 2);
    ait_tracer_free(t);

    /* always_off: nothing is recorded; a bad ratio falls back to 1.0; unknown sampler -> the
     * default parentbased_always_on. */
    setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
    t = tracer_with(&r, &o);
    ait_span *off = ait_span_start(t, "off", AIT_SPAN_KIND_INTERNAL, NULL);
    assert_non_null(off);
    assert_false(ait_span_context(off).sampled);
    ait_span_end(off);
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.started, 0);
    ait_tracer_free(t);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
    t = tracer_with(&r, &o);
    ait_span *on = ait_span_start_in_trace(t, "on", AIT_SPAN_KIND_INTERNAL,
                                           "0000000000000001ffffffffffffffff", NULL);
    assert_true(ait_span_context(on).sampled);
    ait_span_end(on);
    ait_tracer_free(t);
    setenv("OTEL_TRACES_SAMPLER", "jaeger_remote", 1);
    t = tracer_with(&r, &o);
    ait_span *d = ait_span_start(t, "d", AIT_SPAN_KIND_INTERNAL, NULL);
    assert_true(ait_span_context(d).sampled);
    ait_span_end(d);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_start_in_trace(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    recorder r;
    rec_init(&r);
    ait_trace_options o = {0};
    ait_tracer *t = tracer_with(&r, &o);
    const char *tid = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL,
                                        "4BF92F3577B34DA6A3CE929D0E0E4736", NULL));
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL,
                                        "00000000000000000000000000000000", NULL));
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL, "4bf92f", NULL));
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL, tid, "00f067aa0ba902"));
    assert_null(ait_span_start_in_trace(t, "x", AIT_SPAN_KIND_INTERNAL, NULL, NULL));
    ait_span *s =
        ait_span_start_in_trace(t, "attempt", AIT_SPAN_KIND_INTERNAL, tid, "00f067aa0ba902b7");
    ait_span_ctx c = ait_span_context(s);
    assert_string_equal(c.trace_id, tid);
    assert_string_not_equal(c.span_id, "00f067aa0ba902b7");
    ait_span_end(s);
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    json_object *body = parse_body(r.body[0]);
    json_object *js = json_object_array_get_idx(spans_of(body), 0);
    assert_string_equal(ait_json_str(js, "traceId"), tid);
    assert_string_equal(ait_json_str(js, "parentSpanId"), "00f067aa0ba902b7");
    assert_string_equal(ait_json_str(js, "spanId"), c.span_id);
    json_object_put(body);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_queue_bound_and_drops(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    recorder r;
    rec_init(&r);
    r.gate_closed = 1;
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.queue_max = 4;
    o.batch_max = 4;
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    ait_tracer *t = tracer_with(&r, &o);
    /* A full batch wakes the exporter, which then blocks in the transport. */
    for (int i = 0; i < 4; i++) {
        ait_span_end(ait_span_start(t, "first", AIT_SPAN_KIND_INTERNAL, NULL));
    }
    pthread_mutex_lock(&r.mu);
    while (r.inside == 0) {
        pthread_cond_wait(&r.cv, &r.mu);
    }
    pthread_mutex_unlock(&r.mu);
    /* The queue takes 4 more; the 3 after that are dropped at once, without blocking. */
    for (int i = 0; i < 7; i++) {
        ait_span_end(ait_span_start(t, i < 4 ? "second" : "over", AIT_SPAN_KIND_INTERNAL, NULL));
    }
    ait_tracer_stats s;
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.queued, 4);
    assert_int_equal(s.dropped, 3);
    assert_int_equal(atomic_load(&dropped), 3);
    pthread_mutex_lock(&r.mu);
    r.gate_closed = 0;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.exported, 8);
    assert_int_equal(s.dropped, 3);
    assert_int_equal(s.queued, 0);
    assert_int_equal(r.nreq, 2);
    for (int i = 0; i < 2; i++) {
        json_object *body = parse_body(r.body[i]);
        assert_int_equal(json_object_array_length(spans_of(body)), 4);
        assert_null(strstr(r.body[i], "\"over\""));
        json_object_put(body);
    }
    /* After shutdown, ended spans are dropped and counted. */
    ait_span *late = ait_span_start(t, "late", AIT_SPAN_KIND_INTERNAL, NULL);
    ait_tracer_shutdown(t, 1000);
    ait_span_end(late);
    assert_int_equal(atomic_load(&dropped), 4);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_retries(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    recorder r;
    rec_init(&r);
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    o.max_retries = 3;
    o.backoff_ms = 10;
    /* 503, 429, connection refused, then accepted: one batch, four requests, nothing lost. */
    r.script[0] = (answer){AIT_OK, 503, "busy"};
    r.script[1] = (answer){AIT_OK, 429, NULL};
    r.script[2] = (answer){AIT_ERR_IO, 0, NULL};
    r.script[3] = (answer){AIT_OK, 200, "{}"};
    /* Second batch: 400 is not retried. */
    r.script[4] = (answer){AIT_OK, 400, "{\"message\":\"bad\"}"};
    /* Third batch: 500 four times (1 + 3 retries), then dropped. */
    for (int i = 5; i < 9; i++) {
        r.script[i] = (answer){AIT_OK, 500, NULL};
    }
    /* Fourth batch: partial success, one of two rejected. */
    r.script[9] = (answer){AIT_OK, 200, "{\"partialSuccess\":{\"rejectedSpans\":\"1\"}}"};
    r.nscript = 10;
    ait_tracer *t = tracer_with(&r, &o);
    ait_tracer_stats s;

    ait_span_end(ait_span_start(t, "one", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    ait_tracer_stats_get(t, &s);
    assert_int_equal(r.nreq, 4);
    assert_int_equal(s.exported, 1);
    assert_int_equal(s.dropped, 0);
    assert_string_equal(r.body[0], r.body[3]); /* the same request was resent */

    ait_span_end(ait_span_start(t, "two", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 5);
    assert_int_equal(atomic_load(&dropped), 1);

    ait_span_end(ait_span_start(t, "three", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 9);
    assert_int_equal(atomic_load(&dropped), 2);

    ait_span_end(ait_span_start(t, "four", AIT_SPAN_KIND_INTERNAL, NULL));
    ait_span_end(ait_span_start(t, "five", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    assert_int_equal(r.nreq, 10);
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.exported, 2);
    assert_int_equal(s.dropped, 3);
    assert_int_equal(atomic_load(&dropped), 3);
    assert_int_equal(s.requests, 10);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

/* The real libcurl transport against a loopback port nobody listens on: connection refused,
 * retried, then dropped and counted. */
static void test_curl_connection_refused(void **state)
{
    (void)state;
    clear_env();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    /* Bound but not listening: connections are refused, and the port stays ours. */
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    o.max_retries = 2;
    o.backoff_ms = 5;
    o.interval_ms = 60000;
    ait_tracer *t = NULL;
    assert_int_equal(ait_tracer_new_from_env(&o, &t, NULL), AIT_OK);
    ait_span_end(ait_span_start(t, "lost", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 5000), AIT_OK);
    ait_tracer_stats s;
    ait_tracer_stats_get(t, &s);
    assert_int_equal(s.requests, 3);
    assert_int_equal(s.dropped, 1);
    assert_int_equal(atomic_load(&dropped), 1);
    ait_tracer_free(t);
    close(fd);
    clear_env();
}

/* A loopback listener that never answers (the kernel completes the handshake, nobody reads): a
 * shutdown with a short timeout must not wait for the 10 s request timeout. */
static void test_curl_shutdown_cuts_request(void **state)
{
    (void)state;
    clear_env();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    o.export_timeout_ms = 10000;
    o.interval_ms = 60000;
    ait_tracer *t = NULL;
    assert_int_equal(ait_tracer_new_from_env(&o, &t, NULL), AIT_OK);
    ait_span_end(ait_span_start(t, "hung", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 300), AIT_ERR_TIMEOUT); /* the request hangs */
    int64_t t0 = ait_time_mono_ns();
    ait_tracer_shutdown(t, 300);
    int64_t took = (ait_time_mono_ns() - t0) / AIT_NS_PER_MS;
    assert_in_range(took, 0, 3000);
    assert_int_equal(atomic_load(&dropped), 1);
    ait_tracer_free(t);
    close(fd);
    clear_env();
}

static void test_shutdown_flushes_and_times_out(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    recorder r;
    rec_init(&r);
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    o.backoff_ms = 10000; /* a retry would outlast the shutdown deadline */
    ait_tracer *t = tracer_with(&r, &o);
    ait_span_end(ait_span_start(t, "kept", AIT_SPAN_KIND_INTERNAL, NULL));
    ait_tracer_shutdown(t, 2000); /* the interval is a minute: shutdown itself exports */
    assert_int_equal(r.nreq, 1);
    assert_non_null(strstr(r.body[0], "\"kept\""));
    ait_tracer_free(t);

    r.script[1] = (answer){AIT_OK, 503, NULL};
    r.nscript = 2;
    t = tracer_with(&r, &o);
    ait_span_end(ait_span_start(t, "stuck", AIT_SPAN_KIND_INTERNAL, NULL));
    int64_t t0 = ait_time_mono_ns();
    ait_tracer_shutdown(t, 300);
    int64_t took = (ait_time_mono_ns() - t0) / AIT_NS_PER_MS;
    assert_in_range(took, 0, 2000);
    assert_int_equal(atomic_load(&dropped), 1);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_interval_export(void **state)
{
    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "50", 1);
    recorder r;
    rec_init(&r);
    ait_trace_transport tr = {&r, rec_post};
    ait_trace_options o = {0};
    o.transport = &tr;
    ait_tracer *t = NULL;
    assert_int_equal(ait_tracer_new_from_env(&o, &t, NULL), AIT_OK);
    ait_span_end(ait_span_start(t, "tick", AIT_SPAN_KIND_INTERNAL, NULL));
    /* No flush: the timer alone sends it. */
    pthread_mutex_lock(&r.mu);
    int64_t deadline = ait_time_mono_ns() + 5 * AIT_NS_PER_S;
    while (r.nreq == 0 && ait_time_mono_ns() < deadline) {
        pthread_mutex_unlock(&r.mu);
        ait_time_sleep_ns(10 * AIT_NS_PER_MS);
        pthread_mutex_lock(&r.mu);
    }
    int n = r.nreq;
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(n, 1);
    ait_tracer_free(t);
    rec_free(&r);
    clear_env();
}

static void test_traceparent(void **state)
{
    (void)state;
    ait_span_ctx c;
    assert_int_equal(
        ait_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c),
        AIT_OK);
    assert_string_equal(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(c.span_id, "00f067aa0ba902b7");
    assert_true(c.sampled);
    char buf[64];
    assert_int_equal(ait_traceparent_format(&c, buf, sizeof(buf)), AIT_OK);
    assert_string_equal(buf, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_int_equal(ait_traceparent_format(&c, buf, 40), AIT_ERR_INVALID);
    /* Flags other than sampled are ignored; a future version may carry more fields. */
    assert_int_equal(
        ait_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", &c),
        AIT_OK);
    assert_false(c.sampled);
    assert_int_equal(
        ait_traceparent_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", &c),
        AIT_OK);
    assert_true(c.sampled);
    static const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ait_traceparent_parse(bad[i], &c) != AIT_ERR_PARSE) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    assert_int_equal(ait_traceparent_parse(NULL, &c), AIT_ERR_PARSE);
    /* Round trip of fresh random ids, sampled and not. */
    for (int i = 0; i < 50; i++) {
        ait_span_ctx in = {{0}, {0}, i % 2}, out;
        ait_trace_new_trace_id(in.trace_id);
        assert_int_equal(ait_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                               "00f067aa0ba902b7-01",
                                               &out),
                         AIT_OK);
        memcpy(in.span_id, out.span_id, sizeof(in.span_id));
        assert_int_equal(ait_traceparent_format(&in, buf, sizeof(buf)), AIT_OK);
        assert_int_equal(ait_traceparent_parse(buf, &out), AIT_OK);
        assert_string_equal(in.trace_id, out.trace_id);
        assert_string_equal(in.span_id, out.span_id);
        assert_int_equal(in.sampled, out.sampled);
    }
    ait_span_ctx empty = {{0}, {0}, 1};
    assert_int_equal(ait_traceparent_format(&empty, buf, sizeof(buf)), AIT_ERR_INVALID);
}

static void *other_thread(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)(ait_trace_current() == NULL);
}

static void test_current_span(void **state)
{
    (void)state;
    assert_null(ait_trace_current());
    ait_span_ctx c;
    assert_int_equal(
        ait_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c),
        AIT_OK);
    ait_trace_set_current(&c);
    c.span_id[0] = 'f'; /* the current context is a copy */
    const ait_span_ctx *cur = ait_trace_current();
    assert_non_null(cur);
    assert_string_equal(cur->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cur->span_id, "00f067aa0ba902b7");
    pthread_t th;
    void *res = NULL;
    assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_true((uintptr_t)res == 1); /* thread-local: other threads see none */
    ait_span_ctx invalid = {{0}, {0}, 0};
    ait_trace_set_current(&invalid);
    assert_null(ait_trace_current());
    ait_trace_set_current(&c);
    ait_trace_set_current(NULL);
    assert_null(ait_trace_current());
}

int main(void)
{
    /* Error lines from the tests' deliberate failures go to a scratch file. */
    FILE *sink = tmpfile();
    ait_log_set_output(sink);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled_is_noop),
        cmocka_unit_test(test_bad_endpoint),
        cmocka_unit_test(test_json_encoding),
        cmocka_unit_test(test_attribute_limits),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_kv_list),
        cmocka_unit_test(test_sampler_decisions),
        cmocka_unit_test(test_sampler_from_env),
        cmocka_unit_test(test_start_in_trace),
        cmocka_unit_test(test_queue_bound_and_drops),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_curl_connection_refused),
        cmocka_unit_test(test_curl_shutdown_cuts_request),
        cmocka_unit_test(test_shutdown_flushes_and_times_out),
        cmocka_unit_test(test_interval_export),
        cmocka_unit_test(test_traceparent),
        cmocka_unit_test(test_current_span),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ait_log_set_output(NULL);
    if (sink != NULL) {
        fclose(sink);
    }
    return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Integration test of src/trace against a real OpenTelemetry Collector (hack/otelcol.sh: the
 * otlp receiver over HTTP, the file exporter): a parent span with two children (one failed, with
 * an event) and a span joined to the trace by id are exported, read back from the collector's
 * spans.json and checked for ids, parent links, kinds, times, status and typed attributes; then a
 * multi-batch export, and finally spans sent to the stopped collector are retried and counted as
 * dropped. Needs no cluster; it runs with the integration label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "trace/trace.h"

static char src_dir[1024];
static char dir[1200];
static char endpoint[128];
static char service[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int group_setup(void **state)
{
    (void)state;
    const char *s = getenv("AIT_SOURCE_DIR");
    const char *b = getenv("AIT_BUILD_DIR");
    if (s == NULL || b == NULL) {
        fprintf(stderr, "test_trace_export: needs AIT_SOURCE_DIR and AIT_BUILD_DIR\n");
        return -1;
    }
    snprintf(src_dir, sizeof(src_dir), "%s", s);
    unsigned suffix = (unsigned)getpid() ^ (unsigned)time(NULL);
    snprintf(dir, sizeof(dir), "%s/trace-it-%x", b, suffix);
    snprintf(service, sizeof(service), "aitask-trace-it-%x", suffix);
    if (sh("bash %s/hack/tools.sh otelcol >/dev/null 2>&1", src_dir) != 0 ||
        sh("bash %s/hack/otelcol.sh start --dir %s >/dev/null", src_dir, dir) != 0) {
        fprintf(stderr, "test_trace_export: could not build or start the collector\n");
        return -1;
    }
    char path[1300];
    snprintf(path, sizeof(path), "%s/port", dir);
    FILE *f = fopen(path, "r");
    int port = 0;
    if (f == NULL || fscanf(f, "%d", &port) != 1) {
        return -1;
    }
    fclose(f);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return sh("bash %s/hack/otelcol.sh stop --dir %s", src_dir, dir) == 0 ? 0 : -1;
}

static void set_env(void)
{
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint, 1);
    setenv("OTEL_SERVICE_NAME", service, 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=integration%20test,team=ait", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Scope-OrgID=tenant-1", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on", 1);
}

/* Returns the attribute value object for key, or NULL. */
static json_object *attr_value(json_object *attrs, const char *key)
{
    for (size_t i = 0; attrs != NULL && i < json_object_array_length(attrs); i++) {
        json_object *kv = json_object_array_get_idx(attrs, i);
        const char *k = ait_json_str(kv, "key");
        if (k != NULL && strcmp(k, key) == 0) {
            return ait_json_path(kv, "value");
        }
    }
    return NULL;
}

/* Reads spans.json (one OTLP/JSON request per line) and returns a new array with every span of
 * a resource whose service.name is ours and whose traceId is trace_id (NULL = any); *res gets a
 * reference to that resource's attributes (from the last match). */
static json_object *collect(const char *trace_id, json_object **res)
{
    char path[1300];
    snprintf(path, sizeof(path), "%s/spans.json", dir);
    json_object *out = json_object_new_array();
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return out;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_object *root = NULL;
        if (ait_json_parse(line, (size_t)n, &root, NULL) != AIT_OK) {
            continue; /* a line being written */
        }
        json_object *rsa = ait_json_array(root, "resourceSpans");
        for (size_t i = 0; rsa != NULL && i < json_object_array_length(rsa); i++) {
            json_object *rs = json_object_array_get_idx(rsa, i);
            json_object *ra = ait_json_array(rs, "resource.attributes");
            const char *svc = ait_json_str(attr_value(ra, "service.name"), "stringValue");
            if (svc == NULL || strcmp(svc, service) != 0) {
                continue;
            }
            json_object *ssa = ait_json_array(rs, "scopeSpans");
            for (size_t j = 0; ssa != NULL && j < json_object_array_length(ssa); j++) {
                json_object *ss = json_object_array_get_idx(ssa, j);
                assert_string_equal(ait_json_str(ss, "scope.name"), "aitask-operator");
                json_object *spans = ait_json_array(ss, "spans");
                for (size_t k = 0; spans != NULL && k < json_object_array_length(spans); k++) {
                    json_object *sp = json_object_array_get_idx(spans, k);
                    const char *tid = ait_json_str(sp, "traceId");
                    if (trace_id == NULL || (tid != NULL && strcmp(tid, trace_id) == 0)) {
                        json_object_array_add(out, json_object_get(sp));
                        if (res != NULL) {
                            json_object_put(*res);
                            *res = json_object_get(ra);
                        }
                    }
                }
            }
        }
        json_object_put(root);
    }
    free(line);
    fclose(f);
    return out;
}

/* Polls the file exporter's output (it flushes every 100 ms) for want spans, 10 s at most. */
static json_object *wait_spans(const char *trace_id, size_t want, json_object **res)
{
    for (int i = 0; i < 100; i++) {
        json_object *got = collect(trace_id, res);
        if (json_object_array_length(got) >= want) {
            return got;
        }
        json_object_put(got);
        ait_time_sleep_ns(100 * AIT_NS_PER_MS);
    }
    return collect(trace_id, res);
}

static json_object *span_named(json_object *spans, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        if (strcmp(ait_json_str(s, "name"), name) == 0) {
            return s;
        }
    }
    fail_msg("span %s was not received", name);
    return NULL;
}

static uint64_t nanos(json_object *span, const char *field)
{
    const char *s = ait_json_str(span, field);
    assert_non_null(s); /* OTLP/JSON: 64-bit integers travel as decimal strings */
    return strtoull(s, NULL, 10);
}

static void test_span_tree(void **state)
{
    (void)state;
    set_env();
    ait_tracer *t = NULL;
    ait_error err;
    ait_trace_options o = {0};
    o.interval_ms = 200;
    assert_int_equal(ait_tracer_new_from_env(&o, &t, &err), AIT_OK);
    assert_true(ait_tracer_enabled(t));

    int64_t before = ait_time_now_ns();
    ait_span *parent = ait_span_start(t, "aitask.reconcile", AIT_SPAN_KIND_SERVER, NULL);
    ait_span_set_attr_str(parent, "k8s.namespace.name", "trace-it");
    ait_span_set_attr_int(parent, "aitask.attempt", 3);
    ait_span_ctx pc = ait_span_context(parent);
    assert_true(ait_span_ctx_valid(&pc));
    assert_true(pc.sampled);

    ait_span *ok = ait_span_start(t, "kube.create_pod", AIT_SPAN_KIND_CLIENT, &pc);
    ait_span_set_attr_bool(ok, "dry_run", 0);
    ait_span_set_attr_double(ok, "cost.usd", 0.125);
    ait_span_end(ok);

    ait_span *bad = ait_span_start(t, "provider.request", AIT_SPAN_KIND_CLIENT, &pc);
    ait_span_set_attr_str(bad, "provider", "openai");
    ait_span_set_attr_int(bad, "http.response.status_code", 503);
    ait_span_add_event(bad, "retry", "reason", "unavailable", NULL);
    ait_span_set_error(bad, "provider answered 503");
    ait_span_ctx bc = ait_span_context(bad);
    ait_span_end(bad);

    /* A later reconcile joins the same trace by the id kept in the status. */
    ait_span *joined = ait_span_start_in_trace(t, "aitask.attempt.finish", AIT_SPAN_KIND_INTERNAL,
                                               pc.trace_id, pc.span_id);
    ait_span_ctx jc = ait_span_context(joined);
    ait_span_end(joined);
    ait_span_end(parent);
    assert_int_equal(ait_tracer_flush(t, 10000), AIT_OK);
    int64_t after = ait_time_now_ns();
    ait_tracer_stats st;
    ait_tracer_stats_get(t, &st);
    assert_int_equal(st.exported, 4);
    assert_int_equal(st.dropped, 0);

    json_object *res = NULL;
    json_object *spans = wait_spans(pc.trace_id, 4, &res);
    assert_int_equal(json_object_array_length(spans), 4);
    assert_string_equal(ait_json_str(attr_value(res, "deployment.environment"), "stringValue"),
                        "integration test");
    assert_string_equal(ait_json_str(attr_value(res, "team"), "stringValue"), "ait");

    json_object *jp = span_named(spans, "aitask.reconcile");
    json_object *jo = span_named(spans, "kube.create_pod");
    json_object *jb = span_named(spans, "provider.request");
    json_object *jj = span_named(spans, "aitask.attempt.finish");
    assert_string_equal(ait_json_str(jp, "spanId"), pc.span_id);
    const char *pp = ait_json_str(jp, "parentSpanId");
    assert_true(pp == NULL || pp[0] == '\0');
    assert_string_equal(ait_json_str(jo, "parentSpanId"), pc.span_id);
    assert_string_equal(ait_json_str(jb, "parentSpanId"), pc.span_id);
    assert_string_equal(ait_json_str(jb, "spanId"), bc.span_id);
    assert_string_equal(ait_json_str(jj, "parentSpanId"), pc.span_id);
    assert_string_equal(ait_json_str(jj, "spanId"), jc.span_id);
    assert_string_not_equal(ait_json_str(jo, "spanId"), ait_json_str(jb, "spanId"));
    /* Kinds and status codes are integers as the collector wrote them back. */
    assert_int_equal(ait_json_int(jp, "kind", -1), 2);
    assert_int_equal(ait_json_int(jo, "kind", -1), 3);
    assert_int_equal(ait_json_int(jj, "kind", -1), 1);
    assert_int_equal(ait_json_int(jb, "status.code", -1), 2);
    assert_string_equal(ait_json_str(jb, "status.message"), "provider answered 503");
    assert_int_equal(ait_json_int(jo, "status.code", 0), 0);
    /* Times: inside the test's window; children inside the parent. */
    uint64_t ps = nanos(jp, "startTimeUnixNano"), pe = nanos(jp, "endTimeUnixNano");
    assert_true(ps >= (uint64_t)before && pe <= (uint64_t)after && ps <= pe);
    uint64_t bs = nanos(jb, "startTimeUnixNano"), be = nanos(jb, "endTimeUnixNano");
    assert_true(bs >= ps && be <= pe && bs <= be);
    /* Attributes with their types. */
    json_object *pa = ait_json_array(jp, "attributes");
    assert_string_equal(ait_json_str(attr_value(pa, "k8s.namespace.name"), "stringValue"),
                        "trace-it");
    assert_string_equal(ait_json_str(attr_value(pa, "aitask.attempt"), "intValue"), "3");
    json_object *oa = ait_json_array(jo, "attributes");
    /* The collector omits false booleans (proto3 defaults): the attribute is still there. */
    json_object *dry = attr_value(oa, "dry_run");
    assert_non_null(dry);
    assert_false(ait_json_bool(dry, "boolValue", 0));
    assert_true(ait_json_double(attr_value(oa, "cost.usd"), "doubleValue", 0) == 0.125);
    json_object *ba = ait_json_array(jb, "attributes");
    assert_string_equal(ait_json_str(attr_value(ba, "provider"), "stringValue"), "openai");
    assert_string_equal(ait_json_str(attr_value(ba, "http.response.status_code"), "intValue"),
                        "503");
    json_object *ev = json_object_array_get_idx(ait_json_array(jb, "events"), 0);
    assert_non_null(ev);
    assert_string_equal(ait_json_str(ev, "name"), "retry");
    assert_string_equal(
        ait_json_str(attr_value(ait_json_array(ev, "attributes"), "reason"), "stringValue"),
        "unavailable");
    uint64_t et = strtoull(ait_json_str(ev, "timeUnixNano"), NULL, 10);
    assert_true(et >= bs && et <= be);
    json_object_put(spans);
    json_object_put(res);
    ait_tracer_free(t);
}

static void test_batches(void **state)
{
    (void)state;
    set_env();
    ait_tracer *t = NULL;
    ait_trace_options o = {0};
    o.batch_max = 100;
    o.queue_max = 1000;
    o.interval_ms = 60000; /* only full batches and the flush send */
    assert_int_equal(ait_tracer_new_from_env(&o, &t, NULL), AIT_OK);
    ait_span *root = ait_span_start(t, "bulk.root", AIT_SPAN_KIND_INTERNAL, NULL);
    ait_span_ctx rc = ait_span_context(root);
    for (int i = 0; i < 249; i++) {
        ait_span *s = ait_span_start(t, "bulk.child", AIT_SPAN_KIND_INTERNAL, &rc);
        ait_span_set_attr_int(s, "i", i);
        ait_span_end(s);
    }
    ait_span_end(root);
    assert_int_equal(ait_tracer_flush(t, 20000), AIT_OK);
    ait_tracer_stats st;
    ait_tracer_stats_get(t, &st);
    assert_int_equal(st.exported, 250);
    assert_int_equal(st.requests, 3);
    json_object *spans = wait_spans(rc.trace_id, 250, NULL);
    assert_int_equal(json_object_array_length(spans), 250);
    /* Every child index arrived exactly once. */
    char seen[249] = {0};
    for (size_t i = 0; i < 250; i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        if (strcmp(ait_json_str(s, "name"), "bulk.child") != 0) {
            continue;
        }
        assert_string_equal(ait_json_str(s, "parentSpanId"), rc.span_id);
        const char *iv = ait_json_str(attr_value(ait_json_array(s, "attributes"), "i"), "intValue");
        int idx = iv ? (int)strtol(iv, NULL, 10) : 0; /* the collector omits intValue 0 */
        assert_in_range(idx, 0, 248);
        assert_int_equal(seen[idx], 0);
        seen[idx] = 1;
    }
    for (int i = 0; i < 249; i++) {
        assert_int_equal(seen[i], 1);
    }
    json_object_put(spans);
    ait_tracer_free(t);
}

static void drop_cb(void *ctx, uint64_t n)
{
    atomic_fetch_add((_Atomic uint64_t *)ctx, n);
}

/* Last: the collector is stopped, so the export is refused, retried and dropped with a count. */
static void test_collector_down(void **state)
{
    (void)state;
    set_env();
    assert_int_equal(sh("bash %s/hack/otelcol.sh stop --dir %s", src_dir, dir), 0);
    _Atomic uint64_t dropped = 0;
    ait_trace_options o = {0};
    o.on_drop = drop_cb;
    o.on_drop_ctx = &dropped;
    o.max_retries = 2;
    o.backoff_ms = 20;
    ait_tracer *t = NULL;
    assert_int_equal(ait_tracer_new_from_env(&o, &t, NULL), AIT_OK);
    ait_span_end(ait_span_start(t, "lost.1", AIT_SPAN_KIND_INTERNAL, NULL));
    ait_span_end(ait_span_start(t, "lost.2", AIT_SPAN_KIND_INTERNAL, NULL));
    assert_int_equal(ait_tracer_flush(t, 10000), AIT_OK);
    ait_tracer_stats st;
    ait_tracer_stats_get(t, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(atomic_load(&dropped), 2);
    ait_tracer_free(t);
}

int main(void)
{
    FILE *sink = tmpfile();
    ait_log_set_output(sink);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_tree),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_collector_down),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    ait_log_set_output(NULL);
    if (sink != NULL) {
        fclose(sink);
    }
    return rc;
}

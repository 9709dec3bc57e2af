/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for kube/events over the REST client's transport seam. The transport is a FAKE that
 * records each request and answers as the API server does for Event create (201 with the object)
 * and merge PATCH (200); a gate lets a test hold the sender inside a request. The real server is
 * exercised by tests/integration/test_leader.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/events.h"
#include "kube/rest.h"

#define SERVER "https://fake.test"
#define MAXREQ 128

typedef struct rec {
    char method[8];
    char path[256];
    char content_type[64];
    json_object *body;
} rec;

typedef struct fake_api {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int gate_closed;
    int in_flight;
    int n;
    rec reqs[MAXREQ];
} fake_api;

static ait_status fake_do(void *ctx, const ait_http_request *req, ait_http_response *resp,
                          ait_error *err)
{
    (void)err;
    fake_api *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->in_flight++;
    pthread_cond_broadcast(&f->cond);
    while (f->gate_closed) {
        pthread_cond_wait(&f->cond, &f->mu);
    }
    if (f->n < MAXREQ) {
        rec *r = &f->reqs[f->n++];
        snprintf(r->method, sizeof(r->method), "%s", req->method);
        snprintf(r->path, sizeof(r->path), "%s", req->url + strlen(SERVER));
        snprintf(r->content_type, sizeof(r->content_type), "%s",
                 req->content_type ? req->content_type : "");
        r->body = NULL;
        if (req->body && ait_json_parse(req->body, req->body_len, &r->body, NULL) != AIT_OK) {
            r->body = NULL;
        }
    }
    resp->status = strcmp(req->method, "POST") == 0 ? 201 : 200;
    if (ait_buf_append(&resp->body, req->body ? req->body : "{}", req->body ? req->body_len : 2) !=
        AIT_OK) {
        resp->status = 500;
    }
    f->in_flight--;
    pthread_mutex_unlock(&f->mu);
    return AIT_OK;
}

typedef struct fake_clock {
    _Atomic int64_t mono;
} fake_clock;

static int64_t fc_mono(void *ctx)
{
    return atomic_load(&((fake_clock *)ctx)->mono);
}
static int64_t fc_now(void *ctx)
{
    return INT64_C(1767225600) * AIT_NS_PER_S + fc_mono(ctx);
}

typedef struct fixture {
    fake_api api;
    ait_transport tr;
    ait_rest *rest;
    fake_clock fc;
    ait_clock clock;
    ait_events *ev;
} fixture;

static ait_events *make_events(fixture *fx, size_t qsize)
{
    ait_events_options o = {0};
    o.reporting_instance = "controller-0";
    o.clock = &fx->clock;
    o.queue_size = qsize;
    ait_events *ev = NULL;
    assert_int_equal(ait_events_new(fx->rest, &o, &ev, NULL), AIT_OK);
    return ev;
}

static int setup(void **state)
{
    fixture *fx = ait_calloc(1, sizeof(*fx));
    pthread_mutex_init(&fx->api.mu, NULL);
    pthread_cond_init(&fx->api.cond, NULL);
    fx->tr.ctx = &fx->api;
    fx->tr.do_request = fake_do;
    ait_kube_config cfg = {0};
    cfg.server = SERVER;
    ait_rest_options ro = {0};
    ro.transport = &fx->tr;
    assert_int_equal(ait_rest_new(&cfg, &ro, &fx->rest, NULL), AIT_OK);
    atomic_store(&fx->fc.mono, 100 * AIT_NS_PER_S);
    fx->clock = (ait_clock){&fx->fc, fc_now, fc_mono};
    fx->ev = make_events(fx, 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    ait_events_free(fx->ev);
    ait_rest_free(fx->rest);
    for (int i = 0; i < fx->api.n; i++) {
        if (fx->api.reqs[i].body) {
            json_object_put(fx->api.reqs[i].body);
        }
    }
    pthread_cond_destroy(&fx->api.cond);
    pthread_mutex_destroy(&fx->api.mu);
    ait_free(fx);
    return 0;
}

static const ait_object_ref TASK = {
    "aitask.dev/v1alpha1", "AITask", "ns1", "task-a", "uid-1", "42"};
static const ait_object_ref TASK_B = {
    "aitask.dev/v1alpha1", "AITask", "ns1", "task-b", "uid-2", NULL};

static void flush(fixture *fx)
{
    assert_int_equal(ait_events_flush(fx->ev, 5 * AIT_NS_PER_S), AIT_OK);
}

static int count_method(fixture *fx, const char *m)
{
    int n = 0;
    for (int i = 0; i < fx->api.n; i++) {
        n += strcmp(fx->api.reqs[i].method, m) == 0;
    }
    return n;
}

static void test_create_event_fields(void **state)
{
    fixture *fx = *state;
    ait_events_emit(fx->ev, &TASK, "Normal", "AttemptStarted", "Run", "attempt 1 started");
    flush(fx);
    assert_int_equal(fx->api.n, 1);
    rec *r = &fx->api.reqs[0];
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/apis/events.k8s.io/v1/namespaces/ns1/events");
    json_object *b = r->body;
    assert_string_equal(ait_json_str(b, "apiVersion"), "events.k8s.io/v1");
    assert_string_equal(ait_json_str(b, "kind"), "Event");
    assert_string_equal(ait_json_str(b, "metadata.namespace"), "ns1");
    assert_true(strncmp(ait_json_str(b, "metadata.name"), "task-a.", 7) == 0);
    assert_string_equal(ait_json_str(b, "reportingController"), "aitask.dev/aitask-controller");
    assert_string_equal(ait_json_str(b, "reportingInstance"), "controller-0");
    assert_string_equal(ait_json_str(b, "type"), "Normal");
    assert_string_equal(ait_json_str(b, "reason"), "AttemptStarted");
    assert_string_equal(ait_json_str(b, "action"), "Run");
    assert_string_equal(ait_json_str(b, "note"), "attempt 1 started");
    assert_string_equal(ait_json_str(b, "regarding.kind"), "AITask");
    assert_string_equal(ait_json_str(b, "regarding.apiVersion"), "aitask.dev/v1alpha1");
    assert_string_equal(ait_json_str(b, "regarding.namespace"), "ns1");
    assert_string_equal(ait_json_str(b, "regarding.name"), "task-a");
    assert_string_equal(ait_json_str(b, "regarding.uid"), "uid-1");
    assert_string_equal(ait_json_str(b, "regarding.resourceVersion"), "42");
    assert_null(ait_json_path(b, "series"));
    int64_t t = 0;
    assert_int_equal(ait_time_parse_rfc3339(ait_json_str(b, "eventTime"), &t), AIT_OK);
    assert_int_equal(t, fc_now(&fx->fc));
    assert_non_null(strchr(ait_json_str(b, "eventTime"), '.'));
    ait_events_stats st;
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.emitted, 1);
}

static void test_repeat_updates_series(void **state)
{
    fixture *fx = *state;
    ait_events_emit(fx->ev, &TASK, "Warning", "AttemptFailed", NULL, "exit code 1");
    flush(fx);
    atomic_fetch_add(&fx->fc.mono, 2 * AIT_NS_PER_S);
    ait_events_emit(fx->ev, &TASK, "Warning", "AttemptFailed", NULL, "exit code 1");
    flush(fx);
    atomic_fetch_add(&fx->fc.mono, 2 * AIT_NS_PER_S);
    ait_events_emit(fx->ev, &TASK, "Warning", "AttemptFailed", NULL, "exit code 1");
    flush(fx);
    assert_int_equal(fx->api.n, 3);
    const char *name = ait_json_str(fx->api.reqs[0].body, "metadata.name");
    assert_string_equal(ait_json_str(fx->api.reqs[0].body, "action"), "AttemptFailed");
    for (int i = 1; i < 3; i++) {
        rec *r = &fx->api.reqs[i];
        assert_string_equal(r->method, "PATCH");
        assert_string_equal(r->content_type, "application/merge-patch+json");
        char want[256];
        snprintf(want, sizeof(want), "/apis/events.k8s.io/v1/namespaces/ns1/events/%s", name);
        assert_string_equal(r->path, want);
        assert_int_equal(ait_json_int(r->body, "series.count", -1), i + 1);
        int64_t t = 0;
        assert_int_equal(
            ait_time_parse_rfc3339(ait_json_str(r->body, "series.lastObservedTime"), &t), AIT_OK);
        assert_int_equal(t, fc_now(&fx->fc) - (3 - i - 1) * 2 * AIT_NS_PER_S);
    }
    /* another note is another Event */
    ait_events_emit(fx->ev, &TASK, "Warning", "AttemptFailed", NULL, "exit code 2");
    flush(fx);
    assert_int_equal(count_method(fx, "POST"), 2);
    ait_events_stats st;
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.deduped, 2);
    assert_int_equal(st.series_updates, 2);
    assert_int_equal(st.created, 2);
}

static void wait_in_flight(fixture *fx)
{
    pthread_mutex_lock(&fx->api.mu);
    while (fx->api.in_flight == 0) {
        pthread_cond_wait(&fx->api.cond, &fx->api.mu);
    }
    pthread_mutex_unlock(&fx->api.mu);
}

static void set_gate(fixture *fx, int closed)
{
    pthread_mutex_lock(&fx->api.mu);
    fx->api.gate_closed = closed;
    pthread_cond_broadcast(&fx->api.cond);
    pthread_mutex_unlock(&fx->api.mu);
}

static void test_repeats_coalesce_while_sender_busy(void **state)
{
    fixture *fx = *state;
    set_gate(fx, 1);
    ait_events_emit(fx->ev, &TASK, "Normal", "Healed", NULL, "provider fixed it");
    wait_in_flight(fx); /* the sender is stuck in the create; emit must not block */
    for (int i = 0; i < 5; i++) {
        ait_events_emit(fx->ev, &TASK, "Normal", "Healed", NULL, "provider fixed it");
    }
    set_gate(fx, 0);
    flush(fx);
    assert_int_equal(fx->api.n, 2);
    assert_string_equal(fx->api.reqs[0].method, "POST");
    assert_string_equal(fx->api.reqs[1].method, "PATCH");
    assert_int_equal(ait_json_int(fx->api.reqs[1].body, "series.count", -1), 6);
}

static void test_window_expiry_creates_new_event(void **state)
{
    fixture *fx = *state;
    ait_events_emit(fx->ev, &TASK, "Normal", "Done", NULL, "ok");
    flush(fx);
    atomic_fetch_add(&fx->fc.mono, 6 * 60 * AIT_NS_PER_S + 1);
    ait_events_emit(fx->ev, &TASK, "Normal", "Done", NULL, "ok");
    flush(fx);
    assert_int_equal(count_method(fx, "POST"), 2);
    assert_int_equal(count_method(fx, "PATCH"), 0);
    assert_string_not_equal(ait_json_str(fx->api.reqs[0].body, "metadata.name"),
                            ait_json_str(fx->api.reqs[1].body, "metadata.name"));
    /* A repeat now counts on the new Event's series. */
    atomic_fetch_add(&fx->fc.mono, AIT_NS_PER_S);
    ait_events_emit(fx->ev, &TASK, "Normal", "Done", NULL, "ok");
    flush(fx);
    assert_int_equal(fx->api.n, 3);
    assert_string_equal(fx->api.reqs[2].method, "PATCH");
    char want[256];
    snprintf(want, sizeof(want), "/apis/events.k8s.io/v1/namespaces/ns1/events/%s",
             ait_json_str(fx->api.reqs[1].body, "metadata.name"));
    assert_string_equal(fx->api.reqs[2].path, want);
    assert_int_equal(ait_json_int(fx->api.reqs[2].body, "series.count", -1), 2);
}

static void test_rate_limit_per_object(void **state)
{
    fixture *fx = *state;
    char note[32];
    for (int i = 0; i < 30; i++) {
        snprintf(note, sizeof(note), "n%d", i);
        ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, note);
    }
    ait_events_emit(fx->ev, &TASK_B, "Normal", "Step", NULL, "other object");
    flush(fx);
    ait_events_stats st;
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.rate_limited, 5);
    assert_int_equal(count_method(fx, "POST"), 26); /* 25 burst for task-a, 1 for task-b */
    /* one token comes back every 5 s */
    atomic_fetch_add(&fx->fc.mono, 5 * AIT_NS_PER_S);
    ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, "after refill");
    ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, "no token");
    flush(fx);
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(count_method(fx, "POST"), 27);
    assert_int_equal(st.rate_limited, 6);
}

static void test_bounded_queue_drops(void **state)
{
    fixture *fx = *state;
    ait_events_free(fx->ev);
    fx->ev = make_events(fx, 2);
    set_gate(fx, 1);
    ait_events_emit(fx->ev, &TASK, "Normal", "Q", NULL, "0");
    wait_in_flight(fx);
    char note[8];
    for (int i = 1; i <= 4; i++) {
        snprintf(note, sizeof(note), "%d", i);
        ait_events_emit(fx->ev, &TASK, "Normal", "Q", NULL, note);
    }
    ait_events_stats st;
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.dropped, 2);
    set_gate(fx, 0);
    flush(fx);
    assert_int_equal(count_method(fx, "POST"), 3);
    assert_string_equal(ait_json_str(fx->api.reqs[2].body, "note"), "2");
}

/* The dedupe cache is bounded: past max_series the entries observed longest ago go (counted as
 * evicted), recent series still fold repeats, and an evicted one's repeat is a new Event. */
static void test_series_bounded(void **state)
{
    fixture *fx = *state;
    ait_events_free(fx->ev);
    ait_events_options o = {0};
    o.clock = &fx->clock;
    o.max_series = 8;
    assert_int_equal(ait_events_new(fx->rest, &o, &fx->ev, NULL), AIT_OK);
    char note[16];
    ait_events_stats st;
    for (int i = 0; i < 20; i++) {
        snprintf(note, sizeof(note), "n%d", i);
        ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, note);
        ait_events_get_stats(fx->ev, &st);
        assert_true(st.series <= 8);
        atomic_fetch_add(&fx->fc.mono, AIT_NS_PER_S);
    }
    flush(fx);
    ait_events_get_stats(fx->ev, &st);
    assert_true(st.evicted >= 12);
    assert_int_equal(st.series + st.evicted, 20);
    assert_int_equal(count_method(fx, "POST"), 20);
    ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, "n19"); /* recent: a series PATCH */
    flush(fx);
    assert_int_equal(count_method(fx, "PATCH"), 1);
    ait_events_emit(fx->ev, &TASK, "Normal", "Step", NULL, "n0"); /* evicted: a new Event */
    flush(fx);
    assert_int_equal(count_method(fx, "POST"), 21);
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.deduped, 1);
}

static void test_invalid_and_limits(void **state)
{
    fixture *fx = *state;
    ait_events_emit(fx->ev, &TASK, "Info", "Bad", NULL, "wrong type");
    ait_events_emit(fx->ev, &TASK, "Normal", "", NULL, "no reason");
    ait_events_stats st;
    ait_events_get_stats(fx->ev, &st);
    assert_int_equal(st.dropped, 2);
    /* long notes are cut to 1024 bytes, not in the middle of a UTF-8 sequence */
    char big[1500];
    memset(big, 'x', sizeof(big));
    memcpy(big + 1023, "\xc3\xa9", 2);
    big[sizeof(big) - 1] = '\0';
    ait_events_emit(fx->ev, &TASK, "Normal", "Long", NULL, big);
    /* a cluster-scoped object's Event goes to "default" */
    ait_object_ref ns = {"v1", "Namespace", NULL, "team-a", "uid-ns", NULL};
    ait_events_emitf(fx->ev, &ns, "Warning", "BudgetAlert", "Check", "spent %d%%", 80);
    flush(fx);
    assert_int_equal(fx->api.n, 2);
    assert_int_equal(strlen(ait_json_str(fx->api.reqs[0].body, "note")), 1023);
    assert_string_equal(fx->api.reqs[1].path, "/apis/events.k8s.io/v1/namespaces/default/events");
    assert_string_equal(ait_json_str(fx->api.reqs[1].body, "note"), "spent 80%");
    assert_null(ait_json_str(fx->api.reqs[1].body, "regarding.namespace"));
    ait_events_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_event_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_updates_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats_coalesce_while_sender_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_expiry_creates_new_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_per_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_queue_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

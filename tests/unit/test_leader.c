/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for kube/leader over the REST client's transport seam. The transport here is a FAKE
 * of the API server's Lease endpoints (GET/POST/PUT with resourceVersion checks and metav1.Status
 * error bodies, as the real server answers); the real server is exercised by
 * tests/integration/test_leader.c. A fake clock drives expiry in the step tests. */
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
#include "kube/leader.h"
#include "kube/rest.h"

#define SERVER "https://fake.test"
#define LEASE_COLL "/apis/coordination.k8s.io/v1/namespaces/ns1/leases"
#define LEASE_PATH LEASE_COLL "/lock"

/* ---- fake Lease endpoints ---- */

typedef struct fake_api {
    pthread_mutex_t mu;
    json_object *lease; /* stored object, NULL = absent */
    long rv;
    int fail_all;        /* answer 500 to everything */
    int bump_before_put; /* another writer changes the lease before the next PUT */
    int puts, conflicts, creates;
} fake_api;

static void status_body(ait_http_response *resp, long code, const char *reason, const char *msg)
{
    resp->status = code;
    assert_int_equal(
        ait_buf_appendf(&resp->body,
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
                        "\"Failure\",\"message\":\"%s\",\"reason\":\"%s\",\"code\":%ld}",
                        msg, reason, code),
        AIT_OK);
}

static void store(fake_api *f, json_object *obj)
{
    f->rv++;
    json_object *meta = json_object_object_get(obj, "metadata");
    char rv[32];
    snprintf(rv, sizeof(rv), "%ld", f->rv);
    json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
    if (f->lease) {
        json_object_put(f->lease);
    }
    f->lease = obj;
}

static void answer_lease(fake_api *f, ait_http_response *resp, long code)
{
    resp->status = code;
    assert_int_equal(ait_buf_appends(&resp->body, json_object_to_json_string_ext(
                                                      f->lease, JSON_C_TO_STRING_PLAIN)),
                     AIT_OK);
}

static ait_status fake_do(void *ctx, const ait_http_request *req, ait_http_response *resp,
                          ait_error *err)
{
    (void)err;
    fake_api *f = ctx;
    pthread_mutex_lock(&f->mu);
    const char *path = req->url + strlen(SERVER);
    json_object *body = NULL;
    if (req->body) {
        assert_int_equal(ait_json_parse(req->body, req->body_len, &body, NULL), AIT_OK);
    }
    if (f->fail_all) {
        status_body(resp, 500, "InternalError", "injected failure");
    } else if (strcmp(req->method, "GET") == 0 && strcmp(path, LEASE_PATH) == 0) {
        if (f->lease) {
            answer_lease(f, resp, 200);
        } else {
            status_body(resp, 404, "NotFound", "leases.coordination.k8s.io \\\"lock\\\" not found");
        }
    } else if (strcmp(req->method, "POST") == 0 && strcmp(path, LEASE_COLL) == 0) {
        if (f->lease) {
            status_body(resp, 409, "AlreadyExists", "already exists");
        } else {
            f->creates++;
            store(f, body);
            body = NULL;
            answer_lease(f, resp, 201);
        }
    } else if (strcmp(req->method, "PUT") == 0 && strcmp(path, LEASE_PATH) == 0) {
        f->puts++;
        if (f->bump_before_put && f->lease) {
            f->bump_before_put = 0;
            store(f, json_object_get(f->lease));
        }
        const char *want = ait_json_str(f->lease, "metadata.resourceVersion");
        const char *got = ait_json_str(body, "metadata.resourceVersion");
        if (!f->lease) {
            status_body(resp, 404, "NotFound", "not found");
        } else if (!got || strcmp(want, got) != 0) {
            f->conflicts++;
            status_body(resp, 409, "Conflict",
                        "the object has been modified; please apply your changes to the latest "
                        "version and try again");
        } else {
            store(f, body);
            body = NULL;
            answer_lease(f, resp, 200);
        }
    } else {
        status_body(resp, 404, "NotFound", "no such path");
    }
    if (body) {
        json_object_put(body);
    }
    pthread_mutex_unlock(&f->mu);
    return AIT_OK;
}

static const char *stored_str(fake_api *f, const char *path)
{
    return ait_json_str(f->lease, path);
}

static int64_t stored_int(fake_api *f, const char *path)
{
    return ait_json_int(f->lease, path, -1);
}

/* ---- fake clock ---- */

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

/* ---- fixture ---- */

typedef struct fixture {
    fake_api api;
    ait_transport tr;
    ait_rest *rest;
    fake_clock fc;
    ait_clock clock;
} fixture;

static int setup(void **state)
{
    fixture *fx = ait_calloc(1, sizeof(*fx));
    pthread_mutex_init(&fx->api.mu, NULL);
    fx->tr.ctx = &fx->api;
    fx->tr.do_request = fake_do;
    ait_kube_config cfg = {0};
    cfg.server = SERVER;
    ait_rest_options ro = {0};
    ro.transport = &fx->tr;
    assert_int_equal(ait_rest_new(&cfg, &ro, &fx->rest, NULL), AIT_OK);
    atomic_store(&fx->fc.mono, 500 * AIT_NS_PER_S);
    fx->clock = (ait_clock){&fx->fc, fc_now, fc_mono};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    ait_rest_free(fx->rest);
    if (fx->api.lease) {
        json_object_put(fx->api.lease);
    }
    pthread_mutex_destroy(&fx->api.mu);
    ait_free(fx);
    return 0;
}

static ait_leader *candidate(fixture *fx, const char *id, const ait_clock *clock,
                             const ait_leader_callbacks *cb)
{
    ait_leader_options o = {0};
    o.namespace_ = "ns1";
    o.name = "lock";
    o.identity = id;
    o.clock = clock;
    if (cb) {
        o.callbacks = *cb;
    }
    ait_leader *l = NULL;
    assert_int_equal(ait_leader_new(fx->rest, &o, &l, NULL), AIT_OK);
    return l;
}

static int step(ait_leader *l)
{
    int acquired = -1;
    ait_error e = {0};
    ait_status st = ait_leader_try_acquire_or_renew(l, &acquired, &e);
    if (st != AIT_OK) {
        return -(int)st;
    }
    return acquired;
}

static void advance(fixture *fx, int64_t ns)
{
    atomic_fetch_add(&fx->fc.mono, ns);
}

/* ---- tests ---- */

static void test_acquire_absent_lease(void **state)
{
    fixture *fx = *state;
    ait_leader *a = candidate(fx, "a", &fx->clock, NULL);
    assert_int_equal(step(a), 1);
    assert_int_equal(fx->api.creates, 1);
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "a");
    assert_int_equal(stored_int(&fx->api, "spec.leaseDurationSeconds"), 15);
    assert_int_equal(stored_int(&fx->api, "spec.leaseTransitions"), 0);
    /* MicroTime: microseconds, UTC, and the fake wall clock's value */
    const char *renew = stored_str(&fx->api, "spec.renewTime");
    assert_non_null(renew);
    assert_int_equal(strlen(renew), strlen("2026-01-01T00:08:20.000000Z"));
    int64_t t = 0;
    assert_int_equal(ait_time_parse_rfc3339(renew, &t), AIT_OK);
    assert_int_equal(t, fc_now(&fx->fc));
    assert_string_equal(stored_str(&fx->api, "spec.acquireTime"), renew);
    char *h = ait_leader_holder(a);
    assert_string_equal(h, "a");
    ait_free(h);
    ait_leader_free(a);
}

static void test_expiry_by_observed_time(void **state)
{
    fixture *fx = *state;
    ait_leader *a = candidate(fx, "a", &fx->clock, NULL);
    ait_leader *b = candidate(fx, "b", &fx->clock, NULL);
    assert_int_equal(step(a), 1);
    assert_int_equal(step(b), 0);
    /* a keeps renewing: b sees the record change and never takes it */
    for (int i = 0; i < 10; i++) {
        advance(fx, 4 * AIT_NS_PER_S);
        assert_int_equal(step(a), 1);
        assert_int_equal(step(b), 0);
    }
    const char *acq = stored_str(&fx->api, "spec.acquireTime");
    char *acq_copy = ait_strdup(acq);
    /* a renewal keeps acquireTime and transitions and moves renewTime */
    assert_string_not_equal(stored_str(&fx->api, "spec.renewTime"), acq_copy);
    assert_int_equal(stored_int(&fx->api, "spec.leaseTransitions"), 0);

    /* a stops renewing: b waits a full lease duration from its last observed change */
    advance(fx, 14 * AIT_NS_PER_S);
    assert_int_equal(step(b), 0);
    advance(fx, 1 * AIT_NS_PER_S + 1);
    assert_int_equal(step(b), 1);
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "b");
    assert_int_equal(stored_int(&fx->api, "spec.leaseTransitions"), 1);
    assert_string_not_equal(stored_str(&fx->api, "spec.acquireTime"), acq_copy);
    ait_free(acq_copy);
    /* a comes back: sees b's fresh lease, does not take it */
    assert_int_equal(step(a), 0);
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "b");
    char *h = ait_leader_holder(a);
    assert_string_equal(h, "b");
    ait_free(h);
    ait_leader_free(a);
    ait_leader_free(b);
}

static void test_skewed_remote_times_do_not_matter(void **state)
{
    fixture *fx = *state;
    ait_leader *b = candidate(fx, "b", &fx->clock, NULL);
    /* a lease written by a machine whose clock is an hour behind: expired by its renewTime, but
     * b has only just observed it, so b must wait the lease duration */
    json_object *obj = NULL;
    const char *txt = "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
                      "{\"name\":\"lock\",\"namespace\":\"ns1\"},\"spec\":{\"holderIdentity\":"
                      "\"old\",\"leaseDurationSeconds\":10,\"acquireTime\":\"2020-01-01T00:00:00."
                      "000000Z\",\"renewTime\":\"2020-01-01T00:00:00.000000Z\","
                      "\"leaseTransitions\":3}}";
    assert_int_equal(ait_json_parse(txt, strlen(txt), &obj, NULL), AIT_OK);
    store(&fx->api, obj);
    assert_int_equal(step(b), 0);
    advance(fx, 9 * AIT_NS_PER_S);
    assert_int_equal(step(b), 0);
    advance(fx, 1 * AIT_NS_PER_S + 1); /* the record's own 10 s duration counts */
    assert_int_equal(step(b), 1);
    assert_int_equal(stored_int(&fx->api, "spec.leaseTransitions"), 4);
    ait_leader_free(b);
}

static void test_conflict_then_reread(void **state)
{
    fixture *fx = *state;
    ait_leader *a = candidate(fx, "a", &fx->clock, NULL);
    assert_int_equal(step(a), 1);
    fx->api.bump_before_put = 1;
    advance(fx, AIT_NS_PER_S);
    assert_int_equal(step(a), -(int)AIT_ERR_CONFLICT);
    assert_int_equal(fx->api.conflicts, 1);
    /* the next attempt reads the new resourceVersion and renews */
    assert_int_equal(step(a), 1);
    assert_int_equal(fx->api.conflicts, 1);
    ait_leader_free(a);
}

static void test_release_lets_other_take_over_at_once(void **state)
{
    fixture *fx = *state;
    ait_leader *a = candidate(fx, "a", &fx->clock, NULL);
    ait_leader *b = candidate(fx, "b", &fx->clock, NULL);
    assert_int_equal(step(a), 1);
    assert_int_equal(step(b), 0);
    assert_int_equal(ait_leader_release(a, NULL), AIT_OK);
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "");
    assert_int_equal(stored_int(&fx->api, "spec.leaseDurationSeconds"), 1);
    /* no time passes: b takes it on its next step */
    assert_int_equal(step(b), 1);
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "b");
    assert_int_equal(stored_int(&fx->api, "spec.leaseTransitions"), 1);
    /* releasing when not the holder writes nothing */
    int puts = fx->api.puts;
    assert_int_equal(ait_leader_release(a, NULL), AIT_OK);
    assert_int_equal(fx->api.puts, puts);
    ait_leader_free(a);
    ait_leader_free(b);
}

static void test_options_validated(void **state)
{
    fixture *fx = *state;
    ait_leader_options o = {0};
    o.namespace_ = "ns1";
    o.name = "lock";
    o.identity = "a";
    o.lease_duration_ns = 10 * AIT_NS_PER_S;
    o.renew_deadline_ns = 10 * AIT_NS_PER_S;
    ait_leader *l = NULL;
    ait_error e = {0};
    assert_int_equal(ait_leader_new(fx->rest, &o, &l, &e), AIT_ERR_INVALID);
    assert_null(l);
    o.renew_deadline_ns = 2 * AIT_NS_PER_S;
    o.retry_period_ns = 2 * AIT_NS_PER_S; /* 1.2 * 2 s > 2 s */
    assert_int_equal(ait_leader_new(fx->rest, &o, &l, &e), AIT_ERR_INVALID);
    o.identity = "";
    o.retry_period_ns = AIT_NS_PER_S;
    assert_int_equal(ait_leader_new(fx->rest, &o, &l, &e), AIT_ERR_INVALID);
    ait_leader_free(NULL);
}

/* ---- the thread, with real time and short timings ---- */

typedef struct cb_counts {
    _Atomic int started, stopped, observed;
    _Atomic int64_t stopped_at;
    char last_observed[64];
    pthread_mutex_t mu;
} cb_counts;

static void cb_started(void *ctx)
{
    atomic_fetch_add(&((cb_counts *)ctx)->started, 1);
}
static void cb_stopped(void *ctx)
{
    atomic_store(&((cb_counts *)ctx)->stopped_at, ait_time_mono_ns());
    atomic_fetch_add(&((cb_counts *)ctx)->stopped, 1);
}
static void cb_new_leader(void *ctx, const char *id)
{
    cb_counts *c = ctx;
    pthread_mutex_lock(&c->mu);
    snprintf(c->last_observed, sizeof(c->last_observed), "%s", id);
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->observed, 1);
}

static int wait_for(_Atomic int *v, int want, int64_t timeout_ns)
{
    int64_t end = ait_time_mono_ns() + timeout_ns;
    while (atomic_load(v) < want) {
        if (ait_time_mono_ns() > end) {
            return 0;
        }
        ait_time_sleep_ns(5 * AIT_NS_PER_MS);
    }
    return 1;
}

static void test_thread_loses_on_renew_failure_and_releases_on_stop(void **state)
{
    fixture *fx = *state;
    static cb_counts c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.mu, NULL);
    ait_leader_callbacks cb = {&c, cb_started, cb_stopped, cb_new_leader};
    ait_leader_options o = {0};
    o.namespace_ = "ns1";
    o.name = "lock";
    o.identity = "t";
    o.lease_duration_ns = 600 * AIT_NS_PER_MS;
    o.renew_deadline_ns = 400 * AIT_NS_PER_MS;
    o.retry_period_ns = 100 * AIT_NS_PER_MS;
    o.callbacks = cb;
    ait_leader *l = NULL;
    assert_int_equal(ait_leader_new(fx->rest, &o, &l, NULL), AIT_OK);
    assert_int_equal(ait_leader_start(l, NULL), AIT_OK);
    assert_true(wait_for(&c.started, 1, 2 * AIT_NS_PER_S));
    assert_true(ait_leader_is_leader(l));
    assert_true(wait_for(&c.observed, 1, AIT_NS_PER_S));
    pthread_mutex_lock(&c.mu);
    assert_string_equal(c.last_observed, "t");
    pthread_mutex_unlock(&c.mu);
    /* it renews: several PUTs within half a second */
    int puts = fx->api.puts;
    ait_time_sleep_ns(450 * AIT_NS_PER_MS);
    pthread_mutex_lock(&fx->api.mu);
    assert_true(fx->api.puts - puts >= 2);
    /* the API fails: leadership is lost after the renew deadline, not before */
    fx->api.fail_all = 1;
    int64_t t0 = ait_time_mono_ns();
    pthread_mutex_unlock(&fx->api.mu);
    assert_true(wait_for(&c.stopped, 1, 3 * AIT_NS_PER_S));
    int64_t lost_after = atomic_load(&c.stopped_at) - t0;
    assert_true(lost_after >= 250 * AIT_NS_PER_MS);
    assert_true(lost_after < 1500 * AIT_NS_PER_MS);
    assert_false(ait_leader_is_leader(l));
    /* the API recovers: it becomes a candidate again and re-acquires */
    pthread_mutex_lock(&fx->api.mu);
    fx->api.fail_all = 0;
    pthread_mutex_unlock(&fx->api.mu);
    assert_true(wait_for(&c.started, 2, 3 * AIT_NS_PER_S));
    /* a clean stop releases the lease */
    ait_leader_stop(l);
    assert_int_equal(atomic_load(&c.stopped), 2);
    assert_false(ait_leader_is_leader(l));
    assert_string_equal(stored_str(&fx->api, "spec.holderIdentity"), "");
    assert_int_equal(stored_int(&fx->api, "spec.leaseDurationSeconds"), 1);
    ait_leader_stop(l); /* idempotent */
    ait_leader_free(l);
    pthread_mutex_destroy(&c.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acquire_absent_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_by_observed_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skewed_remote_times_do_not_matter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_then_reread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_lets_other_take_over_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_loses_on_renew_failure_and_releases_on_stop,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

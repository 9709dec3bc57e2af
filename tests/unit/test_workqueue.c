/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for kube/workqueue: dedupe, per-key exclusivity under several workers, delayed adds
 * driven by a fake clock, the rate limiter's backoff and token bucket, forget, hooks, shutdown
 * and drain. */
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
#include "core/time.h"
#include "kube/workqueue.h"

/* ---- fake clock ---- */

typedef struct fake_clock {
    _Atomic int64_t mono;
} fake_clock;

static int64_t fake_mono(void *ctx)
{
    return atomic_load(&((fake_clock *)ctx)->mono);
}

static int64_t fake_now(void *ctx)
{
    return INT64_C(1700000000) * AIT_NS_PER_S + fake_mono(ctx);
}

static ait_clock make_clock(fake_clock *fc)
{
    atomic_store(&fc->mono, 1000 * AIT_NS_PER_S);
    ait_clock c = {fc, fake_now, fake_mono};
    return c;
}

static void advance(fake_clock *fc, int64_t ns)
{
    atomic_fetch_add(&fc->mono, ns);
}

static ait_workqueue *new_queue(const ait_clock *clock, const ait_workqueue_hooks *hooks)
{
    ait_workqueue_options o = {0};
    o.name = "test";
    o.clock = clock;
    o.hooks = hooks;
    ait_workqueue *q = NULL;
    assert_int_equal(ait_workqueue_new(&o, &q, NULL), AIT_OK);
    assert_non_null(q);
    return q;
}

static void expect_get(ait_workqueue *q, const char *want)
{
    char *k = NULL;
    assert_int_equal(ait_workqueue_get_timeout(q, 2 * AIT_NS_PER_S, &k), AIT_OK);
    assert_string_equal(k, want);
    ait_free(k);
}

static void test_dedupe_and_readd_while_processing(void **state)
{
    (void)state;
    ait_workqueue *q = new_queue(NULL, NULL);
    ait_workqueue_add(q, "ns/a");
    ait_workqueue_add(q, "ns/a");
    ait_workqueue_add(q, "ns/b");
    ait_workqueue_add(q, "ns/a");
    assert_int_equal(ait_workqueue_len(q), 2);

    expect_get(q, "ns/a");
    /* a is processing: a re-add is remembered but not handed out */
    ait_workqueue_add(q, "ns/a");
    ait_workqueue_add(q, "ns/a");
    assert_int_equal(ait_workqueue_len(q), 1);
    expect_get(q, "ns/b");
    assert_int_equal(ait_workqueue_len(q), 0);
    char *k = NULL;
    assert_int_equal(ait_workqueue_get_timeout(q, 20 * AIT_NS_PER_MS, &k), AIT_ERR_TIMEOUT);
    assert_null(k);
    ait_workqueue_done(q, "ns/a");
    assert_int_equal(ait_workqueue_len(q), 1);
    expect_get(q, "ns/a");
    ait_workqueue_done(q, "ns/a");
    ait_workqueue_done(q, "ns/b");
    assert_int_equal(ait_workqueue_len(q), 0);
    /* done without a re-add does not queue again */
    assert_int_equal(ait_workqueue_get_timeout(q, 10 * AIT_NS_PER_MS, &k), AIT_ERR_TIMEOUT);
    ait_workqueue_free(q);
}

/* ---- exclusivity with several workers ---- */

#define NKEYS 64
#define NWORKERS 4
#define NADDS 20000

typedef struct excl_state {
    ait_workqueue *q;
    _Atomic int in_flight[NKEYS];
    _Atomic int pending[NKEYS];
    _Atomic int violations;
    _Atomic int processed;
} excl_state;

/* Runs on worker threads, so no cmocka assertions here: a bad key counts as a violation. */
static int key_index(const char *k)
{
    int i = -1;
    if (sscanf(k, "ns/k%d", &i) != 1 || i < 0 || i >= NKEYS) {
        return -1;
    }
    return i;
}

static void *excl_worker(void *arg)
{
    excl_state *s = arg;
    for (;;) {
        char *k = NULL;
        if (ait_workqueue_get(s->q, &k) != AIT_OK) {
            break;
        }
        int i = key_index(k);
        if (i < 0) {
            atomic_fetch_add(&s->violations, 1);
            ait_workqueue_done(s->q, k);
            ait_free(k);
            continue;
        }
        atomic_store(&s->pending[i], 0);
        if (atomic_fetch_add(&s->in_flight[i], 1) != 0) {
            atomic_fetch_add(&s->violations, 1);
        }
        if (atomic_fetch_add(&s->processed, 1) % 64 == 0) {
            ait_time_sleep_ns(20000); /* let re-adds pile up while processing */
        }
        atomic_fetch_sub(&s->in_flight[i], 1);
        ait_workqueue_done(s->q, k);
        ait_free(k);
    }
    return NULL;
}

static void test_exclusivity_many_workers(void **state)
{
    (void)state;
    static excl_state s;
    memset(&s, 0, sizeof(s));
    s.q = new_queue(NULL, NULL);
    pthread_t th[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, excl_worker, &s), 0);
    }
    unsigned seed = 12345;
    for (int n = 0; n < NADDS; n++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 16) % NKEYS);
        char key[32];
        snprintf(key, sizeof(key), "ns/k%d", i);
        atomic_store(&s.pending[i], 1);
        ait_workqueue_add(s.q, key);
    }
    /* wait until everything added has been picked up */
    for (int tries = 0; tries < 1000 && ait_workqueue_len(s.q) > 0; tries++) {
        ait_time_sleep_ns(2 * AIT_NS_PER_MS);
    }
    ait_workqueue_shutdown_drain(s.q);
    for (int i = 0; i < NWORKERS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&s.violations), 0);
    for (int i = 0; i < NKEYS; i++) {
        assert_int_equal(atomic_load(&s.pending[i]), 0);
        assert_int_equal(atomic_load(&s.in_flight[i]), 0);
    }
    /* dedupe collapsed many of the adds, but every key was processed at least once */
    int processed = atomic_load(&s.processed);
    assert_true(processed >= NKEYS);
    assert_true(processed <= NADDS);
    ait_workqueue_free(s.q);
}

static void test_add_after_ordering_fake_clock(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clock = make_clock(&fc);
    ait_workqueue *q = new_queue(&clock, NULL);
    ait_workqueue_add_after(q, "c", 300 * AIT_NS_PER_MS);
    ait_workqueue_add_after(q, "a", 100 * AIT_NS_PER_MS);
    ait_workqueue_add_after(q, "b", 200 * AIT_NS_PER_MS);
    ait_workqueue_add_after(q, "x", 500 * AIT_NS_PER_MS);
    ait_workqueue_add_after(q, "x", 150 * AIT_NS_PER_MS); /* earlier: moves x to 150 */
    ait_workqueue_add_after(q, "a", 400 * AIT_NS_PER_MS); /* later: ignored */
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 0);

    advance(&fc, 99 * AIT_NS_PER_MS);
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 0);
    advance(&fc, 1 * AIT_NS_PER_MS);
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 1);
    expect_get(q, "a");
    ait_workqueue_done(q, "a");

    advance(&fc, 60 * AIT_NS_PER_MS);
    ait_workqueue_tick(q);
    expect_get(q, "x");
    ait_workqueue_done(q, "x");
    advance(&fc, 140 * AIT_NS_PER_MS); /* t = 300: b and c both due, in time order */
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 2);
    expect_get(q, "b");
    expect_get(q, "c");
    ait_workqueue_done(q, "b");
    ait_workqueue_done(q, "c");
    /* "a" at 400 was ignored, so nothing more comes */
    advance(&fc, AIT_NS_PER_S);
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 0);
    /* a zero delay is an immediate add */
    ait_workqueue_add_after(q, "now", 0);
    assert_int_equal(ait_workqueue_len(q), 1);
    ait_workqueue_free(q);
}

static void test_add_after_real_timer_thread(void **state)
{
    (void)state;
    ait_workqueue *q = new_queue(NULL, NULL);
    int64_t t0 = ait_time_mono_ns();
    ait_workqueue_add_after(q, "late", 60 * AIT_NS_PER_MS);
    ait_workqueue_add_after(q, "early", 30 * AIT_NS_PER_MS);
    expect_get(q, "early");
    int64_t t1 = ait_time_mono_ns();
    expect_get(q, "late");
    int64_t t2 = ait_time_mono_ns();
    assert_true(t1 - t0 >= 30 * AIT_NS_PER_MS);
    assert_true(t2 - t0 >= 60 * AIT_NS_PER_MS);
    assert_true(t2 - t0 < 1500 * AIT_NS_PER_MS);
    ait_workqueue_free(q);
}

static void test_backoff_sequence_and_forget(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clock = make_clock(&fc);
    ait_workqueue *q = new_queue(&clock, NULL);
    int64_t want = 5 * AIT_NS_PER_MS;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ait_workqueue_num_requeues(q, "k"), i);
        assert_int_equal(ait_workqueue_when(q, "k"), want);
        want *= 2;
    }
    assert_int_equal(ait_workqueue_num_requeues(q, "k"), 8);
    /* another key has its own backoff */
    assert_int_equal(ait_workqueue_when(q, "other"), 5 * AIT_NS_PER_MS);
    ait_workqueue_forget(q, "k");
    assert_int_equal(ait_workqueue_num_requeues(q, "k"), 0);
    assert_int_equal(ait_workqueue_when(q, "k"), 5 * AIT_NS_PER_MS);

    /* add_rate_limited waits the backoff, then delivers */
    ait_workqueue_forget(q, "k");
    ait_workqueue_add_rate_limited(q, "k");
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 0);
    advance(&fc, 5 * AIT_NS_PER_MS);
    ait_workqueue_tick(q);
    assert_int_equal(ait_workqueue_len(q), 1);
    assert_int_equal(ait_workqueue_num_requeues(q, "k"), 1);
    ait_workqueue_free(q);
}

static void test_backoff_cap(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clock = make_clock(&fc);
    ait_workqueue *q = new_queue(&clock, NULL);
    int64_t d = 0;
    for (int i = 0; i < 40; i++) {
        d = ait_workqueue_when(q, "k");
    }
    assert_int_equal(d, 1000 * AIT_NS_PER_S); /* 5 ms * 2^39 is far past the 1000 s cap */
    ait_workqueue_free(q);
}

static void test_token_bucket(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clock = make_clock(&fc);
    ait_workqueue *q = new_queue(&clock, NULL);
    char key[32];
    /* burst 100: the first 100 distinct keys get only their 5 ms backoff */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ait_workqueue_when(q, key), 5 * AIT_NS_PER_MS);
    }
    /* then 10 qps: 100 ms, 200 ms, ... */
    assert_int_equal(ait_workqueue_when(q, "k100"), 100 * AIT_NS_PER_MS);
    assert_int_equal(ait_workqueue_when(q, "k101"), 200 * AIT_NS_PER_MS);
    /* one second refills 10 tokens, paying back the 2 owed */
    advance(&fc, AIT_NS_PER_S);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "j%d", i);
        assert_int_equal(ait_workqueue_when(q, key), 5 * AIT_NS_PER_MS);
    }
    assert_int_equal(ait_workqueue_when(q, "j8"), 100 * AIT_NS_PER_MS);
    ait_workqueue_free(q);
}

/* ---- hooks ---- */

typedef struct hook_counts {
    int adds, retries, depth_calls;
    int64_t last_depth, latency, work;
} hook_counts;

static void h_depth(void *ctx, const char *queue, int64_t depth)
{
    assert_string_equal(queue, "test");
    ((hook_counts *)ctx)->depth_calls++;
    ((hook_counts *)ctx)->last_depth = depth;
}
static void h_add(void *ctx, const char *queue)
{
    (void)queue;
    ((hook_counts *)ctx)->adds++;
}
static void h_latency(void *ctx, const char *queue, int64_t ns)
{
    (void)queue;
    ((hook_counts *)ctx)->latency = ns;
}
static void h_work(void *ctx, const char *queue, int64_t ns)
{
    (void)queue;
    ((hook_counts *)ctx)->work = ns;
}
static void h_retry(void *ctx, const char *queue)
{
    (void)queue;
    ((hook_counts *)ctx)->retries++;
}

static void test_hooks(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clock = make_clock(&fc);
    hook_counts hc = {0};
    ait_workqueue_hooks hooks = {&hc, h_depth, h_add, h_latency, h_work, h_retry};
    ait_workqueue *q = new_queue(&clock, &hooks);
    ait_workqueue_add(q, "a");
    ait_workqueue_add(q, "a"); /* collapsed: not an add */
    ait_workqueue_add(q, "b");
    assert_int_equal(hc.adds, 2);
    assert_int_equal(hc.last_depth, 2);
    advance(&fc, 7 * AIT_NS_PER_MS);
    expect_get(q, "a");
    assert_int_equal(hc.latency, 7 * AIT_NS_PER_MS);
    assert_int_equal(hc.last_depth, 1);
    advance(&fc, 3 * AIT_NS_PER_MS);
    ait_workqueue_done(q, "a");
    assert_int_equal(hc.work, 3 * AIT_NS_PER_MS);
    ait_workqueue_add_rate_limited(q, "c");
    ait_workqueue_add_after(q, "d", AIT_NS_PER_S);
    assert_int_equal(hc.retries, 2);
    assert_int_equal(hc.adds, 2); /* still delayed */
    ait_workqueue_free(q);
}

/* ---- shutdown ---- */

typedef struct slow_worker {
    ait_workqueue *q;
    _Atomic int got;
    _Atomic int finished;
    ait_status last;
} slow_worker;

static void *slow_worker_main(void *arg)
{
    slow_worker *w = arg;
    char *k = NULL;
    if (ait_workqueue_get(w->q, &k) == AIT_OK) {
        atomic_store(&w->got, 1);
        ait_time_sleep_ns(100 * AIT_NS_PER_MS);
        atomic_store(&w->finished, 1);
        ait_workqueue_done(w->q, k);
        ait_free(k);
    }
    w->last = ait_workqueue_get(w->q, &k);
    return NULL;
}

static void test_shutdown_drain_waits_for_in_flight(void **state)
{
    (void)state;
    slow_worker w = {0};
    w.q = new_queue(NULL, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_worker_main, &w), 0);
    ait_workqueue_add(w.q, "x");
    while (!atomic_load(&w.got)) {
        ait_time_sleep_ns(AIT_NS_PER_MS);
    }
    ait_workqueue_add_after(w.q, "delayed", 10 * AIT_NS_PER_MS);
    ait_workqueue_shutdown_drain(w.q);
    /* drain returned only after the in-flight key was done */
    assert_int_equal(atomic_load(&w.finished), 1);
    assert_true(ait_workqueue_shutting_down(w.q));
    pthread_join(th, NULL);
    assert_int_equal(w.last, AIT_ERR_CANCELLED);
    /* adds after shutdown are ignored, and the delayed key was dropped */
    ait_workqueue_add(w.q, "late");
    ait_time_sleep_ns(20 * AIT_NS_PER_MS);
    assert_int_equal(ait_workqueue_len(w.q), 0);
    ait_workqueue_free(w.q);
}

static void *blocked_getter(void *arg)
{
    slow_worker *w = arg;
    char *k = NULL;
    w->last = ait_workqueue_get(w->q, &k);
    atomic_store(&w->finished, 1);
    return NULL;
}

static void test_shutdown_wakes_getters(void **state)
{
    (void)state;
    slow_worker w = {0};
    w.q = new_queue(NULL, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_getter, &w), 0);
    ait_time_sleep_ns(20 * AIT_NS_PER_MS);
    assert_int_equal(atomic_load(&w.finished), 0);
    ait_workqueue_shutdown(w.q);
    pthread_join(th, NULL);
    assert_int_equal(w.last, AIT_ERR_CANCELLED);
    ait_workqueue_free(w.q);
}

static void test_shutdown_hands_out_queued_keys(void **state)
{
    (void)state;
    ait_workqueue *q = new_queue(NULL, NULL);
    ait_workqueue_add(q, "a");
    ait_workqueue_add(q, "b");
    ait_workqueue_shutdown(q);
    expect_get(q, "a");
    expect_get(q, "b");
    char *k = NULL;
    assert_int_equal(ait_workqueue_get(q, &k), AIT_ERR_CANCELLED);
    ait_workqueue_done(q, "a");
    ait_workqueue_done(q, "b");
    ait_workqueue_free(q);
    ait_workqueue_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe_and_readd_while_processing),
        cmocka_unit_test(test_exclusivity_many_workers),
        cmocka_unit_test(test_add_after_ordering_fake_clock),
        cmocka_unit_test(test_add_after_real_timer_thread),
        cmocka_unit_test(test_backoff_sequence_and_forget),
        cmocka_unit_test(test_backoff_cap),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_shutdown_drain_waits_for_in_flight),
        cmocka_unit_test(test_shutdown_wakes_getters),
        cmocka_unit_test(test_shutdown_hands_out_queued_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

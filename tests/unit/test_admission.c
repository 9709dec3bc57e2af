/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for reconcile/admission: maxRunning under concurrent workers, the per-namespace
 * limit, the start rate over simulated minutes, fair order across namespaces, FIFO and positions,
 * reservations (expiry, release, cache visibility) and a restart that keeps limit and order. The
 * pods cache is a small in-memory stand-in for the informer's store (running/pod_seen over a list
 * of pods the test adds and finishes), driven by a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/time.h"
#include "reconcile/admission.h"

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

/* ---- pods cache stand-in and requeue recorder ---- */

typedef struct pod {
    char ns[32];
    char name[64];
    int terminal;
} pod;

#define MAX_PODS 4096
#define MAX_REQ 4096

typedef struct cache {
    pthread_mutex_t mu;
    pod pods[MAX_PODS];
    size_t n;
    char req[MAX_REQ][96]; /* "ns/name" in requeue order */
    size_t nreq, req_head;
    atomic_size_t requeues;
} cache;

static size_t cache_running(void *ctx, const char *ns)
{
    cache *c = ctx;
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->pods[i].terminal && (ns == NULL || strcmp(c->pods[i].ns, ns) == 0)) {
            n++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

static int cache_pod_seen(void *ctx, const char *ns, const char *name)
{
    cache *c = ctx;
    pthread_mutex_lock(&c->mu);
    int seen = 0;
    for (size_t i = 0; i < c->n && !seen; i++) {
        seen = strcmp(c->pods[i].ns, ns) == 0 && strcmp(c->pods[i].name, name) == 0;
    }
    pthread_mutex_unlock(&c->mu);
    return seen;
}

static void cache_requeue(void *ctx, const char *ns, const char *name)
{
    cache *c = ctx;
    atomic_fetch_add(&c->requeues, 1);
    pthread_mutex_lock(&c->mu);
    if (c->nreq < MAX_REQ) {
        snprintf(c->req[c->nreq++], sizeof(c->req[0]), "%s/%s", ns, name);
    }
    pthread_mutex_unlock(&c->mu);
}

static void pod_add(cache *c, const char *ns, const char *name)
{
    pthread_mutex_lock(&c->mu);
    assert_true(c->n < MAX_PODS);
    pod *p = &c->pods[c->n++];
    snprintf(p->ns, sizeof(p->ns), "%s", ns);
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->terminal = 0;
    pthread_mutex_unlock(&c->mu);
}

/* Marks the pod Succeeded (still in the cache, no longer running). */
static void pod_finish(cache *c, const char *ns, const char *name)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->pods[i].ns, ns) == 0 && strcmp(c->pods[i].name, name) == 0) {
            c->pods[i].terminal = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Removes the pod from the cache (deleted). */
static void pod_delete(cache *c, const char *ns, const char *name)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->pods[i].ns, ns) == 0 && strcmp(c->pods[i].name, name) == 0) {
            c->pods[i] = c->pods[--c->n];
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Pops the oldest requeued key into out; 0 when none. */
static int next_requeued(cache *c, char *out, size_t size)
{
    pthread_mutex_lock(&c->mu);
    int got = c->req_head < c->nreq;
    if (got) {
        snprintf(out, size, "%s", c->req[c->req_head++]);
    }
    pthread_mutex_unlock(&c->mu);
    return got;
}

static int was_requeued(cache *c, const char *key)
{
    pthread_mutex_lock(&c->mu);
    int found = 0;
    for (size_t i = 0; i < c->nreq && !found; i++) {
        found = strcmp(c->req[i], key) == 0;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static cache *cache_new(void)
{
    cache *c = ait_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void cache_free(cache *c)
{
    pthread_mutex_destroy(&c->mu);
    ait_free(c);
}

static ait_admission *new_adm(cache *c, const ait_clock *clk, int max, int per_ns, int spm)
{
    ait_admission_config cfg = {0};
    cfg.max_running = max;
    cfg.max_running_per_namespace = per_ns;
    cfg.starts_per_minute = spm;
    cfg.cache.ctx = c;
    cfg.cache.running = cache_running;
    cfg.cache.pod_seen = cache_pod_seen;
    cfg.cache.requeue = cache_requeue;
    ait_admission *adm = NULL;
    assert_int_equal(ait_admission_new(&cfg, clk, &adm, NULL), AIT_OK);
    assert_non_null(adm);
    return adm;
}

static ait_admission_decision ask(ait_admission *adm, const char *ns, const char *name,
                                  int64_t creation)
{
    ait_admission_decision d;
    assert_int_equal(ait_admission_request(adm, ns, name, creation, &d), AIT_OK);
    return d;
}

/* Asks, expects ADMIT, and creates the pod "<name>-a1" as the reconciler would. */
static void admit_and_start(ait_admission *adm, cache *c, const char *ns, const char *name,
                            int64_t creation)
{
    ait_admission_decision d = ask(adm, ns, name, creation);
    assert_int_equal(d.verdict, AIT_ADMISSION_ADMIT);
    assert_null(d.reason);
    assert_int_equal(d.position, 0);
    char pn[64];
    snprintf(pn, sizeof(pn), "%s-a1", name);
    pod_add(c, ns, pn);
    ait_admission_started(adm, ns, name, pn);
}

static void expect_wait(ait_admission_decision d, const char *reason, size_t position)
{
    assert_int_equal(d.verdict, AIT_ADMISSION_WAIT);
    assert_non_null(d.reason);
    assert_string_equal(d.reason, reason);
    assert_int_equal(d.position, position);
    assert_true(d.retry_after_ns > 0);
}

/* ---- tests ---- */

static void test_new_rejects_bad_config(void **state)
{
    (void)state;
    cache *c = cache_new();
    ait_admission_config cfg = {0};
    cfg.cache.ctx = c;
    cfg.cache.running = cache_running;
    cfg.cache.pod_seen = cache_pod_seen;
    ait_admission *adm = (ait_admission *)1;
    ait_error err;
    cfg.max_running = -1;
    assert_int_equal(ait_admission_new(&cfg, NULL, &adm, &err), AIT_ERR_INVALID);
    assert_null(adm);
    assert_non_null(strstr(err.msg, "maxRunning=-1"));
    cfg.max_running = 1;
    cfg.cache.pod_seen = NULL;
    assert_int_equal(ait_admission_new(&cfg, NULL, &adm, &err), AIT_ERR_INVALID);
    cfg.cache.pod_seen = cache_pod_seen;
    assert_int_equal(ait_admission_new(&cfg, NULL, &adm, &err), AIT_OK);
    ait_admission_decision d;
    assert_int_equal(ait_admission_request(adm, NULL, "x", 0, &d), AIT_ERR_INVALID);
    ait_admission_free(adm);
    ait_admission_free(NULL);
    cache_free(c);
}

/* maxRunning counts pods in the cache and grants not yet visible there. */
static void test_max_running_counts_cache_and_reservations(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 3, 0, 0);

    admit_and_start(adm, c, "ns", "t1", 1);
    /* t2 admitted, pod not created yet: it still holds a slot. */
    ait_admission_decision d = ask(adm, "ns", "t2", 2);
    assert_int_equal(d.verdict, AIT_ADMISSION_ADMIT);
    /* Asking again while holding the grant does not take a second slot. */
    d = ask(adm, "ns", "t2", 2);
    assert_int_equal(d.verdict, AIT_ADMISSION_ADMIT);
    /* t3 started, but the cache has not seen its pod yet. */
    d = ask(adm, "ns", "t3", 3);
    assert_int_equal(d.verdict, AIT_ADMISSION_ADMIT);
    ait_admission_started(adm, "ns", "t3", "t3-a1");
    assert_int_equal(ait_admission_reserved(adm), 2); /* t1's pod is in the cache */

    d = ask(adm, "ns", "t4", 4);
    expect_wait(d, AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    assert_int_equal(d.limit, 3);
    assert_int_equal(d.depth, 1);
    d = ask(adm, "ns", "t5", 5);
    expect_wait(d, AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    assert_int_equal(ait_admission_depth(adm), 2);

    /* The cache shows t3's pod: it is counted once, not twice, and no slot frees. */
    pod_add(c, "ns", "t3-a1");
    assert_int_equal(ait_admission_reserved(adm), 1);
    expect_wait(ask(adm, "ns", "t4", 4), AIT_ADMISSION_REASON_MAX_RUNNING, 1);

    /* t2's create failed: the slot returns and the head of the queue is asked to come back. */
    assert_false(was_requeued(c, "ns/t4"));
    ait_admission_release(adm, "ns", "t2");
    assert_true(was_requeued(c, "ns/t4"));
    assert_false(was_requeued(c, "ns/t5"));
    /* Only the head may take the one free slot. */
    expect_wait(ask(adm, "ns", "t5", 5), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    admit_and_start(adm, c, "ns", "t4", 4);
    expect_wait(ask(adm, "ns", "t5", 5), AIT_ADMISSION_REASON_MAX_RUNNING, 1);

    /* t1's pod succeeds: kick requeues t5, which now starts. */
    pod_finish(c, "ns", "t1-a1");
    ait_admission_forget(adm, "ns", "t1");
    ait_admission_kick(adm);
    assert_true(was_requeued(c, "ns/t5"));
    admit_and_start(adm, c, "ns", "t5", 5);
    assert_int_equal(ait_admission_depth(adm), 0);
    assert_int_equal(cache_running(c, NULL), 3);

    /* forget removes a waiting task from the queue. */
    expect_wait(ask(adm, "ns", "t6", 6), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    ait_admission_forget(adm, "ns", "t6");
    assert_int_equal(ait_admission_depth(adm), 0);

    ait_admission_free(adm);
    cache_free(c);
}

/* A grant whose pod never shows up is freed after the reservation TTL (30 s). */
static void test_reservation_expires(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 1, 0, 0);

    assert_int_equal(ask(adm, "ns", "t1", 1).verdict, AIT_ADMISSION_ADMIT);
    expect_wait(ask(adm, "ns", "t2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    advance(&fc, 29 * AIT_NS_PER_S);
    expect_wait(ask(adm, "ns", "t2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    advance(&fc, 2 * AIT_NS_PER_S);
    assert_int_equal(ask(adm, "ns", "t2", 2).verdict, AIT_ADMISSION_ADMIT);

    /* Started, but the pod never reaches the cache (deleted at once): also freed by the TTL,
     * counted from the start. */
    advance(&fc, 20 * AIT_NS_PER_S);
    ait_admission_started(adm, "ns", "t2", "t2-a1");
    advance(&fc, 20 * AIT_NS_PER_S);
    expect_wait(ask(adm, "ns", "t3", 3), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    advance(&fc, 11 * AIT_NS_PER_S);
    assert_int_equal(ait_admission_reserved(adm), 0);
    assert_int_equal(ask(adm, "ns", "t3", 3).verdict, AIT_ADMISSION_ADMIT);

    ait_admission_free(adm);
    cache_free(c);
}

static void test_per_namespace_limit(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 10, 2, 0);

    admit_and_start(adm, c, "a", "a1", 1);
    admit_and_start(adm, c, "a", "a2", 2);
    ait_admission_decision d = ask(adm, "a", "a3", 3);
    expect_wait(d, AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS, 1);
    assert_int_equal(d.limit, 2);
    /* b is not held back by a's full namespace, though a3 is ahead of it in the fair order. */
    admit_and_start(adm, c, "b", "b1", 4);
    d = ask(adm, "b", "b2", 5);
    assert_int_equal(d.verdict, AIT_ADMISSION_ADMIT);
    /* b2's grant is reserved (pod not created): b is full too. */
    expect_wait(ask(adm, "b", "b3", 6), AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS, 2);
    ait_admission_started(adm, "b", "b2", "b2-a1");
    pod_add(c, "b", "b2-a1");
    expect_wait(ask(adm, "a", "a4", 7), AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS, 3);
    assert_int_equal(cache_running(c, NULL), 4);

    /* a1 ends: a3 (a's head) is requeued and starts; a4 must still wait. */
    pod_finish(c, "a", "a1-a1");
    ait_admission_forget(adm, "a", "a1");
    assert_true(was_requeued(c, "a/a3"));
    assert_false(was_requeued(c, "a/a4"));
    expect_wait(ask(adm, "a", "a4", 7), AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS, 3);
    admit_and_start(adm, c, "a", "a3", 3);
    expect_wait(ask(adm, "a", "a4", 7), AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS, 2);

    ait_admission_free(adm);
    cache_free(c);
}

/* Over ten simulated minutes, with tasks always waiting, no 60 s window holds more than
 * startsPerMinute pod creations, and the limiter still lets that many through per minute. */
static void test_start_rate_window(void **state)
{
    (void)state;
    enum { SPM = 7, SECONDS = 600 };
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 0, 0, SPM);
    int64_t starts[SECONDS];
    size_t n_starts = 0, next = 0, admits = 0;
    int64_t t0 = fake_mono(&fc);
    unsigned seed = 12345;
    while (fake_mono(&fc) - t0 < SECONDS * AIT_NS_PER_S) {
        for (;;) {
            char name[32];
            snprintf(name, sizeof(name), "t%05zu", next);
            ait_admission_decision d = ask(adm, "ns", name, (int64_t)next);
            if (d.verdict == AIT_ADMISSION_WAIT) {
                assert_string_equal(d.reason, AIT_ADMISSION_REASON_START_RATE);
                assert_int_equal(d.limit, SPM);
                assert_true(d.retry_after_ns > 0 && d.retry_after_ns <= 60 * AIT_NS_PER_S);
                break;
            }
            admits++;
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 4 == 0) {
                /* The create failed: the token comes back. */
                ait_admission_release(adm, "ns", name);
                ait_admission_forget(adm, "ns", name);
                continue;
            }
            char pn[40];
            snprintf(pn, sizeof(pn), "%s-a1", name);
            ait_admission_started(adm, "ns", name, pn);
            ait_admission_forget(adm, "ns", name);
            assert_true(n_starts < SECONDS);
            starts[n_starts++] = fake_mono(&fc);
            next++;
        }
        seed = seed * 1103515245u + 12345u;
        advance(&fc, (int64_t)(1 + (seed >> 16) % 3) * AIT_NS_PER_S);
    }
    for (size_t i = 0; i < n_starts; i++) {
        size_t in_window = 0;
        for (size_t k = i; k < n_starts && starts[k] < starts[i] + 60 * AIT_NS_PER_S; k++) {
            in_window++;
        }
        assert_true(in_window <= SPM);
    }
    /* Every minute's tokens were used: 10 windows of 7, the last one possibly cut short. */
    assert_true(n_starts >= SPM * (SECONDS / 60) - SPM);
    assert_true(admits > n_starts); /* some grants were released and their tokens reused */

    ait_admission_free(adm);
    cache_free(c);
}

/* retry_after_ns of a StartRate wait is exactly when the next token returns; note_start seeds
 * starts that happened before a restart. */
static void test_start_rate_retry_after_and_seed(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 0, 0, 2);
    assert_int_equal(ask(adm, "ns", "t1", 1).verdict, AIT_ADMISSION_ADMIT);
    advance(&fc, 10 * AIT_NS_PER_S);
    assert_int_equal(ask(adm, "ns", "t2", 2).verdict, AIT_ADMISSION_ADMIT);
    advance(&fc, 5 * AIT_NS_PER_S);
    ait_admission_decision d = ask(adm, "ns", "t3", 3);
    expect_wait(d, AIT_ADMISSION_REASON_START_RATE, 1);
    assert_int_equal(d.retry_after_ns, 45 * AIT_NS_PER_S);
    d = ask(adm, "ns", "t4", 4);
    expect_wait(d, AIT_ADMISSION_REASON_START_RATE, 2);
    assert_int_equal(d.retry_after_ns, 55 * AIT_NS_PER_S);
    advance(&fc, 45 * AIT_NS_PER_S - 1);
    expect_wait(ask(adm, "ns", "t3", 3), AIT_ADMISSION_REASON_START_RATE, 1);
    advance(&fc, 1);
    assert_int_equal(ask(adm, "ns", "t3", 3).verdict, AIT_ADMISSION_ADMIT);
    ait_admission_free(adm);

    /* A new instance told about two pods created 20 s and 50 s ago (and one 70 s ago, outside
     * the window) has no token until the older of the two is 60 s old. */
    adm = new_adm(c, &clk, 0, 0, 2);
    int64_t wall = fake_now(&fc);
    ait_admission_note_start(adm, wall - 20 * AIT_NS_PER_S);
    ait_admission_note_start(adm, wall - 50 * AIT_NS_PER_S);
    ait_admission_note_start(adm, wall - 70 * AIT_NS_PER_S);
    d = ask(adm, "ns", "t4", 4);
    expect_wait(d, AIT_ADMISSION_REASON_START_RATE, 1);
    assert_int_equal(d.retry_after_ns, 10 * AIT_NS_PER_S);
    advance(&fc, 10 * AIT_NS_PER_S);
    assert_int_equal(ask(adm, "ns", "t4", 4).verdict, AIT_ADMISSION_ADMIT);
    ait_admission_free(adm);
    cache_free(c);
}

/* Processes requeued keys until slots run out, as the work queue would: returns the number of
 * admissions and records them in order. */
static size_t drain_requeues(ait_admission *adm, cache *c, char (*order)[32], size_t *n_order,
                             int64_t (*creation_of)(const char *name))
{
    char key[96];
    size_t admitted = 0;
    while (next_requeued(c, key, sizeof(key))) {
        char *slash = strchr(key, '/');
        assert_non_null(slash);
        *slash = '\0';
        const char *ns = key, *name = slash + 1;
        ait_admission_decision d = ask(adm, ns, name, creation_of(name));
        if (d.verdict != AIT_ADMISSION_ADMIT) {
            continue;
        }
        char pn[64];
        snprintf(pn, sizeof(pn), "%s-a1", name);
        pod_add(c, ns, pn);
        ait_admission_started(adm, ns, name, pn);
        snprintf(order[(*n_order)++], 32, "%s", name);
        admitted++;
    }
    return admitted;
}

/* Names are "<ns><creation>", e.g. "a17". */
static int64_t creation_from_name(const char *name)
{
    int64_t v = 0;
    for (const char *p = name + 1; *p; p++) {
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* 500 tasks in namespace a queued before 5 in b: b's five start within the first ten. */
static void test_fairness_small_namespace_not_starved(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 10, 0, 0);
    /* Ten pods of earlier tasks occupy every slot. */
    for (int i = 0; i < 10; i++) {
        char pn[32];
        snprintf(pn, sizeof(pn), "old%d-a1", i);
        pod_add(c, "z", pn);
    }
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        ait_admission_decision d = ask(adm, "a", name, i);
        expect_wait(d, AIT_ADMISSION_REASON_MAX_RUNNING, (size_t)i + 1);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "b%d", 1000 + i);
        ait_admission_decision d = ask(adm, "b", name, 1000 + i);
        /* Round i of b comes right after round i of a: position 2i + 2. */
        expect_wait(d, AIT_ADMISSION_REASON_MAX_RUNNING, (size_t)(2 * i + 2));
        assert_int_equal(d.depth, 501 + (size_t)i);
    }
    expect_wait(ask(adm, "a", "a5", 5), AIT_ADMISSION_REASON_MAX_RUNNING, 11);
    expect_wait(ask(adm, "a", "a499", 499), AIT_ADMISSION_REASON_MAX_RUNNING, 505);

    /* Old pods finish one at a time; each freed slot goes to the requeued head. */
    char order[64][32];
    size_t n_order = 0;
    for (int i = 0; i < 10; i++) {
        char pn[32];
        snprintf(pn, sizeof(pn), "old%d-a1", i);
        pod_finish(c, "z", pn);
        ait_admission_kick(adm);
        assert_int_equal(drain_requeues(adm, c, order, &n_order, creation_from_name), 1);
    }
    assert_int_equal(n_order, 10);
    size_t b_seen = 0;
    int64_t last_a = -1, last_b = -1;
    for (size_t i = 0; i < n_order; i++) {
        int64_t cr = creation_from_name(order[i]);
        if (order[i][0] == 'b') {
            b_seen++;
            assert_true(cr > last_b); /* FIFO inside b */
            last_b = cr;
        } else {
            assert_true(cr > last_a); /* FIFO inside a */
            last_a = cr;
        }
    }
    assert_int_equal(b_seen, 5);
    assert_string_equal(order[0], "a0");
    assert_string_equal(order[1], "b1000");
    assert_string_equal(order[9], "b1004");
    assert_int_equal(ait_admission_depth(adm), 495);
    assert_int_equal(cache_running(c, NULL), 10);

    /* With several slots free at once, the whole window is requeued and admitted in parallel
     * order: the next five are a5..a9. */
    for (size_t i = 0; i < 5; i++) {
        char pn[48];
        snprintf(pn, sizeof(pn), "%.31s-a1", order[i]);
        pod_finish(c, order[i][0] == 'a' ? "a" : "b", pn);
    }
    ait_admission_kick(adm);
    assert_int_equal(drain_requeues(adm, c, order, &n_order, creation_from_name), 5);
    assert_string_equal(order[10], "a5");
    assert_string_equal(order[14], "a9");
    assert_int_equal(cache_running(c, NULL), 10);

    ait_admission_free(adm);
    cache_free(c);
}

/* FIFO by (creationTimestamp, name) whatever the order the work queue delivers keys in, and
 * positions over the round-robin order. */
static void test_fifo_and_positions(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 1, 0, 0);
    pod_add(c, "z", "busy-a1");
    /* Delivered shuffled; two share a creation time and sort by name. */
    const char *names[] = {"p5", "p3", "p9", "p1", "p7", "p3b"};
    const int64_t cr[] = {5, 3, 9, 1, 7, 3};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(ask(adm, "ns-a", names[i], cr[i]).verdict, AIT_ADMISSION_WAIT);
    }
    ait_admission_enqueue(adm, "ns-b", "q2", 2);
    ait_admission_enqueue(adm, "ns-b", "q1", 1);
    ait_admission_enqueue(adm, "ns-b", "q1", 1); /* idempotent */
    assert_int_equal(ait_admission_depth(adm), 8);
    /* Fair order: p1 q1 | p3 q2 | p3b | p5 | p7 | p9 */
    expect_wait(ask(adm, "ns-a", "p1", 1), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    expect_wait(ask(adm, "ns-b", "q1", 1), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    expect_wait(ask(adm, "ns-a", "p3", 3), AIT_ADMISSION_REASON_MAX_RUNNING, 3);
    expect_wait(ask(adm, "ns-b", "q2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 4);
    expect_wait(ask(adm, "ns-a", "p3b", 3), AIT_ADMISSION_REASON_MAX_RUNNING, 5);
    expect_wait(ask(adm, "ns-a", "p9", 9), AIT_ADMISSION_REASON_MAX_RUNNING, 8);

    /* Start them one slot at a time; after a grant to ns-a, ns-b goes first in a round. */
    const char *want[] = {"p1", "q1", "p3", "q2", "p3b", "p5", "p7", "p9"};
    char prev[64] = "busy-a1", prev_ns[16] = "z";
    for (size_t k = 0; k < 8; k++) {
        pod_finish(c, prev_ns, prev);
        ait_admission_kick(adm);
        char key[96];
        assert_true(next_requeued(c, key, sizeof(key)));
        char *slash = strchr(key, '/');
        *slash = '\0';
        assert_string_equal(slash + 1, want[k]);
        const char *nm = slash + 1;
        int64_t creation = 0;
        for (size_t i = 0; i < 6; i++) {
            if (strcmp(names[i], nm) == 0) {
                creation = cr[i];
            }
        }
        if (nm[0] == 'q') {
            creation = nm[1] - '0';
        }
        admit_and_start(adm, c, key, nm, creation);
        assert_false(next_requeued(c, key, sizeof(key)));
        snprintf(prev, sizeof(prev), "%s-a1", want[k]);
        snprintf(prev_ns, sizeof(prev_ns), "%s", want[k][0] == 'q' ? "ns-b" : "ns-a");
    }
    assert_int_equal(ait_admission_depth(adm), 0);
    ait_admission_free(adm);
    cache_free(c);
}

/* A new instance (restart or new leader) with the same cache holds the limit and the order. */
static void test_restart_keeps_limit_and_order(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 3, 0, 0);
    admit_and_start(adm, c, "ns", "r1", 1);
    admit_and_start(adm, c, "ns", "r2", 2);
    admit_and_start(adm, c, "ns", "r3", 3);
    for (int i = 4; i <= 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        expect_wait(ask(adm, "ns", name, i), AIT_ADMISSION_REASON_MAX_RUNNING, (size_t)i - 3);
    }
    ait_admission_free(adm);

    adm = new_adm(c, &clk, 3, 0, 0);
    /* The new leader's work queue delivers the backlog newest first. */
    for (int i = 8; i >= 4; i--) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        ait_admission_decision d = ask(adm, "ns", name, i);
        assert_int_equal(d.verdict, AIT_ADMISSION_WAIT);
        assert_string_equal(d.reason, AIT_ADMISSION_REASON_MAX_RUNNING);
    }
    for (int i = 4; i <= 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        expect_wait(ask(adm, "ns", name, i), AIT_ADMISSION_REASON_MAX_RUNNING, (size_t)i - 3);
    }
    assert_int_equal(cache_running(c, NULL), 3);
    pod_finish(c, "ns", "r2-a1");
    ait_admission_kick(adm);
    char key[96];
    assert_true(next_requeued(c, key, sizeof(key)));
    assert_string_equal(key, "ns/r4");
    expect_wait(ask(adm, "ns", "r5", 5), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    admit_and_start(adm, c, "ns", "r4", 4);
    expect_wait(ask(adm, "ns", "r5", 5), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    assert_int_equal(cache_running(c, NULL), 3);
    ait_admission_free(adm);
    cache_free(c);
}

/* A waiting task that stops asking (not ready any more, or its forget was missed) leaves the
 * queue after waiter_ttl_ns instead of holding the head; asking again restores its place. */
static void test_stale_waiter_leaves_queue(void **state)
{
    (void)state;
    fake_clock fc;
    ait_clock clk = make_clock(&fc);
    cache *c = cache_new();
    ait_admission *adm = new_adm(c, &clk, 1, 0, 0); /* default TTL: 4 * 30 s */
    pod_add(c, "ns", "busy-a1");
    expect_wait(ask(adm, "ns", "h1", 1), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    expect_wait(ask(adm, "ns", "h2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    advance(&fc, 100 * AIT_NS_PER_S);
    expect_wait(ask(adm, "ns", "h2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    advance(&fc, 21 * AIT_NS_PER_S);
    expect_wait(ask(adm, "ns", "h2", 2), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    assert_int_equal(ait_admission_depth(adm), 1);
    pod_finish(c, "ns", "busy-a1");
    ait_admission_kick(adm);
    assert_true(was_requeued(c, "ns/h2"));
    assert_false(was_requeued(c, "ns/h1"));
    admit_and_start(adm, c, "ns", "h2", 2);
    expect_wait(ask(adm, "ns", "h3", 3), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    expect_wait(ask(adm, "ns", "h1", 1), AIT_ADMISSION_REASON_MAX_RUNNING, 1);
    expect_wait(ask(adm, "ns", "h3", 3), AIT_ADMISSION_REASON_MAX_RUNNING, 2);
    ait_admission_free(adm);
    cache_free(c);
}

/* ---- concurrency: reconcile workers hammering one module ---- */

/* Workers run until the module has granted ADMITS in all (a scheduler that runs one thread at a
 * time, as valgrind's does, needs more iterations for that), MAX_ITERATIONS each at most. */
enum { THREADS = 4, TASKS_PER_THREAD = 6, ADMITS = 300, MAX_ITERATIONS = 200000, LIMIT = 5 };

typedef struct hammer {
    ait_admission *adm;
    cache *c;
    atomic_int live; /* grants the workers hold: admitted and not yet finished or released */
    atomic_int max_live;
    atomic_int admits;
} hammer;

typedef struct worker {
    hammer *h;
    int id;
} worker;

static void note_live(hammer *h)
{
    int now = atomic_fetch_add(&h->live, 1) + 1;
    int seen = atomic_load(&h->max_live);
    while (now > seen && !atomic_compare_exchange_weak(&h->max_live, &seen, now)) {
    }
    atomic_fetch_add(&h->admits, 1);
}

static void *hammer_thread(void *arg)
{
    worker *w = arg;
    hammer *h = w->h;
    static const char *nss[] = {"ns-x", "ns-y", "ns-z"};
    int attempt[TASKS_PER_THREAD] = {0};
    int running[TASKS_PER_THREAD] = {0};
    unsigned seed = (unsigned)w->id * 7919u + 1u;
    for (int it = 0; it < MAX_ITERATIONS && atomic_load(&h->admits) < ADMITS; it++) {
        int k = it % TASKS_PER_THREAD;
        const char *ns = nss[(w->id + k) % 3];
        char name[32], pn[48];
        snprintf(name, sizeof(name), "w%d-t%d", w->id, k);
        snprintf(pn, sizeof(pn), "%s-a%d", name, attempt[k]);
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 8;
        if (running[k]) {
            if (r < 3) {
                continue; /* still running */
            }
            /* The pod ends: the worker's count drops before the cache shows it. */
            atomic_fetch_sub(&h->live, 1);
            pod_delete(h->c, ns, pn);
            ait_admission_forget(h->adm, ns, name);
            ait_admission_kick(h->adm);
            running[k] = 0;
            attempt[k]++;
            continue;
        }
        ait_admission_decision d;
        if (ait_admission_request(h->adm, ns, name, (int64_t)(w->id * 100 + k), &d) != AIT_OK) {
            return (void *)1;
        }
        if (d.verdict != AIT_ADMISSION_ADMIT) {
            sched_yield(); /* the waiter ahead may be another worker's */
            continue;
        }
        note_live(h);
        if (r == 0) {
            /* The create failed. */
            atomic_fetch_sub(&h->live, 1);
            ait_admission_release(h->adm, ns, name);
            continue;
        }
        if (r & 1) {
            sched_yield(); /* the informer lags the create */
        }
        if (r & 2) {
            ait_admission_started(h->adm, ns, name, pn);
            pod_add(h->c, ns, pn);
        } else {
            pod_add(h->c, ns, pn);
            ait_admission_started(h->adm, ns, name, pn);
        }
        running[k] = 1;
    }
    /* The worker's tasks end: its pods finish and its waiters go (as a deleted task's would),
     * so a worker that finishes first does not hold the queue's head for the others. */
    for (int k = 0; k < TASKS_PER_THREAD; k++) {
        const char *ns = nss[(w->id + k) % 3];
        char name[32], pn[48];
        snprintf(name, sizeof(name), "w%d-t%d", w->id, k);
        if (running[k]) {
            snprintf(pn, sizeof(pn), "%s-a%d", name, attempt[k]);
            atomic_fetch_sub(&h->live, 1);
            pod_delete(h->c, ns, pn);
        }
        ait_admission_forget(h->adm, ns, name);
    }
    ait_admission_kick(h->adm);
    return NULL;
}

static void test_concurrent_workers_never_exceed(void **state)
{
    (void)state;
    cache *c = cache_new();
    hammer h = {0};
    h.c = c;
    /* Real clock: no reservation expires during the run (30 s TTL). */
    h.adm = new_adm(c, NULL, LIMIT, 0, 0);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].h = &h;
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_true(atomic_load(&h.max_live) <= LIMIT);
    assert_int_equal(atomic_load(&h.max_live), LIMIT); /* the limit was actually contended */
    assert_true(atomic_load(&h.admits) >= ADMITS);
    assert_true(cache_running(c, NULL) <= LIMIT);
    ait_admission_free(h.adm);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_config),
        cmocka_unit_test(test_max_running_counts_cache_and_reservations),
        cmocka_unit_test(test_reservation_expires),
        cmocka_unit_test(test_per_namespace_limit),
        cmocka_unit_test(test_start_rate_window),
        cmocka_unit_test(test_start_rate_retry_after_and_seed),
        cmocka_unit_test(test_fairness_small_namespace_not_starved),
        cmocka_unit_test(test_fifo_and_positions),
        cmocka_unit_test(test_restart_keeps_limit_and_order),
        cmocka_unit_test(test_stale_waiter_leaves_queue),
        cmocka_unit_test(test_concurrent_workers_never_exceed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

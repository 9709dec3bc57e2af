/* SPDX-License-Identifier: Apache-2.0 */
/* The work queue: one mutex guards a hash table of per-key records, a FIFO ring of queued records
 * and a min-heap of delayed ones. Invariants: a record is in the ring iff dirty && !processing; a
 * record is in the heap iff heap_idx != NO_IDX; a record is freed as soon as it is in none of
 * these states and has no requeue count. */
#include "kube/workqueue.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"

#define NO_IDX ((size_t)-1)

typedef struct wq_item {
    char *key;
    uint64_t hash;
    struct wq_item *next; /* hash chain */
    int dirty;            /* queued, or re-added while processing */
    int processing;
    int failures;     /* rate-limited requeues since the last forget */
    size_t heap_idx;  /* index in the delay heap, NO_IDX when not waiting */
    int64_t ready_ns; /* clock mono time the delayed add is due */
    uint64_t seq;     /* tie-break so equal times leave the heap in insertion order */
    int64_t added_ns; /* when it became dirty (queue latency) */
    int64_t started_ns;
} wq_item;

struct ait_workqueue {
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* getters and drainers */
    pthread_cond_t timer_cond; /* the timer thread */
    pthread_cond_t drain_cond; /* shutdown_drain waiting for nprocessing == 0 */
    pthread_t timer;
    int timer_started;
    int stop_timer;
    int shutting_down;

    char *name;
    ait_clock clock;
    ait_workqueue_hooks hooks;
    int64_t base_delay_ns;
    int64_t max_delay_ns;
    double qps;
    int burst;
    double tokens;
    int64_t tokens_at_ns;

    wq_item **buckets;
    size_t nbuckets;
    size_t nitems;

    wq_item **ring;
    size_t ring_cap;
    size_t ring_head;
    size_t ring_len;

    wq_item **heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t next_seq;

    size_t nprocessing;
};

/* ---- time ---- */

static int64_t q_now(ait_workqueue *q)
{
    return q->clock.mono_ns(q->clock.ctx);
}

static struct timespec abs_mono(int64_t real_mono_ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(real_mono_ns / AIT_NS_PER_S);
    ts.tv_nsec = (long)(real_mono_ns % AIT_NS_PER_S);
    return ts;
}

/* ---- hash table ---- */

static uint64_t hash_key(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static wq_item *item_find(ait_workqueue *q, const char *key, uint64_t h)
{
    for (wq_item *it = q->buckets[h % q->nbuckets]; it; it = it->next) {
        if (it->hash == h && strcmp(it->key, key) == 0) {
            return it;
        }
    }
    return NULL;
}

static void table_grow(ait_workqueue *q)
{
    size_t n = q->nbuckets * 2;
    wq_item **b = ait_calloc(n, sizeof(*b));
    for (size_t i = 0; i < q->nbuckets; i++) {
        wq_item *it = q->buckets[i];
        while (it) {
            wq_item *next = it->next;
            it->next = b[it->hash % n];
            b[it->hash % n] = it;
            it = next;
        }
    }
    ait_free(q->buckets);
    q->buckets = b;
    q->nbuckets = n;
}

static wq_item *item_get(ait_workqueue *q, const char *key)
{
    ait_assert(key != NULL);
    uint64_t h = hash_key(key);
    wq_item *it = item_find(q, key, h);
    if (it) {
        return it;
    }
    if (q->nitems >= q->nbuckets * 2) {
        table_grow(q);
    }
    it = ait_calloc(1, sizeof(*it));
    it->key = ait_strdup(key);
    it->hash = h;
    it->heap_idx = NO_IDX;
    it->next = q->buckets[h % q->nbuckets];
    q->buckets[h % q->nbuckets] = it;
    q->nitems++;
    return it;
}

/* Frees it when nothing refers to it any more. */
static void item_release(ait_workqueue *q, wq_item *it)
{
    if (it->dirty || it->processing || it->failures > 0 || it->heap_idx != NO_IDX) {
        return;
    }
    wq_item **pp = &q->buckets[it->hash % q->nbuckets];
    while (*pp != it) {
        pp = &(*pp)->next;
    }
    *pp = it->next;
    q->nitems--;
    ait_free(it->key);
    ait_free(it);
}

/* ---- FIFO ring ---- */

static void ring_push(ait_workqueue *q, wq_item *it)
{
    if (q->ring_len == q->ring_cap) {
        size_t ncap = q->ring_cap ? q->ring_cap * 2 : 64;
        wq_item **r = ait_malloc(ncap * sizeof(*r));
        for (size_t i = 0; i < q->ring_len; i++) {
            r[i] = q->ring[(q->ring_head + i) % q->ring_cap];
        }
        ait_free(q->ring);
        q->ring = r;
        q->ring_cap = ncap;
        q->ring_head = 0;
    }
    q->ring[(q->ring_head + q->ring_len) % q->ring_cap] = it;
    q->ring_len++;
    if (q->hooks.depth) {
        q->hooks.depth(q->hooks.ctx, q->name, (int64_t)q->ring_len);
    }
}

static wq_item *ring_pop(ait_workqueue *q)
{
    wq_item *it = q->ring[q->ring_head];
    q->ring_head = (q->ring_head + 1) % q->ring_cap;
    q->ring_len--;
    if (q->hooks.depth) {
        q->hooks.depth(q->hooks.ctx, q->name, (int64_t)q->ring_len);
    }
    return it;
}

/* ---- delay heap ---- */

static int heap_less(const wq_item *a, const wq_item *b)
{
    return a->ready_ns < b->ready_ns || (a->ready_ns == b->ready_ns && a->seq < b->seq);
}

static void heap_set(ait_workqueue *q, size_t i, wq_item *it)
{
    q->heap[i] = it;
    it->heap_idx = i;
}

static void heap_up(ait_workqueue *q, size_t i)
{
    wq_item *it = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(it, q->heap[parent])) {
            break;
        }
        heap_set(q, i, q->heap[parent]);
        i = parent;
    }
    heap_set(q, i, it);
}

static void heap_down(ait_workqueue *q, size_t i)
{
    wq_item *it = q->heap[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= q->heap_len) {
            break;
        }
        size_t c = l;
        if (l + 1 < q->heap_len && heap_less(q->heap[l + 1], q->heap[l])) {
            c = l + 1;
        }
        if (!heap_less(q->heap[c], it)) {
            break;
        }
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, it);
}

static void heap_push(ait_workqueue *q, wq_item *it)
{
    if (q->heap_len == q->heap_cap) {
        q->heap_cap = q->heap_cap ? q->heap_cap * 2 : 64;
        q->heap = ait_realloc(q->heap, q->heap_cap * sizeof(*q->heap));
    }
    it->seq = q->next_seq++;
    q->heap_len++;
    heap_set(q, q->heap_len - 1, it);
    heap_up(q, q->heap_len - 1);
}

static wq_item *heap_pop(ait_workqueue *q)
{
    wq_item *top = q->heap[0];
    q->heap_len--;
    if (q->heap_len > 0) {
        heap_set(q, 0, q->heap[q->heap_len]);
        heap_down(q, 0);
    }
    top->heap_idx = NO_IDX;
    return top;
}

/* ---- core operations (lock held) ---- */

static void add_locked(ait_workqueue *q, wq_item *it)
{
    if (q->shutting_down || it->dirty) {
        return;
    }
    if (q->hooks.add) {
        q->hooks.add(q->hooks.ctx, q->name);
    }
    it->dirty = 1;
    it->added_ns = q_now(q);
    if (it->processing) {
        return;
    }
    ring_push(q, it);
    pthread_cond_signal(&q->cond);
}

static void tick_locked(ait_workqueue *q)
{
    int64_t now = q_now(q);
    while (q->heap_len > 0 && q->heap[0]->ready_ns <= now) {
        wq_item *it = heap_pop(q);
        add_locked(q, it);
        item_release(q, it);
    }
}

static void add_after_locked(ait_workqueue *q, const char *key, int64_t delay_ns)
{
    if (q->shutting_down) {
        return;
    }
    if (q->hooks.retry) {
        q->hooks.retry(q->hooks.ctx, q->name);
    }
    wq_item *it = item_get(q, key);
    if (delay_ns <= 0) {
        add_locked(q, it);
        item_release(q, it);
        return;
    }
    int64_t ready = q_now(q) + delay_ns;
    if (it->heap_idx != NO_IDX) {
        /* already waiting: only an earlier time moves it */
        if (ready < it->ready_ns) {
            it->ready_ns = ready;
            heap_up(q, it->heap_idx);
            pthread_cond_signal(&q->timer_cond);
        }
        return;
    }
    it->ready_ns = ready;
    heap_push(q, it);
    if (it->heap_idx == 0) {
        pthread_cond_signal(&q->timer_cond);
    }
}

static int64_t when_locked(ait_workqueue *q, const char *key)
{
    wq_item *it = item_get(q, key);
    /* per-item exponential backoff: base * 2^failures, capped */
    int64_t backoff = q->base_delay_ns;
    for (int i = 0; i < it->failures && backoff < q->max_delay_ns; i++) {
        backoff *= 2;
    }
    if (backoff > q->max_delay_ns) {
        backoff = q->max_delay_ns;
    }
    it->failures++;

    /* overall token bucket (golang.org/x/time/rate Reserve().Delay()) */
    int64_t now = q_now(q);
    if (now > q->tokens_at_ns) {
        q->tokens += (double)(now - q->tokens_at_ns) * q->qps / (double)AIT_NS_PER_S;
        if (q->tokens > q->burst) {
            q->tokens = q->burst;
        }
        q->tokens_at_ns = now;
    }
    q->tokens -= 1.0;
    int64_t bucket = 0;
    if (q->tokens < 0) {
        bucket = (int64_t)(-q->tokens * (double)AIT_NS_PER_S / q->qps);
    }
    return backoff > bucket ? backoff : bucket;
}

/* ---- timer thread ---- */

static void *timer_main(void *arg)
{
    ait_workqueue *q = arg;
    pthread_mutex_lock(&q->mu);
    while (!q->stop_timer) {
        tick_locked(q);
        if (q->heap_len == 0) {
            pthread_cond_wait(&q->timer_cond, &q->mu);
            continue;
        }
        /* wait in real monotonic time for the clock's remaining delay */
        int64_t wait = q->heap[0]->ready_ns - q_now(q);
        if (wait > 0) {
            struct timespec ts = abs_mono(ait_time_mono_ns() + wait);
            pthread_cond_timedwait(&q->timer_cond, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ---- public API ---- */

ait_status ait_workqueue_new(const ait_workqueue_options *opts, ait_workqueue **out, ait_error *err)
{
    ait_workqueue_options o = {0};
    if (opts) {
        o = *opts;
    }
    *out = NULL;
    if (o.base_delay_ns < 0 || o.max_delay_ns < 0 || o.qps < 0 || o.burst < 0) {
        return ait_error_set(err, AIT_ERR_INVALID, "workqueue: negative rate limiter option");
    }
    ait_workqueue *q = ait_calloc(1, sizeof(*q));
    q->name = ait_strdup(o.name ? o.name : "aitask");
    q->clock = o.clock ? *o.clock : *ait_clock_system();
    if (o.hooks) {
        q->hooks = *o.hooks;
    }
    q->base_delay_ns = o.base_delay_ns ? o.base_delay_ns : 5 * AIT_NS_PER_MS;
    q->max_delay_ns = o.max_delay_ns ? o.max_delay_ns : 1000 * AIT_NS_PER_S;
    q->qps = o.qps > 0 ? o.qps : 10.0;
    q->burst = o.burst > 0 ? o.burst : 100;
    q->tokens = q->burst;
    q->tokens_at_ns = q_now(q);
    q->nbuckets = 64;
    q->buckets = ait_calloc(q->nbuckets, sizeof(*q->buckets));

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, &ca);
    pthread_cond_init(&q->timer_cond, &ca);
    pthread_cond_init(&q->drain_cond, &ca);
    pthread_condattr_destroy(&ca);

    int rc = pthread_create(&q->timer, NULL, timer_main, q);
    if (rc != 0) {
        ait_workqueue_free(q);
        return ait_error_set(err, AIT_ERR_INTERNAL, "workqueue: pthread_create: %s", strerror(rc));
    }
    q->timer_started = 1;
    *out = q;
    return AIT_OK;
}

void ait_workqueue_free(ait_workqueue *q)
{
    if (!q) {
        return;
    }
    ait_workqueue_shutdown(q);
    pthread_mutex_lock(&q->mu);
    q->stop_timer = 1;
    pthread_cond_broadcast(&q->timer_cond);
    pthread_mutex_unlock(&q->mu);
    if (q->timer_started) {
        pthread_join(q->timer, NULL);
    }
    for (size_t i = 0; i < q->nbuckets; i++) {
        wq_item *it = q->buckets[i];
        while (it) {
            wq_item *next = it->next;
            ait_free(it->key);
            ait_free(it);
            it = next;
        }
    }
    ait_free(q->buckets);
    ait_free(q->ring);
    ait_free(q->heap);
    ait_free(q->name);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->timer_cond);
    pthread_cond_destroy(&q->drain_cond);
    pthread_mutex_destroy(&q->mu);
    ait_free(q);
}

void ait_workqueue_add(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    if (!q->shutting_down) {
        wq_item *it = item_get(q, key);
        add_locked(q, it);
        item_release(q, it);
    }
    pthread_mutex_unlock(&q->mu);
}

void ait_workqueue_add_after(ait_workqueue *q, const char *key, int64_t delay_ns)
{
    pthread_mutex_lock(&q->mu);
    add_after_locked(q, key, delay_ns);
    pthread_mutex_unlock(&q->mu);
}

void ait_workqueue_add_rate_limited(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    if (!q->shutting_down) {
        add_after_locked(q, key, when_locked(q, key));
    }
    pthread_mutex_unlock(&q->mu);
}

int64_t ait_workqueue_when(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    int64_t d = when_locked(q, key);
    pthread_mutex_unlock(&q->mu);
    return d;
}

void ait_workqueue_forget(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item *it = item_find(q, key, hash_key(key));
    if (it) {
        it->failures = 0;
        item_release(q, it);
    }
    pthread_mutex_unlock(&q->mu);
}

int ait_workqueue_num_requeues(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item *it = item_find(q, key, hash_key(key));
    int n = it ? it->failures : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t ait_workqueue_len(ait_workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->ring_len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static ait_status get_impl(ait_workqueue *q, int64_t timeout_ns, char **key_out)
{
    *key_out = NULL;
    struct timespec deadline = {0};
    if (timeout_ns >= 0) {
        deadline = abs_mono(ait_time_mono_ns() + timeout_ns);
    }
    ait_status st = AIT_OK;
    pthread_mutex_lock(&q->mu);
    while (q->ring_len == 0 && !q->shutting_down) {
        if (timeout_ns < 0) {
            pthread_cond_wait(&q->cond, &q->mu);
        } else if (pthread_cond_timedwait(&q->cond, &q->mu, &deadline) == ETIMEDOUT &&
                   q->ring_len == 0 && !q->shutting_down) {
            st = AIT_ERR_TIMEOUT;
            goto out;
        }
    }
    if (q->ring_len == 0) {
        st = AIT_ERR_CANCELLED;
        goto out;
    }
    wq_item *it = ring_pop(q);
    it->dirty = 0;
    it->processing = 1;
    q->nprocessing++;
    it->started_ns = q_now(q);
    if (q->hooks.queue_latency) {
        q->hooks.queue_latency(q->hooks.ctx, q->name, it->started_ns - it->added_ns);
    }
    *key_out = ait_strdup(it->key);
out:
    pthread_mutex_unlock(&q->mu);
    return st;
}

ait_status ait_workqueue_get(ait_workqueue *q, char **key_out)
{
    return get_impl(q, -1, key_out);
}

ait_status ait_workqueue_get_timeout(ait_workqueue *q, int64_t timeout_ns, char **key_out)
{
    return get_impl(q, timeout_ns < 0 ? 0 : timeout_ns, key_out);
}

void ait_workqueue_done(ait_workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item *it = item_find(q, key, hash_key(key));
    if (it && it->processing) {
        it->processing = 0;
        q->nprocessing--;
        if (q->hooks.work_duration) {
            q->hooks.work_duration(q->hooks.ctx, q->name, q_now(q) - it->started_ns);
        }
        if (it->dirty) {
            ring_push(q, it);
            pthread_cond_signal(&q->cond);
        }
        item_release(q, it);
        if (q->nprocessing == 0) {
            pthread_cond_broadcast(&q->drain_cond);
        }
    }
    pthread_mutex_unlock(&q->mu);
}

static void shutdown_locked(ait_workqueue *q)
{
    if (q->shutting_down) {
        return;
    }
    q->shutting_down = 1;
    /* delayed keys are dropped, as client-go's delaying queue stops its loop */
    while (q->heap_len > 0) {
        wq_item *it = heap_pop(q);
        item_release(q, it);
    }
    pthread_cond_broadcast(&q->cond);
    pthread_cond_broadcast(&q->timer_cond);
}

void ait_workqueue_shutdown(ait_workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    shutdown_locked(q);
    pthread_mutex_unlock(&q->mu);
}

void ait_workqueue_shutdown_drain(ait_workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    shutdown_locked(q);
    while (q->nprocessing > 0) {
        pthread_cond_wait(&q->drain_cond, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
}

int ait_workqueue_shutting_down(ait_workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    int s = q->shutting_down;
    pthread_mutex_unlock(&q->mu);
    return s;
}

void ait_workqueue_tick(ait_workqueue *q)
{
    pthread_mutex_lock(&q->mu);
    tick_locked(q);
    pthread_mutex_unlock(&q->mu);
}

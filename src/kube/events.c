/* SPDX-License-Identifier: Apache-2.0 */
/* The Event recorder: one mutex guards the dedupe cache (key -> the Event first created for it),
 * the per-object token buckets and a bounded FIFO of writes; one sender thread performs the
 * writes outside the lock. A series PATCH job names its cache entry by key and reads the count
 * when it is sent, so repeats queued behind one another collapse into one write. */
#include "kube/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define NOTE_MAX 1024

/* ---- a small string-keyed hash map ---- */

typedef struct smap_node {
    char *key;
    uint64_t hash;
    void *val;
    struct smap_node *next;
} smap_node;

typedef struct smap {
    smap_node **b;
    size_t nb;
    size_t n;
} smap;

static uint64_t str_hash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static void smap_init(smap *m)
{
    m->nb = 64;
    m->b = ait_calloc(m->nb, sizeof(*m->b));
    m->n = 0;
}

/* The value slot of key, or NULL when absent. */
static void **smap_slot(smap *m, const char *key)
{
    uint64_t h = str_hash(key);
    for (smap_node *x = m->b[h % m->nb]; x; x = x->next) {
        if (x->hash == h && strcmp(x->key, key) == 0) {
            return &x->val;
        }
    }
    return NULL;
}

static void *smap_get(smap *m, const char *key)
{
    void **slot = smap_slot(m, key);
    return slot ? *slot : NULL;
}

static void smap_put(smap *m, const char *key, void *val)
{
    if (m->n >= m->nb * 2) {
        size_t nb = m->nb * 2;
        smap_node **b = ait_calloc(nb, sizeof(*b));
        for (size_t i = 0; i < m->nb; i++) {
            smap_node *x = m->b[i];
            while (x) {
                smap_node *next = x->next;
                x->next = b[x->hash % nb];
                b[x->hash % nb] = x;
                x = next;
            }
        }
        ait_free(m->b);
        m->b = b;
        m->nb = nb;
    }
    smap_node *x = ait_calloc(1, sizeof(*x));
    x->key = ait_strdup(key);
    x->hash = str_hash(key);
    x->val = val;
    x->next = m->b[x->hash % m->nb];
    m->b[x->hash % m->nb] = x;
    m->n++;
}

/* Removes every node for which drop(val, arg) is non-zero, freeing the value with ait_free. */
static void smap_prune(smap *m, int (*drop)(void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nb; i++) {
        smap_node **pp = &m->b[i];
        while (*pp) {
            smap_node *x = *pp;
            if (drop == NULL || drop(x->val, arg)) {
                *pp = x->next;
                ait_free(x->key);
                ait_free(x->val);
                ait_free(x);
                m->n--;
            } else {
                pp = &x->next;
            }
        }
    }
}

static void smap_free(smap *m)
{
    smap_prune(m, NULL, NULL);
    ait_free(m->b);
}

/* ---- the recorder ---- */

/* One allocation sized to its strings: a recorder holds one per distinct Event for the dedupe
 * window (6 min), i.e. several per task at a high task rate. */
typedef struct series_entry {
    int64_t count;
    int64_t last_mono; /* last observation, for the window */
    int64_t last_wall;
    int patch_queued;
    const char *ev_name; /* into names */
    char names[];        /* the Event's namespace, NUL, its name, NUL */
} series_entry;

static series_entry *series_new(const char *ev_ns, const char *ev_name)
{
    size_t ns_len = strlen(ev_ns), name_len = strlen(ev_name);
    series_entry *s = ait_calloc(1, sizeof(*s) + ns_len + 1 + name_len + 1);
    memcpy(s->names, ev_ns, ns_len + 1);
    memcpy(s->names + ns_len + 1, ev_name, name_len + 1);
    s->ev_name = s->names + ns_len + 1;
    return s;
}

typedef struct bucket {
    double tokens;
    int64_t at;
} bucket;

typedef enum job_kind { JOB_CREATE, JOB_PATCH } job_kind;

typedef struct job {
    job_kind kind;
    char *ns;
    json_object *obj; /* CREATE: the Event */
    char *key;        /* PATCH: the cache key */
} job;

struct ait_events {
    ait_rest *rest;
    char *controller;
    char *instance;
    size_t qcap;
    int64_t window_ns;
    int burst;
    int64_t refill_ns;
    size_t max_series;
    size_t bound_retry_at; /* cache size at which bound_series tries again */
    ait_clock clock;

    pthread_mutex_t mu;
    pthread_cond_t cond;      /* sender: work or stop */
    pthread_cond_t idle_cond; /* flush: queue empty and sender idle */
    pthread_t thread;
    int stop;
    int busy;

    job *q;
    size_t qhead;
    size_t qlen;

    smap cache;   /* dedupe key -> series_entry */
    smap buckets; /* object key -> bucket */
    uint64_t ops; /* emits since the last prune */
    int64_t last_name_ns;
    ait_events_stats stats;
};

static int64_t ev_mono(ait_events *ev)
{
    return ev->clock.mono_ns(ev->clock.ctx);
}

static void job_free(job *j)
{
    ait_free(j->ns);
    if (j->obj) {
        json_object_put(j->obj);
    }
    ait_free(j->key);
    memset(j, 0, sizeof(*j));
}

static int push_job(ait_events *ev, job *j)
{
    if (ev->qlen == ev->qcap) {
        ev->stats.dropped++;
        job_free(j);
        return 0;
    }
    ev->q[(ev->qhead + ev->qlen) % ev->qcap] = *j;
    ev->qlen++;
    pthread_cond_signal(&ev->cond);
    return 1;
}

/* Takes a token from the object's bucket; returns 0 when none is left. */
static int take_token(ait_events *ev, const char *objkey, int64_t now)
{
    bucket *b = smap_get(&ev->buckets, objkey);
    if (!b) {
        b = ait_calloc(1, sizeof(*b));
        b->tokens = ev->burst;
        b->at = now;
        smap_put(&ev->buckets, objkey, b);
    }
    if (now > b->at) {
        b->tokens += (double)(now - b->at) / (double)ev->refill_ns;
        if (b->tokens > ev->burst) {
            b->tokens = ev->burst;
        }
        b->at = now;
    }
    if (b->tokens < 1.0) {
        return 0;
    }
    b->tokens -= 1.0;
    return 1;
}

static int series_expired(void *val, void *arg)
{
    ait_events *ev = ((void **)arg)[0];
    int64_t now = *(int64_t *)((void **)arg)[1];
    series_entry *s = val;
    return !s->patch_queued && now - s->last_mono > ev->window_ns;
}

static int bucket_full(void *val, void *arg)
{
    ait_events *ev = ((void **)arg)[0];
    int64_t now = *(int64_t *)((void **)arg)[1];
    bucket *b = val;
    return b->tokens + (double)(now - b->at) / (double)ev->refill_ns >= ev->burst;
}

static void prune(ait_events *ev, int64_t now)
{
    void *arg[2] = {ev, &now};
    smap_prune(&ev->cache, series_expired, arg);
    smap_prune(&ev->buckets, bucket_full, arg);
}

/* Not observed since the cutoff (arg: the cutoff's mono time). */
static int series_older(void *val, void *arg)
{
    series_entry *s = val;
    return !s->patch_queued && s->last_mono < *(int64_t *)arg;
}

/* Keeps the dedupe cache under max_series: expired entries go first; then, down to three quarters
 * of the bound, those observed longest ago (cutoffs halving the window's age, the last pass
 * taking any entry without a queued PATCH), so a burst of tasks cannot grow the recorder without
 * bound. Entries with a queued PATCH stay (at most the queue's size); if they alone exceed the
 * bound, the next try waits for a quarter more. */
static void bound_series(ait_events *ev, int64_t now)
{
    if (ev->cache.n < ev->max_series || ev->cache.n < ev->bound_retry_at) {
        return;
    }
    prune(ev, now);
    size_t target = ev->max_series - ev->max_series / 4;
    for (int64_t age = ev->window_ns / 2; ev->cache.n > target; age /= 2) {
        size_t before = ev->cache.n;
        int64_t cutoff = age > 0 ? now - age : now + 1;
        smap_prune(&ev->cache, series_older, &cutoff);
        ev->stats.evicted += before - ev->cache.n;
        if (age == 0) {
            break;
        }
    }
    ev->bound_retry_at = ev->cache.n + ev->max_series / 4 + 1;
}

static void add_str(json_object *o, const char *k, const char *v)
{
    if (v && v[0]) {
        json_object_object_add(o, k, json_object_new_string(v));
    }
}

/* Cuts s to at most NOTE_MAX bytes without splitting a UTF-8 sequence. Returns owned. */
static char *cut_note(const char *s)
{
    size_t n = strlen(s);
    if (n <= NOTE_MAX) {
        return ait_strdup(s);
    }
    n = NOTE_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
        n--;
    }
    return ait_strndup(s, n);
}

void ait_events_emit(ait_events *ev, const ait_object_ref *regarding, const char *type,
                     const char *reason, const char *action, const char *note)
{
    if (!regarding || !regarding->name || !regarding->name[0] || !type || !reason || !reason[0] ||
        !note || (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0)) {
        AIT_LOG_ERROR("invalid event", "event dropped", "reason", reason ? reason : "");
        pthread_mutex_lock(&ev->mu);
        ev->stats.dropped++;
        pthread_mutex_unlock(&ev->mu);
        return;
    }
    if (!action || !action[0]) {
        action = reason;
    }
    const char *ns = regarding->namespace_ && regarding->namespace_[0] ? regarding->namespace_ : "";
    char *cnote = cut_note(note);
    char *objkey = ait_asprintf("%s\x1f%s\x1f%s\x1f%s", regarding->kind ? regarding->kind : "", ns,
                                regarding->name, regarding->uid ? regarding->uid : "");
    char *key = ait_asprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s", objkey, type, reason, action, cnote);

    pthread_mutex_lock(&ev->mu);
    int64_t now = ev_mono(ev);
    int64_t wall = ev->clock.now_ns(ev->clock.ctx);
    ev->stats.emitted++;
    if (++ev->ops % 128 == 0) {
        prune(ev, now);
    }
    bound_series(ev, now);
    series_entry *s = smap_get(&ev->cache, key);
    if (s && now - s->last_mono <= ev->window_ns) {
        /* a repeat: count it; one PATCH carries every repeat queued behind it */
        s->count++;
        s->last_mono = now;
        s->last_wall = wall;
        ev->stats.deduped++;
        if (!s->patch_queued) {
            if (!take_token(ev, objkey, now)) {
                ev->stats.rate_limited++;
            } else {
                job j = {JOB_PATCH, ait_strdup(s->names), NULL, ait_strdup(key)};
                s->patch_queued = push_job(ev, &j);
            }
        }
        goto out;
    }
    if (!take_token(ev, objkey, now)) {
        ev->stats.rate_limited++;
        goto out;
    }
    /* a new Event, named like client-go: <regarding name>.<unique hex time> */
    int64_t name_ns = wall > ev->last_name_ns ? wall : ev->last_name_ns + 1;
    ev->last_name_ns = name_ns;
    const char *ev_ns = ns[0] ? ns : "default";
    char *name = ait_asprintf("%s.%llx", regarding->name, (unsigned long long)name_ns);
    char ts[40];
    ait_time_rfc3339_micro(wall, ts, sizeof(ts));

    json_object *o = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string("events.k8s.io/v1"));
    json_object_object_add(o, "kind", json_object_new_string("Event"));
    json_object *meta = json_object_new_object();
    add_str(meta, "name", name);
    add_str(meta, "namespace", ev_ns);
    json_object_object_add(o, "metadata", meta);
    add_str(o, "eventTime", ts);
    add_str(o, "reportingController", ev->controller);
    add_str(o, "reportingInstance", ev->instance);
    add_str(o, "action", action);
    add_str(o, "reason", reason);
    add_str(o, "type", type);
    json_object_object_add(o, "note", json_object_new_string(cnote));
    json_object *ref = json_object_new_object();
    add_str(ref, "apiVersion", regarding->api_version);
    add_str(ref, "kind", regarding->kind);
    add_str(ref, "namespace", ns);
    add_str(ref, "name", regarding->name);
    add_str(ref, "uid", regarding->uid);
    add_str(ref, "resourceVersion", regarding->resource_version);
    json_object_object_add(o, "regarding", ref);
    job j = {JOB_CREATE, ait_strdup(ev_ns), o, NULL};
    if (push_job(ev, &j)) {
        series_entry *fresh = series_new(ev_ns, name);
        if (s) {
            /* An expired series: the new Event starts a new one under the same key. */
            *smap_slot(&ev->cache, key) = fresh;
            ait_free(s);
        } else {
            smap_put(&ev->cache, key, fresh);
        }
        s = fresh;
        s->count = 1;
        s->last_mono = now;
        s->last_wall = wall;
        s->patch_queued = 0;
    }
    ait_free(name);
out:
    pthread_mutex_unlock(&ev->mu);
    ait_free(cnote);
    ait_free(objkey);
    ait_free(key);
}

void ait_events_emitf(ait_events *ev, const ait_object_ref *regarding, const char *type,
                      const char *reason, const char *action, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[NOTE_MAX + 8];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ait_events_emit(ev, regarding, type, reason, action, buf);
}

/* ---- the sender ---- */

static void send_job(ait_events *ev, job *j)
{
    ait_error e = {0};
    ait_status st;
    if (j->kind == JOB_CREATE) {
        st = ait_rest_create(ev->rest, &AIT_GVR_EVENTS, j->ns, j->obj, NULL, &e);
        pthread_mutex_lock(&ev->mu);
        if (st == AIT_OK) {
            ev->stats.created++;
        } else {
            ev->stats.failed++;
        }
        pthread_mutex_unlock(&ev->mu);
    } else {
        pthread_mutex_lock(&ev->mu);
        series_entry *s = smap_get(&ev->cache, j->key);
        char *patch = NULL;
        char *name = NULL;
        if (s && s->count >= 2) { /* series.count starts at 2 */
            char ts[40];
            ait_time_rfc3339_micro(s->last_wall, ts, sizeof(ts));
            patch = ait_asprintf("{\"series\":{\"count\":%lld,\"lastObservedTime\":\"%s\"}}",
                                 (long long)s->count, ts);
            name = ait_strdup(s->ev_name);
            s->patch_queued = 0;
        }
        pthread_mutex_unlock(&ev->mu);
        if (!patch) {
            return;
        }
        st = ait_rest_patch(ev->rest, &AIT_GVR_EVENTS, j->ns, name, AIT_PATCH_MERGE, patch, NULL,
                            NULL, &e);
        pthread_mutex_lock(&ev->mu);
        if (st == AIT_OK) {
            ev->stats.series_updates++;
        } else {
            ev->stats.failed++;
        }
        pthread_mutex_unlock(&ev->mu);
        ait_free(patch);
        ait_free(name);
    }
    if (st != AIT_OK) {
        AIT_LOG_INFO(1, "event write failed", "error", e.msg);
    }
}

static void *sender_main(void *arg)
{
    ait_events *ev = arg;
    pthread_mutex_lock(&ev->mu);
    for (;;) {
        while (!ev->stop && ev->qlen == 0) {
            ev->busy = 0;
            pthread_cond_broadcast(&ev->idle_cond);
            pthread_cond_wait(&ev->cond, &ev->mu);
        }
        if (ev->stop) {
            break;
        }
        job j = ev->q[ev->qhead];
        ev->qhead = (ev->qhead + 1) % ev->qcap;
        ev->qlen--;
        ev->busy = 1;
        pthread_mutex_unlock(&ev->mu);
        send_job(ev, &j);
        job_free(&j);
        pthread_mutex_lock(&ev->mu);
    }
    ev->busy = 0;
    pthread_cond_broadcast(&ev->idle_cond);
    pthread_mutex_unlock(&ev->mu);
    return NULL;
}

/* ---- public ---- */

ait_status ait_events_new(ait_rest *rest, const ait_events_options *opts, ait_events **out,
                          ait_error *err)
{
    *out = NULL;
    ait_events_options o = {0};
    if (opts) {
        o = *opts;
    }
    if (!rest) {
        return ait_error_set(err, AIT_ERR_INVALID, "events: a REST client is required");
    }
    ait_events *ev = ait_calloc(1, sizeof(*ev));
    ev->rest = rest;
    ev->controller = ait_strdup(o.reporting_controller && o.reporting_controller[0]
                                    ? o.reporting_controller
                                    : AIT_EVENTS_DEFAULT_CONTROLLER);
    if (o.reporting_instance && o.reporting_instance[0]) {
        ev->instance = ait_strdup(o.reporting_instance);
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) {
            snprintf(host, sizeof(host), "unknown");
        }
        ev->instance = ait_strdup(host);
    }
    ev->qcap = o.queue_size > 0 ? o.queue_size : 256;
    ev->window_ns = o.dedupe_window_ns > 0 ? o.dedupe_window_ns : 6 * 60 * AIT_NS_PER_S;
    ev->burst = o.burst > 0 ? o.burst : 25;
    ev->refill_ns = o.refill_ns > 0 ? o.refill_ns : 5 * AIT_NS_PER_S;
    ev->max_series = o.max_series > 0 ? o.max_series : 4096;
    ev->clock = o.clock ? *o.clock : *ait_clock_system();
    ev->q = ait_calloc(ev->qcap, sizeof(*ev->q));
    smap_init(&ev->cache);
    smap_init(&ev->buckets);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ev->mu, NULL);
    pthread_cond_init(&ev->cond, &ca);
    pthread_cond_init(&ev->idle_cond, &ca);
    pthread_condattr_destroy(&ca);
    ev->busy = 1; /* until the sender first waits */
    int rc = pthread_create(&ev->thread, NULL, sender_main, ev);
    if (rc != 0) {
        ev->busy = 0;
        ev->stop = 1;
        smap_free(&ev->cache);
        smap_free(&ev->buckets);
        ait_free(ev->q);
        ait_free(ev->controller);
        ait_free(ev->instance);
        ait_free(ev);
        return ait_error_set(err, AIT_ERR_INTERNAL, "events: pthread_create: %s", strerror(rc));
    }
    *out = ev;
    return AIT_OK;
}

void ait_events_free(ait_events *ev)
{
    if (!ev) {
        return;
    }
    pthread_mutex_lock(&ev->mu);
    ev->stop = 1;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
    pthread_join(ev->thread, NULL);
    while (ev->qlen > 0) {
        job_free(&ev->q[ev->qhead]);
        ev->qhead = (ev->qhead + 1) % ev->qcap;
        ev->qlen--;
    }
    ait_free(ev->q);
    smap_free(&ev->cache);
    smap_free(&ev->buckets);
    ait_free(ev->controller);
    ait_free(ev->instance);
    pthread_cond_destroy(&ev->cond);
    pthread_cond_destroy(&ev->idle_cond);
    pthread_mutex_destroy(&ev->mu);
    ait_free(ev);
}

ait_status ait_events_flush(ait_events *ev, int64_t timeout_ns)
{
    int64_t t = ait_time_mono_ns() + (timeout_ns > 0 ? timeout_ns : 0);
    struct timespec ts = {(time_t)(t / AIT_NS_PER_S), (long)(t % AIT_NS_PER_S)};
    ait_status st = AIT_OK;
    pthread_mutex_lock(&ev->mu);
    while ((ev->qlen > 0 || ev->busy) && !ev->stop) {
        if (pthread_cond_timedwait(&ev->idle_cond, &ev->mu, &ts) != 0) {
            if (ev->qlen > 0 || ev->busy) {
                st = AIT_ERR_TIMEOUT;
            }
            break;
        }
    }
    pthread_mutex_unlock(&ev->mu);
    return st;
}

void ait_events_get_stats(ait_events *ev, ait_events_stats *out)
{
    pthread_mutex_lock(&ev->mu);
    *out = ev->stats;
    out->series = ev->cache.n;
    pthread_mutex_unlock(&ev->mu);
}

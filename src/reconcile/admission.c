/* SPDX-License-Identifier: Apache-2.0 */
/* Work admission (see admission.h): a fair queue of waiting tasks plus the reservations of
 * grants not yet visible in the pods cache and a log of recent starts. One mutex guards it all;
 * the cache callbacks run under it, the requeue callback never does. */
#include "reconcile/admission.h"

#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

#define WINDOW_NS (60 * AIT_NS_PER_S)
#define DEFAULT_TTL_NS (30 * AIT_NS_PER_S)
#define DEFAULT_RECHECK_NS (30 * AIT_NS_PER_S)
#define NO_TOKEN INT64_MIN

typedef struct waiter {
    char *name;
    int64_t creation;
    int notified; /* requeue asked since its last WAIT answer */
    int64_t seen; /* mono time of its last request or enqueue */
} waiter;

/* One namespace's FIFO, sorted by (creation, name). */
typedef struct nsq {
    char *ns;
    waiter *w;
    size_t n, cap;
    uint64_t last_served; /* 0 = never */
} nsq;

typedef struct reservation {
    char *ns;
    char *name;
    char *pod;       /* NULL until started */
    int64_t expires; /* mono */
    int64_t token;   /* mono time of its start token, NO_TOKEN when none or returned */
} reservation;

struct ait_admission {
    pthread_mutex_t mu;
    ait_admission_config cfg;
    const ait_clock *clock;
    /* Kept in namespace rank order: (last_served, name) ascending, so the array order is the
     * order inside one round. Empty namespaces are removed. */
    nsq *q;
    size_t nq, capq;
    size_t depth;
    reservation *r;
    size_t nr, capr;
    int64_t *log; /* mono times of the starts in the last 60 s, ascending; at most spm */
    size_t log_n;
    uint64_t seq;
};

/* Limits of one decision, computed under the lock. */
typedef struct view {
    int64_t free_slots; /* INT64_MAX when unlimited */
    int64_t tokens;     /* INT64_MAX when unlimited */
    size_t *elig;       /* per q[i]: how many of its first tasks could start (per-ns room) */
} view;

typedef struct key_list {
    char **ns;
    char **name;
    size_t n, cap;
} key_list;

static int64_t mono(const ait_admission *adm)
{
    return adm->clock->mono_ns(adm->clock->ctx);
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- the fair queue ---- */

static int waiter_before(int64_t ca, const char *na, int64_t cb, const char *nb)
{
    if (ca != cb) {
        return ca < cb;
    }
    return strcmp(na, nb) < 0;
}

static int nsq_before(const nsq *a, const nsq *b)
{
    if (a->last_served != b->last_served) {
        return a->last_served < b->last_served;
    }
    return strcmp(a->ns, b->ns) < 0;
}

static size_t find_ns(const ait_admission *adm, const char *ns)
{
    for (size_t i = 0; i < adm->nq; i++) {
        if (strcmp(adm->q[i].ns, ns) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static size_t find_waiter(const nsq *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->w[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Moves q[i] to the place its rank key gives it (the array stays sorted). Returns its index. */
static size_t reposition_ns(ait_admission *adm, size_t i)
{
    nsq tmp = adm->q[i];
    memmove(&adm->q[i], &adm->q[i + 1], (adm->nq - i - 1) * sizeof(nsq));
    adm->nq--;
    size_t at = 0;
    while (at < adm->nq && nsq_before(&adm->q[at], &tmp)) {
        at++;
    }
    memmove(&adm->q[at + 1], &adm->q[at], (adm->nq - at) * sizeof(nsq));
    adm->q[at] = tmp;
    adm->nq++;
    return at;
}

static void remove_ns(ait_admission *adm, size_t i)
{
    ait_free(adm->q[i].ns);
    ait_free(adm->q[i].w);
    memmove(&adm->q[i], &adm->q[i + 1], (adm->nq - i - 1) * sizeof(nsq));
    adm->nq--;
}

/* Removes waiter j of q[i], and the namespace when it empties. */
static void remove_waiter(ait_admission *adm, size_t i, size_t j)
{
    nsq *q = &adm->q[i];
    ait_free(q->w[j].name);
    memmove(&q->w[j], &q->w[j + 1], (q->n - j - 1) * sizeof(waiter));
    q->n--;
    adm->depth--;
    if (q->n == 0) {
        remove_ns(adm, i);
    }
}

/* Adds ns/name unless it waits already (a changed creation time re-sorts it). Sets *qi, *wi to
 * where it is. */
static void add_waiter(ait_admission *adm, const char *ns, const char *name, int64_t creation,
                       int64_t now, size_t *qi, size_t *wi)
{
    size_t i = find_ns(adm, ns);
    if (i == SIZE_MAX) {
        if (adm->nq == adm->capq) {
            adm->capq = adm->capq ? adm->capq * 2 : 8;
            adm->q = ait_realloc(adm->q, adm->capq * sizeof(nsq));
        }
        nsq fresh = {0};
        fresh.ns = ait_strdup(ns);
        adm->q[adm->nq++] = fresh;
        i = reposition_ns(adm, adm->nq - 1);
    }
    nsq *q = &adm->q[i];
    size_t j = find_waiter(q, name);
    if (j != SIZE_MAX) {
        if (q->w[j].creation == creation) {
            q->w[j].seen = now;
            *qi = i;
            *wi = j;
            return;
        }
        /* Same name, new creation time: a deleted and recreated task that was not forgotten. */
        ait_free(q->w[j].name);
        memmove(&q->w[j], &q->w[j + 1], (q->n - j - 1) * sizeof(waiter));
        q->n--;
        adm->depth--;
    }
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->w = ait_realloc(q->w, q->cap * sizeof(waiter));
    }
    /* Binary search for the first waiter that sorts after the new one. */
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (waiter_before(creation, name, q->w[mid].creation, q->w[mid].name)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    memmove(&q->w[lo + 1], &q->w[lo], (q->n - lo) * sizeof(waiter));
    q->w[lo].name = ait_strdup(name);
    q->w[lo].creation = creation;
    q->w[lo].notified = 0;
    q->w[lo].seen = now;
    q->n++;
    adm->depth++;
    *qi = i;
    *wi = lo;
}

/* ---- reservations and the start log ---- */

static size_t find_reservation(const ait_admission *adm, const char *ns, const char *name)
{
    for (size_t i = 0; i < adm->nr; i++) {
        if (strcmp(adm->r[i].ns, ns) == 0 && strcmp(adm->r[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void log_remove_token(ait_admission *adm, int64_t t)
{
    if (t == NO_TOKEN) {
        return;
    }
    for (size_t i = 0; i < adm->log_n; i++) {
        if (adm->log[i] == t) {
            memmove(&adm->log[i], &adm->log[i + 1], (adm->log_n - i - 1) * sizeof(int64_t));
            adm->log_n--;
            return;
        }
    }
}

static void log_insert(ait_admission *adm, int64_t t)
{
    size_t at = adm->log_n;
    while (at > 0 && adm->log[at - 1] > t) {
        at--;
    }
    memmove(&adm->log[at + 1], &adm->log[at], (adm->log_n - at) * sizeof(int64_t));
    adm->log[at] = t;
    adm->log_n++;
}

static void remove_reservation(ait_admission *adm, size_t i, int return_token)
{
    if (return_token) {
        log_remove_token(adm, adm->r[i].token);
    }
    ait_free(adm->r[i].ns);
    ait_free(adm->r[i].name);
    ait_free(adm->r[i].pod);
    adm->r[i] = adm->r[adm->nr - 1];
    adm->nr--;
}

/* Drops waiters that stopped asking: a task that is no longer ready to start (or whose
 * forget was missed) must not hold the head of the queue. Its place is derived from its
 * creation time, so asking again restores it. */
static void prune_waiters(ait_admission *adm, int64_t now)
{
    size_t i = 0;
    while (i < adm->nq) {
        nsq *q = &adm->q[i];
        size_t j = 0;
        while (j < q->n) {
            if (now - q->w[j].seen > adm->cfg.waiter_ttl_ns) {
                ait_free(q->w[j].name);
                memmove(&q->w[j], &q->w[j + 1], (q->n - j - 1) * sizeof(waiter));
                q->n--;
                adm->depth--;
                continue;
            }
            j++;
        }
        if (q->n == 0) {
            remove_ns(adm, i);
            continue;
        }
        i++;
    }
}

/* Drops stale waiters, reservations whose pod the cache shows or that expired, then starts
 * older than 60 s. Reservations go before counting: a pod appearing after this check is then
 * counted twice, never zero times. */
static void prune(ait_admission *adm, int64_t now)
{
    prune_waiters(adm, now);
    size_t i = 0;
    while (i < adm->nr) {
        reservation *res = &adm->r[i];
        if (res->pod != NULL && adm->cfg.cache.pod_seen(adm->cfg.cache.ctx, res->ns, res->pod)) {
            remove_reservation(adm, i, 0);
            continue;
        }
        if (now >= res->expires) {
            AIT_LOG_INFO(1, "admission grant expired before its pod was seen", "object", res->ns,
                         "name", res->name, "pod", res->pod);
            remove_reservation(adm, i, 0);
            continue;
        }
        i++;
    }
    size_t drop = 0;
    while (drop < adm->log_n && adm->log[drop] + WINDOW_NS <= now) {
        drop++;
    }
    if (drop > 0) {
        memmove(adm->log, adm->log + drop, (adm->log_n - drop) * sizeof(int64_t));
        adm->log_n -= drop;
    }
}

static size_t reserved_in(const ait_admission *adm, const char *ns)
{
    size_t n = 0;
    for (size_t i = 0; i < adm->nr; i++) {
        if (ns == NULL || strcmp(adm->r[i].ns, ns) == 0) {
            n++;
        }
    }
    return n;
}

/* Fills v (v->elig allocated, free with ait_free) from the cache and the reservations. Call
 * after prune(). */
static void make_view(ait_admission *adm, view *v)
{
    const ait_admission_cache *c = &adm->cfg.cache;
    v->free_slots = INT64_MAX;
    if (adm->cfg.max_running > 0) {
        int64_t used = (int64_t)(c->running(c->ctx, NULL) + adm->nr);
        v->free_slots = adm->cfg.max_running - used;
        if (v->free_slots < 0) {
            v->free_slots = 0;
        }
    }
    v->tokens = INT64_MAX;
    if (adm->cfg.starts_per_minute > 0) {
        v->tokens = adm->cfg.starts_per_minute - (int64_t)adm->log_n;
        if (v->tokens < 0) {
            v->tokens = 0;
        }
    }
    v->elig = ait_calloc(adm->nq ? adm->nq : 1, sizeof(size_t));
    for (size_t i = 0; i < adm->nq; i++) {
        const nsq *q = &adm->q[i];
        if (adm->cfg.max_running_per_namespace <= 0) {
            v->elig[i] = q->n;
            continue;
        }
        size_t used = c->running(c->ctx, q->ns) + reserved_in(adm, q->ns);
        size_t lim = (size_t)adm->cfg.max_running_per_namespace;
        v->elig[i] = used >= lim ? 0 : min_sz(q->n, lim - used);
    }
}

/* 1-based place of waiter (i, j) in the fair order, counting per namespace m only cnt[m] of its
 * first tasks (cnt NULL = all). */
static size_t rank_of(const ait_admission *adm, const size_t *cnt, size_t i, size_t j)
{
    size_t ahead = 0;
    for (size_t m = 0; m < adm->nq; m++) {
        size_t n = cnt ? cnt[m] : adm->q[m].n;
        ahead += min_sz(n, j);
        if (m < i && n > j) {
            ahead++;
        }
    }
    return ahead + 1;
}

static int64_t window_size(const view *v)
{
    return v->free_slots < v->tokens ? v->free_slots : v->tokens;
}

/* ---- requeue notifications ---- */

static void keys_add(key_list *k, const char *ns, const char *name)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        k->ns = ait_realloc(k->ns, k->cap * sizeof(char *));
        k->name = ait_realloc(k->name, k->cap * sizeof(char *));
    }
    k->ns[k->n] = ait_strdup(ns);
    k->name[k->n] = ait_strdup(name);
    k->n++;
}

/* Collects the waiting tasks inside the admission window that were not asked to come back since
 * their last WAIT. Under the lock. */
static void collect_window(ait_admission *adm, key_list *k)
{
    if (adm->cfg.cache.requeue == NULL || adm->nq == 0) {
        return;
    }
    view v;
    make_view(adm, &v);
    int64_t left = window_size(&v);
    for (size_t round = 0; left > 0; round++) {
        int any = 0;
        for (size_t m = 0; m < adm->nq && left > 0; m++) {
            if (v.elig[m] <= round) {
                continue;
            }
            any = 1;
            left--;
            waiter *w = &adm->q[m].w[round];
            if (!w->notified) {
                w->notified = 1;
                keys_add(k, adm->q[m].ns, w->name);
            }
        }
        if (!any) {
            break;
        }
    }
    ait_free(v.elig);
}

/* Unlocks, then calls requeue for each collected key and frees them. */
static void unlock_and_notify(ait_admission *adm, key_list *k)
{
    pthread_mutex_unlock(&adm->mu);
    for (size_t i = 0; i < k->n; i++) {
        adm->cfg.cache.requeue(adm->cfg.cache.ctx, k->ns[i], k->name[i]);
        ait_free(k->ns[i]);
        ait_free(k->name[i]);
    }
    ait_free(k->ns);
    ait_free(k->name);
}

/* ---- public API ---- */

ait_status ait_admission_new(const ait_admission_config *cfg, const ait_clock *clock,
                             ait_admission **out, ait_error *err)
{
    if (out == NULL || cfg == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "admission: config and out are required");
    }
    *out = NULL;
    if (cfg->max_running < 0 || cfg->max_running_per_namespace < 0 || cfg->starts_per_minute < 0 ||
        cfg->reservation_ttl_ns < 0 || cfg->recheck_ns < 0 || cfg->waiter_ttl_ns < 0) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "admission: limits must be >= 0 (0 = unlimited): maxRunning=%d "
                             "maxRunningPerNamespace=%d startsPerMinute=%d",
                             cfg->max_running, cfg->max_running_per_namespace,
                             cfg->starts_per_minute);
    }
    if (cfg->cache.running == NULL || cfg->cache.pod_seen == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "admission: the cache's running and pod_seen callbacks are required");
    }
    ait_admission *adm = ait_calloc(1, sizeof(*adm));
    pthread_mutex_init(&adm->mu, NULL);
    adm->cfg = *cfg;
    if (adm->cfg.reservation_ttl_ns == 0) {
        adm->cfg.reservation_ttl_ns = DEFAULT_TTL_NS;
    }
    if (adm->cfg.recheck_ns == 0) {
        adm->cfg.recheck_ns = DEFAULT_RECHECK_NS;
    }
    if (adm->cfg.waiter_ttl_ns == 0) {
        adm->cfg.waiter_ttl_ns = 4 * adm->cfg.recheck_ns;
    }
    if (adm->cfg.waiter_ttl_ns <= WINDOW_NS) {
        /* A StartRate wait may last a whole window: the waiter must outlive it. */
        adm->cfg.waiter_ttl_ns = WINDOW_NS + adm->cfg.recheck_ns;
    }
    adm->clock = clock ? clock : ait_clock_system();
    if (cfg->starts_per_minute > 0) {
        adm->log = ait_calloc((size_t)cfg->starts_per_minute, sizeof(int64_t));
    }
    *out = adm;
    return AIT_OK;
}

void ait_admission_free(ait_admission *adm)
{
    if (adm == NULL) {
        return;
    }
    while (adm->nq > 0) {
        nsq *q = &adm->q[adm->nq - 1];
        for (size_t j = 0; j < q->n; j++) {
            ait_free(q->w[j].name);
        }
        remove_ns(adm, adm->nq - 1);
    }
    while (adm->nr > 0) {
        remove_reservation(adm, adm->nr - 1, 0);
    }
    ait_free(adm->q);
    ait_free(adm->r);
    ait_free(adm->log);
    pthread_mutex_destroy(&adm->mu);
    ait_free(adm);
}

static void admit(ait_admission *adm, size_t i, size_t j, int64_t now)
{
    if (adm->nr == adm->capr) {
        adm->capr = adm->capr ? adm->capr * 2 : 8;
        adm->r = ait_realloc(adm->r, adm->capr * sizeof(reservation));
    }
    reservation *res = &adm->r[adm->nr++];
    res->ns = ait_strdup(adm->q[i].ns);
    res->name = ait_strdup(adm->q[i].w[j].name);
    res->pod = NULL;
    res->expires = now + adm->cfg.reservation_ttl_ns;
    res->token = NO_TOKEN;
    if (adm->cfg.starts_per_minute > 0) {
        res->token = now;
        log_insert(adm, now);
    }
    adm->q[i].last_served = ++adm->seq;
    size_t at = reposition_ns(adm, i);
    remove_waiter(adm, at, j);
}

ait_status ait_admission_request(ait_admission *adm, const char *ns, const char *name,
                                 int64_t creation_ns, ait_admission_decision *out)
{
    if (adm == NULL || ns == NULL || name == NULL || out == NULL) {
        return AIT_ERR_INVALID;
    }
    memset(out, 0, sizeof(*out));
    key_list keys = {0};
    pthread_mutex_lock(&adm->mu);
    int64_t now = mono(adm);
    prune(adm, now);
    size_t ri = find_reservation(adm, ns, name);
    if (ri != SIZE_MAX) {
        /* Asked again while holding a grant (the create failed before release, or the reconcile
         * was repeated): the same grant, not a second slot. */
        if (adm->r[ri].pod == NULL) {
            adm->r[ri].expires = now + adm->cfg.reservation_ttl_ns;
        }
        out->verdict = AIT_ADMISSION_ADMIT;
        out->depth = adm->depth;
        pthread_mutex_unlock(&adm->mu);
        return AIT_OK;
    }
    size_t i, j;
    add_waiter(adm, ns, name, creation_ns, now, &i, &j);
    view v;
    make_view(adm, &v);
    const char *reason = NULL;
    int limit = 0;
    int64_t retry = 0;
    if (v.free_slots <= 0) {
        reason = AIT_ADMISSION_REASON_MAX_RUNNING;
        limit = adm->cfg.max_running;
    } else if (j >= v.elig[i]) {
        reason = AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS;
        limit = adm->cfg.max_running_per_namespace;
    } else {
        int64_t erank = (int64_t)rank_of(adm, v.elig, i, j);
        if (erank > v.free_slots) {
            reason = AIT_ADMISSION_REASON_MAX_RUNNING;
            limit = adm->cfg.max_running;
        } else if (erank > v.tokens) {
            reason = AIT_ADMISSION_REASON_START_RATE;
            limit = adm->cfg.starts_per_minute;
            /* The (erank - tokens)-th oldest start must leave the window first. */
            int64_t need = erank - v.tokens;
            retry = WINDOW_NS;
            if (adm->log_n > 0) {
                size_t k = (size_t)need - 1 < adm->log_n ? (size_t)need - 1 : adm->log_n - 1;
                retry = adm->log[k] + WINDOW_NS - now;
            }
            if (retry < AIT_NS_PER_MS) {
                retry = AIT_NS_PER_MS;
            }
        }
    }
    if (reason == NULL) {
        admit(adm, i, j, now);
        out->verdict = AIT_ADMISSION_ADMIT;
    } else {
        out->verdict = AIT_ADMISSION_WAIT;
        out->reason = reason;
        out->limit = limit;
        out->position = rank_of(adm, NULL, i, j);
        out->retry_after_ns = retry ? retry : adm->cfg.recheck_ns;
        adm->q[i].w[j].notified = 0;
    }
    ait_free(v.elig);
    out->depth = adm->depth;
    collect_window(adm, &keys);
    unlock_and_notify(adm, &keys);
    return AIT_OK;
}

void ait_admission_enqueue(ait_admission *adm, const char *ns, const char *name,
                           int64_t creation_ns)
{
    if (adm == NULL || ns == NULL || name == NULL) {
        return;
    }
    key_list keys = {0};
    pthread_mutex_lock(&adm->mu);
    int64_t now = mono(adm);
    prune(adm, now);
    if (find_reservation(adm, ns, name) == SIZE_MAX) {
        size_t i, j;
        add_waiter(adm, ns, name, creation_ns, now, &i, &j);
    }
    collect_window(adm, &keys);
    unlock_and_notify(adm, &keys);
}

void ait_admission_started(ait_admission *adm, const char *ns, const char *name,
                           const char *pod_name)
{
    if (adm == NULL || ns == NULL || name == NULL || pod_name == NULL) {
        return;
    }
    pthread_mutex_lock(&adm->mu);
    size_t ri = find_reservation(adm, ns, name);
    if (ri != SIZE_MAX) {
        reservation *res = &adm->r[ri];
        ait_free(res->pod);
        res->pod = ait_strdup(pod_name);
        /* The pod exists: its token is spent for good, and the cache will show it soon. */
        res->token = NO_TOKEN;
        res->expires = mono(adm) + adm->cfg.reservation_ttl_ns;
    }
    pthread_mutex_unlock(&adm->mu);
}

/* Drops ns/name's reservation (returning its token when asked) and, when forget, its waiter. */
static void drop(ait_admission *adm, const char *ns, const char *name, int forget)
{
    if (adm == NULL || ns == NULL || name == NULL) {
        return;
    }
    key_list keys = {0};
    pthread_mutex_lock(&adm->mu);
    size_t ri = find_reservation(adm, ns, name);
    if (ri != SIZE_MAX) {
        remove_reservation(adm, ri, !forget);
    }
    if (forget) {
        size_t i = find_ns(adm, ns);
        size_t j = i == SIZE_MAX ? SIZE_MAX : find_waiter(&adm->q[i], name);
        if (j != SIZE_MAX) {
            remove_waiter(adm, i, j);
        }
    }
    prune(adm, mono(adm));
    collect_window(adm, &keys);
    unlock_and_notify(adm, &keys);
}

void ait_admission_release(ait_admission *adm, const char *ns, const char *name)
{
    drop(adm, ns, name, 0);
}

void ait_admission_forget(ait_admission *adm, const char *ns, const char *name)
{
    drop(adm, ns, name, 1);
}

void ait_admission_kick(ait_admission *adm)
{
    if (adm == NULL) {
        return;
    }
    key_list keys = {0};
    pthread_mutex_lock(&adm->mu);
    prune(adm, mono(adm));
    collect_window(adm, &keys);
    unlock_and_notify(adm, &keys);
}

void ait_admission_note_start(ait_admission *adm, int64_t created_ns)
{
    if (adm == NULL || adm->cfg.starts_per_minute <= 0) {
        return;
    }
    pthread_mutex_lock(&adm->mu);
    int64_t now = mono(adm);
    int64_t wall = adm->clock->now_ns(adm->clock->ctx);
    int64_t t = now - (wall - created_ns);
    prune(adm, now);
    if (t > now) {
        t = now; /* a creation stamp ahead of our clock counts as now */
    }
    if (t + WINDOW_NS > now && adm->log_n < (size_t)adm->cfg.starts_per_minute) {
        log_insert(adm, t);
    }
    pthread_mutex_unlock(&adm->mu);
}

size_t ait_admission_depth(ait_admission *adm)
{
    if (adm == NULL) {
        return 0;
    }
    pthread_mutex_lock(&adm->mu);
    size_t n = adm->depth;
    pthread_mutex_unlock(&adm->mu);
    return n;
}

size_t ait_admission_reserved(ait_admission *adm)
{
    if (adm == NULL) {
        return 0;
    }
    pthread_mutex_lock(&adm->mu);
    prune(adm, mono(adm));
    size_t n = adm->nr;
    pthread_mutex_unlock(&adm->mu);
    return n;
}

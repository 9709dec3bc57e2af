/* SPDX-License-Identifier: Apache-2.0 */
/* Lease-based leader election (client-go's LeaderElector with a LeaseLock). The observed record
 * and the last Lease object read are touched only by the election thread (or by a test driving
 * the steps without it); `leading`, `holder` and `stop` are shared under mu. */
#include "kube/leader.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"

struct ait_leader {
    ait_rest *rest;
    char *ns;
    char *name;
    char *identity;
    int64_t lease_ns;
    int64_t renew_ns;
    int64_t retry_ns;
    double jitter;
    int no_release;
    ait_clock clock;
    ait_leader_callbacks cb;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int started;
    int stop;
    int leading;  /* between started_leading and stopped_leading */
    char *holder; /* mirror of obs_holder for other threads */

    /* election thread only */
    json_object *lease; /* last Lease read or written: carries resourceVersion */
    char *obs_holder;
    int64_t obs_duration_s;
    char *obs_acquire;
    int64_t obs_transitions;
    char *obs_raw;    /* the record as compared for changes */
    int64_t obs_time; /* clock mono when the record last changed */
    char *reported;   /* last holder given to new_leader */
    uint64_t rng;
};

/* ---- helpers ---- */

static int64_t mono(ait_leader *l)
{
    return l->clock.mono_ns(l->clock.ctx);
}

static double rand01(ait_leader *l)
{
    /* xorshift64*: only for jitter, no quality needed */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return (double)((l->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Waits up to ns of real time; returns non-zero when stop was requested. */
static int wait_stop(ait_leader *l, int64_t ns)
{
    struct timespec ts;
    int64_t t = ait_time_mono_ns() + (ns > 0 ? ns : 0);
    ts.tv_sec = (time_t)(t / AIT_NS_PER_S);
    ts.tv_nsec = (long)(t % AIT_NS_PER_S);
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (pthread_cond_timedwait(&l->cond, &l->mu, &ts) != 0) {
            break;
        }
    }
    int s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static int stopping(ait_leader *l)
{
    pthread_mutex_lock(&l->mu);
    int s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static int is_leader(ait_leader *l)
{
    return l->obs_holder && strcmp(l->obs_holder, l->identity) == 0;
}

static char *raw_record(const char *holder, int64_t dur, const char *acquire, const char *renew,
                        int64_t transitions)
{
    return ait_asprintf("%s\x1f%lld\x1f%s\x1f%s\x1f%lld", holder ? holder : "", (long long)dur,
                        acquire ? acquire : "", renew ? renew : "", (long long)transitions);
}

/* Records (holder, ...) as observed at mono time t when it differs from what we saw last. */
static void observe(ait_leader *l, const char *holder, int64_t dur, const char *acquire,
                    const char *renew, int64_t transitions, int64_t t)
{
    char *raw = raw_record(holder, dur, acquire, renew, transitions);
    if (l->obs_raw && strcmp(raw, l->obs_raw) == 0) {
        ait_free(raw);
        return;
    }
    ait_free(l->obs_raw);
    l->obs_raw = raw;
    ait_free(l->obs_holder);
    l->obs_holder = ait_strdup(holder ? holder : "");
    l->obs_duration_s = dur;
    ait_free(l->obs_acquire);
    l->obs_acquire = ait_strdup(acquire ? acquire : "");
    l->obs_transitions = transitions;
    l->obs_time = t;
    pthread_mutex_lock(&l->mu);
    ait_free(l->holder);
    l->holder = ait_strdup(l->obs_holder);
    pthread_mutex_unlock(&l->mu);
}

static json_object *make_spec(const char *holder, int64_t dur, const char *acquire,
                              const char *renew, int64_t transitions)
{
    json_object *spec = json_object_new_object();
    json_object_object_add(spec, "holderIdentity", json_object_new_string(holder));
    json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int64(dur));
    json_object_object_add(spec, "acquireTime", json_object_new_string(acquire));
    json_object_object_add(spec, "renewTime", json_object_new_string(renew));
    json_object_object_add(spec, "leaseTransitions", json_object_new_int64(transitions));
    return spec;
}

static int64_t lease_seconds(ait_leader *l)
{
    int64_t s = (l->lease_ns + AIT_NS_PER_S / 2) / AIT_NS_PER_S;
    return s < 1 ? 1 : s;
}

static void set_lease(ait_leader *l, json_object *obj)
{
    if (l->lease) {
        json_object_put(l->lease);
    }
    l->lease = obj;
}

static void report_transition(ait_leader *l)
{
    if (!l->obs_holder || l->obs_holder[0] == '\0') {
        return;
    }
    if (l->reported && strcmp(l->reported, l->obs_holder) == 0) {
        return;
    }
    ait_free(l->reported);
    l->reported = ait_strdup(l->obs_holder);
    AIT_LOG_INFO(1, "new leader observed", "lease", l->name, "holder", l->reported);
    if (l->cb.new_leader) {
        l->cb.new_leader(l->cb.ctx, l->reported);
    }
}

/* ---- the steps ---- */

ait_status ait_leader_try_acquire_or_renew(ait_leader *l, int *acquired, ait_error *err)
{
    *acquired = 0;
    char ts[40];
    ait_time_rfc3339_micro(l->clock.now_ns(l->clock.ctx), ts, sizeof(ts));
    int64_t now = mono(l);
    int64_t dur = lease_seconds(l);

    /* 1. obtain or create the record */
    json_object *got = NULL;
    ait_status st = ait_rest_get(l->rest, &AIT_GVR_LEASES, l->ns, l->name, &got, err);
    if (st == AIT_ERR_NOT_FOUND) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
        json_object_object_add(obj, "kind", json_object_new_string("Lease"));
        json_object *meta = json_object_new_object();
        json_object_object_add(meta, "name", json_object_new_string(l->name));
        json_object_object_add(meta, "namespace", json_object_new_string(l->ns));
        json_object_object_add(obj, "metadata", meta);
        json_object_object_add(obj, "spec", make_spec(l->identity, dur, ts, ts, 0));
        json_object *created = NULL;
        st = ait_rest_create(l->rest, &AIT_GVR_LEASES, l->ns, obj, &created, err);
        json_object_put(obj);
        if (st != AIT_OK) {
            return st;
        }
        set_lease(l, created);
        observe(l, l->identity, dur, ts, ts, 0, now);
        *acquired = 1;
        return AIT_OK;
    }
    if (st != AIT_OK) {
        return st;
    }
    set_lease(l, got);

    /* 2. record obtained: note the time it last changed, check holder and expiry */
    const char *holder = ait_json_str(got, "spec.holderIdentity");
    int64_t odur = ait_json_int(got, "spec.leaseDurationSeconds", 0);
    const char *oacq = ait_json_str(got, "spec.acquireTime");
    int64_t otrans = ait_json_int(got, "spec.leaseTransitions", 0);
    observe(l, holder, odur, oacq, ait_json_str(got, "spec.renewTime"), otrans, now);
    int64_t valid_ns = (l->obs_duration_s > 0 ? l->obs_duration_s * AIT_NS_PER_S : l->lease_ns);
    if (l->obs_holder[0] != '\0' && l->obs_time + valid_ns > now && !is_leader(l)) {
        return AIT_OK; /* held by another and not expired */
    }

    /* 3. take or renew it, with the resourceVersion just read */
    char *acquire = NULL;
    int64_t transitions;
    if (is_leader(l)) {
        acquire = ait_strdup(l->obs_acquire[0] ? l->obs_acquire : ts);
        transitions = l->obs_transitions;
    } else {
        acquire = ait_strdup(ts);
        transitions = l->obs_transitions + 1;
    }
    json_object_object_add(got, "spec", make_spec(l->identity, dur, acquire, ts, transitions));
    json_object *updated = NULL;
    st = ait_rest_update(l->rest, &AIT_GVR_LEASES, l->ns, l->name, NULL, got, &updated, err);
    if (st == AIT_OK) {
        set_lease(l, updated);
        observe(l, l->identity, dur, acquire, ts, transitions, now);
        *acquired = 1;
    }
    ait_free(acquire);
    return st;
}

ait_status ait_leader_release(ait_leader *l, ait_error *err)
{
    if (!is_leader(l) || !l->lease) {
        return AIT_OK;
    }
    char ts[40];
    ait_time_rfc3339_micro(l->clock.now_ns(l->clock.ctx), ts, sizeof(ts));
    json_object_object_add(l->lease, "spec", make_spec("", 1, ts, ts, l->obs_transitions));
    json_object *updated = NULL;
    ait_status st =
        ait_rest_update(l->rest, &AIT_GVR_LEASES, l->ns, l->name, NULL, l->lease, &updated, err);
    if (st != AIT_OK) {
        return st;
    }
    set_lease(l, updated);
    observe(l, "", 1, ts, ts, l->obs_transitions, mono(l));
    return AIT_OK;
}

/* ---- the thread ---- */

static void set_leading(ait_leader *l, int on)
{
    pthread_mutex_lock(&l->mu);
    l->leading = on;
    pthread_mutex_unlock(&l->mu);
    if (on) {
        AIT_LOG_INFO(0, "started leading", "lease", l->name, "identity", l->identity);
        if (l->cb.started_leading) {
            l->cb.started_leading(l->cb.ctx);
        }
    } else {
        AIT_LOG_INFO(0, "stopped leading", "lease", l->name, "identity", l->identity);
        if (l->cb.stopped_leading) {
            l->cb.stopped_leading(l->cb.ctx);
        }
    }
}

static int try_step(ait_leader *l)
{
    ait_error e = {0};
    int acquired = 0;
    ait_status st = ait_leader_try_acquire_or_renew(l, &acquired, &e);
    if (st != AIT_OK) {
        AIT_LOG_INFO(1, "lease acquire or renew failed", "lease", l->name, "error", e.msg);
    }
    report_transition(l);
    return acquired;
}

static void *leader_main(void *arg)
{
    ait_leader *l = arg;
    while (!stopping(l)) {
        /* candidate: try every jittered retry period */
        int acquired = 0;
        while (!(acquired = try_step(l))) {
            if (wait_stop(l,
                          l->retry_ns + (int64_t)(rand01(l) * l->jitter * (double)l->retry_ns))) {
                break;
            }
        }
        if (!acquired) {
            break;
        }
        set_leading(l, 1);
        /* leader: renew every retry period; give up when no renewal succeeds in renew_ns */
        int lost = 0;
        while (!lost && !wait_stop(l, l->retry_ns)) {
            int64_t deadline = mono(l) + l->renew_ns;
            while (!try_step(l)) {
                if (mono(l) + l->retry_ns >= deadline || wait_stop(l, l->retry_ns)) {
                    lost = 1;
                    break;
                }
            }
        }
        if (!l->no_release && (stopping(l) || lost)) {
            ait_error e = {0};
            if (ait_leader_release(l, &e) != AIT_OK) {
                AIT_LOG_ERROR(e.msg, "releasing the lease failed", "lease", l->name);
            }
        }
        if (lost && !stopping(l)) {
            AIT_LOG_ERROR("renew deadline passed", "leader election lost", "lease", l->name);
        }
        set_leading(l, 0);
    }
    return NULL;
}

/* ---- public ---- */

ait_status ait_leader_new(ait_rest *rest, const ait_leader_options *opts, ait_leader **out,
                          ait_error *err)
{
    *out = NULL;
    if (!rest || !opts || !opts->namespace_ || !opts->name || !opts->identity ||
        !opts->identity[0] || !opts->name[0] || !opts->namespace_[0]) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "leader: rest, namespace, name and identity are required");
    }
    int64_t lease = opts->lease_duration_ns > 0 ? opts->lease_duration_ns : 15 * AIT_NS_PER_S;
    int64_t renew = opts->renew_deadline_ns > 0 ? opts->renew_deadline_ns : 10 * AIT_NS_PER_S;
    int64_t retry = opts->retry_period_ns > 0 ? opts->retry_period_ns : 2 * AIT_NS_PER_S;
    double jitter = opts->jitter > 0 ? opts->jitter : 1.2;
    if (lease <= renew) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "leader: lease duration must be greater than the renew deadline");
    }
    if ((double)renew <= jitter * (double)retry) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "leader: renew deadline must be greater than jitter * retry period");
    }
    ait_leader *l = ait_calloc(1, sizeof(*l));
    l->rest = rest;
    l->ns = ait_strdup(opts->namespace_);
    l->name = ait_strdup(opts->name);
    l->identity = ait_strdup(opts->identity);
    l->lease_ns = lease;
    l->renew_ns = renew;
    l->retry_ns = retry;
    l->jitter = jitter;
    l->no_release = opts->no_release;
    l->clock = opts->clock ? *opts->clock : *ait_clock_system();
    l->cb = opts->callbacks;
    l->rng = (uint64_t)ait_time_mono_ns() ^ ((uint64_t)(uintptr_t)l << 17) ^ 0x9e3779b97f4a7c15u;
    for (const char *p = l->identity; *p; p++) {
        l->rng = l->rng * 31 + (unsigned char)*p;
    }
    if (l->rng == 0) {
        l->rng = 1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = l;
    return AIT_OK;
}

ait_status ait_leader_start(ait_leader *l, ait_error *err)
{
    pthread_mutex_lock(&l->mu);
    if (l->started) {
        pthread_mutex_unlock(&l->mu);
        return ait_error_set(err, AIT_ERR_INVALID, "leader: already started");
    }
    l->stop = 0;
    int rc = pthread_create(&l->thread, NULL, leader_main, l);
    if (rc == 0) {
        l->started = 1;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != 0) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "leader: pthread_create: %s", strerror(rc));
    }
    return AIT_OK;
}

void ait_leader_stop(ait_leader *l)
{
    pthread_mutex_lock(&l->mu);
    int started = l->started;
    l->stop = 1;
    l->started = 0;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (started) {
        pthread_join(l->thread, NULL);
    }
}

void ait_leader_free(ait_leader *l)
{
    if (!l) {
        return;
    }
    ait_leader_stop(l);
    set_lease(l, NULL);
    ait_free(l->ns);
    ait_free(l->name);
    ait_free(l->identity);
    ait_free(l->holder);
    ait_free(l->obs_holder);
    ait_free(l->obs_acquire);
    ait_free(l->obs_raw);
    ait_free(l->reported);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    ait_free(l);
}

int ait_leader_is_leader(ait_leader *l)
{
    pthread_mutex_lock(&l->mu);
    int v = l->leading;
    pthread_mutex_unlock(&l->mu);
    return v;
}

char *ait_leader_holder(ait_leader *l)
{
    pthread_mutex_lock(&l->mu);
    char *h = ait_strdup(l->holder);
    pthread_mutex_unlock(&l->mu);
    return h;
}

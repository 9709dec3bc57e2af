/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: a candidate
 * takes the lease when it is absent, released, or expired by the local observed time of the last
 * change seen (never by comparing clocks across machines), renews it with optimistic concurrency
 * (PUT with resourceVersion), loses leadership when renewals fail past the renew deadline, and
 * on a clean stop writes holderIdentity "" so another candidate takes over at once. */
#ifndef AIT_KUBE_LEADER_H
#define AIT_KUBE_LEADER_H

#include <stdint.h>

#include "core/status.h"
#include "core/time.h"
#include "kube/rest.h"

typedef struct ait_leader ait_leader;

/* Called on the election thread; they must return quickly (start or stop workers and return),
 * since renewals wait for them. Every member may be NULL. */
typedef struct ait_leader_callbacks {
    void *ctx;
    void (*started_leading)(void *ctx);
    /* after leadership was lost (renew deadline passed) or given up by ait_leader_stop */
    void (*stopped_leading)(void *ctx);
    /* a different non-empty holder was observed (including ourselves); identity borrowed for the
     * call */
    void (*new_leader)(void *ctx, const char *identity);
} ait_leader_callbacks;

typedef struct ait_leader_options {
    const char *namespace_;    /* required; copied */
    const char *name;          /* the Lease's name, required; copied */
    const char *identity;      /* this candidate (pod name + uid, hostname...), required; copied */
    int64_t lease_duration_ns; /* default 15 s */
    int64_t renew_deadline_ns; /* default 10 s; must be < lease duration */
    int64_t retry_period_ns;   /* default 2 s; renew deadline must be > jitter * retry */
    double jitter;             /* candidate waits retry * (1 + rand * jitter); default 1.2 */
    int no_release;            /* 1: keep the lease on stop (default: release it) */
    const ait_clock *clock;    /* NULL = system; borrowed, must outlive the elector */
    ait_leader_callbacks callbacks;
} ait_leader_options;

/* Creates an elector using rest (borrowed; must outlive it; its per-request timeout should be
 * below the renew deadline). Checks the timing rules of client-go (lease > renew deadline >
 * jitter * retry > 0). Returns owned in *out, free with ait_leader_free(). */
ait_status ait_leader_new(ait_rest *rest, const ait_leader_options *opts, ait_leader **out,
                          ait_error *err) AIT_WUR;

/* Starts the election thread: it tries to acquire every jittered retry period, calls
 * started_leading, renews every retry period, and on loss calls stopped_leading and becomes a
 * candidate again. */
ait_status ait_leader_start(ait_leader *l, ait_error *err) AIT_WUR;

/* Stops the thread (waiting for a request in flight to end), releases the lease when leading
 * (unless no_release) and calls stopped_leading if it was leading. Idempotent; thread-safe. */
void ait_leader_stop(ait_leader *l);

/* Stops (see ait_leader_stop) and frees. NULL is a no-op. */
void ait_leader_free(ait_leader *l);

/* Returns non-zero while this candidate holds the lease (between started and stopped). */
int ait_leader_is_leader(ait_leader *l);

/* Returns the holder last observed ("" when released, NULL before the first read); owned, free
 * with ait_free. */
char *ait_leader_holder(ait_leader *l);

/* One tryAcquireOrRenew step, run by the election thread; exposed for tests that drive the
 * elector without its thread (do not call while it runs). *acquired is set to 1 when the lease
 * is now held by us. Returns AIT_OK when the step ran (held by another is AIT_OK with
 * *acquired 0), or the API error. */
ait_status ait_leader_try_acquire_or_renew(ait_leader *l, int *acquired, ait_error *err) AIT_WUR;

/* Writes holderIdentity "" / leaseDurationSeconds 1 when we hold the lease (the release step of
 * ait_leader_stop); exposed for tests, same thread rule as above. */
ait_status ait_leader_release(ait_leader *l, ait_error *err) AIT_WUR;

#endif

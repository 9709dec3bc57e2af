/* SPDX-License-Identifier: Apache-2.0 */
/* Work admission: decides whether a task may create its sandbox pod now (limits.maxRunning,
 * limits.maxRunningPerNamespace, limits.startsPerMinute) and keeps the tasks that must wait in a
 * fair queue (round-robin over namespaces, FIFO by creationTimestamp then name inside one).
 * Invariant: running pods counted from the caller's informer cache plus grants not yet visible
 * there never exceed a limit, so a restarted module or a new leader holds the limits too. */
#ifndef AIT_RECONCILE_ADMISSION_H
#define AIT_RECONCILE_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"

/*
 * How the reconciler uses it (one ait_admission per controller, shared by all workers):
 *
 *   1. Right before creating an attempt's pod (after its NetworkPolicy and ConfigMap, which cost
 *      no slot), and only when that pod is not already in the cache, call
 *      ait_admission_request(adm, ns, task, task_creation_ns, &d).
 *      - AIT_ADMISSION_ADMIT: create the pod. On success (201, or 409 AlreadyExists = adopted)
 *        call ait_admission_started(adm, ns, task, pod_name); on any failure call
 *        ait_admission_release(adm, ns, task) (the slot and the start token come back).
 *      - AIT_ADMISSION_WAIT: do not create anything. Keep the task Pending and set the condition
 *        Queued=True, reason d.reason, message e.g. "position 7 in the queue; limit
 *        maxRunning=10 reached"; write it only when position or reason changed (positions move
 *        on every grant: writing each change for a long queue costs one status update per
 *        waiting task per grant). Requeue the key after d.retry_after_ns: requeue below usually
 *        comes first, but a waiting task must keep asking, or it leaves the queue after
 *        waiter_ttl_ns (and gets its place back, by creation time, when it asks again).
 *   2. When a task ends (Succeeded/Failed) or is deleted, or stops being ready to start (for
 *      example its secrets cannot be resolved any more): ait_admission_forget(adm, ns, task).
 *   3. When the pods informer sees an owned pod become terminal or deleted (a slot freed):
 *      ait_admission_kick(adm).
 *   4. Metrics: aitask_queue_depth = ait_admission_depth(adm). aitask_queue_wait_seconds is
 *      observed by the caller: (time of the first ADMIT of the task's attempt 1) - creation.
 *   Optional: ait_admission_enqueue() for every Pending task the task informer delivers, so the
 *   fair order knows the whole backlog before the first grant after a start; and
 *   ait_admission_note_start() for each owned pod created in the last minute (from its
 *   creationTimestamp) so the start rate also survives a restart.
 *
 * Order: only the first tasks of the fair order may start. The fair order of the waiting tasks is
 * by (round, namespace rank), where a task's round is its index in its namespace's FIFO and
 * namespaces of one round are ranked least recently granted first, then by name. With A=500 and
 * B=5 waiting, grants alternate A, B, A, B... until B is empty. A task is admitted when, counting
 * only tasks that could start now (their namespace has room under maxRunningPerNamespace), fewer
 * than min(free slots, start tokens) tasks are ahead of it, so several workers admit the window
 * in parallel, still in fair order. Position (reported on WAIT) is the 1-based place in the fair
 * order over all waiting tasks. The order covers the tasks the module knows: right after a start,
 * a task not yet asked about or enqueued is not in it. A namespace's "last granted" is forgotten
 * when its last waiting task leaves, so it ranks first in its next round (the order inside a
 * namespace is by creation time, so it is the same after a restart; only the tie between
 * namespaces of one round may differ).
 *
 * Counting: running(ns) from the cache (owned pods not Succeeded/Failed and without
 * deletionTimestamp) plus reservations. A reservation is made by ADMIT and lasts until the pod
 * is seen in the cache (pod_seen), ait_admission_release/forget, or reservation_ttl_ns passes.
 * Reservations are pruned BEFORE the cache is counted, so a pod that appears in between is
 * counted twice (safe), never zero times.
 *
 * Start rate: at most starts_per_minute grants in any 60 s window (a token bucket whose every
 * token returns 60 s after it was taken; a plain bucket of that size would allow twice the limit
 * in one window). A released grant returns its token.
 */

typedef struct ait_admission ait_admission;

/* Seams into the caller's caches and work queue. */
typedef struct ait_admission_cache {
    void *ctx;
    /* Required. The number of sandbox pods owned by AITasks that are not terminal (phase not
     * Succeeded/Failed, no deletionTimestamp) in the pods informer's cache: in namespace ns, or
     * in all namespaces when ns is NULL. Called with the module's lock held: must not call into
     * the module; may take the cache's own lock. Called once for the total and, with a
     * per-namespace limit, once per namespace that has waiting tasks on every decision: keep it
     * cheap (counters kept by the informer's handlers rather than a scan of all pods). */
    size_t (*running)(void *ctx, const char *ns);
    /* Required. True when pod ns/pod_name is in the pods cache in any phase (it is then counted
     * by running(), or finished). Same locking rule as running. */
    int (*pod_seen)(void *ctx, const char *ns, const char *pod_name);
    /* Optional (NULL = the caller polls with retry_after_ns). Asks the caller to reconcile the
     * task again soon (work queue add of "ns/name"): called for waiting tasks that entered the
     * admission window, at most once per WAIT answer. Called without the module's lock, from
     * the thread that called request/release/forget/kick; may call into the module. */
    void (*requeue)(void *ctx, const char *ns, const char *name);
} ait_admission_cache;

typedef struct ait_admission_config {
    int max_running;               /* pods at once, cluster-wide; 0 = unlimited */
    int max_running_per_namespace; /* 0 = unlimited */
    int starts_per_minute;         /* pod creations per 60 s; 0 = unlimited */
    int64_t reservation_ttl_ns;    /* 0 = 30 s: a grant not seen in the cache by then is freed */
    int64_t recheck_ns;            /* 0 = 30 s: retry_after_ns of a wait on a running limit */
    /* 0 = 4 * recheck_ns (at least 60 s + recheck_ns): a waiting task that has not asked again
     * (request or enqueue) for this long leaves the queue, so a task that stopped being ready
     * cannot hold the head. Asking again puts it back at the same place (creation order). */
    int64_t waiter_ttl_ns;
    ait_admission_cache cache; /* copied; ctx borrowed, must outlive the module */
} ait_admission_config;

typedef enum ait_admission_verdict {
    AIT_ADMISSION_ADMIT = 0,
    AIT_ADMISSION_WAIT = 1,
} ait_admission_verdict;

#define AIT_ADMISSION_REASON_MAX_RUNNING "MaxRunning"
#define AIT_ADMISSION_REASON_MAX_RUNNING_PER_NS "MaxRunningPerNamespace"
#define AIT_ADMISSION_REASON_START_RATE "StartRate"

typedef struct ait_admission_decision {
    ait_admission_verdict verdict;
    /* WAIT: one of the AIT_ADMISSION_REASON_* strings (static); ADMIT: NULL. */
    const char *reason;
    /* WAIT: the value of the limit named by reason (for the condition message); ADMIT: 0. */
    int limit;
    /* WAIT: 1-based place in the fair order of all waiting tasks; ADMIT: 0. */
    size_t position;
    /* WAIT: reconcile again after this at the latest. StartRate: when enough tokens return;
     * running limits: recheck_ns (kick + requeue usually come first). ADMIT: 0. */
    int64_t retry_after_ns;
    /* Waiting tasks after this decision (aitask_queue_depth). */
    size_t depth;
} ait_admission_decision;

/* Creates the module. cfg is copied (cache.ctx borrowed); clock is borrowed (NULL =
 * ait_clock_system()), must outlive the module; its mono_ns drives reservations and the start
 * rate, now_ns only converts times for ait_admission_note_start. Errors: AIT_ERR_INVALID for a
 * negative limit or a missing running/pod_seen callback. Returns owned in *out, free with
 * ait_admission_free(). */
ait_status ait_admission_new(const ait_admission_config *cfg, const ait_clock *clock,
                             ait_admission **out, ait_error *err) AIT_WUR;
/* Frees the module; NULL is a no-op. No other thread may be using it. */
void ait_admission_free(ait_admission *adm);

/* Decides for task ns/name (strings borrowed), created at creation_ns (its creationTimestamp,
 * ns since epoch; the FIFO key with name). Adds the task to the waiting set if it is not there;
 * on ADMIT removes it and reserves a slot (and a start token). Idempotent: while the task holds
 * a reservation, asking again answers ADMIT without taking a second slot. Fills *out. Errors:
 * AIT_ERR_INVALID when an argument is NULL. Thread-safe. */
ait_status ait_admission_request(ait_admission *adm, const char *ns, const char *name,
                                 int64_t creation_ns, ait_admission_decision *out) AIT_WUR;

/* Adds ns/name to the waiting set without deciding (no-op when it is waiting or reserved).
 * Thread-safe. */
void ait_admission_enqueue(ait_admission *adm, const char *ns, const char *name,
                           int64_t creation_ns);

/* The admitted task created its pod pod_name (borrowed; copied): its reservation now ends as
 * soon as the cache shows that pod. No-op without a reservation. Thread-safe. */
void ait_admission_started(ait_admission *adm, const char *ns, const char *name,
                           const char *pod_name);

/* The admitted task did not create its pod: frees its reservation and, when the pod was never
 * reported started, its start token. Requeues the next waiting tasks. Thread-safe. */
void ait_admission_release(ait_admission *adm, const char *ns, const char *name);

/* The task ended or was deleted: removes it from the waiting set and drops its reservation
 * (its pod, if any, is counted by the cache until it is gone). Thread-safe. */
void ait_admission_forget(ait_admission *adm, const char *ns, const char *name);

/* A slot may have freed (a pod ended or was deleted): requeues the waiting tasks that may start
 * now through cache.requeue. Thread-safe. */
void ait_admission_kick(ait_admission *adm);

/* Records a pod creation that happened at created_ns (wall clock, e.g. a pod's
 * creationTimestamp) against the start rate; ignored when older than 60 s. For seeding after a
 * restart. Thread-safe. */
void ait_admission_note_start(ait_admission *adm, int64_t created_ns);

/* Number of waiting tasks (aitask_queue_depth). Thread-safe. */
size_t ait_admission_depth(ait_admission *adm);

/* Number of reservations not yet seen in the cache. Thread-safe. */
size_t ait_admission_reserved(ait_admission *adm);

#endif

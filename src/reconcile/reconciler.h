/* SPDX-License-Identifier: Apache-2.0 */
/* The AITask reconciler: reads the task and the objects it owns from the caches, decides ONE
 * next step toward the goal (SPEC.md §3) and performs it. Level-based and idempotent: all state
 * lives in the AITask's status and its deterministically named owned objects, so running it
 * twice changes nothing more, and a crash at any point repeats at most one step (a create that
 * then finds AlreadyExists adopts). Long work (LLM calls) never runs here: the healer seam
 * submits it elsewhere and requeues the task when its result has been persisted as the next
 * attempt's ConfigMap. Thread-safe for concurrent reconciles of different keys; the work queue
 * guarantees one key is never reconciled twice at once. */
#ifndef AIT_RECONCILE_RECONCILER_H
#define AIT_RECONCILE_RECONCILER_H

#include <json-c/json.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"
#include "kube/rest.h"
#include "metrics/std.h"
#include "reconcile/admission.h"
#include "reconcile/config.h"
#include "trace/trace.h"

typedef enum ait_cache_kind {
    AIT_CACHE_TASK,
    AIT_CACHE_POD,
    AIT_CACHE_CONFIGMAP,
} ait_cache_kind;

/* Read access to the informers' caches. get returns a private copy owned by the caller
 * (json_object_put; nobody else references it, so the reconciler may edit it), or NULL when the
 * object is not cached. */
typedef struct ait_reconcile_cache {
    void *ctx;
    json_object *(*get)(void *ctx, ait_cache_kind kind, const char *ns, const char *name);
} ait_reconcile_cache;

/* Events seam: type "Normal" or "Warning"; must not block (events are sent asynchronously). */
typedef struct ait_reconcile_events {
    void *ctx;
    void (*emit)(void *ctx, json_object *task, const char *type, const char *reason,
                 const char *action, const char *note);
} ait_reconcile_events;

/* What a heal needs; strings borrowed for the duration of submit. */
typedef struct ait_heal_job {
    const char *key; /* "namespace/name" */
    const char *ns;
    const char *name;
    const char *uid;
    const char *runtime;
    const char *failing_code; /* NULL for a prompt task's first code */
    const char *error_output; /* tail of the failed run's output */
    const char *prompt;
    int next_attempt; /* the attempt the healed code is for */
    char *const *providers;
    size_t n_providers;
    const char *model;
    double temperature;
    int64_t max_cost_micro;     /* -1 = none */
    int64_t spent_micro;        /* the task's spend so far */
    const char *trace_id;       /* the task's trace (ait_reconcile_trace_id) */
    const char *parent_span_id; /* the failed attempt's span, or the reconcile's; may be NULL */
} ait_heal_job;

/* The outcome a healer hands back through ait_reconciler_heal_done(). */
typedef struct ait_heal_outcome {
    int ok;
    const char *code;     /* the healed code (ok) */
    json_object *summary; /* the attempt's `heal` status entry (borrowed), may be NULL */
    const char *reason;   /* failure: ProvidersUnavailable, BudgetExceeded, ... */
    const char *message;  /* failure: what happened */
    int64_t cost_micro;
} ait_heal_outcome;

typedef struct ait_reconciler ait_reconciler;

/* Healer seam. submit starts an asynchronous heal and returns at once (AIT_ERR_EXISTS while one
 * is still queued for the task's namespace/name; the reconciler never submits twice for one
 * task); when it ends, the healer calls ait_reconciler_heal_done() exactly once, from its own
 * thread. NULL submit = healing disabled (a failed attempt is final, reason HealingDisabled). */
typedef struct ait_reconcile_healer {
    void *ctx;
    ait_status (*submit)(void *ctx, ait_reconciler *r, const ait_heal_job *job);
} ait_reconcile_healer;

/* Requeue seam: the controller's work queue. */
typedef struct ait_reconcile_queue {
    void *ctx;
    void (*add)(void *ctx, const char *key);
    void (*add_after)(void *ctx, const char *key, int64_t delay_ns);
} ait_reconcile_queue;

/* Audit seam (the etcd hash chain). record appends one entry for task unless the chain's last
 * entry already has this action and attempt (so a step repeated after a crash is not logged
 * twice); head returns the chain's head for status.audit. NULL record = no audit trail. Both
 * fail with a typed error while the audit store is unreachable: the reconciler then holds the
 * task (fail closed). */
typedef struct ait_reconcile_audit {
    void *ctx;
    ait_status (*record)(void *ctx, json_object *task, const char *action, int attempt,
                         json_object *details, ait_error *err);
    ait_status (*head)(void *ctx, const char *uid, int64_t *entries, char head[65], ait_error *err);
} ait_reconcile_audit;

/* Secrets seam (Vault). ensure makes sure the ephemeral Secret secret_name holding the task's
 * secretRefs for attempt n exists: AIT_OK when it does; AIT_ERR_RETRY while a resolution runs
 * elsewhere (the task is requeued when it ends); otherwise the error of the last resolution,
 * with a message for SecretsReady=False (the reconciler retries with backoff). */
typedef struct ait_reconcile_secrets {
    void *ctx;
    ait_status (*ensure)(void *ctx, json_object *task, int n, const char *secret_name,
                         ait_error *err);
} ait_reconcile_secrets;

typedef struct ait_reconciler_deps {
    ait_rest *rest;                      /* borrowed */
    const ait_controller_config *config; /* borrowed */
    ait_reconcile_cache cache;
    ait_reconcile_events events;   /* emit may be NULL */
    ait_reconcile_healer healer;   /* submit may be NULL */
    ait_reconcile_queue queue;     /* for the healer's completion requeue */
    ait_reconcile_audit audit;     /* record may be NULL: no audit trail */
    ait_admission *admission;      /* borrowed; NULL = no limits on starting pods */
    ait_reconcile_secrets secrets; /* ensure NULL = no Vault */
    ait_tracer *tracer;            /* borrowed; NULL or disabled = no spans */
    ait_metrics_std *metrics;      /* borrowed; NULL = no metrics */
    const ait_clock *clock;        /* NULL = system */
} ait_reconciler_deps;

/* Creates a reconciler; deps are copied (the pointers in them are borrowed and must outlive it).
 * Returns owned, free with ait_reconciler_free(). */
ait_reconciler *ait_reconciler_new(const ait_reconciler_deps *deps);
void ait_reconciler_free(ait_reconciler *r);

/* Reconciles the task "namespace/name" one step. *requeue_after_ns is set to a delay after which
 * the key must be looked at again (0 = only on the next event). Errors (API failures, conflicts)
 * return their status: the caller requeues with rate limiting. */
ait_status ait_reconcile(ait_reconciler *r, const char *key, int64_t *requeue_after_ns,
                         ait_error *err) AIT_WUR;

/* The trace id of a task (32 hex digits into out[33]), derived from its uid so every reconcile,
 * attempt, heal and audit entry of the task joins one trace, across restarts. */
void ait_reconcile_trace_id(const char *uid, char out[33]);
/* The span id of attempt n of the task (16 hex digits into out[17]). */
void ait_reconcile_attempt_span_id(const char *uid, int n, char out[17]);

/* Called by the healer (any thread) when a heal ends: persists the healed code as the next
 * attempt's ConfigMap (with the summary as an annotation), or records the failure in the status,
 * then requeues the task. */
void ait_reconciler_heal_done(ait_reconciler *r, const ait_heal_job *job,
                              const ait_heal_outcome *outcome);

#endif

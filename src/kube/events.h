/* SPDX-License-Identifier: Apache-2.0 */
/* An events.k8s.io/v1 Event recorder (client-go's tools/events): emit never blocks on the API —
 * Events go through a bounded queue to one sender thread (drops are counted); a repeat of the
 * same regarding object + type + reason + action + note within the dedupe window updates the
 * first Event's series.count / series.lastObservedTime instead of creating a new one; a token
 * bucket per regarding object (burst 25, one token per 5 s) limits the API writes. */
#ifndef AIT_KUBE_EVENTS_H
#define AIT_KUBE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"
#include "kube/rest.h"

typedef struct ait_events ait_events;

#define AIT_EVENTS_DEFAULT_CONTROLLER "aitask.dev/aitask-controller"

/* A core/v1 ObjectReference; every member borrowed for the call, NULL = absent. */
typedef struct ait_object_ref {
    const char *api_version;
    const char *kind;
    const char *namespace_; /* NULL or "" for a cluster-scoped object (Event goes to "default") */
    const char *name;       /* required */
    const char *uid;
    const char *resource_version;
} ait_object_ref;

typedef struct ait_events_options {
    const char *reporting_controller; /* default AIT_EVENTS_DEFAULT_CONTROLLER; copied */
    const char *reporting_instance;   /* e.g. the pod name; default the host name; copied */
    size_t queue_size;                /* pending API writes; default 256 */
    int64_t dedupe_window_ns;         /* default 6 min (client-go's series finish time) */
    int burst;                        /* per-object token bucket; default 25 */
    int64_t refill_ns;                /* one token per refill_ns; default 5 s */
    /* Dedupe entries kept; default 4096 (client-go's LRU size). Past it the entries observed
     * longest ago go first, and a later repeat of theirs makes a new Event. */
    size_t max_series;
    const ait_clock *clock; /* NULL = system; borrowed, must outlive the recorder */
} ait_events_options;

typedef struct ait_events_stats {
    uint64_t emitted;        /* ait_events_emit calls accepted as valid */
    uint64_t created;        /* Events created in the API */
    uint64_t series_updates; /* series PATCHes sent */
    uint64_t deduped;        /* emits folded into an existing Event's series */
    uint64_t rate_limited;   /* emits refused by the per-object token bucket */
    uint64_t dropped;        /* emits refused because the queue was full (or invalid) */
    uint64_t failed;         /* API writes that failed */
    uint64_t evicted;        /* dedupe entries dropped before their window ended (max_series) */
    size_t series;           /* dedupe entries held now */
} ait_events_stats;

/* Creates a recorder sending with rest (borrowed; must outlive it) and starts its sender thread.
 * opts may be NULL. Returns owned in *out, free with ait_events_free(). */
ait_status ait_events_new(ait_rest *rest, const ait_events_options *opts, ait_events **out,
                          ait_error *err) AIT_WUR;
/* Stops the sender after the write in flight; queued writes not yet sent are discarded (call
 * ait_events_flush first to send them). NULL is a no-op. */
void ait_events_free(ait_events *ev);

/* Records an Event about regarding. type is "Normal" or "Warning"; reason (CamelCase) and note
 * are required, action may be NULL (then reason is used; events.k8s.io/v1 requires one). The
 * note is cut to 1024 bytes. Never blocks on the API; thread-safe; an invalid call is logged
 * and counted as dropped. */
void ait_events_emit(ait_events *ev, const ait_object_ref *regarding, const char *type,
                     const char *reason, const char *action, const char *note);
/* Like ait_events_emit with a printf-formatted note. */
void ait_events_emitf(ait_events *ev, const ait_object_ref *regarding, const char *type,
                      const char *reason, const char *action, const char *fmt, ...)
    AIT_PRINTF(6, 7);

/* Waits until every queued write has been sent (or failed), up to timeout_ns of real time.
 * Returns AIT_OK or AIT_ERR_TIMEOUT. */
ait_status ait_events_flush(ait_events *ev, int64_t timeout_ns) AIT_WUR;

/* Copies the counters into *out. */
void ait_events_get_stats(ait_events *ev, ait_events_stats *out);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* A shared informer, after client-go's reflector + informer: one thread lists a resource, then
 * watches it from the list's resourceVersion, keeps a cache (kube/store.h) in step and calls
 * add/update/delete handlers. It re-watches from the last resourceVersion seen (events and
 * bookmarks) when the server ends a watch, relists on 410 Gone (emitting deletes for objects that
 * vanished meanwhile), and backs off with jitter on errors. The cache is readable from any
 * thread; handlers run on the informer thread, in event order. */
#ifndef AIT_KUBE_INFORMER_H
#define AIT_KUBE_INFORMER_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"
#include "kube/rest.h"
#include "kube/store.h"

/* Handlers, all optional, called on the informer thread. Objects are borrowed, read-only and
 * valid until the handler returns: copy what you keep (json_object_deep_copy, or just the
 * namespace/name). Handlers must be quick (enqueue a key) and must not call
 * ait_informer_stop()/ait_informer_free() on their own informer. */
typedef struct ait_informer_handlers {
    void *ctx;
    void (*on_add)(void *ctx, json_object *obj);
    void (*on_update)(void *ctx, json_object *old_obj, json_object *new_obj);
    /* obj is the last state known: from the DELETED event (final_state_unknown = 0), or, when
     * the object vanished while the watch was broken and a relist noticed,
     * the cached state (final_state_unknown = 1, client-go's DeletedFinalStateUnknown). */
    void (*on_delete)(void *ctx, json_object *obj, int final_state_unknown);
} ait_informer_handlers;

/* Prunes an object (borrowed, modifiable) before it is cached, to save memory. */
typedef void (*ait_informer_transform_cb)(void *ctx, json_object *obj);

/* Observer of each backoff wait (tests, metrics); wait_ns is the chosen wait. */
typedef void (*ait_informer_backoff_cb)(void *ctx, int64_t wait_ns);

typedef struct ait_informer_options {
    const ait_gvr *gvr;         /* required; borrowed, must outlive the informer */
    const char *ns;             /* one namespace; NULL or "" = all namespaces (copied) */
    const char *label_selector; /* may be NULL (copied) */
    const char *field_selector; /* may be NULL (copied) */
    int page_size;              /* list page size; 0 = 500, < 0 = no pagination */
    const char *name;           /* for log lines; default the resource name (copied) */
    ait_informer_handlers handlers;
    /* metadata.managedFields is dropped before caching unless keep_managed_fields; then
     * transform (may be NULL) may prune more. */
    int keep_managed_fields;
    ait_informer_transform_cb transform;
    void *transform_ctx;
    const ait_clock *clock; /* NULL = ait_clock_system(); borrowed, must outlive the informer */
    size_t max_line;        /* bound of one watch event; 0 = AIT_WATCH_MAX_LINE_DEFAULT */
    /* Backoff on errors: starts at backoff_initial_ms (0 = 800), doubles up to backoff_max_ms
     * (0 = 30000), each wait + up to 25 % jitter; back to the start once no error happened for
     * backoff_reset_ms (0 = 120000). */
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    int64_t backoff_reset_ms;
    ait_informer_backoff_cb on_backoff;
    void *on_backoff_ctx;
    /* Server-side watch timeout drawn from [min, max] seconds (0 = 300 and 600). */
    int watch_timeout_min_s;
    int watch_timeout_max_s;
    uint64_t seed; /* jitter randomness; 0 = from the clock */
} ait_informer_options;

typedef struct ait_informer_stats {
    uint64_t lists;        /* successful lists (first one included) */
    uint64_t relists_gone; /* relists caused by 410 Gone */
    uint64_t watches;      /* watch requests started */
    uint64_t events;       /* ADDED/MODIFIED/DELETED events applied */
    uint64_t bookmarks;
    uint64_t errors;   /* failed lists and watches, decode errors, ERROR events */
    uint64_t backoffs; /* backoff waits */
} ait_informer_stats;

typedef struct ait_informer ait_informer;

/* Creates a stopped informer over rest (borrowed, must outlive it; the REST client is
 * thread-safe). Returns owned in *out, free with ait_informer_free(). AIT_ERR_INVALID when the
 * options are unusable (no gvr, a namespace on a cluster-scoped resource). */
ait_status ait_informer_new(ait_rest *rest, const ait_informer_options *opts, ait_informer **out,
                            ait_error *err) AIT_WUR;

/* Starts the informer thread (once). AIT_ERR_INTERNAL when the thread cannot start or it was
 * started before. */
ait_status ait_informer_start(ait_informer *inf, ait_error *err) AIT_WUR;

/* Stops the thread and waits for it: within about 0.5 s while it watches or backs off; a list
 * in flight finishes first (bounded by the REST timeout). Idempotent; the cache stays readable. */
void ait_informer_stop(ait_informer *inf);

/* Stops (if needed) and frees everything; NULL is a no-op. */
void ait_informer_free(ait_informer *inf);

/* Returns non-zero once the first list has been stored and its handlers called. Any thread. */
int ait_informer_has_synced(ait_informer *inf);

/* Waits until synced: AIT_OK, AIT_ERR_TIMEOUT after timeout_ms (< 0 = forever), or
 * AIT_ERR_CANCELLED when the informer is stopped first. Any thread but the informer's. */
ait_status ait_informer_wait_for_sync(ait_informer *inf, int64_t timeout_ms) AIT_WUR;

/* Cache reads, from any thread. Each returns owned trees (json_object_put), private to the
 * caller: the cache keeps compact JSON text and parses on read (kube/store.h), so nothing is
 * shared between threads (json-c's reference counts are not atomic). */
json_object *ait_informer_get(ait_informer *inf, const char *ns, const char *name); /* or NULL */
json_object *ait_informer_list(ait_informer *inf);                                  /* JSON array */
json_object *ait_informer_list_by_owner(ait_informer *inf, const char *uid);        /* JSON array */
size_t ait_informer_len(ait_informer *inf);

/* Returns the cache, borrowed, valid until ait_informer_free(): for ait_store_visit*, which
 * walk a consistent snapshot. Do not write to it. */
ait_store *ait_informer_store(ait_informer *inf);

/* Returns the last resourceVersion seen (list, event or bookmark), owned (ait_free), or NULL
 * before the first list. */
char *ait_informer_resource_version(ait_informer *inf);

/* Copies the counters into *out. */
void ait_informer_get_stats(ait_informer *inf, ait_informer_stats *out);

#endif

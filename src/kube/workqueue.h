/* SPDX-License-Identifier: Apache-2.0 */
/* A rate-limited, delaying work queue of string keys ("namespace/name"), as client-go's
 * workqueue: a key is queued at most once (duplicate adds collapse while it waits), and a key
 * being processed is never handed to a second worker (a re-add during processing is remembered
 * and delivered after ait_workqueue_done). All functions are thread-safe. */
#ifndef AIT_KUBE_WORKQUEUE_H
#define AIT_KUBE_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"

typedef struct ait_workqueue ait_workqueue;

/* Metrics hooks (the workqueue_* Prometheus families). Every member may be NULL. They are called
 * with the queue's lock held: they must be cheap, thread-safe, and must not call back into the
 * queue. */
typedef struct ait_workqueue_hooks {
    void *ctx;
    void (*depth)(void *ctx, const char *queue, int64_t depth);      /* after each change of len */
    void (*add)(void *ctx, const char *queue);                       /* a key became queued */
    void (*queue_latency)(void *ctx, const char *queue, int64_t ns); /* add -> get */
    void (*work_duration)(void *ctx, const char *queue, int64_t ns); /* get -> done */
    /* every ait_workqueue_add_after / add_rate_limited (client-go counts each delayed add) */
    void (*retry)(void *ctx, const char *queue);
} ait_workqueue_hooks;

typedef struct ait_workqueue_options {
    const char *name;                 /* label for the hooks; default "aitask"; copied */
    const ait_clock *clock;           /* NULL = ait_clock_system(); borrowed, must outlive q */
    const ait_workqueue_hooks *hooks; /* NULL = none; copied */
    /* DefaultControllerRateLimiter: max(per-item exponential, overall token bucket). Zero
     * fields take the defaults below. */
    int64_t base_delay_ns; /* default 5 ms */
    int64_t max_delay_ns;  /* default 1000 s */
    double qps;            /* default 10 */
    int burst;             /* default 100 */
} ait_workqueue_options;

/* Creates a queue and starts its timer thread. opts may be NULL (defaults). Returns owned in
 * *out, free with ait_workqueue_free(). */
ait_status ait_workqueue_new(const ait_workqueue_options *opts, ait_workqueue **out,
                             ait_error *err) AIT_WUR;
/* Shuts the queue down (without draining), stops the timer thread and frees everything. No other
 * thread may use q any more. NULL is a no-op. */
void ait_workqueue_free(ait_workqueue *q);

/* Queues key (borrowed; copied). A no-op when the key is already waiting or after shutdown; when
 * the key is being processed it is queued again after ait_workqueue_done. */
void ait_workqueue_add(ait_workqueue *q, const char *key);
/* Queues key after delay_ns (<= 0: now). While a key waits, a later add_after with an earlier
 * time moves it earlier; a later time is ignored (as client-go). */
void ait_workqueue_add_after(ait_workqueue *q, const char *key, int64_t delay_ns);
/* Queues key after the rate limiter's delay: max(base * 2^requeues capped at max, token bucket
 * wait), and counts one more requeue for it. */
void ait_workqueue_add_rate_limited(ait_workqueue *q, const char *key);
/* Returns the delay add_rate_limited would use now and counts it as a requeue (the rate
 * limiter's When; exposed for tests and callers that schedule themselves). */
int64_t ait_workqueue_when(ait_workqueue *q, const char *key);
/* Clears key's requeue count (its backoff starts again at base). Call after a success. */
void ait_workqueue_forget(ait_workqueue *q, const char *key);
/* Returns how many times key was rate-limited since its last forget. */
int ait_workqueue_num_requeues(ait_workqueue *q, const char *key);
/* Returns the number of keys waiting to be handed out (not those delayed or being processed). */
size_t ait_workqueue_len(ait_workqueue *q);

/* Blocks until a key is available and returns it owned in *key_out (free with ait_free), marking
 * it as being processed: the caller must call ait_workqueue_done(q, key) when finished. After
 * shutdown the keys still queued are handed out, then AIT_ERR_CANCELLED is returned. */
ait_status ait_workqueue_get(ait_workqueue *q, char **key_out) AIT_WUR;
/* Like ait_workqueue_get but gives up after timeout_ns of real time with AIT_ERR_TIMEOUT. */
ait_status ait_workqueue_get_timeout(ait_workqueue *q, int64_t timeout_ns, char **key_out) AIT_WUR;
/* Marks key (borrowed) as finished; if it was added again meanwhile it is queued now. */
void ait_workqueue_done(ait_workqueue *q, const char *key);

/* Stops accepting adds and wakes every getter; delayed keys are dropped. Returns at once. */
void ait_workqueue_shutdown(ait_workqueue *q);
/* Like shutdown, then waits until no key is being processed any more. */
void ait_workqueue_shutdown_drain(ait_workqueue *q);
/* Returns non-zero after shutdown. */
int ait_workqueue_shutting_down(ait_workqueue *q);

/* Moves every delayed key whose time has come (by the queue's clock) into the queue now. The
 * timer thread does this by itself; tests that drive a fake clock call it after advancing. */
void ait_workqueue_tick(ait_workqueue *q);

#endif

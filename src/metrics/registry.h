/* SPDX-License-Identifier: Apache-2.0 */
/* A Prometheus metric registry (client_golang's model): families of counters, gauges and
 * histograms with fixed label names, whose children are looked up by label values and created on
 * first use. Updating a child is lock-free (C11 atomics, doubles kept as uint64 bit patterns and
 * changed with compare-and-swap); a family's child map takes a lock only to create a child.
 * Children live until the registry is freed, so a child pointer may be cached by the caller.
 * Rendering writes the text exposition format 0.0.4, families sorted by name and children by
 * label values, so the output is deterministic. */
#ifndef AIT_METRICS_REGISTRY_H
#define AIT_METRICS_REGISTRY_H

#include <stddef.h>

#include "core/buf.h"
#include "core/status.h"

typedef struct ait_metrics ait_metrics;
typedef struct ait_metric_family ait_metric_family;
typedef struct ait_metric ait_metric;

typedef enum ait_metric_type {
    AIT_METRIC_COUNTER,
    AIT_METRIC_GAUGE,
    AIT_METRIC_HISTOGRAM,
} ait_metric_type;

/* Most label sets a family may have, and most buckets of a histogram (+Inf not counted). */
#define AIT_METRICS_MAX_LABELS 8
#define AIT_METRICS_MAX_BUCKETS 64

/* Computes a value at scrape time. Called from the rendering thread (the HTTP server's) with
 * the user data given at registration; must be thread-safe and must not call back into the
 * registry. */
typedef double (*ait_metric_value_cb)(void *ud);

/* Returns an owned empty registry, free with ait_metrics_free(). Never NULL. */
ait_metrics *ait_metrics_new(void);
/* Frees the registry with all its families and children; no-op on NULL. No other thread may use
 * it or any pointer it returned at that point. */
void ait_metrics_free(ait_metrics *m);

/* Declares a family. name must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), a counter's
 * must end in "_total"; help is any text (escaped when rendered); labels is a NULL-terminated
 * list of distinct label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le" for a
 * histogram), or NULL for none. A histogram's buckets are strictly increasing finite upper
 * bounds (a trailing +Inf is accepted and dropped); +Inf is always added. All strings are
 * copied. A family without labels has its one child from the start (so it renders as 0).
 * Returns AIT_ERR_INVALID on a bad name, label, bucket list or type, AIT_ERR_EXISTS when the
 * name is taken; on success *out is borrowed, valid until ait_metrics_free(). Thread-safe. */
ait_status ait_metrics_add(ait_metrics *m, ait_metric_type type, const char *name, const char *help,
                           const char *const *labels, ait_metric_family **out,
                           ait_error *err) AIT_WUR;
ait_status ait_metrics_add_histogram(ait_metrics *m, const char *name, const char *help,
                                     const char *const *labels, const double *buckets,
                                     size_t nbuckets, ait_metric_family **out,
                                     ait_error *err) AIT_WUR;
/* Declares an unlabelled counter or gauge whose value cb(ud) computes at each scrape (ud is
 * borrowed and must outlive the registry). Same name rules and errors as ait_metrics_add. */
ait_status ait_metrics_add_func(ait_metrics *m, ait_metric_type type, const char *name,
                                const char *help, ait_metric_value_cb cb, void *ud,
                                ait_error *err) AIT_WUR;

/* Returns the child of f for the given label values, one const char * per label name in
 * declaration order (none for an unlabelled family; a NULL value counts as ""), creating it on
 * first use. Returns borrowed, valid until ait_metrics_free(); NULL when f is NULL. Lock-free
 * when the child exists. Passing fewer values than f has labels is undefined behaviour: use
 * ait_metric_family_withv when the count is not fixed at the call site. */
ait_metric *ait_metric_family_with(ait_metric_family *f, ...);
/* As ait_metric_family_with, values given as an array of ait_metric_family_label_count(f). */
ait_metric *ait_metric_family_withv(ait_metric_family *f, const char *const *values);
/* Returns the number of label names of f (0 for NULL). */
size_t ait_metric_family_label_count(const ait_metric_family *f);
/* Returns the family's name, borrowed; "" for NULL. */
const char *ait_metric_family_name(const ait_metric_family *f);

/* Updates a child. All are lock-free, thread-safe and no-ops on NULL (so code can run without a
 * registry). A counter only goes up: ait_metric_add ignores a negative or NaN v on a counter;
 * set/dec apply to gauges only and are ignored on other types; observe applies to histograms
 * only. */
void ait_metric_inc(ait_metric *c);
void ait_metric_add(ait_metric *c, double v);
void ait_metric_dec(ait_metric *g);
void ait_metric_set(ait_metric *g, double v);
/* Sets a gauge to the current wall-clock time in seconds (client_golang's SetToCurrentTime). */
void ait_metric_set_to_now(ait_metric *g);
void ait_metric_observe(ait_metric *h, double v);
/* Returns a counter's or gauge's value, or a histogram's sum; 0 for NULL. */
double ait_metric_value(const ait_metric *c);
/* Returns a histogram's observation count; 0 for NULL or another type. */
unsigned long long ait_metric_count(const ait_metric *h);

/* Appends the text exposition format (version 0.0.4) of every family to out: "# HELP", "# TYPE"
 * and sample lines, families by name, children by label values; a labelled family with no
 * child yet is left out. Values that change while rendering may be seen before or after the
 * change; a histogram's _count always equals its +Inf bucket. Returns AIT_ERR_TOO_LARGE when out
 * is bounded and full. Thread-safe. Content-Type: AIT_METRICS_CONTENT_TYPE. */
ait_status ait_metrics_render(ait_metrics *m, ait_buf *out) AIT_WUR;
#define AIT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends v formatted as Prometheus does (shortest form that reads back exactly; "+Inf",
 * "-Inf", "NaN"). Exposed for the HTTP module and tests. */
ait_status ait_metrics_format_value(ait_buf *out, double v) AIT_WUR;

/* Calls fn(name, type, ud) for every declared family in render order (tests, docs). */
void ait_metrics_each_family(ait_metrics *m,
                             void (*fn)(const char *name, ait_metric_type type, void *ud),
                             void *ud);

#endif

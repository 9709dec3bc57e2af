/* SPDX-License-Identifier: Apache-2.0 */
/* The table of standard families. Bucket bounds that the SLO rules in the chart refer to
 * (0.5 s for API requests, 30 s for queue wait, 5 s for failover) must stay in their lists:
 * charts/aitask-operator/files/prometheus-rules.yaml selects those `le` values. */
#include "metrics/std.h"

#include <stddef.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"
#include "metrics/process.h"

#define NB(a) (sizeof(a) / sizeof((a)[0]))

static const double task_duration_buckets[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
static const double queue_wait_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
static const double provider_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120};
static const double failover_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
/* controller-runtime's reconcile_time_seconds buckets. */
static const double reconcile_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
    0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,  4.5, 5,
    6,     7,    8,     9,    10,   15,   20,   25,   30,  40,   50,  60};
/* client-go workqueue: ExponentialBuckets(10e-9, 10, 10). */
static const double workqueue_buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
/* client-go rest_client_request_duration_seconds. */
static const double rest_buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};

static const char *const L_NONE[] = {NULL};
static const char *const L_OUTCOME[] = {"outcome", NULL};
static const char *const L_PROVIDER[] = {"provider", NULL};
static const char *const L_PROVIDER_OUTCOME[] = {"provider", "outcome", NULL};
static const char *const L_PROVIDER_CODE[] = {"provider", "code", NULL};
static const char *const L_PROVIDER_MODEL[] = {"provider", "model", NULL};
static const char *const L_PROVIDER_MODEL_KIND[] = {"provider", "model", "kind", NULL};
static const char *const L_WINDOW[] = {"window", NULL};
static const char *const L_OP_CODE[] = {"op", "code", NULL};
static const char *const L_PATH[] = {"path", NULL};
static const char *const L_CONTROLLER[] = {"controller", NULL};
static const char *const L_CONTROLLER_RESULT[] = {"controller", "result", NULL};
static const char *const L_NAME[] = {"name", NULL};
static const char *const L_CODE_METHOD_HOST[] = {"code", "method", "host", NULL};
static const char *const L_VERB_HOST[] = {"verb", "host", NULL};

#define C AIT_METRIC_COUNTER
#define G AIT_METRIC_GAUGE
#define H AIT_METRIC_HISTOGRAM
#define F(field) offsetof(ait_metrics_std, field)

static const struct def {
    size_t off;
    ait_metric_type type;
    const char *name;
    const char *help;
    const char *const *labels;
    const double *buckets;
    size_t nbuckets;
} defs[] = {
    {F(task_duration_seconds), H, "aitask_task_duration_seconds",
     "Time from an AITask's creation to its terminal phase in seconds.", L_NONE,
     task_duration_buckets, NB(task_duration_buckets)},
    {F(tasks_total), C, "aitask_tasks_total", "AITasks that reached a terminal phase, by outcome.",
     L_OUTCOME, NULL, 0},
    {F(queue_depth), G, "aitask_queue_depth",
     "AITasks accepted but whose first pod is not created.", L_NONE, NULL, 0},
    {F(queue_wait_seconds), H, "aitask_queue_wait_seconds",
     "Time from an AITask's creation to its first pod in seconds.", L_NONE, queue_wait_buckets,
     NB(queue_wait_buckets)},
    {F(attempts_total), C, "aitask_attempts_total", "Finished sandbox runs, by outcome.", L_OUTCOME,
     NULL, 0},
    {F(finalizer_forced_total), C, "aitask_finalizer_forced_total",
     "Finalizers removed after the bounded wait with cleanup or sealing left undone.", L_NONE, NULL,
     0},
    {F(heals_total), C, "aitask_heals_total", "Heal requests, by answering provider and outcome.",
     L_PROVIDER_OUTCOME, NULL, 0},
    {F(provider_requests_total), C, "aitask_provider_requests_total",
     "HTTP requests to LLM providers, by provider and HTTP status code.", L_PROVIDER_CODE, NULL, 0},
    {F(provider_request_duration_seconds), H, "aitask_provider_request_duration_seconds",
     "Latency of LLM provider requests in seconds.", L_PROVIDER, provider_buckets,
     NB(provider_buckets)},
    {F(provider_failover_seconds), H, "aitask_provider_failover_seconds",
     "Time a heal spent on failed providers before one answered, in seconds.", L_NONE,
     failover_buckets, NB(failover_buckets)},
    {F(provider_circuit_open), G, "aitask_provider_circuit_open",
     "Whether a provider's circuit breaker is open (1) or closed (0).", L_PROVIDER, NULL, 0},
    {F(llm_tokens_total), C, "aitask_llm_tokens_total",
     "LLM tokens used, by provider, model and kind (prompt or completion).", L_PROVIDER_MODEL_KIND,
     NULL, 0},
    {F(llm_cost_usd_total), C, "aitask_llm_cost_usd_total",
     "LLM spend in US dollars, priced from reported token usage.", L_PROVIDER_MODEL, NULL, 0},
    {F(budget_used_ratio), G, "aitask_budget_used_ratio",
     "Fraction of the daily or monthly LLM budget spent.", L_WINDOW, NULL, 0},
    {F(vault_requests_total), C, "aitask_vault_requests_total",
     "Requests to Vault, by operation and HTTP status code.", L_OP_CODE, NULL, 0},
    {F(secret_age_seconds), G, "aitask_secret_age_seconds",
     "Age of the secret version in use at a Vault path, in seconds.", L_PATH, NULL, 0},
    {F(audit_entries_total), C, "aitask_audit_entries_total", "Audit entries written to etcd.",
     L_NONE, NULL, 0},
    {F(audit_write_errors_total), C, "aitask_audit_write_errors_total",
     "Failed audit entry writes.", L_NONE, NULL, 0},
    {F(trace_spans_dropped_total), C, "aitask_trace_spans_dropped_total",
     "Trace spans dropped because the export queue was full or the exporter failed.", L_NONE, NULL,
     0},
    {F(reconcile_total), C, "controller_runtime_reconcile_total",
     "Total number of reconciliations per controller", L_CONTROLLER_RESULT, NULL, 0},
    {F(reconcile_errors_total), C, "controller_runtime_reconcile_errors_total",
     "Total number of reconciliation errors per controller", L_CONTROLLER, NULL, 0},
    {F(reconcile_time_seconds), H, "controller_runtime_reconcile_time_seconds",
     "Length of time per reconciliation per controller", L_CONTROLLER, reconcile_buckets,
     NB(reconcile_buckets)},
    {F(active_workers), G, "controller_runtime_active_workers",
     "Number of currently used workers per controller", L_CONTROLLER, NULL, 0},
    {F(max_concurrent_reconciles), G, "controller_runtime_max_concurrent_reconciles",
     "Maximum number of concurrent reconciles per controller", L_CONTROLLER, NULL, 0},
    {F(workqueue_depth), G, "workqueue_depth", "Current depth of workqueue", L_NAME, NULL, 0},
    {F(workqueue_adds_total), C, "workqueue_adds_total",
     "Total number of adds handled by workqueue", L_NAME, NULL, 0},
    {F(workqueue_queue_duration_seconds), H, "workqueue_queue_duration_seconds",
     "How long in seconds an item stays in workqueue before being requested", L_NAME,
     workqueue_buckets, NB(workqueue_buckets)},
    {F(workqueue_work_duration_seconds), H, "workqueue_work_duration_seconds",
     "How long in seconds processing an item from workqueue takes.", L_NAME, workqueue_buckets,
     NB(workqueue_buckets)},
    {F(workqueue_retries_total), C, "workqueue_retries_total",
     "Total number of retries handled by workqueue", L_NAME, NULL, 0},
    {F(workqueue_unfinished_work_seconds), G, "workqueue_unfinished_work_seconds",
     "How many seconds of work has been done that is in progress and hasn't been observed by "
     "work_duration.",
     L_NAME, NULL, 0},
    {F(workqueue_longest_running_processor_seconds), G,
     "workqueue_longest_running_processor_seconds",
     "How many seconds has the longest running processor for workqueue been running.", L_NAME, NULL,
     0},
    {F(rest_client_requests_total), C, "rest_client_requests_total",
     "Number of HTTP requests, partitioned by status code, method, and host.", L_CODE_METHOD_HOST,
     NULL, 0},
    {F(rest_client_request_duration_seconds), H, "rest_client_request_duration_seconds",
     "Request latency in seconds. Broken down by verb, and host.", L_VERB_HOST, rest_buckets,
     NB(rest_buckets)},
    {F(leader_election_master_status), G, "leader_election_master_status",
     "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 "
     "indicates master. 'name' is the string used to identify the lease.",
     L_NAME, NULL, 0},
};

ait_metrics_std *ait_metrics_std_new(ait_metrics *m)
{
    ait_assert(m != NULL);
    ait_metrics_std *s = ait_calloc(1, sizeof *s);
    s->registry = m;
    for (size_t i = 0; i < NB(defs); i++) {
        const struct def *d = &defs[i];
        ait_metric_family **slot = (ait_metric_family **)((char *)s + d->off);
        ait_error err = {0};
        ait_status st;
        if (d->type == AIT_METRIC_HISTOGRAM) {
            st = ait_metrics_add_histogram(m, d->name, d->help, d->labels, d->buckets, d->nbuckets,
                                           slot, &err);
        } else {
            st = ait_metrics_add(m, d->type, d->name, d->help, d->labels, slot, &err);
        }
        if (st != AIT_OK) {
            AIT_LOG_ERROR(err.msg, "declaring a standard metric failed");
            ait_assert(st == AIT_OK);
        }
    }
    /* Counters with a known, closed set of labels start at 0, so Prometheus sees their first
     * increase (a series that appears at 1 has no increase to rate()). */
    static const char *const task_outcomes[] = {"succeeded", "failed", "invalid",
                                                "budget_exceeded"};
    for (size_t i = 0; i < NB(task_outcomes); i++) {
        ait_metric_add(ait_metric_family_with(s->tasks_total, task_outcomes[i]), 0);
    }
    ait_metric_add(ait_metric_family_with(s->attempts_total, "succeeded"), 0);
    ait_metric_add(ait_metric_family_with(s->attempts_total, "failed"), 0);
    ait_error err = {0};
    if (ait_metrics_process_register(m, &err) != AIT_OK) {
        AIT_LOG_ERROR(err.msg, "declaring process metrics failed");
        ait_assert(!"process metrics declared twice");
    }
    return s;
}

void ait_metrics_std_free(ait_metrics_std *s)
{
    ait_free(s);
}

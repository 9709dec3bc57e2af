/* SPDX-License-Identifier: Apache-2.0 */
/* Every metric family of SPEC.md section 7, declared once with its type, labels, buckets and
 * HELP, so each part of the controller only records events. The label values each part should
 * use are listed next to the fields; keep them to small fixed sets (no object names). */
#ifndef AIT_METRICS_STD_H
#define AIT_METRICS_STD_H

#include "metrics/registry.h"

typedef struct ait_metrics_std {
    ait_metrics *registry; /* borrowed: the registry the families live in */

    /* AITask lifecycle (reconcile/). */
    ait_metric_family *task_duration_seconds; /* histogram: creation to terminal phase */
    ait_metric_family *tasks_total;        /* {outcome}: succeeded|failed|invalid|budget_exceeded */
    ait_metric_family *queue_depth;        /* gauge: AITasks not yet started */
    ait_metric_family *queue_wait_seconds; /* histogram: creation to first pod */
    ait_metric_family *attempts_total;     /* {outcome}: succeeded|failed|error */
    ait_metric_family *finalizer_forced_total; /* finalizers removed after the bounded wait */

    /* Healing and providers (heal/). */
    ait_metric_family *heals_total;             /* {provider,outcome}: success|invalid|error */
    ait_metric_family *provider_requests_total; /* {provider,code}: HTTP code or "error" */
    ait_metric_family *provider_request_duration_seconds; /* histogram {provider} */
    ait_metric_family *provider_failover_seconds;         /* histogram: time added by failovers */
    ait_metric_family *provider_circuit_open;             /* gauge {provider}: 1 open, 0 closed */
    ait_metric_family *llm_tokens_total;   /* {provider,model,kind}: prompt|completion */
    ait_metric_family *llm_cost_usd_total; /* {provider,model} */
    ait_metric_family *budget_used_ratio;  /* gauge {window}: daily|monthly */

    /* Vault, audit, tracing. */
    ait_metric_family
        *vault_requests_total; /* {op,code}: op login|renew|read, HTTP code or "error" */
    ait_metric_family *secret_age_seconds; /* gauge {path}: age of a provider key's version */
    ait_metric_family *audit_entries_total;
    ait_metric_family *audit_write_errors_total;
    ait_metric_family *trace_spans_dropped_total;

    /* controller-runtime's names, so existing dashboards work. */
    ait_metric_family
        *reconcile_total; /* {controller,result}: success|error|requeue|requeue_after */
    ait_metric_family *reconcile_errors_total;                      /* {controller} */
    ait_metric_family *reconcile_time_seconds;                      /* histogram {controller} */
    ait_metric_family *active_workers;                              /* gauge {controller} */
    ait_metric_family *max_concurrent_reconciles;                   /* gauge {controller} */
    ait_metric_family *workqueue_depth;                             /* gauge {name} */
    ait_metric_family *workqueue_adds_total;                        /* {name} */
    ait_metric_family *workqueue_queue_duration_seconds;            /* histogram {name} */
    ait_metric_family *workqueue_work_duration_seconds;             /* histogram {name} */
    ait_metric_family *workqueue_retries_total;                     /* {name} */
    ait_metric_family *workqueue_unfinished_work_seconds;           /* gauge {name} */
    ait_metric_family *workqueue_longest_running_processor_seconds; /* gauge {name} */
    ait_metric_family *rest_client_requests_total;                  /* {code,method,host} */
    ait_metric_family *rest_client_request_duration_seconds;        /* histogram {verb,host} */
    ait_metric_family *leader_election_master_status;               /* gauge {name} */
} ait_metrics_std;

/* Declares every family above, plus the process_* metrics, in m (borrowed; must outlive the
 * result). Returns owned, free with ait_metrics_std_free() (the families stay in m). Aborts if
 * a name is already declared in m: that is a programming error. */
ait_metrics_std *ait_metrics_std_new(ait_metrics *m);
/* Frees s (not the registry); no-op on NULL. */
void ait_metrics_std_free(ait_metrics_std *s);

#endif

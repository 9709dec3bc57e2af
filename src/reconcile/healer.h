/* SPDX-License-Identifier: Apache-2.0 */
/* The glue between the reconciler's healer seam and the healing engine (src/heal): builds the
 * engine from the controller config's `providers:` section, turns a heal job into an engine
 * request, and turns the engine's result into the attempt's `heal` status summary, metrics and
 * the reconciler's completion call. */
#ifndef AIT_RECONCILE_HEALER_H
#define AIT_RECONCILE_HEALER_H

#include "core/status.h"
#include "heal/heal.h"
#include "metrics/std.h"
#include "reconcile/config.h"
#include "reconcile/reconciler.h"
#include "trace/trace.h"

typedef struct ait_healer ait_healer;

/* Hook called from a pool thread with each finished heal before the reconciler is told (the
 * audit log writes its heal.request/heal.response entries here). Returns the audit sequence
 * number of the heal.response entry (or -1), put into the summary's auditSeq, or an error that
 * makes the heal fail closed (reason AuditUnavailable). */
typedef struct ait_healer_audit {
    void *ctx;
    ait_status (*record)(void *ctx, const ait_heal_job *job, const ait_heal_result *result,
                         int64_t *audit_seq, ait_error *err);
} ait_healer_audit;

/* Builds the healer from cfg (borrowed). Returns AIT_OK with *out NULL when cfg has no
 * providers (healing disabled). metrics may be NULL. keys and budget are the engine's seams
 * (get_key NULL = read apiKeyFile; reserve NULL = no ledger). */
ait_status ait_healer_new(const ait_controller_config *cfg, ait_metrics_std *metrics,
                          ait_heal_key_source keys, ait_heal_budget budget, ait_healer_audit audit,
                          ait_healer **out, ait_error *err) AIT_WUR;
void ait_healer_free(ait_healer *h);

/* Spans for heals and provider requests go to t (borrowed; NULL = none). Call before use. */
void ait_healer_set_tracer(ait_healer *h, ait_tracer *t);

/* The reconciler seam (submit) bound to h. */
ait_reconcile_healer ait_healer_seam(ait_healer *h);

/* The engine, borrowed (for circuit-state metrics). */
ait_heal_engine *ait_healer_engine(ait_healer *h);

#endif

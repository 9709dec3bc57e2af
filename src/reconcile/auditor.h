/* SPDX-License-Identifier: Apache-2.0 */
/* The glue between the controller and the audit area (src/audit): one etcd client, the hash
 * chains of every task (appends are idempotent across crashes: an entry whose action and attempt
 * equal the chain's last one is not written again), the heal.request/heal.response entries of
 * each heal with the encrypted bodies, and the spend ledger as the heal engine's budget seam.
 * Every call fails closed with a typed error while etcd is unreachable. Thread-safe. */
#ifndef AIT_RECONCILE_AUDITOR_H
#define AIT_RECONCILE_AUDITOR_H

#include <json-c/json.h>
#include <stdint.h>

#include "core/status.h"
#include "heal/heal.h"
#include "metrics/std.h"
#include "reconcile/config.h"
#include "reconcile/reconciler.h"

typedef struct ait_auditor ait_auditor;

/* Builds the auditor from the config's `audit:` section ({etcdEndpoint, keyFile, caFile,
 * timeoutMs}) and `budgets:` ({dailyUSD, monthlyUSD}). *out is NULL (and AIT_OK) when the config
 * has no audit section. actor names this controller instance in entries. */
ait_status ait_auditor_new(const ait_controller_config *cfg, const char *actor,
                           ait_metrics_std *metrics, ait_auditor **out, ait_error *err) AIT_WUR;
void ait_auditor_free(ait_auditor *a);

/* The reconciler seam bound to a. */
ait_reconcile_audit ait_auditor_seam(ait_auditor *a);

/* Writes the heal.request and heal.response entries of every exchange of a heal; *seq gets the
 * last entry's sequence number. */
ait_status ait_auditor_record_heal(ait_auditor *a, const ait_heal_job *job,
                                   const ait_heal_result *res, int64_t *seq,
                                   ait_error *err) AIT_WUR;

/* Appends a secret.read entry (path, version, whether it came from the cache; never the value)
 * to the chain of task uid, or to the controller's "provider-keys" chain when uid is NULL.
 * Never deduplicated: every access is an entry. */
ait_status ait_auditor_record_secret(ait_auditor *a, const char *ns, const char *name,
                                     const char *uid, const char *path, int64_t version,
                                     int from_cache, int attempt, ait_error *err) AIT_WUR;

/* The heal engine's budget seam on the ledger (daily and monthly budgets of the config). */
ait_heal_budget ait_auditor_budget(ait_auditor *a);

#endif

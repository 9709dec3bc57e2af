/* SPDX-License-Identifier: Apache-2.0 */
/* Secrets from Vault (SPEC.md §5) for the reconciler and the healer: a task's secretRefs are
 * resolved OFF the reconcile workers by a small pool into an ephemeral Secret
 * "<task>-a<N>-env" owned by the task (the pod reads it through secretKeyRef), then the task is
 * requeued; failures are kept for the reconciler to report (SecretsReady=False) and retried with
 * backoff. Provider API keys come from Vault paths too (the heal engine's key seam), with a
 * forced re-read after a 401/403 (rotation). Every read, cached or not, is written to the audit
 * log as secret.read (path, version, task; never the value). */
#ifndef AIT_RECONCILE_SECRETS_H
#define AIT_RECONCILE_SECRETS_H

#include <json-c/json.h>

#include "core/status.h"
#include "heal/heal.h"
#include "kube/rest.h"
#include "metrics/std.h"
#include "reconcile/auditor.h"
#include "reconcile/config.h"
#include "reconcile/reconciler.h"

typedef struct ait_secrets ait_secrets;

/* Builds the Vault client from the config's `vault:` section ({address, caFile, role, authPath,
 * jwtFile, tokenFile, mount, cacheTTLSeconds, allowHTTP}); without an address there is no Vault
 * (provider keys come from files, secretRefs fail with a clear message). cfg, rest, auditor (may
 * be NULL) and metrics (may be NULL) are borrowed. Returns owned, free with ait_secrets_free. */
ait_status ait_secrets_new(const ait_controller_config *cfg, ait_rest *rest, ait_auditor *auditor,
                           ait_metrics_std *metrics, ait_reconcile_queue queue, ait_secrets **out,
                           ait_error *err) AIT_WUR;

/* The reconciler seam bound to s (ensure NULL without Vault: tasks with secretRefs then fail
 * with a message saying Vault is not configured). */
ait_reconcile_secrets ait_secrets_seam(ait_secrets *s);
/* Stops the pool (jobs in flight finish) and frees everything. NULL is a no-op. */
void ait_secrets_free(ait_secrets *s);

/* The heal engine's key seam bound to s: providers with `vaultPath` read from Vault (key
 * `vaultKey`, default "apiKey"), others from `apiKeyFile` (re-read on every call). */
ait_heal_key_source ait_secrets_key_source(ait_secrets *s);

#endif

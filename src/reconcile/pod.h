/* SPDX-License-Identifier: Apache-2.0 */
/* Builders for the objects one attempt owns: the code ConfigMap and the sandbox Pod
 * `<task>-a<N>` (deterministic names, so a retry after a crash adopts instead of duplicating),
 * and the namespace's egress-denying NetworkPolicy. The pod meets the Pod Security "restricted"
 * profile plus a read-only root, no service-account token and a writable emptyDir only at the
 * work dir; its entrypoint copies the tail of the program's output to the termination message.
 * Every builder returns an owned json_object (json_object_put). */
#ifndef AIT_RECONCILE_POD_H
#define AIT_RECONCILE_POD_H

#include <json-c/json.h>

#include "api/aitask.h"
#include "reconcile/config.h"

#define AIT_LABEL_TASK_UID "aitask.dev/task-uid"
/* Sandbox pods without spec.sandbox.networkAccess carry AIT_LABEL_EGRESS=deny, which the
 * namespace's NetworkPolicy AIT_NETPOL_NAME selects. */
#define AIT_LABEL_EGRESS "aitask.dev/egress"
#define AIT_NETPOL_NAME "aitask-sandbox-deny-egress"
#define AIT_ANNOTATION_HEAL "aitask.dev/heal"
#define AIT_WORK_DIR "/work"
#define AIT_CODE_DIR "/code"

/* "<task>-a<N>"; returns owned. */
char *ait_attempt_name(const char *task_name, int attempt);

/* The controller owner reference to task (controller: true, blockOwnerDeletion: true). */
json_object *ait_owner_ref(json_object *task);

/* The code ConfigMap of attempt N holding code under the runtime's file name; heal (borrowed,
 * may be NULL) is the heal summary that produced this code, kept as an annotation so the
 * attempt's status entry can be rebuilt after a restart. */
json_object *ait_code_configmap_build(json_object *task, int attempt, const char *file,
                                      const char *code, json_object *heal);

/* The sandbox pod of attempt N. secret_name (may be NULL) is the task's ephemeral Secret whose
 * keys are the secretRefs' env names. Returns NULL with err set when the task cannot be run
 * (unknown runtime and no image/command). */
json_object *ait_pod_build(json_object *task, const ait_task_spec *spec,
                           const ait_controller_config *cfg, int attempt, const char *secret_name,
                           ait_error *err);

/* The NetworkPolicy AIT_NETPOL_NAME of namespace ns, shared by every task there (one write per
 * namespace instead of one per task): pods labelled AIT_LABEL_EGRESS=deny have no egress at
 * all, DNS included. Not owned by any task, so deleting a task leaves it for the others. */
json_object *ait_netpol_build(const char *ns);

#endif

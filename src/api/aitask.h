/* SPDX-License-Identifier: Apache-2.0 */
/* The AITask type (aitask.dev/v1alpha1): spec parsed from the API object into a typed struct,
 * the semantic validation the schema cannot do, and helpers to edit the status (conditions in
 * metav1.Condition form, attempts). crd/aitask.dev_aitasks.yaml is the source of truth; the
 * API server has applied the schema's defaults and bounds before the controller sees an object,
 * and the parser still re-checks what it relies on, so a hand-made object cannot crash it. */
#ifndef AIT_API_AITASK_H
#define AIT_API_AITASK_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AIT_API_GROUP "aitask.dev"
#define AIT_API_VERSION "aitask.dev/v1alpha1"
#define AIT_API_KIND "AITask"
#define AIT_FINALIZER "aitask.dev/finalizer"
#define AIT_LABEL_TASK "aitask.dev/task"
#define AIT_LABEL_ATTEMPT "aitask.dev/attempt"
#define AIT_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define AIT_MANAGER "aitask-operator"
#define AIT_CODE_MAX (256 * 1024)
#define AIT_MESSAGE_MAX 1024
#define AIT_OUTPUT_MAX 4096

typedef enum ait_phase {
    AIT_PHASE_NONE = 0,
    AIT_PHASE_PENDING,
    AIT_PHASE_RUNNING,
    AIT_PHASE_HEALING,
    AIT_PHASE_SUCCEEDED,
    AIT_PHASE_FAILED,
} ait_phase;

typedef struct ait_kv {
    char *name;
    char *value;
} ait_kv;

typedef struct ait_secret_ref {
    char *env;
    char *vault_path;
    char *key;
} ait_secret_ref;

typedef struct ait_task_spec {
    char *runtime; /* python|node|bash, or NULL with image+command */
    char *image;
    char **command;
    size_t n_command;
    char *code;
    char *prompt;
    char **args;
    size_t n_args;
    ait_kv *env;
    size_t n_env;
    ait_secret_ref *secret_refs;
    size_t n_secret_refs;
    int64_t timeout_seconds;
    json_object *resources; /* owned reference, or NULL */
    char *runtime_class_name;
    int network_access;
    int max_attempts;
    int64_t backoff_seconds;
    char **providers;
    size_t n_providers;
    char *model;
    double temperature;
    int64_t max_cost_micro; /* -1 = no task budget */
} ait_task_spec;

/* Parses obj's .spec into spec (zeroed first). Returns AIT_ERR_INVALID with a message naming the
 * field when a field has the wrong type or is out of its bounds. spec owns its strings: free
 * with ait_task_spec_clear() even on failure. */
ait_status ait_task_spec_parse(json_object *obj, ait_task_spec *spec, ait_error *err) AIT_WUR;
void ait_task_spec_clear(ait_task_spec *spec);

/* Parses a decimal dollar string ("0.25", "3", at most 6 decimals) into micro-dollars. */
ait_status ait_usd_parse(const char *s, int64_t *micro) AIT_WUR;
/* Formats micro-dollars as a decimal string without trailing zeros ("0.0125", "3"). */
char *ait_usd_format(int64_t micro, char *out, size_t size);

const char *ait_phase_str(ait_phase p);
ait_phase ait_phase_parse(const char *s);

/* Metadata accessors (borrowed from obj; NULL when absent). */
const char *ait_obj_namespace(json_object *obj);
const char *ait_obj_name(json_object *obj);
const char *ait_obj_uid(json_object *obj);
const char *ait_obj_resource_version(json_object *obj);
int64_t ait_obj_generation(json_object *obj);
int ait_obj_deleting(json_object *obj);
int ait_obj_has_finalizer(json_object *obj, const char *finalizer);
/* The UID of obj's controller owner reference, or NULL. */
const char *ait_obj_controller_uid(json_object *obj);

/* Status editing. Every function works on a status object (the "status" member, created when
 * absent by ait_status_obj()). */
json_object *ait_status_obj(json_object *task); /* borrowed; created empty when absent */

/* Sets a metav1.Condition: lastTransitionTime changes only when status changes; reason, message
 * and observedGeneration are always updated. now_ns is the wall clock. */
void ait_condition_set(json_object *status, const char *type, const char *cond_status,
                       const char *reason, const char *message, int64_t generation, int64_t now_ns);
/* Returns the condition object of that type (borrowed) or NULL. */
json_object *ait_condition_get(json_object *status, const char *type);
/* True when the condition exists with status "True". */
int ait_condition_true(json_object *status, const char *type);
/* Removes the condition of that type, if present. */
void ait_condition_remove(json_object *status, const char *type);

/* The attempts array (created when absent); borrowed. */
json_object *ait_status_attempts(json_object *status);

/* Keeps the last max bytes of s (UTF-8 safe: never starts inside a multi-byte sequence).
 * Returns a pointer into s. */
const char *ait_tail_utf8(const char *s, size_t max);

#endif

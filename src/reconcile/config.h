/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's configuration file (YAML, --config): runtimes with their image, command and
 * file name, the defaults of a task (timeout, resources), the sandbox user, admission limits,
 * and the raw sections other areas read (providers, etcd, vault). Loaded once at start. */
#ifndef AIT_RECONCILE_CONFIG_H
#define AIT_RECONCILE_CONFIG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct ait_runtime_cfg {
    char *name;     /* "python" */
    char *image;    /* "python:3.12-slim" */
    char **command; /* {"python3"} */
    size_t n_command;
    char *file; /* file name of the code inside the sandbox: "main.py" */
} ait_runtime_cfg;

typedef struct ait_controller_config {
    ait_runtime_cfg *runtimes;
    size_t n_runtimes;
    int64_t default_timeout_seconds;
    json_object *default_resources; /* owned; {requests, limits} */
    int64_t run_as_user;
    char **default_providers; /* healing.providers when a task names none */
    size_t n_default_providers;
    char **known_providers; /* every configured provider name */
    size_t n_known_providers;
    int max_running; /* sandbox pods at once, cluster-wide (0 = unlimited) */
    int max_running_per_namespace;
    int starts_per_minute;
    int heal_concurrency;
    json_object *raw; /* the whole file as JSON, owned (providers, etcd, vault sections) */
} ait_controller_config;

/* Loads path (NULL = built-in defaults only). Returns owned in *out, free with
 * ait_controller_config_free(). Errors name the file and the field. */
ait_status ait_controller_config_load(const char *path, ait_controller_config **out,
                                      ait_error *err) AIT_WUR;
/* Same, from a JSON tree (borrowed). */
ait_status ait_controller_config_from_json(json_object *root, ait_controller_config **out,
                                           ait_error *err) AIT_WUR;
void ait_controller_config_free(ait_controller_config *cfg);

/* Returns the runtime named name (borrowed) or NULL. */
const ait_runtime_cfg *ait_controller_config_runtime(const ait_controller_config *cfg,
                                                     const char *name);
/* True when name is a configured provider. */
int ait_controller_config_has_provider(const ait_controller_config *cfg, const char *name);

#endif

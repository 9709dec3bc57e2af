/* SPDX-License-Identifier: Apache-2.0 */
/* Controller config loading; defaults match the chart's values.yaml. */
#include "reconcile/config.h"

#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/yaml.h"

static const char *const default_yaml =
    "runtimes:\n"
    "  python: {image: \"python:3.12-slim\", command: [python3, -u], file: main.py}\n"
    "  node: {image: \"node:22-slim\", command: [node], file: main.js}\n"
    "  bash: {image: \"bash:5.2\", command: [bash], file: main.sh}\n"
    "defaults:\n"
    "  timeoutSeconds: 300\n"
    "  runAsUser: 65532\n"
    "  resources:\n"
    "    requests: {cpu: 100m, memory: 128Mi}\n"
    "    limits: {cpu: \"1\", memory: 512Mi}\n"
    "limits: {maxRunning: 10, maxRunningPerNamespace: 0, startsPerMinute: 100, "
    "healConcurrency: 4}\n";

static char **strv_from(json_object *arr, size_t *n)
{
    size_t len = arr ? json_object_array_length(arr) : 0;
    char **v = ait_calloc(len + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (json_object_is_type(e, json_type_string)) {
            v[k++] = ait_strdup(json_object_get_string(e));
        }
    }
    *n = k;
    return v;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        ait_free(v[i]);
    }
    ait_free(v);
}

/* Overlays src onto dst recursively (objects merge, everything else replaces). */
static void merge(json_object *dst, json_object *src)
{
    json_object_object_foreach(src, k, v)
    {
        json_object *d = NULL;
        if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(dst, k, &d) &&
            json_object_is_type(d, json_type_object)) {
            merge(d, v);
        } else {
            json_object_object_add(dst, k, json_object_get(v));
        }
    }
}

static ait_status get_limit(json_object *root, const char *path, int def, int *out, ait_error *err)
{
    json_object *v = ait_json_path(root, path);
    if (v == NULL) {
        *out = def;
        return AIT_OK;
    }
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
        json_object_get_int64(v) > 1000000) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s must be a non-negative integer", path);
    }
    *out = (int)json_object_get_int64(v);
    return AIT_OK;
}

ait_status ait_controller_config_from_json(json_object *user, ait_controller_config **out,
                                           ait_error *err)
{
    *out = NULL;
    if (user != NULL && !json_object_is_type(user, json_type_object)) {
        return ait_error_set(err, AIT_ERR_INVALID, "the config must be a YAML mapping");
    }
    json_object *root = NULL;
    ait_status st = ait_yaml_to_json(default_yaml, strlen(default_yaml), &root, err);
    if (st != AIT_OK) {
        return st;
    }
    if (user != NULL) {
        merge(root, user);
    }
    ait_controller_config *c = ait_calloc(1, sizeof(*c));
    c->raw = root;
    json_object *rts = ait_json_path(root, "runtimes");
    if (!json_object_is_type(rts, json_type_object)) {
        st = ait_error_set(err, AIT_ERR_INVALID, "runtimes must be a mapping of name to runtime");
        goto fail;
    }
    c->runtimes = ait_calloc((size_t)json_object_object_length(rts) + 1, sizeof(ait_runtime_cfg));
    json_object_object_foreach(rts, name, rt)
    {
        const char *image = ait_json_str(rt, "image");
        json_object *cmd = ait_json_array(rt, "command");
        const char *file = ait_json_str(rt, "file");
        if (image == NULL || cmd == NULL || json_object_array_length(cmd) == 0 || file == NULL) {
            st = ait_error_set(err, AIT_ERR_INVALID,
                               "runtimes.%s needs image (string), command (list) and file", name);
            goto fail;
        }
        ait_runtime_cfg *r = &c->runtimes[c->n_runtimes++];
        r->name = ait_strdup(name);
        r->image = ait_strdup(image);
        r->command = strv_from(cmd, &r->n_command);
        r->file = ait_strdup(file);
        if (strchr(r->file, '/') != NULL) {
            st = ait_error_set(err, AIT_ERR_INVALID, "runtimes.%s.file must be a plain file name",
                               name);
            goto fail;
        }
    }
    c->default_timeout_seconds = ait_json_int(root, "defaults.timeoutSeconds", 300);
    if (c->default_timeout_seconds < 1 || c->default_timeout_seconds > 86400) {
        st = ait_error_set(err, AIT_ERR_INVALID, "defaults.timeoutSeconds must be 1..86400");
        goto fail;
    }
    c->run_as_user = ait_json_int(root, "defaults.runAsUser", 65532);
    if (c->run_as_user <= 0) {
        st = ait_error_set(err, AIT_ERR_INVALID,
                           "defaults.runAsUser must be a non-zero user id (restricted pods)");
        goto fail;
    }
    json_object *res = ait_json_path(root, "defaults.resources");
    c->default_resources = res ? json_object_get(res) : NULL;
    c->default_providers =
        strv_from(ait_json_array(root, "healing.defaultProviders"), &c->n_default_providers);
    json_object *provs = ait_json_array(root, "providers");
    size_t np = provs ? json_object_array_length(provs) : 0;
    c->known_providers = ait_calloc(np + 1, sizeof(char *));
    for (size_t i = 0; i < np; i++) {
        const char *pn = ait_json_str(json_object_array_get_idx(provs, i), "name");
        if (pn == NULL) {
            st = ait_error_set(err, AIT_ERR_INVALID, "providers[%zu].name is required", i);
            goto fail;
        }
        c->known_providers[c->n_known_providers++] = ait_strdup(pn);
    }
    if (c->n_default_providers == 0 && c->n_known_providers > 0) {
        strv_free(c->default_providers, 0);
        c->default_providers = ait_calloc(c->n_known_providers + 1, sizeof(char *));
        for (size_t i = 0; i < c->n_known_providers; i++) {
            c->default_providers[i] = ait_strdup(c->known_providers[i]);
        }
        c->n_default_providers = c->n_known_providers;
    }
    if ((st = get_limit(root, "limits.maxRunning", 10, &c->max_running, err)) != AIT_OK ||
        (st = get_limit(root, "limits.maxRunningPerNamespace", 0, &c->max_running_per_namespace,
                        err)) != AIT_OK ||
        (st = get_limit(root, "limits.startsPerMinute", 100, &c->starts_per_minute, err)) !=
            AIT_OK ||
        (st = get_limit(root, "limits.healConcurrency", 4, &c->heal_concurrency, err)) != AIT_OK) {
        goto fail;
    }
    *out = c;
    return AIT_OK;
fail:
    ait_controller_config_free(c);
    return st;
}

ait_status ait_controller_config_load(const char *path, ait_controller_config **out, ait_error *err)
{
    json_object *user = NULL;
    if (path != NULL) {
        ait_status st = ait_yaml_load_file(path, 0, &user, err);
        if (st != AIT_OK) {
            return st;
        }
    }
    ait_status st = ait_controller_config_from_json(user, out, err);
    if (st != AIT_OK && path != NULL) {
        ait_error_wrap(err, "config %s", path);
    }
    json_object_put(user);
    return st;
}

void ait_controller_config_free(ait_controller_config *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_runtimes; i++) {
        ait_free(c->runtimes[i].name);
        ait_free(c->runtimes[i].image);
        strv_free(c->runtimes[i].command, c->runtimes[i].n_command);
        ait_free(c->runtimes[i].file);
    }
    ait_free(c->runtimes);
    json_object_put(c->default_resources);
    strv_free(c->default_providers, c->n_default_providers);
    strv_free(c->known_providers, c->n_known_providers);
    json_object_put(c->raw);
    ait_free(c);
}

const ait_runtime_cfg *ait_controller_config_runtime(const ait_controller_config *cfg,
                                                     const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_runtimes; i++) {
        if (strcmp(cfg->runtimes[i].name, name) == 0) {
            return &cfg->runtimes[i];
        }
    }
    return NULL;
}

int ait_controller_config_has_provider(const ait_controller_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_known_providers; i++) {
        if (strcmp(cfg->known_providers[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

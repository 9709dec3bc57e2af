/* SPDX-License-Identifier: Apache-2.0 */
/* AITask spec parsing, money, and status/condition editing; see aitask.h. */
#include "api/aitask.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"

static ait_status get_string(json_object *o, const char *key, char **out, size_t max,
                             ait_error *err)
{
    json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
        return AIT_OK;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return ait_error_set(err, AIT_ERR_INVALID, "spec.%s must be a string", key);
    }
    if ((size_t)json_object_get_string_len(v) > max) {
        return ait_error_set(err, AIT_ERR_INVALID, "spec.%s is longer than %zu bytes", key, max);
    }
    *out = ait_strdup(json_object_get_string(v));
    return AIT_OK;
}

static ait_status get_string_array(json_object *o, const char *field, const char *key, char ***out,
                                   size_t *n, ait_error *err)
{
    json_object *v = NULL;
    *out = NULL;
    *n = 0;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
        return AIT_OK;
    }
    if (!json_object_is_type(v, json_type_array)) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s.%s must be a list of strings", field, key);
    }
    size_t len = json_object_array_length(v);
    if (len > 1024) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s.%s has more than 1024 items", field, key);
    }
    *out = ait_calloc(len + 1, sizeof(char *));
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string)) {
            *n = i;
            return ait_error_set(err, AIT_ERR_INVALID, "%s.%s[%zu] must be a string", field, key,
                                 i);
        }
        (*out)[i] = ait_strdup(json_object_get_string(e));
    }
    *n = len;
    return AIT_OK;
}

static ait_status get_int(json_object *o, const char *field, const char *key, int64_t def,
                          int64_t lo, int64_t hi, int64_t *out, ait_error *err)
{
    json_object *v = NULL;
    *out = def;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL) {
        return AIT_OK;
    }
    if (!json_object_is_type(v, json_type_int)) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s.%s must be an integer", field, key);
    }
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s.%s is %lld; it must be from %lld to %lld",
                             field, key, (long long)x, (long long)lo, (long long)hi);
    }
    *out = x;
    return AIT_OK;
}

ait_status ait_usd_parse(const char *s, int64_t *micro)
{
    if (s == NULL || *s == '\0') {
        return AIT_ERR_INVALID;
    }
    int64_t whole = 0, frac = 0;
    int digits = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        if (whole > INT64_C(1000000000000)) {
            return AIT_ERR_INVALID;
        }
        whole = whole * 10 + (*p - '0');
        p++;
    }
    if (p == s) {
        return AIT_ERR_INVALID;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 6) {
                return AIT_ERR_INVALID;
            }
            frac = frac * 10 + (*p - '0');
            p++;
        }
        if (digits == 0) {
            return AIT_ERR_INVALID;
        }
    }
    if (*p != '\0') {
        return AIT_ERR_INVALID;
    }
    while (digits++ < 6) {
        frac *= 10;
    }
    *micro = whole * 1000000 + frac;
    return AIT_OK;
}

char *ait_usd_format(int64_t micro, char *out, size_t size)
{
    int neg = micro < 0;
    uint64_t m = neg ? (uint64_t)(-(micro + 1)) + 1 : (uint64_t)micro;
    char frac[8];
    snprintf(frac, sizeof(frac), "%06llu", (unsigned long long)(m % 1000000));
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0') {
        frac[--n] = '\0';
    }
    snprintf(out, size, "%s%llu%s%s", neg ? "-" : "", (unsigned long long)(m / 1000000),
             n ? "." : "", frac);
    return out;
}

ait_status ait_task_spec_parse(json_object *obj, ait_task_spec *spec, ait_error *err)
{
    memset(spec, 0, sizeof(*spec));
    spec->max_cost_micro = -1;
    spec->temperature = 0.2;
    json_object *s = ait_json_path(obj, "spec");
    if (!json_object_is_type(s, json_type_object)) {
        return ait_error_set(err, AIT_ERR_INVALID, "spec is missing");
    }
    ait_status st;
    if ((st = get_string(s, "runtime", &spec->runtime, 64, err)) != AIT_OK ||
        (st = get_string(s, "image", &spec->image, 1024, err)) != AIT_OK ||
        (st = get_string(s, "code", &spec->code, AIT_CODE_MAX, err)) != AIT_OK ||
        (st = get_string(s, "prompt", &spec->prompt, AIT_CODE_MAX, err)) != AIT_OK ||
        (st = get_string_array(s, "spec", "command", &spec->command, &spec->n_command, err)) !=
            AIT_OK ||
        (st = get_string_array(s, "spec", "args", &spec->args, &spec->n_args, err)) != AIT_OK) {
        return st;
    }
    json_object *env = ait_json_array(s, "env");
    if (env != NULL) {
        size_t n = json_object_array_length(env);
        spec->env = ait_calloc(n + 1, sizeof(ait_kv));
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(env, i);
            const char *name = ait_json_str(e, "name");
            if (name == NULL || *name == '\0') {
                return ait_error_set(err, AIT_ERR_INVALID, "spec.env[%zu].name is required", i);
            }
            if (ait_json_path(e, "valueFrom") != NULL) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "spec.env[%zu].valueFrom is not allowed; use secretRefs", i);
            }
            const char *value = ait_json_str(e, "value");
            spec->env[i].name = ait_strdup(name);
            spec->env[i].value = ait_strdup(value ? value : "");
            spec->n_env = i + 1;
        }
    }
    json_object *refs = ait_json_array(s, "secretRefs");
    if (refs != NULL) {
        size_t n = json_object_array_length(refs);
        spec->secret_refs = ait_calloc(n + 1, sizeof(ait_secret_ref));
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(refs, i);
            const char *env_name = ait_json_str(e, "env");
            const char *path = ait_json_str(e, "vaultPath");
            const char *key = ait_json_str(e, "key");
            if (env_name == NULL || path == NULL || key == NULL) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "spec.secretRefs[%zu] needs env, vaultPath and key", i);
            }
            spec->secret_refs[i].env = ait_strdup(env_name);
            spec->secret_refs[i].vault_path = ait_strdup(path);
            spec->secret_refs[i].key = ait_strdup(key);
            spec->n_secret_refs = i + 1;
        }
    }
    if ((st = get_int(s, "spec", "timeoutSeconds", 300, 1, 86400, &spec->timeout_seconds, err)) !=
        AIT_OK) {
        return st;
    }
    json_object *res = ait_json_path(s, "resources");
    if (res != NULL) {
        if (!json_object_is_type(res, json_type_object)) {
            return ait_error_set(err, AIT_ERR_INVALID, "spec.resources must be an object");
        }
        spec->resources = json_object_get(res);
    }
    json_object *sandbox = ait_json_path(s, "sandbox");
    if (sandbox != NULL) {
        if ((st = get_string(sandbox, "runtimeClassName", &spec->runtime_class_name, 253, err)) !=
            AIT_OK) {
            return st;
        }
        spec->network_access = ait_json_bool(sandbox, "networkAccess", 0);
    }
    json_object *healing = ait_json_path(s, "healing");
    int64_t v = 0;
    if ((st = get_int(healing, "spec.healing", "maxAttempts", 3, 1, 10, &v, err)) != AIT_OK) {
        return st;
    }
    spec->max_attempts = (int)v;
    if ((st = get_int(healing, "spec.healing", "backoffSeconds", 5, 0, 3600, &spec->backoff_seconds,
                      err)) != AIT_OK) {
        return st;
    }
    if (healing != NULL) {
        if ((st = get_string_array(healing, "spec.healing", "providers", &spec->providers,
                                   &spec->n_providers, err)) != AIT_OK ||
            (st = get_string(healing, "model", &spec->model, 256, err)) != AIT_OK) {
            return st;
        }
        spec->temperature = ait_json_double(healing, "temperature", 0.2);
        if (spec->temperature < 0 || spec->temperature > 1) {
            return ait_error_set(err, AIT_ERR_INVALID,
                                 "spec.healing.temperature must be from 0 to 1");
        }
    }
    const char *max_cost = ait_json_str(s, "budget.maxCostUSD");
    if (max_cost != NULL && ait_usd_parse(max_cost, &spec->max_cost_micro) != AIT_OK) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "spec.budget.maxCostUSD \"%s\" is not a decimal dollar amount "
                             "such as \"0.50\"",
                             max_cost);
    }
    return AIT_OK;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        ait_free(v[i]);
    }
    ait_free(v);
}

void ait_task_spec_clear(ait_task_spec *spec)
{
    if (spec == NULL) {
        return;
    }
    ait_free(spec->runtime);
    ait_free(spec->image);
    free_strv(spec->command, spec->n_command);
    ait_free(spec->code);
    ait_free(spec->prompt);
    free_strv(spec->args, spec->n_args);
    for (size_t i = 0; i < spec->n_env; i++) {
        ait_free(spec->env[i].name);
        ait_free(spec->env[i].value);
    }
    ait_free(spec->env);
    for (size_t i = 0; i < spec->n_secret_refs; i++) {
        ait_free(spec->secret_refs[i].env);
        ait_free(spec->secret_refs[i].vault_path);
        ait_free(spec->secret_refs[i].key);
    }
    ait_free(spec->secret_refs);
    json_object_put(spec->resources);
    ait_free(spec->runtime_class_name);
    free_strv(spec->providers, spec->n_providers);
    ait_free(spec->model);
    memset(spec, 0, sizeof(*spec));
}

static const char *const phase_names[] = {"",        "Pending",   "Running",
                                          "Healing", "Succeeded", "Failed"};

const char *ait_phase_str(ait_phase p)
{
    return phase_names[p];
}

ait_phase ait_phase_parse(const char *s)
{
    for (int i = 1; s != NULL && i <= AIT_PHASE_FAILED; i++) {
        if (strcmp(s, phase_names[i]) == 0) {
            return (ait_phase)i;
        }
    }
    return AIT_PHASE_NONE;
}

const char *ait_obj_namespace(json_object *obj)
{
    return ait_json_str(obj, "metadata.namespace");
}

const char *ait_obj_name(json_object *obj)
{
    return ait_json_str(obj, "metadata.name");
}

const char *ait_obj_uid(json_object *obj)
{
    return ait_json_str(obj, "metadata.uid");
}

const char *ait_obj_resource_version(json_object *obj)
{
    return ait_json_str(obj, "metadata.resourceVersion");
}

int64_t ait_obj_generation(json_object *obj)
{
    return ait_json_int(obj, "metadata.generation", 0);
}

int ait_obj_deleting(json_object *obj)
{
    return ait_json_str(obj, "metadata.deletionTimestamp") != NULL;
}

int ait_obj_has_finalizer(json_object *obj, const char *finalizer)
{
    json_object *f = ait_json_array(obj, "metadata.finalizers");
    size_t n = f ? json_object_array_length(f) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(f, i));
        if (s != NULL && strcmp(s, finalizer) == 0) {
            return 1;
        }
    }
    return 0;
}

const char *ait_obj_controller_uid(json_object *obj)
{
    json_object *refs = ait_json_array(obj, "metadata.ownerReferences");
    size_t n = refs ? json_object_array_length(refs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(refs, i);
        if (ait_json_bool(r, "controller", 0)) {
            return ait_json_str(r, "uid");
        }
    }
    return NULL;
}

json_object *ait_status_obj(json_object *task)
{
    json_object *s = NULL;
    if (json_object_object_get_ex(task, "status", &s) && json_object_is_type(s, json_type_object)) {
        return s;
    }
    s = json_object_new_object();
    json_object_object_add(task, "status", s);
    return s;
}

static json_object *conditions(json_object *status)
{
    json_object *c = NULL;
    if (json_object_object_get_ex(status, "conditions", &c) &&
        json_object_is_type(c, json_type_array)) {
        return c;
    }
    c = json_object_new_array();
    json_object_object_add(status, "conditions", c);
    return c;
}

json_object *ait_condition_get(json_object *status, const char *type)
{
    json_object *c = ait_json_array(status, "conditions");
    size_t n = c ? json_object_array_length(c) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(c, i);
        const char *t = ait_json_str(e, "type");
        if (t != NULL && strcmp(t, type) == 0) {
            return e;
        }
    }
    return NULL;
}

int ait_condition_true(json_object *status, const char *type)
{
    const char *s = ait_json_str(ait_condition_get(status, type), "status");
    return s != NULL && strcmp(s, "True") == 0;
}

void ait_condition_set(json_object *status, const char *type, const char *cond_status,
                       const char *reason, const char *message, int64_t generation, int64_t now_ns)
{
    json_object *c = ait_condition_get(status, type);
    if (c == NULL) {
        c = json_object_new_object();
        json_object_object_add(c, "type", json_object_new_string(type));
        json_object_array_add(conditions(status), c);
    }
    const char *old = ait_json_str(c, "status");
    if (old == NULL || strcmp(old, cond_status) != 0 ||
        ait_json_str(c, "lastTransitionTime") == NULL) {
        char ts[40];
        ait_time_rfc3339(now_ns, ts, sizeof(ts));
        json_object_object_add(c, "lastTransitionTime", json_object_new_string(ts));
    }
    json_object_object_add(c, "status", json_object_new_string(cond_status));
    json_object_object_add(c, "reason", json_object_new_string(reason));
    json_object_object_add(c, "message",
                           json_object_new_string(ait_tail_utf8(message ? message : "", 32768)));
    json_object_object_add(c, "observedGeneration", json_object_new_int64(generation));
}

void ait_condition_remove(json_object *status, const char *type)
{
    json_object *c = ait_json_array(status, "conditions");
    size_t n = c ? json_object_array_length(c) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = ait_json_str(json_object_array_get_idx(c, i), "type");
        if (t != NULL && strcmp(t, type) == 0) {
            json_object_array_del_idx(c, i, 1);
            return;
        }
    }
}

json_object *ait_status_attempts(json_object *status)
{
    json_object *a = NULL;
    if (json_object_object_get_ex(status, "attempts", &a) &&
        json_object_is_type(a, json_type_array)) {
        return a;
    }
    a = json_object_new_array();
    json_object_object_add(status, "attempts", a);
    return a;
}

const char *ait_tail_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        return s;
    }
    const char *p = s + (n - max);
    /* Skip continuation bytes (10xxxxxx) so the tail starts at a character boundary. */
    while (*p != '\0' && ((unsigned char)*p & 0xC0) == 0x80) {
        p++;
    }
    return p;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Typed, NULL-safe json-c accessors and a strict parser. */
#include "core/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_object *ait_json_path(json_object *root, const char *path)
{
    json_object *cur = root;
    const char *p = path;
    while (cur != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[128];
        if (n >= sizeof(key) || !json_object_is_type(cur, json_type_object)) {
            return NULL;
        }
        memcpy(key, p, n);
        key[n] = '\0';
        json_object *next = NULL;
        if (!json_object_object_get_ex(cur, key, &next)) {
            return NULL;
        }
        cur = next;
        p = dot ? dot + 1 : p + n;
    }
    return cur;
}

const char *ait_json_str(json_object *root, const char *path)
{
    json_object *o = ait_json_path(root, path);
    return json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

int64_t ait_json_int(json_object *root, const char *path, int64_t fallback)
{
    json_object *o = ait_json_path(root, path);
    if (json_object_is_type(o, json_type_int)) {
        return json_object_get_int64(o);
    }
    if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == 0 && end != s && *end == '\0') {
            return v;
        }
    }
    return fallback;
}

int ait_json_bool(json_object *root, const char *path, int fallback)
{
    json_object *o = ait_json_path(root, path);
    return json_object_is_type(o, json_type_boolean) ? json_object_get_boolean(o) : fallback;
}

double ait_json_double(json_object *root, const char *path, double fallback)
{
    json_object *o = ait_json_path(root, path);
    if (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)) {
        return json_object_get_double(o);
    }
    return fallback;
}

json_object *ait_json_array(json_object *root, const char *path)
{
    json_object *o = ait_json_path(root, path);
    return json_object_is_type(o, json_type_array) ? o : NULL;
}

ait_status ait_json_parse(const char *text, size_t len, json_object **out, ait_error *err)
{
    *out = NULL;
    if (len > (size_t)INT32_MAX) {
        return ait_error_set(err, AIT_ERR_TOO_LARGE, "JSON document of %zu bytes is too large",
                             len);
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o == NULL || jerr != json_tokener_success) {
        json_object_put(o);
        if (jerr == json_tokener_continue) {
            return ait_error_set(err, AIT_ERR_PARSE, "truncated JSON (%zu bytes)", len);
        }
        return ait_error_set(err, AIT_ERR_PARSE, "malformed JSON at byte %zu: %s", used,
                             json_tokener_error_desc(jerr));
    }
    while (used < len &&
           (text[used] == ' ' || text[used] == '\n' || text[used] == '\r' || text[used] == '\t')) {
        used++;
    }
    if (used != len) {
        json_object_put(o);
        return ait_error_set(err, AIT_ERR_PARSE, "trailing data after JSON at byte %zu", used);
    }
    *out = o;
    return AIT_OK;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Typed, NULL-safe json-c accessors, a strict parser and a List scanner. */
#include "core/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

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

/* ---- List scanning ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/* Parses the one JSON value starting at *pp into *out (owned; NULL for null) and moves *pp past
 * it: json-c's tokener stops at the end of a complete value and says where. Returns 0, or -1 on
 * malformed or truncated input. */
static int parse_value(json_tokener *tok, const char **pp, const char *end, json_object **out)
{
    *out = NULL;
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, *pp, (int)(end - *pp));
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        return -1;
    }
    *pp += json_tokener_get_parse_end(tok);
    *out = o;
    return 0;
}

/* After a member or element: skips a ',' (returns 1: another follows) or the closing character
 * (returns 0: done), moving *pp past it; -1 for anything else. */
static int next_member(const char **pp, const char *end, char close)
{
    const char *p = skip_ws(*pp, end);
    if (p < end && (*p == ',' || *p == close)) {
        *pp = skip_ws(p + 1, end);
        return *p == ',';
    }
    return -1;
}

/* Passes the elements of the array at *pp ('[') to item one at a time. Returns 0 or -1. */
static int scan_items(json_tokener *tok, const char **pp, const char *end,
                      void (*item)(void *ctx, json_object *obj), void *ctx)
{
    const char *p = skip_ws(*pp + 1, end);
    int more = 1;
    if (p < end && *p == ']') {
        p++;
        more = 0;
    }
    while (more > 0) {
        json_object *it = NULL;
        if (parse_value(tok, &p, end, &it) != 0) {
            return -1;
        }
        item(ctx, it);
        json_object_put(it);
        more = next_member(&p, end, ']');
    }
    *pp = p;
    return more;
}

ait_status ait_json_scan_list(const char *text, size_t len, int max_depth,
                              void (*item)(void *ctx, json_object *obj), void *ctx,
                              json_object **meta)
{
    *meta = NULL;
    const char *end = text + len;
    const char *p = skip_ws(text, end);
    json_tokener *tok = json_tokener_new_ex(max_depth);
    ait_assert(tok != NULL);
    int more = -1;
    if (p < end && *p == '{') {
        p = skip_ws(p + 1, end);
        more = 1;
        if (p < end && *p == '}') {
            p++;
            more = 0;
        }
    }
    while (more > 0) {
        more = -1;
        json_object *key = NULL;
        if (p == end || *p != '"' || parse_value(tok, &p, end, &key) != 0) {
            break;
        }
        int is_items = strcmp(json_object_get_string(key), "items") == 0;
        int is_meta = strcmp(json_object_get_string(key), "metadata") == 0;
        json_object_put(key);
        p = skip_ws(p, end);
        if (p == end || *p != ':') {
            break;
        }
        p = skip_ws(p + 1, end);
        if (is_items && p < end && *p == '[') {
            if (scan_items(tok, &p, end, item, ctx) != 0) {
                break;
            }
        } else {
            json_object *v = NULL;
            if (parse_value(tok, &p, end, &v) != 0 || (is_items && v != NULL)) {
                json_object_put(v); /* items neither an array nor null: not a List */
                break;
            }
            if (is_meta) {
                json_object_put(*meta);
                *meta = v;
            } else {
                json_object_put(v);
            }
        }
        more = next_member(&p, end, '}');
    }
    json_tokener_free(tok);
    if (more != 0 || skip_ws(p, end) != end) {
        json_object_put(*meta);
        *meta = NULL;
        return AIT_ERR_PARSE;
    }
    return AIT_OK;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Small json-c helpers for reading nested fields by dotted path without crashing on the wrong
 * type: every getter returns a fallback (or NULL) when a step is missing or of another type.
 * Everything returned is borrowed from the object tree, valid while it lives. */
#ifndef AIT_CORE_JSON_H
#define AIT_CORE_JSON_H

#include <json-c/json.h>
#include <stdint.h>

#include "core/status.h"

/* Looks up "a.b.c" (object keys only). Returns NULL when any step is missing or not an object. */
json_object *ait_json_path(json_object *root, const char *path);
/* Returns the string at path, or NULL when missing or not a string. */
const char *ait_json_str(json_object *root, const char *path);
/* Returns the integer at path (JSON int, or a decimal string as etcd writes 64-bit numbers), or
 * fallback. */
int64_t ait_json_int(json_object *root, const char *path, int64_t fallback);
/* Returns the boolean at path, or fallback. */
int ait_json_bool(json_object *root, const char *path, int fallback);
/* Returns the number (int or double) at path, or fallback. */
double ait_json_double(json_object *root, const char *path, double fallback);
/* Returns the array at path, or NULL. */
json_object *ait_json_array(json_object *root, const char *path);

/* Parses len bytes of text into a tree, returned owned (json_object_put). Fails with
 * AIT_ERR_PARSE for malformed or truncated input and for trailing garbage. Nesting is bounded
 * by json-c's default depth (32). */
ait_status ait_json_parse(const char *text, size_t len, json_object **out, ait_error *err) AIT_WUR;

/* Scans the text of a Kubernetes List ({"metadata": {...}, "items": [...], ...}) without building
 * its whole tree: item(ctx, obj) is called for each element of "items" in turn (obj borrowed,
 * freed after the call), so memory holds one item's tree at a time. *meta gets the "metadata"
 * member (owned, NULL when absent). Nesting is bounded by max_depth. Returns AIT_OK, or
 * AIT_ERR_PARSE (and *meta NULL) when the text is not one JSON object whose "items" is an array
 * or null; items already passed to item stay passed. */
ait_status ait_json_scan_list(const char *text, size_t len, int max_depth,
                              void (*item)(void *ctx, json_object *obj), void *ctx,
                              json_object **meta) AIT_WUR;

#endif

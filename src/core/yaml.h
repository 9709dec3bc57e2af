/* SPDX-License-Identifier: Apache-2.0 */
/* YAML to json-c conversion with libyaml, for configuration files: the first document only,
 * mappings to objects, sequences to arrays, plain scalars resolved like YAML 1.2's core schema
 * (null, true/false, integers, floats, else strings); quoted scalars stay strings. Anchors and
 * aliases are refused (a config file needs neither, and they enable billion-laughs inputs). */
#ifndef AIT_CORE_YAML_H
#define AIT_CORE_YAML_H

#include <json-c/json.h>
#include <stddef.h>

#include "core/status.h"

/* Parses len bytes of YAML; returns the tree owned in *out (json_object_put). An empty document
 * gives an empty object. Errors name the line and column. */
ait_status ait_yaml_to_json(const char *text, size_t len, json_object **out,
                            ait_error *err) AIT_WUR;

/* Reads and parses a file (at most max_bytes, 0 = 4 MiB). */
ait_status ait_yaml_load_file(const char *path, size_t max_bytes, json_object **out,
                              ait_error *err) AIT_WUR;

#endif

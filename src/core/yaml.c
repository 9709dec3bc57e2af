/* SPDX-License-Identifier: Apache-2.0 */
/* libyaml event stream folded into a json-c tree with an explicit stack (no recursion, so deep
 * nesting cannot overflow the C stack; depth is bounded). */
#include "core/yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/buf.h"

#define MAX_DEPTH 64

typedef struct frame {
    json_object *node;
    char *pending_key; /* mapping: key waiting for its value */
} frame;

static json_object *scalar_value(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return json_object_new_string_len(v, (int)n);
    }
    if (n == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
        strcmp(v, "NULL") == 0) {
        return NULL;
    }
    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0) {
        return json_object_new_boolean(1);
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0) {
        return json_object_new_boolean(0);
    }
    char *end = NULL;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (errno == 0 && end == v + n &&
        (v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9'))) {
        return json_object_new_int64(i);
    }
    errno = 0;
    double d = strtod(v, &end);
    if (errno == 0 && end == v + n && strchr("+-.0123456789", v[0]) != NULL &&
        strpbrk(v, "xXpP") == NULL) {
        return json_object_new_double(d);
    }
    return json_object_new_string_len(v, (int)n);
}

/* Attaches value to the frame on top (array append or mapping value/key). Takes ownership of
 * value. Returns 1 when value was consumed as a mapping key (it must then be a string). */
static ait_status attach(frame *top, json_object *value, int is_key_candidate, ait_error *err)
{
    if (json_object_is_type(top->node, json_type_array)) {
        json_object_array_add(top->node, value);
        return AIT_OK;
    }
    if (top->pending_key == NULL) {
        if (!is_key_candidate) {
            json_object_put(value);
            return ait_error_set(err, AIT_ERR_PARSE, "mapping keys must be scalars");
        }
        const char *k = value ? json_object_get_string(value) : "";
        top->pending_key = ait_strdup(k ? k : "");
        json_object_put(value);
        return AIT_OK;
    }
    json_object_object_add(top->node, top->pending_key, value);
    ait_free(top->pending_key);
    top->pending_key = NULL;
    return AIT_OK;
}

ait_status ait_yaml_to_json(const char *text, size_t len, json_object **out, ait_error *err)
{
    *out = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "cannot initialise the YAML parser");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    frame stack[MAX_DEPTH];
    int depth = 0;
    json_object *root = NULL;
    int done = 0;
    ait_status st = AIT_OK;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = ait_error_set(err, AIT_ERR_PARSE, "YAML error at line %zu column %zu: %s",
                               parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "malformed");
            break;
        }
        json_object *value = NULL;
        int push = 0, is_scalar = 0, pop = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_ALIAS_EVENT:
            st = ait_error_set(err, AIT_ERR_PARSE, "YAML aliases are not supported (line %zu)",
                               ev.start_mark.line + 1);
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.anchor != NULL) {
                st = ait_error_set(err, AIT_ERR_PARSE, "YAML anchors are not supported (line %zu)",
                                   ev.start_mark.line + 1);
                break;
            }
            value = scalar_value(&ev);
            is_scalar = 1;
            break;
        case YAML_SEQUENCE_START_EVENT:
            value = json_object_new_array();
            push = 1;
            break;
        case YAML_MAPPING_START_EVENT:
            value = json_object_new_object();
            push = 1;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            pop = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (st != AIT_OK) {
            break;
        }
        if (pop) {
            if (depth == 0) {
                st = ait_error_set(err, AIT_ERR_PARSE, "unbalanced YAML structure");
                break;
            }
            depth--;
            ait_free(stack[depth].pending_key);
            continue;
        }
        if (!push && !is_scalar) {
            continue;
        }
        if (depth == 0) {
            if (root != NULL) {
                json_object_put(value);
                st = ait_error_set(err, AIT_ERR_PARSE, "more than one root node");
                break;
            }
            root = value;
        } else {
            if (push) {
                json_object_get(value); /* the stack keeps a reference while it is open */
            }
            st = attach(&stack[depth - 1], value, is_scalar, err);
            if (push) {
                json_object_put(value);
            }
            if (st != AIT_OK) {
                break;
            }
        }
        if (push) {
            if (depth == MAX_DEPTH) {
                st = ait_error_set(err, AIT_ERR_PARSE, "YAML nested deeper than %d levels",
                                   MAX_DEPTH);
                break;
            }
            stack[depth].node = value;
            stack[depth].pending_key = NULL;
            depth++;
        }
    }
    while (depth > 0) {
        depth--;
        ait_free(stack[depth].pending_key);
    }
    yaml_parser_delete(&parser);
    if (st != AIT_OK) {
        json_object_put(root);
        return st;
    }
    if (root == NULL) {
        root = json_object_new_object();
    }
    *out = root;
    return AIT_OK;
}

ait_status ait_yaml_load_file(const char *path, size_t max_bytes, json_object **out, ait_error *err)
{
    *out = NULL;
    if (max_bytes == 0) {
        max_bytes = 4u << 20;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return ait_error_set(err, AIT_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    }
    ait_buf b;
    ait_buf_init(&b, max_bytes);
    char chunk[8192];
    size_t n;
    ait_status st = AIT_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (ait_buf_append(&b, chunk, n) != AIT_OK) {
            st = ait_error_set(err, AIT_ERR_TOO_LARGE, "%s is larger than %zu bytes", path,
                               max_bytes);
            break;
        }
    }
    fclose(f);
    if (st == AIT_OK) {
        st = ait_yaml_to_json(ait_buf_str(&b), b.len, out, err);
        if (st != AIT_OK) {
            ait_error_wrap(err, "%s", path);
        }
    }
    ait_buf_free(&b);
    return st;
}

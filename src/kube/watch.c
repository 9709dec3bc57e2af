/* SPDX-License-Identifier: Apache-2.0 */
/* Watch stream decoder. A chunk is searched for newlines once; a complete line that lies wholly
 * inside one chunk is parsed in place, and only the tail of a chunk (an incomplete line) is
 * copied into the line buffer, which is therefore never longer than max_line. */
#include "kube/watch.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/json.h"

/* Kubernetes objects nest deeper than json-c's default of 32 once wrapped in an event (CRD
 * schemas, managedFields); 64 is generous and still bounds the recursion. */
#define WATCH_JSON_DEPTH 64
/* A buffer grown for a huge line is released afterwards instead of being kept for the life of
 * the watch. */
#define WATCH_KEEP_CAP ((size_t)64 * 1024)

struct ait_watch_decoder {
    ait_buf line; /* the incomplete line carried over from earlier chunks */
    size_t max_line;
    json_tokener *tok;
    ait_status failed; /* sticky error, AIT_OK while healthy */
    char failed_msg[AIT_ERROR_MSG_MAX];
};

ait_watch_decoder *ait_watch_decoder_new(size_t max_line)
{
    ait_watch_decoder *d = ait_calloc(1, sizeof(*d));
    if (max_line == 0) {
        max_line = AIT_WATCH_MAX_LINE_DEFAULT;
    }
    /* json-c takes an int length. */
    if (max_line > (size_t)INT_MAX - 1) {
        max_line = (size_t)INT_MAX - 1;
    }
    d->max_line = max_line;
    ait_buf_init(&d->line, 0);
    d->tok = json_tokener_new_ex(WATCH_JSON_DEPTH);
    ait_assert(d->tok != NULL);
    json_tokener_set_flags(d->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                       JSON_TOKENER_VALIDATE_UTF8);
    return d;
}

void ait_watch_decoder_free(ait_watch_decoder *d)
{
    if (d == NULL) {
        return;
    }
    ait_buf_free(&d->line);
    json_tokener_free(d->tok);
    ait_free(d);
}

void ait_watch_decoder_reset(ait_watch_decoder *d)
{
    if (d->line.cap > WATCH_KEEP_CAP) {
        ait_buf_free(&d->line);
    } else {
        ait_buf_reset(&d->line);
    }
    d->failed = AIT_OK;
    d->failed_msg[0] = '\0';
}

size_t ait_watch_decoder_pending(const ait_watch_decoder *d)
{
    return d->line.len;
}

const char *ait_watch_event_type_str(ait_watch_event_type t)
{
    switch (t) {
    case AIT_WATCH_ADDED:
        return "ADDED";
    case AIT_WATCH_MODIFIED:
        return "MODIFIED";
    case AIT_WATCH_DELETED:
        return "DELETED";
    case AIT_WATCH_BOOKMARK:
        return "BOOKMARK";
    case AIT_WATCH_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

static int parse_type(const char *s, ait_watch_event_type *out)
{
    static const struct {
        const char *name;
        ait_watch_event_type type;
    } types[] = {
        {"ADDED", AIT_WATCH_ADDED},     {"MODIFIED", AIT_WATCH_MODIFIED},
        {"DELETED", AIT_WATCH_DELETED}, {"BOOKMARK", AIT_WATCH_BOOKMARK},
        {"ERROR", AIT_WATCH_ERROR},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return 1;
        }
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Records a sticky failure and returns its code. */
static ait_status fail(ait_watch_decoder *d, ait_error *err, ait_status code, const char *fmt, ...)
    AIT_PRINTF(4, 5);

static ait_status fail(ait_watch_decoder *d, ait_error *err, ait_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->failed_msg, sizeof(d->failed_msg), fmt, ap);
    va_end(ap);
    d->failed = code;
    return ait_error_set(err, code, "%s", d->failed_msg);
}

/* Parses one line (n bytes at s, no newline) and hands its event to cb. */
static ait_status handle_line(ait_watch_decoder *d, const char *s, size_t n, ait_watch_event_cb cb,
                              void *ctx, ait_error *err)
{
    while (n > 0 && is_space(s[n - 1])) {
        n--;
    }
    size_t start = 0;
    while (start < n && is_space(s[start])) {
        start++;
    }
    if (start == n) {
        return AIT_OK; /* blank line */
    }
    json_tokener_reset(d->tok);
    json_object *root = json_tokener_parse_ex(d->tok, s + start, (int)(n - start));
    enum json_tokener_error jerr = json_tokener_get_error(d->tok);
    size_t used = start + json_tokener_get_parse_end(d->tok);
    if (root == NULL || jerr != json_tokener_success) {
        json_object_put(root);
        if (jerr == json_tokener_continue) {
            return fail(d, err, AIT_ERR_PARSE, "watch event truncated (%zu bytes)", n);
        }
        return fail(d, err, AIT_ERR_PARSE, "malformed watch event at byte %zu: %s", used,
                    json_tokener_error_desc(jerr));
    }
    if (used != n) {
        json_object_put(root);
        return fail(d, err, AIT_ERR_PARSE, "trailing data after watch event at byte %zu", used);
    }
    const char *type = ait_json_str(root, "type");
    json_object *obj = ait_json_path(root, "object");
    ait_watch_event ev = {.object = obj};
    ait_status st;
    if (type == NULL) {
        st = fail(d, err, AIT_ERR_PARSE, "watch event without a type");
    } else if (!parse_type(type, &ev.type)) {
        st = fail(d, err, AIT_ERR_PARSE, "watch event of unknown type \"%.64s\"", type);
    } else if (!json_object_is_type(obj, json_type_object)) {
        st = fail(d, err, AIT_ERR_PARSE, "watch event %s without an object", type);
    } else {
        st = cb(ctx, &ev);
        if (st != AIT_OK) {
            d->failed = st;
            snprintf(d->failed_msg, sizeof(d->failed_msg), "watch stopped by its consumer (%s)",
                     ait_status_str(st));
            if (err != NULL && err->code == AIT_OK) {
                ait_error_set(err, st, "%s", d->failed_msg);
            }
        }
    }
    json_object_put(root);
    return st;
}

ait_status ait_watch_decoder_feed(ait_watch_decoder *d, const char *data, size_t len,
                                  ait_watch_event_cb cb, void *ctx, ait_error *err)
{
    if (d->failed != AIT_OK) {
        return ait_error_set(err, d->failed, "%s", d->failed_msg);
    }
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;
        if (d->line.len + n > d->max_line) {
            size_t have = d->line.len + n;
            ait_buf_reset(&d->line);
            return fail(d, err, AIT_ERR_TOO_LARGE, "watch event line over %zu bytes (at least %zu)",
                        d->max_line, have);
        }
        if (nl == NULL) {
            /* Within max_line, checked above. */
            ait_status st = ait_buf_append(&d->line, data, n);
            ait_assert(st == AIT_OK);
            return AIT_OK;
        }
        ait_status st;
        if (d->line.len == 0) {
            st = handle_line(d, data, n, cb, ctx, err);
        } else {
            ait_status ast = ait_buf_append(&d->line, data, n);
            ait_assert(ast == AIT_OK);
            st = handle_line(d, d->line.data, d->line.len, cb, ctx, err);
            if (d->line.cap > WATCH_KEEP_CAP) {
                ait_buf_free(&d->line);
            } else {
                ait_buf_reset(&d->line);
            }
        }
        if (st != AIT_OK) {
            return st;
        }
        data = nl + 1;
        len -= n + 1;
    }
    return AIT_OK;
}

ait_status ait_watch_error_status(json_object *status, ait_error *err)
{
    int64_t code = ait_json_int(status, "code", 0);
    const char *reason = ait_json_str(status, "reason");
    const char *msg = ait_json_str(status, "message");
    ait_status st;
    if (code == 410 ||
        (reason != NULL && (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0))) {
        st = AIT_ERR_GONE;
    } else if (code >= 300 && code <= 599) {
        st = ait_status_from_http((long)code);
        if (st == AIT_OK) {
            st = AIT_ERR_INTERNAL;
        }
    } else {
        st = AIT_ERR_INTERNAL;
    }
    ait_error_set(err, st, "watch ERROR event: %s%s%.400s", reason != NULL ? reason : "Status",
                  msg != NULL ? ": " : "", msg != NULL ? msg : "");
    if (err != NULL) {
        err->http_status = (code >= 100 && code <= 599) ? (int)code : 0;
    }
    return st;
}

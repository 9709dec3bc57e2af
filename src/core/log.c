/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-lines logger built with json-c; see log.h. The threshold is an atomic so the enabled
 * check needs no lock. */
#include "core/log.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/time.h"

static atomic_int threshold = 0;
static FILE *_Atomic out = NULL;
static _Atomic ait_log_context_cb context_cb; /* zero-initialised: no hook */

void ait_log_set_context_cb(ait_log_context_cb cb)
{
    atomic_store(&context_cb, cb);
}

void ait_log_set_verbosity(int v)
{
    atomic_store(&threshold, v);
}

int ait_log_verbosity(void)
{
    return atomic_load(&threshold);
}

void ait_log_set_output(FILE *f)
{
    atomic_store(&out, f);
}

int ait_log_enabled(int v)
{
    return v <= atomic_load(&threshold);
}

static void emit(const char *level, int v, const char *err, const char *msg, va_list ap)
{
    json_object *o = json_object_new_object();
    char ts[48];
    ait_time_rfc3339_micro(ait_time_now_ns(), ts, sizeof(ts));
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level));
    if (v >= 0) {
        json_object_object_add(o, "v", json_object_new_int(v));
    }
    json_object_object_add(o, "msg", json_object_new_string(msg ? msg : ""));
    if (err != NULL) {
        json_object_object_add(o, "err", json_object_new_string(err));
    }
    ait_log_context_cb cb = atomic_load(&context_cb);
    if (cb != NULL) {
        char trace_id[33] = "", span_id[17] = "";
        cb(trace_id, span_id);
        if (trace_id[0] != '\0') {
            json_object_object_add(o, "traceID", json_object_new_string(trace_id));
            json_object_object_add(o, "spanID", json_object_new_string(span_id));
        }
    }
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) {
            break;
        }
        const char *val = va_arg(ap, const char *);
        json_object_object_add(o, k, val ? json_object_new_string(val) : NULL);
    }
    const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    FILE *f = atomic_load(&out);
    if (f == NULL) {
        f = stderr;
    }
    flockfile(f);
    fputs(line, f);
    fputc('\n', f);
    fflush(f);
    funlockfile(f);
    json_object_put(o);
}

void ait_log_info(int v, const char *msg, ...)
{
    if (!ait_log_enabled(v)) {
        return;
    }
    va_list ap;
    va_start(ap, msg);
    emit("info", v, NULL, msg, ap);
    va_end(ap);
}

void ait_log_error(const char *err, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit("error", -1, err, msg, ap);
    va_end(ap);
}

void ait__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr,
            "{\"level\":\"error\",\"msg\":\"assertion failed\",\"expr\":\"%s\","
            "\"file\":\"%s\",\"line\":%d}\n",
            expr, file, line);
    abort();
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the W3C traceparent parser and the OTEL key=value list parser (trace.c): both
 * read text from outside (headers, environment). A parsed traceparent must format back to a
 * valid header. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    ait_span_ctx ctx;
    if (ait_traceparent_parse(s, &ctx) == AIT_OK) {
        char out[64];
        ait_assert(ait_traceparent_format(&ctx, out, sizeof(out)) == AIT_OK);
        ait_span_ctx again;
        ait_assert(ait_traceparent_parse(out, &again) == AIT_OK);
        ait_assert(strcmp(again.trace_id, ctx.trace_id) == 0);
    }
    char trace_id[33];
    ait_trace_derive_id(s, 16, trace_id);
    ait_assert(strlen(trace_id) == 32);
    free(s);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the watch stream decoder (kube/watch.h). The first input byte picks the
 * chunk size and the line bound, so splits and the over-long-line path are explored too; after
 * an error the decoder is reset and fed the rest, as a restarted watch would be. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/status.h"
#include "kube/watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ait_status on_event(void *ctx, const ait_watch_event *ev)
{
    size_t *n = ctx;
    (*n)++;
    if (ev->type == AIT_WATCH_ERROR) {
        ait_error err = {0};
        ait_status st = ait_watch_error_status(ev->object, &err);
        if (st == AIT_OK) {
            __builtin_trap(); /* an ERROR event never maps to success */
        }
    }
    /* Touch the tree the way the informer does. */
    json_object *md = NULL;
    if (json_object_object_get_ex(ev->object, "metadata", &md)) {
        (void)json_object_to_json_string_ext(md, JSON_C_TO_STRING_PLAIN);
    }
    return (*n % 97 == 96) ? AIT_ERR_CANCELLED : AIT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t chunk = 1 + (data[0] & 0x3f);
    size_t max_line = (data[0] & 0x40) ? 256 : 0;
    data++;
    size--;
    ait_watch_decoder *d = ait_watch_decoder_new(max_line);
    size_t events = 0;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        ait_error err = {0};
        ait_status st =
            ait_watch_decoder_feed(d, (const char *)data + off, n, on_event, &events, &err);
        if (st != AIT_OK) {
            if (err.code != st || err.msg[0] == '\0') {
                __builtin_trap(); /* every failure carries its message */
            }
            if (max_line != 0 && ait_watch_decoder_pending(d) > max_line) {
                __builtin_trap();
            }
            ait_watch_decoder_reset(d);
        }
    }
    ait_watch_decoder_free(d);
    return 0;
}

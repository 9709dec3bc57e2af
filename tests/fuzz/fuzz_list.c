/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the List scanner (core/json.h ait_json_scan_list) the informer decodes
 * list pages with: any input either scans or fails with AIT_ERR_PARSE, never crashes, leaks or
 * reads past the text; on failure no metadata is returned. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_item(void *ctx, json_object *obj)
{
    size_t *n = ctx;
    (*n)++;
    /* Touch the tree the way the informer does. */
    (void)json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte past the input is caught. */
    char *text = malloc(size ? size : 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    size_t n = 0;
    json_object *meta = NULL;
    ait_status st = ait_json_scan_list(text, size, 64, on_item, &n, &meta);
    if (st != AIT_OK && (st != AIT_ERR_PARSE || meta != NULL)) {
        __builtin_trap();
    }
    json_object_put(meta);
    free(text);
    return 0;
}

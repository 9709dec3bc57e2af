/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the Status decoder: the first two bytes choose the HTTP status (100..699),
 * the rest is the body. Every non-2xx answer must map to a non-OK code with a message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    long http = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 600);
    ait_error err = {0};
    ait_status st = ait_rest_decode_status(http, (const char *)data + 2, size - 2, &err);
    if (http >= 200 && http < 300) {
        if (st != AIT_OK) {
            __builtin_trap();
        }
    } else if (st == AIT_OK || err.msg[0] == '\0' || err.http_status != http ||
               memchr(err.msg, '\0', sizeof err.msg) == NULL) {
        __builtin_trap();
    }
    (void)ait_rest_retry_after_seconds(&err);
    return 0;
}

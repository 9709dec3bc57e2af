/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the etcd gateway's answers (src/audit/etcd.c): the same bytes go through the
 * range parser, the txn parser and the error decoder; none may crash, hang or leak, and a
 * successful parse must hand back consistent results. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "audit/etcd.h"
#include "core/assert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    ait_etcd_range_result r;
    if (ait_etcd_parse_range(s, size, &r, NULL) == AIT_OK) {
        for (size_t i = 0; i < r.n; i++) {
            ait_assert(r.kvs[i].key != NULL && r.kvs[i].value != NULL);
            ait_assert(strlen(r.kvs[i].key) <= r.kvs[i].key_len);
        }
    }
    ait_etcd_range_result_clear(&r);
    ait_etcd_txn_result t;
    if (ait_etcd_parse_txn(s, size, &t, NULL) == AIT_OK) {
        for (size_t i = 0; i < t.n; i++) {
            ait_assert(t.ranges[i].n == 0 || t.ranges[i].kvs != NULL);
        }
    }
    ait_etcd_txn_result_clear(&t);
    ait_error err = {0};
    ait_status st = ait_etcd_decode_error(400, s, size, &err);
    ait_assert(st != AIT_OK && err.code == st);
    return 0;
}

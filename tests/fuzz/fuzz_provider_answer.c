/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target over the answer parsers of every provider adapter. The first byte picks the
 * provider type and an HTTP status class, the rest is the body; every input must produce an
 * outcome without crashing or leaking, and an OK outcome must carry four validated fields. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "heal/adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[8] = {200, 200, 200, 400, 401, 429, 503, 529};
    if (size < 1) {
        return 0;
    }
    ait_heal_provider_type t = (ait_heal_provider_type)(data[0] % AIT_HEAL_TYPE_COUNT_);
    int status = statuses[(data[0] >> 4) & 7];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    ait_heal_http_meta meta = {"1.5", "6m0s", "bogus"};
    ait_heal_answer a;
    memset(&a, 0, sizeof(a));
    ait_heal_adapter_parse(t, status, &meta, body, len, "print(1)", &a);
    ait_assert(a.error != NULL);
    if (a.outcome == AIT_HEAL_OUT_OK) {
        for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
            ait_assert(a.fields[i] != NULL);
        }
        ait_assert(strlen(a.fields[AIT_HEAL_F_CODE]) <= AIT_HEAL_CODE_MAX);
    }
    ait_heal_answer_clear(&a);
    /* The validator on its own, over the raw bytes. */
    char *f[AIT_HEAL_F_COUNT_];
    if (ait_heal_adapter_validate((const char *)data, size, NULL, f, NULL) == AIT_OK) {
        for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
            ait_assert(f[i] != NULL);
            ait_free(f[i]);
        }
    }
    (void)ait_heal_parse_duration_ms(len > 0 && body[len - 1] == '\0' ? body : "1s");
    return 0;
}

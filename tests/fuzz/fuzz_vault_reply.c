/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the Vault reply parsers: every input is fed both to the KV v2 read parser
 * (looking up key "apiKey") and to the auth parser (login, renew-self and lookup-self shapes).
 * Neither may crash, leak or return AIT_OK without filling its outputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "vault/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char *value = NULL;
    int64_t version = -1;
    char created[40];
    ait_error err = {0};
    if (ait_vault_parse_kv(body, size, "apiKey", &value, &version, created, sizeof(created),
                           &err) == AIT_OK) {
        if (value == NULL || version < 0 || strlen(created) >= sizeof(created)) {
            abort();
        }
    } else if (value != NULL) {
        abort();
    }
    ait_free(value);
    char *token = NULL;
    int64_t ttl = -1;
    int renewable = -1;
    if (ait_vault_parse_auth(body, size, &token, &ttl, &renewable, &err) == AIT_OK) {
        if (token == NULL || token[0] == '\0' || ttl < 0 || (renewable != 0 && renewable != 1)) {
            abort();
        }
    } else if (token != NULL) {
        abort();
    }
    ait_free(token);
    return 0;
}

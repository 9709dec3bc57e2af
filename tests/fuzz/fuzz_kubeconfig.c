/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the kubeconfig parser: any bytes must give either a config or an error,
 * never a crash, leak or read out of bounds. The first byte picks the context argument so named
 * contexts are explored too. */
#include <stddef.h>
#include <stdint.h>

#include "kube/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const contexts[] = {NULL, "dev", "x", "second"};
    const char *context = size > 0 ? contexts[data[0] % 4] : NULL;
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    if (ait_kube_config_from_yaml((const char *)data, size, "/base", context, &cfg, &err) ==
        AIT_OK) {
        /* A successful parse always has a server URL. */
        if (cfg == NULL || cfg->server == NULL) {
            __builtin_trap();
        }
    } else if (cfg != NULL || err.msg[0] == '\0') {
        __builtin_trap();
    }
    ait_kube_config_free(cfg);
    return 0;
}

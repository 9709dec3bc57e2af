/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the controller's config file: YAML to JSON (core/yaml.c), then the config
 * loader (reconcile/config.c). Any input must end in AIT_OK or an error, never a crash, a leak or
 * unbounded work (aliases are refused, nesting is bounded). */
#include <stddef.h>
#include <stdint.h>

#include "core/yaml.h"
#include "reconcile/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *root = NULL;
    ait_error err = {0};
    if (ait_yaml_to_json((const char *)data, size, &root, &err) == AIT_OK) {
        ait_controller_config *cfg = NULL;
        if (ait_controller_config_from_json(root, &cfg, &err) == AIT_OK) {
            (void)ait_controller_config_runtime(cfg, "python");
            ait_controller_config_free(cfg);
        }
        json_object_put(root);
    }
    return 0;
}

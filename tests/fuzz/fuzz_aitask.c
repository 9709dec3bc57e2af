/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the AITask decoding the reconciler relies on: strict JSON parsing, then the
 * spec parser (api/aitask.c) and the status helpers on whatever came in. Objects of the wrong
 * shape must give errors, never crashes. */
#include <stddef.h>
#include <stdint.h>

#include "api/aitask.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *o = NULL;
    if (ait_json_parse((const char *)data, size, &o, NULL) != AIT_OK) {
        return 0;
    }
    ait_task_spec spec;
    ait_error err = {0};
    if (ait_task_spec_parse(o, &spec, &err) != AIT_OK) {
        /* an error with a message is the expected outcome for most inputs */
    }
    ait_task_spec_clear(&spec);
    if (json_object_is_type(o, json_type_object)) {
        json_object *status = ait_status_obj(o);
        (void)ait_condition_true(status, "Succeeded");
        ait_condition_set(status, "Succeeded", "True", "Fuzz", "m", 1, 0);
        (void)ait_status_attempts(status);
        (void)ait_obj_has_finalizer(o, AIT_FINALIZER);
        (void)ait_obj_controller_uid(o);
    }
    json_object_put(o);
    return 0;
}

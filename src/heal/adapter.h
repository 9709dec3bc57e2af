/* SPDX-License-Identifier: Apache-2.0 */
/* Provider adapters: build each provider's native request (URL and JSON body, with its native
 * structured-output mode) and turn its answer, success or error, into one classified outcome.
 * Pure functions without I/O, so the parsers can be fuzzed; the engine does the HTTP. */
#ifndef AIT_HEAL_ADAPTER_H
#define AIT_HEAL_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "heal/heal.h"

/* What the engine does with an answer. */
typedef enum ait_heal_outcome {
    AIT_HEAL_OUT_OK = 0,           /* fields[] hold a valid answer */
    AIT_HEAL_OUT_INVALID,          /* the answer is not a valid four-field object: retry same */
    AIT_HEAL_OUT_REFUSAL,          /* the model refused: do not retry on it */
    AIT_HEAL_OUT_RETRY,            /* transient (5xx, 529, malformed envelope): go elsewhere */
    AIT_HEAL_OUT_RATE_LIMITED,     /* 429 that will pass: elsewhere, skip until retry_after_ms */
    AIT_HEAL_OUT_QUOTA,            /* quota or spend limit exhausted: open the circuit for long */
    AIT_HEAL_OUT_AUTH,             /* 401/403: refresh the key once */
    AIT_HEAL_OUT_FATAL,            /* request rejected (400, 404 model): not this provider */
    AIT_HEAL_OUT_UNSUPPORTED_MODE, /* 400 naming the structured-output parameter */
} ait_heal_outcome;

typedef enum ait_heal_field {
    AIT_HEAL_F_CODE = 0,
    AIT_HEAL_F_ARCHITECT,
    AIT_HEAL_F_BUG_HUNTER,
    AIT_HEAL_F_REASONING,
    AIT_HEAL_F_COUNT_
} ait_heal_field;

/* The four JSON names, in ait_heal_field order. */
extern const char *const ait_heal_field_names[AIT_HEAL_F_COUNT_];

typedef struct ait_heal_answer {
    ait_heal_outcome outcome;
    const char *error; /* static short word for failovers[] ("HTTP 503", "Quota", ...) */
    char detail[256];  /* provider message or validation failure, never a secret */
    char *fields[AIT_HEAL_F_COUNT_]; /* owned, set only for AIT_HEAL_OUT_OK */
    int64_t prompt_tokens;           /* -1 = not reported */
    int64_t completion_tokens;       /* -1 = not reported */
    int64_t retry_after_ms;          /* -1 = none named */
} ait_heal_answer;

/* Response headers the classifier reads (borrowed, each may be NULL). */
typedef struct ait_heal_http_meta {
    const char *retry_after;
    const char *reset_requests; /* x-ratelimit-reset-requests */
    const char *reset_tokens;   /* x-ratelimit-reset-tokens */
} ait_heal_http_meta;

/* Frees the fields and resets a to empty. */
void ait_heal_answer_clear(ait_heal_answer *a);

/* Returns the type's public base URL (borrowed, static). */
const char *ait_heal_adapter_default_base(ait_heal_provider_type t);

/* Builds the system and user prompts of a heal (or of a first generation when code is empty
 * and prompt set). Both returned owned, free with ait_free. */
void ait_heal_adapter_prompts(const ait_heal_request *req, char **system, char **user);

/* Builds the request URL (base without trailing slash + the type's path) and JSON body. Both
 * returned owned, free with ait_free. mode AUTO selects the native mode. */
void ait_heal_adapter_build(ait_heal_provider_type t, ait_heal_output_mode mode,
                            const char *base_url, const char *model, const char *system,
                            const char *user, double temperature, int max_tokens, char **url,
                            char **body);

/* Classifies an HTTP answer (http_status > 0) of a provider of type t. body need not be
 * terminated. failing_code (may be NULL) is what a valid answer must differ from. Fills out,
 * which must be zeroed or cleared; never fails. */
void ait_heal_adapter_parse(ait_heal_provider_type t, int http_status,
                            const ait_heal_http_meta *meta, const char *body, size_t len,
                            const char *failing_code, ait_heal_answer *out);

/* Validates the model's answer text: a JSON object with exactly the four string fields, code
 * non-empty, <= AIT_HEAL_CODE_MAX, different from failing_code (whitespace at the ends does not
 * count). A ```json fence around it is tolerated. On AIT_OK fields[] are owned copies. */
ait_status ait_heal_adapter_validate(const char *text, size_t len, const char *failing_code,
                                     char *fields[AIT_HEAL_F_COUNT_], ait_error *err) AIT_WUR;

/* Parses a duration as providers write it: Go style ("6m0s", "1.5s", "20ms", "1h") or plain
 * seconds ("30"). Returns -1 when it cannot be read. */
int64_t ait_heal_parse_duration_ms(const char *s);

#endif

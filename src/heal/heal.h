/* SPDX-License-Identifier: Apache-2.0 */
/* The healing engine: asks LLM providers for corrected code with failover in the task's order,
 * per-provider circuit breakers, structured-answer validation, budget checks and cost in integer
 * micro-dollars. Heals run on the engine's own bounded worker pool and never block the caller;
 * the engine is thread-safe, and the only shared state is the breakers (one mutex). */
#ifndef AIT_HEAL_HEAL_H
#define AIT_HEAL_HEAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/time.h"

/* Bounds of a valid answer (SPEC.md §4). */
#define AIT_HEAL_CODE_MAX (256 * 1024)

typedef enum ait_heal_provider_type {
    AIT_HEAL_TYPE_OPENAI = 0,
    AIT_HEAL_TYPE_ANTHROPIC,
    AIT_HEAL_TYPE_GEMINI,
    AIT_HEAL_TYPE_MISTRAL,
    AIT_HEAL_TYPE_GROQ,
    AIT_HEAL_TYPE_OLLAMA,
    AIT_HEAL_TYPE_OPENAI_COMPATIBLE,
    AIT_HEAL_TYPE_COUNT_
} ait_heal_provider_type;

/* Parses a config type name ("openai", "anthropic", "gemini", "mistral", "groq", "ollama",
 * "openai-compatible"). Returns AIT_ERR_INVALID for anything else. */
ait_status ait_heal_provider_type_parse(const char *s, ait_heal_provider_type *out) AIT_WUR;
/* Returns the config name of t ("openai", ...); never NULL. */
const char *ait_heal_provider_type_str(ait_heal_provider_type t);

/* Structured-output mode. AUTO = the provider's native mode (OpenAI json_schema strict, Mistral
 * and Groq json_schema, Anthropic output_config, Gemini responseSchema, Ollama format). TOOL =
 * Anthropic's forced tool; JSON_OBJECT = the weaker {"type":"json_object"} of the OpenAI
 * family. AUTO falls back by itself (Anthropic to TOOL, OpenAI family to JSON_OBJECT) when the
 * provider answers 400 naming the structured-output parameter. */
typedef enum ait_heal_output_mode {
    AIT_HEAL_OUTPUT_AUTO = 0,
    AIT_HEAL_OUTPUT_TOOL,
    AIT_HEAL_OUTPUT_JSON_OBJECT,
} ait_heal_output_mode;

/* One provider from the controller's config. Every string is borrowed by ait_heal_engine_new,
 * which copies what it keeps. */
typedef struct ait_heal_provider_config {
    const char *name; /* unique, as tasks name it in healing.providers[] */
    ait_heal_provider_type type;
    const char *base_url;     /* NULL = the type's public default; "openai-compatible" needs one */
    const char *model;        /* default model; a task's healing.model overrides it */
    const char *api_key_file; /* read on every call unless cfg->keys.get_key is set; NULL for
                                 ollama or a keyless endpoint */
    int64_t connect_timeout_ms; /* 0 = 5000 */
    int64_t timeout_ms;         /* total per request; 0 = 120000 */
    /* Prices in USD per million tokens as decimal strings ("2.50", at most 6 decimals); when a
     * string is NULL the micro-dollar number beside it is used (0 = free). */
    const char *price_input_per_mtok;
    const char *price_output_per_mtok;
    int64_t price_input_micro_per_mtok;
    int64_t price_output_micro_per_mtok;
    int max_completion_tokens; /* 0 = 4096 */
    ait_heal_output_mode output_mode;
} ait_heal_provider_config;

/* Key seam (Vault later). get_key returns in *key an owned string (ait_free) or NULL for "no
 * key"; force_refresh is 1 after the provider answered 401/403, so a cache must re-read. Called
 * from pool threads, so it must be thread-safe. */
typedef struct ait_heal_key_source {
    void *ctx;
    ait_status (*get_key)(void *ctx, const char *provider, int force_refresh, char **key,
                          ait_error *err);
} ait_heal_key_source;

/* Budget seam (the etcd ledger). reserve is asked before every call, for the provider that will
 * answer, with the call's estimate; AIT_ERR_QUOTA refuses it (any other error also refuses and
 * is reported). After the call exactly one of settle (the real cost, possibly 0) or release
 * (nothing was billed) is called with the handle. Called from pool threads. */
typedef struct ait_heal_budget {
    void *ctx;
    ait_status (*reserve)(void *ctx, const char *provider, int64_t estimate_micro, void **handle);
    void (*settle)(void *ctx, void *handle, int64_t actual_micro);
    void (*release)(void *ctx, void *handle);
} ait_heal_budget;

typedef struct ait_heal_config {
    const ait_heal_provider_config *providers; /* borrowed, copied */
    size_t n_providers;
    const char *const *default_order; /* provider names used when a task names none; NULL =
                                          config order */
    size_t n_default_order;
    int workers;                   /* pool threads; 0 = 4 */
    int queue_max;                 /* queued heals beyond which submit refuses; 0 = 256 */
    int breaker_failures;          /* consecutive failures that open a circuit; 0 = 3 */
    int64_t breaker_cooldown_ms;   /* open -> half-open; 0 = 30000 */
    int64_t quota_open_ms;         /* circuit open after a quota answer; 0 = 3600000 */
    int invalid_retries;           /* extra tries on the same provider; 0 = 2, -1 = none */
    int64_t max_body_bytes;        /* response bound; 0 = 4 MiB */
    int64_t min_speed_bytes_per_s; /* slow-drip guard once the answer started; 0 = 1024 */
    int64_t min_speed_window_ms;   /* 0 = 5000 */
    const char *ca_file;           /* extra CA bundle, NULL = system; TLS is always verified */
    const ait_clock *clock;        /* NULL = system; used for breakers and Retry-After */
    ait_heal_key_source keys;      /* get_key NULL = read api_key_file */
    ait_heal_budget budget;        /* reserve NULL = no ledger */
} ait_heal_config;

/* What to heal. Borrowed by the calls below (ait_heal_submit copies it). */
typedef struct ait_heal_request {
    const char *runtime;    /* "python", "node", "bash" (any string is passed on) */
    const char *code;       /* the failing code; NULL/"" with prompt = generate the first code */
    const char *error_tail; /* tail of the failing run's output */
    int attempt;            /* index of the failed attempt (1-based), for the prompt */
    const char *const *providers; /* failover order; NULL/0 = the default order */
    size_t n_providers;
    const char *model;          /* override of every provider's model; NULL = provider default */
    double temperature;         /* starting temperature, 0..1; < 0 = 0.2 */
    const char *prompt;         /* natural-language task (prompt tasks) */
    int64_t budget_max_micro;   /* task cap; < 0 = none */
    int64_t budget_spent_micro; /* already spent by the task */
    const char *traceparent;    /* W3C traceparent to send, or NULL */
} ait_heal_request;

/* Why a heal produced no code. */
typedef enum ait_heal_failure {
    AIT_HEAL_OK = 0,
    AIT_HEAL_PROVIDERS_UNAVAILABLE, /* every provider failed or was skipped */
    AIT_HEAL_BUDGET_EXCEEDED,       /* a call was refused by the task budget or a ledger limit */
    AIT_HEAL_INVALID_REQUEST,       /* unknown provider name, nothing to heal */
    AIT_HEAL_CANCELLED,             /* the engine shut down first */
    AIT_HEAL_LEDGER_UNAVAILABLE,    /* the spending ledger could not be reached: retry later */
} ait_heal_failure;

/* Returns "ProvidersUnavailable", "BudgetExceeded", ... ("" for AIT_HEAL_OK); never NULL. */
const char *ait_heal_failure_str(ait_heal_failure f);

/* A provider that did not answer and why. failover_ms (and failover_us, finer, for benchmarks)
 * is the time from that failure to the next request sent to a provider (-1 when none
 * followed): the aitask_provider_failover_seconds observation. */
typedef struct ait_heal_failover {
    char *provider;
    char *error; /* short reason: "HTTP 503", "RateLimited", "Quota", "Timeout",
                    "ConnectionFailed", "InvalidAnswer", "Refusal", "CircuitOpen", ... */
    int64_t failover_ms;
    int64_t failover_us;
} ait_heal_failover;

/* One HTTP exchange, for the audit log (action heal.request / heal.response). The bodies are
 * exactly what was sent and received (the key is only in headers, never in these). */
typedef struct ait_heal_call {
    char *provider;
    char *model;
    char *request_body;
    char *response_body; /* NULL when no body arrived */
    int http_status;     /* 0 = no HTTP answer */
    char *outcome;       /* "ok" or the failover error word */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micro;
    int64_t latency_ms;
    double temperature;
} ait_heal_call;

/* The outcome of one heal; owned by whoever receives it, free with ait_heal_result_free. The
 * audit design: the engine does not call an audit seam, it returns every exchange in calls[]
 * (request and response bodies included) and the caller writes them. */
typedef struct ait_heal_result {
    ait_heal_failure failure;
    char *message; /* human-readable detail of the failure, NULL on success */
    char *consensus_code;
    char *architect_notes;
    char *bug_hunter_notes;
    char *consensus_reasoning;
    char *provider; /* that answered */
    char *model;
    ait_heal_failover *failovers;
    size_t n_failovers;
    int64_t prompt_tokens;     /* summed over every billed call of this heal */
    int64_t completion_tokens; /* likewise */
    int64_t cost_micro;        /* likewise, from the reported usage and configured prices */
    int64_t latency_ms;        /* whole heal, wall time */
    const char *request_body;  /* borrowed from calls[]: the answering exchange, or the last */
    const char *response_body;
    ait_heal_call *calls;
    size_t n_calls;
} ait_heal_result;

void ait_heal_result_free(ait_heal_result *r);

typedef struct ait_heal_engine ait_heal_engine;

/* Builds an engine and starts its workers. Borrows cfg (copies everything). Fails with
 * AIT_ERR_INVALID on a bad config (duplicate name, bad price, unknown default provider,
 * openai-compatible without base URL). Returns owned, free with ait_heal_engine_free. */
ait_status ait_heal_engine_new(const ait_heal_config *cfg, ait_heal_engine **out,
                               ait_error *err) AIT_WUR;

/* Stops the engine: queued heals complete with AIT_HEAL_CANCELLED, running HTTP calls are
 * aborted, workers are joined. NULL is a no-op. Not from a done_cb. */
void ait_heal_engine_free(ait_heal_engine *e);

/* Called once from a pool thread; takes ownership of result (free with ait_heal_result_free).
 * key is borrowed for the call only. */
typedef void (*ait_heal_done_cb)(void *ctx, const char *key, ait_heal_result *result);

/* Queues a heal for task key (e.g. "ns/name") and returns at once. Copies req. Fails with
 * AIT_ERR_EXISTS when a heal for key is already queued or running, AIT_ERR_RETRY when the queue
 * is full, AIT_ERR_CANCELLED while shutting down; done is then never called. Thread-safe. */
ait_status ait_heal_submit(ait_heal_engine *e, const char *key, const ait_heal_request *req,
                           ait_heal_done_cb done, void *ctx, ait_error *err) AIT_WUR;

/* Runs a heal on the calling thread (tools, tests, benchmarks). *out is owned, free with
 * ait_heal_result_free; it is filled for every outcome. Returns AIT_OK when the heal ran (see
 * (*out)->failure), AIT_ERR_INVALID on a NULL argument. */
ait_status ait_heal_run(ait_heal_engine *e, const ait_heal_request *req,
                        ait_heal_result **out) AIT_WUR;

/* Circuit state of a provider for metrics: 0 closed, 1 open (or skipped until a Retry-After),
 * 2 half-open; -1 for an unknown name. Thread-safe. */
int ait_heal_engine_circuit_state(ait_heal_engine *e, const char *provider);

/* Converts a decimal USD string ("2.50", at most 6 decimals, no sign) into micro-dollars. */
ait_status ait_heal_parse_usd(const char *s, int64_t *micro) AIT_WUR;

/* Cost in micro-dollars of tokens at price_micro_per_mtok per million, rounded up. */
int64_t ait_heal_cost_micro(int64_t tokens, int64_t price_micro_per_mtok);

#endif

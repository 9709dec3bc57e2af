/* SPDX-License-Identifier: Apache-2.0 */
/* Distributed tracing: an OpenTelemetry exporter speaking OTLP over HTTP with JSON encoding
 * (POST {endpoint}/v1/traces). Ended spans go to a bounded queue that never blocks the caller
 * (a full queue drops the span and counts it); one background thread exports batches every
 * interval or when a batch is full, retrying 429/5xx/connection errors a bounded number of times
 * with backoff. A tracer without an endpoint is disabled: every call is a cheap no-op. */
#ifndef AIT_TRACE_TRACE_H
#define AIT_TRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "core/time.h"

typedef struct ait_tracer ait_tracer;
typedef struct ait_span ait_span;

/* OTLP SpanKind values (the integers go on the wire). */
typedef enum ait_span_kind {
    AIT_SPAN_KIND_UNSPECIFIED = 0,
    AIT_SPAN_KIND_INTERNAL = 1,
    AIT_SPAN_KIND_SERVER = 2,
    AIT_SPAN_KIND_CLIENT = 3,
    AIT_SPAN_KIND_PRODUCER = 4,
    AIT_SPAN_KIND_CONSUMER = 5
} ait_span_kind;

/* OTLP Status.code values. */
typedef enum ait_span_status {
    AIT_SPAN_STATUS_UNSET = 0,
    AIT_SPAN_STATUS_OK = 1,
    AIT_SPAN_STATUS_ERROR = 2
} ait_span_status;

/* Sampler choices of OTEL_TRACES_SAMPLER. */
typedef enum ait_trace_sampler {
    AIT_SAMPLER_PARENTBASED_ALWAYS_ON = 0, /* the default */
    AIT_SAMPLER_PARENTBASED_ALWAYS_OFF,
    AIT_SAMPLER_PARENTBASED_TRACEIDRATIO,
    AIT_SAMPLER_ALWAYS_ON,
    AIT_SAMPLER_ALWAYS_OFF,
    AIT_SAMPLER_TRACEIDRATIO
} ait_trace_sampler;

/* A span's identity, a plain value: lowercase hex ids, "" when there is no span. */
typedef struct ait_span_ctx {
    char trace_id[33];
    char span_id[17];
    int sampled;
} ait_span_ctx;

/* Called with the number of spans dropped (queue full, or export failed for good), from the
 * thread that dropped them (the caller of ait_span_end, or the exporter thread). Must be cheap
 * and thread-safe; meant to add to aitask_trace_spans_dropped_total. */
typedef void (*ait_trace_drop_cb)(void *ctx, uint64_t n);

/* The HTTP seam (tests put their recorder here; NULL means libcurl). post() sends body with the
 * NULL-terminated "Name: value" headers, waiting at most timeout_ms. It returns AIT_OK when an
 * HTTP answer came (its code in *http_status, body appended to resp, a Retry-After delay in
 * *retry_after_ms or 0), AIT_ERR_IO or AIT_ERR_TIMEOUT when none did. Called only from the
 * exporter thread. */
typedef struct ait_trace_transport {
    void *ctx;
    ait_status (*post)(void *ctx, const char *url, const char *const *headers, const char *body,
                       size_t len, int64_t timeout_ms, long *http_status, ait_buf *resp,
                       int64_t *retry_after_ms);
} ait_trace_transport;

/* Settings that do not come from the environment. Zero values mean the defaults (or the
 * OTEL_BSP_* variables when set): queue_max 2048, batch_max 512, interval_ms 5000,
 * export_timeout_ms 10000, max_retries 5, backoff_ms 100 (doubling, capped at 5 s, with
 * jitter). */
typedef struct ait_trace_options {
    ait_trace_drop_cb on_drop; /* may be NULL */
    void *on_drop_ctx;
    const ait_clock *clock;               /* NULL = ait_clock_system(); borrowed, must outlive */
    const ait_trace_transport *transport; /* NULL = libcurl; borrowed, must outlive */
    const char *default_service_name;     /* NULL = "aitask-operator"; copied */
    size_t queue_max;
    size_t batch_max;
    int64_t interval_ms;
    int64_t export_timeout_ms;
    int max_retries; /* retries after the first attempt; < 0 means none */
    int64_t backoff_ms;
} ait_trace_options;

typedef struct ait_tracer_stats {
    uint64_t started;  /* sampled spans started */
    uint64_t exported; /* spans the receiver accepted */
    uint64_t dropped;  /* queue full, export failed for good, or rejected by the receiver */
    uint64_t requests; /* HTTP requests sent, retries included */
    size_t queued;     /* spans waiting now */
} ait_tracer_stats;

/* Creates a tracer from the standard variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as
 * is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces"), OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES (k=v,k2=v2, percent-decoded), OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_EXPORTER_OTLP_TRACES_HEADERS (same format; never logged), OTEL_TRACES_SAMPLER and
 * OTEL_TRACES_SAMPLER_ARG, OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT (ms),
 * OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE (CA file; TLS is verified), OTEL_BSP_* sizes, and
 * OTEL_SDK_DISABLED=true / OTEL_TRACES_EXPORTER=none to turn it off. Without an endpoint the
 * tracer is disabled (no thread, no allocation per call). Bad sampler or resource values are
 * logged and replaced by defaults; an endpoint that is not http(s) fails with AIT_ERR_INVALID.
 * opts may be NULL. Returns an owned tracer in *out, free with ait_tracer_free(). */
ait_status ait_tracer_new_from_env(const ait_trace_options *opts, ait_tracer **out,
                                   ait_error *err) AIT_WUR;

/* Returns non-zero when t exports (an endpoint is set); 0 for NULL or a disabled tracer. */
int ait_tracer_enabled(const ait_tracer *t);

/* Exports everything queued now and waits for it, at most timeout_ms. Returns AIT_OK when the
 * queue was drained (spans that failed for good count as dropped), AIT_ERR_TIMEOUT otherwise.
 * AIT_OK at once for NULL or a disabled tracer. Any thread. */
ait_status ait_tracer_flush(ait_tracer *t, int64_t timeout_ms) AIT_WUR;

/* Stops the exporter: exports what is queued for at most timeout_ms, then drops (and counts) the
 * rest and joins the thread. Spans ended afterwards are dropped and counted. Idempotent; NULL is
 * a no-op. Call before ait_tracer_free() when the default of 5 s does not suit. */
void ait_tracer_shutdown(ait_tracer *t, int64_t timeout_ms);

/* Fills *out with the counters (zeros for NULL). Any thread. */
void ait_tracer_stats_get(const ait_tracer *t, ait_tracer_stats *out);

/* Shuts down (5 s flush) if not done yet and frees t; NULL is a no-op. Every span must have been
 * ended before. */
void ait_tracer_free(ait_tracer *t);

/* Starts a span. parent NULL (or with an empty trace_id) starts a new trace with random ids
 * (OpenSSL RAND_bytes); otherwise the span joins parent's trace as its child and the
 * parentbased samplers follow parent->sampled. Returns an owned span, ended (and released) by
 * ait_span_end(); NULL when t is NULL or disabled (every ait_span_* call accepts NULL). A span
 * the sampler drops is still returned, with ids, so its context propagates (sampled 0); it
 * records nothing. A span is used by one thread at a time; name is copied. */
ait_span *ait_span_start(ait_tracer *t, const char *name, ait_span_kind kind,
                         const ait_span_ctx *parent);

/* Starts a span in an existing trace (trace_id_hex: 32 lowercase hex digits, e.g. the attempt's
 * trace id kept in the AITask status), as a child of parent_span_id_hex (16 hex digits) or as a
 * root span of that trace when NULL. The sampling decision is the root sampler's on the trace id,
 * so traceidratio decides the same way on every reconcile. Returns NULL (and logs nothing) for
 * malformed or all-zero ids, or when t is NULL or disabled. */
ait_span *ait_span_start_in_trace(ait_tracer *t, const char *name, ait_span_kind kind,
                                  const char *trace_id_hex, const char *parent_span_id_hex);

/* Gives s a chosen span id (16 lowercase hex digits) instead of its random one, so a span that
 * other spans name as parent before it is exported (an attempt, whose heal starts in another
 * reconcile or after a restart) can be found again: derive it with ait_trace_derive_id. Ignored
 * for NULL spans or malformed ids. */
void ait_span_set_span_id(ait_span *s, const char *span_id_hex);

/* Records a span whose times are known rather than measured (an attempt rebuilt from the
 * AITask's status, a provider request from the heal result): sets its wall-clock start and end
 * (ns since the epoch) and ends it as ait_span_end does. */
void ait_span_end_at(ait_span *s, int64_t start_ns, int64_t end_ns);

/* Derives a stable lowercase hex id of len bytes (16 for a trace id, 8 for a span id) from seed
 * with SHA-256, into out (2*len+1 bytes): the same seed gives the same id in every process. */
void ait_trace_derive_id(const char *seed, size_t len, char *out);

/* Attributes (copied; a key set twice keeps the last value; past 128 attributes the extra ones
 * are counted in droppedAttributesCount; string values are cut at 4096 bytes and invalid UTF-8
 * is replaced). No-ops on NULL or non-recording spans. */
void ait_span_set_attr_str(ait_span *s, const char *key, const char *value);
void ait_span_set_attr_int(ait_span *s, const char *key, int64_t value);
void ait_span_set_attr_bool(ait_span *s, const char *key, int value);
void ait_span_set_attr_double(ait_span *s, const char *key, double value);

/* Adds a timed event named name, with string attributes given as (const char *key, const char
 * *value) pairs ended by NULL. At most 128 events per span (then droppedEventsCount). */
void ait_span_add_event(ait_span *s, const char *name, ...) __attribute__((sentinel));

/* Sets the status to ERROR with msg (copied; NULL = no message), as OTLP Status {code 2}. */
void ait_span_set_error(ait_span *s, const char *msg);
/* Sets the status to OK or UNSET (ERROR with a NULL message is allowed too). */
void ait_span_set_status(ait_span *s, ait_span_status code, const char *msg);

/* Returns the span's identity by value; all empty (and sampled 0) for NULL. */
ait_span_ctx ait_span_context(const ait_span *s);

/* Ends s now: a sampled span goes to the export queue (or is dropped and counted when the queue
 * is full; never blocks), then s is freed. Takes ownership; NULL is a no-op. */
void ait_span_end(ait_span *s);

/* Returns non-zero when ctx holds a valid (non-zero) trace id and span id. */
int ait_span_ctx_valid(const ait_span_ctx *ctx);

/* Fills out with 32 random lowercase hex digits and a '\0' (a new, non-zero trace id). */
void ait_trace_new_trace_id(char out[33]);

/* Formats ctx as a W3C traceparent, "00-<trace>-<span>-01" (or -00 when not sampled), into buf
 * (at least 56 bytes). Returns AIT_ERR_INVALID when ctx is not valid. */
ait_status ait_traceparent_format(const ait_span_ctx *ctx, char *buf, size_t size) AIT_WUR;
/* Parses a W3C traceparent header value (version 00, or a later version by the same prefix
 * rules) into *out. Returns AIT_ERR_PARSE for malformed values, all-zero ids and version ff. */
ait_status ait_traceparent_parse(const char *value, ait_span_ctx *out) AIT_WUR;

/* The calling thread's current span context, for log lines (traceID, spanID). Returns borrowed
 * thread-local storage, valid until the next ait_trace_set_current on this thread; NULL when
 * none is set. */
const ait_span_ctx *ait_trace_current(void);
/* Sets (copies) the calling thread's current span context; NULL or an invalid ctx clears it. */
void ait_trace_set_current(const ait_span_ctx *ctx);

/* Exposed for tests and for the sampler's documentation: the root sampler's decision for a trace
 * id under OTEL_TRACES_SAMPLER semantics (parent_sampled: -1 root, 0/1 the parent's flag).
 * traceidratio samples when the trace id's last 8 bytes (big endian) >> 1 are below
 * ratio * 2^63, as the Go and Java SDKs do. */
int ait_trace_sample(ait_trace_sampler sampler, double ratio, const char *trace_id_hex,
                     int parent_sampled);

/* Parses an OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS value ("k=v,k2=v2", spaces
 * around items trimmed, keys and values percent-decoded) and calls cb for each pair. Items
 * without '=' or with a bad %-escape are skipped and counted. Returns the number skipped. */
int ait_trace_parse_kv_list(const char *value,
                            void (*cb)(void *ctx, const char *key, const char *value), void *ctx);

#endif

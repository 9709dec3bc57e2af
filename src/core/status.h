/* SPDX-License-Identifier: Apache-2.0 */
/* Status codes and the error record every fallible function in the project uses. A function
 * returns an ait_status (AIT_OK == 0) and, when given a non-NULL ait_error *, fills it with a
 * message written where the failure happened. HTTP answers map onto the typed codes so callers
 * can act (requeue on conflict, relist on gone, retry on AIT_ERR_RETRY). */
#ifndef AIT_CORE_STATUS_H
#define AIT_CORE_STATUS_H

#include <stddef.h>

#define AIT_WUR __attribute__((warn_unused_result))
#define AIT_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef enum ait_status {
    AIT_OK = 0,
    AIT_ERR_INVALID,      /* bad input, or HTTP 400/422 */
    AIT_ERR_NOT_FOUND,    /* HTTP 404 */
    AIT_ERR_EXISTS,       /* HTTP 409 AlreadyExists */
    AIT_ERR_CONFLICT,     /* HTTP 409 Conflict: stale resourceVersion, requeue */
    AIT_ERR_GONE,         /* HTTP 410: resourceVersion too old, relist */
    AIT_ERR_UNAUTHORIZED, /* HTTP 401 */
    AIT_ERR_FORBIDDEN,    /* HTTP 403 */
    AIT_ERR_RETRY,        /* HTTP 429/5xx and other transient failures */
    AIT_ERR_TIMEOUT,      /* a deadline passed */
    AIT_ERR_IO,           /* connection refused, TLS failure, short read */
    AIT_ERR_PARSE,        /* malformed data from a peer or a file */
    AIT_ERR_TOO_LARGE,    /* a body or a line over its bound */
    AIT_ERR_QUOTA,        /* a quota or budget is exhausted: do not retry soon */
    AIT_ERR_CANCELLED,    /* shut down while waiting */
    AIT_ERR_INTERNAL,     /* a broken invariant that is not the caller's fault */
    AIT_STATUS_COUNT_
} ait_status;

#define AIT_ERROR_MSG_MAX 512

typedef struct ait_error {
    ait_status code;
    int http_status; /* 0 when the failure was not an HTTP answer */
    char msg[AIT_ERROR_MSG_MAX];
} ait_error;

/* Returns a short constant name for code ("NotFound", "Conflict", ...). Never NULL. */
const char *ait_status_str(ait_status code);

/* Fills err (which may be NULL, then nothing happens) with code and a formatted message, cut at
 * AIT_ERROR_MSG_MAX - 1 bytes. Returns code, so `return ait_error_set(err, ...)` reads well. */
ait_status ait_error_set(ait_error *err, ait_status code, const char *fmt, ...) AIT_PRINTF(3, 4);

/* Prefixes err->msg with a formatted context ("reading kubeconfig: ..."); no-op on NULL. */
void ait_error_wrap(ait_error *err, const char *fmt, ...) AIT_PRINTF(2, 3);

/* Resets err to AIT_OK with an empty message; no-op on NULL. */
void ait_error_clear(ait_error *err);

/* Maps an HTTP status code to the typed status (2xx -> AIT_OK). */
ait_status ait_status_from_http(long http_status);

/* True for codes a caller should retry with backoff (AIT_ERR_RETRY, TIMEOUT, IO). */
int ait_status_retryable(ait_status code);

#endif

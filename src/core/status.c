/* SPDX-License-Identifier: Apache-2.0 */
/* Status names, the error record and the HTTP mapping. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[AIT_STATUS_COUNT_] = {
    [AIT_OK] = "OK",
    [AIT_ERR_INVALID] = "Invalid",
    [AIT_ERR_NOT_FOUND] = "NotFound",
    [AIT_ERR_EXISTS] = "AlreadyExists",
    [AIT_ERR_CONFLICT] = "Conflict",
    [AIT_ERR_GONE] = "Gone",
    [AIT_ERR_UNAUTHORIZED] = "Unauthorized",
    [AIT_ERR_FORBIDDEN] = "Forbidden",
    [AIT_ERR_RETRY] = "Retry",
    [AIT_ERR_TIMEOUT] = "Timeout",
    [AIT_ERR_IO] = "IOError",
    [AIT_ERR_PARSE] = "ParseError",
    [AIT_ERR_TOO_LARGE] = "TooLarge",
    [AIT_ERR_QUOTA] = "QuotaExhausted",
    [AIT_ERR_CANCELLED] = "Cancelled",
    [AIT_ERR_INTERNAL] = "Internal",
};

const char *ait_status_str(ait_status code)
{
    if ((int)code < 0 || code >= AIT_STATUS_COUNT_ || names[code] == NULL) {
        return "Unknown";
    }
    return names[code];
}

ait_status ait_error_set(ait_error *err, ait_status code, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void ait_error_wrap(ait_error *err, const char *fmt, ...)
{
    if (err == NULL) {
        return;
    }
    char prefix[AIT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* Built in a larger buffer, then cut to the record's size. */
    char joined[2 * AIT_ERROR_MSG_MAX + 2];
    snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg);
    snprintf(err->msg, sizeof(err->msg), "%.*s", AIT_ERROR_MSG_MAX - 1, joined);
}

void ait_error_clear(ait_error *err)
{
    if (err == NULL) {
        return;
    }
    err->code = AIT_OK;
    err->http_status = 0;
    err->msg[0] = '\0';
}

ait_status ait_status_from_http(long http_status)
{
    if (http_status >= 200 && http_status < 300) {
        return AIT_OK;
    }
    switch (http_status) {
    case 400:
    case 422:
        return AIT_ERR_INVALID;
    case 401:
        return AIT_ERR_UNAUTHORIZED;
    case 403:
        return AIT_ERR_FORBIDDEN;
    case 404:
        return AIT_ERR_NOT_FOUND;
    case 409:
        return AIT_ERR_CONFLICT;
    case 410:
        return AIT_ERR_GONE;
    case 408:
    case 504:
        return AIT_ERR_TIMEOUT;
    case 413:
        return AIT_ERR_TOO_LARGE;
    case 429:
        return AIT_ERR_RETRY;
    default:
        break;
    }
    if (http_status >= 500) {
        return AIT_ERR_RETRY;
    }
    return AIT_ERR_INVALID;
}

int ait_status_retryable(ait_status code)
{
    return code == AIT_ERR_RETRY || code == AIT_ERR_TIMEOUT || code == AIT_ERR_IO;
}

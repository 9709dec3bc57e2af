/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one JSON object per line on stderr with Kubernetes' JSON log keys (ts, v,
 * level, msg, err, then key/value pairs such as controller, object, reconcileID). The verbosity
 * check runs before any formatting: use the AIT_LOG_* macros so disabled lines cost one compare.
 * Lines are written whole under the stdio lock, so threads never interleave. Never log a secret,
 * and never call this from a signal handler. */
#ifndef AIT_CORE_LOG_H
#define AIT_CORE_LOG_H

#include <stdio.h>

/* Sets the verbosity threshold (-v): info lines with v <= threshold are written. Default 0. */
void ait_log_set_verbosity(int v);
int ait_log_verbosity(void);
/* Redirects output (tests); NULL restores stderr. Borrows f. */
void ait_log_set_output(FILE *f);

/* Context hook: called for every line written, on the writing thread; fills trace_id (33 bytes)
 * and span_id (17 bytes) with the thread's current span, or leaves them empty. Set once at
 * start (the tracing area provides it; core knows nothing of tracing). NULL = none. */
typedef void (*ait_log_context_cb)(char *trace_id, char *span_id);
void ait_log_set_context_cb(ait_log_context_cb cb);

/* Returns non-zero when an info line at verbosity v would be written. */
int ait_log_enabled(int v);

/* Writes an info line. The variadic part is (const char *key, const char *value) pairs ended by
 * NULL; a NULL value is written as null. Prefer AIT_LOG_INFO. */
void ait_log_info(int v, const char *msg, ...) __attribute__((sentinel));
/* Writes an error line (always, whatever the verbosity); err may be NULL. */
void ait_log_error(const char *err, const char *msg, ...) __attribute__((sentinel));

#define AIT_LOG_INFO(v, ...)                                                                       \
    do {                                                                                           \
        if (ait_log_enabled(v)) {                                                                  \
            ait_log_info((v), __VA_ARGS__, (const char *)NULL);                                    \
        }                                                                                          \
    } while (0)

#define AIT_LOG_ERROR(err, ...) ait_log_error((err), __VA_ARGS__, (const char *)NULL)

#endif

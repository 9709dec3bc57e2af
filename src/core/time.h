/* SPDX-License-Identifier: Apache-2.0 */
/* Time helpers and the clock seam. Modules that wait or schedule take an ait_clock so tests can
 * drive time; ait_clock_system() is the real one. Times are int64 nanoseconds. */
#ifndef AIT_CORE_TIME_H
#define AIT_CORE_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AIT_NS_PER_MS INT64_C(1000000)
#define AIT_NS_PER_S INT64_C(1000000000)

typedef struct ait_clock {
    void *ctx;
    int64_t (*now_ns)(void *ctx);  /* wall clock, Unix epoch */
    int64_t (*mono_ns)(void *ctx); /* monotonic, for durations and deadlines */
} ait_clock;

/* Returns the process-wide real clock; borrowed, valid forever. */
const ait_clock *ait_clock_system(void);

int64_t ait_time_now_ns(void);  /* CLOCK_REALTIME */
int64_t ait_time_mono_ns(void); /* CLOCK_MONOTONIC */

/* Formats t (ns since epoch) as RFC 3339 UTC with seconds ("2026-01-02T03:04:05Z", as
 * metav1.Time) into out (at least 21 bytes). Returns out. */
char *ait_time_rfc3339(int64_t t_ns, char *out, size_t size);
/* Formats with microseconds ("...05.123456Z", as metav1.MicroTime). */
char *ait_time_rfc3339_micro(int64_t t_ns, char *out, size_t size);
/* Parses RFC 3339 ("Z" or +hh:mm offset, optional fraction) into ns since epoch. */
ait_status ait_time_parse_rfc3339(const char *s, int64_t *out_ns) AIT_WUR;

/* Sleeps for ns, resuming after signals. */
void ait_time_sleep_ns(int64_t ns);

#endif

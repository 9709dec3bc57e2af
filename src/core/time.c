/* SPDX-License-Identifier: Apache-2.0 */
/* Real clocks and RFC 3339 formatting/parsing. */
#define _GNU_SOURCE
#include "core/time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ait_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * AIT_NS_PER_S + ts.tv_nsec;
}

int64_t ait_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * AIT_NS_PER_S + ts.tv_nsec;
}

static int64_t sys_now(void *ctx)
{
    (void)ctx;
    return ait_time_now_ns();
}

static int64_t sys_mono(void *ctx)
{
    (void)ctx;
    return ait_time_mono_ns();
}

static const ait_clock system_clock = {NULL, sys_now, sys_mono};

const ait_clock *ait_clock_system(void)
{
    return &system_clock;
}

char *ait_time_rfc3339(int64_t t_ns, char *out, size_t size)
{
    time_t secs = (time_t)(t_ns / AIT_NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

char *ait_time_rfc3339_micro(int64_t t_ns, char *out, size_t size)
{
    time_t secs = (time_t)(t_ns / AIT_NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%06ldZ", base, (long)((t_ns % AIT_NS_PER_S) / 1000));
    return out;
}

ait_status ait_time_parse_rfc3339(const char *s, int64_t *out_ns)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL) {
        return AIT_ERR_PARSE;
    }
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0) {
            return AIT_ERR_PARSE;
        }
        while (digits++ < 9) {
            frac *= 10;
        }
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) {
            return AIT_ERR_PARSE;
        }
        offset = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return AIT_ERR_PARSE;
    }
    if (*p != '\0') {
        return AIT_ERR_PARSE;
    }
    time_t secs = timegm(&tm);
    *out_ns = ((int64_t)secs - offset) * AIT_NS_PER_S + frac;
    return AIT_OK;
}

void ait_time_sleep_ns(int64_t ns)
{
    if (ns <= 0) {
        return;
    }
    struct timespec ts = {(time_t)(ns / AIT_NS_PER_S), (long)(ns % AIT_NS_PER_S)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* A token-bucket rate limiter (client-go's flowcontrol.NewTokenBucketRateLimiter over
 * golang.org/x/time/rate): the bucket holds up to burst tokens and refills at qps per second; a
 * caller takes one token, waiting for it when the bucket is empty. Waiting is by reservation, so
 * callers are served in arrival order and never spin. Thread-safe. */
#ifndef AIT_KUBE_RATELIMIT_H
#define AIT_KUBE_RATELIMIT_H

#include <stdint.h>

#include "core/time.h"

typedef struct ait_ratelimit ait_ratelimit;

/* Creates a limiter of qps tokens per second and a bucket of burst tokens (burst <= 0 gives 1);
 * the bucket starts full. clock is borrowed (NULL = ait_clock_system()) and only its mono_ns is
 * used. Returns owned, free with ait_ratelimit_free(); NULL when qps <= 0 (no limit). */
ait_ratelimit *ait_ratelimit_new(double qps, int burst, const ait_clock *clock);
void ait_ratelimit_free(ait_ratelimit *rl);

/* Takes one token now and returns how long the caller must wait before using it (0 when a token
 * was free). Never blocks. rl NULL returns 0. */
int64_t ait_ratelimit_reserve_ns(ait_ratelimit *rl);

/* Takes one token, sleeping until it is due. Returns the time slept in ns. rl NULL returns 0. */
int64_t ait_ratelimit_wait(ait_ratelimit *rl);

#endif

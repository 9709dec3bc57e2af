/* SPDX-License-Identifier: Apache-2.0 */
/* Token bucket by reservation: tokens may go negative, and a negative balance is the queue of
 * callers already promised a future token; each new caller waits for its own place in it. */
#include "kube/ratelimit.h"

#include <pthread.h>

#include "core/alloc.h"

struct ait_ratelimit {
    pthread_mutex_t mu;
    double qps;
    double burst;
    double tokens;
    int64_t last_ns;
    const ait_clock *clock;
};

ait_ratelimit *ait_ratelimit_new(double qps, int burst, const ait_clock *clock)
{
    if (!(qps > 0)) {
        return NULL;
    }
    ait_ratelimit *rl = ait_calloc(1, sizeof *rl);
    pthread_mutex_init(&rl->mu, NULL);
    rl->qps = qps;
    rl->burst = burst > 0 ? burst : 1;
    rl->tokens = rl->burst;
    rl->clock = clock != NULL ? clock : ait_clock_system();
    rl->last_ns = rl->clock->mono_ns(rl->clock->ctx);
    return rl;
}

void ait_ratelimit_free(ait_ratelimit *rl)
{
    if (rl == NULL) {
        return;
    }
    pthread_mutex_destroy(&rl->mu);
    ait_free(rl);
}

int64_t ait_ratelimit_reserve_ns(ait_ratelimit *rl)
{
    if (rl == NULL) {
        return 0;
    }
    pthread_mutex_lock(&rl->mu);
    int64_t now = rl->clock->mono_ns(rl->clock->ctx);
    if (now > rl->last_ns) {
        rl->tokens += (double)(now - rl->last_ns) * rl->qps / (double)AIT_NS_PER_S;
        if (rl->tokens > rl->burst) {
            rl->tokens = rl->burst;
        }
        rl->last_ns = now;
    }
    rl->tokens -= 1.0;
    int64_t wait = 0;
    if (rl->tokens < 0) {
        wait = (int64_t)(-rl->tokens / rl->qps * (double)AIT_NS_PER_S);
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

int64_t ait_ratelimit_wait(ait_ratelimit *rl)
{
    int64_t wait = ait_ratelimit_reserve_ns(rl);
    if (wait > 0) {
        ait_time_sleep_ns(wait);
    }
    return wait;
}

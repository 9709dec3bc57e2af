/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM spend ledger in etcd (SPEC.md §4 cost guard): totals in micro-dollars (decimal int64
 * strings) under /aitask/ledger/day/<YYYY-MM-DD>/{total,provider/<name>},
 * /aitask/ledger/month/<YYYY-MM>/{total,provider/<name>} and /aitask/ledger/task/<uid>, dates in
 * UTC. Every change reads all keys it touches in one txn, then writes them in one txn guarded by
 * compare(mod_revision == what was read) on each key, retrying on a lost race: replicas and
 * restarts never lose or double-count a change. A reservation is counted when made (so two
 * replicas cannot both spend the last dollar), adjusted to the real cost by settle, or returned
 * by release; a replica that dies holding one leaves it counted (errs on the side of spending
 * less). */
#ifndef AIT_AUDIT_LEDGER_H
#define AIT_AUDIT_LEDGER_H

#include <stdint.h>

#include "audit/etcd.h"
#include "core/status.h"
#include "core/time.h"

#define AIT_LEDGER_PREFIX "/aitask/ledger/"

typedef struct ait_ledger_options {
    ait_etcd *etcd;         /* borrowed; must outlive the ledger */
    const ait_clock *clock; /* borrowed; NULL = system clock (decides the day and month) */
    int max_attempts;       /* CAS attempts per change before AIT_ERR_RETRY; default 200 */
} ait_ledger_options;

typedef struct ait_ledger ait_ledger;

/* Returns owned in *out, free with ait_ledger_free(). Thread-safe. */
ait_status ait_ledger_new(const ait_ledger_options *opts, ait_ledger **out, ait_error *err) AIT_WUR;
void ait_ledger_free(ait_ledger *l);

/* Limits in micro-dollars; a value <= 0 means no limit for that window. */
typedef struct ait_ledger_limits {
    int64_t daily;
    int64_t monthly;
    int64_t task; /* the task's budget.maxCostUSD */
} ait_ledger_limits;

/* A reservation: a public value the caller keeps until settle or release. */
typedef struct ait_ledger_reservation {
    char day[11];       /* YYYY-MM-DD it was counted on */
    char month[8];      /* YYYY-MM */
    char provider[128]; /* "" = no per-provider totals */
    char task_uid[128]; /* "" = no task total */
    int64_t amount;
    int active; /* 1 until settled or released */
} ait_ledger_reservation;

/* Counts estimate (>= 0) against today's and this month's totals (overall and, when provider
 * is non-NULL, the provider's) and the task's total (when task_uid is non-NULL). Refuses with
 * AIT_ERR_QUOTA, changing nothing, when any total would go over its limit (the message names
 * the window, the total and the limit). Fills *out. Other errors: AIT_ERR_INVALID (bad
 * arguments), AIT_ERR_PARSE (a stored total is not a number), AIT_ERR_RETRY (lost the race
 * max_attempts times), and the etcd client's (AIT_ERR_IO when etcd is unreachable). */
ait_status ait_ledger_reserve(ait_ledger *l, const char *provider, const char *task_uid,
                              int64_t estimate, const ait_ledger_limits *limits,
                              ait_ledger_reservation *out, ait_error *err) AIT_WUR;
/* Replaces the reservation's amount by actual (>= 0) in the same windows it was counted in
 * (spend that happened is recorded even over a limit). r becomes inactive. AIT_ERR_INVALID
 * when r is not active. On failure r stays active, so the call can be retried. */
ait_status ait_ledger_settle(ait_ledger *l, ait_ledger_reservation *r, int64_t actual,
                             ait_error *err) AIT_WUR;
/* Returns the whole reservation (the call was not made). r becomes inactive. */
ait_status ait_ledger_release(ait_ledger *l, ait_ledger_reservation *r, ait_error *err) AIT_WUR;

typedef struct ait_ledger_usage {
    int64_t day_total;
    int64_t month_total;
    int64_t day_provider;   /* 0 when provider is NULL */
    int64_t month_provider; /* 0 when provider is NULL */
    int64_t task;           /* 0 when task_uid is NULL */
} ait_ledger_usage;

/* Reads the current totals (one consistent snapshot) for today and this month. */
ait_status ait_ledger_usage_get(ait_ledger *l, const char *provider, const char *task_uid,
                                ait_ledger_usage *out, ait_error *err) AIT_WUR;

#endif

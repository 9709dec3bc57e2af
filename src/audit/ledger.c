/* SPDX-License-Identifier: Apache-2.0 */
/* Spend ledger: optimistic concurrency on etcd keys. Each change is one snapshot read (a txn of
 * ranges) followed by one guarded write (a txn comparing every key's mod_revision, 0 for a key
 * not yet written); a failed guard means another writer won, so re-read and try again after a
 * short random backoff. */
#include "audit/ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

#define LEDGER_MAX_KEYS 5

struct ait_ledger {
    ait_etcd *etcd;
    const ait_clock *clock;
    int max_attempts;
};

ait_status ait_ledger_new(const ait_ledger_options *opts, ait_ledger **out, ait_error *err)
{
    if (opts == NULL || opts->etcd == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ledger: an etcd client is required");
    }
    ait_ledger *l = ait_calloc(1, sizeof *l);
    l->etcd = opts->etcd;
    l->clock = opts->clock != NULL ? opts->clock : ait_clock_system();
    l->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 200;
    *out = l;
    return AIT_OK;
}

void ait_ledger_free(ait_ledger *l)
{
    ait_free(l);
}

/* Which total a key is, for limit checks and messages. */
enum scope { DAY_TOTAL, MONTH_TOTAL, DAY_PROVIDER, MONTH_PROVIDER, TASK };

typedef struct keyset {
    char *keys[LEDGER_MAX_KEYS];
    enum scope scope[LEDGER_MAX_KEYS];
    size_t n;
} keyset;

static int valid_name(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr(s, '/') == NULL && strlen(s) < 128;
}

static void keyset_build(keyset *ks, const char *day, const char *month, const char *provider,
                         const char *task_uid)
{
    ks->n = 0;
    ks->keys[ks->n] = ait_asprintf(AIT_LEDGER_PREFIX "day/%s/total", day);
    ks->scope[ks->n++] = DAY_TOTAL;
    ks->keys[ks->n] = ait_asprintf(AIT_LEDGER_PREFIX "month/%s/total", month);
    ks->scope[ks->n++] = MONTH_TOTAL;
    if (provider != NULL && provider[0] != '\0') {
        ks->keys[ks->n] = ait_asprintf(AIT_LEDGER_PREFIX "day/%s/provider/%s", day, provider);
        ks->scope[ks->n++] = DAY_PROVIDER;
        ks->keys[ks->n] = ait_asprintf(AIT_LEDGER_PREFIX "month/%s/provider/%s", month, provider);
        ks->scope[ks->n++] = MONTH_PROVIDER;
    }
    if (task_uid != NULL && task_uid[0] != '\0') {
        ks->keys[ks->n] = ait_asprintf(AIT_LEDGER_PREFIX "task/%s", task_uid);
        ks->scope[ks->n++] = TASK;
    }
}

static void keyset_free(keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        ait_free(ks->keys[i]);
    }
    ks->n = 0;
}

static void today(const ait_ledger *l, char day[11], char month[8])
{
    time_t t = (time_t)(l->clock->now_ns(l->clock->ctx) / AIT_NS_PER_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, 11, "%Y-%m-%d", &tm);
    strftime(month, 8, "%Y-%m", &tm);
}

static ait_status parse_total(const ait_etcd_kv *kv, int64_t *out, ait_error *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(kv->value, &end, 10);
    if (errno != 0 || end == kv->value || *end != '\0' ||
        (size_t)(end - kv->value) != kv->value_len) {
        return ait_error_set(err, AIT_ERR_PARSE, "ledger %s: stored total is not an integer",
                             kv->key);
    }
    *out = (int64_t)v;
    return AIT_OK;
}

/* Reads every key of ks in one snapshot: values and mod revisions (0 when absent). */
static ait_status snapshot(ait_ledger *l, const keyset *ks, int64_t *vals, int64_t *mods,
                           ait_error *err)
{
    ait_etcd_op ops[LEDGER_MAX_KEYS];
    for (size_t i = 0; i < ks->n; i++) {
        ops[i] = (ait_etcd_op){.type = AIT_ETCD_OP_RANGE, .key = ks->keys[i]};
    }
    ait_etcd_txn_result tr;
    ait_status st = ait_etcd_txn(l->etcd, NULL, 0, ops, ks->n, NULL, 0, &tr, err);
    if (st != AIT_OK) {
        return st;
    }
    if (!tr.succeeded || tr.n != ks->n) {
        st = ait_error_set(err, AIT_ERR_PARSE, "ledger: snapshot answer has %zu of %zu ranges",
                           tr.n, ks->n);
        goto out;
    }
    for (size_t i = 0; i < ks->n; i++) {
        vals[i] = 0;
        mods[i] = 0;
        if (tr.ranges[i].n > 0) {
            mods[i] = tr.ranges[i].kvs[0].mod_revision;
            if ((st = parse_total(&tr.ranges[i].kvs[0], &vals[i], err)) != AIT_OK) {
                goto out;
            }
        }
    }
out:
    ait_etcd_txn_result_clear(&tr);
    return st;
}

static int64_t limit_for(enum scope s, const ait_ledger_limits *lim)
{
    if (lim == NULL) {
        return 0;
    }
    switch (s) {
    case DAY_TOTAL:
        return lim->daily;
    case MONTH_TOTAL:
        return lim->monthly;
    case TASK:
        return lim->task;
    default:
        return 0;
    }
}

static const char *scope_name(enum scope s)
{
    static const char *names[] = {"daily", "monthly", "daily provider", "monthly provider", "task"};
    return names[s];
}

static void backoff(int attempt)
{
    /* Random, growing, capped at ~20 ms: contention among replicas resolves quickly. */
    int64_t cap = (int64_t)(attempt < 10 ? attempt + 1 : 10) * 2 * AIT_NS_PER_MS;
    ait_time_sleep_ns((int64_t)((uint64_t)rand() % (uint64_t)cap));
}

/* Adds delta to every key of ks atomically; with limits, refuses (AIT_ERR_QUOTA) if a limited
 * total would exceed its limit. */
static ait_status apply(ait_ledger *l, const keyset *ks, int64_t delta,
                        const ait_ledger_limits *limits, ait_error *err)
{
    int64_t vals[LEDGER_MAX_KEYS], mods[LEDGER_MAX_KEYS];
    char bufs[LEDGER_MAX_KEYS][24];
    for (int attempt = 0; attempt < l->max_attempts; attempt++) {
        ait_status st = snapshot(l, ks, vals, mods, err);
        if (st != AIT_OK) {
            return st;
        }
        ait_etcd_compare cmp[LEDGER_MAX_KEYS];
        ait_etcd_op put[LEDGER_MAX_KEYS];
        for (size_t i = 0; i < ks->n; i++) {
            int64_t nv;
            if (__builtin_add_overflow(vals[i], delta, &nv)) {
                return ait_error_set(err, AIT_ERR_INVALID, "ledger %s: total overflows",
                                     ks->keys[i]);
            }
            int64_t lim = limit_for(ks->scope[i], limits);
            if (lim > 0 && delta > 0 && nv > lim) {
                return ait_error_set(err, AIT_ERR_QUOTA,
                                     "%s budget exceeded: spent %" PRId64 " + estimate %" PRId64
                                     " > limit %" PRId64 " micro-USD (%s)",
                                     scope_name(ks->scope[i]), vals[i], delta, lim, ks->keys[i]);
            }
            snprintf(bufs[i], sizeof bufs[i], "%" PRId64, nv);
            cmp[i] = (ait_etcd_compare){.key = ks->keys[i],
                                        .target = AIT_ETCD_CMP_MOD,
                                        .result = AIT_ETCD_EQUAL,
                                        .value = mods[i]};
            put[i] = (ait_etcd_op){.type = AIT_ETCD_OP_PUT,
                                   .key = ks->keys[i],
                                   .value = bufs[i],
                                   .value_len = strlen(bufs[i])};
        }
        ait_etcd_txn_result tr;
        st = ait_etcd_txn(l->etcd, cmp, ks->n, put, ks->n, NULL, 0, &tr, err);
        if (st != AIT_OK) {
            return st;
        }
        int ok = tr.succeeded;
        ait_etcd_txn_result_clear(&tr);
        if (ok) {
            return AIT_OK;
        }
        backoff(attempt);
    }
    return ait_error_set(err, AIT_ERR_RETRY, "ledger: lost the compare-and-swap race %d times",
                         l->max_attempts);
}

ait_status ait_ledger_reserve(ait_ledger *l, const char *provider, const char *task_uid,
                              int64_t estimate, const ait_ledger_limits *limits,
                              ait_ledger_reservation *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    if (estimate < 0 || (provider != NULL && !valid_name(provider)) ||
        (task_uid != NULL && !valid_name(task_uid))) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "ledger reserve: estimate must be >= 0, names non-empty without '/'");
    }
    ait_ledger_reservation r = {0};
    today(l, r.day, r.month);
    snprintf(r.provider, sizeof r.provider, "%s", provider ? provider : "");
    snprintf(r.task_uid, sizeof r.task_uid, "%s", task_uid ? task_uid : "");
    keyset ks;
    keyset_build(&ks, r.day, r.month, r.provider, r.task_uid);
    ait_status st = apply(l, &ks, estimate, limits, err);
    keyset_free(&ks);
    if (st == AIT_OK) {
        r.amount = estimate;
        r.active = 1;
        *out = r;
    }
    return st;
}

static ait_status adjust(ait_ledger *l, ait_ledger_reservation *r, int64_t delta, ait_error *err)
{
    if (r == NULL || !r->active) {
        return ait_error_set(err, AIT_ERR_INVALID, "ledger: reservation is not active");
    }
    keyset ks;
    keyset_build(&ks, r->day, r->month, r->provider, r->task_uid);
    ait_status st = delta == 0 ? AIT_OK : apply(l, &ks, delta, NULL, err);
    keyset_free(&ks);
    if (st == AIT_OK) {
        r->active = 0;
    }
    return st;
}

ait_status ait_ledger_settle(ait_ledger *l, ait_ledger_reservation *r, int64_t actual,
                             ait_error *err)
{
    if (actual < 0) {
        return ait_error_set(err, AIT_ERR_INVALID, "ledger settle: cost must be >= 0");
    }
    return adjust(l, r, r != NULL ? actual - r->amount : 0, err);
}

ait_status ait_ledger_release(ait_ledger *l, ait_ledger_reservation *r, ait_error *err)
{
    return adjust(l, r, r != NULL ? -r->amount : 0, err);
}

ait_status ait_ledger_usage_get(ait_ledger *l, const char *provider, const char *task_uid,
                                ait_ledger_usage *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    char day[11], month[8];
    today(l, day, month);
    keyset ks;
    keyset_build(&ks, day, month, provider, task_uid);
    int64_t vals[LEDGER_MAX_KEYS], mods[LEDGER_MAX_KEYS];
    ait_status st = snapshot(l, &ks, vals, mods, err);
    for (size_t i = 0; st == AIT_OK && i < ks.n; i++) {
        switch (ks.scope[i]) {
        case DAY_TOTAL:
            out->day_total = vals[i];
            break;
        case MONTH_TOTAL:
            out->month_total = vals[i];
            break;
        case DAY_PROVIDER:
            out->day_provider = vals[i];
            break;
        case MONTH_PROVIDER:
            out->month_provider = vals[i];
            break;
        case TASK:
            out->task = vals[i];
            break;
        }
    }
    keyset_free(&ks);
    return st;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Auditor glue; see auditor.h. The head of each chain is cached in memory (uid -> head, last
 * action and attempt); on a miss (first use, or after a restart) the chain is read back from
 * etcd, so the cache is only ever a copy of what etcd holds. Appends to one chain are
 * serialised by a per-auditor mutex held across the etcd write: the chain's order is the
 * order of the writes. */
#include "reconcile/auditor.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/aitask.h"
#include "audit/chain.h"
#include "audit/crypto.h"
#include "audit/etcd.h"
#include "audit/ledger.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "metrics/registry.h"

#define HEADS_MAX 65536

typedef struct head_entry {
    char *uid;
    ait_audit_head head;
    char last_action[32];
    int last_attempt;
} head_entry;

struct ait_auditor {
    ait_etcd *etcd;
    ait_audit_key *key;
    ait_audit_chain *chain;
    ait_ledger *ledger;
    ait_metrics_std *m;
    char *actor;
    int64_t daily_micro;
    int64_t monthly_micro;
    pthread_mutex_t mu;
    head_entry *heads;
    size_t n_heads;
};

ait_status ait_auditor_new(const ait_controller_config *cfg, const char *actor,
                           ait_metrics_std *metrics, ait_auditor **out, ait_error *err)
{
    *out = NULL;
    const char *endpoint = ait_json_str(cfg->raw, "audit.etcdEndpoint");
    if (endpoint == NULL) {
        return AIT_OK;
    }
    ait_auditor *a = ait_calloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->m = metrics;
    a->actor = ait_strdup(actor);
    ait_etcd_options eo = {
        .endpoint = endpoint,
        .ca_file = ait_json_str(cfg->raw, "audit.caFile"),
        .cert_file = ait_json_str(cfg->raw, "audit.certFile"),
        .key_file = ait_json_str(cfg->raw, "audit.clientKeyFile"),
        .timeout_ms = ait_json_int(cfg->raw, "audit.timeoutMs", 3000),
    };
    ait_status st = ait_etcd_new(&eo, &a->etcd, err);
    const char *key_file = ait_json_str(cfg->raw, "audit.keyFile");
    if (st == AIT_OK && key_file == NULL) {
        st = ait_error_set(err, AIT_ERR_INVALID,
                           "audit.keyFile is required: prompts and responses are stored "
                           "encrypted with AES-256-GCM");
    }
    if (st == AIT_OK) {
        st = ait_audit_key_load_file(key_file, &a->key, err);
    }
    if (st == AIT_OK) {
        ait_audit_options ao = {.etcd = a->etcd, .key = a->key};
        st = ait_audit_chain_new(&ao, &a->chain, err);
    }
    if (st == AIT_OK) {
        ait_ledger_options lo = {.etcd = a->etcd};
        st = ait_ledger_new(&lo, &a->ledger, err);
    }
    const char *d = ait_json_str(cfg->raw, "budgets.dailyUSD");
    const char *mo = ait_json_str(cfg->raw, "budgets.monthlyUSD");
    if (st == AIT_OK && ((d != NULL && ait_usd_parse(d, &a->daily_micro) != AIT_OK) ||
                         (mo != NULL && ait_usd_parse(mo, &a->monthly_micro) != AIT_OK))) {
        st = ait_error_set(err, AIT_ERR_INVALID,
                           "budgets.dailyUSD and budgets.monthlyUSD must be decimal strings "
                           "such as \"25.00\"");
    }
    if (st != AIT_OK) {
        ait_error_wrap(err, "audit config");
        ait_auditor_free(a);
        return AIT_ERR_INVALID;
    }
    *out = a;
    return AIT_OK;
}

void ait_auditor_free(ait_auditor *a)
{
    if (a == NULL) {
        return;
    }
    ait_ledger_free(a->ledger);
    ait_audit_chain_free(a->chain);
    ait_audit_key_free(a->key);
    ait_etcd_free(a->etcd);
    for (size_t i = 0; i < a->n_heads; i++) {
        ait_free(a->heads[i].uid);
    }
    ait_free(a->heads);
    ait_free(a->actor);
    pthread_mutex_destroy(&a->mu);
    ait_free(a);
}

/* Returns the cached head of uid, loading it from etcd on a miss. Called with a->mu held. */
static ait_status head_of(ait_auditor *a, const char *uid, head_entry **out, ait_error *err)
{
    for (size_t i = 0; i < a->n_heads; i++) {
        if (strcmp(a->heads[i].uid, uid) == 0) {
            *out = &a->heads[i];
            return AIT_OK;
        }
    }
    ait_audit_records recs;
    memset(&recs, 0, sizeof(recs));
    ait_status st = ait_audit_list(a->etcd, uid, &recs, err);
    if (st != AIT_OK) {
        return st;
    }
    if (a->n_heads >= HEADS_MAX) {
        /* Forget the oldest heads: they are re-read from etcd when needed. */
        for (size_t i = 0; i < a->n_heads / 2; i++) {
            ait_free(a->heads[i].uid);
        }
        memmove(a->heads, a->heads + a->n_heads / 2,
                (a->n_heads - a->n_heads / 2) * sizeof(head_entry));
        a->n_heads -= a->n_heads / 2;
    }
    a->heads = ait_realloc(a->heads, (a->n_heads + 1) * sizeof(head_entry));
    head_entry *h = &a->heads[a->n_heads++];
    memset(h, 0, sizeof(*h));
    h->uid = ait_strdup(uid);
    if (recs.n > 0) {
        json_object *last = recs.v[recs.n - 1].entry;
        h->head.seq = ait_json_int(last, "seq", (int64_t)recs.n);
        const char *hash = ait_json_str(last, "hash");
        snprintf(h->head.hash, sizeof(h->head.hash), "%s", hash ? hash : "");
        const char *action = ait_json_str(last, "action");
        snprintf(h->last_action, sizeof(h->last_action), "%s", action ? action : "");
        h->last_attempt = (int)ait_json_int(last, "details.attempt", 0);
    }
    ait_audit_records_clear(&recs);
    *out = h;
    return AIT_OK;
}

static ait_status append_locked(ait_auditor *a, head_entry *h, const ait_audit_entry *e,
                                int attempt, ait_error *err)
{
    ait_audit_head next = h->head;
    ait_status st = ait_audit_append(a->chain, e, &next, err);
    if (st != AIT_OK) {
        if (a->m != NULL) {
            ait_metric_inc(ait_metric_family_with(a->m->audit_write_errors_total));
        }
        /* The chain may have moved (another writer, or our write landed but the answer was
         * lost): drop the cached head so the next call re-reads it from etcd. */
        h->uid[0] = '\0';
        return st;
    }
    h->head = next;
    snprintf(h->last_action, sizeof(h->last_action), "%s", e->action);
    h->last_attempt = attempt;
    if (a->m != NULL) {
        ait_metric_inc(ait_metric_family_with(a->m->audit_entries_total));
    }
    return AIT_OK;
}

static ait_status record(void *ctx, json_object *task, const char *action, int attempt,
                         json_object *details, ait_error *err)
{
    ait_auditor *a = ctx;
    const char *uid = ait_obj_uid(task);
    pthread_mutex_lock(&a->mu);
    head_entry *h = NULL;
    ait_status st = head_of(a, uid, &h, err);
    if (st == AIT_OK && strcmp(h->last_action, action) == 0 && h->last_attempt == attempt) {
        pthread_mutex_unlock(&a->mu); /* already written before a crash or a conflict */
        return AIT_OK;
    }
    if (st == AIT_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "attempt", json_object_new_int(attempt));
        if (details != NULL) {
            json_object_object_foreach(details, k, v)
            {
                json_object_object_add(d, k, json_object_get(v));
            }
        }
        char tid[33];
        ait_reconcile_trace_id(uid, tid);
        ait_audit_entry e = {
            .action = action,
            .namespace_ = ait_obj_namespace(task),
            .name = ait_obj_name(task),
            .uid = uid,
            .actor = a->actor,
            .trace_id = tid,
            .details = d,
        };
        st = append_locked(a, h, &e, attempt, err);
        json_object_put(d);
    }
    pthread_mutex_unlock(&a->mu);
    return st;
}

static ait_status head(void *ctx, const char *uid, int64_t *entries, char out[65], ait_error *err)
{
    ait_auditor *a = ctx;
    pthread_mutex_lock(&a->mu);
    head_entry *h = NULL;
    ait_status st = head_of(a, uid, &h, err);
    if (st == AIT_OK) {
        *entries = h->head.seq;
        snprintf(out, 65, "%s", h->head.hash);
    }
    pthread_mutex_unlock(&a->mu);
    return st;
}

ait_reconcile_audit ait_auditor_seam(ait_auditor *a)
{
    ait_reconcile_audit s = {a, a ? record : NULL, a ? head : NULL};
    return s;
}

ait_status ait_auditor_record_heal(ait_auditor *a, const ait_heal_job *job,
                                   const ait_heal_result *res, int64_t *seq, ait_error *err)
{
    *seq = -1;
    pthread_mutex_lock(&a->mu);
    head_entry *h = NULL;
    ait_status st = head_of(a, job->uid, &h, err);
    char tid[33];
    ait_reconcile_trace_id(job->uid, tid);
    for (size_t i = 0; st == AIT_OK && i < res->n_calls; i++) {
        const ait_heal_call *c = &res->calls[i];
        json_object *d = json_object_new_object();
        json_object_object_add(d, "attempt", json_object_new_int(job->next_attempt));
        json_object_object_add(d, "call", json_object_new_int((int)i));
        json_object_object_add(d, "httpStatus", json_object_new_int(c->http_status));
        json_object_object_add(d, "outcome", json_object_new_string(c->outcome ? c->outcome : ""));
        ait_audit_entry req = {
            .action = AIT_AUDIT_HEAL_REQUEST,
            .namespace_ = job->ns,
            .name = job->name,
            .uid = job->uid,
            .actor = a->actor,
            .provider = c->provider,
            .model = c->model,
            .trace_id = tid,
            .prompt = c->request_body,
            .prompt_len = c->request_body ? strlen(c->request_body) : 0,
            .details = d,
        };
        st = append_locked(a, h, &req, job->next_attempt, err);
        if (st == AIT_OK) {
            ait_audit_entry resp = {
                .action = AIT_AUDIT_HEAL_RESPONSE,
                .namespace_ = job->ns,
                .name = job->name,
                .uid = job->uid,
                .actor = a->actor,
                .provider = c->provider,
                .model = c->model,
                .prompt_tokens = c->prompt_tokens,
                .completion_tokens = c->completion_tokens,
                .cost_micro_usd = c->cost_micro,
                .trace_id = tid,
                .response = c->response_body,
                .response_len = c->response_body ? strlen(c->response_body) : 0,
                .details = d,
            };
            st = append_locked(a, h, &resp, job->next_attempt, err);
        }
        json_object_put(d);
    }
    if (st == AIT_OK) {
        *seq = h->head.seq;
    }
    pthread_mutex_unlock(&a->mu);
    return st;
}

ait_status ait_auditor_record_secret(ait_auditor *a, const char *ns, const char *name,
                                     const char *uid, const char *path, int64_t version,
                                     int from_cache, int attempt, ait_error *err)
{
    const char *chain_uid = uid ? uid : "provider-keys";
    pthread_mutex_lock(&a->mu);
    head_entry *h = NULL;
    ait_status st = head_of(a, chain_uid, &h, err);
    if (st == AIT_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "attempt", json_object_new_int(attempt));
        json_object_object_add(d, "path", json_object_new_string(path));
        json_object_object_add(d, "version", json_object_new_int64(version));
        json_object_object_add(d, "fromCache", json_object_new_boolean(from_cache));
        char tid[33] = "";
        if (uid != NULL) {
            ait_reconcile_trace_id(uid, tid);
        }
        ait_audit_entry e = {
            .action = AIT_AUDIT_SECRET_READ,
            .trace_id = tid[0] ? tid : NULL,
            .namespace_ = ns ? ns : "",
            .name = name ? name : "",
            .uid = chain_uid,
            .actor = a->actor,
            .details = d,
        };
        st = append_locked(a, h, &e, attempt, err);
        json_object_put(d);
    }
    pthread_mutex_unlock(&a->mu);
    return st;
}

/* ---- the ledger as the heal engine's budget ---- */

static ait_status reserve(void *ctx, const char *provider, int64_t estimate, void **handle)
{
    ait_auditor *a = ctx;
    ait_ledger_reservation *r = ait_calloc(1, sizeof(*r));
    ait_ledger_limits lim = {.daily = a->daily_micro, .monthly = a->monthly_micro};
    ait_error err = {0};
    ait_status st = ait_ledger_reserve(a->ledger, provider, NULL, estimate, &lim, r, &err);
    if (st != AIT_OK) {
        if (st != AIT_ERR_QUOTA) {
            AIT_LOG_ERROR(err.msg, "ledger reservation failed", "provider", provider);
        }
        ait_free(r);
        return st;
    }
    *handle = r;
    return AIT_OK;
}

static void report_usage(ait_auditor *a, const char *provider)
{
    ait_ledger_usage u;
    ait_error err = {0};
    if (a->m == NULL || ait_ledger_usage_get(a->ledger, provider, NULL, &u, &err) != AIT_OK) {
        return;
    }
    struct {
        const char *window;
        int64_t used, limit;
    } w[2] = {{"daily", u.day_total, a->daily_micro}, {"monthly", u.month_total, a->monthly_micro}};
    for (int i = 0; i < 2; i++) {
        if (w[i].limit <= 0) {
            continue;
        }
        double ratio = (double)w[i].used / (double)w[i].limit;
        ait_metric_set(ait_metric_family_with(a->m->budget_used_ratio, w[i].window), ratio);
        if (ratio >= 0.8) {
            char pct[16];
            snprintf(pct, sizeof(pct), "%.0f", ratio * 100);
            AIT_LOG_ERROR("budget above 80%", "LLM spend is close to its budget", "window",
                          w[i].window, "percent", pct);
        }
    }
}

static void settle(void *ctx, void *handle, int64_t actual)
{
    ait_auditor *a = ctx;
    ait_ledger_reservation *r = handle;
    ait_error err = {0};
    if (ait_ledger_settle(a->ledger, r, actual, &err) != AIT_OK) {
        AIT_LOG_ERROR(err.msg, "ledger settlement failed; the reservation stays counted");
    }
    report_usage(a, r->provider[0] ? r->provider : NULL);
    ait_free(r);
}

static void release(void *ctx, void *handle)
{
    ait_auditor *a = ctx;
    ait_ledger_reservation *r = handle;
    ait_error err = {0};
    if (ait_ledger_release(a->ledger, r, &err) != AIT_OK) {
        AIT_LOG_ERROR(err.msg, "ledger release failed; the reservation stays counted");
    }
    ait_free(r);
}

ait_heal_budget ait_auditor_budget(ait_auditor *a)
{
    ait_heal_budget b = {a, reserve, settle, release};
    if (a == NULL) {
        b.reserve = NULL;
        b.settle = NULL;
        b.release = NULL;
    }
    return b;
}

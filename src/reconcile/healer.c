/* SPDX-License-Identifier: Apache-2.0 */
/* Healer glue; see healer.h. A job's strings are copied at submit, since the engine calls back
 * on its own thread long after the reconcile that asked has returned. */
#include "reconcile/healer.h"

#include <stdio.h>
#include <string.h>

#include "api/aitask.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "metrics/registry.h"

#define NOTES_MAX 2048

struct ait_healer {
    ait_heal_engine *engine;
    ait_tracer *tracer;
    ait_metrics_std *m;
    ait_healer_audit audit;
    ait_heal_provider_config *providers;
    size_t n_providers;
    /* One heal per task at a time is the reconciler's claim (see reconciler.c); the engine
     * refuses a second job for the same namespace/name. */
};

typedef struct pending {
    ait_healer *h;
    ait_span *span; /* the heal; handed from the submitting worker to the pool thread */
    int64_t start_ns;
    char traceparent[64];
    ait_reconciler *r;
    ait_heal_job job; /* strings owned */
    char *failing_code;
    char **providers;
} pending;

static void pending_free(pending *p)
{
    ait_span_end(p->span);
    ait_free((char *)p->job.key);
    ait_free((char *)p->job.ns);
    ait_free((char *)p->job.name);
    ait_free((char *)p->job.uid);
    ait_free((char *)p->job.runtime);
    ait_free(p->failing_code);
    ait_free((char *)p->job.error_output);
    ait_free((char *)p->job.prompt);
    ait_free((char *)p->job.model);
    for (size_t i = 0; i < p->job.n_providers; i++) {
        ait_free(p->providers[i]);
    }
    ait_free(p->providers);
    ait_free(p);
}

static ait_status parse_provider(json_object *o, size_t i, ait_heal_provider_config *pc,
                                 ait_error *err)
{
    memset(pc, 0, sizeof(*pc));
    pc->name = ait_json_str(o, "name");
    const char *type = ait_json_str(o, "type");
    if (pc->name == NULL || type == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "providers[%zu] needs name and type", i);
    }
    if (ait_heal_provider_type_parse(type, &pc->type) != AIT_OK) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "providers[%zu].type \"%s\" is not one of openai, anthropic, gemini, "
                             "mistral, groq, ollama, openai-compatible",
                             i, type);
    }
    pc->base_url = ait_json_str(o, "baseURL");
    pc->model = ait_json_str(o, "model");
    pc->api_key_file = ait_json_str(o, "apiKeyFile");
    pc->connect_timeout_ms = ait_json_int(o, "connectTimeoutMs", 0);
    pc->timeout_ms = ait_json_int(o, "timeoutMs", 0);
    pc->price_input_per_mtok = ait_json_str(o, "priceInputPerMTok");
    pc->price_output_per_mtok = ait_json_str(o, "priceOutputPerMTok");
    pc->max_completion_tokens = (int)ait_json_int(o, "maxCompletionTokens", 0);
    return AIT_OK;
}

ait_status ait_healer_new(const ait_controller_config *cfg, ait_metrics_std *metrics,
                          ait_heal_key_source keys, ait_heal_budget budget, ait_healer_audit audit,
                          ait_healer **out, ait_error *err)
{
    *out = NULL;
    json_object *provs = ait_json_array(cfg->raw, "providers");
    size_t n = provs ? json_object_array_length(provs) : 0;
    if (n == 0) {
        return AIT_OK;
    }
    ait_healer *h = ait_calloc(1, sizeof(*h));
    h->m = metrics;
    h->audit = audit;
    h->providers = ait_calloc(n, sizeof(ait_heal_provider_config));
    h->n_providers = n;
    ait_status st = AIT_OK;
    for (size_t i = 0; i < n && st == AIT_OK; i++) {
        st = parse_provider(json_object_array_get_idx(provs, i), i, &h->providers[i], err);
    }
    if (st == AIT_OK) {
        ait_heal_config hc = {
            .providers = h->providers,
            .n_providers = n,
            .default_order = (const char *const *)cfg->default_providers,
            .n_default_order = cfg->n_default_providers,
            .workers = cfg->heal_concurrency > 0 ? cfg->heal_concurrency : 4,
            .breaker_cooldown_ms = ait_json_int(cfg->raw, "healing.circuitCooldownMs", 0),
            .keys = keys,
            .budget = budget,
            .ca_file = ait_json_str(cfg->raw, "healing.caFile"),
        };
        st = ait_heal_engine_new(&hc, &h->engine, err);
    }
    if (st != AIT_OK) {
        ait_error_wrap(err, "config providers");
        ait_healer_free(h);
        return AIT_ERR_INVALID;
    }
    *out = h;
    return AIT_OK;
}

void ait_healer_free(ait_healer *h)
{
    if (h == NULL) {
        return;
    }
    ait_heal_engine_free(h->engine);
    ait_free(h->providers);
    ait_free(h);
}

void ait_healer_set_tracer(ait_healer *h, ait_tracer *t)
{
    if (h != NULL) {
        h->tracer = t;
    }
}

/* One CLIENT span per provider request, children of the heal span, laid out from the heal's
 * start with each request's measured latency. */
static void trace_calls(pending *p, const ait_heal_result *res)
{
    if (p->span == NULL) {
        return;
    }
    ait_span_ctx hc = ait_span_context(p->span);
    int64_t t = p->start_ns;
    for (size_t i = 0; i < res->n_calls; i++) {
        const ait_heal_call *c = &res->calls[i];
        char name[160];
        snprintf(name, sizeof(name), "provider %s", c->provider ? c->provider : "?");
        ait_span *cs = ait_span_start(p->h->tracer, name, AIT_SPAN_KIND_CLIENT, &hc);
        ait_span_set_attr_str(cs, "gen_ai.system", c->provider ? c->provider : "");
        ait_span_set_attr_str(cs, "gen_ai.request.model", c->model ? c->model : "");
        ait_span_set_attr_int(cs, "http.response.status_code", c->http_status);
        ait_span_set_attr_int(cs, "gen_ai.usage.input_tokens", c->prompt_tokens);
        ait_span_set_attr_int(cs, "gen_ai.usage.output_tokens", c->completion_tokens);
        ait_span_set_attr_str(cs, "aitask.outcome", c->outcome ? c->outcome : "");
        if (c->outcome == NULL || strcmp(c->outcome, "ok") != 0) {
            ait_span_set_error(cs, c->outcome ? c->outcome : "failed");
        }
        int64_t dur = c->latency_ms * AIT_NS_PER_MS;
        ait_span_end_at(cs, t, t + dur);
        t += dur;
    }
}

ait_heal_engine *ait_healer_engine(ait_healer *h)
{
    return h->engine;
}

static json_object *short_str(const char *s)
{
    return json_object_new_string(ait_tail_utf8(s ? s : "", NOTES_MAX));
}

static void observe(ait_healer *h, const ait_heal_result *res)
{
    if (h->m == NULL) {
        return;
    }
    for (size_t i = 0; i < res->n_calls; i++) {
        const ait_heal_call *c = &res->calls[i];
        char code[16];
        snprintf(code, sizeof(code), "%d", c->http_status);
        ait_metric_inc(ait_metric_family_with(h->m->provider_requests_total, c->provider,
                                              c->http_status ? code : "error"));
        ait_metric_observe(
            ait_metric_family_with(h->m->provider_request_duration_seconds, c->provider),
            (double)c->latency_ms / 1000.0);
        if (c->prompt_tokens > 0 || c->completion_tokens > 0) {
            ait_metric_add(
                ait_metric_family_with(h->m->llm_tokens_total, c->provider, c->model, "prompt"),
                (double)c->prompt_tokens);
            ait_metric_add(
                ait_metric_family_with(h->m->llm_tokens_total, c->provider, c->model, "completion"),
                (double)c->completion_tokens);
        }
        if (c->cost_micro > 0) {
            ait_metric_add(ait_metric_family_with(h->m->llm_cost_usd_total, c->provider, c->model),
                           (double)c->cost_micro / 1e6);
        }
    }
    /* The time a failover cost: every failed request to that provider (a hang counts whole,
     * up to its timeout) plus the gap until the next provider was asked (SPEC.md §4). */
    for (size_t i = 0; i < res->n_failovers; i++) {
        const ait_heal_failover *f = &res->failovers[i];
        if (f->failover_us < 0) {
            continue;
        }
        double secs = (double)f->failover_us / 1e6;
        for (size_t k = 0; k < res->n_calls; k++) {
            const ait_heal_call *c = &res->calls[k];
            if (c->provider != NULL && strcmp(c->provider, f->provider) == 0 &&
                (c->outcome == NULL || strcmp(c->outcome, "ok") != 0)) {
                secs += (double)c->latency_ms / 1000.0;
            }
        }
        ait_metric_observe(ait_metric_family_with(h->m->provider_failover_seconds), secs);
    }
    const char *who = res->provider ? res->provider : "none";
    ait_metric_inc(ait_metric_family_with(h->m->heals_total, who,
                                          res->failure == AIT_HEAL_OK ? "success" : "error"));
    for (size_t i = 0; i < h->n_providers; i++) {
        int state = ait_heal_engine_circuit_state(h->engine, h->providers[i].name);
        ait_metric_set(ait_metric_family_with(h->m->provider_circuit_open, h->providers[i].name),
                       state == 1 ? 1.0 : 0.0);
    }
}

static void done_cb(void *ctx, const char *key, ait_heal_result *res)
{
    (void)key;
    pending *p = ctx;
    ait_healer *h = p->h;
    observe(h, res);
    trace_calls(p, res);
    if (p->span != NULL) {
        ait_span_set_attr_str(p->span, "aitask.heal.provider", res->provider ? res->provider : "");
        ait_span_set_attr_int(p->span, "aitask.heal.failovers", (int64_t)res->n_failovers);
        if (res->failure != AIT_HEAL_OK) {
            ait_span_set_error(p->span, ait_heal_failure_str(res->failure));
        }
        ait_span_end(p->span);
        p->span = NULL;
    }
    ait_heal_outcome o = {0};
    int64_t audit_seq = -1;
    ait_error aerr = {0};
    if (h->audit.record != NULL &&
        h->audit.record(h->audit.ctx, &p->job, res, &audit_seq, &aerr) != AIT_OK) {
        /* Fail closed: no heal is applied that the audit log does not hold. */
        o.ok = 0;
        o.reason = "AuditUnavailable";
        o.message = aerr.msg;
        o.cost_micro = res->cost_micro;
        AIT_LOG_ERROR(aerr.msg, "audit of a heal failed; not applying it", "object", p->job.key);
        ait_reconciler_heal_done(p->r, &p->job, &o);
        ait_heal_result_free(res);
        pending_free(p);
        return;
    }
    json_object *summary = NULL;
    if (res->failure == AIT_HEAL_OK) {
        summary = json_object_new_object();
        json_object_object_add(summary, "provider", json_object_new_string(res->provider));
        json_object_object_add(summary, "model",
                               json_object_new_string(res->model ? res->model : ""));
        json_object *fo = json_object_new_array();
        for (size_t i = 0; i < res->n_failovers; i++) {
            json_object *f = json_object_new_object();
            json_object_object_add(f, "provider",
                                   json_object_new_string(res->failovers[i].provider));
            json_object_object_add(f, "error", short_str(res->failovers[i].error));
            json_object_array_add(fo, f);
        }
        json_object_object_add(summary, "failovers", fo);
        json_object_object_add(summary, "promptTokens", json_object_new_int64(res->prompt_tokens));
        json_object_object_add(summary, "completionTokens",
                               json_object_new_int64(res->completion_tokens));
        char usd[40];
        json_object_object_add(
            summary, "costUSD",
            json_object_new_string(ait_usd_format(res->cost_micro, usd, sizeof(usd))));
        json_object_object_add(summary, "latencyMs", json_object_new_int64(res->latency_ms));
        json_object_object_add(summary, "architectNotes", short_str(res->architect_notes));
        json_object_object_add(summary, "bugHunterNotes", short_str(res->bug_hunter_notes));
        json_object_object_add(summary, "reasoning", short_str(res->consensus_reasoning));
        if (audit_seq >= 0) {
            json_object_object_add(summary, "auditSeq", json_object_new_int64(audit_seq));
        }
        o.ok = 1;
        o.code = res->consensus_code;
        o.summary = summary;
        o.cost_micro = res->cost_micro;
    } else {
        o.ok = 0;
        o.reason = ait_heal_failure_str(res->failure);
        o.message = res->message ? res->message : o.reason;
        o.cost_micro = res->cost_micro;
    }
    AIT_LOG_INFO(1, o.ok ? "heal succeeded" : "heal failed", "object", p->job.key, "provider",
                 res->provider, "reason", o.ok ? NULL : o.reason);
    /* heal_done persists the outcome, then releases the task's claim and requeues it. */
    ait_reconciler_heal_done(p->r, &p->job, &o);
    json_object_put(summary);
    ait_heal_result_free(res);
    pending_free(p);
}

static ait_status submit(void *ctx, ait_reconciler *r, const ait_heal_job *job)
{
    ait_healer *h = ctx;
    pending *p = ait_calloc(1, sizeof(*p));
    p->h = h;
    p->r = r;
    p->job = *job;
    p->job.key = ait_strdup(job->key);
    p->job.ns = ait_strdup(job->ns);
    p->job.name = ait_strdup(job->name);
    p->job.uid = ait_strdup(job->uid);
    p->job.runtime = ait_strdup(job->runtime);
    p->failing_code = ait_strdup(job->failing_code);
    p->job.failing_code = p->failing_code;
    p->job.error_output = ait_strdup(job->error_output);
    p->job.prompt = ait_strdup(job->prompt);
    p->job.model = ait_strdup(job->model);
    p->providers = ait_calloc(job->n_providers + 1, sizeof(char *));
    for (size_t i = 0; i < job->n_providers; i++) {
        p->providers[i] = ait_strdup(job->providers[i]);
    }
    p->job.providers = p->providers;
    p->job.trace_id = NULL; /* borrowed from the reconcile; not valid after submit */
    p->job.parent_span_id = NULL;
    p->span = ait_span_start_in_trace(h->tracer, "heal", AIT_SPAN_KIND_INTERNAL, job->trace_id,
                                      job->parent_span_id);
    p->start_ns = ait_time_now_ns();
    ait_span_set_attr_int(p->span, "aitask.attempt", job->next_attempt);
    if (p->span != NULL) {
        ait_span_ctx sc = ait_span_context(p->span);
        if (ait_traceparent_format(&sc, p->traceparent, sizeof(p->traceparent)) != AIT_OK) {
            p->traceparent[0] = '\0';
        }
    }
    ait_heal_request req = {
        .runtime = job->runtime,
        .code = job->failing_code,
        .error_tail = job->error_output,
        .attempt = job->next_attempt - 1,
        .providers = (const char *const *)p->providers,
        .n_providers = job->n_providers,
        .model = job->model,
        .temperature = job->temperature,
        .prompt = job->prompt,
        .budget_max_micro = job->max_cost_micro,
        .budget_spent_micro = job->spent_micro,
        .traceparent = p->traceparent[0] ? p->traceparent : NULL,
    };
    ait_error err = {0};
    ait_status st = ait_heal_submit(h->engine, job->key, &req, done_cb, p, &err);
    if (st != AIT_OK) {
        pending_free(p); /* AIT_ERR_EXISTS: a heal for this namespace/name is still queued */
    }
    return st;
}

ait_reconcile_healer ait_healer_seam(ait_healer *h)
{
    ait_reconcile_healer s = {h, h ? submit : NULL};
    return s;
}

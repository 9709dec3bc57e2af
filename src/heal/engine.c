/* SPDX-License-Identifier: Apache-2.0 */
/* The healing engine (see heal.h): a bounded pool of worker threads, each with its own curl
 * handle, running heals with failover in order. Invariants: breaker state and the job list are
 * only touched under e->mu; a provider is never called while its circuit is open, and a
 * half-open circuit lets exactly one probe through; no API key is ever logged or kept in a
 * result. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/log.h"
#include "heal/adapter.h"
#include "heal/heal.h"

enum { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 };

typedef struct provider {
    char *name;
    ait_heal_provider_type type;
    char *base_url;
    char *model;
    char *key_file;
    int64_t connect_ms;
    int64_t timeout_ms;
    int64_t price_in; /* micro-dollars per million tokens */
    int64_t price_out;
    int max_tokens;
    ait_heal_output_mode mode; /* under e->mu: AUTO may fall back once */
    /* circuit breaker, under e->mu */
    int state;
    int consecutive;
    int64_t open_until;
    int64_t skip_until; /* Retry-After */
    int probe_inflight;
} provider;

typedef struct job {
    struct job *next;
    char *key;
    ait_heal_request req; /* deep copy, owned */
    char **names;         /* owned copy of req.providers */
    ait_heal_done_cb done;
    void *ctx;
    int running;
} job;

struct ait_heal_engine {
    provider *p;
    size_t np;
    size_t *def;
    size_t ndef;
    int breaker_failures;
    int64_t cooldown_ns;
    int64_t quota_open_ns;
    int invalid_retries;
    int64_t max_body;
    int64_t min_speed;
    int64_t min_speed_window_ns;
    char *ca_file;
    const ait_clock *clock;
    ait_heal_key_source keys;
    ait_heal_budget budget;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *jobs; /* queued and running, in submit order */
    size_t queued;
    size_t queue_max;
    atomic_int stopping;
    pthread_t *threads;
    int nthreads;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static const char *const type_names[AIT_HEAL_TYPE_COUNT_] = {
    "openai", "anthropic", "gemini", "mistral", "groq", "ollama", "openai-compatible"};

ait_status ait_heal_provider_type_parse(const char *s, ait_heal_provider_type *out)
{
    for (int i = 0; s != NULL && i < AIT_HEAL_TYPE_COUNT_; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (ait_heal_provider_type)i;
            return AIT_OK;
        }
    }
    return AIT_ERR_INVALID;
}

const char *ait_heal_provider_type_str(ait_heal_provider_type t)
{
    return (int)t >= 0 && t < AIT_HEAL_TYPE_COUNT_ ? type_names[t] : "unknown";
}

const char *ait_heal_failure_str(ait_heal_failure f)
{
    switch (f) {
    case AIT_HEAL_OK:
        return "";
    case AIT_HEAL_PROVIDERS_UNAVAILABLE:
        return "ProvidersUnavailable";
    case AIT_HEAL_BUDGET_EXCEEDED:
        return "BudgetExceeded";
    case AIT_HEAL_INVALID_REQUEST:
        return "InvalidRequest";
    case AIT_HEAL_CANCELLED:
        return "Cancelled";
    case AIT_HEAL_LEDGER_UNAVAILABLE:
        return "LedgerUnavailable";
    }
    return "Unknown";
}

ait_status ait_heal_parse_usd(const char *s, int64_t *micro)
{
    if (s == NULL || *s == '\0') {
        return AIT_ERR_INVALID;
    }
    int64_t whole = 0, frac = 0;
    int nfrac = 0, ndig = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++, ndig++) {
        if (whole > INT64_C(1000000000)) {
            return AIT_ERR_INVALID;
        }
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++, nfrac++, ndig++) {
            if (nfrac >= 6) {
                return AIT_ERR_INVALID; /* below a micro-dollar */
            }
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p != '\0' || ndig == 0) {
        return AIT_ERR_INVALID;
    }
    for (; nfrac < 6; nfrac++) {
        frac *= 10;
    }
    *micro = whole * 1000000 + frac;
    return AIT_OK;
}

int64_t ait_heal_cost_micro(int64_t tokens, int64_t price)
{
    if (tokens <= 0 || price <= 0) {
        return 0;
    }
    /* Split so tokens * price cannot overflow for any sane price (< 9e12 micro per Mtok). */
    int64_t q = tokens / 1000000, r = tokens % 1000000;
    return q * price + (r * price + 999999) / 1000000;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? ait_strdup(s) : NULL;
}

static int64_t mono(const ait_heal_engine *e)
{
    return e->clock->mono_ns(e->clock->ctx);
}

/* ---- results ---- */

void ait_heal_result_free(ait_heal_result *r)
{
    if (r == NULL) {
        return;
    }
    ait_free(r->message);
    ait_free(r->consensus_code);
    ait_free(r->architect_notes);
    ait_free(r->bug_hunter_notes);
    ait_free(r->consensus_reasoning);
    ait_free(r->provider);
    ait_free(r->model);
    for (size_t i = 0; i < r->n_failovers; i++) {
        ait_free(r->failovers[i].provider);
        ait_free(r->failovers[i].error);
    }
    ait_free(r->failovers);
    for (size_t i = 0; i < r->n_calls; i++) {
        ait_heal_call *c = &r->calls[i];
        ait_free(c->provider);
        ait_free(c->model);
        ait_free(c->request_body);
        ait_free(c->response_body);
        ait_free(c->outcome);
    }
    ait_free(r->calls);
    ait_free(r);
}

static size_t add_failover(ait_heal_result *r, const char *name, const char *error)
{
    r->failovers = ait_realloc(r->failovers, (r->n_failovers + 1) * sizeof(ait_heal_failover));
    ait_heal_failover *f = &r->failovers[r->n_failovers];
    f->provider = ait_strdup(name);
    f->error = ait_strdup(error);
    f->failover_ms = -1;
    f->failover_us = -1;
    return r->n_failovers++;
}

static ait_heal_call *add_call(ait_heal_result *r)
{
    r->calls = ait_realloc(r->calls, (r->n_calls + 1) * sizeof(ait_heal_call));
    ait_heal_call *c = &r->calls[r->n_calls++];
    memset(c, 0, sizeof(*c));
    return c;
}

/* ---- breaker (all under e->mu) ---- */

typedef enum { ADMIT_NO = 0, ADMIT_YES, ADMIT_PROBE } admit_t;

static admit_t breaker_admit(ait_heal_engine *e, provider *p, const char **why)
{
    int64_t now = mono(e);
    admit_t a = ADMIT_YES;
    pthread_mutex_lock(&e->mu);
    if (p->state == BREAKER_OPEN && now >= p->open_until) {
        p->state = BREAKER_HALF_OPEN;
        p->probe_inflight = 0;
    }
    if (now < p->skip_until && p->state != BREAKER_OPEN) {
        *why = "RateLimited";
        a = ADMIT_NO;
    } else if (p->state == BREAKER_OPEN) {
        *why = "CircuitOpen";
        a = ADMIT_NO;
    } else if (p->state == BREAKER_HALF_OPEN) {
        if (p->probe_inflight) {
            *why = "CircuitOpen";
            a = ADMIT_NO;
        } else {
            p->probe_inflight = 1;
            a = ADMIT_PROBE;
        }
    }
    pthread_mutex_unlock(&e->mu);
    return a;
}

static void breaker_success(ait_heal_engine *e, provider *p)
{
    pthread_mutex_lock(&e->mu);
    p->state = BREAKER_CLOSED;
    p->consecutive = 0;
    p->probe_inflight = 0;
    pthread_mutex_unlock(&e->mu);
}

/* A call ended without a verdict on the provider (budget refusal, no key): give back a probe. */
static void breaker_neutral(ait_heal_engine *e, provider *p, admit_t a)
{
    if (a != ADMIT_PROBE) {
        return;
    }
    pthread_mutex_lock(&e->mu);
    p->probe_inflight = 0;
    pthread_mutex_unlock(&e->mu);
}

static void breaker_failure(ait_heal_engine *e, provider *p, int quota, int64_t retry_after_ms)
{
    int64_t now = mono(e);
    pthread_mutex_lock(&e->mu);
    p->consecutive++;
    p->probe_inflight = 0;
    if (retry_after_ms > 0) {
        int64_t until = now + retry_after_ms * AIT_NS_PER_MS;
        if (until > p->skip_until) {
            p->skip_until = until;
        }
    }
    int64_t open_for = 0;
    if (quota) {
        open_for = e->quota_open_ns;
        if (retry_after_ms * AIT_NS_PER_MS > open_for) {
            open_for = retry_after_ms * AIT_NS_PER_MS;
        }
    } else if (p->state == BREAKER_HALF_OPEN || p->consecutive >= e->breaker_failures) {
        open_for = e->cooldown_ns;
    }
    if (open_for > 0) {
        p->state = BREAKER_OPEN;
        p->open_until = now + open_for;
        AIT_LOG_INFO(1, "heal: circuit opened", "provider", p->name, "reason",
                     quota ? "quota" : "failures");
    }
    pthread_mutex_unlock(&e->mu);
}

int ait_heal_engine_circuit_state(ait_heal_engine *e, const char *name)
{
    for (size_t i = 0; e != NULL && name != NULL && i < e->np; i++) {
        if (strcmp(e->p[i].name, name) == 0) {
            int64_t now = mono(e);
            pthread_mutex_lock(&e->mu);
            int s = e->p[i].state;
            if (s == BREAKER_OPEN && now >= e->p[i].open_until) {
                s = BREAKER_HALF_OPEN;
            }
            if (s == BREAKER_CLOSED && now < e->p[i].skip_until) {
                s = BREAKER_OPEN;
            }
            pthread_mutex_unlock(&e->mu);
            return s;
        }
    }
    return -1;
}

/* ---- HTTP ---- */

typedef struct xfer {
    ait_heal_engine *e;
    ait_buf body;
    int too_large;
    int slow;
    int64_t start_ns;
    int64_t first_byte_ns;
    char retry_after[64];
    char reset_requests[64];
    char reset_tokens[64];
} xfer;

static void header_value(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t ln = strlen(name);
    if (n <= ln + 1 || strncasecmp(line, name, ln) != 0 || line[ln] != ':') {
        return;
    }
    const char *v = line + ln + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (x->first_byte_ns == 0) {
        x->first_byte_ns = ait_time_mono_ns();
    }
    header_value(data, n, "retry-after", x->retry_after, sizeof(x->retry_after));
    header_value(data, n, "x-ratelimit-reset-requests", x->reset_requests,
                 sizeof(x->reset_requests));
    header_value(data, n, "x-ratelimit-reset-tokens", x->reset_tokens, sizeof(x->reset_tokens));
    return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (ait_buf_append(&x->body, data, n) != AIT_OK) {
        x->too_large = 1;
        return 0; /* refuse: curl stops with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Aborts on engine shutdown and on a slow drip: once the answer has started, it must keep
 * arriving at min_speed bytes/s on average (a model thinking before the first byte is bounded
 * by the total timeout instead). */
static int progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    xfer *x = ud;
    if (atomic_load(&x->e->stopping)) {
        return 1;
    }
    if (x->first_byte_ns != 0 && x->e->min_speed > 0) {
        int64_t el = ait_time_mono_ns() - x->first_byte_ns;
        if (el >= x->e->min_speed_window_ns &&
            (int64_t)dlnow * AIT_NS_PER_S / el < x->e->min_speed) {
            x->slow = 1;
            return 1;
        }
    }
    return 0;
}

static const char *curl_error_word(CURLcode rc, const xfer *x, int stopping)
{
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        return "TooLarge";
    }
    if (x->slow) {
        return "SlowDrip";
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK && stopping) {
        return "Cancelled";
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "Timeout";
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "ConnectionFailed";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return "TLSError";
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return "ShortBody";
    default:
        return "TransportError";
    }
}

/* Performs one POST. Returns the HTTP status (0 on a transport failure, with *terr set). */
static int http_post(ait_heal_engine *e, CURL *c, const provider *p, const char *url,
                     const char *body, const char *key, const char *traceparent, xfer *x,
                     const char **terr)
{
    struct curl_slist *h = NULL;
    char *auth = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    if (key != NULL && key[0] != '\0') {
        switch (p->type) {
        case AIT_HEAL_TYPE_ANTHROPIC:
            auth = ait_asprintf("x-api-key: %s", key);
            break;
        case AIT_HEAL_TYPE_GEMINI:
            auth = ait_asprintf("x-goog-api-key: %s", key);
            break;
        default:
            auth = ait_asprintf("Authorization: Bearer %s", key);
            break;
        }
        h = curl_slist_append(h, auth);
    }
    if (p->type == AIT_HEAL_TYPE_ANTHROPIC) {
        h = curl_slist_append(h, "anthropic-version: 2023-06-01");
    }
    char *tp = NULL;
    if (traceparent != NULL && traceparent[0] != '\0' && strpbrk(traceparent, "\r\n") == NULL) {
        tp = ait_asprintf("traceparent: %s", traceparent);
        h = curl_slist_append(h, tp);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (e->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
    }
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)e->max_body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    x->start_ns = ait_time_mono_ns();
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    /* The headers held the key: drop them from the handle and wipe our copy. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    if (auth != NULL) {
        explicit_bzero(auth, strlen(auth));
        ait_free(auth);
    }
    ait_free(tp);
    if (rc != CURLE_OK) {
        *terr = curl_error_word(rc, x, atomic_load(&e->stopping));
        return 0;
    }
    return (int)code;
}

/* ---- keys ---- */

static ait_status read_key_file(const char *path, char **key, ait_error *err)
{
    *key = NULL;
    if (path == NULL) {
        return AIT_OK;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return ait_error_set(err, AIT_ERR_IO, "cannot open API key file %s", path);
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        buf[--n] = '\0';
    }
    *key = ait_strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return AIT_OK;
}

static ait_status get_key(ait_heal_engine *e, provider *p, int force, char **key, ait_error *err)
{
    if (e->keys.get_key != NULL) {
        *key = NULL;
        return e->keys.get_key(e->keys.ctx, p->name, force, key, err);
    }
    return read_key_file(p->key_file, key, err);
}

static void free_key(char *key)
{
    if (key != NULL) {
        explicit_bzero(key, strlen(key));
        ait_free(key);
    }
}

/* ---- one heal ---- */

static ait_heal_output_mode fallback_mode(ait_heal_provider_type t)
{
    switch (t) {
    case AIT_HEAL_TYPE_ANTHROPIC:
        return AIT_HEAL_OUTPUT_TOOL;
    case AIT_HEAL_TYPE_OPENAI:
    case AIT_HEAL_TYPE_MISTRAL:
    case AIT_HEAL_TYPE_GROQ:
    case AIT_HEAL_TYPE_OPENAI_COMPATIBLE:
        return AIT_HEAL_OUTPUT_JSON_OBJECT;
    default:
        return AIT_HEAL_OUTPUT_AUTO;
    }
}

static ait_status resolve_order(ait_heal_engine *e, const ait_heal_request *req, size_t **order,
                                size_t *n, char **bad)
{
    if (req->providers == NULL || req->n_providers == 0) {
        *order = ait_malloc((e->ndef + 1) * sizeof(size_t));
        memcpy(*order, e->def, e->ndef * sizeof(size_t));
        *n = e->ndef;
        return AIT_OK;
    }
    *order = ait_malloc(req->n_providers * sizeof(size_t));
    *n = 0;
    for (size_t i = 0; i < req->n_providers; i++) {
        size_t j = 0;
        for (; j < e->np; j++) {
            if (req->providers[i] != NULL && strcmp(req->providers[i], e->p[j].name) == 0) {
                break;
            }
        }
        if (j == e->np) {
            *bad = ait_strdup(req->providers[i] != NULL ? req->providers[i] : "(null)");
            return AIT_ERR_NOT_FOUND;
        }
        (*order)[(*n)++] = j;
    }
    return AIT_OK;
}

static void run_heal(ait_heal_engine *e, CURL *c, const ait_heal_request *req, ait_heal_result *r)
{
    int64_t t0 = mono(e);
    size_t *order = NULL, n = 0;
    char *bad = NULL, *sys = NULL, *user = NULL;
    int any_budget = 0, ledger_down = 0;
    int64_t pending_fail_ns = -1;
    size_t pending_idx = 0;
    int have_code = req->code != NULL && req->code[0] != '\0';
    int have_prompt = req->prompt != NULL && req->prompt[0] != '\0';

    if (!have_code && !have_prompt) {
        r->failure = AIT_HEAL_INVALID_REQUEST;
        r->message = ait_strdup("neither code nor prompt to heal");
        goto out;
    }
    if (resolve_order(e, req, &order, &n, &bad) != AIT_OK) {
        r->failure = AIT_HEAL_INVALID_REQUEST;
        r->message = ait_asprintf("unknown provider %s", bad);
        goto out;
    }
    ait_heal_adapter_prompts(req, &sys, &user);

    for (size_t oi = 0; oi < n; oi++) {
        provider *p = &e->p[order[oi]];
        if (atomic_load(&e->stopping)) {
            r->failure = AIT_HEAL_CANCELLED;
            r->message = ait_strdup("engine shutting down");
            goto out;
        }
        const char *why = NULL;
        admit_t adm = breaker_admit(e, p, &why);
        if (adm == ADMIT_NO) {
            add_failover(r, p->name, why);
            continue;
        }
        double temp = req->temperature < 0 ? 0.2 : req->temperature;
        int tries = 0, auth_retried = 0, mode_retried = 0;
        const char *fail_word = NULL;
        int fail_quota = 0;
        int64_t fail_retry_ms = -1;
        for (;;) {
            const char *model = req->model != NULL && req->model[0] != '\0' ? req->model : p->model;
            pthread_mutex_lock(&e->mu);
            ait_heal_output_mode mode = p->mode;
            pthread_mutex_unlock(&e->mu);
            char *url = NULL, *body = NULL;
            ait_heal_adapter_build(p->type, mode, p->base_url, model, sys, user, temp,
                                   p->max_tokens, &url, &body);
            int64_t estimate = ait_heal_cost_micro((int64_t)strlen(body) / 4 + 1, p->price_in) +
                               ait_heal_cost_micro(p->max_tokens, p->price_out);
            /* Budget: the task cap first, then the ledger, for this provider's estimate. */
            void *handle = NULL;
            int refused = 0;
            ait_status bst = AIT_OK;
            if (req->budget_max_micro >= 0 &&
                req->budget_spent_micro + r->cost_micro + estimate > req->budget_max_micro) {
                refused = 1;
            } else if (e->budget.reserve != NULL &&
                       (bst = e->budget.reserve(e->budget.ctx, p->name, estimate, &handle)) !=
                           AIT_OK) {
                refused = bst == AIT_ERR_QUOTA;
                if (!refused) {
                    /* The ledger is unreachable: no call whose spend cannot be counted. */
                    ait_free(url);
                    ait_free(body);
                    ledger_down = 1;
                    breaker_neutral(e, p, adm);
                    fail_word = "LedgerUnavailable";
                    goto next_provider_neutral;
                }
            }
            if (refused) {
                ait_free(url);
                ait_free(body);
                any_budget = 1;
                breaker_neutral(e, p, adm);
                fail_word = "BudgetExceeded";
                AIT_LOG_INFO(1, "heal: call refused by budget", "provider", p->name);
                goto next_provider_neutral;
            }
            char *key = NULL;
            ait_error kerr = {0};
            if (get_key(e, p, auth_retried, &key, &kerr) != AIT_OK) {
                if (e->budget.release != NULL && e->budget.reserve != NULL) {
                    e->budget.release(e->budget.ctx, handle);
                }
                ait_free(url);
                ait_free(body);
                AIT_LOG_ERROR(kerr.msg, "heal: no API key", "provider", p->name);
                fail_word = "KeyUnavailable";
                breaker_neutral(e, p, adm);
                goto next_provider_neutral;
            }
            int64_t send_ns = mono(e);
            if (pending_fail_ns >= 0) {
                r->failovers[pending_idx].failover_ms = (send_ns - pending_fail_ns) / AIT_NS_PER_MS;
                r->failovers[pending_idx].failover_us = (send_ns - pending_fail_ns) / 1000;
                pending_fail_ns = -1;
            }
            xfer x;
            memset(&x, 0, sizeof(x));
            x.e = e;
            ait_buf_init(&x.body, (size_t)e->max_body);
            const char *terr = NULL;
            int status = http_post(e, c, p, url, body, key, req->traceparent, &x, &terr);
            free_key(key);
            int64_t done_ns = mono(e);

            ait_heal_answer a;
            memset(&a, 0, sizeof(a));
            ait_heal_answer_clear(&a);
            if (status == 0) {
                a.outcome = AIT_HEAL_OUT_RETRY;
                a.error = terr;
                snprintf(a.detail, sizeof(a.detail), "%s", terr);
            } else {
                ait_heal_http_meta meta = {x.retry_after[0] ? x.retry_after : NULL,
                                           x.reset_requests[0] ? x.reset_requests : NULL,
                                           x.reset_tokens[0] ? x.reset_tokens : NULL};
                ait_heal_adapter_parse(p->type, status, &meta, x.body.data, x.body.len, req->code,
                                       &a);
            }
            int64_t cost = 0;
            if (a.prompt_tokens > 0) {
                cost += ait_heal_cost_micro(a.prompt_tokens, p->price_in);
                r->prompt_tokens += a.prompt_tokens;
            }
            if (a.completion_tokens > 0) {
                cost += ait_heal_cost_micro(a.completion_tokens, p->price_out);
                r->completion_tokens += a.completion_tokens;
            }
            r->cost_micro += cost;
            if (e->budget.reserve != NULL) {
                if (a.prompt_tokens >= 0 || a.completion_tokens >= 0) {
                    if (e->budget.settle != NULL) {
                        e->budget.settle(e->budget.ctx, handle, cost);
                    }
                } else if (e->budget.release != NULL) {
                    e->budget.release(e->budget.ctx, handle);
                }
            }
            ait_heal_call *call = add_call(r);
            call->provider = ait_strdup(p->name);
            call->model = ait_strdup(model);
            call->request_body = body;
            call->response_body = x.body.len > 0 ? ait_buf_take(&x.body) : NULL;
            call->http_status = status;
            call->outcome = ait_strdup(a.error);
            call->prompt_tokens = a.prompt_tokens;
            call->completion_tokens = a.completion_tokens;
            call->cost_micro = cost;
            call->latency_ms = (done_ns - send_ns) / AIT_NS_PER_MS;
            call->temperature = temp;
            ait_buf_free(&x.body);
            ait_free(url);
            if (ait_log_enabled(2)) {
                char st[16];
                snprintf(st, sizeof(st), "%d", status);
                ait_log_info(2, "heal: provider call", "provider", p->name, "status", st, "outcome",
                             a.error, "detail", a.detail, (const char *)NULL);
            }

            if (a.outcome == AIT_HEAL_OUT_OK) {
                breaker_success(e, p);
                r->failure = AIT_HEAL_OK;
                r->consensus_code = a.fields[AIT_HEAL_F_CODE];
                r->architect_notes = a.fields[AIT_HEAL_F_ARCHITECT];
                r->bug_hunter_notes = a.fields[AIT_HEAL_F_BUG_HUNTER];
                r->consensus_reasoning = a.fields[AIT_HEAL_F_REASONING];
                memset(a.fields, 0, sizeof(a.fields));
                r->provider = ait_strdup(p->name);
                r->model = ait_strdup(model);
                ait_heal_answer_clear(&a);
                goto out;
            }
            if (a.outcome == AIT_HEAL_OUT_AUTH && !auth_retried) {
                auth_retried = 1; /* a rotated key: read it again, once */
                ait_heal_answer_clear(&a);
                continue;
            }
            if (a.outcome == AIT_HEAL_OUT_UNSUPPORTED_MODE && !mode_retried &&
                mode == AIT_HEAL_OUTPUT_AUTO && fallback_mode(p->type) != AIT_HEAL_OUTPUT_AUTO) {
                /* The deployment lacks the native structured-output mode: switch this provider
                 * to its fallback for good and ask again at once. */
                pthread_mutex_lock(&e->mu);
                p->mode = fallback_mode(p->type);
                pthread_mutex_unlock(&e->mu);
                mode_retried = 1;
                AIT_LOG_INFO(1, "heal: structured-output fallback", "provider", p->name);
                ait_heal_answer_clear(&a);
                continue;
            }
            if (a.outcome == AIT_HEAL_OUT_INVALID && tries < e->invalid_retries) {
                tries++;
                temp = temp - 0.2 < 0 ? 0 : temp - 0.2;
                ait_heal_answer_clear(&a);
                continue;
            }
            fail_word = a.error;
            fail_quota = a.outcome == AIT_HEAL_OUT_QUOTA;
            fail_retry_ms = a.retry_after_ms;
            ait_heal_answer_clear(&a);
            break;
        }
        /* The provider failed: count it, hand over at once. */
        breaker_failure(e, p, fail_quota, fail_retry_ms);
        pending_idx = add_failover(r, p->name, fail_word);
        pending_fail_ns = mono(e);
        continue;
    next_provider_neutral:
        add_failover(r, p->name, fail_word);
    }
    r->failure = any_budget    ? AIT_HEAL_BUDGET_EXCEEDED
                 : ledger_down ? AIT_HEAL_LEDGER_UNAVAILABLE
                               : AIT_HEAL_PROVIDERS_UNAVAILABLE;
    r->message = ait_strdup(any_budget    ? "a provider call would exceed the budget"
                            : ledger_down ? "the spending ledger (etcd) cannot be reached; "
                                            "no provider is called until it can"
                                          : "every provider failed or is unavailable");
out:
    if (atomic_load(&e->stopping) && r->failure != AIT_HEAL_OK) {
        r->failure = AIT_HEAL_CANCELLED;
    }
    if (r->n_calls > 0) {
        r->request_body = r->calls[r->n_calls - 1].request_body;
        r->response_body = r->calls[r->n_calls - 1].response_body;
    }
    r->latency_ms = (mono(e) - t0) / AIT_NS_PER_MS;
    ait_free(order);
    ait_free(bad);
    ait_free(sys);
    ait_free(user);
}

ait_status ait_heal_run(ait_heal_engine *e, const ait_heal_request *req, ait_heal_result **out)
{
    if (e == NULL || req == NULL || out == NULL) {
        return AIT_ERR_INVALID;
    }
    ait_heal_result *r = ait_calloc(1, sizeof(*r));
    CURL *c = curl_easy_init();
    ait_assert(c != NULL);
    run_heal(e, c, req, r);
    curl_easy_cleanup(c);
    *out = r;
    return AIT_OK;
}

/* ---- pool ---- */

static void job_free(job *j)
{
    if (j == NULL) {
        return;
    }
    ait_free(j->key);
    ait_free((char *)j->req.runtime);
    ait_free((char *)j->req.code);
    ait_free((char *)j->req.error_tail);
    ait_free((char *)j->req.model);
    ait_free((char *)j->req.prompt);
    ait_free((char *)j->req.traceparent);
    for (size_t i = 0; i < j->req.n_providers; i++) {
        ait_free(j->names[i]);
    }
    ait_free(j->names);
    ait_free(j);
}

static void *worker_main(void *arg)
{
    ait_heal_engine *e = arg;
    CURL *c = curl_easy_init();
    ait_assert(c != NULL);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        job *j = NULL;
        for (job *it = e->jobs; it != NULL; it = it->next) {
            if (!it->running) {
                j = it;
                break;
            }
        }
        if (j == NULL) {
            if (atomic_load(&e->stopping)) {
                break;
            }
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        j->running = 1;
        e->queued--;
        pthread_mutex_unlock(&e->mu);

        ait_heal_result *r = ait_calloc(1, sizeof(*r));
        if (atomic_load(&e->stopping)) {
            r->failure = AIT_HEAL_CANCELLED;
            r->message = ait_strdup("engine shutting down");
        } else {
            run_heal(e, c, &j->req, r);
        }
        /* Unlink before the callback, so the callback may resubmit the same key. */
        pthread_mutex_lock(&e->mu);
        for (job **pp = &e->jobs; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        }
        pthread_mutex_unlock(&e->mu);
        j->done(j->ctx, j->key, r);
        job_free(j);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    curl_easy_cleanup(c);
    return NULL;
}

ait_status ait_heal_submit(ait_heal_engine *e, const char *key, const ait_heal_request *req,
                           ait_heal_done_cb done, void *ctx, ait_error *err)
{
    if (e == NULL || key == NULL || req == NULL || done == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "heal submit: NULL argument");
    }
    job *j = ait_calloc(1, sizeof(*j));
    j->key = ait_strdup(key);
    j->req = *req;
    j->req.runtime = dup_or_null(req->runtime);
    j->req.code = dup_or_null(req->code);
    j->req.error_tail = dup_or_null(req->error_tail);
    j->req.model = dup_or_null(req->model);
    j->req.prompt = dup_or_null(req->prompt);
    j->req.traceparent = dup_or_null(req->traceparent);
    j->req.n_providers = req->providers != NULL ? req->n_providers : 0;
    j->names = ait_calloc(j->req.n_providers + 1, sizeof(char *));
    for (size_t i = 0; i < j->req.n_providers; i++) {
        j->names[i] = dup_or_null(req->providers[i]);
    }
    j->req.providers = (const char *const *)j->names;
    j->done = done;
    j->ctx = ctx;

    ait_status st = AIT_OK;
    pthread_mutex_lock(&e->mu);
    job **tail = &e->jobs;
    for (; *tail != NULL; tail = &(*tail)->next) {
        if (strcmp((*tail)->key, key) == 0) {
            st = ait_error_set(err, AIT_ERR_EXISTS, "a heal for %s is already queued", key);
        }
    }
    if (st == AIT_OK && atomic_load(&e->stopping)) {
        st = ait_error_set(err, AIT_ERR_CANCELLED, "heal engine shutting down");
    }
    if (st == AIT_OK && e->queued >= e->queue_max) {
        st = ait_error_set(err, AIT_ERR_RETRY, "heal queue full (%zu)", e->queue_max);
    }
    if (st == AIT_OK) {
        *tail = j;
        e->queued++;
        pthread_cond_signal(&e->cv);
        j = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    job_free(j);
    return st;
}

/* ---- lifecycle ---- */

static void provider_free(provider *p)
{
    ait_free(p->name);
    ait_free(p->base_url);
    ait_free(p->model);
    ait_free(p->key_file);
}

static ait_status price_of(const char *s, int64_t num, const char *name, const char *what,
                           int64_t *out, ait_error *err)
{
    if (s == NULL) {
        if (num < 0) {
            return ait_error_set(err, AIT_ERR_INVALID, "provider %s: negative %s price", name,
                                 what);
        }
        *out = num;
        return AIT_OK;
    }
    if (ait_heal_parse_usd(s, out) != AIT_OK) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "provider %s: %s price %s is not a decimal USD amount", name, what, s);
    }
    return AIT_OK;
}

ait_status ait_heal_engine_new(const ait_heal_config *cfg, ait_heal_engine **out, ait_error *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->n_providers == 0 || cfg->providers == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "heal: no providers configured");
    }
    pthread_once(&curl_once, curl_init_once);
    ait_heal_engine *e = ait_calloc(1, sizeof(*e));
    ait_status st = AIT_OK;
    e->np = cfg->n_providers;
    e->p = ait_calloc(e->np, sizeof(provider));
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    for (size_t i = 0; i < e->np; i++) {
        const ait_heal_provider_config *pc = &cfg->providers[i];
        provider *p = &e->p[i];
        if (pc->name == NULL || pc->name[0] == '\0') {
            st = ait_error_set(err, AIT_ERR_INVALID, "heal: provider %zu has no name", i);
            goto fail;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(e->p[k].name, pc->name) == 0) {
                st = ait_error_set(err, AIT_ERR_INVALID, "heal: provider %s defined twice",
                                   pc->name);
                goto fail;
            }
        }
        if ((int)pc->type < 0 || pc->type >= AIT_HEAL_TYPE_COUNT_) {
            st = ait_error_set(err, AIT_ERR_INVALID, "heal: provider %s has a bad type", pc->name);
            goto fail;
        }
        if (pc->type == AIT_HEAL_TYPE_OPENAI_COMPATIBLE &&
            (pc->base_url == NULL || pc->base_url[0] == '\0')) {
            st = ait_error_set(err, AIT_ERR_INVALID,
                               "heal: provider %s (openai-compatible) needs a base URL", pc->name);
            goto fail;
        }
        if (pc->model == NULL || pc->model[0] == '\0') {
            st = ait_error_set(err, AIT_ERR_INVALID, "heal: provider %s has no model", pc->name);
            goto fail;
        }
        p->name = ait_strdup(pc->name);
        p->type = pc->type;
        p->base_url = ait_strdup(pc->base_url != NULL && pc->base_url[0] != '\0'
                                     ? pc->base_url
                                     : ait_heal_adapter_default_base(pc->type));
        p->model = ait_strdup(pc->model);
        p->key_file = dup_or_null(pc->api_key_file);
        p->connect_ms = pc->connect_timeout_ms > 0 ? pc->connect_timeout_ms : 5000;
        p->timeout_ms = pc->timeout_ms > 0 ? pc->timeout_ms : 120000;
        p->max_tokens = pc->max_completion_tokens > 0 ? pc->max_completion_tokens : 4096;
        p->mode = pc->output_mode;
        st = price_of(pc->price_input_per_mtok, pc->price_input_micro_per_mtok, pc->name, "input",
                      &p->price_in, err);
        if (st == AIT_OK) {
            st = price_of(pc->price_output_per_mtok, pc->price_output_micro_per_mtok, pc->name,
                          "output", &p->price_out, err);
        }
        if (st != AIT_OK) {
            goto fail;
        }
    }
    if (cfg->default_order != NULL && cfg->n_default_order > 0) {
        e->def = ait_calloc(cfg->n_default_order, sizeof(size_t));
        for (size_t i = 0; i < cfg->n_default_order; i++) {
            size_t j = 0;
            while (j < e->np && (cfg->default_order[i] == NULL ||
                                 strcmp(cfg->default_order[i], e->p[j].name) != 0)) {
                j++;
            }
            if (j == e->np) {
                st = ait_error_set(err, AIT_ERR_INVALID, "heal: default provider %s unknown",
                                   cfg->default_order[i] ? cfg->default_order[i] : "(null)");
                goto fail;
            }
            e->def[e->ndef++] = j;
        }
    } else {
        e->def = ait_calloc(e->np, sizeof(size_t));
        for (size_t i = 0; i < e->np; i++) {
            e->def[e->ndef++] = i;
        }
    }
    e->breaker_failures = cfg->breaker_failures > 0 ? cfg->breaker_failures : 3;
    e->cooldown_ns =
        (cfg->breaker_cooldown_ms > 0 ? cfg->breaker_cooldown_ms : 30000) * AIT_NS_PER_MS;
    e->quota_open_ns = (cfg->quota_open_ms > 0 ? cfg->quota_open_ms : 3600000) * AIT_NS_PER_MS;
    e->invalid_retries =
        cfg->invalid_retries == 0 ? 2 : (cfg->invalid_retries < 0 ? 0 : cfg->invalid_retries);
    e->max_body = cfg->max_body_bytes > 0 ? cfg->max_body_bytes : 4 * 1024 * 1024;
    e->min_speed = cfg->min_speed_bytes_per_s > 0 ? cfg->min_speed_bytes_per_s : 1024;
    e->min_speed_window_ns =
        (cfg->min_speed_window_ms > 0 ? cfg->min_speed_window_ms : 5000) * AIT_NS_PER_MS;
    e->ca_file = dup_or_null(cfg->ca_file);
    e->clock = cfg->clock != NULL ? cfg->clock : ait_clock_system();
    e->keys = cfg->keys;
    e->budget = cfg->budget;
    e->queue_max = cfg->queue_max > 0 ? (size_t)cfg->queue_max : 256;
    e->nthreads = cfg->workers > 0 ? cfg->workers : 4;
    e->threads = ait_calloc((size_t)e->nthreads, sizeof(pthread_t));
    for (int i = 0; i < e->nthreads; i++) {
        if (pthread_create(&e->threads[i], NULL, worker_main, e) != 0) {
            e->nthreads = i;
            st = ait_error_set(err, AIT_ERR_INTERNAL, "heal: cannot start worker thread");
            goto fail;
        }
    }
    *out = e;
    return AIT_OK;
fail:
    ait_heal_engine_free(e);
    return st;
}

void ait_heal_engine_free(ait_heal_engine *e)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->stopping, 1);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nthreads; i++) {
        pthread_join(e->threads[i], NULL);
    }
    /* Workers drain the queue (as Cancelled) before they exit, so nothing is left here. */
    ait_assert(e->jobs == NULL);
    for (size_t i = 0; i < e->np; i++) {
        provider_free(&e->p[i]);
    }
    ait_free(e->p);
    ait_free(e->def);
    ait_free(e->ca_file);
    ait_free(e->threads);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    ait_free(e);
}

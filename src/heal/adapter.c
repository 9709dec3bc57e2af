/* SPDX-License-Identifier: Apache-2.0 */
/* Provider adapters (see adapter.h): native request bodies per provider type and the classifier
 * of their answers. Everything read from a provider goes through ait_json_parse and the NULL-safe
 * accessors, so any input yields an outcome and never a crash. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "heal/adapter.h"

const char *const ait_heal_field_names[AIT_HEAL_F_COUNT_] = {
    "consensus_code", "architect_notes", "bug_hunter_notes", "consensus_reasoning"};

void ait_heal_answer_clear(ait_heal_answer *a)
{
    if (a == NULL) {
        return;
    }
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        ait_free(a->fields[i]);
    }
    memset(a, 0, sizeof(*a));
    a->prompt_tokens = -1;
    a->completion_tokens = -1;
    a->retry_after_ms = -1;
}

const char *ait_heal_adapter_default_base(ait_heal_provider_type t)
{
    switch (t) {
    case AIT_HEAL_TYPE_OPENAI:
        return "https://api.openai.com/v1";
    case AIT_HEAL_TYPE_ANTHROPIC:
        return "https://api.anthropic.com";
    case AIT_HEAL_TYPE_GEMINI:
        return "https://generativelanguage.googleapis.com/v1beta";
    case AIT_HEAL_TYPE_MISTRAL:
        return "https://api.mistral.ai/v1";
    case AIT_HEAL_TYPE_GROQ:
        return "https://api.groq.com/openai/v1";
    case AIT_HEAL_TYPE_OLLAMA:
        return "http://localhost:11434";
    default:
        return "";
    }
}

/* ---- prompts ---- */

void ait_heal_adapter_prompts(const ait_heal_request *req, char **system, char **user)
{
    const char *runtime = req->runtime != NULL && req->runtime[0] != '\0' ? req->runtime : "python";
    *system = ait_asprintf(
        "You are two senior engineers reviewing a failing %s program: an architect, who checks "
        "the design, and a bug hunter, who finds the exact defect. Agree on one corrected, "
        "complete program. Answer only with a JSON object with exactly four string fields: "
        "consensus_code (the whole corrected program, not a diff), architect_notes, "
        "bug_hunter_notes and consensus_reasoning. The program runs without network access "
        "in a sandbox; keep its behaviour otherwise unchanged.",
        runtime);
    ait_buf b;
    ait_buf_init(&b, 0);
    int ok = 1;
    if (req->code == NULL || req->code[0] == '\0') {
        ok &= ait_buf_appendf(&b,
                              "Write the first version of a %s program for this task. Answer "
                              "in the same JSON form.\nruntime: %s\n\nTask:\n%s\n",
                              runtime, runtime, req->prompt != NULL ? req->prompt : "") == AIT_OK;
    } else {
        ok &= ait_buf_appendf(&b, "runtime: %s\nfailed attempt: %d\n", runtime, req->attempt) ==
              AIT_OK;
        if (req->prompt != NULL && req->prompt[0] != '\0') {
            ok &= ait_buf_appendf(&b, "\nThe program's task:\n%s\n", req->prompt) == AIT_OK;
        }
        ok &= ait_buf_appendf(&b, "\nProgram:\n%s\n\nError output (tail):\n%s\n", req->code,
                              req->error_tail != NULL ? req->error_tail : "") == AIT_OK;
    }
    (void)ok; /* unbounded buffer: appends cannot fail */
    *user = ait_buf_take(&b);
}

/* ---- request bodies ---- */

static json_object *schema_std(void)
{
    json_object *s = json_object_new_object();
    json_object *props = json_object_new_object();
    json_object *req = json_object_new_array();
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("string"));
        json_object_object_add(props, ait_heal_field_names[i], p);
        json_object_array_add(req, json_object_new_string(ait_heal_field_names[i]));
    }
    json_object_object_add(s, "type", json_object_new_string("object"));
    json_object_object_add(s, "properties", props);
    json_object_object_add(s, "required", req);
    json_object_object_add(s, "additionalProperties", json_object_new_boolean(0));
    return s;
}

/* Gemini's responseSchema is an OpenAPI 3.0 subset: upper-case types, no additionalProperties;
 * propertyOrdering keeps the code first. */
static json_object *schema_gemini(void)
{
    json_object *s = json_object_new_object();
    json_object *props = json_object_new_object();
    json_object *req = json_object_new_array();
    json_object *order = json_object_new_array();
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("STRING"));
        json_object_object_add(props, ait_heal_field_names[i], p);
        json_object_array_add(req, json_object_new_string(ait_heal_field_names[i]));
        json_object_array_add(order, json_object_new_string(ait_heal_field_names[i]));
    }
    json_object_object_add(s, "type", json_object_new_string("OBJECT"));
    json_object_object_add(s, "properties", props);
    json_object_object_add(s, "required", req);
    json_object_object_add(s, "propertyOrdering", order);
    return s;
}

/* Temperatures are written with two decimals so the wire shows 0.2, not 0.20000000000000001. */
static json_object *temp_json(double t)
{
    char txt[16];
    if (t < 0) {
        t = 0;
    }
    t = round(t * 100.0) / 100.0;
    snprintf(txt, sizeof(txt), "%.2f", t);
    /* Trim trailing zeros but keep one decimal ("0.20" -> "0.2", "0.00" -> "0.0"). */
    size_t n = strlen(txt);
    while (n > 3 && txt[n - 1] == '0') {
        txt[--n] = '\0';
    }
    return json_object_new_double_s(t, txt);
}

static json_object *msg(const char *role, const char *content)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return m;
}

static char *strip_slash(const char *base)
{
    char *b = ait_strdup(base != NULL ? base : "");
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/') {
        b[--n] = '\0';
    }
    return b;
}

void ait_heal_adapter_build(ait_heal_provider_type t, ait_heal_output_mode mode,
                            const char *base_url, const char *model, const char *system,
                            const char *user, double temperature, int max_tokens, char **url,
                            char **body)
{
    char *base = strip_slash(
        base_url != NULL && base_url[0] != '\0' ? base_url : ait_heal_adapter_default_base(t));
    json_object *o = json_object_new_object();
    if (model == NULL) {
        model = "";
    }
    switch (t) {
    case AIT_HEAL_TYPE_ANTHROPIC: {
        *url = ait_asprintf("%s/v1/messages", base);
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object_object_add(o, "max_tokens", json_object_new_int(max_tokens));
        json_object_object_add(o, "system", json_object_new_string(system));
        json_object_object_add(o, "temperature", temp_json(temperature));
        json_object *msgs = json_object_new_array();
        json_object_array_add(msgs, msg("user", user));
        json_object_object_add(o, "messages", msgs);
        if (mode == AIT_HEAL_OUTPUT_TOOL) {
            json_object *tool = json_object_new_object();
            json_object_object_add(tool, "name", json_object_new_string("heal_result"));
            json_object_object_add(
                tool, "description",
                json_object_new_string("Record the corrected program and the reviewers' notes."));
            json_object_object_add(tool, "input_schema", schema_std());
            json_object *tools = json_object_new_array();
            json_object_array_add(tools, tool);
            json_object_object_add(o, "tools", tools);
            json_object *choice = json_object_new_object();
            json_object_object_add(choice, "type", json_object_new_string("tool"));
            json_object_object_add(choice, "name", json_object_new_string("heal_result"));
            json_object_object_add(o, "tool_choice", choice);
        } else {
            json_object *fmt = json_object_new_object();
            json_object_object_add(fmt, "type", json_object_new_string("json_schema"));
            json_object_object_add(fmt, "schema", schema_std());
            json_object *oc = json_object_new_object();
            json_object_object_add(oc, "format", fmt);
            json_object_object_add(o, "output_config", oc);
        }
        break;
    }
    case AIT_HEAL_TYPE_GEMINI: {
        const char *m = strncmp(model, "models/", 7) == 0 ? model + 7 : model;
        *url = ait_asprintf("%s/models/%s:generateContent", base, m);
        json_object *part = json_object_new_object();
        json_object_object_add(part, "text", json_object_new_string(user));
        json_object *parts = json_object_new_array();
        json_object_array_add(parts, part);
        json_object *content = json_object_new_object();
        json_object_object_add(content, "role", json_object_new_string("user"));
        json_object_object_add(content, "parts", parts);
        json_object *contents = json_object_new_array();
        json_object_array_add(contents, content);
        json_object_object_add(o, "contents", contents);
        json_object *spart = json_object_new_object();
        json_object_object_add(spart, "text", json_object_new_string(system));
        json_object *sparts = json_object_new_array();
        json_object_array_add(sparts, spart);
        json_object *si = json_object_new_object();
        json_object_object_add(si, "parts", sparts);
        json_object_object_add(o, "systemInstruction", si);
        json_object *gc = json_object_new_object();
        json_object_object_add(gc, "temperature", temp_json(temperature));
        json_object_object_add(gc, "maxOutputTokens", json_object_new_int(max_tokens));
        json_object_object_add(gc, "responseMimeType", json_object_new_string("application/json"));
        json_object_object_add(gc, "responseSchema", schema_gemini());
        json_object_object_add(o, "generationConfig", gc);
        break;
    }
    case AIT_HEAL_TYPE_OLLAMA: {
        *url = ait_asprintf("%s/api/chat", base);
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object *msgs = json_object_new_array();
        json_object_array_add(msgs, msg("system", system));
        json_object_array_add(msgs, msg("user", user));
        json_object_object_add(o, "messages", msgs);
        json_object_object_add(o, "stream", json_object_new_boolean(0));
        json_object_object_add(o, "format", schema_std());
        json_object *opts = json_object_new_object();
        json_object_object_add(opts, "temperature", temp_json(temperature));
        json_object_object_add(opts, "num_predict", json_object_new_int(max_tokens));
        json_object_object_add(o, "options", opts);
        break;
    }
    default: {
        /* The OpenAI family: Chat Completions. OpenAI names the limit max_completion_tokens;
         * Mistral, Groq and most compatible servers take max_tokens. */
        *url = ait_asprintf("%s/chat/completions", base);
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object *msgs = json_object_new_array();
        json_object_array_add(msgs, msg("system", system));
        json_object_array_add(msgs, msg("user", user));
        json_object_object_add(o, "messages", msgs);
        json_object_object_add(o, "temperature", temp_json(temperature));
        json_object_object_add(o,
                               t == AIT_HEAL_TYPE_OPENAI ? "max_completion_tokens" : "max_tokens",
                               json_object_new_int(max_tokens));
        json_object *rf = json_object_new_object();
        if (mode == AIT_HEAL_OUTPUT_JSON_OBJECT) {
            json_object_object_add(rf, "type", json_object_new_string("json_object"));
        } else {
            json_object *js = json_object_new_object();
            json_object_object_add(js, "name", json_object_new_string("heal_result"));
            json_object_object_add(js, "strict", json_object_new_boolean(1));
            json_object_object_add(js, "schema", schema_std());
            json_object_object_add(rf, "type", json_object_new_string("json_schema"));
            json_object_object_add(rf, "json_schema", js);
        }
        json_object_object_add(o, "response_format", rf);
        break;
    }
    }
    *body = ait_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    ait_free(base);
}

/* ---- answers ---- */

static int is_space_only_diff(const char *a, const char *b)
{
    /* Compares a and b ignoring leading and trailing whitespace. */
    if (a == NULL || b == NULL) {
        return 0;
    }
    while (isspace((unsigned char)*a)) {
        a++;
    }
    while (isspace((unsigned char)*b)) {
        b++;
    }
    size_t na = strlen(a), nb = strlen(b);
    while (na > 0 && isspace((unsigned char)a[na - 1])) {
        na--;
    }
    while (nb > 0 && isspace((unsigned char)b[nb - 1])) {
        nb--;
    }
    return na == nb && memcmp(a, b, na) == 0;
}

ait_status ait_heal_adapter_validate(const char *text, size_t len, const char *failing_code,
                                     char *fields[AIT_HEAL_F_COUNT_], ait_error *err)
{
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        fields[i] = NULL;
    }
    if (text == NULL) {
        return ait_error_set(err, AIT_ERR_PARSE, "empty answer");
    }
    /* Tolerate a Markdown fence (json_object mode): ```json ... ``` */
    const char *p = text;
    const char *end = text + len;
    while (p < end && isspace((unsigned char)*p)) {
        p++;
    }
    if (end - p >= 3 && memcmp(p, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl != NULL) {
            p = nl + 1;
            const char *e = end;
            while (e > p && isspace((unsigned char)e[-1])) {
                e--;
            }
            if (e - p >= 3 && memcmp(e - 3, "```", 3) == 0) {
                end = e - 3;
            }
        }
    }
    json_object *root = NULL;
    ait_error perr = {0};
    if (ait_json_parse(p, (size_t)(end - p), &root, &perr) != AIT_OK) {
        return ait_error_set(err, AIT_ERR_PARSE, "answer is not JSON: %s", perr.msg);
    }
    ait_status st = AIT_OK;
    if (!json_object_is_type(root, json_type_object)) {
        st = ait_error_set(err, AIT_ERR_INVALID, "answer is not a JSON object");
        goto out;
    }
    if (json_object_object_length(root) != AIT_HEAL_F_COUNT_) {
        st = ait_error_set(err, AIT_ERR_INVALID, "answer has %d fields, want exactly 4",
                           json_object_object_length(root));
        goto out;
    }
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(root, ait_heal_field_names[i], &v) ||
            !json_object_is_type(v, json_type_string)) {
            st = ait_error_set(err, AIT_ERR_INVALID, "field %s missing or not a string",
                               ait_heal_field_names[i]);
            goto out;
        }
    }
    json_object *code = json_object_object_get(root, "consensus_code");
    const char *cs = json_object_get_string(code);
    size_t cl = (size_t)json_object_get_string_len(code);
    if (cl > AIT_HEAL_CODE_MAX) {
        st = ait_error_set(err, AIT_ERR_TOO_LARGE, "consensus_code is %zu bytes, max %d", cl,
                           AIT_HEAL_CODE_MAX);
        goto out;
    }
    if (strlen(cs) != cl) {
        st = ait_error_set(err, AIT_ERR_INVALID, "consensus_code contains a NUL byte");
        goto out;
    }
    if (is_space_only_diff(cs, "")) {
        st = ait_error_set(err, AIT_ERR_INVALID, "consensus_code is empty");
        goto out;
    }
    if (is_space_only_diff(cs, failing_code)) {
        st = ait_error_set(err, AIT_ERR_INVALID, "consensus_code equals the failing code");
        goto out;
    }
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        json_object *v = json_object_object_get(root, ait_heal_field_names[i]);
        fields[i] = ait_strndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    }
out:
    json_object_put(root);
    return st;
}

int64_t ait_heal_parse_duration_ms(const char *s)
{
    if (s == NULL) {
        return -1;
    }
    while (isspace((unsigned char)*s)) {
        s++;
    }
    if (*s == '\0') {
        return -1;
    }
    double total = 0;
    int any = 0;
    while (*s != '\0' && !isspace((unsigned char)*s)) {
        char *endp = NULL;
        if (!isdigit((unsigned char)*s) && *s != '.') {
            return -1;
        }
        double v = strtod(s, &endp);
        if (endp == s || !isfinite(v) || v < 0) {
            return -1;
        }
        s = endp;
        double unit;
        if (strncmp(s, "ms", 2) == 0) {
            unit = 1;
            s += 2;
        } else if (*s == 'h') {
            unit = 3600e3;
            s++;
        } else if (*s == 'm') {
            unit = 60e3;
            s++;
        } else if (*s == 's') {
            unit = 1e3;
            s++;
        } else if (*s == '\0' || isspace((unsigned char)*s)) {
            unit = 1e3; /* bare number: seconds (Retry-After) */
        } else {
            return -1;
        }
        total += v * unit;
        any = 1;
        if (total > 1e12) {
            return -1;
        }
    }
    return any ? (int64_t)ceil(total) : -1;
}

static int contains_ci(const char *hay, const char *needle)
{
    if (hay == NULL) {
        return 0;
    }
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void set_detail(ait_heal_answer *out, const char *msg)
{
    size_t n = msg != NULL ? strnlen(msg, sizeof(out->detail) - 1) : 0;
    if (n > 0) {
        memcpy(out->detail, msg, n);
    }
    out->detail[n] = '\0';
}

static void take_retry_after(ait_heal_answer *out, const ait_heal_http_meta *meta)
{
    if (meta == NULL) {
        return;
    }
    int64_t best = -1;
    const char *hs[3] = {meta->retry_after, meta->reset_requests, meta->reset_tokens};
    for (int i = 0; i < 3; i++) {
        int64_t v = ait_heal_parse_duration_ms(hs[i]);
        if (v > best) {
            best = v;
        }
    }
    if (best > out->retry_after_ms) {
        out->retry_after_ms = best;
    }
}

/* Gemini: a QuotaFailure whose quotaId or metric names a day is a daily quota (not retryable
 * soon); RetryInfo.retryDelay ("37s") is the wait of a per-minute limit. */
static int gemini_details(json_object *err, ait_heal_answer *out)
{
    int per_day = 0;
    json_object *details = ait_json_array(err, "details");
    size_t n = details != NULL ? json_object_array_length(details) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(details, i);
        const char *type = ait_json_str(d, "@type");
        if (type == NULL) {
            continue;
        }
        if (strstr(type, "RetryInfo") != NULL) {
            int64_t v = ait_heal_parse_duration_ms(ait_json_str(d, "retryDelay"));
            if (v > out->retry_after_ms) {
                out->retry_after_ms = v;
            }
        } else if (strstr(type, "QuotaFailure") != NULL) {
            json_object *vs = ait_json_array(d, "violations");
            size_t m = vs != NULL ? json_object_array_length(vs) : 0;
            for (size_t j = 0; j < m; j++) {
                json_object *v = json_object_array_get_idx(vs, j);
                if (contains_ci(ait_json_str(v, "quotaId"), "PerDay") ||
                    contains_ci(ait_json_str(v, "quotaMetric"), "per_day")) {
                    per_day = 1;
                }
            }
        }
    }
    return per_day;
}

static void classify_error(ait_heal_provider_type t, int http, const ait_heal_http_meta *meta,
                           json_object *root, ait_heal_answer *out)
{
    const char *msg = NULL, *etype = NULL, *ecode = NULL, *gstatus = NULL;
    json_object *eobj = ait_json_path(root, "error");
    if (eobj != NULL && !json_object_is_type(eobj, json_type_object)) {
        eobj = NULL;
    }
    if (eobj != NULL) {
        msg = ait_json_str(eobj, "message");
        etype = ait_json_str(eobj, "type");
        ecode = ait_json_str(eobj, "code");
        gstatus = ait_json_str(eobj, "status");
    } else if (root != NULL) {
        /* Ollama: {"error":"..."}; Mistral sometimes {"message":..., "type":...}. */
        msg = ait_json_str(root, "error");
        if (msg == NULL) {
            msg = ait_json_str(root, "message");
            etype = ait_json_str(root, "type");
            ecode = ait_json_str(root, "code");
        }
    }
    set_detail(out, msg != NULL ? msg : (root == NULL ? "non-JSON error body" : ""));

    int quota = 0;
    if ((ecode != NULL && strcmp(ecode, "insufficient_quota") == 0) ||
        (etype != NULL && strcmp(etype, "insufficient_quota") == 0)) {
        quota = 1; /* OpenAI family: billing, not a rate */
    }
    if (t == AIT_HEAL_TYPE_ANTHROPIC &&
        ((etype != NULL && strcmp(etype, "enforced_spend_limit_reached") == 0) ||
         contains_ci(msg, "spend limit") || contains_ci(msg, "specified API usage limits") ||
         contains_ci(msg, "credit balance is too low"))) {
        quota = 1;
    }
    if (t == AIT_HEAL_TYPE_GEMINI && eobj != NULL) {
        if (gemini_details(eobj, out)) {
            quota = 1;
        }
    }
    if (quota) {
        out->outcome = AIT_HEAL_OUT_QUOTA;
        out->error = "Quota";
        take_retry_after(out, meta);
        return;
    }
    switch (http) {
    case 401:
    case 403:
        out->outcome = AIT_HEAL_OUT_AUTH;
        out->error = http == 401 ? "Unauthorized" : "Forbidden";
        return;
    case 429:
        out->outcome = AIT_HEAL_OUT_RATE_LIMITED;
        out->error = "RateLimited";
        take_retry_after(out, meta);
        return;
    case 400:
    case 422:
        if (contains_ci(msg, "response_format") || contains_ci(msg, "json_schema") ||
            contains_ci(msg, "output_config")) {
            out->outcome = AIT_HEAL_OUT_UNSUPPORTED_MODE;
            out->error = "UnsupportedOutputMode";
            return;
        }
        out->outcome = AIT_HEAL_OUT_FATAL;
        out->error = "BadRequest";
        return;
    case 404:
        out->outcome = AIT_HEAL_OUT_FATAL;
        out->error = "NotFound";
        return;
    default:
        break;
    }
    if (http == 408 || http == 409 || http >= 500) {
        out->outcome = AIT_HEAL_OUT_RETRY;
        out->error = http == 529 ? "Overloaded" : (http == 503 ? "HTTP 503" : "HTTP 5xx");
        if (http == 408 || http == 409) {
            out->error = "HTTP 4xx";
        }
        (void)gstatus;
        take_retry_after(out, meta);
        return;
    }
    out->outcome = AIT_HEAL_OUT_FATAL;
    out->error = "HTTP 4xx";
}

static void append_text(ait_buf *b, const char *s)
{
    if (s != NULL && ait_buf_appends(b, s) != AIT_OK) {
        /* b is unbounded here: cannot happen */
    }
}

void ait_heal_adapter_parse(ait_heal_provider_type t, int http_status,
                            const ait_heal_http_meta *meta, const char *body, size_t len,
                            const char *failing_code, ait_heal_answer *out)
{
    ait_heal_answer_clear(out);
    json_object *root = NULL;
    ait_error perr = {0};
    int parsed = body != NULL && ait_json_parse(body, len, &root, &perr) == AIT_OK;
    if (http_status < 200 || http_status > 299) {
        classify_error(t, http_status, meta, parsed ? root : NULL, out);
        goto out;
    }
    if (!parsed || !json_object_is_type(root, json_type_object)) {
        out->outcome = AIT_HEAL_OUT_RETRY;
        out->error = "MalformedBody";
        set_detail(out, parsed ? "body is not a JSON object" : perr.msg);
        goto out;
    }

    ait_buf text;
    ait_buf_init(&text, 0);
    int have_text = 0;
    const char *finish = NULL;
    switch (t) {
    case AIT_HEAL_TYPE_ANTHROPIC: {
        out->prompt_tokens = ait_json_int(root, "usage.input_tokens", -1);
        out->completion_tokens = ait_json_int(root, "usage.output_tokens", -1);
        finish = ait_json_str(root, "stop_reason");
        json_object *content = ait_json_array(root, "content");
        if (content == NULL) {
            break;
        }
        size_t n = json_object_array_length(content);
        for (size_t i = 0; i < n; i++) {
            json_object *blk = json_object_array_get_idx(content, i);
            const char *bt = ait_json_str(blk, "type");
            if (bt == NULL) {
                continue;
            }
            if (strcmp(bt, "text") == 0 && ait_json_str(blk, "text") != NULL) {
                append_text(&text, ait_json_str(blk, "text"));
                have_text = 1;
            } else if (strcmp(bt, "tool_use") == 0 && ait_json_path(blk, "input") != NULL) {
                /* The forced tool's arguments are the answer object itself. */
                ait_buf_reset(&text);
                append_text(&text, json_object_to_json_string_ext(ait_json_path(blk, "input"),
                                                                  JSON_C_TO_STRING_PLAIN));
                have_text = 1;
                break;
            }
        }
        if (finish != NULL && strcmp(finish, "refusal") == 0) {
            out->outcome = AIT_HEAL_OUT_REFUSAL;
            out->error = "Refusal";
            set_detail(out, "stop_reason refusal");
            goto done;
        }
        if (finish != NULL && strcmp(finish, "max_tokens") == 0) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "Truncated";
            set_detail(out, "stop_reason max_tokens");
            goto done;
        }
        if (!have_text) {
            /* A message without any text (e.g. only thinking) is a bad answer, not a bad
             * server: the same provider may do better. */
            if (content != NULL && ait_json_str(root, "type") != NULL) {
                out->outcome = AIT_HEAL_OUT_INVALID;
                out->error = "InvalidAnswer";
                set_detail(out, "no text content");
                goto done;
            }
        }
        break;
    }
    case AIT_HEAL_TYPE_GEMINI: {
        out->prompt_tokens = ait_json_int(root, "usageMetadata.promptTokenCount", -1);
        out->completion_tokens = ait_json_int(root, "usageMetadata.candidatesTokenCount", -1);
        const char *block = ait_json_str(root, "promptFeedback.blockReason");
        if (block != NULL) {
            out->outcome = AIT_HEAL_OUT_REFUSAL;
            out->error = "Refusal";
            set_detail(out, block);
            goto done;
        }
        json_object *cands = ait_json_array(root, "candidates");
        json_object *c0 = cands != NULL && json_object_array_length(cands) > 0
                              ? json_object_array_get_idx(cands, 0)
                              : NULL;
        if (c0 == NULL) {
            break;
        }
        finish = ait_json_str(c0, "finishReason");
        if (finish != NULL &&
            (strcmp(finish, "SAFETY") == 0 || strcmp(finish, "RECITATION") == 0 ||
             strcmp(finish, "BLOCKLIST") == 0 || strcmp(finish, "PROHIBITED_CONTENT") == 0 ||
             strcmp(finish, "SPII") == 0)) {
            out->outcome = AIT_HEAL_OUT_REFUSAL;
            out->error = "Refusal";
            set_detail(out, finish);
            goto done;
        }
        if (finish != NULL && strcmp(finish, "MAX_TOKENS") == 0) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "Truncated";
            set_detail(out, "finishReason MAX_TOKENS");
            goto done;
        }
        json_object *parts = ait_json_array(c0, "content.parts");
        size_t n = parts != NULL ? json_object_array_length(parts) : 0;
        for (size_t i = 0; i < n; i++) {
            const char *s = ait_json_str(json_object_array_get_idx(parts, i), "text");
            if (s != NULL) {
                append_text(&text, s);
                have_text = 1;
            }
        }
        if (!have_text) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "InvalidAnswer";
            set_detail(out, "candidate without text");
            goto done;
        }
        break;
    }
    case AIT_HEAL_TYPE_OLLAMA: {
        out->prompt_tokens = ait_json_int(root, "prompt_eval_count", -1);
        out->completion_tokens = ait_json_int(root, "eval_count", -1);
        finish = ait_json_str(root, "done_reason");
        if (ait_json_str(root, "error") != NULL) {
            out->outcome = AIT_HEAL_OUT_RETRY;
            out->error = "ProviderError";
            set_detail(out, ait_json_str(root, "error"));
            goto done;
        }
        if (finish != NULL && strcmp(finish, "length") == 0) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "Truncated";
            set_detail(out, "done_reason length");
            goto done;
        }
        const char *s = ait_json_str(root, "message.content");
        if (s != NULL) {
            append_text(&text, s);
            have_text = 1;
        }
        break;
    }
    default: {
        out->prompt_tokens = ait_json_int(root, "usage.prompt_tokens", -1);
        out->completion_tokens = ait_json_int(root, "usage.completion_tokens", -1);
        json_object *choices = ait_json_array(root, "choices");
        json_object *c0 = choices != NULL && json_object_array_length(choices) > 0
                              ? json_object_array_get_idx(choices, 0)
                              : NULL;
        if (c0 == NULL) {
            break;
        }
        finish = ait_json_str(c0, "finish_reason");
        const char *refusal = ait_json_str(c0, "message.refusal");
        if (refusal != NULL || (finish != NULL && strcmp(finish, "content_filter") == 0)) {
            out->outcome = AIT_HEAL_OUT_REFUSAL;
            out->error = "Refusal";
            set_detail(out, refusal != NULL ? refusal : "content_filter");
            goto done;
        }
        if (finish != NULL && strcmp(finish, "length") == 0) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "Truncated";
            set_detail(out, "finish_reason length");
            goto done;
        }
        const char *s = ait_json_str(c0, "message.content");
        if (s != NULL) {
            append_text(&text, s);
            have_text = 1;
        } else if (ait_json_path(c0, "message") != NULL) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "InvalidAnswer";
            set_detail(out, "message without content");
            goto done;
        }
        break;
    }
    }
    if (!have_text) {
        out->outcome = AIT_HEAL_OUT_RETRY;
        out->error = "MalformedBody";
        set_detail(out, "answer envelope of the wrong shape");
        goto done;
    }
    {
        ait_error verr = {0};
        if (ait_heal_adapter_validate(text.data != NULL ? text.data : "", text.len, failing_code,
                                      out->fields, &verr) != AIT_OK) {
            out->outcome = AIT_HEAL_OUT_INVALID;
            out->error = "InvalidAnswer";
            set_detail(out, verr.msg);
            goto done;
        }
        out->outcome = AIT_HEAL_OUT_OK;
        out->error = "ok";
    }
done:
    ait_buf_free(&text);
out:
    if (out->error == NULL) {
        out->error = "Error";
    }
    json_object_put(root);
}

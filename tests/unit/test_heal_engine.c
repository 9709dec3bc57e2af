/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the healing engine against the fake LLM providers (tests/fakes/fake_llm.py, started
 * once per run on a free loopback port and stopped by PID): every adapter end to end, error
 * buckets, invalid-answer retries with lowered temperatures, failover, circuit breaker,
 * Retry-After, budget refusal, key refresh, transport failures and the worker pool. What the
 * engine sent is checked in the fake's request log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"
#include "heal/heal.h"

static pid_t fake_pid;
static int fake_port;
static char tmpdir[256];
static char keyfile[300];

/* ---- fake control ---- */

static size_t sink(char *d, size_t s, size_t n, void *ud)
{
    if (ait_buf_append(ud, d, s * n) != AIT_OK) {
        return 0;
    }
    return s * n;
}

static char *http(const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    CURL *c = curl_easy_init();
    ait_buf b;
    ait_buf_init(&b, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    return ait_buf_take(&b);
}

static void fake_reset(void)
{
    ait_free(http("POST", "/_script", "{\"reset\":true}"));
}

static void fake_script(const char *route, const char *queue_json)
{
    char *b = ait_asprintf("{\"route\":\"%s\",\"queue\":%s}", route, queue_json);
    ait_free(http("POST", "/_script", b));
    ait_free(b);
}

/* Returns the fake's log entries for route (owned root in *root). */
static json_object *fake_requests(const char *route, json_object **root)
{
    char path[128];
    snprintf(path, sizeof(path), "/_requests?route=%s", route);
    char *s = http("GET", path, NULL);
    assert_int_equal(ait_json_parse(s, strlen(s), root, NULL), AIT_OK);
    ait_free(s);
    return ait_json_array(*root, "requests");
}

static size_t fake_count(const char *route)
{
    json_object *root = NULL;
    size_t n = json_object_array_length(fake_requests(route, &root));
    json_object_put(root);
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    /* Loopback only: a proxy from the environment must not see the fake's traffic. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ait-heal-test-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    snprintf(keyfile, sizeof(keyfile), "%s/key", tmpdir);
    FILE *f = fopen(keyfile, "w");
    fputs("sk-test-123\n", f);
    fclose(f);
    char portfile[300], script[512];
    snprintf(portfile, sizeof(portfile), "%s/port", tmpdir);
    const char *src = getenv("AIT_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_llm.py", src != NULL ? src : ".");
    fake_pid = fork();
    if (fake_pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execlp("python3", "python3", script, "--port-file", portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *pf = fopen(portfile, "r");
        if (pf != NULL) {
            int ok = fscanf(pf, "%d", &fake_port) == 1;
            fclose(pf);
            if (ok) {
                return 0;
            }
        }
        ait_time_sleep_ns(50 * AIT_NS_PER_MS);
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "%s/key", tmpdir);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd), "%s/port", tmpdir);
    unlink(cmd);
    rmdir(tmpdir);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    fake_reset();
    return 0;
}

/* ---- config helpers ---- */

typedef struct fake_clock {
    int64_t offset;
} fake_clock;

static int64_t fc_now(void *ctx)
{
    return ait_time_now_ns() + ((fake_clock *)ctx)->offset;
}

static int64_t fc_mono(void *ctx)
{
    return ait_time_mono_ns() + ((fake_clock *)ctx)->offset;
}

static char urls[16][128];

static ait_heal_provider_config prov(int slot, const char *name, ait_heal_provider_type t,
                                     const char *route)
{
    const char *suffix = "";
    if (t == AIT_HEAL_TYPE_GEMINI) {
        suffix = "/v1beta";
    } else if (t != AIT_HEAL_TYPE_ANTHROPIC && t != AIT_HEAL_TYPE_OLLAMA) {
        suffix = "/v1";
    }
    snprintf(urls[slot], sizeof(urls[slot]), "http://127.0.0.1:%d/%s%s", fake_port, route, suffix);
    ait_heal_provider_config p = {
        .name = name,
        .type = t,
        .base_url = urls[slot],
        .model = "fake-model-1",
        .api_key_file = t == AIT_HEAL_TYPE_OLLAMA ? NULL : keyfile,
        .connect_timeout_ms = 1000,
        .timeout_ms = 3000,
        .price_input_per_mtok = "2.50",
        .price_output_per_mtok = "10",
        .max_completion_tokens = 1000,
    };
    return p;
}

static ait_heal_engine *engine2(ait_heal_config *cfg, ait_heal_provider_config *ps, size_t n)
{
    cfg->providers = ps;
    cfg->n_providers = n;
    if (cfg->workers == 0) {
        cfg->workers = 1;
    }
    ait_heal_engine *e = NULL;
    ait_error err = {0};
    assert_int_equal(ait_heal_engine_new(cfg, &e, &err), AIT_OK);
    return e;
}

static ait_heal_request request(const char *const *order, size_t n)
{
    ait_heal_request r = {
        .runtime = "python",
        .code = "print(undefined_name)\n",
        .error_tail = "NameError: name 'undefined_name' is not defined",
        .attempt = 1,
        .providers = order,
        .n_providers = n,
        .temperature = -1,
        .budget_max_micro = -1,
        .traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    return r;
}

static ait_heal_result *run(ait_heal_engine *e, const ait_heal_request *req)
{
    ait_heal_result *r = NULL;
    assert_int_equal(ait_heal_run(e, req, &r), AIT_OK);
    assert_non_null(r);
    return r;
}

/* ---- tests ---- */

static void test_each_adapter_success(void **state)
{
    (void)state;
    struct {
        const char *name;
        ait_heal_provider_type t;
        const char *auth_header;
        const char *auth_value;
        const char *schema_path;
    } cases[] = {
        {"openai", AIT_HEAL_TYPE_OPENAI, "authorization", "Bearer sk-test-123",
         "response_format.json_schema.schema"},
        {"anthropic", AIT_HEAL_TYPE_ANTHROPIC, "x-api-key", "sk-test-123",
         "output_config.format.schema"},
        {"gemini", AIT_HEAL_TYPE_GEMINI, "x-goog-api-key", "sk-test-123",
         "generationConfig.responseSchema"},
        {"mistral", AIT_HEAL_TYPE_MISTRAL, "authorization", "Bearer sk-test-123",
         "response_format.json_schema.schema"},
        {"groq", AIT_HEAL_TYPE_GROQ, "authorization", "Bearer sk-test-123",
         "response_format.json_schema.schema"},
        {"ollama", AIT_HEAL_TYPE_OLLAMA, NULL, NULL, "format"},
        {"compat", AIT_HEAL_TYPE_OPENAI_COMPATIBLE, "authorization", "Bearer sk-test-123",
         "response_format.json_schema.schema"},
    };
    ait_heal_provider_config ps[7];
    for (int i = 0; i < 7; i++) {
        ps[i] = prov(i, cases[i].name, cases[i].t, cases[i].name);
    }
    ait_heal_config cfg = {0};
    ait_heal_engine *e = engine2(&cfg, ps, 7);
    for (int i = 0; i < 7; i++) {
        const char *order[] = {cases[i].name};
        ait_heal_request req = request(order, 1);
        ait_heal_result *r = run(e, &req);
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->consensus_code, "print(\"healed\")\n");
        assert_non_null(strstr(r->architect_notes, "architect"));
        assert_non_null(strstr(r->bug_hunter_notes, "bug hunter"));
        assert_non_null(strstr(r->consensus_reasoning, "consensus"));
        assert_string_equal(r->provider, cases[i].name);
        assert_string_equal(r->model, "fake-model-1");
        assert_int_equal(r->n_failovers, 0);
        assert_int_equal(r->n_calls, 1);
        assert_true(r->prompt_tokens > 0);
        assert_true(r->completion_tokens > 0);
        int64_t want = ait_heal_cost_micro(r->prompt_tokens, 2500000) +
                       ait_heal_cost_micro(r->completion_tokens, 10000000);
        assert_int_equal(r->cost_micro, want);
        assert_non_null(r->request_body);
        assert_non_null(strstr(r->response_body, "healed"));
        assert_null(strstr(r->request_body, "sk-test-123")); /* the key is never in a body */

        json_object *root = NULL;
        json_object *reqs = fake_requests(cases[i].name, &root);
        assert_int_equal(json_object_array_length(reqs), 1);
        json_object *q = json_object_array_get_idx(reqs, 0);
        if (cases[i].t != AIT_HEAL_TYPE_GEMINI) {
            assert_string_equal(ait_json_str(q, "body.model"), "fake-model-1");
        } else {
            assert_non_null(strstr(ait_json_str(q, "path"), "/models/fake-model-1:"));
        }
        json_object *headers = ait_json_path(q, "headers");
        if (cases[i].auth_header != NULL) {
            assert_string_equal(ait_json_str(headers, cases[i].auth_header), cases[i].auth_value);
        } else {
            assert_null(ait_json_str(headers, "authorization"));
        }
        assert_string_equal(ait_json_str(headers, "traceparent"), req.traceparent);
        json_object *body = ait_json_path(q, "body");
        assert_non_null(ait_json_path(body, cases[i].schema_path));
        if (cases[i].t == AIT_HEAL_TYPE_ANTHROPIC) {
            assert_string_equal(ait_json_str(headers, "anthropic-version"), "2023-06-01");
        }
        if (cases[i].t == AIT_HEAL_TYPE_OPENAI) {
            assert_int_equal(ait_json_int(body, "max_completion_tokens", -1), 1000);
        }
        if (cases[i].t == AIT_HEAL_TYPE_MISTRAL || cases[i].t == AIT_HEAL_TYPE_GROQ) {
            assert_int_equal(ait_json_int(body, "max_tokens", -1), 1000);
        }
        json_object_put(root);
        ait_heal_result_free(r);
    }
    ait_heal_engine_free(e);
}

/* One behaviour on the first provider, the second answers: the failover records the bucket. */
static void test_error_buckets(void **state)
{
    (void)state;
    struct {
        ait_heal_provider_type t;
        const char *beh;
        const char *want;
    } cases[] = {
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"status\",\"code\":500}", "HTTP 5xx"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"status\",\"code\":503}", "HTTP 503"},
        {AIT_HEAL_TYPE_ANTHROPIC, "{\"do\":\"status\",\"code\":529}", "Overloaded"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"html\"}", "MalformedBody"},
        {AIT_HEAL_TYPE_GEMINI, "{\"do\":\"html\",\"code\":502}", "HTTP 5xx"},
        {AIT_HEAL_TYPE_OLLAMA, "{\"do\":\"envelope\"}", "MalformedBody"},
        {AIT_HEAL_TYPE_MISTRAL, "{\"do\":\"cut\"}", "ShortBody"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"rate_limit\",\"retry_after\":1}", "RateLimited"},
        {AIT_HEAL_TYPE_GEMINI, "{\"do\":\"rate_limit\",\"retry_after\":1}", "RateLimited"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"quota\"}", "Quota"},
        {AIT_HEAL_TYPE_GROQ, "{\"do\":\"quota\"}", "Quota"},
        {AIT_HEAL_TYPE_ANTHROPIC, "{\"do\":\"quota\"}", "Quota"},
        {AIT_HEAL_TYPE_ANTHROPIC, "{\"do\":\"quota\",\"variant\":\"spend\"}", "Quota"},
        {AIT_HEAL_TYPE_GEMINI, "{\"do\":\"quota\"}", "Quota"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"refusal\"}", "Refusal"},
        {AIT_HEAL_TYPE_ANTHROPIC, "{\"do\":\"refusal\"}", "Refusal"},
        {AIT_HEAL_TYPE_GEMINI, "{\"do\":\"refusal\"}", "Refusal"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"bad_request\",\"message\":\"bad\"}", "BadRequest"},
        {AIT_HEAL_TYPE_OPENAI, "{\"do\":\"auth\"}", "Unauthorized"},
        {AIT_HEAL_TYPE_GEMINI, "{\"do\":\"auth\"}", "Forbidden"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_reset();
        ait_heal_provider_config ps[2] = {prov(0, "first", cases[i].t, "first"),
                                          prov(1, "backup", AIT_HEAL_TYPE_OPENAI, "backup")};
        ait_heal_config cfg = {.breaker_failures = 100};
        ait_heal_engine *e = engine2(&cfg, ps, 2);
        /* auth retries once with a fresh key: script it twice so both reads fail */
        char q[256];
        snprintf(q, sizeof(q), "[%s,%s,%s]", cases[i].beh, cases[i].beh, cases[i].beh);
        fake_script("first", q);
        const char *order[] = {"first", "backup"};
        ait_heal_request req = request(order, 2);
        ait_heal_result *r = run(e, &req);
        if (r->failure != AIT_HEAL_OK || r->n_failovers != 1 ||
            strcmp(r->failovers[0].error, cases[i].want) != 0) {
            print_error("case %zu %s: failure %d failovers %zu first %s\n", i, cases[i].beh,
                        r->failure, r->n_failovers,
                        r->n_failovers > 0 ? r->failovers[0].error : "-");
        }
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->provider, "backup");
        assert_int_equal(r->n_failovers, 1);
        assert_string_equal(r->failovers[0].provider, "first");
        assert_string_equal(r->failovers[0].error, cases[i].want);
        assert_true(r->failovers[0].failover_ms >= 0);
        assert_true(r->failovers[0].failover_ms < 1000);
        /* A refusal is not retried on the same model; quota/rate limit keep it closed. */
        size_t sent = fake_count("first");
        if (strcmp(cases[i].want, "Unauthorized") == 0 || strcmp(cases[i].want, "Forbidden") == 0) {
            assert_int_equal(sent, 2); /* one retry with a fresh key */
        } else {
            assert_int_equal(sent, 1);
        }
        int st = ait_heal_engine_circuit_state(e, "first");
        if (strcmp(cases[i].want, "Quota") == 0 || strcmp(cases[i].want, "RateLimited") == 0) {
            assert_int_equal(st, 1);
            /* Skipped until then: the next heal does not reach it. */
            ait_heal_result *r2 = run(e, &req);
            assert_int_equal(r2->failure, AIT_HEAL_OK);
            assert_int_equal(fake_count("first"), 1);
            assert_string_equal(r2->failovers[0].error, strcmp(cases[i].want, "Quota") == 0
                                                            ? "CircuitOpen"
                                                            : "RateLimited");
            ait_heal_result_free(r2);
        } else {
            assert_int_equal(st, 0);
        }
        ait_heal_result_free(r);
        ait_heal_engine_free(e);
    }
}

static void temps_of(const char *route, double *out, size_t *n)
{
    json_object *root = NULL;
    json_object *reqs = fake_requests(route, &root);
    *n = json_object_array_length(reqs);
    for (size_t i = 0; i < *n && i < 8; i++) {
        json_object *b = ait_json_path(json_object_array_get_idx(reqs, i), "body");
        out[i] = ait_json_double(b, "temperature", -1);
        if (out[i] < 0) {
            out[i] = ait_json_double(b, "generationConfig.temperature", -1);
        }
        if (out[i] < 0) {
            out[i] = ait_json_double(b, "options.temperature", -1);
        }
    }
    json_object_put(root);
}

static void test_invalid_answers_lower_temperature(void **state)
{
    (void)state;
    ait_heal_provider_type types[] = {AIT_HEAL_TYPE_OPENAI, AIT_HEAL_TYPE_ANTHROPIC,
                                      AIT_HEAL_TYPE_GEMINI, AIT_HEAL_TYPE_OLLAMA};
    for (int k = 0; k < 4; k++) {
        fake_reset();
        ait_heal_provider_config ps[2] = {prov(0, "first", types[k], "first"),
                                          prov(1, "backup", AIT_HEAL_TYPE_OPENAI, "backup")};
        ait_heal_config cfg = {0};
        ait_heal_engine *e = engine2(&cfg, ps, 2);
        fake_script("first", "[{\"do\":\"wrong_schema\"},{\"do\":\"length\"},"
                             "{\"do\":\"raw\",\"content\":\"I think the bug is...\"}]");
        const char *order[] = {"first", "backup"};
        ait_heal_request req = request(order, 2);
        ait_heal_result *r = run(e, &req);
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->provider, "backup");
        assert_int_equal(r->n_failovers, 1);
        assert_string_equal(r->failovers[0].error, "InvalidAnswer");
        assert_int_equal(r->n_calls, 4);
        double t[8];
        size_t n = 0;
        temps_of("first", t, &n);
        assert_int_equal(n, 3);
        assert_true(t[0] > 0.199 && t[0] < 0.201);
        assert_true(t[1] == 0.0);
        assert_true(t[2] == 0.0);
        /* Every call, even an invalid one, is billed and audited. */
        assert_true(r->calls[0].prompt_tokens > 0);
        assert_non_null(r->calls[1].response_body);
        ait_heal_result_free(r);

        /* The same code as the failing one is invalid too; a later good answer wins. */
        fake_reset();
        fake_script("first", "[{\"do\":\"answer\",\"fields\":{\"consensus_code\":"
                             "\"print(undefined_name)\\n\"}},{\"do\":\"answer\"}]");
        req.temperature = 0.5;
        r = run(e, &req);
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->provider, "first");
        temps_of("first", t, &n);
        assert_int_equal(n, 2);
        assert_true(t[0] > 0.499 && t[0] < 0.501);
        assert_true(t[1] > 0.299 && t[1] < 0.301);
        ait_heal_result_free(r);
        ait_heal_engine_free(e);
    }
}

static void test_circuit_breaker(void **state)
{
    (void)state;
    fake_clock fc = {0};
    ait_clock clk = {&fc, fc_now, fc_mono};
    ait_heal_provider_config ps[2] = {prov(0, "first", AIT_HEAL_TYPE_OPENAI, "first"),
                                      prov(1, "backup", AIT_HEAL_TYPE_ANTHROPIC, "backup")};
    ait_heal_config cfg = {.breaker_failures = 2, .breaker_cooldown_ms = 10000, .clock = &clk};
    ait_heal_engine *e = engine2(&cfg, ps, 2);
    fake_script("first", "[{\"do\":\"status\",\"code\":503},{\"do\":\"status\",\"code\":500},"
                         "{\"do\":\"status\",\"code\":503}]");
    const char *order[] = {"first", "backup"};
    ait_heal_request req = request(order, 2);
    for (int i = 0; i < 2; i++) {
        ait_heal_result *r = run(e, &req);
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->provider, "backup");
        ait_heal_result_free(r);
    }
    assert_int_equal(fake_count("first"), 2);
    assert_int_equal(ait_heal_engine_circuit_state(e, "first"), 1);
    /* Open: no request reaches it. */
    for (int i = 0; i < 3; i++) {
        ait_heal_result *r = run(e, &req);
        assert_string_equal(r->failovers[0].error, "CircuitOpen");
        assert_string_equal(r->provider, "backup");
        ait_heal_result_free(r);
    }
    assert_int_equal(fake_count("first"), 2);
    /* After the cooldown: half-open, one probe; it fails (503) and re-opens at once. */
    fc.offset += 11 * AIT_NS_PER_S;
    assert_int_equal(ait_heal_engine_circuit_state(e, "first"), 2);
    ait_heal_result *r = run(e, &req);
    assert_string_equal(r->failovers[0].error, "HTTP 503");
    ait_heal_result_free(r);
    assert_int_equal(fake_count("first"), 3);
    assert_int_equal(ait_heal_engine_circuit_state(e, "first"), 1);
    r = run(e, &req);
    assert_string_equal(r->failovers[0].error, "CircuitOpen");
    ait_heal_result_free(r);
    assert_int_equal(fake_count("first"), 3);
    /* Next probe succeeds (the fake's default answer) and closes the circuit. */
    fc.offset += 11 * AIT_NS_PER_S;
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    assert_string_equal(r->provider, "first");
    assert_int_equal(r->n_failovers, 0);
    ait_heal_result_free(r);
    assert_int_equal(ait_heal_engine_circuit_state(e, "first"), 0);
    ait_heal_engine_free(e);
}

static void test_retry_after_expires(void **state)
{
    (void)state;
    fake_clock fc = {0};
    ait_clock clk = {&fc, fc_now, fc_mono};
    ait_heal_provider_config ps[2] = {prov(0, "first", AIT_HEAL_TYPE_OPENAI, "first"),
                                      prov(1, "backup", AIT_HEAL_TYPE_OPENAI, "backup")};
    ait_heal_config cfg = {.clock = &clk};
    ait_heal_engine *e = engine2(&cfg, ps, 2);
    fake_script("first", "[{\"do\":\"rate_limit\",\"retry_after\":20,\"reset\":\"6m0s\"}]");
    const char *order[] = {"first", "backup"};
    ait_heal_request req = request(order, 2);
    ait_heal_result *r = run(e, &req);
    assert_string_equal(r->failovers[0].error, "RateLimited");
    ait_heal_result_free(r);
    fc.offset += 30 * AIT_NS_PER_S; /* past Retry-After, not past x-ratelimit-reset (6 min) */
    r = run(e, &req);
    assert_string_equal(r->failovers[0].error, "RateLimited");
    ait_heal_result_free(r);
    assert_int_equal(fake_count("first"), 1);
    fc.offset += 6 * 60 * AIT_NS_PER_S;
    r = run(e, &req);
    assert_string_equal(r->provider, "first");
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

typedef struct ledger {
    pthread_mutex_t mu;
    int64_t limit, spent, reserved;
    int reserves, settles, releases;
    int64_t last_estimate;
    char last_provider[32];
    int down; /* reserve fails as an unreachable etcd would */
} ledger;

static ait_status l_reserve(void *ctx, const char *provider, int64_t est, void **handle)
{
    ledger *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->reserves++;
    l->last_estimate = est;
    snprintf(l->last_provider, sizeof(l->last_provider), "%s", provider);
    ait_status st = AIT_OK;
    if (l->down) {
        st = AIT_ERR_IO;
    } else if (l->spent + l->reserved + est > l->limit) {
        st = AIT_ERR_QUOTA;
    } else {
        l->reserved += est;
        int64_t *h = ait_malloc(sizeof(int64_t));
        *h = est;
        *handle = h;
    }
    pthread_mutex_unlock(&l->mu);
    return st;
}

static void l_settle(void *ctx, void *handle, int64_t actual)
{
    ledger *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->settles++;
    l->reserved -= *(int64_t *)handle;
    l->spent += actual;
    pthread_mutex_unlock(&l->mu);
    ait_free(handle);
}

static void l_release(void *ctx, void *handle)
{
    ledger *l = ctx;
    pthread_mutex_lock(&l->mu);
    l->releases++;
    l->reserved -= *(int64_t *)handle;
    pthread_mutex_unlock(&l->mu);
    ait_free(handle);
}

static void test_budget(void **state)
{
    (void)state;
    ledger l = {.mu = PTHREAD_MUTEX_INITIALIZER, .limit = 1000000};
    ait_heal_provider_config ps[2] = {prov(0, "first", AIT_HEAL_TYPE_OPENAI, "first"),
                                      prov(1, "pricey", AIT_HEAL_TYPE_OPENAI, "pricey")};
    ps[1].price_output_per_mtok = "5000"; /* 1000 tokens * $5000/M = $5 > the $1 ledger */
    ait_heal_config cfg = {.budget = {&l, l_reserve, l_settle, l_release}};
    ait_heal_engine *e = engine2(&cfg, ps, 2);
    const char *order[] = {"first"};
    ait_heal_request req = request(order, 1);
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    assert_int_equal(l.reserves, 1);
    assert_int_equal(l.settles, 1);
    assert_int_equal(l.reserved, 0);
    assert_int_equal(l.spent, r->cost_micro);
    assert_true(r->cost_micro > 0);
    /* Estimate: ~bytes/4 input at $2.50 plus 1000 output tokens at $10. */
    assert_true(l.last_estimate >= 10000 && l.last_estimate < 20000);
    ait_heal_result_free(r);

    /* The ledger refuses the provider that would answer: nothing is sent. */
    const char *order2[] = {"pricey"};
    req = request(order2, 1);
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_BUDGET_EXCEEDED);
    assert_string_equal(l.last_provider, "pricey");
    assert_int_equal(fake_count("pricey"), 0);
    assert_int_equal(r->n_calls, 0);
    assert_string_equal(r->failovers[0].error, "BudgetExceeded");
    ait_heal_result_free(r);

    /* The ledger cannot be reached: no call is sent whose spend could not be counted, and the
     * heal ends LedgerUnavailable (retried later), not BudgetExceeded (final). */
    l.down = 1;
    int sent_before = fake_count("first");
    req = request(order, 1);
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_LEDGER_UNAVAILABLE);
    assert_string_equal(ait_heal_failure_str(r->failure), "LedgerUnavailable");
    assert_int_equal(fake_count("first"), sent_before);
    assert_int_equal(r->n_calls, 0);
    assert_string_equal(r->failovers[0].error, "LedgerUnavailable");
    ait_heal_result_free(r);
    l.down = 0;

    /* The task's own cap, already nearly spent. */
    req = request(order, 1);
    req.budget_max_micro = 20000;
    req.budget_spent_micro = 15000;
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_BUDGET_EXCEEDED);
    assert_int_equal(fake_count("first"), 1);
    ait_heal_result_free(r);
    req.budget_spent_micro = 0;
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void test_all_down(void **state)
{
    (void)state;
    ait_heal_provider_config ps[3] = {prov(0, "a", AIT_HEAL_TYPE_OPENAI, "a"),
                                      prov(1, "b", AIT_HEAL_TYPE_GEMINI, "b"),
                                      prov(2, "dead", AIT_HEAL_TYPE_OLLAMA, "dead")};
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", closed_port());
    ps[2].base_url = dead;
    ait_heal_config cfg = {0};
    ait_heal_engine *e = engine2(&cfg, ps, 3);
    fake_script("a", "[{\"do\":\"status\",\"code\":503}]");
    fake_script("b", "[{\"do\":\"status\",\"code\":503}]");
    ait_heal_request req = request(NULL, 0); /* the default order */
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_PROVIDERS_UNAVAILABLE);
    assert_string_equal(ait_heal_failure_str(r->failure), "ProvidersUnavailable");
    assert_null(r->consensus_code);
    assert_int_equal(r->n_failovers, 3);
    assert_string_equal(r->failovers[0].provider, "a");
    assert_string_equal(r->failovers[1].error, "HTTP 503");
    assert_string_equal(r->failovers[2].provider, "dead");
    assert_string_equal(r->failovers[2].error, "ConnectionFailed");
    assert_true(r->failovers[0].failover_ms >= 0 && r->failovers[0].failover_ms < 1000);
    assert_int_equal(r->failovers[2].failover_ms, -1);
    ait_heal_result_free(r);

    /* Unknown provider name in the task. */
    const char *bad[] = {"nope"};
    req = request(bad, 1);
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_INVALID_REQUEST);
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

static void test_transport_failures(void **state)
{
    (void)state;
    struct {
        const char *beh;
        const char *want;
    } cases[] = {
        {"{\"do\":\"hang\",\"seconds\":5}", "Timeout"},
        {"{\"do\":\"drip\",\"interval\":0.2}", "SlowDrip"},
        {"{\"do\":\"huge\"}", "TooLarge"},
        {"{\"do\":\"huge\",\"chunked\":true}", "TooLarge"},
    };
    for (size_t i = 0; i < 4; i++) {
        fake_reset();
        ait_heal_provider_config ps[2] = {prov(0, "first", AIT_HEAL_TYPE_OPENAI, "first"),
                                          prov(1, "backup", AIT_HEAL_TYPE_OPENAI, "backup")};
        ps[0].timeout_ms = 1000;
        ait_heal_config cfg = {.min_speed_bytes_per_s = 1000, .min_speed_window_ms = 500};
        ait_heal_engine *e = engine2(&cfg, ps, 2);
        fake_script("first", "[]");
        char q[128];
        snprintf(q, sizeof(q), "[%s]", cases[i].beh);
        fake_script("first", q);
        const char *order[] = {"first", "backup"};
        ait_heal_request req = request(order, 2);
        int64_t t0 = ait_time_mono_ns();
        ait_heal_result *r = run(e, &req);
        int64_t ms = (ait_time_mono_ns() - t0) / AIT_NS_PER_MS;
        assert_int_equal(r->failure, AIT_HEAL_OK);
        assert_string_equal(r->provider, "backup");
        assert_string_equal(r->failovers[0].error, cases[i].want);
        assert_true(ms < 2500);
        /* Nothing past the 4 MiB bound was kept. */
        assert_true(r->calls[0].response_body == NULL ||
                    strlen(r->calls[0].response_body) <= 4 * 1024 * 1024);
        ait_heal_result_free(r);
        ait_heal_engine_free(e);
    }
}

/* TLS is always on and verified: an https URL to a plain-HTTP port fails the handshake and
 * the engine moves on. */
static void test_tls_failure(void **state)
{
    (void)state;
    ait_heal_provider_config ps[2] = {prov(0, "tls", AIT_HEAL_TYPE_OPENAI, "tls"),
                                      prov(1, "backup", AIT_HEAL_TYPE_OPENAI, "backup")};
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/tls/v1", fake_port);
    ps[0].base_url = url;
    ait_heal_config cfg = {0};
    ait_heal_engine *e = engine2(&cfg, ps, 2);
    const char *order[] = {"tls", "backup"};
    ait_heal_request req = request(order, 2);
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    assert_string_equal(r->failovers[0].error, "TLSError");
    assert_int_equal(fake_count("tls"), 0);
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

typedef struct keys {
    int calls, forced;
} keys;

static ait_status k_get(void *ctx, const char *provider, int force, char **key, ait_error *err)
{
    (void)provider;
    (void)err;
    keys *k = ctx;
    k->calls++;
    k->forced += force;
    *key = ait_strdup(force ? "sk-new" : "sk-old");
    return AIT_OK;
}

static void test_auth_refresh(void **state)
{
    (void)state;
    keys k = {0};
    ait_heal_provider_config ps[1] = {prov(0, "first", AIT_HEAL_TYPE_ANTHROPIC, "first")};
    ait_heal_config cfg = {.keys = {&k, k_get}};
    ait_heal_engine *e = engine2(&cfg, ps, 1);
    fake_script("first", "[{\"do\":\"auth\"}]");
    const char *order[] = {"first"};
    ait_heal_request req = request(order, 1);
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    assert_int_equal(k.calls, 2);
    assert_int_equal(k.forced, 1);
    json_object *root = NULL;
    json_object *reqs = fake_requests("first", &root);
    assert_int_equal(json_object_array_length(reqs), 2);
    assert_string_equal(ait_json_str(json_object_array_get_idx(reqs, 0), "headers.x-api-key"),
                        "sk-old");
    assert_string_equal(ait_json_str(json_object_array_get_idx(reqs, 1), "headers.x-api-key"),
                        "sk-new");
    json_object_put(root);
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

static void test_output_mode_fallback(void **state)
{
    (void)state;
    ait_heal_provider_config ps[2] = {prov(0, "claude", AIT_HEAL_TYPE_ANTHROPIC, "claude"),
                                      prov(1, "compat", AIT_HEAL_TYPE_OPENAI_COMPATIBLE, "compat")};
    ait_heal_config cfg = {0};
    ait_heal_engine *e = engine2(&cfg, ps, 2);
    fake_script("claude", "[{\"do\":\"bad_request\",\"message\":\"output_config: Extra inputs "
                          "are not permitted\"}]");
    fake_script("compat", "[{\"do\":\"bad_request\",\"message\":\"response_format json_schema "
                          "is not supported\"}]");
    const char *o1[] = {"claude"};
    ait_heal_request req = request(o1, 1);
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    ait_heal_result_free(r);
    json_object *root = NULL;
    json_object *reqs = fake_requests("claude", &root);
    assert_int_equal(json_object_array_length(reqs), 2);
    json_object *b2 = ait_json_path(json_object_array_get_idx(reqs, 1), "body");
    assert_null(ait_json_path(b2, "output_config"));
    assert_string_equal(ait_json_str(b2, "tool_choice.type"), "tool");
    json_object_put(root);

    const char *o2[] = {"compat"};
    req = request(o2, 1);
    r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    ait_heal_result_free(r);
    reqs = fake_requests("compat", &root);
    assert_int_equal(json_object_array_length(reqs), 2);
    assert_string_equal(
        ait_json_str(json_object_array_get_idx(reqs, 1), "body.response_format.type"),
        "json_object");
    json_object_put(root);
    ait_heal_engine_free(e);
}

static void test_prompt_generation(void **state)
{
    (void)state;
    ait_heal_provider_config ps[1] = {prov(0, "gem", AIT_HEAL_TYPE_GEMINI, "gem")};
    ait_heal_config cfg = {0};
    ait_heal_engine *e = engine2(&cfg, ps, 1);
    ait_heal_request req = {.runtime = "bash",
                            .prompt = "print the word healed",
                            .temperature = -1,
                            .budget_max_micro = -1};
    ait_heal_result *r = run(e, &req);
    assert_int_equal(r->failure, AIT_HEAL_OK);
    assert_string_equal(r->consensus_code, "echo healed\n");
    assert_non_null(strstr(r->request_body, "print the word healed"));
    ait_heal_result_free(r);
    ait_heal_engine_free(e);
}

typedef struct sink_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, cancelled;
} sink_state;

static void on_done(void *ctx, const char *key, ait_heal_result *r)
{
    sink_state *s = ctx;
    assert_non_null(key);
    pthread_mutex_lock(&s->mu);
    s->done++;
    s->ok += r->failure == AIT_HEAL_OK;
    s->cancelled += r->failure == AIT_HEAL_CANCELLED;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    ait_heal_result_free(r);
}

static void test_submit_pool(void **state)
{
    (void)state;
    sink_state s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    ait_heal_provider_config ps[1] = {prov(0, "first", AIT_HEAL_TYPE_OPENAI, "first")};
    ait_heal_config cfg = {.workers = 3, .queue_max = 8};
    ait_heal_engine *e = engine2(&cfg, ps, 1);
    const char *order[] = {"first"};
    ait_heal_request req = request(order, 1);
    char key[32];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "ns/task-%d", i);
        assert_int_equal(ait_heal_submit(e, key, &req, on_done, &s, NULL), AIT_OK);
    }
    pthread_mutex_lock(&s.mu);
    while (s.done < 6) {
        pthread_cond_wait(&s.cv, &s.mu);
    }
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(s.ok, 6);
    assert_int_equal(fake_count("first"), 6);
    ait_heal_engine_free(e);

    /* Shutdown: a running heal is aborted and a queued one cancelled; both are reported. */
    fake_reset();
    memset(&s.done, 0, 3 * sizeof(int));
    ait_heal_config cfg1 = {.workers = 1};
    ps[0].timeout_ms = 20000;
    e = engine2(&cfg1, ps, 1);
    fake_script("first", "[{\"do\":\"hang\",\"seconds\":10}]");
    assert_int_equal(ait_heal_submit(e, "ns/a", &req, on_done, &s, NULL), AIT_OK);
    ait_error err = {0};
    assert_int_equal(ait_heal_submit(e, "ns/a", &req, on_done, &s, &err), AIT_ERR_EXISTS);
    assert_int_equal(ait_heal_submit(e, "ns/b", &req, on_done, &s, NULL), AIT_OK);
    for (int i = 0; i < 100 && fake_count("first") == 0; i++) {
        ait_time_sleep_ns(20 * AIT_NS_PER_MS);
    }
    int64_t t0 = ait_time_mono_ns();
    ait_heal_engine_free(e);
    assert_true((ait_time_mono_ns() - t0) / AIT_NS_PER_MS < 3000);
    assert_int_equal(s.done, 2);
    assert_int_equal(s.cancelled, 2);
}

static void test_bad_config(void **state)
{
    (void)state;
    ait_heal_provider_config ps[2] = {prov(0, "x", AIT_HEAL_TYPE_OPENAI, "x"),
                                      prov(1, "x", AIT_HEAL_TYPE_OPENAI, "x")};
    ait_heal_config cfg = {.providers = ps, .n_providers = 2};
    ait_heal_engine *e = NULL;
    ait_error err = {0};
    assert_int_equal(ait_heal_engine_new(&cfg, &e, &err), AIT_ERR_INVALID);
    assert_null(e);
    ps[1].name = "y";
    ps[1].price_input_per_mtok = "cheap";
    assert_int_equal(ait_heal_engine_new(&cfg, &e, &err), AIT_ERR_INVALID);
    assert_non_null(strstr(err.msg, "price"));
    ps[1].price_input_per_mtok = "1";
    ps[1].type = AIT_HEAL_TYPE_OPENAI_COMPATIBLE;
    ps[1].base_url = NULL;
    assert_int_equal(ait_heal_engine_new(&cfg, &e, &err), AIT_ERR_INVALID);
    ait_heal_engine_free(NULL);
    ait_heal_result_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_each_adapter_success, test_setup),
        cmocka_unit_test_setup(test_error_buckets, test_setup),
        cmocka_unit_test_setup(test_invalid_answers_lower_temperature, test_setup),
        cmocka_unit_test_setup(test_circuit_breaker, test_setup),
        cmocka_unit_test_setup(test_retry_after_expires, test_setup),
        cmocka_unit_test_setup(test_budget, test_setup),
        cmocka_unit_test_setup(test_all_down, test_setup),
        cmocka_unit_test_setup(test_transport_failures, test_setup),
        cmocka_unit_test_setup(test_tls_failure, test_setup),
        cmocka_unit_test_setup(test_auth_refresh, test_setup),
        cmocka_unit_test_setup(test_output_mode_fallback, test_setup),
        cmocka_unit_test_setup(test_prompt_generation, test_setup),
        cmocka_unit_test_setup(test_submit_pool, test_setup),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

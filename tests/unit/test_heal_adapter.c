/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/heal/adapter.c and the pure helpers of heal.h: native request bodies per
 * provider, classification of every answer and error shape, answer validation, durations,
 * prices and cost. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "heal/adapter.h"
#include "heal/heal.h"

static const char *GOOD = "{\"consensus_code\":\"print(2)\",\"architect_notes\":\"a\","
                          "\"bug_hunter_notes\":\"b\",\"consensus_reasoning\":\"r\"}";

static json_object *build(ait_heal_provider_type t, ait_heal_output_mode mode, char **url)
{
    char *body = NULL;
    ait_heal_adapter_build(t, mode, "http://h/base/", "m-1", "SYS", "USER", 0.2, 1234, url, &body);
    json_object *o = NULL;
    assert_int_equal(ait_json_parse(body, strlen(body), &o, NULL), AIT_OK);
    ait_free(body);
    return o;
}

static void test_build_openai_family(void **state)
{
    (void)state;
    char *url = NULL;
    json_object *o = build(AIT_HEAL_TYPE_OPENAI, AIT_HEAL_OUTPUT_AUTO, &url);
    assert_string_equal(url, "http://h/base/chat/completions");
    assert_string_equal(ait_json_str(o, "model"), "m-1");
    assert_int_equal(ait_json_int(o, "max_completion_tokens", -1), 1234);
    assert_null(ait_json_path(o, "max_tokens"));
    assert_true(ait_json_double(o, "temperature", -1) > 0.19 &&
                ait_json_double(o, "temperature", -1) < 0.21);
    assert_string_equal(ait_json_str(o, "response_format.type"), "json_schema");
    assert_true(ait_json_bool(o, "response_format.json_schema.strict", 0));
    assert_false(ait_json_bool(o, "response_format.json_schema.schema.additionalProperties", 1));
    json_object *req = ait_json_array(o, "response_format.json_schema.schema.required");
    assert_int_equal(json_object_array_length(req), 4);
    assert_string_equal(
        ait_json_str(o, "response_format.json_schema.schema.properties.consensus_code.type"),
        "string");
    json_object *msgs = ait_json_array(o, "messages");
    assert_string_equal(ait_json_str(json_object_array_get_idx(msgs, 0), "role"), "system");
    assert_string_equal(ait_json_str(json_object_array_get_idx(msgs, 1), "content"), "USER");
    json_object_put(o);
    ait_free(url);

    /* Mistral and Groq name the limit max_tokens. */
    o = build(AIT_HEAL_TYPE_MISTRAL, AIT_HEAL_OUTPUT_AUTO, &url);
    assert_int_equal(ait_json_int(o, "max_tokens", -1), 1234);
    assert_null(ait_json_path(o, "max_completion_tokens"));
    json_object_put(o);
    ait_free(url);
    o = build(AIT_HEAL_TYPE_GROQ, AIT_HEAL_OUTPUT_JSON_OBJECT, &url);
    assert_string_equal(ait_json_str(o, "response_format.type"), "json_object");
    assert_int_equal(ait_json_int(o, "max_tokens", -1), 1234);
    json_object_put(o);
    ait_free(url);
}

static void test_build_anthropic(void **state)
{
    (void)state;
    char *url = NULL;
    json_object *o = build(AIT_HEAL_TYPE_ANTHROPIC, AIT_HEAL_OUTPUT_AUTO, &url);
    assert_string_equal(url, "http://h/base/v1/messages");
    assert_string_equal(ait_json_str(o, "system"), "SYS");
    assert_int_equal(ait_json_int(o, "max_tokens", -1), 1234);
    assert_string_equal(ait_json_str(o, "output_config.format.type"), "json_schema");
    assert_string_equal(ait_json_str(o, "output_config.format.schema.type"), "object");
    assert_null(ait_json_path(o, "tools"));
    json_object *msgs = ait_json_array(o, "messages");
    assert_int_equal(json_object_array_length(msgs), 1);
    assert_string_equal(ait_json_str(json_object_array_get_idx(msgs, 0), "role"), "user");
    json_object_put(o);
    ait_free(url);
    o = build(AIT_HEAL_TYPE_ANTHROPIC, AIT_HEAL_OUTPUT_TOOL, &url);
    assert_null(ait_json_path(o, "output_config"));
    assert_string_equal(ait_json_str(o, "tool_choice.type"), "tool");
    assert_string_equal(ait_json_str(o, "tool_choice.name"), "heal_result");
    json_object *tool = json_object_array_get_idx(ait_json_array(o, "tools"), 0);
    assert_string_equal(ait_json_str(tool, "input_schema.type"), "object");
    json_object_put(o);
    ait_free(url);
}

static void test_build_gemini_ollama(void **state)
{
    (void)state;
    char *url = NULL;
    json_object *o = build(AIT_HEAL_TYPE_GEMINI, AIT_HEAL_OUTPUT_AUTO, &url);
    assert_string_equal(url, "http://h/base/models/m-1:generateContent");
    assert_string_equal(ait_json_str(o, "generationConfig.responseMimeType"), "application/json");
    assert_string_equal(ait_json_str(o, "generationConfig.responseSchema.type"), "OBJECT");
    assert_string_equal(
        ait_json_str(o, "generationConfig.responseSchema.properties.architect_notes.type"),
        "STRING");
    assert_int_equal(ait_json_int(o, "generationConfig.maxOutputTokens", -1), 1234);
    json_object *sp = ait_json_array(o, "systemInstruction.parts");
    assert_string_equal(ait_json_str(json_object_array_get_idx(sp, 0), "text"), "SYS");
    json_object_put(o);
    ait_free(url);

    o = build(AIT_HEAL_TYPE_OLLAMA, AIT_HEAL_OUTPUT_AUTO, &url);
    assert_string_equal(url, "http://h/base/api/chat");
    assert_false(ait_json_bool(o, "stream", 1));
    assert_string_equal(ait_json_str(o, "format.type"), "object");
    assert_true(ait_json_double(o, "options.temperature", -1) > 0.19);
    json_object_put(o);
    ait_free(url);
}

static void parse(ait_heal_provider_type t, int status, const char *body, ait_heal_answer *a)
{
    memset(a, 0, sizeof(*a));
    ait_heal_http_meta meta = {0};
    ait_heal_adapter_parse(t, status, &meta, body, strlen(body), "print(1)", a);
}

static char *wrap_openai(const char *content, const char *finish)
{
    json_object *o = json_object_new_object();
    json_object *ch = json_object_new_array();
    json_object *c0 = json_object_new_object();
    json_object *m = json_object_new_object();
    json_object_object_add(m, "content", json_object_new_string(content));
    json_object_object_add(m, "refusal", NULL);
    json_object_object_add(c0, "message", m);
    json_object_object_add(c0, "finish_reason", json_object_new_string(finish));
    json_object_array_add(ch, c0);
    json_object_object_add(o, "choices", ch);
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int(100));
    json_object_object_add(u, "completion_tokens", json_object_new_int(50));
    json_object_object_add(o, "usage", u);
    char *s = ait_strdup(json_object_to_json_string(o));
    json_object_put(o);
    return s;
}

static void test_parse_success_each_type(void **state)
{
    (void)state;
    ait_heal_answer a;
    char *b = wrap_openai(GOOD, "stop");
    parse(AIT_HEAL_TYPE_OPENAI, 200, b, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_OK);
    assert_string_equal(a.fields[AIT_HEAL_F_CODE], "print(2)");
    assert_string_equal(a.fields[AIT_HEAL_F_REASONING], "r");
    assert_int_equal(a.prompt_tokens, 100);
    assert_int_equal(a.completion_tokens, 50);
    ait_heal_answer_clear(&a);
    ait_free(b);

    parse(AIT_HEAL_TYPE_ANTHROPIC, 200,
          "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"name\":\"heal_result\","
          "\"input\":{\"consensus_code\":\"x=1\",\"architect_notes\":\"a\","
          "\"bug_hunter_notes\":\"b\",\"consensus_reasoning\":\"r\"}}],\"stop_reason\":"
          "\"tool_use\",\"usage\":{\"input_tokens\":7,\"output_tokens\":9}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_OK);
    assert_string_equal(a.fields[AIT_HEAL_F_CODE], "x=1");
    assert_int_equal(a.prompt_tokens, 7);
    assert_int_equal(a.completion_tokens, 9);
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_GEMINI, 200,
          "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"{\\\"consensus_code\\\":\\\"y\\\","
          "\\\"architect_notes\\\":\\\"a\\\",\"},{\"text\":\"\\\"bug_hunter_notes\\\":\\\"b\\\","
          "\\\"consensus_reasoning\\\":\\\"r\\\"}\"}]},\"finishReason\":\"STOP\"}],"
          "\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_OK); /* parts are joined */
    assert_string_equal(a.fields[AIT_HEAL_F_CODE], "y");
    assert_int_equal(a.completion_tokens, 4);
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_OLLAMA, 200,
          "{\"message\":{\"role\":\"assistant\",\"content\":\"```json\\n{\\\"consensus_code\\\":"
          "\\\"z\\\",\\\"architect_notes\\\":\\\"\\\",\\\"bug_hunter_notes\\\":\\\"\\\","
          "\\\"consensus_reasoning\\\":\\\"\\\"}\\n```\"},\"done\":true,\"done_reason\":\"stop\","
          "\"prompt_eval_count\":11,\"eval_count\":12}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_OK);
    assert_string_equal(a.fields[AIT_HEAL_F_CODE], "z");
    assert_int_equal(a.prompt_tokens, 11);
    ait_heal_answer_clear(&a);
}

static void test_parse_invalid_and_refusal(void **state)
{
    (void)state;
    ait_heal_answer a;
    char *b = wrap_openai(GOOD, "length");
    parse(AIT_HEAL_TYPE_OPENAI, 200, b, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_INVALID);
    assert_string_equal(a.error, "Truncated");
    assert_int_equal(a.prompt_tokens, 100); /* a bad answer is still billed */
    ait_heal_answer_clear(&a);
    ait_free(b);

    b = wrap_openai("{\"code\":\"x\"}", "stop");
    parse(AIT_HEAL_TYPE_GROQ, 200, b, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_INVALID);
    ait_heal_answer_clear(&a);
    ait_free(b);

    parse(AIT_HEAL_TYPE_OPENAI, 200,
          "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"no\"},"
          "\"finish_reason\":\"stop\"}]}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_REFUSAL);
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_ANTHROPIC, 200,
          "{\"type\":\"message\",\"content\":[],\"stop_reason\":\"refusal\"}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_REFUSAL);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_ANTHROPIC, 200,
          "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"{\"}],"
          "\"stop_reason\":\"max_tokens\"}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_INVALID);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_GEMINI, 200, "{\"candidates\":[{\"finishReason\":\"SAFETY\"}]}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_REFUSAL);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_GEMINI, 200,
          "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"{\"}]},\"finishReason\":"
          "\"MAX_TOKENS\"}]}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_INVALID);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_OLLAMA, 200,
          "{\"message\":{\"content\":\"{\"},\"done\":true,\"done_reason\":\"length\"}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_INVALID);
    ait_heal_answer_clear(&a);

    /* Not JSON (HTML) and JSON of the wrong envelope are the server's fault: elsewhere. */
    parse(AIT_HEAL_TYPE_OPENAI, 200, "<html>502</html>", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_GEMINI, 200, "{\"result\":1}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_OPENAI, 200, "[1,2]", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    ait_heal_answer_clear(&a);
}

static void test_parse_errors(void **state)
{
    (void)state;
    ait_heal_answer a;
    ait_heal_http_meta meta = {"2", "6m0s", "1s"};
    const char *rl = "{\"error\":{\"message\":\"Rate limit\",\"type\":\"requests\","
                     "\"code\":\"rate_limit_exceeded\"}}";
    memset(&a, 0, sizeof(a));
    ait_heal_adapter_parse(AIT_HEAL_TYPE_OPENAI, 429, &meta, rl, strlen(rl), NULL, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RATE_LIMITED);
    assert_int_equal(a.retry_after_ms, 360000); /* the longest of the named waits */
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_OPENAI, 429,
          "{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\","
          "\"code\":\"insufficient_quota\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_QUOTA);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_MISTRAL, 503, "{\"message\":\"down\"}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_OPENAI, 401, "{\"error\":{\"message\":\"bad key\"}}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_AUTH);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_OPENAI, 400,
          "{\"error\":{\"message\":\"Invalid parameter: 'response_format' of type "
          "'json_schema' is not supported with this model.\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_UNSUPPORTED_MODE);
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_ANTHROPIC, 529,
          "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Over\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    assert_string_equal(a.error, "Overloaded");
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_ANTHROPIC, 400,
          "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
          "\"You have reached your specified API usage limits.\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_QUOTA);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_ANTHROPIC, 429,
          "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
          "\"This request would exceed your account's monthly spend limit.\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_QUOTA);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_ANTHROPIC, 429,
          "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}",
          &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RATE_LIMITED);
    ait_heal_answer_clear(&a);

    const char *gday = "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
                       "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
                       "[{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]},"
                       "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":"
                       "\"37s\"}]}}";
    parse(AIT_HEAL_TYPE_GEMINI, 429, gday, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_QUOTA);
    ait_heal_answer_clear(&a);
    const char *gmin = "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
                       "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
                       "[{\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel\"}]},"
                       "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":"
                       "\"37s\"}]}}";
    parse(AIT_HEAL_TYPE_GEMINI, 429, gmin, &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RATE_LIMITED);
    assert_int_equal(a.retry_after_ms, 37000);
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_GEMINI, 403,
          "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\",\"message\":\"no\"}}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_AUTH);
    ait_heal_answer_clear(&a);

    parse(AIT_HEAL_TYPE_OLLAMA, 404, "{\"error\":\"model 'x' not found\"}", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_FATAL);
    assert_string_equal(a.detail, "model 'x' not found");
    ait_heal_answer_clear(&a);
    parse(AIT_HEAL_TYPE_OLLAMA, 500, "<html>oops</html>", &a);
    assert_int_equal(a.outcome, AIT_HEAL_OUT_RETRY);
    ait_heal_answer_clear(&a);
}

static void test_validate(void **state)
{
    (void)state;
    char *f[AIT_HEAL_F_COUNT_];
    ait_error err = {0};
    assert_int_equal(ait_heal_adapter_validate(GOOD, strlen(GOOD), "print(1)", f, &err), AIT_OK);
    assert_string_equal(f[AIT_HEAL_F_ARCHITECT], "a");
    for (int i = 0; i < AIT_HEAL_F_COUNT_; i++) {
        ait_free(f[i]);
    }
    /* Same code as the failing one (up to surrounding whitespace). */
    assert_int_not_equal(ait_heal_adapter_validate(GOOD, strlen(GOOD), "  print(2)\n", f, &err),
                         AIT_OK);
    assert_non_null(strstr(err.msg, "equals"));
    const char *extra = "{\"consensus_code\":\"x\",\"architect_notes\":\"a\","
                        "\"bug_hunter_notes\":\"b\",\"consensus_reasoning\":\"r\",\"z\":\"\"}";
    assert_int_not_equal(ait_heal_adapter_validate(extra, strlen(extra), NULL, f, &err), AIT_OK);
    const char *num = "{\"consensus_code\":1,\"architect_notes\":\"a\","
                      "\"bug_hunter_notes\":\"b\",\"consensus_reasoning\":\"r\"}";
    assert_int_not_equal(ait_heal_adapter_validate(num, strlen(num), NULL, f, &err), AIT_OK);
    const char *empty = "{\"consensus_code\":\"  \",\"architect_notes\":\"a\","
                        "\"bug_hunter_notes\":\"b\",\"consensus_reasoning\":\"r\"}";
    assert_int_not_equal(ait_heal_adapter_validate(empty, strlen(empty), NULL, f, &err), AIT_OK);
    assert_null(f[0]);
    /* Over 256 KiB of code. */
    size_t big = AIT_HEAL_CODE_MAX + 10;
    char *code = ait_malloc(big + 200);
    int n = snprintf(code, 200,
                     "{\"architect_notes\":\"\",\"bug_hunter_notes\":\"\","
                     "\"consensus_reasoning\":\"\",\"consensus_code\":\"");
    memset(code + n, 'x', big);
    memcpy(code + n + big, "\"}", 3);
    assert_int_equal(ait_heal_adapter_validate(code, strlen(code), NULL, f, &err),
                     AIT_ERR_TOO_LARGE);
    ait_free(code);
}

static void test_duration_price_cost(void **state)
{
    (void)state;
    assert_int_equal(ait_heal_parse_duration_ms("6m0s"), 360000);
    assert_int_equal(ait_heal_parse_duration_ms("1.5s"), 1500);
    assert_int_equal(ait_heal_parse_duration_ms("20ms"), 20);
    assert_int_equal(ait_heal_parse_duration_ms("30"), 30000);
    assert_int_equal(ait_heal_parse_duration_ms("1h2m"), 3720000);
    assert_int_equal(ait_heal_parse_duration_ms("soon"), -1);
    assert_int_equal(ait_heal_parse_duration_ms(""), -1);
    assert_int_equal(ait_heal_parse_duration_ms("-1"), -1);

    int64_t m = 0;
    assert_int_equal(ait_heal_parse_usd("2.50", &m), AIT_OK);
    assert_int_equal(m, 2500000);
    assert_int_equal(ait_heal_parse_usd("0.000001", &m), AIT_OK);
    assert_int_equal(m, 1);
    assert_int_equal(ait_heal_parse_usd("15", &m), AIT_OK);
    assert_int_equal(m, 15000000);
    assert_int_not_equal(ait_heal_parse_usd("0.0000001", &m), AIT_OK);
    assert_int_not_equal(ait_heal_parse_usd("-1", &m), AIT_OK);
    assert_int_not_equal(ait_heal_parse_usd("1.2.3", &m), AIT_OK);
    assert_int_not_equal(ait_heal_parse_usd("", &m), AIT_OK);

    /* 1000 tokens at $2.50/Mtok = $0.0025 = 2500 micro; rounding is upward. */
    assert_int_equal(ait_heal_cost_micro(1000, 2500000), 2500);
    assert_int_equal(ait_heal_cost_micro(1, 1), 1);
    assert_int_equal(ait_heal_cost_micro(0, 2500000), 0);
    assert_int_equal(ait_heal_cost_micro(3000000, 15000000), 45000000);
    /* No overflow with a billion tokens at $10,000/Mtok. */
    assert_int_equal(ait_heal_cost_micro(1000000000, 10000000000), INT64_C(10000000000000));

    ait_heal_provider_type t;
    assert_int_equal(ait_heal_provider_type_parse("openai-compatible", &t), AIT_OK);
    assert_int_equal(t, AIT_HEAL_TYPE_OPENAI_COMPATIBLE);
    assert_string_equal(ait_heal_provider_type_str(AIT_HEAL_TYPE_GEMINI), "gemini");
    assert_int_not_equal(ait_heal_provider_type_parse("bard", &t), AIT_OK);
    assert_string_equal(ait_heal_failure_str(AIT_HEAL_BUDGET_EXCEEDED), "BudgetExceeded");
}

static void test_prompts(void **state)
{
    (void)state;
    ait_heal_request req = {.runtime = "node",
                            .code = "throw 1",
                            .error_tail = "Error: 1",
                            .attempt = 2,
                            .temperature = -1,
                            .budget_max_micro = -1};
    char *sys = NULL, *user = NULL;
    ait_heal_adapter_prompts(&req, &sys, &user);
    assert_non_null(strstr(sys, "consensus_code"));
    assert_non_null(strstr(user, "runtime: node"));
    assert_non_null(strstr(user, "throw 1"));
    assert_non_null(strstr(user, "Error: 1"));
    ait_free(sys);
    ait_free(user);
    ait_heal_request gen = {.runtime = "bash", .prompt = "list files", .budget_max_micro = -1};
    ait_heal_adapter_prompts(&gen, &sys, &user);
    assert_non_null(strstr(user, "first version"));
    assert_non_null(strstr(user, "list files"));
    ait_free(sys);
    ait_free(user);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_openai_family),
        cmocka_unit_test(test_build_anthropic),
        cmocka_unit_test(test_build_gemini_ollama),
        cmocka_unit_test(test_parse_success_each_type),
        cmocka_unit_test(test_parse_invalid_and_refusal),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_duration_price_cost),
        cmocka_unit_test(test_prompts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

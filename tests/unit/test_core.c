/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/core: buffers, errors and HTTP mapping, JSON accessors, time, logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/status.h"
#include "core/time.h"

static void test_buf_grows_and_bounds(void **state)
{
    (void)state;
    ait_buf b;
    ait_buf_init(&b, 10);
    assert_string_equal(ait_buf_str(&b), "");
    assert_int_equal(ait_buf_appends(&b, "hello"), AIT_OK);
    assert_int_equal(ait_buf_appendf(&b, "%d", 1234), AIT_OK);
    assert_string_equal(ait_buf_str(&b), "hello1234");
    /* One more byte fits, two do not, and a failed append leaves the contents as they were. */
    assert_int_equal(ait_buf_appends(&b, "xy"), AIT_ERR_TOO_LARGE);
    assert_string_equal(ait_buf_str(&b), "hello1234");
    assert_int_equal(ait_buf_appends(&b, "x"), AIT_OK);
    assert_int_equal(b.len, 10);
    ait_buf_consume(&b, 5);
    assert_string_equal(ait_buf_str(&b), "1234x");
    char *s = ait_buf_take(&b);
    assert_string_equal(s, "1234x");
    assert_null(b.data);
    ait_free(s);
    ait_buf_free(&b);
}

static void test_buf_large_unbounded(void **state)
{
    (void)state;
    ait_buf b;
    ait_buf_init(&b, 0);
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(ait_buf_append(&b, "abcdefgh", 8), AIT_OK);
    }
    assert_int_equal(b.len, 800000);
    assert_int_equal(b.data[b.len], '\0');
    ait_buf_free(&b);
}

static void test_error_and_http(void **state)
{
    (void)state;
    ait_error err = {0};
    assert_int_equal(ait_error_set(&err, AIT_ERR_NOT_FOUND, "pod %s", "x"), AIT_ERR_NOT_FOUND);
    ait_error_wrap(&err, "getting %s", "task");
    assert_string_equal(err.msg, "getting task: pod x");
    assert_int_equal(ait_error_set(NULL, AIT_ERR_IO, "ignored"), AIT_ERR_IO);
    assert_int_equal(ait_status_from_http(200), AIT_OK);
    assert_int_equal(ait_status_from_http(404), AIT_ERR_NOT_FOUND);
    assert_int_equal(ait_status_from_http(409), AIT_ERR_CONFLICT);
    assert_int_equal(ait_status_from_http(410), AIT_ERR_GONE);
    assert_int_equal(ait_status_from_http(422), AIT_ERR_INVALID);
    assert_int_equal(ait_status_from_http(429), AIT_ERR_RETRY);
    assert_int_equal(ait_status_from_http(503), AIT_ERR_RETRY);
    assert_int_equal(ait_status_from_http(403), AIT_ERR_FORBIDDEN);
    assert_true(ait_status_retryable(AIT_ERR_RETRY));
    assert_false(ait_status_retryable(AIT_ERR_CONFLICT));
    assert_string_equal(ait_status_str(AIT_ERR_GONE), "Gone");
    assert_string_equal(ait_status_str((ait_status)999), "Unknown");
}

static void test_json_accessors(void **state)
{
    (void)state;
    const char *text = "{\"a\":{\"b\":{\"c\":\"x\",\"n\":\"42\",\"i\":7,\"t\":true,\"d\":0.5}},"
                       "\"arr\":[1,2]}";
    json_object *o = NULL;
    assert_int_equal(ait_json_parse(text, strlen(text), &o, NULL), AIT_OK);
    assert_string_equal(ait_json_str(o, "a.b.c"), "x");
    assert_null(ait_json_str(o, "a.b.i"));
    assert_null(ait_json_str(o, "a.b.c.d"));
    assert_null(ait_json_str(o, "missing.x"));
    assert_int_equal(ait_json_int(o, "a.b.n", -1), 42);
    assert_int_equal(ait_json_int(o, "a.b.i", -1), 7);
    assert_int_equal(ait_json_int(o, "a.b.c", -1), -1);
    assert_true(ait_json_bool(o, "a.b.t", 0));
    assert_true(ait_json_double(o, "a.b.d", 0) == 0.5);
    assert_non_null(ait_json_array(o, "arr"));
    assert_null(ait_json_array(o, "a"));
    json_object_put(o);
}

static void test_json_parse_rejects(void **state)
{
    (void)state;
    json_object *o = NULL;
    ait_error err = {0};
    assert_int_equal(ait_json_parse("{\"a\":", 5, &o, &err), AIT_ERR_PARSE);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(o);
    assert_int_equal(ait_json_parse("{} x", 4, &o, &err), AIT_ERR_PARSE);
    assert_non_null(strstr(err.msg, "trailing"));
    assert_int_equal(ait_json_parse("<html>", 6, &o, &err), AIT_ERR_PARSE);
    assert_int_equal(ait_json_parse("{} \n", 4, &o, &err), AIT_OK);
    json_object_put(o);
}

static void test_time_roundtrip(void **state)
{
    (void)state;
    char s[64];
    int64_t t = INT64_C(1767323045) * AIT_NS_PER_S + 123456789;
    assert_string_equal(ait_time_rfc3339(t, s, sizeof(s)), "2026-01-02T03:04:05Z");
    assert_string_equal(ait_time_rfc3339_micro(t, s, sizeof(s)), "2026-01-02T03:04:05.123456Z");
    int64_t back = 0;
    assert_int_equal(ait_time_parse_rfc3339("2026-01-02T03:04:05.123456789Z", &back), AIT_OK);
    assert_true(back == t);
    assert_int_equal(ait_time_parse_rfc3339("2026-01-02T05:04:05+02:00", &back), AIT_OK);
    assert_true(back == INT64_C(1767323045) * AIT_NS_PER_S);
    assert_int_equal(ait_time_parse_rfc3339("2026-01-02", &back), AIT_ERR_PARSE);
    assert_int_equal(ait_time_parse_rfc3339("2026-01-02T03:04:05Zjunk", &back), AIT_ERR_PARSE);
    assert_true(ait_time_mono_ns() > 0);
}

static void test_log_json_lines(void **state)
{
    (void)state;
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    ait_log_set_output(f);
    ait_log_set_verbosity(1);
    AIT_LOG_INFO(1, "reconciled", "object", "ns/x", "quote", "a\"b");
    AIT_LOG_INFO(2, "hidden", "k", "v");
    AIT_LOG_ERROR("boom", "failed", "controller", "aitask");
    fflush(f);
    ait_log_set_output(NULL);
    fclose(f);
    char *nl = strchr(mem, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_object *o = NULL;
    assert_int_equal(ait_json_parse(mem, strlen(mem), &o, NULL), AIT_OK);
    assert_string_equal(ait_json_str(o, "msg"), "reconciled");
    assert_string_equal(ait_json_str(o, "level"), "info");
    assert_int_equal(ait_json_int(o, "v", -1), 1);
    assert_string_equal(ait_json_str(o, "quote"), "a\"b");
    assert_non_null(ait_json_str(o, "ts"));
    json_object_put(o);
    char *second = nl + 1;
    assert_null(strstr(second, "hidden"));
    assert_int_equal(ait_json_parse(second, strlen(second), &o, NULL), AIT_OK);
    assert_string_equal(ait_json_str(o, "err"), "boom");
    assert_string_equal(ait_json_str(o, "level"), "error");
    json_object_put(o);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_and_bounds), cmocka_unit_test(test_buf_large_unbounded),
        cmocka_unit_test(test_error_and_http),       cmocka_unit_test(test_json_accessors),
        cmocka_unit_test(test_json_parse_rejects),   cmocka_unit_test(test_time_roundtrip),
        cmocka_unit_test(test_log_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

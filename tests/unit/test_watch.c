/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the watch stream decoder (kube/watch.h): chunk boundaries anywhere, bounded
 * lines, malformed input, bookmarks and ERROR events. */
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
#include "kube/watch.h"

/* Collects each event as "TYPE <object JSON>" lines. */
typedef struct collected {
    ait_buf out;
    int count;
    int stop_after; /* return AIT_ERR_CANCELLED after this many events; 0 = never */
} collected;

static ait_status collect_cb(void *ctx, const ait_watch_event *ev)
{
    collected *c = ctx;
    const char *js = json_object_to_json_string_ext(ev->object, JSON_C_TO_STRING_PLAIN);
    assert_int_equal(ait_buf_appendf(&c->out, "%s %s\n", ait_watch_event_type_str(ev->type), js),
                     AIT_OK);
    c->count++;
    if (c->stop_after > 0 && c->count >= c->stop_after) {
        return AIT_ERR_CANCELLED;
    }
    return AIT_OK;
}

static void collected_init(collected *c)
{
    memset(c, 0, sizeof(*c));
    ait_buf_init(&c->out, 0);
}

/* A stream with every event type, multi-byte UTF-8 (so splits fall inside characters), blank
 * lines, CRLF and whitespace. */
static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"namespace\":\"n\",\"resourceVersion\":\"10\"},\"data\":{\"k\":\"h\xc3\xa9llo "
    "\xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"}}}\n"
    "\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\","
    "\"resourceVersion\":\"11\"},\"data\":{\"k\":\"line\\nbreak\"}}}\r\n"
    "  {\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{"
    "\"resourceVersion\":\"15\"}}}  \n"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\","
    "\"resourceVersion\":\"16\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
    "\"Failure\",\"message\":\"too old resource version: 1 (16)\",\"reason\":\"Expired\","
    "\"code\":410}}\n";

static char *decode_whole(const char *s, size_t len, int *count)
{
    collected c;
    collected_init(&c);
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    ait_error err = {0};
    assert_int_equal(ait_watch_decoder_feed(d, s, len, collect_cb, &c, &err), AIT_OK);
    assert_int_equal(ait_watch_decoder_pending(d), 0);
    ait_watch_decoder_free(d);
    *count = c.count;
    return ait_buf_take(&c.out);
}

static void test_whole_stream(void **state)
{
    (void)state;
    int count = 0;
    char *all = decode_whole(STREAM, sizeof(STREAM) - 1, &count);
    assert_int_equal(count, 5);
    /* Types in order, and the UTF-8 and escaped newline survive. */
    assert_non_null(strstr(all, "ADDED {"));
    assert_true(strstr(all, "ADDED") < strstr(all, "MODIFIED"));
    assert_true(strstr(all, "MODIFIED") < strstr(all, "BOOKMARK"));
    assert_true(strstr(all, "BOOKMARK") < strstr(all, "DELETED"));
    assert_true(strstr(all, "DELETED") < strstr(all, "ERROR"));
    assert_non_null(strstr(all, "h\xc3\xa9llo \xe2\x9c\x93"));
    assert_non_null(strstr(all, "line\\nbreak"));
    ait_free(all);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    size_t len = sizeof(STREAM) - 1;
    int want_count = 0;
    char *want = decode_whole(STREAM, len, &want_count);
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    for (size_t cut = 0; cut <= len; cut++) {
        collected c;
        collected_init(&c);
        ait_error err = {0};
        ait_watch_decoder_reset(d);
        assert_int_equal(ait_watch_decoder_feed(d, STREAM, cut, collect_cb, &c, &err), AIT_OK);
        assert_int_equal(ait_watch_decoder_feed(d, STREAM + cut, len - cut, collect_cb, &c, &err),
                         AIT_OK);
        assert_int_equal(c.count, want_count);
        assert_string_equal(ait_buf_str(&c.out), want);
        ait_buf_free(&c.out);
    }
    /* Two cuts: every pair of offsets on a stride, then byte by byte. */
    for (size_t a = 0; a <= len; a += 7) {
        for (size_t b = a; b <= len; b += 13) {
            collected c;
            collected_init(&c);
            ait_watch_decoder_reset(d);
            assert_int_equal(ait_watch_decoder_feed(d, STREAM, a, collect_cb, &c, NULL), AIT_OK);
            assert_int_equal(ait_watch_decoder_feed(d, STREAM + a, b - a, collect_cb, &c, NULL),
                             AIT_OK);
            assert_int_equal(ait_watch_decoder_feed(d, STREAM + b, len - b, collect_cb, &c, NULL),
                             AIT_OK);
            assert_string_equal(ait_buf_str(&c.out), want);
            ait_buf_free(&c.out);
        }
    }
    collected c;
    collected_init(&c);
    ait_watch_decoder_reset(d);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(ait_watch_decoder_feed(d, STREAM + i, 1, collect_cb, &c, NULL), AIT_OK);
    }
    assert_string_equal(ait_buf_str(&c.out), want);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
    ait_free(want);
}

static void test_partial_line_is_held(void **state)
{
    (void)state;
    const char *line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}";
    collected c;
    collected_init(&c);
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    /* No newline yet: nothing is delivered, the bytes wait. */
    assert_int_equal(ait_watch_decoder_feed(d, line, strlen(line), collect_cb, &c, NULL), AIT_OK);
    assert_int_equal(c.count, 0);
    assert_int_equal(ait_watch_decoder_pending(d), strlen(line));
    assert_int_equal(ait_watch_decoder_feed(d, "\n", 1, collect_cb, &c, NULL), AIT_OK);
    assert_int_equal(c.count, 1);
    assert_int_equal(ait_watch_decoder_pending(d), 0);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
}

static void test_over_long_line(void **state)
{
    (void)state;
    /* 64-byte bound: a line of exactly 64 bytes passes, 65 fails, whether it comes whole or in
     * pieces, and the error is sticky until reset. */
    char ok[128];
    const char *head = "{\"type\":\"ADDED\",\"object\":{\"a\":\"";
    const char *tail = "\"}}";
    size_t fill = 64 - strlen(head) - strlen(tail);
    snprintf(ok, sizeof(ok), "%s%.*s%s", head, (int)fill,
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", tail);
    assert_int_equal(strlen(ok), 64);
    ait_watch_decoder *d = ait_watch_decoder_new(64);
    collected c;
    collected_init(&c);
    ait_error err = {0};
    assert_int_equal(ait_watch_decoder_feed(d, ok, 64, collect_cb, &c, &err), AIT_OK);
    assert_int_equal(ait_watch_decoder_feed(d, "\n", 1, collect_cb, &c, &err), AIT_OK);
    assert_int_equal(c.count, 1);

    char big[200];
    memset(big, 'y', sizeof(big));
    /* Whole chunk without a newline: refused as soon as it passes the bound. */
    assert_int_equal(ait_watch_decoder_feed(d, big, 65, collect_cb, &c, &err), AIT_ERR_TOO_LARGE);
    assert_int_equal(err.code, AIT_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "64"));
    assert_true(ait_watch_decoder_pending(d) <= 64);
    /* Sticky: even a good line is refused now. */
    ait_error err2 = {0};
    assert_int_equal(ait_watch_decoder_feed(d, "\n", 1, collect_cb, &c, &err2), AIT_ERR_TOO_LARGE);
    assert_int_equal(c.count, 1);

    /* After reset, in small pieces: 10 + 10 + ... past 64 fails without holding more. */
    ait_watch_decoder_reset(d);
    ait_status st = AIT_OK;
    size_t fed = 0;
    while (st == AIT_OK && fed < sizeof(big)) {
        st = ait_watch_decoder_feed(d, big + fed, 10, collect_cb, &c, NULL);
        fed += 10;
        assert_true(ait_watch_decoder_pending(d) <= 64);
    }
    assert_int_equal(st, AIT_ERR_TOO_LARGE);
    assert_int_equal(fed, 70);

    /* A line over the bound that ends inside one chunk is refused too. */
    ait_watch_decoder_reset(d);
    big[100] = '\n';
    assert_int_equal(ait_watch_decoder_feed(d, big, 101, collect_cb, &c, NULL), AIT_ERR_TOO_LARGE);
    assert_int_equal(c.count, 1);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
}

static void expect_parse_error(const char *input, int want_events_before)
{
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    collected c;
    collected_init(&c);
    ait_error err = {0};
    assert_int_equal(ait_watch_decoder_feed(d, input, strlen(input), collect_cb, &c, &err),
                     AIT_ERR_PARSE);
    assert_int_equal(err.code, AIT_ERR_PARSE);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(c.count, want_events_before);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
}

static void test_garbage(void **state)
{
    (void)state;
    expect_parse_error("garbage\n", 0);
    expect_parse_error("{\"type\":\"ADDED\",\"object\":{}}\n{not json}\n", 1);
    expect_parse_error("{\"type\":\"ADDED\",\"object\":{\"a\":1}\n", 0);    /* truncated */
    expect_parse_error("{\"type\":\"ADDED\",\"object\":{}} trailing\n", 0); /* trailing */
    expect_parse_error("{\"type\":\"EXPLODED\",\"object\":{}}\n", 0);       /* unknown type */
    expect_parse_error("{\"type\":7,\"object\":{}}\n", 0);                  /* type not string */
    expect_parse_error("{\"object\":{}}\n", 0);                             /* no type */
    expect_parse_error("{\"type\":\"ADDED\"}\n", 0);                        /* no object */
    expect_parse_error("{\"type\":\"ADDED\",\"object\":[1,2]}\n", 0);       /* not an object */
    expect_parse_error("[1,2,3]\n", 0);                                     /* not an event */
    expect_parse_error("{\"type\":\"ADDED\",\"object\":{\"a\":\"\xff\xfe\"}}\n", 0); /* UTF-8 */
    /* A NUL byte inside a line. */
    {
        static const char nul[] = "{\"type\":\"ADDED\",\"object\":{\"a\":1}}\0{}\n";
        ait_watch_decoder *d = ait_watch_decoder_new(0);
        collected c;
        collected_init(&c);
        assert_int_equal(ait_watch_decoder_feed(d, nul, sizeof(nul) - 1, collect_cb, &c, NULL),
                         AIT_ERR_PARSE);
        assert_int_equal(c.count, 0);
        ait_buf_free(&c.out);
        ait_watch_decoder_free(d);
    }
    /* Deep nesting is bounded, not a stack overflow. */
    ait_buf deep;
    ait_buf_init(&deep, 0);
    assert_int_equal(ait_buf_appends(&deep, "{\"type\":\"ADDED\",\"object\":"), AIT_OK);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(ait_buf_appends(&deep, "{\"a\":"), AIT_OK);
    }
    assert_int_equal(ait_buf_appends(&deep, "1\n"), AIT_OK);
    expect_parse_error(ait_buf_str(&deep), 0);
    ait_buf_free(&deep);
}

static void test_bookmark_and_error_status(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
                    "\"metadata\":{\"resourceVersion\":\"12345\",\"annotations\":{"
                    "\"k8s.io/initial-events-end\":\"true\"}}}}\n";
    collected c;
    collected_init(&c);
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    assert_int_equal(ait_watch_decoder_feed(d, s, strlen(s), collect_cb, &c, NULL), AIT_OK);
    assert_int_equal(c.count, 1);
    assert_non_null(strstr(ait_buf_str(&c.out), "BOOKMARK {"));
    assert_non_null(strstr(ait_buf_str(&c.out), "\"resourceVersion\":\"12345\""));
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);

    json_object *st = NULL;
    const char *gone = "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":"
                       "\"too old resource version\"}";
    assert_int_equal(ait_json_parse(gone, strlen(gone), &st, NULL), AIT_OK);
    ait_error err = {0};
    assert_int_equal(ait_watch_error_status(st, &err), AIT_ERR_GONE);
    assert_int_equal(err.http_status, 410);
    assert_non_null(strstr(err.msg, "too old resource version"));
    json_object_put(st);

    const char *expired = "{\"kind\":\"Status\",\"reason\":\"Expired\"}";
    assert_int_equal(ait_json_parse(expired, strlen(expired), &st, NULL), AIT_OK);
    assert_int_equal(ait_watch_error_status(st, NULL), AIT_ERR_GONE);
    json_object_put(st);

    const char *internal = "{\"kind\":\"Status\",\"code\":500,\"message\":\"etcd down\"}";
    assert_int_equal(ait_json_parse(internal, strlen(internal), &st, NULL), AIT_OK);
    assert_int_equal(ait_watch_error_status(st, &err), AIT_ERR_RETRY);
    assert_int_equal(err.http_status, 500);
    json_object_put(st);

    const char *nocode = "{\"kind\":\"Status\"}";
    assert_int_equal(ait_json_parse(nocode, strlen(nocode), &st, NULL), AIT_OK);
    assert_int_equal(ait_watch_error_status(st, &err), AIT_ERR_INTERNAL);
    json_object_put(st);
}

static void test_consumer_stop(void **state)
{
    (void)state;
    collected c;
    collected_init(&c);
    c.stop_after = 2;
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    ait_error err = {0};
    assert_int_equal(ait_watch_decoder_feed(d, STREAM, sizeof(STREAM) - 1, collect_cb, &c, &err),
                     AIT_ERR_CANCELLED);
    assert_int_equal(c.count, 2);
    assert_int_equal(err.code, AIT_ERR_CANCELLED);
    /* Stays stopped until reset, then decodes afresh. */
    assert_int_equal(ait_watch_decoder_feed(d, "\n", 1, collect_cb, &c, NULL), AIT_ERR_CANCELLED);
    ait_watch_decoder_reset(d);
    c.stop_after = 0;
    assert_int_equal(ait_watch_decoder_feed(d, STREAM, sizeof(STREAM) - 1, collect_cb, &c, NULL),
                     AIT_OK);
    assert_int_equal(c.count, 7);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
}

/* A line of 4 MiB fed in 3-byte chunks: a decoder that re-searched its held bytes for a newline
 * on each feed would do ~3e12 byte compares here and hit the test timeout; one that searches each
 * byte once finishes at once. */
static void test_large_line_in_small_chunks(void **state)
{
    (void)state;
    size_t n = (size_t)4 * 1024 * 1024;
    char *line = ait_malloc(n + 1);
    const char *head = "{\"type\":\"MODIFIED\",\"object\":{\"data\":\"";
    const char *tail = "\"}}\n";
    memset(line, 'z', n);
    memcpy(line, head, strlen(head));
    memcpy(line + n + 1 - strlen(tail), tail, strlen(tail));
    ait_watch_decoder *d = ait_watch_decoder_new(0);
    collected c;
    collected_init(&c);
    for (size_t off = 0; off < n + 1; off += 3) {
        size_t k = n + 1 - off < 3 ? n + 1 - off : 3;
        assert_int_equal(ait_watch_decoder_feed(d, line + off, k, collect_cb, &c, NULL), AIT_OK);
    }
    assert_int_equal(c.count, 1);
    assert_int_equal(ait_watch_decoder_pending(d), 0);
    assert_true(c.out.len > n - 100);
    ait_buf_free(&c.out);
    ait_watch_decoder_free(d);
    ait_free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_partial_line_is_held),
        cmocka_unit_test(test_over_long_line),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_bookmark_and_error_status),
        cmocka_unit_test(test_consumer_stop),
        cmocka_unit_test(test_large_line_in_small_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

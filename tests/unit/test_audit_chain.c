/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/audit/chain and the etcd gateway reply parsers: canonical JSON and entry
 * hashes against known answers (computed independently with Python's json.dumps(sort_keys=True,
 * separators=(',', ':'), ensure_ascii=False) and hashlib), verification of hand-built chains and
 * of each kind of damage, and decoding of gateway answers and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/etcd.h"
#include "core/alloc.h"
#include "core/json.h"

static json_object *parse(const char *s)
{
    json_object *o = NULL;
    assert_int_equal(ait_json_parse(s, strlen(s), &o, NULL), AIT_OK);
    return o;
}

static void test_canonical_kat(void **state)
{
    (void)state;
    json_object *o = parse("{ \"b\": 1, \"a\": \"x\\ny\\u0001\\\"\\\\\\/\xc3\xa9\",\n"
                           "  \"c\": [true, null, {\"z\": -5, \"y\": \"q\"}], \"A\": {} }");
    ait_buf b;
    ait_buf_init(&b, 0);
    assert_int_equal(ait_audit_canonical(o, NULL, &b, NULL), AIT_OK);
    assert_string_equal(b.data, "{\"A\":{},\"a\":\"x\\ny\\u0001\\\"\\\\/\xc3\xa9\",\"b\":1,"
                                "\"c\":[true,null,{\"y\":\"q\",\"z\":-5}]}");
    char h[65];
    ait_audit_sha256_hex(b.data, b.len, h);
    assert_string_equal(h, "f95a6e28ff7bba8ca5b923759c02722227cca25552b515b39c04d49832169f46");
    json_object_put(o);

    /* Doubles have no canonical form here: refused. */
    o = parse("{\"x\":1.5}");
    ait_buf_reset(&b);
    assert_int_equal(ait_audit_canonical(o, NULL, &b, NULL), AIT_ERR_INVALID);
    json_object_put(o);
    ait_buf_free(&b);
}

static const char *entry1 = "{\"v\":1,\"seq\":1,\"ts\":\"2026-01-02T03:04:05.000000Z\","
                            "\"namespace\":\"ns\",\"name\":\"t\",\"uid\":\"u-1\","
                            "\"action\":\"attempt.start\",\"actor\":\"ctl\",\"promptTokens\":0,"
                            "\"completionTokens\":0,\"costMicroUSD\":0,\"prevHash\":"
                            "\"0000000000000000000000000000000000000000000000000000000000000000\"}";

static void test_entry_hash_kat(void **state)
{
    (void)state;
    json_object *o = parse(entry1);
    char h[65];
    assert_int_equal(ait_audit_entry_hash(o, h, NULL), AIT_OK);
    assert_string_equal(h, "56fa742bf5dede747f1fb2ed71ac696a2791af65e92444ec032da2cf75501bf9");
    /* The hash field itself is left out of the hash. */
    json_object_object_add(o, "hash", json_object_new_string("whatever"));
    char h2[65];
    assert_int_equal(ait_audit_entry_hash(o, h2, NULL), AIT_OK);
    assert_string_equal(h, h2);
    json_object_put(o);
}

/* Builds a valid chain of n entries for uid as records, the way ait_audit_append stores them. */
static void build_chain(const char *uid, int n, ait_audit_records *out)
{
    out->v = ait_calloc((size_t)n, sizeof *out->v);
    out->n = (size_t)n;
    char prev[65] = AIT_AUDIT_GENESIS;
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "v", json_object_new_int(1));
        json_object_object_add(o, "seq", json_object_new_int64(i + 1));
        json_object_object_add(o, "uid", json_object_new_string(uid));
        json_object_object_add(o, "action", json_object_new_string("attempt.start"));
        json_object_object_add(o, "costMicroUSD", json_object_new_int64(1000 * i));
        json_object_object_add(o, "prevHash", json_object_new_string(prev));
        char h[65];
        assert_int_equal(ait_audit_entry_hash(o, h, NULL), AIT_OK);
        json_object_object_add(o, "hash", json_object_new_string(h));
        ait_buf b;
        ait_buf_init(&b, 0);
        assert_int_equal(ait_audit_canonical(o, NULL, &b, NULL), AIT_OK);
        out->v[i].key = ait_audit_key_for(uid, i + 1);
        out->v[i].raw_len = b.len;
        out->v[i].raw = ait_buf_take(&b);
        out->v[i].entry = o;
        memcpy(prev, h, sizeof prev);
    }
}

static void reparse(ait_audit_record *r)
{
    json_object_put(r->entry);
    r->entry = NULL;
    json_object *o = NULL;
    if (ait_json_parse(r->raw, r->raw_len, &o, NULL) == AIT_OK) {
        r->entry = o;
    }
}

static ait_status run_verify(ait_audit_records *r, int64_t n, const char *head, char **text)
{
    ait_audit_verify_options o = {.key = NULL, .expect_entries = n, .expect_head = head};
    ait_audit_report rep;
    ait_status st = ait_audit_verify("u-1", r, &o, &rep);
    *text = ait_buf_take(&rep.text);
    ait_buf_free(&rep.text);
    return st;
}

static void test_verify_detects_damage(void **state)
{
    (void)state;
    ait_audit_records r;
    char *text = NULL;
    build_chain("u-1", 4, &r);
    char head[65];
    snprintf(head, sizeof head, "%s", ait_json_str(r.v[3].entry, "hash"));
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_OK);
    assert_string_equal(text, "");
    ait_free(text);

    /* One changed byte in entry 2's cost. */
    char *p = strstr(r.v[1].raw, "\"costMicroUSD\":1000");
    assert_non_null(p);
    p[strlen("\"costMicroUSD\":")] = '2';
    reparse(&r.v[1]);
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_ERR_INVALID);
    assert_non_null(strstr(text, "entry seq 2 (key /aitask/audit/u-1/00000000000000000002): hash "
                                 "mismatch"));
    ait_free(text);
    p[strlen("\"costMicroUSD\":")] = '1';
    reparse(&r.v[1]);

    /* Entries 2 and 3 swapped in place (values exchanged between keys). */
    ait_audit_record t = r.v[1];
    r.v[1].raw = r.v[2].raw;
    r.v[1].raw_len = r.v[2].raw_len;
    r.v[1].entry = r.v[2].entry;
    r.v[2].raw = t.raw;
    r.v[2].raw_len = t.raw_len;
    r.v[2].entry = t.entry;
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_ERR_INVALID);
    assert_non_null(strstr(text, "entry seq 2 (key /aitask/audit/u-1/00000000000000000002): its "
                                 "seq field says 3"));
    ait_free(text);
    t = r.v[1];
    r.v[1].raw = r.v[2].raw;
    r.v[1].raw_len = r.v[2].raw_len;
    r.v[1].entry = r.v[2].entry;
    r.v[2].raw = t.raw;
    r.v[2].raw_len = t.raw_len;
    r.v[2].entry = t.entry;
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_OK);
    ait_free(text);

    /* The last entry gone: only the comparison with status.audit can see it. */
    r.n = 3;
    assert_int_equal(run_verify(&r, -1, NULL, &text), AIT_OK);
    ait_free(text);
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_ERR_INVALID);
    assert_non_null(strstr(text, "entry seq 4 and later are missing"));
    ait_free(text);
    r.n = 4;

    /* Entry 2 missing in the middle: named, and entry 3's link is not blamed on entry 1. */
    ait_audit_record gone = r.v[1];
    memmove(&r.v[1], &r.v[2], 2 * sizeof r.v[0]);
    r.n = 3;
    assert_int_equal(run_verify(&r, 4, head, &text), AIT_ERR_INVALID);
    assert_non_null(strstr(text, "entry seq 2 is missing"));
    ait_free(text);
    memmove(&r.v[2], &r.v[1], 2 * sizeof r.v[0]);
    r.v[1] = gone;
    r.n = 4;
    ait_audit_records_clear(&r);
}

static void test_parse_range_and_txn(void **state)
{
    (void)state;
    const char *range =
        "{\"header\":{\"cluster_id\":\"7838379123327624086\",\"revision\":\"12\"},"
        "\"kvs\":[{\"key\":\"L2EvYg==\",\"create_revision\":\"2\",\"mod_revision\":\"5\","
        "\"version\":\"3\",\"value\":\"MQ==\"},{\"key\":\"L2EvYw==\"}],\"count\":\"7\","
        "\"more\":true}";
    ait_etcd_range_result r;
    assert_int_equal(ait_etcd_parse_range(range, strlen(range), &r, NULL), AIT_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.count, 7);
    assert_int_equal(r.more, 1);
    assert_int_equal(r.revision, 12);
    assert_string_equal(r.kvs[0].key, "/a/b");
    assert_string_equal(r.kvs[0].value, "1");
    assert_int_equal(r.kvs[0].mod_revision, 5);
    assert_int_equal(r.kvs[0].create_revision, 2);
    assert_string_equal(r.kvs[1].value, "");
    ait_etcd_range_result_clear(&r);

    const char *bad[] = {"{\"kvs\":5}",
                         "{\"kvs\":[{\"key\":\"!!\"}]}",
                         "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"x\"}]}",
                         "[1]",
                         "{\"count\":\"1\"",
                         "{\"kvs\":[1]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ait_etcd_parse_range(bad[i], strlen(bad[i]), &r, NULL), AIT_ERR_PARSE);
        assert_int_equal(r.n, 0);
    }

    const char *txn = "{\"header\":{\"revision\":\"2\"},\"responses\":[{\"response_range\":{"
                      "\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"L2EvYg==\","
                      "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
                      "\"value\":\"MQ==\"}],\"count\":\"1\"}},{\"response_put\":{}}]}";
    ait_etcd_txn_result t;
    assert_int_equal(ait_etcd_parse_txn(txn, strlen(txn), &t, NULL), AIT_OK);
    assert_int_equal(t.succeeded, 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ranges[0].n, 1);
    assert_string_equal(t.ranges[0].kvs[0].value, "1");
    assert_int_equal(t.ranges[1].n, 0);
    ait_etcd_txn_result_clear(&t);
    const char *ok = "{\"succeeded\":true}";
    assert_int_equal(ait_etcd_parse_txn(ok, strlen(ok), &t, NULL), AIT_OK);
    assert_int_equal(t.succeeded, 1);
    ait_etcd_txn_result_clear(&t);
    const char *badt = "{\"succeeded\":\"yes\"}";
    assert_int_equal(ait_etcd_parse_txn(badt, strlen(badt), &t, NULL), AIT_ERR_PARSE);
}

static void test_decode_error(void **state)
{
    (void)state;
    struct {
        long http;
        const char *body;
        ait_status want;
    } cases[] = {
        {400, "{\"code\":3,\"message\":\"invalid value for bytes field key\"}", AIT_ERR_INVALID},
        {404, "{\"code\":5,\"message\":\"etcdserver: requested lease not found\"}",
         AIT_ERR_NOT_FOUND},
        {503, "{\"code\":14,\"message\":\"etcdserver: leader changed\"}", AIT_ERR_RETRY},
        {429, "{\"code\":8,\"message\":\"etcdserver: mvcc: database space exceeded\"}",
         AIT_ERR_QUOTA},
        {429, "{\"code\":8,\"message\":\"etcdserver: too many requests\"}", AIT_ERR_RETRY},
        {400, "{\"code\":11,\"message\":\"mvcc: required revision has been compacted\"}",
         AIT_ERR_GONE},
        {401, "{\"error\":\"x\",\"code\":16,\"message\":\"etcdserver: invalid auth token\"}",
         AIT_ERR_UNAUTHORIZED},
        {502, "garbage", AIT_ERR_RETRY},
        {404, "", AIT_ERR_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ait_error err = {0};
        assert_int_equal(
            ait_etcd_decode_error(cases[i].http, cases[i].body, strlen(cases[i].body), &err),
            cases[i].want);
        assert_int_equal(err.code, cases[i].want);
        assert_int_equal(err.http_status, cases[i].http);
    }
    char *e = ait_etcd_prefix_end("/aitask/audit/u/");
    assert_string_equal(e, "/aitask/audit/u0");
    ait_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_kat),         cmocka_unit_test(test_entry_hash_kat),
        cmocka_unit_test(test_verify_detects_damage), cmocka_unit_test(test_parse_range_and_txn),
        cmocka_unit_test(test_decode_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Integration test of the audit trail and spend ledger against a second, real etcd started with
 * hack/etcd.sh: chains written through the API verify with the real aitaskctl binary, and each
 * kind of damage done directly in etcd (a changed byte, a deleted tail, two entries swapped, an
 * entry re-keyed, a wrong key) makes it fail naming the entry; appends fail fast with AIT_ERR_IO
 * while etcd is down and succeed after it returns; two replicas racing on the ledger never lose
 * an increment; leases grant, renew and revoke. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/crypto.h"
#include "audit/etcd.h"
#include "audit/ledger.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"

static char dir[256];
static char endpoint[128];
static char keyfile[300];
static char keyfile2[300];
static ait_etcd *etcd;
static ait_audit_key *key;

static int run(const char *cmd, ait_buf *out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out != NULL) {
            assert_int_equal(ait_buf_append(out, buf, n), AIT_OK);
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void etcd_ctl(const char *verb)
{
    const char *src = getenv("AIT_SOURCE_DIR");
    char *cmd = ait_asprintf("bash %s/hack/etcd.sh %s --dir %s", src ? src : ".", verb, dir);
    ait_buf out;
    ait_buf_init(&out, 0);
    assert_int_equal(run(cmd, &out), 0);
    if (strcmp(verb, "start") == 0) {
        const char *s = ait_buf_str(&out);
        size_t len = strcspn(s, "\n");
        assert_true(len > 0 && len < sizeof endpoint);
        memcpy(endpoint, s, len);
        endpoint[len] = '\0';
    }
    ait_buf_free(&out);
    ait_free(cmd);
}

static void write_key(const char *path, unsigned char fill)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 32; i++) {
        fprintf(f, "%02x", (unsigned)(fill + i) & 0xff);
    }
    fprintf(f, "\n");
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ait-audit-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    etcd_ctl("start");
    snprintf(keyfile, sizeof keyfile, "%s/audit.key", dir);
    snprintf(keyfile2, sizeof keyfile2, "%s/other.key", dir);
    write_key(keyfile, 0x10);
    write_key(keyfile2, 0x20);
    assert_int_equal(ait_audit_key_load_file(keyfile, &key, NULL), AIT_OK);
    ait_etcd_options o = {.endpoint = endpoint, .timeout_ms = 3000, .connect_timeout_ms = 1000};
    assert_int_equal(ait_etcd_new(&o, &etcd, NULL), AIT_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ait_etcd_free(etcd);
    ait_audit_key_free(key);
    etcd_ctl("stop");
    char *cmd = ait_asprintf("rm -rf %s", dir);
    assert_int_equal(run(cmd, NULL), 0);
    ait_free(cmd);
    return 0;
}

static int uid_counter;

static char *new_uid(void)
{
    return ait_asprintf("uid-%d-%d-%" PRId64, (int)getpid(), ++uid_counter,
                        ait_time_now_ns() % 1000000);
}

/* Writes a chain of n entries for uid through the API: a realistic sequence with sealed prompts
 * and responses on the heal entries and details on the secret read. */
static void write_chain(ait_audit_chain *ch, const char *uid, int n, ait_audit_head *head)
{
    static const char *acts[] = {AIT_AUDIT_SECRET_READ, AIT_AUDIT_ATTEMPT_START,
                                 AIT_AUDIT_ATTEMPT_FINISH, AIT_AUDIT_HEAL_REQUEST,
                                 AIT_AUDIT_HEAL_RESPONSE};
    *head = (ait_audit_head){0};
    for (int i = 0; i < n; i++) {
        const char *act = acts[i % 5];
        json_object *details = NULL;
        ait_audit_entry e = {.action = act,
                             .namespace_ = "audit-test",
                             .name = "task-a",
                             .uid = uid,
                             .actor = "aitask-controller/test",
                             .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"};
        char *prompt = ait_asprintf("prompt %d: fix this code\n\"quoted\" \x01", i);
        char *resp = ait_asprintf("{\"consensus_code\":\"print(%d)\"}", i);
        if (strcmp(act, AIT_AUDIT_HEAL_REQUEST) == 0 || strcmp(act, AIT_AUDIT_HEAL_RESPONSE) == 0) {
            e.provider = "openai";
            e.model = "gpt-4o-mini";
            e.prompt = prompt;
            e.prompt_len = strlen(prompt);
            if (strcmp(act, AIT_AUDIT_HEAL_RESPONSE) == 0) {
                e.response = resp;
                e.response_len = strlen(resp);
                e.prompt_tokens = 1200;
                e.completion_tokens = 300;
                e.cost_micro_usd = 3750;
            }
        }
        if (strcmp(act, AIT_AUDIT_SECRET_READ) == 0) {
            details = json_object_new_object();
            json_object_object_add(details, "path", json_object_new_string("kv/data/app"));
            json_object_object_add(details, "version", json_object_new_int(3));
            e.details = details;
        }
        ait_error err = {0};
        int64_t before = head->seq;
        assert_int_equal(ait_audit_append(ch, &e, head, &err), AIT_OK);
        assert_int_equal(head->seq, before + 1);
        json_object_put(details);
        ait_free(prompt);
        ait_free(resp);
    }
}

static int verify_cli(const char *uid, const ait_audit_head *head, int64_t entries,
                      const char *keypath, ait_buf *out)
{
    const char *bd = getenv("AIT_BUILD_DIR");
    char *cmd = ait_asprintf("%s/aitaskctl audit verify audit-test/task-a --etcd-endpoint %s "
                             "--uid %s --expect-head %s --expect-entries %" PRId64 " %s%s 2>&1",
                             bd ? bd : ".", endpoint, uid, head->hash, entries,
                             keypath ? "--key " : "", keypath ? keypath : "");
    int rc = run(cmd, out);
    ait_free(cmd);
    return rc;
}

static ait_audit_chain *new_chain(void)
{
    ait_audit_options o = {.etcd = etcd, .key = key};
    ait_audit_chain *ch = NULL;
    assert_int_equal(ait_audit_chain_new(&o, &ch, NULL), AIT_OK);
    return ch;
}

static void get_raw(const char *uid, int64_t seq, char **val, size_t *len)
{
    char *k = ait_audit_key_for(uid, seq);
    ait_etcd_range_result r;
    assert_int_equal(ait_etcd_range(etcd, k, NULL, 0, &r, NULL), AIT_OK);
    assert_int_equal(r.n, 1);
    *val = r.kvs[0].value;
    *len = r.kvs[0].value_len;
    r.kvs[0].value = NULL;
    ait_etcd_range_result_clear(&r);
    ait_free(k);
}

static void put_raw(const char *uid, int64_t seq, const char *val, size_t len)
{
    char *k = ait_audit_key_for(uid, seq);
    assert_int_equal(ait_etcd_put(etcd, k, val, len, 0, NULL, NULL), AIT_OK);
    ait_free(k);
}

static void del_raw(const char *uid, int64_t seq)
{
    char *k = ait_audit_key_for(uid, seq);
    int64_t n = 0;
    assert_int_equal(ait_etcd_delete(etcd, k, NULL, &n, NULL), AIT_OK);
    assert_int_equal(n, 1);
    ait_free(k);
}

static void expect_fail(const char *uid, const ait_audit_head *head, const char *keypath,
                        const char *needle)
{
    ait_buf out;
    ait_buf_init(&out, 0);
    int rc = verify_cli(uid, head, head->seq, keypath, &out);
    if (rc != 1 || strstr(ait_buf_str(&out), needle) == NULL) {
        fprintf(stderr, "verify rc=%d, want 1 and \"%s\" in:\n%s\n", rc, needle, ait_buf_str(&out));
    }
    assert_int_equal(rc, 1);
    assert_non_null(strstr(ait_buf_str(&out), needle));
    ait_buf_free(&out);
}

static void test_chain_verifies_and_is_idempotent(void **state)
{
    (void)state;
    ait_audit_chain *ch = new_chain();
    char *uid = new_uid();
    ait_audit_head head;
    write_chain(ch, uid, 5, &head);
    ait_buf out;
    ait_buf_init(&out, 0);
    assert_int_equal(verify_cli(uid, &head, 5, keyfile, &out), 0);
    assert_non_null(strstr(ait_buf_str(&out), "5 entries verified"));
    assert_non_null(strstr(ait_buf_str(&out), "3 prompts/responses decrypted"));
    ait_buf_reset(&out);

    /* show -o json decrypts with the key. */
    const char *bd = getenv("AIT_BUILD_DIR");
    char *cmd = ait_asprintf("%s/aitaskctl audit show audit-test/task-a -o json --etcd-endpoint "
                             "%s --uid %s --key %s",
                             bd ? bd : ".", endpoint, uid, keyfile);
    assert_int_equal(run(cmd, &out), 0);
    json_object *arr = NULL;
    assert_int_equal(ait_json_parse(out.data, out.len, &arr, NULL), AIT_OK);
    assert_int_equal(json_object_array_length(arr), 5);
    json_object *e5 = json_object_array_get_idx(arr, 4);
    assert_string_equal(ait_json_str(e5, "response"), "{\"consensus_code\":\"print(4)\"}");
    assert_string_equal(ait_json_str(e5, "hash"), head.hash);
    json_object_put(arr);
    ait_free(cmd);
    ait_buf_free(&out);

    /* A retry of the last write (same facts, new ts and nonces) from the previous head is a
     * success that lands on the stored head; different facts are a conflict. */
    ait_audit_records recs;
    assert_int_equal(ait_audit_list(etcd, uid, &recs, NULL), AIT_OK);
    assert_int_equal(recs.n, 5);
    ait_audit_head prev = {.seq = 4};
    snprintf(prev.hash, sizeof prev.hash, "%s", ait_json_str(recs.v[3].entry, "hash"));
    ait_audit_records_clear(&recs);
    const char *resp = "{\"consensus_code\":\"print(4)\"}";
    const char *prompt = "prompt 4: fix this code\n\"quoted\" \x01";
    ait_audit_entry again = {.action = AIT_AUDIT_HEAL_RESPONSE,
                             .namespace_ = "audit-test",
                             .name = "task-a",
                             .uid = uid,
                             .actor = "aitask-controller/test",
                             .provider = "openai",
                             .model = "gpt-4o-mini",
                             .prompt = prompt,
                             .prompt_len = strlen(prompt),
                             .response = resp,
                             .response_len = strlen(resp),
                             .prompt_tokens = 1200,
                             .completion_tokens = 300,
                             .cost_micro_usd = 3750,
                             .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"};
    ait_audit_head h2 = prev;
    ait_error err = {0};
    assert_int_equal(ait_audit_append(ch, &again, &h2, &err), AIT_OK);
    assert_int_equal(h2.seq, 5);
    assert_string_equal(h2.hash, head.hash);
    again.cost_micro_usd = 1;
    h2 = prev;
    assert_int_equal(ait_audit_append(ch, &again, &h2, &err), AIT_ERR_CONFLICT);
    assert_int_equal(h2.seq, 4);
    ait_free(uid);
    ait_audit_chain_free(ch);
}

static void test_tampering_is_named(void **state)
{
    (void)state;
    ait_audit_chain *ch = new_chain();
    ait_audit_head head;
    char *val = NULL, *val2 = NULL;
    size_t len = 0, len2 = 0;

    /* One byte changed inside entry 3. */
    char *uid = new_uid();
    write_chain(ch, uid, 5, &head);
    get_raw(uid, 3, &val, &len);
    char *p = strstr(val, "aitask-controller/test");
    assert_non_null(p);
    p[0] = 'A';
    put_raw(uid, 3, val, len);
    expect_fail(uid, &head, NULL, "entry seq 3 (key /aitask/audit/");
    expect_fail(uid, &head, NULL, "hash mismatch");
    ait_free(val);
    ait_free(uid);

    /* The last entry deleted. */
    uid = new_uid();
    write_chain(ch, uid, 5, &head);
    del_raw(uid, 5);
    expect_fail(uid, &head, NULL, "entry seq 5 and later are missing");
    ait_free(uid);

    /* Entries 2 and 3 swapped. */
    uid = new_uid();
    write_chain(ch, uid, 5, &head);
    get_raw(uid, 2, &val, &len);
    get_raw(uid, 3, &val2, &len2);
    put_raw(uid, 2, val2, len2);
    put_raw(uid, 3, val, len);
    expect_fail(uid, &head, NULL, "entry seq 2 (key /aitask/audit/");
    expect_fail(uid, &head, NULL, "its seq field says 3");
    ait_free(val);
    ait_free(val2);
    ait_free(uid);

    /* Entry 3 moved to another key. */
    uid = new_uid();
    write_chain(ch, uid, 5, &head);
    get_raw(uid, 3, &val, &len);
    del_raw(uid, 3);
    put_raw(uid, 9, val, len);
    expect_fail(uid, &head, NULL, "entry seq 3 is missing");
    expect_fail(uid, &head, NULL, "entry seq 9 (key /aitask/audit/");
    ait_free(val);

    /* A wrong key: the chain itself is fine, decryption fails with a clear message. */
    ait_free(uid);
    uid = new_uid();
    write_chain(ch, uid, 5, &head);
    expect_fail(uid, &head, keyfile2, "wrong key");
    ait_buf out;
    ait_buf_init(&out, 0);
    assert_int_equal(verify_cli(uid, &head, 5, NULL, &out), 0);
    ait_buf_free(&out);
    ait_free(uid);
    ait_audit_chain_free(ch);
}

static void test_etcd_down_fails_closed(void **state)
{
    (void)state;
    ait_audit_chain *ch = new_chain();
    char *uid = new_uid();
    ait_audit_head head;
    write_chain(ch, uid, 2, &head);
    etcd_ctl("stop");
    ait_audit_entry e = {.action = AIT_AUDIT_ATTEMPT_START,
                         .namespace_ = "audit-test",
                         .name = "task-a",
                         .uid = uid,
                         .actor = "aitask-controller/test"};
    ait_audit_head h = head;
    ait_error err = {0};
    int64_t t0 = ait_time_mono_ns();
    assert_int_equal(ait_audit_append(ch, &e, &h, &err), AIT_ERR_IO);
    assert_true(ait_time_mono_ns() - t0 < 3 * AIT_NS_PER_S);
    assert_int_equal(h.seq, head.seq);
    assert_string_equal(h.hash, head.hash);
    etcd_ctl("start");
    assert_int_equal(ait_audit_append(ch, &e, &h, &err), AIT_OK);
    assert_int_equal(h.seq, 3);
    ait_audit_records recs;
    assert_int_equal(ait_audit_list(etcd, uid, &recs, NULL), AIT_OK);
    ait_audit_verify_options vo = {.key = key, .expect_entries = 3, .expect_head = h.hash};
    ait_audit_report rep;
    assert_int_equal(ait_audit_verify(uid, &recs, &vo, &rep), AIT_OK);
    ait_buf_free(&rep.text);
    ait_audit_records_clear(&recs);
    ait_free(uid);
    ait_audit_chain_free(ch);
}

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return INT64_C(1785000000) * AIT_NS_PER_S; /* 2026-07-25 */
}

static int64_t mono_now(void *ctx)
{
    (void)ctx;
    return ait_time_mono_ns();
}

static const ait_clock fixed_clock = {.ctx = NULL, .now_ns = fixed_now, .mono_ns = mono_now};

typedef struct replica {
    const char *task;
    int n;
    int failures;
    int64_t settled;
} replica;

/* One replica: its own etcd client and ledger, n reservations, settling even ones at a cost
 * that depends on the index and releasing odd ones. */
static void *replica_main(void *arg)
{
    replica *r = arg;
    ait_etcd *c = NULL;
    ait_ledger *l = NULL;
    ait_etcd_options o = {.endpoint = endpoint, .timeout_ms = 5000};
    ait_ledger_options lo = {.clock = &fixed_clock};
    if (ait_etcd_new(&o, &c, NULL) != AIT_OK) {
        r->failures = r->n;
        return NULL;
    }
    lo.etcd = c;
    if (ait_ledger_new(&lo, &l, NULL) != AIT_OK) {
        r->failures = r->n;
        ait_etcd_free(c);
        return NULL;
    }
    for (int i = 0; i < r->n; i++) {
        ait_ledger_reservation res;
        ait_error err = {0};
        if (ait_ledger_reserve(l, "openai", r->task, 100, NULL, &res, &err) != AIT_OK) {
            fprintf(stderr, "reserve: %s\n", err.msg);
            r->failures++;
            continue;
        }
        if (i % 2 == 0) {
            int64_t actual = 10 + i % 7;
            if (ait_ledger_settle(l, &res, actual, &err) != AIT_OK) {
                fprintf(stderr, "settle: %s\n", err.msg);
                r->failures++;
            } else {
                r->settled += actual;
            }
        } else if (ait_ledger_release(l, &res, &err) != AIT_OK) {
            r->failures++;
        }
    }
    ait_ledger_free(l);
    ait_etcd_free(c);
    return NULL;
}

static void test_ledger_race_is_exact(void **state)
{
    (void)state;
    char *ta = new_uid(), *tb = new_uid();
    replica ra = {.task = ta, .n = 500}, rb = {.task = tb, .n = 500};
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, replica_main, &ra), 0);
    assert_int_equal(pthread_create(&b, NULL, replica_main, &rb), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(ra.failures, 0);
    assert_int_equal(rb.failures, 0);

    ait_ledger *l = NULL;
    ait_ledger_options lo = {.etcd = etcd, .clock = &fixed_clock};
    assert_int_equal(ait_ledger_new(&lo, &l, NULL), AIT_OK);
    ait_ledger_usage ua, ub;
    assert_int_equal(ait_ledger_usage_get(l, "openai", ta, &ua, NULL), AIT_OK);
    assert_int_equal(ait_ledger_usage_get(l, "openai", tb, &ub, NULL), AIT_OK);
    assert_int_equal(ua.task, ra.settled);
    assert_int_equal(ub.task, rb.settled);
    assert_int_equal(ua.day_total, ra.settled + rb.settled);
    assert_int_equal(ua.month_total, ra.settled + rb.settled);
    assert_int_equal(ua.day_provider, ra.settled + rb.settled);

    /* Limits: a task budget refuses exactly the reservation that would cross it. */
    char *tc = new_uid();
    ait_ledger_limits lim = {.task = 250};
    ait_ledger_reservation r1, r2, r3;
    ait_error err = {0};
    assert_int_equal(ait_ledger_reserve(l, NULL, tc, 100, &lim, &r1, &err), AIT_OK);
    assert_int_equal(ait_ledger_reserve(l, NULL, tc, 100, &lim, &r2, &err), AIT_OK);
    assert_int_equal(ait_ledger_reserve(l, NULL, tc, 100, &lim, &r3, &err), AIT_ERR_QUOTA);
    assert_non_null(strstr(err.msg, "task budget exceeded"));
    assert_int_equal(ait_ledger_release(l, &r2, NULL), AIT_OK);
    assert_int_equal(ait_ledger_release(l, &r2, &err), AIT_ERR_INVALID);
    assert_int_equal(ait_ledger_reserve(l, NULL, tc, 150, &lim, &r3, &err), AIT_OK);
    ait_ledger_usage uc;
    assert_int_equal(ait_ledger_usage_get(l, NULL, tc, &uc, NULL), AIT_OK);
    assert_int_equal(uc.task, 250);
    /* A daily limit: today's total is the race's spend plus the 250 still reserved above, so
     * reaching the limit exactly is allowed and one micro-dollar more is refused. */
    ait_ledger_limits daily = {.daily = ua.day_total + 251};
    assert_int_equal(ait_ledger_reserve(l, "openai", NULL, 2, &daily, &r2, &err), AIT_ERR_QUOTA);
    assert_non_null(strstr(err.msg, "daily budget exceeded"));
    assert_int_equal(ait_ledger_reserve(l, "openai", NULL, 1, &daily, &r2, &err), AIT_OK);
    assert_int_equal(ait_ledger_reserve(l, "openai", NULL, 1, &daily, &r2, &err), AIT_ERR_QUOTA);
    assert_non_null(strstr(err.msg, "daily budget exceeded"));
    ait_ledger_free(l);
    ait_free(ta);
    ait_free(tb);
    ait_free(tc);
}

static void test_lease(void **state)
{
    (void)state;
    int64_t id = 0, ttl = 0;
    assert_int_equal(ait_etcd_lease_grant(etcd, 30, &id, &ttl, NULL), AIT_OK);
    assert_true(id != 0);
    assert_int_equal(ttl, 30);
    assert_int_equal(ait_etcd_put(etcd, "/aitask/test/leased", "x", 1, id, NULL, NULL), AIT_OK);
    int64_t ttl2 = 0;
    assert_int_equal(ait_etcd_lease_keepalive(etcd, id, &ttl2, NULL), AIT_OK);
    assert_true(ttl2 > 0 && ttl2 <= 30);
    assert_int_equal(ait_etcd_lease_revoke(etcd, id, NULL), AIT_OK);
    ait_etcd_range_result r;
    assert_int_equal(ait_etcd_range(etcd, "/aitask/test/leased", NULL, 0, &r, NULL), AIT_OK);
    assert_int_equal(r.n, 0);
    ait_etcd_range_result_clear(&r);
    ait_error err = {0};
    assert_int_equal(ait_etcd_lease_keepalive(etcd, id, NULL, &err), AIT_ERR_NOT_FOUND);
    assert_int_equal(ait_etcd_lease_revoke(etcd, id, &err), AIT_ERR_NOT_FOUND);
    /* Prefix range with a limit pages. */
    for (int i = 0; i < 5; i++) {
        char k[64];
        snprintf(k, sizeof k, "/aitask/test/p/%d", i);
        assert_int_equal(ait_etcd_put(etcd, k, "v", 1, 0, NULL, NULL), AIT_OK);
    }
    char *end = ait_etcd_prefix_end("/aitask/test/p/");
    assert_int_equal(ait_etcd_range(etcd, "/aitask/test/p/", end, 2, &r, NULL), AIT_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.count, 5);
    assert_true(r.more);
    assert_string_equal(r.kvs[1].key, "/aitask/test/p/1");
    ait_etcd_range_result_clear(&r);
    ait_free(end);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_verifies_and_is_idempotent),
        cmocka_unit_test(test_tampering_is_named),
        cmocka_unit_test(test_etcd_down_fails_closed),
        cmocka_unit_test(test_ledger_race_is_exact),
        cmocka_unit_test(test_lease),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

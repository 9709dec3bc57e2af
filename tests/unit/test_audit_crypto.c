/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/audit/crypto: SHA-256 known answers, AES-256-GCM round trip, tamper and
 * wrong-key detection, key files (raw and hex), base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/crypto.h"
#include "core/alloc.h"

static const unsigned char key_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                        23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_sha256_kat(void **state)
{
    (void)state;
    char out[65];
    ait_audit_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ait_audit_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_gcm_round_trip_and_tamper(void **state)
{
    (void)state;
    ait_audit_key *k = NULL, *k2 = NULL;
    unsigned char other[32];
    memcpy(other, key_a, 32);
    other[31] ^= 1;
    assert_int_equal(ait_audit_key_from_bytes(key_a, 32, &k, NULL), AIT_OK);
    assert_int_equal(ait_audit_key_from_bytes(other, 32, &k2, NULL), AIT_OK);
    assert_string_not_equal(ait_audit_key_id(k), ait_audit_key_id(k2));
    assert_int_equal(strncmp(ait_audit_key_id(k), "k1-", 3), 0);
    assert_int_equal(strlen(ait_audit_key_id(k)), 19);

    const char *msg = "fix the off-by-one in loop()";
    unsigned char *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    assert_int_equal(ait_audit_seal(k, "aad", 3, msg, strlen(msg), &s1, &n1, NULL), AIT_OK);
    assert_int_equal(ait_audit_seal(k, "aad", 3, msg, strlen(msg), &s2, &n2, NULL), AIT_OK);
    assert_int_equal(n1, 12 + strlen(msg) + 16);
    /* A fresh nonce each time: the same message never seals to the same bytes. */
    assert_memory_not_equal(s1, s2, 12);
    assert_memory_not_equal(s1, s2, n1);

    char *pt = NULL;
    size_t ptn = 0;
    assert_int_equal(ait_audit_open(k, "aad", 3, s1, n1, &pt, &ptn, NULL), AIT_OK);
    assert_int_equal(ptn, strlen(msg));
    assert_string_equal(pt, msg);
    ait_free(pt);

    ait_error err = {0};
    pt = NULL;
    /* Wrong key, wrong aad, and every single flipped byte are refused. */
    assert_int_equal(ait_audit_open(k2, "aad", 3, s1, n1, &pt, &ptn, &err), AIT_ERR_INVALID);
    assert_non_null(strstr(err.msg, "authentication failed"));
    assert_null(pt);
    assert_int_equal(ait_audit_open(k, "aae", 3, s1, n1, &pt, &ptn, NULL), AIT_ERR_INVALID);
    for (size_t i = 0; i < n1; i++) {
        s1[i] ^= 0x40;
        assert_int_equal(ait_audit_open(k, "aad", 3, s1, n1, &pt, &ptn, NULL), AIT_ERR_INVALID);
        s1[i] ^= 0x40;
    }
    assert_int_equal(ait_audit_open(k, "aad", 3, s1, 20, &pt, &ptn, NULL), AIT_ERR_INVALID);
    assert_null(pt);

    /* Empty plaintext round-trips too. */
    unsigned char *s3 = NULL;
    size_t n3 = 0;
    assert_int_equal(ait_audit_seal(k, NULL, 0, "", 0, &s3, &n3, NULL), AIT_OK);
    assert_int_equal(n3, 28);
    assert_int_equal(ait_audit_open(k, NULL, 0, s3, n3, &pt, &ptn, NULL), AIT_OK);
    assert_int_equal(ptn, 0);
    ait_free(pt);
    ait_free(s1);
    ait_free(s2);
    ait_free(s3);
    ait_audit_key_free(k);
    ait_audit_key_free(k2);
    ait_audit_key_free(NULL);
}

static char *write_tmp(const void *data, size_t len)
{
    char tmpl[] = "/tmp/ait-key-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return ait_strdup(tmpl);
}

static void test_key_files(void **state)
{
    (void)state;
    ait_audit_key *raw = NULL, *hex = NULL, *bad = NULL;
    char *p1 = write_tmp(key_a, 32);
    char hexs[80];
    for (int i = 0; i < 32; i++) {
        snprintf(hexs + 2 * i, 3, "%02X", key_a[i]);
    }
    hexs[64] = '\n';
    char *p2 = write_tmp(hexs, 65);
    char *p3 = write_tmp("not a key\n", 10);
    hexs[5] = 'z';
    char *p4 = write_tmp(hexs, 65);
    assert_int_equal(ait_audit_key_load_file(p1, &raw, NULL), AIT_OK);
    assert_int_equal(ait_audit_key_load_file(p2, &hex, NULL), AIT_OK);
    assert_string_equal(ait_audit_key_id(raw), ait_audit_key_id(hex));
    ait_error err = {0};
    assert_int_equal(ait_audit_key_load_file(p3, &bad, &err), AIT_ERR_INVALID);
    assert_non_null(strstr(err.msg, "32 raw bytes or 64 hex"));
    assert_int_equal(ait_audit_key_load_file(p4, &bad, &err), AIT_ERR_INVALID);
    assert_int_equal(ait_audit_key_load_file("/nonexistent/key", &bad, &err), AIT_ERR_IO);
    assert_int_equal(ait_audit_key_from_bytes(key_a, 31, &bad, NULL), AIT_ERR_INVALID);
    assert_null(bad);
    unlink(p1);
    unlink(p2);
    unlink(p3);
    unlink(p4);
    ait_free(p1);
    ait_free(p2);
    ait_free(p3);
    ait_free(p4);
    ait_audit_key_free(raw);
    ait_audit_key_free(hex);
}

static void test_base64(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"", ""},        {"f", "Zg=="},        {"fo", "Zm8="},
        {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"/aitask/audit/", "L2FpdGFzay9hdWRpdC8="}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = ait_base64_encode(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        unsigned char *d = NULL;
        size_t n = 0;
        assert_int_equal(ait_base64_decode(e, strlen(e), &d, &n, NULL), AIT_OK);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(d, cases[i][0], n);
        ait_free(d);
        ait_free(e);
    }
    unsigned char *d = NULL;
    size_t n = 0;
    assert_int_equal(ait_base64_decode("Zm9v!", 5, &d, &n, NULL), AIT_ERR_PARSE);
    assert_int_equal(ait_base64_decode("Z", 1, &d, &n, NULL), AIT_ERR_PARSE);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_kat),
        cmocka_unit_test(test_gcm_round_trip_and_tamper),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

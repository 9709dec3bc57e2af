/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256, AES-256-GCM and base64 for the audit trail, on OpenSSL EVP. Key bytes live only in
 * ait_audit_key and are cleansed on free; errors never quote key material. */
#include "audit/crypto.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct ait_audit_key {
    unsigned char bytes[AIT_AUDIT_KEY_LEN];
    char id[AIT_AUDIT_KEY_ID_MAX];
};

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ait_audit_sha256_hex(const void *data, size_t len, char out[AIT_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    /* EVP_Digest with SHA-256 cannot fail short of memory exhaustion inside OpenSSL. */
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        memset(md, 0, sizeof md);
    }
    to_hex(md, 32, out);
}

ait_status ait_audit_key_from_bytes(const void *bytes, size_t len, ait_audit_key **out,
                                    ait_error *err)
{
    if (bytes == NULL || len != AIT_AUDIT_KEY_LEN) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit key must be %d bytes, got %zu",
                             AIT_AUDIT_KEY_LEN, len);
    }
    ait_audit_key *k = ait_calloc(1, sizeof *k);
    memcpy(k->bytes, bytes, AIT_AUDIT_KEY_LEN);
    /* The id is a domain-separated digest: it names the key without helping anyone guess it. */
    unsigned char buf[sizeof "aitask-audit-key-id\n" - 1 + AIT_AUDIT_KEY_LEN];
    memcpy(buf, "aitask-audit-key-id\n", sizeof "aitask-audit-key-id\n" - 1);
    memcpy(buf + sizeof "aitask-audit-key-id\n" - 1, k->bytes, AIT_AUDIT_KEY_LEN);
    char hex[AIT_SHA256_HEX_LEN + 1];
    ait_audit_sha256_hex(buf, sizeof buf, hex);
    OPENSSL_cleanse(buf, sizeof buf);
    snprintf(k->id, sizeof k->id, "k1-%.16s", hex);
    *out = k;
    return AIT_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

ait_status ait_audit_key_load_file(const char *path, ait_audit_key **out, ait_error *err)
{
    unsigned char data[256];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return ait_error_set(err, AIT_ERR_IO, "audit key file %s: %s", path, strerror(errno));
    }
    size_t n = fread(data, 1, sizeof data, f);
    int ferr = ferror(f);
    fclose(f);
    ait_status st;
    if (ferr) {
        st = ait_error_set(err, AIT_ERR_IO, "audit key file %s: read error", path);
        goto out;
    }
    if (n == AIT_AUDIT_KEY_LEN) {
        st = ait_audit_key_from_bytes(data, n, out, err);
        goto out;
    }
    /* Hex form: trim whitespace, then exactly 64 hex digits. */
    size_t b = 0, e = n;
    while (b < e && (data[b] == ' ' || data[b] == '\n' || data[b] == '\r' || data[b] == '\t')) {
        b++;
    }
    while (e > b && (data[e - 1] == ' ' || data[e - 1] == '\n' || data[e - 1] == '\r' ||
                     data[e - 1] == '\t')) {
        e--;
    }
    if (e - b != 2 * AIT_AUDIT_KEY_LEN) {
        st = ait_error_set(err, AIT_ERR_INVALID,
                           "audit key file %s: want 32 raw bytes or 64 hex digits, got %zu bytes",
                           path, n);
        goto out;
    }
    unsigned char raw[AIT_AUDIT_KEY_LEN];
    for (size_t i = 0; i < AIT_AUDIT_KEY_LEN; i++) {
        int hi = hexval(data[b + 2 * i]), lo = hexval(data[b + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(raw, sizeof raw);
            st = ait_error_set(err, AIT_ERR_INVALID, "audit key file %s: not hex", path);
            goto out;
        }
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    st = ait_audit_key_from_bytes(raw, sizeof raw, out, err);
    OPENSSL_cleanse(raw, sizeof raw);
out:
    OPENSSL_cleanse(data, sizeof data);
    return st;
}

void ait_audit_key_free(ait_audit_key *k)
{
    if (k == NULL) {
        return;
    }
    OPENSSL_cleanse(k, sizeof *k);
    ait_free(k);
}

const char *ait_audit_key_id(const ait_audit_key *k)
{
    return k->id;
}

ait_status ait_audit_seal(const ait_audit_key *k, const void *aad, size_t aad_len, const void *pt,
                          size_t len, unsigned char **out, size_t *out_len, ait_error *err)
{
    if (len > (size_t)INT32_MAX || aad_len > (size_t)INT32_MAX) {
        return ait_error_set(err, AIT_ERR_TOO_LARGE, "audit seal: message too large");
    }
    unsigned char *buf = ait_malloc(AIT_AUDIT_NONCE_LEN + len + AIT_AUDIT_TAG_LEN);
    ait_status st = AIT_OK;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, total = 0;
    if (ctx == NULL || RAND_bytes(buf, AIT_AUDIT_NONCE_LEN) != 1 ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AIT_AUDIT_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, k->bytes, buf) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "audit seal: cipher setup failed");
        goto out;
    }
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "audit seal: aad failed");
        goto out;
    }
    if (len > 0 && EVP_EncryptUpdate(ctx, buf + AIT_AUDIT_NONCE_LEN, &n, pt, (int)len) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "audit seal: encrypt failed");
        goto out;
    }
    total = len > 0 ? n : 0;
    if (EVP_EncryptFinal_ex(ctx, buf + AIT_AUDIT_NONCE_LEN + total, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AIT_AUDIT_TAG_LEN,
                            buf + AIT_AUDIT_NONCE_LEN + total + n) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "audit seal: finish failed");
        goto out;
    }
    total += n;
    *out = buf;
    *out_len = AIT_AUDIT_NONCE_LEN + (size_t)total + AIT_AUDIT_TAG_LEN;
    buf = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    ait_free(buf);
    return st;
}

ait_status ait_audit_open(const ait_audit_key *k, const void *aad, size_t aad_len,
                          const unsigned char *sealed, size_t len, char **out, size_t *out_len,
                          ait_error *err)
{
    if (len < AIT_AUDIT_NONCE_LEN + AIT_AUDIT_TAG_LEN) {
        return ait_error_set(err, AIT_ERR_INVALID, "decryption failed: ciphertext too short");
    }
    if (len > (size_t)INT32_MAX || aad_len > (size_t)INT32_MAX) {
        return ait_error_set(err, AIT_ERR_TOO_LARGE, "decryption failed: message too large");
    }
    size_t ctlen = len - AIT_AUDIT_NONCE_LEN - AIT_AUDIT_TAG_LEN;
    char *pt = ait_malloc(ctlen + 1);
    ait_status st = AIT_OK;
    int n = 0, total = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AIT_AUDIT_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, k->bytes, sealed) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "decryption failed: cipher setup failed");
        goto out;
    }
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        st = ait_error_set(err, AIT_ERR_INTERNAL, "decryption failed: aad");
        goto out;
    }
    if (ctlen > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)pt, &n, sealed + AIT_AUDIT_NONCE_LEN,
                                       (int)ctlen) != 1) {
        st = ait_error_set(err, AIT_ERR_INVALID, "decryption failed");
        goto out;
    }
    total = ctlen > 0 ? n : 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AIT_AUDIT_TAG_LEN,
                            (void *)(sealed + len - AIT_AUDIT_TAG_LEN)) != 1 ||
        EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + total, &n) != 1) {
        st = ait_error_set(err, AIT_ERR_INVALID,
                           "decryption failed: authentication failed (wrong key or altered data)");
        goto out;
    }
    total += n;
    pt[total] = '\0';
    *out = pt;
    *out_len = (size_t)total;
    pt = NULL;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ctlen + 1);
        ait_free(pt);
    }
    return st;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ait_base64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = ait_malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = b64chars[v >> 6 & 63];
        out[o++] = b64chars[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

ait_status ait_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                             ait_error *err)
{
    /* Padding is optional (some encoders drop it); anything else that is not base64 fails. */
    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return ait_error_set(err, AIT_ERR_PARSE, "base64: bad length");
    }
    unsigned char *buf = ait_malloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            ait_free(buf);
            return ait_error_set(err, AIT_ERR_PARSE, "base64: invalid character at %zu", i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return AIT_OK;
}

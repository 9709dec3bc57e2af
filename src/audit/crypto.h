/* SPDX-License-Identifier: Apache-2.0 */
/* Cryptography of the audit trail: SHA-256 (hex), and AES-256-GCM sealing of prompts and
 * responses with a fresh random 96-bit nonce per message (OpenSSL EVP). A key is 32 raw bytes
 * with a public key id derived from it (so a verifier can tell which key sealed an entry without
 * revealing the key); key bytes are wiped on free and never logged. */
#ifndef AIT_AUDIT_CRYPTO_H
#define AIT_AUDIT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AIT_SHA256_HEX_LEN 64
#define AIT_AUDIT_KEY_LEN 32
#define AIT_AUDIT_NONCE_LEN 12
#define AIT_AUDIT_TAG_LEN 16
#define AIT_AUDIT_KEY_ID_MAX 32

/* Writes the lower-case hex SHA-256 of len bytes at data into out (65 bytes, terminated). */
void ait_audit_sha256_hex(const void *data, size_t len, char out[AIT_SHA256_HEX_LEN + 1]);

typedef struct ait_audit_key ait_audit_key;

/* Makes a key from 32 raw bytes (copied). This is the seam for keys that come from elsewhere
 * (Vault later): the caller fetches the bytes and wipes its copy. Returns owned in *out, free
 * with ait_audit_key_free(). AIT_ERR_INVALID when len != 32. */
ait_status ait_audit_key_from_bytes(const void *bytes, size_t len, ait_audit_key **out,
                                    ait_error *err) AIT_WUR;
/* Reads a key file: exactly 32 raw bytes, or 64 hex digits (surrounding whitespace allowed).
 * Returns owned in *out. AIT_ERR_IO when unreadable, AIT_ERR_INVALID for any other content; the
 * message never contains key material. */
ait_status ait_audit_key_load_file(const char *path, ait_audit_key **out, ait_error *err) AIT_WUR;
/* Wipes and frees; NULL is a no-op. */
void ait_audit_key_free(ait_audit_key *k);
/* Returns the key id ("k1-" + 16 hex digits of SHA-256 over a label and the key); borrowed,
 * valid while k lives. */
const char *ait_audit_key_id(const ait_audit_key *k);

/* Seals len bytes of plaintext with k and aad (associated data bound to the ciphertext, may be
 * NULL with aad_len 0). *out (owned, ait_free) receives nonce(12) || ciphertext || tag(16), and
 * *out_len its length. The nonce comes from the OpenSSL CSPRNG; AIT_ERR_INTERNAL if that fails. */
ait_status ait_audit_seal(const ait_audit_key *k, const void *aad, size_t aad_len, const void *pt,
                          size_t len, unsigned char **out, size_t *out_len, ait_error *err) AIT_WUR;
/* Opens what ait_audit_seal produced. *out (owned, ait_free, NUL-terminated for convenience)
 * receives the plaintext and *out_len its length. A wrong key, wrong aad or any altered byte
 * gives AIT_ERR_INVALID ("authentication failed") and nothing in *out. */
ait_status ait_audit_open(const ait_audit_key *k, const void *aad, size_t aad_len,
                          const unsigned char *sealed, size_t len, char **out, size_t *out_len,
                          ait_error *err) AIT_WUR;

/* Standard base64 (with padding). Encode returns owned (ait_free). Decode fills *out (owned,
 * NUL-terminated) and *out_len; AIT_ERR_PARSE on malformed input. */
char *ait_base64_encode(const void *data, size_t len);
ait_status ait_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                             ait_error *err) AIT_WUR;

#endif

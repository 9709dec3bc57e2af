/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail (SPEC.md §6): one hash chain per AITask in etcd under
 * /aitask/audit/<task-uid>/<seq, %020>, seq counting from 1. Each entry is a JSON object whose
 * `hash` is the SHA-256 (hex) of the entry's canonical JSON without `hash` (keys sorted by byte,
 * no insignificant whitespace, JCS-style string escapes, integers only) and whose `prevHash` is
 * the previous entry's hash (64 zeros for seq 1). Prompts and responses are stored only sealed
 * with AES-256-GCM (audit/crypto.h) next to their plaintext SHA-256; the associated data binds
 * each ciphertext to "<uid>/<seq>/<field>". Entries are written with a txn that succeeds only
 * when the key does not exist (create_revision == 0): nothing is ever overwritten.
 *
 * Stored fields: v (1), seq, ts (RFC 3339, microseconds), namespace, name, uid, action, actor,
 * provider, model, traceID (strings, left out when not given), promptTokens, completionTokens,
 * costMicroUSD (integers, always), promptSHA256/promptEnc, responseSHA256/responseEnc, keyID
 * (when a prompt/response is given), details (an optional caller object, e.g. a secret's path
 * and version; never a secret value), prevHash, hash. */
#ifndef AIT_AUDIT_CHAIN_H
#define AIT_AUDIT_CHAIN_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/crypto.h"
#include "audit/etcd.h"
#include "core/buf.h"
#include "core/status.h"
#include "core/time.h"

#define AIT_AUDIT_PREFIX "/aitask/audit/"
#define AIT_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* Actions an entry may record. */
#define AIT_AUDIT_ATTEMPT_START "attempt.start"
#define AIT_AUDIT_ATTEMPT_FINISH "attempt.finish"
#define AIT_AUDIT_HEAL_REQUEST "heal.request"
#define AIT_AUDIT_HEAL_RESPONSE "heal.response"
#define AIT_AUDIT_SECRET_READ "secret.read"
#define AIT_AUDIT_BUDGET_REFUSED "budget.refused"
#define AIT_AUDIT_TASK_SEALED "task.sealed"

/* The head of a chain: what the controller mirrors in status.audit ({head: hash, entries: seq}).
 * An empty chain is {0, ""}. Since seq counts from 1 without gaps, seq == number of entries. */
typedef struct ait_audit_head {
    int64_t seq;
    char hash[AIT_SHA256_HEX_LEN + 1];
} ait_audit_head;

/* What the caller records; all pointers borrowed for the call. NULL strings are left out. */
typedef struct ait_audit_entry {
    const char *action; /* required: one of the AIT_AUDIT_* actions above */
    const char *namespace_;
    const char *name;
    const char *uid;   /* required: the AITask's metadata.uid (no '/') */
    const char *actor; /* who acted, e.g. "aitask-controller/<pod>" */
    const char *provider;
    const char *model;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micro_usd;
    const char *prompt; /* plaintext, sealed before storing; NULL = none */
    size_t prompt_len;
    const char *response; /* plaintext, sealed before storing; NULL = none */
    size_t response_len;
    const char *trace_id;
    int64_t ts_ns;        /* 0 = now, from the chain's clock */
    json_object *details; /* optional object of strings/ints/bools/null/arrays/objects */
} ait_audit_entry;

typedef struct ait_audit_options {
    ait_etcd *etcd;           /* borrowed; must outlive the chain client */
    const ait_audit_key *key; /* borrowed; needed to append entries with a prompt/response */
    const ait_clock *clock;   /* borrowed; NULL = ait_clock_system() */
} ait_audit_options;

typedef struct ait_audit_chain ait_audit_chain;

/* Returns owned in *out, free with ait_audit_chain_free(). Thread-safe: appends to different
 * chains may run in parallel; appends to one chain must be serialised by the caller (the head
 * it passes decides the seq). */
ait_status ait_audit_chain_new(const ait_audit_options *opts, ait_audit_chain **out,
                               ait_error *err) AIT_WUR;
void ait_audit_chain_free(ait_audit_chain *c);

/* Appends in to the chain of in->uid after *io_head (the head the caller last saw: {0, ""} for
 * a new chain; the controller keeps it in status.audit). On success *io_head becomes the new
 * head. Idempotent: when the seq is already written with the same content (every field but ts,
 * the ciphertexts, keyID and hash; plaintext equality is carried by the SHA-256 fields) and a
 * valid hash, that is a success and *io_head takes the stored hash, so a retry after a lost
 * answer is safe. Errors (*io_head unchanged): AIT_ERR_CONFLICT when the seq holds different
 * content (a stale head or another writer), AIT_ERR_INVALID for a bad entry or a prompt without
 * a key, and the etcd client's statuses (AIT_ERR_IO when etcd is unreachable, AIT_ERR_TIMEOUT,
 * AIT_ERR_RETRY): the caller holds the task and retries later with the same head (fail closed). */
ait_status ait_audit_append(ait_audit_chain *c, const ait_audit_entry *in, ait_audit_head *io_head,
                            ait_error *err) AIT_WUR;

/* One stored entry as read back. */
typedef struct ait_audit_record {
    char *key; /* owned */
    char *raw; /* owned: the stored bytes, NUL-terminated */
    size_t raw_len;
    json_object *entry; /* owned: parsed raw, or NULL when it is not a JSON object */
} ait_audit_record;

typedef struct ait_audit_records {
    ait_audit_record *v;
    size_t n;
} ait_audit_records;

void ait_audit_records_clear(ait_audit_records *r);

/* Reads every key under /aitask/audit/<uid>/ in key order (paged), into *out (clear with
 * ait_audit_records_clear). */
ait_status ait_audit_list(ait_etcd *etcd, const char *uid, ait_audit_records *out,
                          ait_error *err) AIT_WUR;

typedef struct ait_audit_verify_options {
    const ait_audit_key *key; /* NULL = do not decrypt */
    int64_t expect_entries;   /* < 0 = not checked */
    const char *expect_head;  /* NULL = not checked */
} ait_audit_verify_options;

typedef struct ait_audit_report {
    int64_t entries;                   /* records read */
    char head[AIT_SHA256_HEX_LEN + 1]; /* stored hash of the last record ("" when none) */
    size_t problems;
    size_t decrypted; /* ciphertexts opened and matched against their SHA-256 */
    ait_buf text;     /* one line per problem, naming the key and seq; free with
                       * ait_buf_free */
} ait_audit_report;

/* Checks records of the chain of uid: key format and seq continuity (1..n, no gap), each
 * entry's seq and uid fields against its key, each hash recomputed, each prevHash against the
 * previous hash, and with a key, every ciphertext opened and its plaintext's SHA-256 compared.
 * Then the count and head against the expectations (status.audit). Fills *rep (initialised
 * here; free rep->text). Returns AIT_OK when everything holds, else AIT_ERR_INVALID. */
ait_status ait_audit_verify(const char *uid, const ait_audit_records *records,
                            const ait_audit_verify_options *opts, ait_audit_report *rep) AIT_WUR;

/* Opens the sealed field ("prompt" or "response") of a stored entry with key. *out (owned,
 * ait_free, NUL-terminated) gets the plaintext. AIT_ERR_NOT_FOUND when the entry has no such
 * field, AIT_ERR_INVALID when the key id differs ("entry sealed with key X, given key Y") or
 * authentication fails. */
ait_status ait_audit_open_field(const ait_audit_key *key, json_object *entry, const char *field,
                                char **out, size_t *out_len, ait_error *err) AIT_WUR;

/* Writes the canonical JSON of o into out (appended), leaving out the top-level key skip (NULL
 * = none). AIT_ERR_INVALID for doubles (not canonical) and nesting over 32. */
ait_status ait_audit_canonical(json_object *o, const char *skip, ait_buf *out,
                               ait_error *err) AIT_WUR;
/* Computes the hash of an entry: SHA-256 hex of its canonical JSON without "hash". */
ait_status ait_audit_entry_hash(json_object *entry, char out[AIT_SHA256_HEX_LEN + 1],
                                ait_error *err) AIT_WUR;

/* Returns the key of seq in the chain of uid ("/aitask/audit/<uid>/%020"); owned, ait_free. */
char *ait_audit_key_for(const char *uid, int64_t seq);

#endif

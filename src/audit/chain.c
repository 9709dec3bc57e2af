/* SPDX-License-Identifier: Apache-2.0 */
/* The per-task audit hash chain in etcd: building, sealing, hashing and writing entries with a
 * create-only txn, reading a chain back, and verifying it. Canonical JSON here is the single
 * definition that both the writer and every verifier (aitaskctl) use. */
#include "audit/chain.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

#define CANON_MAX_DEPTH 32
#define LIST_PAGE 500

struct ait_audit_chain {
    ait_etcd *etcd;
    const ait_audit_key *key;
    const ait_clock *clock;
};

static const char *const actions[] = {
    AIT_AUDIT_ATTEMPT_START, AIT_AUDIT_ATTEMPT_FINISH, AIT_AUDIT_HEAL_REQUEST,
    AIT_AUDIT_HEAL_RESPONSE, AIT_AUDIT_SECRET_READ,    AIT_AUDIT_BUDGET_REFUSED,
    AIT_AUDIT_TASK_SEALED,
};

ait_status ait_audit_chain_new(const ait_audit_options *opts, ait_audit_chain **out, ait_error *err)
{
    if (opts == NULL || opts->etcd == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit chain: an etcd client is required");
    }
    ait_audit_chain *c = ait_calloc(1, sizeof *c);
    c->etcd = opts->etcd;
    c->key = opts->key;
    c->clock = opts->clock != NULL ? opts->clock : ait_clock_system();
    *out = c;
    return AIT_OK;
}

void ait_audit_chain_free(ait_audit_chain *c)
{
    ait_free(c);
}

char *ait_audit_key_for(const char *uid, int64_t seq)
{
    return ait_asprintf(AIT_AUDIT_PREFIX "%s/%020" PRId64, uid, seq);
}

/* ---- canonical JSON ---- */

static ait_status canon_string(ait_buf *out, const char *s, size_t len)
{
    ait_status st = ait_buf_append(out, "\"", 1);
    for (size_t i = 0; i < len && st == AIT_OK; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            st = ait_buf_append(out, "\\\"", 2);
            break;
        case '\\':
            st = ait_buf_append(out, "\\\\", 2);
            break;
        case '\b':
            st = ait_buf_append(out, "\\b", 2);
            break;
        case '\f':
            st = ait_buf_append(out, "\\f", 2);
            break;
        case '\n':
            st = ait_buf_append(out, "\\n", 2);
            break;
        case '\r':
            st = ait_buf_append(out, "\\r", 2);
            break;
        case '\t':
            st = ait_buf_append(out, "\\t", 2);
            break;
        default:
            if (ch < 0x20) {
                st = ait_buf_appendf(out, "\\u%04x", ch);
            } else {
                st = ait_buf_append(out, &s[i], 1);
            }
            break;
        }
    }
    if (st == AIT_OK) {
        st = ait_buf_append(out, "\"", 1);
    }
    return st;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int in_list(const char *k, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++) {
        if (strcmp(k, skip[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static ait_status canon(json_object *o, const char *const *skip, int depth, ait_buf *out,
                        ait_error *err)
{
    if (depth > CANON_MAX_DEPTH) {
        return ait_error_set(err, AIT_ERR_INVALID, "canonical JSON: nesting over %d",
                             CANON_MAX_DEPTH);
    }
    ait_status st = AIT_OK;
    switch (json_object_get_type(o)) {
    case json_type_null:
        st = ait_buf_appends(out, "null");
        break;
    case json_type_boolean:
        st = ait_buf_appends(out, json_object_get_boolean(o) ? "true" : "false");
        break;
    case json_type_int:
        st = ait_buf_appendf(out, "%" PRId64, json_object_get_int64(o));
        break;
    case json_type_double:
        return ait_error_set(err, AIT_ERR_INVALID,
                             "canonical JSON: non-integer numbers are not allowed");
    case json_type_string:
        st = canon_string(out, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(o);
        st = ait_buf_append(out, "[", 1);
        for (size_t i = 0; i < n && st == AIT_OK; i++) {
            if (i > 0) {
                st = ait_buf_append(out, ",", 1);
            }
            if (st == AIT_OK) {
                st = canon(json_object_array_get_idx(o, i), NULL, depth + 1, out, err);
                if (st != AIT_OK) {
                    return st;
                }
            }
        }
        if (st == AIT_OK) {
            st = ait_buf_append(out, "]", 1);
        }
        break;
    }
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(o), k = 0;
        const char **keys = ait_calloc(n > 0 ? n : 1, sizeof *keys);
        json_object_object_foreach(o, key, val)
        {
            (void)val;
            if (k < n && !in_list(key, skip)) {
                keys[k++] = key;
            }
        }
        qsort(keys, k, sizeof *keys, cmp_keys);
        st = ait_buf_append(out, "{", 1);
        for (size_t i = 0; i < k && st == AIT_OK; i++) {
            if (i > 0 && (st = ait_buf_append(out, ",", 1)) != AIT_OK) {
                break;
            }
            if ((st = canon_string(out, keys[i], strlen(keys[i]))) != AIT_OK ||
                (st = ait_buf_append(out, ":", 1)) != AIT_OK) {
                break;
            }
            st = canon(json_object_object_get(o, keys[i]), NULL, depth + 1, out, err);
            if (st != AIT_OK) {
                ait_free(keys);
                return st;
            }
        }
        ait_free(keys);
        if (st == AIT_OK) {
            st = ait_buf_append(out, "}", 1);
        }
        break;
    }
    }
    if (st != AIT_OK) {
        return ait_error_set(err, st, "canonical JSON: %s", ait_status_str(st));
    }
    return AIT_OK;
}

ait_status ait_audit_canonical(json_object *o, const char *skip, ait_buf *out, ait_error *err)
{
    const char *list[2] = {skip, NULL};
    return canon(o, list, 0, out, err);
}

ait_status ait_audit_entry_hash(json_object *entry, char out[AIT_SHA256_HEX_LEN + 1],
                                ait_error *err)
{
    if (!json_object_is_type(entry, json_type_object)) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit entry is not a JSON object");
    }
    ait_buf b;
    ait_buf_init(&b, 0);
    ait_status st = ait_audit_canonical(entry, "hash", &b, err);
    if (st == AIT_OK) {
        ait_audit_sha256_hex(b.data ? b.data : "", b.len, out);
    }
    ait_buf_free(&b);
    return st;
}

/* ---- building and appending ---- */

static void add_str(json_object *o, const char *k, const char *v)
{
    if (v != NULL) {
        json_object_object_add(o, k, json_object_new_string(v));
    }
}

static char *field_aad(const char *uid, int64_t seq, const char *field)
{
    return ait_asprintf("%s/%" PRId64 "/%s", uid, seq, field);
}

static ait_status seal_field(const ait_audit_key *key, json_object *o, const char *uid, int64_t seq,
                             const char *field, const char *pt, size_t len, ait_error *err)
{
    char sha[AIT_SHA256_HEX_LEN + 1];
    ait_audit_sha256_hex(pt, len, sha);
    char *aad = field_aad(uid, seq, field);
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    ait_status st = ait_audit_seal(key, aad, strlen(aad), pt, len, &sealed, &sealed_len, err);
    ait_free(aad);
    if (st != AIT_OK) {
        return st;
    }
    char *b64 = ait_base64_encode(sealed, sealed_len);
    ait_free(sealed);
    char *k1 = ait_asprintf("%sSHA256", field), *k2 = ait_asprintf("%sEnc", field);
    add_str(o, k1, sha);
    add_str(o, k2, b64);
    ait_free(k1);
    ait_free(k2);
    ait_free(b64);
    return AIT_OK;
}

static int valid_hash(const char *h)
{
    if (h == NULL || strlen(h) != AIT_SHA256_HEX_LEN) {
        return 0;
    }
    for (size_t i = 0; i < AIT_SHA256_HEX_LEN; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static ait_status build_entry(ait_audit_chain *c, const ait_audit_entry *in,
                              const ait_audit_head *head, json_object **out, ait_error *err)
{
    int ok = 0;
    for (size_t i = 0; in->action != NULL && i < sizeof actions / sizeof actions[0]; i++) {
        ok |= strcmp(in->action, actions[i]) == 0;
    }
    if (!ok) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit entry: unknown action %s",
                             in->action ? in->action : "(null)");
    }
    if (in->uid == NULL || in->uid[0] == '\0' || strchr(in->uid, '/') != NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit entry: uid must be set, without '/'");
    }
    if (head->seq < 0 || (head->seq > 0 && !valid_hash(head->hash))) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit append: invalid head (seq %" PRId64 ")",
                             head->seq);
    }
    if ((in->prompt != NULL || in->response != NULL) && c->key == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "audit entry: a prompt or response needs an encryption key");
    }
    if (in->details != NULL && !json_object_is_type(in->details, json_type_object)) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit entry: details must be an object");
    }
    int64_t seq = head->seq + 1;
    int64_t ts = in->ts_ns != 0 ? in->ts_ns : c->clock->now_ns(c->clock->ctx);
    char tsbuf[40];
    ait_time_rfc3339_micro(ts, tsbuf, sizeof tsbuf);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int64(1));
    json_object_object_add(o, "seq", json_object_new_int64(seq));
    add_str(o, "ts", tsbuf);
    add_str(o, "namespace", in->namespace_);
    add_str(o, "name", in->name);
    add_str(o, "uid", in->uid);
    add_str(o, "action", in->action);
    add_str(o, "actor", in->actor);
    add_str(o, "provider", in->provider);
    add_str(o, "model", in->model);
    add_str(o, "traceID", in->trace_id);
    json_object_object_add(o, "promptTokens", json_object_new_int64(in->prompt_tokens));
    json_object_object_add(o, "completionTokens", json_object_new_int64(in->completion_tokens));
    json_object_object_add(o, "costMicroUSD", json_object_new_int64(in->cost_micro_usd));
    ait_status st = AIT_OK;
    if (in->prompt != NULL) {
        st = seal_field(c->key, o, in->uid, seq, "prompt", in->prompt, in->prompt_len, err);
    }
    if (st == AIT_OK && in->response != NULL) {
        st = seal_field(c->key, o, in->uid, seq, "response", in->response, in->response_len, err);
    }
    if (st == AIT_OK && (in->prompt != NULL || in->response != NULL)) {
        add_str(o, "keyID", ait_audit_key_id(c->key));
    }
    if (in->details != NULL) {
        json_object_object_add(o, "details", json_object_get(in->details));
    }
    add_str(o, "prevHash", head->seq == 0 ? AIT_AUDIT_GENESIS : head->hash);
    char hash[AIT_SHA256_HEX_LEN + 1];
    if (st == AIT_OK && (st = ait_audit_entry_hash(o, hash, err)) == AIT_OK) {
        add_str(o, "hash", hash);
    }
    if (st != AIT_OK) {
        json_object_put(o);
        return st;
    }
    *out = o;
    return AIT_OK;
}

/* The facts of an entry, for recognising a retried write: everything but what legitimately
 * differs between two writes of the same facts (time, nonces, key id, and the hash over them). */
static char *facts(json_object *o)
{
    static const char *const skip[] = {"ts", "promptEnc", "responseEnc", "keyID", "hash", NULL};
    ait_buf b;
    ait_buf_init(&b, 0);
    if (canon(o, skip, 0, &b, NULL) != AIT_OK) {
        ait_buf_free(&b);
        return NULL;
    }
    return ait_buf_take(&b);
}

static ait_status check_existing(const ait_etcd_kv *kv, json_object *ours, const char *key,
                                 ait_audit_head *io_head, ait_error *err)
{
    json_object *theirs = NULL;
    ait_status st = ait_json_parse(kv->value, kv->value_len, &theirs, NULL);
    char *a = facts(ours), *b = NULL;
    char hash[AIT_SHA256_HEX_LEN + 1];
    const char *stored = NULL;
    if (st != AIT_OK || !json_object_is_type(theirs, json_type_object)) {
        st = ait_error_set(err, AIT_ERR_CONFLICT, "audit append: %s exists and is not an entry",
                           key);
        goto out;
    }
    b = facts(theirs);
    stored = ait_json_str(theirs, "hash");
    if (a == NULL || b == NULL || strcmp(a, b) != 0) {
        st = ait_error_set(err, AIT_ERR_CONFLICT,
                           "audit append: %s already holds a different entry (stale head or "
                           "another writer)",
                           key);
        goto out;
    }
    if (ait_audit_entry_hash(theirs, hash, NULL) != AIT_OK || stored == NULL ||
        strcmp(hash, stored) != 0) {
        st = ait_error_set(err, AIT_ERR_CONFLICT,
                           "audit append: %s holds our entry but its hash does not verify", key);
        goto out;
    }
    io_head->seq += 1;
    snprintf(io_head->hash, sizeof io_head->hash, "%s", stored);
    st = AIT_OK;
out:
    ait_free(a);
    ait_free(b);
    json_object_put(theirs);
    return st;
}

ait_status ait_audit_append(ait_audit_chain *c, const ait_audit_entry *in, ait_audit_head *io_head,
                            ait_error *err)
{
    json_object *o = NULL;
    ait_status st = build_entry(c, in, io_head, &o, err);
    if (st != AIT_OK) {
        return st;
    }
    ait_buf val;
    ait_buf_init(&val, 0);
    char *key = ait_audit_key_for(in->uid, io_head->seq + 1);
    ait_etcd_txn_result tr = {0};
    if ((st = ait_audit_canonical(o, NULL, &val, err)) != AIT_OK) {
        goto out;
    }
    ait_etcd_compare cmp = {
        .key = key, .target = AIT_ETCD_CMP_CREATE, .result = AIT_ETCD_EQUAL, .value = 0};
    ait_etcd_op put = {
        .type = AIT_ETCD_OP_PUT, .key = key, .value = val.data, .value_len = val.len};
    ait_etcd_op get = {.type = AIT_ETCD_OP_RANGE, .key = key};
    st = ait_etcd_txn(c->etcd, &cmp, 1, &put, 1, &get, 1, &tr, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "audit append %s", key);
        goto out;
    }
    if (tr.succeeded) {
        io_head->seq += 1;
        snprintf(io_head->hash, sizeof io_head->hash, "%s", ait_json_str(o, "hash"));
        goto out;
    }
    if (tr.n < 1 || tr.ranges[0].n < 1) {
        /* Existed at compare time, gone at read time: only a delete can do that. */
        st = ait_error_set(err, AIT_ERR_RETRY, "audit append: %s vanished during the txn", key);
        goto out;
    }
    st = check_existing(&tr.ranges[0].kvs[0], o, key, io_head, err);
out:
    ait_etcd_txn_result_clear(&tr);
    ait_free(key);
    ait_buf_free(&val);
    json_object_put(o);
    return st;
}

/* ---- reading ---- */

void ait_audit_records_clear(ait_audit_records *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        ait_free(r->v[i].key);
        ait_free(r->v[i].raw);
        json_object_put(r->v[i].entry);
    }
    ait_free(r->v);
    memset(r, 0, sizeof *r);
}

ait_status ait_audit_list(ait_etcd *etcd, const char *uid, ait_audit_records *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    if (uid == NULL || uid[0] == '\0' || strchr(uid, '/') != NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "audit: uid must be set, without '/'");
    }
    char *prefix = ait_asprintf(AIT_AUDIT_PREFIX "%s/", uid);
    char *end = ait_etcd_prefix_end(prefix);
    char *from = ait_strdup(prefix);
    size_t cap = 0;
    ait_status st = AIT_OK;
    for (;;) {
        ait_etcd_range_result r;
        st = ait_etcd_range(etcd, from, end, LIST_PAGE, &r, err);
        if (st != AIT_OK) {
            break;
        }
        for (size_t i = 0; i < r.n; i++) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 64;
                out->v = ait_realloc(out->v, cap * sizeof *out->v);
            }
            ait_audit_record *rec = &out->v[out->n++];
            rec->key = r.kvs[i].key;
            rec->raw = r.kvs[i].value;
            rec->raw_len = r.kvs[i].value_len;
            r.kvs[i].key = NULL;
            r.kvs[i].value = NULL;
            rec->entry = NULL;
            json_object *e = NULL;
            if (ait_json_parse(rec->raw, rec->raw_len, &e, NULL) == AIT_OK) {
                if (json_object_is_type(e, json_type_object)) {
                    rec->entry = e;
                } else {
                    json_object_put(e);
                }
            }
        }
        int more = r.more && r.n > 0;
        if (more) {
            /* Continue right after the last key: key + "\0" is its immediate successor, which
             * the gateway cannot take as a C string, so use the next possible key instead. */
            ait_free(from);
            from = ait_asprintf("%s%c", out->v[out->n - 1].key, 1);
        }
        ait_etcd_range_result_clear(&r);
        if (!more) {
            break;
        }
    }
    ait_free(prefix);
    ait_free(end);
    ait_free(from);
    if (st != AIT_OK) {
        ait_audit_records_clear(out);
    }
    return st;
}

/* ---- verifying ---- */

ait_status ait_audit_open_field(const ait_audit_key *key, json_object *entry, const char *field,
                                char **out, size_t *out_len, ait_error *err)
{
    char *kenc = ait_asprintf("%sEnc", field);
    const char *b64 = ait_json_str(entry, kenc);
    ait_free(kenc);
    if (b64 == NULL) {
        return ait_error_set(err, AIT_ERR_NOT_FOUND, "no sealed %s in entry", field);
    }
    const char *kid = ait_json_str(entry, "keyID");
    if (kid == NULL || strcmp(kid, ait_audit_key_id(key)) != 0) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "%s sealed with key %s, but the given key is %s (wrong key)", field,
                             kid ? kid : "(none)", ait_audit_key_id(key));
    }
    const char *uid = ait_json_str(entry, "uid");
    int64_t seq = ait_json_int(entry, "seq", -1);
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    ait_status st = ait_base64_decode(b64, strlen(b64), &sealed, &sealed_len, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "%s", field);
        return AIT_ERR_INVALID;
    }
    char *aad = field_aad(uid ? uid : "", seq, field);
    st = ait_audit_open(key, aad, strlen(aad), sealed, sealed_len, out, out_len, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "%s", field);
    }
    ait_free(aad);
    ait_free(sealed);
    return st;
}

static void problem(ait_audit_report *rep, const char *fmt, ...) AIT_PRINTF(2, 3);
static void problem(ait_audit_report *rep, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ait_status st = ait_buf_vappendf(&rep->text, fmt, ap);
    va_end(ap);
    if (st == AIT_OK) {
        st = ait_buf_append(&rep->text, "\n", 1);
    }
    (void)st; /* unbounded buffer: appends only fail by aborting on OOM */
    rep->problems++;
}

static int64_t key_seq(const char *key, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl) != 0 || strlen(key + pl) != 20) {
        return -1;
    }
    int64_t v = 0;
    for (const char *p = key + pl; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    return v;
}

static void verify_sealed(const ait_audit_key *key, json_object *e, const char *where,
                          const char *field, ait_audit_report *rep)
{
    char *ksha = ait_asprintf("%sSHA256", field);
    const char *want = ait_json_str(e, ksha);
    ait_free(ksha);
    char *pt = NULL;
    size_t len = 0;
    ait_error err = {0};
    ait_status st = ait_audit_open_field(key, e, field, &pt, &len, &err);
    if (st == AIT_ERR_NOT_FOUND) {
        if (want != NULL) {
            problem(rep, "%s: %sSHA256 present but no sealed %s", where, field, field);
        }
        return;
    }
    if (st != AIT_OK) {
        problem(rep, "%s: %s", where, err.msg);
        return;
    }
    char got[AIT_SHA256_HEX_LEN + 1];
    ait_audit_sha256_hex(pt, len, got);
    if (want == NULL || strcmp(want, got) != 0) {
        problem(rep, "%s: decrypted %s does not match %sSHA256", where, field, field);
    } else {
        rep->decrypted++;
    }
    ait_free(pt);
}

ait_status ait_audit_verify(const char *uid, const ait_audit_records *records,
                            const ait_audit_verify_options *opts, ait_audit_report *rep)
{
    memset(rep, 0, sizeof *rep);
    ait_buf_init(&rep->text, 0);
    char *prefix = ait_asprintf(AIT_AUDIT_PREFIX "%s/", uid);
    int64_t expected = 1;
    const char *prev_hash = AIT_AUDIT_GENESIS;
    int64_t prev_seq = 0;
    ait_buf canon_buf;
    ait_buf_init(&canon_buf, 0);
    for (size_t i = 0; i < records->n; i++) {
        const ait_audit_record *r = &records->v[i];
        int64_t kseq = key_seq(r->key, prefix);
        char where[160];
        if (kseq < 1) {
            problem(rep, "key %s: not an entry key of this chain (want %s%%020d, seq >= 1)", r->key,
                    prefix);
            prev_hash = NULL;
            continue;
        }
        snprintf(where, sizeof where, "entry seq %" PRId64 " (key %s)", kseq, r->key);
        if (kseq > expected) {
            if (kseq == expected + 1) {
                problem(rep, "entry seq %" PRId64 " is missing (before %s)", expected, r->key);
            } else {
                problem(rep, "entries seq %" PRId64 "..%" PRId64 " are missing (before %s)",
                        expected, kseq - 1, r->key);
            }
        }
        expected = kseq + 1;
        rep->entries++;
        json_object *e = r->entry;
        if (e == NULL) {
            problem(rep, "%s: stored value is not a JSON object", where);
            prev_hash = NULL;
            rep->head[0] = '\0';
            continue;
        }
        int64_t fseq = ait_json_int(e, "seq", -1);
        if (fseq != kseq) {
            problem(rep, "%s: its seq field says %" PRId64 " (entry moved, re-keyed or reordered)",
                    where, fseq);
        }
        const char *fuid = ait_json_str(e, "uid");
        if (fuid == NULL || strcmp(fuid, uid) != 0) {
            problem(rep, "%s: its uid field says %s, not %s", where, fuid ? fuid : "(none)", uid);
        }
        const char *stored = ait_json_str(e, "hash");
        char computed[AIT_SHA256_HEX_LEN + 1] = "";
        ait_error herr = {0};
        if (ait_audit_entry_hash(e, computed, &herr) != AIT_OK) {
            problem(rep, "%s: cannot hash: %s", where, herr.msg);
        } else if (stored == NULL || strcmp(stored, computed) != 0) {
            problem(rep, "%s: hash mismatch: stored %s, computed %s (content altered)", where,
                    stored ? stored : "(none)", computed);
        }
        /* The stored bytes must be exactly the canonical form, so no byte can change unseen. */
        ait_buf_reset(&canon_buf);
        if (ait_audit_canonical(e, NULL, &canon_buf, NULL) == AIT_OK &&
            (canon_buf.len != r->raw_len || memcmp(canon_buf.data, r->raw, r->raw_len) != 0)) {
            problem(rep, "%s: stored bytes are not the entry's canonical JSON (altered)", where);
        }
        const char *fprev = ait_json_str(e, "prevHash");
        if (kseq == 1) {
            if (fprev == NULL || strcmp(fprev, AIT_AUDIT_GENESIS) != 0) {
                problem(rep, "%s: prevHash of the first entry must be %s", where,
                        AIT_AUDIT_GENESIS);
            }
        } else if (prev_hash != NULL && prev_seq == kseq - 1 &&
                   (fprev == NULL || strcmp(fprev, prev_hash) != 0)) {
            problem(rep, "%s: prevHash %s does not match the hash of entry seq %" PRId64 " (%s)",
                    where, fprev ? fprev : "(none)", prev_seq, prev_hash);
        }
        if (opts != NULL && opts->key != NULL) {
            verify_sealed(opts->key, e, where, "prompt", rep);
            verify_sealed(opts->key, e, where, "response", rep);
        }
        prev_hash = stored;
        prev_seq = kseq;
        snprintf(rep->head, sizeof rep->head, "%s", stored ? stored : "");
    }
    int64_t last_seq = expected - 1;
    if (opts != NULL && opts->expect_entries >= 0) {
        if (last_seq < opts->expect_entries) {
            problem(rep,
                    "chain ends at seq %" PRId64 " but status.audit says %" PRId64
                    " entries: entry seq %" PRId64 " and later are missing (truncated tail)",
                    last_seq, opts->expect_entries, last_seq + 1);
        } else if (last_seq > opts->expect_entries || rep->entries != opts->expect_entries) {
            problem(rep,
                    "chain has %" PRId64 " entries ending at seq %" PRId64
                    ", status.audit says %" PRId64,
                    rep->entries, last_seq, opts->expect_entries);
        }
    }
    if (opts != NULL && opts->expect_head != NULL && strcmp(opts->expect_head, rep->head) != 0) {
        problem(rep, "head %s (entry seq %" PRId64 ") does not match status.audit head %s",
                rep->head[0] ? rep->head : "(empty)", last_seq, opts->expect_head);
    }
    ait_buf_free(&canon_buf);
    ait_free(prefix);
    return rep->problems == 0 ? AIT_OK : AIT_ERR_INVALID;
}

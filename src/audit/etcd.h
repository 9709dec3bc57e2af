/* SPDX-License-Identifier: Apache-2.0 */
/* A small etcd v3 client over etcd's JSON gRPC gateway (the `/v3/...` paths that etcd 3.4, 3.5
 * and 3.6 serve on the client port) with libcurl: put, range (single key, prefix, limit), delete,
 * txn with compares on create/mod revision or version, lease grant/keepalive/revoke. On the wire
 * keys and values are base64 and 64-bit numbers decimal strings. Every call has a deadline (no
 * call blocks forever) and maps failures to typed statuses: no answer -> AIT_ERR_IO (refused,
 * TLS) or AIT_ERR_TIMEOUT; gRPC errors by code (see ait_etcd_decode_error). The client is
 * thread-safe; it keeps a small pool of curl handles so connections are reused. */
#ifndef AIT_AUDIT_ETCD_H
#define AIT_AUDIT_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kube/rest.h"

typedef struct ait_etcd_options {
    const char *endpoint;    /* "http://127.0.0.1:2379" or "https://..." (no trailing path) */
    const char *ca_file;     /* PEM CA for https; NULL = system store. TLS is always verified. */
    const char *cert_file;   /* client certificate (PEM) or NULL */
    const char *key_file;    /* client key (PEM) or NULL */
    long timeout_ms;         /* whole request; default 5000 */
    long connect_timeout_ms; /* default 2000 */
    /* NULL = libcurl. A test seam: the same struct the Kubernetes client uses (kube/rest.h);
     * only do_request is called. Borrowed, must outlive the client. */
    const ait_transport *transport;
} ait_etcd_options;

typedef struct ait_etcd ait_etcd;

/* Creates a client; opts and its strings are borrowed (copied). Returns owned in *out, free with
 * ait_etcd_free(). Nothing is contacted yet. AIT_ERR_INVALID for a missing/odd endpoint. */
ait_status ait_etcd_new(const ait_etcd_options *opts, ait_etcd **out, ait_error *err) AIT_WUR;
void ait_etcd_free(ait_etcd *c);
/* Returns the endpoint; borrowed, valid while c lives. */
const char *ait_etcd_endpoint(const ait_etcd *c);

/* One key-value as etcd returns it. key and value are owned by the result that holds them and
 * NUL-terminated (values may still contain NUL bytes: use value_len). */
typedef struct ait_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} ait_etcd_kv;

typedef struct ait_etcd_range_result {
    ait_etcd_kv *kvs;
    size_t n;
    int64_t count;    /* keys in the range, may exceed n when limited */
    int more;         /* non-zero when the limit cut the answer */
    int64_t revision; /* header revision */
} ait_etcd_range_result;

/* Frees what r holds and zeroes it; safe on a zeroed or already cleared result. */
void ait_etcd_range_result_clear(ait_etcd_range_result *r);

/* Returns the range end that selects every key starting with prefix (prefix with its last byte
 * incremented, carrying; "\0" for the whole keyspace). Owned, ait_free. */
char *ait_etcd_prefix_end(const char *prefix);

/* Puts value (value_len bytes) at key, attached to lease (0 = none). *revision (may be NULL)
 * gets the revision of the write. */
ait_status ait_etcd_put(ait_etcd *c, const char *key, const void *value, size_t value_len,
                        int64_t lease, int64_t *revision, ait_error *err) AIT_WUR;
/* Reads key, or [key, range_end) when range_end is non-NULL, sorted by key ascending, at most
 * limit keys (0 = no limit). Fills *out (clear with ait_etcd_range_result_clear); a missing key
 * is an empty result, not an error. */
ait_status ait_etcd_range(ait_etcd *c, const char *key, const char *range_end, int64_t limit,
                          ait_etcd_range_result *out, ait_error *err) AIT_WUR;
/* Deletes key, or [key, range_end). *deleted (may be NULL) gets how many keys went. */
ait_status ait_etcd_delete(ait_etcd *c, const char *key, const char *range_end, int64_t *deleted,
                           ait_error *err) AIT_WUR;

typedef enum ait_etcd_cmp_target {
    AIT_ETCD_CMP_CREATE, /* create_revision (0 when the key does not exist) */
    AIT_ETCD_CMP_MOD,    /* mod_revision (0 when the key does not exist) */
    AIT_ETCD_CMP_VERSION /* version (0 when the key does not exist) */
} ait_etcd_cmp_target;

typedef enum ait_etcd_cmp_result {
    AIT_ETCD_EQUAL,
    AIT_ETCD_GREATER,
    AIT_ETCD_LESS,
    AIT_ETCD_NOT_EQUAL
} ait_etcd_cmp_result;

typedef struct ait_etcd_compare {
    const char *key;
    ait_etcd_cmp_target target;
    ait_etcd_cmp_result result;
    int64_t value;
} ait_etcd_compare;

typedef enum ait_etcd_op_type {
    AIT_ETCD_OP_PUT,
    AIT_ETCD_OP_RANGE,
    AIT_ETCD_OP_DELETE
} ait_etcd_op_type;

/* One request inside a txn; strings borrowed for the call. */
typedef struct ait_etcd_op {
    ait_etcd_op_type type;
    const char *key;
    const char *range_end; /* RANGE/DELETE: NULL = single key */
    const void *value;     /* PUT */
    size_t value_len;      /* PUT */
    int64_t lease;         /* PUT: 0 = none */
    int64_t limit;         /* RANGE: 0 = none */
} ait_etcd_op;

typedef struct ait_etcd_txn_result {
    int succeeded;                 /* 1 when every compare held and the success ops ran */
    int64_t revision;              /* header revision after the txn */
    size_t n;                      /* responses, one per op of the branch that ran */
    ait_etcd_range_result *ranges; /* ranges[i] holds the answer of op i when it was a RANGE */
} ait_etcd_txn_result;

void ait_etcd_txn_result_clear(ait_etcd_txn_result *r);

/* Runs an atomic transaction: if every compare holds, the success ops run, else the failure
 * ops. Arrays are borrowed; counts may be 0. Fills *out (clear with ait_etcd_txn_result_clear). */
ait_status ait_etcd_txn(ait_etcd *c, const ait_etcd_compare *cmp, size_t ncmp,
                        const ait_etcd_op *success, size_t nsuccess, const ait_etcd_op *failure,
                        size_t nfailure, ait_etcd_txn_result *out, ait_error *err) AIT_WUR;

/* Grants a lease of ttl_s seconds; *id gets its id and *granted_ttl (may be NULL) the TTL. */
ait_status ait_etcd_lease_grant(ait_etcd *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                                ait_error *err) AIT_WUR;
/* Renews lease id once; *ttl (may be NULL) gets the new TTL. AIT_ERR_NOT_FOUND when the lease
 * has expired or never existed. */
ait_status ait_etcd_lease_keepalive(ait_etcd *c, int64_t id, int64_t *ttl, ait_error *err) AIT_WUR;
/* Revokes lease id (its keys are deleted). AIT_ERR_NOT_FOUND when it does not exist. */
ait_status ait_etcd_lease_revoke(ait_etcd *c, int64_t id, ait_error *err) AIT_WUR;

/* Parsers of the gateway's answers, exposed for the fuzz target and unit tests. Each takes the
 * raw body (len bytes) and fills its result, or fails with AIT_ERR_PARSE on malformed JSON,
 * wrong types or bad base64. */
ait_status ait_etcd_parse_range(const char *body, size_t len, ait_etcd_range_result *out,
                                ait_error *err) AIT_WUR;
ait_status ait_etcd_parse_txn(const char *body, size_t len, ait_etcd_txn_result *out,
                              ait_error *err) AIT_WUR;
/* Maps a non-2xx gateway answer ({"code": <gRPC code>, "message"|"error": "..."}) to a typed
 * status with the message in err: InvalidArgument -> INVALID, DeadlineExceeded -> TIMEOUT,
 * NotFound -> NOT_FOUND, AlreadyExists -> EXISTS, PermissionDenied -> FORBIDDEN,
 * Unauthenticated -> UNAUTHORIZED, Aborted/FailedPrecondition -> CONFLICT, OutOfRange
 * (compacted) -> GONE, ResourceExhausted -> QUOTA for "database space exceeded" else RETRY,
 * Unavailable/Internal/Unknown/Canceled -> RETRY; without a code, by HTTP status. */
ait_status ait_etcd_decode_error(long http_status, const char *body, size_t len, ait_error *err);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* The Vault (OpenBao) client: token-file or Kubernetes auth, lazy token renewal, and KV v2 reads
 * through a per-path cache with single-flight (one HTTP request per path however many threads
 * ask at once). Invariants: TLS is always verified; no secret value, token or JWT is ever put in
 * a log line, an error message or the audit hook; every call is thread-safe. */
#ifndef AIT_VAULT_VAULT_H
#define AIT_VAULT_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "core/time.h"

typedef struct ait_vault ait_vault;

/* Default cache TTL (5 minutes), per-request timeout (10 s) and reply bound (1 MiB). */
#define AIT_VAULT_DEFAULT_CACHE_TTL_NS (300 * AIT_NS_PER_S)
#define AIT_VAULT_DEFAULT_TIMEOUT_MS 10000L
#define AIT_VAULT_MAX_BODY (1024u * 1024u)
/* Where a pod's projected service-account token lives. */
#define AIT_VAULT_DEFAULT_JWT_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"

typedef enum ait_vault_auth {
    AIT_VAULT_AUTH_TOKEN_FILE = 0, /* development: a token in a file, re-read on each login */
    AIT_VAULT_AUTH_KUBERNETES,     /* POST /v1/auth/<mount>/login {role, jwt} */
} ait_vault_auth;

/* The audit hook: called once for every ait_vault_read, from the calling thread, after the
 * answer is known. It gets the KV path ("<mount>/<path>"), the version read (0 on failure), the
 * caller's tag (task) and the status, and never the value. */
typedef struct ait_vault_audit {
    void *ctx;
    void (*on_read_cb)(void *ctx, const char *path, int64_t version, const char *task,
                       ait_status result, int from_cache);
} ait_vault_audit;

/* The HTTP seam (unit tests pass their own). do_request_cb sends one request with the token in
 * X-Vault-Token (token NULL: none) and a JSON body (NULL: none), sets *http_status and appends
 * the reply to resp (initialised by the caller with its bound). It returns AIT_OK when any HTTP
 * answer came (even 4xx/5xx) and AIT_ERR_IO/AIT_ERR_TIMEOUT when none did. Called from any
 * thread at once. */
typedef struct ait_vault_transport {
    void *ctx;
    ait_status (*do_request_cb)(void *ctx, const char *method, const char *url, const char *token,
                                const char *body, long *http_status, ait_buf *resp, ait_error *err);
} ait_vault_transport;

typedef struct ait_vault_options {
    const char *addr;    /* "https://127.0.0.1:8200"; http:// is refused unless allow_http */
    const char *ca_file; /* PEM CA bundle to verify the server with; NULL = system CAs */
    int allow_http;      /* accept a plain-http addr (never in production) */
    ait_vault_auth auth;
    const char *token_file; /* AIT_VAULT_AUTH_TOKEN_FILE */
    const char *k8s_role;   /* AIT_VAULT_AUTH_KUBERNETES: the Vault role */
    const char *jwt_file;   /* the service-account token; NULL = AIT_VAULT_DEFAULT_JWT_FILE */
    const char *k8s_mount;  /* auth mount; NULL = "kubernetes" */
    const char *kv_mount;   /* KV v2 mount; NULL = "secret" */
    int64_t cache_ttl_ns;   /* 0 = AIT_VAULT_DEFAULT_CACHE_TTL_NS; < 0 = no cache */
    long timeout_ms;        /* per request; 0 = AIT_VAULT_DEFAULT_TIMEOUT_MS */
    ait_vault_audit audit;  /* optional (on_read_cb NULL = none) */
    const ait_clock *clock; /* NULL = ait_clock_system(); borrowed, must outlive the client */
    const ait_vault_transport *transport; /* NULL = libcurl; borrowed, copied */
} ait_vault_options;

/* Counters, for metrics and tests. */
typedef struct ait_vault_stats {
    uint64_t kv_requests; /* KV GETs sent to Vault */
    uint64_t cache_hits;  /* reads served from the cache */
    uint64_t logins;      /* successful logins (token file read + lookup-self, or Kubernetes) */
    uint64_t renewals;    /* successful renew-self calls */
} ait_vault_stats;

/* One value read. value is owned: release with ait_vault_secret_clear(), which wipes it. */
typedef struct ait_vault_secret {
    char *value;
    int64_t version;       /* KV v2 metadata.version */
    char created_time[40]; /* metadata.created_time (RFC 3339), "" when absent */
    int from_cache;
} ait_vault_secret;

/* Creates a client. Borrows opts (strings are copied). No request is sent yet: the first read
 * logs in. Returns AIT_ERR_INVALID for a missing addr/role/file or a plain-http addr. On success
 * *out is owned: free with ait_vault_free(). */
ait_status ait_vault_new(const ait_vault_options *opts, ait_vault **out, ait_error *err) AIT_WUR;

/* Frees the client and its cache; NULL is a no-op. No call may be in flight. */
void ait_vault_free(ait_vault *v);

/* Reads key from KV v2 <kv_mount>/data/<path>, from the cache when it is younger than the TTL,
 * else with one GET shared by every thread asking for the same path meanwhile. Logs in or renews
 * the token first when due (lazily: at 2/3 of its TTL, or re-login once it expired or renewal
 * failed), and on a 403 logs in again once and retries. Calls the audit hook. task is the caller
 * tag given to the audit hook (may be NULL). Errors: AIT_ERR_NOT_FOUND (no secret at path, or no
 * key in it; the message names path and key), AIT_ERR_FORBIDDEN (denied; names the path),
 * AIT_ERR_RETRY (sealed or 5xx), AIT_ERR_IO/AIT_ERR_TIMEOUT (Vault unreachable),
 * AIT_ERR_PARSE (a reply that is not KV v2). out is filled only on AIT_OK. */
ait_status ait_vault_read(ait_vault *v, const char *path, const char *key, const char *task,
                          ait_vault_secret *out, ait_error *err) AIT_WUR;

/* Wipes and frees s->value and zeroes s; NULL is a no-op. */
void ait_vault_secret_clear(ait_vault_secret *s);

/* Drops the cached copy of path (a rotated provider key): the next read fetches it. */
void ait_vault_invalidate(ait_vault *v, const char *path);

/* Logs in now (or re-reads the token file), replacing the current token. */
ait_status ait_vault_login(ait_vault *v, ait_error *err) AIT_WUR;

/* Copies the counters into *out. */
void ait_vault_get_stats(ait_vault *v, ait_vault_stats *out);

/* The reply parsers (exposed for the fuzz target and tests). Neither keeps a pointer into body.
 *
 * ait_vault_parse_kv: a KV v2 read reply; on AIT_OK *value is owned (free with ait_free; NULL
 * when key is NULL), *version and created (may be NULL) are filled. A key missing from data.data
 * gives AIT_ERR_NOT_FOUND; anything but the KV v2 shape gives AIT_ERR_PARSE. */
ait_status ait_vault_parse_kv(const char *body, size_t len, const char *key, char **value,
                              int64_t *version, char *created, size_t created_size,
                              ait_error *err) AIT_WUR;
/* ait_vault_parse_auth: a login or renew-self reply (the "auth" object), or a lookup-self reply
 * (the "data" object: id, ttl, renewable). *token is owned (free with ait_free). */
ait_status ait_vault_parse_auth(const char *body, size_t len, char **token, int64_t *ttl_s,
                                int *renewable, ait_error *err) AIT_WUR;

#endif

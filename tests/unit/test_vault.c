/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/vault: the reply parsers, and the client's cache, single-flight, renewal,
 * re-login and error typing driven through the transport seam by a scripted Vault (replies in
 * the real OpenBao shapes) and a fake clock. The real server is exercised by
 * tests/integration/test_vault.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "vault/vault.h"

#define SECRET_VALUE "sk-unit-SECRET-0123456789"
#define JWT_VALUE "eyJ.unit-JWT-payload.sig"

/* ---- the scripted server ---- */

typedef struct script {
    pthread_mutex_t mu;
    int down;           /* no answer at all (connection refused) */
    long kv_status;     /* status for KV GETs (200 = answer with the secret) */
    int64_t kv_version; /* version served */
    const char *value;  /* the secret value served under key "apiKey" */
    long login_status;
    int64_t ttl_s; /* TTL granted by login */
    long renew_status;
    int serial;     /* tokens are "s.tok-<serial>" */
    char valid[64]; /* the only token KV accepts; "" = reject all */
    int deny_all;   /* KV answers 403 to every token */
    int delay_ms;   /* sleep in KV GETs */
    int n_kv, n_login, n_renew, n_lookup;
    char last_jwt[128]; /* the JWT the last login carried */
    char last_path[256];
} script;

static ait_status script_do(void *ctx, const char *method, const char *url, const char *token,
                            const char *body, long *status, ait_buf *resp, ait_error *err)
{
    script *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (s->down) {
        pthread_mutex_unlock(&s->mu);
        return ait_error_set(err, AIT_ERR_IO, "connection refused");
    }
    const char *p = strstr(url, "/v1/");
    assert_non_null(p);
    p += 4;
    ait_status st = AIT_OK;
    if (strcmp(p, "auth/kubernetes/login") == 0) {
        assert_string_equal(method, "POST");
        assert_non_null(body);
        const char *j = strstr(body, "\"jwt\":\"");
        assert_non_null(j);
        snprintf(s->last_jwt, sizeof(s->last_jwt), "%.*s", (int)strcspn(j + 7, "\""), j + 7);
        assert_non_null(strstr(body, "\"role\":\"app\""));
        s->n_login++;
        *status = s->login_status;
        if (s->login_status == 200) {
            s->serial++;
            snprintf(s->valid, sizeof(s->valid), "s.tok-%d", s->serial);
            st = ait_buf_appendf(resp,
                                 "{\"auth\":{\"client_token\":\"%s\",\"lease_duration\":%lld,"
                                 "\"renewable\":true,\"policies\":[\"app\"]}}",
                                 s->valid, (long long)s->ttl_s);
        } else {
            st = ait_buf_appends(resp, "{\"errors\":[\"permission denied\"]}");
        }
    } else if (strcmp(p, "auth/token/lookup-self") == 0) {
        s->n_lookup++;
        *status = 200;
        snprintf(s->valid, sizeof(s->valid), "%s", token);
        st = ait_buf_appendf(resp, "{\"data\":{\"id\":\"%s\",\"ttl\":%lld,\"renewable\":true}}",
                             token, (long long)s->ttl_s);
    } else if (strcmp(p, "auth/token/renew-self") == 0) {
        s->n_renew++;
        *status = s->renew_status;
        if (s->renew_status == 200 && strcmp(token, s->valid) == 0) {
            st = ait_buf_appendf(resp,
                                 "{\"auth\":{\"client_token\":\"%s\",\"lease_duration\":%lld,"
                                 "\"renewable\":true}}",
                                 token, (long long)s->ttl_s);
        } else {
            *status = 403;
            st = ait_buf_appends(resp, "{\"errors\":[\"permission denied\"]}");
        }
    } else {
        assert_string_equal(method, "GET");
        snprintf(s->last_path, sizeof(s->last_path), "%s", p);
        s->n_kv++;
        int delay = s->delay_ms;
        if (delay > 0) {
            pthread_mutex_unlock(&s->mu);
            struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->mu);
        }
        if (s->deny_all || token == NULL || strcmp(token, s->valid) != 0) {
            *status = 403;
            st = ait_buf_appends(resp, "{\"errors\":[\"1 error occurred:\\n\\t* permission "
                                       "denied\\n\\n\"]}");
        } else if (s->kv_status == 200) {
            *status = 200;
            st = ait_buf_appendf(
                resp,
                "{\"request_id\":\"r\",\"data\":{\"data\":{\"apiKey\":\"%s\",\"n\":7},"
                "\"metadata\":{\"created_time\":\"2026-11-30T00:02:00Z\",\"deletion_time\":\"\","
                "\"destroyed\":false,\"version\":%lld}},\"auth\":null}",
                s->value, (long long)s->kv_version);
        } else if (s->kv_status == 503) {
            *status = 503;
            st = ait_buf_appends(resp, "{\"errors\":[\"Vault is sealed\"]}");
        } else {
            *status = s->kv_status;
            st = ait_buf_appends(resp, "{\"errors\":[]}");
        }
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- fake clock ---- */

static int64_t fake_now;
static int64_t fake_mono(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}
static const ait_clock fake_clock = {NULL, fake_mono, fake_mono};
static void advance(int64_t s)
{
    __atomic_add_fetch(&fake_now, s * AIT_NS_PER_S, __ATOMIC_SEQ_CST);
}

/* ---- audit hook ---- */

typedef struct audit_log {
    int n;
    char path[128];
    char task[64];
    int64_t version;
    ait_status result;
    int from_cache;
} audit_log;

static void on_read(void *ctx, const char *path, int64_t version, const char *task,
                    ait_status result, int from_cache)
{
    audit_log *a = ctx;
    __atomic_add_fetch(&a->n, 1, __ATOMIC_SEQ_CST);
    snprintf(a->path, sizeof(a->path), "%s", path);
    snprintf(a->task, sizeof(a->task), "%s", task ? task : "");
    a->version = version;
    a->result = result;
    a->from_cache = from_cache;
}

/* ---- fixture ---- */

typedef struct fx {
    script s;
    ait_vault_transport t;
    audit_log audit;
    char jwt_path[64];
    char token_path[64];
    ait_vault *v;
    FILE *log;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static fx *fx_new(ait_vault_auth auth)
{
    fx *f = ait_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->s.mu, NULL);
    f->s.kv_status = 200;
    f->s.kv_version = 3;
    f->s.value = SECRET_VALUE;
    f->s.login_status = 200;
    f->s.renew_status = 200;
    f->s.ttl_s = 30;
    f->t.ctx = &f->s;
    f->t.do_request_cb = script_do;
    snprintf(f->jwt_path, sizeof(f->jwt_path), "/tmp/ait-vault-jwt-XXXXXX");
    close(mkstemp(f->jwt_path));
    write_file(f->jwt_path, JWT_VALUE "\n");
    snprintf(f->token_path, sizeof(f->token_path), "/tmp/ait-vault-tok-XXXXXX");
    close(mkstemp(f->token_path));
    write_file(f->token_path, "s.file-token-1\n");
    /* Capture every log line, at full verbosity, to scan it for secrets. */
    f->log = tmpfile();
    assert_non_null(f->log);
    ait_log_set_output(f->log);
    ait_log_set_verbosity(10);
    fake_now = 1000 * AIT_NS_PER_S;
    ait_vault_options o = {
        .addr = "https://vault.example:8200/",
        .auth = auth,
        .k8s_role = "app",
        .jwt_file = f->jwt_path,
        .token_file = f->token_path,
        .cache_ttl_ns = 60 * AIT_NS_PER_S,
        .audit = {&f->audit, on_read},
        .clock = &fake_clock,
        .transport = &f->t,
    };
    assert_int_equal(ait_vault_new(&o, &f->v, NULL), AIT_OK);
    return f;
}

/* Asserts that no log line holds a secret, the JWT or a token. */
static void assert_log_clean(fx *f)
{
    fflush(f->log);
    long n = ftell(f->log);
    assert_true(n > 0); /* something was logged at verbosity 10 */
    char *text = ait_calloc(1, (size_t)n + 1);
    rewind(f->log);
    assert_int_equal(fread(text, 1, (size_t)n, f->log), (size_t)n);
    assert_null(strstr(text, SECRET_VALUE));
    assert_null(strstr(text, "ROTATED"));
    assert_null(strstr(text, JWT_VALUE));
    assert_null(strstr(text, "s.tok-"));
    assert_null(strstr(text, "s.file-token"));
    ait_free(text);
}

static void fx_free(fx *f)
{
    assert_log_clean(f);
    ait_log_set_output(NULL);
    ait_log_set_verbosity(0);
    fclose(f->log);
    ait_vault_free(f->v);
    unlink(f->jwt_path);
    unlink(f->token_path);
    pthread_mutex_destroy(&f->s.mu);
    ait_free(f);
}

static void assert_no_secret(const ait_error *err)
{
    assert_null(strstr(err->msg, SECRET_VALUE));
    assert_null(strstr(err->msg, JWT_VALUE));
    assert_null(strstr(err->msg, "s.tok-"));
}

/* ---- tests ---- */

static void test_parse_kv(void **state)
{
    (void)state;
    const char *ok = "{\"data\":{\"data\":{\"k\":\"v\",\"o\":{\"a\":1}},\"metadata\":"
                     "{\"created_time\":\"2026-01-02T03:04:05Z\",\"version\":12}}}";
    char *val = NULL;
    int64_t ver = 0;
    char created[40];
    assert_int_equal(
        ait_vault_parse_kv(ok, strlen(ok), "k", &val, &ver, created, sizeof(created), NULL),
        AIT_OK);
    assert_string_equal(val, "v");
    assert_int_equal(ver, 12);
    assert_string_equal(created, "2026-01-02T03:04:05Z");
    ait_free(val);
    assert_int_equal(ait_vault_parse_kv(ok, strlen(ok), "o", &val, &ver, NULL, 0, NULL), AIT_OK);
    assert_string_equal(val, "{\"a\":1}");
    ait_free(val);
    ait_error err = {0};
    assert_int_equal(ait_vault_parse_kv(ok, strlen(ok), "nope", &val, &ver, NULL, 0, &err),
                     AIT_ERR_NOT_FOUND);
    assert_null(val);
    assert_non_null(strstr(err.msg, "nope"));
    const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"data\":null}",
        "{\"data\":{\"data\":\"x\",\"metadata\":{\"version\":1}}}",
        "{\"data\":{\"data\":{},\"metadata\":{}}}",
        "{\"data\":{\"data\":{\"k\":\"v\"}}}",
        "{\"errors\":[\"permission denied\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ait_vault_parse_kv(bad[i], strlen(bad[i]), "k", &val, &ver, NULL, 0, NULL),
                         AIT_ERR_PARSE);
        assert_null(val);
    }
}

static void test_parse_auth(void **state)
{
    (void)state;
    const char *login = "{\"auth\":{\"client_token\":\"s.abc\",\"lease_duration\":3600,"
                        "\"renewable\":true}}";
    const char *lookup = "{\"data\":{\"id\":\"s.root\",\"ttl\":0,\"renewable\":false}}";
    char *tok = NULL;
    int64_t ttl = -1;
    int ren = -1;
    assert_int_equal(ait_vault_parse_auth(login, strlen(login), &tok, &ttl, &ren, NULL), AIT_OK);
    assert_string_equal(tok, "s.abc");
    assert_int_equal(ttl, 3600);
    assert_int_equal(ren, 1);
    ait_free(tok);
    assert_int_equal(ait_vault_parse_auth(lookup, strlen(lookup), &tok, &ttl, &ren, NULL), AIT_OK);
    assert_string_equal(tok, "s.root");
    assert_int_equal(ttl, 0);
    assert_int_equal(ren, 0);
    ait_free(tok);
    const char *bad[] = {"{}", "{\"auth\":null}", "{\"auth\":{\"client_token\":\"\"}}",
                         "{\"auth\":{\"client_token\":\"x\"}}", "nul"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(ait_vault_parse_auth(bad[i], strlen(bad[i]), &tok, &ttl, &ren, NULL),
                             AIT_OK);
        assert_null(tok);
    }
}

static void test_new_rejects(void **state)
{
    (void)state;
    ait_vault *v = NULL;
    ait_vault_options o = {.addr = "http://127.0.0.1:8200", .token_file = "/x"};
    assert_int_equal(ait_vault_new(&o, &v, NULL), AIT_ERR_INVALID);
    assert_null(v);
    o.allow_http = 1;
    assert_int_equal(ait_vault_new(&o, &v, NULL), AIT_OK);
    ait_vault_free(v);
    ait_vault_options k = {.addr = "https://x", .auth = AIT_VAULT_AUTH_KUBERNETES};
    assert_int_equal(ait_vault_new(&k, &v, NULL), AIT_ERR_INVALID);
    ait_vault_free(NULL);
    ait_vault_secret_clear(NULL);
}

static void test_read_cache_and_audit(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "ns/task1", &s, NULL),
                         AIT_OK);
        assert_string_equal(s.value, SECRET_VALUE);
        assert_int_equal(s.version, 3);
        assert_string_equal(s.created_time, "2026-11-30T00:02:00Z");
        assert_int_equal(s.from_cache, i > 0);
        ait_vault_secret_clear(&s);
        assert_null(s.value);
    }
    assert_int_equal(f->s.n_kv, 1);
    assert_int_equal(f->s.n_login, 1);
    assert_string_equal(f->s.last_path, "secret/data/app/openai");
    assert_string_equal(f->s.last_jwt, JWT_VALUE);
    ait_vault_stats st;
    ait_vault_get_stats(f->v, &st);
    assert_int_equal(st.kv_requests, 1);
    assert_int_equal(st.cache_hits, 4);
    assert_int_equal(st.logins, 1);
    assert_int_equal(f->audit.n, 5);
    assert_string_equal(f->audit.path, "secret/app/openai");
    assert_string_equal(f->audit.task, "ns/task1");
    assert_int_equal(f->audit.version, 3);
    assert_int_equal(f->audit.result, AIT_OK);
    assert_int_equal(f->audit.from_cache, 1);
    /* A different key of the same secret is served from the same cached read. */
    assert_int_equal(ait_vault_read(f->v, "app/openai", "n", "t", &s, NULL), AIT_OK);
    assert_string_equal(s.value, "7");
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_kv, 1);
    /* Past the TTL the next read goes to Vault again. */
    advance(61);
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, NULL), AIT_OK);
    assert_int_equal(s.from_cache, 0);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_kv, 2);
    fx_free(f);
}

static void test_down_and_sealed(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    /* Down: still served within the TTL. */
    f->s.down = 1;
    advance(50);
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, &err), AIT_OK);
    assert_string_equal(s.value, SECRET_VALUE);
    assert_true(s.from_cache);
    ait_vault_secret_clear(&s);
    /* Past the TTL: a retryable IO error. */
    advance(20);
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, &err), AIT_ERR_IO);
    assert_true(ait_status_retryable(err.code));
    assert_null(s.value);
    assert_int_equal(f->audit.result, AIT_ERR_IO);
    assert_int_equal(f->audit.version, 0);
    /* Sealed: 503 -> retryable. */
    f->s.down = 0;
    f->s.kv_status = 503;
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, &err), AIT_ERR_RETRY);
    assert_true(ait_status_retryable(err.code));
    assert_non_null(strstr(err.msg, "sealed"));
    assert_non_null(strstr(err.msg, "secret/app/openai"));
    /* Back: the read recovers. */
    f->s.kv_status = 200;
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, &err), AIT_OK);
    ait_vault_secret_clear(&s);
    fx_free(f);
}

static void test_forbidden_and_not_found(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    ait_error err = {0};
    f->s.deny_all = 1;
    assert_int_equal(ait_vault_read(f->v, "other/db", "password", "t", &s, &err),
                     AIT_ERR_FORBIDDEN);
    assert_int_equal(err.code, AIT_ERR_FORBIDDEN);
    assert_non_null(strstr(err.msg, "permission denied"));
    assert_non_null(strstr(err.msg, "secret/other/db"));
    assert_false(ait_status_retryable(err.code));
    assert_int_equal(err.http_status, 403);
    assert_int_equal(f->s.n_login, 2); /* a 403 re-logs in once, then gives up */
    assert_int_equal(f->s.n_kv, 2);
    assert_no_secret(&err);
    f->s.deny_all = 0;
    f->s.kv_status = 404;
    assert_int_equal(ait_vault_read(f->v, "app/missing", "apiKey", "t", &s, &err),
                     AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "secret/app/missing"));
    f->s.kv_status = 200;
    assert_int_equal(ait_vault_read(f->v, "app/openai", "nokey", "t", &s, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "secret/app/openai"));
    assert_non_null(strstr(err.msg, "nokey"));
    assert_no_secret(&err);
    /* Bad paths never reach Vault. */
    int kv = f->s.n_kv;
    assert_int_equal(ait_vault_read(f->v, "../sys/seal", "k", "t", &s, &err), AIT_ERR_INVALID);
    assert_int_equal(ait_vault_read(f->v, "a?x=1", "k", "t", &s, &err), AIT_ERR_INVALID);
    assert_int_equal(f->s.n_kv, kv);
    /* Login refused: a typed error naming the role, with no JWT in it. */
    ait_vault_free(f->v);
    ait_vault_options o = {.addr = "https://v",
                           .auth = AIT_VAULT_AUTH_KUBERNETES,
                           .k8s_role = "app",
                           .jwt_file = f->jwt_path,
                           .clock = &fake_clock,
                           .transport = &f->t};
    assert_int_equal(ait_vault_new(&o, &f->v, NULL), AIT_OK);
    f->s.login_status = 403;
    assert_int_equal(ait_vault_read(f->v, "app/openai", "apiKey", "t", &s, &err),
                     AIT_ERR_FORBIDDEN);
    assert_non_null(strstr(err.msg, "role app"));
    assert_no_secret(&err);
    fx_free(f);
}

static void test_relogin_on_revoked_token(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    /* The token is revoked server-side and the JWT rotated: the next fetch gets a 403, reads the
     * new JWT from the file, logs in again and succeeds. */
    snprintf(f->s.valid, sizeof(f->s.valid), "revoked");
    write_file(f->jwt_path, "eyJ.rotated.sig\n");
    assert_int_equal(ait_vault_read(f->v, "app/b", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_login, 2);
    assert_string_equal(f->s.last_jwt, "eyJ.rotated.sig");
    fx_free(f);
}

static void test_renewal(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    /* Before 2/3 of the 30 s TTL: no renewal. */
    advance(19);
    ait_vault_invalidate(f->v, "app/a");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_renew, 0);
    /* Past 2/3: renewed, same login. */
    advance(2);
    ait_vault_invalidate(f->v, "app/a");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_renew, 1);
    assert_int_equal(f->s.n_login, 1);
    /* Renewal refused: logs in again. */
    advance(21);
    f->s.renew_status = 403;
    ait_vault_invalidate(f->v, "app/a");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_renew, 2);
    assert_int_equal(f->s.n_login, 2);
    /* Expired outright (no read for longer than the TTL): logs in, no renewal attempt. */
    advance(31);
    ait_vault_invalidate(f->v, "app/a");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_renew, 2);
    assert_int_equal(f->s.n_login, 3);
    ait_vault_stats st;
    ait_vault_get_stats(f->v, &st);
    assert_int_equal(st.renewals, 1);
    assert_int_equal(st.logins, 3);
    fx_free(f);
}

typedef struct reader {
    fx *f;
    ait_status st;
    char value[64];
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    ait_vault_secret s;
    r->st = ait_vault_read(r->f->v, "app/shared", "apiKey", "t", &s, NULL);
    if (r->st == AIT_OK) {
        snprintf(r->value, sizeof(r->value), "%s", s.value);
        ait_vault_secret_clear(&s);
    }
    return NULL;
}

static void test_single_flight(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    f->s.delay_ms = 200;
    pthread_t th[8];
    reader r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (reader){.f = f};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].st, AIT_OK);
        assert_string_equal(r[i].value, SECRET_VALUE);
    }
    assert_int_equal(f->s.n_kv, 1);
    assert_int_equal(f->s.n_login, 1);
    /* Errors are shared too: 8 threads against a sealed Vault make one request. */
    f->s.kv_status = 503;
    advance(61);
    for (int i = 0; i < 8; i++) {
        r[i] = (reader){.f = f};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    int failed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        failed += r[i].st == AIT_ERR_RETRY;
    }
    assert_int_equal(failed, 8);
    /* Threads that arrive after the flight landed start their own; all joined it here unless
     * the scheduler delayed a thread by over 200 ms. */
    assert_in_range(f->s.n_kv, 2, 3);
    fx_free(f);
}

static void test_invalidate_rotation(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_KUBERNETES);
    ait_vault_secret s;
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    f->s.value = "ROTATED-value-2";
    f->s.kv_version = 4;
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    assert_string_equal(s.value, SECRET_VALUE); /* cached */
    ait_vault_secret_clear(&s);
    ait_vault_invalidate(f->v, "app/a");
    ait_vault_invalidate(f->v, "app/never-read");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    assert_string_equal(s.value, "ROTATED-value-2");
    assert_int_equal(s.version, 4);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_kv, 2);
    fx_free(f);
}

static void test_token_file(void **state)
{
    (void)state;
    fx *f = fx_new(AIT_VAULT_AUTH_TOKEN_FILE);
    ait_vault_secret s;
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_lookup, 1);
    assert_int_equal(f->s.n_login, 0);
    /* The token in the file is replaced and the old one revoked: the 403 re-reads the file. */
    write_file(f->token_path, "s.file-token-2");
    snprintf(f->s.valid, sizeof(f->s.valid), "s.file-token-2");
    ait_vault_invalidate(f->v, "app/a");
    assert_int_equal(ait_vault_read(f->v, "app/a", "apiKey", "t", &s, NULL), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(f->s.n_lookup, 2);
    /* A missing token file: a clear IO error. */
    unlink(f->token_path);
    assert_int_equal(ait_vault_login(f->v, NULL), AIT_ERR_IO);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kv),
        cmocka_unit_test(test_parse_auth),
        cmocka_unit_test(test_new_rejects),
        cmocka_unit_test(test_read_cache_and_audit),
        cmocka_unit_test(test_down_and_sealed),
        cmocka_unit_test(test_forbidden_and_not_found),
        cmocka_unit_test(test_relogin_on_revoked_token),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_invalidate_rotation),
        cmocka_unit_test(test_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

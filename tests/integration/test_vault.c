/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests of src/vault against a real OpenBao server (hack/vault.sh: TLS, file storage)
 * and the real kube-apiserver of the shared test cluster: Kubernetes auth with a TokenRequest
 * token of a ServiceAccount in a unique namespace, token-file auth, the cache and single-flight,
 * renewal with a short-TTL role, OpenBao stopped/sealed and restarted mid-run, rotation plus
 * invalidate, a denied path, and finally a scan of every log line the client wrote for the
 * secret values. */
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

static char src_dir[1024];
static char dir[1024];  /* the OpenBao folder */
static char ns[64];     /* unique namespace, also the KV folder the role may read */
static char addr[128];  /* https://127.0.0.1:PORT */
static char ca[1100];   /* OpenBao's CA */
static char jwt[1100];  /* the app ServiceAccount's TokenRequest token */
static char root[1100]; /* the root token file (token-file auth) */
static char env[4096];  /* PATH and BAO_* prefix for shell commands */
static char value1[64], value2[64];
static FILE *log_file;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *full = ait_asprintf("%s %s", env, cmd);
    int rc = system(full);
    ait_free(full);
    return rc;
}

static void read_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)size, f));
    out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int group_setup(void **state)
{
    (void)state;
    const char *s = getenv("AIT_SOURCE_DIR");
    const char *b = getenv("AIT_BUILD_DIR");
    if (s == NULL || b == NULL || getenv("KUBECONFIG") == NULL) {
        fprintf(stderr, "test_vault: needs AIT_SOURCE_DIR, AIT_BUILD_DIR and KUBECONFIG\n");
        return -1;
    }
    snprintf(src_dir, sizeof(src_dir), "%s", s);
    unsigned suffix = (unsigned)getpid() ^ (unsigned)time(NULL);
    snprintf(ns, sizeof(ns), "vault-it-%x", suffix);
    snprintf(dir, sizeof(dir), "%s/%s", b, ns);
    const char *home = getenv("HOME");
    snprintf(env, sizeof(env),
             "PATH=\"%s/.cache/aitask-operator/bin:$PATH\" BAO_ADDR=\"$(cat %s/port 2>/dev/null "
             "| sed 's|^|https://127.0.0.1:|')\" BAO_CACERT=%s/pki/ca.crt",
             home ? home : "/root", dir, dir);
    if (sh("bash %s/hack/tools.sh bao >/dev/null 2>&1", src_dir) != 0 ||
        sh("bash %s/hack/vault.sh start --dir %s >/dev/null", src_dir, dir) != 0) {
        fprintf(stderr, "test_vault: could not build or start OpenBao\n");
        return -1;
    }
    char port[32];
    char path[1200];
    snprintf(path, sizeof(path), "%s/port", dir);
    read_line(path, port, sizeof(port));
    snprintf(addr, sizeof(addr), "https://127.0.0.1:%s", port);
    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", dir);
    snprintf(root, sizeof(root), "%s/root-token", dir);
    snprintf(jwt, sizeof(jwt), "%s/app.jwt", dir);
    /* A ServiceAccount in a unique namespace, its TokenRequest token, and two roles bound to it:
     * app (1 h tokens) and short (3 s tokens, renewable up to 60 s). */
    if (sh("kubectl create namespace %s >/dev/null && kubectl -n %s create serviceaccount app "
           ">/dev/null && (umask 077 && kubectl -n %s create token app --duration=1h >%s)",
           ns, ns, ns, jwt) != 0 ||
        sh("bash %s/hack/vault.sh k8s-auth --dir %s --namespace %s --sa app --role app "
           "--read 'secret/data/%s/*'",
           src_dir, dir, ns, ns) != 0 ||
        sh("bash %s/hack/vault.sh k8s-auth --dir %s --namespace %s --sa app --role short "
           "--read 'secret/data/%s/*' --ttl 3s --max-ttl 60s",
           src_dir, dir, ns, ns) != 0) {
        fprintf(stderr, "test_vault: could not configure Kubernetes auth\n");
        return -1;
    }
    snprintf(value1, sizeof(value1), "sk-it-%x-first-VALUE", suffix);
    snprintf(value2, sizeof(value2), "sk-it-%x-rotated-VALUE", suffix);
    if (sh("BAO_TOKEN=$(cat %s) bao kv put secret/%s/openai apiKey=%s >/dev/null", root, ns,
           value1) != 0 ||
        sh("BAO_TOKEN=$(cat %s) bao kv put secret/other-%s/db password=%s >/dev/null", root, ns,
           value1) != 0) {
        return -1;
    }
    log_file = tmpfile();
    ait_log_set_output(log_file);
    ait_log_set_verbosity(10);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ait_log_set_output(NULL);
    if (log_file != NULL) {
        fclose(log_file);
    }
    int rc = sh("bash %s/hack/vault.sh stop --dir %s", src_dir, dir);
    rc |= sh("kubectl delete namespace %s --wait=false >/dev/null 2>&1; kubectl delete "
             "clusterrolebinding bao-token-reviewer-%s >/dev/null 2>&1; true",
             ns, ns);
    rc |= sh("rm -rf %s", dir);
    return rc == 0 ? 0 : -1;
}

typedef struct audit_count {
    int n;
    int64_t version;
    char path[256];
    char task[64];
} audit_count;

static void on_read(void *ctx, const char *path, int64_t version, const char *task,
                    ait_status result, int from_cache)
{
    (void)result;
    (void)from_cache;
    audit_count *a = ctx;
    __atomic_add_fetch(&a->n, 1, __ATOMIC_SEQ_CST);
    a->version = version;
    snprintf(a->path, sizeof(a->path), "%s", path);
    snprintf(a->task, sizeof(a->task), "%s", task ? task : "");
}

static ait_vault *client(const char *role, audit_count *audit)
{
    ait_vault_options o = {
        .addr = addr,
        .ca_file = ca,
        .auth = role ? AIT_VAULT_AUTH_KUBERNETES : AIT_VAULT_AUTH_TOKEN_FILE,
        .k8s_role = role,
        .jwt_file = jwt,
        .token_file = root,
        .timeout_ms = 5000,
    };
    if (audit != NULL) {
        o.audit.ctx = audit;
        o.audit.on_read_cb = on_read;
    }
    ait_vault *v = NULL;
    ait_error err = {0};
    assert_int_equal(ait_vault_new(&o, &v, &err), AIT_OK);
    return v;
}

static char *kv_path(const char *leaf)
{
    return ait_asprintf("%s/%s", ns, leaf);
}

static void test_kubernetes_login_and_read(void **state)
{
    (void)state;
    audit_count audit = {0};
    ait_vault *v = client("app", &audit);
    char *p = kv_path("openai");
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(v, p, "apiKey", "ns1/task-a", &s, &err), AIT_OK);
    assert_string_equal(s.value, value1);
    assert_int_equal(s.version, 1);
    assert_int_equal(strlen(s.created_time), 20); /* 2026-11-30T00:02:00Z */
    assert_false(s.from_cache);
    ait_vault_secret_clear(&s);
    /* Ten more reads: all from the cache, one HTTP request in all. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(ait_vault_read(v, p, "apiKey", "ns1/task-a", &s, &err), AIT_OK);
        assert_true(s.from_cache);
        ait_vault_secret_clear(&s);
    }
    ait_vault_stats st;
    ait_vault_get_stats(v, &st);
    assert_int_equal(st.kv_requests, 1);
    assert_int_equal(st.cache_hits, 10);
    assert_int_equal(st.logins, 1);
    assert_int_equal(audit.n, 11);
    assert_int_equal(audit.version, 1);
    assert_string_equal(audit.task, "ns1/task-a");
    char want[128];
    snprintf(want, sizeof(want), "secret/%s/openai", ns);
    assert_string_equal(audit.path, want);
    ait_free(p);
    ait_vault_free(v);
}

static void test_token_file_read(void **state)
{
    (void)state;
    ait_vault *v = client(NULL, NULL);
    char *p = kv_path("openai");
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    assert_string_equal(s.value, value1);
    ait_vault_secret_clear(&s);
    ait_vault_stats st;
    ait_vault_get_stats(v, &st);
    assert_int_equal(st.logins, 1);
    assert_int_equal(st.renewals, 0); /* the root token never expires */
    ait_free(p);
    ait_vault_free(v);
}

typedef struct racer {
    ait_vault *v;
    const char *path;
    pthread_barrier_t *go;
    ait_status st;
    int ok;
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    ait_vault_secret s;
    pthread_barrier_wait(r->go);
    r->st = ait_vault_read(r->v, r->path, "apiKey", "t", &s, NULL);
    r->ok = r->st == AIT_OK && strcmp(s.value, value1) == 0;
    ait_vault_secret_clear(&s);
    return NULL;
}

static void test_single_flight_8_threads(void **state)
{
    (void)state;
    ait_vault *v = client("app", NULL);
    ait_error err = {0};
    assert_int_equal(ait_vault_login(v, &err), AIT_OK); /* keep the login out of the race */
    char *p = kv_path("openai");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 8);
    pthread_t th[8];
    racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){.v = v, .path = p, .go = &go};
        assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].ok);
    }
    pthread_barrier_destroy(&go);
    ait_vault_stats st;
    ait_vault_get_stats(v, &st);
    assert_int_equal(st.kv_requests, 1);
    assert_int_equal(st.cache_hits, 7);
    ait_free(p);
    ait_vault_free(v);
}

static void test_renewal_short_ttl(void **state)
{
    (void)state;
    ait_vault *v = client("short", NULL);
    char *p = kv_path("openai");
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    ait_vault_secret_clear(&s);
    /* Past 2/3 of the 3 s TTL twice: each read renews, and the token outlives its first TTL. */
    for (int i = 0; i < 2; i++) {
        sleep_ms(2200);
        ait_vault_invalidate(v, p);
        assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
        ait_vault_secret_clear(&s);
    }
    ait_vault_stats st;
    ait_vault_get_stats(v, &st);
    assert_int_equal(st.logins, 1);
    assert_int_equal(st.renewals, 2);
    assert_int_equal(st.kv_requests, 3);
    ait_free(p);
    ait_vault_free(v);
}

static void test_restart_and_sealed(void **state)
{
    (void)state;
    ait_vault *v = client("app", NULL);
    char *p = kv_path("openai");
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    ait_vault_secret_clear(&s);
    assert_int_equal(sh("bash %s/hack/vault.sh stop --dir %s", src_dir, dir), 0);
    /* Down: the cached value is still served; an uncached path fails retryably. */
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    assert_true(s.from_cache);
    assert_string_equal(s.value, value1);
    ait_vault_secret_clear(&s);
    char *missing = kv_path("not-cached");
    assert_int_equal(ait_vault_read(v, missing, "apiKey", "t", &s, &err), AIT_ERR_IO);
    assert_true(ait_status_retryable(err.code));
    /* Sealed after a restart: 503, retryable. */
    assert_int_equal(sh("bash %s/hack/vault.sh start --dir %s --sealed >/dev/null", src_dir, dir),
                     0);
    ait_vault_invalidate(v, p);
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_ERR_RETRY);
    assert_true(ait_status_retryable(err.code));
    assert_int_equal(err.http_status, 503);
    /* Unsealed: reads recover with the same client. */
    assert_int_equal(sh("bash %s/hack/vault.sh unseal --dir %s", src_dir, dir), 0);
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    assert_string_equal(s.value, value1);
    assert_false(s.from_cache);
    ait_vault_secret_clear(&s);
    ait_free(missing);
    ait_free(p);
    ait_vault_free(v);
}

static void test_rotation_and_denied(void **state)
{
    (void)state;
    ait_vault *v = client("app", NULL);
    char *p = kv_path("openai");
    ait_vault_secret s;
    ait_error err = {0};
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    int64_t v1 = s.version;
    ait_vault_secret_clear(&s);
    assert_int_equal(sh("BAO_TOKEN=$(cat %s) bao kv put secret/%s/openai apiKey=%s >/dev/null",
                        root, ns, value2),
                     0);
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    assert_string_equal(s.value, value1); /* still cached */
    ait_vault_secret_clear(&s);
    ait_vault_invalidate(v, p);
    assert_int_equal(ait_vault_read(v, p, "apiKey", "t", &s, &err), AIT_OK);
    assert_string_equal(s.value, value2);
    assert_int_equal(s.version, v1 + 1);
    ait_vault_secret_clear(&s);
    /* A path outside the role's policy: a clear, non-retryable error naming it. */
    char *other = ait_asprintf("other-%s/db", ns);
    assert_int_equal(ait_vault_read(v, other, "password", "t", &s, &err), AIT_ERR_FORBIDDEN);
    assert_non_null(strstr(err.msg, "permission denied"));
    assert_non_null(strstr(err.msg, other));
    assert_false(ait_status_retryable(err.code));
    assert_int_equal(err.http_status, 403);
    assert_null(strstr(err.msg, value1));
    /* Missing secret and missing key: NotFound naming path (and key). */
    char *missing = kv_path("missing");
    assert_int_equal(ait_vault_read(v, missing, "apiKey", "t", &s, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(ait_vault_read(v, p, "noSuchKey", "t", &s, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "noSuchKey"));
    assert_null(strstr(err.msg, value2));
    ait_free(missing);
    ait_free(other);
    ait_free(p);
    ait_vault_free(v);
}

/* Runs last: every line the client logged (at verbosity 10) holds none of the secrets. */
static void test_logs_hold_no_secret(void **state)
{
    (void)state;
    fflush(log_file);
    long n = ftell(log_file);
    assert_true(n > 0);
    char *text = ait_calloc(1, (size_t)n + 1);
    rewind(log_file);
    assert_int_equal(fread(text, 1, (size_t)n, log_file), (size_t)n);
    assert_null(strstr(text, value1));
    assert_null(strstr(text, value2));
    assert_null(strstr(text, "s.")); /* OpenBao service tokens start with "s." */
    char tok[256];
    read_line(root, tok, sizeof(tok));
    assert_null(strstr(text, tok));
    char jwt_text[4096];
    read_line(jwt, jwt_text, sizeof(jwt_text));
    assert_null(strstr(text, jwt_text));
    assert_non_null(strstr(text, "vault login")); /* the scan saw real lines */
    ait_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubernetes_login_and_read),
        cmocka_unit_test(test_token_file_read),
        cmocka_unit_test(test_single_flight_8_threads),
        cmocka_unit_test(test_renewal_short_ttl),
        cmocka_unit_test(test_restart_and_sealed),
        cmocka_unit_test(test_rotation_and_denied),
        cmocka_unit_test(test_logs_hold_no_secret),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

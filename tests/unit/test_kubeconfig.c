/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/kube/config.c: kubeconfig files with paths and with -data, named and current
 * contexts, the exact errors for missing or malformed fields, $KUBECONFIG, and the in-cluster
 * service-account files (in a temporary folder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "kube/config.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ait-kubeconfig-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = ait_asprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    ait_free(cmd);
    return rc == 0 ? 0 : -1;
}

static char *write_tmp(const char *name, const char *content)
{
    char *path = ait_asprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static const char *const KC_PATHS = "apiVersion: v1\n"
                                    "kind: Config\n"
                                    "clusters:\n"
                                    "- name: dev\n"
                                    "  cluster:\n"
                                    "    server: https://127.0.0.1:6443/\n"
                                    "    certificate-authority: pki/ca.crt\n"
                                    "users:\n"
                                    "- name: admin\n"
                                    "  user:\n"
                                    "    client-certificate: admin.crt\n"
                                    "    client-key: /etc/keys/admin.key\n"
                                    "    tokenFile: tok\n"
                                    "contexts:\n"
                                    "- name: dev\n"
                                    "  context:\n"
                                    "    cluster: dev\n"
                                    "    user: admin\n"
                                    "    namespace: team-a\n"
                                    "current-context: dev\n";

static void test_file_paths_resolved(void **state)
{
    (void)state;
    char *path = write_tmp("paths.yaml", KC_PATHS);
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_from_file(path, NULL, &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://127.0.0.1:6443");
    char *want = ait_asprintf("%s/pki/ca.crt", tmpdir);
    assert_string_equal(cfg->ca_file, want);
    ait_free(want);
    want = ait_asprintf("%s/admin.crt", tmpdir);
    assert_string_equal(cfg->client_cert_file, want);
    ait_free(want);
    want = ait_asprintf("%s/tok", tmpdir);
    assert_string_equal(cfg->token_file, want);
    ait_free(want);
    assert_string_equal(cfg->client_key_file, "/etc/keys/admin.key");
    assert_null(cfg->ca_data);
    assert_null(cfg->client_cert_data);
    assert_null(cfg->token);
    assert_string_equal(cfg->namespace_, "team-a");
    assert_int_equal(cfg->insecure_skip_tls_verify, 0);
    ait_kube_config_free(cfg);
    ait_free(path);
}

static void test_embedded_data_decoded(void **state)
{
    (void)state;
    /* base64 of "-----BEGIN CERTIFICATE-----\nCA\n" split over two lines, "CERT\n", "KEY\n". */
    const char *yaml = "clusters:\n"
                       "- name: c\n"
                       "  cluster:\n"
                       "    server: \"https://k8s.example:443\"\n"
                       "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"
                       "      CkNBCg==\n"
                       "    insecure-skip-tls-verify: true\n"
                       "users:\n"
                       "- name: u\n"
                       "  user: {client-certificate-data: Q0VSVAo=, client-key-data: S0VZCg==, "
                       "token: s3cr3t}\n"
                       "contexts:\n"
                       "- name: x\n"
                       "  context: {cluster: c, user: u}\n"
                       "current-context: x\n";
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_from_yaml(yaml, strlen(yaml), "/base", NULL, &cfg, &err),
                     AIT_OK);
    assert_string_equal(cfg->server, "https://k8s.example:443");
    assert_string_equal(cfg->ca_data, "-----BEGIN CERTIFICATE-----\nCA\n");
    assert_string_equal(cfg->client_cert_data, "CERT\n");
    assert_string_equal(cfg->client_key_data, "KEY\n");
    assert_string_equal(cfg->token, "s3cr3t");
    assert_null(cfg->ca_file);
    assert_null(cfg->namespace_);
    assert_int_equal(cfg->insecure_skip_tls_verify, 1);
    ait_kube_config_free(cfg);
}

static const char *const KC_TWO = "clusters:\n"
                                  "- name: one\n"
                                  "  cluster: {server: https://one:1}\n"
                                  "- name: two\n"
                                  "  cluster: {server: two.example:2}\n"
                                  "users:\n"
                                  "- name: u1\n"
                                  "  user: {token: t1}\n"
                                  "- name: u2\n"
                                  "  user: {token: t2}\n"
                                  "contexts:\n"
                                  "- name: first\n"
                                  "  context: {cluster: one, user: u1, namespace: n1}\n"
                                  "- name: second\n"
                                  "  context: {cluster: two, user: u2, namespace: n2}\n"
                                  "- name: nouser\n"
                                  "  context: {cluster: one}\n"
                                  "- name: ghostcluster\n"
                                  "  context: {cluster: nowhere, user: u1}\n"
                                  "- name: ghostuser\n"
                                  "  context: {cluster: one, user: nobody}\n"
                                  "current-context: first\n";

static void test_named_and_current_context(void **state)
{
    (void)state;
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_from_yaml(KC_TWO, strlen(KC_TWO), NULL, NULL, &cfg, &err),
                     AIT_OK);
    assert_string_equal(cfg->server, "https://one:1");
    assert_string_equal(cfg->token, "t1");
    assert_string_equal(cfg->namespace_, "n1");
    ait_kube_config_free(cfg);

    assert_int_equal(ait_kube_config_from_yaml(KC_TWO, strlen(KC_TWO), NULL, "second", &cfg, &err),
                     AIT_OK);
    /* A host without a scheme gets https://, as client-go does. */
    assert_string_equal(cfg->server, "https://two.example:2");
    assert_string_equal(cfg->token, "t2");
    assert_string_equal(cfg->namespace_, "n2");
    ait_kube_config_free(cfg);

    /* A context without a user is anonymous. */
    assert_int_equal(ait_kube_config_from_yaml(KC_TWO, strlen(KC_TWO), NULL, "nouser", &cfg, &err),
                     AIT_OK);
    assert_null(cfg->token);
    assert_null(cfg->client_cert_file);
    ait_kube_config_free(cfg);
}

/* Loads yaml from a file named name with context, expecting failure with exactly the message
 * "kubeconfig <path>: <want_suffix>". */
static void expect_error(const char *name, const char *yaml, const char *context, ait_status code,
                         const char *want_suffix)
{
    char *path = write_tmp(name, yaml);
    ait_kube_config *cfg = (ait_kube_config *)0x1;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_from_file(path, context, &cfg, &err), code);
    assert_null(cfg);
    assert_int_equal(err.code, code);
    /* Every message starts "kubeconfig <path>: ". */
    char *want = ait_asprintf("kubeconfig %s: %s", path, want_suffix);
    assert_string_equal(err.msg, want);
    ait_free(want);
    ait_free(path);
}

static void test_exact_errors(void **state)
{
    (void)state;
    expect_error("e1.yaml", KC_TWO, "foo", AIT_ERR_NOT_FOUND, "context \"foo\" not found");
    expect_error("e2.yaml", "clusters: []\ncontexts: []\n", NULL, AIT_ERR_INVALID,
                 "no current-context (set one or name a context)");
    expect_error("e3.yaml", KC_TWO, "ghostcluster", AIT_ERR_NOT_FOUND,
                 "cluster \"nowhere\" not found");
    expect_error("e4.yaml", KC_TWO, "ghostuser", AIT_ERR_NOT_FOUND, "user \"nobody\" not found");
    expect_error("e5.yaml",
                 "clusters:\n- name: c\n  cluster: {certificate-authority: ca}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
                 NULL, AIT_ERR_INVALID, "cluster \"c\" has no server");
    expect_error("e6.yaml",
                 "clusters:\n- name: c\n  cluster: {server: s, certificate-authority: ca, "
                 "certificate-authority-data: Q0EK}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
                 NULL, AIT_ERR_INVALID,
                 "cluster \"c\": both \"certificate-authority\" and "
                 "\"certificate-authority-data\" are set; specify only one");
    expect_error("e7.yaml",
                 "clusters:\n- name: c\n  cluster: {server: s, certificate-authority-data: "
                 "'!!!notbase64'}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
                 NULL, AIT_ERR_PARSE,
                 "cluster \"c\": \"certificate-authority-data\" is not valid "
                 "base64");
    expect_error("e8.yaml",
                 "clusters:\n- name: c\n  cluster: {server: s}\n"
                 "users:\n- name: u\n  user: {client-certificate: a.crt}\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
                 NULL, AIT_ERR_INVALID,
                 "user \"u\" has a client certificate but no client-key or "
                 "client-key-data");
    expect_error("e9.yaml", "clusters: [\n", NULL, AIT_ERR_PARSE,
                 "malformed YAML at line 2 column 1: did not find expected node "
                 "content");
    expect_error("e10.yaml", "- just\n- a list\n", NULL, AIT_ERR_PARSE,
                 "the top level is not a mapping");
    expect_error("e11.yaml", "", NULL, AIT_ERR_PARSE, "the file is empty");
    expect_error("e12.yaml",
                 "clusters:\n- name: c\n  cluster: {server: s, insecure-skip-tls-verify: maybe}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
                 NULL, AIT_ERR_PARSE,
                 "cluster \"c\": \"insecure-skip-tls-verify\" must be true or "
                 "false, not \"maybe\"");
    expect_error("e13.yaml", "clusters: {a: b}\ncontexts:\n- name: x\n  context: {cluster: c}\n",
                 "x", AIT_ERR_PARSE, "\"clusters\" must be a list");
    expect_error("e14.yaml",
                 "clusters:\n- name: c\n  cluster: {server: [a]}\n"
                 "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
                 NULL, AIT_ERR_PARSE, "cluster \"c\": \"server\" must be a string");
    expect_error("e15.yaml",
                 "clusters:\n- name: c\n  cluster: {server: s}\n"
                 "users:\n- name: u\n  user: {exec: {command: aws}}\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
                 NULL, AIT_ERR_INVALID,
                 "user \"u\" uses exec or auth-provider credentials, which are "
                 "not supported; use a client certificate or a token");
    expect_error("e16.yaml", "contexts:\n- name: x\n  context: {user: u}\ncurrent-context: x\n",
                 NULL, AIT_ERR_INVALID, "context \"x\" has no cluster");
}

static void test_missing_file(void **state)
{
    (void)state;
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    char *path = ait_asprintf("%s/does-not-exist", tmpdir);
    assert_int_equal(ait_kube_config_from_file(path, NULL, &cfg, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file"));
    ait_free(path);
}

static void test_kubeconfig_env_first_entry(void **state)
{
    (void)state;
    char *p1 = write_tmp("env1.yaml", KC_PATHS);
    char *p2 = write_tmp("env2.yaml", KC_TWO);
    char *env = ait_asprintf(":%s:%s", p2, p1);
    setenv("KUBECONFIG", env, 1);
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_load(NULL, NULL, &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://one:1");
    ait_kube_config_free(cfg);
    /* An explicit path wins over the environment. */
    assert_int_equal(ait_kube_config_load(p1, NULL, &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://127.0.0.1:6443");
    ait_kube_config_free(cfg);
    /* A named context travels along. */
    assert_int_equal(ait_kube_config_load(NULL, "second", &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://two.example:2");
    ait_kube_config_free(cfg);
    unsetenv("KUBECONFIG");
    ait_free(env);
    ait_free(p1);
    ait_free(p2);
}

static void test_in_cluster(void **state)
{
    (void)state;
    char *root = ait_asprintf("%s/sa", tmpdir);
    char *cmd = ait_asprintf("mkdir -p '%s'", root);
    assert_int_equal(system(cmd), 0);
    ait_free(cmd);
    ait_kube_config *cfg = NULL;
    ait_error err = {0};

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_int_equal(ait_kube_config_in_cluster(root, &cfg, &err), AIT_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "in-cluster config: KUBERNETES_SERVICE_HOST and "
                                 "KUBERNETES_SERVICE_PORT must be defined");
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    /* No token file yet. */
    assert_int_equal(ait_kube_config_in_cluster(root, &cfg, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "token"));

    char *tok = write_tmp("sa/token", "eyJhbGciOi.token\n");
    char *ca = write_tmp("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
    char *ns = write_tmp("sa/namespace", "aitask-system\n");
    assert_int_equal(ait_kube_config_in_cluster(root, &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://10.0.0.1:443");
    assert_string_equal(cfg->token, "eyJhbGciOi.token");
    assert_string_equal(cfg->token_file, tok);
    assert_string_equal(cfg->ca_file, ca);
    assert_string_equal(cfg->namespace_, "aitask-system");
    ait_kube_config_free(cfg);

    /* IPv6 service address. */
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(ait_kube_config_in_cluster(root, &cfg, &err), AIT_OK);
    assert_string_equal(cfg->server, "https://[fd00::1]:443");
    ait_kube_config_free(cfg);

    /* ait_kube_config_load falls back to in-cluster without $KUBECONFIG (default root, which
     * does not exist here, so the token is the error). */
    unsetenv("KUBECONFIG");
    assert_int_equal(ait_kube_config_load(NULL, NULL, &cfg, &err), AIT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/var/run/secrets/kubernetes.io/serviceaccount/token"));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    ait_free(tok);
    ait_free(ca);
    ait_free(ns);
    ait_free(root);
}

static void test_free_null_and_args(void **state)
{
    (void)state;
    ait_kube_config_free(NULL);
    ait_kube_config *cfg = NULL;
    ait_error err = {0};
    assert_int_equal(ait_kube_config_from_yaml(NULL, 3, NULL, NULL, &cfg, &err), AIT_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_paths_resolved),
        cmocka_unit_test(test_embedded_data_decoded),
        cmocka_unit_test(test_named_and_current_context),
        cmocka_unit_test(test_exact_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_kubeconfig_env_first_entry),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_free_null_and_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

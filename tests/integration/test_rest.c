/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests of the REST client against the real kube-apiserver named by $KUBECONFIG
 * (hack/cluster.sh): CRUD and the three patch kinds on ConfigMaps, the typed errors the server
 * really sends (stale resourceVersion, create twice, wrong uid precondition, invalid name),
 * pagination over 1 000 objects, a watch stream, and the same calls with certificate data given
 * in memory. Everything happens in one namespace with a unique name, deleted at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/config.h"
#include "kube/rest.h"

static ait_kube_config *cfg;
static ait_rest *rc;
static char ns[64];

static json_object *parse(const char *text)
{
    json_object *o = NULL;
    ait_error err = {0};
    if (ait_json_parse(text, strlen(text), &o, &err) != AIT_OK) {
        fail_msg("bad test JSON: %s", err.msg);
    }
    return o;
}

static json_object *configmap(const char *name, const char *value)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(o, "kind", json_object_new_string("ConfigMap"));
    json_object *md = json_object_new_object();
    json_object_object_add(md, "name", json_object_new_string(name));
    json_object_object_add(o, "metadata", md);
    json_object *data = json_object_new_object();
    json_object_object_add(data, "k", json_object_new_string(value));
    json_object_object_add(o, "data", data);
    return o;
}

static void check(ait_status st, const ait_error *err, const char *what)
{
    if (st != AIT_OK) {
        fail_msg("%s: %s: %s", what, ait_status_str(st), err->msg);
    }
}

static int setup(void **state)
{
    (void)state;
    ait_error err = {0};
    if (getenv("KUBECONFIG") == NULL) {
        fprintf(stderr, "KUBECONFIG is not set\n");
        return -1;
    }
    if (ait_kube_config_load(NULL, NULL, &cfg, &err) != AIT_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        return -1;
    }
    ait_rest_options o = {.timeout_ms = 20000};
    if (ait_rest_new(cfg, &o, &rc, &err) != AIT_OK) {
        fprintf(stderr, "rest: %s\n", err.msg);
        return -1;
    }
    snprintf(ns, sizeof ns, "rest-it-%ld-%lld", (long)getpid(),
             (long long)(ait_time_now_ns() / AIT_NS_PER_MS % 100000000));
    char body[256];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    json_object *obj = parse(body);
    ait_status st = ait_rest_create(rc, &AIT_GVR_NAMESPACES, NULL, obj, NULL, &err);
    json_object_put(obj);
    if (st != AIT_OK) {
        fprintf(stderr, "create namespace: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ait_error err = {0};
    ait_status st = ait_rest_delete(rc, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err);
    if (st != AIT_OK) {
        fprintf(stderr, "delete namespace %s: %s\n", ns, err.msg);
    }
    ait_rest_free(rc);
    ait_kube_config_free(cfg);
    return st == AIT_OK ? 0 : -1;
}

static void test_crud_and_patches(void **state)
{
    (void)state;
    ait_error err = {0};
    json_object *cm = configmap("crud", "v1");
    json_object *created = NULL;
    check(ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, cm, &created, &err), &err, "create");
    const char *uid = ait_json_str(created, "metadata.uid");
    assert_non_null(uid);
    assert_non_null(ait_json_str(created, "metadata.resourceVersion"));

    /* Create twice: AlreadyExists. */
    assert_int_equal(ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, cm, NULL, &err), AIT_ERR_EXISTS);
    assert_int_equal(err.http_status, 409);
    assert_non_null(strstr(err.msg, "already exists"));

    json_object *got = NULL;
    check(ait_rest_get(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", &got, &err), &err, "get");
    assert_string_equal(ait_json_str(got, "data.k"), "v1");
    assert_string_equal(ait_json_str(got, "metadata.uid"), uid);

    /* Update with the current resourceVersion, then with the stale one: Conflict. */
    json_object *stale = json_object_get(got);
    json_object *upd = NULL;
    json_object *copy = NULL;
    assert_int_equal(json_object_deep_copy(got, &copy, NULL), 0);
    json_object_object_add(ait_json_path(copy, "data"), "k", json_object_new_string("v2"));
    check(ait_rest_update(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", NULL, copy, &upd, &err), &err,
          "update");
    assert_string_equal(ait_json_str(upd, "data.k"), "v2");
    assert_string_not_equal(ait_json_str(upd, "metadata.resourceVersion"),
                            ait_json_str(stale, "metadata.resourceVersion"));
    json_object_put(upd);
    json_object_object_add(ait_json_path(stale, "data"), "k", json_object_new_string("stale"));
    assert_int_equal(ait_rest_update(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", NULL, stale, NULL, &err),
                     AIT_ERR_CONFLICT);
    assert_int_equal(err.http_status, 409);
    assert_non_null(strstr(err.msg, "the object has been modified"));
    json_object_put(stale);
    json_object_put(copy);
    json_object_put(got);

    /* Merge patch. */
    json_object *out = NULL;
    check(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", AIT_PATCH_MERGE,
                         "{\"data\":{\"m\":\"merged\"}}", NULL, &out, &err),
          &err, "merge patch");
    assert_string_equal(ait_json_str(out, "data.m"), "merged");
    assert_string_equal(ait_json_str(out, "data.k"), "v2");
    json_object_put(out);
    /* JSON patch. */
    check(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", AIT_PATCH_JSON,
                         "[{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"jp\"},"
                         "{\"op\":\"remove\",\"path\":\"/data/m\"}]",
                         NULL, &out, &err),
          &err, "json patch");
    assert_string_equal(ait_json_str(out, "data.k"), "jp");
    assert_null(ait_json_path(out, "data.m"));
    json_object_put(out);
    /* A failing JSON patch test op is Invalid (422). */
    assert_int_equal(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", AIT_PATCH_JSON,
                                    "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"no\"}]",
                                    NULL, NULL, &err),
                     AIT_ERR_INVALID);
    /* Server-side apply: the field is taken over by force from the update manager. */
    ait_patch_options po = {.field_manager = "rest-it", .force = 1};
    check(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", AIT_PATCH_APPLY,
                         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                         "\"crud\"},\"data\":{\"k\":\"applied\",\"s\":\"ssa\"}}",
                         &po, &out, &err),
          &err, "apply");
    assert_string_equal(ait_json_str(out, "data.k"), "applied");
    assert_string_equal(ait_json_str(out, "data.s"), "ssa");
    json_object *mf = ait_json_array(out, "metadata.managedFields");
    int found = 0;
    for (size_t i = 0; mf != NULL && i < json_object_array_length(mf); i++) {
        const char *m = ait_json_str(json_object_array_get_idx(mf, i), "manager");
        const char *op = ait_json_str(json_object_array_get_idx(mf, i), "operation");
        found += m != NULL && strcmp(m, "rest-it") == 0 && op != NULL && strcmp(op, "Apply") == 0;
    }
    assert_int_equal(found, 1);
    json_object_put(out);
    /* Without force, a second manager's conflicting apply is a Conflict. */
    ait_patch_options other = {.field_manager = "someone-else"};
    assert_int_equal(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", AIT_PATCH_APPLY,
                                    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                                    "{\"name\":\"crud\"},\"data\":{\"k\":\"mine\"}}",
                                    &other, NULL, &err),
                     AIT_ERR_CONFLICT);

    /* Delete with a wrong uid precondition: Conflict; with the right one: gone. */
    ait_delete_options d = {.precondition_uid = "00000000-0000-0000-0000-000000000000",
                            .grace_period_seconds = -1};
    assert_int_equal(ait_rest_delete(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", &d, &err),
                     AIT_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "does not match the UID in record"));
    d.precondition_uid = uid;
    d.propagation = "Background";
    check(ait_rest_delete(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", &d, &err), &err, "delete");
    assert_int_equal(ait_rest_get(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", NULL, &err),
                     AIT_ERR_NOT_FOUND);
    assert_int_equal(ait_rest_delete(rc, &AIT_GVR_CONFIGMAPS, ns, "crud", NULL, &err),
                     AIT_ERR_NOT_FOUND);
    json_object_put(created);
    json_object_put(cm);
}

static void test_invalid_name(void **state)
{
    (void)state;
    ait_error err = {0};
    json_object *cm = configmap("Bad_Name", "x");
    assert_int_equal(ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, cm, NULL, &err), AIT_ERR_INVALID);
    assert_int_equal(err.http_status, 422);
    assert_non_null(strstr(err.msg, "is invalid"));
    json_object_put(cm);
}

typedef struct creator {
    int from, to;
    ait_status st;
    ait_error err;
} creator;

static void *create_range(void *arg)
{
    creator *cr = arg;
    for (int i = cr->from; i < cr->to && cr->st == AIT_OK; i++) {
        char name[32];
        snprintf(name, sizeof name, "page-%04d", i);
        json_object *cm = configmap(name, "p");
        json_object *md = ait_json_path(cm, "metadata");
        json_object *labels = json_object_new_object();
        json_object_object_add(labels, "set", json_object_new_string("paging"));
        json_object_object_add(md, "labels", labels);
        cr->st = ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, cm, NULL, &cr->err);
        json_object_put(cm);
    }
    return NULL;
}

static void test_pagination_1000(void **state)
{
    (void)state;
    /* Two threads share the client (one curl handle each). */
    creator a = {0, 500, AIT_OK, {0}}, b = {500, 1000, AIT_OK, {0}};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, create_range, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, create_range, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    check(a.st, &a.err, "create pages a");
    check(b.st, &b.err, "create pages b");

    ait_list_options lo = {.label_selector = "set=paging", .limit = 100};
    json_object *list = NULL;
    ait_error err = {0};
    check(ait_rest_list(rc, &AIT_GVR_CONFIGMAPS, ns, &lo, &list, &err), &err, "list");
    json_object *items = ait_json_array(list, "items");
    assert_int_equal(json_object_array_length(items), 1000);
    /* Every name exactly once. */
    static char seen[1000];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < 1000; i++) {
        const char *name = ait_json_str(json_object_array_get_idx(items, i), "metadata.name");
        assert_non_null(name);
        long n = strtol(name + 5, NULL, 10);
        assert_true(n >= 0 && n < 1000);
        assert_int_equal(seen[n], 0);
        seen[n] = 1;
    }
    assert_non_null(ait_json_str(list, "metadata.resourceVersion"));
    assert_null(ait_json_path(list, "metadata.continue"));
    json_object_put(list);

    /* A field selector narrows it down to one. */
    ait_list_options one = {.field_selector = "metadata.name=page-0042", .limit = 100};
    check(ait_rest_list(rc, &AIT_GVR_CONFIGMAPS, ns, &one, &list, &err), &err, "list one");
    assert_int_equal(json_object_array_length(ait_json_array(list, "items")), 1);
    json_object_put(list);
}

typedef struct watch_ctx {
    ait_buf got;
    volatile int cancel;
} watch_ctx;

static int watch_cb(void *ctx, const char *data, size_t len)
{
    watch_ctx *w = ctx;
    if (ait_buf_append(&w->got, data, len) != AIT_OK) {
        return 1;
    }
    /* Stop at the ADDED event of the object created below. */
    return strstr(ait_buf_str(&w->got), "\"name\":\"watched\"") != NULL;
}

static void *make_watched(void *arg)
{
    (void)arg;
    ait_time_sleep_ns(300 * AIT_NS_PER_MS);
    json_object *cm = configmap("watched", "w");
    ait_error err = {0};
    ait_status st = ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, cm, NULL, &err);
    json_object_put(cm);
    return (void *)(intptr_t)st;
}

static void *cancel_later(void *arg)
{
    watch_ctx *w = arg;
    ait_time_sleep_ns(400 * AIT_NS_PER_MS);
    w->cancel = 1;
    return NULL;
}

static void test_watch_stream(void **state)
{
    (void)state;
    char *path = ait_rest_path(&AIT_GVR_CONFIGMAPS, ns, NULL, NULL);
    watch_ctx w = {0};
    ait_buf_init(&w.got, 1 << 20);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, make_watched, NULL), 0);
    long status = 0;
    ait_error err = {0};
    ait_status st = ait_rest_stream(rc, path, "watch=1&fieldSelector=metadata.name%3Dwatched",
                                    watch_cb, &w, &w.cancel, &status, &err);
    void *res = NULL;
    pthread_join(t, &res);
    assert_int_equal((int)(intptr_t)res, AIT_OK);
    check(st, &err, "watch");
    assert_int_equal(status, 200);
    assert_non_null(strstr(ait_buf_str(&w.got), "\"type\":\"ADDED\""));

    /* A quiet watch ends promptly when cancelled. */
    ait_buf_reset(&w.got);
    w.cancel = 0;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &w), 0);
    int64_t t0 = ait_time_mono_ns();
    st = ait_rest_stream(rc, path, "watch=1&fieldSelector=metadata.name%3Dnobody", watch_cb, &w,
                         &w.cancel, &status, &err);
    int64_t dt = ait_time_mono_ns() - t0;
    pthread_join(t, NULL);
    assert_int_equal(st, AIT_ERR_CANCELLED);
    assert_true(dt < 3 * AIT_NS_PER_S);

    /* The real server answers a malformed resourceVersion with a reason-less 500 Status: a
     * retryable error whose message is the server's. */
    w.cancel = 0;
    st = ait_rest_stream(rc, path, "watch=1&resourceVersion=notanumber", watch_cb, &w, &w.cancel,
                         &status, &err);
    assert_int_equal(st, AIT_ERR_RETRY);
    assert_int_equal(status, 500);
    assert_non_null(strstr(err.msg, "resourceVersion: Invalid value"));
    /* An unknown resource is NotFound, decoded from the error body of the stream. */
    char *bad = ait_asprintf("/api/v1/namespaces/%s/nosuchthings", ns);
    st = ait_rest_stream(rc, bad, "watch=1", watch_cb, &w, &w.cancel, &status, &err);
    assert_int_equal(st, AIT_ERR_NOT_FOUND);
    assert_int_equal(status, 404);
    assert_int_equal(w.got.len, 0);
    ait_free(bad);
    ait_buf_free(&w.got);
    ait_free(path);
}

/* The same server reached with the certificates given as in-memory blobs. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ait_buf b;
    ait_buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        assert_int_equal(ait_buf_append(&b, chunk, n), AIT_OK);
    }
    fclose(f);
    return ait_buf_take(&b);
}

static void test_blobs_and_bad_ca(void **state)
{
    (void)state;
    if (cfg->ca_file == NULL || cfg->client_cert_file == NULL || cfg->client_key_file == NULL) {
        skip();
    }
    ait_kube_config mem = {0};
    mem.server = cfg->server;
    mem.ca_data = slurp(cfg->ca_file);
    mem.client_cert_data = slurp(cfg->client_cert_file);
    mem.client_key_data = slurp(cfg->client_key_file);
    ait_rest *c2 = NULL;
    ait_error err = {0};
    check(ait_rest_new(&mem, NULL, &c2, &err), &err, "new with blobs");
    json_object *out = NULL;
    check(ait_rest_get(c2, &AIT_GVR_NAMESPACES, NULL, ns, &out, &err), &err, "get ns by blobs");
    assert_string_equal(ait_json_str(out, "metadata.name"), ns);
    json_object_put(out);
    ait_rest_free(c2);

    /* Without the client certificate the server answers 403 for system:anonymous. */
    ait_kube_config anon = {0};
    anon.server = cfg->server;
    anon.ca_data = mem.ca_data;
    check(ait_rest_new(&anon, NULL, &c2, &err), &err, "new anonymous");
    assert_int_equal(ait_rest_get(c2, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err),
                     AIT_ERR_FORBIDDEN);
    assert_non_null(strstr(err.msg, "system:anonymous"));
    ait_rest_free(c2);

    /* With the system trust store instead of the cluster CA, TLS verification fails. */
    ait_kube_config noca = mem;
    noca.ca_data = NULL;
    check(ait_rest_new(&noca, NULL, &c2, &err), &err, "new without CA");
    assert_int_equal(ait_rest_get(c2, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err), AIT_ERR_IO);
    ait_rest_free(c2);
    ait_free(mem.ca_data);
    ait_free(mem.client_cert_data);
    ait_free(mem.client_key_data);
}

/* Bearer tokens: a real service-account token from the TokenRequest API, given as a token and
 * as a token file, identifies the client as that service account (it has no RBAC, so 403 with
 * its name); a wrong token is 401. */
static void test_bearer_tokens(void **state)
{
    (void)state;
    ait_error err = {0};
    json_object *sa = parse("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                            "\"metadata\":{\"name\":\"rest-it-sa\"}}");
    check(ait_rest_create(rc, &AIT_GVR_SERVICEACCOUNTS, ns, sa, NULL, &err), &err, "create sa");
    json_object_put(sa);
    char *path = ait_rest_path(&AIT_GVR_SERVICEACCOUNTS, ns, "rest-it-sa", "token");
    json_object *tr = NULL;
    check(ait_rest_request(rc, "POST", path, NULL, "application/json",
                           "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":"
                           "\"TokenRequest\",\"spec\":{\"expirationSeconds\":600}}",
                           &tr, &err),
          &err, "token request");
    ait_free(path);
    const char *token = ait_json_str(tr, "status.token");
    assert_non_null(token);

    char tokfile[] = "/tmp/ait-rest-token-XXXXXX";
    int fd = mkstemp(tokfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, token, strlen(token)), (ssize_t)strlen(token));
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);

    char *who = ait_asprintf("system:serviceaccount:%s:rest-it-sa", ns);
    for (int mode = 0; mode < 2; mode++) {
        ait_kube_config tc = {0};
        tc.server = cfg->server;
        tc.ca_file = cfg->ca_file;
        tc.ca_data = cfg->ca_data;
        if (mode == 0) {
            tc.token = (char *)token;
        } else {
            tc.token = "stale-token-the-file-replaces";
            tc.token_file = tokfile;
        }
        ait_rest *c2 = NULL;
        check(ait_rest_new(&tc, NULL, &c2, &err), &err, "new with token");
        assert_int_equal(ait_rest_get(c2, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err),
                         AIT_ERR_FORBIDDEN);
        assert_int_equal(err.http_status, 403);
        if (strstr(err.msg, who) == NULL) {
            fail_msg("mode %d: %s", mode, err.msg);
        }
        ait_rest_free(c2);
    }
    ait_kube_config bad = {0};
    bad.server = cfg->server;
    bad.ca_file = cfg->ca_file;
    bad.ca_data = cfg->ca_data;
    bad.token = "not-a-valid-token";
    ait_rest *c3 = NULL;
    check(ait_rest_new(&bad, NULL, &c3, &err), &err, "new with bad token");
    assert_int_equal(ait_rest_get(c3, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err),
                     AIT_ERR_UNAUTHORIZED);
    assert_int_equal(err.http_status, 401);
    ait_rest_free(c3);
    unlink(tokfile);
    ait_free(who);
    json_object_put(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_and_patches), cmocka_unit_test(test_invalid_name),
        cmocka_unit_test(test_pagination_1000),  cmocka_unit_test(test_watch_stream),
        cmocka_unit_test(test_blobs_and_bad_ca), cmocka_unit_test(test_bearer_tokens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

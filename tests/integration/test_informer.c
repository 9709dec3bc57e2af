/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests of the informer against the real kube-apiserver. (1) On the shared cluster
 * ($KUBECONFIG): 1 000 creates, updates and deletes of ConfigMaps in a unique namespace, then
 * the cache equals a fresh list (names and resourceVersions) and every delete was seen. (2) On a
 * private cluster this test starts with hack/cluster.sh (so restarting its API server disturbs
 * no other test): the API server is stopped mid-watch, ConfigMaps are deleted straight from etcd
 * and etcd is compacted during the outage, writes go on around it; after the restart the watch
 * from the old resourceVersion gets 410, the informer relists, and the cache converges with a
 * delete for every vanished object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "kube/store.h"

static void check(ait_status st, const ait_error *err, const char *what)
{
    if (st != AIT_OK) {
        fail_msg("%s: %s: %s", what, ait_status_str(st), err->msg);
    }
}

static void sleep_ms(int ms)
{
    ait_time_sleep_ns((int64_t)ms * AIT_NS_PER_MS);
}

static char *unique(const char *prefix)
{
    return ait_asprintf("%s-%ld-%lld", prefix, (long)getpid(),
                        (long long)(ait_time_now_ns() / AIT_NS_PER_MS % 100000000));
}

static void create_ns(ait_rest *rc, const char *ns)
{
    char *body = ait_asprintf("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
                              "\"name\":\"%s\"}}",
                              ns);
    json_object *o = NULL;
    ait_error err = {0};
    ait_status st = ait_json_parse(body, strlen(body), &o, &err);
    check(st, &err, "namespace JSON");
    check(ait_rest_create(rc, &AIT_GVR_NAMESPACES, NULL, o, NULL, &err), &err,
          "creating namespace");
    json_object_put(o);
    ait_free(body);
}

static void delete_ns(ait_rest *rc, const char *ns)
{
    ait_error err = {0};
    ait_status st = ait_rest_delete(rc, &AIT_GVR_NAMESPACES, NULL, ns, NULL, &err);
    if (st != AIT_OK && st != AIT_ERR_NOT_FOUND) {
        fprintf(stderr, "deleting namespace %s: %s\n", ns, err.msg);
    }
}

static ait_status create_cm(ait_rest *rc, const char *ns, const char *name, const char *value,
                            ait_error *err)
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
    ait_status st = ait_rest_create(rc, &AIT_GVR_CONFIGMAPS, ns, o, NULL, err);
    json_object_put(o);
    return st;
}

/* Handler counters and the names deleted. */
typedef struct seen {
    atomic_long adds, updates, deletes, unknown_deletes;
    pthread_mutex_t mu;
    ait_buf deleted; /* ",name," entries */
} seen;

static void h_add(void *ctx, json_object *obj)
{
    (void)obj;
    atomic_fetch_add(&((seen *)ctx)->adds, 1);
}

static void h_update(void *ctx, json_object *o, json_object *n)
{
    (void)o, (void)n;
    atomic_fetch_add(&((seen *)ctx)->updates, 1);
}

static void h_delete(void *ctx, json_object *obj, int unknown)
{
    seen *s = ctx;
    atomic_fetch_add(&s->deletes, 1);
    if (unknown) {
        atomic_fetch_add(&s->unknown_deletes, 1);
    }
    pthread_mutex_lock(&s->mu);
    ait_status st = ait_buf_appendf(&s->deleted, ",%s,", ait_json_str(obj, "metadata.name"));
    pthread_mutex_unlock(&s->mu);
    assert_int_equal(st, AIT_OK);
}

static int seen_deleted(seen *s, const char *name)
{
    char *needle = ait_asprintf(",%s,", name);
    pthread_mutex_lock(&s->mu);
    int has = strstr(ait_buf_str(&s->deleted), needle) != NULL;
    pthread_mutex_unlock(&s->mu);
    ait_free(needle);
    return has;
}

typedef struct cmp_ctx {
    json_object *want; /* name -> resourceVersion */
    size_t matched;
    size_t mismatched;
    char first_diff[256];
} cmp_ctx;

static void cmp_visit(void *p, const char *key, json_object *obj)
{
    cmp_ctx *c = p;
    const char *name = ait_json_str(obj, "metadata.name");
    const char *rv = ait_json_str(obj, "metadata.resourceVersion");
    /* Names hold dots (kube-root-ca.crt): a plain key lookup, not ait_json_str's dotted path. */
    json_object *w = NULL;
    const char *want = (name != NULL && json_object_object_get_ex(c->want, name, &w))
                           ? json_object_get_string(w)
                           : NULL;
    if (want != NULL && rv != NULL && strcmp(want, rv) == 0) {
        c->matched++;
    } else {
        if (c->mismatched++ == 0) {
            snprintf(c->first_diff, sizeof(c->first_diff), "%s: cache rv %s, list rv %s", key,
                     rv ? rv : "-", want ? want : "(absent)");
        }
    }
}

/* Returns 1 when the cache holds exactly the objects of a fresh list at the same
 * resourceVersions; diff (may be NULL) gets a description of the first difference. */
static int cache_equals_list(ait_rest *rc, ait_informer *inf, const char *ns, char *diff,
                             size_t diff_len)
{
    json_object *list = NULL;
    ait_error err = {0};
    check(ait_rest_list(rc, &AIT_GVR_CONFIGMAPS, ns, NULL, &list, &err), &err, "fresh list");
    json_object *items = ait_json_array(list, "items");
    cmp_ctx c = {.want = json_object_new_object()};
    size_t n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(items, i);
        json_object_object_add(
            c.want, ait_json_str(it, "metadata.name"),
            json_object_new_string(ait_json_str(it, "metadata.resourceVersion")));
    }
    ait_store_visit(ait_informer_store(inf), cmp_visit, &c);
    int equal = c.mismatched == 0 && c.matched == n;
    if (!equal && diff != NULL) {
        snprintf(diff, diff_len, "list %zu, matched %zu, mismatched %zu; %s", n, c.matched,
                 c.mismatched, c.first_diff);
    }
    json_object_put(c.want);
    json_object_put(list);
    return equal;
}

static int wait_converged(ait_rest *rc, ait_informer *inf, const char *ns, int seconds)
{
    char diff[512] = "";
    for (int i = 0; i < seconds * 10; i++) {
        if (cache_equals_list(rc, inf, ns, diff, sizeof(diff))) {
            return 1;
        }
        sleep_ms(100);
    }
    fprintf(stderr, "cache never matched the list: %s\n", diff);
    return 0;
}

static void seen_init(seen *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    ait_buf_init(&s->deleted, 0);
}

static void seen_free(seen *s)
{
    ait_buf_free(&s->deleted);
    pthread_mutex_destroy(&s->mu);
}

static ait_informer *start_informer(ait_rest *rc, const char *ns, seen *s, int64_t backoff_max)
{
    ait_informer_options o = {
        .gvr = &AIT_GVR_CONFIGMAPS,
        .ns = ns,
        .page_size = 100,
        .handlers = {.ctx = s, .on_add = h_add, .on_update = h_update, .on_delete = h_delete},
        .backoff_max_ms = backoff_max,
    };
    ait_informer *inf = NULL;
    ait_error err = {0};
    check(ait_informer_new(rc, &o, &inf, &err), &err, "informer_new");
    check(ait_informer_start(inf, &err), &err, "informer_start");
    assert_int_equal(ait_informer_wait_for_sync(inf, 30000), AIT_OK);
    return inf;
}

/* ---- 1: a thousand writes on the shared cluster ---- */

static void test_thousand_writes(void **state)
{
    (void)state;
    ait_kube_config *cfg = NULL;
    ait_rest *rc = NULL;
    ait_error err = {0};
    check(ait_kube_config_load(NULL, NULL, &cfg, &err), &err, "kubeconfig");
    ait_rest_options ro = {.timeout_ms = 20000};
    check(ait_rest_new(cfg, &ro, &rc, &err), &err, "rest");
    char *ns = unique("informer-it");
    create_ns(rc, ns);

    seen s;
    seen_init(&s);
    ait_informer *inf = start_informer(rc, ns, &s, 0);

    /* 500 creates, 300 updates (interleaved with the creates), 200 deletes: 1 000 writes
     * while the informer watches. */
    char name[64], val[64];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "cm-%d", i);
        check(create_cm(rc, ns, name, "v0", &err), &err, "create");
        if (i >= 200) {
            snprintf(name, sizeof(name), "cm-%d", i - 200);
            snprintf(val, sizeof(val), "{\"data\":{\"k\":\"v%d\"}}", i);
            check(ait_rest_patch(rc, &AIT_GVR_CONFIGMAPS, ns, name, AIT_PATCH_MERGE, val, NULL,
                                 NULL, &err),
                  &err, "patch");
        }
    }
    for (int i = 300; i < 500; i++) {
        snprintf(name, sizeof(name), "cm-%d", i);
        check(ait_rest_delete(rc, &AIT_GVR_CONFIGMAPS, ns, name, NULL, &err), &err, "delete");
    }
    assert_true(wait_converged(rc, inf, ns, 30));
    /* Every deleted ConfigMap came through as a delete with its final state, none unknown. */
    assert_int_equal(atomic_load(&s.deletes), 200);
    assert_int_equal(atomic_load(&s.unknown_deletes), 0);
    assert_true(atomic_load(&s.adds) >= 500);
    assert_true(atomic_load(&s.updates) >= 300);
    /* 300 left, plus kube-root-ca.crt once the controller manager publishes it. */
    assert_true(ait_informer_len(inf) >= 300 && ait_informer_len(inf) <= 301);
    for (int i = 300; i < 500; i++) {
        snprintf(name, sizeof(name), "cm-%d", i);
        assert_true(seen_deleted(&s, name));
    }
    ait_informer_stats st;
    ait_informer_get_stats(inf, &st);
    fprintf(stderr, "thousand writes: lists %llu watches %llu events %llu errors %llu\n",
            (unsigned long long)st.lists, (unsigned long long)st.watches,
            (unsigned long long)st.events, (unsigned long long)st.errors);

    int64_t t0 = ait_time_mono_ns();
    ait_informer_stop(inf);
    assert_true(ait_time_mono_ns() - t0 < AIT_NS_PER_S);
    ait_informer_free(inf);
    seen_free(&s);
    delete_ns(rc, ns);
    ait_free(ns);
    ait_rest_free(rc);
    ait_kube_config_free(cfg);
}

/* ---- 2: API server restart with deletes during the outage, on a private cluster ---- */

static char *cluster_dir;

static int run(const char *fmt, ...) AIT_PRINTF(1, 2);
static int run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ait_buf cmd;
    ait_buf_init(&cmd, 0);
    ait_status st = ait_buf_vappendf(&cmd, fmt, ap);
    va_end(ap);
    assert_int_equal(st, AIT_OK);
    int rc = system(ait_buf_str(&cmd));
    ait_buf_free(&cmd);
    return rc;
}

/* Reads the whole output of a shell command (owned). */
static char *capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    ait_buf b;
    ait_buf_init(&b, 0);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0) {
        assert_int_equal(ait_buf_append(&b, tmp, n), AIT_OK);
    }
    pclose(p);
    return ait_buf_take(&b);
}

static char *b64(const char *s)
{
    char *cmd = ait_asprintf("printf '%%s' '%s' | base64 -w0", s);
    char *out = capture(cmd);
    ait_free(cmd);
    return out;
}

/* POSTs body to etcd's JSON gateway and returns the answer (owned). */
static char *etcd_post(const char *port, const char *api, const char *body)
{
    char *cmd = ait_asprintf("curl -sf -X POST http://127.0.0.1:%s%s -d '%s'", port, api, body);
    char *out = capture(cmd);
    ait_free(cmd);
    return out;
}

typedef struct writer {
    ait_rest *rc;
    const char *ns;
    atomic_int stop;
    atomic_int ok;
    atomic_int failed;
} writer;

/* Creates ConfigMaps and deletes older ones in a loop, through the API server's outage. */
static void *writer_main(void *p)
{
    writer *w = p;
    char name[64];
    for (int i = 0; !atomic_load(&w->stop); i++) {
        ait_error err = {0};
        snprintf(name, sizeof(name), "w-%d", i);
        ait_status st = create_cm(w->rc, w->ns, name, "w", &err);
        if (st == AIT_OK && i >= 5 && i % 2 == 0) {
            snprintf(name, sizeof(name), "w-%d", i - 5);
            st = ait_rest_delete(w->rc, &AIT_GVR_CONFIGMAPS, w->ns, name, NULL, &err);
        }
        if (st == AIT_OK || st == AIT_ERR_NOT_FOUND) {
            atomic_fetch_add(&w->ok, 1);
        } else {
            atomic_fetch_add(&w->failed, 1);
        }
        sleep_ms(20);
    }
    return NULL;
}

static int cluster_setup(void **state)
{
    (void)state;
    const char *src = getenv("AIT_SOURCE_DIR");
    if (src == NULL) {
        fprintf(stderr, "AIT_SOURCE_DIR is not set\n");
        return -1;
    }
    char tmpl[] = "/tmp/ait-informer-cluster-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        return -1;
    }
    cluster_dir = ait_strdup(tmpl);
    char *name = unique("inf");
    int rc = run("bash %s/hack/cluster.sh up --dir %s --name %s >%s/up.log 2>&1", src, cluster_dir,
                 name, cluster_dir);
    ait_free(name);
    if (rc != 0) {
        fprintf(stderr, "cluster.sh up failed; see %s/up.log\n", cluster_dir);
        run("tail -20 %s/up.log >&2", cluster_dir);
        return -1;
    }
    return 0;
}

static int cluster_teardown(void **state)
{
    (void)state;
    const char *src = getenv("AIT_SOURCE_DIR");
    if (cluster_dir != NULL && src != NULL) {
        run("bash %s/hack/cluster.sh down --dir %s >>%s/up.log 2>&1", src, cluster_dir,
            cluster_dir);
        run("rm -rf %s", cluster_dir);
    }
    ait_free(cluster_dir);
    cluster_dir = NULL;
    return 0;
}

static void test_apiserver_restart(void **state)
{
    (void)state;
    const char *src = getenv("AIT_SOURCE_DIR");
    ait_kube_config *cfg = NULL;
    ait_rest *rc = NULL;
    ait_error err = {0};
    char *kc = ait_asprintf("%s/kubeconfig", cluster_dir);
    check(ait_kube_config_from_file(kc, NULL, &cfg, &err), &err, "kubeconfig");
    ait_free(kc);
    ait_rest_options ro = {.timeout_ms = 10000, .connect_timeout_ms = 2000};
    check(ait_rest_new(cfg, &ro, &rc, &err), &err, "rest");
    char *ns = unique("informer-restart");
    create_ns(rc, ns);
    char name[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "doomed-%d", i);
        check(create_cm(rc, ns, name, "d", &err), &err, "create");
    }

    seen s;
    seen_init(&s);
    ait_informer *inf = start_informer(rc, ns, &s, 2000);
    assert_true(wait_converged(rc, inf, ns, 20));
    char *rv_before = ait_informer_resource_version(inf);

    writer w = {.rc = rc, .ns = ns};
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &w), 0);
    sleep_ms(1000);

    /* Outage: stop the API server, delete 20 ConfigMaps straight from etcd (the API server
     * never sees these deletes), compact etcd's history, start the API server again. */
    assert_int_equal(run("bash %s/hack/cluster.sh stop-apiserver --dir %s >>%s/up.log 2>&1", src,
                         cluster_dir, cluster_dir),
                     0);
    char *port_path = ait_asprintf("cat %s/etcd.port", cluster_dir);
    char *port = capture(port_path);
    ait_free(port_path);
    port[strcspn(port, "\n")] = '\0';
    char *rev = NULL;
    for (int i = 0; i < 20; i++) {
        char *key = ait_asprintf("/registry/configmaps/%s/doomed-%d", ns, i);
        char *k64 = b64(key);
        char *body = ait_asprintf("{\"key\":\"%s\"}", k64);
        char *out = etcd_post(port, "/v3/kv/deleterange", body);
        assert_non_null(strstr(out, "\"deleted\":\"1\""));
        ait_free(rev);
        const char *r = strstr(out, "\"revision\":\"");
        assert_non_null(r);
        rev = ait_strndup(r + 12, strcspn(r + 12, "\""));
        ait_free(out), ait_free(body), ait_free(k64), ait_free(key);
    }
    char *cbody = ait_asprintf("{\"revision\":\"%s\",\"physical\":true}", rev);
    char *cout = etcd_post(port, "/v3/kv/compaction", cbody);
    ait_free(cbody), ait_free(cout), ait_free(rev), ait_free(port);
    assert_int_equal(run("bash %s/hack/cluster.sh start-apiserver --dir %s >>%s/up.log 2>&1", src,
                         cluster_dir, cluster_dir),
                     0);

    /* Writes go on for a while after the restart, then the cache must match a fresh list. */
    sleep_ms(3000);
    atomic_store(&w.stop, 1);
    pthread_join(wt, NULL);
    fprintf(stderr, "writer: %d ok, %d failed during the outage\n", atomic_load(&w.ok),
            atomic_load(&w.failed));
    assert_true(atomic_load(&w.ok) > 20);
    assert_true(wait_converged(rc, inf, ns, 60));

    /* No missed delete: each ConfigMap removed behind the API server's back was reported
     * deleted, with its last known state (a relist found it gone). */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "doomed-%d", i);
        assert_true(seen_deleted(&s, name));
        assert_null(ait_informer_get(inf, ns, name));
    }
    for (int i = 20; i < 40; i++) {
        snprintf(name, sizeof(name), "doomed-%d", i);
        json_object *o = ait_informer_get(inf, ns, name);
        assert_non_null(o);
        json_object_put(o);
    }
    assert_true(atomic_load(&s.unknown_deletes) >= 20);
    ait_informer_stats st;
    ait_informer_get_stats(inf, &st);
    fprintf(stderr,
            "restart: lists %llu relists(410) %llu watches %llu errors %llu backoffs %llu\n",
            (unsigned long long)st.lists, (unsigned long long)st.relists_gone,
            (unsigned long long)st.watches, (unsigned long long)st.errors,
            (unsigned long long)st.backoffs);
    /* The watch from before the compaction was refused with 410 and the informer relisted. */
    assert_true(st.relists_gone >= 1);
    assert_true(st.lists >= 2);
    char *rv_after = ait_informer_resource_version(inf);
    assert_string_not_equal(rv_before, rv_after);
    ait_free(rv_before), ait_free(rv_after);

    int64_t t0 = ait_time_mono_ns();
    ait_informer_stop(inf);
    assert_true(ait_time_mono_ns() - t0 < AIT_NS_PER_S);
    ait_informer_free(inf);
    seen_free(&s);
    delete_ns(rc, ns);
    ait_free(ns);
    ait_rest_free(rc);
    ait_kube_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_thousand_writes),
    };
    const struct CMUnitTest private_cluster[] = {
        cmocka_unit_test(test_apiserver_restart),
    };
    int fails = cmocka_run_group_tests_name("shared cluster", shared, NULL, NULL);
    fails += cmocka_run_group_tests_name("private cluster", private_cluster, cluster_setup,
                                         cluster_teardown);
    return fails;
}

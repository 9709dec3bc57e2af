/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the informer's object cache (kube/store.h): keys, replace semantics, the owner
 * index, relist diffs, copies, and concurrent readers during writes. */
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

#include "core/alloc.h"
#include "core/json.h"
#include "kube/store.h"

/* Builds an object; owners is a comma-separated list of UIDs or NULL. */
static json_object *mkobj(const char *ns, const char *name, const char *rv, const char *owners)
{
    json_object *o = json_object_new_object();
    json_object *md = json_object_new_object();
    json_object_object_add(md, "name", json_object_new_string(name));
    if (ns != NULL) {
        json_object_object_add(md, "namespace", json_object_new_string(ns));
    }
    json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
    if (owners != NULL) {
        json_object *refs = json_object_new_array();
        char *copy = ait_strdup(owners);
        char *save = NULL;
        for (char *uid = strtok_r(copy, ",", &save); uid != NULL;
             uid = strtok_r(NULL, ",", &save)) {
            json_object *ref = json_object_new_object();
            json_object_object_add(ref, "kind", json_object_new_string("AITask"));
            json_object_object_add(ref, "uid", json_object_new_string(uid));
            json_object_array_add(refs, ref);
        }
        ait_free(copy);
        json_object_object_add(md, "ownerReferences", refs);
    }
    json_object_object_add(o, "metadata", md);
    return o;
}

/* ait_store_put borrows: this helper frees the object afterwards. */
static ait_status put(ait_store *s, json_object *obj, json_object **old)
{
    ait_status st = ait_store_put(s, obj, old);
    json_object_put(obj);
    return st;
}

static const char *rv_of(json_object *o)
{
    return ait_json_str(o, "metadata.resourceVersion");
}

/* Returns the sorted, comma-joined names in a JSON array of objects (owned). */
static char *names_of(json_object *arr)
{
    size_t n = json_object_array_length(arr);
    const char **names = ait_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        names[i] = ait_json_str(json_object_array_get_idx(arr, i), "metadata.name");
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    char *out = ait_strdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = ait_asprintf("%s%s%s", out, i ? "," : "", names[i]);
        ait_free(out);
        out = next;
    }
    ait_free(names);
    return out;
}

static void assert_owned(ait_store *s, const char *uid, const char *want)
{
    json_object *arr = ait_store_list_by_owner(s, uid);
    char *got = names_of(arr);
    assert_string_equal(got, want);
    ait_free(got);
    json_object_put(arr);
}

static void test_keys(void **state)
{
    (void)state;
    json_object *o = mkobj("ns1", "a", "1", NULL);
    char *k = ait_store_key_of(o);
    assert_string_equal(k, "ns1/a");
    ait_free(k);
    json_object_put(o);
    o = mkobj(NULL, "cluster-wide", "1", NULL);
    k = ait_store_key_of(o);
    assert_string_equal(k, "cluster-wide");
    ait_free(k);
    json_object_put(o);
    o = json_object_new_object();
    assert_null(ait_store_key_of(o));
    json_object_put(o);
}

static void test_put_get_delete(void **state)
{
    (void)state;
    ait_store *s = ait_store_new();
    json_object *old = (json_object *)1;
    assert_int_equal(put(s, mkobj("n", "a", "1", NULL), &old), AIT_OK);
    assert_null(old);
    assert_int_equal(put(s, mkobj("n", "b", "2", NULL), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("m", "a", "3", NULL), NULL), AIT_OK);
    assert_int_equal(ait_store_len(s), 3);

    /* Replacing hands back the previous object. */
    assert_int_equal(put(s, mkobj("n", "a", "4", NULL), &old), AIT_OK);
    assert_non_null(old);
    assert_string_equal(rv_of(old), "1");
    json_object_put(old);
    assert_int_equal(ait_store_len(s), 3);

    json_object *got = ait_store_get(s, "n/a");
    assert_non_null(got);
    assert_string_equal(rv_of(got), "4");
    /* A copy: changing it leaves the cache alone. */
    json_object_object_add(json_object_object_get(got, "metadata"), "resourceVersion",
                           json_object_new_string("999"));
    json_object_put(got);
    got = ait_store_get(s, "n/a");
    assert_string_equal(rv_of(got), "4");
    json_object_put(got);
    assert_null(ait_store_get(s, "n/zzz"));

    /* An object without a name is refused (and freed). */
    assert_int_equal(put(s, json_object_new_object(), NULL), AIT_ERR_INVALID);

    assert_int_equal(ait_store_delete(s, "n/a", &old), 1);
    assert_string_equal(rv_of(old), "4");
    json_object_put(old);
    assert_int_equal(ait_store_delete(s, "n/a", &old), 0);
    assert_null(old);
    assert_int_equal(ait_store_len(s), 2);

    json_object *all = ait_store_list(s);
    char *names = names_of(all);
    assert_string_equal(names, "a,b");
    ait_free(names);
    json_object_put(all);
    ait_store_free(s);
    ait_store_free(NULL);
}

static void test_owner_index(void **state)
{
    (void)state;
    ait_store *s = ait_store_new();
    assert_int_equal(put(s, mkobj("n", "p1", "1", "task-x"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "p2", "1", "task-x"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "p3", "1", "task-y,task-x"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "p4", "1", NULL), NULL), AIT_OK);
    /* The same UID twice in one object is indexed once. */
    assert_int_equal(put(s, mkobj("n", "p5", "1", "task-z,task-z"), NULL), AIT_OK);
    assert_owned(s, "task-x", "p1,p2,p3");
    assert_owned(s, "task-y", "p3");
    assert_owned(s, "task-z", "p5");
    assert_owned(s, "nobody", "");

    /* An update that changes owners moves the object in the index. */
    assert_int_equal(put(s, mkobj("n", "p2", "2", "task-y"), NULL), AIT_OK);
    assert_owned(s, "task-x", "p1,p3");
    assert_owned(s, "task-y", "p2,p3");
    /* Deletes leave the index. */
    assert_int_equal(ait_store_delete(s, "n/p3", NULL), 1);
    assert_owned(s, "task-x", "p1");
    assert_owned(s, "task-y", "p2");
    assert_int_equal(ait_store_delete(s, "n/p1", NULL), 1);
    assert_owned(s, "task-x", "");
    ait_store_free(s);
}

/* Keys and owner UIDs live inside each stored entry: updates with the same owners, many owners,
 * and a replace followed by updates and deletes keep the index and the reads right. */
static void test_entry_layout(void **state)
{
    (void)state;
    ait_store *s = ait_store_new();
    const char *many = "u0,u1,u2,u3,u4,u5,u6,u7,u8,u9,u10,u11,u3";
    assert_int_equal(put(s, mkobj("n", "m", "1", many), NULL), AIT_OK);
    assert_owned(s, "u0", "m");
    assert_owned(s, "u11", "m");
    for (int i = 2; i < 6; i++) {
        char rv[8], prev[8];
        snprintf(rv, sizeof(rv), "%d", i);
        snprintf(prev, sizeof(prev), "%d", i - 1);
        json_object *old = NULL;
        assert_int_equal(put(s, mkobj("n", "m", rv, many), &old), AIT_OK);
        assert_string_equal(rv_of(old), prev);
        json_object_put(old);
    }
    assert_owned(s, "u3", "m");
    json_object *got = ait_store_get(s, "n/m");
    assert_string_equal(rv_of(got), "5");
    assert_int_equal(json_object_array_length(ait_json_array(got, "metadata.ownerReferences")), 13);
    json_object_put(got);
    json_object *items[3] = {mkobj("n", "a", "1", "t"), mkobj("n", "b", "1", "t"),
                             mkobj(NULL, "c", "1", NULL)};
    assert_int_equal(ait_store_replace(s, items, 3, NULL, NULL), 3);
    for (int i = 0; i < 3; i++) {
        json_object_put(items[i]);
    }
    assert_owned(s, "u3", "");
    assert_owned(s, "t", "a,b");
    assert_int_equal(put(s, mkobj("n", "a", "2", "t"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "b", "2", "v"), NULL), AIT_OK);
    assert_owned(s, "t", "a");
    assert_owned(s, "v", "b");
    assert_int_equal(ait_store_delete(s, "n/a", NULL), 1);
    assert_owned(s, "t", "");
    got = ait_store_get(s, "c");
    assert_non_null(got);
    json_object_put(got);
    assert_int_equal(ait_store_len(s), 2);
    ait_store_free(s);
}

typedef struct deltas {
    char log[4096];
} deltas;

static void delta_cb(void *ctx, ait_store_delta kind, json_object *old_obj, json_object *new_obj)
{
    deltas *d = ctx;
    const char *k = kind == AIT_STORE_ADDED     ? "add"
                    : kind == AIT_STORE_UPDATED ? "update"
                                                : "delete";
    json_object *o = new_obj != NULL ? new_obj : old_obj;
    if (kind == AIT_STORE_ADDED) {
        assert_null(old_obj);
    }
    if (kind == AIT_STORE_DELETED) {
        assert_null(new_obj);
    }
    if (kind == AIT_STORE_UPDATED) {
        assert_string_not_equal(rv_of(old_obj), rv_of(new_obj));
    }
    /* Collected in sorted order later; each entry ends with ';'. */
    size_t len = strlen(d->log);
    snprintf(d->log + len, sizeof(d->log) - len, "%s:%s@%s;", k, ait_json_str(o, "metadata.name"),
             rv_of(o));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the ';'-separated entries in place so map order does not matter. */
static void sort_log(char *log)
{
    char *parts[64];
    size_t n = 0;
    char *save = NULL;
    char *copy = ait_strdup(log);
    for (char *p = strtok_r(copy, ";", &save); p != NULL && n < 64;
         p = strtok_r(NULL, ";", &save)) {
        parts[n++] = p;
    }
    qsort(parts, n, sizeof(char *), cmp_str);
    log[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(log + len, 4096 - len, "%s;", parts[i]);
    }
    ait_free(copy);
}

static void test_replace_diff(void **state)
{
    (void)state;
    ait_store *s = ait_store_new();
    assert_int_equal(put(s, mkobj("n", "keep", "1", "t1"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "change", "1", "t1"), NULL), AIT_OK);
    assert_int_equal(put(s, mkobj("n", "gone", "1", "t1"), NULL), AIT_OK);

    json_object *items[4];
    items[0] = mkobj("n", "keep", "1", "t1");
    items[1] = mkobj("n", "change", "7", "t2");
    items[2] = mkobj("n", "new", "8", "t1");
    items[3] = json_object_new_object(); /* no name: dropped */
    deltas d = {{0}};
    assert_int_equal(ait_store_replace(s, items, 4, delta_cb, &d), 3);
    for (int i = 0; i < 4; i++) {
        json_object_put(items[i]); /* borrowed by the store */
    }
    sort_log(d.log);
    assert_string_equal(d.log, "add:new@8;delete:gone@1;update:change@7;");
    assert_int_equal(ait_store_len(s), 3);
    assert_owned(s, "t1", "keep,new");
    assert_owned(s, "t2", "change");
    json_object *g = ait_store_get(s, "n/gone");
    assert_null(g);

    /* Replacing with nothing deletes everything. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(ait_store_replace(s, NULL, 0, delta_cb, &d), 0);
    sort_log(d.log);
    assert_string_equal(d.log, "delete:change@7;delete:keep@1;delete:new@8;");
    assert_owned(s, "t1", "");
    ait_store_free(s);
}

typedef struct reader_arg {
    ait_store *s;
    atomic_int *stop;
    long reads;
} reader_arg;

static void count_cb(void *ctx, const char *key, json_object *obj)
{
    (void)key;
    if (ait_json_str(obj, "metadata.name") != NULL) {
        (*(long *)ctx)++;
    }
}

static void *reader(void *p)
{
    reader_arg *a = p;
    /* At least one full read each, even when the scheduler (valgrind serialises threads) runs
     * the writer to its end first. */
    while (!atomic_load(a->stop) || a->reads == 0) {
        json_object *arr = ait_store_list_by_owner(a->s, "owner");
        json_object_put(arr);
        json_object *one = ait_store_get(a->s, "n/obj-3");
        json_object_put(one);
        long seen = 0;
        ait_store_visit(a->s, count_cb, &seen);
        a->reads++;
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    ait_store *s = ait_store_new();
    atomic_int stop = 0;
    pthread_t th[2];
    reader_arg args[2] = {{s, &stop, 0}, {s, &stop, 0}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    char name[32], rv[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "obj-%d", i % 50);
        snprintf(rv, sizeof(rv), "%d", i);
        assert_int_equal(put(s, mkobj("n", name, rv, "owner"), NULL), AIT_OK);
        if (i % 7 == 0) {
            snprintf(name, sizeof(name), "n/obj-%d", (i / 7) % 50);
            (void)ait_store_delete(s, name, NULL);
        }
        if (i % 1000 == 999) {
            json_object *items[2] = {mkobj("n", "obj-1", "x", "owner"),
                                     mkobj("n", "obj-3", "y", "owner")};
            (void)ait_store_replace(s, items, 2, NULL, NULL);
            json_object_put(items[0]);
            json_object_put(items[1]);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    assert_true(args[0].reads > 0 && args[1].reads > 0);
    /* The owner index matches the objects. */
    json_object *owned = ait_store_list_by_owner(s, "owner");
    assert_int_equal(json_object_array_length(owned), ait_store_len(s));
    json_object_put(owned);
    ait_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_put_get_delete),
        cmocka_unit_test(test_owner_index),  cmocka_unit_test(test_entry_layout),
        cmocka_unit_test(test_replace_diff), cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

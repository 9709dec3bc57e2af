/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the informer (kube/informer.h) through the REST client's transport seam: a
 * scripted in-memory transport answers the list requests and streams watch bodies exactly as the
 * API server frames them (NDJSON events, Status bodies on errors), so list-then-watch, 410
 * relists, re-watches, backoff and stopping are checked without a network. */
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
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/informer.h"
#include "kube/rest.h"

/* ---- the scripted transport ---- */

typedef struct watch_step {
    long status; /* 0 = no answer (connection refused) */
    char *body;
    int hold; /* after the body, keep the stream open until the next step is scripted */
} watch_step;

#define MAX_STEPS 32
#define MAX_URLS 256

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    long list_status[MAX_STEPS];
    char *list_body[MAX_STEPS];
    size_t nlists, list_pos;
    watch_step watches[MAX_STEPS];
    size_t nwatches, watch_pos;
    char *urls[MAX_URLS]; /* "LIST <url>" or "WATCH <url>" */
    size_t nurls;
    size_t chunk; /* bytes per on_data call */
} fake;

static void fake_record(fake *f, const char *kind, const char *url)
{
    if (f->nurls < MAX_URLS) {
        f->urls[f->nurls++] = ait_asprintf("%s %s", kind, url);
    }
}

static ait_status fake_do_request(void *ctx, const ait_http_request *req, ait_http_response *resp,
                                  ait_error *err)
{
    (void)err;
    fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    fake_record(f, "LIST", req->url);
    long status = 500;
    const char *body = "{\"kind\":\"Status\",\"code\":500,\"message\":\"no list scripted\"}";
    if (f->list_pos < f->nlists) {
        status = f->list_status[f->list_pos];
        body = f->list_body[f->list_pos];
        f->list_pos++;
    }
    resp->status = status;
    ait_status st = ait_buf_appends(&resp->body, body);
    pthread_mutex_unlock(&f->mu);
    return st;
}

/* Waits (under f->mu) until more than `have` watch steps are scripted, or cancel; returns 1
 * when cancelled. */
static int fake_wait(fake *f, size_t have, const volatile int *cancel)
{
    while (f->nwatches <= have) {
        /* The informer sets the flag with an atomic store; read it the same way. */
        if (__atomic_load_n(cancel, __ATOMIC_RELAXED)) {
            return 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cond, &f->mu, &ts);
    }
    return 0;
}

static ait_status fake_stream(void *ctx, const char *url, long timeout_ms, ait_stream_cb on_data,
                              void *cb_ctx, const volatile int *cancel, long *status_out,
                              ait_error *err)
{
    (void)timeout_ms;
    fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    fake_record(f, "WATCH", url);
    if (fake_wait(f, f->watch_pos, cancel)) {
        pthread_mutex_unlock(&f->mu);
        return ait_error_set(err, AIT_ERR_CANCELLED, "cancelled");
    }
    watch_step step = f->watches[f->watch_pos++];
    size_t chunk = f->chunk;
    pthread_mutex_unlock(&f->mu);
    if (step.status == 0) {
        return ait_error_set(err, AIT_ERR_IO, "connection refused (scripted)");
    }
    *status_out = step.status;
    size_t len = step.body != NULL ? strlen(step.body) : 0;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (on_data(cb_ctx, step.body + off, n) != 0) {
            return AIT_OK;
        }
    }
    if (step.hold) {
        pthread_mutex_lock(&f->mu);
        int cancelled = fake_wait(f, f->nwatches, cancel);
        pthread_mutex_unlock(&f->mu);
        if (cancelled) {
            return ait_error_set(err, AIT_ERR_CANCELLED, "cancelled");
        }
    }
    return AIT_OK;
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->chunk = 7; /* odd chunks: events arrive split mid-line */
}

static void fake_free(fake *f)
{
    for (size_t i = 0; i < f->nlists; i++) {
        ait_free(f->list_body[i]);
    }
    for (size_t i = 0; i < f->nwatches; i++) {
        ait_free(f->watches[i].body);
    }
    for (size_t i = 0; i < f->nurls; i++) {
        ait_free(f->urls[i]);
    }
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
}

static void push_list(fake *f, long status, const char *body)
{
    pthread_mutex_lock(&f->mu);
    assert_true(f->nlists < MAX_STEPS);
    f->list_status[f->nlists] = status;
    f->list_body[f->nlists] = ait_strdup(body);
    f->nlists++;
    pthread_mutex_unlock(&f->mu);
}

static void push_watch(fake *f, long status, const char *body, int hold)
{
    pthread_mutex_lock(&f->mu);
    assert_true(f->nwatches < MAX_STEPS);
    f->watches[f->nwatches].status = status;
    f->watches[f->nwatches].body = ait_strdup(body);
    f->watches[f->nwatches].hold = hold;
    f->nwatches++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Returns the i-th recorded URL of kind ("LIST"/"WATCH"), owned, or NULL. */
static char *url_of(fake *f, const char *kind, size_t i)
{
    char *out = NULL;
    pthread_mutex_lock(&f->mu);
    size_t seen = 0;
    for (size_t k = 0; k < f->nurls; k++) {
        if (strncmp(f->urls[k], kind, strlen(kind)) == 0 && f->urls[k][strlen(kind)] == ' ') {
            if (seen++ == i) {
                out = ait_strdup(f->urls[k]);
                break;
            }
        }
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}

/* ---- a clock whose monotonic time can jump ahead ---- */

static _Atomic int64_t clock_offset;

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return ait_time_now_ns() + atomic_load(&clock_offset);
}

static int64_t fake_mono(void *ctx)
{
    (void)ctx;
    return ait_time_mono_ns() + atomic_load(&clock_offset);
}

static const ait_clock fake_clock = {NULL, fake_now, fake_mono};

/* ---- handler log ---- */

typedef struct hlog {
    pthread_mutex_t mu;
    ait_buf log;
    int64_t waits[64];
    int nwaits;
} hlog;

static void hlog_add(hlog *h, const char *fmt, ...) AIT_PRINTF(2, 3);
static void hlog_add(hlog *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&h->mu);
    ait_status st = ait_buf_vappendf(&h->log, fmt, ap);
    pthread_mutex_unlock(&h->mu);
    va_end(ap);
    assert_int_equal(st, AIT_OK);
}

static const char *nm(json_object *o)
{
    return ait_json_str(o, "metadata.name");
}

static const char *rvof(json_object *o)
{
    return ait_json_str(o, "metadata.resourceVersion");
}

static void on_add(void *ctx, json_object *obj)
{
    hlog_add(ctx, "add:%s@%s;", nm(obj), rvof(obj));
}

static void on_update(void *ctx, json_object *old_obj, json_object *new_obj)
{
    hlog_add(ctx, "update:%s@%s>%s;", nm(new_obj), rvof(old_obj), rvof(new_obj));
}

static void on_delete(void *ctx, json_object *obj, int unknown)
{
    hlog_add(ctx, "delete:%s@%s%s;", nm(obj), rvof(obj), unknown ? ":unknown" : "");
}

static void on_backoff(void *ctx, int64_t wait_ns)
{
    hlog *h = ctx;
    pthread_mutex_lock(&h->mu);
    if (h->nwaits < 64) {
        h->waits[h->nwaits++] = wait_ns;
    }
    pthread_mutex_unlock(&h->mu);
}

static int hlog_has(hlog *h, const char *s)
{
    pthread_mutex_lock(&h->mu);
    int has = strstr(ait_buf_str(&h->log), s) != NULL;
    pthread_mutex_unlock(&h->mu);
    return has;
}

static int hlog_waits(hlog *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->nwaits;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* ---- fixture ---- */

typedef struct fixture {
    fake f;
    ait_transport tr;
    ait_kube_config cfg;
    ait_rest *rest;
    hlog h;
    ait_informer_options opts;
    ait_informer *inf;
} fixture;

static int setup(void **state)
{
    fixture *fx = ait_calloc(1, sizeof(*fx));
    fake_init(&fx->f);
    fx->tr.ctx = &fx->f;
    fx->tr.do_request = fake_do_request;
    fx->tr.stream = fake_stream;
    fx->cfg.server = "https://fake.invalid:6443";
    ait_rest_options ro = {.transport = &fx->tr};
    assert_int_equal(ait_rest_new(&fx->cfg, &ro, &fx->rest, NULL), AIT_OK);
    pthread_mutex_init(&fx->h.mu, NULL);
    ait_buf_init(&fx->h.log, 0);
    fx->opts.gvr = &AIT_GVR_CONFIGMAPS;
    fx->opts.ns = "n";
    fx->opts.handlers.ctx = &fx->h;
    fx->opts.handlers.on_add = on_add;
    fx->opts.handlers.on_update = on_update;
    fx->opts.handlers.on_delete = on_delete;
    fx->opts.on_backoff = on_backoff;
    fx->opts.on_backoff_ctx = &fx->h;
    fx->opts.backoff_initial_ms = 2;
    fx->opts.backoff_max_ms = 8;
    fx->opts.clock = &fake_clock;
    fx->opts.seed = 42;
    atomic_store(&clock_offset, 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    ait_informer_free(fx->inf);
    ait_rest_free(fx->rest);
    fake_free(&fx->f);
    ait_buf_free(&fx->h.log);
    pthread_mutex_destroy(&fx->h.mu);
    ait_free(fx);
    return 0;
}

static void start(fixture *fx)
{
    assert_int_equal(ait_informer_new(fx->rest, &fx->opts, &fx->inf, NULL), AIT_OK);
    assert_int_equal(ait_informer_start(fx->inf, NULL), AIT_OK);
}

static void sleep_ms(int ms)
{
    ait_time_sleep_ns((int64_t)ms * AIT_NS_PER_MS);
}

/* Polls until the handler log contains s (5 s at most). */
static void wait_log(fixture *fx, const char *s)
{
    for (int i = 0; i < 2500 && !hlog_has(&fx->h, s); i++) {
        sleep_ms(2);
    }
    if (!hlog_has(&fx->h, s)) {
        pthread_mutex_lock(&fx->h.mu);
        fprintf(stderr, "log: %s\nwanted: %s\n", ait_buf_str(&fx->h.log), s);
        pthread_mutex_unlock(&fx->h.mu);
        fail();
    }
}

/* Polls until the n-th watch (0-based) has been requested. */
static char *wait_watch(fixture *fx, size_t n)
{
    char *u = NULL;
    for (int i = 0; i < 2500 && (u = url_of(&fx->f, "WATCH", n)) == NULL; i++) {
        sleep_ms(2);
    }
    assert_non_null(u);
    return u;
}

static char *cm(const char *name, const char *rv, const char *extra)
{
    return ait_asprintf("{\"metadata\":{\"name\":\"%s\",\"namespace\":\"n\",\"resourceVersion\":"
                        "\"%s\"%s}}",
                        name, rv, extra != NULL ? extra : "");
}

static char *list_of(const char *rv, const char *items)
{
    return ait_asprintf("{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
                        "\"resourceVersion\":\"%s\"},\"items\":[%s]}",
                        rv, items);
}

static char *ev(const char *type, const char *obj)
{
    return ait_asprintf("{\"type\":\"%s\",\"object\":%s}\n", type, obj);
}

/* ---- tests ---- */

static void test_list_then_watch(void **state)
{
    fixture *fx = *state;
    fx->opts.label_selector = "app=x,tier in (a b)";
    char *a = cm("a", "1",
                 ",\"ownerReferences\":[{\"uid\":\"task-1\"}],\"managedFields\":[{\"manager\":"
                 "\"kubectl\"}]");
    char *b = cm("b", "2", NULL);
    char *items = ait_asprintf("%s,%s", a, b);
    char *list = list_of("10", items);
    push_list(&fx->f, 200, list);

    char *c = cm("c", "11", ",\"ownerReferences\":[{\"uid\":\"task-1\"}]");
    char *a2 = cm("a", "12", NULL);
    char *b3 = cm("b", "13", NULL);
    char *e1 = ev("ADDED", c), *e2 = ev("MODIFIED", a2), *e3 = ev("DELETED", b3);
    char *e4 = ev("BOOKMARK", "{\"kind\":\"ConfigMap\",\"metadata\":{\"resourceVersion\":\"20\"}}");
    char *body = ait_asprintf("%s%s%s%s", e1, e2, e3, e4);
    push_watch(&fx->f, 200, body, 1);
    start(fx);

    assert_int_equal(ait_informer_wait_for_sync(fx->inf, 5000), AIT_OK);
    assert_true(ait_informer_has_synced(fx->inf));
    wait_log(fx, "delete:b@13;");
    pthread_mutex_lock(&fx->h.mu);
    const char *log = ait_buf_str(&fx->h.log);
    /* The list's adds (any order), then the events in order. */
    assert_non_null(strstr(log, "add:a@1;"));
    assert_non_null(strstr(log, "add:b@2;"));
    assert_non_null(strstr(log, "add:c@11;update:a@1>12;delete:b@13;"));
    pthread_mutex_unlock(&fx->h.mu);

    /* Bookmark moves the resourceVersion. */
    char *rv = NULL;
    for (int i = 0; i < 500; i++) {
        ait_free(rv);
        rv = ait_informer_resource_version(fx->inf);
        if (rv != NULL && strcmp(rv, "20") == 0) {
            break;
        }
        sleep_ms(2);
    }
    assert_string_equal(rv, "20");
    ait_free(rv);

    /* The cache: a (updated, no managedFields, kind filled in), c; b gone. */
    assert_int_equal(ait_informer_len(fx->inf), 2);
    json_object *ga = ait_informer_get(fx->inf, "n", "a");
    assert_non_null(ga);
    assert_string_equal(rvof(ga), "12");
    json_object_put(ga);
    assert_null(ait_informer_get(fx->inf, "n", "b"));
    json_object *owned = ait_informer_list_by_owner(fx->inf, "task-1");
    /* a lost its owner in the update; c has it. */
    assert_int_equal(json_object_array_length(owned), 1);
    assert_string_equal(nm(json_object_array_get_idx(owned, 0)), "c");
    json_object_put(owned);

    /* Requests: the list with the encoded selector and page size, the watch from the list's
     * resourceVersion with bookmarks and a server timeout in 300..600. */
    char *lu = url_of(&fx->f, "LIST", 0);
    assert_non_null(lu);
    assert_non_null(strstr(lu, "/api/v1/namespaces/n/configmaps?"));
    assert_non_null(strstr(lu, "labelSelector=app%3Dx%2Ctier%20in%20%28a%20b%29"));
    assert_non_null(strstr(lu, "limit=500"));
    char *wu = wait_watch(fx, 0);
    assert_non_null(strstr(wu, "/api/v1/namespaces/n/configmaps?"));
    assert_non_null(strstr(wu, "watch=1"));
    assert_non_null(strstr(wu, "allowWatchBookmarks=true"));
    assert_non_null(strstr(wu, "resourceVersion=10"));
    assert_non_null(strstr(wu, "labelSelector=app%3Dx%2Ctier%20in%20%28a%20b%29"));
    const char *ts = strstr(wu, "timeoutSeconds=");
    assert_non_null(ts);
    long t = strtol(ts + strlen("timeoutSeconds="), NULL, 10);
    assert_true(t >= 300 && t <= 600);

    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.bookmarks, 1);
    assert_int_equal(st.relists_gone, 0);

    ait_free(lu);
    ait_free(wu);
    ait_free(a), ait_free(b), ait_free(items), ait_free(list), ait_free(c), ait_free(a2);
    ait_free(b3), ait_free(e1), ait_free(e2), ait_free(e3), ait_free(e4), ait_free(body);
}

static void drop_data(void *ctx, json_object *obj)
{
    (*(int *)ctx)++;
    json_object_object_del(obj, "data");
}

static void test_pruning(void **state)
{
    fixture *fx = *state;
    int calls = 0;
    fx->opts.transform = drop_data;
    fx->opts.transform_ctx = &calls;
    char *a = cm("a", "1", ",\"managedFields\":[{\"manager\":\"kubectl\"}]");
    /* A list item has data; the transform drops it, managedFields go by default. */
    char *item = ait_asprintf("{\"data\":{\"k\":\"v\"},%s", a + 1);
    char *list = list_of("5", item);
    push_list(&fx->f, 200, list);
    char *m = ait_asprintf("{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"data\":{\"k\":\"w\"},"
                           "\"metadata\":{\"name\":\"m\",\"namespace\":\"n\","
                           "\"resourceVersion\":\"6\",\"managedFields\":[{}]}}");
    char *e = ev("ADDED", m);
    push_watch(&fx->f, 200, e, 1);
    start(fx);
    wait_log(fx, "add:m@6;");
    json_object *ga = ait_informer_get(fx->inf, "n", "a");
    assert_non_null(ga);
    assert_null(ait_json_path(ga, "metadata.managedFields"));
    assert_null(ait_json_path(ga, "data"));
    assert_string_equal(ait_json_str(ga, "kind"), "ConfigMap");
    assert_string_equal(ait_json_str(ga, "apiVersion"), "v1");
    json_object_put(ga);
    json_object *gm = ait_informer_get(fx->inf, "n", "m");
    assert_null(ait_json_path(gm, "metadata.managedFields"));
    assert_null(ait_json_path(gm, "data"));
    json_object_put(gm);
    assert_int_equal(calls, 2);
    ait_free(a), ait_free(item), ait_free(list), ait_free(m), ait_free(e);
}

static void test_gone_event_relists(void **state)
{
    fixture *fx = *state;
    char *a = cm("a", "1", NULL), *b = cm("b", "2", NULL), *c = cm("c", "3", NULL);
    char *items = ait_asprintf("%s,%s,%s", a, b, c);
    char *l1 = list_of("10", items);
    push_list(&fx->f, 200, l1);
    /* a changes, then the watch expires: meanwhile b is deleted, c changed and d created. */
    char *a11 = cm("a", "11", NULL);
    char *e1 = ev("MODIFIED", a11);
    char *e2 = ev("ERROR", "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                           "\"message\":\"too old resource version: 10 (40)\",\"reason\":"
                           "\"Expired\",\"code\":410}");
    char *body = ait_asprintf("%s%s", e1, e2);
    push_watch(&fx->f, 200, body, 0);
    char *c2 = cm("c", "15", NULL), *d = cm("d", "16", NULL);
    char *items2 = ait_asprintf("%s,%s,%s", a11, c2, d);
    char *l2 = list_of("40", items2);
    push_list(&fx->f, 200, l2);
    push_watch(&fx->f, 200, "", 1);
    start(fx);

    wait_log(fx, "add:d@16;");
    char *wu = wait_watch(fx, 1);
    assert_non_null(strstr(wu, "resourceVersion=40"));
    ait_free(wu);
    assert_true(hlog_has(&fx->h, "update:a@1>11;"));
    assert_true(hlog_has(&fx->h, "delete:b@2:unknown;"));
    assert_true(hlog_has(&fx->h, "update:c@3>15;"));
    /* a did not change between the event and the relist: no second update. */
    assert_false(hlog_has(&fx->h, "update:a@11>11;"));
    assert_int_equal(ait_informer_len(fx->inf), 3);
    assert_null(ait_informer_get(fx->inf, "n", "b"));
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 2);
    assert_int_equal(st.relists_gone, 1);
    assert_int_equal(hlog_waits(&fx->h), 0); /* a 410 relists at once, without backoff */
    ait_free(a), ait_free(b), ait_free(c), ait_free(items), ait_free(l1), ait_free(a11);
    ait_free(e1), ait_free(e2), ait_free(body), ait_free(c2), ait_free(d), ait_free(items2);
    ait_free(l2);
}

static void test_http_410_relists(void **state)
{
    fixture *fx = *state;
    char *a = cm("a", "1", NULL);
    char *l1 = list_of("10", a);
    push_list(&fx->f, 200, l1);
    push_watch(&fx->f, 410,
               "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
               "\"too old resource version\",\"reason\":\"Expired\",\"code\":410}",
               0);
    char *l2 = list_of("50", "");
    push_list(&fx->f, 200, l2);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    wait_log(fx, "delete:a@1:unknown;");
    char *wu = wait_watch(fx, 1);
    assert_non_null(strstr(wu, "resourceVersion=50"));
    ait_free(wu);
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.relists_gone, 1);
    assert_int_equal(ait_informer_len(fx->inf), 0);
    ait_free(a), ait_free(l1), ait_free(l2);
}

static void test_rewatch_after_server_ends(void **state)
{
    fixture *fx = *state;
    char *l1 = list_of("10", "");
    push_list(&fx->f, 200, l1);
    char *x = cm("x", "11", NULL);
    char *e1 = ev("ADDED", x);
    push_watch(&fx->f, 200, e1, 0); /* the server ends the watch (its timeout) */
    char *e2 = ev("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"30\"}}");
    push_watch(&fx->f, 200, e2, 0);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *w1 = wait_watch(fx, 1);
    char *w2 = wait_watch(fx, 2);
    assert_non_null(strstr(w1, "resourceVersion=11"));
    assert_non_null(strstr(w2, "resourceVersion=30"));
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 1); /* re-watched, never relisted */
    assert_int_equal(st.watches, 3);
    assert_int_equal(hlog_waits(&fx->h), 0);
    assert_true(hlog_has(&fx->h, "add:x@11;"));
    ait_free(w1), ait_free(w2), ait_free(l1), ait_free(x), ait_free(e1), ait_free(e2);
}

static void test_backoff_doubles_and_resets(void **state)
{
    fixture *fx = *state;
    char *l1 = list_of("10", "");
    push_list(&fx->f, 200, l1);
    for (int i = 0; i < 4; i++) {
        push_watch(&fx->f, 0, NULL, 0); /* connection refused */
    }
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    ait_free(wait_watch(fx, 4));
    for (int i = 0; i < 500 && hlog_waits(&fx->h) < 4; i++) {
        sleep_ms(2);
    }
    pthread_mutex_lock(&fx->h.mu);
    assert_int_equal(fx->h.nwaits, 4);
    int64_t want[4] = {2, 4, 8, 8};
    for (int i = 0; i < 4; i++) {
        int64_t d = want[i] * AIT_NS_PER_MS;
        assert_true(fx->h.waits[i] >= d);
        assert_true(fx->h.waits[i] <= d + d / 4);
    }
    pthread_mutex_unlock(&fx->h.mu);
    /* Every retry watched again from the same resourceVersion, without a relist. */
    for (size_t i = 0; i < 5; i++) {
        char *u = url_of(&fx->f, "WATCH", i);
        assert_non_null(strstr(u, "resourceVersion=10"));
        ait_free(u);
    }
    /* Healthy for three (fake) minutes: the next failure starts again at the first step. */
    atomic_store(&clock_offset, 180 * AIT_NS_PER_S);
    push_watch(&fx->f, 0, NULL, 0);
    push_watch(&fx->f, 200, "", 1);
    ait_free(wait_watch(fx, 6));
    for (int i = 0; i < 500 && hlog_waits(&fx->h) < 5; i++) {
        sleep_ms(2);
    }
    pthread_mutex_lock(&fx->h.mu);
    assert_int_equal(fx->h.nwaits, 5);
    assert_true(fx->h.waits[4] >= 2 * AIT_NS_PER_MS &&
                fx->h.waits[4] <= 2 * AIT_NS_PER_MS + AIT_NS_PER_MS / 2);
    pthread_mutex_unlock(&fx->h.mu);
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.backoffs, 5);
    ait_free(l1);
}

static void test_garbage_rewatches_from_last_rv(void **state)
{
    fixture *fx = *state;
    char *l1 = list_of("10", "");
    push_list(&fx->f, 200, l1);
    char *x = cm("x", "11", NULL);
    char *e1 = ev("ADDED", x);
    char *body = ait_asprintf("%s{\"type\":\"ADDED\",\"object\":{\"metadata\":\n", e1);
    push_watch(&fx->f, 200, body, 1);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *w1 = wait_watch(fx, 1);
    assert_non_null(strstr(w1, "resourceVersion=11"));
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.lists, 1);
    assert_int_equal(hlog_waits(&fx->h), 1);
    assert_int_equal(ait_informer_len(fx->inf), 1);
    ait_free(w1), ait_free(l1), ait_free(x), ait_free(e1), ait_free(body);
}

static void test_error_event_relists_after_backoff(void **state)
{
    fixture *fx = *state;
    char *l1 = list_of("10", "");
    push_list(&fx->f, 200, l1);
    push_watch(&fx->f, 200,
               "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"message\":"
               "\"internal error\"}}\n",
               0);
    char *l2 = list_of("12", "");
    push_list(&fx->f, 200, l2);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *w1 = wait_watch(fx, 1);
    assert_non_null(strstr(w1, "resourceVersion=12"));
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 2);
    assert_int_equal(st.relists_gone, 0);
    assert_int_equal(hlog_waits(&fx->h), 1);
    ait_free(w1), ait_free(l1), ait_free(l2);
}

static void test_sync_timeout_and_quick_stop(void **state)
{
    fixture *fx = *state;
    /* Lists fail (500) and the backoff is long: never synced, and stop still returns at once. */
    fx->opts.backoff_initial_ms = 10000;
    fx->opts.backoff_max_ms = 10000;
    start(fx);
    assert_int_equal(ait_informer_wait_for_sync(fx->inf, 100), AIT_ERR_TIMEOUT);
    assert_false(ait_informer_has_synced(fx->inf));
    for (int i = 0; i < 500 && hlog_waits(&fx->h) < 1; i++) {
        sleep_ms(2);
    }
    int64_t t0 = ait_time_mono_ns();
    ait_informer_stop(fx->inf);
    int64_t dt = ait_time_mono_ns() - t0;
    assert_true(dt < AIT_NS_PER_S);
    assert_int_equal(ait_informer_wait_for_sync(fx->inf, 1000), AIT_ERR_CANCELLED);
    ait_informer_stop(fx->inf); /* idempotent */
}

static void test_stop_while_watching(void **state)
{
    fixture *fx = *state;
    char *l1 = list_of("10", "");
    push_list(&fx->f, 200, l1);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    assert_int_equal(ait_informer_wait_for_sync(fx->inf, 5000), AIT_OK);
    ait_free(wait_watch(fx, 0));
    int64_t t0 = ait_time_mono_ns();
    ait_informer_stop(fx->inf);
    assert_true(ait_time_mono_ns() - t0 < AIT_NS_PER_S);
    /* The cache stays readable after stop. */
    assert_int_equal(ait_informer_len(fx->inf), 0);
    ait_free(l1);
}

static void test_paged_list(void **state)
{
    fixture *fx = *state;
    fx->opts.page_size = 2;
    char *a = cm("a", "1", NULL), *b = cm("b", "2", NULL), *c = cm("c", "3", NULL);
    char *ab = ait_asprintf("%s,%s", a, b);
    /* Page 1 of the first attempt, then its continue token has expired (410): the list starts
     * over, and the second attempt's two pages make the snapshot at its first page's RV. */
    char *p1 = ait_asprintf("{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":"
                            "\"7\",\"continue\":\"tok-old\"},\"items\":[%s]}",
                            ab);
    push_list(&fx->f, 200, p1);
    push_list(&fx->f, 410,
              "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":"
              "\"continue token expired\"}");
    char *q1 = ait_asprintf("{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":"
                            "\"9\",\"continue\":\"tok-2\"},\"items\":[%s]}",
                            ab);
    push_list(&fx->f, 200, q1);
    char *q2 = ait_asprintf("{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":"
                            "\"9\"},\"items\":[%s]}",
                            c);
    push_list(&fx->f, 200, q2);
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *wu = wait_watch(fx, 0);
    assert_non_null(strstr(wu, "resourceVersion=9"));
    assert_int_equal(ait_informer_len(fx->inf), 3);
    char *l1 = url_of(&fx->f, "LIST", 1), *l3 = url_of(&fx->f, "LIST", 3);
    assert_non_null(strstr(l1, "continue=tok-old"));
    assert_non_null(strstr(l3, "continue=tok-2"));
    assert_non_null(strstr(l3, "limit=2"));
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 1);
    /* Each object was announced once, from the complete snapshot. */
    assert_true(hlog_has(&fx->h, "add:a@1;") && hlog_has(&fx->h, "add:c@3;"));
    pthread_mutex_lock(&fx->h.mu);
    const char *log = ait_buf_str(&fx->h.log);
    int adds = 0;
    for (const char *p = log; (p = strstr(p, "add:")) != NULL; p++) {
        adds++;
    }
    pthread_mutex_unlock(&fx->h.mu);
    assert_int_equal(adds, 3);
    ait_free(wu), ait_free(l1), ait_free(l3), ait_free(a), ait_free(b), ait_free(c);
    ait_free(ab), ait_free(p1), ait_free(q1), ait_free(q2);
}

/* List pages are decoded item by item: the members may come in any order and with whitespace,
 * strings may hold braces, brackets and escaped quotes, items that are not objects are skipped,
 * and an answer that is not a List (or is cut short) fails the list, which backs off and
 * retries. */
static void test_list_decoding(void **state)
{
    fixture *fx = *state;
    push_list(&fx->f, 200, "[1,2]");
    push_list(&fx->f, 200, "{\"items\":{\"a\":1},\"metadata\":{\"resourceVersion\":\"3\"}}");
    push_list(&fx->f, 200,
              "{\"metadata\":{\"resourceVersion\":\"3\"},\"items\":[{\"metadata\":{\"name\":\"x\"");
    push_list(&fx->f, 200, "{\"metadata\":{\"resourceVersion\":\"3\"},\"items\":[{}] x");
    push_list(&fx->f, 200,
              " {\n \"items\" : [ 7, {\"metadata\":{\"name\":\"q\\\"}]{\",\"namespace\":\"n\","
              "\"resourceVersion\":\"5\",\"labels\":{\"k\":\"[}\\\\\"}}} ,\n"
              "{\"metadata\":{\"name\":\"r\",\"namespace\":\"n\",\"resourceVersion\":\"6\"}} ] ,"
              " \"kind\":\"ConfigMapList\", \"metadata\" : {\"resourceVersion\":\"8\"} }\n");
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *wu = wait_watch(fx, 0);
    assert_non_null(strstr(wu, "resourceVersion=8"));
    assert_int_equal(ait_informer_len(fx->inf), 2);
    json_object *q = ait_informer_get(fx->inf, "n", "q\"}]{");
    assert_non_null(q);
    assert_string_equal(ait_json_str(q, "metadata.labels.k"), "[}\\");
    assert_string_equal(ait_json_str(q, "kind"), "ConfigMap");
    json_object_put(q);
    ait_informer_stats st;
    ait_informer_get_stats(fx->inf, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.errors, 4);
    assert_int_equal(hlog_waits(&fx->h), 4);
    ait_free(wu);
}

/* "items": null is an empty list. */
static void test_list_items_null(void **state)
{
    fixture *fx = *state;
    push_list(&fx->f, 200, "{\"metadata\":{\"resourceVersion\":\"4\"},\"items\":null}");
    push_watch(&fx->f, 200, "", 1);
    start(fx);
    char *wu = wait_watch(fx, 0);
    assert_non_null(strstr(wu, "resourceVersion=4"));
    assert_int_equal(ait_informer_len(fx->inf), 0);
    assert_int_equal(hlog_waits(&fx->h), 0);
    ait_free(wu);
}

static void test_invalid_options(void **state)
{
    fixture *fx = *state;
    ait_informer_options o = {.gvr = &AIT_GVR_NAMESPACES, .ns = "n"};
    ait_informer *inf = NULL;
    ait_error err = {0};
    assert_int_equal(ait_informer_new(fx->rest, &o, &inf, &err), AIT_ERR_INVALID);
    assert_null(inf);
    o.gvr = NULL;
    assert_int_equal(ait_informer_new(fx->rest, &o, &inf, &err), AIT_ERR_INVALID);
    ait_informer_free(NULL);
    /* Cluster-scoped without a namespace is fine, and its keys have no namespace. */
    o.gvr = &AIT_GVR_NAMESPACES;
    o.ns = NULL;
    assert_int_equal(ait_informer_new(fx->rest, &o, &inf, &err), AIT_OK);
    ait_informer_free(inf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_then_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pruning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_event_relists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_410_relists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewatch_after_server_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_doubles_and_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_rewatches_from_last_rv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_event_relists_after_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_timeout_and_quick_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_watching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paged_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_items_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

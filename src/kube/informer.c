/* SPDX-License-Identifier: Apache-2.0 */
/* The informer thread: list, replace the cache, then watch from the list's resourceVersion until
 * the watch ends, fails or expires. Invariant: the cache and resourceVersion only change on the
 * informer thread, so the cache always reflects a prefix of the server's event history at rv. */
#include "kube/informer.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "kube/watch.h"

#define DEFAULT_PAGE_SIZE 500
/* As the watch decoder: Kubernetes objects can nest deeper than json-c's default of 32. */
#define LIST_JSON_DEPTH 64
#define DEFAULT_BACKOFF_INITIAL_MS 800
#define DEFAULT_BACKOFF_MAX_MS 30000
#define DEFAULT_BACKOFF_RESET_MS 120000
#define DEFAULT_WATCH_MIN_S 300
#define DEFAULT_WATCH_MAX_S 600
/* A watch the server ends sooner than this without a single event is treated like a failure
 * (backoff), so a misbehaving server cannot drive a hot loop of re-watches. */
#define SHORT_WATCH_NS (AIT_NS_PER_S)

/* How one watch ended. */
typedef enum watch_outcome {
    WATCH_ENDED,        /* the server closed it: re-watch from rv */
    WATCH_GONE,         /* 410: relist */
    WATCH_CANCELLED,    /* stop requested */
    WATCH_DECODE_ERROR, /* garbage in the stream: back off, re-watch from rv */
    WATCH_CONN_ERROR,   /* no answer, 429/5xx: back off, re-watch from rv */
    WATCH_FAILED,       /* any other error (ERROR event, 403, 404...): back off, relist */
} watch_outcome;

struct ait_informer {
    ait_rest *rest;
    ait_gvr gvr;
    char *ns;
    char *label_selector;
    char *field_selector;
    int page_size;
    char *name;
    ait_informer_handlers handlers;
    int keep_managed_fields;
    ait_informer_transform_cb transform;
    void *transform_ctx;
    const ait_clock *clock;
    int64_t backoff_initial_ns;
    int64_t backoff_max_ns;
    int64_t backoff_reset_ns;
    ait_informer_backoff_cb on_backoff;
    void *on_backoff_ctx;
    int watch_min_s;
    int watch_max_s;

    ait_store *store;
    ait_watch_decoder *dec;
    pthread_t thread;
    int started;

    /* mu guards synced, stopped, rv_shared and stats, and pairs with cond for waits. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    volatile int cancel; /* read by the REST stream at least every 500 ms */
    int synced;
    char *rv_shared;
    ait_informer_stats stats;

    /* Informer thread only. */
    char *rv;
    uint64_t rng;
    int64_t backoff_cur_ns;
    int64_t backoff_last_ns; /* mono time the last backoff ended; 0 = never */
    watch_outcome outcome;
    int outcome_set;
    uint64_t watch_events;
    ait_error watch_err;
};

static uint64_t next_rand(ait_informer *inf)
{
    /* xorshift64*: jitter only, no security role. */
    uint64_t x = inf->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    inf->rng = x;
    return x * UINT64_C(2685821657736338717);
}

static int64_t mono_now(ait_informer *inf)
{
    return inf->clock->mono_ns(inf->clock->ctx);
}

static void stats_add(ait_informer *inf, uint64_t *field)
{
    pthread_mutex_lock(&inf->mu);
    (*field)++;
    pthread_mutex_unlock(&inf->mu);
}

static void set_rv(ait_informer *inf, const char *rv)
{
    if (rv == NULL || *rv == '\0' || (inf->rv != NULL && strcmp(inf->rv, rv) == 0)) {
        return;
    }
    ait_free(inf->rv);
    inf->rv = ait_strdup(rv);
    char *shared = ait_strdup(rv);
    pthread_mutex_lock(&inf->mu);
    char *old = inf->rv_shared;
    inf->rv_shared = shared;
    pthread_mutex_unlock(&inf->mu);
    ait_free(old);
}

static int is_cancelled(ait_informer *inf)
{
    return __atomic_load_n(&inf->cancel, __ATOMIC_RELAXED) != 0;
}

/* Waits until deadline on the real monotonic clock or until stop; returns 1 when stopped. */
static int wait_or_stop(ait_informer *inf, int64_t wait_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * AIT_NS_PER_S + ts.tv_nsec + wait_ns;
    ts.tv_sec = (time_t)(deadline / AIT_NS_PER_S);
    ts.tv_nsec = (long)(deadline % AIT_NS_PER_S);
    pthread_mutex_lock(&inf->mu);
    while (!inf->cancel) {
        if (pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) != 0) {
            break;
        }
    }
    int stopped = inf->cancel;
    pthread_mutex_unlock(&inf->mu);
    return stopped;
}

/* One backoff step (client-go's exponential backoff manager): reset after a quiet period, wait
 * the current delay plus up to 25 % jitter, double the delay up to the cap. */
static int backoff_wait(ait_informer *inf)
{
    int64_t now = mono_now(inf);
    if (inf->backoff_cur_ns == 0 ||
        (inf->backoff_last_ns != 0 && now - inf->backoff_last_ns >= inf->backoff_reset_ns)) {
        inf->backoff_cur_ns = inf->backoff_initial_ns;
    }
    int64_t d = inf->backoff_cur_ns;
    int64_t wait =
        d + (int64_t)((double)(next_rand(inf) >> 11) / 9007199254740992.0 * 0.25 * (double)d);
    inf->backoff_cur_ns = d * 2 > inf->backoff_max_ns ? inf->backoff_max_ns : d * 2;
    stats_add(inf, &inf->stats.backoffs);
    if (inf->on_backoff != NULL) {
        inf->on_backoff(inf->on_backoff_ctx, wait);
    }
    int stopped = wait_or_stop(inf, wait);
    inf->backoff_last_ns = mono_now(inf);
    return stopped;
}

/* Drops managedFields, fills kind/apiVersion (list items lack them), then the user transform. */
static void prepare(ait_informer *inf, json_object *obj)
{
    if (!inf->keep_managed_fields) {
        json_object *md = ait_json_path(obj, "metadata");
        if (json_object_is_type(md, json_type_object)) {
            json_object_object_del(md, "managedFields");
        }
    }
    if (ait_json_str(obj, "kind") == NULL && inf->gvr.kind != NULL) {
        json_object_object_add(obj, "kind", json_object_new_string(inf->gvr.kind));
    }
    if (ait_json_str(obj, "apiVersion") == NULL) {
        char *av = (inf->gvr.group == NULL || *inf->gvr.group == '\0')
                       ? ait_strdup(inf->gvr.version)
                       : ait_asprintf("%s/%s", inf->gvr.group, inf->gvr.version);
        json_object_object_add(obj, "apiVersion", json_object_new_string(av));
        ait_free(av);
    }
    if (inf->transform != NULL) {
        inf->transform(inf->transform_ctx, obj);
    }
}

static void delta_cb(void *ctx, ait_store_delta kind, json_object *old_obj, json_object *new_obj)
{
    ait_informer *inf = ctx;
    const ait_informer_handlers *h = &inf->handlers;
    switch (kind) {
    case AIT_STORE_ADDED:
        if (h->on_add != NULL) {
            h->on_add(h->ctx, new_obj);
        }
        break;
    case AIT_STORE_UPDATED:
        if (h->on_update != NULL) {
            h->on_update(h->ctx, old_obj, new_obj);
        }
        break;
    case AIT_STORE_DELETED:
        if (h->on_delete != NULL) {
            h->on_delete(h->ctx, old_obj, 1);
        }
        break;
    }
}

/* Appends "&key=<percent-encoded value>". */
static void append_param(ait_buf *q, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    ait_status st = ait_buf_appendf(q, "%s%s=", q->len > 0 ? "&" : "", key);
    for (const unsigned char *p = (const unsigned char *)value; st == AIT_OK && *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            st = ait_buf_append(q, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            st = ait_buf_append(q, enc, 3);
        }
    }
    ait_assert(st == AIT_OK); /* unbounded buffer */
}

/* Per list item: the informer's transform, then into the batch. */
static void add_item(void *ctx, json_object *item)
{
    void **c = ctx;
    if (json_object_is_type(item, json_type_object)) {
        prepare(c[0], item);
        (void)ait_store_batch_add(c[1], item); /* nameless items cannot be cached */
    }
}

/* Fetches one page of the list and adds its items to batch; *meta gets the page's metadata
 * (owned, may be NULL). */
static ait_status list_page(ait_informer *inf, const char *path, const char *cont,
                            ait_store_batch *batch, json_object **meta, ait_error *err)
{
    *meta = NULL;
    ait_buf q;
    ait_buf_init(&q, 0);
    if (inf->label_selector != NULL) {
        append_param(&q, "labelSelector", inf->label_selector);
    }
    if (inf->field_selector != NULL) {
        append_param(&q, "fieldSelector", inf->field_selector);
    }
    if (inf->page_size > 0) {
        char num[32];
        snprintf(num, sizeof(num), "%d", inf->page_size);
        append_param(&q, "limit", num);
    }
    if (cont != NULL) {
        append_param(&q, "continue", cont);
    }
    ait_buf body;
    ait_status st = ait_rest_get_text(inf->rest, path, ait_buf_str(&q), &body, err);
    ait_buf_free(&q);
    if (st == AIT_OK) {
        /* Item by item: memory holds one item's tree at a time rather than the page's (a json-c
         * tree takes ~20x its text: a page of 500 pods was ~40 MB). */
        void *ctx[2] = {inf, batch};
        st = ait_json_scan_list(body.data != NULL ? body.data : "", body.len, LIST_JSON_DEPTH,
                                add_item, ctx, meta);
        if (st != AIT_OK) {
            st = ait_error_set(err, AIT_ERR_PARSE, "GET %s: the answer is not a List", path);
        }
    }
    ait_buf_free(&body);
    return st;
}

/* Lists page by page (client-go's pager), turning each item into a cache entry as it is decoded
 * (one item's tree in memory at a time, plus the page's text); then swaps the cache in one step.
 * A continue token that expired (410) restarts the list once. */
static ait_status do_list(ait_informer *inf, ait_error *err)
{
    char *path = ait_rest_path(&inf->gvr, inf->ns, NULL, NULL);
    ait_store_batch *batch = ait_store_batch_new();
    char *rv = NULL;
    char *cont = NULL;
    int restarted = 0;
    ait_status st = AIT_OK;
    for (;;) {
        json_object *page = NULL; /* the page's metadata */
        st = list_page(inf, path, cont, batch, &page, err);
        if (st == AIT_ERR_GONE && cont != NULL && !restarted) {
            restarted = 1;
            ait_free(cont), ait_free(rv);
            cont = rv = NULL;
            ait_store_batch_free(batch);
            batch = ait_store_batch_new();
            continue;
        }
        if (st != AIT_OK) {
            break;
        }
        if (rv == NULL) {
            /* The first page's resourceVersion is the snapshot's. */
            rv = ait_strdup(ait_json_str(page, "resourceVersion"));
        }
        const char *next = ait_json_str(page, "continue");
        ait_free(cont);
        cont = (next != NULL && *next != '\0') ? ait_strdup(next) : NULL;
        json_object_put(page);
        if (cont == NULL) {
            break;
        }
        if (is_cancelled(inf)) {
            st = ait_error_set(err, AIT_ERR_CANCELLED, "stopped while listing");
            break;
        }
    }
    ait_free(cont);
    ait_free(path);
    if (st == AIT_OK && (rv == NULL || *rv == '\0')) {
        st = ait_error_set(err, AIT_ERR_PARSE, "list of %s without a resourceVersion",
                           inf->gvr.resource);
    }
    if (st != AIT_OK) {
        ait_store_batch_free(batch);
        ait_free(rv);
        return st;
    }
    (void)ait_store_replace_batch(inf->store, batch, delta_cb, inf);
    set_rv(inf, rv);
    AIT_LOG_INFO(2, "informer listed", "informer", inf->name, "resourceVersion", rv);
    ait_free(rv);
    pthread_mutex_lock(&inf->mu);
    inf->stats.lists++;
    if (!inf->synced) {
        inf->synced = 1;
        pthread_cond_broadcast(&inf->cond);
    }
    pthread_mutex_unlock(&inf->mu);
    return AIT_OK;
}

static void set_outcome(ait_informer *inf, watch_outcome o)
{
    if (!inf->outcome_set) {
        inf->outcome = o;
        inf->outcome_set = 1;
    }
}

static ait_status on_event(void *ctx, const ait_watch_event *ev)
{
    ait_informer *inf = ctx;
    const ait_informer_handlers *h = &inf->handlers;
    if (is_cancelled(inf)) {
        set_outcome(inf, WATCH_CANCELLED);
        return AIT_ERR_CANCELLED;
    }
    switch (ev->type) {
    case AIT_WATCH_ADDED:
    case AIT_WATCH_MODIFIED: {
        json_object *obj = json_object_get(ev->object);
        prepare(inf, obj);
        const char *rv = ait_json_str(obj, "metadata.resourceVersion");
        char *rv_copy = ait_strdup(rv);
        json_object *old = NULL;
        if (ait_store_put(inf->store, obj, &old) != AIT_OK) {
            json_object_put(obj);
            ait_free(rv_copy);
            ait_error_set(&inf->watch_err, AIT_ERR_PARSE, "watch %s event without a name",
                          ait_watch_event_type_str(ev->type));
            set_outcome(inf, WATCH_DECODE_ERROR);
            return AIT_ERR_PARSE;
        }
        if (old != NULL) {
            if (h->on_update != NULL) {
                h->on_update(h->ctx, old, obj);
            }
        } else if (h->on_add != NULL) {
            h->on_add(h->ctx, obj);
        }
        json_object_put(old);
        json_object_put(obj);
        set_rv(inf, rv_copy);
        ait_free(rv_copy);
        inf->watch_events++;
        stats_add(inf, &inf->stats.events);
        return AIT_OK;
    }
    case AIT_WATCH_DELETED: {
        json_object *obj = json_object_get(ev->object);
        prepare(inf, obj);
        char *key = ait_store_key_of(obj);
        if (key == NULL) {
            json_object_put(obj);
            ait_error_set(&inf->watch_err, AIT_ERR_PARSE, "watch DELETED event without a name");
            set_outcome(inf, WATCH_DECODE_ERROR);
            return AIT_ERR_PARSE;
        }
        (void)ait_store_delete(inf->store, key, NULL);
        ait_free(key);
        if (h->on_delete != NULL) {
            h->on_delete(h->ctx, obj, 0);
        }
        set_rv(inf, ait_json_str(obj, "metadata.resourceVersion"));
        json_object_put(obj);
        inf->watch_events++;
        stats_add(inf, &inf->stats.events);
        return AIT_OK;
    }
    case AIT_WATCH_BOOKMARK:
        set_rv(inf, ait_json_str(ev->object, "metadata.resourceVersion"));
        inf->watch_events++;
        stats_add(inf, &inf->stats.bookmarks);
        return AIT_OK;
    case AIT_WATCH_ERROR: {
        ait_status st = ait_watch_error_status(ev->object, &inf->watch_err);
        set_outcome(inf, st == AIT_ERR_GONE ? WATCH_GONE : WATCH_FAILED);
        return st;
    }
    }
    return AIT_ERR_INTERNAL;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    ait_informer *inf = ctx;
    ait_error err = {0};
    ait_status st = ait_watch_decoder_feed(inf->dec, data, len, on_event, inf, &err);
    if (st == AIT_OK) {
        return is_cancelled(inf);
    }
    if (!inf->outcome_set) {
        inf->watch_err = err;
        set_outcome(inf, WATCH_DECODE_ERROR);
    }
    return 1;
}

static watch_outcome do_watch(ait_informer *inf, ait_error *err)
{
    ait_buf q;
    ait_buf_init(&q, 0);
    int span = inf->watch_max_s - inf->watch_min_s + 1;
    int timeout = inf->watch_min_s + (int)(next_rand(inf) % (uint64_t)span);
    char num[32];
    append_param(&q, "watch", "1");
    append_param(&q, "allowWatchBookmarks", "true");
    append_param(&q, "resourceVersion", inf->rv);
    snprintf(num, sizeof(num), "%d", timeout);
    append_param(&q, "timeoutSeconds", num);
    if (inf->label_selector != NULL) {
        append_param(&q, "labelSelector", inf->label_selector);
    }
    if (inf->field_selector != NULL) {
        append_param(&q, "fieldSelector", inf->field_selector);
    }
    char *path = ait_rest_path(&inf->gvr, inf->ns, NULL, NULL);

    ait_watch_decoder_reset(inf->dec);
    inf->outcome_set = 0;
    inf->watch_events = 0;
    ait_error_clear(&inf->watch_err);
    stats_add(inf, &inf->stats.watches);
    int64_t t0 = mono_now(inf);
    long http_status = 0;
    ait_error serr = {0};
    ait_status st = ait_rest_stream(inf->rest, path, ait_buf_str(&q), on_data, inf, &inf->cancel,
                                    &http_status, &serr);
    ait_free(path);
    ait_buf_free(&q);

    watch_outcome o;
    if (is_cancelled(inf)) {
        o = WATCH_CANCELLED;
    } else if (inf->outcome_set) {
        o = inf->outcome;
        *err = inf->watch_err;
    } else if (st == AIT_ERR_GONE || http_status == 410) {
        *err = serr;
        o = WATCH_GONE;
    } else if (st == AIT_OK) {
        o = WATCH_ENDED;
        if (inf->watch_events == 0 && mono_now(inf) - t0 < SHORT_WATCH_NS) {
            ait_error_set(err, AIT_ERR_RETRY, "watch ended at once without events");
            o = WATCH_CONN_ERROR;
        }
    } else if (ait_status_retryable(st)) {
        *err = serr;
        o = WATCH_CONN_ERROR;
    } else {
        *err = serr;
        o = WATCH_FAILED;
    }
    return o;
}

static void *informer_main(void *arg)
{
    ait_informer *inf = arg;
    int need_list = 1;
    while (!is_cancelled(inf)) {
        ait_error err = {0};
        if (need_list) {
            ait_status st = do_list(inf, &err);
            if (st != AIT_OK) {
                if (is_cancelled(inf)) {
                    break;
                }
                stats_add(inf, &inf->stats.errors);
                AIT_LOG_ERROR(err.msg, "informer list failed", "informer", inf->name);
                if (backoff_wait(inf)) {
                    break;
                }
                continue;
            }
            need_list = 0;
        }
        watch_outcome o = do_watch(inf, &err);
        switch (o) {
        case WATCH_CANCELLED:
            break;
        case WATCH_ENDED:
            AIT_LOG_INFO(4, "informer watch ended; watching again", "informer", inf->name,
                         "resourceVersion", inf->rv);
            break;
        case WATCH_GONE:
            AIT_LOG_INFO(1, "informer watch expired (410); relisting", "informer", inf->name,
                         "resourceVersion", inf->rv);
            stats_add(inf, &inf->stats.relists_gone);
            need_list = 1;
            break;
        case WATCH_DECODE_ERROR:
        case WATCH_CONN_ERROR:
        case WATCH_FAILED:
            stats_add(inf, &inf->stats.errors);
            AIT_LOG_ERROR(err.msg,
                          o == WATCH_FAILED ? "informer watch failed; relisting"
                                            : "informer watch broken; watching again",
                          "informer", inf->name, "resourceVersion", inf->rv);
            need_list = o == WATCH_FAILED;
            if (backoff_wait(inf)) {
                return NULL;
            }
            break;
        }
    }
    return NULL;
}

ait_status ait_informer_new(ait_rest *rest, const ait_informer_options *opts, ait_informer **out,
                            ait_error *err)
{
    *out = NULL;
    if (rest == NULL || opts == NULL || opts->gvr == NULL || opts->gvr->resource == NULL ||
        opts->gvr->version == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "informer needs a REST client and a resource");
    }
    int has_ns = opts->ns != NULL && *opts->ns != '\0';
    if (has_ns && !opts->gvr->namespaced) {
        return ait_error_set(err, AIT_ERR_INVALID, "%s is cluster-scoped: no namespace allowed",
                             opts->gvr->resource);
    }
    ait_informer *inf = ait_calloc(1, sizeof(*inf));
    inf->rest = rest;
    inf->gvr = *opts->gvr;
    inf->ns = has_ns ? ait_strdup(opts->ns) : NULL;
    inf->label_selector = (opts->label_selector != NULL && *opts->label_selector != '\0')
                              ? ait_strdup(opts->label_selector)
                              : NULL;
    inf->field_selector = (opts->field_selector != NULL && *opts->field_selector != '\0')
                              ? ait_strdup(opts->field_selector)
                              : NULL;
    inf->page_size = opts->page_size == 0  ? DEFAULT_PAGE_SIZE
                     : opts->page_size < 0 ? 0
                                           : opts->page_size;
    inf->name = ait_strdup(opts->name != NULL ? opts->name : opts->gvr->resource);
    inf->handlers = opts->handlers;
    inf->keep_managed_fields = opts->keep_managed_fields;
    inf->transform = opts->transform;
    inf->transform_ctx = opts->transform_ctx;
    inf->clock = opts->clock != NULL ? opts->clock : ait_clock_system();
    inf->backoff_initial_ns =
        (opts->backoff_initial_ms > 0 ? opts->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS) *
        AIT_NS_PER_MS;
    inf->backoff_max_ns =
        (opts->backoff_max_ms > 0 ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS) * AIT_NS_PER_MS;
    if (inf->backoff_max_ns < inf->backoff_initial_ns) {
        inf->backoff_max_ns = inf->backoff_initial_ns;
    }
    inf->backoff_reset_ns =
        (opts->backoff_reset_ms > 0 ? opts->backoff_reset_ms : DEFAULT_BACKOFF_RESET_MS) *
        AIT_NS_PER_MS;
    inf->on_backoff = opts->on_backoff;
    inf->on_backoff_ctx = opts->on_backoff_ctx;
    inf->watch_min_s =
        opts->watch_timeout_min_s > 0 ? opts->watch_timeout_min_s : DEFAULT_WATCH_MIN_S;
    inf->watch_max_s =
        opts->watch_timeout_max_s > 0 ? opts->watch_timeout_max_s : DEFAULT_WATCH_MAX_S;
    if (inf->watch_max_s < inf->watch_min_s) {
        inf->watch_max_s = inf->watch_min_s;
    }
    inf->rng =
        opts->seed != 0 ? opts->seed : (uint64_t)ait_time_mono_ns() ^ (uint64_t)(uintptr_t)inf;
    if (inf->rng == 0) {
        inf->rng = 0x9e3779b97f4a7c15ULL;
    }
    inf->store = ait_store_new();
    inf->dec = ait_watch_decoder_new(opts->max_line);
    pthread_mutex_init(&inf->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = inf;
    return AIT_OK;
}

ait_status ait_informer_start(ait_informer *inf, ait_error *err)
{
    if (inf->started) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "informer %s already started", inf->name);
    }
    int rc = pthread_create(&inf->thread, NULL, informer_main, inf);
    if (rc != 0) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "informer %s: cannot start thread (%d)",
                             inf->name, rc);
    }
    inf->started = 1;
    return AIT_OK;
}

void ait_informer_stop(ait_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    __atomic_store_n(&inf->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
    if (inf->started) {
        pthread_join(inf->thread, NULL);
        inf->started = 0;
    }
}

void ait_informer_free(ait_informer *inf)
{
    if (inf == NULL) {
        return;
    }
    ait_informer_stop(inf);
    ait_store_free(inf->store);
    ait_watch_decoder_free(inf->dec);
    pthread_mutex_destroy(&inf->mu);
    pthread_cond_destroy(&inf->cond);
    ait_free(inf->ns);
    ait_free(inf->label_selector);
    ait_free(inf->field_selector);
    ait_free(inf->name);
    ait_free(inf->rv);
    ait_free(inf->rv_shared);
    ait_free(inf);
}

int ait_informer_has_synced(ait_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    int s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

ait_status ait_informer_wait_for_sync(ait_informer *inf, int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * AIT_NS_PER_S + ts.tv_nsec + timeout_ms * AIT_NS_PER_MS;
    ts.tv_sec = (time_t)(deadline / AIT_NS_PER_S);
    ts.tv_nsec = (long)(deadline % AIT_NS_PER_S);
    ait_status st = AIT_OK;
    pthread_mutex_lock(&inf->mu);
    while (!inf->synced) {
        if (inf->cancel) {
            st = AIT_ERR_CANCELLED;
            break;
        }
        int rc = timeout_ms < 0 ? pthread_cond_wait(&inf->cond, &inf->mu)
                                : pthread_cond_timedwait(&inf->cond, &inf->mu, &ts);
        if (rc != 0 && !inf->synced) {
            st = AIT_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&inf->mu);
    return st;
}

json_object *ait_informer_get(ait_informer *inf, const char *ns, const char *name)
{
    char *key = (ns != NULL && *ns != '\0') ? ait_asprintf("%s/%s", ns, name) : ait_strdup(name);
    json_object *o = ait_store_get(inf->store, key);
    ait_free(key);
    return o;
}

json_object *ait_informer_list(ait_informer *inf)
{
    return ait_store_list(inf->store);
}

json_object *ait_informer_list_by_owner(ait_informer *inf, const char *uid)
{
    return ait_store_list_by_owner(inf->store, uid);
}

size_t ait_informer_len(ait_informer *inf)
{
    return ait_store_len(inf->store);
}

ait_store *ait_informer_store(ait_informer *inf)
{
    return inf->store;
}

char *ait_informer_resource_version(ait_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    char *rv = ait_strdup(inf->rv_shared);
    pthread_mutex_unlock(&inf->mu);
    return rv;
}

void ait_informer_get_stats(ait_informer *inf, ait_informer_stats *out)
{
    pthread_mutex_lock(&inf->mu);
    *out = inf->stats;
    pthread_mutex_unlock(&inf->mu);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Manager: builds and runs the daemon's parts; see manager.h. The reconcile workers run only
 * while this replica leads; losing the lease ends the process (like controller-runtime), since
 * another replica already acts and the pod will be restarted as a candidate. */
#include "manager.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/aitask.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "kube/config.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/leader.h"
#include "kube/rest.h"
#include "kube/workqueue.h"
#include "metrics/http.h"
#include "metrics/registry.h"
#include "metrics/std.h"
#include "reconcile/auditor.h"
#include "reconcile/config.h"
#include "reconcile/healer.h"
#include "reconcile/pod.h"
#include "reconcile/reconciler.h"
#include "reconcile/secrets.h"
#include "trace/trace.h"

#define CONTROLLER_NAME "aitask"
#define MAX_WORKERS 256

struct ait_manager {
    ait_options opts;
    ait_controller_config *config;
    ait_kube_config *kcfg;
    ait_rest *rest;
    ait_metrics *registry;
    ait_metrics_std *m;
    ait_metrics_http *http;
    ait_workqueue *queue;
    ait_events *events;
    ait_informer *tasks;
    ait_informer *pods;
    ait_informer *configmaps;
    ait_reconciler *reconciler;
    ait_auditor *auditor; /* NULL without an audit section */
    ait_healer *healer;   /* NULL without providers: healing disabled */
    ait_secrets *secrets; /* Vault (task secretRefs, provider keys) */
    ait_tracer *tracer;   /* OTLP export; disabled without OTEL_EXPORTER_OTLP_*ENDPOINT */
    ait_admission *admission;
    /* Non-terminal owned pods, maintained by the pods informer's handlers (the admission
     * module's running count): running_pods maps "ns/name" -> ns, ns_counts ns -> count. */
    pthread_mutex_t pods_mu;
    json_object *running_pods;
    json_object *ns_counts;
    ait_leader *leader;
    pthread_t workers[MAX_WORKERS];
    int n_workers;
    atomic_int started;
    atomic_int lost_leadership;
    atomic_int stopping;
    _Atomic int64_t last_trim_ns; /* monotonic time of the last malloc_trim */
    pthread_t starter;
    atomic_int starter_running;
    ait_rest *lease_rest; /* short timeouts: a renewal must fail before the renew deadline */
    char identity[256];
    char host[128];
};

/* ---- seams: metrics ---- */

static void trace_drop(void *ctx, uint64_t n)
{
    ait_manager *m = ctx;
    ait_metric_add(ait_metric_family_with(m->m->trace_spans_dropped_total), (double)n);
}

/* The logger's context hook: every line inside a span carries its ids. */
static void log_context(char *trace_id, char *span_id)
{
    const ait_span_ctx *c = ait_trace_current();
    if (c != NULL && c->trace_id[0] != '\0') {
        memcpy(trace_id, c->trace_id, 33);
        memcpy(span_id, c->span_id, 17);
    }
}

static void rest_observe(void *ctx, const char *verb, long code, int64_t latency_ns)
{
    ait_manager *m = ctx;
    const ait_span_ctx *cur = ait_trace_current();
    if (m->tracer != NULL && cur != NULL && cur->trace_id[0] != '\0') {
        /* A client span per API request made inside a reconcile (after the fact: the REST
         * client reports the latency when the request is done). */
        char name[32];
        snprintf(name, sizeof(name), "kube %s", verb);
        ait_span *sp = ait_span_start(m->tracer, name, AIT_SPAN_KIND_CLIENT, cur);
        ait_span_set_attr_str(sp, "http.request.method", verb);
        ait_span_set_attr_int(sp, "http.response.status_code", code);
        if (code == 0 || code >= 400) {
            ait_span_set_error(sp, code ? "HTTP error" : "no answer");
        }
        int64_t now = ait_time_now_ns();
        ait_span_end_at(sp, now - latency_ns, now);
    }
    char c[16];
    snprintf(c, sizeof(c), "%ld", code);
    ait_metric_inc(ait_metric_family_with(m->m->rest_client_requests_total, code ? c : "<error>",
                                          verb, m->host));
    ait_metric_observe(
        ait_metric_family_with(m->m->rest_client_request_duration_seconds, verb, m->host),
        (double)latency_ns / 1e9);
}

static void wq_depth(void *ctx, const char *q, int64_t depth)
{
    ait_manager *m = ctx;
    ait_metric_set(ait_metric_family_with(m->m->workqueue_depth, q), (double)depth);
}

static void wq_add(void *ctx, const char *q)
{
    ait_manager *m = ctx;
    ait_metric_inc(ait_metric_family_with(m->m->workqueue_adds_total, q));
}

static void wq_latency(void *ctx, const char *q, int64_t ns)
{
    ait_manager *m = ctx;
    ait_metric_observe(ait_metric_family_with(m->m->workqueue_queue_duration_seconds, q),
                       (double)ns / 1e9);
}

static void wq_work(void *ctx, const char *q, int64_t ns)
{
    ait_manager *m = ctx;
    ait_metric_observe(ait_metric_family_with(m->m->workqueue_work_duration_seconds, q),
                       (double)ns / 1e9);
}

static void wq_retry(void *ctx, const char *q)
{
    ait_manager *m = ctx;
    ait_metric_inc(ait_metric_family_with(m->m->workqueue_retries_total, q));
}

/* ---- seams: reconciler ---- */

static json_object *cache_get(void *ctx, ait_cache_kind kind, const char *ns, const char *name)
{
    ait_manager *m = ctx;
    ait_informer *inf = kind == AIT_CACHE_TASK  ? m->tasks
                        : kind == AIT_CACHE_POD ? m->pods
                                                : m->configmaps;
    return ait_informer_get(inf, ns, name);
}

static void emit_event(void *ctx, json_object *task, const char *type, const char *reason,
                       const char *action, const char *note)
{
    ait_manager *m = ctx;
    ait_object_ref ref = {
        .api_version = AIT_API_VERSION,
        .kind = AIT_API_KIND,
        .namespace_ = ait_obj_namespace(task),
        .name = ait_obj_name(task),
        .uid = ait_obj_uid(task),
        .resource_version = ait_obj_resource_version(task),
    };
    ait_events_emit(m->events, &ref, type, reason, action, note);
}

static void queue_add(void *ctx, const char *key)
{
    ait_workqueue_add(((ait_manager *)ctx)->queue, key);
}

static void queue_add_after(void *ctx, const char *key, int64_t delay_ns)
{
    ait_workqueue_add_after(((ait_manager *)ctx)->queue, key, delay_ns);
}

static ait_status record_heal(void *ctx, const ait_heal_job *job, const ait_heal_result *res,
                              int64_t *seq, ait_error *err)
{
    return ait_auditor_record_heal(ctx, job, res, seq, err);
}

/* ---- informer handlers: map every object to its AITask's key ---- */

static void enqueue_obj(ait_manager *m, json_object *obj)
{
    const char *ns = ait_obj_namespace(obj);
    const char *name = ait_obj_name(obj);
    if (ns == NULL || name == NULL) {
        return;
    }
    char *key = ait_asprintf("%s/%s", ns, name);
    ait_workqueue_add(m->queue, key);
    ait_free(key);
}

static void enqueue_owner(ait_manager *m, json_object *obj)
{
    json_object *refs = ait_json_array(obj, "metadata.ownerReferences");
    size_t n = refs ? json_object_array_length(refs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(refs, i);
        const char *kind = ait_json_str(r, "kind");
        const char *api = ait_json_str(r, "apiVersion");
        if (ait_json_bool(r, "controller", 0) && kind != NULL && strcmp(kind, AIT_API_KIND) == 0 &&
            api != NULL && strncmp(api, AIT_API_GROUP "/", strlen(AIT_API_GROUP) + 1) == 0) {
            char *key = ait_asprintf("%s/%s", ait_obj_namespace(obj), ait_json_str(r, "name"));
            ait_workqueue_add(m->queue, key);
            ait_free(key);
        }
    }
}

static void task_add(void *ctx, json_object *obj)
{
    enqueue_obj(ctx, obj);
}

static void task_update(void *ctx, json_object *old_obj, json_object *new_obj)
{
    (void)old_obj;
    enqueue_obj(ctx, new_obj);
}

static void task_delete(void *ctx, json_object *obj, int unknown)
{
    (void)unknown;
    ait_manager *m = ctx;
    if (m->admission != NULL && ait_obj_namespace(obj) != NULL && ait_obj_name(obj) != NULL) {
        ait_admission_forget(m->admission, ait_obj_namespace(obj), ait_obj_name(obj));
    }
    enqueue_obj(ctx, obj);
}

static void owned_add(void *ctx, json_object *obj)
{
    enqueue_owner(ctx, obj);
}

static void owned_update(void *ctx, json_object *old_obj, json_object *new_obj)
{
    (void)old_obj;
    enqueue_owner(ctx, new_obj);
}

static void owned_delete(void *ctx, json_object *obj, int unknown)
{
    (void)unknown;
    enqueue_owner(ctx, obj);
}

static int pod_running(json_object *pod)
{
    const char *phase = ait_json_str(pod, "status.phase");
    return !ait_obj_deleting(pod) &&
           !(phase != NULL && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0));
}

/* Keeps the running-pod counters in step with the pods cache; kicks admission when a slot
 * frees. */
static void pod_track(ait_manager *m, json_object *pod, int present)
{
    const char *ns = ait_obj_namespace(pod);
    const char *name = ait_obj_name(pod);
    if (ns == NULL || name == NULL) {
        return;
    }
    char *key = ait_asprintf("%s/%s", ns, name);
    int running = present && pod_running(pod);
    int freed = 0;
    pthread_mutex_lock(&m->pods_mu);
    int was = json_object_object_get_ex(m->running_pods, key, NULL);
    if (running != was) {
        json_object *cnt = NULL;
        int64_t c =
            json_object_object_get_ex(m->ns_counts, ns, &cnt) ? json_object_get_int64(cnt) : 0;
        c += running ? 1 : -1;
        if (running) {
            json_object_object_add(m->running_pods, key, NULL);
        } else {
            json_object_object_del(m->running_pods, key);
            freed = 1;
        }
        if (c > 0) {
            json_object_object_add(m->ns_counts, ns, json_object_new_int64(c));
        } else {
            json_object_object_del(m->ns_counts, ns);
        }
    }
    pthread_mutex_unlock(&m->pods_mu);
    ait_free(key);
    if (freed && m->admission != NULL) {
        ait_admission_kick(m->admission);
    }
}

static void pod_add(void *ctx, json_object *obj)
{
    pod_track(ctx, obj, 1);
    enqueue_owner(ctx, obj);
}

static void pod_update(void *ctx, json_object *old_obj, json_object *new_obj)
{
    (void)old_obj;
    pod_track(ctx, new_obj, 1);
    enqueue_owner(ctx, new_obj);
}

static void pod_delete(void *ctx, json_object *obj, int unknown)
{
    (void)unknown;
    pod_track(ctx, obj, 0);
    enqueue_owner(ctx, obj);
}

static size_t adm_running(void *ctx, const char *ns)
{
    ait_manager *m = ctx;
    size_t n;
    pthread_mutex_lock(&m->pods_mu);
    if (ns == NULL) {
        n = (size_t)json_object_object_length(m->running_pods);
    } else {
        json_object *cnt = NULL;
        n = json_object_object_get_ex(m->ns_counts, ns, &cnt) ? (size_t)json_object_get_int64(cnt)
                                                              : 0;
    }
    pthread_mutex_unlock(&m->pods_mu);
    return n;
}

static int adm_pod_seen(void *ctx, const char *ns, const char *pod_name)
{
    ait_manager *m = ctx;
    json_object *p = ait_informer_get(m->pods, ns, pod_name);
    json_object_put(p);
    return p != NULL;
}

static void adm_requeue(void *ctx, const char *ns, const char *name)
{
    ait_manager *m = ctx;
    char *key = ait_asprintf("%s/%s", ns, name);
    ait_workqueue_add(m->queue, key);
    ait_free(key);
}

/* Of an owned object's metadata the cache keeps what the reconciler and the handlers read: name,
 * namespace, uid, resourceVersion, deletionTimestamp, finalizers and the ownerReferences'
 * apiVersion, kind, name, uid and controller. Labels (the informers select on them server-side),
 * annotations, timestamps and generation are read by nobody (SPEC.md §9 memory targets). */
static void prune_owned_metadata(json_object *obj)
{
    json_object *meta = ait_json_path(obj, "metadata");
    if (!json_object_is_type(meta, json_type_object)) {
        return;
    }
    static const char *const drop[] = {"annotations", "labels", "creationTimestamp", "generation",
                                       "generateName"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
        json_object_object_del(meta, drop[i]);
    }
    json_object *refs = ait_json_array(meta, "ownerReferences");
    for (size_t i = 0; refs != NULL && i < json_object_array_length(refs); i++) {
        json_object *r = json_object_array_get_idx(refs, i);
        if (json_object_is_type(r, json_type_object)) {
            json_object_object_del(r, "blockOwnerDeletion");
        }
    }
}

/* AITasks are cached whole (the reconciler reads spec, status and metadata) but for kubectl's
 * last-applied-configuration annotation: a second copy of the spec (code included) that nobody
 * reads. Status writes go to the status subresource, where the API server keeps the stored
 * metadata, so the annotation is not lost on the server. */
static void prune_task(void *ctx, json_object *obj)
{
    (void)ctx;
    json_object *ann = ait_json_path(obj, "metadata.annotations");
    if (!json_object_is_type(ann, json_type_object)) {
        return;
    }
    json_object_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
    if (json_object_object_length(ann) == 0) {
        json_object_object_del(ait_json_path(obj, "metadata"), "annotations");
    }
}

/* Pods are cached without their spec: the reconciler reads metadata and status only, and the
 * spec is most of a pod's size (SPEC.md §9 memory targets). */
static void prune_pod(void *ctx, json_object *obj)
{
    (void)ctx;
    json_object_object_del(obj, "spec");
    prune_owned_metadata(obj);
    /* Of the status only what the reconciler and the admission count read: the phase, the
     * pod's reason and message, and each container's name and state. */
    json_object *st = ait_json_path(obj, "status");
    if (json_object_is_type(st, json_type_object)) {
        json_object *keep = json_object_new_object();
        static const char *const fields[] = {"phase", "reason", "message"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            json_object *v = NULL;
            if (json_object_object_get_ex(st, fields[i], &v)) {
                json_object_object_add(keep, fields[i], json_object_get(v));
            }
        }
        json_object *cs = ait_json_array(st, "containerStatuses");
        if (cs != NULL) {
            json_object *small = json_object_new_array();
            for (size_t i = 0; i < json_object_array_length(cs); i++) {
                json_object *c = json_object_array_get_idx(cs, i);
                json_object *one = json_object_new_object();
                json_object *v = NULL;
                if (json_object_object_get_ex(c, "name", &v)) {
                    json_object_object_add(one, "name", json_object_get(v));
                }
                if (json_object_object_get_ex(c, "state", &v)) {
                    json_object_object_add(one, "state", json_object_get(v));
                }
                json_object_array_add(small, one);
            }
            json_object_object_add(keep, "containerStatuses", small);
        }
        json_object_object_add(obj, "status", keep);
    }
}

/* ConfigMaps are cached without their data: the reconciler needs to know they exist (and whose
 * they are); the code is read from the API on the rare heal path. */
static void prune_configmap(void *ctx, json_object *obj)
{
    (void)ctx;
    json_object_object_del(obj, "data");
    json_object_object_del(obj, "binaryData");
    json_object_object_del(obj, "immutable");
    prune_owned_metadata(obj); /* the annotations hold the heal summary: read live */
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
    ait_manager *m = arg;
    for (;;) {
        char *key = NULL;
        if (ait_workqueue_get(m->queue, &key) != AIT_OK) {
            break; /* shut down */
        }
        int64_t t0 = ait_time_mono_ns();
        int64_t requeue = 0;
        ait_error err = {0};
        ait_status st = ait_reconcile(m->reconciler, key, &requeue, &err);
        double secs = (double)(ait_time_mono_ns() - t0) / 1e9;
        ait_metric_observe(ait_metric_family_with(m->m->reconcile_time_seconds, CONTROLLER_NAME),
                           secs);
        if (st != AIT_OK) {
            int conflict = st == AIT_ERR_CONFLICT;
            ait_metric_inc(ait_metric_family_with(m->m->reconcile_total, CONTROLLER_NAME, "error"));
            ait_metric_inc(ait_metric_family_with(m->m->reconcile_errors_total, CONTROLLER_NAME));
            if (conflict) {
                AIT_LOG_INFO(2, "reconcile conflict, requeued", "controller", CONTROLLER_NAME,
                             "object", key, "err", err.msg);
            } else {
                AIT_LOG_ERROR(err.msg, "Reconciler error", "controller", CONTROLLER_NAME, "object",
                              key, "code", ait_status_str(st));
            }
            if (conflict) {
                /* A stale read, not a failure: retry soon, outside the overall token bucket. */
                ait_workqueue_add_after(m->queue, key, 20 * AIT_NS_PER_MS);
            } else {
                ait_workqueue_add_rate_limited(m->queue, key);
            }
        } else {
            ait_metric_inc(ait_metric_family_with(m->m->reconcile_total, CONTROLLER_NAME,
                                                  requeue > 0 ? "requeue_after" : "success"));
            ait_workqueue_forget(m->queue, key);
            if (requeue > 0) {
                ait_workqueue_add_after(m->queue, key, requeue);
            }
        }
        ait_workqueue_done(m->queue, key);
        ait_free(key);
        /* When the queue runs dry, hand the memory of the burst back to the system (at most
         * every 10 s): glibc keeps freed heap otherwise, and RSS is what a pod is billed for. */
        int64_t now = ait_time_mono_ns();
        int64_t last = atomic_load(&m->last_trim_ns);
        if (ait_workqueue_len(m->queue) == 0 && now - last > 10 * AIT_NS_PER_S &&
            atomic_compare_exchange_strong(&m->last_trim_ns, &last, now)) {
            malloc_trim(0);
        }
        if (m->admission != NULL) {
            ait_metric_set(ait_metric_family_with(m->m->queue_depth),
                           (double)ait_admission_depth(m->admission));
        }
    }
    return NULL;
}

static ait_status start_informer(ait_manager *m, ait_informer **out, const ait_gvr *gvr,
                                 const char *selector, ait_informer_handlers h,
                                 ait_informer_transform_cb transform, ait_error *err)
{
    ait_informer_options io = {
        .gvr = gvr,
        .ns = m->opts.namespace_,
        .label_selector = selector,
        .handlers = h,
        .transform = transform,
    };
    ait_status st = ait_informer_new(m->rest, &io, out, err);
    if (st == AIT_OK) {
        st = ait_informer_start(*out, err);
    }
    return st;
}

static ait_status start_controller(ait_manager *m, ait_error *err)
{
    if (atomic_exchange(&m->started, 1)) {
        return AIT_OK;
    }
    ait_informer_handlers th = {m, task_add, task_update, task_delete};
    ait_informer_handlers oh = {m, owned_add, owned_update, owned_delete};
    ait_informer_handlers ph = {m, pod_add, pod_update, pod_delete};
    const char *owned = AIT_LABEL_MANAGED_BY "=" AIT_MANAGER;
    ait_status st;
    if ((st = start_informer(m, &m->tasks, &AIT_GVR_AITASKS, NULL, th, prune_task, err)) !=
            AIT_OK ||
        (st = start_informer(m, &m->pods, &AIT_GVR_PODS, owned, ph, prune_pod, err)) != AIT_OK ||
        (st = start_informer(m, &m->configmaps, &AIT_GVR_CONFIGMAPS, owned, oh, prune_configmap,
                             err)) != AIT_OK) {
        return st;
    }
    int64_t t0 = ait_time_mono_ns();
    ait_informer *infs[] = {m->tasks, m->pods, m->configmaps};
    for (int i = 0; i < 3; i++) {
        while (ait_informer_wait_for_sync(infs[i], 1000) == AIT_ERR_TIMEOUT) {
            if (atomic_load(&m->stopping)) {
                return ait_error_set(err, AIT_ERR_CANCELLED, "stopped before caches synced");
            }
        }
    }
    char ms[32];
    snprintf(ms, sizeof(ms), "%.1f", (double)(ait_time_mono_ns() - t0) / 1e6);
    AIT_LOG_INFO(0, "caches synced", "controller", CONTROLLER_NAME, "ms", ms);
    /* The initial lists parsed whole pages at once; give that memory back. */
    malloc_trim(0);
    for (int i = 0; i < m->opts.concurrency; i++) {
        pthread_create(&m->workers[m->n_workers++], NULL, worker_main, m);
    }
    ait_metric_set(ait_metric_family_with(m->m->max_concurrent_reconciles, CONTROLLER_NAME),
                   m->opts.concurrency);
    char workers[16];
    snprintf(workers, sizeof(workers), "%d", m->opts.concurrency);
    AIT_LOG_INFO(0, "Starting workers", "controller", CONTROLLER_NAME, "workerCount", workers);
    return AIT_OK;
}

static int ready_cb(void *ud, char *reason, size_t len)
{
    ait_manager *m = ud;
    if (m->opts.leader_elect && !atomic_load(&m->started)) {
        /* A standby replica is ready to take over: it serves and campaigns. */
        return 1;
    }
    if (m->tasks == NULL || !ait_informer_has_synced(m->tasks) ||
        !ait_informer_has_synced(m->pods) || !ait_informer_has_synced(m->configmaps)) {
        snprintf(reason, len, "caches not synced");
        return 0;
    }
    return 1;
}

static void *controller_thread(void *arg)
{
    ait_manager *m = arg;
    ait_error err = {0};
    if (start_controller(m, &err) != AIT_OK && !atomic_load(&m->stopping)) {
        AIT_LOG_ERROR(err.msg, "starting the controller failed");
        atomic_store(&m->lost_leadership, 1);
        kill(getpid(), SIGTERM);
    }
    return NULL;
}

/* Runs on the election thread, which must keep renewing: the controller (cache sync may take a
 * while) starts on its own thread. */
static void started_leading(void *ctx)
{
    ait_manager *m = ctx;
    ait_metric_set(ait_metric_family_with(m->m->leader_election_master_status, "aitask"), 1);
    AIT_LOG_INFO(0, "became leader", "identity", m->identity);
    if (!atomic_exchange(&m->starter_running, 1)) {
        pthread_create(&m->starter, NULL, controller_thread, m);
    }
}

static void stopped_leading(void *ctx)
{
    ait_manager *m = ctx;
    ait_metric_set(ait_metric_family_with(m->m->leader_election_master_status, "aitask"), 0);
    if (atomic_load(&m->stopping)) {
        return;
    }
    AIT_LOG_ERROR("leader election lost", "stopping: another replica leads now", "identity",
                  m->identity);
    atomic_store(&m->lost_leadership, 1);
    kill(getpid(), SIGTERM);
}

ait_status ait_manager_new(const ait_options *opts, ait_manager **out, ait_error *err)
{
    *out = NULL;
    ait_manager *m = ait_calloc(1, sizeof(*m));
    m->opts = *opts;
    ait_status st = ait_controller_config_load(opts->config, &m->config, err);
    if (st != AIT_OK) {
        st = AIT_ERR_INVALID;
        goto fail;
    }
    st = ait_kube_config_load(opts->kubeconfig, NULL, &m->kcfg, err);
    if (st != AIT_OK) {
        goto fail;
    }
    m->registry = ait_metrics_new();
    m->m = ait_metrics_std_new(m->registry);
    ait_trace_options to = {.on_drop = trace_drop, .on_drop_ctx = m};
    if ((st = ait_tracer_new_from_env(&to, &m->tracer, err)) != AIT_OK) {
        st = AIT_ERR_INVALID;
        goto fail;
    }
    if (ait_tracer_enabled(m->tracer)) {
        ait_log_set_context_cb(log_context);
    }
    const char *h = strstr(m->kcfg->server, "://");
    snprintf(m->host, sizeof(m->host), "%s", h ? h + 3 : m->kcfg->server);
    ait_rest_options ro = {.qps = opts->kube_api_qps,
                           .burst = opts->kube_api_burst,
                           .observe = rest_observe,
                           .observe_ctx = m};
    if ((st = ait_rest_new(m->kcfg, &ro, &m->rest, err)) != AIT_OK) {
        goto fail;
    }
    ait_workqueue_hooks hooks = {m, wq_depth, wq_add, wq_latency, wq_work, wq_retry};
    ait_workqueue_options qo = {.name = CONTROLLER_NAME, .hooks = &hooks};
    if ((st = ait_workqueue_new(&qo, &m->queue, err)) != AIT_OK) {
        goto fail;
    }
    char hostname[128] = "aitask-controller";
    gethostname(hostname, sizeof(hostname) - 1);
    const char *pod = getenv("POD_NAME");
    snprintf(m->identity, sizeof(m->identity), "%s_%ld", pod ? pod : hostname, (long)getpid());
    ait_events_options eo = {.reporting_instance = m->identity};
    if ((st = ait_events_new(m->rest, &eo, &m->events, err)) != AIT_OK) {
        goto fail;
    }
    if ((st = ait_auditor_new(m->config, m->identity, m->m, &m->auditor, err)) != AIT_OK) {
        goto fail;
    }
    ait_reconcile_queue rq = {m, queue_add, queue_add_after};
    if ((st = ait_secrets_new(m->config, m->rest, m->auditor, m->m, rq, &m->secrets, err)) !=
        AIT_OK) {
        goto fail;
    }
    ait_heal_key_source keys = ait_secrets_key_source(m->secrets);
    ait_healer_audit haudit = {m->auditor, m->auditor ? record_heal : NULL};
    if ((st = ait_healer_new(m->config, m->m, keys, ait_auditor_budget(m->auditor), haudit,
                             &m->healer, err)) != AIT_OK) {
        goto fail;
    }
    ait_healer_set_tracer(m->healer, m->tracer);
    AIT_LOG_INFO(0, "configured", "healing", m->healer ? "enabled" : "disabled (no providers)",
                 "audit", m->auditor ? "etcd" : "disabled (no audit section)");
    pthread_mutex_init(&m->pods_mu, NULL);
    m->running_pods = json_object_new_object();
    m->ns_counts = json_object_new_object();
    if (m->config->max_running > 0 || m->config->max_running_per_namespace > 0 ||
        m->config->starts_per_minute > 0) {
        ait_admission_config ac = {
            .max_running = m->config->max_running,
            .max_running_per_namespace = m->config->max_running_per_namespace,
            .starts_per_minute = m->config->starts_per_minute,
            .cache = {m, adm_running, adm_pod_seen, adm_requeue},
        };
        if ((st = ait_admission_new(&ac, NULL, &m->admission, err)) != AIT_OK) {
            st = AIT_ERR_INVALID;
            goto fail;
        }
    }
    ait_reconciler_deps deps = {
        .rest = m->rest,
        .config = m->config,
        .cache = {m, cache_get},
        .events = {m, emit_event},
        .queue = {m, queue_add, queue_add_after},
        .healer = ait_healer_seam(m->healer),
        .audit = ait_auditor_seam(m->auditor),
        .admission = m->admission,
        .metrics = m->m,
        .secrets = ait_secrets_seam(m->secrets),
        .tracer = m->tracer,
    };
    m->reconciler = ait_reconciler_new(&deps);
    if (opts->leader_elect) {
        const char *ns = opts->lease_namespace;
        if (ns == NULL) {
            ns = m->kcfg->namespace_ ? m->kcfg->namespace_ : "default";
        }
        ait_leader_options lo = {
            .namespace_ = ns,
            .name = opts->lease_name,
            .identity = m->identity,
            .callbacks = {m, started_leading, stopped_leading, NULL},
        };
        ait_rest_options lro = {.timeout_ms = 5000, .connect_timeout_ms = 2000};
        if ((st = ait_rest_new(m->kcfg, &lro, &m->lease_rest, err)) != AIT_OK ||
            (st = ait_leader_new(m->lease_rest, &lo, &m->leader, err)) != AIT_OK) {
            goto fail;
        }
    }
    *out = m;
    return AIT_OK;
fail:
    ait_manager_stop(m);
    return st;
}

ait_status ait_manager_start(ait_manager *m, ait_error *err)
{
    ait_metrics_http_opts ho = {
        .metrics_addr = m->opts.metrics_addr,
        .probe_addr = m->opts.probe_addr,
        .registry = m->registry,
        .ready_cb = ready_cb,
        .ready_ud = m,
    };
    ait_status st = ait_metrics_http_start(&ho, &m->http, err);
    if (st != AIT_OK) {
        return st;
    }
    char mp[16], pp[16];
    snprintf(mp, sizeof(mp), "%d", ait_metrics_http_metrics_port(m->http));
    snprintf(pp, sizeof(pp), "%d", ait_metrics_http_probe_port(m->http));
    AIT_LOG_INFO(0, "serving", "metricsPort", mp, "probePort", pp);
    if (m->leader != NULL) {
        return ait_leader_start(m->leader, err);
    }
    return start_controller(m, err);
}

int ait_manager_wait(ait_manager *m)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    int sig = 0;
    sigwait(&stop, &sig);
    AIT_LOG_INFO(0, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return atomic_load(&m->lost_leadership) ? 1 : 0;
}

void ait_manager_stop(ait_manager *m)
{
    if (m == NULL) {
        return;
    }
    atomic_store(&m->stopping, 1);
    /* Stop taking work and let in-flight reconciles finish. */
    if (m->queue != NULL) {
        ait_workqueue_shutdown_drain(m->queue);
    }
    if (atomic_load(&m->starter_running)) {
        pthread_join(m->starter, NULL);
    }
    for (int i = 0; i < m->n_workers; i++) {
        pthread_join(m->workers[i], NULL);
    }
    /* The heal and secrets pools call into the reconciler, the caches and the API: stop them
     * while all of those still exist. */
    ait_healer_free(m->healer);
    ait_secrets_free(m->secrets);
    /* Release the lease only after the workers stopped, so a successor never overlaps. */
    if (m->leader != NULL) {
        ait_leader_stop(m->leader);
        ait_leader_free(m->leader);
    }
    ait_informer_free(m->tasks);
    ait_informer_free(m->pods);
    ait_informer_free(m->configmaps);
    if (m->events != NULL) {
        (void)!ait_events_flush(m->events, 2 * AIT_NS_PER_S);
        ait_events_free(m->events);
    }
    ait_metrics_http_free(m->http);
    ait_reconciler_free(m->reconciler);
    ait_auditor_free(m->auditor);
    ait_admission_free(m->admission);
    /* Spans queued by the last reconciles and heals go out before the process ends; every
     * part that could still end a span is gone by now. */
    ait_tracer_free(m->tracer);
    json_object_put(m->running_pods);
    json_object_put(m->ns_counts);
    ait_workqueue_free(m->queue);
    ait_rest_free(m->lease_rest);
    ait_rest_free(m->rest);
    ait_metrics_std_free(m->m);
    ait_metrics_free(m->registry);
    ait_kube_config_free(m->kcfg);
    ait_controller_config_free(m->config);
    ait_free(m);
}

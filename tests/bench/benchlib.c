/* SPDX-License-Identifier: Apache-2.0 */
/* Shared pieces of the controller benchmarks; see benchlib.h. Watches run on their own threads
 * and stamp events with the wall clock when the chunk holding them arrived, before decoding, so
 * the benchmark's own JSON parsing is not counted in a latency. */
#include "benchlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api/aitask.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/events.h"
#include "kube/watch.h"
#include "reconcile/pod.h"

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench: %s: %s\n", what, msg ? msg : "");
    exit(2);
}

void bench_env_init(bench_env *e)
{
    memset(e, 0, sizeof(*e));
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures appear as they are measured, even in a pipe */
    e->kubeconfig = getenv("KUBECONFIG");
    e->cluster_dir = getenv("AIT_CLUSTER_DIR");
    e->controller_bin = getenv("AIT_CONTROLLER");
    e->out_dir = getenv("AIT_BENCH_OUT") ? getenv("AIT_BENCH_OUT") : e->cluster_dir;
    if (e->kubeconfig == NULL || e->cluster_dir == NULL || e->controller_bin == NULL) {
        die("environment", "KUBECONFIG, AIT_CLUSTER_DIR and AIT_CONTROLLER must be set "
                           "(hack/bench.sh sets them)");
    }
    ait_error err = {0};
    if (ait_kube_config_load(e->kubeconfig, NULL, &e->kcfg, &err) != AIT_OK) {
        die("kubeconfig", err.msg);
    }
    ait_rest_options ro = {.timeout_ms = 60000};
    if (ait_rest_new(e->kcfg, &ro, &e->rest, &err) != AIT_OK) {
        die("rest client", err.msg);
    }
    /* The benchmarks measure the controller, not the start limits of the config (0 = none). */
    snprintf(e->config_path, sizeof(e->config_path), "%s/bench-controller.yaml", e->out_dir);
    FILE *f = fopen(e->config_path, "w");
    if (f == NULL) {
        die("writing the controller config", strerror(errno));
    }
    fputs("limits:\n  maxRunning: 0\n  maxRunningPerNamespace: 0\n  startsPerMinute: 0\n", f);
    fclose(f);
    if (ait_controller_config_load(e->config_path, &e->ccfg, &err) != AIT_OK) {
        die("controller config", err.msg);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void bench_env_clear(bench_env *e)
{
    ait_rest_free(e->rest);
    ait_kube_config_free(e->kcfg);
    ait_controller_config_free(e->ccfg);
}

char *bench_namespace_new(bench_env *e, const char *prefix)
{
    unsigned r = 0;
    FILE *f = fopen("/dev/urandom", "r");
    if (f == NULL || fread(&r, sizeof(r), 1, f) != 1) {
        die("urandom", "read failed");
    }
    fclose(f);
    const char *pre = getenv("AIT_BENCH_NS_PREFIX");
    char *ns = ait_asprintf("%s%s-%08x", pre ? pre : "", prefix, r);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(o, "kind", json_object_new_string("Namespace"));
    json_object *m = json_object_new_object();
    json_object_object_add(m, "name", json_object_new_string(ns));
    json_object *l = json_object_new_object();
    json_object_object_add(l, "pod-security.kubernetes.io/enforce",
                           json_object_new_string("restricted"));
    json_object_object_add(m, "labels", l);
    json_object_object_add(o, "metadata", m);
    ait_error err = {0};
    if (ait_rest_create(e->rest, &AIT_GVR_NAMESPACES, NULL, o, NULL, &err) != AIT_OK) {
        die("creating a namespace", err.msg);
    }
    json_object_put(o);
    return ns;
}

char *bench_task_name(size_t i)
{
    return ait_asprintf("t-%07zu", i);
}

json_object *bench_task_build(const char *ns, size_t i)
{
    char *name = bench_task_name(i);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string(AIT_API_VERSION));
    json_object_object_add(o, "kind", json_object_new_string(AIT_API_KIND));
    json_object *m = json_object_new_object();
    json_object_object_add(m, "name", json_object_new_string(name));
    json_object_object_add(m, "namespace", json_object_new_string(ns));
    json_object_object_add(o, "metadata", m);
    json_object *s = json_object_new_object();
    json_object_object_add(s, "runtime", json_object_new_string("python"));
    char code[64];
    snprintf(code, sizeof(code), "print(%zu)", i);
    json_object_object_add(s, "code", json_object_new_string(code));
    json_object_object_add(o, "spec", s);
    ait_free(name);
    return o;
}

/* ---- watches ---- */

struct bench_watch {
    bench_env *e;
    char *path;
    char rv[64];
    size_t n;
    _Atomic int64_t *added;
    atomic_size_t count;
    atomic_size_t events;
    volatile int cancel;
    int64_t chunk_ns;
    ait_watch_decoder *dec;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* "t-0000012" or "t-0000012-a1" -> 12; anything else -> SIZE_MAX. */
static size_t name_index(const char *name)
{
    if (name == NULL || strncmp(name, "t-", 2) != 0) {
        return SIZE_MAX;
    }
    char *end = NULL;
    unsigned long long v = strtoull(name + 2, &end, 10);
    if (end == name + 2 || (*end != '\0' && strcmp(end, "-a1") != 0)) {
        return SIZE_MAX;
    }
    return (size_t)v;
}

static ait_status watch_event(void *ctx, const ait_watch_event *ev)
{
    bench_watch *w = ctx;
    atomic_fetch_add(&w->events, 1);
    const char *rv = ait_json_str(ev->object, "metadata.resourceVersion");
    if (rv != NULL) {
        snprintf(w->rv, sizeof(w->rv), "%s", rv);
    }
    if (ev->type != AIT_WATCH_ADDED) {
        return AIT_OK;
    }
    size_t i = name_index(ait_json_str(ev->object, "metadata.name"));
    if (i < w->n) {
        int64_t zero = 0;
        if (atomic_compare_exchange_strong(&w->added[i], &zero, w->chunk_ns)) {
            atomic_fetch_add(&w->count, 1);
            pthread_mutex_lock(&w->mu);
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
    }
    return AIT_OK;
}

static int watch_chunk(void *ctx, const char *data, size_t len)
{
    bench_watch *w = ctx;
    w->chunk_ns = ait_time_now_ns();
    ait_error err = {0};
    if (ait_watch_decoder_feed(w->dec, data, len, watch_event, w, &err) != AIT_OK) {
        fprintf(stderr, "bench: watch decode: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static void *watch_main(void *arg)
{
    bench_watch *w = arg;
    while (!w->cancel) {
        char q[160];
        snprintf(q, sizeof(q),
                 "watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=%s", w->rv);
        ait_watch_decoder_reset(w->dec);
        long code = 0;
        ait_error err = {0};
        ait_status st =
            ait_rest_stream(w->e->rest, w->path, q, watch_chunk, w, &w->cancel, &code, &err);
        if (w->cancel) {
            break;
        }
        if (st != AIT_OK) {
            fprintf(stderr, "bench: watch %s ended: %s (restarting)\n", w->path, err.msg);
            ait_time_sleep_ns(100 * AIT_NS_PER_MS);
        }
    }
    return NULL;
}

bench_watch *bench_watch_start(bench_env *e, const ait_gvr *gvr, const char *ns, size_t n)
{
    bench_watch *w = ait_calloc(1, sizeof(*w));
    w->e = e;
    w->n = n;
    w->added = ait_calloc(n ? n : 1, sizeof(*w->added));
    w->path = ait_rest_path(gvr, ns, NULL, NULL);
    w->dec = ait_watch_decoder_new(0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    json_object *list = NULL;
    ait_error err = {0};
    if (ait_rest_request(e->rest, "GET", w->path, "limit=1", NULL, NULL, &list, &err) != AIT_OK) {
        die("listing for a watch", err.msg);
    }
    snprintf(w->rv, sizeof(w->rv), "%s", ait_json_str(list, "metadata.resourceVersion"));
    json_object_put(list);
    pthread_create(&w->th, NULL, watch_main, w);
    return w;
}

int64_t bench_watch_added(bench_watch *w, size_t i)
{
    return i < w->n ? atomic_load(&w->added[i]) : 0;
}

size_t bench_watch_count(bench_watch *w)
{
    return atomic_load(&w->count);
}

size_t bench_watch_events(bench_watch *w)
{
    return atomic_load(&w->events);
}

size_t bench_watch_wait(bench_watch *w, size_t n, int64_t deadline_ns)
{
    pthread_mutex_lock(&w->mu);
    while (atomic_load(&w->count) < n && ait_time_now_ns() < deadline_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return atomic_load(&w->count);
}

void bench_watch_stop(bench_watch *w)
{
    if (w == NULL) {
        return;
    }
    w->cancel = 1;
    pthread_join(w->th, NULL);
    ait_watch_decoder_free(w->dec);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    ait_free(w->path);
    ait_free(w->added);
    ait_free(w);
}

/* ---- parallel work ---- */

typedef struct par {
    size_t n;
    double rate;
    int64_t t0;
    atomic_size_t next;
    atomic_size_t errors;
    int (*fn)(void *, size_t);
    void *ctx;
} par;

static void *par_main(void *arg)
{
    par *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) {
            break;
        }
        if (p->rate > 0) {
            int64_t due = p->t0 + (int64_t)((double)i * 1e9 / p->rate);
            int64_t now = ait_time_mono_ns();
            if (due > now) {
                ait_time_sleep_ns(due - now);
            }
        }
        if (p->fn(p->ctx, i) != 0) {
            atomic_fetch_add(&p->errors, 1);
        }
    }
    return NULL;
}

size_t bench_parallel(size_t n, int threads, double rate, int (*fn)(void *ctx, size_t i), void *ctx)
{
    par p = {.n = n, .rate = rate, .t0 = ait_time_mono_ns(), .fn = fn, .ctx = ctx};
    if (threads < 1) {
        threads = 1;
    }
    pthread_t *th = ait_calloc((size_t)threads, sizeof(*th));
    for (int t = 0; t < threads; t++) {
        pthread_create(&th[t], NULL, par_main, &p);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
    }
    ait_free(th);
    return atomic_load(&p.errors);
}

typedef struct create_ctx {
    bench_env *e;
    const char *ns;
    size_t from;
} create_ctx;

static int create_one(void *ctx, size_t i)
{
    create_ctx *c = ctx;
    json_object *t = bench_task_build(c->ns, c->from + i);
    ait_error err = {0};
    ait_status st = ait_rest_create(c->e->rest, &AIT_GVR_AITASKS, c->ns, t, NULL, &err);
    json_object_put(t);
    if (st != AIT_OK) {
        fprintf(stderr, "bench: creating task %zu: %s\n", c->from + i, err.msg);
        return 1;
    }
    return 0;
}

size_t bench_create_tasks(bench_env *e, const char *ns, size_t from, size_t to, int threads)
{
    create_ctx c = {e, ns, from};
    return bench_parallel(to - from, threads, 0, create_one, &c);
}

json_object *bench_list_tasks(bench_env *e, const char *ns)
{
    json_object *list = NULL;
    ait_error err = {0};
    ait_list_options lo = {.limit = 500};
    if (ait_rest_list(e->rest, &AIT_GVR_AITASKS, ns, &lo, &list, &err) != AIT_OK) {
        die("listing tasks", err.msg);
    }
    return list;
}

static ait_events *bare_events;
static pthread_once_t bare_events_once = PTHREAD_ONCE_INIT;
static bench_env *bare_env;

static void bare_events_init(void)
{
    ait_error err = {0};
    ait_events_options eo = {.reporting_instance = "bench-bare-client"};
    if (ait_events_new(bare_env->rest, &eo, &bare_events, &err) != AIT_OK) {
        die("event recorder", err.msg);
    }
}

/* ait_pod_build() puts json_object_get() references to the shared controller config's resource
 * values into the pod, and json-c reference counts are not atomic: building and freeing pods on
 * several threads corrupts the heap (found by this benchmark under ASan; reported). The pod is
 * therefore built and deep-copied under a lock, so each thread owns a private tree. */
static pthread_mutex_t pod_build_mu = PTHREAD_MUTEX_INITIALIZER;

static json_object *private_pod(json_object *task, const ait_task_spec *spec,
                                const ait_controller_config *cfg, ait_error *err)
{
    pthread_mutex_lock(&pod_build_mu);
    json_object *shared = ait_pod_build(task, spec, cfg, 1, NULL, err);
    json_object *pod = NULL;
    if (shared != NULL && json_object_deep_copy(shared, &pod, NULL) != 0) {
        pod = NULL;
    }
    json_object_put(shared);
    pthread_mutex_unlock(&pod_build_mu);
    return pod;
}

/* The controller writes its namespace's sandbox NetworkPolicy once; so does the bare client. */
static pthread_mutex_t bare_np_mu = PTHREAD_MUTEX_INITIALIZER;
static char bare_np_ns[256];

static ait_status bare_netpol(ait_rest *rest, const char *ns, ait_error *err)
{
    pthread_mutex_lock(&bare_np_mu);
    ait_status st = AIT_OK;
    if (strcmp(bare_np_ns, ns) != 0) {
        json_object *np = ait_netpol_build(ns);
        st = ait_rest_create(rest, &AIT_GVR_NETWORKPOLICIES, ns, np, NULL, err);
        json_object_put(np);
        if (st == AIT_ERR_EXISTS) {
            ait_error_clear(err);
            st = AIT_OK;
        }
        if (st == AIT_OK) {
            snprintf(bare_np_ns, sizeof(bare_np_ns), "%s", ns);
        }
    }
    pthread_mutex_unlock(&bare_np_mu);
    return st;
}

ait_status bench_bare_task(bench_env *e, ait_rest *rest, json_object *listed, int with_event,
                           ait_error *err)
{
    const char *ns = ait_obj_namespace(listed);
    const char *name = ait_obj_name(listed);
    char patch[256];
    snprintf(patch, sizeof(patch),
             "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%s\"},"
             "{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"%s\"]}]",
             ait_obj_resource_version(listed), AIT_FINALIZER);
    json_object *task = NULL;
    ait_status st =
        ait_rest_patch(rest, &AIT_GVR_AITASKS, ns, name, AIT_PATCH_JSON, patch, NULL, &task, err);
    if (st != AIT_OK) {
        return st;
    }
    ait_task_spec spec;
    memset(&spec, 0, sizeof(spec));
    json_object *cm = NULL, *pod = NULL;
    if ((st = ait_task_spec_parse(task, &spec, err)) != AIT_OK) {
        goto out;
    }
    const ait_runtime_cfg *rt = ait_controller_config_runtime(e->ccfg, spec.runtime);
    cm = ait_code_configmap_build(task, 1, rt ? rt->file : "main", spec.code, NULL);
    pod = private_pod(task, &spec, e->ccfg, err);
    if (pod == NULL) {
        st = AIT_ERR_INVALID;
        goto out;
    }
    if ((st = bare_netpol(rest, ns, err)) != AIT_OK ||
        (st = ait_rest_create(rest, &AIT_GVR_CONFIGMAPS, ns, cm, NULL, err)) != AIT_OK ||
        (st = ait_rest_create(rest, &AIT_GVR_PODS, ns, pod, NULL, err)) != AIT_OK) {
        goto out;
    }
    json_object *status = ait_status_obj(task);
    int64_t now = ait_time_now_ns();
    int64_t gen = ait_obj_generation(task);
    char ts[40];
    ait_time_rfc3339(now, ts, sizeof(ts));
    json_object *a = json_object_new_object();
    json_object_object_add(a, "index", json_object_new_int(1));
    json_object_object_add(a, "podName", json_object_new_string(ait_obj_name(pod)));
    json_object_object_add(
        a, "codeSHA256",
        json_object_new_string("0000000000000000000000000000000000000000000000000000000000000000"));
    json_object_object_add(a, "startTime", json_object_new_string(ts));
    json_object_array_add(ait_status_attempts(status), a);
    json_object_object_add(status, "phase", json_object_new_string("Running"));
    ait_condition_set(status, "Succeeded", "Unknown", "Running", "attempt running", gen, now);
    json_object_object_add(status, "observedGeneration", json_object_new_int64(gen));
    json_object_object_add(status, "attemptCount", json_object_new_int(1));
    if ((st = ait_rest_update(rest, &AIT_GVR_AITASKS, ns, name, "status", task, NULL, err)) !=
        AIT_OK) {
        goto out;
    }
    if (with_event) {
        bare_env = e;
        pthread_once(&bare_events_once, bare_events_init);
        ait_object_ref ref = {
            .api_version = AIT_API_VERSION,
            .kind = AIT_API_KIND,
            .namespace_ = ns,
            .name = name,
            .uid = ait_obj_uid(task),
            .resource_version = ait_obj_resource_version(task),
        };
        ait_events_emitf(bare_events, &ref, "Normal", "AttemptStarted", "Run",
                         "attempt 1 started in pod %s", ait_obj_name(pod));
    }
out:
    ait_task_spec_clear(&spec);
    json_object_put(cm);
    json_object_put(pod);
    json_object_put(task);
    return st;
}

static int populate_one(void *ctx, size_t i)
{
    create_ctx *c = ctx;
    json_object *t = bench_task_build(c->ns, c->from + i);
    json_object *created = NULL;
    ait_error err = {0};
    ait_status st = ait_rest_create(c->e->rest, &AIT_GVR_AITASKS, c->ns, t, &created, &err);
    json_object_put(t);
    if (st == AIT_OK) {
        st = bench_bare_task(c->e, c->e->rest, created, 0, &err);
    }
    json_object_put(created);
    if (st != AIT_OK) {
        fprintf(stderr, "bench: populating task %zu: %s\n", c->from + i, err.msg);
        return 1;
    }
    return 0;
}

size_t bench_populate(bench_env *e, const char *ns, size_t from, size_t to, int threads)
{
    create_ctx c = {e, ns, from};
    return bench_parallel(to - from, threads, 0, populate_one, &c);
}

/* ---- the controller ---- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        die("free port", strerror(errno));
    }
    close(s);
    return ntohs(a.sin_port);
}

void bench_ctrl_start(bench_env *e, const char *ns, int concurrency, const char *log_path,
                      const char *const *wrapper, bench_ctrl *c)
{
    memset(c, 0, sizeof(*c));
    c->probe_port = free_port();
    c->metrics_port = free_port();
    snprintf(c->log, sizeof(c->log), "%s", log_path);
    char probe[64], metrics[64], conc[16];
    snprintf(probe, sizeof(probe), "127.0.0.1:%d", c->probe_port);
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", c->metrics_port);
    snprintf(conc, sizeof(conc), "%d", concurrency);
    const char *args[] = {e->controller_bin,
                          "--kubeconfig",
                          e->kubeconfig,
                          "--config",
                          e->config_path,
                          "--namespace",
                          ns,
                          "--metrics-bind-address",
                          metrics,
                          "--health-probe-bind-address",
                          probe,
                          "--concurrency",
                          conc,
                          NULL};
    const char *argv[64];
    size_t k = 0;
    for (size_t i = 0; wrapper != NULL && wrapper[i] != NULL && k < 40; i++) {
        argv[k++] = wrapper[i];
    }
    for (size_t i = 0; args[i] != NULL; i++) {
        argv[k++] = args[i];
    }
    argv[k] = NULL;
    fflush(NULL);
    c->exec_ns = ait_time_now_ns();
    c->pid = fork();
    if (c->pid < 0) {
        die("fork", strerror(errno));
    }
    if (c->pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    ait_buf *b = ud;
    if (b != NULL && ait_buf_append(b, p, s * n) != AIT_OK) {
        return 0;
    }
    return s * n;
}

static long http_get(int port, const char *path, ait_buf *body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_easy_cleanup(h);
    return code;
}

int bench_ctrl_wait_ready(bench_ctrl *c, int64_t timeout_ns, int64_t *ready_ns)
{
    int64_t end = ait_time_now_ns() + timeout_ns;
    while (ait_time_now_ns() < end) {
        if (http_get(c->probe_port, "/readyz", NULL) == 200) {
            if (ready_ns != NULL) {
                *ready_ns = ait_time_now_ns();
            }
            return 0;
        }
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
            fprintf(stderr, "bench: the controller exited; see %s\n", c->log);
            c->pid = 0;
            return -1;
        }
        ait_time_sleep_ns(2 * AIT_NS_PER_MS);
    }
    return -1;
}

void bench_ctrl_stop(bench_ctrl *c)
{
    if (c->pid <= 0) {
        return;
    }
    kill(c->pid, SIGTERM);
    for (int i = 0; i < 6000; i++) { /* 60 s: valgrind writes its profile on exit */
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
            c->pid = 0;
            return;
        }
        ait_time_sleep_ns(10 * AIT_NS_PER_MS);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

int64_t bench_ctrl_log_time(const bench_ctrl *c, const char *msg)
{
    FILE *f = fopen(c->log, "r");
    if (f == NULL) {
        return 0;
    }
    char line[4096];
    int64_t t = 0;
    while (t == 0 && fgets(line, sizeof(line), f) != NULL) {
        json_object *o = json_tokener_parse(line);
        const char *m = ait_json_str(o, "msg");
        const char *ts = ait_json_str(o, "ts");
        if (m != NULL && ts != NULL && strcmp(m, msg) == 0 &&
            ait_time_parse_rfc3339(ts, &t) != AIT_OK) {
            t = 0;
        }
        json_object_put(o);
    }
    fclose(f);
    return t;
}

long bench_proc_kib(pid_t pid, const char *field)
{
    return bench_proc_file_kib(pid, "status", field);
}

long bench_proc_file_kib(pid_t pid, const char *file, const char *field)
{
    char path[96], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    /* After ")": state(3) ppid(4) ... utime(14) stime(15). */
    unsigned long long ut = 0, stime = 0;
    int field = 2;
    for (char *q = p + 1; *q != '\0'; q++) {
        if (*q == ' ') {
            field++;
            if (field == 14) {
                ut = strtoull(q + 1, NULL, 10);
            } else if (field == 15) {
                stime = strtoull(q + 1, NULL, 10);
                break;
            }
        }
    }
    return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

char *bench_ctrl_metrics(const bench_ctrl *c)
{
    ait_buf b;
    ait_buf_init(&b, 0);
    if (http_get(c->metrics_port, "/metrics", &b) != 200) {
        ait_buf_free(&b);
        return NULL;
    }
    char *s = ait_strdup(ait_buf_str(&b));
    ait_buf_free(&b);
    return s;
}

double bench_metric_sum(const char *text, const char *name)
{
    double sum = 0;
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            const char *sp = strchr(p, ' ');
            const char *br = p[nl] == '{' ? strchr(p, '}') : NULL;
            if (br != NULL) {
                sp = strchr(br, ' ');
            }
            if (sp != NULL) {
                sum += strtod(sp + 1, NULL);
            }
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return sum;
}

void bench_metric_print(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            printf("    %.*s\n", (int)len, p);
        }
        p = end ? end + 1 : NULL;
    }
}

double bench_ctrl_settle(const bench_ctrl *c, int64_t quiet_ns, int64_t deadline_ns)
{
    double last = -1;
    int64_t since = ait_time_now_ns();
    while (ait_time_now_ns() < deadline_ns) {
        char *m = bench_ctrl_metrics(c);
        double v = m ? bench_metric_sum(m, "controller_runtime_reconcile_total") : -1;
        ait_free(m);
        if (v != last) {
            last = v;
            since = ait_time_now_ns();
        } else if (ait_time_now_ns() - since >= quiet_ns) {
            break;
        }
        /* Each poll is a /metrics scrape the controller pays for: keep them rare. */
        ait_time_sleep_ns(AIT_NS_PER_S);
    }
    return last;
}

/* ---- figures ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bench_percentile(int64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
}

double bench_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

void bench_print_machine(void)
{
    char model[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c != NULL) {
                snprintf(model, sizeof(model), "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    char load[128] = "?";
    f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(load, sizeof(load), f) != NULL) {
            load[strcspn(load, "\n")] = '\0';
        }
        fclose(f);
    }
    printf("machine: nproc=%ld, cpu=\"%s\", ram=%.1f GiB, loadavg at start: %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), model,
           (double)pages * (double)psz / (1024.0 * 1024.0 * 1024.0), load);
}

long bench_opt_long(int argc, char **argv, const char *name, long def)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            char *end = NULL;
            long v = strtol(argv[i + 1], &end, 10);
            if (end == argv[i + 1] || *end != '\0') {
                die("bad option value", argv[i + 1]);
            }
            return v;
        }
    }
    return def;
}

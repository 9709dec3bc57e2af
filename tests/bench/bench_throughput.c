/* SPDX-License-Identifier: Apache-2.0 */
/* Throughput benchmark (SPEC.md §9): N AITasks (default 10 000) exist; the controller creates
 * their pods, timed from its "Starting workers" log line (its first possible write) to the last
 * pod's ADDED event on the benchmark's watch. Then, against the same API server in the same
 * run, a bare client with the same concurrency does the same HTTP calls for N other AITasks
 * (finalizer patch, NetworkPolicy, ConfigMap, Pod, status PUT, Event, built with the
 * controller's own builders), timed from its first call to the last pod ADDED. Prints both
 * rates and their ratio. Each side stops at --timeout seconds and reports what it made.
 * Options: --count N --concurrency N (workers and bare threads) --timeout S --creators N. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"

typedef struct side {
    size_t made;
    int64_t start_ns;
    int64_t last_ns;
    double requests; /* API requests of the side during the timed window */
    double rate;
} side;

static void finish(bench_watch *w, size_t n, side *s)
{
    s->made = 0;
    s->last_ns = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = bench_watch_added(w, i);
        if (t > 0) {
            s->made++;
            if (t > s->last_ns) {
                s->last_ns = t;
            }
        }
    }
    if (s->made == 0) {
        s->last_ns = s->start_ns;
    }
    double secs = (double)(s->last_ns - s->start_ns) / 1e9;
    s->rate = s->made > 0 && secs > 0 ? (double)s->made / secs : 0;
}

typedef struct bare_ctx {
    bench_env *e;
    json_object *items;
    int64_t deadline;
    atomic_size_t calls_failed;
} bare_ctx;

static int bare_one(void *p, size_t i)
{
    bare_ctx *b = p;
    if (ait_time_now_ns() > b->deadline) {
        return 1;
    }
    ait_error err = {0};
    json_object *t = json_object_array_get_idx(b->items, i);
    if (bench_bare_task(b->e, b->e->rest, t, 1, &err) != AIT_OK) {
        fprintf(stderr, "bench: bare client, %s: %s\n", ait_json_str(t, "metadata.name"), err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = (size_t)bench_opt_long(argc, argv, "--count", 10000);
    int conc = (int)bench_opt_long(argc, argv, "--concurrency", 8);
    long timeout = bench_opt_long(argc, argv, "--timeout", 120);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 8);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();
    printf("throughput: %zu tasks per side, concurrency %d, timeout %ld s per side\n", n, conc,
           timeout);

    /* ---- the controller ---- */
    char *ns_c = bench_namespace_new(&e, "bench-tp-ctrl");
    int64_t c0 = ait_time_now_ns();
    size_t errs = bench_create_tasks(&e, ns_c, 0, n, creators);
    printf("setup: %zu AITasks created in %.1f s (errors %zu), untimed\n", n - errs,
           (double)(ait_time_now_ns() - c0) / 1e9, errs);
    bench_watch *wc = bench_watch_start(&e, &AIT_GVR_PODS, ns_c, n);
    char log[512];
    snprintf(log, sizeof(log), "%s/controller-throughput.log", e.out_dir);
    bench_ctrl c;
    bench_ctrl_start(&e, ns_c, conc, log, NULL, &c);
    int64_t ready = 0;
    if (bench_ctrl_wait_ready(&c, 120 * AIT_NS_PER_S, &ready) != 0) {
        fprintf(stderr, "bench: controller not ready\n");
        return 1;
    }
    side sc = {0};
    bench_watch_wait(wc, n - errs, ready + timeout * AIT_NS_PER_S);
    sc.start_ns = bench_ctrl_log_time(&c, "Starting workers");
    if (sc.start_ns == 0) {
        sc.start_ns = ready;
    }
    finish(wc, n, &sc);
    char *m = bench_ctrl_metrics(&c);
    if (m != NULL) {
        sc.requests = bench_metric_sum(m, "rest_client_requests_total");
        printf("controller API calls:\n");
        bench_metric_print(m, "rest_client_requests_total");
    }
    ait_free(m);
    double cpu = bench_proc_cpu_s(c.pid);
    bench_ctrl_stop(&c);
    bench_watch_stop(wc);
    double csecs = (double)(sc.last_ns - sc.start_ns) / 1e9;
    printf("controller: %zu of %zu pods in %.2f s = %.1f pods/s (%.0f API requests, %.1f/s; "
           "controller CPU %.2f s)%s\n",
           sc.made, n - errs, csecs, sc.rate, sc.requests, csecs > 0 ? sc.requests / csecs : 0.0,
           cpu, sc.made < n - errs ? " PARTIAL: timeout" : "");

    /* ---- the bare client ---- */
    char *ns_b = bench_namespace_new(&e, "bench-tp-bare");
    c0 = ait_time_now_ns();
    size_t errs_b = bench_create_tasks(&e, ns_b, 0, n, creators);
    json_object *list = bench_list_tasks(&e, ns_b);
    json_object *items = ait_json_array(list, "items");
    size_t nb = items ? json_object_array_length(items) : 0;
    printf("setup: %zu AITasks created and listed in %.1f s (errors %zu), untimed\n", nb,
           (double)(ait_time_now_ns() - c0) / 1e9, errs_b);
    bench_watch *wb = bench_watch_start(&e, &AIT_GVR_PODS, ns_b, n);
    side sb = {0};
    sb.start_ns = ait_time_now_ns();
    bare_ctx bc = {.e = &e, .items = items, .deadline = sb.start_ns + timeout * AIT_NS_PER_S};
    size_t failed = bench_parallel(nb, conc, 0, bare_one, &bc);
    bench_watch_wait(wb, nb - failed, ait_time_now_ns() + 30 * AIT_NS_PER_S);
    finish(wb, n, &sb);
    bench_watch_stop(wb);
    double bsecs = (double)(sb.last_ns - sb.start_ns) / 1e9;
    printf("bare client: %zu of %zu pods in %.2f s = %.1f pods/s (%zu tasks not done)%s\n", sb.made,
           nb, bsecs, sb.rate, failed, sb.made < nb ? " PARTIAL: timeout" : "");
    double ratio = sb.rate > 0 ? sc.rate / sb.rate : 0;
    printf("FIGURES throughput controller_pods_per_s=%.1f bare_pods_per_s=%.1f ratio=%.3f "
           "controller_pods=%zu/%zu bare_pods=%zu/%zu (target ratio >= 0.90)\n",
           sc.rate, sb.rate, ratio, sc.made, n - errs, sb.made, nb);
    json_object_put(list);
    ait_free(ns_c);
    ait_free(ns_b);
    bench_env_clear(&e);
    return 0;
}

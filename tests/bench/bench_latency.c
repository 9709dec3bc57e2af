/* SPDX-License-Identifier: Apache-2.0 */
/* Latency benchmark (SPEC.md §9): AITasks are created at a steady rate (default 50/s for 60 s)
 * while the controller runs; for each, the time from the AITask's ADDED event on the
 * benchmark's own watch to its pod's ADDED event on a second watch. Prints p50/p95/p99/max and
 * the same per 10 s window (a backlog shows as a rising window median). One AITask created in
 * another namespace first warms the API server up (see main). Asserts nothing.
 * Options: --rate N (tasks/s) --duration S --concurrency N (controller workers) --drain S (wait
 * for the last pods after the last create) --creators N (client threads). */
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/time.h"

typedef struct ctx {
    bench_env *e;
    const char *ns;
    int64_t *sent; /* wall-clock time of the POST */
} ctx;

static int create(void *p, size_t i)
{
    ctx *c = p;
    json_object *t = bench_task_build(c->ns, i);
    ait_error err = {0};
    c->sent[i] = ait_time_now_ns();
    ait_status st = ait_rest_create(c->e->rest, &AIT_GVR_AITASKS, c->ns, t, NULL, &err);
    json_object_put(t);
    if (st != AIT_OK) {
        fprintf(stderr, "bench: create %zu: %s\n", i, err.msg);
        return 1;
    }
    return 0;
}

static void print_dist(const char *label, int64_t *v, size_t n)
{
    if (n == 0) {
        printf("%s: no samples\n", label);
        return;
    }
    printf("%s: n=%zu p50=%.1f ms p95=%.1f ms p99=%.1f ms max=%.1f ms\n", label, n,
           bench_ms(bench_percentile(v, n, 50)), bench_ms(bench_percentile(v, n, 95)),
           bench_ms(bench_percentile(v, n, 99)), bench_ms(bench_percentile(v, n, 100)));
}

int main(int argc, char **argv)
{
    double rate = (double)bench_opt_long(argc, argv, "--rate", 50);
    long duration = bench_opt_long(argc, argv, "--duration", 60);
    int concurrency = (int)bench_opt_long(argc, argv, "--concurrency", 8);
    long drain = bench_opt_long(argc, argv, "--drain", 30);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 8);
    size_t n = (size_t)(rate * (double)duration);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();
    char *ns = bench_namespace_new(&e, "bench-lat");
    char log[512];
    snprintf(log, sizeof(log), "%s/controller-latency.log", e.out_dir);
    bench_ctrl c;
    bench_ctrl_start(&e, ns, concurrency, log, NULL, &c);
    if (bench_ctrl_wait_ready(&c, 30 * AIT_NS_PER_S, NULL) != 0) {
        fprintf(stderr, "bench: controller not ready\n");
        return 1;
    }
    /* Warm-up, not measured: the API server builds a custom resource's storage and compiles its
     * CEL rules on the first request for it (about 2 s here), which would stall the first
     * creates and start the stream with a burst. One AITask in another namespace (the
     * controller does not watch it) pays for that first. */
    {
        char *wns = bench_namespace_new(&e, "bench-lat-warmup");
        json_object *t = bench_task_build(wns, 0);
        ait_error err = {0};
        int64_t w0 = ait_time_now_ns();
        ait_status st = ait_rest_create(e.rest, &AIT_GVR_AITASKS, wns, t, NULL, &err);
        printf("warm-up: the first AITask create took %.0f ms (%s)\n",
               bench_ms(ait_time_now_ns() - w0), st == AIT_OK ? "ok" : err.msg);
        json_object_put(t);
        ait_free(wns);
    }
    bench_watch *tw = bench_watch_start(&e, &AIT_GVR_AITASKS, ns, n);
    bench_watch *pw = bench_watch_start(&e, &AIT_GVR_PODS, ns, n);
    ctx cx = {&e, ns, ait_calloc(n ? n : 1, sizeof(int64_t))};
    double cpu0 = bench_proc_cpu_s(c.pid);
    printf("latency: %zu AITasks at %.0f/s for %ld s, controller --concurrency %d, namespace %s\n",
           n, rate, duration, concurrency, ns);
    int64_t t0 = ait_time_now_ns();
    size_t errors = bench_parallel(n, creators, rate, create, &cx);
    int64_t t1 = ait_time_now_ns();
    printf("created %zu (errors %zu) in %.2f s: %.1f/s achieved\n", n - errors, errors,
           (double)(t1 - t0) / 1e9, (double)(n - errors) / ((double)(t1 - t0) / 1e9));
    size_t got = bench_watch_wait(pw, n - errors, t1 + drain * AIT_NS_PER_S);
    bench_watch_wait(tw, n - errors, ait_time_now_ns() + 5 * AIT_NS_PER_S);
    double cpu1 = bench_proc_cpu_s(c.pid);
    int64_t *lat = ait_calloc(n ? n : 1, sizeof(int64_t));
    int64_t *post = ait_calloc(n ? n : 1, sizeof(int64_t));
    size_t k = 0, kp = 0;
    enum { WINDOWS = 64 };
    int64_t *win[WINDOWS] = {0};
    size_t wn[WINDOWS] = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t ta = bench_watch_added(tw, i), pa = bench_watch_added(pw, i);
        if (ta > 0 && pa > 0) {
            lat[k++] = pa - ta;
            size_t w = (size_t)((double)i / rate / 10.0);
            if (w < WINDOWS) {
                if (win[w] == NULL) {
                    win[w] = ait_calloc(n, sizeof(int64_t));
                }
                win[w][wn[w]++] = pa - ta;
            }
        }
        if (cx.sent[i] > 0 && pa > 0) {
            post[kp++] = pa - cx.sent[i];
        }
    }
    printf("pods seen: %zu of %zu (%zu missing %ld s after the last create)\n", got, n - errors,
           n - errors - got, drain);
    print_dist("AITask ADDED -> pod ADDED", lat, k);
    print_dist("AITask POST sent -> pod ADDED (incl. the create call)", post, kp);
    for (size_t w = 0; w < WINDOWS; w++) {
        if (wn[w] > 0) {
            char label[64];
            snprintf(label, sizeof(label), "  tasks created in %zu-%zu s", w * 10, w * 10 + 10);
            print_dist(label, win[w], wn[w]);
        }
        ait_free(win[w]);
    }
    printf("controller CPU during the run: %.2f s; RSS %ld KiB\n", cpu1 - cpu0,
           bench_proc_kib(c.pid, "VmRSS"));
    char *m = bench_ctrl_metrics(&c);
    if (m != NULL) {
        printf("controller API calls (rest_client_requests_total):\n");
        bench_metric_print(m, "rest_client_requests_total");
        printf("reconciles: %.0f\n", bench_metric_sum(m, "controller_runtime_reconcile_total"));
    }
    ait_free(m);
    printf("FIGURES latency p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f n=%zu missing=%zu "
           "(target p50 < 20, p95 < 100)\n",
           bench_ms(bench_percentile(lat, k, 50)), bench_ms(bench_percentile(lat, k, 95)),
           bench_ms(bench_percentile(lat, k, 99)), bench_ms(bench_percentile(lat, k, 100)), k,
           n - errors - got);
    bench_watch_stop(tw);
    bench_watch_stop(pw);
    bench_ctrl_stop(&c);
    ait_free(lat);
    ait_free(post);
    ait_free(cx.sent);
    ait_free(ns);
    bench_env_clear(&e);
    return 0;
}

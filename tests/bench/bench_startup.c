/* SPDX-License-Identifier: Apache-2.0 */
/* Startup benchmark (SPEC.md §9): the time from the controller's exec to its first /readyz 200
 * (caches synced), polled every 2 ms, with no AITask and with N (default 1 000) AITasks present
 * with their pods and ConfigMaps (made beforehand as the controller would have made them).
 * Several runs each; prints min/median/max and the controller's own "caches synced" time.
 * Options: --count N --runs N --creators N. */
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/time.h"

static void measure(bench_env *e, const char *ns, size_t tasks, int runs, double *median)
{
    int64_t *v = ait_calloc((size_t)runs, sizeof(int64_t));
    int64_t *synced = ait_calloc((size_t)runs, sizeof(int64_t));
    int ok = 0;
    for (int r = 0; r < runs; r++) {
        char log[512];
        snprintf(log, sizeof(log), "%s/controller-startup-%zu-%d.log", e->out_dir, tasks, r);
        bench_ctrl c;
        bench_ctrl_start(e, ns, 4, log, NULL, &c);
        int64_t ready = 0;
        if (bench_ctrl_wait_ready(&c, 60 * AIT_NS_PER_S, &ready) == 0) {
            v[ok] = ready - c.exec_ns;
            int64_t s = bench_ctrl_log_time(&c, "caches synced");
            synced[ok] = s > 0 ? s - c.exec_ns : 0;
            ok++;
        }
        bench_ctrl_stop(&c);
    }
    printf("%zu tasks: exec -> /readyz 200: n=%d min=%.1f ms median=%.1f ms max=%.1f ms; "
           "exec -> \"caches synced\" log line median %.1f ms\n",
           tasks, ok, bench_ms(bench_percentile(v, (size_t)ok, 0)),
           bench_ms(bench_percentile(v, (size_t)ok, 50)),
           bench_ms(bench_percentile(v, (size_t)ok, 100)),
           bench_ms(bench_percentile(synced, (size_t)ok, 50)));
    *median = bench_ms(bench_percentile(v, (size_t)ok, 50));
    ait_free(v);
    ait_free(synced);
}

int main(int argc, char **argv)
{
    size_t n = (size_t)bench_opt_long(argc, argv, "--count", 1000);
    int runs = (int)bench_opt_long(argc, argv, "--runs", 5);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 8);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();
    char *ns = bench_namespace_new(&e, "bench-start");
    double idle = 0, full = 0;
    measure(&e, ns, 0, runs, &idle);
    int64_t t0 = ait_time_now_ns();
    size_t errs = bench_populate(&e, ns, 0, n, creators);
    printf("setup: %zu tasks with their objects made in %.1f s (errors %zu)\n", n,
           (double)(ait_time_now_ns() - t0) / 1e9, errs);
    measure(&e, ns, n, runs, &full);
    printf("FIGURES startup empty_median_ms=%.1f tasks_%zu_median_ms=%.1f (target < 1000 with "
           "1 000)\n",
           idle, n, full);
    ait_free(ns);
    bench_env_clear(&e);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Memory benchmark (SPEC.md §9): the controller's resident set (VmRSS from /proc/<pid>/status)
 * idle, and with 1 000 and N (default 10 000) AITasks and their pods and code ConfigMaps
 * cached. The objects are made beforehand by a bare client exactly as the controller would
 * have made them (tasks Running attempt 1, pods pending: there is no kubelet), and a fresh
 * controller is started for each level, made ready and left to finish its reconciles before
 * the reading. Prints KiB per cached task. Options: --count N --creators N --concurrency N. */
#include <stdio.h>
#include <stdlib.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/time.h"

int main(int argc, char **argv)
{
    size_t n = (size_t)bench_opt_long(argc, argv, "--count", 10000);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 8);
    int conc = (int)bench_opt_long(argc, argv, "--concurrency", 4);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();
    char *ns = bench_namespace_new(&e, "bench-mem");
    size_t levels[3] = {0, n < 1000 ? n / 2 : 1000, n};
    long rss[3] = {0}, hwm[3] = {0};
    size_t have = 0;
    for (int l = 0; l < 3; l++) {
        if (levels[l] > have) {
            int64_t t0 = ait_time_now_ns();
            size_t errs = bench_populate(&e, ns, have, levels[l], creators);
            printf("setup: %zu tasks with their objects made in %.1f s (errors %zu)\n",
                   levels[l] - have, (double)(ait_time_now_ns() - t0) / 1e9, errs);
            have = levels[l];
        }
        char log[512];
        snprintf(log, sizeof(log), "%s/controller-memory-%zu.log", e.cluster_dir, levels[l]);
        bench_ctrl c;
        bench_ctrl_start(&e, ns, conc, log, NULL, &c);
        if (bench_ctrl_wait_ready(&c, 120 * AIT_NS_PER_S, NULL) != 0) {
            fprintf(stderr, "bench: controller not ready\n");
            return 1;
        }
        double rec =
            bench_ctrl_settle(&c, 2 * AIT_NS_PER_S, ait_time_now_ns() + 120 * AIT_NS_PER_S);
        rss[l] = bench_proc_kib(c.pid, "VmRSS");
        hwm[l] = bench_proc_kib(c.pid, "VmHWM");
        printf("%zu tasks cached: VmRSS %ld KiB (%.1f MiB), VmHWM %ld KiB, after %.0f reconciles\n",
               levels[l], rss[l], (double)rss[l] / 1024.0, hwm[l], rec);
        bench_ctrl_stop(&c);
    }
    double per1 = levels[1] ? (double)(rss[1] - rss[0]) / (double)levels[1] : 0;
    double per2 = levels[2] ? (double)(rss[2] - rss[0]) / (double)levels[2] : 0;
    printf("FIGURES memory idle_kib=%ld rss_%zu_kib=%ld rss_%zu_kib=%ld kib_per_task=%.2f "
           "(from the %zu level; %.2f from the %zu level) peak_%zu_kib=%ld "
           "(target idle < 10240, %zu < 102400 at 10 000)\n",
           rss[0], levels[1], rss[1], levels[2], rss[2], per2, levels[2], per1, levels[1],
           levels[2], hwm[2], levels[2]);
    ait_free(ns);
    bench_env_clear(&e);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Memory benchmark (SPEC.md §9): the controller's resident set (VmRSS from /proc/<pid>/status)
 * idle, and with 1 000 and N (default 10 000) AITasks and their pods and code ConfigMaps
 * cached. The objects are made beforehand by a bare client exactly as the controller would
 * have made them (tasks Running attempt 1, pods pending: there is no kubelet), and a fresh
 * controller is started for each level, made ready and left to finish its reconciles before
 * the reading. Prints KiB per cached task, the PSS beside each RSS, and the largest resident
 * mappings of the idle controller (shared libraries). With --massif 1 a last controller runs under
 * valgrind --tool=massif at the top level and the peak snapshot's allocation tree is printed.
 * Options: --count N --creators N --concurrency N --massif 0|1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/time.h"

/* Prints the resident KiB of the largest mappings, summed per file (shared libraries, [heap],
 * anonymous), from /proc/<pid>/smaps: where an idle controller's RSS is. */
static void print_mappings(pid_t pid, int top)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    enum { MAXM = 128 };
    char names[MAXM][160];
    long rss[MAXM];
    int n = 0, cur = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        char perms[8], name[400] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399[^\n]", &lo, &hi, perms, name) >= 3) {
            const char *nm = name;
            while (*nm == ' ') {
                nm++;
            }
            if (*nm == '\0') {
                nm = "(anonymous)";
            }
            cur = -1;
            for (int i = 0; i < n; i++) {
                if (strcmp(names[i], nm) == 0) {
                    cur = i;
                }
            }
            if (cur < 0 && n < MAXM) {
                cur = n++;
                /* Mapping names longer than the slot are cut (a path's tail is enough). */
                size_t len = strlen(nm);
                if (len >= sizeof(names[cur])) {
                    len = sizeof(names[cur]) - 1;
                }
                memcpy(names[cur], nm, len);
                names[cur][len] = '\0';
                rss[cur] = 0;
            }
        } else if (cur >= 0 && strncmp(line, "Rss:", 4) == 0) {
            rss[cur] += strtol(line + 4, NULL, 10);
        }
    }
    fclose(f);
    for (int k = 0; k < top && k < n; k++) {
        int best = k;
        for (int i = k + 1; i < n; i++) {
            if (rss[i] > rss[best]) {
                best = i;
            }
        }
        long tr = rss[k];
        rss[k] = rss[best];
        rss[best] = tr;
        char tn[160];
        memcpy(tn, names[k], sizeof(tn));
        memcpy(names[k], names[best], sizeof(tn));
        memcpy(names[best], tn, sizeof(tn));
        const char *base = strrchr(names[k], '/');
        printf("  %6ld KiB %s\n", rss[k], base != NULL ? base + 1 : names[k]);
    }
}

int main(int argc, char **argv)
{
    size_t n = (size_t)bench_opt_long(argc, argv, "--count", 10000);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 8);
    int conc = (int)bench_opt_long(argc, argv, "--concurrency", 8);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();
    char *ns = bench_namespace_new(&e, "bench-mem");
    size_t levels[3] = {0, n <= 1000 ? n / 2 : 1000, n};
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
        snprintf(log, sizeof(log), "%s/controller-memory-%zu.log", e.out_dir, levels[l]);
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
        printf("%zu tasks cached: VmRSS %ld KiB (%.1f MiB; RssAnon %ld KiB, RssFile %ld KiB = "
               "shared library pages), VmHWM %ld KiB, after %.0f reconciles\n",
               levels[l], rss[l], (double)rss[l] / 1024.0, bench_proc_kib(c.pid, "RssAnon"),
               bench_proc_kib(c.pid, "RssFile"), hwm[l], rec);
        printf("  Pss %ld KiB (Pss_Anon %ld, Pss_File %ld: library pages shared with other "
               "processes count in part)\n",
               bench_proc_file_kib(c.pid, "smaps_rollup", "Pss"),
               bench_proc_file_kib(c.pid, "smaps_rollup", "Pss_Anon"),
               bench_proc_file_kib(c.pid, "smaps_rollup", "Pss_File"));
        if (l == 0) {
            printf("  largest resident mappings when idle:\n");
            print_mappings(c.pid, 12);
        }
        bench_ctrl_stop(&c);
    }
    if (bench_opt_long(argc, argv, "--massif", 0) != 0) {
        char out[512], outarg[600], log[512], cmd[1200];
        snprintf(out, sizeof(out), "%s/massif.out", e.out_dir);
        snprintf(outarg, sizeof(outarg), "--massif-out-file=%s", out);
        snprintf(log, sizeof(log), "%s/controller-massif.log", e.out_dir);
        const char *wrap[] = {"valgrind", "--tool=massif", "--threshold=2.0", outarg, NULL};
        bench_ctrl c;
        bench_ctrl_start(&e, ns, conc, log, wrap, &c);
        if (bench_ctrl_wait_ready(&c, 300 * AIT_NS_PER_S, NULL) == 0) {
            bench_ctrl_settle(&c, 3 * AIT_NS_PER_S, ait_time_now_ns() + 300 * AIT_NS_PER_S);
        }
        bench_ctrl_stop(&c);
        printf("massif (%zu tasks cached): the peak snapshot (heap bytes, then the allocation "
               "tree):\n",
               have);
        fflush(stdout);
        snprintf(cmd, sizeof(cmd),
                 "ms_print --threshold=2.0 '%s' | awk '/Detailed snapshots:/{s=$0; sub(/ "
                 "\\(peak\\).*/, \"\", s); "
                 "k=split(s, a, /[^0-9]+/); pk=a[k]} pk!=\"\" && $1==pk && NF>=5 {p=1} "
                 "p&&c<60{print; c++}' "
                 "| cut -c1-200",
                 out);
        if (system(cmd) != 0) {
            printf("  (ms_print failed)\n");
        }
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

/* SPDX-License-Identifier: Apache-2.0 */
/* CPU benchmark (SPEC.md §9): the controller's CPU seconds (utime + stime from /proc/<pid>/stat)
 * per 1 000 reconciles (controller_runtime_reconcile_total), over N AITasks (default 500) run to
 * completion with the fake kubelet (tests/fakes/fake_kubelet.py --mode succeed; a fake, since no
 * kubelet can run here). With --callgrind N it then runs N more tasks against a controller under
 * valgrind --tool=callgrind --toggle-collect=ait_reconcile and prints the instructions per
 * reconcile. With --perf 1, perf record samples the controller during the main run and the
 * top of perf report (self time) is printed.
 * Options: --count N --concurrency N --callgrind N --perf 0|1 --creators N. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchlib.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"

static pid_t start_kubelet(bench_env *e, const char *ns)
{
    const char *src = getenv("AIT_SOURCE_DIR");
    char script[512], log[512];
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_kubelet.py", src ? src : ".");
    snprintf(log, sizeof(log), "%s/kubelet-%s.log", e->out_dir, ns);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("python3", "python3", script, "--cluster-dir", e->cluster_dir, "--namespace", ns,
               "--mode", "succeed", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_pid(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

typedef struct run {
    double reconciles;
    double cpu_s;
    double secs;
} run;

/* Runs n tasks to completion against c; fills r. */
static int workload(bench_env *e, const char *ns, bench_ctrl *c, size_t n, int creators,
                    int64_t settle_ns, run *r)
{
    if (bench_ctrl_wait_ready(c, 180 * AIT_NS_PER_S, NULL) != 0) {
        fprintf(stderr, "bench: controller not ready\n");
        return -1;
    }
    double rec0 = bench_ctrl_settle(c, AIT_NS_PER_S, ait_time_now_ns() + 30 * AIT_NS_PER_S);
    double cpu0 = bench_proc_cpu_s(c->pid);
    int64_t t0 = ait_time_now_ns();
    size_t errs = bench_create_tasks(e, ns, 0, n, creators);
    if (errs > 0) {
        fprintf(stderr, "bench: %zu creates failed\n", errs);
    }
    /* Wait for the outcome through the API server, not by scraping the controller (a scrape
     * costs the controller CPU too). */
    int64_t deadline = ait_time_now_ns() + 600 * AIT_NS_PER_S;
    size_t done = 0;
    while (done < n - errs && ait_time_now_ns() < deadline) {
        ait_time_sleep_ns(2 * AIT_NS_PER_S);
        json_object *list = bench_list_tasks(e, ns);
        json_object *items = ait_json_array(list, "items");
        done = 0;
        for (size_t i = 0; items != NULL && i < json_object_array_length(items); i++) {
            const char *ph = ait_json_str(json_object_array_get_idx(items, i), "status.phase");
            if (ph != NULL && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0)) {
                done++;
            }
        }
        json_object_put(list);
    }
    printf("  %zu of %zu tasks reached a terminal phase\n", done, n - errs);
    double rec1 = bench_ctrl_settle(c, settle_ns, deadline);
    r->cpu_s = bench_proc_cpu_s(c->pid) - cpu0;
    r->secs = (double)(ait_time_now_ns() - t0 - settle_ns) / 1e9;
    r->reconciles = rec1 - rec0;
    char *m = bench_ctrl_metrics(c);
    if (m != NULL) {
        printf("  outcomes (aitask_tasks_total):\n");
        bench_metric_print(m, "aitask_tasks_total");
        printf("  reconciles:\n");
        bench_metric_print(m, "controller_runtime_reconcile_total");
    }
    ait_free(m);
    return 0;
}

static double callgrind_total(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    char line[1024];
    double v = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0) {
            v = strtod(line + (line[0] == 't' ? 7 : 8), NULL);
        }
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    size_t n = (size_t)bench_opt_long(argc, argv, "--count", 500);
    int conc = (int)bench_opt_long(argc, argv, "--concurrency", 8);
    size_t ncg = (size_t)bench_opt_long(argc, argv, "--callgrind", 0);
    int creators = (int)bench_opt_long(argc, argv, "--creators", 4);
    bench_env e;
    bench_env_init(&e);
    bench_print_machine();

    char *ns = bench_namespace_new(&e, "bench-cpu");
    pid_t kubelet = start_kubelet(&e, ns);
    char log[512];
    snprintf(log, sizeof(log), "%s/controller-cpu.log", e.out_dir);
    bench_ctrl c;
    bench_ctrl_start(&e, ns, conc, log, NULL, &c);
    run r = {0};
    pid_t perf = 0;
    char perf_data[512];
    snprintf(perf_data, sizeof(perf_data), "%s/perf.data", e.out_dir);
    if (bench_opt_long(argc, argv, "--perf", 0) != 0) {
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)c.pid);
        fflush(NULL);
        perf = fork();
        if (perf == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
            execlp("perf", "perf", "record", "-F", "499", "-g", "-p", pid, "-o", perf_data,
                   (char *)NULL);
            _exit(127);
        }
    }
    printf("cpu: %zu tasks run to completion (fake kubelet), controller --concurrency %d\n", n,
           conc);
    if (workload(&e, ns, &c, n, creators, 3 * AIT_NS_PER_S, &r) != 0) {
        return 1;
    }
    long rss = bench_proc_kib(c.pid, "VmRSS");
    if (perf > 0) {
        kill(perf, SIGINT);
        waitpid(perf, NULL, 0);
    }
    bench_ctrl_stop(&c);
    if (perf > 0) {
        char cmd[1200];
        snprintf(cmd, sizeof(cmd),
                 "perf report --stdio --no-children --sort dso,symbol --percent-limit 1.5 -g none "
                 "-i '%s' 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40",
                 perf_data);
        printf("perf report (self time, controller process):\n");
        fflush(stdout);
        if (system(cmd) != 0) {
            printf("  (perf report failed)\n");
        }
    }
    stop_pid(kubelet);
    double per1000 = r.reconciles > 0 ? r.cpu_s / r.reconciles * 1000.0 : 0;
    printf("%.0f reconciles (%.1f per task) in %.1f s; controller CPU %.2f s; RSS after %ld KiB\n",
           r.reconciles, r.reconciles / (double)n, r.secs, r.cpu_s, rss);

    double ir = -1;
    if (ncg > 0) {
        char *ns2 = bench_namespace_new(&e, "bench-cpu-cg");
        kubelet = start_kubelet(&e, ns2);
        char out[512], outarg[600];
        snprintf(out, sizeof(out), "%s/callgrind.out", e.out_dir);
        snprintf(outarg, sizeof(outarg), "--callgrind-out-file=%s", out);
        const char *wrap[] = {"valgrind", "--tool=callgrind", "--toggle-collect=ait_reconcile",
                              outarg, NULL};
        snprintf(log, sizeof(log), "%s/controller-callgrind.log", e.out_dir);
        bench_ctrl_start(&e, ns2, conc, log, wrap, &c);
        run rc = {0};
        printf("callgrind: %zu tasks against the controller under valgrind\n", ncg);
        if (workload(&e, ns2, &c, ncg, 1, 5 * AIT_NS_PER_S, &rc) == 0) {
            /* Reconciles before the workload (none: the namespace was empty) are included. */
            char *m = bench_ctrl_metrics(&c);
            double all = m ? bench_metric_sum(m, "controller_runtime_reconcile_total") : 0;
            ait_free(m);
            bench_ctrl_stop(&c);
            double total = callgrind_total(out);
            ir = all > 0 && total > 0 ? total / all : -1;
            printf("callgrind: %.0f instructions inside ait_reconcile over %.0f reconciles = "
                   "%.0f per reconcile (profile: %s; callgrind_annotate --inclusive=yes)\n",
                   total, all, ir, out);
        } else {
            bench_ctrl_stop(&c);
        }
        stop_pid(kubelet);
        ait_free(ns2);
    }
    printf("FIGURES cpu cpu_s_per_1000_reconciles=%.3f reconciles=%.0f cpu_s=%.2f "
           "instructions_per_reconcile=%.0f\n",
           per1000, r.reconciles, r.cpu_s, ir);
    ait_free(ns);
    bench_env_clear(&e);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Shared pieces of the controller benchmarks (SPEC.md §9): the cluster client, watches that
 * stamp the wall-clock time of each object's first ADDED event, paced parallel creators, the
 * controller process (started and stopped by PID) and readers of its RSS, CPU and metrics.
 * Benchmark objects are named "t-<7 digits>" (tasks) and "t-<7 digits>-a1" (their pods), so a
 * watch maps an event to its task index without a table. Benchmarks print; they never assert. */
#ifndef AIT_BENCH_BENCHLIB_H
#define AIT_BENCH_BENCHLIB_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/status.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "reconcile/config.h"

typedef struct bench_env {
    ait_kube_config *kcfg;
    ait_rest *rest; /* no client-side rate limit */
    ait_controller_config *ccfg;
    const char *cluster_dir;
    const char *controller_bin;
    const char *kubeconfig;
    const char *out_dir;   /* logs, profiles, config: $AIT_BENCH_OUT, else the cluster dir */
    char config_path[256]; /* the controller config the benchmarks pass with --config */
} bench_env;

/* From $KUBECONFIG, $AIT_CLUSTER_DIR and $AIT_CONTROLLER (the aitask-controller binary);
 * $AIT_BENCH_OUT (optional) is where logs and profiles go. Exits the process with a message
 * when something is missing. */
void bench_env_init(bench_env *e);
void bench_env_clear(bench_env *e);

/* Creates a fresh namespace "$AIT_BENCH_NS_PREFIX<prefix>-<random>" with Pod Security "restricted"
 * enforced. Returns owned (free with ait_free). Exits on failure. */
char *bench_namespace_new(bench_env *e, const char *prefix);

/* The AITask t-<i> in ns (python, tiny code). Returns owned. */
json_object *bench_task_build(const char *ns, size_t i);
char *bench_task_name(size_t i); /* "t-%07zu", owned */

/* ---- watches ---- */

typedef struct bench_watch bench_watch;
/* Starts a watch of gvr in ns from the current resourceVersion on its own thread, recording for
 * each index < n the wall-clock time (ns) of the first ADDED event of "t-<i>" or "t-<i>-a1".
 * Returns owned, stop with bench_watch_stop(). */
bench_watch *bench_watch_start(bench_env *e, const ait_gvr *gvr, const char *ns, size_t n);
int64_t bench_watch_added(bench_watch *w, size_t i); /* 0 = not seen */
size_t bench_watch_count(bench_watch *w);
size_t bench_watch_events(bench_watch *w); /* every event, of any type */
/* Waits until count >= n or the wall clock passes deadline_ns; returns the count. */
size_t bench_watch_wait(bench_watch *w, size_t n, int64_t deadline_ns);
void bench_watch_stop(bench_watch *w);

/* ---- parallel work ---- */

/* Runs fn(ctx, i) for i in [0, n) on threads threads. rate > 0 paces the starts (item i is not
 * started before t0 + i / rate seconds). Returns the number of items whose fn returned non-zero. */
size_t bench_parallel(size_t n, int threads, double rate, int (*fn)(void *ctx, size_t i),
                      void *ctx);

/* Creates AITasks t-<from>..t-<to-1> in ns with threads threads (no pacing). Returns errors. */
size_t bench_create_tasks(bench_env *e, const char *ns, size_t from, size_t to, int threads);

/* The write sequence of the controller's first reconciles of a task, done by a bare client with
 * the controller's own object builders: JSON-patch the finalizer, create the NetworkPolicy, the
 * code ConfigMap and the pod t-<i>-a1, PUT the status (phase Running, attempt 1), and POST an
 * events.k8s.io/v1 Event. task is borrowed (as listed). Returns AIT_OK or the first error. */
ait_status bench_bare_task(bench_env *e, ait_rest *rest, json_object *task, int with_event,
                           ait_error *err);

/* Creates AITasks t-<from>..t-<to-1> in ns and, for each, the objects and status the controller
 * would have made (bench_bare_task without the Event), with threads threads; the controller
 * must not run on ns meanwhile. Returns errors. */
size_t bench_populate(bench_env *e, const char *ns, size_t from, size_t to, int threads);

/* Lists the AITasks of ns (pages of 500). Returns owned List. Exits on failure. */
json_object *bench_list_tasks(bench_env *e, const char *ns);

/* ---- the controller ---- */

typedef struct bench_ctrl {
    pid_t pid;
    int probe_port;
    int metrics_port;
    int64_t exec_ns; /* wall clock just before fork */
    char log[256];
} bench_ctrl;

/* Starts the controller scoped to ns with its log in log_path. wrapper (may be NULL) is a
 * NULL-terminated argv prefix (e.g. valgrind). Exits on failure to fork. */
void bench_ctrl_start(bench_env *e, const char *ns, int concurrency, const char *log_path,
                      const char *const *wrapper, bench_ctrl *c);
/* Polls /readyz every 2 ms until 200; *ready_ns gets the wall-clock time. Returns 0 on success,
 * -1 on timeout or when the process died. */
int bench_ctrl_wait_ready(bench_ctrl *c, int64_t timeout_ns, int64_t *ready_ns);
/* SIGTERM, wait up to 60 s, then SIGKILL. */
void bench_ctrl_stop(bench_ctrl *c);
/* Wall-clock time of the first log line whose msg is msg, or 0. */
int64_t bench_ctrl_log_time(const bench_ctrl *c, const char *msg);
/* VmRSS / VmHWM in KiB (-1 on error). */
long bench_proc_kib(pid_t pid, const char *field);
/* The same for another "Field: N kB" file of /proc/<pid> ("smaps_rollup": Pss, Pss_Anon...). */
long bench_proc_file_kib(pid_t pid, const char *file, const char *field);
/* utime + stime in seconds. */
double bench_proc_cpu_s(pid_t pid);
/* GET /metrics. Returns owned text or NULL. */
char *bench_ctrl_metrics(const bench_ctrl *c);
/* Sum of every sample of family name (lines "name{...} v" or "name v") in text. */
double bench_metric_sum(const char *text, const char *name);
/* Prints the samples of family name, indented. */
void bench_metric_print(const char *text, const char *name);
/* Waits until reconcile totals stop changing for quiet_ns (or deadline); returns the total. */
double bench_ctrl_settle(const bench_ctrl *c, int64_t quiet_ns, int64_t deadline_ns);

/* ---- figures ---- */

/* Sorts v (n values) and returns the nearest-rank percentile p (0..100). */
int64_t bench_percentile(int64_t *v, size_t n, double p);
double bench_ms(int64_t ns);
/* Prints the machine (nproc, CPU model, RAM) once. */
void bench_print_machine(void);
/* Parses "--name value" integer options: returns the value of name in argv, or def. */
long bench_opt_long(int argc, char **argv, const char *name, long def);

#endif

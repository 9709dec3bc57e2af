/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/metrics: exact exposition text of counters, gauges and labelled histograms,
 * escaping, ordering, declaration errors, lock-free updates from several threads, the process_*
 * metrics, the standard families, and a full scrape that `promtool check metrics` accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "metrics/process.h"
#include "metrics/registry.h"
#include "metrics/std.h"

static char *render(ait_metrics *m)
{
    ait_buf b;
    ait_buf_init(&b, 0);
    assert_int_equal(ait_metrics_render(m, &b), AIT_OK);
    return ait_buf_take(&b);
}

static void test_counter_text(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metric_family *f = NULL;
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_COUNTER, "aitask_things_total", "Things done.",
                                     NULL, &f, NULL),
                     AIT_OK);
    ait_metric *c = ait_metric_family_with(f);
    ait_metric_inc(c);
    ait_metric_inc(c);
    ait_metric_add(c, 0.5);
    ait_metric_add(c, -3);  /* ignored: counters only go up */
    ait_metric_add(c, NAN); /* ignored */
    ait_metric_set(c, 100); /* ignored: not a gauge */
    assert_true(ait_metric_value(c) == 2.5);
    char *s = render(m);
    assert_string_equal(s, "# HELP aitask_things_total Things done.\n"
                           "# TYPE aitask_things_total counter\n"
                           "aitask_things_total 2.5\n");
    ait_free(s);
    /* NULL is a no-op everywhere, so code can run without a registry. */
    ait_metric_inc(NULL);
    ait_metric_observe(NULL, 1);
    assert_null(ait_metric_family_with(NULL));
    ait_metrics_free(m);
    ait_metrics_free(NULL);
}

static double answer_cb(void *ud)
{
    return *(double *)ud;
}

static void test_gauge_text(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metric_family *f = NULL;
    static const char *const labels[] = {"window", NULL};
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "aitask_budget_used_ratio",
                                     "Fraction spent.", labels, &f, NULL),
                     AIT_OK);
    ait_metric *monthly = ait_metric_family_with(f, "monthly");
    ait_metric *daily = ait_metric_family_with(f, "daily");
    assert_ptr_equal(ait_metric_family_with(f, "daily"), daily);
    ait_metric_set(daily, 0.25);
    ait_metric_inc(monthly);
    ait_metric_inc(monthly);
    ait_metric_dec(monthly);
    ait_metric_add(monthly, -0.125);
    double val = 42;
    assert_int_equal(ait_metrics_add_func(m, AIT_METRIC_GAUGE, "aitask_answer", "Computed.",
                                          answer_cb, &val, NULL),
                     AIT_OK);
    char *s = render(m);
    assert_string_equal(s, "# HELP aitask_answer Computed.\n"
                           "# TYPE aitask_answer gauge\n"
                           "aitask_answer 42\n"
                           "# HELP aitask_budget_used_ratio Fraction spent.\n"
                           "# TYPE aitask_budget_used_ratio gauge\n"
                           "aitask_budget_used_ratio{window=\"daily\"} 0.25\n"
                           "aitask_budget_used_ratio{window=\"monthly\"} 0.875\n");
    ait_free(s);
    /* The callback runs at each scrape. */
    val = -7.5;
    s = render(m);
    assert_non_null(strstr(s, "aitask_answer -7.5\n"));
    ait_free(s);
    ait_metrics_free(m);
}

static void test_histogram_text(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metric_family *f = NULL;
    static const char *const labels[] = {"provider", "code", NULL};
    static const double buckets[] = {0.5, 1, 2.5};
    assert_int_equal(ait_metrics_add_histogram(m, "aitask_req_seconds", "Latency.", labels, buckets,
                                               3, &f, NULL),
                     AIT_OK);
    ait_metric *a = ait_metric_family_with(f, "openai", "200");
    ait_metric *b = ait_metric_family_with(f, "anthropic", "429");
    ait_metric_observe(a, 0.25);
    ait_metric_observe(a, 0.5); /* upper bounds are inclusive */
    ait_metric_observe(a, 2);
    ait_metric_observe(a, 10);
    ait_metric_observe(b, 1);
    assert_int_equal(ait_metric_count(a), 4);
    char *s = render(m);
    assert_string_equal(
        s, "# HELP aitask_req_seconds Latency.\n"
           "# TYPE aitask_req_seconds histogram\n"
           "aitask_req_seconds_bucket{provider=\"anthropic\",code=\"429\",le=\"0.5\"} 0\n"
           "aitask_req_seconds_bucket{provider=\"anthropic\",code=\"429\",le=\"1\"} 1\n"
           "aitask_req_seconds_bucket{provider=\"anthropic\",code=\"429\",le=\"2.5\"} 1\n"
           "aitask_req_seconds_bucket{provider=\"anthropic\",code=\"429\",le=\"+Inf\"} 1\n"
           "aitask_req_seconds_sum{provider=\"anthropic\",code=\"429\"} 1\n"
           "aitask_req_seconds_count{provider=\"anthropic\",code=\"429\"} 1\n"
           "aitask_req_seconds_bucket{provider=\"openai\",code=\"200\",le=\"0.5\"} 2\n"
           "aitask_req_seconds_bucket{provider=\"openai\",code=\"200\",le=\"1\"} 2\n"
           "aitask_req_seconds_bucket{provider=\"openai\",code=\"200\",le=\"2.5\"} 3\n"
           "aitask_req_seconds_bucket{provider=\"openai\",code=\"200\",le=\"+Inf\"} 4\n"
           "aitask_req_seconds_sum{provider=\"openai\",code=\"200\"} 12.75\n"
           "aitask_req_seconds_count{provider=\"openai\",code=\"200\"} 4\n");
    ait_free(s);
    ait_metrics_free(m);
}

static void test_unlabelled_histogram_and_empty_family(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    static const double buckets[] = {1, INFINITY}; /* a trailing +Inf is dropped, not doubled */
    static const char *const labels[] = {"provider", NULL};
    assert_int_equal(ait_metrics_add_histogram(m, "b_seconds", "B.", NULL, buckets, 2, NULL, NULL),
                     AIT_OK);
    /* A labelled family with no child yet is not rendered at all. */
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_COUNTER, "a_total", "A.", labels, NULL, NULL),
                     AIT_OK);
    char *s = render(m);
    assert_string_equal(s, "# HELP b_seconds B.\n"
                           "# TYPE b_seconds histogram\n"
                           "b_seconds_bucket{le=\"1\"} 0\n"
                           "b_seconds_bucket{le=\"+Inf\"} 0\n"
                           "b_seconds_sum 0\n"
                           "b_seconds_count 0\n");
    ait_free(s);
    ait_metrics_free(m);
}

static void test_escaping(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metric_family *f = NULL;
    static const char *const labels[] = {"path", NULL};
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "x_seconds",
                                     "Back\\slash, \"quotes\" stay,\nnew line.", labels, &f, NULL),
                     AIT_OK);
    ait_metric_set(ait_metric_family_with(f, "a\\b\"c\nd"), 1);
    ait_metric_set(ait_metric_family_with(f, NULL), 2); /* NULL is "" */
    char *s = render(m);
    assert_string_equal(s, "# HELP x_seconds Back\\\\slash, \"quotes\" stay,\\nnew line.\n"
                           "# TYPE x_seconds gauge\n"
                           "x_seconds{path=\"\"} 2\n"
                           "x_seconds{path=\"a\\\\b\\\"c\\nd\"} 1\n");
    ait_free(s);
    ait_metrics_free(m);
}

static void test_order_is_deterministic(void **state)
{
    (void)state;
    /* The same metrics declared and created in two different orders render identically. */
    const char *names[] = {"zeta_total", "alpha_total", "mid_total"};
    const char *vals[] = {"b", "c", "a"};
    static const char *const labels[] = {"k", NULL};
    char *out[2];
    for (int round = 0; round < 2; round++) {
        ait_metrics *m = ait_metrics_new();
        for (int i = 0; i < 3; i++) {
            int ni = round ? 2 - i : i;
            ait_metric_family *f = NULL;
            assert_int_equal(
                ait_metrics_add(m, AIT_METRIC_COUNTER, names[ni], "H.", labels, &f, NULL), AIT_OK);
            for (int j = 0; j < 3; j++) {
                ait_metric_inc(ait_metric_family_with(f, vals[round ? j : 2 - j]));
            }
        }
        out[round] = render(m);
        ait_metrics_free(m);
    }
    assert_string_equal(out[0], out[1]);
    const char *a = strstr(out[0], "alpha_total{k=\"a\"}");
    const char *b = strstr(out[0], "alpha_total{k=\"b\"}");
    const char *z = strstr(out[0], "# HELP zeta_total");
    assert_true(a && b && z && a < b && b < z);
    ait_free(out[0]);
    ait_free(out[1]);
}

static void test_declaration_errors(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_error err = {0};
    ait_metric_family *f = (ait_metric_family *)&err;
    static const char *const le[] = {"le", NULL};
    static const char *const dup[] = {"a", "a", NULL};
    static const char *const reserved[] = {"__name", NULL};
    static const char *const bad[] = {"1x", NULL};
    static const double down[] = {1, 0.5};
    static const double nan_b[] = {NAN};
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_COUNTER, "requests", "H", NULL, &f, &err),
                     AIT_ERR_INVALID);
    assert_null(f);
    assert_non_null(strstr(err.msg, "_total"));
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g_total", "H", NULL, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "9lives", "H", NULL, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "has-dash", "H", NULL, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "H", dup, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "H", reserved, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "H", bad, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_HISTOGRAM, "h", "H", NULL, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add_histogram(m, "h", "H", le, down, 1, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add_histogram(m, "h", "H", NULL, down, 2, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add_histogram(m, "h", "H", NULL, nan_b, 1, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add_histogram(m, "h", "H", NULL, NULL, 0, NULL, NULL),
                     AIT_ERR_INVALID);
    assert_int_equal(ait_metrics_add_func(m, AIT_METRIC_GAUGE, "f", "H", NULL, NULL, NULL),
                     AIT_ERR_INVALID);
    /* Nothing above was declared, so the name is still free; a second declaration is not. */
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "H", NULL, NULL, NULL), AIT_OK);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_COUNTER, "g_total", "H", NULL, NULL, NULL),
                     AIT_OK);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "H", NULL, NULL, &err),
                     AIT_ERR_EXISTS);
    char *s = render(m);
    assert_string_equal(s, "# HELP g H\n# TYPE g gauge\ng 0\n"
                           "# HELP g_total H\n# TYPE g_total counter\ng_total 0\n");
    ait_free(s);
    ait_metrics_free(m);
}

static void test_format_value(void **state)
{
    (void)state;
    const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {-2, "-2"},
        {0.1, "0.1"},
        {0.005, "0.005"},
        {1e-8, "1e-08"},
        {123456789, "123456789"},
        {1.5e300, "1.5e+300"},
        {1.0 / 3, "0.3333333333333333"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
        {9007199254740993.0, "9007199254740992"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ait_buf b;
        ait_buf_init(&b, 0);
        assert_int_equal(ait_metrics_format_value(&b, cases[i].v), AIT_OK);
        assert_string_equal(ait_buf_str(&b), cases[i].want);
        if (isfinite(cases[i].v)) {
            assert_true(strtod(ait_buf_str(&b), NULL) == cases[i].v);
        }
        ait_buf_free(&b);
    }
}

#define THREADS 4
#define ITERS 100000

struct worker {
    ait_metric_family *counter;
    ait_metric_family *hist;
    ait_metric_family *gauge;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int i = 0; i < ITERS; i++) {
        /* Look the child up every time, so creation races and lock-free lookups both run. */
        ait_metric_inc(ait_metric_family_with(w->counter, keys[(i + w->id) % 8]));
        ait_metric_add(ait_metric_family_with(w->counter, "sum"), 0.5);
        ait_metric_observe(ait_metric_family_with(w->hist, keys[i % 2]), (i % 4) * 0.5);
        ait_metric_inc(ait_metric_family_with(w->gauge));
        ait_metric_dec(ait_metric_family_with(w->gauge));
    }
    return NULL;
}

static void test_concurrent_updates_sum_exactly(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    static const char *const labels[] = {"key", NULL};
    static const double buckets[] = {0.5, 1};
    struct worker w[THREADS];
    ait_metric_family *c = NULL, *h = NULL, *g = NULL;
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_COUNTER, "c_total", "C.", labels, &c, NULL),
                     AIT_OK);
    assert_int_equal(ait_metrics_add_histogram(m, "h_seconds", "H.", labels, buckets, 2, &h, NULL),
                     AIT_OK);
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "G.", NULL, &g, NULL), AIT_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){c, h, g, i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    /* Scrape while the workers run: rendering must be safe against creation and updates. */
    for (int i = 0; i < 20; i++) {
        char *s = render(m);
        ait_free(s);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    double total = 0;
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int k = 0; k < 8; k++) {
        double v = ait_metric_value(ait_metric_family_with(c, keys[k]));
        assert_true(v == (double)THREADS * ITERS / 8);
        total += v;
    }
    assert_true(total == (double)THREADS * ITERS);
    assert_true(ait_metric_value(ait_metric_family_with(c, "sum")) == THREADS * ITERS * 0.5);
    assert_true(ait_metric_value(ait_metric_family_with(g)) == 0);
    unsigned long long n = ait_metric_count(ait_metric_family_with(h, "a")) +
                           ait_metric_count(ait_metric_family_with(h, "b"));
    assert_int_equal(n, (unsigned long long)THREADS * ITERS);
    /* Observations cycle 0, 0.5, 1, 1.5: the sum per thread is ITERS/4 * 3. */
    double hsum = ait_metric_value(ait_metric_family_with(h, "a")) +
                  ait_metric_value(ait_metric_family_with(h, "b"));
    assert_true(hsum == (double)THREADS * ITERS / 4 * 3);
    char *s = render(m);
    char want[128];
    snprintf(want, sizeof want, "h_seconds_bucket{key=\"a\",le=\"+Inf\"} %d\n",
             THREADS * ITERS / 2);
    assert_non_null(strstr(s, want));
    snprintf(want, sizeof want, "h_seconds_count{key=\"a\"} %d\n", THREADS * ITERS / 2);
    assert_non_null(strstr(s, want));
    ait_free(s);
    ait_metrics_free(m);
}

static void test_process_stats(void **state)
{
    (void)state;
    ait_process_stats ps;
    assert_int_equal(ait_process_stats_read(&ps, NULL), AIT_OK);
    assert_true(ps.resident_bytes > 1024 * 1024);
    assert_true(ps.virtual_bytes >= ps.resident_bytes);
    assert_true(ps.open_fds >= 3);
    assert_true(ps.max_fds >= ps.open_fds);
    assert_true(ps.cpu_seconds >= 0);
    double now = (double)time(NULL);
    assert_true(ps.start_time > now - 600 && ps.start_time <= now + 2);
    /* Opening a file shows up in the count. */
    FILE *f = fopen("/proc/self/stat", "r");
    assert_non_null(f);
    ait_process_stats ps2;
    assert_int_equal(ait_process_stats_read(&ps2, NULL), AIT_OK);
    assert_true(ps2.open_fds == ps.open_fds + 1);
    fclose(f);
    /* Burn a little CPU: the counter moves. */
    volatile double x = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    do {
        for (int i = 0; i < 100000; i++) {
            x += i * 0.5;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    } while ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 < 0.05);
    assert_true(x >= 0);
    assert_int_equal(ait_process_stats_read(&ps2, NULL), AIT_OK);
    assert_true(ps2.cpu_seconds > ps.cpu_seconds);
}

struct seen {
    char names[64][64];
    ait_metric_type types[64];
    int n;
};

static void collect(const char *name, ait_metric_type type, void *ud)
{
    struct seen *s = ud;
    if (s->n < 64) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
        s->types[s->n++] = type;
    }
}

static int type_of(const struct seen *s, const char *name)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            return (int)s->types[i];
        }
    }
    return -1;
}

/* Runs `promtool check metrics` on text; returns its exit status and copies its output. Skips
 * (returns -1) when promtool is not installed. */
static int promtool_check(const char *text, char *out, size_t out_len)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        return -1;
    }
    char path[] = "/tmp/ait-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
}

static void test_std_families_and_promtool(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metrics_std *s = ait_metrics_std_new(m);
    struct seen seen = {0};
    ait_metrics_each_family(m, collect, &seen);
    const struct {
        const char *name;
        ait_metric_type type;
    } want[] = {
        {"aitask_task_duration_seconds", AIT_METRIC_HISTOGRAM},
        {"aitask_tasks_total", AIT_METRIC_COUNTER},
        {"aitask_queue_depth", AIT_METRIC_GAUGE},
        {"aitask_queue_wait_seconds", AIT_METRIC_HISTOGRAM},
        {"aitask_attempts_total", AIT_METRIC_COUNTER},
        {"aitask_heals_total", AIT_METRIC_COUNTER},
        {"aitask_provider_requests_total", AIT_METRIC_COUNTER},
        {"aitask_provider_request_duration_seconds", AIT_METRIC_HISTOGRAM},
        {"aitask_provider_failover_seconds", AIT_METRIC_HISTOGRAM},
        {"aitask_provider_circuit_open", AIT_METRIC_GAUGE},
        {"aitask_llm_tokens_total", AIT_METRIC_COUNTER},
        {"aitask_llm_cost_usd_total", AIT_METRIC_COUNTER},
        {"aitask_budget_used_ratio", AIT_METRIC_GAUGE},
        {"aitask_vault_requests_total", AIT_METRIC_COUNTER},
        {"aitask_audit_entries_total", AIT_METRIC_COUNTER},
        {"aitask_audit_write_errors_total", AIT_METRIC_COUNTER},
        {"aitask_secret_age_seconds", AIT_METRIC_GAUGE},
        {"aitask_trace_spans_dropped_total", AIT_METRIC_COUNTER},
        {"controller_runtime_reconcile_total", AIT_METRIC_COUNTER},
        {"controller_runtime_reconcile_time_seconds", AIT_METRIC_HISTOGRAM},
        {"workqueue_depth", AIT_METRIC_GAUGE},
        {"workqueue_adds_total", AIT_METRIC_COUNTER},
        {"workqueue_queue_duration_seconds", AIT_METRIC_HISTOGRAM},
        {"workqueue_work_duration_seconds", AIT_METRIC_HISTOGRAM},
        {"workqueue_retries_total", AIT_METRIC_COUNTER},
        {"rest_client_requests_total", AIT_METRIC_COUNTER},
        {"rest_client_request_duration_seconds", AIT_METRIC_HISTOGRAM},
        {"leader_election_master_status", AIT_METRIC_GAUGE},
        {"process_cpu_seconds_total", AIT_METRIC_COUNTER},
        {"process_resident_memory_bytes", AIT_METRIC_GAUGE},
        {"process_virtual_memory_bytes", AIT_METRIC_GAUGE},
        {"process_open_fds", AIT_METRIC_GAUGE},
        {"process_max_fds", AIT_METRIC_GAUGE},
        {"process_start_time_seconds", AIT_METRIC_GAUGE},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (type_of(&seen, want[i].name) != (int)want[i].type) {
            fail_msg("%s missing or of the wrong type", want[i].name);
        }
    }
    /* Leave the real list for tests/integration/test_rules.sh, which checks that the names it
     * reads from the source match, and that dashboards and rules use only these. */
    assert_true(seen.n < 64); /* the buffer held every name */
    const char *build = getenv("AIT_BUILD_DIR");
    if (build) {
        static const char *const tn[] = {"counter", "gauge", "histogram"};
        char path[4096];
        snprintf(path, sizeof path, "%s/metrics-declared.txt", build);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < seen.n; i++) {
            fprintf(f, "%s %s\n", seen.names[i], tn[seen.types[i]]);
        }
        assert_int_equal(fclose(f), 0);
    }

    /* Label names are part of the contract: dashboards and rules select on them. */
    assert_int_equal(ait_metric_family_label_count(s->reconcile_total), 2);
    assert_int_equal(ait_metric_family_label_count(s->rest_client_requests_total), 3);
    assert_int_equal(ait_metric_family_label_count(s->llm_tokens_total), 3);
    assert_string_equal(ait_metric_family_name(s->secret_age_seconds), "aitask_secret_age_seconds");

    /* Every struct field was filled. */
    const ait_metric_family *const *fields = (const ait_metric_family *const *)&s->registry + 1;
    size_t nfields = (sizeof *s - sizeof s->registry) / sizeof(ait_metric_family *);
    for (size_t i = 0; i < nfields; i++) {
        assert_non_null(fields[i]);
    }

    /* Use every labelled family once, plus awkward label values, and let promtool lint it. */
    ait_metric_inc(ait_metric_family_with(s->tasks_total, "succeeded"));
    ait_metric_observe(ait_metric_family_with(s->task_duration_seconds), 42);
    ait_metric_observe(ait_metric_family_with(s->queue_wait_seconds), 0.3);
    ait_metric_inc(ait_metric_family_with(s->attempts_total, "failed"));
    ait_metric_inc(ait_metric_family_with(s->heals_total, "openai", "success"));
    ait_metric_inc(ait_metric_family_with(s->provider_requests_total, "openai", "429"));
    ait_metric_observe(ait_metric_family_with(s->provider_request_duration_seconds, "groq"), 0.7);
    ait_metric_observe(ait_metric_family_with(s->provider_failover_seconds), 0.2);
    ait_metric_set(ait_metric_family_with(s->provider_circuit_open, "gemini"), 1);
    ait_metric_add(ait_metric_family_with(s->llm_tokens_total, "openai", "gpt-4o", "prompt"), 912);
    ait_metric_add(ait_metric_family_with(s->llm_cost_usd_total, "openai", "gpt-4o"), 0.0123);
    ait_metric_set(ait_metric_family_with(s->budget_used_ratio, "daily"), 0.5);
    ait_metric_inc(ait_metric_family_with(s->vault_requests_total, "read", "200"));
    ait_metric_set(ait_metric_family_with(s->secret_age_seconds, "secret/\"x\"\\y\nz"), 86400);
    ait_metric_inc(ait_metric_family_with(s->reconcile_total, "aitask", "success"));
    ait_metric_inc(ait_metric_family_with(s->reconcile_errors_total, "aitask"));
    ait_metric_observe(ait_metric_family_with(s->reconcile_time_seconds, "aitask"), 0.01);
    ait_metric_set(ait_metric_family_with(s->active_workers, "aitask"), 2);
    ait_metric_set(ait_metric_family_with(s->max_concurrent_reconciles, "aitask"), 4);
    ait_metric_set(ait_metric_family_with(s->workqueue_depth, "aitask"), 3);
    ait_metric_inc(ait_metric_family_with(s->workqueue_adds_total, "aitask"));
    ait_metric_observe(ait_metric_family_with(s->workqueue_queue_duration_seconds, "aitask"), 1e-4);
    ait_metric_observe(ait_metric_family_with(s->workqueue_work_duration_seconds, "aitask"), 0.02);
    ait_metric_inc(ait_metric_family_with(s->workqueue_retries_total, "aitask"));
    ait_metric_set(ait_metric_family_with(s->workqueue_unfinished_work_seconds, "aitask"), 0);
    ait_metric_set(ait_metric_family_with(s->workqueue_longest_running_processor_seconds, "aitask"),
                   0);
    ait_metric_inc(ait_metric_family_with(s->rest_client_requests_total, "200", "GET", "x:6443"));
    ait_metric_observe(ait_metric_family_with(s->rest_client_request_duration_seconds, "GET", "x"),
                       0.03);
    ait_metric_set_to_now(ait_metric_family_with(s->leader_election_master_status, "aitask"));
    ait_metric_set(ait_metric_family_with(s->leader_election_master_status, "aitask"), 1);

    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(
        strstr(text, "aitask_secret_age_seconds{path=\"secret/\\\"x\\\"\\\\y\\nz\"} 86400\n"));
    char out[4096];
    int rc = promtool_check(text, out, sizeof out);
    if (rc == -1) {
        ait_free(text);
        ait_metrics_std_free(s);
        ait_metrics_free(m);
        skip();
    }
    if (rc != 0 || out[0] != '\0') {
        fail_msg("promtool check metrics: rc=%d\n%s", rc, out);
    }
    /* The check can fail: a counter without _total, smuggled in by hand, is reported. */
    rc = promtool_check("# HELP bad_count Bad.\n# TYPE bad_count counter\nbad_count 1\n", out,
                        sizeof out);
    assert_true(rc != 0 || out[0] != '\0');
    ait_free(text);
    ait_metrics_std_free(s);
    ait_metrics_std_free(NULL);
    ait_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_text),
        cmocka_unit_test(test_gauge_text),
        cmocka_unit_test(test_histogram_text),
        cmocka_unit_test(test_unlabelled_histogram_and_empty_family),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_order_is_deterministic),
        cmocka_unit_test(test_declaration_errors),
        cmocka_unit_test(test_format_value),
        cmocka_unit_test(test_concurrent_updates_sum_exactly),
        cmocka_unit_test(test_process_stats),
        cmocka_unit_test(test_std_families_and_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

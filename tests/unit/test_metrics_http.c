/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/metrics/http: a real libmicrohttpd server on 127.0.0.1:0, fetched with
 * libcurl: /metrics (checked by `promtool check metrics` when installed), /healthz, /readyz
 * flipping from 503 to 200, 404 and 405 answers, split and disabled addresses, address parsing,
 * and a clean stop that frees the port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "metrics/http.h"
#include "metrics/registry.h"
#include "metrics/std.h"

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    if (ait_buf_append(ud, p, size * n) != AIT_OK) {
        return 0;
    }
    return size * n;
}

/* GETs (or sends method to) http://127.0.0.1:port/path; returns the status code, body in *body
 * (owned, free with ait_free), the content type in ctype when given. */
static long fetch(int port, const char *path, const char *method, char **body, char *ctype,
                  size_t ctype_len)
{
    ait_buf b;
    ait_buf_init(&b, 0);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (method) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (ctype) {
            char *ct = NULL;
            curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
            snprintf(ctype, ctype_len, "%s", ct ? ct : "");
        }
    }
    curl_easy_cleanup(c);
    *body = ait_buf_take(&b);
    return code;
}

struct readiness {
    atomic_int ready;
    atomic_int calls;
};

static int ready_cb(void *ud, char *reason, size_t len)
{
    struct readiness *r = ud;
    atomic_fetch_add(&r->calls, 1);
    if (atomic_load(&r->ready)) {
        return 1;
    }
    snprintf(reason, len, "caches not synced");
    return 0;
}

static int promtool_check(const char *text, char *out, size_t out_len)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        return -1;
    }
    char path[] = "/tmp/ait-metrics-http-XXXXXX";
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

static void test_shared_server(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    ait_metrics_std *s = ait_metrics_std_new(m);
    ait_metric_inc(ait_metric_family_with(s->tasks_total, "succeeded"));
    ait_metric_observe(ait_metric_family_with(s->queue_wait_seconds), 12);
    ait_metric_set(ait_metric_family_with(s->secret_age_seconds, "kv/\"openai\"\\key"), 3600);
    struct readiness r = {0};
    ait_metrics_http_opts o = {.metrics_addr = "127.0.0.1:0",
                               .probe_addr = "127.0.0.1:0",
                               .registry = m,
                               .ready_cb = ready_cb,
                               .ready_ud = &r};
    ait_metrics_http *h = NULL;
    ait_error err = {0};
    assert_int_equal(ait_metrics_http_start(&o, &h, &err), AIT_OK);
    int port = ait_metrics_http_metrics_port(h);
    assert_true(port > 0);
    assert_int_equal(ait_metrics_http_probe_port(h), port);

    char *body = NULL;
    char ctype[128];
    assert_int_equal(fetch(port, "/metrics", NULL, &body, ctype, sizeof ctype), 200);
    assert_string_equal(ctype, AIT_METRICS_CONTENT_TYPE);
    assert_non_null(strstr(body, "aitask_tasks_total{outcome=\"succeeded\"} 1\n"));
    assert_non_null(strstr(body, "aitask_queue_wait_seconds_bucket{le=\"30\"} 1\n"));
    assert_non_null(strstr(body, "# TYPE process_resident_memory_bytes gauge\n"));
    /* The scrape is live: a change shows up in the next one. */
    ait_metric_inc(ait_metric_family_with(s->tasks_total, "succeeded"));
    char *body2 = NULL;
    assert_int_equal(fetch(port, "/metrics", NULL, &body2, NULL, 0), 200);
    assert_non_null(strstr(body2, "aitask_tasks_total{outcome=\"succeeded\"} 2\n"));
    ait_free(body2);

    char out[4096];
    int rc = promtool_check(body, out, sizeof out);
    if (rc != -1 && (rc != 0 || out[0] != '\0')) {
        fail_msg("promtool check metrics on the live scrape: rc=%d\n%s", rc, out);
    }
    ait_free(body);

    assert_int_equal(fetch(port, "/healthz", NULL, &body, NULL, 0), 200);
    assert_string_equal(body, "ok");
    ait_free(body);
    assert_int_equal(fetch(port, "/readyz", NULL, &body, NULL, 0), 503);
    assert_non_null(strstr(body, "caches not synced"));
    ait_free(body);
    atomic_store(&r.ready, 1);
    assert_int_equal(fetch(port, "/readyz", NULL, &body, NULL, 0), 200);
    assert_string_equal(body, "ok");
    ait_free(body);
    assert_int_equal(atomic_load(&r.calls), 2);

    assert_int_equal(fetch(port, "/nope", NULL, &body, NULL, 0), 404);
    ait_free(body);
    assert_int_equal(fetch(port, "/metrics/x", NULL, &body, NULL, 0), 404);
    ait_free(body);
    assert_int_equal(fetch(port, "/metrics", "POST", &body, NULL, 0), 405);
    ait_free(body);

    ait_metrics_http_free(h);
    /* Stopped: the port refuses connections. */
    assert_int_equal(fetch(port, "/healthz", NULL, &body, NULL, 0), -1);
    ait_free(body);
    ait_metrics_http_free(NULL);
    ait_metrics_std_free(s);
    ait_metrics_free(m);
    (void)rc;
}

static void test_split_and_disabled(void **state)
{
    (void)state;
    ait_metrics *m = ait_metrics_new();
    assert_int_equal(ait_metrics_add(m, AIT_METRIC_GAUGE, "g", "G.", NULL, NULL, NULL), AIT_OK);
    ait_metrics_http_opts o = {
        .metrics_addr = "127.0.0.1:0", .probe_addr = "[::1]:0", .registry = m};
    ait_metrics_http *h = NULL;
    ait_error err = {0};
    ait_status st = ait_metrics_http_start(&o, &h, &err);
    if (st != AIT_OK) {
        /* No IPv6 loopback on this machine: use a second IPv4 server instead. */
        o.probe_addr = "localhost:0";
        assert_int_equal(ait_metrics_http_start(&o, &h, &err), AIT_OK);
    }
    int mp = ait_metrics_http_metrics_port(h), pp = ait_metrics_http_probe_port(h);
    assert_true(mp > 0 && pp > 0 && mp != pp);
    char *body = NULL;
    assert_int_equal(fetch(mp, "/metrics", NULL, &body, NULL, 0), 200);
    assert_string_equal(body, "# HELP g G.\n# TYPE g gauge\ng 0\n");
    ait_free(body);
    /* Each server answers only its own paths. */
    assert_int_equal(fetch(mp, "/healthz", NULL, &body, NULL, 0), 404);
    ait_free(body);
    ait_metrics_http_free(h);

    /* "0" disables one server; with no ready callback /readyz is always ready. */
    o.metrics_addr = "0";
    o.probe_addr = "127.0.0.1:0";
    assert_int_equal(ait_metrics_http_start(&o, &h, &err), AIT_OK);
    assert_int_equal(ait_metrics_http_metrics_port(h), 0);
    pp = ait_metrics_http_probe_port(h);
    assert_true(pp > 0);
    assert_int_equal(fetch(pp, "/readyz", NULL, &body, NULL, 0), 200);
    ait_free(body);
    assert_int_equal(fetch(pp, "/metrics", NULL, &body, NULL, 0), 404);
    ait_free(body);

    /* A port in use is an I/O error with a message, and nothing leaks. */
    char busy[32];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", pp);
    ait_metrics_http_opts o2 = {.metrics_addr = busy, .probe_addr = "0", .registry = m};
    ait_metrics_http *h2 = (ait_metrics_http *)&err;
    assert_int_equal(ait_metrics_http_start(&o2, &h2, &err), AIT_ERR_IO);
    assert_null(h2);
    assert_non_null(strstr(err.msg, busy));
    ait_metrics_http_free(h);
    ait_metrics_free(m);
}

static void test_parse_addr(void **state)
{
    (void)state;
    const struct {
        const char *in;
        ait_status st;
        const char *host;
        int port;
        int disabled;
    } cases[] = {
        {":8080", AIT_OK, "", 8080, 0},
        {"127.0.0.1:0", AIT_OK, "127.0.0.1", 0, 0},
        {"[::1]:9090", AIT_OK, "::1", 9090, 0},
        {"localhost:8081", AIT_OK, "localhost", 8081, 0},
        {"0", AIT_OK, "", 0, 1},
        {NULL, AIT_OK, "", 0, 1},
        {"8080", AIT_ERR_INVALID, "", 0, 0},
        {"::1:80", AIT_ERR_INVALID, "", 0, 0},
        {"[::1:80", AIT_ERR_INVALID, "", 0, 0},
        {"host:", AIT_ERR_INVALID, "", 0, 0},
        {"host:65536", AIT_ERR_INVALID, "", 0, 0},
        {"host:80a", AIT_ERR_INVALID, "", 0, 0},
        {"host:-1", AIT_ERR_INVALID, "", 0, 0},
        {"", AIT_ERR_INVALID, "", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[64];
        int port = -1, disabled = -1;
        ait_status st =
            ait_metrics_http_parse_addr(cases[i].in, host, sizeof host, &port, &disabled, NULL);
        if (st != cases[i].st) {
            fail_msg("%s: status %d, want %d", cases[i].in ? cases[i].in : "NULL", st, cases[i].st);
        }
        if (st == AIT_OK) {
            assert_string_equal(host, cases[i].host);
            assert_int_equal(port, cases[i].port);
            assert_int_equal(disabled, cases[i].disabled);
        }
    }
    ait_metrics_http_opts o = {.metrics_addr = "nope", .probe_addr = "0"};
    ait_metrics_http *h = NULL;
    ait_error err = {0};
    assert_int_equal(ait_metrics_http_start(&o, &h, &err), AIT_ERR_INVALID);
    assert_null(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_server),
        cmocka_unit_test(test_split_and_disabled),
        cmocka_unit_test(test_parse_addr),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

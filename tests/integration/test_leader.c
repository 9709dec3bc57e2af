/* SPDX-License-Identifier: Apache-2.0 */
/* Integration test of kube/leader and kube/events against the real kube-apiserver (KUBECONFIG).
 * Candidates are separate processes (this binary re-executed with --candidate) electing on one
 * Lease with short timings: exactly one leader; SIGKILL of the leader -> takeover after the lease
 * expires; SIGTERM (clean release) -> takeover at once. Each run uses its own namespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "kube/config.h"
#include "kube/events.h"
#include "kube/leader.h"
#include "kube/rest.h"

#define LEASE_MS 4000
#define RENEW_MS 3000
#define RETRY_MS 500
#define LEASE_NAME "aitask-controller-leader"

/* ---- candidate mode (child process) ---- */

static void say(const char *what, const char *id, const char *extra)
{
    /* one write per line so the parent never sees a torn line */
    char line[256];
    int n = snprintf(line, sizeof(line), "%s %s %lld %s\n", what, id, (long long)ait_time_mono_ns(),
                     extra ? extra : "-");
    if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) < 0) {
        _exit(3);
    }
}

static const char *g_id;

static void c_started(void *ctx)
{
    (void)ctx;
    say("LEADING", g_id, NULL);
}
static void c_stopped(void *ctx)
{
    (void)ctx;
    say("STOPPED", g_id, NULL);
}
static void c_new_leader(void *ctx, const char *holder)
{
    (void)ctx;
    say("OBSERVED", g_id, holder);
}

static int candidate_main(const char *ns, const char *id)
{
    g_id = id;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    /* blocked before any thread exists, so every thread inherits it and sigwait gets it */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    ait_error e = {0};
    ait_kube_config *cfg = NULL;
    ait_rest *rest = NULL;
    if (ait_kube_config_load(NULL, NULL, &cfg, &e) != AIT_OK) {
        fprintf(stderr, "candidate %s: %s\n", id, e.msg);
        return 2;
    }
    ait_rest_options ro = {0};
    ro.timeout_ms = 1000; /* below the renew deadline */
    if (ait_rest_new(cfg, &ro, &rest, &e) != AIT_OK) {
        fprintf(stderr, "candidate %s: %s\n", id, e.msg);
        return 2;
    }
    ait_leader_options o = {0};
    o.namespace_ = ns;
    o.name = LEASE_NAME;
    o.identity = id;
    o.lease_duration_ns = LEASE_MS * AIT_NS_PER_MS;
    o.renew_deadline_ns = RENEW_MS * AIT_NS_PER_MS;
    o.retry_period_ns = RETRY_MS * AIT_NS_PER_MS;
    o.callbacks.started_leading = c_started;
    o.callbacks.stopped_leading = c_stopped;
    o.callbacks.new_leader = c_new_leader;
    ait_leader *l = NULL;
    if (ait_leader_new(rest, &o, &l, &e) != AIT_OK || ait_leader_start(l, &e) != AIT_OK) {
        fprintf(stderr, "candidate %s: %s\n", id, e.msg);
        return 2;
    }
    say("READY", id, NULL);
    int sig = 0;
    sigwait(&set, &sig);
    ait_leader_free(l); /* stops, releasing the lease when held */
    say("EXIT", id, NULL);
    ait_rest_free(rest);
    ait_kube_config_free(cfg);
    return 0;
}

/* ---- parent side ---- */

typedef struct child {
    char id[32];
    pid_t pid;
    int fd;
    char buf[4096];
    size_t len;
    int64_t leading_at; /* 0 = not (yet) leading */
    int leading_count;
    int64_t stopped_at;
    int ready;
    int exited_clean;
} child;

typedef struct ctx {
    ait_kube_config *cfg;
    ait_rest *rest;
    char ns[64];
    child kids[3];
} ctx;

static char g_self[4096];

static void spawn(ctx *c, child *k, const char *id)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", id);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(g_self, g_self, "--candidate", c->ns, id, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    k->pid = pid;
    k->fd = p[0];
}

static void on_line(child *k, const char *line)
{
    char what[16] = "", id[32] = "";
    long long t = 0;
    if (sscanf(line, "%15s %31s %lld", what, id, &t) != 3) {
        return;
    }
    if (strcmp(what, "LEADING") == 0) {
        k->leading_at = t;
        k->leading_count++;
    } else if (strcmp(what, "STOPPED") == 0) {
        k->stopped_at = t;
    } else if (strcmp(what, "READY") == 0) {
        k->ready = 1;
    } else if (strcmp(what, "EXIT") == 0) {
        k->exited_clean = 1;
    }
}

/* Reads whatever the children wrote for up to ms, handling complete lines. */
static void pump(ctx *c, int ms)
{
    int64_t end = ait_time_mono_ns() + (int64_t)ms * AIT_NS_PER_MS;
    for (;;) {
        int64_t left = (end - ait_time_mono_ns()) / AIT_NS_PER_MS;
        if (left <= 0) {
            return;
        }
        struct pollfd pf[3];
        child *who[3];
        int n = 0;
        for (int i = 0; i < 3; i++) {
            if (c->kids[i].fd > 0) {
                pf[n].fd = c->kids[i].fd;
                pf[n].events = POLLIN;
                who[n++] = &c->kids[i];
            }
        }
        int r = poll(pf, (nfds_t)n, (int)(left > 50 ? 50 : left));
        if (r <= 0) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP))) {
                continue;
            }
            child *k = who[i];
            ssize_t got = read(k->fd, k->buf + k->len, sizeof(k->buf) - 1 - k->len);
            if (got <= 0) {
                close(k->fd);
                k->fd = -1;
                continue;
            }
            k->len += (size_t)got;
            k->buf[k->len] = '\0';
            char *nl;
            while ((nl = strchr(k->buf, '\n')) != NULL) {
                *nl = '\0';
                on_line(k, k->buf);
                size_t used = (size_t)(nl + 1 - k->buf);
                memmove(k->buf, nl + 1, k->len - used + 1);
                k->len -= used;
            }
        }
    }
}

/* Pumps until pred(c) holds or timeout_ms passes; returns pred's final value. */
static int pump_until(ctx *c, int (*pred)(ctx *), int timeout_ms)
{
    int64_t end = ait_time_mono_ns() + (int64_t)timeout_ms * AIT_NS_PER_MS;
    while (!pred(c) && ait_time_mono_ns() < end) {
        pump(c, 20);
    }
    return pred(c);
}

static int n_leading(ctx *c)
{
    int n = 0;
    for (int i = 0; i < 3; i++) {
        n += c->kids[i].pid > 0 && c->kids[i].leading_at > c->kids[i].stopped_at;
    }
    return n;
}

static int any_leading(ctx *c)
{
    return n_leading(c) > 0;
}

static int all_ready(ctx *c)
{
    for (int i = 0; i < 3; i++) {
        if (c->kids[i].pid > 0 && !c->kids[i].ready) {
            return 0;
        }
    }
    return 1;
}

static int third_leading(ctx *c)
{
    return c->kids[2].leading_at > c->kids[2].stopped_at;
}

static child *the_leader(ctx *c)
{
    for (int i = 0; i < 3; i++) {
        if (c->kids[i].pid > 0 && c->kids[i].leading_at > c->kids[i].stopped_at) {
            return &c->kids[i];
        }
    }
    return NULL;
}

static json_object *get_lease(ctx *c)
{
    json_object *o = NULL;
    ait_error e = {0};
    assert_int_equal(ait_rest_get(c->rest, &AIT_GVR_LEASES, c->ns, LEASE_NAME, &o, &e), AIT_OK);
    return o;
}

static int reap(child *k, int *status)
{
    int st = 0;
    pid_t r;
    do {
        r = waitpid(k->pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    *status = st;
    k->pid = -k->pid; /* keep the id, no longer a live candidate */
    return r;
}

static int setup(void **state)
{
    const char *kc = getenv("KUBECONFIG");
    if (!kc || !kc[0]) {
        fprintf(stderr, "KUBECONFIG is not set: start a cluster with hack/cluster.sh\n");
        return -1;
    }
    ctx *c = ait_calloc(1, sizeof(*c));
    ait_error e = {0};
    assert_int_equal(ait_kube_config_load(NULL, NULL, &c->cfg, &e), AIT_OK);
    assert_int_equal(ait_rest_new(c->cfg, NULL, &c->rest, &e), AIT_OK);
    snprintf(c->ns, sizeof(c->ns), "ait-leader-%ld-%lld", (long)getpid(),
             (long long)(ait_time_now_ns() / AIT_NS_PER_MS % 100000));
    json_object *nso = NULL;
    char body[160];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
             c->ns);
    assert_int_equal(ait_json_parse(body, strlen(body), &nso, NULL), AIT_OK);
    ait_status st = ait_rest_create(c->rest, &AIT_GVR_NAMESPACES, NULL, nso, NULL, &e);
    json_object_put(nso);
    if (st != AIT_OK) {
        fprintf(stderr, "creating namespace %s: %s\n", c->ns, e.msg);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    for (int i = 0; i < 3; i++) {
        if (c->kids[i].pid > 0) {
            kill(c->kids[i].pid, SIGKILL);
            int st;
            reap(&c->kids[i], &st);
        }
        if (c->kids[i].fd > 0) {
            close(c->kids[i].fd);
        }
    }
    ait_error e = {0};
    if (ait_rest_delete(c->rest, &AIT_GVR_NAMESPACES, NULL, c->ns, NULL, &e) != AIT_OK) {
        fprintf(stderr, "deleting namespace %s: %s\n", c->ns, e.msg);
    }
    ait_rest_free(c->rest);
    ait_kube_config_free(c->cfg);
    ait_free(c);
    return 0;
}

static void test_election_and_takeover(void **state)
{
    ctx *c = *state;
    spawn(c, &c->kids[0], "cand-a");
    spawn(c, &c->kids[1], "cand-b");
    assert_true(pump_until(c, all_ready, 10000));
    int64_t t_start = ait_time_mono_ns();
    assert_true(pump_until(c, any_leading, 10000));
    printf("# first leader elected %.3f s after both started\n",
           (double)(ait_time_mono_ns() - t_start) / 1e9);
    /* exactly one leader, for several renew periods */
    pump(c, 3 * RETRY_MS + 500);
    assert_int_equal(n_leading(c), 1);
    child *lead = the_leader(c);
    child *other = lead == &c->kids[0] ? &c->kids[1] : &c->kids[0];
    assert_int_equal(lead->leading_count, 1);
    assert_int_equal(other->leading_count, 0);
    json_object *lease = get_lease(c);
    assert_string_equal(ait_json_str(lease, "spec.holderIdentity"), lead->id);
    assert_int_equal(ait_json_int(lease, "spec.leaseDurationSeconds", -1), LEASE_MS / 1000);
    const char *renew = ait_json_str(lease, "spec.renewTime");
    assert_non_null(renew);
    assert_non_null(strchr(renew, '.')); /* MicroTime */
    int64_t transitions0 = ait_json_int(lease, "spec.leaseTransitions", -1);
    json_object_put(lease);

    /* SIGKILL the leader: the other waits for the lease to expire, then takes over */
    int64_t t0 = ait_time_mono_ns();
    assert_int_equal(kill(lead->pid, SIGKILL), 0);
    int status = 0;
    reap(lead, &status);
    assert_true(WIFSIGNALED(status));
    assert_true(pump_until(c, any_leading, LEASE_MS + 4000));
    assert_ptr_equal(the_leader(c), other);
    double kill_takeover = (double)(other->leading_at - t0) / 1e9;
    printf("# takeover after SIGKILL of the leader: %.3f s (lease duration %.1f s)\n",
           kill_takeover, LEASE_MS / 1000.0);
    /* it had to wait for expiry: the last renewal it observed is at most two jittered retry
     * periods (2 * 2.2 * retry) old ... */
    assert_true(kill_takeover >= (LEASE_MS - 4.5 * RETRY_MS) / 1000.0);
    /* ... and not much longer than the lease duration plus one jittered retry */
    assert_true(kill_takeover <= (LEASE_MS + 2.2 * RETRY_MS + 1000) / 1000.0);
    lease = get_lease(c);
    assert_string_equal(ait_json_str(lease, "spec.holderIdentity"), other->id);
    assert_int_equal(ait_json_int(lease, "spec.leaseTransitions", -1), transitions0 + 1);
    json_object_put(lease);

    /* a third candidate joins; then SIGTERM the leader: it releases, takeover is immediate */
    spawn(c, &c->kids[2], "cand-c");
    assert_true(pump_until(c, all_ready, 10000));
    pump(c, 2 * RETRY_MS + 500);
    assert_int_equal(c->kids[2].leading_count, 0);
    t0 = ait_time_mono_ns();
    assert_int_equal(kill(other->pid, SIGTERM), 0);
    assert_true(pump_until(c, third_leading, LEASE_MS + 4000));
    child *next = &c->kids[2];
    double term_takeover = (double)(next->leading_at - t0) / 1e9;
    printf("# takeover after SIGTERM (lease released): %.3f s (lease duration %.1f s)\n",
           term_takeover, LEASE_MS / 1000.0);
    /* one jittered retry (at most 2.2 * retry) plus a request */
    assert_true(term_takeover < (2.2 * RETRY_MS + 400) / 1000.0);
    reap(other, &status);
    pump(c, 200);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(other->exited_clean);
    assert_true(other->stopped_at > 0);
    /* never two leaders: the old one stopped before the new one started */
    assert_true(other->stopped_at < next->leading_at);

    /* the last one stops cleanly and leaves the lease released */
    assert_int_equal(kill(next->pid, SIGTERM), 0);
    reap(next, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    lease = get_lease(c);
    assert_string_equal(ait_json_str(lease, "spec.holderIdentity"), "");
    assert_int_equal(ait_json_int(lease, "spec.leaseDurationSeconds", -1), 1);
    assert_int_equal(ait_json_int(lease, "spec.leaseTransitions", -1), transitions0 + 2);
    json_object_put(lease);
}

static void test_event_create_and_series(void **state)
{
    ctx *c = *state;
    ait_error e = {0};
    /* a real object to be regarding */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"subject\","
             "\"namespace\":\"%s\"},\"data\":{\"k\":\"v\"}}",
             c->ns);
    json_object *cm = NULL, *created = NULL;
    assert_int_equal(ait_json_parse(body, strlen(body), &cm, NULL), AIT_OK);
    assert_int_equal(ait_rest_create(c->rest, &AIT_GVR_CONFIGMAPS, c->ns, cm, &created, &e),
                     AIT_OK);
    json_object_put(cm);
    ait_object_ref ref = {"v1",
                          "ConfigMap",
                          c->ns,
                          "subject",
                          ait_json_str(created, "metadata.uid"),
                          ait_json_str(created, "metadata.resourceVersion")};

    ait_events_options o = {0};
    o.reporting_instance = "integration-test";
    ait_events *ev = NULL;
    assert_int_equal(ait_events_new(c->rest, &o, &ev, &e), AIT_OK);
    ait_events_emit(ev, &ref, "Warning", "AttemptFailed", "Run", "attempt 1 exited with code 3");
    assert_int_equal(ait_events_flush(ev, 10 * AIT_NS_PER_S), AIT_OK);

    json_object *list = NULL;
    assert_int_equal(ait_rest_list(c->rest, &AIT_GVR_EVENTS, c->ns, NULL, &list, &e), AIT_OK);
    json_object *items = ait_json_array(list, "items");
    assert_non_null(items);
    assert_int_equal(json_object_array_length(items), 1);
    json_object *it = json_object_array_get_idx(items, 0);
    assert_string_equal(ait_json_str(it, "reason"), "AttemptFailed");
    assert_string_equal(ait_json_str(it, "type"), "Warning");
    assert_string_equal(ait_json_str(it, "action"), "Run");
    assert_string_equal(ait_json_str(it, "note"), "attempt 1 exited with code 3");
    assert_string_equal(ait_json_str(it, "reportingController"), "aitask.dev/aitask-controller");
    assert_string_equal(ait_json_str(it, "reportingInstance"), "integration-test");
    assert_string_equal(ait_json_str(it, "regarding.uid"), ref.uid);
    assert_string_equal(ait_json_str(it, "regarding.name"), "subject");
    assert_null(ait_json_path(it, "series"));
    char *name = ait_strdup(ait_json_str(it, "metadata.name"));
    printf("# event %s/%s created, eventTime %s\n", c->ns, name, ait_json_str(it, "eventTime"));
    json_object_put(list);

    /* the same again: no new Event, series.count 2 on the first */
    ait_events_emit(ev, &ref, "Warning", "AttemptFailed", "Run", "attempt 1 exited with code 3");
    assert_int_equal(ait_events_flush(ev, 10 * AIT_NS_PER_S), AIT_OK);
    json_object *got = NULL;
    assert_int_equal(ait_rest_get(c->rest, &AIT_GVR_EVENTS, c->ns, name, &got, &e), AIT_OK);
    assert_int_equal(ait_json_int(got, "series.count", -1), 2);
    assert_non_null(ait_json_str(got, "series.lastObservedTime"));
    printf("# after a repeat: series.count %lld, lastObservedTime %s\n",
           (long long)ait_json_int(got, "series.count", -1),
           ait_json_str(got, "series.lastObservedTime"));
    json_object_put(got);
    assert_int_equal(ait_rest_list(c->rest, &AIT_GVR_EVENTS, c->ns, NULL, &list, &e), AIT_OK);
    assert_int_equal(json_object_array_length(ait_json_array(list, "items")), 1);
    json_object_put(list);

    ait_events_stats st;
    ait_events_get_stats(ev, &st);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.series_updates, 1);
    assert_int_equal(st.failed, 0);
    ait_events_free(ev);
    ait_free(name);
    json_object_put(created);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--candidate") == 0) {
        return candidate_main(argv[2], argv[3]);
    }
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    if (n <= 0) {
        fprintf(stderr, "readlink /proc/self/exe failed\n");
        return 1;
    }
    g_self[n] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_election_and_takeover),
        cmocka_unit_test(test_event_create_and_series),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the healing engine against the fake LLM providers (tests/fakes/fake_llm.py):
 * the time from a provider's failure to the next request (connection refused, 503, timeout),
 * and heal throughput with 50 heals in flight. Prints its figures; asserts nothing.
 *
 * Build: tests/bench/CMakeLists.txt (target bench_failover), or by hand against a build tree:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -Ibuild-heal/gen \
 *      tests/bench/bench_failover.c build-heal/libait.a \
 *      $(pkg-config --libs libcurl json-c yaml-0.1 libmicrohttpd) -lssl -lcrypto -lpthread -lm \
 *      -o build-heal/bench_failover
 * Run from the source root (or set AIT_SOURCE_DIR): ./build-heal/bench_failover [heals]
 * The fake is a single Python process, so throughput measures it as much as the engine. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/alloc.h"
#include "core/time.h"
#include "heal/heal.h"

static int port;
static pid_t pid;
static char dir[64];

static int start_fake(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ait-heal-bench-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    char pf[128], script[512];
    snprintf(pf, sizeof(pf), "%s/port", dir);
    const char *src = getenv("AIT_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_llm.py", src != NULL ? src : ".");
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execlp("python3", "python3", script, "--port-file", pf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(pf, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok) {
                unlink(pf);
                return 0;
            }
        }
        ait_time_sleep_ns(50 * AIT_NS_PER_MS);
    }
    return -1;
}

static void stop_fake(void)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    rmdir(dir);
}

static void script(const char *route, const char *queue)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_script", port);
    char *body = ait_asprintf("{\"route\":\"%s\",\"queue\":%s}", route, queue);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, null);
    if (curl_easy_perform(c) != CURLE_OK) {
        fprintf(stderr, "bench: cannot script the fake\n");
    }
    fclose(null);
    curl_easy_cleanup(c);
    ait_free(body);
}

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        close(s);
        return 1;
    }
    close(s);
    return ntohs(a.sin_port);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void failover_case(const char *label, const char *first_url, const char *beh, int n,
                          int64_t timeout_ms)
{
    char backup[128];
    snprintf(backup, sizeof(backup), "http://127.0.0.1:%d/backup/v1", port);
    ait_heal_provider_config ps[2] = {
        {.name = "first",
         .type = AIT_HEAL_TYPE_OPENAI,
         .base_url = first_url,
         .model = "m",
         .connect_timeout_ms = 1000,
         .timeout_ms = timeout_ms},
        {.name = "backup",
         .type = AIT_HEAL_TYPE_OPENAI,
         .base_url = backup,
         .model = "m",
         .connect_timeout_ms = 1000,
         .timeout_ms = 5000},
    };
    /* Never open the circuit: every heal must really fail over. */
    ait_heal_config cfg = {
        .providers = ps, .n_providers = 2, .workers = 1, .breaker_failures = 1000000};
    ait_heal_engine *e = NULL;
    if (ait_heal_engine_new(&cfg, &e, NULL) != AIT_OK) {
        fprintf(stderr, "bench: engine\n");
        return;
    }
    int64_t *us = ait_calloc((size_t)n, sizeof(int64_t));
    int64_t *total = ait_calloc((size_t)n, sizeof(int64_t));
    int got = 0;
    for (int i = 0; i < n; i++) {
        if (beh != NULL) {
            script("first", beh);
        }
        ait_heal_request req = {.runtime = "python",
                                .code = "print(x)",
                                .error_tail = "err",
                                .attempt = 1,
                                .temperature = -1,
                                .budget_max_micro = -1};
        ait_heal_result *r = NULL;
        if (ait_heal_run(e, &req, &r) == AIT_OK && r->failure == AIT_HEAL_OK &&
            r->n_failovers == 1 && r->failovers[0].failover_us >= 0) {
            us[got] = r->failovers[0].failover_us;
            total[got] = r->latency_ms;
            got++;
        }
        ait_heal_result_free(r);
    }
    if (got > 0) {
        qsort(us, (size_t)got, sizeof(int64_t), cmp64);
        qsort(total, (size_t)got, sizeof(int64_t), cmp64);
        printf("failover %-18s n=%-3d failure->next request: p50 %.3f ms  p95 %.3f ms  max %.3f "
               "ms | whole heal p50 %lld ms\n",
               label, got, us[got / 2] / 1000.0,
               us[(got * 95) / 100 >= got ? got - 1 : (got * 95) / 100] / 1000.0,
               us[got - 1] / 1000.0, (long long)total[got / 2]);
    } else {
        printf("failover %-18s no successful failover measured\n", label);
    }
    ait_free(us);
    ait_free(total);
    ait_heal_engine_free(e);
}

typedef struct tp {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
} tp;

static void on_done(void *ctx, const char *key, ait_heal_result *r)
{
    (void)key;
    tp *t = ctx;
    pthread_mutex_lock(&t->mu);
    t->done++;
    t->ok += r->failure == AIT_HEAL_OK;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    ait_heal_result_free(r);
}

static void throughput(int heals)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tp/v1", port);
    ait_heal_provider_config ps[1] = {{.name = "tp",
                                       .type = AIT_HEAL_TYPE_OPENAI,
                                       .base_url = url,
                                       .model = "m",
                                       .price_input_per_mtok = "2.5",
                                       .price_output_per_mtok = "10"}};
    ait_heal_config cfg = {
        .providers = ps, .n_providers = 1, .workers = 50, .queue_max = heals + 1};
    ait_heal_engine *e = NULL;
    if (ait_heal_engine_new(&cfg, &e, NULL) != AIT_OK) {
        return;
    }
    tp t = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    ait_heal_request req = {.runtime = "python",
                            .code = "print(x)",
                            .error_tail = "err",
                            .attempt = 1,
                            .temperature = -1,
                            .budget_max_micro = -1};
    int64_t t0 = ait_time_mono_ns();
    for (int i = 0; i < heals; i++) {
        char key[32];
        snprintf(key, sizeof(key), "bench/t%d", i);
        if (ait_heal_submit(e, key, &req, on_done, &t, NULL) != AIT_OK) {
            fprintf(stderr, "bench: submit refused\n");
        }
    }
    pthread_mutex_lock(&t.mu);
    while (t.done < heals) {
        pthread_cond_wait(&t.cv, &t.mu);
    }
    pthread_mutex_unlock(&t.mu);
    double s = (double)(ait_time_mono_ns() - t0) / 1e9;
    printf("throughput: %d heals, 50 workers in flight: %.2f s, %.1f heals/s, %d ok\n", heals, s,
           heals / s, t.ok);
    ait_heal_engine_free(e);
}

int main(int argc, char **argv)
{
    int heals = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 500;
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (start_fake() != 0) {
        fprintf(stderr, "bench: cannot start tests/fakes/fake_llm.py (run from the source "
                        "root or set AIT_SOURCE_DIR)\n");
        return 1;
    }
    char refused[64], first[128];
    snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/v1", closed_port());
    snprintf(first, sizeof(first), "http://127.0.0.1:%d/first/v1", port);
    failover_case("connection-refused", refused, NULL, 50, 5000);
    failover_case("503", first, "[{\"do\":\"status\",\"code\":503}]", 50, 5000);
    failover_case("timeout(500ms)", first, "[{\"do\":\"hang\",\"seconds\":2}]", 5, 500);
    throughput(heals);
    stop_fake();
    return 0;
}

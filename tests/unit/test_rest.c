/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/kube/rest.c and src/kube/ratelimit.c. A recording transport (a test double
 * of the ait_transport seam, not of the API server's logic: it returns scripted HTTP answers in
 * the API server's real wire format) checks URLs, methods, headers, bodies, pagination, error
 * mapping and the limiter without a network; one test drives the real libcurl transport against
 * a closed loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/time.h"
#include "kube/ratelimit.h"
#include "kube/rest.h"

#define MAX_CALLS 32

typedef struct scripted {
    long status;
    const char *body;
    const char *retry_after;
    ait_status fail; /* non-OK: the transport got no answer */
} scripted;

typedef struct recorded {
    char *method, *url, *content_type, *body;
    long timeout_ms;
} recorded;

typedef struct fake {
    scripted answers[MAX_CALLS];
    int n_answers;
    recorded calls[MAX_CALLS];
    int n_calls;
    /* stream */
    const char *chunks[4];
    long stream_status;
    long stream_timeout_ms;
} fake;

static ait_status fake_do(void *ctx, const ait_http_request *req, ait_http_response *resp,
                          ait_error *err)
{
    fake *f = ctx;
    assert_true(f->n_calls < MAX_CALLS);
    recorded *r = &f->calls[f->n_calls];
    r->method = ait_strdup(req->method);
    r->url = ait_strdup(req->url);
    r->content_type = ait_strdup(req->content_type);
    r->body = req->body != NULL ? ait_strndup(req->body, req->body_len) : NULL;
    r->timeout_ms = req->timeout_ms;
    assert_true(f->n_calls < f->n_answers);
    const scripted *a = &f->answers[f->n_calls++];
    if (a->fail != AIT_OK) {
        return ait_error_set(err, a->fail, "connection refused");
    }
    resp->status = a->status;
    if (a->body != NULL) {
        assert_int_equal(ait_buf_appends(&resp->body, a->body), AIT_OK);
    }
    resp->retry_after = ait_strdup(a->retry_after);
    return AIT_OK;
}

static ait_status fake_stream(void *ctx, const char *url, long timeout_ms, ait_stream_cb on_data,
                              void *cb_ctx, const volatile int *cancel, long *status_out,
                              ait_error *err)
{
    (void)err;
    (void)cancel;
    fake *f = ctx;
    recorded *r = &f->calls[f->n_calls++];
    r->method = ait_strdup("GET");
    r->url = ait_strdup(url);
    f->stream_timeout_ms = timeout_ms;
    *status_out = f->stream_status;
    for (int i = 0; i < 4 && f->chunks[i] != NULL; i++) {
        if (on_data(cb_ctx, f->chunks[i], strlen(f->chunks[i])) != 0) {
            break;
        }
    }
    return AIT_OK;
}

static fake F;
static ait_transport T = {&F, fake_do, fake_stream, NULL};

static void fake_reset(void)
{
    for (int i = 0; i < F.n_calls; i++) {
        ait_free(F.calls[i].method);
        ait_free(F.calls[i].url);
        ait_free(F.calls[i].content_type);
        ait_free(F.calls[i].body);
    }
    memset(&F, 0, sizeof F);
}

static void answer(long status, const char *body)
{
    F.answers[F.n_answers++] = (scripted){status, body, NULL, AIT_OK};
}

static int teardown(void **state)
{
    (void)state;
    fake_reset();
    return 0;
}

typedef struct observed {
    int n;
    char verbs[MAX_CALLS][8];
    long status[MAX_CALLS];
} observed;

static void observe_cb(void *ctx, const char *verb, long status, int64_t latency_ns)
{
    observed *o = ctx;
    assert_true(latency_ns >= 0);
    snprintf(o->verbs[o->n], sizeof o->verbs[0], "%s", verb);
    o->status[o->n++] = status;
}

static ait_rest *client(const ait_rest_options *extra)
{
    ait_kube_config cfg = {0};
    cfg.server = "https://api.test:6443/";
    ait_rest_options o = {0};
    if (extra != NULL) {
        o = *extra;
    }
    o.transport = &T;
    ait_rest *c = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_new(&cfg, &o, &c, &err), AIT_OK);
    return c;
}

static void test_paths(void **state)
{
    (void)state;
    struct {
        const ait_gvr *gvr;
        const char *ns, *name, *sub, *want;
    } cases[] = {
        {&AIT_GVR_PODS, "ns1", "p", NULL, "/api/v1/namespaces/ns1/pods/p"},
        {&AIT_GVR_PODS, NULL, NULL, NULL, "/api/v1/pods"},
        {&AIT_GVR_PODS, "", NULL, NULL, "/api/v1/pods"},
        {&AIT_GVR_CONFIGMAPS, "a", NULL, NULL, "/api/v1/namespaces/a/configmaps"},
        {&AIT_GVR_NAMESPACES, "ignored", "team", NULL, "/api/v1/namespaces/team"},
        {&AIT_GVR_AITASKS, "ns", "x", "status",
         "/apis/aitask.dev/v1alpha1/namespaces/ns/aitasks/x/status"},
        {&AIT_GVR_LEASES, "kube-system", "l", NULL,
         "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l"},
        {&AIT_GVR_EVENTS, "e", NULL, NULL, "/apis/events.k8s.io/v1/namespaces/e/events"},
        {&AIT_GVR_NETWORKPOLICIES, "n", "deny", NULL,
         "/apis/networking.k8s.io/v1/namespaces/n/networkpolicies/deny"},
        {&AIT_GVR_SECRETS, "n", "a b/c", NULL, "/api/v1/namespaces/n/secrets/a%20b%2Fc"},
        {&AIT_GVR_SERVICEACCOUNTS, "n", NULL, "status", "/api/v1/namespaces/n/serviceaccounts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = ait_rest_path(cases[i].gvr, cases[i].ns, cases[i].name, cases[i].sub);
        assert_string_equal(p, cases[i].want);
        ait_free(p);
    }
}

static void test_get_and_observe(void **state)
{
    (void)state;
    observed obs = {0};
    ait_rest_options o = {.observe = observe_cb, .observe_ctx = &obs, .timeout_ms = 1234};
    ait_rest *c = client(&o);
    answer(200, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm\"}}");
    answer(404, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                "\"message\":\"configmaps \\\"nope\\\" not found\",\"reason\":\"NotFound\","
                "\"details\":{\"name\":\"nope\",\"kind\":\"configmaps\"},\"code\":404}");
    json_object *obj = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_get(c, &AIT_GVR_CONFIGMAPS, "ns", "cm", &obj, &err), AIT_OK);
    assert_string_equal(ait_json_str(obj, "metadata.name"), "cm");
    json_object_put(obj);
    assert_string_equal(F.calls[0].method, "GET");
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/namespaces/ns/configmaps/cm");
    assert_null(F.calls[0].body);
    assert_null(F.calls[0].content_type);
    assert_int_equal(F.calls[0].timeout_ms, 1234);

    obj = (json_object *)0x1;
    assert_int_equal(ait_rest_get(c, &AIT_GVR_CONFIGMAPS, "ns", "nope", &obj, &err),
                     AIT_ERR_NOT_FOUND);
    assert_null(obj);
    assert_int_equal(err.http_status, 404);
    assert_non_null(strstr(err.msg, "configmaps \"nope\" not found"));

    assert_int_equal(obs.n, 2);
    assert_string_equal(obs.verbs[0], "GET");
    assert_int_equal(obs.status[0], 200);
    assert_int_equal(obs.status[1], 404);
    ait_rest_free(c);
}

/* ait_rest_get_text hands a 2xx body over as it came, and decodes an error answer like the
 * other calls (the buffer is then empty but initialised). */
static void test_get_text(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(200, "{\"items\": [1, 2]} ");
    answer(410, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                "\"message\":\"too old\",\"reason\":\"Expired\",\"code\":410}");
    ait_buf body;
    ait_error err = {0};
    assert_int_equal(ait_rest_get_text(c, "/api/v1/pods", "limit=2", &body, &err), AIT_OK);
    assert_int_equal(body.len, strlen("{\"items\": [1, 2]} "));
    assert_memory_equal(body.data, "{\"items\": [1, 2]} ", body.len);
    ait_buf_free(&body);
    assert_string_equal(F.calls[0].method, "GET");
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/pods?limit=2");
    assert_int_equal(ait_rest_get_text(c, "/api/v1/pods", NULL, &body, &err), AIT_ERR_GONE);
    assert_int_equal(body.len, 0);
    assert_int_equal(err.http_status, 410);
    ait_buf_free(&body);
    assert_int_equal(ait_rest_get_text(NULL, "/x", NULL, &body, &err), AIT_ERR_INVALID);
    ait_buf_free(&body);
    ait_rest_free(c);
}

static void test_create_update(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(201, "{\"metadata\":{\"name\":\"a\",\"uid\":\"u1\"}}");
    answer(200, "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"8\"}}");
    answer(200, "{}");
    const char *text = "{\"metadata\":{\"name\":\"a\",\"namespace\":\"from-obj\"}}";
    json_object *obj = NULL;
    assert_int_equal(ait_json_parse(text, strlen(text), &obj, NULL), AIT_OK);
    json_object *out = NULL;
    ait_error err = {0};
    /* ns NULL: the object's namespace is used. */
    assert_int_equal(ait_rest_create(c, &AIT_GVR_CONFIGMAPS, NULL, obj, &out, &err), AIT_OK);
    assert_string_equal(ait_json_str(out, "metadata.uid"), "u1");
    json_object_put(out);
    assert_string_equal(F.calls[0].method, "POST");
    assert_string_equal(F.calls[0].url,
                        "https://api.test:6443/api/v1/namespaces/from-obj/configmaps");
    assert_string_equal(F.calls[0].content_type, "application/json");
    assert_string_equal(F.calls[0].body, json_object_to_json_string_ext(obj, 0));

    /* Update: name from the object, explicit namespace wins. */
    assert_int_equal(ait_rest_update(c, &AIT_GVR_CONFIGMAPS, "ns2", NULL, NULL, obj, &out, &err),
                     AIT_OK);
    assert_string_equal(ait_json_str(out, "metadata.resourceVersion"), "8");
    json_object_put(out);
    assert_string_equal(F.calls[1].method, "PUT");
    assert_string_equal(F.calls[1].url, "https://api.test:6443/api/v1/namespaces/ns2/configmaps/a");

    assert_int_equal(ait_rest_update(c, &AIT_GVR_AITASKS, "ns", "t", "status", obj, NULL, &err),
                     AIT_OK);
    assert_string_equal(F.calls[2].url,
                        "https://api.test:6443/apis/aitask.dev/v1alpha1/namespaces/ns/aitasks/t/"
                        "status");

    /* A namespaced create without any namespace is refused before any request. */
    json_object *bare = json_object_new_object();
    assert_int_equal(ait_rest_create(c, &AIT_GVR_PODS, NULL, bare, NULL, &err), AIT_ERR_INVALID);
    assert_int_equal(F.n_calls, 3);
    json_object_put(bare);
    json_object_put(obj);
    ait_rest_free(c);
}

static void test_patch_kinds(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(200, "{}");
    answer(200, "{}");
    answer(200, "{}");
    answer(200, "{}");
    ait_error err = {0};
    json_object *out = NULL;
    assert_int_equal(ait_rest_patch(c, &AIT_GVR_PODS, "n", "p", AIT_PATCH_MERGE,
                                    "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", NULL, &out, &err),
                     AIT_OK);
    json_object_put(out);
    assert_string_equal(F.calls[0].method, "PATCH");
    assert_string_equal(F.calls[0].content_type, "application/merge-patch+json");
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/namespaces/n/pods/p");
    assert_string_equal(F.calls[0].body, "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");

    assert_int_equal(ait_rest_patch(c, &AIT_GVR_PODS, "n", "p", AIT_PATCH_JSON,
                                    "[{\"op\":\"remove\",\"path\":\"/x\"}]", NULL, NULL, &err),
                     AIT_OK);
    assert_string_equal(F.calls[1].content_type, "application/json-patch+json");

    ait_patch_options po = {.subresource = "status", .field_manager = "me", .force = 1};
    assert_int_equal(ait_rest_patch(c, &AIT_GVR_AITASKS, "n", "t", AIT_PATCH_APPLY,
                                    "{\"status\":{}}", &po, NULL, &err),
                     AIT_OK);
    assert_string_equal(F.calls[2].content_type, "application/apply-patch+yaml");
    assert_string_equal(F.calls[2].url,
                        "https://api.test:6443/apis/aitask.dev/v1alpha1/namespaces/n/aitasks/t/"
                        "status?fieldManager=me&force=true");
    /* Apply without options uses the default field manager and does not force. */
    assert_int_equal(
        ait_rest_patch(c, &AIT_GVR_PODS, "n", "p", AIT_PATCH_APPLY, "{}", NULL, NULL, &err),
        AIT_OK);
    assert_string_equal(F.calls[3].url, "https://api.test:6443/api/v1/namespaces/n/pods/"
                                        "p?fieldManager=aitask-controller");
    ait_rest_free(c);
}

static void test_delete_options(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(200, "{\"kind\":\"Status\",\"status\":\"Success\"}");
    answer(200, "{}");
    answer(409, "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"Precondition failed: "
                "UID in precondition: x, UID in object meta: y\",\"reason\":\"Conflict\","
                "\"code\":409}");
    ait_error err = {0};
    ait_delete_options d = {.propagation = "Foreground",
                            .precondition_uid = "uid-1",
                            .precondition_rv = "42",
                            .grace_period_seconds = 0};
    assert_int_equal(ait_rest_delete(c, &AIT_GVR_PODS, "n", "p", &d, &err), AIT_OK);
    assert_string_equal(F.calls[0].method, "DELETE");
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/namespaces/n/pods/p");
    assert_string_equal(F.calls[0].content_type, "application/json");
    json_object *body = NULL;
    assert_int_equal(ait_json_parse(F.calls[0].body, strlen(F.calls[0].body), &body, NULL), AIT_OK);
    assert_string_equal(ait_json_str(body, "kind"), "DeleteOptions");
    assert_string_equal(ait_json_str(body, "propagationPolicy"), "Foreground");
    assert_string_equal(ait_json_str(body, "preconditions.uid"), "uid-1");
    assert_string_equal(ait_json_str(body, "preconditions.resourceVersion"), "42");
    assert_int_equal(ait_json_int(body, "gracePeriodSeconds", -5), 0);
    json_object_put(body);

    assert_int_equal(ait_rest_delete(c, &AIT_GVR_NAMESPACES, NULL, "team", NULL, &err), AIT_OK);
    assert_string_equal(F.calls[1].url, "https://api.test:6443/api/v1/namespaces/team");
    assert_int_equal(ait_json_parse(F.calls[1].body, strlen(F.calls[1].body), &body, NULL), AIT_OK);
    assert_null(ait_json_path(body, "preconditions"));
    assert_null(ait_json_path(body, "gracePeriodSeconds"));
    assert_null(ait_json_path(body, "propagationPolicy"));
    json_object_put(body);

    assert_int_equal(ait_rest_delete(c, &AIT_GVR_PODS, "n", "p", &d, &err), AIT_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "Precondition failed"));
    ait_rest_free(c);
}

static const char *PAGE1 =
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"100\","
    "\"continue\":\"tok1\",\"remainingItemCount\":3},\"items\":[{\"metadata\":{\"name\":\"a\"}},"
    "{\"metadata\":{\"name\":\"b\"}}]}";
static const char *PAGE2 =
    "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"100\",\"continue\":\"tok/2\"},"
    "\"items\":[{\"metadata\":{\"name\":\"c\"}},{\"metadata\":{\"name\":\"d\"}}]}";
static const char *PAGE3 = "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"100\"},"
                           "\"items\":[{\"metadata\":{\"name\":\"e\"}}]}";
static const char *EXPIRED =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"The provided "
    "continue parameter is too old to display a consistent list result.\",\"reason\":\"Expired\","
    "\"code\":410}";

static void assert_names(json_object *list, const char *const *names, size_t n)
{
    json_object *items = ait_json_array(list, "items");
    assert_non_null(items);
    assert_int_equal(json_object_array_length(items), n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ait_json_str(json_object_array_get_idx(items, i), "metadata.name"),
                            names[i]);
    }
}

static void test_list_three_pages(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(200, PAGE1);
    answer(200, PAGE2);
    answer(200, PAGE3);
    ait_list_options lo = {.label_selector = "app=x,tier in (a)", .limit = 2};
    json_object *list = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_list(c, &AIT_GVR_CONFIGMAPS, "ns", &lo, &list, &err), AIT_OK);
    const char *const names[] = {"a", "b", "c", "d", "e"};
    assert_names(list, names, 5);
    assert_string_equal(ait_json_str(list, "kind"), "ConfigMapList");
    assert_string_equal(ait_json_str(list, "metadata.resourceVersion"), "100");
    assert_null(ait_json_path(list, "metadata.continue"));
    assert_null(ait_json_path(list, "metadata.remainingItemCount"));
    json_object_put(list);
    assert_int_equal(F.n_calls, 3);
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/namespaces/ns/configmaps"
                                        "?labelSelector=app%3Dx%2Ctier%20in%20%28a%29&limit=2");
    assert_string_equal(F.calls[1].url,
                        "https://api.test:6443/api/v1/namespaces/ns/configmaps"
                        "?labelSelector=app%3Dx%2Ctier%20in%20%28a%29&limit=2&continue=tok1");
    assert_string_equal(F.calls[2].url,
                        "https://api.test:6443/api/v1/namespaces/ns/configmaps"
                        "?labelSelector=app%3Dx%2Ctier%20in%20%28a%29&limit=2&continue=tok%2F2");
    ait_rest_free(c);
}

static void test_list_410_restarts_once(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    /* Expired token on page 2: the list restarts and completes. */
    answer(200, PAGE1);
    answer(410, EXPIRED);
    answer(200, PAGE1);
    answer(200, PAGE2);
    answer(200, PAGE3);
    ait_list_options lo = {.limit = 2};
    json_object *list = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_list(c, &AIT_GVR_CONFIGMAPS, "ns", &lo, &list, &err), AIT_OK);
    const char *const names[] = {"a", "b", "c", "d", "e"};
    assert_names(list, names, 5);
    json_object_put(list);
    assert_int_equal(F.n_calls, 5);
    assert_null(strstr(F.calls[2].url, "continue="));
    fake_reset();

    /* A second expiry is returned to the caller. */
    answer(200, PAGE1);
    answer(410, EXPIRED);
    answer(200, PAGE1);
    answer(410, EXPIRED);
    list = (json_object *)0x1;
    assert_int_equal(ait_rest_list(c, &AIT_GVR_CONFIGMAPS, "ns", &lo, &list, &err), AIT_ERR_GONE);
    assert_null(list);
    assert_int_equal(F.n_calls, 4);
    assert_non_null(strstr(err.msg, "too old"));
    fake_reset();

    /* 410 on the first page (no continue token) is not retried. */
    answer(410, EXPIRED);
    assert_int_equal(ait_rest_list(c, &AIT_GVR_CONFIGMAPS, "ns", &lo, &list, &err), AIT_ERR_GONE);
    assert_int_equal(F.n_calls, 1);
    ait_rest_free(c);
}

static void test_list_empty_and_bad(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    answer(200, "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":null}");
    answer(200, "{\"kind\":\"Pod\"}");
    answer(200, "<html>proxy</html>");
    json_object *list = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_list(c, &AIT_GVR_PODS, NULL, NULL, &list, &err), AIT_OK);
    assert_int_equal(json_object_array_length(ait_json_array(list, "items")), 0);
    assert_string_equal(F.calls[0].url, "https://api.test:6443/api/v1/pods");
    json_object_put(list);
    assert_int_equal(ait_rest_list(c, &AIT_GVR_PODS, NULL, NULL, &list, &err), AIT_ERR_PARSE);
    assert_int_equal(ait_rest_list(c, &AIT_GVR_PODS, NULL, NULL, &list, &err), AIT_ERR_PARSE);
    ait_rest_free(c);
}

static void test_status_reasons(void **state)
{
    (void)state;
    struct {
        long http;
        const char *reason;
        ait_status want;
    } cases[] = {
        {409, "AlreadyExists", AIT_ERR_EXISTS},
        {409, "Conflict", AIT_ERR_CONFLICT},
        {410, "Gone", AIT_ERR_GONE},
        {410, "Expired", AIT_ERR_GONE},
        {422, "Invalid", AIT_ERR_INVALID},
        {400, "BadRequest", AIT_ERR_INVALID},
        {403, "Forbidden", AIT_ERR_FORBIDDEN},
        {401, "Unauthorized", AIT_ERR_UNAUTHORIZED},
        {404, "NotFound", AIT_ERR_NOT_FOUND},
        {429, "TooManyRequests", AIT_ERR_RETRY},
        {500, "InternalError", AIT_ERR_RETRY},
        {503, "ServiceUnavailable", AIT_ERR_RETRY},
        {504, "Timeout", AIT_ERR_RETRY},
        {413, "RequestEntityTooLarge", AIT_ERR_TOO_LARGE},
        /* Unknown or missing reasons fall back to the HTTP status. */
        {409, "", AIT_ERR_CONFLICT},
        {409, "SomethingNew", AIT_ERR_CONFLICT},
        {502, NULL, AIT_ERR_RETRY},
        {404, NULL, AIT_ERR_NOT_FOUND},
        {418, NULL, AIT_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        if (cases[i].reason != NULL) {
            snprintf(body, sizeof body,
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                     "\"message\":\"msg-%zu\",\"reason\":\"%s\",\"code\":%ld}",
                     i, cases[i].reason, cases[i].http);
        } else {
            snprintf(body, sizeof body, "{\"message\":\"msg-%zu\"}", i);
        }
        ait_error err = {0};
        ait_status st = ait_rest_decode_status(cases[i].http, body, strlen(body), &err);
        if (st != cases[i].want) {
            fail_msg("case %zu (%ld %s): got %s want %s", i, cases[i].http,
                     cases[i].reason ? cases[i].reason : "-", ait_status_str(st),
                     ait_status_str(cases[i].want));
        }
        assert_int_equal(err.code, cases[i].want);
        assert_int_equal(err.http_status, cases[i].http);
        char want_msg[32];
        snprintf(want_msg, sizeof want_msg, "msg-%zu", i);
        assert_non_null(strstr(err.msg, want_msg));
    }
    ait_error err = {0};
    assert_int_equal(ait_rest_decode_status(200, "x", 1, &err), AIT_OK);
    assert_int_equal(ait_rest_decode_status(0, NULL, 0, &err), AIT_ERR_IO);
    assert_int_equal(ait_rest_decode_status(500, NULL, 0, &err), AIT_ERR_RETRY);
    assert_non_null(strstr(err.msg, "empty body"));
}

static void test_invalid_message_kept(void **state)
{
    (void)state;
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
        "\"ConfigMap \\\"Bad_Name\\\" is invalid: metadata.name: Invalid value: \\\"Bad_Name\\\": "
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters\","
        "\"reason\":\"Invalid\",\"details\":{\"name\":\"Bad_Name\",\"kind\":\"ConfigMap\"},"
        "\"code\":422}";
    ait_error err = {0};
    assert_int_equal(ait_rest_decode_status(422, body, strlen(body), &err), AIT_ERR_INVALID);
    assert_non_null(strstr(err.msg, "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid "
                                    "value"));
    assert_non_null(strstr(err.msg, "HTTP 422 Invalid"));
}

static void test_html_body(void **state)
{
    (void)state;
    const char *html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                       "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                       "</body>\r\n</html>\r\n";
    ait_error err = {0};
    assert_int_equal(ait_rest_decode_status(502, html, strlen(html), &err), AIT_ERR_RETRY);
    assert_int_equal(err.http_status, 502);
    assert_non_null(strstr(err.msg, "HTTP 502"));
    assert_non_null(strstr(err.msg, "non-JSON"));
    assert_non_null(strstr(err.msg, "502 Bad Gateway"));
    assert_null(strchr(err.msg, '<'));
    assert_null(strchr(err.msg, '\r'));

    /* A long HTML body from a 403 proxy page is cut short. */
    char big[8192];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ait_rest_decode_status(403, big, strlen(big), &err), AIT_ERR_FORBIDDEN);
    assert_true(strlen(err.msg) < 400);
}

static void test_retry_after(void **state)
{
    (void)state;
    ait_rest *c = client(NULL);
    F.answers[F.n_answers++] = (scripted){429,
                                          "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\","
                                          "\"message\":\"slow down\",\"code\":429}",
                                          "7", AIT_OK};
    answer(429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"message\":\"later\","
                "\"details\":{\"retryAfterSeconds\":3},\"code\":429}");
    answer(503, "");
    ait_error err = {0};
    assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_ERR_RETRY);
    assert_int_equal(ait_rest_retry_after_seconds(&err), 7);
    assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_ERR_RETRY);
    assert_int_equal(ait_rest_retry_after_seconds(&err), 3);
    assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_ERR_RETRY);
    assert_int_equal(ait_rest_retry_after_seconds(&err), -1);
    ait_rest_free(c);
}

static void test_transport_failure_and_bad_json(void **state)
{
    (void)state;
    observed obs = {0};
    ait_rest_options o = {.observe = observe_cb, .observe_ctx = &obs};
    ait_rest *c = client(&o);
    F.answers[F.n_answers++] = (scripted){0, NULL, NULL, AIT_ERR_IO};
    F.answers[F.n_answers++] = (scripted){0, NULL, NULL, AIT_ERR_TIMEOUT};
    answer(200, "{\"truncated\":");
    answer(200, "");
    ait_error err = {0};
    json_object *out = NULL;
    assert_int_equal(ait_rest_request(c, "GET", "/version", NULL, NULL, NULL, &out, &err),
                     AIT_ERR_IO);
    assert_string_equal(err.msg, "GET /version: connection refused");
    assert_int_equal(err.http_status, 0);
    assert_int_equal(F.calls[0].timeout_ms, 30000);
    assert_int_equal(ait_rest_request(c, "GET", "/version", NULL, NULL, NULL, &out, &err),
                     AIT_ERR_TIMEOUT);
    assert_int_equal(ait_rest_request(c, "GET", "/version", "a=b", NULL, NULL, &out, &err),
                     AIT_ERR_PARSE);
    assert_null(out);
    assert_string_equal(F.calls[2].url, "https://api.test:6443/version?a=b");
    /* An empty 2xx body is success with no object. */
    out = (json_object *)0x1;
    assert_int_equal(ait_rest_request(c, "POST", "/x", NULL, "text/plain", "hi", &out, &err),
                     AIT_OK);
    assert_null(out);
    assert_string_equal(F.calls[3].body, "hi");
    assert_string_equal(F.calls[3].content_type, "text/plain");
    assert_int_equal(obs.n, 4);
    assert_int_equal(obs.status[0], 0);
    assert_int_equal(obs.status[2], 200);
    ait_rest_free(c);
}

typedef struct collect {
    char data[256];
    size_t len;
    int stop_after;
    int calls;
} collect;

static int collect_cb(void *ctx, const char *data, size_t len)
{
    collect *cl = ctx;
    memcpy(cl->data + cl->len, data, len);
    cl->len += len;
    cl->data[cl->len] = '\0';
    return ++cl->calls == cl->stop_after;
}

static void test_stream(void **state)
{
    (void)state;
    observed obs = {0};
    ait_rest_options o = {.observe = observe_cb, .observe_ctx = &obs};
    ait_rest *c = client(&o);
    F.stream_status = 200;
    F.chunks[0] = "{\"type\":\"ADDED\"}\n";
    F.chunks[1] = "{\"type\":\"DELETED\"}\n";
    collect cl = {0};
    long status = 0;
    ait_error err = {0};
    volatile int cancel = 0;
    assert_int_equal(ait_rest_stream(c, "/api/v1/pods", "watch=1&resourceVersion=5", collect_cb,
                                     &cl, &cancel, &status, &err),
                     AIT_OK);
    assert_int_equal(status, 200);
    assert_string_equal(cl.data, "{\"type\":\"ADDED\"}\n{\"type\":\"DELETED\"}\n");
    assert_string_equal(F.calls[0].url,
                        "https://api.test:6443/api/v1/pods?watch=1&resourceVersion=5");
    assert_int_equal(F.stream_timeout_ms, AIT_REST_STREAM_IDLE_MS);
    assert_int_equal(obs.n, 1);
    assert_string_equal(obs.verbs[0], "WATCH");

    /* The callback can stop the stream. */
    collect one = {.stop_after = 1};
    assert_int_equal(
        ait_rest_stream(c, "/api/v1/pods", NULL, collect_cb, &one, NULL, &status, &err), AIT_OK);
    assert_string_equal(one.data, "{\"type\":\"ADDED\"}\n");

    /* A non-2xx answer's body is decoded, not handed to the callback. */
    F.stream_status = 410;
    F.chunks[0] = "{\"kind\":\"Status\",\"reason\":\"Expired\",";
    F.chunks[1] = "\"message\":\"too old resource version: 5 (90)\",\"code\":410}";
    collect none = {0};
    assert_int_equal(
        ait_rest_stream(c, "/api/v1/pods", NULL, collect_cb, &none, NULL, &status, &err),
        AIT_ERR_GONE);
    assert_int_equal(status, 410);
    assert_int_equal(none.calls, 0);
    assert_non_null(strstr(err.msg, "too old resource version"));
    ait_rest_free(c);
}

/* A clock for the limiter that only moves when the test says so. */
static int64_t fake_now;
static int64_t fake_mono(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void test_ratelimit_counts(void **state)
{
    (void)state;
    ait_clock clk = {NULL, fake_mono, fake_mono};
    fake_now = 1000 * AIT_NS_PER_S;
    assert_null(ait_ratelimit_new(0, 5, &clk));
    assert_int_equal(ait_ratelimit_reserve_ns(NULL), 0);
    ait_ratelimit *rl = ait_ratelimit_new(10, 3, &clk);
    /* The full bucket gives burst tokens at once, then one every 100 ms, queued in order. */
    int free_now = 0;
    for (int i = 0; i < 3; i++) {
        free_now += ait_ratelimit_reserve_ns(rl) == 0;
    }
    assert_int_equal(free_now, 3);
    assert_int_equal(ait_ratelimit_reserve_ns(rl), 100 * AIT_NS_PER_MS);
    assert_int_equal(ait_ratelimit_reserve_ns(rl), 200 * AIT_NS_PER_MS);
    /* After 250 ms: 2.5 tokens refilled against 2 owed, so the next waits 50 ms. */
    fake_now += 250 * AIT_NS_PER_MS;
    assert_int_equal(ait_ratelimit_reserve_ns(rl), 50 * AIT_NS_PER_MS);
    /* A long idle period refills to burst, never beyond. */
    fake_now += 3600 * AIT_NS_PER_S;
    free_now = 0;
    for (int i = 0; i < 10; i++) {
        free_now += ait_ratelimit_reserve_ns(rl) == 0;
    }
    assert_int_equal(free_now, 3);
    ait_ratelimit_free(rl);
    ait_ratelimit_free(NULL);
}

static void test_client_limiter(void **state)
{
    (void)state;
    /* 7 requests at 50 qps with a burst of 2: the last 5 wait 20 ms each, >= 100 ms in all. Only
     * the lower bound is asserted (a slow machine may take longer, never shorter). */
    ait_rest_options o = {.qps = 50, .burst = 2};
    ait_rest *c = client(&o);
    for (int i = 0; i < 7; i++) {
        answer(200, "{}");
    }
    ait_error err = {0};
    int64_t t0 = ait_time_mono_ns();
    for (int i = 0; i < 7; i++) {
        assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_OK);
    }
    int64_t dt = ait_time_mono_ns() - t0;
    assert_true(dt >= 95 * AIT_NS_PER_MS);
    assert_int_equal(F.n_calls, 7);
    ait_rest_free(c);
}

static void test_new_rejects_and_free_null(void **state)
{
    (void)state;
    ait_rest_free(NULL);
    ait_kube_config cfg = {0};
    ait_rest *c = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_new(&cfg, NULL, &c, &err), AIT_ERR_INVALID);
    cfg.server = "ftp://x";
    assert_int_equal(ait_rest_new(&cfg, NULL, &c, &err), AIT_ERR_INVALID);
    assert_null(c);
}

static void test_real_curl_refused(void **state)
{
    (void)state;
    /* The libcurl transport against a loopback port nobody listens on: an I/O error, quickly. */
    ait_kube_config cfg = {0};
    cfg.server = "https://127.0.0.1:1";
    cfg.token = "t";
    ait_rest_options o = {.timeout_ms = 2000, .connect_timeout_ms = 1000};
    ait_rest *c = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_new(&cfg, &o, &c, &err), AIT_OK);
    assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_ERR_IO);
    assert_non_null(strstr(err.msg, "GET /api/v1/namespaces/n/pods/p"));
    long status = -1;
    volatile int cancel = 0;
    collect cl = {0};
    assert_int_equal(
        ait_rest_stream(c, "/api/v1/pods", "watch=1", collect_cb, &cl, &cancel, &status, &err),
        AIT_ERR_IO);
    assert_int_equal(status, 0);
    ait_rest_free(c);
}

/* A loopback listener that accepts connections (through the backlog) but never answers, like a
 * hung server: the request must end at its timeout, the stream at its cancel flag. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void *cancel_after_300ms(void *arg)
{
    ait_time_sleep_ns(300 * AIT_NS_PER_MS);
    *(volatile int *)arg = 1;
    return NULL;
}

static void test_real_curl_timeout_and_cancel(void **state)
{
    (void)state;
    int port = 0;
    int fd = silent_listener(&port);
    ait_kube_config cfg = {0};
    char server[64];
    snprintf(server, sizeof server, "https://127.0.0.1:%d", port);
    cfg.server = server;
    ait_rest_options o = {.timeout_ms = 300, .connect_timeout_ms = 1000};
    ait_rest *c = NULL;
    ait_error err = {0};
    assert_int_equal(ait_rest_new(&cfg, &o, &c, &err), AIT_OK);
    int64_t t0 = ait_time_mono_ns();
    assert_int_equal(ait_rest_get(c, &AIT_GVR_PODS, "n", "p", NULL, &err), AIT_ERR_TIMEOUT);
    int64_t dt = ait_time_mono_ns() - t0;
    assert_true(dt >= 250 * AIT_NS_PER_MS);
    assert_true(dt < 5 * AIT_NS_PER_S);

    /* The stream has no total timeout; the cancel flag ends it within about half a second. */
    volatile int cancel = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_after_300ms, (void *)&cancel), 0);
    collect cl = {0};
    long status = -1;
    t0 = ait_time_mono_ns();
    assert_int_equal(
        ait_rest_stream(c, "/api/v1/pods", "watch=1", collect_cb, &cl, &cancel, &status, &err),
        AIT_ERR_CANCELLED);
    dt = ait_time_mono_ns() - t0;
    pthread_join(t, NULL);
    assert_true(dt >= 250 * AIT_NS_PER_MS);
    assert_true(dt < 3 * AIT_NS_PER_S);
    assert_int_equal(status, 0);
    ait_rest_free(c);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_paths, teardown),
        cmocka_unit_test_teardown(test_get_and_observe, teardown),
        cmocka_unit_test_teardown(test_get_text, teardown),
        cmocka_unit_test_teardown(test_create_update, teardown),
        cmocka_unit_test_teardown(test_patch_kinds, teardown),
        cmocka_unit_test_teardown(test_delete_options, teardown),
        cmocka_unit_test_teardown(test_list_three_pages, teardown),
        cmocka_unit_test_teardown(test_list_410_restarts_once, teardown),
        cmocka_unit_test_teardown(test_list_empty_and_bad, teardown),
        cmocka_unit_test_teardown(test_status_reasons, teardown),
        cmocka_unit_test_teardown(test_invalid_message_kept, teardown),
        cmocka_unit_test_teardown(test_html_body, teardown),
        cmocka_unit_test_teardown(test_retry_after, teardown),
        cmocka_unit_test_teardown(test_transport_failure_and_bad_json, teardown),
        cmocka_unit_test_teardown(test_stream, teardown),
        cmocka_unit_test_teardown(test_ratelimit_counts, teardown),
        cmocka_unit_test_teardown(test_client_limiter, teardown),
        cmocka_unit_test_teardown(test_new_rejects_and_free_null, teardown),
        cmocka_unit_test_teardown(test_real_curl_refused, teardown),
        cmocka_unit_test_teardown(test_real_curl_timeout_and_cancel, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

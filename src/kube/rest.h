/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes REST client: typed verbs over libcurl with connection reuse (one curl easy
 * handle per thread, kept alive), a timeout on every request, an optional client-side QPS/burst
 * limiter, and the API's Status body decoded into typed errors (core/status.h: 404 NotFound,
 * 409 AlreadyExists vs Conflict, 410 Gone, 422 Invalid, 401/403, 429/5xx Retry). The client is
 * thread-safe: every call may come from any thread. The transport is a seam for unit tests. */
#ifndef AIT_KUBE_REST_H
#define AIT_KUBE_REST_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "kube/config.h"

/* A resource: group "" is the core group (/api/v1), others are under /apis/<group>/<version>. */
typedef struct ait_gvr {
    const char *group;
    const char *version;
    const char *resource; /* plural, lower case */
    const char *kind;
    int namespaced;
} ait_gvr;

extern const ait_gvr AIT_GVR_PODS;
extern const ait_gvr AIT_GVR_CONFIGMAPS;
extern const ait_gvr AIT_GVR_SECRETS;
extern const ait_gvr AIT_GVR_NAMESPACES;
extern const ait_gvr AIT_GVR_SERVICEACCOUNTS;
extern const ait_gvr AIT_GVR_LEASES;          /* coordination.k8s.io/v1 */
extern const ait_gvr AIT_GVR_EVENTS;          /* events.k8s.io/v1 */
extern const ait_gvr AIT_GVR_NETWORKPOLICIES; /* networking.k8s.io/v1 */
extern const ait_gvr AIT_GVR_AITASKS;         /* aitask.dev/v1alpha1 */

/* One raw HTTP exchange, as the transport seam sees it. */
typedef struct ait_http_request {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;          /* absolute */
    const char *content_type; /* NULL when there is no body */
    const char *body;
    size_t body_len;
    long timeout_ms; /* total; 0 = none (watches use their own timeoutSeconds) */
} ait_http_request;

typedef struct ait_http_response {
    long status;       /* HTTP status; 0 when no answer came */
    ait_buf body;      /* initialised and owned by the caller */
    char *retry_after; /* Retry-After header value (owned), or NULL */
} ait_http_response;

/* Called with each chunk of a streamed body; return non-zero to stop the stream. */
typedef int (*ait_stream_cb)(void *ctx, const char *data, size_t len);

/* The transport seam (like redis' dictType): the real one is libcurl; unit tests pass their own.
 * do_request fills resp (status, body) and returns AIT_OK when any HTTP answer arrived (even 4xx),
 * or AIT_ERR_IO/AIT_ERR_TIMEOUT when none did. stream sends a GET and calls on_data per chunk until
 * the server ends it, on_data returns non-zero, or *cancel becomes non-zero; *status_out gets the
 * HTTP status. */
typedef struct ait_transport {
    void *ctx;
    ait_status (*do_request)(void *ctx, const ait_http_request *req, ait_http_response *resp,
                             ait_error *err);
    ait_status (*stream)(void *ctx, const char *url, long timeout_ms, ait_stream_cb on_data,
                         void *cb_ctx, const volatile int *cancel, long *status_out,
                         ait_error *err);
    void (*destroy)(void *ctx);
} ait_transport;
/* Transport contract details (added with the implementation):
 * - stream: *status_out is set as soon as the answer's headers arrive, before the first on_data
 *   call; on_data also receives the body of a non-2xx answer (the client decodes it), and
 *   timeout_ms is an idle limit (the stream ends when no byte arrived for that long; 0 = none),
 *   not a total one. A cancelled stream returns AIT_ERR_CANCELLED; a stream stopped by on_data
 *   returns AIT_OK.
 * - do_request: resp->body arrives initialised with its bound (resp->body.max); a larger body
 *   fails with AIT_ERR_TOO_LARGE. */

/* Bound of every response body (lists included). */
#define AIT_REST_MAX_BODY (64u * 1024u * 1024u)
/* Idle limit of a stream: a watch silent for this long (no event, no bookmark) is ended, so a
 * dead connection cannot hang a watcher (TCP keepalive is on as well). */
#define AIT_REST_STREAM_IDLE_MS 300000L

/* Observer called after every request (for rest_client_requests_total and the API latency
 * SLO): verb, HTTP status (0 = no answer), latency. Must be thread-safe and cheap. The verb is
 * the HTTP method, or "WATCH" for ait_rest_stream (whose latency is the stream's lifetime). */
typedef void (*ait_rest_observe_cb)(void *ctx, const char *verb, long status, int64_t latency_ns);

typedef struct ait_rest_options {
    double qps;                     /* client-side limit; <= 0 disables the limiter */
    int burst;                      /* token bucket size (default 10 when qps > 0 and burst <= 0) */
    long timeout_ms;                /* per request; default 30000 */
    long connect_timeout_ms;        /* default 5000 */
    const char *user_agent;         /* default "aitask-operator/<version>" */
    const ait_transport *transport; /* NULL = libcurl; borrowed, must outlive the client */
    ait_rest_observe_cb observe;
    void *observe_ctx;
} ait_rest_options;

typedef struct ait_rest ait_rest;

/* Creates a client for cfg (borrowed; copied where needed). opts may be NULL (defaults).
 * Returns owned in *out, free with ait_rest_free(). */
ait_status ait_rest_new(const ait_kube_config *cfg, const ait_rest_options *opts, ait_rest **out,
                        ait_error *err) AIT_WUR;
void ait_rest_free(ait_rest *c);

/* Builds the path of a collection (name NULL) or object, e.g.
 * "/apis/aitask.dev/v1alpha1/namespaces/ns/aitasks/x", with an optional subresource ("status").
 * ns NULL or "" on a namespaced resource means all namespaces. Returns owned. */
char *ait_rest_path(const ait_gvr *gvr, const char *ns, const char *name, const char *subresource);

/* Sends a request to path (with query string, may be NULL) and returns the decoded body in *out
 * (owned, json_object_put; may be NULL when the body is empty). Non-2xx answers return their
 * typed status with the Status message in err (err->http_status set). */
ait_status ait_rest_request(ait_rest *c, const char *method, const char *path, const char *query,
                            const char *content_type, const char *body, json_object **out,
                            ait_error *err) AIT_WUR;

ait_status ait_rest_get(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                        json_object **out, ait_error *err) AIT_WUR;

/* GETs path?query (query may be NULL) and hands the 2xx body over undecoded in *out (always
 * initialised; owned, free with ait_buf_free, also on failure), so a caller can decode a large
 * List item by item instead of as one tree. Errors as ait_rest_request. */
ait_status ait_rest_get_text(ait_rest *c, const char *path, const char *query, ait_buf *out,
                             ait_error *err) AIT_WUR;

typedef struct ait_list_options {
    const char *label_selector; /* may be NULL */
    const char *field_selector; /* may be NULL */
    int limit;                  /* page size; 0 = server default (no pagination) */
} ait_list_options;

/* Lists all pages (following metadata.continue) and returns one List object whose "items" hold
 * every item and whose metadata.resourceVersion is the first page's (a consistent snapshot).
 * A 410 on a continue token restarts the list once from the beginning. */
ait_status ait_rest_list(ait_rest *c, const ait_gvr *gvr, const char *ns,
                         const ait_list_options *opts, json_object **out, ait_error *err) AIT_WUR;

/* POST. obj is borrowed. *out (may be NULL to discard) gets the created object. */
ait_status ait_rest_create(ait_rest *c, const ait_gvr *gvr, const char *ns, json_object *obj,
                           json_object **out, ait_error *err) AIT_WUR;
/* PUT of the whole object (with metadata.resourceVersion for optimistic concurrency: a stale
 * one gives AIT_ERR_CONFLICT). subresource may be NULL or "status". */
ait_status ait_rest_update(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                           const char *subresource, json_object *obj, json_object **out,
                           ait_error *err) AIT_WUR;

typedef enum ait_patch_type {
    AIT_PATCH_MERGE, /* application/merge-patch+json */
    AIT_PATCH_JSON,  /* application/json-patch+json */
    AIT_PATCH_APPLY, /* application/apply-patch+yaml (server-side apply; JSON is valid YAML) */
} ait_patch_type;

typedef struct ait_patch_options {
    const char *subresource;   /* NULL or "status" */
    const char *field_manager; /* required for APPLY; default "aitask-controller" */
    int force;                 /* APPLY: take ownership of conflicting fields */
} ait_patch_options;

ait_status ait_rest_patch(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                          ait_patch_type type, const char *patch, const ait_patch_options *opts,
                          json_object **out, ait_error *err) AIT_WUR;

typedef struct ait_delete_options {
    const char *propagation;      /* NULL, "Foreground", "Background" or "Orphan" */
    const char *precondition_uid; /* delete only this incarnation, or NULL */
    const char *precondition_rv;  /* delete only at this resourceVersion, or NULL */
    int64_t grace_period_seconds; /* -1 = server default */
} ait_delete_options;

/* DELETE; opts may be NULL. Deleting what is already gone returns AIT_ERR_NOT_FOUND. */
ait_status ait_rest_delete(ait_rest *c, const ait_gvr *gvr, const char *ns, const char *name,
                           const ait_delete_options *opts, ait_error *err) AIT_WUR;

/* Streams a GET of path?query (a watch), calling on_data per chunk as it arrives, until the
 * server closes it, on_data returns non-zero, or *cancel becomes non-zero (checked at least
 * every 500 ms). *status_out gets the HTTP status (0 when none). A non-2xx answer's body is
 * decoded into err like ait_rest_request. */
ait_status ait_rest_stream(ait_rest *c, const char *path, const char *query, ait_stream_cb on_data,
                           void *cb_ctx, const volatile int *cancel, long *status_out,
                           ait_error *err) AIT_WUR;

/* Decodes a metav1.Status body (or any error body) of an HTTP answer into a typed status and a
 * message in err. 409 with reason AlreadyExists gives AIT_ERR_EXISTS, other 409s
 * AIT_ERR_CONFLICT. Exposed for the fuzz target. */
ait_status ait_rest_decode_status(long http_status, const char *body, size_t len, ait_error *err);

/* For an AIT_ERR_RETRY answer (429/5xx) the wait the server asked for (Status
 * details.retryAfterSeconds, else the Retry-After header) is kept in err->msg as
 * "(retry after Ns)"; this returns N, or -1 when the server gave none. */
long ait_rest_retry_after_seconds(const ait_error *err);

#endif

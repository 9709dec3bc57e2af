/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics and probe HTTP endpoints (controller-runtime's metrics server and health probes)
 * on libmicrohttpd, each server with its own internal polling thread. GET /metrics renders a
 * registry; GET /healthz answers "ok" while the process serves; GET /readyz answers 200 "ok"
 * only when the readiness callback says so, else 503 with its reason. When both addresses are
 * the same string, one server answers all three paths. */
#ifndef AIT_METRICS_HTTP_H
#define AIT_METRICS_HTTP_H

#include <stddef.h>

#include "core/status.h"
#include "metrics/registry.h"

typedef struct ait_metrics_http ait_metrics_http;

/* Returns 1 when ready; else 0 and writes a short reason (e.g. "caches not synced") into
 * reason, a buffer of len bytes. Called from a server thread for every /readyz request. */
typedef int (*ait_metrics_ready_cb)(void *ud, char *reason, size_t len);

typedef struct ait_metrics_http_opts {
    /* Bind addresses in controller-runtime's form: ":8080" (all interfaces), "127.0.0.1:0"
     * (0 = a free port, read it back with ait_metrics_http_*_port), "[::1]:9090",
     * "localhost:8081"; "0" or NULL disables that server. */
    const char *metrics_addr;
    const char *probe_addr;
    ait_metrics *registry;         /* borrowed, must outlive the server; NULL serves nothing */
    ait_metrics_ready_cb ready_cb; /* NULL = always ready */
    void *ready_ud;                /* borrowed */
} ait_metrics_http_opts;

/* Binds and starts the servers (opts is copied; the strings need not outlive the call). On
 * success *out is owned, free with ait_metrics_http_free(). Returns AIT_ERR_INVALID for a
 * malformed address, AIT_ERR_IO when a bind or the server start fails (port in use). */
ait_status ait_metrics_http_start(const ait_metrics_http_opts *opts, ait_metrics_http **out,
                                  ait_error *err) AIT_WUR;

/* Returns the bound TCP port of the metrics (or probe) server, 0 when that server is
 * disabled. With equal addresses both return the same port. */
int ait_metrics_http_metrics_port(const ait_metrics_http *h);
int ait_metrics_http_probe_port(const ait_metrics_http *h);

/* Stops the servers, waiting for requests in flight, closes the sockets and frees h; no-op on
 * NULL. Not from a server callback. */
void ait_metrics_http_free(ait_metrics_http *h);

/* Parses a bind address as above into host (may be "" for all interfaces) and port. Returns
 * AIT_ERR_INVALID when malformed, and sets *disabled for "0". Exposed for tests and flags. */
ait_status ait_metrics_http_parse_addr(const char *addr, char *host, size_t host_len, int *port,
                                       int *disabled, ait_error *err) AIT_WUR;

#endif

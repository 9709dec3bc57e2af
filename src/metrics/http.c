/* SPDX-License-Identifier: Apache-2.0 */
/* Metrics and probe servers. We bind the listening sockets ourselves (so "host:0" can report the
 * port the kernel chose, and IPv6 and host names work alike) and hand them to libmicrohttpd,
 * which closes them on stop. Handlers only read the registry and call the readiness callback. */
#include "metrics/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

#define AIT__HOST_MAX 256

struct server {
    ait_metrics_http *owner;
    struct MHD_Daemon *daemon;
    int port;
    int metrics; /* serves /metrics */
    int probes;  /* serves /healthz and /readyz */
};

struct ait_metrics_http {
    struct server srv[2];
    ait_metrics *registry;
    ait_metrics_ready_cb ready_cb;
    void *ready_ud;
};

ait_status ait_metrics_http_parse_addr(const char *addr, char *host, size_t host_len, int *port,
                                       int *disabled, ait_error *err)
{
    *disabled = 0;
    *port = 0;
    if (host_len) {
        host[0] = '\0';
    }
    if (!addr || strcmp(addr, "0") == 0) {
        *disabled = 1;
        return AIT_OK;
    }
    const char *colon = strrchr(addr, ':');
    if (!colon) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": want host:port or :port", addr);
    }
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen > 0 && addr[0] == '[') {
        if (hlen < 2 || addr[hlen - 1] != ']') {
            return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": bad IPv6 brackets", addr);
        }
        h = addr + 1;
        hlen -= 2;
    } else if (memchr(addr, ':', hlen)) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": put an IPv6 host in brackets",
                             addr);
    }
    if (hlen >= host_len || hlen >= AIT__HOST_MAX) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": host too long", addr);
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": bad port", addr);
    }
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": bad port", addr);
        }
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": port over 65535", addr);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return AIT_OK;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int code,
                               const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int code,
                                    const char *text)
{
    return respond(conn, code, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result serve_metrics(struct server *s, struct MHD_Connection *conn)
{
    ait_buf b;
    ait_buf_init(&b, 0);
    if (ait_metrics_render(s->owner->registry, &b) != AIT_OK) {
        ait_buf_free(&b);
        return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "rendering metrics failed\n");
    }
    enum MHD_Result ret =
        respond(conn, MHD_HTTP_OK, AIT_METRICS_CONTENT_TYPE, ait_buf_str(&b), b.len);
    ait_buf_free(&b);
    return ret;
}

static enum MHD_Result serve_readyz(struct server *s, struct MHD_Connection *conn)
{
    char reason[256] = "";
    if (!s->owner->ready_cb || s->owner->ready_cb(s->owner->ready_ud, reason, sizeof reason)) {
        return respond_text(conn, MHD_HTTP_OK, "ok");
    }
    reason[sizeof reason - 1] = '\0';
    char body[300];
    snprintf(body, sizeof body, "not ready: %s", reason[0] ? reason : "unknown");
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    struct server *s = cls;
    int known = (s->metrics && strcmp(url, "/metrics") == 0) ||
                (s->probes && (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0));
    if (!known) {
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        return serve_metrics(s, conn);
    }
    if (strcmp(url, "/healthz") == 0) {
        return respond_text(conn, MHD_HTTP_OK, "ok");
    }
    return serve_readyz(s, conn);
}

/* Binds and listens on addr; fills *fd, *port and *ipv6. */
static ait_status bind_addr(const char *addr, int *fd, int *port, int *ipv6, ait_error *err)
{
    char host[AIT__HOST_MAX];
    int want_port = 0, disabled = 0;
    ait_status st =
        ait_metrics_http_parse_addr(addr, host, sizeof host, &want_port, &disabled, err);
    if (st != AIT_OK) {
        return st;
    }
    char service[8];
    snprintf(service, sizeof service, "%d", want_port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &res);
    if (rc != 0) {
        return ait_error_set(err, AIT_ERR_INVALID, "address \"%s\": %s", addr, gai_strerror(rc));
    }
    /* With no host, prefer the IPv4 wildcard: it works where IPv6 is disabled. */
    int last_errno = 0;
    st = AIT_ERR_IO;
    for (int pass = 0; pass < 2 && st != AIT_OK; pass++) {
        for (struct addrinfo *ai = res; ai && st != AIT_OK; ai = ai->ai_next) {
            if ((pass == 0) != (ai->ai_family == AF_INET)) {
                continue;
            }
            int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (s < 0) {
                last_errno = errno;
                continue;
            }
            int one = 1;
            (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, 64) != 0) {
                last_errno = errno;
                close(s);
                continue;
            }
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            if (getsockname(s, (struct sockaddr *)&ss, &sl) != 0) {
                last_errno = errno;
                close(s);
                continue;
            }
            *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            *ipv6 = ss.ss_family == AF_INET6;
            *fd = s;
            st = AIT_OK;
        }
    }
    freeaddrinfo(res);
    if (st != AIT_OK) {
        return ait_error_set(err, AIT_ERR_IO, "listening on \"%s\": %s", addr,
                             strerror(last_errno ? last_errno : EADDRNOTAVAIL));
    }
    return AIT_OK;
}

static ait_status start_server(struct server *s, const char *addr, ait_error *err)
{
    int fd = -1, ipv6 = 0;
    ait_status st = bind_addr(addr, &fd, &s->port, &ipv6, err);
    if (st != AIT_OK) {
        return st;
    }
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | (ipv6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        s->port = 0;
        return ait_error_set(err, AIT_ERR_IO, "starting the HTTP server on \"%s\" failed", addr);
    }
    AIT_LOG_INFO(1, "serving HTTP", "addr", addr, "paths",
                 s->metrics && s->probes ? "/metrics,/healthz,/readyz"
                 : s->metrics            ? "/metrics"
                                         : "/healthz,/readyz");
    return AIT_OK;
}

static int is_disabled(const char *addr)
{
    return !addr || strcmp(addr, "0") == 0;
}

ait_status ait_metrics_http_start(const ait_metrics_http_opts *opts, ait_metrics_http **out,
                                  ait_error *err)
{
    *out = NULL;
    ait_metrics_http *h = ait_calloc(1, sizeof *h);
    h->registry = opts->registry;
    h->ready_cb = opts->ready_cb;
    h->ready_ud = opts->ready_ud;
    h->srv[0].owner = h;
    h->srv[1].owner = h;
    ait_status st = AIT_OK;
    int shared = !is_disabled(opts->metrics_addr) && !is_disabled(opts->probe_addr) &&
                 strcmp(opts->metrics_addr, opts->probe_addr) == 0;
    if (shared) {
        h->srv[0].metrics = 1;
        h->srv[0].probes = 1;
        st = start_server(&h->srv[0], opts->metrics_addr, err);
    } else {
        if (!is_disabled(opts->metrics_addr)) {
            h->srv[0].metrics = 1;
            st = start_server(&h->srv[0], opts->metrics_addr, err);
        }
        if (st == AIT_OK && !is_disabled(opts->probe_addr)) {
            h->srv[1].probes = 1;
            st = start_server(&h->srv[1], opts->probe_addr, err);
        }
    }
    if (st != AIT_OK) {
        ait_metrics_http_free(h);
        return st;
    }
    *out = h;
    return AIT_OK;
}

int ait_metrics_http_metrics_port(const ait_metrics_http *h)
{
    if (!h) {
        return 0;
    }
    return h->srv[0].metrics ? h->srv[0].port : 0;
}

int ait_metrics_http_probe_port(const ait_metrics_http *h)
{
    if (!h) {
        return 0;
    }
    if (h->srv[0].probes) {
        return h->srv[0].port;
    }
    return h->srv[1].probes ? h->srv[1].port : 0;
}

void ait_metrics_http_free(ait_metrics_http *h)
{
    if (!h) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (h->srv[i].daemon) {
            MHD_stop_daemon(h->srv[i].daemon);
        }
    }
    ait_free(h);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Kubeconfig and in-cluster configuration loading, following client-go's clientcmd rules: the
 * chosen context names a cluster and a user, -data fields win over file paths (both set is an
 * error, as `kubectl` reports it), relative paths resolve against the kubeconfig's folder, and
 * every error names the file and the field. The YAML is read as a libyaml document tree and
 * walked only to a fixed depth, so aliases cannot make the walk blow up. */
#include "kube/config.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/buf.h"

#define KC_MAX_FILE (16u * 1024u * 1024u)
#define KC_DEFAULT_SA_ROOT "/var/run/secrets/kubernetes.io/serviceaccount"

void ait_kube_config_free(ait_kube_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    ait_free(cfg->server);
    ait_free(cfg->ca_file);
    ait_free(cfg->ca_data);
    ait_free(cfg->client_cert_file);
    ait_free(cfg->client_cert_data);
    ait_free(cfg->client_key_file);
    if (cfg->client_key_data != NULL) {
        OPENSSL_cleanse(cfg->client_key_data, strlen(cfg->client_key_data));
    }
    ait_free(cfg->client_key_data);
    if (cfg->token != NULL) {
        OPENSSL_cleanse(cfg->token, strlen(cfg->token));
    }
    ait_free(cfg->token);
    ait_free(cfg->token_file);
    ait_free(cfg->namespace_);
    ait_free(cfg);
}

/* Reads a whole file (at most max bytes) into an owned, NUL-terminated string. */
static ait_status read_file(const char *path, size_t max, char **out, size_t *len_out,
                            ait_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return ait_error_set(err, errno == ENOENT ? AIT_ERR_NOT_FOUND : AIT_ERR_IO,
                             "cannot open %s: %s", path, strerror(errno));
    }
    ait_buf b;
    ait_buf_init(&b, max);
    char chunk[8192];
    ait_status st = AIT_OK;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n > 0 && ait_buf_append(&b, chunk, n) != AIT_OK) {
            st = ait_error_set(err, AIT_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
            break;
        }
        if (n < sizeof chunk) {
            if (ferror(f)) {
                st = ait_error_set(err, AIT_ERR_IO, "reading %s: %s", path, strerror(errno));
            }
            break;
        }
    }
    fclose(f);
    if (st != AIT_OK) {
        ait_buf_free(&b);
        return st;
    }
    if (len_out != NULL) {
        *len_out = b.len;
    }
    *out = ait_buf_take(&b);
    return AIT_OK;
}

/* Strips trailing whitespace (token and namespace files often end in a newline). */
static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
}

/* ---- YAML document helpers (borrowed nodes of one yaml_document_t) ---- */

static yaml_node_t *node_at(yaml_document_t *doc, int id)
{
    return id == 0 ? NULL : yaml_document_get_node(doc, id);
}

/* Returns the value node of key in a mapping, or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0) {
            return node_at(doc, p->value);
        }
    }
    return NULL;
}

/* A null scalar ("", "~", "null") counts as absent, as in Go's YAML decoding. */
static int scalar_is_null(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return 0;
    }
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && v[0] == '~') || (len == 4 && memcmp(v, "null", 4) == 0) ||
           (len == 4 && memcmp(v, "Null", 4) == 0) || (len == 4 && memcmp(v, "NULL", 4) == 0);
}

typedef struct kc_ctx {
    const char *label; /* file name for messages */
    const char *base_dir;
    yaml_document_t *doc;
    ait_error *err;
} kc_ctx;

/* Reads an optional string field: *out stays NULL when the key is missing or null. A key whose
 * value is not a scalar, or holds a NUL byte, is an error naming the field. */
static ait_status get_str(kc_ctx *k, yaml_node_t *map, const char *what, const char *key,
                          char **out)
{
    *out = NULL;
    yaml_node_t *n = map_get(k->doc, map, key);
    if (n == NULL) {
        return AIT_OK;
    }
    if (n->type != YAML_SCALAR_NODE) {
        return ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: %s: \"%s\" must be a string",
                             k->label, what, key);
    }
    if (scalar_is_null(n)) {
        return AIT_OK;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL) {
        return ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: %s: \"%s\" holds a NUL byte",
                             k->label, what, key);
    }
    *out = ait_strndup((const char *)n->data.scalar.value, n->data.scalar.length);
    return AIT_OK;
}

static ait_status get_bool(kc_ctx *k, yaml_node_t *map, const char *what, const char *key, int *out)
{
    char *s = NULL;
    *out = 0;
    ait_status st = get_str(k, map, what, key, &s);
    if (st != AIT_OK || s == NULL) {
        return st;
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        *out = 1;
    } else if (strcmp(s, "false") != 0 && strcmp(s, "False") != 0 && strcmp(s, "FALSE") != 0) {
        st = ait_error_set(k->err, AIT_ERR_PARSE,
                           "kubeconfig %s: %s: \"%s\" must be true or false, not \"%.40s\"",
                           k->label, what, key, s);
    }
    ait_free(s);
    return st;
}

/* Finds the entry named name in the list at key ("clusters", ...) and returns its inner mapping
 * (entry[inner]). Returns AIT_ERR_NOT_FOUND with the error left unset when absent. */
static ait_status find_named(kc_ctx *k, yaml_node_t *root, const char *list, const char *inner,
                             const char *name, yaml_node_t **out)
{
    *out = NULL;
    yaml_node_t *seq = map_get(k->doc, root, list);
    if (seq == NULL || (seq->type == YAML_SCALAR_NODE && scalar_is_null(seq))) {
        return AIT_ERR_NOT_FOUND;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        return ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: \"%s\" must be a list",
                             k->label, list);
    }
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *entry = node_at(k->doc, *it);
        yaml_node_t *nn = map_get(k->doc, entry, "name");
        if (nn == NULL || nn->type != YAML_SCALAR_NODE) {
            continue;
        }
        if (nn->data.scalar.length == strlen(name) &&
            memcmp(nn->data.scalar.value, name, nn->data.scalar.length) == 0) {
            yaml_node_t *in = map_get(k->doc, entry, inner);
            if (in == NULL || (in->type == YAML_SCALAR_NODE && scalar_is_null(in))) {
                return ait_error_set(k->err, AIT_ERR_PARSE,
                                     "kubeconfig %s: %s entry \"%s\" has no \"%s\" field", k->label,
                                     list, name, inner);
            }
            if (in->type != YAML_MAPPING_NODE) {
                return ait_error_set(k->err, AIT_ERR_PARSE,
                                     "kubeconfig %s: %s entry \"%s\": \"%s\" must be a mapping",
                                     k->label, list, name, inner);
            }
            *out = in;
            return AIT_OK;
        }
    }
    return AIT_ERR_NOT_FOUND;
}

/* Makes a path absolute against base_dir, as clientcmd's ResolvePaths does. */
static char *resolve_path(const char *base_dir, const char *p)
{
    if (p[0] == '/' || base_dir == NULL || base_dir[0] == '\0') {
        return ait_strdup(p);
    }
    size_t bl = strlen(base_dir);
    return ait_asprintf("%s%s%s", base_dir, base_dir[bl - 1] == '/' ? "" : "/", p);
}

/* Decodes base64 (line breaks allowed, as Go's encoding/base64 via YAML yields) into an owned
 * NUL-terminated string. */
static ait_status b64_decode(kc_ctx *k, const char *what, const char *key, const char *in,
                             char **out)
{
    size_t inlen = strlen(in);
    if (inlen > INT_MAX / 2) {
        return ait_error_set(k->err, AIT_ERR_TOO_LARGE, "kubeconfig %s: %s: \"%s\" is too large",
                             k->label, what, key);
    }
    unsigned char *buf = ait_malloc(inlen / 4 * 3 + 64);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    ait_status st = AIT_OK;
    int n1 = 0, n2 = 0;
    if (ctx == NULL) {
        ait_free(buf);
        return ait_error_set(k->err, AIT_ERR_INTERNAL, "EVP_ENCODE_CTX_new failed");
    }
    EVP_DecodeInit(ctx);
    /* EVP_DecodeUpdate returns -1 on bad input; spaces and line breaks are skipped. */
    if (EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in, (int)inlen) < 0 ||
        EVP_DecodeFinal(ctx, buf + n1, &n2) < 0) {
        st = ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: %s: \"%s\" is not valid base64",
                           k->label, what, key);
    }
    EVP_ENCODE_CTX_free(ctx);
    if (st == AIT_OK && n1 + n2 == 0) {
        st = ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: %s: \"%s\" decodes to nothing",
                           k->label, what, key);
    }
    if (st != AIT_OK) {
        ait_free(buf);
        return st;
    }
    buf[n1 + n2] = '\0';
    *out = (char *)buf;
    return AIT_OK;
}

/* Reads a "<key>" file path and "<key>-data" pair into *file / *data, applying client-go's
 * rule that both together are an error. */
static ait_status get_file_or_data(kc_ctx *k, yaml_node_t *map, const char *what, const char *key,
                                   char **file, char **data)
{
    char *f = NULL, *d = NULL;
    char datakey[64];
    snprintf(datakey, sizeof datakey, "%s-data", key);
    ait_status st = get_str(k, map, what, key, &f);
    if (st == AIT_OK) {
        st = get_str(k, map, what, datakey, &d);
    }
    if (st == AIT_OK && f != NULL && d != NULL) {
        st = ait_error_set(k->err, AIT_ERR_INVALID,
                           "kubeconfig %s: %s: both \"%s\" and \"%s\" are set; specify only one",
                           k->label, what, key, datakey);
    }
    if (st == AIT_OK && d != NULL) {
        char *decoded = NULL;
        st = b64_decode(k, what, datakey, d, &decoded);
        if (st == AIT_OK) {
            *data = decoded;
        }
    }
    if (st == AIT_OK && f != NULL) {
        *file = resolve_path(k->base_dir, f);
    }
    ait_free(f);
    ait_free(d);
    return st;
}

static ait_status fill_cluster(kc_ctx *k, yaml_node_t *root, const char *name, ait_kube_config *cfg)
{
    yaml_node_t *cl = NULL;
    char what[300];
    ait_status st = find_named(k, root, "clusters", "cluster", name, &cl);
    if (st == AIT_ERR_NOT_FOUND) {
        return ait_error_set(k->err, AIT_ERR_NOT_FOUND, "kubeconfig %s: cluster \"%s\" not found",
                             k->label, name);
    }
    if (st != AIT_OK) {
        return st;
    }
    snprintf(what, sizeof what, "cluster \"%s\"", name);
    char *server = NULL;
    if ((st = get_str(k, cl, what, "server", &server)) != AIT_OK) {
        return st;
    }
    if (server == NULL) {
        return ait_error_set(k->err, AIT_ERR_INVALID, "kubeconfig %s: cluster \"%s\" has no server",
                             k->label, name);
    }
    /* client-go defaults a scheme-less host to https. */
    if (strstr(server, "://") == NULL) {
        char *s = ait_asprintf("https://%s", server);
        ait_free(server);
        server = s;
    }
    size_t n = strlen(server);
    while (n > 0 && server[n - 1] == '/') {
        server[--n] = '\0';
    }
    cfg->server = server;
    st = get_file_or_data(k, cl, what, "certificate-authority", &cfg->ca_file, &cfg->ca_data);
    if (st == AIT_OK) {
        st = get_bool(k, cl, what, "insecure-skip-tls-verify", &cfg->insecure_skip_tls_verify);
    }
    return st;
}

static ait_status fill_user(kc_ctx *k, yaml_node_t *root, const char *name, ait_kube_config *cfg)
{
    yaml_node_t *u = NULL;
    char what[300];
    ait_status st = find_named(k, root, "users", "user", name, &u);
    if (st == AIT_ERR_NOT_FOUND) {
        return ait_error_set(k->err, AIT_ERR_NOT_FOUND, "kubeconfig %s: user \"%s\" not found",
                             k->label, name);
    }
    if (st != AIT_OK) {
        return st;
    }
    snprintf(what, sizeof what, "user \"%s\"", name);
    if (map_get(k->doc, u, "exec") != NULL || map_get(k->doc, u, "auth-provider") != NULL) {
        return ait_error_set(k->err, AIT_ERR_INVALID,
                             "kubeconfig %s: %s uses exec or auth-provider credentials, which are "
                             "not supported; use a client certificate or a token",
                             k->label, what);
    }
    st = get_file_or_data(k, u, what, "client-certificate", &cfg->client_cert_file,
                          &cfg->client_cert_data);
    if (st == AIT_OK) {
        st = get_file_or_data(k, u, what, "client-key", &cfg->client_key_file,
                              &cfg->client_key_data);
    }
    if (st == AIT_OK) {
        st = get_str(k, u, what, "token", &cfg->token);
    }
    char *tf = NULL;
    if (st == AIT_OK) {
        st = get_str(k, u, what, "tokenFile", &tf);
    }
    if (st == AIT_OK && tf != NULL) {
        cfg->token_file = resolve_path(k->base_dir, tf);
    }
    ait_free(tf);
    if (st != AIT_OK) {
        return st;
    }
    int has_cert = cfg->client_cert_file != NULL || cfg->client_cert_data != NULL;
    int has_key = cfg->client_key_file != NULL || cfg->client_key_data != NULL;
    if (has_cert && !has_key) {
        return ait_error_set(k->err, AIT_ERR_INVALID,
                             "kubeconfig %s: %s has a client certificate but no client-key or "
                             "client-key-data",
                             k->label, what);
    }
    if (has_key && !has_cert) {
        return ait_error_set(k->err, AIT_ERR_INVALID,
                             "kubeconfig %s: %s has a client key but no client-certificate or "
                             "client-certificate-data",
                             k->label, what);
    }
    return AIT_OK;
}

/* Parses a loaded document into cfg. */
static ait_status parse_doc(kc_ctx *k, const char *context, ait_kube_config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(k->doc);
    if (root == NULL) {
        return ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: the file is empty", k->label);
    }
    if (root->type != YAML_MAPPING_NODE) {
        return ait_error_set(k->err, AIT_ERR_PARSE, "kubeconfig %s: the top level is not a mapping",
                             k->label);
    }
    char *cur = NULL;
    ait_status st = AIT_OK;
    if (context == NULL || context[0] == '\0') {
        if ((st = get_str(k, root, "top level", "current-context", &cur)) != AIT_OK) {
            return st;
        }
        if (cur == NULL || cur[0] == '\0') {
            ait_free(cur);
            return ait_error_set(k->err, AIT_ERR_INVALID,
                                 "kubeconfig %s: no current-context (set one or name a context)",
                                 k->label);
        }
        context = cur;
    }
    yaml_node_t *ctx = NULL;
    char *cluster = NULL, *user = NULL;
    char what[300];
    st = find_named(k, root, "contexts", "context", context, &ctx);
    if (st == AIT_ERR_NOT_FOUND) {
        st = ait_error_set(k->err, AIT_ERR_NOT_FOUND, "kubeconfig %s: context \"%s\" not found",
                           k->label, context);
        goto out;
    }
    if (st != AIT_OK) {
        goto out;
    }
    snprintf(what, sizeof what, "context \"%s\"", context);
    if ((st = get_str(k, ctx, what, "cluster", &cluster)) != AIT_OK ||
        (st = get_str(k, ctx, what, "user", &user)) != AIT_OK ||
        (st = get_str(k, ctx, what, "namespace", &cfg->namespace_)) != AIT_OK) {
        goto out;
    }
    if (cluster == NULL) {
        st = ait_error_set(k->err, AIT_ERR_INVALID, "kubeconfig %s: context \"%s\" has no cluster",
                           k->label, context);
        goto out;
    }
    if ((st = fill_cluster(k, root, cluster, cfg)) != AIT_OK) {
        goto out;
    }
    /* A context without a user is anonymous access, which client-go allows. */
    if (user != NULL && (st = fill_user(k, root, user, cfg)) != AIT_OK) {
        goto out;
    }
out:
    ait_free(cluster);
    ait_free(user);
    ait_free(cur);
    return st;
}

static ait_status from_yaml_labelled(const char *yaml, size_t len, const char *base_dir,
                                     const char *label, const char *context, ait_kube_config **out,
                                     ait_error *err)
{
    *out = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        return ait_error_set(err, AIT_ERR_INTERNAL, "yaml_parser_initialize failed");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        ait_status st = ait_error_set(
            err, AIT_ERR_PARSE, "kubeconfig %s: malformed YAML at line %zu column %zu: %s", label,
            parser.problem_mark.line + 1, parser.problem_mark.column + 1,
            parser.problem != NULL ? parser.problem : "unknown error");
        yaml_parser_delete(&parser);
        return st;
    }
    kc_ctx k = {.label = label, .base_dir = base_dir, .doc = &doc, .err = err};
    ait_kube_config *cfg = ait_calloc(1, sizeof *cfg);
    ait_status st = parse_doc(&k, context, cfg);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (st != AIT_OK) {
        ait_kube_config_free(cfg);
        return st;
    }
    *out = cfg;
    return AIT_OK;
}

ait_status ait_kube_config_from_yaml(const char *yaml, size_t len, const char *base_dir,
                                     const char *context, ait_kube_config **out, ait_error *err)
{
    if (out == NULL || (yaml == NULL && len > 0)) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_kube_config_from_yaml: NULL argument");
    }
    return from_yaml_labelled(yaml == NULL ? "" : yaml, len, base_dir, "(in memory)", context, out,
                              err);
}

ait_status ait_kube_config_from_file(const char *path, const char *context, ait_kube_config **out,
                                     ait_error *err)
{
    if (path == NULL || out == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_kube_config_from_file: NULL argument");
    }
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    ait_status st = read_file(path, KC_MAX_FILE, &text, &len, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "kubeconfig %s", path);
        return st;
    }
    /* The folder of the file, for relative certificate and token paths. */
    char *dir = ait_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        dir[0] = '\0';
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    st = from_yaml_labelled(text, len, dir, path, context, out, err);
    ait_free(dir);
    ait_free(text);
    return st;
}

ait_status ait_kube_config_in_cluster(const char *root, ait_kube_config **out, ait_error *err)
{
    if (out == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_kube_config_in_cluster: NULL argument");
    }
    *out = NULL;
    if (root == NULL) {
        root = KC_DEFAULT_SA_ROOT;
    }
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        return ait_error_set(err, AIT_ERR_NOT_FOUND,
                             "in-cluster config: KUBERNETES_SERVICE_HOST and "
                             "KUBERNETES_SERVICE_PORT must be defined");
    }
    ait_kube_config *cfg = ait_calloc(1, sizeof *cfg);
    /* An IPv6 literal needs brackets in a URL (net.JoinHostPort). */
    cfg->server = strchr(host, ':') != NULL ? ait_asprintf("https://[%s]:%s", host, port)
                                            : ait_asprintf("https://%s:%s", host, port);
    cfg->token_file = ait_asprintf("%s/token", root);
    char *token = NULL;
    ait_status st = read_file(cfg->token_file, 1024 * 1024, &token, NULL, err);
    if (st != AIT_OK) {
        ait_error_wrap(err, "in-cluster config: service-account token");
        ait_kube_config_free(cfg);
        return st;
    }
    rtrim(token);
    if (token[0] == '\0') {
        ait_free(token);
        ait_kube_config_free(cfg);
        return ait_error_set(err, AIT_ERR_INVALID, "in-cluster config: %s/token is empty", root);
    }
    cfg->token = token;
    char *ca = ait_asprintf("%s/ca.crt", root);
    struct stat sb;
    if (stat(ca, &sb) == 0) {
        cfg->ca_file = ca;
    } else {
        /* client-go only logs this too: the system trust store may still verify the server. */
        ait_free(ca);
    }
    char *nsfile = ait_asprintf("%s/namespace", root);
    char *ns = NULL;
    ait_error ignored = {0};
    if (read_file(nsfile, 4096, &ns, NULL, &ignored) == AIT_OK) {
        rtrim(ns);
        if (ns[0] != '\0') {
            cfg->namespace_ = ns;
        } else {
            ait_free(ns);
        }
    }
    ait_free(nsfile);
    *out = cfg;
    return AIT_OK;
}

ait_status ait_kube_config_load(const char *path, const char *context, ait_kube_config **out,
                                ait_error *err)
{
    if (out == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID, "ait_kube_config_load: NULL argument");
    }
    *out = NULL;
    if (path != NULL && path[0] != '\0') {
        return ait_kube_config_from_file(path, context, out, err);
    }
    const char *env = getenv("KUBECONFIG");
    if (env != NULL) {
        /* The first non-empty entry of the ':' list (merging several files is not supported). */
        const char *p = env;
        while (*p == ':') {
            p++;
        }
        size_t n = strcspn(p, ":");
        if (n > 0) {
            char *first = ait_strndup(p, n);
            ait_status st = ait_kube_config_from_file(first, context, out, err);
            ait_free(first);
            return st;
        }
    }
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (host != NULL && host[0] != '\0') {
        return ait_kube_config_in_cluster(NULL, out, err);
    }
    /* Like controller-runtime's GetConfig: the user's file as a last resort. */
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0') {
        char *def = ait_asprintf("%s/.kube/config", home);
        struct stat sb;
        if (stat(def, &sb) == 0) {
            ait_status st = ait_kube_config_from_file(def, context, out, err);
            ait_free(def);
            return st;
        }
        ait_free(def);
    }
    return ait_error_set(err, AIT_ERR_NOT_FOUND,
                         "no Kubernetes configuration: pass a kubeconfig, set $KUBECONFIG, or run "
                         "in a cluster (KUBERNETES_SERVICE_HOST unset)");
}

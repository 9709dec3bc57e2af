/* SPDX-License-Identifier: Apache-2.0 */
/* Vault-backed secrets; see secrets.h. One mutex guards the job queue, the in-flight set and the
 * finished results; the pool threads do the Vault reads and the Secret creation without it. */
#include "reconcile/secrets.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/aitask.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "metrics/registry.h"
#include "reconcile/pod.h"
#include "vault/vault.h"

#define POOL 2
#define RESULTS_MAX 4096

typedef struct job {
    char *key; /* "uid/attempt" */
    char *ns, *name, *uid, *secret_name;
    int attempt;
    json_object *task; /* owned copy, for the owner reference */
    struct job *next;
} job;

typedef struct result {
    char *key;
    ait_status st;
    char msg[AIT_ERROR_MSG_MAX];
} result;

struct ait_secrets {
    ait_vault *vault; /* NULL without a vault address: provider keys come from files only */
    const ait_controller_config *cfg;
    ait_rest *rest;
    ait_auditor *auditor;
    ait_reconcile_queue queue;
    ait_metrics_std *metrics;
    char *mount_prefix; /* "<kv mount>/" */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    char **inflight;
    size_t n_inflight;
    result *results;
    size_t n_results;
    int stopping;
    pthread_t threads[POOL];
    int n_threads;
};

/* A path as users write it ("secret/app/db") relative to the KV mount ("app/db"). */
static const char *kv_path(ait_secrets *s, const char *path)
{
    size_t n = strlen(s->mount_prefix);
    return strncmp(path, s->mount_prefix, n) == 0 ? path + n : path;
}

static void job_free(job *j)
{
    ait_free(j->key);
    ait_free(j->ns);
    ait_free(j->name);
    ait_free(j->uid);
    ait_free(j->secret_name);
    json_object_put(j->task);
    ait_free(j);
}

static void finish(ait_secrets *s, const char *key, ait_status st, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_inflight; i++) {
        if (strcmp(s->inflight[i], key) == 0) {
            ait_free(s->inflight[i]);
            s->inflight[i] = s->inflight[--s->n_inflight];
            break;
        }
    }
    if (s->n_results < RESULTS_MAX) {
        s->results = ait_realloc(s->results, (s->n_results + 1) * sizeof(result));
        result *r = &s->results[s->n_results++];
        r->key = ait_strdup(key);
        r->st = st;
        snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
    }
    pthread_mutex_unlock(&s->mu);
}

/* Resolves every secretRef of the job's task and creates the ephemeral Secret. */
static void run_job(ait_secrets *s, job *j)
{
    ait_task_spec spec;
    ait_error err = {0};
    ait_status st = ait_task_spec_parse(j->task, &spec, &err);
    json_object *data = json_object_new_object();
    for (size_t i = 0; st == AIT_OK && i < spec.n_secret_refs; i++) {
        const ait_secret_ref *ref = &spec.secret_refs[i];
        ait_vault_secret sec;
        memset(&sec, 0, sizeof(sec));
        st = ait_vault_read(s->vault, kv_path(s, ref->vault_path), ref->key, j->key, &sec, &err);
        if (st != AIT_OK) {
            ait_error_wrap(&err, "secretRefs[%zu] (env %s)", i, ref->env);
            break;
        }
        if (s->auditor != NULL) {
            ait_error aerr = {0};
            st = ait_auditor_record_secret(s->auditor, j->ns, j->name, j->uid, ref->vault_path,
                                           sec.version, sec.from_cache, j->attempt, &aerr);
            if (st != AIT_OK) {
                ait_error_set(&err, st, "the audit log cannot be written: %s", aerr.msg);
                ait_vault_secret_clear(&sec);
                break;
            }
        }
        json_object_object_add(data, ref->env, json_object_new_string(sec.value));
        ait_vault_secret_clear(&sec);
    }
    if (st == AIT_OK) {
        json_object *secret = json_object_new_object();
        json_object_object_add(secret, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(secret, "kind", json_object_new_string("Secret"));
        json_object *m = json_object_new_object();
        json_object_object_add(m, "name", json_object_new_string(j->secret_name));
        json_object_object_add(m, "namespace", json_object_new_string(j->ns));
        json_object *labels = json_object_new_object();
        json_object_object_add(labels, AIT_LABEL_MANAGED_BY, json_object_new_string(AIT_MANAGER));
        json_object_object_add(labels, AIT_LABEL_TASK_UID, json_object_new_string(j->uid));
        json_object_object_add(m, "labels", labels);
        json_object *refs = json_object_new_array();
        json_object_array_add(refs, ait_owner_ref(j->task));
        json_object_object_add(m, "ownerReferences", refs);
        json_object_object_add(secret, "metadata", m);
        json_object_object_add(secret, "type", json_object_new_string("Opaque"));
        json_object_object_add(secret, "immutable", json_object_new_boolean(1));
        json_object_object_add(secret, "stringData", json_object_get(data));
        st = ait_rest_create(s->rest, &AIT_GVR_SECRETS, j->ns, secret, NULL, &err);
        if (st == AIT_ERR_EXISTS) {
            st = AIT_OK;
        }
        json_object_put(secret);
    }
    json_object_put(data);
    ait_task_spec_clear(&spec);
    if (st != AIT_OK) {
        /* err names the path and key (and Vault's reason), never a value. */
        AIT_LOG_ERROR(err.msg, "resolving secretRefs failed", "object", j->name, "namespace",
                      j->ns);
    }
    finish(s, j->key, st, err.msg);
    if (s->queue.add != NULL) {
        char *k = ait_asprintf("%s/%s", j->ns, j->name);
        s->queue.add(s->queue.ctx, k);
        ait_free(k);
    }
}

static void *pool_main(void *arg)
{
    ait_secrets *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->head == NULL && !s->stopping) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->head == NULL) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        job *j = s->head;
        s->head = j->next;
        if (s->head == NULL) {
            s->tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        job_free(j);
    }
}

ait_status ait_secrets_new(const ait_controller_config *cfg, ait_rest *rest, ait_auditor *auditor,
                           ait_metrics_std *metrics, ait_reconcile_queue queue, ait_secrets **out,
                           ait_error *err)
{
    *out = NULL;
    ait_secrets *s = ait_calloc(1, sizeof(*s));
    s->cfg = cfg;
    const char *addr = ait_json_str(cfg->raw, "vault.address");
    const char *mount = ait_json_str(cfg->raw, "vault.mount");
    if (addr != NULL && *addr != '\0') {
        const char *token_file = ait_json_str(cfg->raw, "vault.tokenFile");
        ait_vault_options vo = {
            .addr = addr,
            .ca_file = ait_json_str(cfg->raw, "vault.caFile"),
            .allow_http = ait_json_bool(cfg->raw, "vault.allowHTTP", 0),
            .auth =
                (token_file && *token_file) ? AIT_VAULT_AUTH_TOKEN_FILE : AIT_VAULT_AUTH_KUBERNETES,
            .token_file = token_file,
            .k8s_role = ait_json_str(cfg->raw, "vault.role"),
            .jwt_file = ait_json_str(cfg->raw, "vault.jwtFile"),
            .k8s_mount = ait_json_str(cfg->raw, "vault.authPath"),
            .kv_mount = mount,
            .cache_ttl_ns = ait_json_int(cfg->raw, "vault.cacheTTLSeconds", 0) * AIT_NS_PER_S,
        };
        ait_status st = ait_vault_new(&vo, &s->vault, err);
        if (st != AIT_OK) {
            ait_error_wrap(err, "vault config");
            ait_free(s);
            return AIT_ERR_INVALID;
        }
    }
    s->rest = rest;
    s->auditor = auditor;
    s->metrics = metrics;
    s->queue = queue;
    s->mount_prefix = ait_asprintf("%s/", mount ? mount : "secret");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < POOL; i++) {
        pthread_create(&s->threads[s->n_threads++], NULL, pool_main, s);
    }
    *out = s;
    return AIT_OK;
}

void ait_secrets_free(ait_secrets *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    /* Queued jobs are dropped: their tasks are reconciled again after a restart. */
    while (s->head != NULL) {
        job *j = s->head;
        s->head = j->next;
        job_free(j);
    }
    s->tail = NULL;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++) {
        pthread_join(s->threads[i], NULL);
    }
    for (size_t i = 0; i < s->n_inflight; i++) {
        ait_free(s->inflight[i]);
    }
    ait_free(s->inflight);
    for (size_t i = 0; i < s->n_results; i++) {
        ait_free(s->results[i].key);
    }
    ait_free(s->results);
    ait_vault_free(s->vault);
    ait_free(s->mount_prefix);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ait_free(s);
}

static ait_status ensure(void *ctx, json_object *task, int n, const char *secret_name,
                         ait_error *err)
{
    ait_secrets *s = ctx;
    char *key = ait_asprintf("%s/%d", ait_obj_uid(task), n);
    ait_status st = AIT_ERR_RETRY;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_inflight; i++) {
        if (strcmp(s->inflight[i], key) == 0) {
            pthread_mutex_unlock(&s->mu);
            ait_free(key);
            return ait_error_set(err, AIT_ERR_RETRY, "resolving secretRefs from Vault");
        }
    }
    for (size_t i = 0; i < s->n_results; i++) {
        if (strcmp(s->results[i].key, key) == 0) {
            result r = s->results[i];
            s->results[i] = s->results[--s->n_results];
            pthread_mutex_unlock(&s->mu);
            ait_free(key);
            ait_free(r.key);
            if (r.st == AIT_OK) {
                return AIT_OK;
            }
            /* A failure is reported once; the next call (after the reconciler's backoff) tries
             * again. Never AIT_ERR_RETRY here: that means "in flight". */
            return ait_error_set(err, r.st == AIT_ERR_RETRY ? AIT_ERR_IO : r.st, "%s", r.msg);
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* Made before a restart? The Secret is the state. */
    json_object *cur = NULL;
    ait_error gerr = {0};
    st = ait_rest_get(s->rest, &AIT_GVR_SECRETS, ait_obj_namespace(task), secret_name, &cur, &gerr);
    if (st == AIT_OK) {
        const char *owner = ait_obj_controller_uid(cur);
        int ours = owner != NULL && strcmp(owner, ait_obj_uid(task)) == 0;
        json_object_put(cur);
        ait_free(key);
        return ours ? AIT_OK
                    : ait_error_set(err, AIT_ERR_CONFLICT,
                                    "Secret %s exists but is not owned by this task", secret_name);
    }
    if (st != AIT_ERR_NOT_FOUND) {
        ait_free(key);
        *err = gerr;
        return st;
    }
    job *j = ait_calloc(1, sizeof(*j));
    j->key = key;
    j->ns = ait_strdup(ait_obj_namespace(task));
    j->name = ait_strdup(ait_obj_name(task));
    j->uid = ait_strdup(ait_obj_uid(task));
    j->secret_name = ait_strdup(secret_name);
    j->attempt = n;
    json_object_deep_copy(task, &j->task, NULL);
    pthread_mutex_lock(&s->mu);
    s->inflight = ait_realloc(s->inflight, (s->n_inflight + 1) * sizeof(char *));
    s->inflight[s->n_inflight++] = ait_strdup(key);
    if (s->tail != NULL) {
        s->tail->next = j;
    } else {
        s->head = j;
    }
    s->tail = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return ait_error_set(err, AIT_ERR_RETRY, "resolving secretRefs from Vault");
}

ait_reconcile_secrets ait_secrets_seam(ait_secrets *s)
{
    ait_reconcile_secrets seam = {s, s->vault ? ensure : NULL};
    return seam;
}

/* ---- provider keys ---- */

static ait_status read_file_trimmed(const char *path, char **out, ait_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return ait_error_set(err, AIT_ERR_NOT_FOUND, "cannot open API key file %s: %s", path,
                             strerror(errno));
    }
    ait_buf b;
    ait_buf_init(&b, 64 * 1024);
    char chunk[4096];
    size_t n;
    ait_status st = AIT_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (ait_buf_append(&b, chunk, n) != AIT_OK) {
            st = ait_error_set(err, AIT_ERR_TOO_LARGE, "API key file %s is too large", path);
            break;
        }
    }
    fclose(f);
    while (b.len > 0 &&
           (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' ')) {
        b.data[--b.len] = '\0';
    }
    if (st != AIT_OK) {
        ait_buf_free(&b);
        return st;
    }
    *out = ait_buf_take(&b);
    return AIT_OK;
}

static ait_status get_key(void *ctx, const char *provider, int force_refresh, char **key,
                          ait_error *err)
{
    ait_secrets *k = ctx;
    *key = NULL;
    json_object *provs = ait_json_array(k->cfg->raw, "providers");
    json_object *p = NULL;
    for (size_t i = 0; provs != NULL && i < json_object_array_length(provs); i++) {
        json_object *e = json_object_array_get_idx(provs, i);
        const char *name = ait_json_str(e, "name");
        if (name != NULL && strcmp(name, provider) == 0) {
            p = e;
        }
    }
    if (p == NULL) {
        return ait_error_set(err, AIT_ERR_NOT_FOUND, "provider %s is not configured", provider);
    }
    const char *vpath = ait_json_str(p, "vaultPath");
    if (vpath == NULL) {
        const char *file = ait_json_str(p, "apiKeyFile");
        return file ? read_file_trimmed(file, key, err) : AIT_OK; /* keyless (ollama) */
    }
    if (k->vault == NULL) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "provider %s has vaultPath but no vault.address is configured",
                             provider);
    }
    const char *path = kv_path(k, vpath);
    if (force_refresh) {
        ait_vault_invalidate(k->vault, path);
    }
    const char *vkey = ait_json_str(p, "vaultKey");
    ait_vault_secret sec;
    memset(&sec, 0, sizeof(sec));
    char tag[160];
    snprintf(tag, sizeof(tag), "provider:%s", provider);
    ait_status st = ait_vault_read(k->vault, path, vkey ? vkey : "apiKey", tag, &sec, err);
    if (st != AIT_OK) {
        return st;
    }
    if (k->auditor != NULL) {
        ait_error aerr = {0};
        st = ait_auditor_record_secret(k->auditor, NULL, provider, NULL, vpath, sec.version,
                                       sec.from_cache, 0, &aerr);
        if (st != AIT_OK) {
            ait_vault_secret_clear(&sec);
            return ait_error_set(err, st, "the audit log cannot be written: %s", aerr.msg);
        }
    }
    /* aitask_secret_age_seconds: the age of the key's current version (KV v2
     * metadata.created_time), against the 90-day rotation policy's alert. */
    int64_t created = 0;
    if (k->metrics != NULL && sec.created_time[0] != '\0' &&
        ait_time_parse_rfc3339(sec.created_time, &created) == AIT_OK) {
        ait_metric_set(ait_metric_family_with(k->metrics->secret_age_seconds, vpath),
                       (double)(ait_time_now_ns() - created) / 1e9);
    }
    *key = ait_strdup(sec.value);
    ait_vault_secret_clear(&sec);
    return AIT_OK;
}

ait_heal_key_source ait_secrets_key_source(ait_secrets *s)
{
    ait_heal_key_source src = {s, get_key};
    return src;
}

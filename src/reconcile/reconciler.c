/* SPDX-License-Identifier: Apache-2.0 */
/* The AITask reconciler; see reconciler.h for the contract. The flow of one call:
 *   deleting -> finalize | no finalizer -> add it | terminal -> nothing |
 *   invalid -> Invalid=True, Failed | no attempt or last one failed -> start the next (or heal,
 *   or fail) | last one running -> observe its pod.
 * Status is written with PUT on the status subresource carrying the cached resourceVersion, so
 * a decision taken on a stale cache fails with Conflict and is retried on fresh data. */
#include "reconcile/reconciler.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/aitask.h"
#include "audit/crypto.h"
#include "core/alloc.h"
#include "core/failpoint.h"
#include "core/json.h"
#include "core/log.h"
#include "metrics/registry.h"
#include "reconcile/pod.h"

#define PENDING_MAX 4096

typedef struct pending_failure {
    char *uid;
    int attempt;
    char *reason;
    char *message;
    int64_t cost_micro;
} pending_failure;

/* The resourceVersion of our own last write to a task. The task cache may lag it by a few
 * milliseconds (an owned pod's event can arrive before the task's), and a decision taken on the
 * older copy would only end in a Conflict: such a reconcile waits for the cache instead. */
typedef struct written_rv {
    char *key;
    int64_t rv;
} written_rv;

#define WRITTEN_MAX 16384

typedef struct netpol_seen {
    char *ns;
    int64_t at;
} netpol_seen;

/* How long a namespace's NetworkPolicy is trusted before it is checked again (a GET). */
#define NETPOL_RECHECK_NS (60 * AIT_NS_PER_S)

typedef struct reask {
    char *uid;
    int attempt;
    int64_t due; /* now_ns() time the re-ask may be sent */
} reask;

struct ait_reconciler {
    ait_reconciler_deps d;
    pthread_mutex_t mu; /* guards failures and written */
    pending_failure *failures;
    size_t n_failures;
    written_rv *written;
    size_t n_written;
    /* Heals re-asked after every provider failed ("uid/attempt"): one retry each, so a burst of
     * transient provider errors does not fail the task, and a dead set of providers fails it
     * after one more try instead of a retry storm. In memory: a restart allows one more. */
    reask *reasked;
    size_t n_reasked;
    /* Tasks (by uid) with a heal in flight, or a reconcile deciding whether to ask for one.
     * Claimed before the reconcile looks for a heal's outcome (healed code, recorded failure),
     * released by heal_done only after the outcome is visible: a reconcile can never miss an
     * outcome and ask the providers a second time. */
    char **claims;
    size_t n_claims;
    /* Namespaces whose sandbox NetworkPolicy was created or checked, and when (now_ns()). */
    netpol_seen *netpols;
    size_t n_netpols;
};

#define HEAL_REASK_NS (10 * AIT_NS_PER_S)

/* Finds the re-ask of uid/attempt; returns its index or -1. Call with r->mu held. */
static ssize_t find_reask(const ait_reconciler *r, const char *uid, int attempt)
{
    for (size_t i = 0; i < r->n_reasked; i++) {
        if (r->reasked[i].attempt == attempt && strcmp(r->reasked[i].uid, uid) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

/* Returns 1 when uid/attempt has been re-asked; *due gets the time the re-ask may be sent. */
static int reask_due(ait_reconciler *r, const char *uid, int attempt, int64_t *due)
{
    pthread_mutex_lock(&r->mu);
    ssize_t i = find_reask(r, uid, attempt);
    if (i >= 0 && due != NULL) {
        *due = r->reasked[i].due;
    }
    pthread_mutex_unlock(&r->mu);
    return i >= 0;
}

/* Records the re-ask of uid/attempt, to be sent at due. Recorded before the status saying so is
 * written (a reconcile woken by that write must already see it), dropped if the write fails. */
static void reask_set(ait_reconciler *r, const char *uid, int attempt, int64_t due)
{
    pthread_mutex_lock(&r->mu);
    if (find_reask(r, uid, attempt) < 0 && r->n_reasked < PENDING_MAX) {
        r->reasked = ait_realloc(r->reasked, (r->n_reasked + 1) * sizeof(*r->reasked));
        r->reasked[r->n_reasked].uid = ait_strdup(uid);
        r->reasked[r->n_reasked].attempt = attempt;
        r->reasked[r->n_reasked].due = due;
        r->n_reasked++;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Returns 1 and claims uid's heal, or 0 when it is already claimed. */
static int heal_claim(ait_reconciler *r, const char *uid)
{
    int ok = 1;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_claims && ok; i++) {
        ok = strcmp(r->claims[i], uid) != 0;
    }
    if (ok) {
        r->claims = ait_realloc(r->claims, (r->n_claims + 1) * sizeof(char *));
        r->claims[r->n_claims++] = ait_strdup(uid);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void heal_unclaim(ait_reconciler *r, const char *uid)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_claims; i++) {
        if (strcmp(r->claims[i], uid) == 0) {
            ait_free(r->claims[i]);
            r->claims[i] = r->claims[--r->n_claims];
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void reask_drop(ait_reconciler *r, const char *uid, int attempt)
{
    pthread_mutex_lock(&r->mu);
    ssize_t i = find_reask(r, uid, attempt);
    if (i >= 0) {
        ait_free(r->reasked[i].uid);
        r->reasked[i] = r->reasked[--r->n_reasked];
    }
    pthread_mutex_unlock(&r->mu);
}

static int64_t rv_num(const char *rv)
{
    if (rv == NULL || *rv == '\0') {
        return -1;
    }
    int64_t v = 0;
    for (const char *p = rv; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT64_MAX / 10) {
            return -1; /* not a number: the guard is off for this object */
        }
        v = v * 10 + (*p - '0');
    }
    return v;
}

static void remember_rv(ait_reconciler *r, const char *key, const char *rv)
{
    int64_t n = rv_num(rv);
    if (n < 0) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_written; i++) {
        if (strcmp(r->written[i].key, key) == 0) {
            if (n > r->written[i].rv) {
                r->written[i].rv = n;
            }
            pthread_mutex_unlock(&r->mu);
            return;
        }
    }
    if (r->n_written >= WRITTEN_MAX) {
        /* Forget the oldest half; the guard is only an optimisation. */
        for (size_t i = 0; i < r->n_written / 2; i++) {
            ait_free(r->written[i].key);
        }
        memmove(r->written, r->written + r->n_written / 2,
                (r->n_written - r->n_written / 2) * sizeof(written_rv));
        r->n_written -= r->n_written / 2;
    }
    r->written = ait_realloc(r->written, (r->n_written + 1) * sizeof(written_rv));
    r->written[r->n_written].key = ait_strdup(key);
    r->written[r->n_written].rv = n;
    r->n_written++;
    pthread_mutex_unlock(&r->mu);
}

/* True when the cached task is older than our own last write to it. */
static int cache_is_stale(ait_reconciler *r, const char *key, const char *rv)
{
    int64_t n = rv_num(rv);
    int stale = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; n >= 0 && i < r->n_written; i++) {
        if (strcmp(r->written[i].key, key) == 0) {
            stale = n < r->written[i].rv;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return stale;
}

ait_reconciler *ait_reconciler_new(const ait_reconciler_deps *deps)
{
    ait_reconciler *r = ait_calloc(1, sizeof(*r));
    r->d = *deps;
    if (r->d.clock == NULL) {
        r->d.clock = ait_clock_system();
    }
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void failure_clear(pending_failure *f)
{
    ait_free(f->uid);
    ait_free(f->reason);
    ait_free(f->message);
    memset(f, 0, sizeof(*f));
}

void ait_reconciler_free(ait_reconciler *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_failures; i++) {
        failure_clear(&r->failures[i]);
    }
    ait_free(r->failures);
    for (size_t i = 0; i < r->n_written; i++) {
        ait_free(r->written[i].key);
    }
    ait_free(r->written);
    for (size_t i = 0; i < r->n_reasked; i++) {
        ait_free(r->reasked[i].uid);
    }
    ait_free(r->reasked);
    for (size_t i = 0; i < r->n_claims; i++) {
        ait_free(r->claims[i]);
    }
    ait_free(r->claims);
    for (size_t i = 0; i < r->n_netpols; i++) {
        ait_free(r->netpols[i].ns);
    }
    ait_free(r->netpols);
    pthread_mutex_destroy(&r->mu);
    ait_free(r);
}

static int64_t now_ns(ait_reconciler *r)
{
    return r->d.clock->now_ns(r->d.clock->ctx);
}

static void emit(ait_reconciler *r, json_object *task, const char *type, const char *reason,
                 const char *action, const char *note)
{
    if (r->d.events.emit != NULL) {
        r->d.events.emit(r->d.events.ctx, task, type, reason, action, note);
    }
}

/* Appends an audit entry (no-op without an audit trail). On failure the task is marked
 * (AuditReady=False, an Event) and the caller holds the step: fail closed. */
static ait_status audit(ait_reconciler *r, json_object *task, json_object *status,
                        const char *action, int attempt, json_object *details)
{
    if (r->d.audit.record == NULL) {
        return AIT_OK;
    }
    ait_error e = {0};
    ait_status st = r->d.audit.record(r->d.audit.ctx, task, action, attempt, details, &e);
    int64_t gen = ait_obj_generation(task);
    if (st != AIT_OK) {
        char *msg = ait_asprintf("the audit log cannot be written (%s); the task waits until it "
                                 "can: %s",
                                 action, e.msg);
        if (!ait_condition_get(status, "AuditReady") ||
            strcmp(ait_json_str(ait_condition_get(status, "AuditReady"), "status"), "False") != 0) {
            emit(r, task, "Warning", "AuditUnavailable", "Audit", msg);
        }
        ait_condition_set(status, "AuditReady", "False", "AuditUnavailable", msg, gen, now_ns(r));
        AIT_LOG_ERROR(e.msg, "audit write failed; holding the task", "object", ait_obj_name(task),
                      "namespace", ait_obj_namespace(task), "action", action);
        ait_free(msg);
        return st;
    }
    if (ait_condition_get(status, "AuditReady") != NULL) {
        ait_condition_set(status, "AuditReady", "True", "AuditWritten", "the audit log is written",
                          gen, now_ns(r));
    }
    return AIT_OK;
}

#define AUDIT_RETRY_NS (5 * AIT_NS_PER_S)

/* Takes the recorded heal failure for (uid, attempt), if any. Returns 1 and fills *out. */
static int take_failure(ait_reconciler *r, const char *uid, int attempt, pending_failure *out)
{
    int found = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_failures; i++) {
        if (strcmp(r->failures[i].uid, uid) == 0 && r->failures[i].attempt == attempt) {
            *out = r->failures[i];
            r->failures[i] = r->failures[--r->n_failures];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* Gives back a failure taken by a reconcile whose status write then failed: the next reconcile
 * must see it again instead of asking the providers a second time. */
static void put_back_failure(ait_reconciler *r, pending_failure *f)
{
    pthread_mutex_lock(&r->mu);
    if (r->n_failures < PENDING_MAX) {
        r->failures = ait_realloc(r->failures, (r->n_failures + 1) * sizeof(pending_failure));
        r->failures[r->n_failures++] = *f;
        memset(f, 0, sizeof(*f));
    }
    pthread_mutex_unlock(&r->mu);
    failure_clear(f); /* the table was full: the failure is dropped and the heal asked again */
}

void ait_reconcile_trace_id(const char *uid, char out[33])
{
    ait_trace_derive_id(uid ? uid : "", 16, out);
}

void ait_reconcile_attempt_span_id(const char *uid, int n, char out[17])
{
    char seed[160];
    snprintf(seed, sizeof(seed), "%s/attempt/%d", uid ? uid : "", n);
    ait_trace_derive_id(seed, 8, out);
}

/* ---- status writing ---- */

static void set_phase(json_object *status, ait_phase p)
{
    json_object_object_add(status, "phase", json_object_new_string(ait_phase_str(p)));
}

static ait_phase get_phase(json_object *status)
{
    return ait_phase_parse(ait_json_str(status, "phase"));
}

/* PUTs task (with its edited status) to the status subresource unless the status is unchanged
 * from orig_status. */
static ait_status write_status(ait_reconciler *r, json_object *task, json_object *orig_status,
                               ait_error *err)
{
    json_object *status = ait_status_obj(task);
    json_object_object_add(status, "observedGeneration",
                           json_object_new_int64(ait_obj_generation(task)));
    json_object *attempts = ait_json_array(status, "attempts");
    json_object_object_add(
        status, "attemptCount",
        json_object_new_int64(attempts ? (int64_t)json_object_array_length(attempts) : 0));
    if (r->d.audit.head != NULL) {
        int64_t entries = 0;
        char hash[65];
        ait_error e = {0};
        if (r->d.audit.head(r->d.audit.ctx, ait_obj_uid(task), &entries, hash, &e) == AIT_OK &&
            entries > 0) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "head", json_object_new_string(hash));
            json_object_object_add(a, "entries", json_object_new_int64(entries));
            json_object_object_add(status, "audit", a);
        }
    }
    if (orig_status != NULL && json_object_equal(orig_status, status)) {
        return AIT_OK;
    }
    ait_failpoint("before-status-write");
    json_object *written = NULL;
    ait_status st = ait_rest_update(r->d.rest, &AIT_GVR_AITASKS, ait_obj_namespace(task),
                                    ait_obj_name(task), "status", task, &written, err);
    if (st == AIT_OK) {
        char *key = ait_asprintf("%s/%s", ait_obj_namespace(task), ait_obj_name(task));
        remember_rv(r, key, ait_obj_resource_version(written));
        ait_free(key);
        ait_failpoint("after-status-write");
    }
    json_object_put(written);
    if (st != AIT_OK) {
        ait_error_wrap(err, "updating status of %s/%s", ait_obj_namespace(task),
                       ait_obj_name(task));
    }
    return st;
}

static void fail_task(ait_reconciler *r, json_object *task, json_object *status, const char *reason,
                      const char *message)
{
    int64_t gen = ait_obj_generation(task);
    set_phase(status, AIT_PHASE_FAILED);
    ait_condition_set(status, "Succeeded", "False", reason, message, gen, now_ns(r));
    ait_condition_set(status, "Healing", "False", reason, "no further attempt", gen, now_ns(r));
    emit(r, task, "Warning", reason, "Fail", message);
}

/* ---- owned objects ---- */

static json_object *cached(ait_reconciler *r, ait_cache_kind kind, const char *ns, const char *name)
{
    return r->d.cache.get(r->d.cache.ctx, kind, ns, name);
}

/* Creates obj; AlreadyExists is success when the existing object is controlled by this task
 * (adoption after a crash), else a conflict. */
static ait_status ensure_created(ait_reconciler *r, const ait_gvr *gvr, json_object *task,
                                 json_object *obj, ait_error *err)
{
    const char *ns = ait_obj_namespace(task);
    const char *name = ait_obj_name(obj);
    /* Already cached and ours: adopt without a request. */
    if (gvr == &AIT_GVR_PODS || gvr == &AIT_GVR_CONFIGMAPS) {
        json_object *c =
            cached(r, gvr == &AIT_GVR_PODS ? AIT_CACHE_POD : AIT_CACHE_CONFIGMAP, ns, name);
        const char *owner = c ? ait_obj_controller_uid(c) : NULL;
        int ours = owner != NULL && strcmp(owner, ait_obj_uid(task)) == 0;
        json_object_put(c);
        if (ours) {
            return AIT_OK;
        }
    }
    ait_status st = ait_rest_create(r->d.rest, gvr, ns, obj, NULL, err);
    if (st != AIT_ERR_EXISTS) {
        if (st != AIT_OK) {
            ait_error_wrap(err, "creating %s %s/%s", gvr->kind, ns, name);
        }
        return st;
    }
    json_object *cur = NULL;
    st = ait_rest_get(r->d.rest, gvr, ns, name, &cur, err);
    if (st != AIT_OK) {
        return st;
    }
    const char *owner = ait_obj_controller_uid(cur);
    int ours = owner != NULL && strcmp(owner, ait_obj_uid(task)) == 0;
    json_object_put(cur);
    if (!ours) {
        /* A leftover of an earlier task with the same name: the garbage collector removes it
         * soon; retry with backoff rather than run foreign code. */
        return ait_error_set(err, AIT_ERR_CONFLICT,
                             "%s %s/%s exists but is not owned by this AITask; waiting for the "
                             "garbage collector to remove it",
                             gvr->kind, ns, name);
    }
    AIT_LOG_INFO(2, "adopted existing object", "object", name, "kind", gvr->kind);
    return AIT_OK;
}

/* Makes sure namespace ns has the sandbox NetworkPolicy, as built by ait_netpol_build: created
 * when missing, put back when someone changed it. Checked again every NETPOL_RECHECK_NS, so it
 * costs one write per namespace, not one per task. */
static ait_status ensure_netpol(ait_reconciler *r, const char *ns, ait_error *err)
{
    int64_t now = now_ns(r);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_netpols; i++) {
        if (strcmp(r->netpols[i].ns, ns) == 0 && now - r->netpols[i].at < NETPOL_RECHECK_NS) {
            pthread_mutex_unlock(&r->mu);
            return AIT_OK;
        }
    }
    pthread_mutex_unlock(&r->mu);
    json_object *want = ait_netpol_build(ns);
    json_object *cur = NULL;
    ait_status st =
        ait_rest_get(r->d.rest, &AIT_GVR_NETWORKPOLICIES, ns, AIT_NETPOL_NAME, &cur, err);
    if (st == AIT_ERR_NOT_FOUND) {
        ait_error_clear(err);
        st = ait_rest_create(r->d.rest, &AIT_GVR_NETWORKPOLICIES, ns, want, NULL, err);
        if (st == AIT_ERR_EXISTS) {
            ait_error_clear(err);
            st = AIT_OK; /* another replica or worker made it a moment ago */
        }
    } else if (st == AIT_OK &&
               !json_object_equal(ait_json_path(cur, "spec"), ait_json_path(want, "spec"))) {
        AIT_LOG_INFO(0, "the sandbox NetworkPolicy was changed; restoring it", "namespace", ns);
        json_object_object_add(cur, "spec", json_object_get(ait_json_path(want, "spec")));
        st = ait_rest_update(r->d.rest, &AIT_GVR_NETWORKPOLICIES, ns, AIT_NETPOL_NAME, NULL, cur,
                             NULL, err);
    }
    json_object_put(cur);
    json_object_put(want);
    if (st != AIT_OK) {
        ait_error_wrap(err, "ensuring NetworkPolicy %s/%s", ns, AIT_NETPOL_NAME);
        return st;
    }
    pthread_mutex_lock(&r->mu);
    size_t i = 0;
    while (i < r->n_netpols && strcmp(r->netpols[i].ns, ns) != 0) {
        i++;
    }
    if (i == r->n_netpols) {
        r->netpols = ait_realloc(r->netpols, (r->n_netpols + 1) * sizeof(*r->netpols));
        r->netpols[r->n_netpols++].ns = ait_strdup(ns);
    }
    r->netpols[i].at = now;
    pthread_mutex_unlock(&r->mu);
    return AIT_OK;
}

/* Reads the code of attempt n from its ConfigMap (cache, then API). Returns an owned copy, or
 * NULL when the ConfigMap does not exist. heal_out (may be NULL) gets the heal annotation parsed
 * (owned). */
static ait_status attempt_code(ait_reconciler *r, json_object *task, int n, const char *file,
                               char **code_out, json_object **heal_out, ait_error *err)
{
    *code_out = NULL;
    if (heal_out != NULL) {
        *heal_out = NULL;
    }
    char *name = ait_attempt_name(ait_obj_name(task), n);
    /* The ConfigMaps cache holds no data (pruned to save memory: code is up to 256 KiB a
     * ConfigMap), so the code itself is always read from the API; this runs only on the heal
     * path. */
    json_object *cm = NULL;
    ait_status st =
        ait_rest_get(r->d.rest, &AIT_GVR_CONFIGMAPS, ait_obj_namespace(task), name, &cm, err);
    if (st == AIT_ERR_NOT_FOUND) {
        st = AIT_OK;
    }
    if (cm != NULL) {
        const char *owner = ait_obj_controller_uid(cm);
        json_object *data = ait_json_path(cm, "data");
        const char *code = NULL;
        if (owner != NULL && strcmp(owner, ait_obj_uid(task)) == 0 &&
            json_object_is_type(data, json_type_object)) {
            code = ait_json_str(data, file);
            if (code == NULL) {
                /* A custom image/command task: the single data key holds the code. */
                json_object_object_foreach(data, k, v)
                {
                    (void)k;
                    code = json_object_get_string(v);
                    break;
                }
            }
        }
        if (code != NULL) {
            *code_out = ait_strdup(code);
            /* Annotation keys hold dots, so no dotted-path lookup here. */
            json_object *ann = ait_json_path(cm, "metadata.annotations");
            json_object *hv = NULL;
            const char *h = NULL;
            if (json_object_is_type(ann, json_type_object) &&
                json_object_object_get_ex(ann, AIT_ANNOTATION_HEAL, &hv) &&
                json_object_is_type(hv, json_type_string)) {
                h = json_object_get_string(hv);
            }
            if (heal_out != NULL && h != NULL) {
                json_object *parsed = NULL;
                if (ait_json_parse(h, strlen(h), &parsed, NULL) == AIT_OK) {
                    *heal_out = parsed;
                }
            }
        }
        json_object_put(cm);
    }
    ait_free(name);
    return st;
}

/* ---- pod observation ---- */

typedef struct pod_outcome {
    int done;
    int succeeded;
    int64_t exit_code;
    const char *reason;
    const char *message;
    const char *finished_at;
} pod_outcome;

static void observe_pod(json_object *pod, pod_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->exit_code = -1;
    const char *phase = ait_json_str(pod, "status.phase");
    json_object *cs = ait_json_array(pod, "status.containerStatuses");
    json_object *term = NULL;
    for (size_t i = 0; cs != NULL && i < json_object_array_length(cs); i++) {
        json_object *c = json_object_array_get_idx(cs, i);
        const char *cname = ait_json_str(c, "name");
        if (cname != NULL && strcmp(cname, "main") == 0) {
            term = ait_json_path(c, "state.terminated");
        }
    }
    if (term != NULL) {
        o->done = 1;
        o->exit_code = ait_json_int(term, "exitCode", -1);
        o->succeeded = o->exit_code == 0;
        o->reason = ait_json_str(term, "reason");
        o->message = ait_json_str(term, "message");
        o->finished_at = ait_json_str(term, "finishedAt");
    }
    if (phase != NULL && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) {
        o->done = 1;
        o->succeeded = strcmp(phase, "Succeeded") == 0;
        const char *preason = ait_json_str(pod, "status.reason");
        if (preason != NULL) {
            /* e.g. DeadlineExceeded or Evicted: the pod's reason says more than the container's. */
            o->reason = preason;
            const char *pmsg = ait_json_str(pod, "status.message");
            if (pmsg != NULL) {
                o->message = pmsg;
            }
        }
    }
    if (o->done && o->reason == NULL) {
        o->reason = o->succeeded ? "Completed" : "Error";
    }
}

/* ---- the steps ---- */

static ait_status finalize(ait_reconciler *r, json_object *task, ait_error *err)
{
    const char *ns = ait_obj_namespace(task);
    json_object *attempts = ait_json_array(task, "status.attempts");
    size_t n = attempts ? json_object_array_length(attempts) : 0;
    /* The API server's garbage collector removes owned objects too; deleting the pods here stops
     * running sandboxes at once instead of after the GC's next pass. */
    for (size_t i = 0; i <= n; i++) {
        char *name = ait_attempt_name(ait_obj_name(task), (int)i + 1);
        ait_delete_options opts = {.propagation = "Background", .grace_period_seconds = -1};
        ait_error e2 = {0};
        ait_status st = ait_rest_delete(r->d.rest, &AIT_GVR_PODS, ns, name, &opts, &e2);
        if (st != AIT_OK && st != AIT_ERR_NOT_FOUND) {
            AIT_LOG_ERROR(e2.msg, "deleting sandbox pod", "object", name);
        }
        ait_free(name);
    }
    /* Seal the chain. Deletion must not hang on etcd: the audit client's requests are bounded
     * by its timeout, and a failure is logged as a gap instead of blocking the delete. */
    if (r->d.audit.record != NULL) {
        ait_error ae = {0};
        if (r->d.audit.record(r->d.audit.ctx, task, "task.sealed", 0, NULL, &ae) != AIT_OK) {
            AIT_LOG_ERROR(ae.msg, "audit chain not sealed: deleting anyway (gap logged)", "object",
                          ait_obj_name(task), "namespace", ns, "uid", ait_obj_uid(task));
        }
    }
    /* Remove our finalizer with a JSON patch guarded by a test of the list, so a concurrent
     * change of the finalizers is never overwritten. */
    json_object *fins = ait_json_array(task, "metadata.finalizers");
    size_t nf = fins ? json_object_array_length(fins) : 0;
    for (size_t i = 0; i < nf; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(fins, i));
        if (f != NULL && strcmp(f, AIT_FINALIZER) == 0) {
            char patch[256];
            snprintf(patch, sizeof(patch),
                     "[{\"op\":\"test\",\"path\":\"/metadata/finalizers/%zu\",\"value\":\"%s\"},"
                     "{\"op\":\"remove\",\"path\":\"/metadata/finalizers/%zu\"}]",
                     i, AIT_FINALIZER, i);
            ait_status st = ait_rest_patch(r->d.rest, &AIT_GVR_AITASKS, ns, ait_obj_name(task),
                                           AIT_PATCH_JSON, patch, NULL, NULL, err);
            if (st == AIT_ERR_NOT_FOUND) {
                return AIT_OK;
            }
            if (st == AIT_ERR_INVALID) {
                /* The test op failed: the list changed under us; retry on fresh data. */
                return ait_error_set(err, AIT_ERR_CONFLICT, "finalizers changed; retrying");
            }
            if (st == AIT_OK) {
                AIT_LOG_INFO(1, "finalized", "object", ait_obj_name(task), "namespace", ns);
            }
            return st;
        }
    }
    return AIT_OK;
}

static ait_status add_finalizer(ait_reconciler *r, json_object *task, json_object **patched,
                                ait_error *err)
{
    const char *patch;
    char buf[256];
    if (ait_json_array(task, "metadata.finalizers") == NULL) {
        snprintf(buf, sizeof(buf),
                 "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%s\"},"
                 "{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"%s\"]}]",
                 ait_obj_resource_version(task), AIT_FINALIZER);
    } else {
        snprintf(buf, sizeof(buf),
                 "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%s\"},"
                 "{\"op\":\"add\",\"path\":\"/metadata/finalizers/-\",\"value\":\"%s\"}]",
                 ait_obj_resource_version(task), AIT_FINALIZER);
    }
    patch = buf;
    ait_status st = ait_rest_patch(r->d.rest, &AIT_GVR_AITASKS, ait_obj_namespace(task),
                                   ait_obj_name(task), AIT_PATCH_JSON, patch, NULL, patched, err);
    if (st == AIT_ERR_INVALID) {
        return ait_error_set(err, AIT_ERR_CONFLICT, "task changed while adding the finalizer");
    }
    return st;
}

/* Semantic validation the schema cannot do. Returns NULL when valid, else an owned message. */
static char *validate(ait_reconciler *r, json_object *task, const ait_task_spec *spec)
{
    const ait_controller_config *cfg = r->d.config;
    if (strlen(ait_obj_name(task)) > 240) {
        return ait_strdup("metadata.name is longer than 240 characters; pod names need room for "
                          "the attempt suffix");
    }
    if (spec->runtime != NULL && ait_controller_config_runtime(cfg, spec->runtime) == NULL &&
        (spec->image == NULL || spec->n_command == 0)) {
        ait_buf b;
        ait_buf_init(&b, 0);
        for (size_t i = 0; i < cfg->n_runtimes; i++) {
            if (ait_buf_appendf(&b, "%s%s", i ? ", " : "", cfg->runtimes[i].name) != AIT_OK) {
                break;
            }
        }
        char *m = ait_asprintf("spec.runtime \"%s\" is not configured in the controller; use one "
                               "of: %s, or set spec.image and spec.command",
                               spec->runtime, ait_buf_str(&b));
        ait_buf_free(&b);
        return m;
    }
    if (spec->runtime == NULL && (spec->image == NULL || spec->n_command == 0)) {
        return ait_strdup("set spec.runtime, or both spec.image and spec.command");
    }
    if ((spec->code == NULL || spec->code[0] == '\0') &&
        (spec->prompt == NULL || spec->prompt[0] == '\0')) {
        return ait_strdup("spec.code and spec.prompt are both empty; set the program in "
                          "spec.code or describe it in spec.prompt");
    }
    for (size_t i = 0; i < spec->n_providers; i++) {
        if (!ait_controller_config_has_provider(cfg, spec->providers[i])) {
            ait_buf b;
            ait_buf_init(&b, 0);
            for (size_t k = 0; k < cfg->n_known_providers; k++) {
                if (ait_buf_appendf(&b, "%s%s", k ? ", " : "", cfg->known_providers[k]) != AIT_OK) {
                    break;
                }
            }
            char *m = ait_asprintf("spec.healing.providers[%zu] \"%s\" is not a configured "
                                   "provider; configured: %s",
                                   i, spec->providers[i],
                                   b.len ? ait_buf_str(&b) : "(none: healing is disabled)");
            ait_buf_free(&b);
            return m;
        }
    }
    return NULL;
}

static const char *code_file(ait_reconciler *r, const ait_task_spec *spec)
{
    const ait_runtime_cfg *rt = ait_controller_config_runtime(r->d.config, spec->runtime);
    return rt ? rt->file : "main";
}

/* Starts attempt n with code: the namespace's NetworkPolicy, ConfigMap, Pod, then the attempt in
 * the status. */
static ait_status start_attempt(ait_reconciler *r, json_object *task, json_object *status,
                                const ait_task_spec *spec, int n, const char *code,
                                json_object *heal, int64_t *requeue, ait_error *err)
{
    ait_status st = AIT_OK;
    int64_t gen = ait_obj_generation(task);
    char *secret_name = NULL;
    if (spec->n_secret_refs > 0) {
        secret_name = ait_asprintf("%s-a%d-env", ait_obj_name(task), n);
        if (r->d.secrets.ensure == NULL) {
            const char *m = "spec.secretRefs needs Vault, and the controller has no vault.address "
                            "configured";
            ait_condition_set(status, "SecretsReady", "False", "VaultNotConfigured", m, gen,
                              now_ns(r));
            fail_task(r, task, status, "VaultNotConfigured", m);
            ait_free(secret_name);
            return AIT_OK;
        }
        /* Resolved off this worker; the pool requeues the task when the Secret exists. */
        ait_error serr = {0};
        st = r->d.secrets.ensure(r->d.secrets.ctx, task, n, secret_name, &serr);
        if (st == AIT_ERR_RETRY) {
            if (!ait_condition_get(status, "SecretsReady")) {
                ait_condition_set(status, "SecretsReady", "Unknown", "Resolving", serr.msg, gen,
                                  now_ns(r));
            }
            set_phase(status, AIT_PHASE_PENDING);
            ait_free(secret_name);
            return AIT_OK;
        }
        if (st != AIT_OK) {
            const char *reason = st == AIT_ERR_FORBIDDEN   ? "SecretAccessDenied"
                                 : st == AIT_ERR_NOT_FOUND ? "SecretNotFound"
                                 : st == AIT_ERR_CONFLICT  ? "SecretConflict"
                                                           : "VaultUnavailable";
            ait_condition_set(status, "SecretsReady", "False", reason, serr.msg, gen, now_ns(r));
            set_phase(status, AIT_PHASE_PENDING);
            emit(r, task, "Warning", reason, "ResolveSecrets", serr.msg);
            /* Kept queued and retried: a denied path or a missing key can be fixed in Vault. */
            *requeue = 10 * AIT_NS_PER_S;
            ait_free(secret_name);
            return AIT_OK;
        }
        ait_condition_set(status, "SecretsReady", "True", "Resolved",
                          "secretRefs resolved from Vault", gen, now_ns(r));
    }
    json_object *pod = ait_pod_build(task, spec, r->d.config, n, secret_name, err);
    ait_free(secret_name);
    if (pod == NULL) {
        return AIT_ERR_INVALID;
    }
    /* Admission next: a task that must wait creates nothing more, so a long queue costs no API
     * calls beyond its status. */
    int admitted = 0;
    if (r->d.admission != NULL) {
        json_object *seen = cached(r, AIT_CACHE_POD, ait_obj_namespace(task), ait_obj_name(pod));
        if (seen == NULL) {
            int64_t created = 0;
            const char *ct = ait_json_str(task, "metadata.creationTimestamp");
            if (ct == NULL || ait_time_parse_rfc3339(ct, &created) != AIT_OK) {
                created = now_ns(r);
            }
            ait_admission_decision d;
            st = ait_admission_request(r->d.admission, ait_obj_namespace(task), ait_obj_name(task),
                                       created, &d);
            if (st != AIT_OK) {
                json_object_put(pod);
                return ait_error_set(err, st, "admission failed");
            }
            if (d.verdict == AIT_ADMISSION_WAIT) {
                char msg[200];
                snprintf(
                    msg, sizeof(msg), "position %zu in the queue; limit %s=%d reached", d.position,
                    strcmp(d.reason, "StartRate") == 0                ? "startsPerMinute"
                    : strcmp(d.reason, "MaxRunningPerNamespace") == 0 ? "maxRunningPerNamespace"
                                                                      : "maxRunning",
                    d.limit);
                ait_condition_set(status, "Queued", "True", d.reason, msg, ait_obj_generation(task),
                                  now_ns(r));
                json_object *q = json_object_new_object();
                json_object_object_add(q, "position", json_object_new_int64((int64_t)d.position));
                json_object_object_add(q, "reason", json_object_new_string(d.reason));
                json_object_object_add(status, "queue", q);
                set_phase(status, AIT_PHASE_PENDING);
                *requeue = d.retry_after_ns > 0 ? d.retry_after_ns : AIT_NS_PER_S;
                json_object_put(pod);
                return AIT_OK;
            }
            admitted = 1;
        } else {
            json_object_put(seen);
        }
        if (ait_condition_get(status, "Queued") != NULL) {
            ait_condition_set(status, "Queued", "False", "Admitted", "the sandbox pod may start",
                              ait_obj_generation(task), now_ns(r));
        }
        json_object_object_del(status, "queue");
    }
    if (!spec->network_access) {
        st = ensure_netpol(r, ait_obj_namespace(task), err);
        if (st != AIT_OK) {
            goto release;
        }
    }
    json_object *cm = ait_code_configmap_build(task, n, code_file(r, spec), code, heal);
    st = ensure_created(r, &AIT_GVR_CONFIGMAPS, task, cm, err);
    json_object_put(cm);
    if (st != AIT_OK) {
        goto release;
    }
    ait_failpoint("after-configmap");

    char sha[65];
    ait_audit_sha256_hex(code, strlen(code), sha);
    json_object *details = json_object_new_object();
    json_object_object_add(details, "podName", json_object_new_string(ait_obj_name(pod)));
    json_object_object_add(details, "codeSHA256", json_object_new_string(sha));
    st = audit(r, task, status, "attempt.start", n, details);
    json_object_put(details);
    if (st != AIT_OK) {
        *requeue = AUDIT_RETRY_NS;
        st = AIT_OK; /* no pod starts without its audit entry; the status says why */
        goto release;
    }
    st = ensure_created(r, &AIT_GVR_PODS, task, pod, err);
    if (admitted) {
        if (st == AIT_OK) {
            ait_admission_started(r->d.admission, ait_obj_namespace(task), ait_obj_name(task),
                                  ait_obj_name(pod));
        } else {
            ait_admission_release(r->d.admission, ait_obj_namespace(task), ait_obj_name(task));
        }
    }
    if ((st == AIT_ERR_FORBIDDEN && strstr(err->msg, "cannot create resource") == NULL) ||
        st == AIT_ERR_INVALID) {
        /* Admission refused the pod (Pod Security, a missing RuntimeClass, a quota): retrying
         * the same spec cannot help, so the task ends with the API server's reason. RBAC
         * denials ("cannot create resource") are the controller's problem and are retried. */
        char *msg = ait_asprintf("the sandbox pod was rejected: %s", err->msg);
        fail_task(r, task, status, "PodRejected", msg);
        ait_free(msg);
        ait_error_clear(err);
        json_object_put(pod);
        return AIT_OK;
    }
    if (st != AIT_OK) {
        json_object_put(pod);
        return st;
    }
    ait_failpoint("after-pod-create");
    char ts[40];
    ait_time_rfc3339(now_ns(r), ts, sizeof(ts));
    json_object *a = json_object_new_object();
    json_object_object_add(a, "index", json_object_new_int(n));
    json_object_object_add(a, "podName", json_object_new_string(ait_obj_name(pod)));
    json_object_object_add(a, "codeSHA256", json_object_new_string(sha));
    json_object_object_add(a, "startTime", json_object_new_string(ts));
    char trace_id[33];
    ait_reconcile_trace_id(ait_obj_uid(task), trace_id);
    json_object_object_add(a, "traceID", json_object_new_string(trace_id));
    if (heal != NULL) {
        json_object_object_add(a, "heal", json_object_get(heal));
    }
    json_object_array_add(ait_status_attempts(status), a);
    set_phase(status, AIT_PHASE_RUNNING);
    ait_condition_set(status, "Succeeded", "Unknown", "Running", "attempt running", gen, now_ns(r));
    if (ait_condition_get(status, "Healing") != NULL) {
        ait_condition_set(status, "Healing", "False", "HealApplied", "running the healed code", gen,
                          now_ns(r));
    }
    char note[128];
    snprintf(note, sizeof(note), "attempt %d started in pod %s", n, ait_obj_name(pod));
    emit(r, task, "Normal", "AttemptStarted", "Run", note);
    json_object_put(pod);
    return AIT_OK;
release:
    if (admitted) {
        ait_admission_release(r->d.admission, ait_obj_namespace(task), ait_obj_name(task));
    }
    json_object_put(pod);
    return st;
}

/* Adds the heal's cost to status.costUSD. */
static void add_cost(json_object *status, int64_t micro)
{
    if (micro <= 0) {
        return;
    }
    int64_t cur = 0;
    const char *s = ait_json_str(status, "costUSD");
    if (s != NULL && ait_usd_parse(s, &cur) != AIT_OK) {
        cur = 0;
    }
    char buf[40];
    json_object_object_add(status, "costUSD",
                           json_object_new_string(ait_usd_format(cur + micro, buf, sizeof(buf))));
}

/* A heal failure next_attempt acted on: forgotten once the status that records the decision is
 * written, given back when that write fails. */
typedef struct taken_failure {
    pending_failure pf; /* pf.uid is NULL when nothing was taken */
    int reask;
} taken_failure;

/* The last attempt failed (or there is none yet and the code must be generated): start the next
 * one if its code exists, else heal, else fail. */
static ait_status next_attempt_claimed(ait_reconciler *r, json_object *task, json_object *status,
                                       const ait_task_spec *spec, int n_done, json_object *last,
                                       int64_t *requeue, taken_failure *taken, int *submitted,
                                       ait_error *err)
{
    int next = n_done + 1;
    int64_t gen = ait_obj_generation(task);
    if (n_done >= spec->max_attempts) {
        char msg[160];
        snprintf(msg, sizeof(msg), "attempt %d of %d failed; no attempts left", n_done,
                 spec->max_attempts);
        fail_task(r, task, status,
                  n_done == 1 && spec->max_attempts == 1 ? "Failed" : "MaxAttemptsReached", msg);
        return AIT_OK;
    }
    char *code = NULL;
    json_object *heal = NULL;
    const char *file = code_file(r, spec);
    ait_status st;
    if (n_done == 0 && spec->code != NULL && spec->code[0] != '\0') {
        code = ait_strdup(spec->code);
    } else {
        st = attempt_code(r, task, next, file, &code, &heal, err);
        if (st != AIT_OK) {
            return st;
        }
    }
    if (code != NULL) {
        if (heal != NULL) {
            int64_t cost = 0;
            const char *c = ait_json_str(heal, "costUSD");
            if (c != NULL && ait_usd_parse(c, &cost) == AIT_OK) {
                add_cost(status, cost);
            }
        }
        st = start_attempt(r, task, status, spec, next, code, heal, requeue, err);
        ait_free(code);
        json_object_put(heal);
        return st;
    }
    /* The next code must come from the healer. */
    pending_failure pf;
    if (take_failure(r, ait_obj_uid(task), next, &pf)) {
        add_cost(status, pf.cost_micro);
        taken->pf = pf;
        if (strcmp(pf.reason, "AuditUnavailable") == 0 ||
            strcmp(pf.reason, "LedgerUnavailable") == 0) {
            ait_condition_set(status, "AuditReady", "False", pf.reason, pf.message, gen, now_ns(r));
            *requeue = AUDIT_RETRY_NS; /* heal again once the audit log can be written */
            return AIT_OK;
        }
        if (strcmp(pf.reason, "ProvidersUnavailable") == 0 &&
            !reask_due(r, ait_obj_uid(task), next, NULL)) {
            ait_condition_set(status, "Healing", "True", "ProvidersUnavailable",
                              "every provider failed; asking once more in 10 s", gen, now_ns(r));
            set_phase(status, AIT_PHASE_HEALING);
            taken->reask = 1;
            reask_set(r, ait_obj_uid(task), next, now_ns(r) + HEAL_REASK_NS);
            *requeue = HEAL_REASK_NS;
            return AIT_OK;
        }
        if (strcmp(pf.reason, "BudgetExceeded") == 0) {
            ait_condition_set(status, "BudgetExceeded", "True", "BudgetExceeded", pf.message, gen,
                              now_ns(r));
        }
        fail_task(r, task, status, pf.reason, pf.message);
        return AIT_OK;
    }
    /* Every provider failed once: the one re-ask waits its 10 s, whatever wakes the task. */
    int64_t reask_at = 0;
    if (reask_due(r, ait_obj_uid(task), next, &reask_at) && now_ns(r) < reask_at) {
        *requeue = reask_at - now_ns(r);
        return AIT_OK;
    }
    if (r->d.healer.submit == NULL) {
        fail_task(r, task, status, "HealingDisabled",
                  n_done == 0 ? "spec.prompt needs a healing provider to generate the code, and "
                                "none is configured"
                              : "the attempt failed and no healing provider is configured");
        return AIT_OK;
    }
    /* Wait out backoffSeconds after the failed run before asking for a fix. */
    if (last != NULL && spec->backoff_seconds > 0) {
        int64_t fin = 0;
        const char *ft = ait_json_str(last, "finishTime");
        if (ft != NULL && ait_time_parse_rfc3339(ft, &fin) == AIT_OK) {
            int64_t due = fin + spec->backoff_seconds * AIT_NS_PER_S;
            int64_t now = now_ns(r);
            if (now < due) {
                set_phase(status, AIT_PHASE_HEALING);
                ait_condition_set(status, "Healing", "True", "Backoff",
                                  "waiting backoffSeconds before healing", gen, now);
                *requeue = due - now;
                return AIT_OK;
            }
        }
    }
    ait_heal_job job = {
        .ns = ait_obj_namespace(task),
        .name = ait_obj_name(task),
        .uid = ait_obj_uid(task),
        .runtime = spec->runtime,
        .prompt = spec->prompt,
        .next_attempt = next,
        .providers = spec->providers,
        .n_providers = spec->n_providers,
        .model = spec->model,
        .temperature = spec->temperature,
        .max_cost_micro = spec->max_cost_micro,
    };
    char *key = ait_asprintf("%s/%s", job.ns, job.name);
    job.key = key;
    char trace_id[33], parent[17] = "";
    ait_reconcile_trace_id(job.uid, trace_id);
    job.trace_id = trace_id;
    if (n_done > 0) {
        ait_reconcile_attempt_span_id(job.uid, n_done, parent);
        job.parent_span_id = parent;
    } else if (ait_trace_current() != NULL && ait_trace_current()->span_id[0] != '\0') {
        snprintf(parent, sizeof(parent), "%s", ait_trace_current()->span_id);
        job.parent_span_id = parent;
    }
    char *failing = NULL;
    if (n_done > 0) {
        st = attempt_code(r, task, n_done, file, &failing, NULL, err);
        if (st != AIT_OK) {
            ait_free(key);
            return st;
        }
        job.failing_code = failing;
        job.error_output = ait_json_str(last, "message");
    }
    const char *cost = ait_json_str(status, "costUSD");
    int64_t spent = 0;
    if (cost != NULL && ait_usd_parse(cost, &spent) == AIT_OK) {
        job.spent_micro = spent;
    }
    char att[16];
    snprintf(att, sizeof(att), "%d", next);
    AIT_LOG_INFO(2, "asking the providers", "object", key, "attempt", att, "resourceVersion",
                 ait_obj_resource_version(task), "phase", ait_json_str(status, "phase"));
    st = r->d.healer.submit(r->d.healer.ctx, r, &job);
    ait_free(failing);
    ait_free(key);
    if (st == AIT_ERR_EXISTS) {
        /* A heal for an earlier task of the same name is still running: ask after it. */
        *requeue = AIT_NS_PER_S;
        return AIT_OK;
    }
    if (st != AIT_OK) {
        return ait_error_set(err, st, "submitting the heal failed");
    }
    *submitted = 1;
    set_phase(status, AIT_PHASE_HEALING);
    ait_condition_set(status, "Healing", "True", "Healing",
                      n_done == 0 ? "generating the first code from spec.prompt"
                                  : "asking the providers for corrected code",
                      gen, now_ns(r));
    return AIT_OK;
}

/* Starts the next attempt, or asks the providers for its code. Only one reconcile at a time
 * (and none while a heal runs) looks for and asks for a task's heal; see claims. */
static ait_status next_attempt(ait_reconciler *r, json_object *task, json_object *status,
                               const ait_task_spec *spec, int n_done, json_object *last,
                               int64_t *requeue, taken_failure *taken, ait_error *err)
{
    int submitted = 0;
    if (n_done == 0 && spec->code != NULL && spec->code[0] != '\0') {
        return next_attempt_claimed(r, task, status, spec, n_done, last, requeue, taken, &submitted,
                                    err);
    }
    const char *uid = ait_obj_uid(task);
    if (!heal_claim(r, uid)) {
        return AIT_OK; /* a heal is in flight; its end requeues the task */
    }
    ait_status st =
        next_attempt_claimed(r, task, status, spec, n_done, last, requeue, taken, &submitted, err);
    if (!submitted) {
        heal_unclaim(r, uid);
    }
    return st;
}

/* The last attempt is running: look at its pod. */
static ait_status observe_attempt(ait_reconciler *r, json_object *task, json_object *status,
                                  json_object *last, int64_t *requeue, ait_error *err)
{
    const char *pod_name = ait_json_str(last, "podName");
    const char *ns = ait_obj_namespace(task);
    json_object *pod = pod_name ? cached(r, AIT_CACHE_POD, ns, pod_name) : NULL;
    if (pod == NULL && pod_name != NULL) {
        /* Not in the cache: either the cache lags our own create, or the pod was deleted. */
        ait_status st = ait_rest_get(r->d.rest, &AIT_GVR_PODS, ns, pod_name, &pod, err);
        if (st != AIT_OK && st != AIT_ERR_NOT_FOUND) {
            return st;
        }
    }
    pod_outcome o;
    char ts[40];
    if (pod == NULL) {
        memset(&o, 0, sizeof(o));
        o.done = 1;
        o.exit_code = -1;
        o.reason = "PodDeleted";
        o.message = "the sandbox pod was deleted before it finished";
    } else {
        if (ait_obj_controller_uid(pod) == NULL ||
            strcmp(ait_obj_controller_uid(pod), ait_obj_uid(task)) != 0) {
            json_object_put(pod);
            return ait_error_set(err, AIT_ERR_CONFLICT, "pod %s/%s is not owned by this task", ns,
                                 pod_name);
        }
        observe_pod(pod, &o);
    }
    if (!o.done) {
        json_object_put(pod);
        return AIT_OK;
    }
    int index = (int)ait_json_int(last, "index", 0);
    if (ait_json_array(task, "spec.secretRefs") != NULL) {
        /* The attempt's ephemeral Secret ends with it. */
        char *sn = ait_asprintf("%s-a%d-env", ait_obj_name(task), index);
        ait_error derr = {0};
        ait_status dst = ait_rest_delete(r->d.rest, &AIT_GVR_SECRETS, ns, sn, NULL, &derr);
        if (dst != AIT_OK && dst != AIT_ERR_NOT_FOUND) {
            ait_free(sn);
            json_object_put(pod);
            *err = derr;
            return dst;
        }
        ait_free(sn);
    }
    json_object *details = json_object_new_object();
    json_object_object_add(details, "exitCode", json_object_new_int64(o.exit_code));
    json_object_object_add(details, "reason", json_object_new_string(o.reason));
    ait_status ast = audit(r, task, status, "attempt.finish", index, details);
    json_object_put(details);
    if (ast != AIT_OK) {
        json_object_put(pod);
        *requeue = AUDIT_RETRY_NS;
        return AIT_OK;
    }
    int64_t gen = ait_obj_generation(task);
    const char *fin = o.finished_at;
    if (fin == NULL) {
        fin = ait_time_rfc3339(now_ns(r), ts, sizeof(ts));
    }
    json_object_object_add(last, "finishTime", json_object_new_string(fin));
    if (r->d.tracer != NULL) {
        /* The attempt's span, from pod creation to its end, rebuilt from the status: it is
         * the parent the heal of this attempt names (a derived span id). */
        char trace_id[33], span_id[17];
        ait_reconcile_trace_id(ait_obj_uid(task), trace_id);
        ait_reconcile_attempt_span_id(ait_obj_uid(task), index, span_id);
        const ait_span_ctx *cur = ait_trace_current();
        char name[32];
        snprintf(name, sizeof(name), "attempt %d", index);
        ait_span *sp = ait_span_start_in_trace(r->d.tracer, name, AIT_SPAN_KIND_INTERNAL, trace_id,
                                               cur && cur->span_id[0] ? cur->span_id : NULL);
        ait_span_set_span_id(sp, span_id);
        ait_span_set_attr_str(sp, "k8s.pod.name", pod_name ? pod_name : "");
        ait_span_set_attr_int(sp, "aitask.attempt", index);
        ait_span_set_attr_int(sp, "process.exit_code", o.exit_code);
        ait_span_set_attr_str(sp, "aitask.reason", o.reason);
        if (!o.succeeded) {
            ait_span_set_error(sp, o.reason);
        }
        int64_t t0 = 0, t1 = 0;
        const char *st0 = ait_json_str(last, "startTime");
        if (st0 == NULL || ait_time_parse_rfc3339(st0, &t0) != AIT_OK) {
            t0 = now_ns(r);
        }
        if (ait_time_parse_rfc3339(fin, &t1) != AIT_OK) {
            t1 = now_ns(r);
        }
        ait_span_end_at(sp, t0, t1);
    }
    json_object_object_add(last, "exitCode", json_object_new_int64(o.exit_code));
    json_object_object_add(last, "reason", json_object_new_string(o.reason));
    const char *msg = o.message ? o.message : "";
    json_object_object_add(last, "message",
                           json_object_new_string(ait_tail_utf8(msg, AIT_MESSAGE_MAX)));
    char note[256];
    if (o.succeeded) {
        json_object *result = json_object_new_object();
        json_object_object_add(result, "exitCode", json_object_new_int64(o.exit_code));
        json_object_object_add(result, "output",
                               json_object_new_string(ait_tail_utf8(msg, AIT_OUTPUT_MAX)));
        json_object_object_add(status, "result", result);
        set_phase(status, AIT_PHASE_SUCCEEDED);
        ait_condition_set(status, "Succeeded", "True", "Succeeded",
                          index > 1 ? "the healed program succeeded" : "the program succeeded", gen,
                          now_ns(r));
        if (ait_condition_get(status, "Healing") != NULL) {
            ait_condition_set(status, "Healing", "False", "Succeeded", "healed", gen, now_ns(r));
        }
        snprintf(note, sizeof(note), "attempt %d succeeded", index);
        emit(r, task, "Normal", "Succeeded", "Run", note);
    } else {
        json_object *result = json_object_new_object();
        json_object_object_add(result, "exitCode", json_object_new_int64(o.exit_code));
        json_object_object_add(result, "output",
                               json_object_new_string(ait_tail_utf8(msg, AIT_OUTPUT_MAX)));
        json_object_object_add(status, "result", result);
        snprintf(note, sizeof(note), "attempt %d failed: %s (exit code %lld)", index, o.reason,
                 (long long)o.exit_code);
        emit(r, task, "Warning", "AttemptFailed", "Run", note);
    }
    json_object_put(pod);
    return AIT_OK;
}

static size_t finished_attempts(json_object *status)
{
    json_object *a = ait_json_array(status, "attempts");
    size_t n = a ? json_object_array_length(a) : 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        if (ait_json_str(json_object_array_get_idx(a, i), "finishTime") != NULL) {
            done++;
        }
    }
    return done;
}

/* Counts what the status write that just succeeded changed: attempts finished, the first pod
 * started, the task reaching a terminal phase. Counted only after the write, so a conflict and
 * its retry never count twice. */
static void observe_transition(ait_reconciler *r, json_object *task, json_object *before,
                               json_object *after)
{
    ait_metrics_std *m = r->d.metrics;
    ait_phase p0 = get_phase(before), p1 = get_phase(after);
    int64_t created = 0;
    const char *ct = ait_json_str(task, "metadata.creationTimestamp");
    int have_created = ct != NULL && ait_time_parse_rfc3339(ct, &created) == AIT_OK;
    double since = have_created ? (double)(now_ns(r) - created) / 1e9 : 0;
    if (since < 0) {
        since = 0;
    }
    int terminal0 = p0 == AIT_PHASE_SUCCEEDED || p0 == AIT_PHASE_FAILED;
    int terminal1 = p1 == AIT_PHASE_SUCCEEDED || p1 == AIT_PHASE_FAILED;
    if (terminal1 && !terminal0 && r->d.admission != NULL) {
        ait_admission_forget(r->d.admission, ait_obj_namespace(task), ait_obj_name(task));
    }
    if (m == NULL) {
        return;
    }
    json_object *a1 = ait_json_array(after, "attempts");
    json_object *a0 = ait_json_array(before, "attempts");
    size_t n0 = a0 ? json_object_array_length(a0) : 0, n1 = a1 ? json_object_array_length(a1) : 0;
    if (n0 == 0 && n1 > 0 && have_created) {
        ait_metric_observe(ait_metric_family_with(m->queue_wait_seconds), since);
    }
    size_t f0 = finished_attempts(before), f1 = finished_attempts(after);
    for (size_t i = f0; i < f1 && i < n1; i++) {
        json_object *at = json_object_array_get_idx(a1, i);
        ait_metric_inc(ait_metric_family_with(
            m->attempts_total, ait_json_int(at, "exitCode", -1) == 0 ? "succeeded" : "failed"));
    }
    if (terminal1 && !terminal0) {
        const char *outcome = "succeeded";
        if (p1 == AIT_PHASE_FAILED) {
            outcome = ait_condition_true(after, "Invalid")          ? "invalid"
                      : ait_condition_true(after, "BudgetExceeded") ? "budget_exceeded"
                                                                    : "failed";
        }
        ait_metric_inc(ait_metric_family_with(m->tasks_total, outcome));
        if (have_created) {
            ait_metric_observe(ait_metric_family_with(m->task_duration_seconds), since);
        }
    }
}

ait_status ait_reconcile(ait_reconciler *r, const char *key, int64_t *requeue_after_ns,
                         ait_error *err)
{
    *requeue_after_ns = 0;
    char ns[256], name[256];
    const char *slash = strchr(key, '/');
    if (slash == NULL || (size_t)(slash - key) >= sizeof(ns) || strlen(slash + 1) >= sizeof(name)) {
        return ait_error_set(err, AIT_ERR_INVALID, "bad key %s", key);
    }
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
    snprintf(name, sizeof(name), "%s", slash + 1);

    json_object *task = cached(r, AIT_CACHE_TASK, ns, name);
    if (task == NULL) {
        return AIT_OK; /* deleted; owned objects go with it */
    }
    if (cache_is_stale(r, key, ait_obj_resource_version(task))) {
        json_object_put(task);
        *requeue_after_ns = 20 * AIT_NS_PER_MS;
        return AIT_OK;
    }
    char trace_id[33];
    ait_reconcile_trace_id(ait_obj_uid(task), trace_id);
    ait_span *span =
        ait_span_start_in_trace(r->d.tracer, "reconcile", AIT_SPAN_KIND_INTERNAL, trace_id, NULL);
    ait_span_set_attr_str(span, "k8s.namespace.name", ns);
    ait_span_set_attr_str(span, "aitask.name", name);
    ait_span_ctx span_ctx = ait_span_context(span);
    ait_trace_set_current(span != NULL ? &span_ctx : NULL);
    ait_status st = AIT_OK;
    ait_task_spec spec;
    memset(&spec, 0, sizeof(spec));
    json_object *orig_status = NULL;
    taken_failure taken;
    memset(&taken, 0, sizeof(taken));

    if (ait_obj_deleting(task)) {
        st = ait_obj_has_finalizer(task, AIT_FINALIZER) ? finalize(r, task, err) : AIT_OK;
        goto out;
    }
    if (!ait_obj_has_finalizer(task, AIT_FINALIZER)) {
        json_object *patched = NULL;
        st = add_finalizer(r, task, &patched, err);
        ait_failpoint("after-finalizer");
        if (st != AIT_OK || patched == NULL) {
            json_object_put(patched);
            goto out;
        }
        /* Go on with the object the API server returned (it holds the finalizer and the new
         * resourceVersion) instead of a second trip through the queue. */
        remember_rv(r, key, ait_obj_resource_version(patched));
        json_object_put(task);
        task = patched;
    }
    json_object *status = ait_status_obj(task);
    json_object_deep_copy(status, &orig_status, NULL);
    ait_phase phase = get_phase(status);
    int64_t gen = ait_obj_generation(task);
    if ((phase == AIT_PHASE_SUCCEEDED || phase == AIT_PHASE_FAILED) &&
        ait_json_int(status, "observedGeneration", -1) == gen) {
        goto out;
    }
    ait_error verr = {0};
    char *invalid = NULL;
    if (ait_task_spec_parse(task, &spec, &verr) != AIT_OK) {
        invalid = ait_strdup(verr.msg);
    } else {
        invalid = validate(r, task, &spec);
    }
    if (invalid != NULL) {
        ait_condition_set(status, "Invalid", "True", "InvalidSpec", invalid, gen, now_ns(r));
        set_phase(status, AIT_PHASE_FAILED);
        ait_condition_set(status, "Succeeded", "False", "InvalidSpec", invalid, gen, now_ns(r));
        emit(r, task, "Warning", "InvalidSpec", "Validate", invalid);
        ait_free(invalid);
        st = write_status(r, task, orig_status, err);
        goto out;
    }
    if (phase == AIT_PHASE_NONE) {
        set_phase(status, AIT_PHASE_PENDING);
        ait_condition_set(status, "Succeeded", "Unknown", "Pending", "waiting to start", gen,
                          now_ns(r));
    }
    json_object *attempts = ait_status_attempts(status);
    size_t n = json_object_array_length(attempts);
    json_object *last = n ? json_object_array_get_idx(attempts, n - 1) : NULL;
    if (last != NULL && ait_json_str(last, "finishTime") == NULL) {
        st = observe_attempt(r, task, status, last, requeue_after_ns, err);
        if (st != AIT_OK) {
            goto out;
        }
    }
    if (get_phase(status) != AIT_PHASE_SUCCEEDED &&
        (last == NULL || ait_json_str(last, "finishTime") != NULL)) {
        st = next_attempt(r, task, status, &spec, (int)n, last, requeue_after_ns, &taken, err);
        if (st != AIT_OK) {
            goto out;
        }
    }
    st = write_status(r, task, orig_status, err);
    if (st == AIT_OK) {
        observe_transition(r, task, orig_status, ait_status_obj(task));
    }
    if (taken.pf.uid != NULL) {
        if (st != AIT_OK) {
            if (taken.reask) {
                reask_drop(r, ait_obj_uid(task), taken.pf.attempt);
            }
            put_back_failure(r, &taken.pf);
        }
        failure_clear(&taken.pf);
    }
out:
    if (span != NULL) {
        ait_span_set_attr_str(span, "aitask.phase", ait_json_str(task, "status.phase"));
        if (st != AIT_OK) {
            ait_span_set_error(span, err ? err->msg : ait_status_str(st));
        }
        ait_span_end(span);
        ait_trace_set_current(NULL);
    }
    ait_task_spec_clear(&spec);
    json_object_put(orig_status);
    json_object_put(task);
    return st;
}

void ait_reconciler_heal_done(ait_reconciler *r, const ait_heal_job *job,
                              const ait_heal_outcome *outcome)
{
    if (outcome->ok) {
        /* Persist the healed code as the next attempt's ConfigMap: the task's state now says
         * "attempt N+1 is ready", which survives a restart. */
        json_object *task = cached(r, AIT_CACHE_TASK, job->ns, job->name);
        if (task != NULL && strcmp(ait_obj_uid(task), job->uid) == 0) {
            ait_task_spec spec;
            ait_error e = {0};
            if (ait_task_spec_parse(task, &spec, &e) == AIT_OK) {
                json_object *cm = ait_code_configmap_build(
                    task, job->next_attempt, code_file(r, &spec), outcome->code, outcome->summary);
                ait_status st = ensure_created(r, &AIT_GVR_CONFIGMAPS, task, cm, &e);
                json_object_put(cm);
                if (st != AIT_OK) {
                    AIT_LOG_ERROR(e.msg, "persisting healed code", "object", job->key);
                }
            }
            ait_task_spec_clear(&spec);
        }
        json_object_put(task);
    } else if (outcome->reason != NULL && strcmp(outcome->reason, "Cancelled") == 0) {
        /* The controller is stopping: not the task's failure; the next leader asks again. */
    } else {
        pthread_mutex_lock(&r->mu);
        if (r->n_failures < PENDING_MAX) {
            r->failures = ait_realloc(r->failures, (r->n_failures + 1) * sizeof(pending_failure));
            pending_failure *f = &r->failures[r->n_failures++];
            f->uid = ait_strdup(job->uid);
            f->attempt = job->next_attempt;
            f->reason = ait_strdup(outcome->reason ? outcome->reason : "HealFailed");
            f->message = ait_strdup(outcome->message ? outcome->message : "");
            f->cost_micro = outcome->cost_micro;
        }
        pthread_mutex_unlock(&r->mu);
    }
    heal_unclaim(r, job->uid);
    if (r->d.queue.add != NULL) {
        r->d.queue.add(r->d.queue.ctx, job->key);
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Object builders for one attempt; see pod.h. */
#include "reconcile/pod.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

/* The entrypoint: runs the program with its output both streamed (kubectl logs) and kept, then
 * writes the tail to the termination message, and exits with the program's code. POSIX sh and
 * tee/tail only, so it works with busybox and coreutils images alike. */
static const char *const entry_script =
    "cd " AIT_WORK_DIR " || exit 111\n"
    "( \"$@\" 2>&1; echo $? > " AIT_WORK_DIR "/.aitask-rc ) | tee " AIT_WORK_DIR "/.aitask-out\n"
    "rc=$(cat " AIT_WORK_DIR "/.aitask-rc 2>/dev/null || echo 1)\n"
    "tail -c 4096 " AIT_WORK_DIR "/.aitask-out > /dev/termination-log 2>/dev/null\n"
    "exit $rc\n";

char *ait_attempt_name(const char *task_name, int attempt)
{
    return ait_asprintf("%s-a%d", task_name, attempt);
}

json_object *ait_owner_ref(json_object *task)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "apiVersion", json_object_new_string(AIT_API_VERSION));
    json_object_object_add(r, "kind", json_object_new_string(AIT_API_KIND));
    json_object_object_add(r, "name", json_object_new_string(ait_obj_name(task)));
    json_object_object_add(r, "uid", json_object_new_string(ait_obj_uid(task)));
    json_object_object_add(r, "controller", json_object_new_boolean(1));
    json_object_object_add(r, "blockOwnerDeletion", json_object_new_boolean(1));
    return r;
}

static json_object *metadata(json_object *task, const char *name, int attempt)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "name", json_object_new_string(name));
    json_object_object_add(m, "namespace", json_object_new_string(ait_obj_namespace(task)));
    json_object *labels = json_object_new_object();
    json_object_object_add(labels, AIT_LABEL_MANAGED_BY, json_object_new_string(AIT_MANAGER));
    json_object_object_add(labels, AIT_LABEL_TASK_UID, json_object_new_string(ait_obj_uid(task)));
    if (attempt > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", attempt);
        json_object_object_add(labels, AIT_LABEL_ATTEMPT, json_object_new_string(n));
    }
    json_object_object_add(m, "labels", labels);
    json_object *ann = json_object_new_object();
    json_object_object_add(ann, AIT_LABEL_TASK, json_object_new_string(ait_obj_name(task)));
    json_object_object_add(m, "annotations", ann);
    json_object *refs = json_object_new_array();
    json_object_array_add(refs, ait_owner_ref(task));
    json_object_object_add(m, "ownerReferences", refs);
    return m;
}

json_object *ait_code_configmap_build(json_object *task, int attempt, const char *file,
                                      const char *code, json_object *heal)
{
    char *name = ait_attempt_name(ait_obj_name(task), attempt);
    json_object *cm = json_object_new_object();
    json_object_object_add(cm, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(cm, "kind", json_object_new_string("ConfigMap"));
    json_object *m = metadata(task, name, attempt);
    if (heal != NULL) {
        json_object *ann = ait_json_path(m, "annotations");
        json_object_object_add(
            ann, AIT_ANNOTATION_HEAL,
            json_object_new_string(json_object_to_json_string_ext(heal, JSON_C_TO_STRING_PLAIN)));
    }
    json_object_object_add(cm, "metadata", m);
    json_object *data = json_object_new_object();
    json_object_object_add(data, file, json_object_new_string(code));
    json_object_object_add(cm, "data", data);
    json_object_object_add(cm, "immutable", json_object_new_boolean(1));
    ait_free(name);
    return cm;
}

static json_object *strs(char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object_array_add(a, json_object_new_string(v[i]));
    }
    return a;
}

static void add_env(json_object *env, const char *name, const char *value)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_object_add(e, "value", json_object_new_string(value));
    json_object_array_add(env, e);
}

/* requests/limits: the task's values override the controller's defaults key by key. */
static json_object *resources(const ait_task_spec *spec, const ait_controller_config *cfg)
{
    json_object *r = json_object_new_object();
    const char *sections[] = {"requests", "limits"};
    for (int s = 0; s < 2; s++) {
        json_object *merged = json_object_new_object();
        json_object *srcs[2] = {
            cfg->default_resources ? ait_json_path(cfg->default_resources, sections[s]) : NULL,
            spec->resources ? ait_json_path(spec->resources, sections[s]) : NULL};
        for (int i = 0; i < 2; i++) {
            if (!json_object_is_type(srcs[i], json_type_object)) {
                continue;
            }
            json_object_object_foreach(srcs[i], k, v)
            {
                /* A copy, never a shared reference: the controller config is read by every
                 * worker at once, and json-c's reference counts are not atomic. */
                json_object *copy = NULL;
                json_object_deep_copy(v, &copy, NULL);
                json_object_object_add(merged, k, copy);
            }
        }
        json_object_object_add(r, sections[s], merged);
    }
    return r;
}

json_object *ait_pod_build(json_object *task, const ait_task_spec *spec,
                           const ait_controller_config *cfg, int attempt, const char *secret_name,
                           ait_error *err)
{
    const ait_runtime_cfg *rt = ait_controller_config_runtime(cfg, spec->runtime);
    const char *image = spec->image ? spec->image : (rt ? rt->image : NULL);
    if (image == NULL || (rt == NULL && spec->n_command == 0)) {
        ait_error_set(err, AIT_ERR_INVALID,
                      "runtime \"%s\" is not configured in the controller; set spec.runtime to "
                      "one of the configured runtimes, or set both spec.image and spec.command",
                      spec->runtime ? spec->runtime : "");
        return NULL;
    }
    const char *file = rt ? rt->file : "main";
    char *name = ait_attempt_name(ait_obj_name(task), attempt);
    json_object *pod = json_object_new_object();
    json_object_object_add(pod, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(pod, "kind", json_object_new_string("Pod"));
    json_object *pm = metadata(task, name, attempt);
    if (!spec->network_access) {
        json_object_object_add(ait_json_path(pm, "labels"), AIT_LABEL_EGRESS,
                               json_object_new_string("deny"));
    }
    json_object_object_add(pod, "metadata", pm);

    json_object *ps = json_object_new_object();
    json_object_object_add(ps, "restartPolicy", json_object_new_string("Never"));
    json_object_object_add(ps, "activeDeadlineSeconds",
                           json_object_new_int64(spec->timeout_seconds));
    json_object_object_add(ps, "automountServiceAccountToken", json_object_new_boolean(0));
    json_object_object_add(ps, "enableServiceLinks", json_object_new_boolean(0));
    json_object_object_add(ps, "terminationGracePeriodSeconds", json_object_new_int(5));
    if (spec->runtime_class_name != NULL) {
        json_object_object_add(ps, "runtimeClassName",
                               json_object_new_string(spec->runtime_class_name));
    }
    json_object *psc = json_object_new_object();
    json_object_object_add(psc, "runAsNonRoot", json_object_new_boolean(1));
    json_object_object_add(psc, "runAsUser", json_object_new_int64(cfg->run_as_user));
    json_object_object_add(psc, "runAsGroup", json_object_new_int64(cfg->run_as_user));
    json_object_object_add(psc, "fsGroup", json_object_new_int64(cfg->run_as_user));
    json_object *seccomp = json_object_new_object();
    json_object_object_add(seccomp, "type", json_object_new_string("RuntimeDefault"));
    json_object_object_add(psc, "seccompProfile", seccomp);
    json_object_object_add(ps, "securityContext", psc);

    json_object *c = json_object_new_object();
    json_object_object_add(c, "name", json_object_new_string("main"));
    json_object_object_add(c, "image", json_object_new_string(image));
    json_object *cmd = json_object_new_array();
    json_object_array_add(cmd, json_object_new_string("/bin/sh"));
    json_object_array_add(cmd, json_object_new_string("-c"));
    json_object_array_add(cmd, json_object_new_string(entry_script));
    json_object_array_add(cmd, json_object_new_string("aitask"));
    json_object *prog =
        spec->n_command ? strs(spec->command, spec->n_command) : strs(rt->command, rt->n_command);
    for (size_t i = 0; i < json_object_array_length(prog); i++) {
        json_object_array_add(cmd, json_object_get(json_object_array_get_idx(prog, i)));
    }
    json_object_put(prog);
    char *code_path = ait_asprintf(AIT_CODE_DIR "/%s", file);
    json_object_array_add(cmd, json_object_new_string(code_path));
    ait_free(code_path);
    for (size_t i = 0; i < spec->n_args; i++) {
        json_object_array_add(cmd, json_object_new_string(spec->args[i]));
    }
    json_object_object_add(c, "command", cmd);
    json_object_object_add(c, "workingDir", json_object_new_string(AIT_WORK_DIR));
    json_object *env = json_object_new_array();
    add_env(env, "HOME", AIT_WORK_DIR);
    add_env(env, "TMPDIR", AIT_WORK_DIR);
    add_env(env, "PYTHONDONTWRITEBYTECODE", "1");
    for (size_t i = 0; i < spec->n_env; i++) {
        add_env(env, spec->env[i].name, spec->env[i].value);
    }
    for (size_t i = 0; secret_name != NULL && i < spec->n_secret_refs; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "name", json_object_new_string(spec->secret_refs[i].env));
        json_object *ref = json_object_new_object();
        json_object_object_add(ref, "name", json_object_new_string(secret_name));
        json_object_object_add(ref, "key", json_object_new_string(spec->secret_refs[i].env));
        json_object *vf = json_object_new_object();
        json_object_object_add(vf, "secretKeyRef", ref);
        json_object_object_add(e, "valueFrom", vf);
        json_object_array_add(env, e);
    }
    json_object_object_add(c, "env", env);
    json_object_object_add(c, "resources", resources(spec, cfg));
    json_object *csc = json_object_new_object();
    json_object_object_add(csc, "allowPrivilegeEscalation", json_object_new_boolean(0));
    json_object_object_add(csc, "readOnlyRootFilesystem", json_object_new_boolean(1));
    json_object_object_add(csc, "runAsNonRoot", json_object_new_boolean(1));
    json_object *caps = json_object_new_object();
    json_object *drop = json_object_new_array();
    json_object_array_add(drop, json_object_new_string("ALL"));
    json_object_object_add(caps, "drop", drop);
    json_object_object_add(csc, "capabilities", caps);
    json_object_object_add(c, "securityContext", csc);
    json_object_object_add(c, "terminationMessagePolicy",
                           json_object_new_string("FallbackToLogsOnError"));
    json_object *mounts = json_object_new_array();
    json_object *m1 = json_object_new_object();
    json_object_object_add(m1, "name", json_object_new_string("code"));
    json_object_object_add(m1, "mountPath", json_object_new_string(AIT_CODE_DIR));
    json_object_object_add(m1, "readOnly", json_object_new_boolean(1));
    json_object_array_add(mounts, m1);
    json_object *m2 = json_object_new_object();
    json_object_object_add(m2, "name", json_object_new_string("work"));
    json_object_object_add(m2, "mountPath", json_object_new_string(AIT_WORK_DIR));
    json_object_array_add(mounts, m2);
    json_object_object_add(c, "volumeMounts", mounts);
    json_object *containers = json_object_new_array();
    json_object_array_add(containers, c);
    json_object_object_add(ps, "containers", containers);

    json_object *vols = json_object_new_array();
    json_object *v1 = json_object_new_object();
    json_object_object_add(v1, "name", json_object_new_string("code"));
    json_object *cmv = json_object_new_object();
    json_object_object_add(cmv, "name", json_object_new_string(name));
    json_object_object_add(cmv, "defaultMode", json_object_new_int(0444));
    json_object_object_add(v1, "configMap", cmv);
    json_object_array_add(vols, v1);
    json_object *v2 = json_object_new_object();
    json_object_object_add(v2, "name", json_object_new_string("work"));
    json_object *ed = json_object_new_object();
    json_object_object_add(ed, "sizeLimit", json_object_new_string("64Mi"));
    json_object_object_add(v2, "emptyDir", ed);
    json_object_array_add(vols, v2);
    json_object_object_add(ps, "volumes", vols);
    json_object_object_add(pod, "spec", ps);
    ait_free(name);
    return pod;
}

json_object *ait_netpol_build(const char *ns)
{
    json_object *np = json_object_new_object();
    json_object_object_add(np, "apiVersion", json_object_new_string("networking.k8s.io/v1"));
    json_object_object_add(np, "kind", json_object_new_string("NetworkPolicy"));
    json_object *m = json_object_new_object();
    json_object_object_add(m, "name", json_object_new_string(AIT_NETPOL_NAME));
    json_object_object_add(m, "namespace", json_object_new_string(ns));
    json_object *labels = json_object_new_object();
    json_object_object_add(labels, AIT_LABEL_MANAGED_BY, json_object_new_string(AIT_MANAGER));
    json_object_object_add(m, "labels", labels);
    json_object_object_add(np, "metadata", m);
    json_object *spec = json_object_new_object();
    json_object *sel = json_object_new_object();
    json_object *ml = json_object_new_object();
    json_object_object_add(ml, AIT_LABEL_EGRESS, json_object_new_string("deny"));
    json_object_object_add(sel, "matchLabels", ml);
    json_object_object_add(spec, "podSelector", sel);
    json_object *types = json_object_new_array();
    json_object_array_add(types, json_object_new_string("Egress"));
    json_object_object_add(spec, "policyTypes", types);
    /* An empty egress list with policyType Egress denies all egress, DNS included. */
    json_object_object_add(spec, "egress", json_object_new_array());
    json_object_object_add(np, "spec", spec);
    return np;
}

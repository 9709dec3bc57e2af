#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The AITask controller against the real kube-apiserver (RBAC, Pod Security "restricted"
# enforced on every test namespace, so admission proves the sandbox pods comply). Pod outcomes
# are driven as a kubelet would: by the fake kubelet (tests/fakes/fake_kubelet.py) or by
# patching pod status here. Covers SPEC.md §3 steps 1, 3, 4, 6, 7 and restart safety.
. "$AIT_SOURCE_DIR/tests/integration/lib.sh"

install_crd || { fail "CRD installed"; t_finish; exit 1; }

audit_pod_creates() { # NS [NAME-PREFIX]: pod creations the API server accepted (its audit log)
    jq -c --arg ns "$1" --arg p "${2:-}" 'select(.verb=="create" and .objectRef.resource=="pods"
        and .objectRef.subresource==null and .objectRef.namespace==$ns
        and (.objectRef.name // "" | startswith($p)) and .responseStatus.code==201)' \
        "$AIT_CLUSTER_DIR/audit.log" 2>/dev/null | wc -l
}

task() { # NS NAME CODE [extra spec YAML lines]
    local ns=$1 name=$2 code=$3
    shift 3
    {
        printf 'apiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata: {name: %s, namespace: %s}\n' "$name" "$ns"
        printf 'spec:\n  runtime: python\n  code: %s\n' "$(jq -Rn --arg c "$code" '$c')"
        for l in "$@"; do printf '  %s\n' "$l"; done
    } | kubectl apply -f - >/dev/null
}

# ---------------------------------------------------------------- outcomes through a kubelet
ns=$(new_namespace ctrl-run)
start_controller main "$ns"
start_kubelet "$ns"
task "$ns" hello 'print("hello from the sandbox")'
task "$ns" fail1 'import sys; print("boom"); sys.exit(3)' 'healing: {maxAttempts: 1}'
task "$ns" nohealer 'raise SystemExit(4)' 'healing: {maxAttempts: 3, backoffSeconds: 0}'
check "kubectl wait --for=condition=Succeeded returns for a succeeded task" \
    kubectl wait -n "$ns" --for=condition=Succeeded aitask/hello --timeout=60s
check "result.output holds the program's output" \
    test "$(jp "$ns" hello '{.status.result.output}')" = "hello from the sandbox"
check "attempt 1 recorded with exit code 0, pod name and code hash" \
    test "$(jp "$ns" hello '{.status.attempts[0].exitCode}/{.status.attempts[0].podName}/{.status.attemptCount}')" = "0/hello-a1/1"
check "codeSHA256 is the SHA-256 of spec.code" \
    test "$(jp "$ns" hello '{.status.attempts[0].codeSHA256}')" = "$(printf '%s' 'print("hello from the sandbox")' | sha256sum | cut -d' ' -f1)"
pod=$(kubectl get pod -n "$ns" hello-a1 -o json)
check "pod: runAsNonRoot, non-zero runAsUser, seccomp RuntimeDefault" \
    test "$(jq -r '[.spec.securityContext.runAsNonRoot, (.spec.securityContext.runAsUser>0), .spec.securityContext.seccompProfile.type]|join(",")' <<<"$pod")" = "true,true,RuntimeDefault"
check "pod: no privilege escalation, all capabilities dropped, read-only root" \
    test "$(jq -r '.spec.containers[0].securityContext|[.allowPrivilegeEscalation, .capabilities.drop[0], .readOnlyRootFilesystem]|join(",")' <<<"$pod")" = "false,ALL,true"
check "pod: no service-account token, restartPolicy Never, activeDeadlineSeconds 300" \
    test "$(jq -r '.spec|[.automountServiceAccountToken, .restartPolicy, .activeDeadlineSeconds]|join(",")' <<<"$pod")" = "false,Never,300"
check "pod: writable emptyDir only at /work, limits set, FallbackToLogsOnError" \
    test "$(jq -r '[(.spec.volumes[]|select(.emptyDir)|.name), (.spec.containers[0].volumeMounts[]|select(.readOnly!=true)|.mountPath), (.spec.containers[0].resources.limits.memory!=null), .spec.containers[0].terminationMessagePolicy]|join(",")' <<<"$pod")" = "work,/work,true,FallbackToLogsOnError"
check "pod is controlled by its AITask" \
    test "$(jq -r '.metadata.ownerReferences[0]|[.kind,.controller]|join(",")' <<<"$pod")" = "AITask,true"
check "the namespace's NetworkPolicy denies all egress of pods labelled aitask.dev/egress=deny" \
    test "$(kubectl get networkpolicy -n "$ns" aitask-sandbox-deny-egress -o jsonpath='{.spec.podSelector.matchLabels.aitask\.dev/egress}/{.spec.policyTypes[0]}/{.spec.egress}')" = "deny/Egress/"
check "pod: labelled aitask.dev/egress=deny (networkAccess false)" \
    test "$(jq -r '.metadata.labels["aitask.dev/egress"]' <<<"$pod")" = deny
check "one NetworkPolicy for the namespace, not one per task" \
    test "$(kubectl get networkpolicy -n "$ns" -o name | wc -l)" -eq 1
check "maxAttempts 1: a failed run ends Failed" wait_for 60 phase_is "$ns" fail1 Failed
check "failed attempt keeps exit code, reason and output tail" \
    test "$(jp "$ns" fail1 '{.status.attempts[0].exitCode}/{.status.attempts[0].reason}/{.status.attempts[0].message}')" = "3/Error/boom"
check "no healer configured: Failed with reason HealingDisabled" \
    wait_jp 60 "$ns" nohealer '{.status.conditions[?(@.type=="Succeeded")].reason}' HealingDisabled
events_ok() {
    [[ $(kubectl get events.events.k8s.io -n "$ns" -o json | jq '[.items[].reason]|(index("AttemptStarted")!=null and index("AttemptFailed")!=null and index("Succeeded")!=null)') == true ]]
}
check "Events were recorded for start, failure and outcome" wait_for 20 events_ok
cond_time=$(jp "$ns" hello '{.status.conditions[?(@.type=="Succeeded")].lastTransitionTime}')
rv=$(jp "$ns" fail1 '{.metadata.resourceVersion}')
sleep 3
check "terminal tasks are left alone (no status rewrites)" \
    test "$(jp "$ns" fail1 '{.metadata.resourceVersion}')" = "$rv"
check "lastTransitionTime is stable while status does not change" \
    test "$(jp "$ns" hello '{.status.conditions[?(@.type=="Succeeded")].lastTransitionTime}')" = "$cond_time"

# ---------------------------------------------------------------- outcomes patched by hand
ns2=$(new_namespace ctrl-manual)
start_controller manual "$ns2"
task "$ns2" deadline 'import time; time.sleep(999)' 'healing: {maxAttempts: 1}' 'timeoutSeconds: 30'
task "$ns2" oom 'x = "a" * 10**10' 'healing: {maxAttempts: 1}'
task "$ns2" del 'print(1)'
task "$ns2" invalid 'print(1)' 'healing: {providers: [nosuchprovider]}'
task "$ns2" rejected 'print(1)' 'sandbox: {runtimeClassName: no-such-class}'
wait_for 30 kubectl get pod -n "$ns2" deadline-a1 oom-a1 del-a1
check "deadline pod has activeDeadlineSeconds = timeoutSeconds" \
    test "$(kubectl get pod -n "$ns2" deadline-a1 -o jsonpath='{.spec.activeDeadlineSeconds}')" = 30
kubectl patch pod -n "$ns2" deadline-a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Failed","reason":"DeadlineExceeded","message":"Pod was active on the node longer than the specified deadline"}}' >/dev/null
patch_pod_terminated "$ns2" oom-a1 137 OOMKilled ""
check "DeadlineExceeded carried to the attempt" \
    wait_jp 30 "$ns2" deadline '{.status.attempts[0].reason}' DeadlineExceeded
check "OOMKilled carried to the attempt with exit code 137" \
    wait_jp 30 "$ns2" oom '{.status.attempts[0].reason}/{.status.attempts[0].exitCode}' "OOMKilled/137"
check "unknown provider: Invalid=True with a message naming it" \
    wait_jp 30 "$ns2" invalid '{.status.conditions[?(@.type=="Invalid")].status}' True
check "Invalid message says what to fix" \
    grep -q 'nosuchprovider' <<<"$(jp "$ns2" invalid '{.status.conditions[?(@.type=="Invalid")].message}')"
check "invalid task: phase Failed and no pod" \
    test "$(jp "$ns2" invalid '{.status.phase}')/$(kubectl get pod -n "$ns2" invalid-a1 -o name 2>/dev/null)" = "Failed/"
rv=$(jp "$ns2" invalid '{.metadata.resourceVersion}')
sleep 3
check "invalid task is not retried in a loop" test "$(jp "$ns2" invalid '{.metadata.resourceVersion}')" = "$rv"
check "a pod refused by admission ends the task with reason PodRejected" \
    wait_jp 30 "$ns2" rejected '{.status.phase}/{.status.conditions[?(@.type=="Succeeded")].reason}' "Failed/PodRejected"
check "PodRejected message carries the API server's reason" \
    grep -q 'no-such-class' <<<"$(jp "$ns2" rejected '{.status.conditions[?(@.type=="Succeeded")].message}')"
kubectl delete aitask -n "$ns2" del --wait=false >/dev/null
check "deleting a running task removes it (finalizer released)" \
    wait_for 60 test -z "$(kubectl get aitask -n "$ns2" del -o name 2>/dev/null)"
check "its pod is gone" wait_for 60 test -z "$(kubectl get pod -n "$ns2" del-a1 -o name 2>/dev/null)"
check "its ConfigMap is gone (owner references)" \
    wait_for 60 test -z "$(kubectl get configmap -n "$ns2" del-a1 -o name 2>/dev/null)"
check "the namespace's NetworkPolicy stays for the other tasks" \
    kubectl get networkpolicy -n "$ns2" aitask-sandbox-deny-egress -o name

# ---------------------------------------------------------------- SIGKILL at five points
ns3=$(new_namespace ctrl-crash)
start_kubelet "$ns3" succeed
for point in after-finalizer after-configmap after-pod-create before-status-write after-status-write; do
    name="crash-${point}"
    AIT_FAILPOINTS=$point start_controller "crash-$point" "$ns3" --concurrency 1
    crashed=$LAST_PID
    task "$ns3" "$name" 'print("survived")'
    wait_for 30 bash -c "! kill -0 $crashed 2>/dev/null"
    check "failpoint $point killed the controller" \
        grep -q "\"failpoint\":\"$point\"" "$T_TMP/crash-$point.log"
    start_controller "after-$point" "$ns3" --concurrency 1
    restarted=$LAST_PID
    check "after SIGKILL at $point the task still succeeds" \
        wait_for 60 phase_is "$ns3" "$name" Succeeded
    check "after SIGKILL at $point: exactly one attempt and one pod creation" \
        test "$(jp "$ns3" "$name" '{.status.attemptCount}')/$(audit_pod_creates "$ns3" "$name-a")" = "1/1"
    kill -TERM "$restarted"
    wait "$restarted" 2>/dev/null
done

# ---------------------------------------------------------------- 300 tasks, 4 workers
ns4=$(new_namespace ctrl-load)
# The default admission limits (10 running, 100 starts a minute) would pace this case; it is
# about the reconcile workers, so the limits are raised (test_admission.sh covers them).
printf 'limits: {maxRunning: 1000, startsPerMinute: 100000}\n' >"$T_TMP/load.yaml.cfg"
start_controller load "$ns4" --concurrency 4 --config "$T_TMP/load.yaml.cfg"
start_kubelet "$ns4" succeed
t0=$SECONDS
for i in $(seq 1 300); do
    printf -- '---\napiVersion: aitask.dev/v1alpha1\nkind: AITask\nmetadata: {name: load-%03d, namespace: %s}\nspec: {runtime: python, code: "print(%d)"}\n' "$i" "$ns4" "$i"
done >"$T_TMP/load.yaml"
kubectl apply -f "$T_TMP/load.yaml" >/dev/null
terminal() {
    [[ $(kubectl get aitask -n "$ns4" -o json | jq '[.items[]|select(.status.phase=="Succeeded" or .status.phase=="Failed")]|length') == 300 ]]
}
check "300 tasks with 4 workers all reach a terminal phase" wait_for 300 terminal
echo "    (300 tasks terminal after $((SECONDS - t0)) s)"
check "all 300 succeeded" \
    test "$(kubectl get aitask -n "$ns4" -o json | jq '[.items[]|select(.status.phase=="Succeeded")]|length')" = 300
check "exactly 300 pods exist" test "$(kubectl get pods -n "$ns4" -o name | wc -l)" = 300
check "the API server's audit log shows exactly 300 pod creations (no duplicate)" \
    test "$(audit_pod_creates "$ns4")" = 300

t_finish

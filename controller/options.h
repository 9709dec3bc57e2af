/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line options of aitask-controller. Parsing never exits: it returns a status and a
 * message so main() chooses the exit code (2 for bad usage). */
#ifndef AIT_CONTROLLER_OPTIONS_H
#define AIT_CONTROLLER_OPTIONS_H

#include "core/status.h"

typedef struct ait_options {
    const char *kubeconfig;      /* --kubeconfig, else $KUBECONFIG, else in-cluster */
    const char *config;          /* --config: the controller's YAML config file */
    const char *namespace_;      /* --namespace: watch scope, NULL = all */
    int concurrency;             /* --concurrency: reconcile workers */
    int leader_elect;            /* --leader-elect */
    const char *lease_name;      /* --leader-election-id */
    const char *lease_namespace; /* --leader-election-namespace */
    const char *metrics_addr;    /* --metrics-bind-address, "0" disables */
    const char *probe_addr;      /* --health-probe-bind-address, "0" disables */
    double kube_api_qps;         /* --kube-api-qps: client-side limit, 0 = off */
    int kube_api_burst;          /* --kube-api-burst */
    int verbosity;               /* -v */
    int help;
    int version;
} ait_options;

/* Parses argv into opts (borrowing the strings from argv). Returns AIT_ERR_INVALID with a message
 * naming the bad flag. */
ait_status ait_options_parse(int argc, char **argv, ait_options *opts, ait_error *err) AIT_WUR;

/* Prints the usage text to f. */
void ait_options_usage(const char *prog, void *f);

#endif

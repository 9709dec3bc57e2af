/* SPDX-License-Identifier: Apache-2.0 */
/* Flag parsing for aitask-controller with getopt_long; defaults mirror controller-runtime's. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_KUBECONFIG = 1000,
    OPT_CONFIG,
    OPT_NAMESPACE,
    OPT_CONCURRENCY,
    OPT_LEADER_ELECT,
    OPT_LEASE_NAME,
    OPT_LEASE_NS,
    OPT_METRICS,
    OPT_PROBE,
    OPT_QPS,
    OPT_BURST,
};

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (s == NULL || strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

void ait_options_usage(const char *prog, void *fp)
{
    FILE *f = fp;
    fprintf(f,
            "Usage: %s [flags]\n"
            "\n"
            "Runs the aitask.dev/v1alpha1 AITask controller: sandboxed runs of AI-written\n"
            "programs, healed by LLM providers when they fail.\n"
            "\n"
            "Flags:\n"
            "  --kubeconfig PATH                 kubeconfig file (default $KUBECONFIG, else "
            "in-cluster)\n"
            "  --config PATH                     controller config file (YAML)\n"
            "  --namespace NS                    watch only this namespace (default: all)\n"
            "  --concurrency N                   reconcile workers, 1..256 (default 8)\n"
            "  --leader-elect[=BOOL]             elect a leader with a Lease (default false)\n"
            "  --leader-election-id NAME         Lease name (default aitask-operator-leader)\n"
            "  --leader-election-namespace NS    Lease namespace (default: the pod's, else "
            "default)\n"
            "  --metrics-bind-address ADDR       /metrics address, \"0\" disables (default "
            ":8080)\n"
            "  --health-probe-bind-address ADDR  /healthz and /readyz address, \"0\" disables "
            "(default :8081)\n"
            "  --kube-api-qps N                  client-side API request rate, 0 disables (default "
            "500)\n"
            "  --kube-api-burst N                burst of that limit (default 1000)\n"
            "  -v, --v N                         log verbosity, 0..10 (default 0)\n"
            "  -h, --help                        print this help and exit\n"
            "      --version                     print the version and exit\n",
            prog);
}

ait_status ait_options_parse(int argc, char **argv, ait_options *opts, ait_error *err)
{
    memset(opts, 0, sizeof(*opts));
    opts->concurrency = 8;
    opts->lease_name = "aitask-operator-leader";
    opts->metrics_addr = ":8080";
    opts->probe_addr = ":8081";
    opts->kube_api_qps = 500;
    opts->kube_api_burst = 1000;
    static const struct option longopts[] = {
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
        {"leader-elect", optional_argument, NULL, OPT_LEADER_ELECT},
        {"leader-election-id", required_argument, NULL, OPT_LEASE_NAME},
        {"leader-election-namespace", required_argument, NULL, OPT_LEASE_NS},
        {"metrics-bind-address", required_argument, NULL, OPT_METRICS},
        {"health-probe-bind-address", required_argument, NULL, OPT_PROBE},
        {"kube-api-qps", required_argument, NULL, OPT_QPS},
        {"kube-api-burst", required_argument, NULL, OPT_BURST},
        {"v", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hv:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_KUBECONFIG:
            opts->kubeconfig = optarg;
            break;
        case OPT_CONFIG:
            opts->config = optarg;
            break;
        case OPT_NAMESPACE:
            opts->namespace_ = optarg[0] ? optarg : NULL;
            break;
        case OPT_CONCURRENCY:
            if (parse_int(optarg, 1, 256, &opts->concurrency) != 0) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "--concurrency %s: want an integer from 1 to 256", optarg);
            }
            break;
        case OPT_LEADER_ELECT:
            if (parse_bool(optarg, &opts->leader_elect) != 0) {
                return ait_error_set(err, AIT_ERR_INVALID, "--leader-elect=%s: want true or false",
                                     optarg);
            }
            break;
        case OPT_LEASE_NAME:
            opts->lease_name = optarg;
            break;
        case OPT_LEASE_NS:
            opts->lease_namespace = optarg;
            break;
        case OPT_METRICS:
            opts->metrics_addr = optarg;
            break;
        case OPT_PROBE:
            opts->probe_addr = optarg;
            break;
        case OPT_QPS: {
            int q = 0;
            if (parse_int(optarg, 0, 100000, &q) != 0) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "--kube-api-qps %s: want an integer from 0 to 100000", optarg);
            }
            opts->kube_api_qps = q;
            break;
        }
        case OPT_BURST:
            if (parse_int(optarg, 1, 100000, &opts->kube_api_burst) != 0) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "--kube-api-burst %s: want an integer from 1 to 100000",
                                     optarg);
            }
            break;
        case 'v':
            if (parse_int(optarg, 0, 10, &opts->verbosity) != 0) {
                return ait_error_set(err, AIT_ERR_INVALID, "-v %s: want an integer from 0 to 10",
                                     optarg);
            }
            break;
        case 'h':
            opts->help = 1;
            break;
        case 'V':
            opts->version = 1;
            break;
        case ':':
            return ait_error_set(err, AIT_ERR_INVALID, "flag %s needs a value", argv[optind - 1]);
        default:
            return ait_error_set(err, AIT_ERR_INVALID, "unknown flag %s (see --help)",
                                 argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return ait_error_set(err, AIT_ERR_INVALID, "unexpected argument %s (see --help)",
                             argv[optind]);
    }
    return AIT_OK;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Where and how to reach the Kubernetes API: a kubeconfig file (current context, or a named
 * one) or the in-cluster service-account files. Certificate and key data embedded in a
 * kubeconfig are decoded here; a token file is re-read by the REST client on every new
 * connection, since projected tokens rotate. */
#ifndef AIT_KUBE_CONFIG_H
#define AIT_KUBE_CONFIG_H

#include "core/status.h"

typedef struct ait_kube_config {
    char *server;           /* "https://host:port", no trailing slash */
    char *ca_file;          /* PEM file, or NULL */
    char *ca_data;          /* PEM bytes (decoded from certificate-authority-data), or NULL */
    char *client_cert_file; /* PEM file, or NULL */
    char *client_cert_data; /* PEM bytes, or NULL */
    char *client_key_file;
    char *client_key_data;
    char *token;      /* bearer token, or NULL */
    char *token_file; /* re-read when connections are made, or NULL */
    int insecure_skip_tls_verify;
    char *namespace_; /* the context's namespace, or the in-cluster pod's; may be NULL */
} ait_kube_config;

/* Loads the configuration the way kubectl and client-go do: the file at path when non-NULL, else
 * $KUBECONFIG (first file of the list), else the in-cluster config. context may be NULL (the
 * current context). Returns owned in *out, free with ait_kube_config_free(). Errors say which
 * file and which field is wrong. */
ait_status ait_kube_config_load(const char *path, const char *context, ait_kube_config **out,
                                ait_error *err) AIT_WUR;

/* Parses a kubeconfig file. */
ait_status ait_kube_config_from_file(const char *path, const char *context, ait_kube_config **out,
                                     ait_error *err) AIT_WUR;
/* Parses kubeconfig YAML held in memory (len bytes); base_dir resolves relative file paths
 * (NULL = the working directory). Used by the fuzz target too. */
ait_status ait_kube_config_from_yaml(const char *yaml, size_t len, const char *base_dir,
                                     const char *context, ait_kube_config **out,
                                     ait_error *err) AIT_WUR;
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, and the files under root (NULL =
 * /var/run/secrets/kubernetes.io/serviceaccount): token, ca.crt, namespace. */
ait_status ait_kube_config_in_cluster(const char *root, ait_kube_config **out,
                                      ait_error *err) AIT_WUR;

void ait_kube_config_free(ait_kube_config *cfg);

#endif

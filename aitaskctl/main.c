/* SPDX-License-Identifier: Apache-2.0 */
/* aitaskctl: the command-line tool for AITasks' audit trail (SPEC.md §6): `audit show` prints a
 * task's chain of custody, `audit verify` recomputes and checks it against the task's
 * status.audit and, with the key, decrypts prompts and responses. Exit codes: 0 success, 1 a
 * check failed or a server could not be reached, 2 usage. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/crypto.h"
#include "audit/etcd.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/version.h"
#include "kube/config.h"
#include "kube/rest.h"

typedef struct opts {
    const char *endpoint;
    const char *cacert;
    const char *cert;
    const char *key;
    const char *kubeconfig;
    const char *uid;
    const char *expect_head;
    int64_t expect_entries;
    const char *key_file;
    const char *output;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: aitaskctl audit show|verify <namespace>/<name> [flags]\n"
            "\n"
            "Commands:\n"
            "  audit show <namespace>/<name>     print the task's chain of custody\n"
            "  audit verify <namespace>/<name>   recompute and check every hash of the chain,\n"
            "                                    compare with the task's status.audit; exit 0\n"
            "                                    only when everything holds\n"
            "\n"
            "Flags:\n"
            "      --etcd-endpoint URL   audit etcd (default $AITASK_ETCD_ENDPOINT or\n"
            "                            http://127.0.0.1:2379)\n"
            "      --etcd-cacert FILE    CA bundle for an https endpoint (TLS is always verified)\n"
            "      --etcd-cert FILE      client certificate\n"
            "      --etcd-key FILE       client key\n"
            "      --kubeconfig FILE     Kubernetes config (default $KUBECONFIG, in-cluster)\n"
            "      --uid UID             the task's uid: skip the Kubernetes lookup (no\n"
            "                            status.audit comparison unless --expect-* is given)\n"
            "      --expect-head HASH    expected head hash (with --uid)\n"
            "      --expect-entries N    expected number of entries (with --uid)\n"
            "      --key FILE            audit key (32 raw bytes or 64 hex digits): decrypt and\n"
            "                            check prompts and responses\n"
            "  -o, --output FORMAT       show: table (default) or json\n"
            "  -h, --help                print this help and exit\n"
            "      --version             print the version and exit\n");
}

/* Fills uid and the expectations from the AITask (status.audit {head, entries}). */
static int lookup_task(const opts *o, const char *ns, const char *name, char **uid, char **head,
                       int64_t *entries)
{
    ait_kube_config *cfg = NULL;
    ait_rest *rest = NULL;
    json_object *obj = NULL;
    ait_error err = {0};
    int rc = 1;
    if (ait_kube_config_load(o->kubeconfig, NULL, &cfg, &err) != AIT_OK ||
        ait_rest_new(cfg, NULL, &rest, &err) != AIT_OK ||
        ait_rest_get(rest, &AIT_GVR_AITASKS, ns, name, &obj, &err) != AIT_OK) {
        fprintf(stderr, "aitaskctl: reading AITask %s/%s: %s\n", ns, name, err.msg);
        goto out;
    }
    const char *u = ait_json_str(obj, "metadata.uid");
    if (u == NULL) {
        fprintf(stderr, "aitaskctl: AITask %s/%s has no metadata.uid\n", ns, name);
        goto out;
    }
    *uid = ait_strdup(u);
    const char *h = ait_json_str(obj, "status.audit.head");
    *head = ait_strdup(h != NULL ? h : "");
    *entries = ait_json_int(obj, "status.audit.entries", 0);
    rc = 0;
out:
    json_object_put(obj);
    ait_rest_free(rest);
    ait_kube_config_free(cfg);
    return rc;
}

static const char *dash(const char *s)
{
    return s != NULL ? s : "-";
}

static void show_table(const ait_audit_records *r)
{
    printf("%-6s %-27s %-16s %-24s %-10s %-20s %8s %8s %12s %s\n", "SEQ", "TIME", "ACTION", "ACTOR",
           "PROVIDER", "MODEL", "IN-TOK", "OUT-TOK", "COST-USD", "HASH");
    for (size_t i = 0; i < r->n; i++) {
        json_object *e = r->v[i].entry;
        if (e == NULL) {
            printf("%-6s (key %s: not a JSON entry)\n", "?", r->v[i].key);
            continue;
        }
        int64_t cost = ait_json_int(e, "costMicroUSD", 0);
        const char *h = ait_json_str(e, "hash");
        printf("%-6" PRId64 " %-27s %-16s %-24s %-10s %-20s %8" PRId64 " %8" PRId64 " %5" PRId64
               ".%06" PRId64 " %.12s\n",
               ait_json_int(e, "seq", -1), dash(ait_json_str(e, "ts")),
               dash(ait_json_str(e, "action")), dash(ait_json_str(e, "actor")),
               dash(ait_json_str(e, "provider")), dash(ait_json_str(e, "model")),
               ait_json_int(e, "promptTokens", 0), ait_json_int(e, "completionTokens", 0),
               cost / 1000000, cost % 1000000, h ? h : "-");
    }
}

static int show_json(const ait_audit_records *r, const ait_audit_key *key)
{
    json_object *arr = json_object_new_array();
    int rc = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_object *e = r->v[i].entry;
        if (e == NULL) {
            json_object *bad = json_object_new_object();
            json_object_object_add(bad, "key", json_object_new_string(r->v[i].key));
            json_object_object_add(bad, "error", json_object_new_string("not a JSON entry"));
            json_object_array_add(arr, bad);
            continue;
        }
        json_object *copy = NULL;
        if (json_object_deep_copy(e, &copy, NULL) != 0) {
            copy = json_object_get(e);
        }
        for (int f = 0; key != NULL && f < 2; f++) {
            const char *field = f == 0 ? "prompt" : "response";
            char *pt = NULL;
            size_t len = 0;
            ait_error err = {0};
            ait_status st = ait_audit_open_field(key, e, field, &pt, &len, &err);
            if (st == AIT_OK) {
                json_object_object_add(copy, field, json_object_new_string_len(pt, (int)len));
            } else if (st != AIT_ERR_NOT_FOUND) {
                fprintf(stderr, "aitaskctl: entry %s: %s\n", r->v[i].key, err.msg);
                rc = 1;
            }
            ait_free(pt);
        }
        json_object_array_add(arr, copy);
    }
    printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(arr);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {.expect_entries = -1};
    const char *env = getenv("AITASK_ETCD_ENDPOINT");
    o.endpoint = env != NULL && env[0] != '\0' ? env : "http://127.0.0.1:2379";
    enum { O_EP = 1000, O_CA, O_CERT, O_KEY, O_KC, O_UID, O_EH, O_EE, O_AKEY, O_VER };
    static const struct option longopts[] = {
        {"etcd-endpoint", required_argument, NULL, O_EP},
        {"etcd-cacert", required_argument, NULL, O_CA},
        {"etcd-cert", required_argument, NULL, O_CERT},
        {"etcd-key", required_argument, NULL, O_KEY},
        {"kubeconfig", required_argument, NULL, O_KC},
        {"uid", required_argument, NULL, O_UID},
        {"expect-head", required_argument, NULL, O_EH},
        {"expect-entries", required_argument, NULL, O_EE},
        {"key", required_argument, NULL, O_AKEY},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VER},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case O_EP:
            o.endpoint = optarg;
            break;
        case O_CA:
            o.cacert = optarg;
            break;
        case O_CERT:
            o.cert = optarg;
            break;
        case O_KEY:
            o.key = optarg;
            break;
        case O_KC:
            o.kubeconfig = optarg;
            break;
        case O_UID:
            o.uid = optarg;
            break;
        case O_EH:
            o.expect_head = optarg;
            break;
        case O_EE:
            o.expect_entries = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || o.expect_entries < 0) {
                fprintf(stderr, "aitaskctl: --expect-entries wants a number >= 0\n");
                return 2;
            }
            break;
        case O_AKEY:
            o.key_file = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case O_VER:
            printf("aitaskctl %s\n", AIT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 3 || strcmp(argv[optind], "audit") != 0 ||
        (strcmp(argv[optind + 1], "show") != 0 && strcmp(argv[optind + 1], "verify") != 0)) {
        usage(stderr);
        return 2;
    }
    int verify = strcmp(argv[optind + 1], "verify") == 0;
    if (o.output != NULL && strcmp(o.output, "json") != 0 && strcmp(o.output, "table") != 0) {
        fprintf(stderr, "aitaskctl: -o wants table or json\n");
        return 2;
    }
    char *target = ait_strdup(argv[optind + 2]);
    char *slash = strchr(target, '/');
    if (slash == NULL || slash == target || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
        fprintf(stderr, "aitaskctl: want <namespace>/<name>, got %s\n", target);
        ait_free(target);
        return 2;
    }
    *slash = '\0';
    const char *ns = target, *name = slash + 1;

    int rc = 1;
    char *uid = NULL, *head = NULL;
    int64_t entries = -1;
    ait_audit_key *key = NULL;
    ait_etcd *etcd = NULL;
    ait_audit_records recs = {0};
    ait_error err = {0};
    if (o.uid != NULL) {
        uid = ait_strdup(o.uid);
        head = o.expect_head != NULL ? ait_strdup(o.expect_head) : NULL;
        entries = o.expect_entries;
    } else if (lookup_task(&o, ns, name, &uid, &head, &entries) != 0) {
        goto out;
    }
    if (o.key_file != NULL && ait_audit_key_load_file(o.key_file, &key, &err) != AIT_OK) {
        fprintf(stderr, "aitaskctl: %s\n", err.msg);
        goto out;
    }
    ait_etcd_options eo = {.endpoint = o.endpoint,
                           .ca_file = o.cacert,
                           .cert_file = o.cert,
                           .key_file = o.key,
                           .timeout_ms = 10000};
    if (ait_etcd_new(&eo, &etcd, &err) != AIT_OK ||
        ait_audit_list(etcd, uid, &recs, &err) != AIT_OK) {
        fprintf(stderr, "aitaskctl: reading the audit chain of %s/%s (uid %s): %s\n", ns, name, uid,
                err.msg);
        goto out;
    }
    if (!verify) {
        if (o.output != NULL && strcmp(o.output, "json") == 0) {
            rc = show_json(&recs, key);
        } else {
            show_table(&recs);
            rc = 0;
        }
        goto out;
    }
    ait_audit_verify_options vo = {.key = key, .expect_entries = entries, .expect_head = head};
    ait_audit_report rep;
    if (ait_audit_verify(uid, &recs, &vo, &rep) == AIT_OK) {
        printf("OK: %s/%s (uid %s): %" PRId64 " entries verified, head %s", ns, name, uid,
               rep.entries, rep.head[0] ? rep.head : "(empty)");
        if (key != NULL) {
            printf(", %zu prompts/responses decrypted", rep.decrypted);
        }
        printf("\n");
        rc = 0;
    } else {
        printf("FAILED: %s/%s (uid %s): %zu problem(s) in %" PRId64 " entries:\n%s", ns, name, uid,
               rep.problems, rep.entries, ait_buf_str(&rep.text));
        rc = 1;
    }
    ait_buf_free(&rep.text);
out:
    ait_audit_records_clear(&recs);
    ait_etcd_free(etcd);
    ait_audit_key_free(key);
    ait_free(uid);
    ait_free(head);
    ait_free(target);
    return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* aitaskctl: the command-line tool for AITasks' audit trail (show and verify the chain of
 * custody). Exit codes: 0 success, 1 a check failed or a server could not be reached, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "core/version.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: aitaskctl <command> [flags]\n"
               "\n"
               "Commands:\n"
               "  audit show <namespace>/<name>     print the task's chain of custody\n"
               "  audit verify <namespace>/<name>   recompute and check every hash of the chain\n"
               "\n"
               "Flags:\n"
               "  -h, --help      print this help and exit\n"
               "      --version   print the version and exit\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("aitaskctl %s\n", AIT_VERSION);
        return 0;
    }
    fprintf(stderr, "aitaskctl: unknown command %s (see --help)\n", argv[1]);
    return 2;
}

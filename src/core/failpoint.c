/* SPDX-License-Identifier: Apache-2.0 */
/* Failpoints; see failpoint.h. */
#include "core/failpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *enabled = NULL;

void ait_failpoint_init(void)
{
    const char *v = getenv("AIT_FAILPOINTS");
    enabled = (v != NULL && *v != '\0') ? v : NULL;
}

void ait_failpoint(const char *name)
{
    if (enabled == NULL) {
        return;
    }
    size_t n = strlen(name);
    for (const char *p = enabled; (p = strstr(p, name)) != NULL; p += n) {
        int starts = p == enabled || p[-1] == ',';
        int ends = p[n] == '\0' || p[n] == ',';
        if (starts && ends) {
            fprintf(stderr,
                    "{\"level\":\"error\",\"msg\":\"failpoint hit\",\"failpoint\":\"%s\"}\n", name);
            fflush(stderr);
            kill(getpid(), SIGKILL);
        }
    }
}

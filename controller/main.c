/* SPDX-License-Identifier: Apache-2.0 */
/* aitask-controller: the process only. Reads flags and config, builds each part, wires them and
 * waits for SIGTERM/SIGINT, then shuts down in order (see manager.h). Exit codes: 0 clean stop, 1
 * runtime failure, 2 bad flags or config. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/failpoint.h"
#include "core/log.h"
#include "core/version.h"
#include "manager.h"
#include "options.h"

int main(int argc, char **argv)
{
    ait_options opts;
    ait_error err = {0};
    if (ait_options_parse(argc, argv, &opts, &err) != AIT_OK) {
        fprintf(stderr, "aitask-controller: %s\n", err.msg);
        return 2;
    }
    if (opts.help) {
        ait_options_usage("aitask-controller", stdout);
        return 0;
    }
    if (opts.version) {
        printf("aitask-controller %s\n", AIT_VERSION);
        return 0;
    }
    ait_log_set_verbosity(opts.verbosity);

    /* Block the stop signals in every thread (threads inherit the mask) and wait for them here
     * with sigwait, so no work ever runs in a signal handler. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    ait_failpoint_init();
    /* Few malloc arenas: a controller with a handful of threads gains nothing from one arena per
     * thread, and each costs resident memory. */
    mallopt(M_ARENA_MAX, 2);
    /* A fixed mmap threshold: large blocks (List page bodies, big answers) get their own mapping
     * and go back to the system when freed. glibc's default raises the threshold to the largest
     * block freed so far, after which a 4 MiB page body lands in the heap, where the small cache
     * entries allocated around it keep its pages resident. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    AIT_LOG_INFO(0, "starting", "version", AIT_VERSION);
    ait_manager *m = NULL;
    ait_status st = ait_manager_new(&opts, &m, &err);
    if (st != AIT_OK) {
        AIT_LOG_ERROR(err.msg, "setting up the controller failed");
        fprintf(stderr, "aitask-controller: %s\n", err.msg);
        return st == AIT_ERR_INVALID ? 2 : 1;
    }
    if (ait_manager_start(m, &err) != AIT_OK) {
        AIT_LOG_ERROR(err.msg, "starting the controller failed");
        ait_manager_stop(m);
        return 1;
    }
    int rc = ait_manager_wait(m);
    ait_manager_stop(m);
    AIT_LOG_INFO(0, "stopped");
    return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* The standard process_* metrics (client_golang's process collector), read from /proc/self at
 * scrape time: CPU seconds, resident and virtual memory, open and maximum file descriptors, and
 * the start time. On a system without /proc the values read as 0. */
#ifndef AIT_METRICS_PROCESS_H
#define AIT_METRICS_PROCESS_H

#include "core/status.h"
#include "metrics/registry.h"

/* A snapshot of the process, as the metrics report it. */
typedef struct ait_process_stats {
    double cpu_seconds;    /* user + system CPU time */
    double resident_bytes; /* RSS */
    double virtual_bytes;  /* VSZ */
    double open_fds;       /* entries of /proc/self/fd */
    double max_fds;        /* soft RLIMIT_NOFILE */
    double start_time;     /* seconds since the Unix epoch */
} ait_process_stats;

/* Fills *out from /proc/self/stat, /proc/stat, /proc/self/fd and getrlimit. Returns AIT_ERR_IO
 * or AIT_ERR_PARSE (with err filled) when /proc cannot be read; *out is then zeroed. */
ait_status ait_process_stats_read(ait_process_stats *out, ait_error *err) AIT_WUR;

/* Declares process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds in m, computed at each scrape. Borrows m. Returns AIT_ERR_EXISTS
 * when one is already declared. */
ait_status ait_metrics_process_register(ait_metrics *m, ait_error *err) AIT_WUR;

#endif

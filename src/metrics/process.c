/* SPDX-License-Identifier: Apache-2.0 */
/* process_* metrics from /proc/self. Each computed metric takes a fresh snapshot when scraped;
 * the reads are a few small files, cheap next to a scrape. */
#include "metrics/process.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static ait_status read_file(const char *path, char *buf, size_t cap, ait_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return ait_error_set(err, AIT_ERR_IO, "process: cannot open %s", path);
    }
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return AIT_OK;
}

/* Returns /proc/stat's btime (boot time, seconds since the epoch), or 0 when unknown. */
static double boot_time(void)
{
    char buf[16384];
    if (read_file("/proc/stat", buf, sizeof buf, NULL) != AIT_OK) {
        return 0;
    }
    const char *p = strstr(buf, "\nbtime ");
    return p ? strtod(p + 7, NULL) : 0;
}

ait_status ait_process_stats_read(ait_process_stats *out, ait_error *err)
{
    memset(out, 0, sizeof *out);
    char buf[2048];
    ait_status st = read_file("/proc/self/stat", buf, sizeof buf, err);
    if (st != AIT_OK) {
        return st;
    }
    /* comm (field 2) is in parentheses and may hold spaces or ')': fields resume after the last
     * ')'. From there, field 3 (state) is the first token. */
    char *p = strrchr(buf, ')');
    if (!p) {
        return ait_error_set(err, AIT_ERR_PARSE, "process: malformed /proc/self/stat");
    }
    p++;
    double fields[53] = {0};
    int field = 3;
    while (*p && field < 53) {
        while (*p == ' ') {
            p++;
        }
        if (!*p || *p == '\n') {
            break;
        }
        char *end;
        fields[field] = strtod(p, &end);
        if (end == p) { /* the state letter */
            while (*end && *end != ' ') {
                end++;
            }
        }
        p = end;
        field++;
    }
    if (field <= 24) {
        return ait_error_set(err, AIT_ERR_PARSE, "process: short /proc/self/stat");
    }
    double ticks = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0) {
        ticks = 100;
    }
    out->cpu_seconds = (fields[14] + fields[15]) / ticks;
    out->start_time = boot_time() + fields[22] / ticks;
    out->virtual_bytes = fields[23];
    out->resident_bytes = fields[24] * (double)(page > 0 ? page : 4096);

    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        double n = 0;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') {
                n++;
            }
        }
        closedir(d);
        out->open_fds = n - 1; /* the directory stream's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (double)rl.rlim_cur;
    }
    return AIT_OK;
}

static ait_process_stats snapshot(void)
{
    ait_process_stats s;
    if (ait_process_stats_read(&s, NULL) != AIT_OK) {
        memset(&s, 0, sizeof s);
    }
    return s;
}

static double cpu_cb(void *ud)
{
    (void)ud;
    return snapshot().cpu_seconds;
}

static double rss_cb(void *ud)
{
    (void)ud;
    return snapshot().resident_bytes;
}

static double vsz_cb(void *ud)
{
    (void)ud;
    return snapshot().virtual_bytes;
}

static double open_fds_cb(void *ud)
{
    (void)ud;
    return snapshot().open_fds;
}

static double max_fds_cb(void *ud)
{
    (void)ud;
    return snapshot().max_fds;
}

static double start_cb(void *ud)
{
    (void)ud;
    return snapshot().start_time;
}

ait_status ait_metrics_process_register(ait_metrics *m, ait_error *err)
{
    static const struct {
        ait_metric_type type;
        const char *name;
        const char *help;
        ait_metric_value_cb cb;
    } defs[] = {
        {AIT_METRIC_COUNTER, "process_cpu_seconds_total",
         "Total user and system CPU time spent in seconds.", cpu_cb},
        {AIT_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
         rss_cb},
        {AIT_METRIC_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.", vsz_cb},
        {AIT_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.", open_fds_cb},
        {AIT_METRIC_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
         max_fds_cb},
        {AIT_METRIC_GAUGE, "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.", start_cb},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        ait_status st = ait_metrics_add_func(m, defs[i].type, defs[i].name, defs[i].help,
                                             defs[i].cb, NULL, err);
        if (st != AIT_OK) {
            return st;
        }
    }
    return AIT_OK;
}

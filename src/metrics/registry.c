/* SPDX-License-Identifier: Apache-2.0 */
/* Metric registry: families sorted by name under the registry lock; each family's children sit
 * in a fixed hash table whose chains are only ever prepended to (under the family lock) and
 * published with release stores, so lookups and updates never lock. Children are freed only
 * with the registry. */
#include "metrics/registry.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"

#define AIT__SLOTS 64

struct ait_metric {
    ait_metric_family *fam;
    ait_metric *next; /* chain in the slot; set before publication, never changed after */
    char **values;    /* one per label name, owned */
    uint64_t hash;
    _Atomic uint64_t bits;    /* counter/gauge value or histogram sum, as double bits */
    _Atomic uint64_t *counts; /* histogram only: per-bucket counts, the last is +Inf */
};

struct ait_metric_family {
    ait_metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char **labels;
    size_t nbounds;
    double *bounds;
    ait_metric_value_cb cb; /* set for a computed counter or gauge */
    void *cb_ud;
    pthread_mutex_t mu; /* serialises child creation only */
    _Atomic(ait_metric *) slots[AIT__SLOTS];
    size_t nchildren; /* under mu */
};

struct ait_metrics {
    pthread_mutex_t mu; /* guards fams, nfams (declaration and rendering) */
    ait_metric_family **fams;
    size_t nfams;
    size_t cap;
};

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
        uint64_t next = double_to_bits(bits_to_double(old) + v);
        /* On failure old is reloaded with the current bits, so the loop retries with them. */
        if (atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return;
        }
    }
}

ait_metrics *ait_metrics_new(void)
{
    ait_metrics *m = ait_calloc(1, sizeof *m);
    ait_assert(pthread_mutex_init(&m->mu, NULL) == 0);
    return m;
}

static void child_free(ait_metric *c, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++) {
        ait_free(c->values[i]);
    }
    ait_free(c->values);
    ait_free((void *)c->counts);
    ait_free(c);
}

static void family_free(ait_metric_family *f)
{
    for (size_t s = 0; s < AIT__SLOTS; s++) {
        ait_metric *c = atomic_load_explicit(&f->slots[s], memory_order_acquire);
        while (c) {
            ait_metric *next = c->next;
            child_free(c, f->nlabels);
            c = next;
        }
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        ait_free(f->labels[i]);
    }
    ait_free(f->labels);
    ait_free(f->bounds);
    ait_free(f->name);
    ait_free(f->help);
    pthread_mutex_destroy(&f->mu);
    ait_free(f);
}

void ait_metrics_free(ait_metrics *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->nfams; i++) {
        family_free(m->fams[i]);
    }
    ait_free(m->fams);
    pthread_mutex_destroy(&m->mu);
    ait_free(m);
}

static int valid_metric_name(const char *s)
{
    if (!s || !*s) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != s && c >= '0' && c <= '9')) {
            return 0;
        }
    }
    return 1;
}

static int valid_label_name(const char *s)
{
    if (!s || !*s || strncmp(s, "__", 2) == 0) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p != s && c >= '0' && c <= '9')) {
            return 0;
        }
    }
    return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h = (h ^ *p) * 1099511628211ULL;
        }
        h = (h ^ 0xffu) * 1099511628211ULL; /* separator: ("a","b") differs from ("ab","") */
    }
    return h;
}

static ait_metric *find_child(ait_metric_family *f, const char *const *values, uint64_t h)
{
    ait_metric *c = atomic_load_explicit(&f->slots[h % AIT__SLOTS], memory_order_acquire);
    for (; c; c = c->next) {
        if (c->hash != h) {
            continue;
        }
        size_t i = 0;
        while (i < f->nlabels && strcmp(c->values[i], values[i]) == 0) {
            i++;
        }
        if (i == f->nlabels) {
            return c;
        }
    }
    return NULL;
}

ait_metric *ait_metric_family_withv(ait_metric_family *f, const char *const *values)
{
    if (!f) {
        return NULL;
    }
    const char *vals[AIT_METRICS_MAX_LABELS];
    for (size_t i = 0; i < f->nlabels; i++) {
        vals[i] = values[i] ? values[i] : "";
    }
    uint64_t h = hash_values(vals, f->nlabels);
    ait_metric *c = find_child(f, vals, h);
    if (c) {
        return c;
    }
    pthread_mutex_lock(&f->mu);
    /* Another thread may have created it between the lock-free look and the lock. */
    c = find_child(f, vals, h);
    if (!c) {
        c = ait_calloc(1, sizeof *c);
        c->fam = f;
        c->hash = h;
        c->values = ait_calloc(f->nlabels ? f->nlabels : 1, sizeof *c->values);
        for (size_t i = 0; i < f->nlabels; i++) {
            c->values[i] = ait_strdup(vals[i]);
        }
        atomic_init(&c->bits, double_to_bits(0.0));
        if (f->type == AIT_METRIC_HISTOGRAM) {
            c->counts = ait_calloc(f->nbounds + 1, sizeof *c->counts);
            for (size_t i = 0; i <= f->nbounds; i++) {
                atomic_init(&c->counts[i], 0);
            }
        }
        _Atomic(ait_metric *) *slot = &f->slots[h % AIT__SLOTS];
        c->next = atomic_load_explicit(slot, memory_order_relaxed);
        atomic_store_explicit(slot, c, memory_order_release);
        f->nchildren++;
    }
    pthread_mutex_unlock(&f->mu);
    return c;
}

ait_metric *ait_metric_family_with(ait_metric_family *f, ...)
{
    if (!f) {
        return NULL;
    }
    const char *vals[AIT_METRICS_MAX_LABELS];
    va_list ap;
    va_start(ap, f);
    for (size_t i = 0; i < f->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    return ait_metric_family_withv(f, vals);
}

size_t ait_metric_family_label_count(const ait_metric_family *f)
{
    return f ? f->nlabels : 0;
}

const char *ait_metric_family_name(const ait_metric_family *f)
{
    return f ? f->name : "";
}

static ait_status declare(ait_metrics *m, ait_metric_type type, const char *name, const char *help,
                          const char *const *labels, const double *buckets, size_t nbuckets,
                          ait_metric_value_cb cb, void *ud, ait_metric_family **out, ait_error *err)
{
    if (out) {
        *out = NULL;
    }
    if (!m || type > AIT_METRIC_HISTOGRAM) {
        return ait_error_set(err, AIT_ERR_INVALID, "metrics: no registry or unknown type");
    }
    if (!valid_metric_name(name)) {
        return ait_error_set(err, AIT_ERR_INVALID, "metrics: invalid metric name \"%s\"",
                             name ? name : "(null)");
    }
    if (type == AIT_METRIC_COUNTER && !has_suffix(name, "_total")) {
        return ait_error_set(err, AIT_ERR_INVALID, "metrics: counter %s must end in _total", name);
    }
    if (type != AIT_METRIC_COUNTER && has_suffix(name, "_total")) {
        return ait_error_set(err, AIT_ERR_INVALID, "metrics: only counters end in _total: %s",
                             name);
    }
    size_t nlabels = 0;
    while (labels && labels[nlabels]) {
        const char *l = labels[nlabels];
        if (!valid_label_name(l) || (type == AIT_METRIC_HISTOGRAM && strcmp(l, "le") == 0)) {
            return ait_error_set(err, AIT_ERR_INVALID, "metrics: %s: invalid label name \"%s\"",
                                 name, l);
        }
        for (size_t j = 0; j < nlabels; j++) {
            if (strcmp(labels[j], l) == 0) {
                return ait_error_set(err, AIT_ERR_INVALID, "metrics: %s: label %s repeated", name,
                                     l);
            }
        }
        if (++nlabels > AIT_METRICS_MAX_LABELS) {
            return ait_error_set(err, AIT_ERR_INVALID, "metrics: %s: more than %d labels", name,
                                 AIT_METRICS_MAX_LABELS);
        }
    }
    if (type == AIT_METRIC_HISTOGRAM) {
        if (nbuckets > 0 && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0) {
            nbuckets--;
        }
        if (nbuckets == 0 || nbuckets > AIT_METRICS_MAX_BUCKETS) {
            return ait_error_set(err, AIT_ERR_INVALID, "metrics: %s: needs 1..%d buckets", name,
                                 AIT_METRICS_MAX_BUCKETS);
        }
        for (size_t i = 0; i < nbuckets; i++) {
            if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
                return ait_error_set(err, AIT_ERR_INVALID,
                                     "metrics: %s: buckets must be finite and increasing", name);
            }
        }
    }

    pthread_mutex_lock(&m->mu);
    size_t lo = 0, hi = m->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->fams[mid]->name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < m->nfams && strcmp(m->fams[lo]->name, name) == 0) {
        pthread_mutex_unlock(&m->mu);
        return ait_error_set(err, AIT_ERR_EXISTS, "metrics: %s declared twice", name);
    }
    ait_metric_family *f = ait_calloc(1, sizeof *f);
    f->type = type;
    f->name = ait_strdup(name);
    f->help = ait_strdup(help ? help : "");
    f->nlabels = nlabels;
    f->labels = ait_calloc(nlabels ? nlabels : 1, sizeof *f->labels);
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = ait_strdup(labels[i]);
    }
    if (type == AIT_METRIC_HISTOGRAM) {
        f->nbounds = nbuckets;
        f->bounds = ait_malloc(nbuckets * sizeof *f->bounds);
        memcpy(f->bounds, buckets, nbuckets * sizeof *f->bounds);
    }
    f->cb = cb;
    f->cb_ud = ud;
    ait_assert(pthread_mutex_init(&f->mu, NULL) == 0);
    for (size_t s = 0; s < AIT__SLOTS; s++) {
        atomic_init(&f->slots[s], NULL);
    }
    if (m->nfams == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->fams = ait_realloc(m->fams, m->cap * sizeof *m->fams);
    }
    memmove(&m->fams[lo + 1], &m->fams[lo], (m->nfams - lo) * sizeof *m->fams);
    m->fams[lo] = f;
    m->nfams++;
    pthread_mutex_unlock(&m->mu);

    if (nlabels == 0 && !cb) {
        (void)ait_metric_family_withv(f, NULL);
    }
    if (out) {
        *out = f;
    }
    return AIT_OK;
}

ait_status ait_metrics_add(ait_metrics *m, ait_metric_type type, const char *name, const char *help,
                           const char *const *labels, ait_metric_family **out, ait_error *err)
{
    if (type == AIT_METRIC_HISTOGRAM) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "metrics: %s: use ait_metrics_add_histogram for a histogram",
                             name ? name : "(null)");
    }
    return declare(m, type, name, help, labels, NULL, 0, NULL, NULL, out, err);
}

ait_status ait_metrics_add_histogram(ait_metrics *m, const char *name, const char *help,
                                     const char *const *labels, const double *buckets,
                                     size_t nbuckets, ait_metric_family **out, ait_error *err)
{
    if (!buckets) {
        nbuckets = 0;
    }
    return declare(m, AIT_METRIC_HISTOGRAM, name, help, labels, buckets, nbuckets, NULL, NULL, out,
                   err);
}

ait_status ait_metrics_add_func(ait_metrics *m, ait_metric_type type, const char *name,
                                const char *help, ait_metric_value_cb cb, void *ud, ait_error *err)
{
    if (!cb || type == AIT_METRIC_HISTOGRAM) {
        return ait_error_set(err, AIT_ERR_INVALID,
                             "metrics: %s: a computed metric needs a callback and is a counter "
                             "or a gauge",
                             name ? name : "(null)");
    }
    return declare(m, type, name, help, NULL, NULL, 0, cb, ud, NULL, err);
}

void ait_metric_inc(ait_metric *c)
{
    ait_metric_add(c, 1.0);
}

void ait_metric_add(ait_metric *c, double v)
{
    if (!c || c->fam->type == AIT_METRIC_HISTOGRAM) {
        return;
    }
    if (c->fam->type == AIT_METRIC_COUNTER && !(v >= 0)) {
        return; /* a counter never goes down; !(v >= 0) also catches NaN */
    }
    atomic_add_double(&c->bits, v);
}

void ait_metric_dec(ait_metric *g)
{
    if (g && g->fam->type == AIT_METRIC_GAUGE) {
        atomic_add_double(&g->bits, -1.0);
    }
}

void ait_metric_set(ait_metric *g, double v)
{
    if (g && g->fam->type == AIT_METRIC_GAUGE) {
        atomic_store_explicit(&g->bits, double_to_bits(v), memory_order_relaxed);
    }
}

void ait_metric_set_to_now(ait_metric *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ait_metric_set(g, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

void ait_metric_observe(ait_metric *h, double v)
{
    if (!h || h->fam->type != AIT_METRIC_HISTOGRAM) {
        return;
    }
    const ait_metric_family *f = h->fam;
    size_t i = 0;
    while (i < f->nbounds && !(v <= f->bounds[i])) {
        i++; /* NaN lands in +Inf, as in client_golang */
    }
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&h->bits, v);
}

double ait_metric_value(const ait_metric *c)
{
    if (!c) {
        return 0;
    }
    return bits_to_double(atomic_load_explicit((_Atomic uint64_t *)&c->bits, memory_order_relaxed));
}

unsigned long long ait_metric_count(const ait_metric *h)
{
    if (!h || h->fam->type != AIT_METRIC_HISTOGRAM) {
        return 0;
    }
    unsigned long long n = 0;
    for (size_t i = 0; i <= h->fam->nbounds; i++) {
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    }
    return n;
}

ait_status ait_metrics_format_value(ait_buf *out, double v)
{
    if (isnan(v)) {
        return ait_buf_appends(out, "NaN");
    }
    if (isinf(v)) {
        return ait_buf_appends(out, v > 0 ? "+Inf" : "-Inf");
    }
    if (v == 0) {
        return ait_buf_appends(out, signbit(v) ? "-0" : "0");
    }
    /* The shortest precision that reads back exactly (as client_golang's strconv 'g' -1), laid
     * out in plain decimals unless the exponent is < -4 or >= 21 (JavaScript's rule), so large
     * counters read as integers. Prometheus parses both layouts alike. */
    char tmp[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    const char *e = strchr(tmp, 'e');
    long x = e ? strtol(e + 1, NULL, 10) : 0;
    if (x < -4 || x >= 21) {
        return ait_buf_appends(out, tmp);
    }
    int decimals = p - 1 - (int)x;
    return ait_buf_appendf(out, "%.*f", decimals > 0 ? decimals : 0, v);
}

static ait_status append_escaped(ait_buf *out, const char *s, int quote)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *rep = NULL;
        if (*p == '\\') {
            rep = "\\\\";
        } else if (*p == '\n') {
            rep = "\\n";
        } else if (quote && *p == '"') {
            rep = "\\\"";
        }
        if (rep || !*p) {
            ait_status st = ait_buf_append(out, run, (size_t)(p - run));
            if (st == AIT_OK && rep) {
                st = ait_buf_appends(out, rep);
            }
            if (st != AIT_OK || !*p) {
                return st;
            }
            run = p + 1;
        }
    }
}

/* Writes `name[suffix]{l1="v1",...[,le="x"]} value\n`. le may be NULL. */
static ait_status append_sample(ait_buf *out, const ait_metric_family *f, const char *suffix,
                                char *const *values, const char *le, double value)
{
    ait_status st = ait_buf_appendf(out, "%s%s", f->name, suffix);
    if (st == AIT_OK && (f->nlabels || le)) {
        st = ait_buf_appends(out, "{");
        for (size_t i = 0; st == AIT_OK && i < f->nlabels; i++) {
            st = ait_buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
            if (st == AIT_OK) {
                st = append_escaped(out, values[i], 1);
            }
            if (st == AIT_OK) {
                st = ait_buf_appends(out, "\"");
            }
        }
        if (st == AIT_OK && le) {
            st = ait_buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        }
        if (st == AIT_OK) {
            st = ait_buf_appends(out, "}");
        }
    }
    if (st == AIT_OK) {
        st = ait_buf_appends(out, " ");
    }
    if (st == AIT_OK) {
        st = ait_metrics_format_value(out, value);
    }
    if (st == AIT_OK) {
        st = ait_buf_appends(out, "\n");
    }
    return st;
}

static int cmp_children(const void *a, const void *b)
{
    const ait_metric *x = *(const ait_metric *const *)a;
    const ait_metric *y = *(const ait_metric *const *)b;
    for (size_t i = 0; i < x->fam->nlabels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c) {
            return c;
        }
    }
    return 0;
}

static ait_status render_histogram(ait_buf *out, const ait_metric_family *f, ait_metric *c)
{
    unsigned long long cum = 0;
    ait_status st = AIT_OK;
    for (size_t i = 0; st == AIT_OK && i <= f->nbounds; i++) {
        cum += atomic_load_explicit(&c->counts[i], memory_order_relaxed);
        ait_buf le;
        ait_buf_init(&le, 0);
        if (i < f->nbounds) {
            st = ait_metrics_format_value(&le, f->bounds[i]);
        } else {
            st = ait_buf_appends(&le, "+Inf");
        }
        if (st == AIT_OK) {
            st = append_sample(out, f, "_bucket", c->values, ait_buf_str(&le), (double)cum);
        }
        ait_buf_free(&le);
    }
    if (st == AIT_OK) {
        st = append_sample(out, f, "_sum", c->values, NULL, ait_metric_value(c));
    }
    if (st == AIT_OK) {
        st = append_sample(out, f, "_count", c->values, NULL, (double)cum);
    }
    return st;
}

static ait_status render_family(ait_buf *out, ait_metric_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    ait_metric **kids = NULL;
    size_t n = 0;
    ait_status st = AIT_OK;

    if (!f->cb) {
        pthread_mutex_lock(&f->mu);
        size_t cap = f->nchildren;
        pthread_mutex_unlock(&f->mu);
        if (cap == 0) {
            return AIT_OK;
        }
        kids = ait_malloc(cap * sizeof *kids);
        for (size_t s = 0; s < AIT__SLOTS; s++) {
            ait_metric *c = atomic_load_explicit(&f->slots[s], memory_order_acquire);
            /* Children created after the count was read are left for the next scrape. */
            for (; c && n < cap; c = c->next) {
                kids[n++] = c;
            }
        }
        qsort(kids, n, sizeof *kids, cmp_children);
    }
    st = ait_buf_appendf(out, "# HELP %s ", f->name);
    if (st == AIT_OK) {
        st = append_escaped(out, f->help, 0);
    }
    if (st == AIT_OK) {
        st = ait_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    }
    if (f->cb) {
        if (st == AIT_OK) {
            st = append_sample(out, f, "", NULL, NULL, f->cb(f->cb_ud));
        }
        return st;
    }
    for (size_t i = 0; st == AIT_OK && i < n; i++) {
        if (f->type == AIT_METRIC_HISTOGRAM) {
            st = render_histogram(out, f, kids[i]);
        } else {
            st = append_sample(out, f, "", kids[i]->values, NULL, ait_metric_value(kids[i]));
        }
    }
    ait_free(kids);
    return st;
}

ait_status ait_metrics_render(ait_metrics *m, ait_buf *out)
{
    if (!m) {
        return AIT_OK;
    }
    ait_status st = AIT_OK;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; st == AIT_OK && i < m->nfams; i++) {
        st = render_family(out, m->fams[i]);
    }
    pthread_mutex_unlock(&m->mu);
    return st;
}

void ait_metrics_each_family(ait_metrics *m,
                             void (*fn)(const char *name, ait_metric_type type, void *ud), void *ud)
{
    if (!m || !fn) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfams; i++) {
        fn(m->fams[i]->name, m->fams[i]->type, ud);
    }
    pthread_mutex_unlock(&m->mu);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer; see buf.h for the invariants. */
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void ait_buf_init(ait_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static ait_status grow(ait_buf *b, size_t extra)
{
    if (extra > ((size_t)-1) / 2 - b->len) {
        return AIT_ERR_TOO_LARGE;
    }
    size_t need = b->len + extra;
    if (b->max != 0 && need > b->max) {
        return AIT_ERR_TOO_LARGE;
    }
    if (need + 1 <= b->cap) {
        return AIT_OK;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1) {
        cap *= 2;
    }
    b->data = ait_realloc(b->data, cap);
    b->cap = cap;
    return AIT_OK;
}

ait_status ait_buf_append(ait_buf *b, const void *p, size_t n)
{
    ait_status st = grow(b, n);
    if (st != AIT_OK) {
        return st;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return AIT_OK;
}

ait_status ait_buf_appends(ait_buf *b, const char *s)
{
    return ait_buf_append(b, s, strlen(s));
}

ait_status ait_buf_vappendf(ait_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0) {
        return AIT_ERR_INVALID;
    }
    ait_status st = grow(b, (size_t)n);
    if (st != AIT_OK) {
        return st;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return AIT_OK;
}

ait_status ait_buf_appendf(ait_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ait_status st = ait_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return st;
}

void ait_buf_consume(ait_buf *b, size_t n)
{
    if (n >= b->len) {
        ait_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void ait_buf_reset(ait_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

char *ait_buf_take(ait_buf *b)
{
    char *d = b->data ? b->data : ait_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void ait_buf_free(ait_buf *b)
{
    ait_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

const char *ait_buf_str(const ait_buf *b)
{
    return b->data ? b->data : "";
}

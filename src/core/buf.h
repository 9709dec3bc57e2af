/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer (curl's dynbuf, redis' sds). Invariant: data is NULL or holds len bytes
 * followed by a '\0', so the contents can always be used as a C string. An optional max bounds
 * the length: appends past it fail with AIT_ERR_TOO_LARGE and leave the buffer unchanged. */
#ifndef AIT_CORE_BUF_H
#define AIT_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/status.h"

typedef struct ait_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded */
} ait_buf;

/* Initialises b empty with the given bound (0 = unbounded). Allocates nothing. */
void ait_buf_init(ait_buf *b, size_t max);
/* Appends n bytes. Returns AIT_ERR_TOO_LARGE past the bound. */
ait_status ait_buf_append(ait_buf *b, const void *p, size_t n) AIT_WUR;
ait_status ait_buf_appends(ait_buf *b, const char *s) AIT_WUR;
ait_status ait_buf_appendf(ait_buf *b, const char *fmt, ...) AIT_WUR AIT_PRINTF(2, 3);
ait_status ait_buf_vappendf(ait_buf *b, const char *fmt, va_list ap) AIT_WUR AIT_PRINTF(2, 0);
/* Drops the first n bytes (n > len drops all). */
void ait_buf_consume(ait_buf *b, size_t n);
/* Empties b, keeping its memory. */
void ait_buf_reset(ait_buf *b);
/* Returns the contents, owned by the caller (free with ait_free), never NULL; b becomes empty. */
char *ait_buf_take(ait_buf *b);
/* Frees the memory; b becomes empty and reusable. */
void ait_buf_free(ait_buf *b);
/* Returns the contents as a string, "" when empty; borrowed, valid until the next change. */
const char *ait_buf_str(const ait_buf *b);

#endif

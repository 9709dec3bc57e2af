/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation wrappers that never return NULL: on failure they log one line and abort (as redis'
 * zmalloc does). In a container the kernel kills an over-limit process before malloc fails, and
 * an untestable NULL branch in every caller helps nobody. Free with ait_free() (free(NULL) is a
 * no-op). */
#ifndef AIT_CORE_ALLOC_H
#define AIT_CORE_ALLOC_H

#include <stddef.h>

void *ait_malloc(size_t n);
void *ait_calloc(size_t count, size_t size);
void *ait_realloc(void *p, size_t n);
/* Returns owned copies; ait_strdup(NULL) returns NULL. ait_strndup copies at most n bytes and
 * always terminates. */
char *ait_strdup(const char *s);
char *ait_strndup(const char *s, size_t n);
void ait_free(void *p);

/* Returns an owned string built with printf formatting. */
char *ait_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

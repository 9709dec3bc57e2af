/* SPDX-License-Identifier: Apache-2.0 */
/* ait_assert: checked in every build (never compiled out, like redis' serverAssert). A failed
 * assertion logs the expression and location as one JSON line and aborts. */
#ifndef AIT_CORE_ASSERT_H
#define AIT_CORE_ASSERT_H

__attribute__((noreturn)) void ait__assert_fail(const char *expr, const char *file, int line);

#define ait_assert(e) ((e) ? (void)0 : ait__assert_fail(#e, __FILE__, __LINE__))

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Failpoints (etcd's gofail in spirit): named places in the code where a test can make the
 * process die, to prove restart safety at exact points. Enabled only through the environment
 * variable AIT_FAILPOINTS="name1,name2" read once at start; when a listed point is reached the
 * process kills itself with SIGKILL (no cleanup, like a node loss). Costs one pointer compare
 * when the variable is unset. */
#ifndef AIT_CORE_FAILPOINT_H
#define AIT_CORE_FAILPOINT_H

/* Reads AIT_FAILPOINTS; call once from main before starting threads. */
void ait_failpoint_init(void);
/* Dies with SIGKILL if name is enabled. */
void ait_failpoint(const char *name);

#endif

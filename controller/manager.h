/* SPDX-License-Identifier: Apache-2.0 */
/* The manager wires the parts of the daemon (controller-runtime's Manager, in C): REST client,
 * informers for AITasks and their owned Pods and ConfigMaps, the work queue and its reconcile
 * workers, events, metrics and probes, and leader election. It owns every part it builds. */
#ifndef AIT_CONTROLLER_MANAGER_H
#define AIT_CONTROLLER_MANAGER_H

#include "core/status.h"
#include "options.h"

typedef struct ait_manager ait_manager;

/* Builds every part from opts (borrowed) without starting anything that talks to the cluster.
 * Bad config gives AIT_ERR_INVALID (exit 2). Returns owned in *out. */
ait_status ait_manager_new(const ait_options *opts, ait_manager **out, ait_error *err) AIT_WUR;

/* Starts serving probes and metrics, campaigns for leadership (when enabled) and, once leading,
 * starts the informers and workers. Returns at once. */
ait_status ait_manager_start(ait_manager *m, ait_error *err) AIT_WUR;

/* Blocks until a stop signal (SIGTERM/SIGINT, which the caller has blocked in every thread) or
 * the loss of leadership. Returns 0 for a clean stop, 1 when leadership was lost. */
int ait_manager_wait(ait_manager *m);

/* Stops taking work, finishes in-flight reconciles, releases the lease, stops everything.
 * Frees m. NULL is a no-op. */
void ait_manager_stop(ait_manager *m);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* The informer's cache: Kubernetes objects (json-c trees) keyed "namespace/name" ("name" when
 * cluster-scoped) in a hash map, plus an index from owner-reference UID to the keys of the objects
 * it owns. Thread-safe behind a read-write lock: any thread may read, and the writer is the one
 * informer thread. Readers get deep copies (or borrowed views inside ait_store_visit*), because
 * json-c's reference count is not atomic and its to_json_string writes a cache into the object:
 * a stored tree is never touched by two threads in a way that writes. */
#ifndef AIT_KUBE_STORE_H
#define AIT_KUBE_STORE_H

#include <json-c/json.h>
#include <stddef.h>

#include "core/status.h"

typedef struct ait_store ait_store;

typedef enum ait_store_delta {
    AIT_STORE_ADDED,
    AIT_STORE_UPDATED,
    AIT_STORE_DELETED,
} ait_store_delta;

/* Returns owned, free with ait_store_free(). */
ait_store *ait_store_new(void);
/* Frees the store and every object in it; NULL is a no-op. */
void ait_store_free(ait_store *s);

/* Returns the key of obj (borrowed): "namespace/name", or "name" when it has no namespace.
 * Returns owned (ait_free), or NULL when obj has no metadata.name. */
char *ait_store_key_of(json_object *obj);

/* Inserts or replaces the object under its key. Takes ownership of obj (frees it even on
 * failure). *old_out (may be NULL to drop it) gets the object it replaced, owned (json_object_put),
 * or NULL. AIT_ERR_INVALID when obj has no metadata.name. */
ait_status ait_store_put(ait_store *s, json_object *obj, json_object **old_out) AIT_WUR;

/* Removes key. *old_out (may be NULL) gets the removed object, owned, or NULL when it was not
 * there. Returns 1 when something was removed, else 0. */
int ait_store_delete(ait_store *s, const char *key, json_object **old_out);

/* Called by ait_store_replace() for each difference, after the new contents are visible and the
 * lock is released: ADDED (old NULL), UPDATED (resourceVersion differs), DELETED (new NULL).
 * Both objects are borrowed, valid until the callback returns, read-only. */
typedef void (*ait_store_delta_cb)(void *ctx, ait_store_delta kind, json_object *old_obj,
                                   json_object *new_obj);

/* Replaces the whole contents with items (a relist): takes ownership of the n objects and of
 * nothing else (the array itself stays the caller's); items without a name are dropped. Then
 * calls cb (may be NULL) for every object added, changed (by metadata.resourceVersion) or gone.
 * Returns the number of objects now stored. */
size_t ait_store_replace(ait_store *s, json_object **items, size_t n, ait_store_delta_cb cb,
                         void *ctx);

/* Returns an owned deep copy of the object under key (json_object_put), or NULL. */
json_object *ait_store_get(ait_store *s, const char *key);

/* Returns an owned JSON array (json_object_put) of deep copies of every object, in no order. */
json_object *ait_store_list(ait_store *s);

/* Returns an owned JSON array of deep copies of the objects with an ownerReference of uid. */
json_object *ait_store_list_by_owner(ait_store *s, const char *uid);

/* Returns the number of objects. */
size_t ait_store_len(ait_store *s);

/* Calls fn for each object (or each owned by uid) under the read lock, with borrowed objects:
 * fn must not keep or modify them, must not call json_object_get/put or
 * json_object_to_json_string* on them (copy with json_object_deep_copy instead), and must not
 * write to this store. Returns the number of objects visited. */
typedef void (*ait_store_visit_cb)(void *ctx, const char *key, json_object *obj);
size_t ait_store_visit(ait_store *s, ait_store_visit_cb fn, void *ctx);
size_t ait_store_visit_owner(ait_store *s, const char *uid, ait_store_visit_cb fn, void *ctx);

#endif

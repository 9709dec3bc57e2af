/* SPDX-License-Identifier: Apache-2.0 */
/* The informer's cache: Kubernetes objects keyed "namespace/name" ("name" when cluster-scoped) in
 * a hash map, plus an index from owner-reference UID to the keys of the objects it owns.
 * Thread-safe behind a read-write lock: any thread may read; writes come from one thread at a
 * time (the informer's). Objects are stored as compact JSON text (a json-c tree costs ~20x the
 * text), and every read hands out a fresh tree that belongs to the reader alone, so no json-c
 * object is ever shared between threads (json-c's reference count is not atomic). */
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

/* Inserts or replaces the object under its key. Borrows obj (its text is stored). *old_out (may
 * be NULL to drop it) gets the object it replaced, owned (json_object_put), or NULL.
 * AIT_ERR_INVALID when obj has no metadata.name. */
ait_status ait_store_put(ait_store *s, json_object *obj, json_object **old_out) AIT_WUR;

/* Removes key. *old_out (may be NULL) gets the removed object, owned, or NULL when it was not
 * there. Returns 1 when something was removed, else 0. */
int ait_store_delete(ait_store *s, const char *key, json_object **old_out);

/* Called by ait_store_replace() for each difference, after the new contents are visible and the
 * lock is released: ADDED (old NULL), UPDATED (resourceVersion differs), DELETED (new NULL).
 * Both objects are fresh trees, borrowed, valid until the callback returns (old_obj is the last
 * stored state). */
typedef void (*ait_store_delta_cb)(void *ctx, ait_store_delta kind, json_object *old_obj,
                                   json_object *new_obj);

/* Replaces the whole contents with items (a relist) atomically for readers: borrows the n
 * objects; items without a name are skipped (a later duplicate key wins). Then calls cb (may be
 * NULL) for every object added, changed (by metadata.resourceVersion) or gone. Returns the
 * number of objects now stored. */
size_t ait_store_replace(ait_store *s, json_object **items, size_t n, ait_store_delta_cb cb,
                         void *ctx);

/* A relist built page by page: objects are added as text, so a list of many objects never
 * exists as json-c trees all at once. Returns owned, free with ait_store_batch_free() (or hand
 * it to ait_store_replace_batch()). */
typedef struct ait_store_batch ait_store_batch;
ait_store_batch *ait_store_batch_new(void);
void ait_store_batch_free(ait_store_batch *b);
/* Adds obj (borrowed) under its key; a later object with the same key wins. AIT_ERR_INVALID
 * when it has no metadata.name. */
ait_status ait_store_batch_add(ait_store_batch *b, json_object *obj);
size_t ait_store_batch_len(const ait_store_batch *b);
/* As ait_store_replace(), from a batch; takes ownership of b. */
size_t ait_store_replace_batch(ait_store *s, ait_store_batch *b, ait_store_delta_cb cb, void *ctx);

/* Returns the object under key as a new tree, owned (json_object_put), or NULL. */
json_object *ait_store_get(ait_store *s, const char *key);

/* Returns an owned JSON array (json_object_put) of every object (fresh trees), in no order. */
json_object *ait_store_list(ait_store *s);

/* Returns an owned JSON array of the objects with an ownerReference of uid (fresh trees). */
json_object *ait_store_list_by_owner(ait_store *s, const char *uid);

/* Returns the number of objects. */
size_t ait_store_len(ait_store *s);

/* Calls fn for each object (or each owned by uid) of a consistent snapshot, on the caller's
 * thread and outside the lock. obj is a fresh tree, borrowed, valid until fn returns; fn may
 * modify it or keep it with json_object_get(). Returns the number of objects visited. */
typedef void (*ait_store_visit_cb)(void *ctx, const char *key, json_object *obj);
size_t ait_store_visit(ait_store *s, ait_store_visit_cb fn, void *ctx);
size_t ait_store_visit_owner(ait_store *s, const char *uid, ait_store_visit_cb fn, void *ctx);

#endif

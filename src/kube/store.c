/* SPDX-License-Identifier: Apache-2.0 */
/* The object cache: two string-keyed hash maps with separate chaining (objects by key, key lists
 * by owner UID), both guarded by one pthread rwlock. The owner index always holds exactly the
 * keys of stored objects whose ownerReferences name that UID. */
#include "kube/store.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"

typedef struct map_node {
    char *key; /* owned */
    uint64_t hash;
    void *val;
    struct map_node *next;
} map_node;

typedef struct strmap {
    map_node **slots;
    size_t nslots; /* a power of two, or 0 before the first insert */
    size_t count;
} strmap;

/* A stored object and the owner UIDs it was indexed under. */
typedef struct obj_entry {
    json_object *obj;
    char **owners;
    size_t n_owners;
} obj_entry;

/* The keys of the objects owned by one UID. */
typedef struct key_list {
    char **keys;
    size_t n;
    size_t cap;
} key_list;

struct ait_store {
    pthread_rwlock_t lock;
    strmap objects; /* key -> obj_entry */
    strmap owners;  /* uid -> key_list */
};

/* FNV-1a, 64 bit. */
static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static map_node **map_find(strmap *m, const char *key, uint64_t h)
{
    if (m->nslots == 0) {
        return NULL;
    }
    map_node **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp != NULL) {
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0) {
            return pp;
        }
        pp = &(*pp)->next;
    }
    return pp;
}

static void *map_get(strmap *m, const char *key)
{
    map_node **pp = map_find(m, key, hash_str(key));
    return (pp != NULL && *pp != NULL) ? (*pp)->val : NULL;
}

static void map_grow(strmap *m)
{
    size_t n = m->nslots == 0 ? 64 : m->nslots * 2;
    map_node **slots = ait_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++) {
        map_node *node = m->slots[i];
        while (node != NULL) {
            map_node *next = node->next;
            size_t j = node->hash & (n - 1);
            node->next = slots[j];
            slots[j] = node;
            node = next;
        }
    }
    ait_free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

/* Sets key to val. Returns the value it replaced, or NULL. key is copied. */
static void *map_put(strmap *m, const char *key, void *val)
{
    uint64_t h = hash_str(key);
    map_node **pp = map_find(m, key, h);
    if (pp != NULL && *pp != NULL) {
        void *old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    if (m->count + 1 > m->nslots) {
        map_grow(m);
    }
    map_node *node = ait_malloc(sizeof(*node));
    node->key = ait_strdup(key);
    node->hash = h;
    node->val = val;
    size_t j = h & (m->nslots - 1);
    node->next = m->slots[j];
    m->slots[j] = node;
    m->count++;
    return NULL;
}

/* Removes key and returns its value, or NULL. */
static void *map_remove(strmap *m, const char *key)
{
    map_node **pp = map_find(m, key, hash_str(key));
    if (pp == NULL || *pp == NULL) {
        return NULL;
    }
    map_node *node = *pp;
    void *val = node->val;
    *pp = node->next;
    ait_free(node->key);
    ait_free(node);
    m->count--;
    return val;
}

typedef void (*map_each_cb)(void *ctx, const char *key, void *val);

static void map_each(strmap *m, map_each_cb fn, void *ctx)
{
    for (size_t i = 0; i < m->nslots; i++) {
        for (map_node *node = m->slots[i]; node != NULL; node = node->next) {
            fn(ctx, node->key, node->val);
        }
    }
}

/* Frees the nodes and keys; free_val (may be NULL) is called for each value. */
static void map_clear(strmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nslots; i++) {
        map_node *node = m->slots[i];
        while (node != NULL) {
            map_node *next = node->next;
            if (free_val != NULL) {
                free_val(node->val);
            }
            ait_free(node->key);
            ait_free(node);
            node = next;
        }
    }
    ait_free(m->slots);
    memset(m, 0, sizeof(*m));
}

static void entry_free(void *p)
{
    obj_entry *e = p;
    if (e == NULL) {
        return;
    }
    json_object_put(e->obj);
    for (size_t i = 0; i < e->n_owners; i++) {
        ait_free(e->owners[i]);
    }
    ait_free(e->owners);
    ait_free(e);
}

/* Frees the entry but hands its object to the caller. */
static json_object *entry_take(obj_entry *e)
{
    json_object *obj = e->obj;
    e->obj = NULL;
    entry_free(e);
    return obj;
}

static void key_list_free(void *p)
{
    key_list *kl = p;
    if (kl == NULL) {
        return;
    }
    for (size_t i = 0; i < kl->n; i++) {
        ait_free(kl->keys[i]);
    }
    ait_free(kl->keys);
    ait_free(kl);
}

static obj_entry *entry_new(json_object *obj)
{
    obj_entry *e = ait_calloc(1, sizeof(*e));
    e->obj = obj;
    json_object *refs = ait_json_array(obj, "metadata.ownerReferences");
    size_t n = refs != NULL ? json_object_array_length(refs) : 0;
    if (n > 0) {
        e->owners = ait_calloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            const char *uid = ait_json_str(json_object_array_get_idx(refs, i), "uid");
            int dup = 0;
            for (size_t j = 0; uid != NULL && j < e->n_owners; j++) {
                dup |= strcmp(e->owners[j], uid) == 0;
            }
            if (uid != NULL && *uid != '\0' && !dup) {
                e->owners[e->n_owners++] = ait_strdup(uid);
            }
        }
    }
    return e;
}

static void index_add(strmap *owners, const obj_entry *e, const char *key)
{
    for (size_t i = 0; i < e->n_owners; i++) {
        key_list *kl = map_get(owners, e->owners[i]);
        if (kl == NULL) {
            kl = ait_calloc(1, sizeof(*kl));
            map_put(owners, e->owners[i], kl);
        }
        if (kl->n == kl->cap) {
            kl->cap = kl->cap == 0 ? 4 : kl->cap * 2;
            kl->keys = ait_realloc(kl->keys, kl->cap * sizeof(char *));
        }
        kl->keys[kl->n++] = ait_strdup(key);
    }
}

static void index_remove(strmap *owners, const obj_entry *e, const char *key)
{
    for (size_t i = 0; i < e->n_owners; i++) {
        key_list *kl = map_get(owners, e->owners[i]);
        if (kl == NULL) {
            continue;
        }
        for (size_t j = 0; j < kl->n; j++) {
            if (strcmp(kl->keys[j], key) == 0) {
                ait_free(kl->keys[j]);
                kl->keys[j] = kl->keys[--kl->n];
                break;
            }
        }
        if (kl->n == 0) {
            key_list_free(map_remove(owners, e->owners[i]));
        }
    }
}

ait_store *ait_store_new(void)
{
    ait_store *s = ait_calloc(1, sizeof(*s));
    int rc = pthread_rwlock_init(&s->lock, NULL);
    ait_assert(rc == 0);
    return s;
}

void ait_store_free(ait_store *s)
{
    if (s == NULL) {
        return;
    }
    map_clear(&s->objects, entry_free);
    map_clear(&s->owners, key_list_free);
    pthread_rwlock_destroy(&s->lock);
    ait_free(s);
}

char *ait_store_key_of(json_object *obj)
{
    const char *name = ait_json_str(obj, "metadata.name");
    if (name == NULL || *name == '\0') {
        return NULL;
    }
    const char *ns = ait_json_str(obj, "metadata.namespace");
    if (ns == NULL || *ns == '\0') {
        return ait_strdup(name);
    }
    return ait_asprintf("%s/%s", ns, name);
}

ait_status ait_store_put(ait_store *s, json_object *obj, json_object **old_out)
{
    if (old_out != NULL) {
        *old_out = NULL;
    }
    char *key = ait_store_key_of(obj);
    if (key == NULL) {
        json_object_put(obj);
        return AIT_ERR_INVALID;
    }
    obj_entry *e = entry_new(obj);
    pthread_rwlock_wrlock(&s->lock);
    obj_entry *old = map_put(&s->objects, key, e);
    if (old != NULL) {
        index_remove(&s->owners, old, key);
    }
    index_add(&s->owners, e, key);
    pthread_rwlock_unlock(&s->lock);
    if (old != NULL) {
        json_object *o = entry_take(old);
        if (old_out != NULL) {
            *old_out = o;
        } else {
            json_object_put(o);
        }
    }
    ait_free(key);
    return AIT_OK;
}

int ait_store_delete(ait_store *s, const char *key, json_object **old_out)
{
    if (old_out != NULL) {
        *old_out = NULL;
    }
    pthread_rwlock_wrlock(&s->lock);
    obj_entry *old = map_remove(&s->objects, key);
    if (old != NULL) {
        index_remove(&s->owners, old, key);
    }
    pthread_rwlock_unlock(&s->lock);
    if (old == NULL) {
        return 0;
    }
    json_object *o = entry_take(old);
    if (old_out != NULL) {
        *old_out = o;
    } else {
        json_object_put(o);
    }
    return 1;
}

typedef struct diff_ctx {
    strmap *other;
    ait_store_delta_cb cb;
    void *ctx;
} diff_ctx;

static int same_version(json_object *a, json_object *b)
{
    const char *ra = ait_json_str(a, "metadata.resourceVersion");
    const char *rb = ait_json_str(b, "metadata.resourceVersion");
    return ra != NULL && rb != NULL && strcmp(ra, rb) == 0;
}

/* Over the new map: other is the old one. */
static void diff_new(void *p, const char *key, void *val)
{
    diff_ctx *d = p;
    obj_entry *now = val;
    obj_entry *before = map_get(d->other, key);
    if (before == NULL) {
        d->cb(d->ctx, AIT_STORE_ADDED, NULL, now->obj);
    } else if (!same_version(before->obj, now->obj)) {
        d->cb(d->ctx, AIT_STORE_UPDATED, before->obj, now->obj);
    }
}

/* Over the old map: other is the new one. */
static void diff_old(void *p, const char *key, void *val)
{
    diff_ctx *d = p;
    obj_entry *before = val;
    if (map_get(d->other, key) == NULL) {
        d->cb(d->ctx, AIT_STORE_DELETED, before->obj, NULL);
    }
}

size_t ait_store_replace(ait_store *s, json_object **items, size_t n, ait_store_delta_cb cb,
                         void *ctx)
{
    strmap objects = {0};
    strmap owners = {0};
    for (size_t i = 0; i < n; i++) {
        char *key = ait_store_key_of(items[i]);
        if (key == NULL) {
            json_object_put(items[i]);
            continue;
        }
        obj_entry *e = entry_new(items[i]);
        obj_entry *dup = map_put(&objects, key, e);
        if (dup != NULL) {
            index_remove(&owners, dup, key);
            entry_free(dup);
        }
        index_add(&owners, e, key);
        ait_free(key);
    }
    pthread_rwlock_wrlock(&s->lock);
    strmap old_objects = s->objects;
    strmap old_owners = s->owners;
    s->objects = objects;
    s->owners = owners;
    size_t count = objects.count;
    pthread_rwlock_unlock(&s->lock);

    if (cb != NULL) {
        /* Only the writer thread changes the maps, so reading the new one unlocked is safe. */
        diff_ctx d = {.other = &old_objects, .cb = cb, .ctx = ctx};
        map_each(&objects, diff_new, &d);
        d.other = &objects;
        map_each(&old_objects, diff_old, &d);
    }
    map_clear(&old_objects, entry_free);
    map_clear(&old_owners, key_list_free);
    return count;
}

json_object *ait_store_get(ait_store *s, const char *key)
{
    json_object *copy = NULL;
    pthread_rwlock_rdlock(&s->lock);
    obj_entry *e = map_get(&s->objects, key);
    if (e != NULL && json_object_deep_copy(e->obj, &copy, NULL) != 0) {
        copy = NULL;
    }
    pthread_rwlock_unlock(&s->lock);
    return copy;
}

static void copy_into(void *ctx, const char *key, json_object *obj)
{
    (void)key;
    json_object *copy = NULL;
    if (json_object_deep_copy(obj, &copy, NULL) == 0) {
        json_object_array_add(ctx, copy);
    }
}

json_object *ait_store_list(ait_store *s)
{
    json_object *arr = json_object_new_array();
    ait_store_visit(s, copy_into, arr);
    return arr;
}

json_object *ait_store_list_by_owner(ait_store *s, const char *uid)
{
    json_object *arr = json_object_new_array();
    ait_store_visit_owner(s, uid, copy_into, arr);
    return arr;
}

size_t ait_store_len(ait_store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->objects.count;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

typedef struct visit_ctx {
    ait_store_visit_cb fn;
    void *ctx;
    size_t n;
} visit_ctx;

static void visit_one(void *p, const char *key, void *val)
{
    visit_ctx *v = p;
    v->fn(v->ctx, key, ((obj_entry *)val)->obj);
    v->n++;
}

size_t ait_store_visit(ait_store *s, ait_store_visit_cb fn, void *ctx)
{
    visit_ctx v = {.fn = fn, .ctx = ctx};
    pthread_rwlock_rdlock(&s->lock);
    map_each(&s->objects, visit_one, &v);
    pthread_rwlock_unlock(&s->lock);
    return v.n;
}

size_t ait_store_visit_owner(ait_store *s, const char *uid, ait_store_visit_cb fn, void *ctx)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&s->lock);
    key_list *kl = map_get(&s->owners, uid);
    for (size_t i = 0; kl != NULL && i < kl->n; i++) {
        obj_entry *e = map_get(&s->objects, kl->keys[i]);
        if (e != NULL) {
            fn(ctx, kl->keys[i], e->obj);
            n++;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return n;
}

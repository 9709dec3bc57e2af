/* SPDX-License-Identifier: Apache-2.0 */
/* The object cache: two string-keyed hash maps with separate chaining (objects by key, key lists
 * by owner UID), both guarded by one pthread rwlock. Objects are kept as compact JSON text, not
 * as json-c trees: a json-c tree of a Pod takes ~20x its text (a 16-slot hash table per JSON
 * object), which would break SPEC §9's memory bound; reads parse a private tree instead. The
 * owner index always holds exactly the keys of stored objects whose ownerReferences name that
 * UID. */
#include "kube/store.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/json.h"

/* As the watch decoder: Kubernetes objects can nest deeper than json-c's default of 32. */
#define STORE_JSON_DEPTH 64

typedef struct map_node {
    char *key; /* owned, unless the map borrows its keys */
    uint64_t hash;
    void *val;
    struct map_node *next;
} map_node;

typedef struct strmap {
    map_node **slots;
    size_t nslots; /* a power of two, or 0 before the first insert */
    size_t count;
    /* The keys belong to the values (the object maps: each key lives in its entry), so the map
     * neither copies nor frees them, and a put that replaces a value takes the new key. */
    int borrow_keys;
} strmap;

/* A stored object in one allocation (per-allocation overhead was a third of a pruned pod's
 * cost): the header, the owner UID pointers, then the key, the JSON text, the resourceVersion
 * and the owner UIDs, each NUL-terminated. */
typedef struct obj_entry {
    const char *key;
    const char *json;
    size_t len;     /* of json */
    const char *rv; /* metadata.resourceVersion, or NULL */
    const char **owners;
    size_t n_owners;
    char data[];
} obj_entry;

/* The keys of the objects owned by one UID; borrowed from their entries, which stay in the store
 * as long as they are listed here. */
typedef struct key_list {
    const char **keys;
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
        if (m->borrow_keys) {
            (*pp)->key = (char *)key; /* the old value, which held the old key, goes */
        }
        return old;
    }
    if (m->count + 1 > m->nslots) {
        map_grow(m);
    }
    map_node *node = ait_malloc(sizeof(*node));
    node->key = m->borrow_keys ? (char *)key : ait_strdup(key);
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
    if (!m->borrow_keys) {
        ait_free(node->key);
    }
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
            if (!m->borrow_keys) {
                ait_free(node->key);
            }
            if (free_val != NULL) {
                free_val(node->val);
            }
            ait_free(node);
            node = next;
        }
    }
    ait_free(m->slots);
    int borrow = m->borrow_keys;
    memset(m, 0, sizeof(*m));
    m->borrow_keys = borrow;
}

static void entry_free(void *p)
{
    ait_free(p);
}

/* Parses stored text into a new tree, owned by the caller. The text was written by json-c from a
 * valid tree, so failure means a broken invariant. */
static json_object *text_parse(const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(STORE_JSON_DEPTH);
    ait_assert(tok != NULL);
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    ait_assert(o != NULL && json_tokener_get_error(tok) == json_tokener_success);
    json_tokener_free(tok);
    return o;
}

static json_object *entry_parse(const obj_entry *e)
{
    return text_parse(e->json, e->len);
}

/* Hands the entry's object to *out as a tree (when out is non-NULL) and frees the entry. */
static void entry_release(obj_entry *e, json_object **out)
{
    if (out != NULL) {
        *out = entry_parse(e);
    }
    entry_free(e);
}

static void key_list_free(void *p)
{
    key_list *kl = p;
    if (kl == NULL) {
        return;
    }
    ait_free(kl->keys);
    ait_free(kl);
}

/* Copies s (with its NUL) to *pp, advances *pp, returns the copy. */
static const char *put_str(char **pp, const char *s, size_t n)
{
    char *out = *pp;
    memcpy(out, s, n);
    out[n] = '\0';
    *pp += n + 1;
    return out;
}

/* Builds the entry of obj under key (copied). */
static obj_entry *entry_new(json_object *obj, const char *key)
{
    size_t len = 0;
    const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    ait_assert(text != NULL && len < (size_t)INT32_MAX);
    const char *rv = ait_json_str(obj, "metadata.resourceVersion");
    /* The distinct non-empty owner UIDs, in order. */
    json_object *refs = ait_json_array(obj, "metadata.ownerReferences");
    size_t nrefs = refs != NULL ? json_object_array_length(refs) : 0;
    const char *few[8];
    const char **uids = nrefs <= 8 ? few : ait_calloc(nrefs, sizeof(char *));
    size_t n_owners = 0, uid_bytes = 0;
    for (size_t i = 0; i < nrefs; i++) {
        const char *uid = ait_json_str(json_object_array_get_idx(refs, i), "uid");
        int dup = 0;
        for (size_t j = 0; uid != NULL && j < n_owners; j++) {
            dup |= strcmp(uids[j], uid) == 0;
        }
        if (uid != NULL && *uid != '\0' && !dup) {
            uids[n_owners++] = uid;
            uid_bytes += strlen(uid) + 1;
        }
    }
    size_t klen = strlen(key);
    size_t rvlen = rv != NULL ? strlen(rv) : 0;
    size_t size = sizeof(obj_entry) + n_owners * sizeof(char *) + klen + 1 + len + 1 +
                  (rv != NULL ? rvlen + 1 : 0) + uid_bytes;
    obj_entry *e = ait_malloc(size);
    e->owners = (const char **)(void *)e->data;
    e->n_owners = n_owners;
    char *p = e->data + n_owners * sizeof(char *);
    e->key = put_str(&p, key, klen);
    e->json = put_str(&p, text, len);
    e->len = len;
    e->rv = rv != NULL ? put_str(&p, rv, rvlen) : NULL;
    for (size_t i = 0; i < n_owners; i++) {
        e->owners[i] = put_str(&p, uids[i], strlen(uids[i]));
    }
    ait_assert((size_t)(p - (char *)e) == size);
    if (uids != few) {
        ait_free(uids);
    }
    return e;
}

/* Lists e under each of its owners (the entry's own key is borrowed). */
static void index_add(strmap *owners, const obj_entry *e)
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
        kl->keys[kl->n++] = e->key;
    }
}

static void index_remove(strmap *owners, const obj_entry *e)
{
    for (size_t i = 0; i < e->n_owners; i++) {
        key_list *kl = map_get(owners, e->owners[i]);
        if (kl == NULL) {
            continue;
        }
        for (size_t j = 0; j < kl->n; j++) {
            if (strcmp(kl->keys[j], e->key) == 0) {
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
    s->objects.borrow_keys = 1;
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
        return AIT_ERR_INVALID;
    }
    obj_entry *e = entry_new(obj, key);
    pthread_rwlock_wrlock(&s->lock);
    obj_entry *old = map_put(&s->objects, e->key, e);
    if (old != NULL) {
        index_remove(&s->owners, old);
    }
    index_add(&s->owners, e);
    pthread_rwlock_unlock(&s->lock);
    if (old != NULL) {
        entry_release(old, old_out);
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
        index_remove(&s->owners, old);
    }
    pthread_rwlock_unlock(&s->lock);
    if (old == NULL) {
        return 0;
    }
    entry_release(old, old_out);
    return 1;
}

struct ait_store_batch {
    strmap objects;
    strmap owners;
};

ait_store_batch *ait_store_batch_new(void)
{
    ait_store_batch *b = ait_calloc(1, sizeof(ait_store_batch));
    b->objects.borrow_keys = 1;
    return b;
}

void ait_store_batch_free(ait_store_batch *b)
{
    if (b == NULL) {
        return;
    }
    map_clear(&b->objects, entry_free);
    map_clear(&b->owners, key_list_free);
    ait_free(b);
}

ait_status ait_store_batch_add(ait_store_batch *b, json_object *obj)
{
    char *key = ait_store_key_of(obj);
    if (key == NULL) {
        return AIT_ERR_INVALID;
    }
    obj_entry *e = entry_new(obj, key);
    obj_entry *dup = map_put(&b->objects, e->key, e);
    if (dup != NULL) {
        index_remove(&b->owners, dup);
        entry_free(dup);
    }
    index_add(&b->owners, e);
    ait_free(key);
    return AIT_OK;
}

size_t ait_store_batch_len(const ait_store_batch *b)
{
    return b->objects.count;
}

typedef struct diff_ctx {
    strmap *other;
    ait_store_delta_cb cb;
    void *ctx;
} diff_ctx;

static int same_version(const obj_entry *a, const obj_entry *b)
{
    return a->rv != NULL && b->rv != NULL && strcmp(a->rv, b->rv) == 0;
}

/* Over the new map: other is the old one. Trees are parsed one at a time, so a relist of many
 * objects never holds more than two trees. */
static void diff_new(void *p, const char *key, void *val)
{
    diff_ctx *d = p;
    obj_entry *now = val;
    obj_entry *before = map_get(d->other, key);
    if (before != NULL && same_version(before, now)) {
        return;
    }
    json_object *tree = entry_parse(now);
    if (before == NULL) {
        d->cb(d->ctx, AIT_STORE_ADDED, NULL, tree);
    } else {
        json_object *old = entry_parse(before);
        d->cb(d->ctx, AIT_STORE_UPDATED, old, tree);
        json_object_put(old);
    }
    json_object_put(tree);
}

/* Over the old map: other is the new one. */
static void diff_old(void *p, const char *key, void *val)
{
    diff_ctx *d = p;
    obj_entry *before = val;
    if (map_get(d->other, key) == NULL) {
        json_object *old = entry_parse(before);
        d->cb(d->ctx, AIT_STORE_DELETED, old, NULL);
        json_object_put(old);
    }
}

size_t ait_store_replace_batch(ait_store *s, ait_store_batch *b, ait_store_delta_cb cb, void *ctx)
{
    pthread_rwlock_wrlock(&s->lock);
    strmap old_objects = s->objects;
    strmap old_owners = s->owners;
    s->objects = b->objects;
    s->owners = b->owners;
    size_t count = s->objects.count;
    pthread_rwlock_unlock(&s->lock);
    strmap *objects = &s->objects;
    ait_free(b);

    if (cb != NULL) {
        /* Only the writer thread changes the maps, so reading the new one unlocked is safe. */
        diff_ctx d = {.other = &old_objects, .cb = cb, .ctx = ctx};
        map_each(objects, diff_new, &d);
        d.other = objects;
        map_each(&old_objects, diff_old, &d);
    }
    map_clear(&old_objects, entry_free);
    map_clear(&old_owners, key_list_free);
    return count;
}

size_t ait_store_replace(ait_store *s, json_object **items, size_t n, ait_store_delta_cb cb,
                         void *ctx)
{
    ait_store_batch *b = ait_store_batch_new();
    for (size_t i = 0; i < n; i++) {
        (void)ait_store_batch_add(b, items[i]); /* nameless items are skipped */
    }
    return ait_store_replace_batch(s, b, cb, ctx);
}

json_object *ait_store_get(ait_store *s, const char *key)
{
    json_object *copy = NULL;
    pthread_rwlock_rdlock(&s->lock);
    obj_entry *e = map_get(&s->objects, key);
    if (e != NULL) {
        copy = entry_parse(e);
    }
    pthread_rwlock_unlock(&s->lock);
    return copy;
}

static void copy_into(void *ctx, const char *key, json_object *obj)
{
    (void)key;
    /* The visitor's tree is private to this call: keep a reference instead of copying. */
    json_object_array_add(ctx, json_object_get(obj));
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

/* A consistent copy of some entries' text, taken under the read lock and parsed after it, so
 * readers never hold the writer up for the parsing. */
typedef struct snapshot {
    char **keys;
    char **texts;
    size_t *lens;
    size_t n;
} snapshot;

static void snap_add(snapshot *sn, const char *key, const obj_entry *e)
{
    sn->keys[sn->n] = ait_strdup(key);
    sn->texts[sn->n] = ait_malloc(e->len + 1);
    memcpy(sn->texts[sn->n], e->json, e->len + 1);
    sn->lens[sn->n] = e->len;
    sn->n++;
}

static void snap_each(void *p, const char *key, void *val)
{
    snap_add(p, key, val);
}

static void snap_alloc(snapshot *sn, size_t cap)
{
    sn->keys = ait_calloc(cap + 1, sizeof(char *));
    sn->texts = ait_calloc(cap + 1, sizeof(char *));
    sn->lens = ait_calloc(cap + 1, sizeof(size_t));
    sn->n = 0;
}

/* Calls fn with a fresh tree per entry, then frees the snapshot. */
static size_t snap_visit(snapshot *sn, ait_store_visit_cb fn, void *ctx)
{
    for (size_t i = 0; i < sn->n; i++) {
        json_object *tree = text_parse(sn->texts[i], sn->lens[i]);
        fn(ctx, sn->keys[i], tree);
        json_object_put(tree);
        ait_free(sn->keys[i]);
        ait_free(sn->texts[i]);
    }
    ait_free(sn->keys);
    ait_free(sn->texts);
    ait_free(sn->lens);
    return sn->n;
}

size_t ait_store_visit(ait_store *s, ait_store_visit_cb fn, void *ctx)
{
    snapshot sn;
    pthread_rwlock_rdlock(&s->lock);
    snap_alloc(&sn, s->objects.count);
    map_each(&s->objects, snap_each, &sn);
    pthread_rwlock_unlock(&s->lock);
    return snap_visit(&sn, fn, ctx);
}

size_t ait_store_visit_owner(ait_store *s, const char *uid, ait_store_visit_cb fn, void *ctx)
{
    snapshot sn;
    pthread_rwlock_rdlock(&s->lock);
    key_list *kl = map_get(&s->owners, uid);
    snap_alloc(&sn, kl != NULL ? kl->n : 0);
    for (size_t i = 0; kl != NULL && i < kl->n; i++) {
        obj_entry *e = map_get(&s->objects, kl->keys[i]);
        if (e != NULL) {
            snap_add(&sn, kl->keys[i], e);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return snap_visit(&sn, fn, ctx);
}

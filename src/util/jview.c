/*
 * jview.c — builds flat views of jansson documents (see jview.h).
 *
 * The memory is a list of blocks that a reset keeps: a document reused for event after
 * event stops calling malloc once its blocks fit the largest event seen.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/jview.h"

typedef struct jblock {
    struct jblock *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
} jblock_t;

struct jview_doc {
    jblock_t *head, *cur;
};

enum { JVIEW_BLOCK = 16 * 1024 };

jview_doc_t *jview_doc_new(void) { return calloc(1, sizeof(jview_doc_t)); }

void jview_doc_reset(jview_doc_t *d)
{
    for (jblock_t *b = d->head; b; b = b->next)
        b->used = 0;
    d->cur = d->head;
}

void jview_doc_free(jview_doc_t *d)
{
    if (!d)
        return;
    for (jblock_t *b = d->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(d);
}

/* Blocks after cur are unused (cur only moves forward; new blocks go right after it). */
static void *alloc(jview_doc_t *d, size_t n, size_t align)
{
    for (jblock_t *b = d->cur; b; b = b->next) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->size && b->size - at >= n) {
            b->used = at + n;
            d->cur = b;
            return b->data + at;
        }
    }
    size_t size = n > JVIEW_BLOCK ? n : JVIEW_BLOCK;
    jblock_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    b->used = n;
    if (d->cur) { /* after cur: the blocks behind it are still unused after a reset */
        b->next = d->cur->next;
        d->cur->next = b;
    } else {
        b->next = d->head;
        d->head = b;
    }
    d->cur = b;
    return b->data;
}

static bool build(jview_doc_t *d, const json_t *j, jview_t *out, unsigned depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth >= JVIEW_MAX_DEPTH)
            return false;
        size_t n = json_object_size(j);
        if (n > UINT32_MAX / 2)
            return false;
        bool indexed = n >= JVIEW_INDEX_MIN && n <= JVIEW_INDEX_MAX;
        unsigned bits = indexed ? jview_index_bits((uint32_t)n) : 0;
        size_t tab = indexed ? ((size_t)1 << bits) * sizeof(uint16_t) : 0;
        unsigned char *mem = alloc(d, tab + n * sizeof(jview_member_t) + 1,
                                   _Alignof(jview_member_t));
        if (!mem)
            return false;
        jview_member_t *m = (jview_member_t *)(void *)(mem + tab);
        if (indexed)
            memset(mem, 0, tab);
        *out = (jview_t){.type = JV_OBJ, .n = (uint32_t)n, .u.m = m};
        size_t i = 0;
        for (void *it = json_object_iter((json_t *)j); it && i < n;
             it = json_object_iter_next((json_t *)j, it), i++) {
            const char *k = json_object_iter_key(it);
            size_t kn = json_object_iter_key_len(it);
            char *key = alloc(d, kn + 1, 1);
            if (!key)
                return false;
            memcpy(key, k, kn + 1);
            m[i].key = key;
            m[i].keylen = (uint32_t)kn;
            m[i].head = jview_key_head(key, kn);
            m[i].hash = jview_key_hash(m[i].head, kn);
            if (indexed) {
                uint16_t *slots = (uint16_t *)(void *)mem;
                uint32_t mask = (1u << bits) - 1, h = jview_index_slot(m[i].hash, bits);
                while (slots[h])
                    h = (h + 1) & mask;
                slots[h] = (uint16_t)(i + 1);
            }
            if (!build(d, json_object_iter_value(it), &m[i].v, depth + 1))
                return false;
        }
        return true;
    }
    case JSON_ARRAY: {
        if (depth >= JVIEW_MAX_DEPTH)
            return false;
        size_t n = json_array_size(j);
        if (n > UINT32_MAX)
            return false;
        jview_t *a = alloc(d, n * sizeof *a + 1, _Alignof(jview_t));
        if (!a)
            return false;
        *out = (jview_t){.type = JV_ARR, .n = (uint32_t)n, .u.a = a};
        for (size_t i = 0; i < n; i++)
            if (!build(d, json_array_get(j, i), &a[i], depth + 1))
                return false;
        return true;
    }
    case JSON_STRING:
        *out = (jview_t){.type = JV_STR, .n = (uint32_t)json_string_length(j),
                         .u.s = json_string_value(j)};
        return json_string_length(j) <= UINT32_MAX;
    case JSON_INTEGER:
        *out = (jview_t){.type = JV_INT, .u.i = json_integer_value(j)};
        return true;
    case JSON_REAL: {
        double x = json_real_value(j);
        *out = (jview_t){.type = JV_REAL, .integral = isfinite(x) && x == floor(x), .u.d = x};
        return true;
    }
    case JSON_TRUE:
        *out = (jview_t){.type = JV_TRUE};
        return true;
    case JSON_FALSE:
        *out = (jview_t){.type = JV_FALSE};
        return true;
    default:
        *out = (jview_t){.type = JV_NULL};
        return true;
    }
}

const jview_t *jview_add(jview_doc_t *d, const json_t *j)
{
    jview_t *root = j ? alloc(d, sizeof *root, _Alignof(jview_t)) : NULL;
    if (!root || !build(d, j, root, 0))
        return NULL;
    return root;
}

const jview_t *jview_get(const jview_t *obj, const char *key, size_t n)
{
    if (obj->type != JV_OBJ)
        return NULL;
    uint64_t head = jview_key_head(key, n);
    const jview_member_t *m = jview_find(obj, key, n, head, jview_key_hash(head, n));
    return m ? &m->v : NULL;
}

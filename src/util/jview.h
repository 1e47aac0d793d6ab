/*
 * jview — a flat, read-only view of a jansson document, built in one walk, for code
 * that reads the same event many times (the JSON Schema validator; later the data
 * plane).
 *
 * Why: reading a jansson value costs a call per step (json_object_iter_next, _key,
 * _key_len, _value) and a hash-table probe per json_object_get, about 10 ns each;
 * a validator that touches 20 to 60 members of an event spends most of its time
 * there. In a view an object is one contiguous array of {key, value} members with
 * the key's length and first/last bytes precomputed, an array is one contiguous
 * array of values, and the type, string length and number sit in the value itself:
 * reading a member is a load, not a call.
 *
 *     jview_doc_t *d = jview_doc_new();
 *     const jview_t *v = jview_add(d, event);   // NULL: out of memory or too deep
 *     ... read v ...
 *     jview_doc_reset(d);                       // forget the views, keep the memory
 *     jview_doc_free(d);
 *
 * A view borrows the jansson document's string values, and copies its keys next to
 * the members (comparing keys is the hot path: the copies are dense in cache). The
 * document must outlive the view and stay unchanged.
 * A view is immutable once built and may be read by any number of threads.
 */
#ifndef MANIFOLD_JVIEW_H
#define MANIFOLD_JVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

typedef enum jview_type {
    JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_REAL, JV_STR, JV_ARR, JV_OBJ,
} jview_type_t;

typedef struct jview_member jview_member_t;

typedef struct jview {
    uint8_t type;     /* jview_type_t */
    uint8_t integral; /* JV_REAL whose value is a finite integer (1.0) */
    uint32_t n;       /* bytes of a string, members of an object, items of an array */
    union {
        long long i;                /* JV_INT */
        double d;                   /* JV_REAL */
        const char *s;              /* JV_STR: n bytes, NUL-terminated (may contain NUL) */
        const jview_member_t *m;    /* JV_OBJ: n members in document order */
        const struct jview *a;      /* JV_ARR: n items */
    } u;
} jview_t;

struct jview_member {
    uint64_t head;   /* jview_key_head(key, keylen) */
    const char *key; /* a copy, NUL-terminated (may contain NUL); keylen bytes */
    uint32_t keylen;
    uint32_t hash;   /* jview_key_hash(head, keylen) */
    jview_t v;
};

/* A key's first 8 bytes, zero-padded, as one word: with the length, it decides
 * equality of keys up to 8 bytes (most keys of events) in one comparison, and it is
 * what keys are hashed by. */
static inline uint64_t jview_key_head(const char *k, size_t n)
{
    uint64_t h = 0;
    memcpy(&h, k, n < 8 ? n : 8);
    return h;
}

static inline uint32_t jview_key_hash(uint64_t head, size_t n)
{
    return (uint32_t)(((head + n * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull) >> 32);
}

/* Do two keys of n bytes with equal heads have equal bytes past the 8th? */
static inline bool jview_key_tail_eq(const char *a, const char *b, size_t n)
{
    if (n <= 8)
        return true;
    uint64_t x, y;
    for (size_t i = 8; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return false;
    }
    memcpy(&x, a + n - 8, 8); /* overlaps bytes already compared: fine */
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/* Objects of JVIEW_INDEX_MIN to JVIEW_INDEX_MAX members carry a hash index of their
 * keys' hashes (open addressing, slot = member index + 1, 0 = empty), stored just before
 * their members: a lookup then costs the same for any size. Smaller objects are
 * scanned, which comparing heads makes as fast. */
#define JVIEW_INDEX_MIN 8
#define JVIEW_INDEX_MAX 32767

static inline unsigned jview_index_bits(uint32_t n) /* table of 2^bits >= 2n slots */
{
    return 32u - (unsigned)__builtin_clz(2 * n - 1);
}

static inline const uint16_t *jview_index(const jview_t *obj, unsigned bits)
{
    return (const uint16_t *)(const void *)obj->u.m - ((size_t)1 << bits);
}

static inline uint32_t jview_index_slot(uint32_t hash, unsigned bits)
{
    return hash >> (32 - bits);
}

/* Is member m's key key[0..n), whose head is `head`? */
static inline bool jview_member_is(const jview_member_t *m, const char *key, size_t n,
                                   uint64_t head)
{
    return m->head == head && m->keylen == n && jview_key_tail_eq(m->key, key, n);
}

/* The member of object obj named key[0..n), or NULL, given the key's head and hash
 * (callers that look the same key up often keep them): through the object's index, or
 * a scan that compares heads. */
static inline const jview_member_t *jview_find(const jview_t *obj, const char *key, size_t n,
                                               uint64_t head, uint32_t hash)
{
    const jview_member_t *m = obj->u.m;
    if (obj->n >= JVIEW_INDEX_MIN && obj->n <= JVIEW_INDEX_MAX) {
        unsigned bits = jview_index_bits(obj->n);
        const uint16_t *slots = jview_index(obj, bits);
        for (uint32_t h = jview_index_slot(hash, bits);; h = (h + 1) & ((1u << bits) - 1)) {
            if (!slots[h])
                return NULL;
            if (jview_member_is(&m[slots[h] - 1], key, n, head))
                return &m[slots[h] - 1];
        }
    }
    for (uint32_t i = 0; i < obj->n; i++)
        if (jview_member_is(&m[i], key, n, head))
            return &m[i];
    return NULL;
}

/* The member named key[0..n) of an object, or NULL. */
const jview_t *jview_get(const jview_t *obj, const char *key, size_t n);

/* Deepest nesting jview_add accepts (jansson's own parser stops at 2048). */
#define JVIEW_MAX_DEPTH 2048

typedef struct jview_doc jview_doc_t;

jview_doc_t *jview_doc_new(void);
/* Builds the view of `j` inside `d`; NULL when memory runs out or `j` is nested deeper
 * than JVIEW_MAX_DEPTH. Views already in `d` stay valid. */
const jview_t *jview_add(jview_doc_t *d, const json_t *j);
void jview_doc_reset(jview_doc_t *d); /* drops every view; keeps (and reuses) the memory */
void jview_doc_free(jview_doc_t *d);

#endif

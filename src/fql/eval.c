/* FQL interpreter: runs a compiled program against a jansson event.
 *
 * The operand stack is a fixed array on the C stack (the compiler guarantees
 * the program fits), values borrow from the event or the program, and string
 * functions are lazy (text.c), so an evaluation performs no allocation and
 * cannot fail: it only answers true or false. Semantics: spec/fql.md §3–§5
 * (missing ≡ null, strict typing, null-friendly functions). */
#include <math.h>
#include <string.h>

#include "fql/fql_int.h"

#define MAX_EQ_DEPTH 256 /* deep-equality recursion; deeper values compare unequal */

static inline void from_json(const json_t *j, fql_value *v)
{
    v->nxf = 0;
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_OBJECT: v->type = T_OBJ; v->u.j = j; break;
    case JSON_ARRAY: v->type = T_LIST; v->u.j = j; break;
    case JSON_STRING:
        v->type = T_STR;
        v->u.s = json_string_value(j);
        v->len = json_string_length(j);
        break;
    case JSON_INTEGER: v->type = T_NUM; v->u.num = (double)json_integer_value(j); break;
    case JSON_REAL: v->type = T_NUM; v->u.num = json_real_value(j); break;
    case JSON_TRUE: v->type = T_BOOL; v->b = true; break;
    case JSON_FALSE: v->type = T_BOOL; v->b = false; break;
    default: v->type = T_NULL;
    }
}

static inline const json_t *walk(const fql_seg *seg, const fql_seg *end, const json_t *cur)
{
    for (; seg < end && cur; seg++) {
        if (json_is_object(cur))
            cur = json_object_getn(cur, seg->key, seg->len);
        else if (json_is_array(cur) && seg->index >= 0)
            cur = json_array_get(cur, (size_t)seg->index);
        else
            return NULL; /* walking through a scalar: missing, i.e. null */
    }
    return cur;
}

/* Per-evaluation memo of shared paths (see fql_path): lives on the C stack. */
typedef struct path_cache {
    uint64_t valid;
    const json_t *v[FQL_PATH_SLOTS];
} path_cache;

static const json_t *resolve_cached(const fql_program *p, uint32_t idx, const json_t *event,
                                    path_cache *pc)
{
    const fql_path *pa = &p->paths[idx];
    if (pa->slot >= 0 && (pc->valid >> pa->slot & 1))
        return pc->v[pa->slot];
    /* Climb to the nearest prefix already resolved (or the event), then walk
     * back down, filling the slots on the way. The chain only holds slotted
     * entries, so it is at most FQL_PATH_SLOTS long. */
    int32_t chain[FQL_PATH_SLOTS], n = 0, b = pa->base;
    while (b >= 0 && !(pc->valid >> p->paths[b].slot & 1)) {
        chain[n++] = b;
        b = p->paths[b].base;
    }
    const json_t *cur = b >= 0 ? pc->v[p->paths[b].slot] : event;
    uint32_t depth = b >= 0 ? p->paths[b].nseg : 0;
    const fql_seg *segs = p->segs;
    while (n-- > 0) {
        const fql_path *c = &p->paths[chain[n]];
        cur = walk(segs + c->seg0 + depth, segs + c->seg0 + c->nseg, cur);
        depth = c->nseg;
        pc->v[c->slot] = cur;
        pc->valid |= 1ull << c->slot;
    }
    cur = walk(segs + pa->seg0 + depth, segs + pa->seg0 + pa->nseg, cur);
    if (pa->slot >= 0) {
        pc->v[pa->slot] = cur;
        pc->valid |= 1ull << pa->slot;
    }
    return cur;
}

static inline __attribute__((always_inline)) const json_t *
resolve(const fql_program *p, uint32_t idx, const json_t *event, path_cache *pc)
{
    const fql_path *pa = &p->paths[idx];
    if ((pa->base & pa->slot) < 0) /* both -1: not shared, straight from the event */
        return walk(p->segs + pa->seg0, p->segs + pa->seg0 + pa->nseg, event);
    return resolve_cached(p, idx, event, pc);
}

static size_t list_len(const fql_value *v)
{
    return v->type == T_LIST ? json_array_size(v->u.j) : v->len;
}

static void list_at(const fql_value *v, size_t i, fql_value *out)
{
    if (v->type == T_LIST)
        from_json(json_array_get(v->u.j, i), out);
    else
        *out = v->u.lit[i];
}

static bool str_equal(const fql_value *a, const fql_value *b)
{
    if (!a->nxf && !b->nxf)
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    fql_iter x, y;
    fql__iter_init(&x, a);
    fql__iter_init(&y, b);
    for (;;) {
        uint32_t c = fql__iter_next(&x);
        if (c != fql__iter_next(&y))
            return false;
        if (c == FQL_CP_END)
            return true;
    }
}

bool fql__equal(const fql_value *a, const fql_value *b, int depth)
{
    int ta = a->type == T_LLIST ? T_LIST : a->type;
    int tb = b->type == T_LLIST ? T_LIST : b->type;
    if (ta != tb || depth > MAX_EQ_DEPTH)
        return false;
    switch (ta) {
    case T_NULL: return true;
    case T_BOOL: return a->b == b->b;
    case T_NUM: return a->u.num == b->u.num;
    case T_STR: return str_equal(a, b);
    case T_LIST: {
        size_t n = list_len(a);
        if (n != list_len(b))
            return false;
        for (size_t i = 0; i < n; i++) {
            fql_value x, y;
            list_at(a, i, &x);
            list_at(b, i, &y);
            if (!fql__equal(&x, &y, depth + 1))
                return false;
        }
        return true;
    }
    case T_OBJ: {
        /* Deep equality, key order ignored (spec/fql.md §4, inferred). */
        if (json_object_size(a->u.j) != json_object_size(b->u.j))
            return false;
        const char *key;
        size_t klen;
        json_t *va;
        json_object_keylen_foreach((json_t *)a->u.j, key, klen, va) {
            const json_t *vb = json_object_getn(b->u.j, key, klen);
            if (!vb)
                return false;
            fql_value x, y;
            from_json(va, &x);
            from_json(vb, &y);
            if (!fql__equal(&x, &y, depth + 1))
                return false;
        }
        return true;
    }
    }
    return false;
}

static double length_of(const fql_value *v)
{
    switch (v->type) {
    case T_NULL: return 0; /* so `length(userId) < 1` catches missing ids */
    case T_LIST: case T_LLIST: return (double)list_len(v);
    case T_STR:
        if (!v->nxf)
            return (double)v->len; /* UTF-8 bytes, as documented */
        {
            fql_iter it;
            size_t n = 0;
            uint32_t c;
            fql__iter_init(&it, v);
            while ((c = fql__iter_next(&it)) != FQL_CP_END)
                n += fql__utf8_len(c);
            return (double)n;
        }
    default: return NAN; /* every comparison with it is false */
    }
}

static bool contains(const fql_value *h, const fql_value *n)
{
    if (h->type != T_STR || n->type != T_STR)
        return false;
    if (!h->nxf && !n->nxf) {
        if (n->len == 0)
            return true;
        if (n->len > h->len)
            return false;
        if (n->len > 32) /* two-way search: linear worst case */
            return memmem(h->u.s, h->len, n->u.s, n->len) != NULL;
        /* Short needles (the usual 'js', '@example.com'): memchr + memcmp beats
         * memmem's set-up cost, and stays O(h * 32) at worst. */
        const char *p = h->u.s, *end = h->u.s + h->len - n->len + 1;
        while ((p = memchr(p, n->u.s[0], (size_t)(end - p))) != NULL) {
            if (memcmp(p + 1, n->u.s + 1, n->len - 1) == 0)
                return true;
            if (++p >= end)
                break;
        }
        return false;
    }
    /* Transformed operands: naive search over code points, restarting the
     * haystack iterator (with its transform state) at each position. */
    fql_iter start;
    fql__iter_init(&start, h);
    for (;;) {
        fql_iter x = start, y;
        fql__iter_init(&y, n);
        for (;;) {
            uint32_t want = fql__iter_next(&y);
            if (want == FQL_CP_END)
                return true;
            if (fql__iter_next(&x) != want)
                break;
        }
        if (fql__iter_next(&start) == FQL_CP_END)
            return false;
    }
}

static const fql_value type_names[] = {
    [T_NULL] = {.type = T_STR, .u.s = "null", .len = 4},
    [T_BOOL] = {.type = T_STR, .u.s = "bool", .len = 4},
    [T_NUM] = {.type = T_STR, .u.s = "number", .len = 6},
    [T_STR] = {.type = T_STR, .u.s = "string", .len = 6},
    [T_LIST] = {.type = T_STR, .u.s = "list", .len = 4},
    [T_LLIST] = {.type = T_STR, .u.s = "list", .len = 4},
    [T_OBJ] = {.type = T_STR, .u.s = "object", .len = 6},
};

/* fql__equal with the common cases (plain strings, numbers) inlined. */
static inline bool equal(const fql_value *a, const fql_value *b)
{
    if (a->type == T_STR && b->type == T_STR && !(a->nxf | b->nxf))
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    if (a->type == T_NUM && b->type == T_NUM)
        return a->u.num == b->u.num;
    return fql__equal(a, b, 0);
}

static inline bool compare(unsigned op, const fql_value *a, const fql_value *b)
{
    if (op == OP_EQ)
        return equal(a, b);
    if (op == OP_NE)
        return !equal(a, b);
    if (a->type != T_NUM || b->type != T_NUM)
        return false; /* non-numbers never compare; NaN compares false below */
    double x = a->u.num, y = b->u.num;
    switch (op) {
    case OP_LT: return x < y;
    case OP_LE: return x <= y;
    case OP_GT: return x > y;
    default: return x >= y;
    }
}

static bool in_list(const fql_value *v, const fql_value *list)
{
    if (list->type != T_LIST && list->type != T_LLIST)
        return false;
    size_t n = list_len(list);
    for (size_t i = 0; i < n; i++) {
        fql_value e;
        list_at(list, i, &e);
        if (equal(v, &e))
            return true;
    }
    return false;
}

static inline bool is_true(const fql_value *v) { return v->type == T_BOOL && v->b; }

static inline void set_bool(fql_value *v, bool b)
{
    v->type = T_BOOL;
    v->b = b;
}

int fql_eval(const fql_program *p, const json_t *event)
{
    if (!p)
        return FQL_ERROR;
    if (p->all)
        return 1;
    fql_value st[FQL_MAX_STACK];
    fql_value *sp = st; /* next free slot */
    path_cache cache;
    cache.valid = 0;
    const fql_insn *code = p->code, *pc = code;
    for (;;) {
        const fql_insn in = *pc++;
        switch (in.op) {
        case OP_CONST:
            *sp++ = p->consts[in.arg];
            break;
        case OP_PATH:
            from_json(resolve(p, in.arg, event, &cache), sp++);
            break;
        case OP_EQ_PC: {
            const json_t *j = resolve(p, in.arg, event, &cache);
            const fql_value *k = &p->consts[in.aux];
            bool r;
            if (j && json_is_string(j) && k->type == T_STR) { /* the usual case, direct */
                size_t n = json_string_length(j);
                r = n == k->len && memcmp(json_string_value(j), k->u.s, n) == 0;
            } else {
                fql_value v;
                from_json(j, &v);
                r = equal(&v, k);
            }
            if (pc->op == OP_RET) /* a lone comparison: skip the stack round trip */
                return r;
            set_bool(sp++, r);
            break;
        }
        case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
            sp--;
            set_bool(sp - 1, compare(in.op, sp - 1, sp));
            break;
        case OP_IN:
            sp--;
            set_bool(sp - 1, in_list(sp - 1, sp));
            break;
        case OP_NOT:
            set_bool(sp - 1, !is_true(sp - 1));
            break;
        case OP_TEST:
            set_bool(sp - 1, is_true(sp - 1));
            break;
        case OP_AND_JMP:
            if (!is_true(sp - 1)) {
                set_bool(sp - 1, false);
                pc = code + in.arg;
            } else {
                sp--;
            }
            break;
        case OP_OR_JMP:
            if (is_true(sp - 1)) {
                pc = code + in.arg;
            } else {
                sp--;
            }
            break;
        case OP_CONTAINS:
            sp--;
            set_bool(sp - 1, contains(sp - 1, sp));
            break;
        case OP_MATCH:
            sp--;
            set_bool(sp - 1, in.aux != 2 && sp[-1].type == T_STR && sp->type == T_STR &&
                                 fql__glob(sp - 1, sp, in.aux == 1));
            break;
        case OP_CMPK: /* CONST + operator in one dispatch */
            set_bool(sp - 1, compare(in.aux, sp - 1, &p->consts[in.arg]));
            break;
        case OP_INK:
            set_bool(sp - 1, in_list(sp - 1, &p->consts[in.arg]));
            break;
        case OP_LENGTH: {
            double n = length_of(sp - 1);
            sp[-1].type = T_NUM;
            sp[-1].u.num = n;
            break;
        }
        case OP_TYPEOF:
            sp[-1] = type_names[sp[-1].type];
            break;
        case OP_XFORM:
            if (sp[-1].type != T_STR)
                sp[-1].type = T_NULL; /* lowercase(non-string) is null */
            else if (sp[-1].nxf < FQL_MAX_XF) /* the compiler enforces this */
                sp[-1].xf[sp[-1].nxf++] = (uint8_t)in.aux;
            break;
        case OP_RET:
            return is_true(sp - 1) ? 1 : 0;
        default:
            /* Programs only come from compile.c, which emits no other opcode;
             * telling the compiler lets it drop the jump-table range check. */
            __builtin_unreachable();
        }
    }
}

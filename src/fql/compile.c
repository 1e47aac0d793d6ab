/* FQL compiler: syntax tree → a compact stack-machine program.
 *
 * The program is one allocation: header, constants, path segments, code and
 * the string pool, with every internal pointer fixed up at the end, so a
 * compiled filter is cache-friendly, immutable and freed with one free().
 *
 * Code shape (see docs/fql.md):
 *   a = 'x'              →  EQ_PC   path#0, const#0         (fused, common case)
 *   length(a) > 0        →  PATH #0; LENGTH; CONST #0; GT
 *   a and b and c        →  [a] AND_JMP L; [b] AND_JMP L; [c] TEST; L:
 *   !x                   →  [x] NOT
 * followed by RET, which turns the top of the stack into the verdict. The
 * operand stack depth each program needs is computed here and capped, so the
 * interpreter can use a fixed array on the C stack. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fql/fql_int.h"

enum fix { FIX_NONE, FIX_STR, FIX_LIST };

typedef struct cc {
    fql_ast *ast;
    fql_error *err;
    const char *src;
    size_t srclen;
    bool failed;
    fql_insn *code;
    size_t ncode, codecap;
    fql_value *consts;
    uint8_t *cfix;    /* enum fix per constant */
    size_t *cfixarg;  /* pool offset (FIX_STR) or first element (FIX_LIST) */
    size_t nconsts, constcap;
    fql_path *paths;
    size_t npaths;
} cc;

static void oom(cc *c)
{
    if (!c->failed)
        fql__error_at(c->err, c->src, c->srclen, 0, "out of memory", NULL);
    c->failed = true;
}

static bool grow(cc *c, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * size);
    if (!p) {
        oom(c);
        return false;
    }
    *arr = p;
    *cap = ncap;
    return true;
}

static size_t emit(cc *c, uint8_t op, uint16_t aux, uint32_t arg)
{
    if (!grow(c, (void **)&c->code, &c->codecap, c->ncode, sizeof *c->code))
        return 0;
    c->code[c->ncode] = (fql_insn){.op = op, .aux = aux, .arg = arg};
    return c->ncode++;
}

static uint32_t add_const(cc *c, const fql_node *n)
{
    size_t cap = c->constcap;
    if (!grow(c, (void **)&c->consts, &cap, c->nconsts, sizeof *c->consts))
        return 0;
    if (cap != c->constcap) {
        uint8_t *f = realloc(c->cfix, cap);
        size_t *a = realloc(c->cfixarg, cap * sizeof *a);
        if (f)
            c->cfix = f;
        if (a)
            c->cfixarg = a;
        if (!f || !a) {
            oom(c);
            return 0;
        }
        c->constcap = cap;
    }
    size_t k = c->nconsts++;
    c->consts[k] = n->val;
    c->cfix[k] = n->val.type == T_STR ? FIX_STR : FIX_NONE;
    c->cfixarg[k] = n->str_off;
    return (uint32_t)k;
}

static uint32_t add_list(cc *c, const fql_node *list)
{
    uint32_t k = add_const(c, list);
    if (c->failed)
        return 0;
    c->consts[k] = (fql_value){.type = T_LLIST, .len = list->nkids};
    c->cfix[k] = FIX_LIST;
    c->cfixarg[k] = k + 1; /* elements follow the list constant */
    for (int32_t e = list->kid; e >= 0; e = c->ast->nodes[e].next)
        add_const(c, &c->ast->nodes[e]);
    return k;
}

/* ---- path interning -----------------------------------------------------
 * Every path and each of its prefixes becomes one entry of the path table,
 * deduplicated by (parent entry, segment bytes) through a small hash table.
 * Entries that at least two path occurrences go through get a cache slot (up
 * to FQL_PATH_SLOTS), so `event = 'a' or event = 'b'` and `context.page.path`
 * + `context.page.url` share lookups at run time. */

typedef struct pentry {
    int32_t parent;
    uint32_t seg;     /* index of this entry's last segment in ast->segs */
    uint32_t through; /* path occurrences that pass through or end here */
} pentry;

static uint64_t seg_hash(int32_t parent, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uint32_t)parent;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    return h;
}

static bool intern_paths(cc *c)
{
    fql_ast *a = c->ast;
    size_t nseg = a->nsegs ? a->nsegs : 1, cap = 16;
    while (cap < 2 * nseg)
        cap *= 2;
    int32_t *table = malloc(cap * sizeof *table);
    pentry *ent = malloc(nseg * sizeof *ent);
    c->paths = calloc(nseg, sizeof *c->paths);
    if (!table || !ent || !c->paths) {
        free(table);
        free(ent);
        oom(c);
        return false;
    }
    memset(table, 0xff, cap * sizeof *table); /* -1 = empty */
    size_t n = 0;
    for (size_t i = 0; i < a->nnodes; i++) {
        fql_node *node = &a->nodes[i];
        if (node->kind != N_PATH)
            continue;
        int32_t parent = -1;
        for (uint32_t s = node->seg0; s < node->seg0 + node->nseg; s++) {
            const fql_seg *sg = &a->segs[s];
            const char *key = a->pool + sg->off;
            size_t h = (size_t)seg_hash(parent, key, sg->len) & (cap - 1);
            int32_t found = -1;
            for (; table[h] >= 0; h = (h + 1) & (cap - 1)) {
                const pentry *e = &ent[table[h]];
                const fql_seg *es = &a->segs[e->seg];
                if (e->parent == parent && es->len == sg->len &&
                    !memcmp(a->pool + es->off, key, sg->len)) {
                    found = table[h];
                    break;
                }
            }
            if (found < 0) {
                found = (int32_t)n;
                ent[n] = (pentry){parent, s, 0};
                /* The entry's segments: the first occurrence's prefix. */
                c->paths[n] = (fql_path){node->seg0, s - node->seg0 + 1, -1, -1};
                table[h] = found;
                n++;
            }
            ent[found].through++;
            parent = found;
        }
        node->pathid = (uint32_t)parent;
    }
    int32_t slots = 0;
    for (size_t k = 0; k < n; k++) {
        if (ent[k].through >= 2 && slots < FQL_PATH_SLOTS)
            c->paths[k].slot = slots++;
        /* parents are created before children, so their bases are final */
        int32_t p = ent[k].parent;
        c->paths[k].base = p < 0 ? -1 : c->paths[p].slot >= 0 ? p : c->paths[p].base;
    }
    c->npaths = n;
    free(table);
    free(ent);
    return true;
}

/* Operand-stack slots needed to evaluate node `i`. */
static unsigned need(const fql_ast *a, int32_t i)
{
    const fql_node *n = &a->nodes[i];
    unsigned m = 1, k = 0;
    switch (n->kind) {
    case N_CONST: case N_LIST: case N_PATH:
        return 1;
    default:
        /* Children are evaluated left to right and the k-th one sits on top of
         * k earlier results, except and/or, which pop each operand first. */
        for (int32_t c = n->kid; c >= 0; c = a->nodes[c].next, k++) {
            unsigned below = (n->kind == N_AND || n->kind == N_OR) ? 0 : k;
            unsigned d = below + need(a, c);
            if (d > m)
                m = d;
        }
        return m;
    }
}

/* Does the node always leave a boolean on the stack? Then no TEST is needed. */
static bool yields_bool(const fql_node *n)
{
    switch (n->kind) {
    case N_CMP: case N_IN: case N_NOT: case N_AND: case N_OR:
        return true;
    case N_CALL:
        return n->op == FN_CONTAINS || n->op == FN_MATCH;
    case N_CONST:
        return n->val.type == T_BOOL;
    default:
        return false;
    }
}

static void gen(cc *c, int32_t i)
{
    if (c->failed)
        return;
    const fql_node *n = &c->ast->nodes[i];
    const fql_node *nodes = c->ast->nodes;
    switch (n->kind) {
    case N_CONST:
        emit(c, OP_CONST, 0, add_const(c, n));
        return;
    case N_LIST:
        emit(c, OP_CONST, 0, add_list(c, n));
        return;
    case N_PATH:
        emit(c, OP_PATH, 0, n->pathid);
        return;
    case N_NOT:
        gen(c, n->kid);
        emit(c, OP_NOT, 0, 0);
        return;
    case N_AND:
    case N_OR: {
        size_t jumps[FQL_MAX_STACK], nj = 0;
        size_t *heap = NULL; /* chains can be long; spill past the stack array */
        if (n->nkids > FQL_MAX_STACK && !(heap = malloc(n->nkids * sizeof *heap))) {
            oom(c);
            return;
        }
        size_t *j = heap ? heap : jumps;
        for (int32_t k = n->kid; k >= 0; k = nodes[k].next) {
            gen(c, k);
            if (nodes[k].next >= 0)
                j[nj++] = emit(c, n->kind == N_AND ? OP_AND_JMP : OP_OR_JMP, 0, 0);
            else if (!yields_bool(&nodes[k]))
                emit(c, OP_TEST, 0, 0); /* and/or must yield a boolean */
        }
        if (!c->failed)
            for (size_t k = 0; k < nj; k++)
                c->code[j[k]].arg = (uint32_t)c->ncode;
        free(heap);
        return;
    }
    case N_CMP:
    case N_IN: {
        const fql_node *l = &nodes[n->kid], *r = &nodes[l->next];
        if (n->kind == N_CMP && (n->op == TK_EQ || n->op == TK_NE) &&
            ((l->kind == N_PATH && (r->kind == N_CONST || r->kind == N_LIST)) ||
             (r->kind == N_PATH && (l->kind == N_CONST || l->kind == N_LIST))) &&
            c->nconsts < UINT16_MAX - 1) {
            /* `path = literal` is most of real-world FQL: one instruction. */
            const fql_node *pn = l->kind == N_PATH ? l : r, *kn = l->kind == N_PATH ? r : l;
            uint32_t k = kn->kind == N_LIST ? add_list(c, kn) : add_const(c, kn);
            if (k < UINT16_MAX) {
                emit(c, OP_EQ_PC, (uint16_t)k, pn->pathid);
                if (n->op == TK_NE)
                    emit(c, OP_NOT, 0, 0);
                return;
            }
        }
        static const uint8_t ops[] = {[TK_EQ] = OP_EQ, [TK_NE] = OP_NE, [TK_LT] = OP_LT,
                                      [TK_LE] = OP_LE, [TK_GT] = OP_GT, [TK_GE] = OP_GE};
        gen(c, n->kid);
        if (r->kind == N_CONST || r->kind == N_LIST) { /* `x op literal`: one instruction */
            uint32_t k = r->kind == N_LIST ? add_list(c, r) : add_const(c, r);
            if (n->kind == N_IN)
                emit(c, OP_INK, 0, k);
            else
                emit(c, OP_CMPK, ops[n->op], k);
            return;
        }
        gen(c, l->next);
        emit(c, n->kind == N_IN ? OP_IN : ops[n->op], 0, 0);
        return;
    }
    case N_CALL:
        for (int32_t k = n->kid; k >= 0; k = nodes[k].next)
            gen(c, k);
        switch (n->op) {
        case FN_CONTAINS: emit(c, OP_CONTAINS, 0, 0); break;
        case FN_LENGTH: emit(c, OP_LENGTH, 0, 0); break;
        case FN_TYPEOF: emit(c, OP_TYPEOF, 0, 0); break;
        case FN_MATCH: {
            /* A constant pattern is validated once, here, not per event. */
            const fql_node *pat = &nodes[nodes[n->kid].next];
            uint16_t aux = 0;
            if (pat->kind == N_CONST && pat->val.type == T_STR) {
                fql_value v = pat->val;
                v.u.s = c->ast->pool + pat->str_off;
                aux = fql__glob_valid(&v) ? 1 : 2;
            }
            emit(c, OP_MATCH, aux, 0);
            break;
        }
        case FN_LOWER: emit(c, OP_XFORM, XF_LOWER, 0); break;
        case FN_UPPER: emit(c, OP_XFORM, XF_UPPER, 0); break;
        case FN_SNAKE: emit(c, OP_XFORM, XF_SNAKE, 0); break;
        case FN_KEBAB: emit(c, OP_XFORM, XF_KEBAB, 0); break;
        case FN_TITLE: emit(c, OP_XFORM, XF_TITLE, 0); break;
        }
        return;
    }
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* A string of the pool (a path segment or a string constant) and its owner. */
typedef struct pitem {
    size_t off, len;
    fql_seg *seg;      /* or */
    fql_value *cst;
} pitem;

static int pitem_cmp(const void *x, const void *y)
{
    const pitem *a = x, *b = y;
    return (a->off > b->off) - (a->off < b->off);
}

/* Copies the pool strings into the program, none starting in the last 64
 * bytes of a memory page. Why: jansson compares our path keys with memcmp, and
 * glibc's vectorised memcmp takes a much slower path when an operand lies
 * within one vector of a page end — measured at 3x for a whole filter whose
 * only key landed there. The padding costs at most 64 bytes per page. */
static void place_pool(const fql_ast *a, char *pool, size_t room, pitem *items, size_t n)
{
    qsort(items, n, sizeof *items, pitem_cmp);
    size_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = items[i].len + 1;
        size_t pageoff = ((uintptr_t)(pool + cur)) & 4095;
        if (pageoff > 4096 - 64 && cur + (4096 - pageoff) + need <= room)
            cur += 4096 - pageoff;
        memcpy(pool + cur, a->pool + items[i].off, need);
        if (items[i].seg)
            items[i].seg->key = pool + cur;
        else
            items[i].cst->u.s = pool + cur;
        cur += need;
    }
}

/* Packs everything into one block and fixes up the internal pointers. */
static fql_program *finish(cc *c, bool all, unsigned max_stack)
{
    fql_ast *a = c->ast;
    size_t o_consts = align8(sizeof(fql_program));
    size_t o_segs = o_consts + align8(c->nconsts * sizeof(fql_value));
    size_t o_paths = o_segs + align8(a->nsegs * sizeof(fql_seg));
    size_t o_code = o_paths + align8(c->npaths * sizeof(fql_path));
    size_t o_pool = o_code + align8(c->ncode * sizeof(fql_insn));
    size_t room = a->poolsz + 64 * (a->poolsz / 2048 + 4);
    char *block = calloc(1, o_pool + room + 1);
    pitem *items = malloc((a->nsegs + c->nconsts + 1) * sizeof *items);
    if (!block || !items) {
        free(block);
        free(items);
        oom(c);
        return NULL;
    }
    fql_program *p = (fql_program *)block;
    fql_value *consts = (fql_value *)(block + o_consts);
    fql_seg *segs = (fql_seg *)(block + o_segs);
    char *pool = block + o_pool;
    if (c->nconsts)
        memcpy(consts, c->consts, c->nconsts * sizeof *consts);
    if (a->nsegs)
        memcpy(segs, a->segs, a->nsegs * sizeof *segs);
    if (c->npaths)
        memcpy(block + o_paths, c->paths, c->npaths * sizeof(fql_path));
    if (c->ncode)
        memcpy(block + o_code, c->code, c->ncode * sizeof(fql_insn));
    size_t n = 0;
    for (size_t k = 0; k < c->nconsts; k++) {
        if (c->cfix[k] == FIX_STR)
            items[n++] = (pitem){c->cfixarg[k], consts[k].len, NULL, &consts[k]};
        else if (c->cfix[k] == FIX_LIST)
            consts[k].u.lit = consts + c->cfixarg[k];
    }
    for (size_t k = 0; k < a->nsegs; k++)
        items[n++] = (pitem){segs[k].off, segs[k].len, &segs[k], NULL};
    place_pool(a, pool, room, items, n);
    free(items);
    p->consts = consts;
    p->segs = segs;
    p->paths = (const fql_path *)(block + o_paths);
    p->code = (const fql_insn *)(block + o_code);
    p->pool = pool;
    p->nconsts = (uint32_t)c->nconsts;
    p->nsegs = (uint32_t)a->nsegs;
    p->npaths = (uint32_t)c->npaths;
    p->ncode = (uint32_t)c->ncode;
    p->max_stack = max_stack;
    p->all = all;
    return p;
}

fql_program *fql_compile(const char *src, size_t len, fql_error *err)
{
    fql_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (!src) {
        src = "";
        len = 0;
    }
    fql_ast ast;
    if (!fql__parse(src, len, &ast, err)) {
        fql__ast_free(&ast);
        return NULL;
    }
    cc c = {.ast = &ast, .err = err, .src = src, .srclen = len};
    unsigned max_stack = 0;
    bool all = ast.all;
    if (!all) {
        const fql_node *root = &ast.nodes[ast.root];
        if (root->kind == N_CONST && root->val.type == T_BOOL && root->val.b)
            all = true; /* the statement `true` */
    }
    if (!all) {
        max_stack = need(&ast, ast.root);
        if (max_stack > FQL_MAX_STACK) {
            fql__error_at(err, src, len, ast.nodes[ast.root].pos, "expression too complex",
                          "nest fewer comparisons and function calls");
            c.failed = true;
        } else if (intern_paths(&c)) {
            gen(&c, ast.root);
            emit(&c, OP_RET, 0, 0);
        }
    }
    fql_program *p = c.failed ? NULL : finish(&c, all, max_stack);
    free(c.code);
    free(c.consts);
    free(c.cfix);
    free(c.cfixarg);
    free(c.paths);
    fql__ast_free(&ast);
    return p;
}

void fql_free(fql_program *prog) { free(prog); }

int fql_matches_all(const fql_program *prog) { return prog && prog->all; }

/* ---- dump -------------------------------------------------------------- */

static void dump_str(FILE *f, const char *s, size_t n)
{
    char buf[96];
    fql__snippet(buf, sizeof buf, s, n, 64);
    fprintf(f, "'%s'", buf);
}

static void dump_value(FILE *f, const fql_value *v)
{
    switch (v->type) {
    case T_NULL: fputs("null", f); break;
    case T_BOOL: fputs(v->b ? "true" : "false", f); break;
    case T_NUM: fprintf(f, "%.17g", v->u.num); break;
    case T_STR: dump_str(f, v->u.s, v->len); break;
    case T_LLIST:
        fputc('[', f);
        for (size_t i = 0; i < v->len; i++) {
            if (i)
                fputs(", ", f);
            dump_value(f, &v->u.lit[i]);
        }
        fputc(']', f);
        break;
    default: fputs("?", f);
    }
}

static void dump_path(FILE *f, const fql_program *p, uint32_t idx)
{
    const fql_path *path = &p->paths[idx];
    for (uint32_t s = 0; s < path->nseg; s++) {
        const fql_seg *seg = &p->segs[path->seg0 + s];
        if (s)
            fputc('.', f);
        char buf[96];
        fql__snippet(buf, sizeof buf, seg->key, seg->len, 64);
        fputs(buf, f);
    }
    if (path->slot >= 0)
        fprintf(f, " [memo %d]", path->slot); /* looked up once per evaluation */
}

char *fql_program_dump(const fql_program *p)
{
    static const char *const names[] = {
        [OP_CONST] = "CONST", [OP_PATH] = "PATH", [OP_EQ] = "EQ", [OP_NE] = "NE",
        [OP_LT] = "LT", [OP_LE] = "LE", [OP_GT] = "GT", [OP_GE] = "GE", [OP_IN] = "IN",
        [OP_NOT] = "NOT", [OP_TEST] = "TEST", [OP_AND_JMP] = "AND_JMP", [OP_OR_JMP] = "OR_JMP",
        [OP_CONTAINS] = "CONTAINS", [OP_LENGTH] = "LENGTH", [OP_XFORM] = "XFORM",
        [OP_TYPEOF] = "TYPEOF", [OP_MATCH] = "MATCH", [OP_EQ_PC] = "EQ_PC", [OP_CMPK] = "CMPK", [OP_INK] = "INK", [OP_RET] = "RET",
    };
    static const char *const xf[] = {[XF_LOWER] = "lowercase", [XF_UPPER] = "uppercase",
                                     [XF_SNAKE] = "snakecase", [XF_KEBAB] = "kebabcase",
                                     [XF_TITLE] = "titlecase"};
    if (!p)
        return NULL;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (!f)
        return NULL;
    if (p->all) {
        fputs("ALL\n", f);
    } else {
        fprintf(f, "; %u instructions, %u constants, %u paths, stack %u\n", p->ncode,
                p->nconsts, p->npaths, p->max_stack);
        for (uint32_t i = 0; i < p->ncode; i++) {
            const fql_insn *in = &p->code[i];
            fprintf(f, "%04u  %-9s", i, names[in->op]);
            switch (in->op) {
            case OP_CONST: dump_value(f, &p->consts[in->arg]); break;
            case OP_PATH: dump_path(f, p, in->arg); break;
            case OP_AND_JMP: case OP_OR_JMP: fprintf(f, "-> %04u", in->arg); break;
            case OP_XFORM: fputs(xf[in->aux], f); break;
            case OP_CMPK:
                fprintf(f, "%s ", names[in->aux]);
                dump_value(f, &p->consts[in->arg]);
                break;
            case OP_INK: dump_value(f, &p->consts[in->arg]); break;
            case OP_MATCH:
                if (in->aux)
                    fputs(in->aux == 1 ? "(pattern checked)" : "(invalid pattern: false)", f);
                break;
            case OP_EQ_PC:
                dump_path(f, p, in->arg);
                fputs(" = ", f);
                dump_value(f, &p->consts[in->aux]);
                break;
            }
            fputc('\n', f);
        }
    }
    fclose(f);
    return out;
}

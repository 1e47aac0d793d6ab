/* FQL parser: recursive descent over the grammar of spec/fql.md §2, building a
 * small syntax tree (fql_ast) that compile.c turns into bytecode.
 *
 *   statement  := "all" | expr
 *   expr       := and_expr { "or" and_expr }
 *   and_expr   := comparison { "and" comparison }
 *   comparison := term [ ("=" | "!=" | "<" | "<=" | ">" | ">=" | "in") term ]
 *   term       := "!" term | operand
 *   operand    := literal | path | call | list | "(" expr ")"
 *
 * Recursion only happens through '!', '(', calls and lists, and is capped at
 * FQL_MAX_DEPTH, so hostile input cannot exhaust the C stack. and/or chains
 * are loops that build one n-ary node. Every error names what was found, where
 * (column), and what would have been valid there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fql/fql_int.h"

typedef struct parser {
    fql_lexer lx;
    fql_token tok;  /* current (lookahead) token */
    fql_token prev; /* previous token, for "==" hints */
    fql_ast *ast;
    fql_error *err;
    int depth;
    bool failed;
    bool after_cmp; /* last comparison had an operator: operators no longer valid */
} parser;

static const struct {
    const char *name;
    uint8_t fn, arity;
} functions[] = {
    {"contains", FN_CONTAINS, 2}, {"length", FN_LENGTH, 1},   {"lowercase", FN_LOWER, 1},
    {"uppercase", FN_UPPER, 1},   {"snakecase", FN_SNAKE, 1}, {"kebabcase", FN_KEBAB, 1},
    {"titlecase", FN_TITLE, 1},   {"typeof", FN_TYPEOF, 1},   {"match", FN_MATCH, 2},
};

static void advance(parser *p)
{
    p->prev = p->tok;
    p->tok = fql__lex(&p->lx);
    if (p->tok.type == TK_BAD)
        p->failed = true; /* the lexer filled in the error */
}

static void fail(parser *p, size_t off, const char *what, const char *expected)
{
    if (p->failed)
        return; /* keep the first error: it is the one that explains the rest */
    p->failed = true;
    fql__error_at(p->err, p->lx.src, p->lx.len, off, what, expected);
}

static void unexpected(parser *p, const char *expected)
{
    if (p->failed)
        return;
    char desc[96], what[112];
    fql__describe(p->lx.src, &p->tok, desc, sizeof desc);
    snprintf(what, sizeof what, "unexpected %s", desc);
    /* Hints for the mistakes people actually make. */
    if (p->tok.type == TK_EQ && p->prev.type == TK_EQ && p->prev.start + 1 == p->tok.start)
        expected = "use a single '=' to compare";
    else if (p->tok.type == TK_PATH && p->tok.len <= 3) {
        const char *s = p->lx.src + p->tok.start;
        size_t n = p->tok.len;
        if ((n == 3 && !strncasecmp(s, "and", 3)) || (n == 2 && !strncasecmp(s, "or", 2)) ||
            (n == 2 && !strncasecmp(s, "in", 2)))
            expected = "keywords 'and', 'or' and 'in' are lowercase";
    }
    fail(p, p->tok.start, what, expected);
}

static int32_t new_node(parser *p, uint8_t kind, size_t pos)
{
    fql_ast *a = p->ast;
    if (a->nnodes == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        fql_node *n = realloc(a->nodes, cap * sizeof *n);
        if (!n) {
            fail(p, pos, "out of memory", NULL);
            return -1;
        }
        a->nodes = n;
        a->cap = cap;
    }
    fql_node *n = &a->nodes[a->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->kid = n->next = -1;
    n->pos = pos;
    return (int32_t)a->nnodes++;
}

/* Appends `kid` to `parent`'s children (O(n) walk; child lists are short). */
static void add_kid(parser *p, int32_t parent, int32_t kid)
{
    fql_node *nodes = p->ast->nodes;
    nodes[parent].nkids++;
    if (nodes[parent].kid < 0) {
        nodes[parent].kid = kid;
        return;
    }
    int32_t k = nodes[parent].kid;
    while (nodes[k].next >= 0)
        k = nodes[k].next;
    nodes[k].next = kid;
}

static bool pool_add(parser *p, const char *s, size_t n, size_t *off)
{
    fql_ast *a = p->ast;
    if (a->poolsz + n + 1 > a->poolcap) {
        size_t cap = a->poolcap ? a->poolcap : 64;
        while (cap < a->poolsz + n + 1)
            cap *= 2;
        char *np = realloc(a->pool, cap);
        if (!np) {
            fail(p, p->tok.start, "out of memory", NULL);
            return false;
        }
        a->pool = np;
        a->poolcap = cap;
    }
    *off = a->poolsz;
    if (n)
        memcpy(a->pool + a->poolsz, s, n);
    a->pool[a->poolsz + n] = '\0'; /* keys stay NUL-terminated for debugging */
    a->poolsz += n + 1;
    return true;
}

static int32_t string_node(parser *p, const fql_token *t)
{
    int32_t n = new_node(p, N_CONST, t->start);
    size_t off;
    if (n < 0 || !pool_add(p, p->lx.src + t->start + 1, t->len - 2, &off))
        return -1;
    fql_node *node = &p->ast->nodes[n];
    node->val.type = T_STR;
    node->val.len = t->len - 2;
    node->str_off = off;
    return n;
}

/* Splits a path token into unescaped segments in the pool. */
static int32_t path_node(parser *p, const fql_token *t)
{
    fql_ast *a = p->ast;
    int32_t n = new_node(p, N_PATH, t->start);
    if (n < 0)
        return -1;
    a->nodes[n].seg0 = (uint32_t)a->nsegs;
    const char *s = p->lx.src + t->start, *end = s + t->len;
    char *buf = malloc(t->len ? t->len : 1); /* unescaped text is never longer */
    if (!buf) {
        fail(p, t->start, "out of memory", NULL);
        return -1;
    }
    while (s <= end) {
        size_t k = 0;
        while (s < end && *s != '.') {
            if (*s == '\\') { /* the escaped character, however many bytes */
                const unsigned char *q = (const unsigned char *)s + 1;
                fql__utf8_decode(&q, (const unsigned char *)end);
                size_t cl = (size_t)((const char *)q - (s + 1));
                memcpy(buf + k, s + 1, cl);
                k += cl;
                s += 1 + cl;
            } else {
                buf[k++] = *s++;
            }
        }
        if (a->nsegs == a->segcap) {
            size_t cap = a->segcap ? a->segcap * 2 : 16;
            fql_seg *ns = realloc(a->segs, cap * sizeof *ns);
            if (!ns) {
                free(buf);
                fail(p, t->start, "out of memory", NULL);
                return -1;
            }
            a->segs = ns;
            a->segcap = cap;
        }
        fql_seg *seg = &a->segs[a->nsegs];
        memset(seg, 0, sizeof *seg);
        if (!pool_add(p, buf, k, &seg->off)) {
            free(buf);
            return -1;
        }
        seg->len = (uint32_t)k;
        /* A canonical decimal segment ("0", "12", not "01") also indexes lists. */
        seg->index = -1;
        if (k > 0 && k <= 9 && (buf[0] != '0' || k == 1)) {
            int32_t v = 0;
            size_t i;
            for (i = 0; i < k && buf[i] >= '0' && buf[i] <= '9'; i++)
                v = v * 10 + (buf[i] - '0');
            if (i == k)
                seg->index = v;
        }
        a->nsegs++;
        a->nodes[n].nseg++;
        s++; /* skip '.' (or step past end) */
    }
    free(buf);
    return n;
}

/* A single unescaped segment equal to `word`? (true/false/null/all) */
static bool is_word(const parser *p, const fql_token *t, const char *word)
{
    size_t n = strlen(word);
    return t->type == TK_PATH && !t->escaped && t->len == n &&
           !memcmp(p->lx.src + t->start, word, n);
}

static int32_t parse_or(parser *p);

static bool enter(parser *p)
{
    if (++p->depth > FQL_MAX_DEPTH) {
        fail(p, p->tok.start, "expression nested too deeply", "the limit is 64 levels");
        return false;
    }
    return true;
}

/* literal (for lists): string, number, true, false, null */
static int32_t parse_literal(parser *p)
{
    fql_token t = p->tok;
    int32_t n = -1;
    if (t.type == TK_STRING) {
        n = string_node(p, &t);
    } else if (t.type == TK_NUMBER) {
        n = new_node(p, N_CONST, t.start);
        if (n >= 0)
            p->ast->nodes[n].val = (fql_value){.type = T_NUM, .u.num = t.num};
    } else if (is_word(p, &t, "true") || is_word(p, &t, "false")) {
        n = new_node(p, N_CONST, t.start);
        if (n >= 0)
            p->ast->nodes[n].val = (fql_value){.type = T_BOOL, .b = p->lx.src[t.start] == 't'};
    } else if (is_word(p, &t, "null")) {
        n = new_node(p, N_CONST, t.start);
        if (n >= 0)
            p->ast->nodes[n].val = (fql_value){.type = T_NULL};
    } else {
        return -2; /* not a literal; caller decides */
    }
    advance(p);
    return n;
}

static int32_t parse_list(parser *p)
{
    int32_t list = new_node(p, N_LIST, p->tok.start);
    advance(p); /* '[' */
    if (list < 0 || p->failed)
        return -1;
    if (p->tok.type == TK_RBRACK) {
        advance(p);
        return list;
    }
    for (;;) {
        int32_t el = parse_literal(p);
        if (el == -2) {
            unexpected(p, "expected a literal (string, number, true, false or null) in a list");
            return -1;
        }
        if (el < 0 || p->failed)
            return -1;
        add_kid(p, list, el);
        if (p->tok.type == TK_RBRACK) {
            advance(p);
            return list;
        }
        if (p->tok.type != TK_COMMA) {
            unexpected(p, "expected ',' or ']'");
            return -1;
        }
        advance(p);
    }
}

static int32_t parse_call(parser *p, const fql_token *name)
{
    size_t i, nf = sizeof functions / sizeof functions[0];
    for (i = 0; i < nf; i++)
        if (!name->escaped && strlen(functions[i].name) == name->len &&
            !memcmp(functions[i].name, p->lx.src + name->start, name->len))
            break;
    if (i == nf) {
        char snip[64], what[96];
        fql__snippet(snip, sizeof snip, p->lx.src + name->start, name->len, 40);
        snprintf(what, sizeof what, "unknown function '%s'", snip);
        fail(p, name->start, what,
             "expected contains, length, lowercase, uppercase, snakecase, kebabcase, "
             "titlecase, typeof or match");
        return -1;
    }
    int32_t call = new_node(p, N_CALL, name->start);
    if (call < 0)
        return -1;
    p->ast->nodes[call].op = functions[i].fn;
    advance(p); /* '(' */
    if (p->tok.type != TK_RPAREN) {
        for (;;) {
            int32_t arg = parse_or(p);
            if (arg < 0 || p->failed)
                return -1;
            add_kid(p, call, arg);
            if (p->tok.type == TK_RPAREN)
                break;
            if (p->tok.type != TK_COMMA) {
                unexpected(p, p->after_cmp ? "expected 'and', 'or', ',' or ')'"
                                           : "expected an operator, 'and', 'or', ',' or ')'");
                return -1;
            }
            advance(p);
        }
    }
    advance(p); /* ')' */
    fql_node *c = &p->ast->nodes[call];
    if (c->nkids != functions[i].arity) {
        char what[96], exp[64];
        snprintf(what, sizeof what, "wrong number of arguments to %s()", functions[i].name);
        snprintf(exp, sizeof exp, "expected %u, got %u", functions[i].arity, c->nkids);
        fail(p, name->start, what, exp);
        return -1;
    }
    uint8_t fn = c->op;
    if (fn == FN_LOWER || fn == FN_UPPER || fn == FN_SNAKE || fn == FN_KEBAB || fn == FN_TITLE) {
        /* Transforms stack lazily on the value; cap the stack (see text.c). */
        c->xfdepth = (uint8_t)(p->ast->nodes[c->kid].xfdepth + 1);
        if (c->xfdepth > FQL_MAX_XF) {
            fail(p, name->start, "too many nested case functions", "the limit is 4");
            return -1;
        }
    }
    return call;
}

static int32_t parse_term(parser *p)
{
    fql_token t = p->tok;
    int32_t n;
    switch (t.type) {
    case TK_NOT:
        if (!enter(p))
            return -1;
        advance(p);
        n = new_node(p, N_NOT, t.start);
        if (n >= 0) {
            int32_t kid = parse_term(p);
            if (kid < 0)
                return -1;
            add_kid(p, n, kid);
        }
        p->depth--;
        return n;
    case TK_LPAREN:
        if (!enter(p))
            return -1;
        advance(p);
        n = parse_or(p);
        if (n < 0 || p->failed)
            return -1;
        if (p->tok.type != TK_RPAREN) {
            unexpected(p, p->after_cmp ? "expected 'and', 'or' or ')'"
                                       : "expected an operator, 'and', 'or' or ')'");
            return -1;
        }
        advance(p);
        p->depth--;
        return n;
    case TK_LBRACK:
        if (!enter(p))
            return -1;
        n = parse_list(p);
        p->depth--;
        return n;
    case TK_PATH:
        if (!is_word(p, &t, "true") && !is_word(p, &t, "false") && !is_word(p, &t, "null")) {
            advance(p);
            if (p->tok.type == TK_LPAREN) {
                if (!enter(p))
                    return -1;
                n = parse_call(p, &t);
                p->depth--;
                return n;
            }
            return path_node(p, &t);
        }
        __attribute__((fallthrough)); /* boolean / null literal */
    default:
        n = parse_literal(p);
        if (n == -2) {
            unexpected(p, "expected a value (field, string, number, true, false, null, list, "
                          "function call, '(' or '!')");
            return -1;
        }
        return n;
    }
}

static int32_t parse_comparison(parser *p)
{
    int32_t left = parse_term(p);
    if (left < 0 || p->failed)
        return -1;
    enum fql_tok op = p->tok.type;
    if (!(op >= TK_EQ && op <= TK_GE) && op != TK_IN) {
        p->after_cmp = false;
        return left;
    }
    size_t pos = p->tok.start;
    advance(p);
    int32_t right = parse_term(p);
    if (right < 0 || p->failed)
        return -1;
    int32_t n = new_node(p, op == TK_IN ? N_IN : N_CMP, pos);
    if (n < 0)
        return -1;
    p->ast->nodes[n].op = (uint8_t)op;
    add_kid(p, n, left);
    add_kid(p, n, right);
    p->after_cmp = true;
    return n;
}

/* and_expr / expr: one n-ary node per chain, built by a loop. */
static int32_t parse_chain(parser *p, enum fql_tok kw, uint8_t kind)
{
    int32_t first = kind == N_OR ? parse_chain(p, TK_AND, N_AND) : parse_comparison(p);
    if (first < 0 || p->failed || p->tok.type != kw)
        return first;
    int32_t n = new_node(p, kind, p->tok.start);
    if (n < 0)
        return -1;
    add_kid(p, n, first);
    /* Appending in order with a tail pointer keeps long chains linear. */
    int32_t tail = first;
    while (p->tok.type == kw) {
        advance(p);
        int32_t next = kind == N_OR ? parse_chain(p, TK_AND, N_AND) : parse_comparison(p);
        if (next < 0 || p->failed)
            return -1;
        p->ast->nodes[tail].next = next;
        p->ast->nodes[n].nkids++;
        tail = next;
    }
    return n;
}

static int32_t parse_or(parser *p) { return parse_chain(p, TK_OR, N_OR); }

bool fql__parse(const char *src, size_t len, fql_ast *ast, fql_error *err)
{
    parser p = {.lx = {.src = src, .len = len, .err = err}, .ast = ast, .err = err};
    memset(ast, 0, sizeof *ast);
    ast->root = -1;
    if (len > FQL_MAX_SOURCE) {
        char what[96];
        snprintf(what, sizeof what, "FQL text too long (%zu bytes)", len);
        fql__error_at(err, src, 0, 0, what, "the limit is 100000 bytes");
        return false;
    }
    advance(&p);
    if (p.failed)
        return false;
    if (p.tok.type == TK_EOF) {
        fail(&p, 0, "empty condition", "expected an expression or 'all'");
        return false;
    }
    if (is_word(&p, &p.tok, "all")) {
        fql_token t = p.tok;
        fql_lexer save = p.lx;
        advance(&p);
        if (p.failed)
            return false;
        if (p.tok.type == TK_EOF) {
            ast->all = true;
            return true;
        }
        p.lx = save; /* "all" followed by more: it is just a field named all */
        p.tok = t;
    }
    ast->root = parse_or(&p);
    if (!p.failed && p.tok.type != TK_EOF)
        unexpected(&p, p.after_cmp ? "expected 'and', 'or' or end of input"
                                   : "expected an operator, 'and', 'or' or end of input");
    return !p.failed && ast->root >= 0;
}

void fql__ast_free(fql_ast *ast)
{
    free(ast->nodes);
    free(ast->segs);
    free(ast->pool);
    memset(ast, 0, sizeof *ast);
}

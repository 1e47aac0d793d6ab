/* Internal interfaces of the FQL engine: tokens, the syntax tree, the compiled
 * program and runtime values. Nothing here is part of the public API (fql.h).
 * Non-static symbols are prefixed fql__ so they cannot clash with the rest of
 * libmanifold.a. */
#ifndef MANIFOLD_FQL_INT_H
#define MANIFOLD_FQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fql/fql.h"

/* ---- lexer ------------------------------------------------------------- */

enum fql_tok {
    TK_EOF, TK_PATH, TK_STRING, TK_NUMBER,
    TK_AND, TK_OR, TK_IN, TK_NOT,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA,
    TK_BAD /* lexical error; the lexer has already filled in the error */
};

typedef struct fql_token {
    enum fql_tok type;
    size_t start, len; /* span in the source, quotes included for strings */
    double num;        /* TK_NUMBER */
    bool escaped;      /* TK_PATH contains a '\' escape */
} fql_token;

typedef struct fql_lexer {
    const char *src;
    size_t len, pos;
    fql_error *err;
} fql_lexer;

/* Scans the next token. On a lexical error returns TK_BAD with the error set. */
fql_token fql__lex(fql_lexer *lx);
/* Fills `err` with "<what> at column N[, <expected>]" for byte offset `off`;
 * `expected` may be NULL. Multi-line sources say "line L, column N". */
void fql__error_at(fql_error *err, const char *src, size_t srclen, size_t off,
                   const char *what, const char *expected);
/* Copies at most `max` bytes of text into buf as printable, valid UTF-8
 * (control and invalid bytes become '?'), adding "..." when cut. */
void fql__snippet(char *buf, size_t n, const char *s, size_t len, size_t max);
/* Describes a token for messages: "')'", "end of input", "string 'ab'"... */
void fql__describe(const char *src, const fql_token *t, char *buf, size_t n);

/* ---- values ------------------------------------------------------------ */

enum fql_type {
    T_NULL, T_BOOL, T_NUM, T_STR,
    T_LIST,  /* JSON array from the event: u.j */
    T_LLIST, /* literal list from the program: u.lit[0..len) */
    T_OBJ    /* JSON object: u.j */
};

/* String transforms applied lazily, code point by code point, when a string is
 * read (lowercase() etc.): a transformed string is never materialised, so
 * evaluation needs no memory. xf[0] is applied first. */
enum fql_xform { XF_LOWER = 1, XF_UPPER, XF_SNAKE, XF_KEBAB, XF_TITLE };
#define FQL_MAX_XF 4

typedef struct fql_value {
    uint8_t type;
    uint8_t nxf;            /* T_STR: number of transforms in xf[] */
    uint8_t xf[FQL_MAX_XF]; /* T_STR: enum fql_xform */
    bool b;                 /* T_BOOL */
    size_t len;             /* T_STR: bytes; T_LLIST: elements */
    union {
        double num;
        const char *s;
        const json_t *j;
        const struct fql_value *lit;
    } u;
} fql_value;

bool fql__equal(const fql_value *a, const fql_value *b, int depth);

/* Code point iterator over a (possibly transformed) string. Bytes that are not
 * well-formed UTF-8 come out one at a time as FQL_RAW|byte, which is outside
 * Unicode, so they compare unequal to every real character. */
#define FQL_RAW 0x200000u
#define FQL_CP_END UINT32_MAX
typedef struct fql_iter {
    const unsigned char *p, *end;
    uint8_t nxf;
    uint8_t xf[FQL_MAX_XF];
    bool word_start[FQL_MAX_XF]; /* XF_TITLE state: previous char was a space */
} fql_iter;

uint32_t fql__iter_next_slow(fql_iter *it);

static inline void fql__iter_init(fql_iter *it, const fql_value *str)
{
    it->p = (const unsigned char *)str->u.s;
    it->end = it->p + str->len;
    it->nxf = str->nxf;
    for (unsigned i = 0; i < str->nxf; i++) {
        it->xf[i] = str->xf[i];
        it->word_start[i] = true;
    }
}

/* Inline fast path: untransformed ASCII is by far the common case. */
static inline uint32_t fql__iter_next(fql_iter *it)
{
    if (it->p >= it->end)
        return FQL_CP_END;
    if (!it->nxf && *it->p < 0x80)
        return *it->p++;
    return fql__iter_next_slow(it);
}
uint32_t fql__utf8_decode(const unsigned char **p, const unsigned char *end);
unsigned fql__utf8_len(uint32_t cp);

struct fql_caserun { uint32_t lo; uint16_t n; uint8_t stride; int32_t delta; };
extern const struct fql_caserun fql_lower_runs[], fql_upper_runs[];
extern const unsigned fql_lower_runs_len, fql_upper_runs_len;
uint32_t fql__tolower(uint32_t cp);
uint32_t fql__toupper(uint32_t cp);

/* Glob match of spec/fql.md §5.1; a malformed pattern never matches.
 * `checked`: the pattern is already known to be well-formed (a constant
 * validated at compile time), so the validation pass is skipped. */
bool fql__glob(const fql_value *str, const fql_value *pat, bool checked);
bool fql__glob_valid(const fql_value *pat);

/* ---- syntax tree (compile time only) ----------------------------------- */

enum fql_node_kind {
    N_CONST, /* literal: val (strings point into the pool by offset, see str_off) */
    N_LIST,  /* literal list: children are N_CONST */
    N_PATH,  /* path: segs */
    N_NOT, N_AND, N_OR,
    N_CMP,   /* op: TK_EQ..TK_GE, two children */
    N_IN,
    N_CALL   /* fn: enum fql_fn */
};

enum fql_fn { FN_CONTAINS, FN_LENGTH, FN_LOWER, FN_UPPER, FN_SNAKE, FN_KEBAB,
              FN_TITLE, FN_TYPEOF, FN_MATCH, FN__COUNT };

typedef struct fql_node {
    uint8_t kind, op;
    int32_t kid, next;   /* first child / next sibling, as node indices; -1 = none */
    uint32_t nkids;
    size_t pos;          /* source offset, for messages */
    uint8_t xfdepth;     /* nesting of string transforms producing this value */
    fql_value val;       /* N_CONST */
    size_t str_off;      /* N_CONST string: offset into the pool */
    uint32_t seg0, nseg; /* N_PATH: range in the segment table */
    uint32_t pathid;     /* N_PATH: index in the program's path table */
} fql_node;

typedef struct fql_seg {
    size_t off;    /* key bytes: pool offset at compile time */
    uint32_t len;
    int32_t index; /* >= 0 when the key is a canonical array index */
    const char *key;
} fql_seg;

typedef struct fql_ast {
    fql_node *nodes;
    size_t nnodes, cap;
    fql_seg *segs;
    size_t nsegs, segcap;
    char *pool;
    size_t poolsz, poolcap;
    int32_t root;
    bool all;
} fql_ast;

/* Parses `src` into `ast`; returns false with `err` filled in. */
bool fql__parse(const char *src, size_t len, fql_ast *ast, fql_error *err);
void fql__ast_free(fql_ast *ast);

/* ---- compiled program -------------------------------------------------- */

enum fql_op {
    OP_CONST,    /* push consts[arg] */
    OP_PATH,     /* push the event value at paths[arg] */
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, /* pop 2, push bool */
    OP_NOT,      /* pop, push !is_true */
    OP_TEST,     /* pop, push is_true */
    OP_AND_JMP,  /* pop; if not true: push false, jump to arg */
    OP_OR_JMP,   /* pop; if true: push true, jump to arg */
    OP_CONTAINS, OP_LENGTH, OP_XFORM /* aux = enum fql_xform */, OP_TYPEOF,
    OP_MATCH,    /* aux: 0 = validate pattern, 1 = constant known valid, 2 = known invalid */
    OP_EQ_PC,    /* fused "path = const": push(paths[arg] = consts[aux]) */
    OP_CMPK,     /* fused "top <op> const": aux = OP_EQ..OP_GE, arg = const */
    OP_INK,      /* fused "top in const list": arg = const */
    OP_RET       /* result = is_true(top) */
};

typedef struct fql_insn {
    uint8_t op;
    uint8_t pad;
    uint16_t aux;
    uint32_t arg;
} fql_insn;

/* A path, or a shared prefix of paths: segs[seg0 .. seg0+nseg). Paths used
 * more than once in a program (or sharing a prefix, like context.page.path and
 * context.page.url) get a cache slot, so one evaluation looks each up only
 * once: `base` is the nearest proper prefix with a slot (-1: start from the
 * event), `slot` this path's own slot (-1: none). */
#define FQL_PATH_SLOTS 64
typedef struct fql_path {
    uint32_t seg0, nseg;
    int32_t base;
    int32_t slot;
} fql_path;

struct fql_program {
    const fql_insn *code;
    const fql_value *consts;
    const fql_path *paths;
    const fql_seg *segs;
    const char *pool;
    uint32_t ncode, nconsts, npaths, nsegs;
    uint32_t max_stack;
    bool all;
    /* code, consts, paths, segs and pool follow in the same allocation */
};

#endif

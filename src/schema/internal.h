/*
 * internal.h — shared between the files of src/schema; not part of the public API.
 *
 * A compiled schema is a graph of nodes. Each node holds one "program": an array of
 * keyword instructions (kw_t) sorted by the instance type they apply to, so the
 * interpreter runs the type-independent instructions and then only the slice for the
 * instance's type. $ref instructions point straight at their target node.
 */
#ifndef MANIFOLD_SCHEMA_INTERNAL_H
#define MANIFOLD_SCHEMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema/schema.h"
#include "util/jview.h"

/* ----- arena: every compile-time allocation of a schema, freed at once ------------- */

typedef struct arena_block arena_block_t;
typedef struct arena {
    arena_block_t *head;
    bool failed; /* an allocation failed; the compile reports "out of memory" */
} arena_t;

void *sch_arena_alloc(arena_t *a, size_t n); /* zeroed, max_align_t aligned; NULL on OOM */
char *sch_arena_strndup(arena_t *a, const char *s, size_t n);
void sch_arena_free(arena_t *a);

/* ----- numbers ------------------------------------------------------------------------ */

typedef struct num {
    bool is_int;
    long long i;
    double d;
} num_t;

num_t sch_num_of(const json_t *j); /* j is an integer or a real */
int sch_num_cmp(num_t a, num_t b); /* exact: -1, 0, 1 */
bool sch_num_multiple_of(num_t x, num_t m);
bool sch_num_is_integral(num_t x);
int sch_num_format(num_t x, char *buf, size_t len); /* shortest round-trip text */

/* ----- regexes (ECMA-262 on PCRE2) ----------------------------------------------------- */

typedef struct re {
    pcre2_code *code;
    bool jit; /* JIT-compiled: matched through pcre2_jit_match */
} re_t;

/* Translates the ECMA-262 pattern to PCRE2 and compiles it. 0 on success, else -1
 * with a message in `msg`. */
int sch_re_compile(re_t *re, const char *pat, size_t len, char *msg, size_t msglen);
/* 1 match, 0 no match, -1 could not decide (match limit, invalid UTF-8). Thread-safe;
 * allocates only once per thread (its match data). */
int sch_re_match(const re_t *re, const char *s, size_t n);
void sch_re_free(re_t *re);
bool sch_re_is_ecma(const char *pat, size_t len); /* compiles as an ECMA-262 regex? */

/* ----- formats ------------------------------------------------------------------------ */

enum { FMT_UNKNOWN = -1 };
int sch_format_lookup(const char *name); /* an id, or FMT_UNKNOWN */
bool sch_format_check(int id, const char *s, size_t n);
const char *sch_format_name(int id);
enum { FMT_REGEX_ID = 0 }; /* sch_format_lookup("regex") */

/* ----- URIs and JSON pointers ---------------------------------------------------------- */

/* RFC 3986 §5.2 reference resolution; `base` may itself be relative or empty.
 * Returns a malloc'd string, NULL on OOM. */
char *sch_uri_resolve(const char *base, const char *ref);
/* Length of the part before '#'. */
size_t sch_uri_doc_len(const char *uri);
/* Percent-decodes s[0..n) into a malloc'd NUL-terminated buffer (length in *outlen). */
char *sch_uri_unescape(const char *s, size_t n, size_t *outlen);
/* Follows a JSON pointer (already percent-decoded; "" is the whole document). */
json_t *sch_json_pointer_get(json_t *root, const char *ptr, size_t len);
/* Appends "/"+escaped key to a growing buffer; returns 0 or -1 on OOM. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf_t;
void sch_sb_putn(sbuf_t *b, const char *s, size_t n);
void sch_sb_puts(sbuf_t *b, const char *s);
void sch_sb_putc(sbuf_t *b, char c);
void sch_sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sch_sb_pointer_seg(sbuf_t *b, const char *key, size_t n); /* "/" + ~0 ~1 escaping */

/* ----- the compiled program --------------------------------------------------------------- */

enum op {
    /* any instance type */
    OP_FALSE, OP_TYPE, OP_ENUM, OP_CONST, OP_REF, OP_ALLOF, OP_ANYOF, OP_ONEOF, OP_NOT,
    OP_IF,
    /* numbers */
    OP_MIN, OP_MAX, OP_XMIN, OP_XMAX, OP_MULOF,
    /* strings */
    OP_MINLEN, OP_MAXLEN, OP_PATTERN, OP_FORMAT,
    /* arrays */
    OP_ITEMS, OP_TUPLE, OP_MINITEMS, OP_MAXITEMS, OP_UNIQUE, OP_CONTAINS,
    /* objects */
    OP_PROPS, OP_REQUIRED, OP_MINPROPS, OP_MAXPROPS, OP_DEPS, OP_PROPNAMES,
};

/* Instance categories; a node's instructions are grouped in this order. */
enum { CAT_ANY, CAT_NUM, CAT_STR, CAT_ARR, CAT_OBJ, CAT_N };

enum {
    T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_NUM = 16, T_INT = 32, T_STR = 64,
};

typedef struct node node_t;

/* A string with its length, for the violation texts prepared at compile time. */
typedef struct str {
    const char *s;
    uint32_t n;
} str_t;
#define STR_LIT(x) ((str_t){"" x, sizeof(x) - 1})

typedef struct key {
    const char *s;
    size_t n;
    uint64_t head; /* jview_key_head(s, n) */
    uint32_t hash; /* jview_key_hash(head, n) */
} skey_t;

static inline skey_t sch_key(const char *s, size_t n)
{
    uint64_t head = jview_key_head(s, n);
    return (skey_t){s, n, head, jview_key_hash(head, n)};
}

typedef struct prop {
    skey_t key;
    node_t *node;
    bool required; /* also listed in "required": checked by the same lookup */
    bool trivial;  /* node accepts everything: no need to even look */
    uint32_t leaf; /* node is a lone "type": T_* mask checked inline */
    uint8_t draft; /* the node's */
} prop_t;

typedef struct pprop {
    re_t re;
    const char *src;
    node_t *node;
} pprop_t;

typedef struct props {
    prop_t *v;       /* in schema order */
    prop_t **sorted; /* by (length, bytes), for binary search */
    size_t n, nreq;  /* nreq: how many have .required */
    uint16_t *ph;    /* perfect hash of the names (slot -> index + 1), or NULL */
    uint32_t ph_mask, ph_mul;
    pprop_t *pat;
    size_t npat;
    node_t *add;    /* additionalProperties schema, or NULL */
    bool add_false; /* additionalProperties: false */
    str_t add_spath, pat_spath, req_spath;
    str_t loc; /* the node's location, for the "nested too deep" violation */
    bool scan_keys; /* must walk the instance's keys (patterns or additional present) */
} props_t;

typedef struct dep {
    skey_t key;
    node_t *node;  /* schema form, or NULL */
    skey_t *req;   /* property-list form */
    size_t nreq;
    str_t msg; /* "\" is required when \"<key>\" is present" */
} dep_t;

typedef struct kw {
    uint8_t op;
    str_t spath; /* keyword location, for violations */
    str_t msg;   /* the message, or its fixed part; built at compile time */
    union {
        uint32_t types;      /* OP_TYPE */
        struct {
            const jview_t *value; /* OP_ENUM: an array; OP_CONST: the value */
            const skey_t *strs;   /* OP_ENUM whose items are all strings: them, for
                                     comparisons by head and length (else NULL) */
        } en;
        node_t *sub;         /* OP_REF, OP_NOT, OP_ITEMS, OP_CONTAINS, OP_PROPNAMES */
        struct {
            node_t **v;
            size_t n;
        } list; /* OP_ALLOF, OP_ANYOF, OP_ONEOF */
        struct {
            node_t *cond, *then, *els;
        } cond; /* OP_IF */
        struct {
            num_t n;
            bool excl; /* draft-04 boolean exclusiveMinimum/Maximum */
        } lim;         /* OP_MIN, OP_MAX, OP_XMIN, OP_XMAX, OP_MULOF */
        size_t count;  /* OP_MINLEN .. OP_MAXPROPS */
        struct {
            re_t *re;
            const char *src;
        } pat;          /* OP_PATTERN */
        int format;     /* OP_FORMAT */
        struct {
            node_t **v;
            size_t n;
            node_t *add;
            bool add_false;
            str_t add_spath, add_msg;
        } tuple; /* OP_TUPLE */
        props_t *props;
        struct {
            skey_t *v;
            size_t n;
        } req; /* OP_REQUIRED */
        struct {
            dep_t *v;
            size_t n;
        } deps;
    } u;
} kw_t;

struct node {
    kw_t *ops; /* no instructions (an empty schema, true): always valid */
    uint16_t cat[CAT_N + 1]; /* ops[cat[c] .. cat[c+1]) apply to category c */
    uint8_t draft;
    uint8_t mark;     /* cycle check */
    bool flat;        /* no instruction has subschemas: validating it never recurses */
    struct props *props; /* the program is "properties" (after "type", if any): its props */
    const struct kw *one; /* the program is "type" and one more instruction: that one */
    uint8_t one_cat;      /* its category */
    uint32_t leaf;    /* the program is one "type" instruction: its T_* mask */
    uint32_t types;   /* ops[0] is "type" (checked from here, ops untouched): its mask */
    str_t loc; /* "#/json/pointer" in the root document, "uri#/pointer" elsewhere */
};

struct schema {
    arena_t arena;
    node_t *root;
    schema_draft_t draft;
    json_t **docs; /* kept alive: instructions point into them */
    size_t ndocs;
    jview_doc_t *values; /* views of the enum and const values */
    re_t **res; /* every compiled regex, to free */
    size_t nres, capres;
};

/* The keyword each instruction implements ("type", "minimum", ...). */
extern const char *const sch_op_keyword[];

/* "string or null" for a T_* mask */
void sch_types_text(uint32_t mask, char *buf, size_t len);

/* The perfect hash of property names used by props_t.ph: a function of the key's hash,
 * which an instance's members carry precomputed. */
static inline uint32_t sch_prop_hash(uint32_t hash, uint32_t mul)
{
    return (hash * mul) >> 16;
}

/* Deep equality with JSON Schema semantics: 1 == 1.0, objects unordered. */
bool sch_value_equal(const jview_t *a, const jview_t *b);
uint64_t sch_value_hash(const jview_t *a); /* equal values hash alike */

static inline num_t sch_num_of_view(const jview_t *v)
{
    return v->type == JV_INT ? (num_t){.is_int = true, .i = v->u.i, .d = (double)v->u.i}
                             : (num_t){.is_int = false, .i = 0, .d = v->u.d};
}

/* schema_compile with a set of formats that assert regardless of the flags
 * (bit i = format id i); used by the meta-schema checker for "regex". */
schema_t *schema_compile_ex(json_t *doc, const schema_options_t *opts, uint64_t formats,
                            schema_error_t *err);

schema_draft_t schema_draft_of_uri(const char *uri); /* from a "$schema" value; AUTO if unknown */

void schema_set_error(schema_error_t *err, const char *ptr, size_t ptrlen, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

#endif

/*
 * regex.c — ECMA-262 regular expressions (what JSON Schema's "pattern" means) on top
 * of PCRE2.
 *
 * The pattern is rewritten into PCRE2 syntax with the same meaning, following the
 * ECMAScript "u" (unicode) mode that JavaScript validators use:
 *   - `$` matches only at the very end (PCRE2_DOLLAR_ENDONLY), `^` only at the start;
 *   - `.` excludes the four ECMAScript line terminators, not just \n;
 *   - \d \w \b stay ASCII (PCRE2 without UCP), but \s is ECMAScript's Unicode set,
 *     spelled out because PCRE2's \s is ASCII-only without UCP;
 *   - \uXXXX (with surrogate pairs), \u{X}, \xHH, \cX, \v, \0 become PCRE2 escapes;
 *   - \p{Letter}-style long General_Category names map to PCRE2's short ones;
 *   - `[` inside a class is a literal, never a POSIX [:class:];
 *   - escapes and groups PCRE2 has but ECMAScript lacks (\A \z \Q \K \R (?i) (?R)
 *     (*VERB) ...) are errors, so a pattern means the same here as in a browser.
 * Matching runs under match/depth/heap limits; a pattern that hits one is reported as
 * not matching (the caller records a violation), so catastrophic backtracking cannot
 * stall the server.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"
#include "util/util.h"

/* ECMAScript WhiteSpace + LineTerminator, as class contents, and its complement. */
#define WS_SET "\\t\\n\\x{0b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}" \
               "\\x{202f}\\x{205f}\\x{3000}\\x{feff}"
#define NOT_WS_SET "\\x{00}-\\x{08}\\x{0e}-\\x{1f}\\x{21}-\\x{9f}\\x{a1}-\\x{167f}"    \
                   "\\x{1681}-\\x{1fff}\\x{200b}-\\x{2027}\\x{202a}-\\x{202e}"         \
                   "\\x{2030}-\\x{205e}\\x{2060}-\\x{2fff}\\x{3001}-\\x{fefe}"         \
                   "\\x{ff00}-\\x{10ffff}"

/* General_Category values: ECMAScript accepts long names and aliases; PCRE2 10.42
 * knows the short ones only. */
static const char *const gc_names[][3] = {
    {"C", "Other", NULL},
    {"Cc", "Control", "cntrl"},
    {"Cf", "Format", NULL},
    {"Cn", "Unassigned", NULL},
    {"Co", "Private_Use", NULL},
    {"Cs", "Surrogate", NULL},
    {"L", "Letter", NULL},
    {"L&", "Cased_Letter", "LC"},
    {"Ll", "Lowercase_Letter", NULL},
    {"Lm", "Modifier_Letter", NULL},
    {"Lo", "Other_Letter", NULL},
    {"Lt", "Titlecase_Letter", NULL},
    {"Lu", "Uppercase_Letter", NULL},
    {"M", "Mark", "Combining_Mark"},
    {"Mc", "Spacing_Mark", NULL},
    {"Me", "Enclosing_Mark", NULL},
    {"Mn", "Nonspacing_Mark", NULL},
    {"N", "Number", NULL},
    {"Nd", "Decimal_Number", "digit"},
    {"Nl", "Letter_Number", NULL},
    {"No", "Other_Number", NULL},
    {"P", "Punctuation", "punct"},
    {"Pc", "Connector_Punctuation", NULL},
    {"Pd", "Dash_Punctuation", NULL},
    {"Pe", "Close_Punctuation", NULL},
    {"Pf", "Final_Punctuation", NULL},
    {"Pi", "Initial_Punctuation", NULL},
    {"Po", "Other_Punctuation", NULL},
    {"Ps", "Open_Punctuation", NULL},
    {"S", "Symbol", NULL},
    {"Sc", "Currency_Symbol", NULL},
    {"Sk", "Modifier_Symbol", NULL},
    {"Sm", "Math_Symbol", NULL},
    {"So", "Other_Symbol", NULL},
    {"Z", "Separator", NULL},
    {"Zl", "Line_Separator", NULL},
    {"Zp", "Paragraph_Separator", NULL},
    {"Zs", "Space_Separator", NULL},
};

static const char *gc_short(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++)
        for (int k = 0; k < 3; k++) {
            const char *name = gc_names[i][k];
            if (name && strlen(name) == n && memcmp(name, s, n) == 0)
                return gc_names[i][0];
        }
    return NULL;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Reads exactly `k` hex digits at p[*i]; -1 if absent. */
static long hexn(const char *p, size_t n, size_t *i, int k)
{
    long v = 0;
    if (*i + (size_t)k > n)
        return -1;
    for (int j = 0; j < k; j++) {
        int h = hex_value(p[*i + (size_t)j]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    *i += (size_t)k;
    return v;
}

typedef struct tr {
    const char *p;
    size_t n, i;
    bool in_class;
    sbuf_t out;
    const char *err;
} tr_t;

/* \u escapes: \uXXXX, a \uHIGH\uLOW pair, or \u{X..}. p[i] is just after "\u". */
static long read_u(tr_t *t)
{
    if (t->i < t->n && t->p[t->i] == '{') {
        size_t j = t->i + 1;
        long v = 0;
        int digits = 0;
        while (j < t->n && hex_value(t->p[j]) >= 0) {
            v = v * 16 + hex_value(t->p[j++]);
            if (v > 0x10FFFF)
                return -1;
            digits++;
        }
        if (digits == 0 || j >= t->n || t->p[j] != '}')
            return -1;
        t->i = j + 1;
        return v;
    }
    long v = hexn(t->p, t->n, &t->i, 4);
    if (v >= 0xD800 && v <= 0xDBFF && t->i + 6 <= t->n && t->p[t->i] == '\\' &&
        t->p[t->i + 1] == 'u') {
        size_t j = t->i + 2;
        long lo = hexn(t->p, t->n, &j, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            t->i = j;
            return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        }
    }
    return v;
}

static void put_cp(tr_t *t, long cp)
{
    if (cp < 0) {
        t->err = "invalid escape";
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        t->err = "lone surrogate escapes are not supported";
    } else {
        sch_sb_printf(&t->out, "\\x{%lx}", (unsigned long)cp);
    }
}

/* t->p[t->i] is the character after a backslash. */
static void escape(tr_t *t)
{
    char e = t->p[t->i++];
    switch (e) {
    case 'd': case 'D': case 'w': case 'W':
    case 't': case 'n': case 'r': case 'f':
        sch_sb_putc(&t->out, '\\');
        sch_sb_putc(&t->out, e);
        return;
    case 'b':
        sch_sb_puts(&t->out, t->in_class ? "\\x{08}" : "\\b");
        return;
    case 'B':
        if (t->in_class)
            t->err = "\\B inside a character class";
        else
            sch_sb_puts(&t->out, "\\B");
        return;
    case 's':
        sch_sb_puts(&t->out, t->in_class ? WS_SET : "[" WS_SET "]");
        return;
    case 'S':
        sch_sb_puts(&t->out, t->in_class ? NOT_WS_SET : "[^" WS_SET "]");
        return;
    case 'v':
        sch_sb_puts(&t->out, "\\x{0b}");
        return;
    case '0':
        if (t->i < t->n && is_digit(t->p[t->i]))
            t->err = "octal escapes are not allowed";
        else
            sch_sb_puts(&t->out, "\\x{00}");
        return;
    case 'c':
        if (t->i < t->n && is_alpha(t->p[t->i])) {
            sch_sb_printf(&t->out, "\\x{%02x}", t->p[t->i] % 32);
            t->i++;
        } else {
            t->err = "invalid control escape";
        }
        return;
    case 'x':
        put_cp(t, hexn(t->p, t->n, &t->i, 2));
        return;
    case 'u':
        put_cp(t, read_u(t));
        return;
    case 'p':
    case 'P': {
        if (t->i >= t->n || t->p[t->i] != '{') {
            t->err = "\\p needs {property}";
            return;
        }
        size_t start = t->i + 1, end = start;
        while (end < t->n && t->p[end] != '}' && (is_alpha(t->p[end]) || is_digit(t->p[end]) ||
                                                   t->p[end] == '_' || t->p[end] == '='))
            end++;
        if (end >= t->n || t->p[end] != '}' || end == start) {
            t->err = "invalid \\p{property}";
            return;
        }
        const char *name = t->p + start;
        size_t len = end - start;
        const char *eq = memchr(name, '=', len);
        const char *gc = NULL;
        if (!eq)
            gc = gc_short(name, len);
        else if ((eq - name == 16 && memcmp(name, "General_Category", 16) == 0) ||
                 (eq - name == 2 && memcmp(name, "gc", 2) == 0))
            gc = gc_short(eq + 1, len - (size_t)(eq + 1 - name));
        sch_sb_putc(&t->out, '\\');
        sch_sb_putc(&t->out, e);
        sch_sb_putc(&t->out, '{');
        if (gc)
            sch_sb_puts(&t->out, gc);
        else
            sch_sb_putn(&t->out, name, len); /* scripts and binary properties: PCRE2 spelling */
        sch_sb_putc(&t->out, '}');
        t->i = end + 1;
        return;
    }
    case 'k': {
        const char *gt = t->i < t->n && t->p[t->i] == '<' ? memchr(t->p + t->i, '>', t->n - t->i)
                                                          : NULL;
        if (!gt || t->in_class) {
            t->err = "invalid \\k";
            return;
        }
        sch_sb_puts(&t->out, "\\k");
        sch_sb_putn(&t->out, t->p + t->i, (size_t)(gt - (t->p + t->i)) + 1);
        t->i = (size_t)(gt - t->p) + 1;
        return;
    }
    default:
        break;
    }
    if (e >= '1' && e <= '9') {
        if (t->in_class) {
            t->err = "invalid escape in character class";
            return;
        }
        unsigned long v = (unsigned long)(e - '0');
        while (t->i < t->n && is_digit(t->p[t->i]) && v < 100000)
            v = v * 10 + (unsigned long)(t->p[t->i++] - '0');
        sch_sb_printf(&t->out, "\\g{%lu}", v);
        return;
    }
    if (is_alpha(e) || (unsigned char)e >= 0x80 || e == '_') {
        t->err = "invalid escape";
        return;
    }
    /* identity escape of a syntax character */
    sch_sb_putc(&t->out, '\\');
    sch_sb_putc(&t->out, e);
}

static void group_open(tr_t *t)
{
    /* t->p[t->i] is '(' */
    t->i++;
    if (t->i < t->n && t->p[t->i] == '*') {
        t->err = "nothing to repeat";
        return;
    }
    if (t->i < t->n && t->p[t->i] == '?') {
        const char *q = t->p + t->i + 1;
        size_t left = t->n - t->i - 1;
        size_t take = 0;
        if (left >= 1 && (q[0] == ':' || q[0] == '=' || q[0] == '!'))
            take = 1;
        else if (left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!'))
            take = 2;
        else if (left >= 2 && q[0] == '<' && (is_alpha(q[1]) || q[1] == '_' || q[1] == '$'))
            take = 1; /* named group: PCRE2 checks the name */
        if (!take) {
            t->err = "invalid group";
            return;
        }
        sch_sb_putn(&t->out, "(?", 2);
        sch_sb_putn(&t->out, q, take);
        t->i += 1 + take;
        return;
    }
    sch_sb_putc(&t->out, '(');
}

/* Returns a malloc'd PCRE2 pattern, or NULL with *err set. */
static char *translate(const char *pat, size_t len, const char **err)
{
    tr_t t = {.p = pat, .n = len};
    sch_sb_putn(&t.out, "", 0);
    while (t.i < t.n && !t.err && !t.out.failed) {
        char c = t.p[t.i];
        if (c == '\0') { /* PCRE2 gets a NUL-terminated pattern */
            sch_sb_puts(&t.out, "\\x{00}");
            t.i++;
        } else if (c == '\\') {
            if (t.i + 1 >= t.n) {
                t.err = "\\ at end of pattern";
                break;
            }
            t.i++;
            escape(&t);
        } else if (t.in_class) {
            if (c == ']')
                t.in_class = false;
            if (c == '[')
                sch_sb_putc(&t.out, '\\');
            sch_sb_putc(&t.out, c);
            t.i++;
        } else if (c == '[') {
            t.in_class = true;
            sch_sb_putc(&t.out, '[');
            t.i++;
            if (t.i < t.n && t.p[t.i] == '^') {
                sch_sb_putc(&t.out, '^');
                t.i++;
            }
        } else if (c == '.') {
            sch_sb_puts(&t.out, "[^\\n\\r\\x{2028}\\x{2029}]");
            t.i++;
        } else if (c == '(') {
            group_open(&t);
        } else {
            sch_sb_putc(&t.out, c);
            t.i++;
        }
    }
    if (!t.err && t.in_class)
        t.err = "missing ]";
    if (!t.err && t.out.failed)
        t.err = "out of memory";
    if (t.err) {
        free(t.out.s);
        *err = t.err;
        return NULL;
    }
    return t.out.s;
}

enum { RE_MAX_PATTERN = 64 * 1024 };

int sch_re_compile(re_t *re, const char *pat, size_t len, char *msg, size_t msglen)
{
    re->code = NULL;
    if (len > RE_MAX_PATTERN) {
        snprintf(msg, msglen, "regular expression longer than %d bytes", RE_MAX_PATTERN);
        return -1;
    }
    const char *terr = NULL;
    char *p = translate(pat, len, &terr);
    if (!p) {
        snprintf(msg, msglen, "invalid regular expression: %s", terr);
        return -1;
    }
    int ec;
    PCRE2_SIZE off;
    re->code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |
                                 PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP,
                             &ec, &off, NULL);
    free(p);
    if (!re->code) {
        char buf[120];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)buf, sizeof buf);
        snprintf(msg, msglen, "invalid regular expression: %s", buf);
        return -1;
    }
    /* JIT is an optimisation only: without it matching falls back to the interpreter. */
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

void sch_re_free(re_t *re)
{
    pcre2_code_free(re->code);
    re->code = NULL;
}

bool sch_re_is_ecma(const char *pat, size_t len)
{
    const char *terr;
    char *p = translate(pat, len, &terr);
    if (!p)
        return false;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |
                                         PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP,
                                     &ec, &off, NULL);
    free(p);
    pcre2_code_free(code);
    return code != NULL;
}

/* Matching needs a pcre2_match_data. One per thread, created on first use and freed
 * when the thread exits, keeps validation allocation-free and thread-safe. */
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static pthread_key_t re_key;
static pcre2_match_context *re_mctx;

static void re_md_free(void *md) { pcre2_match_data_free(md); }

static void re_init(void)
{
    pthread_key_create(&re_key, re_md_free);
    re_mctx = pcre2_match_context_create(NULL);
    if (re_mctx) {
        pcre2_set_match_limit(re_mctx, 1000000);
        pcre2_set_depth_limit(re_mctx, 10000);
        pcre2_set_heap_limit(re_mctx, 16 * 1024); /* KiB */
    }
}

/* The calling thread's match data, cached in thread-local storage: the pthread key
 * only serves to free it when the thread exits. */
static _Thread_local pcre2_match_data *re_md;

int sch_re_match(const re_t *re, const char *s, size_t n)
{
    pcre2_match_data *md = re_md;
    if (!md) {
        pthread_once(&re_once, re_init);
        md = pcre2_match_data_create(1, NULL);
        if (!md || pthread_setspecific(re_key, md) != 0) {
            pcre2_match_data_free(md);
            return -1;
        }
        re_md = md;
    }
    /* pcre2_jit_match skips pcre2_match's checks, the UTF-8 scan of the subject among
     * them: subjects are jansson strings and keys, which jansson has validated. */
    int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, re_mctx)
                     : pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, re_mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_JIT, md, re_mctx);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

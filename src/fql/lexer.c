/* FQL lexer (spec/fql.md §1) and the position/error helpers.
 *
 * The lexer is pull-based: the parser asks for one token at a time, so there is
 * no token array to allocate. Tokens are spans of the source; strings have no
 * escape sequences, so a string token's content is simply the span minus its
 * quotes. Path tokens keep their '\' escapes; the parser unescapes them into
 * the program's string pool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fql/fql_int.h"

#define MAX_NUMBER_LEN 400 /* enough digits for any double; strtod needs a copy */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Identifier characters. Non-ASCII bytes are accepted unescaped (inferred:
 * friendlier than the reference lexer, and unambiguous). */
static bool is_ident_start(unsigned char c)
{
    return is_alpha(c) || c == '_' || c == '\\' || c >= 0x80;
}
static bool is_ident_char(unsigned char c)
{
    return is_ident_start(c) || is_digit(c) || c == '-';
}

void fql__snippet(char *buf, size_t n, const char *s, size_t len, size_t max)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t o = 0;
    if (n == 0)
        return;
    while (p < end && (size_t)(p - (const unsigned char *)s) < max) {
        const unsigned char *q = p;
        uint32_t cp = fql__utf8_decode(&q, end);
        size_t k = (size_t)(q - p);
        if (cp < 0x20 || cp == 0x7f || (cp & FQL_RAW)) {
            if (o + 1 >= n)
                break;
            buf[o++] = '?';
        } else {
            if (o + k >= n)
                break;
            memcpy(buf + o, p, k);
            o += k;
        }
        p = q;
    }
    if (p < end && o + 3 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

void fql__error_at(fql_error *err, const char *src, size_t srclen, size_t off,
                   const char *what, const char *expected)
{
    if (!err)
        return;
    unsigned line = 1, col = 1;
    bool multiline = memchr(src, '\n', srclen) != NULL;
    if (off > srclen)
        off = srclen;
    for (size_t i = 0; i < off; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) { /* count code points, not bytes */
            col++;
        }
    }
    err->offset = off;
    err->line = line;
    err->column = col;
    char pos[48];
    if (multiline)
        snprintf(pos, sizeof pos, "line %u, column %u", line, col);
    else
        snprintf(pos, sizeof pos, "column %u", col);
    snprintf(err->message, sizeof err->message, "%s at %s%s%s", what, pos,
             expected ? ", " : "", expected ? expected : "");
}

void fql__describe(const char *src, const fql_token *t, char *buf, size_t n)
{
    static const char *const fixed[] = {
        [TK_EOF] = "end of input", [TK_AND] = "'and'", [TK_OR] = "'or'",
        [TK_IN] = "'in'", [TK_NOT] = "'!'", [TK_EQ] = "'='", [TK_NE] = "'!='",
        [TK_LT] = "'<'", [TK_LE] = "'<='", [TK_GT] = "'>'", [TK_GE] = "'>='",
        [TK_LPAREN] = "'('", [TK_RPAREN] = "')'", [TK_LBRACK] = "'['",
        [TK_RBRACK] = "']'", [TK_COMMA] = "','",
    };
    char snip[64];
    switch (t->type) {
    case TK_PATH:
        fql__snippet(snip, sizeof snip, src + t->start, t->len, 40);
        snprintf(buf, n, "field '%s'", snip);
        break;
    case TK_STRING:
        fql__snippet(snip, sizeof snip, src + t->start, t->len, 40);
        snprintf(buf, n, "string %s", snip);
        break;
    case TK_NUMBER:
        fql__snippet(snip, sizeof snip, src + t->start, t->len, 40);
        snprintf(buf, n, "number %s", snip);
        break;
    case TK_BAD:
        snprintf(buf, n, "invalid token");
        break;
    default:
        snprintf(buf, n, "%s", fixed[t->type]);
    }
}

static fql_token bad(fql_lexer *lx, size_t off, const char *what, const char *expected)
{
    fql__error_at(lx->err, lx->src, lx->len, off, what, expected);
    return (fql_token){.type = TK_BAD, .start = off};
}

/* "unexpected character 'x'" with the character spelled safely. */
static fql_token bad_char(fql_lexer *lx, size_t off)
{
    const unsigned char *p = (const unsigned char *)lx->src + off;
    const unsigned char *q = p;
    uint32_t cp = fql__utf8_decode(&q, (const unsigned char *)lx->src + lx->len);
    char what[64];
    if (cp & FQL_RAW)
        snprintf(what, sizeof what, "invalid UTF-8 byte 0x%02X", (unsigned)(cp & 0xFF));
    else if (cp < 0x20 || cp == 0x7f)
        snprintf(what, sizeof what, "unexpected character U+%04X", (unsigned)cp);
    else
        snprintf(what, sizeof what, "unexpected character '%.*s'", (int)(q - p),
                 (const char *)p);
    return bad(lx, off, what, NULL);
}

/* Skips one possibly multi-byte character (for escapes). */
static size_t char_len(const fql_lexer *lx, size_t pos)
{
    const unsigned char *p = (const unsigned char *)lx->src + pos;
    fql__utf8_decode(&p, (const unsigned char *)lx->src + lx->len);
    return (size_t)(p - (const unsigned char *)lx->src) - pos;
}

static fql_token lex_path(fql_lexer *lx, size_t start)
{
    const char *s = lx->src;
    size_t i = start;
    bool escaped = false;
    for (;;) { /* one segment per iteration */
        size_t seg = i;
        while (i < lx->len && is_ident_char((unsigned char)s[i])) {
            if (i == seg && (is_digit((unsigned char)s[i]) || s[i] == '-'))
                break;
            if (s[i] == '\\') {
                if (i + 1 >= lx->len)
                    return bad(lx, i, "'\\' at end of input", "expected a character to escape");
                escaped = true;
                i += 1 + char_len(lx, i + 1);
            } else if ((unsigned char)s[i] >= 0x80) {
                const unsigned char *q = (const unsigned char *)s + i;
                if (fql__utf8_decode(&q, (const unsigned char *)s + lx->len) & FQL_RAW)
                    return bad_char(lx, i); /* names must be valid UTF-8 */
                i = (size_t)((const char *)q - s);
            } else {
                i++;
            }
        }
        if (i == seg) {
            if (i >= lx->len)
                return bad(lx, i, "unexpected end of input", "expected a field name after '.'");
            char what[96];
            size_t k = char_len(lx, i);
            char snip[32];
            fql__snippet(snip, sizeof snip, s + i, k, k);
            snprintf(what, sizeof what, "unexpected '%s'", snip);
            return bad(lx, i, what,
                       is_digit((unsigned char)s[i]) || s[i] == '-'
                           ? "expected a field name after '.' (escape a leading digit or '-' with '\\')"
                           : "expected a field name after '.'");
        }
        if (i < lx->len && s[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    fql_token t = {.type = TK_PATH, .start = start, .len = i - start, .escaped = escaped};
    if (!escaped) {
        if (t.len == 3 && !memcmp(s + start, "and", 3))
            t.type = TK_AND;
        else if (t.len == 2 && !memcmp(s + start, "or", 2))
            t.type = TK_OR;
        else if (t.len == 2 && !memcmp(s + start, "in", 2))
            t.type = TK_IN;
    }
    lx->pos = i;
    return t;
}

static fql_token lex_number(fql_lexer *lx, size_t start)
{
    const char *s = lx->src;
    size_t i = start;
    if (s[i] == '-' || s[i] == '+')
        i++;
    while (i < lx->len && is_digit((unsigned char)s[i]))
        i++;
    bool ok = true;
    if (i < lx->len && s[i] == '.') {
        i++;
        if (i >= lx->len || !is_digit((unsigned char)s[i]))
            ok = false;
        while (i < lx->len && is_digit((unsigned char)s[i]))
            i++;
    }
    /* "1.2.3", "1e3", "1abc": swallow the run so the message shows all of it. */
    if (i < lx->len && (is_ident_char((unsigned char)s[i]) || s[i] == '.' || s[i] == '+'))
        ok = false;
    if (!ok) {
        while (i < lx->len && (is_ident_char((unsigned char)s[i]) || s[i] == '.' || s[i] == '+'))
            i++;
        char snip[64], what[96];
        fql__snippet(snip, sizeof snip, s + start, i - start, 40);
        snprintf(what, sizeof what, "invalid number '%s'", snip);
        return bad(lx, start, what,
                   "expected digits with at most one '.' followed by digits (no exponents)");
    }
    size_t n = i - start;
    if (n > MAX_NUMBER_LEN)
        return bad(lx, start, "number too long", "expected at most 400 characters");
    char buf[MAX_NUMBER_LEN + 1];
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    fql_token t = {.type = TK_NUMBER, .start = start, .len = n};
    t.num = strtod(buf, NULL); /* the server never changes LC_NUMERIC from "C" */
    lx->pos = i;
    return t;
}

fql_token fql__lex(fql_lexer *lx)
{
    const char *s = lx->src;
    size_t i = lx->pos;
    while (i < lx->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    lx->pos = i;
    if (i >= lx->len)
        return (fql_token){.type = TK_EOF, .start = i};
    unsigned char c = (unsigned char)s[i];
    fql_token t = {.start = i, .len = 1};
    switch (c) {
    case '(': t.type = TK_LPAREN; break;
    case ')': t.type = TK_RPAREN; break;
    case '[': t.type = TK_LBRACK; break;
    case ']': t.type = TK_RBRACK; break;
    case ',': t.type = TK_COMMA; break;
    case '=': t.type = TK_EQ; break;
    case '!':
        /* The reference lexer requires '!' to touch its operand; we also accept
         * "! (a)" (inferred) — '!' has no other meaning, so it is unambiguous. */
        if (i + 1 < lx->len && s[i + 1] == '=')
            t.type = TK_NE, t.len = 2;
        else
            t.type = TK_NOT;
        break;
    case '<':
    case '>':
        if (i + 1 < lx->len && s[i + 1] == '=')
            t.type = c == '<' ? TK_LE : TK_GE, t.len = 2;
        else
            t.type = c == '<' ? TK_LT : TK_GT;
        break;
    case '\'':
    case '"': {
        /* No escapes: the string ends at the next opening quote character. */
        const char *close = memchr(s + i + 1, c, lx->len - i - 1);
        if (!close)
            return bad(lx, i, "unterminated string", c == '"' ? "expected a closing '\"'"
                                                              : "expected a closing \"'\"");
        t.type = TK_STRING;
        t.len = (size_t)(close - (s + i)) + 1;
        break;
    }
    default:
        if (is_digit(c) || ((c == '-' || c == '+') && i + 1 < lx->len &&
                            is_digit((unsigned char)s[i + 1])))
            return lex_number(lx, i);
        if (is_ident_start(c))
            return lex_path(lx, i);
        if (c == '.' && i + 1 < lx->len && is_digit((unsigned char)s[i + 1]))
            return bad(lx, i, "invalid number", "expected a digit before '.'");
        return bad_char(lx, i);
    }
    lx->pos = i + t.len;
    return t;
}

/* FQL match(): glob matching per spec/fql.md §5.1.
 *
 * Why not fnmatch(3): checked against the spec vectors, glibc's fnmatch treats
 * '!' as class negation ("[!x]" must match "x"), accepts "[]a]" and "[-]"
 * (must be malformed, hence false), and in the C locale '?' matches one byte
 * rather than one code point ("a?b" must match "a☺b"). So this is our own.
 *
 * Semantics: '*' matches any run of code points (including '/'), '?' exactly
 * one, "[...]" one from a set with ranges and '^' negation, '\' escapes. The
 * whole pattern is validated first: a malformed pattern never matches (as in
 * Segment's Go and JS matchers). Matching is the classic greedy algorithm that
 * only backtracks to the most recent '*': with no separator rule, every match
 * that an earlier star could produce a later star can produce too, so this is
 * exact, and it runs in O(len(s) * len(p)) without recursion or memory. */
#include "fql/fql_int.h"

static uint32_t peek(const fql_iter *it)
{
    fql_iter c = *it;
    return fql__iter_next(&c);
}

/* A possibly escaped class character; FQL_CP_END on malformed input. */
static uint32_t class_char(fql_iter *p)
{
    uint32_t c = fql__iter_next(p);
    if (c == FQL_CP_END || c == '-' || c == ']')
        return FQL_CP_END;
    if (c == '\\')
        c = fql__iter_next(p);
    return c;
}

/* Consumes a class body (after '['). Returns 1 if `c` is in it, 0 if not,
 * -1 if the class is malformed. */
static int match_class(fql_iter *p, uint32_t c)
{
    bool negate = false, found = false;
    if (peek(p) == '^') {
        fql__iter_next(p);
        negate = true;
    }
    for (unsigned nrange = 0;; nrange++) {
        uint32_t n = peek(p);
        if (n == ']' && nrange > 0) {
            fql__iter_next(p);
            break;
        }
        uint32_t lo = class_char(p), hi = lo;
        if (lo == FQL_CP_END)
            return -1;
        if (peek(p) == '-') {
            fql__iter_next(p);
            hi = class_char(p);
            if (hi == FQL_CP_END)
                return -1;
        }
        if (lo <= c && c <= hi)
            found = true;
    }
    return found != negate;
}

bool fql__glob_valid(const fql_value *pat)
{
    fql_iter p;
    fql__iter_init(&p, pat);
    for (;;) {
        uint32_t c = fql__iter_next(&p);
        if (c == FQL_CP_END)
            return true;
        if (c == '\\' && fql__iter_next(&p) == FQL_CP_END)
            return false;
        if (c == '[' && match_class(&p, 0) < 0)
            return false;
    }
}

bool fql__glob(const fql_value *str, const fql_value *pat, bool checked)
{
    if (!checked && !fql__glob_valid(pat))
        return false;
    fql_iter s, p, star_s, star_p;
    bool star = false;
    fql__iter_init(&s, str);
    fql__iter_init(&p, pat);
    for (;;) {
        uint32_t pc = fql__iter_next(&p);
        if (pc == '*') {
            star = true;
            star_p = p;
            star_s = s;
            continue;
        }
        if (pc == FQL_CP_END) {
            if (peek(&s) == FQL_CP_END)
                return true;
        } else {
            uint32_t c = fql__iter_next(&s);
            if (c == FQL_CP_END)
                return false; /* backtracking only consumes more input */
            bool ok;
            if (pc == '?')
                ok = true;
            else if (pc == '[')
                ok = match_class(&p, c) == 1;
            else if (pc == '\\')
                ok = fql__iter_next(&p) == c;
            else
                ok = pc == c;
            if (ok)
                continue;
        }
        /* Mismatch: let the last '*' swallow one more character and retry. */
        if (!star || fql__iter_next(&star_s) == FQL_CP_END)
            return false;
        s = star_s;
        p = star_p;
    }
}

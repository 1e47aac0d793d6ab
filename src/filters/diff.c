/* Minimal line diff for the filter preview (spec/config-api.md §10.6).
 *
 * Myers' O((N+M)D) algorithm in its linear-space form: find the "middle
 * snake" of the shortest edit script, recurse on both halves. Memory is
 * O(N+M) and the recursion depth O(log D), so big inputs cannot blow the stack
 * (preview inputs are capped anyway). Lines are compared by hash first.
 * Within each run of changes deletions are listed before insertions, the
 * conventional reading order.
 *
 * Myers costs O((N+M)·D): a preview of a 64 KB event that is dropped (D ≈ N)
 * would take seconds. Past DIFF_MAX_D edits in one middle-snake search the
 * search gives up and that stretch is emitted as "all deleted, then all
 * inserted" — still a correct diff, and the minimal one for a drop. */
#include <stdlib.h>
#include <string.h>

#include "filters/filters_int.h"

#define DIFF_MAX_D 1024

typedef struct line {
    const char *s;
    size_t len;
    uint64_t hash;
} line;

typedef struct ctx {
    const line *a, *b;
    long *vf, *vb; /* indexed by diagonal + off */
    long off;
    char *ops;     /* edit script: ' ', '-', '+' */
    size_t nops;
    const line **lines;
} ctx;

static bool eq(const line *x, const line *y)
{
    return x->hash == y->hash && x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
}

static size_t split(const char *s, size_t n, line *out)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\n') {
            if (out) {
                uint64_t h = 1469598103934665603ull; /* FNV-1a */
                for (size_t j = start; j < i; j++)
                    h = (h ^ (unsigned char)s[j]) * 1099511628211ull;
                out[k] = (line){s + start, i - start, h};
            }
            k++;
            start = i + 1;
        }
    }
    return k;
}

static void op(ctx *c, char o, const line *l)
{
    c->ops[c->nops] = o;
    c->lines[c->nops++] = l;
}

/* Finds the middle snake of a[0..n) vs b[0..m): on return the path crosses
 * the diagonal run (*x,*y) -> (*u,*v). n + m > 0 and the sequences differ. */
static void middle(ctx *c, const line *a, long n, const line *b, long m, long *x, long *y,
                   long *u, long *v)
{
    long delta = n - m, dmax = (n + m + 1) / 2;
    bool odd = delta & 1;
    long *vf = c->vf + c->off, *vb = c->vb + c->off;
    vf[1] = 0;
    vb[1] = 0;
    if (dmax > DIFF_MAX_D)
        dmax = DIFF_MAX_D;
    for (long d = 0; d <= dmax; d++) {
        for (long k = -d; k <= d; k += 2) { /* forward */
            long px = (k == -d || (k != d && vf[k - 1] < vf[k + 1])) ? vf[k + 1] : vf[k - 1] + 1;
            long py = px - k, sx = px, sy = py;
            while (px < n && py < m && eq(&a[px], &b[py]))
                px++, py++;
            vf[k] = px;
            long kb = delta - k; /* the same diagonal in reversed coordinates */
            if (odd && kb >= -(d - 1) && kb <= d - 1 && vf[k] + vb[kb] >= n) {
                *x = sx, *y = sy, *u = px, *v = py;
                return;
            }
        }
        for (long k = -d; k <= d; k += 2) { /* backward, on the reversed sequences */
            long px = (k == -d || (k != d && vb[k - 1] < vb[k + 1])) ? vb[k + 1] : vb[k - 1] + 1;
            long py = px - k, sx = px, sy = py;
            while (px < n && py < m && eq(&a[n - 1 - px], &b[m - 1 - py]))
                px++, py++;
            vb[k] = px;
            long kf = delta - k;
            if (!odd && kf >= -d && kf <= d && vb[k] + vf[kf] >= n) {
                *x = n - px, *y = m - py, *u = n - sx, *v = m - sy;
                return;
            }
        }
    }
    *x = *u = n; /* too many edits (or inconsistent input): degrade to replace-all */
    *y = *v = 0;
}

static void diff(ctx *c, const line *a, long n, const line *b, long m)
{
    long pre = 0, suf = 0;
    while (pre < n && pre < m && eq(&a[pre], &b[pre]))
        op(c, ' ', &a[pre++]);
    a += pre, b += pre, n -= pre, m -= pre;
    while (suf < n && suf < m && eq(&a[n - 1 - suf], &b[m - 1 - suf]))
        suf++;
    n -= suf, m -= suf;
    if (n == 0 || m == 0) {
        for (long i = 0; i < n; i++)
            op(c, '-', &a[i]);
        for (long i = 0; i < m; i++)
            op(c, '+', &b[i]);
    } else {
        long x, y, u, v;
        middle(c, a, n, b, m, &x, &y, &u, &v);
        if ((x == n && y == m) || (u == 0 && v == 0) || (x == 0 && y == 0 && u == n && v == m)) {
            /* Cannot happen for a true middle snake; guard against looping. */
            for (long i = 0; i < n; i++)
                op(c, '-', &a[i]);
            for (long i = 0; i < m; i++)
                op(c, '+', &b[i]);
        } else {
            diff(c, a, x, b, y);
            for (long i = x; i < u; i++)
                op(c, ' ', &a[i]);
            diff(c, a + u, n - u, b + v, m - v);
        }
    }
    for (long i = 0; i < suf; i++)
        op(c, ' ', &a[n + i]);
}

bool df__line_diff(const char *as, size_t alen, const char *bs, size_t blen, df_buf *out)
{
    size_t n = split(as, alen, NULL), m = split(bs, blen, NULL);
    line *a = malloc(n * sizeof *a), *b = malloc(m * sizeof *b);
    long *vf = calloc(2 * (n + m) + 3, sizeof *vf), *vb = calloc(2 * (n + m) + 3, sizeof *vb);
    char *ops = malloc(n + m);
    const line **lines = malloc((n + m) * sizeof *lines);
    bool ok = a && b && vf && vb && ops && lines;
    if (ok) {
        split(as, alen, a);
        split(bs, blen, b);
        ctx c = {a, b, vf, vb, (long)(n + m + 1), ops, 0, lines};
        diff(&c, a, (long)n, b, (long)m);
        /* Within each maximal run of changes: deletions first, then insertions. */
        bool first = true;
        for (size_t i = 0; i < c.nops; i++) {
            size_t j = i + 1;
            if (ops[i] != ' ')
                while (j < c.nops && ops[j] != ' ')
                    j++;
            for (int pass = 0; pass < 2; pass++)
                for (size_t k = i; k < j; k++) {
                    char o = ops[k];
                    if ((o == ' ' && pass) || (o == '-' && pass) || (o == '+' && !pass))
                        continue;
                    if (!first)
                        df__putc(out, '\n');
                    first = false;
                    df__putc(out, o);
                    df__put(out, lines[k]->s, lines[k]->len);
                }
            i = j - 1;
        }
    }
    free(a);
    free(b);
    free(vf);
    free(vb);
    free(ops);
    free(lines);
    return ok && !out->oom;
}

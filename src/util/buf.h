/* buf — a growable byte buffer, the one string builder used everywhere.
 * Allocation failure aborts: a server that cannot allocate 64 bytes cannot answer anyway. */
#ifndef MANIFOLD_BUF_H
#define MANIFOLD_BUF_H
#include <stddef.h>
#include <stdarg.h>
#include <string.h>

typedef struct buf {
    char  *data;   /* always NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;
} buf;

void  buf_grow(buf *b, size_t extra);  /* the slow path of buf_reserve */
void  buf_puts(buf *b, const char *s);

/* The three below run for every byte the JSON writer emits: inline, with the growth
 * out of line. */
static inline void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap)
        buf_grow(b, extra);
}

static inline void buf_append(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_putc(buf *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
void  buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *buf_cstr(buf *b);        /* NUL-terminated view; "" for an empty buffer */
char *buf_steal(buf *b);             /* hands the heap string to the caller, resets b */
void  buf_free(buf *b);
/* Appends the whole file at path ("-": standard input); -1 when it cannot be opened. */
int   buf_read_file(buf *b, const char *path);

#endif

/* Internals shared by the files of src/filters/. Non-static symbols carry the
 * df__ prefix so they cannot clash with the rest of libmanifold.a. */
#ifndef MANIFOLD_FILTERS_INT_H
#define MANIFOLD_FILTERS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Growable byte buffer; `oom` latches on allocation failure. */
typedef struct df_buf {
    char *p;
    size_t len, cap;
    bool oom;
} df_buf;

void df__put(df_buf *b, const char *s, size_t n);
void df__putc(df_buf *b, char c);
void df__buf_free(df_buf *b);

/* JSON text with object keys in sorted (byte) order and numbers in their
 * shortest round-trip form. indent < 0: compact; otherwise pretty-printed with
 * one tab per level starting at `indent` (the preview diff's layout). Returns
 * false if the value is nested deeper than the writer allows. */
bool df__json_write(df_buf *b, const json_t *v, int indent);

/* MD5 (RFC 1321), for deterministic sampling. */
typedef struct df_md5 {
    uint32_t h[4];
    uint64_t len;
    unsigned char block[64];
    size_t used;
} df_md5;
void df__md5_init(df_md5 *m);
void df__md5_update(df_md5 *m, const void *data, size_t n);
void df__md5_final(df_md5 *m, unsigned char out[16]);

/* Line diff of two texts (minimal, Myers): lines prefixed ' ', '-', '+',
 * joined with '\n', no trailing newline. Returns false on out of memory. */
bool df__line_diff(const char *a, size_t alen, const char *b, size_t blen, df_buf *out);

/* Path syntax for action targets: segments separated by '.', '\' escapes the
 * next character; "" is the event itself. */
typedef struct df_path {
    size_t nseg;
    struct df_seg { char *key; size_t len; long index; } *seg;
} df_path;
bool df__path_parse(const char *s, size_t len, df_path *out, const char **why);
void df__path_free(df_path *p);
json_t *df__path_get(const json_t *root, const df_path *p);

#endif

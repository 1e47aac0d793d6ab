/* FQL — Segment's Filter Query Language (spec/fql.md).
 *
 * Text is compiled once into an immutable program (a small bytecode, see
 * docs/fql.md); evaluating a program against a parsed event allocates nothing,
 * never re-reads the FQL text and is safe to do from many threads at once.
 *
 *     fql_error err;
 *     fql_program *p = fql_compile(src, strlen(src), &err);
 *     if (!p) reply_400(err.message);            // "unexpected ')' at column 17, ..."
 *     switch (fql_eval(p, event)) { case 1: ... case 0: ... case FQL_ERROR: drop ... }
 *     fql_free(p);
 */
#ifndef MANIFOLD_FQL_H
#define MANIFOLD_FQL_H

#include <stddef.h>
#include <jansson.h>

/* Limits. Hostile input gets a clear compile error instead of unbounded work. */
#define FQL_MAX_SOURCE 100000 /* bytes of FQL text (the reference lexer's token cap) */
#define FQL_MAX_DEPTH  64     /* nesting of (), !, calls and lists */
#define FQL_MAX_STACK  80     /* operand stack slots a program may need (> depth) */

typedef struct fql_program fql_program;

typedef struct fql_error {
    size_t offset;     /* byte offset of the offending token in the source */
    unsigned line;     /* 1-based */
    unsigned column;   /* 1-based, counted in characters (UTF-8 code points) */
    char message[200]; /* e.g. "unexpected ')' at column 17, expected a value" */
} fql_error;

#define FQL_ERROR (-1)

/* Compiles FQL text (`len` bytes; NUL bytes are allowed and reported, never
 * treated as the end). Returns NULL on a syntax error or out of memory, with
 * `err` (if not NULL) filled in. The statement "all" compiles to a program that
 * matches every event. */
fql_program *fql_compile(const char *src, size_t len, fql_error *err);

/* Evaluates `prog` against `event` (normally a JSON object; anything else just
 * has no fields). Returns 1 when the statement is true, 0 when it is false or
 * not a boolean, FQL_ERROR when `prog` is NULL — callers treat that as "drop
 * the event" (fail closed). */
int fql_eval(const fql_program *prog, const json_t *event);

void fql_free(fql_program *prog);

/* True when the program is the statement "all" (or folds to constant true). */
int fql_matches_all(const fql_program *prog);

/* A human-readable listing of the compiled program, for debugging and docs.
 * Returns a malloc'ed string (free() it) or NULL. */
char *fql_program_dump(const fql_program *prog);

#endif

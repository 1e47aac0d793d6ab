/* json — our JSON input and output rules on top of jansson.
 *
 * Input: strict parsing (duplicate keys rejected, UTF-8 checked by jansson, bounded depth).
 * Output: compact, key order as built, and every real in its shortest round-trip form
 * (jansson's own dump prints 17 significant digits, so 11.37 would become
 * 11.369999999999999). Integers are exact 64-bit values. */
#ifndef MANIFOLD_JSON_H
#define MANIFOLD_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include "util/buf.h"

/* Parses a request body. On failure returns NULL and writes a human message to err. */
json_t *json_parse_strict(const char *data, size_t len, char *err, size_t errlen);

/* Appends the compact serialisation of v to out. */
void json_write(buf *out, const json_t *v);
/* The same with every object's keys in byte order, recursively: a canonical form (the
 * workspace document, docs/export-import.md). */
void json_write_sorted(buf *out, const json_t *v);
/* The keys of object o in byte order, as a heap array of *n borrowed strings (valid while
 * o is unchanged; the caller frees the array). */
const char **json_sorted_keys(const json_t *o, size_t *n);
/* Serialises to a fresh heap string (caller frees). */
char *json_to_string(const json_t *v);
/* Appends s as a JSON string literal, escaping as needed. */
void json_write_string(buf *out, const char *s, size_t len);
/* Shortest "%.*g" that reads back as exactly d; always contains '.', 'e' or is inf-free. */
void json_write_real(buf *out, double d);

#endif

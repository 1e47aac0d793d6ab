/* functions/frame — the pipe framing between the runtime and its Node.js workers
 * (functions-runtime.md §11): a 4-byte big-endian length, then that many bytes of UTF-8 JSON. */
#ifndef MANIFOLD_FUNCTIONS_FRAME_H
#define MANIFOLD_FUNCTIONS_FRAME_H
#include <stddef.h>
#include <sys/types.h>
#include "util/buf.h"

#define FRAME_MAX ((size_t)64 << 20) /* a worker's answer larger than this is a broken worker */

/* Appends one frame holding n bytes of p. */
void frame_put(buf *b, const char *p, size_t n);

/* Starts a frame written in place: returns where its length goes; frame_close fills it in
 * once the payload has been appended after it. */
size_t frame_open(buf *b);
void frame_close(buf *b, size_t at);

/* Looks for one complete frame at the start of data[0..len). Returns the bytes it occupies
 * (4 + payload) and sets *payload and *plen; 0 when more bytes are needed; -1 when the announced
 * length exceeds max. */
ssize_t frame_next(const char *data, size_t len, size_t max, const char **payload, size_t *plen);

#endif

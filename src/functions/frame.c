/* functions/frame — length-prefixed JSON frames on the worker pipes. */
#include "functions/frame.h"
#include <stdint.h>

size_t frame_open(buf *b)
{
    size_t at = b->len;
    buf_append(b, "\0\0\0\0", 4);
    return at;
}

void frame_close(buf *b, size_t at)
{
    size_t n = b->len - at - 4;
    unsigned char *h = (unsigned char *)b->data + at;
    h[0] = (unsigned char)(n >> 24), h[1] = (unsigned char)(n >> 16), h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
}

void frame_put(buf *b, const char *p, size_t n)
{
    size_t at = frame_open(b);
    buf_append(b, p, n);
    frame_close(b, at);
}

ssize_t frame_next(const char *data, size_t len, size_t max, const char **payload, size_t *plen)
{
    if (len < 4)
        return 0;
    const unsigned char *u = (const unsigned char *)data;
    size_t n = ((size_t)u[0] << 24) | ((size_t)u[1] << 16) | ((size_t)u[2] << 8) | (size_t)u[3];
    if (n > max)
        return -1;
    if (len - 4 < n)
        return 0;
    *payload = data + 4;
    *plen = n;
    return (ssize_t)(4 + n);
}

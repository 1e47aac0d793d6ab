/* libFuzzer target for the Functions runtime's pipe framing (src/functions/frame.c): the
 * bytes a worker writes are untrusted. The input is cut into frames as the runtime thread
 * does, with the input's first byte choosing the size cap; every frame must lie inside the
 * input, consumed bytes must add up, and re-framing the payloads must give the same bytes.
 *
 *   make fuzz && build/fuzz/fuzz_fn_frame fuzz/corpus/fn_frame -max_total_time=60 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "functions/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = (size_t)data[0] * 7;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, off = 0;
    buf again = {0};
    for (;;) {
        const char *p = NULL;
        size_t n = 0;
        ssize_t used = frame_next(in + off, len - off, max, &p, &n);
        if (used <= 0)
            break;
        if ((size_t)used != n + 4 || p != in + off + 4 || off + (size_t)used > len || n > max)
            abort();
        frame_put(&again, p, n);
        off += (size_t)used;
    }
    if (again.len != off || (off && memcmp(again.data, in, off)))
        abort();
    buf_free(&again);
    return 0;
}

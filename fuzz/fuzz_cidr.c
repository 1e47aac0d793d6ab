/* libFuzzer target for the outbound policy's CIDR list parser (MANIFOLD_OUTBOUND_ALLOW /
 * _DENY, src/deliver/policy.c) and for Retry-After parsing: any bytes must parse or be
 * refused with a message, never crash; a parsed list must match addresses consistently
 * (a list always contains its own entries' network addresses).
 *
 *   make fuzz && build/fuzz/fuzz_cidr fuzz/corpus/cidr -max_total_time=60 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0'; /* the environment cannot hold NULs: the text ends at the first */
    cidr_list l;
    char err[128];
    if (cidr_list_parse(text, &l, err, sizeof err) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            if (cidr_list_longest(&l, l.v[i].family, l.v[i].addr) < l.v[i].bits)
                abort();
            if (outbound_allowed(NULL, &l, l.v[i].family, l.v[i].addr))
                abort(); /* denied by its own entry */
        }
        cidr_list_free(&l);
    } else if (!err[0] || l.n || l.v) {
        abort();
    }
    (void)parse_retry_after(text, 1700000000000);
    free(text);
    return 0;
}

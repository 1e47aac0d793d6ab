/* functions/runtime — first cut: no worker pool yet, every invocation answers
 * RuntimeUnavailable (config-api.md §13.6) so callers can build against the interface. */
#include "functions/runtime.h"
#include <stdlib.h>

struct fnrt { int unused; };

fnrt *fnrt_start(const fnrt_config *cfg)
{
    (void)cfg;
    return calloc(1, sizeof(fnrt));
}

void fnrt_invoke(fnrt *rt, const fn_call *call, fn_done done, void *ctx)
{
    (void)rt; (void)call;
    fn_result r = {0};
    r.success = false;
    r.error_name = (char *)"RuntimeUnavailable";
    r.error_message = (char *)"runtime unavailable";
    r.error_reason = (char *)"runtime unavailable";
    done(ctx, &r);
}

bool fnrt_available(fnrt *rt) { (void)rt; return false; }

void fnrt_stop(fnrt *rt) { free(rt); }

/* The destination-function driver (target.h; delivery.md §8, functions-runtime.md §5.2, §7):
 * one attempt is one invocation of the instance's deployed code with the frozen event and
 * the instance's settings. The runtime answers on one of its threads; the result is mapped
 * there and handed to the delivery thread through outbound's completion queue, so the
 * engine sees it exactly like an HTTP answer. */
#include "deliver/target.h"
#include <stdlib.h>
#include <string.h>

typedef struct fn_attempt {
    outbound *o;
    dattempt *a;
} fn_attempt;

static void deliver_done(void *arg, const out_result *r)
{
    dattempt *a = arg;
    a->done(a, r);
}

/* §5.2/§7's table. A runtime that cannot run the code now (no Node.js, a worker that hit its
 * memory limit) is a temporary failure like a timeout: retried, never lost. */
static void map_result(const fn_result *fr, out_result *r)
{
    *r = (out_result){.kind = OUT_SUCCESS, .retry_after_ms = -1};
    if (fr->success)
        return;
    const char *n = fr->error_name ? fr->error_name : "";
    const char *code = "bad_request";
    outcome_kind k = OUT_DISCARD;
    if (!strcmp(n, "RetryError"))
        k = OUT_RETRY, code = "retry";
    else if (!strcmp(n, "Timeout"))
        k = OUT_RETRY, code = "gateway_timeout";
    else if (!strcmp(n, "RuntimeUnavailable"))
        k = OUT_RETRY, code = "runtime_unavailable";
    else if (!strcmp(n, "MemoryLimit"))
        k = OUT_RETRY, code = "memory_limit";
    else if (!strcmp(n, "EventNotSupported"))
        code = "unsupported_event_type";
    else if (!strcmp(n, "ValidationError") || !strcmp(n, "InvalidEventPayload"))
        code = "message_rejected";
    else if (!strcmp(n, "SyntaxError") || !strcmp(n, "InvalidSettings"))
        code = "invalid_settings"; /* the code does not compile: it cannot run (§5.2) */
    r->kind = k;
    strcpy(r->code, code);
}

static void on_answer(void *ctx, const fn_result *fr)
{
    fn_attempt *f = ctx;
    out_result r;
    map_result(fr, &r);
    out_ext_done(f->o, deliver_done, f->a, &r);
    free(f);
}

static void fn_send(outbound *o, dattempt *a)
{
    const dfunction *fn = a->fn;
    if (!fn || !fn->code || !fn->settings || !fn->rt) {
        out_result r = {.kind = OUT_DISCARD, .code = "invalid_settings", .retry_after_ms = -1};
        a->done(a, &r);
        return;
    }
    fn_attempt *f = malloc(sizeof *f);
    if (!f) {
        out_result r = {.kind = OUT_RETRY, .code = "runtime_unavailable", .retry_after_ms = -1};
        a->done(a, &r);
        return;
    }
    *f = (fn_attempt){o, a};
    /* The frozen payload is one JSON event; the runtime copies everything it is given. */
    char *input = malloc(a->len + 1);
    if (!input) {
        free(f);
        out_result r = {.kind = OUT_RETRY, .code = "runtime_unavailable", .retry_after_ms = -1};
        a->done(a, &r);
        return;
    }
    memcpy(input, a->body, a->len);
    input[a->len] = '\0';
    fn_call call = {.kind = FN_KIND_DESTINATION, .instance = fn->instance, .code_version = fn->version,
                    .code = fn->code, .settings = fn->settings, .input = input};
    out_ext_begin(o);
    fnrt_invoke(fn->rt, &call, on_answer, f);
    free(input);
}

const target_driver target_function = {.slug = "function", .all_types = true, .send = fn_send};

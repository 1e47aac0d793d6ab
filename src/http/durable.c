/* See durable.h. */
#include "http/durable.h"
#include <stdlib.h>

typedef struct waiting {
    request *req;
    void (*lost)(request *);
    void (*settled)(void *);
    void *settled_arg;
} waiting;

/* The group has settled: fix the answer up if it was lost, then let it go. Runs on the
 * store's flusher thread (or inline when the group had already settled). */
static void on_durable(void *arg, bool ok)
{
    waiting *w = arg;
    request *req = w->req;
    if (!ok && req->resp->status < 300)
        w->lost(req);
    if (w->settled)
        w->settled(w->settled_arg);
    free(w);
    http_resume(req);
}

void http_answer_durably(store *st, request *req, const durable_ops *ops)
{
    store_defer_begin();
    ops->work(ops->arg);
    uint64_t gen = store_defer_end();
    if (!gen) {
        if (ops->settled)
            ops->settled(ops->settled_arg);
        return;
    }
    waiting *w = malloc(sizeof *w);
    *w = (waiting){req, ops->lost, ops->settled, ops->settled_arg};
    http_defer(req);
    store_when_durable(st, gen, on_durable, w);
}

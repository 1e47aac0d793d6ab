/* durable — "answer only once it is on disk" for any HTTP handler that writes through the
 * store (the Config API router and the Tracking API intake share it). The work runs with
 * deferred durability (store_defer_begin/end); when it committed into a group that is not
 * yet durable, the connection is suspended (http_defer) with its answer prepared, and
 * resumed when the store settles that group (store_when_durable), from the flusher
 * thread. If the group could not be made durable, lost() rewrites the prepared answer
 * into an error; answers that already are errors (status >= 300) are left alone.
 * It sits beside the transport because it suspends connections; it only needs store.h's
 * deferral calls, nothing else of the store. */
#ifndef MANIFOLD_HTTP_DURABLE_H
#define MANIFOLD_HTTP_DURABLE_H
#include "http/http.h"
#include "store/store.h"

typedef struct durable_ops {
    void (*work)(void *arg);      /* the handler: fills req->resp in */
    void (*lost)(request *req);   /* the work's group failed: write the error answer */
    void (*settled)(void *arg);   /* optional: the answer is final (just before it leaves) */
    void *arg;                    /* for work; must stay valid until settled (or work returns when not deferred) */
    void *settled_arg;            /* for settled; may outlive arg */
} durable_ops;

void http_answer_durably(store *st, request *req, const durable_ops *ops);

#endif

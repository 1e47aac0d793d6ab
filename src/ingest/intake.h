/* intake — the Tracking API (tracking-api.md): POST /v1/track … /v1/batch, their short
 * forms, CORS preflights. A request is decoded, parsed and checked (msg.h), its write key
 * resolved to a source (sources.h), its events enriched, run through the source's
 * Protocols enforcement, de-duplicated and written to the event log in one transaction;
 * the 200 leaves only once that transaction is durable (http/durable.h). See
 * docs/intake.md. */
#ifndef MANIFOLD_INTAKE_H
#define MANIFOLD_INTAKE_H
#include "http/http.h"
#include "store/store.h"
#include <stdbool.h>

typedef struct intake_config {
    bool strict_write_keys; /* unknown write key: 401 instead of Segment's 200 */
    int backlog;            /* requests being handled or waiting for durability; past it: 503 */
    long long dedup_ms;     /* messageId de-duplication window */
    const char *server_version; /* for forwarded violation events' context.library */
} intake_config;

typedef struct intake intake;

intake *intake_new(store *st, const intake_config *cfg);
void intake_free(intake *);
/* Is this request for the intake (a path under /v1/, which /v1beta is not)? */
bool intake_owns(const request *req);
/* The HTTP layer's body limit for an intake request (http_config.body_limit; ctx is the
 * intake): above every body the intake could accept, so that the intake's own checks
 * (on decompressed bytes) answer with the Tracking API's 400, and bounded. */
size_t intake_body_limit(const request *req, void *ctx);
/* The http_handler of the intake; ctx is the intake. */
void intake_handle(request *req, response *resp, void *ctx);

#endif

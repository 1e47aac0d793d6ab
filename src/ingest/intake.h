/* intake — the Tracking API (tracking-api.md): POST /v1/track … /v1/batch, their short
 * forms, CORS preflights. A request is decoded, parsed and checked (msg.h), its write key
 * resolved to a source (sources.h), its events enriched, run through the source's
 * Protocols enforcement, de-duplicated and written to the event log in one transaction;
 * the 200 leaves only once that transaction is durable (http/durable.h). See
 * docs/intake.md. */
#ifndef MANIFOLD_INTAKE_H
#define MANIFOLD_INTAKE_H
#include "http/http.h"
#include "ingest/sources.h"
#include "store/store.h"
#include <stdbool.h>

struct fnrt;

typedef struct intake_config {
    bool strict_write_keys; /* unknown write key: 401 instead of Segment's 200 */
    int backlog;            /* requests being handled or waiting for durability; past it: 503 */
    long long dedup_ms;     /* messageId de-duplication window */
    const char *server_version; /* for forwarded violation events' context.library */
    struct fnrt *functions; /* runs source functions (POST /v1/functions/{write_key}); may be NULL */
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
/* Before the Functions runtime stops: no more source-function retries are started, and
 * the ones running have finished (functions_hook.c). */
void intake_quiesce(intake *);

/* ---- for the source-function webhook (functions_hook.c) ---- */
store *intake_store(intake *);
struct fnrt *intake_runtime(intake *);
/* The source a write key names (a reference: src_release it): ST_OK, ST_NOT_FOUND, ST_ERROR. */
int intake_source(intake *, const char *write_key, src_info **out);
/* A slot of the --intake-backlog, false when full (answer 503); intake_slot_release(in). */
bool intake_slot_take(intake *);
void intake_slot_release(void *in);
/* The Tracking API's answer bodies: {"success":true} (code NULL) or {"success":false,
 * "code":…,"message":…}. */
void intake_answer(response *w, int status, const char *code, const char *message);
/* Takes events a source function emitted for src (body: {"batch": [...]}) through the
 * pipeline of a /v1/batch request of that source — the §4.3 checks, enrichment,
 * Protocols, dedup, the event log the debugger reads, the counters — in one transaction
 * (durability deferred if the caller's thread is deferring, store.h). ST_OK, or ST_ERROR
 * when nothing could be stored. */
int intake_submit(intake *in, src_info *src, const char *body, size_t len, const char *peer_ip);
/* functions_hook.c: POST /v1/functions/{write_key} (functions-runtime.md §4). */
void fnhook_handle(intake *in, request *req, response *resp);
typedef struct fnhook fnhook;
fnhook *intake_hook(intake *in);
fnhook *fnhook_new(intake *in);
void fnhook_quiesce(fnhook *);
void fnhook_free(fnhook *);

#endif

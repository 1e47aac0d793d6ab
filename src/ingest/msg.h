/* msg — the Tracking API's request body, without any database: decompression with a
 * size cap, JSON parsing, the per-message checks of tracking-api.md §4.3 in their order,
 * the batch envelope merge of §5 and the enrichment of §6. Pure functions of the bytes,
 * the server clock and the peer address, so the fuzzer (fuzz/fuzz_intake.c) drives them
 * exactly as the intake does. */
#ifndef MANIFOLD_INGEST_MSG_H
#define MANIFOLD_INGEST_MSG_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

/* tracking-api.md §7 (1 KB = 1,024 bytes, 500 KB = 512,000 bytes). */
#define INGEST_MSG_MAX 32768
#define INGEST_BATCH_MAX 512000
#define INGEST_BATCH_ITEMS 2500

typedef enum ingest_kind {
    IK_TRACK, IK_IDENTIFY, IK_PAGE, IK_SCREEN, IK_GROUP, IK_ALIAS, IK_BATCH, IK_NONE = -1
} ingest_kind;

/* The kind an event path's last segment names ("track", "t", "batch", "import", "b", …). */
ingest_kind ingest_kind_of(const char *seg);
const char *ingest_type_name(ingest_kind k);

typedef struct ingest_item {
    json_t *ev;          /* the message (borrowed from the request's document), enriched in place */
    const char *reason;  /* NULL: valid; else the §4.3 reason code it was dropped for */
    ingest_kind type;
} ingest_item;

typedef struct ingest_req {
    json_t *doc;             /* the parsed body (owned) */
    json_t *envelope;        /* batch kinds: doc; else NULL */
    const char *body_key;    /* the body writeKey (envelope's or the single message's), or NULL */
    ingest_item *items;      /* one per message (heap) */
    size_t n;
    const char *drop_reason; /* the whole request is dropped with a 200: batch_too_large, empty_batch */
    const char *code;        /* request-level failure (400): its code and message */
    const char *message;
} ingest_req;

/* Decodes a body sent with Content-Encoding enc (NULL/identity, gzip, deflate) into out,
 * stopping as soon as more than limit bytes come out (the zip-bomb guard). Returns 0,
 * 1 when over the limit, -1 for a corrupt stream or an unknown encoding. */
int ingest_inflate(const char *enc, const char *in, size_t n, size_t limit, buf *out);

/* Parses body (decompressed) for kind and checks every message. Returns true when the
 * request is well formed (items filled in, some may carry a reason); false with
 * r->code/r->message set for a 400. Free with ingest_req_free either way. */
bool ingest_parse(ingest_req *r, ingest_kind kind, const char *body, size_t len);

/* Enriches every valid item (tracking-api.md §5, §6): R = now (ms since the epoch),
 * peer_ip the client's IPv4 address or NULL. */
void ingest_enrich(ingest_req *r, int64_t now, const char *peer_ip);
void ingest_req_free(ingest_req *r);

/* The write key of an "Authorization: Basic ..." header value (with or without the
 * colon). Returns 1 and fills out, 0 when the header is not Basic, -1 when malformed. */
int ingest_basic_key(const char *authz, char *out, size_t cap);

/* RFC 3339 date-time → microseconds since the epoch; false when unparsable. */
bool ingest_parse_time(const char *s, int64_t *us);
/* ISO-8601 UTC with milliseconds and Z ("2024-01-01T00:00:08.500Z"); out holds 32. */
void ingest_format_time(int64_t us, char *out);

#endif

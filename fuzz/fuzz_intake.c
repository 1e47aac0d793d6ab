/* Fuzz target: the Tracking API's body handling without a database (src/ingest/msg.c):
 * decompression with its cap, parsing, the §4.3 checks, the batch merge and enrichment.
 * The first byte picks the path kind (track … batch) and the Content-Encoding; the rest
 * is the body. Every message that passes the checks must come out enriched (type,
 * messageId, receivedAt, timestamp, context.library, version) and serialise to JSON that
 * parses again; whatever is refused must say why. */
#include "ingest/msg.h"
#include "util/json.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_event(const json_t *ev)
{
    assert(json_is_string(json_object_get(ev, "type")));
    assert(json_is_string(json_object_get(ev, "messageId")));
    assert(json_is_string(json_object_get(ev, "receivedAt")));
    assert(json_is_string(json_object_get(ev, "timestamp")));
    assert(json_object_get(json_object_get(ev, "context"), "library"));
    assert(json_object_get(ev, "version"));
    char *s = json_to_string(ev);
    char err[256];
    json_t *again = json_parse_strict(s, strlen(s), err, sizeof err);
    assert(again);
    json_decref(again);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const encs[] = {NULL, "gzip", "deflate", "identity"};
    ingest_kind kind = (ingest_kind)(data[0] % 7);
    const char *enc = encs[(data[0] >> 3) & 3];
    buf body = {0};
    size_t limit = kind == IK_BATCH ? INGEST_BATCH_MAX : INGEST_MSG_MAX;
    int rc = ingest_inflate(enc, (const char *)data + 1, size - 1, limit, &body);
    if (rc == 0) {
        assert(body.len <= limit);
        ingest_req r;
        if (ingest_parse(&r, kind, body.data ? body.data : "", body.len)) {
            ingest_enrich(&r, 1700000000123LL, "127.0.0.1");
            for (size_t i = 0; i < r.n; i++)
                if (!r.items[i].reason && !r.drop_reason)
                    check_event(r.items[i].ev);
        } else {
            assert(r.code && r.message);
        }
        ingest_req_free(&r);
    }
    buf_free(&body);
    /* The other pure helpers on the same bytes. */
    char key[256], ts[32];
    char *s = strndup((const char *)data + 1, size - 1);
    ingest_basic_key(s, key, sizeof key);
    int64_t us;
    if (ingest_parse_time(s, &us))
        ingest_format_time(us, ts);
    free(s);
    return 0;
}

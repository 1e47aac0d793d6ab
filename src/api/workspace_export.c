/* GET /v1beta/workspaces/{ws}:export — the workspace as one canonical JSON document
 * (docs/export-import.md). The route's action is a read of the whole workspace; with
 * ?include_secrets=true the router asks for a write of the whole workspace instead (an
 * owner with a token that may write), and write-only values come out in clear. */
#include "api/workspace_doc.h"
#include "util/json.h"
#include <string.h>

void h_ws_export(call *c)
{
    int secrets = query_flag(req_query(c->req, "include_secrets"));
    if (secrets < 0)
        return (void)fail(c, 400, CODE_INVALID, "include_secrets must be true or false");
    txn t;
    if (store_begin(c->api->st, &t, false) != ST_OK)
        return (void)fail_store(c, ST_ERROR, "workspace");
    json_t *doc = doc_build(c, &t, secrets);
    store_end(&t);
    if (!doc)
        return;
    c->resp->status = 200;
    buf_free(&c->resp->body);
    json_write_sorted(&c->resp->body, doc);
    json_decref(doc);
    if (secrets) /* a document with secrets in clear must not linger in caches */
        resp_header(c->resp, "Cache-Control", "no-store");
}

/* Routes for operators: GET /metrics, the Prometheus exposition of obs.h's series (no token,
 * like /healthz; --metrics off answers the same 404 as an unknown path). */
#include "api/call.h"
#include "obs/obs.h"

void h_metrics(call *c)
{
    if (!c->api->metrics) {
        c->req->route_id = 0; /* counted as what it answers: an unknown path */
        fail(c, 404, CODE_NOT_FOUND, "not found");
        return;
    }
    resp_header(c->resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    obs_render(&c->resp->body);
}

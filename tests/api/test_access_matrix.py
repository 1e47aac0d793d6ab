"""The access matrix: every route of `manifold routes` × every kind of principal, each a real
request with concrete path parameters, asserting allow (200) or deny (403, code 7).

TABLE below is the contract. A route that the binary serves but TABLE does not list makes
test_every_route_is_in_the_table fail: whoever adds a route must decide, here, who may call
it.

Principals (columns, in this order):
  owner       a user holding workspace-owner on the workspace (made with --role)
  member      a user holding workspace-member on the workspace
  src_admin   a user holding source-admin on ONE source (js), granted through the API
  src_ro      a user holding source-read-only on the workspace
  tp_admin    tracking-plan-admin on the workspace
  tp_ro       tracking-plan-read-only on the workspace
  fn_admin    function-admin on the workspace
  fn_ro       function-read-only on the workspace
  admin_read  a `manifold token create --scope workspace:read` token (no user)
  other_ws    a `manifold token create --scope workspace` token of ANOTHER workspace

Every request addresses workspace `myworkspace`, source `js`, its destination, filter,
the tracking plan, … For routes without a workspace in the path (catalog, token list,
filter preview) the other workspace's token is allowed: there is nothing of myworkspace to
protect. Token routes use the principal's own tokens; creating a token asks for
myworkspace.

Denied writes must leave no trace: after each denied write the audit trail must be
unchanged (so the handler did not run).
"""
import functools

import pytest

from conftest import assert_error, assert_ok
from helpers_iam import (FILTER, INSUFFICIENT, WS, WS_NAME, WSP, admin_principal, basic_token_request,
                         dests_without_required, dst_path, grant, latest_event_id, mk_dest, mk_filter,
                         mk_invite, mk_plan, mk_source, new_user, plan_id, plan_path, route_table, src_name,
                         src_path, token_body, token_id, uniq, user_principal)

PRINCIPALS = ("owner", "member", "src_admin", "src_ro", "tp_admin", "tp_ro", "fn_admin", "fn_ro",
              "admin_read", "other_ws")

SRC = "/v1beta/workspaces/{ws}/sources"
DST = SRC + "/{src}/destinations"
TP = "/v1beta/workspaces/{ws}/tracking-plans"
FN = "/v1beta/workspaces/{ws}/functions"

#                                                                    owner
#                                                                    | member
#                                                                    | | src_admin
#                                                                    | | | src_ro
#                                                                    | | | | tp_admin
#                                                                    | | | | | tp_ro
#                                                                    | | | | | | fn_admin
#                                                                    | | | | | | | fn_ro
#                                                                    | | | | | | | | admin_read
#                                                                    | | | | | | | | | other_ws
TABLE = {
    ("GET", "/healthz"):                                            "A A A A A A A A A A",
    ("GET", "/readyz"):                                             "A A A A A A A A A A",
    # for operators: Prometheus metrics and the OpenAPI document, public like the health checks
    ("GET", "/metrics"):                                            "A A A A A A A A A A",
    ("GET", "/v1beta/openapi.json"):                                "A A A A A A A A A A",
    # the browser dashboard's files (they hold no data; its pages call the API with a token)
    ("GET", "/"):                                                   "A A A A A A A A A A",
    ("GET", "/ui"):                                                 "A A A A A A A A A A",
    ("GET", "/ui/{file}"):                                          "A A A A A A A A A A",
    # §3 access tokens: a user sees and deletes its own; read scope cannot touch tokens
    ("POST", "/v1beta/access-tokens"):                              "A A A A A A A A D D",
    ("GET", "/v1beta/access-tokens"):                               "A A A A A A A A D A",
    ("GET", "/v1beta/access-tokens/{n}"):                           "A A A A A A A A D A",
    ("DELETE", "/v1beta/access-tokens/{n}"):                        "A A A A A A A A D A",
    # catalogs: public knowledge for any valid token
    ("GET", "/v1beta/catalog/sources"):                             "A A A A A A A A A A",
    ("GET", "/v1beta/catalog/sources/{slug}"):                      "A A A A A A A A A A",
    ("GET", "/v1beta/catalog/destinations"):                        "A A A A A A A A A A",
    ("GET", "/v1beta/catalog/destinations/{slug}"):                 "A A A A A A A A A A",
    # workspaces: the list shows the caller's own; any policy inside lets a user read it
    ("GET", "/v1beta/workspaces"):                                  "A A A A A A A A A A",
    ("GET", "/v1beta/workspaces/{ws}"):                             "A A A A A A A A A D",
    # export/import act on every area of the workspace (IAM included): owners, and admin
    # tokens within their scope (docs/export-import.md)
    ("GET", "/v1beta/workspaces/{ws}:export"):                      "A D D D D D D D A D",
    ("POST", "/v1beta/workspaces/{ws}:import"):                     "A D D D D D D D D D",
    # sources: listing/creating needs a policy on the collection (the workspace)
    ("GET", SRC):                                                   "A D D A D D D D A D",
    ("POST", SRC):                                                  "A D D D D D D D D D",
    ("GET", SRC + "/{src}"):                                        "A D A A D D D D A D",
    ("DELETE", SRC + "/{src}"):                                     "A D A D D D D D D D",
    ("GET", SRC + "/{src}/schema-config"):                          "A D A A D D D D A D",
    ("PATCH", SRC + "/{src}/schema-config"):                        "A D A D D D D D D D",
    # the source debugger: reading the source's stored events is reading the source
    ("GET", SRC + "/{src}/events"):                                 "A D A A D D D D A D",
    ("GET", SRC + "/{src}/events:summary"):                         "A D A A D D D D A D",
    # destinations of js
    ("GET", DST):                                                   "A D A A D D D D A D",
    ("POST", DST):                                                  "A D A D D D D D D D",
    ("GET", DST + "/{dest}"):                                       "A D A A D D D D A D",
    ("PATCH", DST + "/{dest}"):                                     "A D A D D D D D D D",
    ("DELETE", DST + "/{dest}"):                                    "A D A D D D D D D D",
    # §11 delivery metrics of js's destination: reading them is reading the destination;
    # the workspace-wide batch needs read on the workspace's sources
    ("GET", DST + "/{dest}/metrics"):                               "A D A A D D D D A D",
    ("GET", DST + "/{dest}/metrics/{metric}"):                      "A D A A D D D D A D",
    ("GET", DST + "/{dest}/metrics:batchGet"):                      "A D A A D D D D A D",
    ("GET", DST + "/{dest}/metrics:getSummary"):                    "A D A A D D D D A D",
    ("GET", "/v1beta/workspaces/{ws}/event-delivery-metrics:batchGetSummary"): "A D D A D D D D A D",
    # filters of js's destination
    ("GET", DST + "/{dest}/filters"):                               "A D A A D D D D A D",
    ("POST", DST + "/{dest}/filters"):                              "A D A D D D D D D D",
    ("GET", DST + "/{dest}/filters/{filter}"):                      "A D A A D D D D A D",
    ("PATCH", DST + "/{dest}/filters/{filter}"):                    "A D A D D D D D D D",
    ("DELETE", DST + "/{dest}/filters/{filter}"):                   "A D A D D D D D D D",
    # filter preview is a read of nothing stored: any valid token
    ("POST", "/v1beta/filters/preview"):                            "A A A A A A A A A A",
    ("POST", "/v1beta/filters:preview"):                            "A A A A A A A A A A",
    # IAM and the audit trail: owners (and admin tokens within their scope) only
    ("GET", "/v1beta/workspaces/{ws}/roles"):                       "A D D D D D D D A D",
    ("GET", "/v1beta/workspaces/{ws}/roles/{role}/policies"):       "A D D D D D D D A D",
    ("POST", "/v1beta/workspaces/{ws}/roles/{role}/policies"):      "A D D D D D D D D D",
    ("DELETE", "/v1beta/workspaces/{ws}/roles/{role}/policies/{policy}"): "A D D D D D D D D D",
    ("GET", "/v1beta/workspaces/{ws}/invites"):                     "A D D D D D D D A D",
    ("POST", "/v1beta/workspaces/{ws}/invites"):                    "A D D D D D D D D D",
    ("DELETE", "/v1beta/workspaces/{ws}/invites/{invite}"):         "A D D D D D D D D D",
    ("GET", "/v1beta/workspaces/{ws}/users"):                       "A D D D D D D D A D",
    ("DELETE", "/v1beta/workspaces/{ws}/users/{user}"):             "A D D D D D D D D D",
    ("GET", "/v1beta/workspaces/{ws}/audit-events"):                "A D D D D D D D A D",
    # tracking plans and their source connections
    ("GET", TP):                                                    "A D D D A A D D A D",
    ("POST", TP):                                                   "A D D D A D D D D D",
    ("GET", TP + "/{plan}"):                                        "A D D D A A D D A D",
    ("PUT", TP + "/{plan}"):                                        "A D D D A D D D D D",
    ("PATCH", TP + "/{plan}"):                                      "A D D D A D D D D D",
    ("DELETE", TP + "/{plan}"):                                     "A D D D A D D D D D",
    ("POST", TP + "/{plan}:validate"):                              "A D D D A A D D A D",
    ("GET", TP + "/{plan}/source-connections"):                     "A D D D A A D D A D",
    ("POST", TP + "/{plan}/source-connections"):                    "A D D D A D D D D D",
    ("POST", TP + "/{plan}/source-connections:batchCreateConnections"): "A D D D A D D D D D",
    ("DELETE", TP + "/{plan}/source-connections/{src}"):            "A D D D A D D D D D",
    # functions: Function Admin edits and deploys, Function Read-only reads and previews
    ("GET", FN):                                                    "A D D D D D A A A D",
    ("POST", FN):                                                   "A D D D D D A D D D",
    ("POST", FN + "/preview"):                                      "A D D D D D A A A D",
    ("GET", FN + "/{fn}"):                                          "A D D D D D A A A D",
    ("PATCH", FN + "/{fn}"):                                        "A D D D D D A D D D",
    ("DELETE", FN + "/{fn}"):                                       "A D D D D D A D D D",
    ("POST", FN + "/{fn}/deploy"):                                  "A D D D D D A D D D",
    ("GET", FN + "/{fn}/is-latest-version"):                        "A D D D D D A A A D",
}


def expected(route):
    cells = TABLE[route].split()
    assert len(cells) == len(PRINCIPALS) and set(cells) <= {"A", "D"}, (route, TABLE[route])
    return dict(zip(PRINCIPALS, cells))


OTHER_WS, OTHER_WS_ID = "otherws", "oth3rws001"
DESTS = dests_without_required(3)
D1, D_NEW, D_DEL = DESTS  # D1 stays on js; D_NEW is created by POST; D_DEL is made to be deleted


class Matrix:
    """The module's server, the principals and the standing fixtures (js, its destination and
    filter, a tracking plan, a spare user) they are tested against."""

    def __init__(self, srv):
        self.srv = srv
        srv.add_workspace(OTHER_WS, OTHER_WS_ID)
        self.rebuild()
        mk_source(srv, "ios")
        self.plan = plan_id(mk_plan(srv, "matrix plan"))
        self.fn = mk_function(srv)
        self.spare = new_user(srv, role="none")  # subject of policies made by POST policy
        p = {}
        p["owner"] = user_principal(srv, "owner", new_user(srv, role="workspace-owner"))
        for label, role in (("member", "workspace-member"), ("src_ro", "source-read-only"),
                            ("tp_admin", "tracking-plan-admin"), ("tp_ro", "tracking-plan-read-only"),
                            ("fn_admin", "function-admin"), ("fn_ro", "function-read-only")):
            p[label] = user_principal(srv, label, new_user(srv, role=role))
        u = new_user(srv, role="none")
        grant(srv, "source-admin", u, src_name("js"))
        self.src_admin_user = u
        p["src_admin"] = user_principal(srv, "src_admin", u)
        p["admin_read"] = admin_principal(srv, "admin_read", scope="workspace:read")
        p["other_ws"] = admin_principal(srv, "other_ws", workspace=OTHER_WS)
        self.p = p

    def rebuild(self):
        """(Re)creates js with destination D1 and a filter on it (after a DELETE of js)."""
        srv = self.srv
        if srv.get(src_path("js")).status_code == 404:
            mk_source(srv, "js")
            # deleting js dropped the policies on it: the source admin gets theirs back
            if getattr(self, "src_admin_user", None) is not None:
                grant(srv, "source-admin", self.src_admin_user, src_name("js"))
        if srv.get(dst_path("js", D1)).status_code == 404:
            mk_dest(srv, "js", D1)
        fl = assert_ok(srv.get(dst_path("js", D1) + "/filters"))["filters"]
        self.filter = fl[0]["name"].rsplit("/", 1)[1] if fl else mk_filter(srv, "js", D1)["name"].rsplit("/", 1)[1]

    def fresh_token(self, who):
        """A new token of the same principal (for DELETE /access-tokens/{n})."""
        srv = self.srv
        if who.user is not None:
            b = assert_ok(basic_token_request(srv, who.user.email, who.user.password))
            return b["name"]
        if who.label == "admin_read":
            return admin_principal(srv, "admin_read", scope="workspace:read").token_name
        return admin_principal(srv, "other_ws", workspace=OTHER_WS).token_name

    def owner_delete(self, path):
        r = self.srv.delete(path)
        assert r.status_code in (200, 404), (path, r.status_code, r.text)


@pytest.fixture(scope="module")
def mx(server):
    return Matrix(server)


# ---- requests: one builder per route -------------------------------------------------------
# A builder gets (mx, principal) and returns (path parameters, json body or None, cleanup);
# cleanup(response) runs after the request whatever its outcome.

def nothing(r):
    pass


def base_params(mx):
    return {"ws": WS, "src": "js", "dest": D1, "filter": mx.filter, "plan": mx.plan,
            "role": "source-read-only", "fn": mx.fn}


def with_query(path, params):
    """A builder may add a query string under "_query" (the functions list needs ?type=)."""
    return path + params.get("_query", "")


FN_CODE = "async function onRequest(request, settings) {}"


def mk_function(srv, type_="SOURCE"):
    return assert_ok(srv.post(f"{WSP}/functions?type={type_}",
                              json={"function": {"display_name": uniq("matrix fn "), "code": FN_CODE}}))["id"]


def b_fn_list(mx, who):
    return {"_query": "?type=SOURCE"}, None, nothing


def b_fn_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete(f"{WSP}/functions/{r.json()['id']}")
    return {}, {"type": "SOURCE", "function": {"display_name": "made by " + who.label, "code": FN_CODE}}, cleanup


FN_PREVIEW = {"type": "DESTINATION", "function": {"code": "async function onTrack(e) { return 1 }"},
              "payload": '{"type": "track", "event": "x", "userId": "u"}'}


def b_fn_patch(mx, who):
    return {}, {"function": {"display_name": "renamed by " + who.label},
                "update_mask": {"paths": ["function.display_name"]}}, nothing


def b_fn_delete(mx, who):
    fid = mk_function(mx.srv)
    return {"fn": fid}, None, lambda r: mx.owner_delete(f"{WSP}/functions/{fid}")


def b_ws_import(mx, who):
    """The workspace's own export, as a plan (?validate_only=true): all unchanged, so an
    allowed call changes nothing either."""
    doc = assert_ok(mx.srv.get(f"{WSP}:export"))
    return {"_query": "?validate_only=true"}, doc, nothing


def b_plain(body=None):
    def build(mx, who):
        return {}, body, nothing
    return build


def b_token_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete("/v1beta/" + r.json()["name"])
    return {}, token_body(description=uniq("matrix ")), cleanup


def b_token_get(mx, who):
    return {"n": who.token_id}, None, nothing


def b_token_delete(mx, who):
    name = mx.fresh_token(who)
    return {"n": token_id(name)}, None, nothing


def b_catalog(mx, who):
    return {"slug": "javascript"}, None, nothing


def b_catalog_dest(mx, who):
    return {"slug": D1}, None, nothing


def b_source_create(mx, who):
    slug = uniq("s")

    def cleanup(r):
        mx.owner_delete(src_path(slug))
    return {}, {"source": {"name": src_name(slug), "catalog_name": "catalog/sources/javascript"}}, cleanup


def b_source_delete(mx, who):
    return {}, None, lambda r: mx.rebuild()


def b_schema_patch(mx, who):
    return {}, {"schema_config": {"allow_unplanned_track_events": False},
                "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}, nothing


def b_dest_create(mx, who):
    return {}, {"destination": {"name": f"{src_name('js')}/destinations/{D_NEW}"}}, \
        lambda r: mx.owner_delete(dst_path("js", D_NEW))


def b_dest_patch(mx, who):
    return {}, {"destination": {"enabled": True}, "update_mask": {"paths": ["destination.enabled"]}}, nothing


def b_dest_delete(mx, who):
    mk_dest(mx.srv, "js", D_DEL)
    return {"dest": D_DEL}, None, lambda r: mx.owner_delete(dst_path("js", D_DEL))


def b_filter_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete("/v1beta/" + r.json()["name"])
    return {}, {"filter": dict(FILTER, title="made by " + who.label)}, cleanup


def b_filter_patch(mx, who):
    return {}, {"filter": {"enabled": False}, "update_mask": {"paths": ["enabled"]}}, nothing


def b_filter_delete(mx, who):
    f = mk_filter(mx.srv, "js", D1, title="to delete")["name"]
    return {"filter": f.rsplit("/", 1)[1]}, None, lambda r: mx.owner_delete("/v1beta/" + f)


def b_metric(mx, who):
    return {"metric": "successes"}, None, nothing


def b_metrics_batch(mx, who):
    return {}, {"names": ["successes", "retried"]}, nothing


def b_metrics_batch_summary(mx, who):
    return {}, {"names": [f"{src_name('js')}/destinations/{D1}"]}, nothing


PREVIEW = {"filter": {"if": "all", "actions": [{"type": "drop_event"}]},
           "input": '{"type": "track", "event": "x"}'}


def b_policy_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete("/v1beta/" + r.json()["name"])
    return {}, {"policy": {"subject": mx.spare.name, "resource": src_name("ios")}}, cleanup


def b_policy_delete(mx, who):
    pol = grant(mx.srv, "source-read-only", mx.spare, src_name("ios"))["name"]
    return {"policy": pol.rsplit("/", 1)[1]}, None, lambda r: mx.owner_delete("/v1beta/" + pol)


def b_invite_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete("/v1beta/" + r.json()["name"])
    return {}, {"invite": {"email": f"{uniq('m')}@example.com",
                           "policies": [{"role": "source-read-only", "resource": WS_NAME}]}}, cleanup


def b_invite_delete(mx, who):
    inv = mk_invite(mx.srv)["name"]
    return {"invite": inv.rsplit("/", 1)[1]}, None, lambda r: mx.owner_delete("/v1beta/" + inv)


def b_user_delete(mx, who):
    u = new_user(mx.srv, role="workspace-member")
    return {"user": u.id}, None, lambda r: mx.owner_delete(f"{WSP}/users/{u.id}")


def b_plan_create(mx, who):
    def cleanup(r):
        if r.status_code == 200:
            mx.owner_delete("/v1beta/" + r.json()["name"])
    return {}, {"tracking_plan": {"display_name": "made by " + who.label}}, cleanup


def b_plan_update(mx, who):
    return {}, {"tracking_plan": {"display_name": "renamed by " + who.label},
                "update_mask": {"paths": ["tracking_plan.display_name"]}}, nothing


def b_plan_delete(mx, who):
    pid = plan_id(mk_plan(mx.srv))
    return {"plan": pid}, None, lambda r: mx.owner_delete(plan_path(pid))


VALIDATE = {"events": [{"type": "track", "event": "Signed Up", "properties": {}}]}


def b_conn_create(mx, who):
    slug = mk_source(mx.srv)
    return {}, {"source_name": src_name(slug)}, lambda r: mx.owner_delete(src_path(slug))


def b_conn_batch(mx, who):
    a, b = mk_source(mx.srv), mk_source(mx.srv)

    def cleanup(r):
        mx.owner_delete(src_path(a))
        mx.owner_delete(src_path(b))
    return {}, {"source_names": [src_name(a), src_name(b)]}, cleanup


def b_conn_delete(mx, who):
    slug = mk_source(mx.srv)
    assert_ok(mx.srv.post(plan_path(mx.plan) + "/source-connections", json={"source_name": src_name(slug)}))
    return {"src": slug}, None, lambda r: mx.owner_delete(src_path(slug))


BUILDERS = {
    ("GET", "/v1beta/workspaces/{ws}:export"): b_plain(),
    ("POST", "/v1beta/workspaces/{ws}:import"): b_ws_import,
    ("GET", "/healthz"): b_plain(),
    ("GET", "/readyz"): b_plain(),
    ("GET", "/metrics"): b_plain(),
    ("GET", "/v1beta/openapi.json"): b_plain(),
    ("GET", "/"): b_plain(),
    ("GET", "/ui"): b_plain(),
    ("GET", "/ui/{file}"): lambda mx, who: ({"file": "app.js"}, None, nothing),
    ("POST", "/v1beta/access-tokens"): b_token_create,
    ("GET", "/v1beta/access-tokens"): b_plain(),
    ("GET", "/v1beta/access-tokens/{n}"): b_token_get,
    ("DELETE", "/v1beta/access-tokens/{n}"): b_token_delete,
    ("GET", "/v1beta/catalog/sources"): b_plain(),
    ("GET", "/v1beta/catalog/sources/{slug}"): b_catalog,
    ("GET", "/v1beta/catalog/destinations"): b_plain(),
    ("GET", "/v1beta/catalog/destinations/{slug}"): b_catalog_dest,
    ("GET", "/v1beta/workspaces"): b_plain(),
    ("GET", "/v1beta/workspaces/{ws}"): b_plain(),
    ("GET", SRC): b_plain(),
    ("POST", SRC): b_source_create,
    ("GET", SRC + "/{src}"): b_plain(),
    ("DELETE", SRC + "/{src}"): b_source_delete,
    ("GET", SRC + "/{src}/schema-config"): b_plain(),
    ("PATCH", SRC + "/{src}/schema-config"): b_schema_patch,
    ("GET", SRC + "/{src}/events"): b_plain(),
    ("GET", SRC + "/{src}/events:summary"): b_plain(),
    ("GET", DST): b_plain(),
    ("POST", DST): b_dest_create,
    ("GET", DST + "/{dest}"): b_plain(),
    ("PATCH", DST + "/{dest}"): b_dest_patch,
    ("DELETE", DST + "/{dest}"): b_dest_delete,
    ("GET", DST + "/{dest}/metrics"): b_plain(),
    ("GET", DST + "/{dest}/metrics/{metric}"): b_metric,
    ("GET", DST + "/{dest}/metrics:batchGet"): b_metrics_batch,
    ("GET", DST + "/{dest}/metrics:getSummary"): b_plain(),
    ("GET", "/v1beta/workspaces/{ws}/event-delivery-metrics:batchGetSummary"): b_metrics_batch_summary,
    ("GET", DST + "/{dest}/filters"): b_plain(),
    ("POST", DST + "/{dest}/filters"): b_filter_create,
    ("GET", DST + "/{dest}/filters/{filter}"): b_plain(),
    ("PATCH", DST + "/{dest}/filters/{filter}"): b_filter_patch,
    ("DELETE", DST + "/{dest}/filters/{filter}"): b_filter_delete,
    ("POST", "/v1beta/filters/preview"): b_plain(PREVIEW),
    ("POST", "/v1beta/filters:preview"): b_plain(PREVIEW),
    ("GET", "/v1beta/workspaces/{ws}/roles"): b_plain(),
    ("GET", "/v1beta/workspaces/{ws}/roles/{role}/policies"): b_plain(),
    ("POST", "/v1beta/workspaces/{ws}/roles/{role}/policies"): b_policy_create,
    ("DELETE", "/v1beta/workspaces/{ws}/roles/{role}/policies/{policy}"): b_policy_delete,
    ("GET", "/v1beta/workspaces/{ws}/invites"): b_plain(),
    ("POST", "/v1beta/workspaces/{ws}/invites"): b_invite_create,
    ("DELETE", "/v1beta/workspaces/{ws}/invites/{invite}"): b_invite_delete,
    ("GET", "/v1beta/workspaces/{ws}/users"): b_plain(),
    ("DELETE", "/v1beta/workspaces/{ws}/users/{user}"): b_user_delete,
    ("GET", "/v1beta/workspaces/{ws}/audit-events"): b_plain(),
    ("GET", TP): b_plain(),
    ("POST", TP): b_plan_create,
    ("GET", TP + "/{plan}"): b_plain(),
    ("PUT", TP + "/{plan}"): b_plan_update,
    ("PATCH", TP + "/{plan}"): b_plan_update,
    ("DELETE", TP + "/{plan}"): b_plan_delete,
    ("POST", TP + "/{plan}:validate"): b_plain(VALIDATE),
    ("GET", TP + "/{plan}/source-connections"): b_plain(),
    ("POST", TP + "/{plan}/source-connections"): b_conn_create,
    ("POST", TP + "/{plan}/source-connections:batchCreateConnections"): b_conn_batch,
    ("DELETE", TP + "/{plan}/source-connections/{src}"): b_conn_delete,
    ("GET", FN): b_fn_list,
    ("POST", FN): b_fn_create,
    ("POST", FN + "/preview"): b_plain(FN_PREVIEW),
    ("GET", FN + "/{fn}"): b_plain(),
    ("PATCH", FN + "/{fn}"): b_fn_patch,
    ("DELETE", FN + "/{fn}"): b_fn_delete,
    ("POST", FN + "/{fn}/deploy"): b_plain(),
    ("GET", FN + "/{fn}/is-latest-version"): b_plain(),
}


# ---- the tests ------------------------------------------------------------------------------

def test_every_route_is_in_the_table():
    """A route served by the binary without a row in TABLE fails here (and a row for a route
    that no longer exists, so the table stays the route list)."""
    served = {(r["method"], r["path"]) for r in route_table()}
    missing = sorted(served - set(TABLE))
    stale = sorted(set(TABLE) - served)
    assert not missing, "routes with no access-matrix entry (add them to TABLE and BUILDERS): %s" % missing
    assert not stale, "TABLE rows for routes the binary does not serve: %s" % stale
    assert set(BUILDERS) == set(TABLE)
    for route in TABLE:
        expected(route)


def test_table_agrees_with_declared_actions():
    """Sanity: a route whose declared action is read is allowed to admin_read, a write
    route is not, and public routes are open to everyone."""
    for r in route_table():
        key = (r["method"], r["path"])
        if key not in TABLE:
            continue  # reported by test_every_route_is_in_the_table
        e = expected(key)
        if r["action"] == "public":
            assert set(e.values()) == {"A"}, key
        elif r["action"] == "read":
            assert e["admin_read"] == "A", key
        else:
            assert e["admin_read"] == "D", key


@functools.lru_cache(maxsize=None)
def declared_actions():
    return {(r["method"], r["path"]): r["action"] for r in route_table()}


def is_mutation(method):
    return method in ("POST", "PUT", "PATCH", "DELETE")


@pytest.mark.parametrize("route", sorted(TABLE), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_access(mx, route):
    method, pattern = route
    exp = expected(route)
    srv = mx.srv
    write_action = declared_actions().get(route) in ("write", "token_create")
    wrong = []
    for label in PRINCIPALS:
        who = mx.p[label]
        params, body, cleanup = BUILDERS[route](mx, who)
        full = dict(base_params(mx), **params)
        path = with_query(pattern.format(**full), full)
        before = latest_event_id(srv) if is_mutation(method) else None
        kw = {"json": body} if body is not None else {}
        r = srv.request(method, path, token=who.token, **kw)
        try:
            got = f"{r.status_code} {r.text[:200]}"
            if exp[label] == "A":
                if r.status_code != 200:
                    wrong.append(f"{label}: want allow (200), got {got}")
            else:
                ok = r.status_code == 403 and r.headers.get("Content-Type", "").startswith("application/json")
                ok = ok and r.json().get("code") == 7 and set(r.json()) == {"error", "code"}
                if ok and label == "admin_read" and write_action:
                    ok = r.json() == INSUFFICIENT
                if not ok:
                    wrong.append(f"{label}: want deny (403/7), got {got}")
                elif is_mutation(method):
                    after = latest_event_id(srv)
                    if after != before:
                        wrong.append(f"{label}: denied, yet the audit trail grew ({before} → {after})")
        finally:
            cleanup(r)
    assert not wrong, f"{method} {pattern}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("route", sorted(k for k in TABLE if declared_actions().get(k) != "public"),
                         ids=lambda r: f"{r[0]} {r[1]}")
def test_route_needs_a_valid_token(mx, route):
    """Without a token, or with a revoked or made-up one, every non-public route is 401/16
    (before anything else is looked at)."""
    method, pattern = route
    params, body, cleanup = BUILDERS[route](mx, mx.p["owner"])
    full = dict(base_params(mx), **params)
    path = with_query(pattern.format(**full), full)
    kw = {"json": body} if body is not None else {}
    r = None
    try:
        for tok in (None, "A" * 43 + "." + "B" * 43, "not-a-token"):
            r = mx.srv.request(method, path, token=tok, **kw)
            assert_error(r, 401, 16)
    finally:
        if r is not None:
            cleanup(r)


def test_source_admin_is_bound_to_its_source(mx):
    """The same requests that the source admin may make on js are denied on ios, and on
    js2 (a slug that merely starts with "js")."""
    srv, who = mx.srv, mx.p["src_admin"]
    mk_source(srv, "js2")
    if srv.get(dst_path("ios", D1)).status_code == 404:
        mk_dest(srv, "ios", D1)
    for other in ("ios", "js2"):
        for method, path, body in (
                ("GET", src_path(other), None),
                ("GET", src_path(other) + "/schema-config", None),
                ("GET", src_path(other) + "/destinations", None),
                ("POST", src_path(other) + "/destinations",
                 {"destination": {"name": f"{src_name(other)}/destinations/{D_NEW}"}}),
                ("DELETE", src_path(other), None)):
            r = srv.request(method, path, token=who.token, **({"json": body} if body else {}))
            assert_error(r, 403, 7)
    assert_error(srv.get(dst_path("ios", D1), token=who.token), 403, 7)
    assert_error(srv.request("PATCH", dst_path("ios", D1), token=who.token,
                             json={"destination": {"enabled": True},
                                   "update_mask": {"paths": ["destination.enabled"]}}), 403, 7)
    assert_ok(srv.get(src_path("ios")))
    assert_ok(srv.get(src_path("js2")))


def test_workspace_id_in_path_gets_the_same_answer(mx):
    """{ws} may be the workspace id: the decision must not change."""
    srv = mx.srv
    ws_id = assert_ok(srv.get(WSP))["id"]
    for label, path, want in (("src_admin", f"/v1beta/workspaces/{ws_id}/sources/js", 200),
                              ("src_admin", f"/v1beta/workspaces/{ws_id}/sources/ios", 403),
                              ("src_admin", f"/v1beta/workspaces/{ws_id}/sources", 403),
                              ("member", f"/v1beta/workspaces/{ws_id}", 200),
                              ("member", f"/v1beta/workspaces/{ws_id}/sources/js", 403),
                              ("other_ws", f"/v1beta/workspaces/{ws_id}", 403),
                              ("other_ws", f"/v1beta/workspaces/{ws_id}/sources", 403)):
        r = srv.get(path, token=mx.p[label].token)
        assert r.status_code == want, (label, path, r.status_code, r.text)
        if want == 403:
            assert r.json()["code"] == 7


def test_other_workspace_token_is_denied_even_for_unknown_workspaces(mx):
    """A workspace the caller has no access to is 403 whether it exists or not (no probing)."""
    srv, who = mx.srv, mx.p["other_ws"]
    for ws in (WS, "no-such-workspace"):
        assert_error(srv.get(f"/v1beta/workspaces/{ws}/sources", token=who.token), 403, 7)
    assert_error(srv.get("/v1beta/workspaces/no-such-workspace/sources", token=mx.p["src_ro"].token), 403, 7)


@pytest.mark.parametrize("path", [
    "/v1beta/workspaces/myworkspace/sources/js/../ios",
    "/v1beta/workspaces/myworkspace/sources/./ios",
    "/v1beta/workspaces/myworkspace/sources//ios",
    "/v1beta/workspaces/myworkspace/sources/js/%2e%2e/ios",
    "/v1beta/workspaces/myworkspace/sources/js%2F..%2Fios",
    "/v1beta/workspaces/myworkspace/sources/js%2fdestinations",
    "/v1beta/workspaces/myworkspace/sources/JS",
    "/v1beta/workspaces/myworkspace/sources/ios%00js",
    "/v1beta/workspaces/MYWORKSPACE/sources/js",
    "/v1beta/workspaces/myworkspace/./sources/ios",
    "/v1beta/workspaces/myworkspace/sources/js/..",
    "/v1beta/workspaces/myworkspace/sources/js/../../workspaces/myworkspace/roles",
    "/v1beta/workspaces/myworkspace/sources/js/destinations/../../ios",
])
def test_path_tricks_do_not_widen_a_policy(mx, path):
    """The source admin of js gets nothing of ios (or of IAM) by dressing up the path: the
    answer is an error, never a 200."""
    from conftest import raw_request
    who = mx.p["src_admin"]
    req = (f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {who.token}\r\n"
           f"Connection: close\r\n\r\n").encode()
    r = raw_request(mx.srv.port, req)
    assert r is not None and r.status in (400, 403, 404), (path, r and r.status, r and r.body[:200])
    assert r.json()["code"] == {400: 3, 403: 7, 404: 5}[r.status]

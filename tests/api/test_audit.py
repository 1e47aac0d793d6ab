"""The audit trail: GET /v1beta/workspaces/{ws}/audit-events.

Every mutation writes one event in the same transaction as the change:
  {"id", "time", "actor", "access_token", "action", "resource", "before", "after", "request_id"}
actor is "users/<id>" for a user's token and "admin" for an admin-command token; action is
"<kind>.<verb>"; before/after are the resource as the API renders it (so password settings
are masked); request_id equals the X-Request-Id header of the response. The list is newest
first, paginated, filtered by resource (a name prefix), start_time and end_time; only
owners read it (admin-command tokens within their scope too). Failed mutations leave
nothing behind."""
import datetime
import json
import time

import pytest

from conftest import BACKEND, assert_error, assert_ok
from helpers_iam import is_cli_event  # noqa: E402
from helpers_iam import (FILTER, SECRET_DEST, SECRET_KEY, WS_NAME, WSP, admin_principal, assert_denied,
                         audit_events, audit_page, audit_path, basic_token_request, check_event_shape,
                         dests_without_required, dst_name, dst_path, events_since, grant, has_route,
                         latest_event_id, list_all, mk_dest, mk_filter, mk_invite, mk_plan, mk_source,
                         new_user, plan_id, plan_path, policies_path, principal_with, src_name, src_path,
                         token_body, uniq, user_principal)

OTHER_WS, OTHER_WS_ID = "audother", "audother01"
D1, D2 = dests_without_required(2)
MASK = "********"


@pytest.fixture(scope="module")
def srv(server):
    """The module's server, with an owner user (its token does the mutations), a second
    workspace and its admin token."""
    if not getattr(server, "audit_ready", False):
        server.add_workspace(OTHER_WS, OTHER_WS_ID)
        server.owner = user_principal(server, "owner", new_user(server, role="workspace-owner"))
        server.other_admin = admin_principal(server, "other admin", workspace=OTHER_WS)
        server.audit_ready = True
    return server


class Recorder:
    """Sends mutations with one principal and checks the audit events each one left."""

    def __init__(self, srv, who):
        self.srv, self.who = srv, who
        self.last = latest_event_id(srv)

    def send(self, method, path, body=None, **kw):
        t0 = time.time()
        r = self.srv.request(method, path, token=self.who.token, **({"json": body} if body is not None else {}), **kw)
        r.t0, r.t1 = t0, time.time()
        return r

    def new_events(self):
        evs = events_since(self.srv, self.last)
        if evs:
            self.last = int(evs[-1]["id"])
        return evs

    def expect(self, r, action, resource, before, after, count=1):
        """r succeeded and left exactly `count` events, the first of which is checked."""
        assert r.status_code == 200, (r.request.method, r.request.url, r.status_code, r.text)
        evs = self.new_events()
        assert len(evs) == count, json.dumps(evs, indent=1)
        e = evs[0]
        check_event_shape(e)
        assert e["action"] == action, e
        assert e["resource"] == resource, e
        assert e["actor"] == (self.who.user.name if self.who.user else "admin"), e
        assert e["access_token"] == self.who.token_name, e
        assert e["request_id"] == r.headers["X-Request-Id"], (e, dict(r.headers))
        assert e["before"] == before, json.dumps(e, indent=1)
        assert e["after"] == after, json.dumps(e, indent=1)
        t = parse_time(e["time"])
        assert r.t0 - 2 <= t <= r.t1 + 2, (e["time"], r.t0, r.t1)
        return evs


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def fmt_time(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def patch_body(kind, obj, paths):
    return {kind: obj, "update_mask": {"paths": paths}}


# ---- one test per kind of mutation ------------------------------------------------------------

def test_source_create_and_delete(srv):
    rec = Recorder(srv, srv.owner)
    slug = uniq("s")
    r = rec.send("POST", f"{WSP}/sources", {"source": {"name": src_name(slug),
                                                       "catalog_name": "catalog/sources/javascript"}})
    rec.expect(r, "source.create", src_name(slug), None, r.json())
    mk_dest(srv, slug, D1)
    rec.new_events()
    before = assert_ok(srv.get(src_path(slug)))
    r = rec.send("DELETE", src_path(slug))
    rec.expect(r, "source.delete", src_name(slug), before, None)


def test_schema_config_update(srv):
    slug = mk_source(srv)
    rec = Recorder(srv, srv.owner)
    before = assert_ok(srv.get(src_path(slug) + "/schema-config"))
    r = rec.send("PATCH", src_path(slug) + "/schema-config", patch_body(
        "schema_config", {"allow_unplanned_track_events": False}, ["schema_config.allow_unplanned_track_events"]))
    rec.expect(r, "schema_config.update", src_name(slug) + "/schema-config", before, r.json())
    assert r.json()["allow_unplanned_track_events"] is False and before["allow_unplanned_track_events"] is True


def test_destination_create_update_delete(srv):
    slug = mk_source(srv)
    rec = Recorder(srv, srv.owner)
    name = dst_name(slug, D1)
    r = rec.send("POST", src_path(slug) + "/destinations", {"destination": {"name": name}})
    rec.expect(r, "destination.create", name, None, r.json())
    before = r.json()
    r = rec.send("PATCH", dst_path(slug, D1), patch_body("destination", {"enabled": True}, ["destination.enabled"]))
    rec.expect(r, "destination.update", name, before, r.json())
    assert r.json()["enabled"] is True
    before = r.json()
    r = rec.send("DELETE", dst_path(slug, D1))
    rec.expect(r, "destination.delete", name, before, None)


def test_destination_secrets_are_masked(srv):
    slug = mk_source(srv)
    rec = Recorder(srv, srv.owner)
    secret1, secret2 = "first-" + uniq("secret"), "second-" + uniq("secret")
    name = dst_name(slug, SECRET_DEST)
    setting = f"{name}/config/{SECRET_KEY}"

    def value(obj):
        return next(c for c in obj["config"] if c["name"] == setting)["value"]

    r = rec.send("POST", src_path(slug) + "/destinations", {"destination": {
        "name": name, "config": [{"name": SECRET_KEY, "value": secret1}]}})
    evs = rec.expect(r, "destination.create", name, None, r.json())
    assert value(evs[0]["after"]) == MASK
    created = r.json()
    r = rec.send("PATCH", dst_path(slug, SECRET_DEST), patch_body(
        "destination", {"config": [{"name": setting, "value": secret2}], "enabled": True},
        ["destination.config", "destination.enabled"]))
    evs = rec.expect(r, "destination.update", name, created, r.json())
    assert value(evs[0]["before"]) == MASK and value(evs[0]["after"]) == MASK
    # the secret changed, and the masked forms say so only through secret_version
    sv = [next(c for c in o["config"] if c["name"] == setting)["secret_version"] for o in (created, r.json())]
    assert sv[0] != sv[1]
    before = r.json()
    r = rec.send("DELETE", dst_path(slug, SECRET_DEST))
    evs = rec.expect(r, "destination.delete", name, before, None)
    assert value(evs[0]["before"]) == MASK
    # neither secret appears anywhere in the trail, whatever the filter or page size
    for params in ({}, {"resource": name}, {"page_size": 1}):
        text = audit_page(srv, **params).text
        assert secret1 not in text and secret2 not in text


def test_filter_create_update_delete(srv):
    slug = mk_source(srv)
    mk_dest(srv, slug, D1)
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", dst_path(slug, D1) + "/filters", {"filter": FILTER})
    f = r.json()
    rec.expect(r, "filter.create", f["name"], None, f)
    r = rec.send("PATCH", "/v1beta/" + f["name"], patch_body("filter", {"title": "new title"}, ["title"]))
    rec.expect(r, "filter.update", f["name"], f, r.json())
    before = r.json()
    r = rec.send("DELETE", "/v1beta/" + f["name"])
    rec.expect(r, "filter.delete", f["name"], before, None)


def test_tracking_plan_create_update_delete(srv):
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", f"{WSP}/tracking-plans", {"tracking_plan": {"display_name": "Audited"}})
    p = r.json()
    rec.expect(r, "tracking_plan.create", p["name"], None, p)
    path = "/v1beta/" + p["name"]
    for method in ("PUT", "PATCH"):
        r = rec.send(method, path, patch_body("tracking_plan", {"display_name": "by " + method},
                                              ["tracking_plan.display_name"]))
        rec.expect(r, "tracking_plan.update", p["name"], p, r.json())
        p = r.json()
    r = rec.send("DELETE", path)
    rec.expect(r, "tracking_plan.delete", p["name"], p, None)


def test_source_connections(srv):
    a, b, c = mk_source(srv), mk_source(srv), mk_source(srv)
    pid = plan_id(mk_plan(srv))
    conns = plan_path(pid) + "/source-connections"
    cname = f"{WS_NAME}/tracking-plans/{pid}/source-connections/"
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", conns, {"source_name": src_name(a)})
    rec.expect(r, "source_connection.create", cname + a, None, r.json())
    assert r.json() == {"source_name": src_name(a), "tracking_plan_id": pid}
    r = rec.send("POST", conns + ":batchCreateConnections", {"source_names": [src_name(b), src_name(c)]})
    evs = rec.expect(r, "source_connection.create", cname + b, None, r.json()["connections"][0], count=2)
    assert evs[1]["resource"] == cname + c and evs[1]["after"] == r.json()["connections"][1], evs
    assert evs[1]["request_id"] == evs[0]["request_id"]
    r = rec.send("DELETE", f"{conns}/{a}")
    rec.expect(r, "source_connection.delete", cname + a, {"source_name": src_name(a), "tracking_plan_id": pid}, None)


def test_policy_create_and_delete(srv):
    u = new_user(srv)
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", policies_path("source-admin"), {"policy": {"subject": u.name, "resource": WS_NAME}})
    p = r.json()
    rec.expect(r, "policy.create", p["name"], None, p)
    r = rec.send("DELETE", "/v1beta/" + p["name"])
    rec.expect(r, "policy.delete", p["name"], p, None)


def test_invite_create_and_delete(srv):
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", f"{WSP}/invites", {"invite": {
        "email": f"{uniq('a')}@example.com", "policies": [{"role": "source-read-only", "resource": WS_NAME}]}})
    inv = r.json()
    rec.expect(r, "invite.create", inv["name"], None, inv)
    r = rec.send("DELETE", "/v1beta/" + inv["name"])
    rec.expect(r, "invite.delete", inv["name"], inv, None)


def test_token_create_and_delete(srv):
    rec = Recorder(srv, srv.owner)
    r = rec.send("POST", "/v1beta/access-tokens", token_body(description="audited token"))
    created = r.json()
    shown = {k: v for k, v in created.items() if k != "token"}
    n = created["name"].split("/")[1]
    evs = rec.expect(r, "access_token.create", f"{WS_NAME}/access-tokens/{n}", None, shown)
    assert created["token"] not in json.dumps(evs)
    r = rec.send("DELETE", "/v1beta/" + created["name"])
    rec.expect(r, "access_token.delete", f"{WS_NAME}/access-tokens/{n}", shown, None)
    # the plain token is nowhere in the trail
    assert created["token"] not in audit_page(srv, page_size=100).text


def test_token_made_with_basic_auth_names_the_user_and_no_token(srv):
    u = new_user(srv, role="source-read-only")
    last = latest_event_id(srv)
    r = basic_token_request(srv, u.email, u.password, description="via basic")
    b = assert_ok(r)
    evs = events_since(srv, last)
    assert len(evs) == 1, evs
    e = evs[0]
    assert e["action"] == "access_token.create" and e["actor"] == u.name and e["access_token"] is None, e
    assert e["resource"] == f"{WS_NAME}/access-tokens/{b['name'].split('/')[1]}", e
    assert e["request_id"] == r.headers["X-Request-Id"]
    assert u.password not in json.dumps(evs) and b["token"] not in json.dumps(evs)


def test_user_removal_is_audited(srv):
    if not has_route("DELETE", "/v1beta/workspaces/{ws}/users/{user}"):
        pytest.skip("users cannot be removed through the API in this build")
    u = new_user(srv)
    p1 = grant(srv, "source-admin", u, WS_NAME)
    p2 = grant(srv, "tracking-plan-admin", u, WS_NAME)
    rec = Recorder(srv, srv.owner)
    r = rec.send("DELETE", f"{WSP}/users/{u.id}")
    assert r.status_code == 200, r.text
    evs = rec.new_events()
    assert sorted((e["action"], e["resource"]) for e in evs) == \
        sorted(("policy.delete", p["name"]) for p in (p1, p2)), evs
    for e in evs:
        assert e["actor"] == srv.owner.user.name and e["access_token"] == srv.owner.token_name, e
        assert e["request_id"] == r.headers["X-Request-Id"], e
        assert e["after"] is None, e
        # like any other policy.delete, the entry says what was removed: whose, which role, on what
        assert e["before"] == next(p for p in (p1, p2) if p["name"] == e["resource"]), e


def test_actor_of_admin_and_user_tokens(srv):
    admin = admin_principal(srv, "admin-writer")
    rec = Recorder(srv, admin)
    slug = uniq("s")
    r = rec.send("POST", f"{WSP}/sources", {"source": {"name": src_name(slug),
                                                       "catalog_name": "catalog/sources/javascript"}})
    rec.expect(r, "source.create", src_name(slug), None, r.json())
    who = principal_with(srv, "sa", "source-admin", src_name(slug))
    rec = Recorder(srv, who)
    r = rec.send("POST", src_path(slug) + "/destinations", {"destination": {"name": dst_name(slug, D2)}})
    rec.expect(r, "destination.create", dst_name(slug, D2), None, r.json())


# ---- listing ------------------------------------------------------------------------------------

def test_newest_first_and_pagination(start_server):
    s = start_server("--rate-limit", "0")
    made = []
    for i in range(7):
        r = s.post(f"{WSP}/sources", json={"source": {"name": src_name(f"p{i}"),
                                                      "catalog_name": "catalog/sources/javascript"}})
        assert_ok(r)
        made.append(r.headers["X-Request-Id"])
    everything = assert_ok(audit_page(s, page_size=100))
    assert everything["next_page_token"] == ""
    evs = everything["audit_events"]
    ids = [int(e["id"]) for e in evs]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    times = [parse_time(e["time"]) for e in evs]
    assert times == sorted(times, reverse=True)
    assert [e["request_id"] for e in evs if e["action"] == "source.create"] == list(reversed(made))
    # pages of 3: the same events in the same order, no gaps or repeats
    pages, tok = [], ""
    while True:
        params = {"page_size": 3}
        if tok:
            params["page_token"] = tok
        b = assert_ok(audit_page(s, **params))
        assert set(b) == {"audit_events", "next_page_token"}
        pages.append(b["audit_events"])
        tok = b["next_page_token"]
        if not tok:
            break
        assert len(b["audit_events"]) == 3
    assert [e for p in pages for e in p] == evs
    assert len(pages) == -(-len(evs) // 3)
    # the default page size is 10
    b = assert_ok(audit_page(s))
    assert b["audit_events"] == evs[:10]
    # events made after a page token was issued do not shift later pages
    first = assert_ok(audit_page(s, page_size=2))
    assert_ok(s.post(f"{WSP}/sources", json={"source": {"name": src_name("late"),
                                                         "catalog_name": "catalog/sources/javascript"}}))
    second = assert_ok(audit_page(s, page_size=2, page_token=first["next_page_token"]))
    assert second["audit_events"] == evs[2:4]


@pytest.mark.parametrize("params", [{"page_token": "garbage!"}, {"page_token": "-5"}, {"page_size": "-1"},
                                    {"page_size": "ten"}, {"start_time": "yesterday"}, {"end_time": "2024-13-01T00:00:00Z"},
                                    {"start_time": "2024-01-01"}, {"end_time": "2024-01-01T00:00:00"}])
def test_bad_list_parameters_are_400(srv, params):
    assert_error(audit_page(srv, **params), 400, 3)


def test_resource_prefix_filter(srv):
    a, b = mk_source(srv), mk_source(srv)
    for s in (a, b):
        mk_dest(srv, s, D1)
        mk_filter(srv, s, D1)
    got = audit_events(srv, resource=src_name(a))
    assert {e["resource"] for e in got} >= {src_name(a), dst_name(a, D1)}
    assert any(e["action"] == "filter.create" for e in got)
    assert all(e["resource"].startswith(src_name(a)) for e in got), got
    assert not [e for e in got if e["resource"].startswith(src_name(b))]
    # paginated with the filter on
    assert list_all(srv, audit_path(), "audit_events", page_size=1, params={"resource": src_name(a)}) == got
    dests = audit_events(srv, resource=dst_name(a, D1))
    assert [e["action"] for e in dests] == ["filter.create", "destination.create"]
    assert audit_events(srv, resource=f"{WS_NAME}/sources/no-such-source") == []
    # the whole workspace is every event
    assert audit_events(srv, resource=WS_NAME) == audit_events(srv)


def test_resource_filter_is_a_name_not_a_string_prefix(srv):
    a = mk_source(srv)
    longer = mk_source(srv, slug=a + "2")  # its name starts with a's
    mk_dest(srv, longer, D1)
    got = {e["resource"] for e in audit_events(srv, resource=src_name(a))}
    assert got == {src_name(a)}, got
    assert {e["resource"] for e in audit_events(srv, resource=src_name(longer))} == \
        {src_name(longer), dst_name(longer, D1)}
    # a trailing slash changes nothing
    assert audit_events(srv, resource=src_name(a) + "/") == audit_events(srv, resource=src_name(a))


def test_time_filters(srv):
    rec = Recorder(srv, srv.owner)
    slug1, slug2 = uniq("t"), uniq("t")
    rec.send("POST", f"{WSP}/sources", {"source": {"name": src_name(slug1), "catalog_name": "catalog/sources/javascript"}})
    e1 = rec.new_events()[0]
    time.sleep(0.3)
    rec.send("POST", f"{WSP}/sources", {"source": {"name": src_name(slug2), "catalog_name": "catalog/sources/javascript"}})
    e2 = rec.new_events()[0]
    t1, t2 = parse_time(e1["time"]), parse_time(e2["time"])
    assert t2 - t1 >= 0.2, (e1["time"], e2["time"])
    mid = fmt_time((t1 + t2) / 2)

    def ids(**params):
        return {e["id"] for e in audit_events(srv, **params)}
    assert e2["id"] in ids(start_time=mid) and e1["id"] not in ids(start_time=mid)
    assert e1["id"] in ids(end_time=mid) and e2["id"] not in ids(end_time=mid)
    assert not ids(start_time=mid, end_time=mid)
    lo, hi = fmt_time(t1 - 0.05), fmt_time(t2 + 0.05)
    window = ids(start_time=lo, end_time=hi)
    assert {e1["id"], e2["id"]} <= window
    # checked against the bounds as sent (fmt_time cuts to the millisecond: an event in that
    # last millisecond before t1 - 0.05 is inside the window asked for)
    assert all(parse_time(lo) <= parse_time(e["time"]) < parse_time(hi)
               for e in audit_events(srv, start_time=lo, end_time=hi))
    # a UTC offset means the same instant
    plus2 = datetime.datetime.fromtimestamp((t1 + t2) / 2, datetime.timezone(datetime.timedelta(hours=2)))
    assert ids(start_time=plus2.isoformat(timespec="milliseconds")) == ids(start_time=mid)
    # combined with the resource filter
    assert [e["id"] for e in audit_events(srv, resource=src_name(slug2), start_time=fmt_time(t1 - 0.05))] == [e2["id"]]
    assert audit_events(srv, resource=src_name(slug2), end_time=mid) == []


def test_audit_trail_is_per_workspace(srv):
    other = srv.other_admin
    rec = Recorder(srv, srv.owner)
    slug = uniq("o")
    r = srv.post(f"/v1beta/workspaces/{OTHER_WS}/sources", token=other.token, json={"source": {
        "name": src_name(slug, OTHER_WS), "catalog_name": "catalog/sources/javascript"}})
    assert_ok(r)
    assert rec.new_events() == []
    theirs = audit_events(srv, token=other.token, ws=OTHER_WS)
    assert theirs[0]["resource"] == src_name(slug, OTHER_WS) and theirs[0]["actor"] == "admin"
    assert theirs[0]["request_id"] == r.headers["X-Request-Id"]
    assert all(e["resource"].startswith(f"workspaces/{OTHER_WS}") for e in theirs)
    assert_denied(audit_page(srv, token=other.token))
    assert_denied(audit_page(srv, ws=OTHER_WS))


# ---- who may read -----------------------------------------------------------------------------

def test_only_owners_read_the_audit_trail(srv):
    assert_ok(audit_page(srv, token=srv.owner.token))
    assert_ok(audit_page(srv))  # the bootstrap owner
    assert_ok(audit_page(srv, token=admin_principal(srv, "aw").token))
    # an admin-command read token is bounded by scope and workspaces only: reading is in scope
    assert_ok(audit_page(srv, token=admin_principal(srv, "ar", scope="workspace:read").token))
    for role, resource in (("workspace-member", WS_NAME), ("source-admin", WS_NAME), ("source-read-only", WS_NAME),
                           ("tracking-plan-admin", WS_NAME), ("tracking-plan-read-only", WS_NAME),
                           ("function-admin", WS_NAME), ("function-read-only", WS_NAME),
                           ("workspace-owner", f"{WS_NAME}/sources/js")):
        who = principal_with(srv, role, role, resource)
        assert_denied(audit_page(srv, token=who.token))
        assert_denied(audit_page(srv, token=who.token, resource=f"{WS_NAME}/sources/js"))
    # the owner of another workspace
    stranger = new_user(srv, role="workspace-owner", workspace=OTHER_WS)
    tok = assert_ok(basic_token_request(srv, stranger.email, stranger.password, workspaces=(OTHER_WS,)))["token"]
    assert_ok(audit_page(srv, token=tok, ws=OTHER_WS))
    assert_denied(audit_page(srv, token=tok))
    assert_error(audit_page(srv, token=None), 401, 16)


# ---- failures leave nothing -------------------------------------------------------------------

def test_failed_mutations_leave_no_entry(srv):
    slug = mk_source(srv)
    mk_dest(srv, slug, D1)
    f = mk_filter(srv, slug, D1)
    pid = plan_id(mk_plan(srv))
    inv = mk_invite(srv)
    u = new_user(srv)
    reader = principal_with(srv, "reader", "source-read-only")
    read_admin = admin_principal(srv, "ro", scope="workspace:read")
    src = {"source": {"name": src_name(slug), "catalog_name": "catalog/sources/javascript"}}
    cases = [
        ("POST", f"{WSP}/sources", {"source": {"name": src_name("Bad Slug"), "catalog_name": "catalog/sources/javascript"}}, None, 400),
        ("POST", f"{WSP}/sources", src, None, 409),
        ("POST", f"{WSP}/sources", {"source": {"name": src_name(uniq("n")), "catalog_name": "catalog/sources/nope"}}, None, 400),
        ("DELETE", src_path("no-such-source"), None, None, 404),
        ("PATCH", src_path(slug) + "/schema-config", patch_body("schema_config", {}, ["schema_config.nope"]), None, 400),
        ("POST", src_path(slug) + "/destinations", {"destination": {"name": dst_name(slug, D1)}}, None, 409),
        ("POST", src_path(slug) + "/destinations", {"destination": {"name": dst_name(slug, SECRET_DEST),
                                                                    "config": [{"name": "nope", "value": 1}]}}, None, 400),
        ("PATCH", dst_path(slug, D1), patch_body("destination", {"enabled": "yes"}, ["destination.enabled"]), None, 400),
        ("POST", dst_path(slug, D1) + "/filters", {"filter": dict(FILTER, **{"if": "type ==== 'x'"})}, None, 400),
        ("PATCH", "/v1beta/" + f["name"], patch_body("filter", {"if": "((("}, ["if"]), None, 400),
        ("DELETE", dst_path(slug, D1) + "/filters/df_nosuchfilter", None, None, 404),
        ("POST", f"{WSP}/tracking-plans", {"tracking_plan": {}}, None, 400),
        ("PUT", plan_path(pid), patch_body("tracking_plan", {"rules": 5}, ["tracking_plan.rules"]), None, 400),
        ("POST", plan_path(pid) + "/source-connections", {"source_name": src_name("no-such-source")}, None, 404),
        ("DELETE", plan_path(pid) + "/source-connections/" + slug, None, None, 404),
        ("POST", policies_path("no-such-role"), {"policy": {"subject": u.name, "resource": WS_NAME}}, None, 404),
        ("POST", policies_path("source-admin"), {"policy": {"subject": u.name, "resource": "workspaces/x"}}, None, 400),
        ("POST", f"{WSP}/invites", {"invite": {"email": inv["email"], "policies": inv["policies"]}}, None, 409),
        ("POST", f"{WSP}/invites", {"invite": {"email": "nope", "policies": inv["policies"]}}, None, 400),
        ("DELETE", f"{WSP}/invites/inv_nosuchinvite", None, None, 404),
        ("POST", "/v1beta/access-tokens", {"access_token": {"description": "", "scopes": "workspace",
                                                           "workspace_names": [WS_NAME]}}, None, 400),
        ("DELETE", "/v1beta/access-tokens/999999", None, None, 404),
        # denied: by policy, and by scope
        ("DELETE", src_path(slug), None, reader.token, 403),
        ("POST", f"{WSP}/invites", {"invite": {"email": "r@example.com", "policies": inv["policies"]}}, reader.token, 403),
        ("PATCH", dst_path(slug, D1), patch_body("destination", {"enabled": True}, ["destination.enabled"]), read_admin.token, 403),
        # a dry run changes nothing, so records nothing
        ("POST", f"{WSP}/sources?validate_only=true", {"source": {"name": src_name(uniq("dry")),
                                                                  "catalog_name": "catalog/sources/javascript"}}, None, 200),
        ("DELETE", src_path(slug) + "?validate_only=true", None, None, 200),
    ]
    if has_route("DELETE", "/v1beta/workspaces/{ws}/users/{user}"):
        cases.append(("DELETE", f"{WSP}/users/usr_nosuchuser", None, None, 404))
    last = latest_event_id(srv)
    for method, path, body, tok, status in cases:
        kw = {"json": body} if body is not None else {}
        r = srv.request(method, path, **({"token": tok} if tok else {}), **kw)
        assert r.status_code == status, (method, path, status, r.status_code, r.text)
        assert r.headers.get("X-Request-Id"), (method, path)
        now = latest_event_id(srv)
        assert now == last, (method, path, r.status_code, events_since(srv, last))
    assert_ok(srv.get(src_path(slug)))


# ---- request ids --------------------------------------------------------------------------------

def test_every_response_has_a_request_id(srv):
    seen = set()
    for method, path, tok in (("GET", "/healthz", None), ("GET", WSP, "__default__"),
                              ("GET", "/v1beta/nope", "__default__"), ("GET", WSP, None),
                              ("GET", f"{WSP}/sources/Bad%20Slug", "__default__"),
                              ("POST", f"{WSP}/sources", "__default__"),
                              ("GET", "/v1beta/workspaces/audother/sources", "__default__"),
                              ("DELETE", WSP, "__default__")):
        r = srv.request(method, path, token=tok)
        rid = r.headers.get("X-Request-Id")
        assert rid, (method, path, r.status_code, dict(r.headers))
        assert rid not in seen
        seen.add(rid)


def test_client_request_id_is_not_trusted(srv):
    """The server makes the request id; one sent by the client is neither echoed nor
    recorded (it could collide with, or impersonate, another request's)."""
    last = latest_event_id(srv)
    slug = uniq("rid")
    r = srv.post(f"{WSP}/sources", headers={"X-Request-Id": "forged-request-id"},
                 json={"source": {"name": src_name(slug), "catalog_name": "catalog/sources/javascript"}})
    assert_ok(r)
    assert r.headers["X-Request-Id"] != "forged-request-id"
    evs = events_since(srv, last)
    assert [e["request_id"] for e in evs] == [r.headers["X-Request-Id"]]


@pytest.mark.parametrize("end", ["1970-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "1970-01-01T00:00:00.001Z"])
def test_end_time_before_every_event_gives_nothing(srv, end):
    mk_source(srv)
    assert audit_events(srv, end_time=end) == []


def test_start_time_after_end_time_gives_nothing(srv):
    mk_source(srv)
    assert audit_events(srv, start_time="2001-01-01T00:00:00Z", end_time="2000-01-01T00:00:00Z") == []
    assert audit_events(srv, start_time="2999-01-01T00:00:00Z") == []


# ---- one transaction --------------------------------------------------------------------------

def refuse_audit_rows(db):
    """From now on the database refuses every new audit row."""
    if BACKEND == "sqlite":
        db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    else:
        db.execute("CREATE FUNCTION refuse_audit() RETURNS trigger AS $f$ BEGIN "
                   "RAISE EXCEPTION 'refused'; END $f$ LANGUAGE plpgsql")
        db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_audit()")


def test_a_mutation_whose_audit_row_fails_does_not_happen(start_server):
    """The change and its audit entry are one transaction: when the audit row cannot be
    written, the call fails and the change is rolled back."""
    s = start_server("--rate-limit", "0")
    # things to act on, made before the database starts refusing audit rows
    mk_source(s, "keep")
    mk_dest(s, "keep", D1)
    f = mk_filter(s, "keep", D1)
    pid = plan_id(mk_plan(s, "kept plan"))
    mk_source(s, "conn")
    assert_ok(s.post(plan_path(pid) + "/source-connections", json={"source_name": src_name("conn")}))
    u = new_user(s, role="none")
    pol = grant(s, "source-admin", u, src_name("keep"))
    inv = mk_invite(s, "kept@example.com")
    tok = assert_ok(s.post("/v1beta/access-tokens", json=token_body(description="kept token")))

    def state():
        return {
            "sources": list_all(s, f"{WSP}/sources", "sources"),
            "dest": assert_ok(s.get(dst_path("keep", D1))),
            "filters": list_all(s, dst_path("keep", D1) + "/filters", "filters"),
            "plans": list_all(s, f"{WSP}/tracking-plans", "tracking_plans"),
            "conns": list_all(s, plan_path(pid) + "/source-connections", "connections"),
            "policies": list_all(s, policies_path("-"), "policies"),
            "invites": list_all(s, f"{WSP}/invites", "invites"),
            "tokens": list_all(s, "/v1beta/access-tokens", "access_tokens"),
            "audit": list_all(s, audit_path(), "audit_events", page_size=100),
        }
    before = state()
    refuse_audit_rows(s.db)
    calls = [
        ("POST", f"{WSP}/sources", {"source": {"name": src_name("new"), "catalog_name": "catalog/sources/javascript"}}),
        ("DELETE", src_path("keep"), None),
        ("PATCH", src_path("keep") + "/schema-config", patch_body(
            "schema_config", {"allow_unplanned_track_events": False}, ["schema_config.allow_unplanned_track_events"])),
        ("POST", src_path("keep") + "/destinations", {"destination": {"name": dst_name("keep", D2)}}),
        ("PATCH", dst_path("keep", D1), patch_body("destination", {"enabled": True}, ["destination.enabled"])),
        ("DELETE", dst_path("keep", D1), None),
        ("POST", dst_path("keep", D1) + "/filters", {"filter": FILTER}),
        ("PATCH", "/v1beta/" + f["name"], patch_body("filter", {"title": "changed"}, ["title"])),
        ("DELETE", "/v1beta/" + f["name"], None),
        ("POST", f"{WSP}/tracking-plans", {"tracking_plan": {"display_name": "new plan"}}),
        ("PUT", plan_path(pid), patch_body("tracking_plan", {"display_name": "changed"}, ["tracking_plan.display_name"])),
        ("DELETE", plan_path(pid), None),
        ("POST", plan_path(pid) + "/source-connections", {"source_name": src_name("keep")}),
        ("POST", plan_path(pid) + "/source-connections:batchCreateConnections", {"source_names": [src_name("keep")]}),
        ("DELETE", plan_path(pid) + "/source-connections/conn", None),
        ("POST", policies_path("source-read-only"), {"policy": {"subject": u.name, "resource": WS_NAME}}),
        ("DELETE", "/v1beta/" + pol["name"], None),
        ("POST", f"{WSP}/invites", {"invite": {"email": "new@example.com", "policies": inv["policies"]}}),
        ("DELETE", "/v1beta/" + inv["name"], None),
        ("POST", "/v1beta/access-tokens", token_body(description="never")),
        ("DELETE", "/v1beta/" + tok["name"], None),
    ]
    if has_route("DELETE", "/v1beta/workspaces/{ws}/users/{user}"):
        calls.append(("DELETE", f"{WSP}/users/{u.id}", None))
    for method, path, body in calls:
        r = s.request(method, path, **({"json": body} if body is not None else {}))
        # 5xx; SQLite reports a trigger's RAISE as a constraint error, so a 409 is possible
        assert r.status_code >= 400, (method, path, r.status_code, r.text)
        assert set(r.json()) == {"error", "code"}, r.text
    assert state() == before
    assert_ok(s.get(WSP, token=tok["token"]))


def test_admin_commands_are_audited(srv):
    """`manifold token create` and `manifold user create` change the database directly;
    their entries name the admin as actor, carry no token, and a "cli-" request id."""
    last = latest_event_id(srv)
    admin = admin_principal(srv, "cli-audited")
    evs = [e for e in audit_events(srv, include_cli=True) if int(e["id"]) > last]
    assert evs and all(is_cli_event(e) for e in evs), json.dumps(evs, indent=1)
    tok = [e for e in evs if e["action"] == "access_token.create"]
    assert len(tok) == 1, json.dumps(evs, indent=1)
    e = tok[0]
    assert e["actor"] == "admin" and e["access_token"] is None and e["request_id"].startswith("cli-"), e
    assert e["resource"] == f"{WS_NAME}/access-tokens/{admin.token_name.split('/')[-1]}", e
    assert e["after"]["scopes"] == "workspace" and "token" not in e["after"], e
    assert admin.token not in json.dumps(e)

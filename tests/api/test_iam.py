"""IAM (spec §12): built-in roles, policies, invites, the users of a workspace, tokens of
users (HTTP Basic, §3.1), and enforcement — what a Source Admin / Source Read-only user's
token can and cannot do, and that revoking a token, deleting a policy and removing a user
take effect.

The full route × principal matrix is in test_access_matrix.py; the audit trail in
test_audit.py."""
import time

import pytest

from conftest import RFC3339_Z, TOKEN_RE, assert_error, assert_ok
from helpers_iam import (BUILTIN_ROLES, FILTER, PASSWORD, WS, WS_NAME, WSP, admin_principal,
                         assert_denied, assert_insufficient, assert_unauthenticated, basic_token_request,
                         dests_without_required, dst_name, dst_path, events_since, grant, has_route, invites,
                         latest_event_id, list_all,
                         mk_dest, mk_filter, mk_invite, mk_plan, mk_source, new_user, plan_id, plan_path,
                         policies_of, policies_path, principal_with, src_name, src_path, uniq, user_principal,
                         users)

OTHER_WS, OTHER_WS_ID = "iamother", "iamother01"
D1, D2, D3 = dests_without_required(3)


@pytest.fixture(scope="module")
def srv(server):
    """The module's server with sources js and ios (each with destination D1 and a filter),
    and a second workspace with an admin token."""
    if not getattr(server, "iam_ready", False):
        server.add_workspace(OTHER_WS, OTHER_WS_ID)
        for s in ("js", "ios"):
            mk_source(server, s)
            mk_dest(server, s, D1)
            mk_filter(server, s, D1)
        server.other_admin = admin_principal(server, "other admin", workspace=OTHER_WS)
        server.iam_ready = True
    return server


def pol_id(policy):
    return policy["name"].rsplit("/", 1)[1]


# ---- roles ----------------------------------------------------------------------------------

def test_roles_list_has_every_builtin_role(srv):
    b = assert_ok(srv.get(f"{WSP}/roles"))
    assert set(b) == {"roles", "next_page_token"} and b["next_page_token"] == "", b
    got = {r["id"]: r for r in b["roles"]}
    assert len(got) == len(b["roles"]) == len(BUILTIN_ROLES)
    assert set(got) == set(BUILTIN_ROLES)
    for rid, r in got.items():
        assert r["name"] == f"workspaces/{WS}/roles/{rid}", r
        assert r["display_name"] == BUILTIN_ROLES[rid], r
        assert isinstance(r["description"], str) and r["description"], r


def test_roles_list_paginates_and_accepts_the_workspace_id(srv):
    ws_id = assert_ok(srv.get(WSP))["id"]
    paged = list_all(srv, f"/v1beta/workspaces/{ws_id}/roles", "roles", page_size=3)
    assert [r["id"] for r in paged] == [r["id"] for r in assert_ok(srv.get(f"{WSP}/roles"))["roles"]]
    assert all(r["name"].startswith(f"workspaces/{WS}/roles/") for r in paged)


# ---- policies -------------------------------------------------------------------------------

def test_policy_create_list_delete(srv):
    u = new_user(srv)
    p = grant(srv, "source-admin", u, src_name("js"))
    assert set(p) >= {"name", "subject", "resource"}, p
    assert p["name"].startswith(f"workspaces/{WS}/roles/source-admin/policies/"), p
    assert p["subject"] == u.name and p["resource"] == src_name("js"), p
    assert p in policies_of(srv, "source-admin")
    assert p in policies_of(srv, "-")
    assert p not in policies_of(srv, "source-read-only")
    assert all(x["name"].split("/roles/")[1].startswith("source-admin/") for x in policies_of(srv, "source-admin"))
    # "-" lists every role's policies, the bootstrap owner's included
    everything = policies_of(srv, "-")
    assert any("/roles/workspace-owner/policies/" in x["name"] and x["resource"] == WS_NAME for x in everything)
    r = srv.delete("/v1beta/" + p["name"])
    assert assert_ok(r) == {} and r.text.strip() == "{}"
    assert p not in policies_of(srv, "-")
    assert p not in policies_of(srv, "source-admin")
    assert_error(srv.delete("/v1beta/" + p["name"]), 404, 5)


def test_policy_delete_needs_its_own_role_in_the_path(srv):
    u = new_user(srv)
    p = grant(srv, "source-read-only", u, WS_NAME)
    assert_error(srv.delete(f"{policies_path('source-admin')}/{pol_id(p)}"), 404, 5)
    assert_error(srv.delete(f"{policies_path('-')}/{pol_id(p)}"), 404, 5)
    assert_error(srv.delete(f"{policies_path('source-read-only')}/pol_doesnotexist"), 404, 5)
    assert p in policies_of(srv, "source-read-only")
    assert_ok(srv.delete("/v1beta/" + p["name"]))


def test_policies_list_paginates(srv):
    u = new_user(srv)
    made = [grant(srv, "tracking-plan-read-only", u, f"{WS_NAME}/tracking-plans/rs_{i}") for i in range(5)]
    got = list_all(srv, policies_path("tracking-plan-read-only"), "policies", page_size=2)
    assert [m for m in got if m["subject"] == u.name] == sorted(made, key=lambda x: x["name"])
    assert len({x["name"] for x in got}) == len(got)
    for m in made:
        assert_ok(srv.delete("/v1beta/" + m["name"]))


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_unknown_role_is_404(srv, method):
    u = new_user(srv)
    body = {"policy": {"subject": u.name, "resource": WS_NAME}} if method == "POST" else None
    for role in ("no-such-role", "Workspace-Owner", "source_admin"):
        assert_error(srv.request(method, policies_path(role), json=body), 404, 5)
    assert not [p for p in policies_of(srv) if p["subject"] == u.name]


def test_unknown_role_delete_is_404(srv):
    assert_error(srv.delete(f"{policies_path('no-such-role')}/pol_x"), 404, 5)


@pytest.mark.parametrize("resource", [
    "workspaces/iamother", "workspaces/iamother/sources/js", f"{WS_NAME}x", f"{WS_NAME}x/sources/js",
    "workspaces", "catalog/sources/javascript", "", f"{WS_NAME}/", f"{WS_NAME}/sources/js/",
    f"{WS_NAME}//sources", "users/usr_x", f"/{WS_NAME}"])
def test_policy_resource_outside_the_workspace_is_400(srv, resource):
    u = new_user(srv)
    r = srv.post(policies_path("source-admin"), json={"policy": {"subject": u.name, "resource": resource}})
    assert_error(r, 400, 3)
    assert not [p for p in policies_of(srv) if p["subject"] == u.name]


@pytest.mark.parametrize("policy", [
    {"subject": "users/usr_doesnotexist", "resource": WS_NAME},
    {"subject": "usr_x", "resource": WS_NAME},
    {"subject": "", "resource": WS_NAME},
    {"resource": WS_NAME},
    {"subject": "users/x"},
    {"subject": 7, "resource": WS_NAME},
    {"subject": "users/x", "resource": ["workspaces/myworkspace"]},
])
def test_policy_bad_subject_or_body_is_400(srv, policy):
    before = policies_of(srv)
    assert_error(srv.post(policies_path("source-admin"), json={"policy": policy}), 400, 3)
    assert policies_of(srv) == before


def test_policies_are_per_workspace(srv):
    """A policy made in another workspace (by that workspace's admin token) is not listed
    in this one, and gives no access to this one."""
    u = new_user(srv, role="none")
    other = srv.other_admin.token
    p = grant(srv, "source-admin", u, f"workspaces/{OTHER_WS}", token=other, ws=OTHER_WS)
    assert p["name"].startswith(f"workspaces/{OTHER_WS}/roles/source-admin/policies/")
    assert p not in policies_of(srv)
    assert p in list_all(srv, policies_path("-", OTHER_WS), "policies", token=other)
    # the other workspace's admin cannot list or grant in ours
    assert_denied(srv.get(policies_path("-"), token=other))
    assert_denied(srv.post(policies_path("source-admin"), token=other,
                           json={"policy": {"subject": u.name, "resource": WS_NAME}}))
    # u's token for the other workspace reaches nothing here
    b = assert_ok(basic_token_request(srv, u.email, u.password, workspaces=(OTHER_WS,)))
    assert_denied(srv.get(WSP, token=b["token"]))
    assert_denied(basic_token_request(srv, u.email, u.password, workspaces=(WS,)))


# ---- invites --------------------------------------------------------------------------------

def test_invite_create_list_delete(srv):
    email = f"{uniq('inv')}@example.com"
    inv = mk_invite(srv, email, role="source-admin", resource=src_name("js"))
    assert inv["name"].startswith(f"workspaces/{WS}/invites/"), inv
    assert inv["email"] == email
    assert RFC3339_Z.match(inv["create_time"]) and RFC3339_Z.match(inv["expire_time"]), inv
    assert inv["expire_time"] > inv["create_time"], inv
    assert inv["policies"] == [{"role": f"workspaces/{WS}/roles/source-admin", "resource": src_name("js")}], inv
    assert inv in invites(srv)
    r = srv.delete("/v1beta/" + inv["name"])
    assert assert_ok(r) == {} and r.text.strip() == "{}"
    assert inv not in invites(srv)
    assert_error(srv.delete("/v1beta/" + inv["name"]), 404, 5)


def test_invite_accepts_full_role_names_and_several_policies(srv):
    inv = assert_ok(srv.post(f"{WSP}/invites", json={"invite": {
        "email": f"{uniq('inv')}@example.com",
        "policies": [{"role": f"workspaces/{WS}/roles/tracking-plan-admin", "resource": WS_NAME},
                     {"role": "source-read-only", "resource": src_name("ios")}]}}))
    assert inv["policies"] == [{"role": f"workspaces/{WS}/roles/tracking-plan-admin", "resource": WS_NAME},
                               {"role": f"workspaces/{WS}/roles/source-read-only", "resource": src_name("ios")}]
    assert_ok(srv.delete("/v1beta/" + inv["name"]))


def test_second_invite_for_the_same_email_is_409(srv):
    email = f"{uniq('dup')}@example.com"
    first = mk_invite(srv, email)
    assert_error(srv.post(f"{WSP}/invites", json={"invite": {
        "email": email, "policies": [{"role": "workspace-owner", "resource": WS_NAME}]}}), 409, 6)
    # e-mail addresses are compared without case
    assert_error(srv.post(f"{WSP}/invites", json={"invite": {
        "email": email.upper(), "policies": [{"role": "workspace-owner", "resource": WS_NAME}]}}), 409, 6)
    assert [i for i in invites(srv) if i["email"] == email] == [first]
    # once the first is gone, the address can be invited again
    assert_ok(srv.delete("/v1beta/" + first["name"]))
    again = mk_invite(srv, email)
    assert_ok(srv.delete("/v1beta/" + again["name"]))


def test_same_email_may_be_invited_to_two_workspaces(srv):
    email = f"{uniq('two')}@example.com"
    a = mk_invite(srv, email)
    b = assert_ok(srv.post(f"/v1beta/workspaces/{OTHER_WS}/invites", token=srv.other_admin.token, json={"invite": {
        "email": email, "policies": [{"role": "source-read-only", "resource": f"workspaces/{OTHER_WS}"}]}}))
    assert b not in invites(srv)
    for i, tok in ((a, srv.token), (b, srv.other_admin.token)):
        assert_ok(srv.delete("/v1beta/" + i["name"], token=tok))


@pytest.mark.parametrize("email", ["not-an-email", "", "@example.com", "a@", "a@@example.com", "a b@example.com",
                                   "a@example", "<a@example.com>", "a@example.com,b@example.com", 42, None])
def test_invite_invalid_email_is_400(srv, email):
    before = invites(srv)
    inv = {"policies": [{"role": "source-read-only", "resource": WS_NAME}]}
    if email is not None:
        inv["email"] = email
    assert_error(srv.post(f"{WSP}/invites", json={"invite": inv}), 400, 3)
    assert invites(srv) == before


@pytest.mark.parametrize("policies,status,code", [
    ([{"role": "no-such-role", "resource": WS_NAME}], 404, 5),
    ([{"role": "source-admin", "resource": "workspaces/iamother"}], 400, 3),
    ([{"role": "source-admin", "resource": f"{WS_NAME}x/sources/js"}], 400, 3),
    ([{"role": "source-admin", "resource": f"{WS_NAME}/"}], 400, 3),
    ([], 400, 3),
    (None, 400, 3),
    ([{"role": "source-admin"}], 400, 3),
    ([{"role": "source-admin", "resource": WS_NAME, "extra": 1}], 400, 3),
    (["source-admin"], 400, 3),
])
def test_invite_bad_policies(srv, policies, status, code):
    before = invites(srv)
    inv = {"email": f"{uniq('bad')}@example.com"}
    if policies is not None:
        inv["policies"] = policies
    assert_error(srv.post(f"{WSP}/invites", json={"invite": inv}), status, code)
    assert invites(srv) == before


def test_invite_becomes_the_users_policies(srv):
    email = f"{uniq('newbie')}@example.com"
    inv = assert_ok(srv.post(f"{WSP}/invites", json={"invite": {"email": email, "policies": [
        {"role": "source-admin", "resource": src_name("js")},
        {"role": "tracking-plan-read-only", "resource": WS_NAME}]}}))
    u = new_user(srv, role=None, email=email)  # no --role: the invite decides
    assert inv not in invites(srv), "the invite must disappear once accepted"
    mine = sorted(((p["name"].split("/roles/")[1].split("/")[0], p["resource"])
                   for p in policies_of(srv) if p["subject"] == u.name))
    assert mine == [("source-admin", src_name("js")), ("tracking-plan-read-only", WS_NAME)], mine
    assert {"name": u.name, "id": u.id, "email": email}.items() <= \
        next(x for x in users(srv) if x["id"] == u.id).items()
    # the user's token does exactly what the invite said
    who = user_principal(srv, "newbie", u)
    assert_ok(srv.get(src_path("js"), token=who.token))
    assert_ok(srv.get(f"{WSP}/tracking-plans", token=who.token))
    assert_denied(srv.get(src_path("ios"), token=who.token))
    assert_denied(srv.get(f"{WSP}/sources", token=who.token))
    assert_denied(srv.post(f"{WSP}/tracking-plans", token=who.token, json={"tracking_plan": {"display_name": "x"}}))
    assert_denied(srv.get(f"{WSP}/roles", token=who.token))


def test_invite_is_matched_without_case(srv):
    email = f"{uniq('Case')}@Example.COM"
    inv = mk_invite(srv, email, role="source-read-only", resource=WS_NAME)
    u = new_user(srv, role=None, email=email.lower())
    assert inv not in invites(srv)
    assert [(p["resource"]) for p in policies_of(srv, "source-read-only") if p["subject"] == u.name] == [WS_NAME]
    assert not [p for p in policies_of(srv, "workspace-owner") if p["subject"] == u.name]


def user_create(srv, email, ws, *extra):
    p = srv.cli("user", "create", "--email", email, "--password-stdin", "--workspace", ws, *extra,
                input=PASSWORD + "\n")
    assert p.stdout.startswith("users/usr_"), p.stdout
    return p.stdout.strip(), p.stderr


def test_only_the_first_user_without_invite_or_role_becomes_owner(srv):
    ws = uniq("first")
    srv.add_workspace(ws, uniq("f")[:10])
    admin = admin_principal(srv, "first user admin", workspace=ws)

    def pols(name):
        return [(p["name"].split("/roles/")[1].split("/")[0], p["resource"])
                for p in list_all(srv, policies_path("-", ws), "policies", token=admin.token) if p["subject"] == name]

    first, err = user_create(srv, f"{uniq('a')}@example.com", ws)
    assert pols(first) == [("workspace-owner", f"workspaces/{ws}")] and err == "", err
    # the workspace has an owner now: least privilege, and one line on stderr saying so
    email = f"{uniq('b')}@example.com"
    second, err = user_create(srv, email, ws)
    assert pols(second) == []
    assert len(err.splitlines()) == 1 and "no access" in err and "--role" in err and "invite" in err, err
    assert_denied(basic_token_request(srv, email, PASSWORD, workspaces=(ws,)))
    # an explicit --role still grants, and --role none is silent
    third, err = user_create(srv, f"{uniq('c')}@example.com", ws, "--role", "workspace-owner")
    assert pols(third) == [("workspace-owner", f"workspaces/{ws}")] and err == "", err
    fourth, err = user_create(srv, f"{uniq('d')}@example.com", ws, "--role", "none")
    assert pols(fourth) == [] and err == "", err


def test_user_without_invite_or_role_in_a_workspace_with_an_owner_gets_nothing(srv):
    # the bootstrap made an owner of the default workspace
    assert policies_of(srv, "workspace-owner")
    nobody = new_user(srv, role=None)
    assert not [p for p in policies_of(srv) if p["subject"] == nobody.name]
    assert_denied(basic_token_request(srv, nobody.email, nobody.password))


# ---- users ----------------------------------------------------------------------------------

def test_users_lists_holders_of_any_policy(srv):
    u = new_user(srv, role="none")
    assert u.id not in {x["id"] for x in users(srv)}
    p1 = grant(srv, "source-read-only", u, src_name("js"))
    p2 = grant(srv, "tracking-plan-admin", u, WS_NAME)
    listed = [x for x in users(srv) if x["id"] == u.id]
    assert len(listed) == 1, listed
    assert listed[0]["name"] == u.name and listed[0]["email"] == u.email, listed
    # only this workspace's users: one holding a policy elsewhere only is not listed
    stranger = new_user(srv, role="source-admin", workspace=OTHER_WS)
    everyone = users(srv)
    assert stranger.id not in {x["id"] for x in everyone}
    assert stranger.id in {x["id"] for x in list_all(srv, f"/v1beta/workspaces/{OTHER_WS}/users", "users",
                                                      token=srv.other_admin.token)}
    for x in everyone:
        assert x["name"] == "users/" + x["id"] and "@" in x["email"], x
    assert len({x["id"] for x in everyone}) == len(everyone)
    # paging gives the same users
    assert sorted(x["id"] for x in list_all(srv, f"{WSP}/users", "users", page_size=1)) == \
        sorted(x["id"] for x in everyone)
    for p in (p1, p2):
        assert_ok(srv.delete("/v1beta/" + p["name"]))
    assert u.id not in {x["id"] for x in users(srv)}


# ---- tokens of users --------------------------------------------------------------------------

def test_user_gets_a_token_with_basic_auth(srv):
    u = new_user(srv, role="source-read-only")
    r = basic_token_request(srv, u.email, u.password, scope="workspace", description="mine")
    b = assert_ok(r)
    assert TOKEN_RE.match(b["token"]), b
    assert b["description"] == "mine" and b["scopes"] == "workspace" and b["workspace_names"] == [WS_NAME], b
    assert_ok(srv.get(f"{WSP}/sources", token=b["token"]))
    # wrong password, unknown e-mail: 401/16
    assert_unauthenticated(basic_token_request(srv, u.email, "wrong password!"))
    assert_unauthenticated(basic_token_request(srv, "nobody@example.com", PASSWORD))
    # a workspace where the user holds no policy: 403/7; one that does not exist: 400/3
    assert_denied(basic_token_request(srv, u.email, u.password, workspaces=(OTHER_WS,)))
    assert_error(basic_token_request(srv, u.email, u.password, workspaces=("no-such-ws",)), 400, 3)


def test_token_made_with_a_user_token_belongs_to_the_user(srv):
    who = principal_with(srv, "sa", "source-admin", src_name("js"))
    b = assert_ok(srv.post("/v1beta/access-tokens", token=who.token, json={"access_token": {
        "description": "child", "scopes": "workspace", "workspace_names": [WS_NAME]}}))
    child = b["token"]
    assert_ok(srv.get(src_path("js"), token=child))
    assert_denied(srv.get(f"{WSP}/sources", token=child))
    assert_denied(srv.get(src_path("ios"), token=child))
    assert_denied(srv.get(f"{WSP}/roles/-/policies", token=child))
    # the child is listed among the user's own tokens
    mine = {t["name"] for t in list_all(srv, "/v1beta/access-tokens", "access_tokens", token=who.token)}
    assert {who.token_name, b["name"]} <= mine


def test_user_token_scope_bounds_the_policies(srv):
    """A Source Admin's workspace:read token cannot write, even where the policy would allow."""
    u = new_user(srv, role="none")
    grant(srv, "source-admin", u, src_name("js"))
    ro = user_principal(srv, "sa-read", u, scope="workspace:read")
    assert_ok(srv.get(dst_path("js", D1), token=ro.token))
    assert_insufficient(srv.request("PATCH", dst_path("js", D1), token=ro.token, json={
        "destination": {"enabled": True}, "update_mask": {"paths": ["destination.enabled"]}}))
    assert_insufficient(srv.post(dst_path("js", D1) + "/filters", token=ro.token, json={"filter": FILTER}))
    assert_insufficient(srv.post("/v1beta/access-tokens", token=ro.token, json={"access_token": {
        "description": "escalate", "scopes": "workspace", "workspace_names": [WS_NAME]}}))


def test_users_see_and_revoke_only_their_own_tokens(srv):
    a = principal_with(srv, "a", "source-read-only")
    b = principal_with(srv, "b", "source-read-only")
    listed = {t["name"] for t in list_all(srv, "/v1beta/access-tokens", "access_tokens", token=a.token)}
    assert a.token_name in listed and b.token_name not in listed and "access-tokens/1" not in listed
    for name in (b.token_name, "access-tokens/1"):
        assert_error(srv.get("/v1beta/" + name, token=a.token), 404, 5)
        assert_error(srv.delete("/v1beta/" + name, token=a.token), 404, 5)
    assert_ok(srv.get(WSP, token=b.token))
    assert_ok(srv.get(WSP))
    # the owner sees everyone's tokens in the workspace and may revoke them
    every = {t["name"] for t in list_all(srv, "/v1beta/access-tokens", "access_tokens")}
    assert {a.token_name, b.token_name} <= every


# ---- enforcement ------------------------------------------------------------------------------

def patch_body(kind, obj, paths):
    return {kind: obj, "update_mask": {"paths": paths}}


def test_source_admin_edits_its_source_and_nothing_of_ios(srv):
    who = principal_with(srv, "js-admin", "source-admin", src_name("js"))
    t = who.token
    # js: destinations, filters, schema config
    d = assert_ok(srv.request("PATCH", dst_path("js", D1), token=t,
                              json=patch_body("destination", {"enabled": True}, ["destination.enabled"])))
    assert d["enabled"] is True
    made = assert_ok(srv.post(f"{src_path('js')}/destinations", token=t,
                              json={"destination": {"name": dst_name("js", D2)}}))
    assert_ok(srv.delete("/v1beta/" + made["name"], token=t))
    f = assert_ok(srv.post(dst_path("js", D1) + "/filters", token=t, json={"filter": FILTER}))
    f2 = assert_ok(srv.request("PATCH", "/v1beta/" + f["name"], token=t,
                               json=patch_body("filter", {"title": "renamed"}, ["title"])))
    assert f2["title"] == "renamed"
    assert_ok(srv.delete("/v1beta/" + f["name"], token=t))
    assert_ok(srv.request("PATCH", src_path("js") + "/schema-config", token=t, json=patch_body(
        "schema_config", {"allow_unplanned_track_events": False}, ["schema_config.allow_unplanned_track_events"])))
    # ios: nothing, read or write
    ios_before = assert_ok(srv.get(dst_path("ios", D1)))
    ios_filters = assert_ok(srv.get(dst_path("ios", D1) + "/filters"))
    for method, path, body in (
            ("GET", src_path("ios"), None),
            ("GET", dst_path("ios", D1), None),
            ("GET", dst_path("ios", D1) + "/filters", None),
            ("PATCH", dst_path("ios", D1), patch_body("destination", {"enabled": True}, ["destination.enabled"])),
            ("DELETE", dst_path("ios", D1), None),
            ("POST", src_path("ios") + "/destinations", {"destination": {"name": dst_name("ios", D2)}}),
            ("POST", dst_path("ios", D1) + "/filters", {"filter": FILTER}),
            ("PATCH", "/v1beta/" + ios_filters["filters"][0]["name"], patch_body("filter", {"title": "x"}, ["title"])),
            ("DELETE", "/v1beta/" + ios_filters["filters"][0]["name"], None),
            ("PATCH", src_path("ios") + "/schema-config",
             patch_body("schema_config", {"allow_unplanned_track_events": False},
                        ["schema_config.allow_unplanned_track_events"])),
            ("DELETE", src_path("ios"), None),
            ("GET", f"{WSP}/sources", None),
            ("POST", f"{WSP}/sources", {"source": {"name": src_name("nope"), "catalog_name": "catalog/sources/javascript"}}),
    ):
        r = srv.request(method, path, token=t, **({"json": body} if body is not None else {}))
        assert r.status_code == 403 and r.json()["code"] == 7, (method, path, r.status_code, r.text)
    assert assert_ok(srv.get(dst_path("ios", D1))) == ios_before
    assert assert_ok(srv.get(dst_path("ios", D1) + "/filters")) == ios_filters
    assert_error(srv.get(dst_path("ios", D2)), 404, 5)


def test_source_read_only_reads_and_previews_but_cannot_write(srv):
    who = principal_with(srv, "reader", "source-read-only")
    t = who.token
    flt = assert_ok(srv.get(dst_path("js", D1) + "/filters"))["filters"][0]
    for path in (f"{WSP}/sources", src_path("js"), src_path("js") + "/schema-config", src_path("js") + "/destinations",
                 dst_path("js", D1), dst_path("js", D1) + "/filters", "/v1beta/" + flt["name"]):
        assert_ok(srv.get(path, token=t))
    preview = {"filter": {"if": "all", "actions": [{"type": "drop_event"}]}, "input": '{"type": "track"}'}
    for path in ("/v1beta/filters/preview", "/v1beta/filters:preview"):
        assert assert_ok(srv.post(path, token=t, json=preview))["output"] == "null"
    snapshot = {p: assert_ok(srv.get(p)) for p in (f"{WSP}/sources", dst_path("js", D1), "/v1beta/" + flt["name"],
                                                   src_path("js") + "/schema-config")}
    for method, path, body in (
            ("POST", f"{WSP}/sources", {"source": {"name": src_name("ro-new"), "catalog_name": "catalog/sources/javascript"}}),
            ("DELETE", src_path("js"), None),
            ("PATCH", src_path("js") + "/schema-config", patch_body(
                "schema_config", {"allow_unplanned_track_events": False}, ["schema_config.allow_unplanned_track_events"])),
            ("POST", src_path("js") + "/destinations", {"destination": {"name": dst_name("js", D3)}}),
            ("PATCH", dst_path("js", D1), patch_body("destination", {"enabled": False}, ["destination.enabled"])),
            ("DELETE", dst_path("js", D1), None),
            ("POST", dst_path("js", D1) + "/filters", {"filter": FILTER}),
            ("PATCH", "/v1beta/" + flt["name"], patch_body("filter", {"enabled": False}, ["enabled"])),
            ("DELETE", "/v1beta/" + flt["name"], None),
    ):
        r = srv.request(method, path, token=t, **({"json": body} if body is not None else {}))
        assert r.status_code == 403 and r.json() == {"error": r.json()["error"], "code": 7}, \
            (method, path, r.status_code, r.text)
    for p, v in snapshot.items():
        assert assert_ok(srv.get(p)) == v, p
    # and nothing outside sources
    assert_denied(srv.get(f"{WSP}/tracking-plans", token=t))
    assert_denied(srv.get(f"{WSP}/invites", token=t))


def test_revoked_token_stops_at_once(srv):
    who = principal_with(srv, "rev", "source-read-only")
    assert_ok(srv.get(src_path("js"), token=who.token))
    r = srv.delete("/v1beta/" + who.token_name, token=who.token)  # revokes itself
    assert assert_ok(r) == {}
    assert_unauthenticated(srv.get(src_path("js"), token=who.token))
    # revoked by the owner
    other = user_principal(srv, "rev2", who.user)
    assert_ok(srv.get(src_path("js"), token=other.token))
    assert_ok(srv.delete("/v1beta/" + other.token_name))
    assert_unauthenticated(srv.get(src_path("js"), token=other.token))
    assert_unauthenticated(srv.get("/v1beta/access-tokens", token=other.token))


def test_granted_policy_takes_effect_at_once(srv):
    u = new_user(srv, role="workspace-member")
    who = user_principal(srv, "late", u)
    assert_denied(srv.get(src_path("ios"), token=who.token))
    p = grant(srv, "source-read-only", u, src_name("ios"))
    assert_ok(srv.get(src_path("ios"), token=who.token))
    assert_ok(srv.delete("/v1beta/" + p["name"]))
    assert_denied(srv.get(src_path("ios"), token=who.token))


def test_deleting_a_resource_drops_the_policies_on_it(srv):
    slug = uniq("gone")
    mk_source(srv, slug)
    mk_dest(srv, slug, D1)
    on_source = principal_with(srv, "src admin", "source-admin", src_name(slug))
    on_dest = principal_with(srv, "dest reader", "source-read-only", dst_name(slug, D1))
    keeper = principal_with(srv, "other source", "source-read-only", src_name(slug + "x"))
    assert_ok(srv.get(src_path(slug), token=on_source.token))
    assert_ok(srv.get(dst_path(slug, D1), token=on_dest.token))
    names = {p["name"] for p in policies_of(srv)}
    assert_ok(srv.delete(src_path(slug)))
    left = {p["resource"] for p in policies_of(srv)}
    # the policies on the source and on its destination went with them; a source whose
    # name merely starts the same keeps its own
    assert src_name(slug) not in left and dst_name(slug, D1) not in left
    assert src_name(slug + "x") in left
    assert len(names) - len({p["name"] for p in policies_of(srv)}) == 2
    # a new source of the same name is not theirs
    mk_source(srv, slug)
    mk_dest(srv, slug, D1)
    assert_denied(srv.get(src_path(slug), token=on_source.token))
    assert_denied(srv.get(dst_path(slug, D1), token=on_dest.token))
    # the look-alike's grant still works: allowed, and absent
    assert_error(srv.get(src_path(slug + "x"), token=keeper.token), 404, 5)


def test_the_last_owner_stays(srv):
    ws = uniq("own")
    srv.add_workspace(ws, uniq("w")[:10])
    admin = admin_principal(srv, "last owner admin", workspace=ws)

    def pols():
        return list_all(srv, policies_path("-", ws), "policies", token=admin.token)

    def delete(path):
        return srv.delete("/v1beta/" + path, token=admin.token)

    a = new_user(srv, role="workspace-owner", workspace=ws)
    a_pol = next(p for p in pols() if p["subject"] == a.name)
    assert_error(delete(a_pol["name"]), 400, 3)
    assert_error(delete(f"workspaces/{ws}/users/{a.id}"), 400, 3)
    assert a_pol in pols()
    # with a second owner, the first may go, policy or user
    b = new_user(srv, role="workspace-owner", workspace=ws)
    assert_ok(delete(f"workspaces/{ws}/users/{a.id}"))
    b_pol = next(p for p in pols() if p["subject"] == b.name)
    assert_error(delete(b_pol["name"]), 400, 3)
    # the last owner's other policies may go, and so may a second owner policy of theirs
    extra = grant(srv, "source-admin", b, f"workspaces/{ws}/sources/x", token=admin.token, ws=ws)
    assert_ok(delete(extra["name"]))
    again = grant(srv, "workspace-owner", b, f"workspaces/{ws}", token=admin.token, ws=ws)
    assert_ok(delete(again["name"]))
    assert_error(delete(b_pol["name"]), 400, 3)
    # an owner role on something smaller than the workspace does not count as its owner
    small = grant(srv, "workspace-owner", a, f"workspaces/{ws}/sources/x", token=admin.token, ws=ws)
    assert_error(delete(b_pol["name"]), 400, 3)
    assert_ok(delete(small["name"]))


def test_racing_owner_removals_keep_one_owner(srv):
    """Four owners removed at once, by policy and by user: one always stays."""
    import concurrent.futures
    for k in range(4):
        ws = uniq("race")
        srv.add_workspace(ws, uniq("r")[:10])
        admin = admin_principal(srv, "race admin", workspace=ws)
        owners = [new_user(srv, role="workspace-owner", workspace=ws) for _ in range(4)]
        pols = {p["subject"]: p["name"] for p in
                list_all(srv, policies_path("-", ws), "policies", token=admin.token)}
        paths = [f"/v1beta/workspaces/{ws}/users/{u.id}" if i % 2 else "/v1beta/" + pols[u.name]
                 for i, u in enumerate(owners)]
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            rs = list(ex.map(lambda p: srv.delete(p, token=admin.token), paths))
        assert sorted(r.status_code for r in rs) == [200, 200, 200, 400], [r.text for r in rs]
        left = list_all(srv, policies_path("workspace-owner", ws), "policies", token=admin.token)
        assert len(left) == 1, left


def test_dry_run_delete_keeps_the_policies(srv):
    slug = uniq("dry")
    mk_source(srv, slug)
    who = principal_with(srv, "dry admin", "source-admin", src_name(slug))
    assert_ok(srv.delete(src_path(slug) + "?validate_only=true"))
    assert_ok(srv.get(src_path(slug), token=who.token))
    assert src_name(slug) in {p["resource"] for p in policies_of(srv)}



def invite_with(srv, *pols):
    """An invite for a fresh e-mail with (role, resource) grants."""
    return assert_ok(srv.post(f"{WSP}/invites", json={"invite": {"email": f"{uniq('pr')}@example.com", "policies": [
        {"role": role, "resource": res} for role, res in pols]}}))


def invite_named(srv, name):
    return next((i for i in invites(srv) if i["name"] == name), None)


def role_name(role):
    return f"workspaces/{WS}/roles/{role}"


def test_deleting_a_resource_drops_the_invite_grants_on_it(srv):
    slug = uniq("invgone")
    mk_source(srv, slug)
    mk_dest(srv, slug, D1)
    kept = [{"role": role_name("tracking-plan-read-only"), "resource": WS_NAME},
            {"role": role_name("source-read-only"), "resource": src_name(slug + "2")}]
    mixed = invite_with(srv, ("source-admin", src_name(slug)), ("tracking-plan-read-only", WS_NAME),
                        ("source-read-only", dst_name(slug, D1)), ("source-read-only", src_name(slug + "2")))
    only = invite_with(srv, ("source-admin", src_name(slug)))
    under = invite_with(srv, ("source-read-only", dst_name(slug, D1)))
    lookalike = invite_with(srv, ("source-admin", src_name(slug + "2")))
    last = latest_event_id(srv)
    assert_ok(srv.delete(src_path(slug)))
    # the grants on the source and under it went; the others stay, as does the rest of the invite
    m = invite_named(srv, mixed["name"])
    assert m == dict(mixed, policies=kept), m
    assert invite_named(srv, only["name"]) is None and invite_named(srv, under["name"]) is None
    # `…/sources/<slug>2` is not under `…/sources/<slug>`: untouched
    assert invite_named(srv, lookalike["name"]) == lookalike
    # audited in the same request, after the source's own entry
    evs = events_since(srv, last)
    assert (evs[0]["action"], evs[0]["resource"]) == ("source.delete", src_name(slug)), evs
    assert {e["request_id"] for e in evs} == {evs[0]["request_id"]}, evs
    by = {(e["action"], e["resource"]): e for e in evs[1:]}
    assert set(by) == {("invite.update", mixed["name"]), ("invite.delete", only["name"]),
                       ("invite.delete", under["name"])}, by
    upd = by[("invite.update", mixed["name"])]
    assert upd["before"] == mixed and upd["after"] == m, upd
    assert by[("invite.delete", only["name"])]["before"] == only
    assert by[("invite.delete", only["name"])]["after"] is None
    # accepting gives only what is left; a new source of the old name is not the user's
    mk_source(srv, slug)
    u = new_user(srv, role=None, email=mixed["email"])
    mine = sorted((p["name"].split("/roles/")[1].split("/")[0], p["resource"])
                  for p in policies_of(srv) if p["subject"] == u.name)
    assert mine == [("source-read-only", src_name(slug + "2")), ("tracking-plan-read-only", WS_NAME)], mine
    assert_denied(srv.get(src_path(slug), token=user_principal(srv, "pruned", u).token))
    # the deleted invite's e-mail can be invited again (its marker went with it)
    mk_invite(srv, only["email"])


def test_deleting_a_destination_drops_only_the_invite_grants_under_it(srv):
    slug = uniq("invdst")
    mk_source(srv, slug)
    mk_dest(srv, slug, D1)
    inv = invite_with(srv, ("source-admin", src_name(slug)), ("source-read-only", dst_name(slug, D1)))
    assert_ok(srv.delete(dst_path(slug, D1)))
    assert invite_named(srv, inv["name"])["policies"] == [{"role": role_name("source-admin"),
                                                          "resource": src_name(slug)}]


def test_dry_run_delete_keeps_the_invites(srv):
    slug = uniq("invdry")
    mk_source(srv, slug)
    mixed = invite_with(srv, ("source-admin", src_name(slug)), ("source-read-only", WS_NAME))
    only = invite_with(srv, ("source-admin", src_name(slug)))
    last = latest_event_id(srv)
    assert_ok(srv.delete(src_path(slug) + "?validate_only=true"))
    assert invite_named(srv, mixed["name"]) == mixed and invite_named(srv, only["name"]) == only
    assert events_since(srv, last) == []


def second_server(start_server, srv):
    """Another process on the same database and key file."""
    s2 = start_server("--rate-limit", "0", db=srv.db, start=False)
    s2.key_file = srv.key_file
    s2.start()
    s2.token = srv.token
    return s2


def test_deleted_policy_takes_effect(srv, start_server):
    s2 = second_server(start_server, srv)
    u = new_user(srv, role="none")
    p = grant(srv, "source-admin", u, src_name("js"))
    who = user_principal(srv, "soon-gone", u)
    # both processes have the token (and its policies) cached
    assert_ok(srv.get(src_path("js"), token=who.token))
    assert_ok(s2.get(src_path("js"), token=who.token))
    assert_ok(srv.delete("/v1beta/" + p["name"]))
    # at once on the process that deleted it
    assert_denied(srv.get(src_path("js"), token=who.token))
    assert_denied(srv.request("PATCH", dst_path("js", D1), token=who.token,
                              json=patch_body("destination", {"enabled": True}, ["destination.enabled"])))
    # within about a second on the other one (its cache keeps policies for up to 1 s)
    time.sleep(1.2)
    assert_denied(s2.get(src_path("js"), token=who.token))
    assert_denied(srv.get(src_path("js"), token=who.token))


def test_revoked_token_stops_on_another_process_within_a_second(srv, start_server):
    s2 = second_server(start_server, srv)
    who = principal_with(srv, "rev-s2", "source-read-only")
    assert_ok(s2.get(src_path("js"), token=who.token))
    assert_ok(srv.delete("/v1beta/" + who.token_name))
    assert_unauthenticated(srv.get(src_path("js"), token=who.token))
    time.sleep(1.2)
    assert_unauthenticated(s2.get(src_path("js"), token=who.token))


def test_removed_user_loses_access(srv, start_server):
    """DELETE /v1beta/workspaces/{ws}/users/{id} removes every policy the user holds in the
    workspace (users are not deleted outright; there is no API for that)."""
    if not has_route("DELETE", "/v1beta/workspaces/{ws}/users/{user}"):
        pytest.skip("users cannot be removed through the API in this build")
    s2 = second_server(start_server, srv)
    u = new_user(srv, role="none")
    grant(srv, "source-admin", u, src_name("js"))
    grant(srv, "tracking-plan-read-only", u, WS_NAME)
    # a policy in another workspace is not touched by removing the user from this one
    elsewhere = grant(srv, "source-read-only", u, f"workspaces/{OTHER_WS}", token=srv.other_admin.token, ws=OTHER_WS)
    who = user_principal(srv, "removed", u)
    assert_ok(srv.get(src_path("js"), token=who.token))
    assert_ok(s2.get(src_path("js"), token=who.token))
    r = srv.delete(f"{WSP}/users/{u.id}")
    assert assert_ok(r) == {} and r.text.strip() == "{}"
    assert_denied(srv.get(src_path("js"), token=who.token))
    assert_denied(srv.get(WSP, token=who.token))
    assert_denied(srv.get(f"{WSP}/tracking-plans", token=who.token))
    assert u.id not in {x["id"] for x in users(srv)}
    assert not [p for p in policies_of(srv) if p["subject"] == u.name]
    assert elsewhere in list_all(srv, policies_path("-", OTHER_WS), "policies", token=srv.other_admin.token)
    time.sleep(1.2)
    assert_denied(s2.get(src_path("js"), token=who.token))
    # a second removal, or of someone who was never here: 404/5
    assert_error(srv.delete(f"{WSP}/users/{u.id}"), 404, 5)
    assert_error(srv.delete(f"{WSP}/users/usr_nosuchuser"), 404, 5)
    # and a user of another workspace cannot be removed from here
    stranger = new_user(srv, role="source-admin", workspace=OTHER_WS)
    assert_error(srv.delete(f"{WSP}/users/{stranger.id}"), 404, 5)
    assert stranger.id in {x["id"] for x in list_all(srv, f"/v1beta/workspaces/{OTHER_WS}/users", "users",
                                                      token=srv.other_admin.token)}


def test_non_owners_cannot_grant_themselves_more(srv):
    """Writes to IAM are owners' only: a Source Admin on the whole workspace cannot add a
    policy (not even for itself), invite, remove users or read the policy list."""
    who = principal_with(srv, "climber", "source-admin", WS_NAME)
    t = who.token
    assert_denied(srv.post(policies_path("workspace-owner"), token=t,
                           json={"policy": {"subject": who.user.name, "resource": WS_NAME}}))
    assert_denied(srv.post(f"{WSP}/invites", token=t, json={"invite": {
        "email": f"{uniq('c')}@example.com", "policies": [{"role": "workspace-owner", "resource": WS_NAME}]}}))
    assert_denied(srv.get(policies_path("-"), token=t))
    owner_pol = next(p for p in policies_of(srv, "workspace-owner") if p["resource"] == WS_NAME)
    assert_denied(srv.delete("/v1beta/" + owner_pol["name"], token=t))
    assert owner_pol in policies_of(srv, "workspace-owner")
    assert not [p for p in policies_of(srv, "workspace-owner") if p["subject"] == who.user.name]


def test_tracking_plan_admin_on_one_plan(srv):
    """A policy on one tracking plan covers that plan (incl. :validate and its connections)
    and not the others, nor the list."""
    mine, theirs = plan_id(mk_plan(srv)), plan_id(mk_plan(srv))
    who = principal_with(srv, "tp1", "tracking-plan-admin", f"{WS_NAME}/tracking-plans/{mine}")
    t = who.token
    assert_ok(srv.get(plan_path(mine), token=t))
    assert_ok(srv.post(plan_path(mine) + ":validate", token=t, json={"events": []}))
    assert_ok(srv.request("PUT", plan_path(mine), token=t, json=patch_body(
        "tracking_plan", {"display_name": "mine"}, ["tracking_plan.display_name"])))
    assert_ok(srv.get(plan_path(mine) + "/source-connections", token=t))
    assert_denied(srv.get(plan_path(theirs), token=t))
    assert_denied(srv.post(plan_path(theirs) + ":validate", token=t, json={"events": []}))
    assert_denied(srv.get(f"{WSP}/tracking-plans", token=t))
    assert_denied(srv.delete(plan_path(theirs), token=t))
    assert_ok(srv.delete(plan_path(mine), token=t))


# ---- edges ------------------------------------------------------------------------------------

def test_expired_invite_grants_nothing(srv):
    """An invite carries an expire_time; once it has passed, registering the e-mail must not
    turn the invite into policies. (The expiry is moved into the past in the database: there
    is no API to age an invite.)"""
    email = f"{uniq('late')}@example.com"
    inv = mk_invite(srv, email, role="source-admin", resource=WS_NAME)
    srv.db.execute("UPDATE resources SET body = replace(body, ?, ?) WHERE name = ?",
                   (inv["expire_time"], "2020-01-01T00:00:00Z", inv["name"]))
    assert [i["expire_time"] for i in invites(srv) if i["name"] == inv["name"]] == ["2020-01-01T00:00:00Z"]
    u = new_user(srv, role="none", email=email)
    granted = [p for p in policies_of(srv) if p["subject"] == u.name]
    assert granted == [], f"an invite that expired in 2020 was accepted: {granted}"
    assert_denied(basic_token_request(srv, u.email, u.password))


def test_workspace_list_shows_only_readable_workspaces(srv):
    """GET /v1beta/workspaces must not show a workspace that GET /v1beta/workspaces/{ws}
    refuses: a user whose policies were all deleted still holds a token naming the
    workspace, but may no longer see it."""
    u = new_user(srv, role="none")
    p = grant(srv, "source-read-only", u, src_name("js"))
    who = user_principal(srv, "fading", u)
    assert [w["name"] for w in assert_ok(srv.get("/v1beta/workspaces", token=who.token))["workspaces"]] == [WS_NAME]
    assert_ok(srv.delete("/v1beta/" + p["name"]))
    assert_denied(srv.get(WSP, token=who.token))
    listed = assert_ok(srv.get("/v1beta/workspaces", token=who.token))
    assert listed == {"workspaces": [], "next_page_token": ""}, listed


def test_user_with_many_policies_keeps_them_all(srv):
    """Forty per-source policies (a Source Read-only on each of 40 sources) all count."""
    slugs = [mk_source(srv, f"many{i:02d}") for i in range(40)]
    u = new_user(srv, role="none")
    for s in slugs:
        grant(srv, "source-read-only", u, src_name(s))
    who = user_principal(srv, "many", u)
    refused = [s for s in slugs if srv.get(src_path(s), token=who.token).status_code != 200]
    assert not refused, f"{len(refused)} of 40 granted sources refused: {refused}"


def test_concurrent_invites_for_one_email_make_one_invite(srv):
    """Racing requests for the same address: exactly one invite, every other answer 409/6."""
    import concurrent.futures
    for k in range(8):
        email = f"{uniq('race')}@example.com"
        body = {"invite": {"email": email, "policies": [{"role": "source-read-only", "resource": WS_NAME}]}}
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda _: srv.post(f"{WSP}/invites", json=body), range(16)))
        codes = sorted(r.status_code for r in rs)
        assert codes == [200] + [409] * 15, codes
        for r in rs[1:]:
            if r.status_code == 409:
                assert r.json()["code"] == 6
        assert len([i for i in invites(srv) if i["email"] == email]) == 1


def test_invite_can_be_reissued_after_acceptance_or_deletion(srv):
    """The one-invite-per-address rule holds only while the invite is open."""
    email = f"{uniq('again')}@example.com"
    assert_ok(srv.delete("/v1beta/" + mk_invite(srv, email)["name"]))
    mk_invite(srv, email, role="source-read-only", resource=src_name("js"))
    u = new_user(srv, role="none", email=email)
    assert [p["resource"] for p in policies_of(srv) if p["subject"] == u.name] == [src_name("js")]
    # the address is free again: a new invite (e.g. for more access) can be made
    inv = mk_invite(srv, email, role="source-read-only", resource=src_name("ios"))
    assert_ok(srv.delete("/v1beta/" + inv["name"]))

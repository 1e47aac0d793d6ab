"""Workspace export/import (docs/export-import.md): GET /v1beta/workspaces/{ws}:export and
POST /v1beta/workspaces/{ws}:import — canonical documents, round trips into the same and
into an empty workspace, plans for edited documents, atomicity (nothing changes, no audit
entry), bad documents, secrets and IAM."""
import base64
import copy
import json

import pytest
import requests

from conftest import DEFAULT_WS, assert_error, assert_ok
from helpers_fn import D1
from helpers_iam import new_user, principal_with

N = [0]


def fresh_ws(srv):
    """A new, empty workspace and an admin token for it."""
    N[0] += 1
    slug = f"xi{N[0]}-{base64.b32encode(bytes([N[0] % 256, 7, 9])).decode().lower().strip('=')}"
    srv.add_workspace(slug, f"ws_{slug.replace('-', '_')}")
    return slug, srv.create_token(workspace=slug)


def wp(ws, rest=""):
    return f"/v1beta/workspaces/{ws}{rest}"


def export(srv, ws, tok, **params):
    r = srv.get(wp(ws, ":export"), token=tok, params=params)
    assert_ok(r)
    return r


def imp(srv, ws, tok, doc, validate_only=None, raw=None):
    params = {"validate_only": "true"} if validate_only else {}
    data = raw if raw is not None else json.dumps(doc)
    return srv.request("POST", wp(ws, ":import"), token=tok, params=params, data=data,
                       headers={"Content-Type": "application/json"})


def retarget(doc, ws):
    d = copy.deepcopy(doc)
    d["workspace"] = ws
    return d


SECRET = "tok-S3cret-value"
FN_SECRET = "fn-s3cret-Key"


def populate(srv, ws, tok):
    """One resource of every kind (and a second of some), through the ordinary API."""
    fn = assert_ok(srv.post(wp(ws, "/functions"), token=tok, params={"type": "DESTINATION"}, json={"function": {
        "display_name": "Revenue", "code": D1, "settings": [
            {"name": "apiKey", "label": "API key", "type": "STRING", "description": "k", "required": False,
             "sensitive": True},
            {"name": "endpoint", "label": "Endpoint", "type": "STRING", "description": "e", "required": False,
             "sensitive": False}]}}))
    plan = assert_ok(srv.post(wp(ws, "/tracking-plans"), token=tok, json={"tracking_plan": {
        "display_name": "Main plan", "rules": {"events": [
            {"name": "Signed Up", "version": 1, "rules": {"type": "object", "properties": {
                "properties": {"type": "object", "required": ["plan"]}}}}]}}}))
    for slug in ("js", "web"):
        assert_ok(srv.post(wp(ws, "/sources"), token=tok, json={"source": {
            "name": f"workspaces/{ws}/sources/{slug}", "catalog_name": "catalog/sources/javascript",
            "labels": {"env": "dev"}}}))
    assert_ok(srv.request("PATCH", wp(ws, "/sources/js/schema-config"), token=tok, json={
        "schema_config": {"allow_unplanned_track_events": False}, "update_mask": {"paths": [
            "schema_config.allow_unplanned_track_events"]}}))
    assert_ok(srv.post(wp(ws, "/sources/js/destinations"), token=tok, json={"destination": {
        "name": f"workspaces/{ws}/sources/js/destinations/actions-airship",
        "config": [{"name": "access_token", "value": SECRET}, {"name": "app_key", "value": "k1"}]}}))
    assert_ok(srv.post(wp(ws, "/sources/js/destinations"), token=tok, json={"destination": {
        "name": f"workspaces/{ws}/sources/js/destinations/{fn['catalog_id']}",
        "config": [{"name": "apiKey", "value": FN_SECRET}, {"name": "endpoint", "value": "http://127.0.0.1:9/x"}]}}))
    filt = assert_ok(srv.post(wp(ws, "/sources/js/destinations/actions-airship/filters"), token=tok, json={
        "filter": {"if": "type = \"track\"", "actions": [{"type": "drop_event"}], "title": "drop tracks",
                   "enabled": True}}))
    plan_id = plan["name"].rsplit("/", 1)[1]
    assert_ok(srv.post(wp(ws, f"/tracking-plans/{plan_id}/source-connections"), token=tok,
                       json={"source_name": f"workspaces/{ws}/sources/js"}))
    user = new_user(srv, role="none", workspace=ws)
    assert_ok(srv.post(wp(ws, "/roles/source-admin/policies"), token=tok, json={
        "policy": {"subject": user.name, "resource": f"workspaces/{ws}/sources/js"}}))
    return {"fn": fn, "plan_id": plan_id, "filter": filt, "user": user}


def audit_ids(srv, ws, tok):
    b = assert_ok(srv.get(wp(ws, "/audit-events"), token=tok, params={"page_size": 200}))
    return [e["id"] for e in b["audit_events"]]


@pytest.fixture(scope="module")
def world(server):
    ws, tok = fresh_ws(server)
    info = populate(server, ws, tok)
    return server, ws, tok, info


# ---- export -------------------------------------------------------------------------------

def test_export_is_canonical_and_redacts_secrets(world):
    srv, ws, tok, info = world
    r = export(srv, ws, tok)
    doc = r.json()
    # canonical: compact, keys sorted, stable
    assert r.text == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert export(srv, ws, tok).text == r.text
    assert doc["version"] == 1 and doc["workspace"] == ws
    assert set(doc) == {"version", "workspace", "functions", "tracking_plans", "sources", "schema_configs",
                        "destinations", "filters", "source_connections", "policies"}
    for key in set(doc) - {"version", "workspace"}:
        names = [e["name"] for e in doc[key]]
        assert names == sorted(names), key
        assert not any(n.startswith("workspaces/") for n in names)
    assert [s["name"] for s in doc["sources"]] == ["sources/js", "sources/web"]
    assert SECRET not in r.text and FN_SECRET not in r.text
    assert "create_time" not in r.text and "write_keys" not in r.text
    air = next(d for d in doc["destinations"] if d["name"] == "sources/js/destinations/actions-airship")
    assert {"name": "access_token", "value": "<redacted>"} in air["config"]
    assert {"name": "app_key", "value": "k1"} in air["config"]
    fn = doc["functions"][0]
    assert fn["name"] == "functions/" + info["fn"]["id"]
    # the definition holds no value for apiKey (values live on the destination instance)
    assert "value" not in next(s for s in fn["settings"] if s["name"] == "apiKey")
    sc = next(s for s in doc["schema_configs"] if s["name"] == "sources/js/schema-config")
    assert sc["allow_unplanned_track_events"] is False
    assert doc["source_connections"] == [
        {"name": f"tracking-plans/{info['plan_id']}/source-connections/js"}]
    pol = [p for p in doc["policies"] if p["subject"] == info["user"].name]
    assert pol and pol[0]["resource"] == "sources/js" and pol[0]["name"].startswith("roles/source-admin/policies/")
    assert doc["filters"][0]["title"] == "drop tracks"
    # with secrets (an admin token may write): the values in clear
    s = export(srv, ws, tok, include_secrets="true")
    assert SECRET in s.text and FN_SECRET in s.text
    assert s.headers.get("Cache-Control") == "no-store"
    assert_error(srv.get(wp(ws, ":export"), token=tok, params={"include_secrets": "maybe"}), 400, 3)


def test_export_import_same_workspace_is_all_unchanged(world):
    srv, ws, tok, _ = world
    doc = export(srv, ws, tok).json()
    before = audit_ids(srv, ws, tok)
    for vo in (True, False):
        b = assert_ok(imp(srv, ws, tok, doc, validate_only=vo))
        assert b["changes"] and {c["action"] for c in b["changes"]} == {"unchanged"}, b
        assert len(b["changes"]) == sum(len(v) for k, v in doc.items() if isinstance(v, list))
    assert audit_ids(srv, ws, tok) == before
    assert export(srv, ws, tok).json() == doc


def test_import_into_empty_workspace_recreates_the_export(world):
    srv, ws, tok, _ = world
    src = export(srv, ws, tok, include_secrets="true")
    ws2, tok2 = fresh_ws(srv)
    doc2 = retarget(src.json(), ws2)
    # the plan: everything is created, nothing stored
    plan = assert_ok(imp(srv, ws2, tok2, doc2, validate_only=True))
    # (a new source's schema config is born with the defaults: "update" where the document differs)
    acts = {c["name"]: c["action"] for c in plan["changes"]}
    assert acts.pop("sources/js/schema-config") == "update" and acts.pop("sources/web/schema-config") == "unchanged"
    assert set(acts.values()) == {"create"}, plan
    assert assert_ok(srv.get(wp(ws2, "/sources"), token=tok2))["sources"] == []
    b = assert_ok(imp(srv, ws2, tok2, doc2))
    assert b == plan
    got = export(srv, ws2, tok2, include_secrets="true")
    assert got.text == json.dumps(doc2, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # redacted exports agree too
    a, b2 = export(srv, ws, tok).json(), export(srv, ws2, tok2).json()
    assert retarget(a, ws2) == b2
    # one audit entry per change (the ordinary calls' entries)
    acts = [e["action"] for e in assert_ok(srv.get(wp(ws2, "/audit-events"), token=tok2,
                                                   params={"page_size": 200}))["audit_events"]]
    assert acts.count("source.create") == 2 and acts.count("destination.create") == 2
    assert acts.count("filter.create") == 1 and acts.count("source_connection.create") == 1
    assert acts.count("function.create") == 1 and acts.count("tracking_plan.create") == 1
    assert acts.count("schema_config.update") == 1


def test_imported_source_write_key_accepts_an_event_at_once(world):
    srv, ws, tok, _ = world
    ws2, tok2 = fresh_ws(srv)
    doc = retarget(export(srv, ws, tok, include_secrets="true").json(), ws2)
    assert_ok(imp(srv, ws2, tok2, doc))
    key = assert_ok(srv.get(wp(ws2, "/sources/web"), token=tok2))["write_keys"][0]
    r = requests.post(srv.url("/v1/track"), data=json.dumps({"userId": "u1", "event": "Hello"}),
                      headers={"Authorization": "Basic " + base64.b64encode((key + ":").encode()).decode(),
                               "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200 and r.json() == {"success": True}, r.text


def test_redacted_secret_keeps_value_and_is_refused_where_there_is_none(world):
    srv, ws, tok, _ = world
    doc = export(srv, ws, tok).json()  # redacted
    ws2, tok2 = fresh_ws(srv)
    r = imp(srv, ws2, tok2, retarget(doc, ws2))
    msg = assert_error(r, 400, 3)["error"]
    assert "<redacted>" in msg and f"workspaces/{ws2}/" in msg, msg
    assert assert_ok(srv.get(wp(ws2, "/sources"), token=tok2))["sources"] == []
    # in the same workspace "<redacted>" keeps the current value: unchanged
    b = assert_ok(imp(srv, ws, tok, doc))
    assert {c["action"] for c in b["changes"]} == {"unchanged"}
    assert SECRET in export(srv, ws, tok, include_secrets="true").text


def edit_one_of_each(doc, ws):
    """Adds, changes and removes one resource of each kind; returns the expected plan."""
    d = copy.deepcopy(doc)
    want = {}
    fn = d["functions"][0]
    fn["description"] = "changed"
    want[fn["name"]] = "update"
    d["functions"].append({"name": "functions/dfnc_2Added0000000000000000000000", "type": "DESTINATION",
                           "display_name": "Added", "description": "", "code": D1, "buildpack": "boreal",
                           "logo_url": "", "settings": []})
    want["functions/dfnc_2Added0000000000000000000000"] = "create"
    plan = d["tracking_plans"][0]
    plan["display_name"] = "Renamed plan"
    want[plan["name"]] = "update"
    d["tracking_plans"].append({"name": "tracking-plans/rs_2Added00000000000000000000",
                                "display_name": "Plan 2", "rules": {"events": []}})
    want["tracking-plans/rs_2Added00000000000000000000"] = "create"
    d["sources"] = [s for s in d["sources"] if s["name"] != "sources/web"]
    want["sources/web"] = "delete"
    d["schema_configs"] = [s for s in d["schema_configs"] if s["name"] != "sources/web/schema-config"]
    d["sources"].append({"name": "sources/added", "catalog_name": "catalog/sources/javascript",
                         "display_name": "added", "labels": {}})
    want["sources/added"] = "create"
    sc = next(s for s in d["schema_configs"] if s["name"] == "sources/js/schema-config")
    sc["common_track_event_on_violations"] = "BLOCK"
    want[sc["name"]] = "update"
    air = next(x for x in d["destinations"] if x["name"].endswith("/actions-airship"))
    air["config"] = [c for c in air["config"] if c["name"] != "app_key"] + [{"name": "app_key", "value": "k2"}]
    want[air["name"]] = "update"
    fdest = next(x for x in d["destinations"] if not x["name"].endswith("/actions-airship"))
    d["destinations"].remove(fdest)
    want[fdest["name"]] = "delete"
    d["destinations"].append({"name": "sources/added/destinations/webhooks", "enabled": False,
                              "connection_mode": "CLOUD", "config": []})
    want["sources/added/destinations/webhooks"] = "create"
    f0 = d["filters"][0]
    f0["title"] = "renamed filter"
    want[f0["name"]] = "update"
    d["filters"].append({"name": "sources/added/destinations/webhooks/filters/df_2Added000000000000000000",
                         "if": "all", "actions": [{"type": "drop_event"}], "title": "t2", "description": "",
                         "enabled": False})
    want["sources/added/destinations/webhooks/filters/df_2Added000000000000000000"] = "create"
    c0 = d["source_connections"][0]
    d["source_connections"] = [{"name": "tracking-plans/rs_2Added00000000000000000000/source-connections/added"}]
    want[c0["name"]] = "delete"
    want["tracking-plans/rs_2Added00000000000000000000/source-connections/added"] = "create"
    pol = next(p for p in d["policies"] if p["resource"] == "sources/js")
    d["policies"].remove(pol)
    want[pol["name"]] = "delete"
    d["policies"].append({"name": "roles/tracking-plan-admin/policies/pol_2Added00000000000000000000",
                          "subject": pol["subject"], "resource": "tracking-plans"})
    want["roles/tracking-plan-admin/policies/pol_2Added00000000000000000000"] = "create"
    return d, want


def test_plan_for_an_edited_document_then_apply(server):
    srv = server
    ws, tok = fresh_ws(srv)
    populate(srv, ws, tok)
    doc = export(srv, ws, tok).json()
    edited, want = edit_one_of_each(doc, ws)
    before_doc, before_audit = export(srv, ws, tok).text, audit_ids(srv, ws, tok)
    plan = assert_ok(imp(srv, ws, tok, edited, validate_only=True))
    got = {c["name"]: c["action"] for c in plan["changes"]}
    for name, action in want.items():
        assert got.get(name) == action, (name, action, got.get(name))
    assert set(c["action"] for c in plan["changes"]) == {"create", "update", "delete", "unchanged"}
    # validate_only stored nothing, audited nothing
    assert export(srv, ws, tok).text == before_doc and audit_ids(srv, ws, tok) == before_audit
    applied = assert_ok(imp(srv, ws, tok, edited))
    assert applied == plan
    after = export(srv, ws, tok).json()
    # the edited document is now the workspace (ignoring the new source's write key, never exported)
    def by_name(doc):
        return {k: sorted(v, key=lambda e: e["name"]) if isinstance(v, list) else v for k, v in doc.items()}
    assert after == by_name(edited) | {"schema_configs": after["schema_configs"]}
    names = {s["name"] for s in after["schema_configs"]}
    assert names == {"sources/js/schema-config", "sources/added/schema-config"}
    changed = [c for c in plan["changes"] if c["action"] != "unchanged"]
    assert len(audit_ids(srv, ws, tok)) >= len(before_audit) + len(changed)
    # and importing it again changes nothing
    again = assert_ok(imp(srv, ws, tok, edited))
    assert {c["action"] for c in again["changes"]} == {"unchanged"}


def test_a_bad_last_resource_changes_nothing(server):
    srv = server
    ws, tok = fresh_ws(srv)
    populate(srv, ws, tok)
    doc = export(srv, ws, tok, include_secrets="true").json()
    d = copy.deepcopy(doc)
    d["sources"].append({"name": "sources/new1", "catalog_name": "catalog/sources/javascript",
                         "display_name": "n", "labels": {}})
    d["tracking_plans"][0]["display_name"] = "changed first"
    # the last resource applied is a policy: a filter whose FQL does not compile comes earlier;
    # make the very last change (a policy) invalid instead
    d["filters"][0]["title"] = "changed"
    d["policies"].append({"name": "roles/source-admin/policies/pol_2Bad0000000000000000000000",
                          "subject": "users/nobody-at-all", "resource": "sources/js"})
    before_doc, before_audit = export(srv, ws, tok, include_secrets="true").text, audit_ids(srv, ws, tok)
    r = imp(srv, ws, tok, d)
    msg = assert_error(r, 400, 3)["error"]
    assert msg.startswith(f"workspaces/{ws}/roles/source-admin/policies/pol_2Bad"), msg
    assert export(srv, ws, tok, include_secrets="true").text == before_doc
    assert audit_ids(srv, ws, tok) == before_audit
    # a filter that does not compile, a destination setting of the wrong type, a bad plan rule
    for mutate, where in (
            (lambda x: x["filters"][0].__setitem__("if", "type = "), "filters/"),
            (lambda x: next(y for y in x["destinations"] if y["name"].endswith("airship"))["config"].append(
                {"name": "endpoint", "value": 5}), "destinations/actions-airship"),
            (lambda x: x["tracking_plans"][0]["rules"]["events"][0].__setitem__("rules", {"type": 12}),
             "tracking-plans/"),
            (lambda x: x["functions"][0].__setitem__("code", ""), "functions/")):
        bad = copy.deepcopy(d)
        bad["policies"] = doc["policies"]
        mutate(bad)
        for vo in (True, False):
            msg = assert_error(imp(srv, ws, tok, bad, validate_only=vo), 400, 3)["error"]
            assert msg.startswith(f"workspaces/{ws}/") and where in msg, msg
    assert export(srv, ws, tok, include_secrets="true").text == before_doc
    assert audit_ids(srv, ws, tok) == before_audit


def test_bad_documents(world):
    srv, ws, tok, _ = world
    good = export(srv, ws, tok).json()
    before = export(srv, ws, tok).text

    def bad(doc=None, raw=None, status=400, code=3, has=None):
        r = imp(srv, ws, tok, doc, raw=raw)
        b = assert_error(r, status, code)
        if has:
            assert has in b["error"], b
    bad(raw="{not json")
    bad(raw="[]")
    bad(raw='{"version": 1, "version": 1}')
    bad(doc=dict(good, version=2), has="version")
    bad(doc=dict(good, version="1"), has="version")
    bad(doc=dict(good, workspace="someone-else"), has="someone-else")
    bad(doc={k: v for k, v in good.items() if k != "workspace"}, has="workspace")
    bad(doc=dict(good, extra=[]), has="extra")
    bad(doc=dict(good, sources={}), has="sources")
    bad(doc=dict(good, sources=[1]), has="sources[0]")
    bad(doc=dict(good, sources=[{"name": 5}]), has="name")
    bad(doc=dict(good, sources=[{"name": "destinations/x"}]), has="sources/<id>")
    bad(doc=dict(good, sources=[{"name": "sources/../x"}]))
    bad(doc=dict(good, sources=good["sources"] + good["sources"][:1]), has="twice")
    src = dict(good["sources"][0], colour="red")
    bad(doc=dict(good, sources=[src] + good["sources"][1:]), has="colour")
    bad(doc=dict(good, filters=[dict(good["filters"][0], enabled="yes")]), has="filters/")
    bad(doc=dict(good, tracking_plans=[dict(good["tracking_plans"][0], name="tracking-plans/rs_bad-id!")]))
    # a changed field the API cannot update in place
    s2 = [dict(s) for s in good["sources"]]
    s2[0]["labels"] = {"env": "prod"}
    bad(doc=dict(good, sources=s2), has="labels")
    # oversized: refused by the body limit
    r = imp(srv, ws, tok, None, raw='{"version":1,"x":"' + "a" * (9 * 1024 * 1024) + '"}')
    assert r.status_code == 413, r.status_code
    assert_error(srv.post(wp(ws, ":import"), token=tok, params={"validate_only": "perhaps"}, json=good), 400, 3)
    assert export(srv, ws, tok).text == before


def test_iam(server):
    """Export needs read on the whole workspace, import and include_secrets a write on it:
    a workspace owner (with a token that may write)."""
    srv = server
    ws = DEFAULT_WS
    owner_rw = srv.token
    owner_ro = srv.create_token(workspace=ws, scope="workspace:read")
    src_admin = principal_with(srv, "sa", "source-admin", resource=f"workspaces/{ws}")
    member = principal_with(srv, "m", "workspace-member", resource=f"workspaces/{ws}")
    owner2 = principal_with(srv, "o2", "workspace-owner", resource=f"workspaces/{ws}")
    owner2_ro = principal_with(srv, "o3", "workspace-owner", resource=f"workspaces/{ws}", scope="workspace:read")
    doc = export(srv, ws, owner_rw).json()
    assert_ok(srv.get(wp(ws, ":export"), token=owner2.token))
    assert_ok(srv.get(wp(ws, ":export"), token=owner2_ro.token))
    assert_ok(srv.get(wp(ws, ":export"), token=owner_ro))
    for who in (src_admin.token, member.token):
        assert_error(srv.get(wp(ws, ":export"), token=who), 403, 7)
        assert_error(imp(srv, ws, who, doc, validate_only=True), 403, 7)
    # include_secrets: an owner with a write token only
    assert_ok(srv.get(wp(ws, ":export"), token=owner2.token, params={"include_secrets": "true"}))
    assert_error(srv.get(wp(ws, ":export"), token=owner2_ro.token, params={"include_secrets": "true"}), 403, 7)
    assert_error(srv.get(wp(ws, ":export"), token=owner_ro, params={"include_secrets": "true"}), 403, 7)
    assert_error(srv.get(wp(ws, ":export"), token=src_admin.token, params={"include_secrets": "true"}), 403, 7)
    # import: write on everything
    assert_error(imp(srv, ws, owner_ro, doc, validate_only=True), 403, 7)
    assert_error(imp(srv, ws, owner2_ro.token, doc), 403, 7)
    doc = export(srv, ws, owner2.token).json()
    b = assert_ok(imp(srv, ws, owner2.token, doc, validate_only=True))
    assert {c["action"] for c in b["changes"]} == {"unchanged"}
    # another workspace's token: denied before anything
    other, otok = fresh_ws(srv)
    assert_error(srv.get(wp(other, ":export"), token=owner2.token), 403, 7)
    assert_error(imp(srv, ws, otok, doc), 403, 7)


def test_import_keeps_an_owner(server):
    """A document without the workspace's owner policy is refused (the last-owner rule of a
    policy DELETE applies), and nothing changes."""
    srv = server
    ws = DEFAULT_WS
    doc = export(srv, ws, srv.token).json()
    d = copy.deepcopy(doc)
    d["policies"] = [p for p in d["policies"] if not (p["resource"] == "" and "workspace-owner" in p["name"])]
    msg = assert_error(imp(srv, ws, srv.token, d), 400, 3)["error"]
    assert "owner" in msg, msg
    assert export(srv, ws, srv.token).json() == doc

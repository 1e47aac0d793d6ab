"""Tracking plans (spec config-api.md §9): create, list, get, PUT/PATCH with every mask path,
delete; verbatim round-trip of every plan in shared/data/tracking-plans (key order included);
rule validation (JSON Schema, duplicates); a 2,000-event plan; and source connections
(§9.6): single and batch create, list, delete, one plan per source, cascades."""
import json
import time

import pytest

from conftest import RFC3339_Z, assert_error
from conftest import connect as connect_raw, read_response as read_raw
from helpers_fp import *  # noqa: F401,F403

GLOBAL = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
          "properties": {"context": {"type": "object", "required": ["library"]}, "properties": {}, "traits": {}}}
IDENTIFY = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"traits": {"type": "object", "required": ["email"]}}}
GROUP = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
         "properties": {"traits": {"type": "object", "required": ["name"]}}}


def full_rules():
    return {"global": GLOBAL,
            "events": [event_rule("User Logged In", {"username": {"type": "string", "description": ""}},
                                  ["username"], version=1, description="Sent when a user logs in")],
            "identify": IDENTIFY, "group": GROUP, "identify_traits": [], "group_traits": []}


def update(srv, pid, tp, paths, method="PUT", **kw):
    body = {}
    if paths is not None:
        body["update_mask"] = {"paths": paths}
    if tp is not None:
        body["tracking_plan"] = tp
    return srv.request(method, plan_path(pid), json=body, **kw)


def check_plan(b, display_name=None):
    assert set(b) == PLAN_KEYS, b
    assert b["name"].startswith(f"workspaces/{WS}/tracking-plans/"), b["name"]
    assert PLAN_ID_RE.match(plan_id(b)), b["name"]
    assert RFC3339_Z.match(b["create_time"]) and RFC3339_Z.match(b["update_time"]), b
    if display_name is not None:
        assert b["display_name"] == display_name


# ---- create / get / list ---------------------------------------------------------------------

def test_create_returns_the_plan_with_an_rs_id_and_equal_times(srv):
    rules = full_rules()
    b = create_plan(srv, "My Tracking Plan", rules)
    check_plan(b, "My Tracking Plan")
    assert b["create_time"] == b["update_time"]
    assert b["rules"] == rules
    assert assert_ok(srv.get(plan_path(plan_id(b)))) == b


def test_create_without_rules_has_empty_events_and_trait_lists(srv):
    b = create_plan(srv, "Empty")
    check_plan(b, "Empty")
    assert b["rules"]["events"] == []
    assert b["rules"].get("identify_traits", []) == [] and b["rules"].get("group_traits", []) == []
    for absent in ("global", "identify", "group"):
        assert absent not in b["rules"], b  # never set: omitted, not null (§1.7)


def test_absent_optional_rules_are_omitted(srv):
    b = create_plan(srv, rules={"events": []})
    assert b["rules"] == {"events": []}
    assert assert_ok(srv.get(plan_path(plan_id(b))))["rules"] == {"events": []}


def test_ids_are_unique(srv):
    ids = {plan_id(create_plan(srv)) for _ in range(8)}
    assert len(ids) == 8


@pytest.mark.parametrize("tp", [{}, {"display_name": ""}, {"display_name": 5}, {"display_name": None},
                                {"display_name": "x", "rules": []}, {"display_name": "x", "rules": "r"},
                                {"display_name": "x", "rules": {"events": {}}},
                                {"display_name": "x", "rules": {"events": ["e"]}},
                                {"display_name": "x", "rules": {"events": [{"description": "no name"}]}},
                                {"display_name": "x", "rules": {"events": [{"name": "E", "version": "1"}]}},
                                {"display_name": "x", "rules": {"events": [{"name": "E", "version": 0}]}},
                                {"display_name": "x", "rules": {"global": "not an object", "events": []}},
                                {"display_name": "x", "rules": {"identify": [], "events": []}},
                                {"display_name": "x", "rules": {"events": [{"name": "E", "rules": "x"}]}},
                                ], ids=lambda t: json.dumps(t)[:60])
def test_bad_plans_are_400(srv, tp):
    before = list_all(srv, PLANS, "tracking_plans", page_size=100)[0]
    assert_error(srv.post(PLANS, json={"tracking_plan": tp}), 400, 3)
    assert list_all(srv, PLANS, "tracking_plans", page_size=100)[0] == before


def test_missing_body_is_400(srv):
    assert_error(srv.post(PLANS, json={}), 400, 3)
    assert_error(srv.post(PLANS, data=b"{"), 400, 3)


def test_get_missing_is_404(srv):
    assert_error(srv.get(plan_path("rs_1AAPTLy8ffAAQth0PvL8rOvU6PJ")), 404, 5)
    assert_error(srv.get(plan_path("nonsense")), 404, 5)


def test_list_is_paginated_and_sorted(start_server):
    s = start_server("--rate-limit", "0")
    made = [create_plan(s, f"plan {i}", full_rules()) for i in range(5)]
    names = sorted(p["name"] for p in made)
    b = assert_ok(s.get(PLANS))
    assert set(b) == {"tracking_plans", "next_page_token"} and b["next_page_token"] == ""
    assert [p["name"] for p in b["tracking_plans"]] == names
    by_name = {p["name"]: p for p in made}
    for p in b["tracking_plans"]:
        assert p == by_name[p["name"]]
    items, pages = list_all(s, PLANS, "tracking_plans", page_size=2)
    assert [p["name"] for p in items] == names and pages == 3
    assert assert_ok(s.get(PLANS, token=s.create_token(scope="workspace:read")))["tracking_plans"] == b["tracking_plans"]


def test_empty_list(start_server):
    s = start_server("--rate-limit", "0")
    assert assert_ok(s.get(PLANS)) == {"tracking_plans": [], "next_page_token": ""}


# ---- update ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_display_name(srv, method):
    p = create_plan(srv, "Before", full_rules())
    time.sleep(0.02)
    r = update(srv, plan_id(p), {"display_name": "After", "rules": {"events": []}}, ["tracking_plan.display_name"],
               method)
    b = assert_ok(r)
    check_plan(b, "After")
    assert b["rules"] == p["rules"]  # not in the mask: unchanged
    assert b["create_time"] == p["create_time"]
    assert b["update_time"] > p["update_time"]
    assert assert_ok(srv.get(plan_path(plan_id(p)))) == b


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_rules_replaces_the_whole_rules_object(srv, method):
    p = create_plan(srv, "R", full_rules())
    new = {"events": [event_rule("Order Completed", {"total": {"type": "number"}}, ["total"], version=2)]}
    b = assert_ok(update(srv, plan_id(p), {"rules": new, "display_name": "ignored"}, ["tracking_plan.rules"], method))
    assert b["rules"] == new  # global/identify/group gone
    assert b["display_name"] == "R"
    assert assert_ok(srv.get(plan_path(plan_id(p))))["rules"] == new


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_both_paths(srv, method):
    p = create_plan(srv, "Both", full_rules())
    new = {"events": [], "identify_traits": [], "group_traits": []}
    b = assert_ok(update(srv, plan_id(p), {"display_name": "My Updated Tracking Plan", "rules": new},
                         ["tracking_plan.display_name", "tracking_plan.rules"], method))
    assert (b["display_name"], b["rules"]) == ("My Updated Tracking Plan", new)


@pytest.mark.parametrize("part", ["events", "global", "identify", "group"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_rule_sub_path_replaces_only_that_part(srv, part, method):
    p = create_plan(srv, "Sub", full_rules())
    replacement = {
        "events": [event_rule("Signed Up", {"plan": {"type": "string", "enum": ["free", "pro"]}}, ["plan"]),
                   event_rule("Signed In", {})],
        "global": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
                   "properties": {"context": {}, "properties": {}, "traits": {}}},
        "identify": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                     "properties": {"traits": {"type": "object", "required": ["phone"]}}},
        "group": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                  "properties": {"traits": {"type": "object", "properties": {"size": {"type": "integer"}}}}},
    }[part]
    tp = {"display_name": "ignored", "rules": {part: replacement, "events": [], "global": {}, "identify": {},
                                               "group": {}}}
    tp["rules"][part] = replacement
    b = assert_ok(update(srv, plan_id(p), tp, [f"tracking_plan.rules.{part}"], method))
    want = full_rules()
    want[part] = replacement
    assert b["rules"] == want
    assert list(b["rules"]) == list(want)  # replaced in place, key order kept
    assert b["display_name"] == "Sub"
    assert assert_ok(srv.get(plan_path(plan_id(p))))["rules"] == want


@pytest.mark.parametrize("part", ["global", "identify", "group"])
def test_sub_path_without_value_removes_that_rule(srv, part):
    p = create_plan(srv, "Unset", full_rules())
    b = assert_ok(update(srv, plan_id(p), {"rules": {"events": []}}, [f"tracking_plan.rules.{part}"]))
    want = full_rules()
    del want[part]
    assert b["rules"] == want


def test_events_sub_path_without_value_empties_events(srv):
    p = create_plan(srv, "Unset", full_rules())
    b = assert_ok(update(srv, plan_id(p), {"rules": {}}, ["tracking_plan.rules.events"]))
    want = full_rules()
    want["events"] = []
    assert b["rules"] == want


def test_update_sub_paths_together(srv):
    p = create_plan(srv, "Multi", full_rules())
    ev = [event_rule("A", {})]
    b = assert_ok(update(srv, plan_id(p), {"rules": {"events": ev, "group": IDENTIFY}},
                         ["tracking_plan.rules.events", "tracking_plan.rules.group"], "PATCH"))
    want = full_rules()
    want["events"], want["group"] = ev, IDENTIFY
    assert b["rules"] == want


def test_update_without_paths_changes_nothing(srv):
    p = create_plan(srv, "Still", full_rules())
    time.sleep(0.01)
    for paths in (None, []):
        b = assert_ok(update(srv, plan_id(p), {"display_name": "changed", "rules": {"events": []}}, paths))
        assert b == p
    assert assert_ok(srv.get(plan_path(plan_id(p)))) == p


@pytest.mark.parametrize("path", ["tracking_plan.name", "tracking_plan.create_time", "tracking_plan.rules.nope",
                                  "tracking_plan.rules.identify_traits.x", "destination.enabled", "bogus",
                                  "tracking_plan.rules.events.0"])
def test_update_unknown_path_is_400(srv, path):
    p = create_plan(srv, "Unknown", full_rules())
    assert_error(update(srv, plan_id(p), {"display_name": "x"}, [path]), 400, 3)
    assert assert_ok(srv.get(plan_path(plan_id(p)))) == p


def test_update_with_invalid_rules_is_400_and_keeps_the_plan(srv):
    p = create_plan(srv, "Keep", full_rules())
    bad = {"events": [event_rule("E", {"x": {"type": "strnig"}})]}
    assert_error(update(srv, plan_id(p), {"rules": bad}, ["tracking_plan.rules"]), 400, 3)
    assert_error(update(srv, plan_id(p), {"rules": bad}, ["tracking_plan.rules.events"], "PATCH"), 400, 3)
    assert_error(update(srv, plan_id(p), {"rules": {"global": {"type": 5}}}, ["tracking_plan.rules.global"]), 400, 3)
    assert_error(update(srv, plan_id(p), {"display_name": ""}, ["tracking_plan.display_name"]), 400, 3)
    assert assert_ok(srv.get(plan_path(plan_id(p)))) == p


def test_update_missing_plan_is_404(srv):
    assert_error(update(srv, "rs_1AAPTLy8ffAAQth0PvL8rOvU6PJ", {"display_name": "x"},
                        ["tracking_plan.display_name"]), 404, 5)


# ---- delete --------------------------------------------------------------------------------

def test_delete_returns_empty_object(srv):
    p = create_plan(srv, "Doomed", full_rules())
    r = srv.delete(plan_path(plan_id(p)))
    assert r.status_code == 200 and r.text.strip() == "{}"
    assert_error(srv.get(plan_path(plan_id(p))), 404, 5)
    assert_error(srv.delete(plan_path(plan_id(p))), 404, 5)
    assert p["name"] not in {x["name"] for x in list_all(srv, PLANS, "tracking_plans", page_size=100)[0]}


def test_read_token_can_read_but_not_write(srv):
    p = create_plan(srv, "Scoped", full_rules())
    rt = srv.read_token
    assert_insufficient(srv.post(PLANS, json={"tracking_plan": {"display_name": "x"}}, token=rt))
    assert_insufficient(update(srv, plan_id(p), {"display_name": "x"}, ["tracking_plan.display_name"], token=rt))
    assert_insufficient(update(srv, plan_id(p), {"display_name": "x"}, ["tracking_plan.display_name"], "PATCH",
                               token=rt))
    assert_insufficient(srv.delete(plan_path(plan_id(p)), token=rt))
    assert assert_ok(srv.get(plan_path(plan_id(p)), token=rt)) == p
    assert_ok(srv.get(PLANS, token=rt))


# ---- verbatim round-trip -------------------------------------------------------------------

@pytest.mark.parametrize("path", plan_files(), ids=lambda p: p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1])
def test_every_example_plan_round_trips_exactly(srv, path):
    raw, plan = read_plan_file(path)
    want = ordered_member(raw, "rules")
    body = json.dumps({"tracking_plan": {"display_name": plan["display_name"], "rules": plan["rules"]}},
                      ensure_ascii=False).encode()
    r = srv.post(PLANS, data=body, headers={"Content-Type": "application/json"})
    b = assert_ok(r)
    assert ordered_member(r.text, "rules") == want
    assert b["display_name"] == plan["display_name"]
    pid = plan_id(b)
    r = srv.get(plan_path(pid))
    assert ordered_member(r.text, "rules") == want
    # ... in the list too.
    items = ordered(srv.get(PLANS + "?page_size=100").text)
    found = [p for p in dict(items[1])["tracking_plans"] if dict(p[1])["name"] == b["name"]]
    assert len(found) == 1 and dict(found[0][1])["rules"] == want
    # ... and after a PUT that replaces the rules with the same text.
    r = srv.request("PUT", plan_path(pid), data=json.dumps(
        {"update_mask": {"paths": ["tracking_plan.rules"]}, "tracking_plan": {"rules": plan["rules"]}}).encode())
    assert_ok(r)
    assert ordered_member(r.text, "rules") == want


def test_plans_replace_each_other_exactly(srv):
    files = plan_files()
    raw0, p0 = read_plan_file(files[0])
    b = create_plan(srv, p0["display_name"], p0["rules"])
    for f in files[1:] + files[:1]:
        raw, p = read_plan_file(f)
        r = update(srv, plan_id(b), {"rules": p["rules"]}, ["tracking_plan.rules"], "PATCH")
        assert_ok(r)
        assert ordered_member(r.text, "rules") == ordered_member(raw, "rules"), f
        assert ordered_member(srv.get(plan_path(plan_id(b))).text, "rules") == ordered_member(raw, "rules"), f


def test_unusual_values_round_trip_exactly(srv):
    """Key order that is not sorted, reals vs integers, big integers, unicode, unknown
    keywords, Segment's draft-04 `id`s and `labels`: all stored verbatim."""
    rules_text = ('{"events": [{"version": 3, "rules": {"type": "object", "$schema": '
                  '"http://json-schema.org/draft-04/schema#", "properties": {"properties": {"type": "object", '
                  '"properties": {"price": {"type": "number", "minimum": 0.01, "maximum": 1.0, "multipleOf": 0.01, '
                  '"id": "/properties/properties/properties/price"}, "qty": {"type": ["integer", "null"], '
                  '"maximum": 9007199254740993}, "zz": {"enum": ["é", "𝄞", null, 1, 1.5, true, {"b": 1, "a": 2}]}, '
                  '"aa": {"description": "", "labels": {"team": "checkout"}, "x-custom": [{}, []]}}}}}, '
                  '"name": "Zed \\u2028 Event", "description": "d"}], "group_traits": [{"name": "plan"}], "identify_traits": ["email", "name"]}')
    body = '{"tracking_plan": {"display_name": "Unusual", "rules": ' + rules_text + "}}"
    r = srv.post(PLANS, data=body.encode())
    b = assert_ok(r)
    assert ordered_member(r.text, "rules") == ordered(rules_text)
    assert ordered_member(srv.get(plan_path(plan_id(b))).text, "rules") == ordered(rules_text)
    qty = b["rules"]["events"][0]["rules"]["properties"]["properties"]["properties"]["qty"]
    assert qty["maximum"] == 9007199254740993


def test_version_is_echoed_only_when_given(srv):
    b = create_plan(srv, rules={"events": [{"name": "No Version", "rules": {"type": "object"}},
                                           {"name": "With Version", "version": 1}]})
    assert "version" not in b["rules"]["events"][0]
    assert b["rules"]["events"][1] == {"name": "With Version", "version": 1}


# ---- rule validation -----------------------------------------------------------------------

@pytest.mark.parametrize("schema,pointer", [
    ({"type": "object", "properties": {"properties": {"type": "object", "properties": {
        "x": {"type": "strnig"}}}}}, "/properties/properties/properties/x/type"),
    ({"type": "object", "properties": {"properties": {"minLength": -1}}}, "/properties/properties/minLength"),
    ({"type": "object", "required": "properties"}, "/required"),
    ({"type": "object", "properties": {"properties": {"pattern": "(unclosed"}}}, "/properties/properties/pattern"),
    ({"type": "object", "properties": {"properties": {"$ref": "#/definitions/missing"}}},
     "/properties/properties/$ref"),
    ({"$schema": "http://json-schema.org/draft-99/schema#", "type": "object"}, "/$schema"),
    ({"type": "object", "properties": {"properties": {"enum": "a"}}}, "/properties/properties/enum"),
])
def test_invalid_event_rule_names_the_event_and_the_pointer(srv, schema, pointer):
    ev = [event_rule("Good Event", {}), {"name": "Broken Event", "version": 1, "rules": schema}]
    e = assert_error(srv.post(PLANS, json={"tracking_plan": {"display_name": "Bad", "rules": {"events": ev}}}), 400, 3)
    assert "Broken Event" in e["error"], e
    assert "Good Event" not in e["error"], e
    assert pointer in e["error"], (pointer, e)


@pytest.mark.parametrize("part", ["global", "identify", "group"])
def test_invalid_common_rule_names_the_rule_and_the_pointer(srv, part):
    rules = {"events": [], part: {"type": "object", "properties": {"traits": {"type": "object",
                                                                            "maxProperties": "3"}}}}
    e = assert_error(srv.post(PLANS, json={"tracking_plan": {"display_name": "Bad", "rules": rules}}), 400, 3)
    assert part in e["error"], e
    assert "/properties/traits/maxProperties" in e["error"], e


def test_duplicate_event_name_and_version_is_400(srv):
    for evs in ([event_rule("Dup", {}, version=1), event_rule("Other", {}), event_rule("Dup", {}, version=1)],
                [event_rule("Dup", {}), event_rule("Dup", {})]):
        e = assert_error(srv.post(PLANS, json={"tracking_plan": {"display_name": "D", "rules": {"events": evs}}}),
                         400, 3)
        assert "Dup" in e["error"], e
    # The same name with different versions is fine; names are case-sensitive.
    b = create_plan(srv, "Versions", {"events": [event_rule("Dup", {}, version=1), event_rule("Dup", {}, version=2),
                                                 event_rule("dup", {}, version=1)]})
    assert [(e["name"], e["version"]) for e in b["rules"]["events"]] == [("Dup", 1), ("Dup", 2), ("dup", 1)]
    # A duplicate introduced by an update is refused too.
    r = update(srv, plan_id(b), {"rules": {"events": [event_rule("X", {}, version=1), event_rule("X", {}, version=1)]}},
               ["tracking_plan.rules.events"])
    assert_error(r, 400, 3)


# ---- a large plan --------------------------------------------------------------------------

def big_rules(n, tag, wide=False):
    """n event rules shaped like the plans in tests/data/tracking-plans; wide=True adds the
    properties a real e-commerce plan carries, about 1 KB per rule (2,000 rules ≈ 2 MB)."""
    events = []
    for i in range(n):
        props = {
            "order_id": {"type": "string", "description": "Order identifier", "minLength": 1},
            "total": {"type": ["number", "null"], "minimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "coupon": {"type": ["string", "null"]},
            "products": {"type": "array", "items": {"type": "object", "properties": {
                "product_id": {"type": "string"}, "price": {"type": "number"}}}},
        }
        if wide:
            props.update({
                "affiliation": {"type": "string", "description": "Store or affiliation the order came from"},
                "shipping": {"type": "number", "minimum": 0, "description": "Shipping cost"},
                "tax": {"type": "number", "minimum": 0, "description": "Total tax"},
                "discount": {"type": "number", "minimum": 0, "description": "Total discount"},
                "checkout_step": {"type": "integer", "enum": [1, 2, 3, 4]},
            })
        events.append(event_rule(f"{tag} Event {i:04d}", props, ["order_id", "total"], version=1 + i % 3,
                                 description=f"Event number {i} of the big plan"))
    return {"events": events, "identify_traits": [], "group_traits": []}


MIB = 1 << 20


def post_headers_only(srv, path, length, chunked=False, method="POST"):
    """Sends a POST's headers and only then the body, reading the answer as soon as it
    comes: a refusal must come from the headers, before the body is read."""
    s = connect_raw(srv.port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    s.sendall((f"{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
               f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode())
    return s


def test_plan_with_2000_event_rules(start_server, record_property):
    """A real 2,000-rule plan is about 2 MB: with the default flags it is created and
    replaced (tracking-plan create/update take --max-plan-body, 8 MiB), while any other
    route keeps --max-body (1 MiB) and refuses a 2 MB body before reading it."""
    rules = big_rules(2000, "Big", wide=True)
    body = json.dumps({"tracking_plan": {"display_name": "Big", "rules": rules}}).encode()
    record_property("create_body_bytes", len(body))
    assert 1.9 * MIB < len(body) < 3 * MIB, len(body)
    s = start_server("--rate-limit", "0")
    r = s.post(PLANS, data=body, timeout=120)
    b = assert_ok(r)
    assert len(b["rules"]["events"]) == 2000
    assert ordered_member(r.text, "rules") == ordered(json.dumps(rules))
    pid = plan_id(b)
    rules2 = big_rules(2000, "Replaced", wide=True)
    body2 = json.dumps({"update_mask": {"paths": ["tracking_plan.rules"]},
                        "tracking_plan": {"rules": rules2}}).encode()
    record_property("replace_body_bytes", len(body2))
    assert len(body2) > 1.9 * MIB
    for method in ("PUT", "PATCH"):
        r = s.request(method, plan_path(pid), data=body2, timeout=120)
        assert_ok(r)
        assert ordered_member(r.text, "rules") == ordered(json.dumps(rules2))
    r = s.get(plan_path(pid), timeout=120)
    assert ordered_member(r.text, "rules") == ordered(json.dumps(rules2))
    # The replaced plan validates against its new rules.
    v = assert_ok(s.post(plan_path(pid) + ":validate", json={"events": [
        {"type": "track", "event": "Replaced Event 1999", "properties": {"order_id": "o", "total": 1}},
        {"type": "track", "event": "Big Event 0001", "properties": {}}]}))
    assert [x["valid"] for x in v["results"]] == [True, False]
    assert v["results"][1]["violations"][0]["type"] == "Unplanned-Event"
    # Any other route: 413 from the Content-Length, JSON body, before the body is sent.
    src = json.dumps({"source": {"name": f"workspaces/{WS}/sources/big", "catalog_name": "catalog/sources/javascript",
                                 "settings": {"pad": "x" * (2 * MIB)}}}).encode()
    sock = post_headers_only(s, f"/v1beta/workspaces/{WS}/sources", len(src))
    try:
        r = read_raw(sock, timeout=10)
        assert r is not None and r.status == 413, r and (r.status, r.body[:200])
        assert r.headers.get("content-type", "").startswith("application/json")
        assert r.json() == {"error": "request body too large", "code": 3}
    finally:
        sock.close()
    # the plan collection with a method that has no route keeps the default limit too
    sock = post_headers_only(s, PLANS, len(body), method="DELETE")
    try:
        assert_raw_413(read_raw(sock, timeout=10))
    finally:
        sock.close()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_max_plan_body_changes_the_plan_limit(start_server, monkeypatch, how):
    """--max-plan-body (MANIFOLD_MAX_PLAN_BODY) sets the plan routes' limit, and only theirs."""
    rules = big_rules(2000, "Big", wide=True)
    body = json.dumps({"tracking_plan": {"display_name": "Big", "rules": rules}}).encode()
    limit = 1536 * 1024  # above --max-body, below the plan
    if how == "flag":
        s = start_server("--rate-limit", "0", "--max-plan-body", str(limit))
    else:
        monkeypatch.setenv("MANIFOLD_MAX_PLAN_BODY", str(limit))
        s = start_server("--rate-limit", "0")
    sock = post_headers_only(s, PLANS, len(body))
    try:
        assert_raw_413(read_raw(sock, timeout=10))
    finally:
        sock.close()
    # A 1.2 MB plan: above --max-body, within --max-plan-body.
    small = json.dumps({"tracking_plan": {"display_name": "Mid", "rules": big_rules(1200, "Mid", wide=True)}}).encode()
    assert MIB < len(small) < limit, len(small)
    assert len(assert_ok(s.post(PLANS, data=small, timeout=120))["rules"]["events"]) == 1200
    # --max-body still governs everything else, and a smaller --max-plan-body never
    # lowers the plan routes below it.
    s2 = start_server("--rate-limit", "0", "--max-body", str(4 * MIB), "--max-plan-body", "2048")
    assert_ok(s2.post(PLANS, data=body, timeout=120))


def test_chunked_plan_over_the_limit(start_server):
    """Without a Content-Length the limit is enforced while reading: 413, JSON. A chunked
    plan between --max-body and --max-plan-body is accepted."""
    s = start_server("--rate-limit", "0", "--max-plan-body", str(2 * MIB))
    rules = big_rules(2000, "Big", wide=True)
    body = json.dumps({"tracking_plan": {"display_name": "Big", "rules": rules}}).encode()
    big = body + b" " * (2 * MIB + 1 - len(body)) if len(body) <= 2 * MIB else body
    assert len(big) > 2 * MIB
    ok = json.dumps({"tracking_plan": {"display_name": "Mid", "rules": big_rules(1200, "Mid", wide=True)}}).encode()
    assert MIB < len(ok) < 2 * MIB
    for data, want in ((big, 413), (ok, 200)):
        sock = post_headers_only(s, PLANS, None, chunked=True)
        try:
            for i in range(0, len(data), 64 * 1024):
                part = data[i:i + 64 * 1024]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            sock.sendall(b"0\r\n\r\n")
            r = read_raw(sock, timeout=60)
        finally:
            sock.close()
        if want == 413:
            assert_raw_413(r)
        else:
            assert r is not None and r.status == 200, r and (r.status, r.body[:300])
            assert len(r.json()["rules"]["events"]) == 1200


def assert_raw_413(r):
    assert r is not None and r.status == 413, r and (r.status, r.body[:200])
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.json() == {"error": "request body too large", "code": 3}


# ---- source connections ----------------------------------------------------------------------

def new_sources(srv, n):
    slugs = [uniq("c") for _ in range(n)]
    for s in slugs:
        create_source(srv, s)
    return slugs


def conns(srv, pid, **kw):
    items, _ = list_all(srv, conn_path(pid), "connections", **kw)
    return items


def connect(srv, pid, slug, **kw):
    return srv.post(conn_path(pid), json={"source_name": src_name(slug)}, **kw)


def test_connect_one_source(srv):
    p = create_plan(srv)
    pid = plan_id(p)
    (slug,) = new_sources(srv, 1)
    b = assert_ok(connect(srv, pid, slug))
    assert b == {"source_name": src_name(slug), "tracking_plan_id": pid}
    assert assert_ok(srv.get(conn_path(pid))) == {"connections": [b], "next_page_token": ""}


def test_batch_create_connections(srv):
    pid = plan_id(create_plan(srv))
    slugs = new_sources(srv, 3)
    r = srv.post(conn_path(pid) + ":batchCreateConnections", json={"source_names": [src_name(s) for s in slugs]})
    b = assert_ok(r)
    assert b == {"connections": [{"source_name": src_name(s), "tracking_plan_id": pid} for s in slugs]}
    listed = conns(srv, pid)
    assert sorted(c["source_name"] for c in listed) == sorted(src_name(s) for s in slugs)
    assert all(c["tracking_plan_id"] == pid for c in listed)


def test_batch_is_all_or_nothing(srv):
    pid = plan_id(create_plan(srv))
    other = plan_id(create_plan(srv))
    slugs = new_sources(srv, 3)
    taken = new_sources(srv, 1)[0]
    assert_ok(connect(srv, other, taken))
    url = conn_path(pid) + ":batchCreateConnections"
    # An unknown source in the middle: 404, nothing connected.
    names = [src_name(slugs[0]), src_name(uniq("ghost")), src_name(slugs[1])]
    assert_error(srv.post(url, json={"source_names": names}), 404, 5)
    assert conns(srv, pid) == []
    # A source already connected elsewhere: 409, nothing connected.
    names = [src_name(slugs[0]), src_name(slugs[1]), src_name(taken)]
    assert_error(srv.post(url, json={"source_names": names}), 409, 6)
    assert conns(srv, pid) == []
    assert [c["source_name"] for c in conns(srv, other)] == [src_name(taken)]
    # The same source twice in one batch: 409, nothing connected.
    assert_error(srv.post(url, json={"source_names": [src_name(slugs[2]), src_name(slugs[2])]}), 409, 6)
    assert conns(srv, pid) == []
    # A malformed name: 400, nothing connected.
    assert_error(srv.post(url, json={"source_names": [src_name(slugs[0]), "workspaces/other/sources/x"]}), 400, 3)
    assert_error(srv.post(url, json={"source_names": [src_name(slugs[0]), 5]}), 400, 3)
    assert conns(srv, pid) == []
    # After all that the sources are still free to connect.
    assert_ok(srv.post(url, json={"source_names": [src_name(s) for s in slugs]}))
    assert len(conns(srv, pid)) == 3


@pytest.mark.parametrize("body", [{}, {"source_names": []}, {"source_names": "x"}, {"source_name": "x"}])
def test_batch_bad_bodies_are_400(srv, body):
    pid = plan_id(create_plan(srv))
    assert_error(srv.post(conn_path(pid) + ":batchCreateConnections", json=body), 400, 3)


@pytest.mark.parametrize("body", [{}, {"source_name": ""}, {"source_name": 5}, {"source_names": ["x"]}])
def test_single_bad_bodies_are_400(srv, body):
    pid = plan_id(create_plan(srv))
    assert_error(srv.post(conn_path(pid), json=body), 400, 3)


def test_a_source_belongs_to_at_most_one_plan(srv):
    a, b = plan_id(create_plan(srv)), plan_id(create_plan(srv))
    (slug,) = new_sources(srv, 1)
    assert_ok(connect(srv, a, slug))
    assert_error(connect(srv, b, slug), 409, 6)
    assert_error(connect(srv, a, slug), 409, 6)  # the same plan again
    assert conns(srv, b) == []
    assert [c["source_name"] for c in conns(srv, a)] == [src_name(slug)]


def test_unknown_source_or_plan_is_404(srv):
    pid = plan_id(create_plan(srv))
    assert_error(connect(srv, pid, uniq("ghost")), 404, 5)
    (slug,) = new_sources(srv, 1)
    ghost = "rs_1AAPTLy8ffAAQth0PvL8rOvU6PJ"
    assert_error(connect(srv, ghost, slug), 404, 5)
    assert_error(srv.post(conn_path(ghost) + ":batchCreateConnections", json={"source_names": [src_name(slug)]}),
                 404, 5)
    assert_error(srv.get(conn_path(ghost)), 404, 5)
    assert_error(srv.delete(conn_path(ghost) + "/" + slug), 404, 5)
    # The failed attempts left the source free.
    assert_ok(connect(srv, pid, slug))


def test_delete_connection_returns_exactly_empty_object(srv):
    pid = plan_id(create_plan(srv))
    slugs = new_sources(srv, 2)
    for s in slugs:
        assert_ok(connect(srv, pid, s))
    r = srv.delete(conn_path(pid) + "/" + slugs[0])
    assert r.status_code == 200
    assert r.text.strip() == "{}"  # the ajbosco client needs exactly this
    assert [c["source_name"] for c in conns(srv, pid)] == [src_name(slugs[1])]
    assert_error(srv.delete(conn_path(pid) + "/" + slugs[0]), 404, 5)
    # The source is free again, for any plan.
    other = plan_id(create_plan(srv))
    assert_ok(connect(srv, other, slugs[0]))


def test_delete_connection_under_the_wrong_plan_is_404(srv):
    a, b = plan_id(create_plan(srv)), plan_id(create_plan(srv))
    (slug,) = new_sources(srv, 1)
    assert_ok(connect(srv, a, slug))
    assert_error(srv.delete(conn_path(b) + "/" + slug), 404, 5)
    assert [c["source_name"] for c in conns(srv, a)] == [src_name(slug)]
    assert_error(connect(srv, b, slug), 409, 6)


def test_connection_list_is_paginated(srv):
    pid = plan_id(create_plan(srv))
    slugs = new_sources(srv, 5)
    assert_ok(srv.post(conn_path(pid) + ":batchCreateConnections", json={"source_names": [src_name(s) for s in slugs]}))
    items, pages = list_all(srv, conn_path(pid), "connections", page_size=2)
    assert pages == 3
    assert [c["source_name"] for c in items] == sorted(src_name(s) for s in slugs)
    assert_error(srv.get(conn_path(pid) + "?page_token=garbage%25"), 400, 3)


def test_deleting_a_plan_removes_its_connections(srv):
    p = plan_id(create_plan(srv))
    slugs = new_sources(srv, 2)
    for s in slugs:
        assert_ok(connect(srv, p, s))
    assert srv.delete(plan_path(p)).text.strip() == "{}"
    assert_error(srv.get(conn_path(p)), 404, 5)
    # The sources are free: they can join another plan.
    q = plan_id(create_plan(srv))
    for s in slugs:
        assert_ok(connect(srv, q, s))
    assert len(conns(srv, q)) == 2


def test_deleting_a_source_removes_its_connection(srv):
    p = plan_id(create_plan(srv))
    slugs = new_sources(srv, 2)
    for s in slugs:
        assert_ok(connect(srv, p, s))
    assert srv.delete(src_path(slugs[0])).text.strip() == "{}"
    assert [c["source_name"] for c in conns(srv, p)] == [src_name(slugs[1])]
    assert_error(srv.delete(conn_path(p) + "/" + slugs[0]), 404, 5)
    # A new source with the same slug starts unconnected.
    create_source(srv, slugs[0])
    q = plan_id(create_plan(srv))
    assert_ok(connect(srv, q, slugs[0]))
    assert [c["source_name"] for c in conns(srv, p)] == [src_name(slugs[1])]


def test_connections_need_write_scope_to_change(srv):
    pid = plan_id(create_plan(srv))
    slugs = new_sources(srv, 2)
    assert_ok(connect(srv, pid, slugs[0]))
    rt = srv.read_token
    assert_insufficient(connect(srv, pid, slugs[1], token=rt))
    assert_insufficient(srv.post(conn_path(pid) + ":batchCreateConnections",
                                 json={"source_names": [src_name(slugs[1])]}, token=rt))
    assert_insufficient(srv.delete(conn_path(pid) + "/" + slugs[0], token=rt))
    assert [c["source_name"] for c in conns(srv, pid, token=rt)] == [src_name(slugs[0])]


# ---- workspaces ------------------------------------------------------------------------------

def test_plans_and_connections_stay_in_their_workspace(start_server):
    s = start_server("--rate-limit", "0")
    s.add_workspace("otherws", "oth1234567")
    t2 = s.create_token(workspace="otherws")
    other = "/v1beta/workspaces/otherws/tracking-plans"
    p = create_plan(s, "Mine", full_rules())
    pid = plan_id(p)
    # Not visible from the other workspace, and its token has no access to this one.
    assert_error(s.get(f"{other}/{pid}", token=t2), 404, 5)
    assert assert_ok(s.get(other, token=t2)) == {"tracking_plans": [], "next_page_token": ""}
    assert_error(s.post(f"{other}/{pid}:validate", json={"events": []}, token=t2), 404, 5)
    assert_error(s.get(plan_path(pid), token=t2), 403, 7)
    # A plan of the other workspace cannot take this workspace's source.
    q = assert_ok(s.post(other, json={"tracking_plan": {"display_name": "Theirs"}}, token=t2))
    assert q["name"].startswith("workspaces/otherws/tracking-plans/rs_")
    (slug,) = new_sources(s, 1)
    assert_error(s.post(f"{other}/{plan_id(q)}/source-connections", json={"source_name": src_name(slug)}, token=t2),
                 400, 3)
    assert_ok(connect(s, pid, slug))
    # The same plan reached through the workspace id answers the slug form.
    ws_id = assert_ok(s.get(WS_PATH))["id"]
    b = assert_ok(s.get(f"/v1beta/workspaces/{ws_id}/tracking-plans/{pid}"))
    assert b == assert_ok(s.get(plan_path(pid)))
    c = assert_ok(s.get(f"/v1beta/workspaces/{ws_id}/tracking-plans/{pid}/source-connections"))
    assert c["connections"] == [{"source_name": src_name(slug), "tracking_plan_id": pid}]


def test_one_plan_per_source_under_concurrent_connects(start_server):
    """Eight plans race to connect the same source: exactly one wins, the others get 409/6."""
    import concurrent.futures
    s = start_server("--rate-limit", "0")
    for trial in range(4):
        pids = [plan_id(create_plan(s)) for _ in range(8)]
        (slug,) = new_sources(s, 1)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(lambda pid: connect(s, pid, slug), pids))
        won = [pid for pid, r in zip(pids, rs) if r.status_code == 200]
        assert len(won) == 1, [(r.status_code, r.text) for r in rs]
        for r in rs:
            if r.status_code != 200:
                assert_error(r, 409, 6)
        assert [len(conns(s, pid)) for pid in pids] == [1 if pid == won[0] else 0 for pid in pids]


def test_connect_racing_a_plan_delete_leaves_no_orphan(start_server):
    """Connects racing the deletion of their plan: whatever the order, afterwards every
    source is free to join another plan (a connection committed into a plan that is being
    deleted must not leave the source marked as connected to a plan that no longer exists)."""
    import concurrent.futures
    s = start_server("--rate-limit", "0")
    stuck = []
    for trial in range(25):
        pid = plan_id(create_plan(s))
        slugs = new_sources(s, 3)
        jobs = [lambda sl=sl: connect(s, pid, sl) for sl in slugs[:2]] + [lambda: s.delete(plan_path(pid))] + \
               [lambda: connect(s, pid, slugs[2])]
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            rs = list(ex.map(lambda f: f(), jobs))
        for r in rs:
            if r.status_code != 200:
                assert_error(r, 404, 5)
        assert_error(s.get(plan_path(pid)), 404, 5)
        q = plan_id(create_plan(s))
        for sl in slugs:
            r = connect(s, q, sl)
            if r.status_code != 200:
                stuck.append((trial, [x.status_code for x in rs], r.status_code, r.text))
    assert not stuck, stuck


def test_connect_racing_a_source_delete_leaves_no_orphan(start_server):
    """A connect racing the deletion of its source: afterwards the plan lists no connection
    for a source that does not exist, and a new source with that slug is free."""
    import concurrent.futures
    s = start_server("--rate-limit", "0")
    bad = []
    for trial in range(25):
        pid = plan_id(create_plan(s))
        (slug,) = new_sources(s, 1)
        jobs = [lambda: connect(s, pid, slug), lambda: s.delete(src_path(slug))]
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            rs = list(ex.map(lambda f: f(), jobs))
        assert rs[1].status_code == 200, rs[1].text
        if rs[0].status_code != 200:
            assert_error(rs[0], 404, 5)
        listed = [c["source_name"] for c in conns(s, pid)]
        create_source(s, slug)
        q = plan_id(create_plan(s))
        r = connect(s, q, slug)
        if listed or r.status_code != 200:
            bad.append((trial, rs[0].status_code, listed, r.status_code, r.text))
    assert not bad, bad


def test_concurrent_sub_path_updates_all_survive(start_server):
    """PATCHes of different rules.* sub-paths at once: each one answered 200 is in the result."""
    import concurrent.futures
    s = start_server("--rate-limit", "0")
    vals = {"events": [event_rule("E", {})], "global": {"type": "object"},
            "identify": {"type": "object", "title": "i"}, "group": {"type": "object", "title": "g"}}
    for trial in range(6):
        pid = plan_id(create_plan(s, "L", {"events": []}))

        def go(part):
            return update(s, pid, {"rules": {part: vals[part]}}, [f"tracking_plan.rules.{part}"], "PATCH")
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            rs = dict(zip(vals, ex.map(go, list(vals))))
        final = assert_ok(s.get(plan_path(pid)))["rules"]
        for part, r in rs.items():
            assert r.status_code == 200, r.text
            assert final[part] == vals[part], (part, final)

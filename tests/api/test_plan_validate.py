"""POST .../tracking-plans/{id}:validate (beyond Segment) and `manifold schema validate`:
the response shape, every violation type, every failing keyword, where required and
additionalProperties violations point, which rule applies to an event (delivery.md §2.2:
exact name, context.protocols.event_version else the oldest version, identify/group rules,
the global rule; page/screen/alias never checked), the 500 KB limit, and the CLI's exit
statuses and one-line-per-instance output."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, ROOT, sanitizer_lines
from helpers_fp import *  # noqa: F401,F403

D7 = "http://json-schema.org/draft-07/schema#"
D4 = "http://json-schema.org/draft-04/schema#"
VTYPES = {"Unplanned-Event", "Required-Missing", "Datatype-Mismatch", "Additional-Properties", "Enum-Mismatch",
          "Pattern-Mismatch", "Range-Mismatch", "Schema-Mismatch"}

ORDER_RULE = {"$schema": D7, "type": "object", "required": ["properties"], "properties": {"properties": {
    "type": "object", "additionalProperties": False, "required": ["order_id", "total"], "properties": {
        "order_id": {"type": "string"},
        "total": {"type": "number", "minimum": 0, "maximum": 100},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "status": {"enum": ["new", "paid"]},
        "kind": {"const": "web"},
        "tags": {"type": "array", "uniqueItems": True, "maxItems": 2},
        "code": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[0-9]+$"},
        "n": {"not": {"type": "integer"}},
        "q": {"multipleOf": 5},
        "excl": {"exclusiveMinimum": 10},
        "one": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "nothing": False,
    }}}}

GLOBAL = {"$schema": D7, "type": "object", "properties": {
    "context": {"type": "object", "required": ["library"], "properties": {
        "library": {"type": "object", "required": ["name"]}}}}}

IDENTIFY = {"$schema": D7, "type": "object", "properties": {"traits": {
    "type": "object", "required": ["email"], "properties": {"email": {"type": "string", "pattern": "@"}}}}}

GROUP = {"$schema": D4, "type": "object", "properties": {"traits": {
    "type": "object", "required": ["name"], "properties": {"employees": {"type": "integer", "minimum": 0,
                                                                           "exclusiveMinimum": True}}}}}


def versioned(v, required_prop):
    return {"name": "Signed Up", "version": v, "description": f"v{v}", "rules": {
        "$schema": D7, "type": "object", "required": ["properties"], "properties": {"properties": {
            "type": "object", "required": [required_prop]}}}}


def plan_rules(with_global=True):
    r = {"events": [{"name": "Order Completed", "version": 1, "rules": ORDER_RULE},
                    # Listed newest first: "oldest" must mean the lowest version, not the first entry.
                    versioned(3, "v3_only"), versioned(1, "v1_only"), versioned(2, "v2_only"),
                    {"name": "No Rule", "description": "anything goes"},
                    {"name": "Draft4 Event", "version": 1, "rules": {"$schema": D4, "type": "object", "properties": {
                        "properties": {"type": "object", "properties": {
                            "age": {"type": "integer", "minimum": 18, "exclusiveMinimum": True}}}}}}],
         "identify": IDENTIFY, "group": GROUP, "identify_traits": [], "group_traits": []}
    if with_global:
        r["global"] = GLOBAL
    return r


CTX = {"library": {"name": "analytics.js", "version": "1.0"}}


def track(name, props=None, **extra):
    e = {"type": "track", "event": name, "userId": "u1", "context": json.loads(json.dumps(CTX))}
    if props is not None:
        e["properties"] = props
    e.update(extra)
    return e


@pytest.fixture(scope="module")
def plan(srv):
    return plan_id(create_plan(srv, "Validation plan", plan_rules()))


def validate(srv, pid, events, **kw):
    return srv.post(plan_path(pid) + ":validate", json={"events": events}, **kw)


def results(srv, pid, events):
    b = assert_ok(validate(srv, pid, events))
    assert set(b) == {"results"}, b
    assert len(b["results"]) == len(events)
    for i, r in enumerate(b["results"]):
        check_result(r, i)
    return b["results"]


def check_result(r, i):
    assert set(r) == {"index", "event", "planned", "valid", "violations"}, r
    assert r["index"] == i
    assert isinstance(r["planned"], bool) and isinstance(r["valid"], bool)
    assert isinstance(r["violations"], list)
    assert r["valid"] == (not r["violations"]), r
    for v in r["violations"]:
        assert set(v) == {"type", "path", "keyword", "message"}, v
        assert v["type"] in VTYPES, v
        assert isinstance(v["path"], str) and (v["path"] == "" or v["path"].startswith("/")), v
        assert isinstance(v["keyword"], str) and isinstance(v["message"], str) and v["message"], v


def one(srv, pid, event):
    return results(srv, pid, [event])[0]


def triples(r):
    return {(v["type"], v["keyword"], v["path"]) for v in r["violations"]}


# ---- shape and the happy path -----------------------------------------------------------------

def test_valid_event(srv, plan):
    r = one(srv, plan, track("Order Completed", {"order_id": "o1", "total": 10, "currency": "USD"}))
    assert r == {"index": 0, "event": "Order Completed", "planned": True, "valid": True, "violations": []}


def test_empty_event_list(srv, plan):
    assert assert_ok(validate(srv, plan, [])) == {"results": []}


def test_indexes_follow_the_request(srv, plan):
    evs = [track("Order Completed", {"order_id": "o", "total": 1}), track("Nope"), {"type": "page", "name": "x"},
           track("Order Completed", {"order_id": 5, "total": 1})]
    rs = results(srv, plan, evs)
    assert [r["valid"] for r in rs] == [True, False, True, False]
    assert [r["event"] for r in rs[:2]] == ["Order Completed", "Nope"]


# ---- every violation type, every failing keyword -------------------------------------------

def test_every_failing_keyword_is_reported(srv, plan):
    ev = track("Order Completed", {"total": "x", "currency": "usd", "status": "bad", "kind": "app",
                                   "tags": [1, 1, 2], "code": "a", "n": 3, "q": 7, "excl": 10, "one": None,
                                   "nothing": 1, "extra": 1})
    r = one(srv, plan, ev)
    assert r["planned"] is True and r["valid"] is False
    want = {
        ("Required-Missing", "required", "/properties/order_id"),
        ("Datatype-Mismatch", "type", "/properties/total"),
        ("Pattern-Mismatch", "pattern", "/properties/currency"),
        ("Enum-Mismatch", "enum", "/properties/status"),
        ("Enum-Mismatch", "const", "/properties/kind"),
        ("Range-Mismatch", "maxItems", "/properties/tags"),
        ("Schema-Mismatch", "uniqueItems", "/properties/tags"),
        ("Range-Mismatch", "minLength", "/properties/code"),
        ("Pattern-Mismatch", "pattern", "/properties/code"),
        ("Schema-Mismatch", "not", "/properties/n"),
        ("Range-Mismatch", "multipleOf", "/properties/q"),
        ("Range-Mismatch", "exclusiveMinimum", "/properties/excl"),
        ("Schema-Mismatch", "oneOf", "/properties/one"),
        ("Schema-Mismatch", "false", "/properties/nothing"),
        ("Additional-Properties", "additionalProperties", "/properties/extra"),
    }
    got = triples(r)
    missing = want - got
    assert not missing, (missing, r["violations"])
    # The ones a subschema may add (oneOf's branches) are all Datatype-Mismatch on that path.
    for extra in got - want:
        assert extra[2] == "/properties/one", (extra, r["violations"])


@pytest.mark.parametrize("props,want", [
    ({"order_id": "o", "total": 101}, ("Range-Mismatch", "maximum", "/properties/total")),
    ({"order_id": "o", "total": -1}, ("Range-Mismatch", "minimum", "/properties/total")),
    ({"order_id": "o", "total": 1, "code": "12345"}, ("Range-Mismatch", "maxLength", "/properties/code")),
    ({"order_id": "o", "total": 1, "currency": "usd"}, ("Pattern-Mismatch", "pattern", "/properties/currency")),
    ({"order_id": "o", "total": 1, "status": None}, ("Enum-Mismatch", "enum", "/properties/status")),
    ({"order_id": ["o"], "total": 1}, ("Datatype-Mismatch", "type", "/properties/order_id")),
    ({"total": 1}, ("Required-Missing", "required", "/properties/order_id")),
    ({"order_id": "o", "total": 1, "surprise": {}}, ("Additional-Properties", "additionalProperties",
                                                      "/properties/surprise")),
    ({"order_id": "o", "total": 1, "tags": ["a", "a"]}, ("Schema-Mismatch", "uniqueItems", "/properties/tags")),
])
def test_single_violations(srv, plan, props, want):
    r = one(srv, plan, track("Order Completed", props))
    assert triples(r) == {want}, r


def test_more_keywords(srv):
    rule = {"$schema": D7, "type": "object", "properties": {"properties": {
        "type": "object", "dependencies": {"card": ["cvv"]}, "minProperties": 2, "maxProperties": 4,
        "propertyNames": {"pattern": "^[a-z]+$"},
        "properties": {"items": {"type": "array", "contains": {"type": "integer"}},
                       "kind": {"type": "string"}, "amount": {"type": "number"}},
        "if": {"properties": {"kind": {"const": "refund"}}}, "then": {"required": ["amount"]}}}}
    pid = plan_id(create_plan(srv, rules={"events": [{"name": "E", "rules": rule}]}))
    rs = results(srv, pid, [
        track("E", {"card": "x", "items": ["a"], "kind": "refund", "Bad": 1, "z": 1}),
        track("E", {}),
        track("E", {"card": "x", "cvv": "1", "items": [1], "kind": "sale"})])
    assert triples(rs[0]) == {
        ("Required-Missing", "required", "/properties/amount"),        # if/then
        ("Range-Mismatch", "maxProperties", "/properties"),
        ("Schema-Mismatch", "contains", "/properties/items"),
        ("Required-Missing", "dependencies", "/properties/cvv"),       # points at the missing property
        ("Schema-Mismatch", "propertyNames", "/properties/Bad")}, rs[0]
    assert triples(rs[1]) == {("Required-Missing", "required", "/properties/amount"),
                              ("Range-Mismatch", "minProperties", "/properties")}, rs[1]
    assert rs[2]["valid"], rs[2]


def test_refs_and_definitions(srv):
    rule = {"$schema": D7, "type": "object", "definitions": {"product": {
        "type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"},
                                                             "price": {"$ref": "#/definitions/money"}}},
        "money": {"type": "number", "minimum": 0}},
        "properties": {"properties": {"type": "object", "properties": {
            "products": {"type": "array", "items": {"$ref": "#/definitions/product"}}}}}}
    pid = plan_id(create_plan(srv, rules={"events": [{"name": "Cart", "version": 1, "rules": rule}]}))
    r = one(srv, pid, track("Cart", {"products": [{"sku": "a", "price": 1}, {"price": -1}, {"sku": 5}]}))
    assert triples(r) == {("Required-Missing", "required", "/properties/products/1/sku"),
                          ("Range-Mismatch", "minimum", "/properties/products/1/price"),
                          ("Datatype-Mismatch", "type", "/properties/products/2/sku")}, r


def test_required_and_additional_properties_point_at_the_property(srv, plan):
    r = one(srv, plan, track("Order Completed"))  # no properties at all
    assert triples(r) == {("Required-Missing", "required", "/properties")}, r
    r = one(srv, plan, track("Order Completed", {"order_id": "o", "total": 1, "a b/c~d": 1}))
    # JSON pointer escaping: "/" → "~1", "~" → "~0"
    assert triples(r) == {("Additional-Properties", "additionalProperties", "/properties/a b~1c~0d")}, r


def test_draft04_rules_use_draft04_semantics(srv, plan):
    ok = one(srv, plan, track("Draft4 Event", {"age": 19}))
    assert ok["valid"], ok
    r = one(srv, plan, track("Draft4 Event", {"age": 18}))  # boolean exclusiveMinimum
    assert triples(r) == {("Range-Mismatch", "minimum", "/properties/age")} or \
        triples(r) == {("Range-Mismatch", "exclusiveMinimum", "/properties/age")}, r


def test_event_without_rules_is_planned_and_valid(srv, plan):
    r = one(srv, plan, track("No Rule", {"anything": [1, {"x": None}]}))
    assert (r["planned"], r["valid"], r["violations"]) == (True, True, [])


# ---- unplanned ----------------------------------------------------------------------------------

def test_unplanned_track_event(srv, plan):
    for name in ("Order Refunded", "order completed", "Order Completed ", ""):
        r = one(srv, plan, track(name, {"whatever": 1}))
        assert r["event"] == name
        assert r["planned"] is False and r["valid"] is False
        assert [v["type"] for v in r["violations"]] == ["Unplanned-Event"], r


def test_unplanned_event_is_still_checked_against_the_global_rule(srv, plan):
    ev = track("Order Refunded")
    del ev["context"]["library"]
    r = one(srv, plan, ev)
    types = [v["type"] for v in r["violations"]]
    assert "Unplanned-Event" in types
    assert ("Required-Missing", "required", "/context/library") in triples(r), r


def test_global_rule_applies_to_planned_events(srv, plan):
    ev = track("Order Completed", {"order_id": "o", "total": 1})
    ev["context"]["library"] = {"version": "1"}
    r = one(srv, plan, ev)
    assert triples(r) == {("Required-Missing", "required", "/context/library/name")}, r


# ---- which version ------------------------------------------------------------------------------

@pytest.mark.parametrize("version,expected_required", [
    (None, "v1_only"),       # no event_version: the oldest
    (1, "v1_only"),
    (2, "v2_only"),
    (3, "v3_only"),
    (7, "v1_only"),          # names no version: the oldest
    ("2", "v1_only"),        # not an integer
])
def test_version_selection(srv, plan, version, expected_required):
    ev = track("Signed Up", {})
    if version is not None:
        ev["context"]["protocols"] = {"event_version": version}
    r = one(srv, plan, ev)
    assert r["planned"] is True
    assert triples(r) == {("Required-Missing", "required", f"/properties/{expected_required}")}, (version, r)
    # ... and the event that satisfies that version is valid.
    ev["properties"] = {expected_required: True}
    assert one(srv, plan, ev)["valid"] is True


def test_version_selection_with_a_single_version_named_wrongly(srv):
    pid = plan_id(create_plan(srv, rules={"events": [versioned(4, "only")]}))
    ev = track("Signed Up", {}, context={"protocols": {"event_version": 1}})
    r = one(srv, pid, ev)
    assert triples(r) == {("Required-Missing", "required", "/properties/only")}, r


# ---- identify, group, and the types never checked ---------------------------------------------

def test_identify_and_group_use_their_rules(srv, plan):
    ok_id = {"type": "identify", "userId": "u", "traits": {"email": "a@b"}, "context": CTX}
    bad_id = {"type": "identify", "userId": "u", "traits": {"email": "nope"}, "context": CTX}
    no_email = {"type": "identify", "userId": "u", "traits": {}, "context": CTX}
    ok_grp = {"type": "group", "userId": "u", "groupId": "g", "traits": {"name": "G", "employees": 5},
              "context": CTX}
    bad_grp = {"type": "group", "userId": "u", "groupId": "g", "traits": {"name": "G", "employees": 0},
               "context": CTX}
    rs = results(srv, plan, [ok_id, bad_id, no_email, ok_grp, bad_grp])
    assert [r["valid"] for r in rs] == [True, False, False, True, False]
    assert all(r["planned"] for r in rs)
    assert triples(rs[1]) == {("Pattern-Mismatch", "pattern", "/traits/email")}
    assert triples(rs[2]) == {("Required-Missing", "required", "/traits/email")}
    assert {t[0] for t in triples(rs[4])} == {"Range-Mismatch"} and {t[2] for t in triples(rs[4])} == {
        "/traits/employees"}, rs[4]
    # The global rule applies to identify and group too.
    no_ctx = dict(ok_id, context={})
    assert triples(one(srv, plan, no_ctx)) == {("Required-Missing", "required", "/context/library")}


@pytest.mark.parametrize("typ", ["page", "screen", "alias"])
def test_page_screen_alias_are_never_checked(srv, plan, typ):
    # Even an event that breaks the global rule in every way passes.
    ev = {"type": typ, "userId": "u", "previousId": "p", "name": "Home", "context": {"library": 5},
          "properties": {"total": "x"}}
    r = one(srv, plan, ev)
    assert r["valid"] is True and r["violations"] == [], r


def test_plan_without_rules_for_a_type(srv):
    pid = plan_id(create_plan(srv, rules={"events": [{"name": "E", "version": 1}]}))
    rs = results(srv, pid, [{"type": "identify", "userId": "u", "traits": {"x": 1}},
                            {"type": "group", "groupId": "g"},
                            {"type": "track", "event": "E"},
                            {"type": "track", "event": "F"}])
    assert [r["valid"] for r in rs] == [True, True, True, False]
    assert [v["type"] for v in rs[3]["violations"]] == ["Unplanned-Event"]



# ---- formats assert (as ajv with ajv-formats) -------------------------------------------------

# format -> (valid values, invalid values)
FORMATS = {
    "email": (["joe@example.com", "a.b+c@sub.example.org"], ["not an email", "joe@", "@example.com"]),
    "date-time": (["2024-02-29T12:30:00Z", "1990-12-31T15:59:60-08:00"],
                  ["yesterday", "2024-02-30T12:00:00Z", "2024-01-01 12:00"]),
    "date": (["2024-02-29"], ["2023-02-29", "29/02/2024"]),
    "ipv4": (["192.168.0.1"], ["256.1.1.1", "1.2.3"]),
    "uri": (["https://example.com/a?b=c#d"], ["no scheme here", "http://exa mple.com"]),
    "hostname": (["www.example.com"], ["-bad-.example.com", "a" * 64 + ".com"]),
}


@pytest.fixture(scope="module")
def format_plan(srv):
    props = {f: {"type": "string", "format": f} for f in FORMATS}
    rule = {"$schema": D7, "type": "object", "properties": {"properties": {"type": "object", "properties": props}}}
    return plan_id(create_plan(srv, rules={"events": [{"name": "Formats", "version": 1, "rules": rule}]}))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format_violations_are_reported(srv, format_plan, fmt):
    good, bad = FORMATS[fmt]
    rs = results(srv, format_plan, [track("Formats", {fmt: v}) for v in good + bad])
    for v, r in zip(good, rs):
        assert r["valid"] and r["violations"] == [], (fmt, v, r)
    for v, r in zip(bad, rs[len(good):]):
        assert triples(r) == {("Pattern-Mismatch", "format", "/properties/" + fmt)}, (fmt, v, r)
        assert fmt in r["violations"][0]["message"], r


def test_format_applies_only_to_strings_and_unknown_formats_are_ignored(srv):
    rule = {"$schema": D7, "type": "object", "properties": {"properties": {"type": "object", "properties": {
        "when": {"format": "date-time"}, "odd": {"type": "string", "format": "no-such-format"}}}}}
    pid = plan_id(create_plan(srv, rules={"events": [{"name": "E", "version": 1, "rules": rule}]}))
    rs = results(srv, pid, [track("E", {"when": 5, "odd": "anything"}), track("E", {"when": "yesterday"})])
    assert rs[0]["valid"], rs[0]
    assert triples(rs[1]) == {("Pattern-Mismatch", "format", "/properties/when")}


# ---- requests ---------------------------------------------------------------------------------

def body_of_size(n, count=100):
    """A :validate body of exactly n bytes: `count` valid events, the last one padded."""
    events = [track("Order Completed", {"order_id": "o", "total": 1}) for _ in range(count)]
    base = len(json.dumps({"events": events}).encode())
    events[-1]["properties"]["order_id"] = "o" + "x" * (n - base)
    body = json.dumps({"events": events}).encode()
    assert len(body) == n
    return body


def test_over_500_kb_is_400(srv, plan):
    url = plan_path(plan) + ":validate"
    for n in (512001, 600000, 1000000):
        e = assert_error(srv.post(url, data=body_of_size(n)), 400, 3)
        assert "500" in e["error"], e
    for n in (512000, 400000):  # 500 KB = 512,000 bytes is still fine
        b = assert_ok(srv.post(url, data=body_of_size(n)))
        assert len(b["results"]) == 100 and all(r["valid"] for r in b["results"]), n


@pytest.mark.parametrize("body", [{}, {"events": {}}, {"events": "x"}, {"event": []}, [], "x"])
def test_bad_bodies_are_400(srv, plan, body):
    assert_error(srv.post(plan_path(plan) + ":validate", json=body), 400, 3)


def test_body_not_json_is_400(srv, plan):
    assert_error(srv.post(plan_path(plan) + ":validate", data=b"{\"events\": ["), 400, 3)


def test_non_object_events_are_reported_not_fatal(srv, plan):
    b = assert_ok(validate(srv, plan, [5, "x", None, track("Order Completed", {"order_id": "o", "total": 1})]))
    rs = b["results"]
    assert [r["index"] for r in rs] == [0, 1, 2, 3]
    assert [r["valid"] for r in rs] == [False, False, False, True]


def test_unknown_plan_is_404(srv):
    assert_error(validate(srv, "rs_1AAPTLy8ffAAQth0PvL8rOvU6PJ", []), 404, 5)


def test_read_token_may_validate(srv, plan):
    b = assert_ok(validate(srv, plan, [track("Nope")], token=srv.read_token))
    assert b["results"][0]["planned"] is False
    assert_error(validate(srv, plan, [], token=None), 401, 16)


def test_validation_follows_plan_updates(srv):
    pid = plan_id(create_plan(srv, rules={"events": [versioned(1, "a")]}))
    ev = track("Signed Up", {"a": 1})
    assert one(srv, pid, ev)["valid"] is True
    r = srv.request("PATCH", plan_path(pid), json={"update_mask": {"paths": ["tracking_plan.rules.events"]},
                                                   "tracking_plan": {"rules": {"events": [versioned(1, "b")]}}})
    assert_ok(r)
    assert triples(one(srv, pid, ev)) == {("Required-Missing", "required", "/properties/b")}
    assert srv.delete(plan_path(pid)).text == "{}"
    assert_error(validate(srv, pid, [ev]), 404, 5)


# ---- the shared example plans on the shared sample events --------------------------------

def sample_events():
    with open(EVENTS_DIR / "sample.jsonl", encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


@pytest.mark.parametrize("path", plan_files(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_example_plans_on_sample_events(srv, path):
    _, p = read_plan_file(path)
    pid = plan_id(create_plan(srv, p["display_name"], p["rules"]))
    evs = sample_events()
    names = {e["name"] for e in p["rules"].get("events", [])}
    got = []
    for i in range(0, len(evs), 40):  # 40 at a time stays well under 500 KB
        got.extend(results(srv, pid, evs[i:i + 40]))
    for i, (ev, r) in enumerate(zip(evs, got)):
        t = ev["type"]
        unplanned = t == "track" and ev["event"] not in names
        assert r["planned"] is (not unplanned) or t not in ("track",), (i, r)
        assert ("Unplanned-Event" in [v["type"] for v in r["violations"]]) is unplanned, (i, ev.get("event"), r)
        if t in ("page", "screen", "alias"):
            assert r["valid"] and r["violations"] == [], (i, r)
        if t == "track":
            assert r["event"] == ev["event"]
    # shared/data/events/README.md gives, per plan, what a reference validator (ajv) found:
    # events checked (planned track, identify, group), how many invalid, unplanned tracks.
    # (A guide there; here it pins our validator to the same answers.)
    checked = [(ev, r) for ev, r in zip(evs, got)
               if ev["type"] in ("identify", "group") or (ev["type"] == "track" and r["planned"])]
    invalid = [(ev, r) for ev, r in checked if not r["valid"]]
    n_unplanned = sum(1 for ev, r in zip(evs, got) if ev["type"] == "track" and not r["planned"])
    name = path.rsplit("/", 1)[-1]
    if name == "ecommerce.json":
        assert (len(checked), len(invalid), n_unplanned) == (79, 2, 84)
    elif name == "b2b-saas.json":
        assert (len(checked), len(invalid)) == (75, 5)
    elif name == "mobile-app.json":
        # 49 checked, none invalid against their own rules; 25 fail only the global rule
        # (web events without context.app/device/os).
        assert len(checked) == 49 and len(invalid) == 25
        for ev, r in invalid:
            assert {v["path"] for v in r["violations"]} <= {"/context/app", "/context/device", "/context/os"}, r


# ---- the CLI ----------------------------------------------------------------------------------

def run_cli(schema, lines, cwd=ROOT):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(schema if isinstance(schema, str) else json.dumps(schema))
        name = f.name
    try:
        p = subprocess.run([BIN, "schema", "validate", name], input="".join(l + "\n" for l in lines),
                           capture_output=True, text=True, timeout=60, cwd=cwd)
    finally:
        os.unlink(name)
    assert not sanitizer_lines(p.stderr), p.stderr
    return p


CLI_SCHEMA = {"$schema": D7, "type": "object", "required": ["a"],
              "properties": {"a": {"type": "integer", "minimum": 3}, "b": {"enum": ["x"]}}}


def test_cli_all_valid_exits_0():
    lines = ['{"a": 3}', '{"a": 100, "b": "x"}', '{"a": 4, "other": null}']
    p = run_cli(CLI_SCHEMA, lines)
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert len(out) == len(lines)
    assert [json.loads(l) for l in out] == [{"valid": True, "errors": []}] * 3


def test_cli_some_invalid_exits_1_with_one_line_each():
    lines = ['{"a": 5}', '{"a": 1}', '{}', '{"a": "x", "b": "y"}', 'not json', '[1]', '{"a": 3}']
    p = run_cli(CLI_SCHEMA, lines)
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(out) == len(lines)
    assert [o["valid"] for o in out] == [True, False, False, False, False, False, True]
    for o in out:
        assert set(o) == {"valid", "errors"}
        for e in o["errors"]:
            assert set(e) == {"type", "path", "keyword", "message"}
    assert [(e["type"], e["keyword"], e["path"]) for e in out[1]["errors"]] == [("Range-Mismatch", "minimum", "/a")]
    assert [(e["type"], e["keyword"], e["path"]) for e in out[2]["errors"]] == [("Required-Missing", "required", "/a")]
    assert {(e["type"], e["keyword"], e["path"]) for e in out[3]["errors"]} == {
        ("Datatype-Mismatch", "type", "/a"), ("Enum-Mismatch", "enum", "/b")}
    assert out[5]["errors"][0]["type"] == "Datatype-Mismatch"


def test_cli_skips_blank_lines():
    p = run_cli(CLI_SCHEMA, ['{"a": 5}', '', '{"a": 6}'])
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2


def test_cli_invalid_or_unreadable_schema_exits_2():
    p = run_cli({"type": "strnig"}, ['{"a": 5}'])
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)
    assert "/type" in p.stderr
    p = run_cli({"properties": {"a": {"minLength": -1}}}, ['{"a": 5}'])
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "/properties/a/minLength" in p.stderr
    p = run_cli("{not json", ['{"a": 5}'])
    assert p.returncode == 2 and p.stdout == ""
    p = subprocess.run([BIN, "schema", "validate", "/nonexistent/schema.json"], input='{"a": 5}\n',
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.strip()
    assert not sanitizer_lines(p.stderr)


def test_cli_validates_with_an_example_plan_rule():
    _, plan = read_plan_file(PLANS_DIR / "ecommerce.json")
    rule = next(e for e in plan["rules"]["events"] if e["name"] == "Product Viewed")["rules"]
    good = {"type": "track", "event": "Product Viewed",
            "properties": {"product_id": "p1", "name": "Shoe", "price": 10.5, "currency": "EUR"}}
    lines = [json.dumps(good),
             json.dumps({"type": "track", "event": "Product Viewed"}),
             json.dumps(dict(good, properties={"product_id": "p1", "price": -1, "currency": "eur"}))]
    p = run_cli(rule, lines)
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    assert [o["valid"] for o in out] == [True, False, False]
    assert [(e["type"], e["path"]) for e in out[1]["errors"]] == [("Required-Missing", "/properties")]
    assert {(e["type"], e["keyword"], e["path"]) for e in out[2]["errors"]} == {
        ("Required-Missing", "required", "/properties/name"), ("Range-Mismatch", "minimum", "/properties/price"),
        ("Pattern-Mismatch", "pattern", "/properties/currency")}
    assert run_cli(rule, [json.dumps(good)]).returncode == 0


def test_cli_reads_schemas_and_instances_with_nul():
    # \u0000 is legal JSON: in the schema (const, enum, pattern) and in the instances, and
    # compared by length (a string with a NUL is not its prefix up to the NUL).
    schema = {"$schema": D7, "type": "object", "properties": {
        "a": {"const": "x\u0000y"}, "b": {"enum": ["\u0000", "z"]}, "c": {"type": "string", "maxLength": 3},
        "d": {"type": "string", "pattern": "^a\u0000b$"}}}
    lines = [json.dumps({"a": "x\u0000y", "b": "\u0000", "c": "\u0000\u0000\u0000", "d": "a\u0000b"}),
             json.dumps({"a": "x"}), json.dumps({"b": ""}), json.dumps({"c": "\u0000" * 4}),
             json.dumps({"d": "a"})]
    assert "\\u0000" in lines[0] and "\\u0000" in json.dumps(schema)
    p = run_cli(schema, lines)
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    assert [[(e["keyword"], e["path"]) for e in o["errors"]] for o in out] == [
        [], [("const", "/a")], [("enum", "/b")], [("maxLength", "/c")], [("pattern", "/d")]]
    assert out[1]["errors"][0]["message"] == 'must be "x\\u0000y"'

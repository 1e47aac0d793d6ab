"""Shared helpers for the destination-filter, filter-preview, tracking-plan and :validate
tests (spec config-api.md §9, §10; fql.md §6–§7; delivery.md §2.2).

Re-exports the module-scoped `srv` fixture of helpers_resources (the module's server plus a
`read_token`), so a test module only needs `from helpers_fp import *`-style imports."""
import glob
import json
import os
import pathlib
import re

from conftest import assert_error, assert_ok
from helpers_resources import (INSUFFICIENT, SOURCES, WS, WS_PATH, assert_insufficient, create_dest,
                               create_source, dst_name, dst_path, list_all, src_name, src_path, srv, uniq)

# The example plans and events ship in the repository (copied from the project's shared
# data with their READMEs and licences), so a clean clone needs nothing beside it.
DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
PLANS_DIR = DATA / "tracking-plans"
EVENTS_DIR = DATA / "events"

KSUID_RE = r"[0-9A-Za-z]{27}"
FILTER_ID_RE = re.compile(r"^df_" + KSUID_RE + "$")
PLAN_ID_RE = re.compile(r"^rs_" + KSUID_RE + "$")
FILTER_KEYS = {"name", "if", "actions", "title", "description", "enabled"}
PLAN_KEYS = {"name", "display_name", "rules", "create_time", "update_time"}
DEST = "google-analytics"
PREVIEW_PATHS = ("/v1beta/filters/preview", "/v1beta/filters:preview")
PLANS = WS_PATH + "/tracking-plans"


# ---- exact JSON comparison -----------------------------------------------------------

def ordered(text):
    """Parses JSON keeping what a dict would lose: object key order (an object becomes a
    tuple ("{}", [(k, v), ...]), so {} and [] stay different) and int/real (a real becomes
    ("real", value)). Two texts give equal results iff they hold the same keys in the same
    order and the same values of the same JSON types."""
    return json.loads(text, object_pairs_hook=lambda pairs: ("{}", pairs),
                      parse_float=lambda s: ("real", float(s)))


def ordered_member(text, *keys):
    """ordered() of the value at keys (object members) inside the JSON text."""
    v = ordered(text)
    for k in keys:
        assert isinstance(v, tuple) and v[0] == "{}", v
        hits = [val for kk, val in v[1] if kk == k]
        assert len(hits) == 1, (k, v)
        v = hits[0]
    return v


# ---- filters ---------------------------------------------------------------------------

def new_dest(srv, dest=DEST):
    """A fresh source with one destination; returns (source slug, destination path)."""
    src = uniq("f")
    create_source(srv, src)
    create_dest(srv, src, dest)
    return src, dst_path(src, dest)


def filters_path(dpath):
    return dpath + "/filters"


def filter_obj(fql="type != 'track'", actions=None, title="Only allow track events", **extra):
    f = {"if": fql, "actions": actions if actions is not None else [{"type": "drop_event"}], "title": title}
    f.update(extra)
    return f


def create_filter(srv, dpath, **kw):
    r = srv.post(filters_path(dpath), json={"filter": filter_obj(**kw)})
    return assert_ok(r)


def filter_id(f):
    return f["name"].rsplit("/", 1)[1]


# ---- preview -----------------------------------------------------------------------------

def preview(srv, fql, actions, event, path=PREVIEW_PATHS[0], enabled=True, token="__default__"):
    """POSTs a preview; `event` is a JSON value (encoded here) or a str sent as is."""
    inp = event if isinstance(event, str) else json.dumps(event)
    body = {"filter": {"if": fql, "actions": actions, "enabled": enabled}, "input": inp}
    return srv.post(path, json=body, token=token)


def preview_ok(srv, fql, actions, event, **kw):
    b = assert_ok(preview(srv, fql, actions, event, **kw))
    assert set(b) == {"input", "output", "diff"}, b
    return b


def fql_true(srv, fql, event):
    """Evaluates an FQL statement on an event through preview with a drop_event filter:
    True when the event was dropped (the condition held), False when it was kept
    unchanged."""
    b = preview_ok(srv, fql, [{"type": "drop_event"}], event)
    if b["output"] == "null":
        return True
    assert json.loads(b["output"]) == (event if not isinstance(event, str) else json.loads(event)), b
    return False


def pretty(v):
    """The diff's rendering of one side: tab indentation, sorted keys."""
    return json.dumps(v, indent="\t", sort_keys=True, ensure_ascii=False)


def _line_equiv(got, want):
    """One pretty-printed line against the expected one: same indentation, key and trailing
    comma; a scalar value may be spelt differently (24 vs 24.0, an escaped character) as
    long as it is the same JSON value."""
    if got == want:
        return True
    ig, iw = len(got) - len(got.lstrip("\t")), len(want) - len(want.lstrip("\t"))
    g, w = got[ig:], want[iw:]
    if ig != iw or g.endswith(",") != w.endswith(","):
        return False
    g, w = g.rstrip(","), w.rstrip(",")
    if g.endswith(("{", "[")) and w.endswith(("{", "[")):  # a key opening an object/array
        g, w = g + ("}" if g[-1] == "{" else "]"), w + ("}" if w[-1] == "{" else "]")
    for wrap in ("{%s}", "[%s]"):
        try:
            return json.loads(wrap % g) == json.loads(wrap % w)
        except ValueError:
            continue
    return False


def check_diff(diff, before, after):
    """A line diff (' ', '-', '+' prefixes, joined by \\n): the ' '/'-' lines rebuild the
    input and the ' '/'+' lines the output, each pretty-printed with tab indentation and
    sorted keys (number spelling is not part of the contract)."""
    lines = diff.split("\n")
    assert all(l[:1] in (" ", "-", "+") for l in lines), diff
    left = [l[1:] for l in lines if l[:1] in (" ", "-")]
    right = [l[1:] for l in lines if l[:1] in (" ", "+")]
    for side, want in ((left, pretty(before)), (right, "null" if after is None else pretty(after))):
        want = want.split("\n")
        assert len(side) == len(want), (diff, want)
        for g, w in zip(side, want):
            assert _line_equiv(g, w), (g, w, diff)


# ---- tracking plans -------------------------------------------------------------------

def plan_path(pid):
    return f"{PLANS}/{pid}"


def plan_id(p):
    return p["name"].rsplit("/", 1)[1]


def create_plan(srv, display_name=None, rules=None, **kw):
    tp = {"display_name": display_name or uniq("Plan ")}
    if rules is not None:
        tp["rules"] = rules
    return assert_ok(srv.post(PLANS, json={"tracking_plan": tp}, **kw))


def plan_files():
    files = sorted(glob.glob(str(PLANS_DIR / "*.json")) + glob.glob(str(PLANS_DIR / "external" / "*.json")))
    assert len(files) >= 5, f"tracking plans not found in {PLANS_DIR}"
    return files


def read_plan_file(path):
    """(raw text, dict) of a plan file; the dict keeps the file's key order."""
    raw = pathlib.Path(path).read_text(encoding="utf-8")
    return raw, json.loads(raw)


def event_rule(name, props=None, required=None, version=None, description="", schema="draft-07", **top):
    """A Segment-shaped event rule: a JSON Schema over the whole track call."""
    p = {"type": "object", "properties": props or {}}
    if required:
        p["required"] = required
    rules = {"$schema": f"http://json-schema.org/{schema}/schema#", "type": "object",
             "properties": {"properties": p}}
    rules.update(top)
    if required:
        rules["required"] = ["properties"]
    e = {"name": name, "description": description}
    if version is not None:
        e["version"] = version
    e["rules"] = rules
    return e


def conn_path(pid):
    return plan_path(pid) + "/source-connections"


__all__ = [n for n in dir() if not n.startswith("__")] + ["srv", "assert_error", "assert_ok"]

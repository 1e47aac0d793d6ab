"""Functions (config-api.md §13; docs/functions.md): create with the type in the query or the
body, list by type with pagination and without code, get, update masks in both spellings,
delete, deploy and is-latest-version (SOURCE code goes live on deploy, DESTINATION code at
once), sensitive settings masked, the audit trail, every validation error; preview (§13.6)
request checks, the "runtime unavailable" answer, and — when the Functions runtime can run
Node.js — the functions-runtime.md §10 vectors S1, S2 and D1 through preview; function-backed
source and destination instances; the source-function webhook POST /v1/functions/{write_key}
(functions-runtime.md §4) feeding the Tracking API pipeline, read back through the debugger."""
import http.server
import json
import re
import threading
import time
import uuid

import pytest
import requests

from conftest import RFC3339_Z, assert_error, assert_ok, module_server
from helpers_fn import D1, S1, S1A_BODY, S1A_OUT, S1C_BODY, S2
from helpers_resources import SOURCES, source_body, src_name, src_path

WSP = "/v1beta/workspaces/myworkspace"
FNS = WSP + "/functions"
FULL_KEYS = {"id", "workspace_id", "display_name", "description", "type", "code", "buildpack", "settings",
             "created_at", "created_by", "logo_url", "catalog_id"}
ITEM_KEYS = FULL_KEYS - {"code", "buildpack"}
ID_RE = {"SOURCE": re.compile(r"^sfnc_[0-9A-Za-z]{27}$"), "DESTINATION": re.compile(r"^dfnc_[0-9A-Za-z]{27}$")}
MASK = "********"

# ---- helpers ---------------------------------------------------------------------------


def uniq(p="f"):
    return p + uuid.uuid4().hex[:10]


def mk(srv, type_="SOURCE", via="query", code=None, **fields):
    fn = {"display_name": uniq("fn "), "code": code or ("async function onRequest(r, s) {}" if type_ == "SOURCE"
                                                         else "async function onTrack(e, s) { return 1 }")}
    fn.update(fields)
    if via == "query":
        r = srv.post(f"{FNS}?type={type_}", json={"function": fn})
    else:
        r = srv.post(FNS, json={"type": type_, "function": fn})
    return assert_ok(r)


def fn_path(fid):
    return f"{FNS}/{fid}"


def patch(srv, fid, obj, paths):
    return srv.request("PATCH", fn_path(fid), json={"function": obj, "update_mask": {"paths": paths}})


def is_latest(srv, fid):
    b = assert_ok(srv.get(fn_path(fid) + "/is-latest-version"))
    assert set(b) == {"is_latest"}, b
    return b["is_latest"]


def list_all(srv, type_, page_size=100):
    out, tok, pages = [], "", 0
    while True:
        q = f"?type={type_}&page_size={page_size}" + (f"&page_token={requests.utils.quote(tok, safe='')}" if tok else "")
        b = assert_ok(srv.get(FNS + q))
        assert set(b) == {"functions", "next_page_token"}, b
        out += b["functions"]
        pages += 1
        tok = b["next_page_token"]
        if not tok:
            return out, pages


def preview(srv, body, **kw):
    return srv.post(FNS + "/preview", json=body, **kw)


def preview_ok(srv, type_, code, payload, settings=None, session_id=""):
    fn = {"code": code, "buildpack": "boreal", "settings": settings or []}
    b = assert_ok(preview(srv, {"type": type_, "function": fn, "payload": json.dumps(payload),
                                "session_id": session_id}))
    assert set(b) == {"invoke", "logs", "logs_truncated", "session_id"}, b
    assert {"success", "output", "error_reason"} <= set(b["invoke"]), b
    for line in b["logs"]:
        assert set(line) == {"message", "created_at"} and RFC3339_Z.match(line["created_at"]), line
    return b


def runtime_available(srv):
    b = preview_ok(srv, "DESTINATION", "async function onTrack(e) { return 1 }", {"type": "track", "event": "x"})
    return b["invoke"]["error_reason"] != "runtime unavailable"


@pytest.fixture(scope="module")
def runtime(server):
    if not runtime_available(server):
        pytest.skip("the Functions runtime cannot run Node.js here (preview answers 'runtime unavailable')")
    return server


def hook(srv, key, body=None, raw=None, headers=None, method="POST", query=""):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    return requests.request(method, srv.url(f"/v1/functions/{key}{query}"), data=data, headers=h, timeout=30)


def debugger(srv, slug):
    return assert_ok(srv.get(src_path(slug) + "/events?page_size=100"))["events"]


def fn_source(srv, fn, function_config=None):
    slug = uniq("fs")
    src = {"name": src_name(slug), "catalog_name": f"catalog/sources/{fn['catalog_id']}"}
    if function_config is not None:
        src["function_config"] = function_config
    b = assert_ok(srv.post(SOURCES, json={"source": src}))
    return slug, b


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The module's server, without the 25-functions limit (this module makes many)."""
    yield from module_server(tmp_path_factory, "fnmod", "--rate-limit", "0", "--functions-per-workspace", "0")


# ---- §13.1 create ----------------------------------------------------------------------


@pytest.mark.parametrize("type_,via", [("SOURCE", "query"), ("SOURCE", "body"), ("DESTINATION", "query"),
                                       ("DESTINATION", "body")])
def test_create_shape(server, type_, via):
    ws = assert_ok(server.get(WSP))
    b = mk(server, type_, via, description="d", logo_url="https://logo-url")
    assert set(b) == FULL_KEYS, b  # and no "deployed" (§13)
    assert ID_RE[type_].match(b["id"]), b["id"]
    assert b["type"] == type_ and b["buildpack"] == "boreal" and b["settings"] == []
    assert b["workspace_id"] == ws["id"] != "myworkspace"
    assert b["catalog_id"] == b["id"][5:]
    assert RFC3339_Z.match(b["created_at"]) and isinstance(b["created_by"], str)
    assert b["description"] == "d" and b["logo_url"] == "https://logo-url"
    assert assert_ok(server.get(fn_path(b["id"]))) == b


def test_create_with_workspace_id_in_path(server):
    ws = assert_ok(server.get(WSP))
    b = assert_ok(server.post(f"/v1beta/workspaces/{ws['id']}/functions?type=SOURCE",
                              json={"function": {"display_name": "by id", "code": "x"}}))
    assert assert_ok(server.get(fn_path(b["id"])))["display_name"] == "by id"


CODE = "async function onTrack(e) {}"


@pytest.mark.parametrize("query,body", [
    ("", {"function": {"display_name": "x", "code": CODE}}),                          # no type
    ("?type=INSERT_DESTINATION", {"function": {"display_name": "x", "code": CODE}}),
    ("?type=source", {"function": {"display_name": "x", "code": CODE}}),
    ("", {"type": 5, "function": {"display_name": "x", "code": CODE}}),
    ("?type=SOURCE", {"type": "DESTINATION", "function": {"display_name": "x", "code": CODE}}),  # disagree
    ("?type=SOURCE", {}),
    ("?type=SOURCE", {"function": "x"}),
    ("?type=SOURCE", {"function": {"code": CODE}}),                                   # no display_name
    ("?type=SOURCE", {"function": {"display_name": "", "code": CODE}}),
    ("?type=SOURCE", {"function": {"display_name": "x"}}),                            # no code
    ("?type=SOURCE", {"function": {"display_name": "x", "code": ""}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": 7}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "buildpack": "node"}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "colour": "red"}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE}, "extra": 1}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "settings": {}}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "settings": [{"label": "no name"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "settings": [{"name": "a/b"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE,
                                   "settings": [{"name": "a"}, {"name": "a"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "settings": [{"name": "a", "type": "number"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE,
                                   "settings": [{"name": "a", "type": "boolean", "value": "yes"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE,
                                   "settings": [{"name": "a", "required": "yes"}]}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": CODE, "settings": [{"name": "a", "unknown": 1}]}}),
    # a source function may not call a source-function webhook (functions-runtime.md §4.1)
    ("?type=SOURCE", {"function": {"display_name": "x",
                                   "code": "fetch('http://127.0.0.1:8080/v1/functions/abc')"}}),
    ("?type=SOURCE", {"function": {"display_name": "x", "code": "fetch('https://fn.segmentapis.com/?b=1')"}}),
])
def test_create_errors(server, query, body):
    before = len(list_all(server, "SOURCE")[0]) + len(list_all(server, "DESTINATION")[0])
    assert_error(server.post(FNS + query, json=body), 400, 3)
    assert len(list_all(server, "SOURCE")[0]) + len(list_all(server, "DESTINATION")[0]) == before


def test_code_size_limit(server):
    code = "//" + "a" * (1024 * 1024 - 2)
    assert len(code) == 1024 * 1024
    b = mk(server, "DESTINATION", code=code)
    assert assert_ok(server.get(fn_path(b["id"])))["code"] == code
    body = assert_error(server.post(FNS + "?type=DESTINATION",
                                    json={"function": {"display_name": "big", "code": code + "b"}}), 400, 3)
    assert "1 MiB" in body["error"]
    assert_error(patch(server, b["id"], {"code": code + "b"}, ["function.code"]), 400, 3)
    # the destination-function webhook does not exist: a destination source function's loop check is only for SOURCE
    mk(server, "DESTINATION", code="fetch('http://x/v1/functions/k')")


def test_settings_are_normalised(server):
    b = mk(server, "DESTINATION", settings=[
        {"name": "apiKey", "label": "API key", "type": "string", "description": "the key", "required": True,
         "sensitive": True},
        {"name": "flag", "type": "BOOLEAN"}, {"name": "tags", "type": "array", "value": ["a", "b"]},
        {"name": "map", "type": "TEXT_MAP"}])
    assert b["settings"] == [
        {"name": "apiKey", "label": "API key", "type": "string", "description": "the key", "required": True,
         "sensitive": True},
        {"name": "flag", "label": "flag", "type": "boolean", "description": "", "required": False, "sensitive": False},
        {"name": "tags", "label": "tags", "type": "array", "description": "", "required": False, "sensitive": False,
         "value": ["a", "b"]},
        {"name": "map", "label": "map", "type": "text-map", "description": "", "required": False, "sensitive": False}]


def test_functions_per_workspace(start_server):
    """functions-runtime.md §1: 25 per workspace by default (both types count), configurable."""
    srv = start_server("--rate-limit", "0")
    ids = [mk(srv, "SOURCE" if i % 2 else "DESTINATION")["id"] for i in range(25)]
    body = assert_error(srv.post(FNS + "?type=SOURCE", json={"function": {"display_name": "26", "code": "x"}}), 400, 3)
    assert "25" in body["error"]
    assert srv.delete(fn_path(ids[0])).status_code == 200
    mk(srv, "SOURCE")
    srv = start_server("--rate-limit", "0", "--functions-per-workspace", "2")
    mk(srv, "SOURCE")
    mk(srv, "DESTINATION")
    assert_error(srv.post(FNS + "?type=DESTINATION", json={"function": {"display_name": "3", "code": "x"}}), 400, 3)


# ---- §13.2 list, §13.3 get, §13.5 delete -----------------------------------------------------


def test_list_by_type_with_pages(start_server):
    srv = start_server("--rate-limit", "0")
    src = sorted(mk(srv, "SOURCE")["id"] for _ in range(5))
    dst = sorted(mk(srv, "DESTINATION")["id"] for _ in range(3))
    items, pages = list_all(srv, "SOURCE", page_size=2)
    assert [i["id"] for i in items] == src and pages == 3
    for i in items:
        assert set(i) == ITEM_KEYS, i  # no code, no buildpack
        assert i["type"] == "SOURCE"
    items, pages = list_all(srv, "DESTINATION", page_size=2)
    assert [i["id"] for i in items] == dst and pages == 2
    # default page size 10, the last page says ""
    b = assert_ok(srv.get(FNS + "?type=SOURCE"))
    assert len(b["functions"]) == 5 and b["next_page_token"] == ""
    b = assert_ok(srv.get(FNS + "?&type=DESTINATION&page_size=3"))  # quirk §15.2
    assert len(b["functions"]) == 3 and b["next_page_token"] == ""
    for q in ("", "?type=", "?type=INSERT", "?type=SOURCE&page_size=-1", "?type=SOURCE&page_size=x",
              "?type=SOURCE&page_token=bm9wZQ=="):
        assert_error(srv.get(FNS + q), 400, 3)
    # a DESTINATION page token does not continue a SOURCE list
    tok = assert_ok(srv.get(FNS + "?type=DESTINATION&page_size=1"))["next_page_token"]
    assert tok
    assert_error(srv.get(FNS + "?type=SOURCE&page_token=" + requests.utils.quote(tok, safe="")), 400, 3)


def test_get_delete_and_404(server):
    b = mk(server, "SOURCE")
    assert assert_ok(server.get(fn_path(b["id"]) + "/"))["code"] == b["code"]  # trailing slash
    for bad in ("sfnc_nope", "dfnc_" + b["id"][5:], "preview"):
        assert_error(server.get(fn_path(bad)), 404, 5)
    r = server.delete(fn_path(b["id"]))
    assert r.status_code == 200 and r.text == "{}"
    for method in ("GET", "DELETE", "PATCH"):
        kw = {"json": {"function": {"display_name": "x"}, "update_mask": {"paths": ["function.display_name"]}}} \
            if method == "PATCH" else {}
        assert_error(server.request(method, fn_path(b["id"]), **kw), 404, 5)
    assert_error(server.post(fn_path(b["id"]) + "/deploy"), 404, 5)
    assert_error(server.get(fn_path(b["id"]) + "/is-latest-version"), 404, 5)
    assert b["id"] not in [i["id"] for i in list_all(server, "SOURCE")[0]]


# ---- §13.4 update ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["function.display_name", "functions.displayname", "functions.display_name",
                                  "display_name", "function.displayname"])
def test_update_mask_spellings(server, path):
    b = mk(server, "DESTINATION")
    u = assert_ok(patch(server, b["id"], {"display_name": "renamed"}, [path]))
    assert u["display_name"] == "renamed" and u["code"] == b["code"]
    assert assert_ok(server.get(fn_path(b["id"])))["display_name"] == "renamed"


def test_update_semantics(server):
    b = mk(server, "DESTINATION", description="old", logo_url="https://old")
    fid = b["id"]
    # a value without its path is ignored; a body without paths changes nothing
    u = assert_ok(patch(server, fid, {"description": "new", "display_name": "ignored"}, ["function.description"]))
    assert u["description"] == "new" and u["display_name"] == b["display_name"]
    assert assert_ok(server.request("PATCH", fn_path(fid), json={"function": {"code": "y"}})) == u
    # listed without a value: the zero value
    u = assert_ok(patch(server, fid, {}, ["function.description", "function.logo_url", "function.settings"]))
    assert u["description"] == "" and u["logo_url"] == "" and u["settings"] == []
    u = assert_ok(patch(server, fid, {"code": "async function onTrack() { return 2 }", "buildpack": "boreal",
                                      "settings": [{"name": "k"}]},
                        ["function.code", "function.buildpack", "function.settings"]))
    assert u["code"] == "async function onTrack() { return 2 }" and u["settings"][0]["name"] == "k"
    for obj, paths in (({"display_name": ""}, ["function.display_name"]), ({}, ["function.display_name"]),
                       ({}, ["function.code"]), ({"code": 5}, ["function.code"]),
                       ({"buildpack": "x"}, ["function.buildpack"]), ({"type": "SOURCE"}, ["function.type"]),
                       ({"settings": [{"name": "a", "type": "x"}]}, ["function.settings"]),
                       ({}, ["function.catalog_id"]), ({}, ["function.nope"]), ({}, ["destination.enabled"])):
        assert_error(patch(server, fid, obj, paths), 400, 3)
    assert assert_ok(server.get(fn_path(fid))) == u  # no failed update left a trace


# ---- sensitive settings --------------------------------------------------------------------


def test_sensitive_values_are_masked(server):
    b = mk(server, "DESTINATION", settings=[{"name": "secret", "sensitive": True, "value": "hunter2"},
                                            {"name": "plain", "value": "visible"}])
    s, p = b["settings"]
    assert s["value"] == MASK and re.match(r"^[0-9a-f]{24}$", s["secret_version"]) and p["value"] == "visible"
    fid = b["id"]
    for got in (assert_ok(server.get(fn_path(fid))),
                [i for i in list_all(server, "DESTINATION")[0] if i["id"] == fid][0]):
        assert got["settings"][0]["value"] == MASK and "hunter2" not in json.dumps(got)
    # writing the mask back keeps the secret; a new value gets a new version
    u = assert_ok(patch(server, fid, {"settings": [{"name": "secret", "sensitive": True, "value": MASK},
                                                   {"name": "plain", "value": "v2"}]}, ["function.settings"]))
    assert u["settings"][0]["secret_version"] == s["secret_version"]
    u = assert_ok(patch(server, fid, {"settings": [{"name": "secret", "sensitive": True, "value": "other"}]},
                        ["function.settings"]))
    assert u["settings"][0]["secret_version"] != s["secret_version"]
    # the audit trail carries the masked form only
    audit = server.get(WSP + "/audit-events?page_size=100").text
    assert fid in audit and "hunter2" not in audit and '"other"' not in audit


# ---- §13.7 deploy, §13.8 is-latest-version -----------------------------------------------------


def test_source_code_goes_live_on_deploy(server):
    b = mk(server, "SOURCE")
    fid = b["id"]
    assert is_latest(server, fid) is True
    assert_ok(patch(server, fid, {"display_name": "only a rename"}, ["function.display_name"]))
    assert is_latest(server, fid) is True
    assert_ok(patch(server, fid, {"code": b["code"]}, ["function.code"]))  # the same code: no new version
    assert is_latest(server, fid) is True
    assert_ok(patch(server, fid, {"code": "async function onRequest() { /* v2 */ }"}, ["function.code"]))
    assert is_latest(server, fid) is False
    assert assert_ok(server.get(fn_path(fid)))["code"] == "async function onRequest() { /* v2 */ }"
    r = server.post(fn_path(fid) + "/deploy")
    assert r.status_code == 200 and r.text == "{}"
    assert is_latest(server, fid) is True
    assert server.post(fn_path(fid) + "/deploy").text == "{}"  # deploying again is harmless


def test_destination_code_is_live_at_once(server):
    fid = mk(server, "DESTINATION")["id"]
    assert_ok(patch(server, fid, {"code": "async function onTrack() { return 3 }"}, ["function.code"]))
    assert is_latest(server, fid) is True
    assert server.post(fn_path(fid) + "/deploy").text == "{}"
    assert is_latest(server, fid) is True


def test_audit_trail(server):
    fid = mk(server, "SOURCE")["id"]
    assert_ok(patch(server, fid, {"code": "async function onRequest() { 1 }"}, ["function.code"]))
    assert_ok(server.post(fn_path(fid) + "/deploy"))
    assert server.delete(fn_path(fid)).status_code == 200
    ev = assert_ok(server.get(WSP + "/audit-events?page_size=100"))
    mine = [e for e in ev["audit_events"] if e["resource"].endswith("/functions/" + fid)]
    assert [e["action"] for e in mine] == ["function.delete", "function.deploy", "function.update", "function.create"]
    assert mine[3]["before"] is None and mine[3]["after"]["id"] == fid
    assert mine[0]["after"] is None


# ---- §13.6 preview: the request ---------------------------------------------------------------


GOOD_SRC = {"type": "SOURCE", "function": {"code": "async function onRequest() {}"},
            "payload": json.dumps({"payload": {"body": {}, "headers": {}, "queryParameters": {}}})}


@pytest.mark.parametrize("change", [
    {"type": None},                                    # no type anywhere
    {"type": "INSERT_DESTINATION"},
    {"function": None}, {"function": "code"},
    {"function": {"buildpack": "boreal"}},             # no code
    {"function": {"code": ""}},
    {"function": {"code": "x", "buildpack": "other"}},
    {"function": {"code": "x", "nope": 1}},
    {"payload": None}, {"payload": {"payload": {}}},   # not a string
    {"payload": "{not json"},
    {"payload": "[]"}, {"payload": "{}"}, {"payload": '{"payload": 5}'},
    {"payload": '{"payload": {"body": {}, "headers": {"A": [1]}}}'},
    {"payload": '{"payload": {"body": {}, "headers": []}}'},
    {"payload": '{"payload": {"body": {}, "queryParameters": {"a": 1}}}'},
    {"payload": '{"payload": {"body": {}, "cookies": {}}}'},
    {"session_id": 5},
    {"settings": [1]},
    {"extra": True},
])
def test_preview_request_errors(server, change):
    body = json.loads(json.dumps(GOOD_SRC))
    for k, v in change.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    assert_error(preview(server, body), 400, 3)


@pytest.mark.parametrize("payload", ["5", '"track"', "[]", "[1]", '{"type": 7}'])
def test_preview_destination_payload_errors(server, payload):
    body = {"type": "DESTINATION", "function": {"code": "x"}, "payload": payload}
    assert_error(preview(server, body), 400, 3)


def test_preview_type_from_query(server):
    body = {"function": {"code": "async function onTrack() {}"}, "payload": '{"type": "track"}'}
    assert_ok(server.post(FNS + "/preview?type=DESTINATION", json=body))
    assert_error(server.post(FNS + "/preview?type=SOURCE", json=dict(body, type="DESTINATION")), 400, 3)


def test_preview_without_runtime(start_server):
    """No Node.js: 200 with the spec's exact answer (config-api.md §13.6)."""
    srv = start_server("--rate-limit", "0", "--functions-node", "/nonexistent/node")
    b = preview_ok(srv, "SOURCE", S1, {"payload": {"body": S1A_BODY, "headers": {}, "queryParameters": {}}},
                   session_id="sess-1")
    assert b["invoke"]["success"] is False and b["invoke"]["output"] == ""
    assert b["invoke"]["error_reason"] == "runtime unavailable"
    assert b["logs"] == [] and b["logs_truncated"] is False and b["session_id"] == "sess-1"
    b = preview_ok(srv, "DESTINATION", D1, {"type": "track"})
    assert b["invoke"]["error_reason"] == "runtime unavailable" and b["session_id"]
    # a function-backed source's webhook: accepted (200) and retried later (§4.5, §4.6)
    fn = mk(srv, "SOURCE", code=S1)
    slug, src = fn_source(srv, fn)
    r = hook(srv, src["write_keys"][0], S1A_BODY)
    assert r.status_code == 200 and r.json() == {"success": True}, r.text
    assert debugger(srv, slug) == []


def test_preview_does_not_hold_server_threads(start_server):
    """Previews wait on the runtime with the connection suspended: with one server thread
    and four previews each running a function that sleeps a second, another request is
    still answered at once."""
    srv = start_server("--rate-limit", "0", "--threads", "1")
    if not runtime_available(srv):
        pytest.skip("the Functions runtime cannot run Node.js here")
    slow = {"type": "DESTINATION", "payload": '{"type": "track"}',
            "function": {"code": "async function onTrack() { await new Promise(r => setTimeout(r, 1000)); return 7 }"}}
    results = []

    def one():
        results.append(preview(srv, slow).json()["invoke"]["output"])
    ts = [threading.Thread(target=one) for _ in range(4)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert_ok(srv.get(WSP))
    took = time.monotonic() - t0
    for t in ts:
        t.join()
    assert results == ["7"] * 4
    assert took < 0.5, f"a GET waited {took:.2f}s behind running previews"


# ---- §13.6 preview with the runtime: functions-runtime.md §10 ------------------------------------


def src_payload(body, headers=None, query=None):
    return {"payload": {"body": body, "headers": headers or {}, "queryParameters": query or {}}}


def test_preview_s1(runtime):
    b = preview_ok(runtime, "SOURCE", S1, src_payload(S1A_BODY), session_id="s1a")
    assert b["invoke"]["success"] is True and b["invoke"]["error_reason"] is None, b
    assert json.loads(b["invoke"]["output"]) == S1A_OUT and b["logs"] == [] and b["session_id"] == "s1a"
    b = preview_ok(runtime, "SOURCE", S1, src_payload({"kind": "payment.failed"}))
    assert b["invoke"]["success"] is True and json.loads(b["invoke"]["output"]) == {"events": [], "objects": []}
    assert [l["message"] for l in b["logs"]] == ["ignored kind payment.failed"]
    b = preview_ok(runtime, "SOURCE", S1, src_payload(S1C_BODY))
    assert b["invoke"]["success"] is False and b["invoke"]["output"] == ""
    assert b["invoke"]["error_reason"] == "ValidationError: One of userId,anonymousId is required but not defined"


def test_preview_s2(runtime):
    settings = [{"name": "hookToken", "type": "string", "sensitive": True, "value": "s3cr3t"}]
    body = {"items": [{"sku": "A-1", "title": "Mug"}, {"sku": "B-2", "title": "Cap"}]}
    b = preview_ok(runtime, "SOURCE", S2, src_payload(body, {"X-Hook-Token": ["s3cr3t"]}, {"store": "berlin"}),
                   settings=settings)
    assert b["invoke"]["success"] is True, b
    assert json.loads(b["invoke"]["output"]) == {"events": [], "objects": [
        {"collection": "products", "id": "A-1", "properties": {"title": "Mug", "store": "berlin"}},
        {"collection": "products", "id": "B-2", "properties": {"title": "Cap", "store": "berlin"}}]}
    assert [l["message"] for l in b["logs"]] == ["stored 2 items for berlin"]
    b = preview_ok(runtime, "SOURCE", S2, src_payload(body, {"X-Hook-Token": ["nope"]}, {"store": "berlin"}),
                   settings=settings)
    assert b["invoke"]["success"] is False and b["invoke"]["error_reason"] == "ValidationError: bad hook token"
    assert b["logs"] == []


@pytest.mark.parametrize("case,code,ok,check", [
    ("R1", "async function onTrack(e){ return require('fs') }", False, lambda b: b["invoke"]["error_reason"].startswith("ReferenceError:")),
    ("R5", "async function onTrack(e){ throw 'plain string' }", False, lambda b: b["invoke"]["error_reason"] == "Error: plain string"),
    ("R6", "function onTrack(e){ return {sync: true} }", True, lambda b: json.loads(b["invoke"]["output"]) == {"sync": True}),
    ("R7", "async function onTrack(e){ console.log('x'.repeat(5000)); return 1 }", True, lambda b: b["logs_truncated"] is True),
    ("R8", "async function onTrack(e {", False, lambda b: b["invoke"]["error_reason"].startswith("SyntaxError:")),
    ("undefined", "async function onTrack(e){ }", True, lambda b: b["invoke"]["output"] == "null"),
    ("batch", "async function onBatch(es){ return es.map(e => e.event) }", True,
     lambda b: json.loads(b["invoke"]["output"]) == ["a", "b"]),
])
def test_preview_edge_vectors(runtime, case, code, ok, check):
    """functions-runtime.md §10.6 (and §9.3's "null" for undefined, onBatch for an array)."""
    payload = [{"type": "track", "event": "a"}, {"type": "track", "event": "b"}] if case == "batch" \
        else {"type": "track", "event": "x", "userId": "u"}
    b = preview_ok(runtime, "DESTINATION", code, payload)
    assert b["invoke"]["success"] is ok, (case, b)
    assert (b["invoke"]["error_reason"] is None) is ok and (b["invoke"]["output"] == "") is not ok
    assert check(b), (case, b)


class Mock:
    """A loopback endpoint answering a fixed status and recording what it got."""

    def __init__(self, status=200):
        self.status, self.got = status, []
        mock = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                mock.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n)))
                self.send_response(mock.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


E = {"type": "track", "event": "Order Completed", "userId": "u-7", "messageId": "m-77",
     "properties": {"revenue": 42.5}}


@pytest.mark.parametrize("case,event,status,ok,expect", [
    ("D1a", E, 200, True, {"status": 200}),
    ("D1b", E, 503, False, "RetryError: upstream status 503"),
    ("D1c", E, 404, False, "ValidationError: upstream rejected: 404"),
    ("D1d", dict(E, properties={"revenue": "42.5"}), 200, False,
     "InvalidEventPayload: properties.revenue must be a number"),
    ("D1e", {"type": "identify", "userId": "u-7"}, 200, False, "EventNotSupported: identify is not supported"),
    ("D1f", {"type": "page", "userId": "u-7", "name": "Home"}, 200, False, "EventNotSupported: page not supported"),
])
def test_preview_d1(runtime, case, event, status, ok, expect):
    mock = Mock(status)
    try:
        settings = [{"name": "endpoint", "value": f"http://127.0.0.1:{mock.port}/in"},
                    {"name": "apiKey", "sensitive": True, "value": "k1"}]
        b = preview_ok(runtime, "DESTINATION", D1, event, settings=settings)
        assert b["invoke"]["success"] is ok, (case, b)
        if ok:
            assert json.loads(b["invoke"]["output"]) == expect
            assert [l["message"] for l in b["logs"]] == ["sent m-77"]
            [(path, headers, data)] = mock.got
            assert path == "/in" and headers["authorization"] == "Basic azE6"
            assert headers["content-type"] == "application/json"
            assert json.loads(data) == {"name": "Order Completed", "user": "u-7", "value": 42.5}
        else:
            assert b["invoke"]["error_reason"] == expect and b["invoke"]["output"] == ""
            if case == "D1d":
                assert mock.got == []
    finally:
        mock.close()


# ---- instances: function-backed sources and destinations ------------------------------------------


def test_source_function_instance(server):
    fn = mk(server, "SOURCE", code=S2, settings=[{"name": "hookToken", "sensitive": True, "required": True},
                                                  {"name": "region"}])
    slug, src = fn_source(server, fn, [{"name": "hookToken", "value": "s3cr3t"}, {"name": "region", "value": "eu"}])
    assert src["catalog_name"] == f"catalog/sources/{fn['catalog_id']}"
    want = [{"name": "hookToken", "value": MASK, "type": "string"}, {"name": "region", "value": "eu", "type": "string"}]
    for got in (src, assert_ok(server.get(src_path(slug))),
                [s for s in assert_ok(server.get(SOURCES + "?page_size=100"))["sources"] if s["name"] == src["name"]][0]):
        fc = got["function_config"]
        assert re.match(r"^[0-9a-f]{24}$", fc[0].pop("secret_version"))
        assert fc == want, got
        assert "s3cr3t" not in json.dumps(got)
    # a plain catalog source has no function_config
    assert "function_config" not in assert_ok(server.get(src_path("js"))) if server.get(src_path("js")).status_code == 200 else True
    bad = [{"catalog_name": "catalog/sources/nope"},
           {"catalog_name": f"catalog/sources/{fn['catalog_id']}", "function_config": [{"name": "other", "value": "x"}]},
           {"catalog_name": f"catalog/sources/{fn['catalog_id']}", "function_config": [{"name": "region", "value": 5}]},
           {"catalog_name": f"catalog/sources/{fn['catalog_id']}", "function_config": {"region": "x"}},
           {"catalog_name": "catalog/sources/javascript", "function_config": []},
           # a destination function is not a source's catalog entry
           {"catalog_name": f"catalog/sources/{mk(server, 'DESTINATION')['catalog_id']}"}]
    for extra in bad:
        assert_error(server.post(SOURCES, json={"source": dict({"name": src_name(uniq("bad"))}, **extra)}), 400, 3)


def test_destination_function_instance(server):
    fn = mk(server, "DESTINATION", code=D1, settings=[
        {"name": "endpoint", "label": "Endpoint", "required": True},
        {"name": "apiKey", "label": "API key", "sensitive": True, "required": True}])
    slug = uniq("ds")
    assert_ok(server.post(SOURCES, json=source_body(slug)))
    dname = f"{src_name(slug)}/destinations/{fn['catalog_id']}"
    dpath = "/v1beta/" + dname
    body = {"destination": {"name": dname, "catalog_name": f"catalog/destinations/{fn['catalog_id']}",
                            "connection_mode": "CLOUD", "enabled": False,
                            "config": [{"name": f"{dname}/config/endpoint", "value": "http://127.0.0.1:9/in"},
                                       {"name": f"{dname}/config/apiKey", "value": "k1"}]}}
    d = assert_ok(server.post(src_path(slug) + "/destinations", json=body))
    assert d["display_name"] == fn["display_name"]
    cfg = {c["name"].rsplit("/", 1)[1]: c for c in d["config"]}
    assert cfg["endpoint"]["value"] == "http://127.0.0.1:9/in" and cfg["endpoint"]["display_name"] == "Endpoint"
    assert cfg["apiKey"]["value"] == MASK and "secret_version" in cfg["apiKey"]
    assert all(c["name"].startswith(dname + "/config/") for c in d["config"])
    for got in (assert_ok(server.get(dpath)), assert_ok(server.get(src_path(slug) + "/destinations"))["destinations"][0]):
        assert "k1" not in json.dumps(got) and got["display_name"] == fn["display_name"]
    # enable; the mask written back keeps the secret
    u = assert_ok(server.request("PATCH", dpath, json={
        "destination": {"enabled": True, "config": [{"name": f"{dname}/config/apiKey", "value": MASK}]},
        "update_mask": {"paths": ["destination.enabled", "destination.config"]}}))
    assert u["enabled"] is True
    assert {c["name"].rsplit("/", 1)[1]: c for c in u["config"]}["apiKey"]["secret_version"] == cfg["apiKey"]["secret_version"]
    # the function's new name shows on its instances at once (list and get)
    assert_ok(patch(server, fn["id"], {"display_name": "Renamed D1"}, ["function.display_name"]))
    assert assert_ok(server.get(dpath))["display_name"] == "Renamed D1"
    assert assert_ok(server.get(src_path(slug) + "/destinations"))["destinations"][0]["display_name"] == "Renamed D1"
    # errors: unknown setting, wrong catalog_name, required settings on enable, unknown catalog id
    for extra in ({"config": [{"name": "nope", "value": "x"}]},
                  {"catalog_name": "catalog/destinations/webhooks"},
                  {"enabled": True}):
        other = uniq("ds2")
        assert_ok(server.post(SOURCES, json=source_body(other)))
        n = f"{src_name(other)}/destinations/{fn['catalog_id']}"
        assert_error(server.post(src_path(other) + "/destinations", json={"destination": dict({"name": n}, **extra)}),
                     400, 3)
    assert_error(server.post(src_path(slug) + "/destinations",
                             json={"destination": {"name": f"{src_name(slug)}/destinations/{uniq('nofn')}"}}), 400, 3)
    # a source function's catalog id is not a destination
    sfn = mk(server, "SOURCE")
    assert_error(server.post(src_path(slug) + "/destinations",
                             json={"destination": {"name": f"{src_name(slug)}/destinations/{sfn['catalog_id']}"}}),
                 400, 3)


# ---- the source-function webhook (functions-runtime.md §4) ---------------------------------------


def test_webhook_errors(server):
    fn = mk(server, "SOURCE", code=S1)
    slug, src = fn_source(server, fn)
    key = src["write_keys"][0]
    r = hook(server, "no-such-key", {})
    assert r.status_code == 404 and r.json()["success"] is False
    plain = uniq("plain")
    pk = assert_ok(server.post(SOURCES, json=source_body(plain)))["write_keys"][0]
    assert hook(server, pk, {}).status_code == 404  # not a source function
    r = hook(server, key, method="GET")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    r = hook(server, key, raw=b'{"a": "' + b"x" * (512 * 1024) + b'"}')
    assert r.status_code == 413
    r = hook(server, key, raw=b"{nope")
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    r = hook(server, key, raw=b"a=1", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    # hostile bodies: bad UTF-8 in a form, nesting past the parser's depth cap
    r = hook(server, key, raw=b"a=\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    r = hook(server, key, raw=b"[" * 100000 + b"]" * 100000)
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    assert debugger(server, slug) == []


def test_webhook_missing_required_setting(server):
    fn = mk(server, "SOURCE", code=S1, settings=[{"name": "hookToken", "required": True, "sensitive": True}])
    slug, src = fn_source(server, fn)
    r = hook(server, src["write_keys"][0], S1A_BODY)
    assert r.status_code == 400 and r.json()["code"] == "invalid_settings", r.text
    assert debugger(server, slug) == []


def wait_events(srv, slug, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        ev = debugger(srv, slug)
        if len(ev) >= n or time.monotonic() > deadline:
            return ev
        time.sleep(0.1)


def test_webhook_s1_into_the_debugger(runtime):
    srv = runtime
    fn = mk(srv, "SOURCE", code=S1)
    slug, src = fn_source(srv, fn)
    key = src["write_keys"][0]
    r = hook(srv, key, S1A_BODY, query="?store=berlin")
    assert r.status_code == 200 and r.json() == {"success": True}, r.text
    ev = debugger(srv, slug)  # answered once durable: already listed
    assert sorted(e["type"] for e in ev) == ["identify", "track"], ev
    by = {e["type"]: e for e in ev}
    assert all(e["status"] == "ACCEPTED" and re.match(r"^api-", e["message_id"]) for e in ev)
    t = by["track"]["event"]
    assert t["event"] == "Payment Settled" and t["userId"] == "cust-42"
    assert t["properties"] == {"amount": 19.99, "currency": "EUR", "paymentId": "pay_9"}
    assert t["originalTimestamp"] == "2024-05-01T10:00:00Z" and "receivedAt" in t
    assert by["identify"]["event"]["traits"] == {"email": "ann@example.com"}
    assert by["identify"]["event"]["context"]["library"]["name"] == "unknown"
    # S1c: a permanent error is the caller's 400; nothing is ingested
    r = hook(srv, key, S1C_BODY)
    assert r.status_code == 400 and r.json()["code"] == "message_rejected", r.text
    assert "userId" in r.json()["message"]
    assert len(debugger(srv, slug)) == 2
    # a new code version runs only once deployed
    assert_ok(patch(srv, fn["id"], {"code": S1.replace("Payment Settled", "Payment Settled v2")}, ["function.code"]))
    assert hook(srv, key, S1A_BODY).status_code == 200
    names = [e["event"].get("event") for e in debugger(srv, slug) if e["type"] == "track"]
    assert names == ["Payment Settled", "Payment Settled"], names
    assert_ok(srv.post(fn_path(fn["id"]) + "/deploy"))
    assert hook(srv, key, S1A_BODY).status_code == 200
    names = [e["event"].get("event") for e in debugger(srv, slug) if e["type"] == "track"]
    assert names[0] == "Payment Settled v2", names


def test_webhook_s2_settings_and_headers(runtime):
    srv = runtime
    fn = mk(srv, "SOURCE", code=S2, settings=[{"name": "hookToken", "sensitive": True}])
    slug, src = fn_source(srv, fn, [{"name": "hookToken", "value": "s3cr3t"}])
    key = src["write_keys"][0]
    body = {"items": [{"sku": "A-1", "title": "Mug"}]}
    r = hook(srv, key, body, headers={"X-Hook-Token": "s3cr3t"}, query="?store=berlin")
    assert r.status_code == 200 and r.json() == {"success": True}, r.text
    assert debugger(srv, slug) == []  # objects go to warehouses only
    r = hook(srv, key, body, headers={"X-Hook-Token": "nope"})
    assert r.status_code == 400 and r.json() == {"success": False, "code": "message_rejected",
                                                 "message": "bad hook token"}


FLAKY = """let calls = 0
async function onRequest(request, settings) {
  calls++
  if (calls === 1) throw new RetryError('try later')
  Segment.track({ event: 'Second Try', userId: 'u-1', properties: { calls } })
}"""


def test_webhook_retry_error_is_retried(start_server, monkeypatch):
    """RetryError: the caller gets 200 at once, Manifold runs the function again later
    (functions-runtime.md §4.6; MANIFOLD_RETRY_TIME_SCALE shrinks the 1-3 minute wait)."""
    monkeypatch.setenv("MANIFOLD_RETRY_TIME_SCALE", "0.01")
    srv = start_server("--rate-limit", "0")
    if not runtime_available(srv):
        pytest.skip("the Functions runtime cannot run Node.js here")
    fn = mk(srv, "SOURCE", code=FLAKY)
    slug, src = fn_source(srv, fn)
    r = hook(srv, src["write_keys"][0], {"x": 1})
    assert r.status_code == 200 and r.json() == {"success": True}, r.text
    assert debugger(srv, slug) == []
    ev = wait_events(srv, slug, 1, timeout=15)
    assert [e["event"]["event"] for e in ev] == ["Second Try"], ev
    assert ev[0]["event"]["properties"] == {"calls": 2}


def test_webhook_concurrent_requests(runtime):
    """Many webhook calls at once: every caller gets its 200 and every event is stored once."""
    srv = runtime
    fn = mk(srv, "SOURCE", code=S1)
    slug, src = fn_source(srv, fn)
    key = src["write_keys"][0]
    codes = []

    def one(i):
        body = json.loads(json.dumps(S1A_BODY))
        body["payment"]["customer_ref"] = f"cust-{i}"
        codes.append(hook(srv, key, body).status_code)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert codes == [200] * 16
    ev = debugger(srv, slug)
    assert len(ev) == 32 and len({e["message_id"] for e in ev}) == 32
    assert sorted(e["event"]["userId"] for e in ev if e["type"] == "track") == sorted(f"cust-{i}" for i in range(16))

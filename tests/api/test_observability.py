"""Operating Manifold (issue 13, docs/operations.md): GET /metrics (Prometheus text format,
promtool-clean, requests counted under the route table's pattern), --metrics off,
--log-format json (one JSON object per line, access lines with their fields), secrets never
in the logs in either format, and GET /v1beta/openapi.json (generated from the route table,
every route present, clean under Redocly's recommended rules)."""
import base64
import json
import pathlib
import re
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from conftest import BIN, ROOT, TOKEN_RE, assert_error, assert_ok, npm_ci
from helpers_iam import route_table

WS = "myworkspace"
WS_PATH = f"/v1beta/workspaces/{WS}"
OPENAPI_DIR = ROOT / "tests" / "openapi"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(srv):
    r = requests.get(srv.url("/metrics"), timeout=30)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return r.text


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def families(text):
    return {l.split()[2]: l.split()[3] for l in text.splitlines() if l.startswith("# TYPE ")}


def create_source(srv, token="__default__"):
    slug = "obs-" + uuid.uuid4().hex[:10]
    b = assert_ok(srv.post(f"{WS_PATH}/sources", token=token, json={"source": {
        "name": f"workspaces/{WS}/sources/{slug}", "catalog_name": "catalog/sources/javascript"}}))
    b = b.get("source", b)  # a create answers the resource itself (Segment quirk)
    return slug, b["write_keys"][0]


# ---- /metrics -------------------------------------------------------------------------------

def test_metrics_series_and_exact_counting(start_server):
    srv = start_server("--rate-limit", "0")
    text = scrape(srv)
    fam = families(text)
    for name, kind in (("manifold_http_requests_total", "counter"),
                       ("manifold_http_request_duration_seconds", "histogram"),
                       ("manifold_events_received_total", "counter"),
                       ("manifold_deliveries_total", "counter"),
                       ("manifold_delivery_queue_depth", "gauge"),
                       ("manifold_db_pool_connections_in_use", "gauge"),
                       ("manifold_db_pool_waiting", "gauge"),
                       ("manifold_db_pool_connections", "gauge"),
                       ("process_start_time_seconds", "gauge"),
                       ("process_cpu_seconds_total", "counter"),
                       ("process_resident_memory_bytes", "gauge"),
                       ("process_open_fds", "gauge")):
        assert fam.get(name) == kind, (name, fam)
    before = parse(text)
    for outcome in ("success", "retried", "discarded"):
        assert ("manifold_deliveries_total", frozenset({("outcome", outcome)})) in before
    start = value(before, "process_start_time_seconds")
    assert abs(time.time() - start) < 600, start
    assert value(before, "manifold_db_pool_connections") >= 1

    route = "/v1beta/workspaces/{ws}"
    key = dict(method="GET", route=route, code="200")
    n0 = value(before, "manifold_http_requests_total", **key)
    c0 = value(before, "manifold_http_request_duration_seconds_count", method="GET", route=route)
    N = 7
    for _ in range(N):
        assert_ok(srv.get(WS_PATH))
    # a denied one counts under its own code, and a made-up path under the fixed label
    assert_error(srv.get(WS_PATH, token=None), 401, 16)
    secret_path = "/v1beta/nothing-here-" + uuid.uuid4().hex
    assert_error(srv.get(secret_path), 404, 5)
    after_text = scrape(srv)
    after = parse(after_text)
    assert value(after, "manifold_http_requests_total", **key) == n0 + N
    assert value(after, "manifold_http_request_duration_seconds_count", method="GET", route=route) == c0 + N + 1
    assert value(after, "manifold_http_requests_total", method="GET", route=route, code="401") >= 1
    assert value(after, "manifold_http_requests_total", method="GET", route="unmatched", code="404") >= 1
    # labels are patterns, never raw paths
    assert secret_path not in after_text and f"/workspaces/{WS}" not in after_text
    routes = {dict(l)["route"] for (n, l) in after if n == "manifold_http_requests_total"}
    patterns = {r["path"] for r in route_table()} | {"unmatched"}
    assert routes <= patterns | {"/v1/track", "/v1/batch"}, routes - patterns
    # the histogram's buckets are cumulative and end in +Inf == count
    buckets = sorted((float(dict(l)["le"]), v) for (n, l), v in after.items()
                     if n == "manifold_http_request_duration_seconds_bucket" and dict(l)["route"] == route
                     and dict(l)["le"] != "+Inf")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert value(after, "manifold_http_request_duration_seconds_bucket", method="GET", route=route,
                 le="+Inf") == c0 + N + 1


def test_metrics_count_intake_events(start_server):
    srv = start_server("--rate-limit", "0")
    _, key = create_source(srv)
    before = value(parse(scrape(srv)), "manifold_events_received_total")
    auth = (key, "")
    r = requests.post(srv.url("/v1/track"), auth=auth, json={"event": "A", "userId": "u1"}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(srv.url("/v1/batch"), auth=auth, timeout=30, json={"batch": [
        {"type": "track", "event": "B", "userId": "u1"}, {"type": "identify", "userId": "u2"},
        {"type": "page", "name": "Home", "userId": "u3"}]})
    assert r.status_code == 200, r.text
    after = parse(scrape(srv))
    assert value(after, "manifold_events_received_total") == before + 4
    assert value(after, "manifold_http_requests_total", method="POST", route="/v1/track", code="200") == 1
    assert value(after, "manifold_http_requests_total", method="POST", route="/v1/batch", code="200") == 1


def promtool():
    exe = shutil.which("promtool")
    if not exe:
        pytest.fail("promtool is needed (Debian's prometheus package; scripts/install-deps.sh test installs it)")
    return exe


def test_metrics_pass_promtool(start_server):
    srv = start_server("--rate-limit", "0")
    create_source(srv)
    requests.get(srv.url("/v1beta/no/such/thing"), timeout=30)
    text = scrape(srv)
    p = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (p.stdout, p.stderr, text[:3000])
    # and promtool does fail on a broken exposition (the check can fail)
    bad = text.replace("# TYPE manifold_events_received_total counter", "# TYPE manifold_events_received_total gauge")
    p = subprocess.run([promtool(), "check", "metrics"], input=bad, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 or p.stdout.strip() or p.stderr.strip()


def test_metrics_need_no_token_and_can_be_turned_off(start_server):
    srv = start_server("--metrics", "off")
    assert_error(requests.get(srv.url("/metrics"), timeout=30), 404, 5)
    assert_error(srv.get("/metrics"), 404, 5)
    assert_ok(srv.get(WS_PATH))  # the rest still works
    on = start_server()
    r = requests.get(on.url("/metrics"), timeout=30)  # no Authorization header at all
    assert r.status_code == 200 and "manifold_http_requests_total" in r.text


# ---- logs -------------------------------------------------------------------------------------

def json_lines(srv):
    lines = [l for l in srv.stderr().splitlines() if l.strip()]
    out = []
    for l in lines:
        try:
            out.append(json.loads(l))
        except json.JSONDecodeError:
            pytest.fail(f"a stderr line that is not JSON: {l!r}")
    return out


def test_json_log_lines(start_server):
    srv = start_server("--log-format", "json", "--rate-limit", "0")
    r = srv.get(WS_PATH)
    assert_ok(r)
    rid = r.headers["X-Request-Id"]
    r404 = requests.get(srv.url("/v1beta/unknown/" + uuid.uuid4().hex), timeout=30)
    srv.stop()
    lines = json_lines(srv)
    assert lines
    for o in lines:
        assert isinstance(o, dict) and {"time", "level", "msg"} <= set(o), o
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", o["time"]), o
        assert o["level"] in ("error", "warn", "info", "debug"), o
    access = {o["request_id"]: o for o in lines if o["msg"] == "access"}
    a = access[rid]
    assert a["method"] == "GET" and a["route"] == "/v1beta/workspaces/{ws}" and a["status"] == 200, a
    assert isinstance(a["duration_ms"], (int, float)) and a["duration_ms"] >= 0, a
    assert a["token_id"] == 1, a  # the bootstrap token is access-tokens/1
    b = access[r404.headers["X-Request-Id"]]
    assert b["route"] == "unmatched" and b["status"] == 404 and b["token_id"] is None, b
    assert any(o["msg"].startswith("manifold listening") for o in lines)


def test_text_log_stays_the_default(start_server):
    srv = start_server()
    r = srv.get(WS_PATH)
    srv.stop()
    text = srv.stderr()
    line = next(l for l in text.splitlines() if r.headers["X-Request-Id"] in l)
    assert re.match(r"^\S+Z info access request_id=\S+ method=GET route=/v1beta/workspaces/\{ws\} status=200 "
                    r"duration_ms=[\d.]+ token_id=1$", line), line
    assert not any(l.startswith("{") for l in text.splitlines())


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_in_logs(start_server, fmt):
    """Every kind of secret the server is sent, in headers and bodies; none may appear in
    stderr (the bootstrap banner prints the first token by design, so it is not used)."""
    srv = start_server("--log-format", fmt, "--log-level", "debug", "--rate-limit", "0")
    email, password = f"obs-{uuid.uuid4().hex[:8]}@example.com", "Pw-" + uuid.uuid4().hex
    srv.add_user(email, password)
    t = assert_ok(srv.post("/v1beta/access-tokens", token=None, auth=(email, password), json={"access_token": {
        "description": "obs", "scopes": "workspace", "workspace_names": [f"workspaces/{WS}"]}}))
    token = t["token"]
    assert TOKEN_RE.match(token)
    # a wrong password too (it is what a log line about a failure would be tempted to show)
    wrong = "Wrong-" + uuid.uuid4().hex
    assert_error(srv.post("/v1beta/access-tokens", token=None, auth=(email, wrong), json={}), 401, 16)
    slug, key = create_source(srv, token=token)
    dest_secret = "dest-secret-" + uuid.uuid4().hex
    r = srv.post(f"{WS_PATH}/sources/{slug}/destinations", token=token, json={"destination": {
        "name": f"workspaces/{WS}/sources/{slug}/destinations/actions-airship",
        "config": [{"name": "access_token", "value": dest_secret}]}})
    assert_ok(r)
    r = requests.post(srv.url("/v1/track"), auth=(key, ""), json={"event": "E", "userId": "u"}, timeout=30)
    assert r.status_code == 200
    r = requests.post(srv.url("/v1/track"), json={"writeKey": key, "event": "E", "userId": "u"}, timeout=30)
    assert r.status_code == 200
    made_up = "Bearer made-up-" + uuid.uuid4().hex
    requests.get(srv.url("/healthz"), headers={"Authorization": made_up}, timeout=30)
    assert_error(srv.get(WS_PATH, token=None, headers={"Authorization": made_up}), 401, 16)
    assert_ok(srv.get(WS_PATH, token=token))
    srv.stop()
    text = srv.stderr()
    assert "access" in text  # the access lines were written
    basic = base64.b64encode(f"{email}:{password}".encode()).decode()
    for secret in (token, token.split(".")[1], password, wrong, key, base64.b64encode(f"{key}:".encode()).decode(),
                   dest_secret, made_up, made_up.split()[1], basic):
        assert secret not in text, f"a secret in the {fmt} log: {secret[:12]}…"


# ---- the OpenAPI document ----------------------------------------------------------------------

def fetch_openapi(srv):
    r = requests.get(srv.url("/v1beta/openapi.json"), timeout=30)  # no token
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_openapi_has_every_route(server):
    doc = fetch_openapi(server)
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "An access token."}
    err = doc["components"]["schemas"]["Error"]
    assert set(err["properties"]) == {"error", "code"} and set(err["required"]) == {"error", "code"}
    # the dashboard's files (GET /, /ui, /ui/{file}) are pages, not API operations
    rows = [r for r in route_table() if r["path"] != "/" and r["path"].split("/")[1] != "ui"]
    assert len(rows) == len(route_table()) - 3
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert ops == {(r["method"], r["path"]) for r in rows}
    for r in rows:
        op = doc["paths"][r["path"]][r["method"].lower()]
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", r["path"])), r
        assert ("security" in op and op["security"] == []) == (r["action"] == "public"), r
        assert "4XX" in op["responses"] and "200" in op["responses"], r
    # kinds give schemas, lists page, updates name their mask paths
    src_list = doc["paths"][f"/v1beta/workspaces/{{ws}}/sources"]["get"]
    assert {"page_size", "page_token"} <= {p["name"] for p in src_list["parameters"]}
    body = src_list["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["properties"]["sources"]["items"] == {"$ref": "#/components/schemas/Source"}
    assert "write_keys" in doc["components"]["schemas"]["Source"]["properties"]
    patch = doc["paths"]["/v1beta/workspaces/{ws}/sources/{src}/destinations/{dest}"]["patch"]
    mask = patch["requestBody"]["content"]["application/json"]["schema"]["properties"]["update_mask"]
    assert "enabled" in mask["properties"]["paths"]["items"]["enum"]
    assert {"If-Match", "validate_only"} <= {p["name"] for p in patch["parameters"]}
    audit = doc["paths"]["/v1beta/workspaces/{ws}/audit-events"]["get"]
    assert {"page_size", "page_token", "start_time", "end_time", "resource"} <= {p["name"] for p in audit["parameters"]}


@pytest.fixture(scope="session")
def redocly():
    """Redocly CLI, pinned in tests/openapi (npm ci when node_modules is missing or stale)."""
    node = npm_ci(OPENAPI_DIR, "the OpenAPI lint")
    exe = OPENAPI_DIR / "node_modules" / ".bin" / "redocly"
    assert exe.exists(), exe
    return [node, str(exe.resolve())]


def lint(redocly, doc, tmp_path):
    f = tmp_path / "openapi.json"
    f.write_text(json.dumps(doc))
    return subprocess.run(redocly + ["lint", "--config", str(OPENAPI_DIR / "redocly.yaml"), "--format", "stylish",
                                     str(f)], cwd=OPENAPI_DIR, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300)


def test_openapi_lints_clean(server, redocly, tmp_path):
    doc = fetch_openapi(server)
    p = lint(redocly, doc, tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "is valid" in out and "warning" not in out.lower(), out
    # the linter can fail: an operation without its path parameter is an error
    broken = json.loads(json.dumps(doc))
    op = broken["paths"]["/v1beta/workspaces/{ws}"]["get"]
    op["parameters"] = [p for p in op["parameters"] if p["name"] != "ws"]
    assert lint(redocly, broken, tmp_path).returncode != 0


def test_metrics_label_the_function_webhook_by_its_pattern(start_server):
    """POST /v1/functions/{write_key} counts under its pattern; the key never becomes a label."""
    srv = start_server("--rate-limit", "0")
    key = "nokey" + uuid.uuid4().hex
    labels = dict(method="POST", route="/v1/functions/{write_key}", code="404")
    before = value(parse(scrape(srv)), "manifold_http_requests_total", **labels)
    for _ in range(3):
        r = requests.post(srv.url("/v1/functions/" + key), json={"a": 1}, timeout=30)
        assert r.status_code == 404, r.text
    text = scrape(srv)
    assert value(parse(text), "manifold_http_requests_total", **labels) == before + 3
    assert key not in text

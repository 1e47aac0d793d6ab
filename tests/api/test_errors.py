"""The error model (§1.3), authentication and scopes (§1.2), rate limiting (§1.4)."""
import concurrent.futures
import time

import pytest
import requests

from conftest import DEFAULT_WS, assert_error, assert_ok

INSUFFICIENT = {"error": "insufficient scope", "code": 7}

# Every route of the foundation with a valid path; write routes marked W.
READ_ROUTES = [
    ("GET", "/v1beta/catalog/sources"),
    ("GET", "/v1beta/catalog/sources/javascript"),
    ("GET", "/v1beta/catalog/destinations"),
    ("GET", "/v1beta/catalog/destinations/customer.io"),
    ("GET", "/v1beta/workspaces"),
    ("GET", "/v1beta/workspaces/" + DEFAULT_WS),
]
WRITE_ROUTES = [
    ("POST", "/v1beta/access-tokens"),
    ("GET", "/v1beta/access-tokens"),
    ("GET", "/v1beta/access-tokens/1"),
    ("DELETE", "/v1beta/access-tokens/1"),
]


@pytest.fixture(scope="module")
def srv(server):
    server.read_token = server.create_token(scope="workspace:read", description="reader")
    return server


@pytest.mark.parametrize("method,path", READ_ROUTES + WRITE_ROUTES)
@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer ", "Bearer x", "bearer nope.nope",
                                  "Token abc", "Basic Zm9vOmJhcg==", "Bearer a.b.c"])
def test_unauthenticated(srv, method, path, auth):
    headers = {} if auth is None else {"Authorization": auth}
    r = srv.request(method, path, token=None, headers=headers, json={})
    assert_error(r, 401, 16)


@pytest.mark.parametrize("method,path", READ_ROUTES)
def test_read_routes_with_read_token(srv, method, path):
    assert_ok(srv.request(method, path, token=srv.read_token))


@pytest.mark.parametrize("method,path", WRITE_ROUTES)
def test_write_routes_with_read_token(srv, method, path):
    body = {"access_token": {"description": "d", "scopes": "workspace",
                             "workspace_names": ["workspaces/" + DEFAULT_WS]}}
    r = srv.request(method, path, token=srv.read_token, json=body if method == "POST" else None)
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == INSUFFICIENT  # exactly, message included


def test_revoked_token_is_unauthenticated(srv):
    tok = srv.create_token(description="short-lived")
    assert_ok(srv.get("/v1beta/workspaces", token=tok))
    lst = assert_ok(srv.get("/v1beta/access-tokens", params={"page_size": 100}))
    name = [t["name"] for t in lst["access_tokens"] if t["description"] == "short-lived"][0]
    assert srv.delete("/v1beta/" + name).text.strip() == "{}"
    assert_error(srv.get("/v1beta/workspaces", token=tok), 401, 16)
    assert_error(srv.get("/v1beta/catalog/sources", token=tok), 401, 16)


def test_token_with_whitespace_or_extra_bytes_is_refused(srv):
    for t in (srv.token + "x", srv.token[:-1], srv.token.upper(), srv.token + "\t", "x" * 5000):
        r = srv.get("/v1beta/workspaces", token=None, headers={"Authorization": "Bearer " + t})
        assert_error(r, 401, 16)


@pytest.mark.parametrize("path", [
    "/v1beta", "/v1beta/", "/v1",  # "/" is the dashboard (test_dashboard.py)
    "/v1beta/nope", "/v1beta/catalog", "/v1beta/catalog/sources/x/y",
    "/v1beta/workspaces/myworkspace/nope", "/v1beta/access-tokens/1/x", "/V1BETA/workspaces",
    "/v1beta/workspaces/myworkspace/sources/js/destinations/ga/filters/x/y/z/w/v/u/t/s",
    "/healthz/x", "/favicon.ico",
])
@pytest.mark.parametrize("token", ["__default__", None])
def test_unknown_path_is_404(srv, path, token):
    assert_error(srv.get(path, token=token), 404, 5)


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1beta/workspaces"), ("DELETE", "/v1beta/workspaces"), ("PUT", "/v1beta/workspaces/myworkspace"),
    ("PATCH", "/v1beta/workspaces/myworkspace"), ("DELETE", "/v1beta/workspaces/myworkspace"),
    ("POST", "/v1beta/catalog/sources"), ("DELETE", "/v1beta/catalog/destinations/customer.io"),
    ("PUT", "/v1beta/access-tokens"), ("DELETE", "/v1beta/access-tokens"), ("POST", "/v1beta/access-tokens/1"),
    ("PATCH", "/v1beta/access-tokens/1"), ("OPTIONS", "/v1beta/workspaces"), ("PUT", "/healthz"),
])
def test_wrong_method_is_404(srv, method, path):
    assert_error(srv.request(method, path, json={}), 404, 5)


def test_head_request_does_not_crash(srv):
    r = srv.request("HEAD", "/v1beta/workspaces")
    assert r.status_code in (200, 404)
    assert_ok(srv.get("/v1beta/workspaces"))


def test_success_bodies_never_have_error_key(srv):
    """§1.1: the TypeScript client treats any JSON with an `error` key as a failure."""
    for method, path in READ_ROUTES + [("GET", "/v1beta/access-tokens"), ("GET", "/healthz"), ("GET", "/readyz")]:
        assert_ok(srv.request(method, path))
    t = assert_ok(srv.post("/v1beta/access-tokens", json={"access_token": {
        "description": "error", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}))
    assert_ok(srv.get("/v1beta/" + t["name"]))
    assert_ok(srv.delete("/v1beta/" + t["name"]))


# ---- rate limiting (§1.4) -------------------------------------------------------------


def burst(srv, token, n):
    """n requests back to back on one connection; returns (responses, seconds taken)."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token
    t0 = time.monotonic()
    rs = [s.get(srv.url("/v1beta/workspaces")) for _ in range(n)]
    return rs, time.monotonic() - t0


def allowed_max(rate, seconds):
    """Most requests a token bucket of `rate` (burst `rate`) lets through in `seconds`."""
    return rate + int(seconds * rate) + 1


def test_rate_limit_burst(start_server):
    s = start_server("--rate-limit", "5")
    rs, took = burst(s, s.token, 30)
    ok = [r for r in rs if r.status_code == 200]
    limited = [r for r in rs if r.status_code == 429]
    assert len(ok) + len(limited) == len(rs), [r.status_code for r in rs]
    assert 5 <= len(ok) <= allowed_max(5, took), ([r.status_code for r in rs], took)
    assert rs[0].status_code == 200 and limited
    for r in ok:
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert 0 <= int(r.headers["X-RateLimit-Remaining"]) <= 4
        assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time()) - 1
    for r in limited:
        assert_error(r, 429, 8)
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time()) - 1
        assert 1 <= int(r.headers["Retry-After"]) <= 2
    # a fresh bucket holds 5: the first request leaves 4
    assert rs[0].headers["X-RateLimit-Remaining"] == "4"


def test_rate_limit_is_per_token_and_refills(start_server):
    s = start_server("--rate-limit", "5")
    other = s.create_token(description="second")
    rs, _ = burst(s, s.token, 30)
    assert any(r.status_code == 429 for r in rs)
    assert_ok(s.get("/v1beta/workspaces", token=other))  # a different token is not limited
    time.sleep(1.3)
    assert_ok(s.get("/v1beta/workspaces"))  # refilled
    # health checks are never limited
    for _ in range(20):
        assert_ok(s.get("/healthz", token=None))


def test_rate_limit_applies_to_errors_and_parallel_clients(start_server):
    s = start_server("--rate-limit", "5")
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda _: requests.get(s.url("/v1beta/catalog/sources/nope"),
                                                headers={"Authorization": "Bearer " + s.token}), range(32)))
    took = time.monotonic() - t0
    codes = sorted(r.status_code for r in rs)
    assert codes.count(404) + codes.count(429) == 32, codes
    assert 5 <= codes.count(404) <= allowed_max(5, took), (codes, took)
    assert codes.count(429) > 0
    for r in rs:
        assert_error(r, r.status_code, 5 if r.status_code == 404 else 8)


def test_rate_limit_zero_disables(start_server):
    s = start_server("--rate-limit", "0")
    rs, _ = burst(s, s.token, 80)
    assert all(r.status_code == 200 for r in rs)
    assert "X-RateLimit-Limit" not in rs[0].headers

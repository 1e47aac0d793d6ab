"""Health checks, start-up (bootstrap), default settings and SIGTERM draining."""
import re
import signal
import socket
import time

import requests

from conftest import (BACKEND, DEFAULT_WS, TOKEN_RE, assert_error, assert_ok, connect, read_response,
                      sanitizer_lines)


def test_healthz_needs_no_token(server):
    for headers in ({}, {"Authorization": "Bearer garbage"}):
        r = server.get("/healthz", token=None, headers=headers)
        assert assert_ok(r) == {"status": "ok"}
        assert "X-RateLimit-Limit" not in r.headers


def test_readyz_needs_no_token_and_names_the_backend(server):
    r = server.get("/readyz", token=None)
    b = assert_ok(r)
    assert b["status"] == "ready"
    assert b["database"] in (("sqlite",) if BACKEND == "sqlite" else ("postgres", "postgresql")), b


def test_health_wrong_method_is_404(server):
    assert_error(server.post("/healthz", token=None), 404, 5)
    assert_error(server.delete("/readyz", token=None), 404, 5)


def test_every_response_has_a_request_id(server):
    ids = set()
    for path in ("/healthz", "/v1beta/workspaces", "/nope"):
        r = server.get(path)
        assert r.headers.get("X-Request-Id"), r.headers
        ids.add(r.headers["X-Request-Id"])
    assert len(ids) == 3


def test_bootstrap_token_file(server):
    tok_file = server.db.token_file
    assert tok_file.stat().st_mode & 0o777 == 0o600
    assert TOKEN_RE.match(tok_file.read_text().strip())
    ws = assert_ok(server.get("/v1beta/workspaces"))
    assert [w["name"] for w in ws["workspaces"]] == ["workspaces/" + DEFAULT_WS]


def test_bootstrap_token_file_without_var_dir(start_server):
    """The token file is written even when nothing else created its directory (with
    PostgreSQL and --key-file outside ./var, only the token file needs ./var)."""
    s = start_server(make_var=False)
    assert s.db.token_file.exists(), (
        f"bootstrap token not written to {s.db.token_file}; stderr:\n{s.stderr()[-2000:]}")
    assert TOKEN_RE.match(s.db.token_file.read_text().strip())
    assert s.db.token_file.stat().st_mode & 0o777 == 0o600


def test_restart_keeps_data_and_does_not_bootstrap_again(start_server):
    a = start_server()
    tok = a.token
    extra = a.create_token(description="survives restart")
    assert a.stop() == 0
    first = a.db.token_file.read_text()
    a.token = None
    a.start()
    assert a.token == tok and a.db.token_file.read_text() == first
    for t in (tok, extra):
        ws = assert_ok(a.get("/v1beta/workspaces", token=t))
        assert len(ws["workspaces"]) == 1


def test_default_rate_limit_headers(start_server):
    s = start_server()  # no --rate-limit: the default is 60 per second per token
    r = s.get("/v1beta/workspaces")
    assert_ok(r)
    assert r.headers["X-RateLimit-Limit"] == "60"
    assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < 60
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_bad_flags_exit_2():
    import subprocess
    from conftest import BIN
    for args in (["--no-such-flag"], ["--listen", "nonsense"], ["--rate-limit", "-1"],
                 ["--max-body", "10"], ["--log-level", "loud"], ["positional"]):
        p = subprocess.run([BIN, "serve"] + args, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "usage" in p.stderr
        assert not sanitizer_lines(p.stderr)


def test_sigterm_exits_zero(start_server):
    s = start_server()
    assert_ok(s.get("/v1beta/workspaces"))
    t0 = time.monotonic()
    assert s.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 10
    assert "received SIGTERM" in s.stderr()


def test_sigint_exits_zero(start_server):
    s = start_server()
    assert s.stop(signal.SIGINT) == 0


def test_sigterm_drains_in_flight_request(start_server):
    s = start_server("--request-timeout", "20")
    body = b'{"access_token": {"description": "drain", "scopes": "workspace", ' \
           b'"workspace_names": ["workspaces/myworkspace"]}}'
    c = connect(s.port)
    head = (f"POST /v1beta/access-tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    c.sendall(head + body[:10])  # the request is in flight: headers read, body pending
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert s.proc.poll() is None, "server exited with a request in flight"
    # no new connections are served while draining
    try:
        n = connect(s.port, timeout=3)
        n.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        late = read_response(n, timeout=2)
        n.close()
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout):
        late = None
    assert late is None, f"a new connection was served during the drain: {late.status}"
    c.sendall(body[10:])
    r = read_response(c, timeout=15)
    c.close()
    assert r is not None and r.status == 200, r and (r.status, r.body)
    out = r.json()
    assert TOKEN_RE.match(out["token"])
    assert s.stop() == 0


def test_request_dropped_by_mhd_does_not_stall_shutdown(start_server):
    """A request MHD gives up on before our handler runs (its per-connection pool runs out
    while parsing a huge argument list) must not count as in flight forever nor leak: the
    server still stops at once on SIGTERM, with no LeakSanitizer report (checked at
    teardown)."""
    s = start_server()
    q = "&".join(f"p{i}=v" for i in range(3000))
    c = connect(s.port)
    c.sendall(f"GET /v1beta/catalog/sources?{q} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(1.0)
    assert_ok(s.get("/healthz", token=None))
    t0 = time.monotonic()
    assert s.stop() == 0
    took = time.monotonic() - t0
    c.close()
    assert took < 10, f"SIGTERM took {took:.1f}s: a dropped request was still counted in flight"

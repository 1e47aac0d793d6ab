"""Group commit on SQLite: a write waiting for its group to become durable gives its server
thread back (the connection is suspended), so a group holds whatever arrived during one
fsync, not at most one write per server thread.

With `--threads 1`, a server whose writers held their thread until durable could never
put two creates in one COMMIT; here dozens of connections send their creates at once and
the debug log's "group commit: N transactions" lines must show groups of several. Every
answer is checked against what a later GET returns, and the connections are reused for a
second round (a resumed connection keeps keep-alive).

Always on SQLite (group commit is the single-writer path), whatever the suite's backend."""
import json
import re

from conftest import assert_ok, connect, read_response
from test_crash import SqliteDb

CONNECTIONS = 48
ROUNDS = 3
GROUP_RE = re.compile(r"group commit: (\d+) transactions")


def post_bytes(port, token, slug):
    body = json.dumps({"source": {"name": f"workspaces/myworkspace/sources/{slug}",
                                  "catalog_name": "catalog/sources/javascript"}}).encode()
    head = (f"POST /v1beta/workspaces/myworkspace/sources HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def test_groups_grow_with_load_not_threads(start_server, tmp_path):
    srv = start_server("--rate-limit", "0", "--threads", "1", "--log-level", "debug",
                       db=SqliteDb(tmp_path / "db"))
    socks = [connect(srv.port, timeout=30) for _ in range(CONNECTIONS)]
    answered = {}
    try:
        for rnd in range(ROUNDS):
            slugs = [f"g{rnd}-{i:03d}" for i in range(CONNECTIONS)]
            # Send every request before reading any answer: they all wait at once.
            for s, slug in zip(socks, slugs):
                s.sendall(post_bytes(srv.port, srv.token, slug))
            for s, slug in zip(socks, slugs):
                r = read_response(s, timeout=30)
                assert r is not None and r.status == 200, (slug, r and r.status, r and r.body[:300])
                assert not r.closed and r.headers.get("connection", "").lower() != "close"
                answered[slug] = r.json()
    finally:
        for s in socks:
            s.close()

    for slug, body in answered.items():
        g = srv.get(f"/v1beta/workspaces/myworkspace/sources/{slug}")
        assert_ok(g)
        assert g.json() == body

    groups = [int(n) for n in GROUP_RE.findall(srv.stderr())]
    assert sum(groups) >= CONNECTIONS * ROUNDS, groups
    # One server thread: before, every group held exactly one create.
    assert max(groups) >= 4, f"largest group {max(groups)} with one server thread: {groups}"

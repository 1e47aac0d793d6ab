"""Segment's own Node SDKs against the real server (tracking-api.md §12 T22, §3, §5, §6, §11).

Each SDK (tests/sdk: package.json and package-lock.json pin them) is pointed at the server
under test with the write key of a fresh source, sends the seven calls of T22 (identify,
2× track, page, screen, group, alias; four with caller-chosen messageIds, three with the
SDK's own) and flushes; tests/sdk/send.js prints what the SDK put on the wire. Then the
debugger API must show every event with the SDK's messageId, type and payload, enriched as
§6 says (receivedAt, the clock-skew-corrected timestamp, originalTimestamp, sentAt from the
envelope, context.library exactly as the SDK sent it), and events:summary must count 7
received and 7 accepted.

The SDKs and how they authenticate (§3):
  next     @segment/analytics-node 2.2.1 (engines: node >= 18): body writeKey only
  next3    @segment/analytics-node 3.1.0 (engines: node >= 20, runs on 18 too): Basic + body
  classic  analytics-node 6.2.0 (engines: node >= 4): Basic only, two POSTs (§11.2)

Node and npm come from `scripts/install-deps.sh test`; the first test that needs them runs
`npm ci` in tests/sdk when its node_modules is missing or older than the lock file.
"""
import datetime
import json
import os
import pathlib
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, assert_ok, npm_ci

SDK_DIR = ROOT / "tests" / "sdk"
WS_PATH = "/v1beta/workspaces/myworkspace"
ACCEPTED = "ACCEPTED"  # the debugger's status of an accepted event (DUPLICATE, BLOCKED, REJECTED otherwise)
CALL_TYPES = ["identify", "track", "track", "page", "screen", "group", "alias"]
SDKS = {
    # sdk: (package name in context.library, version, requests expected for the seven calls)
    "next": ("@segment/analytics-node", "2.2.1", 1),
    "next3": ("@segment/analytics-node", "3.1.0", 1),
    "classic": ("analytics-node", "6.2.0", 2),
}


@pytest.fixture(scope="session")
def node():
    """The node binary, with tests/sdk's pinned packages installed (npm ci when needed)."""
    return npm_ci(SDK_DIR, "the SDK tests")


def create_source(server, prefix):
    slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
    r = server.post(f"{WS_PATH}/sources", json={"source": {
        "name": f"workspaces/myworkspace/sources/{slug}", "catalog_name": "catalog/sources/javascript"}})
    body = assert_ok(r)
    src = body.get("source", body)
    keys = src["write_keys"]
    assert isinstance(keys, list) and keys and isinstance(keys[0], str), src
    return slug, keys[0]


def run_sdk(node, sdk, server, write_key):
    run_id = uuid.uuid4().hex[:12]
    p = subprocess.run([node, str(SDK_DIR / "send.js"), sdk, server.url(""), write_key, run_id],
                       cwd=SDK_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"send.js {sdk} printed no JSON (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    assert p.returncode == 0 and not out["errors"], (
        f"send.js {sdk} failed (exit {p.returncode}): {out['errors']}\nstderr: {p.stderr}\n"
        f"server stderr:\n{server.stderr()[-3000:]}")
    return out


def list_events(server, slug, want, timeout=15):
    """Every event of the source through the debugger API (all pages, page_size 3 so that
    paging is exercised), waiting up to timeout seconds for `want` of them."""
    deadline = time.monotonic() + timeout
    while True:
        events, token, pages = [], "", 0
        while True:
            q = f"?page_size=3" + (f"&page_token={token}" if token else "")
            b = assert_ok(server.get(f"{WS_PATH}/sources/{slug}/events{q}"))
            assert set(b) >= {"events", "next_page_token"}, b
            assert len(b["events"]) <= 3, b
            events += b["events"]
            token = b["next_page_token"]
            pages += 1
            assert pages < 100, "the debugger's pages do not end"
            if not token:
                break
        if len(events) >= want or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def ms(ts):
    """Milliseconds since the epoch of an RFC 3339 timestamp (Z or offset, any fraction)."""
    assert isinstance(ts, str), ts
    s = ts.replace("Z", "+00:00")
    # Python < 3.11 wants 0, 3 or 6 fraction digits: normalise to 6.
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + (rest[:i] + "000000")[:6] + rest[i:]
    d = datetime.datetime.fromisoformat(s)
    assert d.tzinfo is not None, ts
    return round(d.timestamp() * 1000)


def iso_ms_z(ts):
    return isinstance(ts, str) and len(ts) == 24 and ts.endswith("Z") and ts[19] == "." and ms(ts) is not None


@pytest.mark.parametrize("sdk", list(SDKS))
def test_sdk_events_arrive_enriched(server, node, sdk):
    lib_name, lib_version, n_requests = SDKS[sdk]
    slug, key = create_source(server, f"sdk-{sdk}")
    t0 = time.time() * 1000
    out = run_sdk(node, sdk, server, key)
    t1 = time.time() * 1000

    # What the SDK did (T22): the expected version, the seven calls, POSTs to /v1/batch
    # answered 200 {"success": true}.
    assert out["version"] == lib_version, out["version"]
    assert [c["type"] for c in out["calls"]] == CALL_TYPES
    assert [c["fixed"] for c in out["calls"]] == [True, True, False, True, False, True, False]
    assert len(out["requests"]) == n_requests, [r["url"] for r in out["requests"]]
    sent = {}
    for rq in out["requests"]:
        assert rq["url"] == server.url("/v1/batch"), rq["url"]
        assert rq["status"] == 200, rq
        assert json.loads(rq["response"]) == {"success": True}, rq["response"]
        for item in rq["body"]["batch"]:
            sent[item["messageId"]] = (item, rq["body"])
    ids = [c["messageId"] for c in out["calls"]]
    assert len(set(ids)) == 7 and set(ids) == set(sent), (ids, list(sent))

    events = list_events(server, slug, 7)
    got = {e["message_id"]: e for e in events}
    assert len(events) == 7 and set(got) == set(ids), (
        f"the debugger lists {[e.get('message_id') for e in events]}, the SDK sent {ids}")
    # Newest first.
    rec = [ms(e["received_at"]) for e in events]
    assert rec == sorted(rec, reverse=True), [e["received_at"] for e in events]

    for call in out["calls"]:
        mid = call["messageId"]
        item, envelope = sent[mid]
        e = got[mid]
        ev = e["event"]
        where = f"{sdk} {call['type']} {mid}"
        assert e["type"] == call["type"] == item["type"] == ev["type"], where
        assert e["status"] == ACCEPTED, (where, e)
        assert e["violations"] in ([], None), (where, e["violations"])
        assert ev["messageId"] == mid, where

        # Everything the SDK sent is stored as sent (as parsed JSON), but the timestamp,
        # which the server corrects (§6.5): user data, integrations, _metadata, and the
        # context with the library exactly as the SDK wrote it.
        for k, v in item.items():
            if k == "timestamp":
                continue
            assert k in ev, f"{where}: {k} lost; stored {ev}"
            assert ev[k] == v, f"{where}: {k} stored as {ev[k]!r}, sent {v!r}"
        assert ev["context"]["library"] == {"name": lib_name, "version": lib_version}, where
        assert item["context"]["library"] == ev["context"]["library"], where
        if call["type"] == "track" and call["fixed"]:
            assert ev["properties"]["odd key.with dots"] == "ünïcödé ✓", where
            assert ev["context"]["ip"] == "203.0.113.7" and ev["integrations"] == {"All": False, "Webhooks": True}, where

        # Enrichment (§6): receivedAt now, sentAt from the envelope, originalTimestamp the
        # SDK's timestamp verbatim, timestamp = receivedAt - (sentAt - originalTimestamp).
        assert iso_ms_z(ev["receivedAt"]), (where, ev["receivedAt"])
        r = ms(ev["receivedAt"])
        assert t0 - 2000 <= r <= t1 + 2000, f"{where}: receivedAt {ev['receivedAt']} is not during the run"
        assert ms(e["received_at"]) == r, (where, e["received_at"], ev["receivedAt"])
        assert ev["sentAt"] == envelope["sentAt"], where
        assert ev["originalTimestamp"] == item["timestamp"], where
        assert iso_ms_z(ev["timestamp"]), (where, ev["timestamp"])
        want = r - (ms(envelope["sentAt"]) - ms(item["timestamp"]))
        assert abs(ms(ev["timestamp"]) - want) <= 1, (
            f"{where}: timestamp {ev['timestamp']}, want receivedAt {ev['receivedAt']} - (sentAt "
            f"{envelope['sentAt']} - timestamp {item['timestamp']})")
        if sdk == "classic":
            assert "writeKey" not in ev, where  # Basic only: not added (§6.11)

    b = assert_ok(server.get(f"{WS_PATH}/sources/{slug}/events:summary"))
    assert {k: b.get(k) for k in ("received", "accepted", "blocked", "duplicate", "rejected")} == {
        "received": 7, "accepted": 7, "blocked": 0, "duplicate": 0, "rejected": 0}, b


def test_sdk_retry_of_the_same_batch_is_deduplicated(server, node):
    """The SDKs retry a batch whose answer they did not get (X-Retry-Count, §2): replaying
    what @segment/analytics-node sent, byte for byte, stores nothing new (§9)."""
    import requests

    slug, key = create_source(server, "sdk-retry")
    out = run_sdk(node, "next", server, key)
    rq = out["requests"][0]
    headers = {k: v for k, v in rq["headers"].items() if k in ("content-type", "user-agent", "authorization")}
    headers["X-Retry-Count"] = "1"
    r = requests.post(rq["url"], data=json.dumps(rq["body"]).encode(), headers=headers, timeout=30)
    assert r.status_code == 200 and r.json() == {"success": True}, r.text
    events = list_events(server, slug, 7, timeout=2)
    accepted = [e for e in events if e["status"] == ACCEPTED]
    assert sorted(e["message_id"] for e in accepted) == sorted(c["messageId"] for c in out["calls"]), events
    # The debugger may list the duplicates too; if it does, as duplicates.
    assert all(e["status"] == "DUPLICATE" for e in events if e["status"] != ACCEPTED), events
    b = assert_ok(server.get(f"{WS_PATH}/sources/{slug}/events:summary"))
    assert (b["accepted"], b["duplicate"]) == (7, 7), b
    assert b["received"] == 14, b

"""The Tracking API intake (tracking-api.md; docs/intake.md): the vectors T1–T21, T26–T28
of §12 over raw HTTP, with stored events read back through the source debugger API and
its lifetime counters; hostile bodies (gzip bomb, deep nesting, bad UTF-8); the strict
write-key flag; source changes taking effect at once; the separate intake listener; the
backlog's 503."""
import base64
import datetime
import gzip
import json
import re
import subprocess
import threading
import time
import uuid
import zlib

import pytest
import requests

from conftest import BACKEND, PSQL, assert_ok
from helpers_resources import SOURCES, db_rows, source_body, src_name, src_path

MID_RE = re.compile(r"^api-[0-9A-Za-z]{27}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# ---- helpers ---------------------------------------------------------------------------


def new_source(srv, slug=None):
    slug = slug or "in" + uuid.uuid4().hex[:10]
    body = assert_ok(srv.post(SOURCES, json=source_body(slug)))
    return slug, body["write_keys"][0]


def basic(key, colon=True):
    return "Basic " + base64.b64encode((key + (":" if colon else "")).encode()).decode()


def send(srv, path, body=None, key=None, headers=None, raw=None, method="POST"):
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = basic(key)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    return requests.request(method, srv.url(path), data=data, headers=h, timeout=60)


def ok200(r):
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"success": True}


def err(r, status, code=None):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    b = r.json()
    assert b["success"] is False and isinstance(b["message"], str) and b["message"], b
    if code:
        assert b["code"] == code, b
    return b


def events(srv, slug, status=None):
    """Every event the debugger shows for the source, newest first (all pages)."""
    out, tok = [], ""
    while True:
        q = "?page_size=100" + (f"&page_token={requests.utils.quote(tok, safe='')}" if tok else "")
        b = assert_ok(srv.get(src_path(slug) + "/events" + q))
        out += b["events"]
        tok = b["next_page_token"]
        if not tok:
            break
    return [e for e in out if status is None or e["status"] == status]


def summary(srv, slug):
    return assert_ok(srv.get(src_path(slug) + "/events:summary"))


def parse_iso(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def iso_ms(d):
    return d.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


@pytest.fixture(scope="module")
def js(server):
    """The module's server and a source `js` with its write key."""
    slug, key = new_source(server)
    return server, slug, key


# ---- §12 vectors -----------------------------------------------------------------------


def test_t1_track_with_basic_auth(server):
    slug, key = new_source(server)
    before = datetime.datetime.now(datetime.timezone.utc)
    ok200(send(server, "/v1/track", {"userId": "u1", "event": "Signed Up"}, key=key))
    after = datetime.datetime.now(datetime.timezone.utc)
    [e] = events(server, slug)
    ev = e["event"]
    assert e["status"] == "ACCEPTED" and e["type"] == "track" and e["violations"] == []
    assert e["message_id"] == ev["messageId"]
    assert MID_RE.match(ev["messageId"]), ev
    assert ev["type"] == "track" and ev["userId"] == "u1" and ev["event"] == "Signed Up"
    assert ISO_MS.match(ev["receivedAt"]), ev
    assert before - datetime.timedelta(seconds=1) <= parse_iso(ev["receivedAt"]) <= after + datetime.timedelta(seconds=1)
    assert ev["timestamp"] == ev["receivedAt"]
    assert "originalTimestamp" not in ev
    assert ev["context"] == {"library": {"name": "unknown", "version": "unknown"}}
    assert ev["version"] == 2
    assert "writeKey" not in ev  # not sent in the body: not added
    assert summary(server, slug)["accepted"] == 1


def test_t2_body_write_key(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/track", {"userId": "u1", "event": "E", "writeKey": key}))
    [e] = events(server, slug)
    assert e["event"]["writeKey"] == key  # kept as sent


def test_t3_basic_without_colon(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/identify", {"userId": "u1"}, headers={"Authorization": basic(key, colon=False)}))
    [e] = events(server, slug)
    assert e["type"] == "identify" and e["event"]["type"] == "identify"


def test_body_key_wins_and_bearer_is_ignored(server):
    slug, key = new_source(server)
    other, okey = new_source(server)
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "writeKey": key}, key=okey))
    assert len(events(server, slug)) == 1 and events(server, other) == []
    # Bearer is not a write key: with a body key it is ignored, alone it is no key.
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "writeKey": key},
               headers={"Authorization": "Bearer whatever"}))
    assert len(events(server, slug)) == 2
    err(send(server, "/v1/track", {"userId": "u", "event": "E"}, headers={"Authorization": "Bearer " + key}),
        400, "missing_write_key")


def test_t4_missing_write_key(server):
    err(send(server, "/v1/track", {"userId": "u1", "event": "E"}), 400, "missing_write_key")
    err(send(server, "/v1/track", {"userId": "u1", "event": "E", "writeKey": ""}), 400, "missing_write_key")
    err(send(server, "/v1/track", {"userId": "u1", "event": "E"}, headers={"Authorization": "Basic !!!"}),
        400, "bad_request")


def test_t5_unknown_write_key(server):
    n0 = db_rows(server, "SELECT COALESCE(SUM(n), 0) FROM intake_reasons WHERE source = '' AND reason = 'unknown_source'")
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "messageId": "t5-" + uuid.uuid4().hex}, key="nosuchkey"))
    n1 = db_rows(server, "SELECT COALESCE(SUM(n), 0) FROM intake_reasons WHERE source = '' AND reason = 'unknown_source'")
    assert int(n1[0][0]) == int(n0[0][0]) + 1
    assert db_rows(server, "SELECT COUNT(*) FROM intake_events WHERE message_id LIKE 't5-%'") == [("0",)]


def test_t6_truncated_json(js):
    srv, slug, key = js
    err(send(srv, "/v1/track", raw=b'{"userId":', key=key), 400)
    err(send(srv, "/v1/track", raw=b'[1, 2]', key=key), 400)
    err(send(srv, "/v1/batch", {"batch": {"not": "an array"}}, key=key), 400)


def sized_track(size, **extra):
    base = {"userId": "u1", "event": "Big", "properties": {"pad": ""}}
    base.update(extra)
    n = len(json.dumps(base, separators=(",", ":")))
    base["properties"]["pad"] = "x" * (size - n)
    raw = json.dumps(base, separators=(",", ":")).encode()
    assert len(raw) == size
    return base, raw


def test_t7_message_size_limit(server):
    slug, key = new_source(server)
    _, raw = sized_track(32769)
    b = err(send(server, "/v1/track", raw=raw, key=key), 400)
    assert b["message"] == "Exceed payload limit"
    assert events(server, slug) == []
    _, raw = sized_track(32768)
    ok200(send(server, "/v1/track", raw=raw, key=key))
    assert len(events(server, slug)) == 1
    # Inside a batch the item's own bytes count: one item over 32 KB fails the request.
    item, _ = sized_track(32769)
    item["type"] = "track"
    b = err(send(server, "/v1/batch", {"writeKey": key, "batch": [{"type": "track", "userId": "a", "event": "x"}, item]}), 400)
    assert b["message"] == "Exceed payload limit"
    assert len(events(server, slug)) == 1


def big_batch(key, total):
    """A batch body of exactly total bytes, items well under 32 KB."""
    items = [{"type": "track", "userId": "u", "event": "E", "properties": {"pad": "y" * 20000}} for _ in range(25)]
    body = {"writeKey": key, "batch": items, "pad": ""}
    n = len(json.dumps(body, separators=(",", ":")))
    body["pad"] = "z" * (total - n)
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) == total
    return raw


def test_t8_batch_body_limit(server):
    slug, key = new_source(server)
    err(send(server, "/v1/batch", raw=big_batch(key, 512001)), 400)
    assert events(server, slug) == []
    ok200(send(server, "/v1/batch", raw=big_batch(key, 512000)))
    assert summary(server, slug)["accepted"] == 25
    # The limit is on the decompressed bytes.
    err(send(server, "/v1/batch", raw=gzip.compress(big_batch(key, 512001)), headers={"Content-Encoding": "gzip"}), 400)
    assert summary(server, slug)["accepted"] == 25


def test_t9_too_many_items(server):
    slug, key = new_source(server)
    items = [{"type": "track", "userId": "u", "event": "E"} for _ in range(2501)]
    ok200(send(server, "/v1/batch", {"writeKey": key, "batch": items}))
    assert events(server, slug) == []
    s = summary(server, slug)
    assert s["rejected_reasons"] == {"batch_too_large": 2501}
    assert s["rejected"] == 2501 and s["accepted"] == 0
    ok200(send(server, "/v1/batch", {"writeKey": key, "batch": items[:2500]}))
    assert summary(server, slug)["accepted"] == 2500


def test_t10_invalid_items_dropped(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/batch", {"writeKey": key, "batch": [
        {"type": "track", "userId": "a", "event": "E1"}, {"type": "track", "event": "E2"},
        {"type": "dance", "userId": "b"}]}))
    [e] = events(server, slug)
    assert e["event"]["event"] == "E1"
    s = summary(server, slug)
    assert s["rejected_reasons"] == {"no_user_anon_id": 1, "invalid_type": 1}
    assert (s["received"], s["accepted"], s["rejected"]) == (3, 1, 2)


@pytest.mark.parametrize("path,body,reason", [
    ("/v1/track", {"userId": "u1"}, "event_not_defined"),                              # T11
    ("/v1/track", {"userId": 42, "event": "E"}, "id_not_string"),                       # T12
    ("/v1/track", {"userId": "u", "event": 5}, "event_not_string"),
    ("/v1/track", {"userId": "u", "event": ""}, "event_not_defined"),
    ("/v1/track", {"anonymousId": "", "event": "E"}, "no_user_anon_id"),
    ("/v1/track", {"userId": "u", "event": "E", "context": "x"}, "context_not_object"),
    ("/v1/track", {"userId": "u", "event": "E", "properties": [1]}, "properties_not_object"),
    ("/v1/identify", {"userId": "u", "traits": "t"}, "traits_not_object"),
    ("/v1/page", {"userId": "u", "name": 3}, "name_not_string"),
    ("/v1/screen", {"userId": "u", "category": ""}, "category_not_string"),
    ("/v1/track", {"userId": "u", "event": "E", "messageId": "m" * 101}, "invalid_message_id"),
    ("/v1/track", {"userId": "u", "event": "E", "messageId": 7}, "invalid_message_id"),
    # the order of §4.3: the context check comes before the id checks
    ("/v1/track", {"context": [], "userId": 1}, "context_not_object"),
])
def test_t11_t12_message_checks(server, path, body, reason):
    slug, key = new_source(server)
    ok200(send(server, path, body, key=key))
    assert events(server, slug) == []
    s = summary(server, slug)
    assert s["rejected_reasons"] == {reason: 1} and s["rejected"] == 1 and s["received"] == 1


def test_valid_edge_messages_are_accepted(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/group", {"anonymousId": "a"}, key=key))                 # no groupId: accepted
    ok200(send(server, "/v1/alias", {"userId": "u"}, key=key))                      # no previousId: accepted
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "properties": None, "context": None,
                                     "messageId": "m" * 68 + uuid.uuid4().hex}, key=key))
    assert summary(server, slug)["accepted"] == 3


def test_t13_dedup_is_global(server):
    a, ka = new_source(server)
    b, kb = new_source(server)
    mid = "dup-" + uuid.uuid4().hex
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "messageId": mid}, key=ka))
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "messageId": mid}, key=kb))
    assert [e["message_id"] for e in events(server, a, "ACCEPTED")] == [mid]
    assert events(server, b, "ACCEPTED") == []
    assert [e["message_id"] for e in events(server, b, "DUPLICATE")] == [mid]
    assert summary(server, b)["duplicate"] == 1 and summary(server, b)["accepted"] == 0
    # Within one batch, the repeat is a duplicate of the earlier item.
    mid2 = "dup-" + uuid.uuid4().hex
    ok200(send(server, "/v1/batch", {"writeKey": ka, "batch": [
        {"type": "track", "userId": "u", "event": "first", "messageId": mid2},
        {"type": "track", "userId": "u", "event": "second", "messageId": mid2}]}))
    acc = [e for e in events(server, a, "ACCEPTED") if e["message_id"] == mid2]
    assert [e["event"]["event"] for e in acc] == ["first"]
    assert summary(server, a)["duplicate"] == 1


def test_t14_skew_correction(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "timestamp": "2024-01-01T00:04:58.500Z",
                                     "sentAt": "2024-01-01T00:05:00.000Z"}, key=key))
    ev = events(server, slug)[0]["event"]
    assert ev["originalTimestamp"] == "2024-01-01T00:04:58.500Z"
    assert ev["sentAt"] == "2024-01-01T00:05:00.000Z"
    # timestamp = receivedAt − (sentAt − timestamp) = receivedAt − 1.5 s
    assert ev["timestamp"] == iso_ms(parse_iso(ev["receivedAt"]) - datetime.timedelta(milliseconds=1500))
    # Offsets and microseconds (analytics-python's isoformat) parse too.
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E2", "timestamp": "2024-01-01T01:00:00.250000+01:00",
                                     "sentAt": "2024-01-01T00:00:01.250000+00:00"}, key=key))
    ev = events(server, slug)[0]["event"]
    assert ev["originalTimestamp"] == "2024-01-01T01:00:00.250000+01:00"
    assert ev["timestamp"] == iso_ms(parse_iso(ev["receivedAt"]) - datetime.timedelta(seconds=1))


def test_t15_timestamp_without_sent_at(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "timestamp": "2016-12-08T16:39:58.000Z"}, key=key))
    ev = events(server, slug)[0]["event"]
    assert ev["timestamp"] == ev["originalTimestamp"] == "2016-12-08T16:39:58.000Z"
    # An unparsable timestamp is treated as absent (Segment's docs' own malformed example).
    ok200(send(server, "/v1/track", {"userId": "u", "event": "E", "timestamp": "2015-2-02T00:30:08.276Z"}, key=key))
    ev = events(server, slug)[0]["event"]
    assert "originalTimestamp" not in ev and ev["timestamp"] == ev["receivedAt"]


def test_t16_batch_envelope_merge(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/batch", {
        "writeKey": key, "sentAt": "2024-05-01T10:00:01.000Z",
        "context": {"app": {"name": "A", "version": "1"}, "device": {"type": "phone"}},
        "integrations": {"All": False, "Mixpanel": True},
        "batch": [{"type": "track", "userId": "u", "event": "E",
                   "context": {"locale": "de", "app": {"version": "2"}},
                   "integrations": {"Webhooks": True, "Mixpanel": False},
                   "timestamp": "2024-05-01T10:00:00.000Z"},
                  {"type": "identify", "userId": "u", "sentAt": "2024-05-01T09:00:00.000Z"}]}))
    byt = {e["type"]: e["event"] for e in events(server, slug)}
    t = byt["track"]
    assert t["context"] == {"app": {"name": "A", "version": "2"}, "device": {"type": "phone"}, "locale": "de",
                            "library": {"name": "unknown", "version": "unknown"}}
    assert t["integrations"] == {"All": False, "Webhooks": True, "Mixpanel": False}
    assert t["sentAt"] == "2024-05-01T10:00:01.000Z"
    assert t["timestamp"] == iso_ms(parse_iso(t["receivedAt"]) - datetime.timedelta(seconds=1))
    assert byt["identify"]["sentAt"] == "2024-05-01T09:00:00.000Z"  # the item's own wins
    assert byt["identify"]["integrations"] == {"All": False, "Mixpanel": True}


def test_t17_gzip_and_deflate(server):
    slug, key = new_source(server)
    body = json.dumps({"writeKey": key, "batch": [{"type": "track", "userId": "u", "event": "gz"}]}).encode()
    ok200(send(server, "/v1/batch", raw=gzip.compress(body), headers={"Content-Encoding": "gzip"}))
    ok200(send(server, "/v1/batch", raw=zlib.compress(body.replace(b'"gz"', b'"zl"')), headers={"Content-Encoding": "deflate"}))
    assert sorted(e["event"]["event"] for e in events(server, slug)) == ["gz", "zl"]
    err(send(server, "/v1/batch", raw=gzip.compress(body)[:-12] + b"garbage!!!!!", headers={"Content-Encoding": "gzip"}), 400)
    err(send(server, "/v1/batch", raw=b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip"}), 400)
    err(send(server, "/v1/batch", raw=body, headers={"Content-Encoding": "br"}), 400)
    assert len(events(server, slug)) == 2


def test_t18_import_and_short_paths(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/import", {"writeKey": key, "batch": [{"type": "page", "userId": "u", "name": "Home"}]}))
    ok200(send(server, "/v1/b", {"writeKey": key, "batch": [{"type": "screen", "userId": "u", "name": "S"}]}))
    for p, t in [("/v1/t", "track"), ("/v1/i", "identify"), ("/v1/p", "page"), ("/v1/s", "screen"),
                 ("/v1/g", "group"), ("/v1/a", "alias"), ("/v1/track/", "track")]:
        ok200(send(server, p, {"userId": "u", "event": "E", "type": "group", "groupId": "g", "previousId": "p"}, key=key))
        assert events(server, slug)[0]["type"] == t, p  # the path decides the type
    assert summary(server, slug)["accepted"] == 9


T19_EVENT = {"timestamp": "2026-11-27T23:05:09.625Z", "integrations": {}, "event": "Clicked", "type": "track",
             "properties": {"a": 1},
             "context": {"page": {"path": "/page", "referrer": "", "search": "?utm_source=x", "title": "T",
                                  "url": "http://127.0.0.1:18933/page?utm_source=x"},
                         "userAgent": "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/24.1.3",
                         "locale": "en-US", "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
                         "campaign": {"source": "x"}, "timezone": "UTC"},
             "messageId": "ajs-next-1795820709625-e138b228-4790-4098-91c1-a8d25cf06ecb",
             "userId": "u9", "anonymousId": "1423e138-b228-4790-8098-11c1a8d25cf0",
             "sentAt": "2026-11-27T23:05:09.628Z",
             "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}}


def test_t19_analytics_js_text_plain(server):
    slug, key = new_source(server)
    body = dict(T19_EVENT, writeKey=key, messageId=T19_EVENT["messageId"] + uuid.uuid4().hex[:4],
                properties={"a": 1, "price": 11.37, "big": 9007199254740993, "name": "Zoë ✓ \u2028", "odd key": None})
    r = send(server, "/v1/t", body, headers={"Content-Type": "text/plain", "Origin": "https://shop.example"})
    ok200(r)
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    ev = events(server, slug)[0]["event"]
    assert ev["messageId"] == body["messageId"] and ev["sentAt"] == body["sentAt"]
    assert ev["_metadata"] == body["_metadata"] and ev["properties"] == body["properties"]
    assert ev["writeKey"] == key and ev["integrations"] == {}
    assert ev["context"]["ip"] == "127.0.0.1"  # analytics.js is a client library
    assert ev["context"]["library"] == body["context"]["library"]
    assert ev["timestamp"] == iso_ms(parse_iso(ev["receivedAt"]) - datetime.timedelta(milliseconds=3))


def test_t20_cors_preflight(server):
    r = requests.options(server.url("/v1/t"), headers={"Origin": "https://shop.example",
                                                       "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "content-type,authorization"},
                         timeout=30)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type,authorization"
    assert r.headers["Access-Control-Max-Age"] == "86400"


def test_t21_wrong_method_and_unknown_path(server):
    r = requests.get(server.url("/v1/track"), timeout=30)
    assert r.status_code == 405 and r.headers["Allow"] == "POST, OPTIONS"
    assert r.json()["success"] is False
    r = requests.post(server.url("/v1/nosuch"), data=b"{}", timeout=30)
    assert r.status_code == 404 and r.json()["success"] is False
    r = requests.post(server.url("/v1/track/extra"), data=b"{}", timeout=30)
    assert r.status_code == 404
    # /v1beta stays the Config API
    assert requests.get(server.url("/v1beta/workspaces"), timeout=30).status_code == 401


def test_t26_context_ip(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/track", {"userId": "u", "event": "direct", "context": {"direct": True}}, key=key))
    ok200(send(server, "/v1/track", {"userId": "u", "event": "plain"}, key=key))
    ok200(send(server, "/v1/track", {"userId": "u", "event": "own", "context": {"direct": True, "ip": "9.9.9.9"}}, key=key))
    by = {e["event"]["event"]: e["event"]["context"] for e in events(server, slug)}
    assert by["direct"]["ip"] == "127.0.0.1"
    assert "ip" not in by["plain"]
    assert by["own"]["ip"] == "9.9.9.9"


def test_t27_empty_batch(server):
    slug, key = new_source(server)
    ok200(send(server, "/v1/batch", {"writeKey": key, "batch": []}))
    assert events(server, slug) == []
    assert summary(server, slug)["rejected_reasons"] == {"empty_batch": 1}


def test_t28_storage_unavailable(start_server):
    srv = start_server("--rate-limit", "0")
    slug, key = new_source(srv)
    srv.db.execute("ALTER TABLE intake_events RENAME TO intake_events_away")
    try:
        for _ in range(3):
            r = send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key)
            err(r, 503)
            assert r.headers["Retry-After"] == "1"
    finally:
        srv.db.execute("ALTER TABLE intake_events_away RENAME TO intake_events")
    ok200(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key))
    assert len(events(srv, slug)) == 1
    s = summary(srv, slug)
    assert s["received"] == 1  # the failed requests changed nothing


# ---- hostile bodies ----------------------------------------------------------------------


def test_gzip_bomb_is_cut_at_the_limit(server):
    slug, key = new_source(server)
    bomb = gzip.compress(b'{"writeKey":"' + key.encode() + b'","batch":[' + b" " * (200 * 1024 * 1024) + b"]}", 9)
    assert len(bomb) < 1024 * 1024
    t0 = time.monotonic()
    b = err(send(server, "/v1/batch", raw=bomb, headers={"Content-Encoding": "gzip"}), 400)
    assert b["message"] == "Exceed payload limit"
    assert time.monotonic() - t0 < 10  # stopped at the limit, not inflated to 200 MB
    assert events(server, slug) == []


def test_deeply_nested_and_bad_utf8(server):
    slug, key = new_source(server)
    deep = b'{"userId":"u","event":"E","properties":' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}"
    err(send(server, "/v1/track", raw=deep, key=key), 400)
    err(send(server, "/v1/track", raw=b'{"userId":"u\xff\xfe","event":"E"}', key=key), 400)
    err(send(server, "/v1/track", raw=b'{"userId":"u","event":"E","event":"F"}', key=key), 400)
    assert events(server, slug) == []
    ok200(send(server, "/v1/track", raw='{"userId":"ü","event":"Ünïcødé ☃"}'.encode(), key=key))
    assert events(server, slug)[0]["event"]["event"] == "Ünïcødé ☃"


# ---- write keys and source changes --------------------------------------------------------


def test_strict_write_keys_and_source_changes(start_server):
    srv = start_server("--rate-limit", "0", "--strict-write-keys")
    err(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key="nosuchkey"), 401, "unknown_source")
    # A new source's key works at once, even right after its key was looked up as unknown.
    slug = "fresh" + uuid.uuid4().hex[:6]
    err(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key="k"), 401)
    _, key = new_source(srv, slug)
    ok200(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key))
    ok200(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key))
    # A deleted source's key is unknown at once.
    assert_ok(srv.delete(src_path(slug)))
    err(send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key), 401, "unknown_source")


def test_debugger_pages_and_window(start_server):
    srv = start_server("--rate-limit", "0", "--debugger-events", "25")
    slug, key = new_source(srv)
    ok200(send(srv, "/v1/batch", {"writeKey": key, "batch": [
        {"type": "track", "userId": "u", "event": f"e{i}"} for i in range(40)]}))
    b = assert_ok(srv.get(src_path(slug) + "/events?page_size=10"))
    assert [e["event"]["event"] for e in b["events"]] == [f"e{i}" for i in range(39, 29, -1)]
    assert b["next_page_token"]
    seen = events(srv, slug)
    assert [e["event"]["event"] for e in seen] == [f"e{i}" for i in range(39, 14, -1)]  # the newest 25
    assert summary(srv, slug)["accepted"] == 40  # lifetime counters are not windowed
    assert srv.get(src_path(slug) + "/events?page_token=forged").status_code == 400
    # a genuine token of another list is refused too: tokens name their list
    for i in range(2):
        srv.create_token(description=f"t{i}")
    other = assert_ok(srv.get("/v1beta/access-tokens", params={"page_size": 1}))["next_page_token"]
    assert other
    r = srv.get(src_path(slug) + "/events", params={"page_token": other})
    assert r.status_code == 400 and r.json()["code"] == 3
    r = srv.get("/v1beta/access-tokens", params={"page_token": b["next_page_token"]})
    assert r.status_code == 400 and r.json()["code"] == 3
    assert srv.get(src_path("nosuch") + "/events").status_code == 404
    assert srv.get(src_path(slug) + "/events", token=None).status_code == 401


def test_intake_on_its_own_listener(start_server, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = start_server("--rate-limit", "0", "--intake-listen", f"127.0.0.1:{port}")
    slug, key = new_source(srv)
    r = requests.post(f"http://127.0.0.1:{port}/v1/track", json={"userId": "u", "event": "E"},
                      headers={"Authorization": basic(key)}, timeout=30)
    ok200(r)
    assert len(events(srv, slug)) == 1
    # The main listener no longer serves the intake; the intake's serves nothing else.
    assert send(srv, "/v1/track", {"userId": "u", "event": "E"}, key=key).status_code == 404
    assert requests.get(f"http://127.0.0.1:{port}/v1beta/workspaces", timeout=30).status_code == 404
    assert len(events(srv, slug)) == 1


# ---- overload ----------------------------------------------------------------------------


class HeldLock:
    """Holds the event log's write lock from outside the server for `seconds`."""

    def __init__(self, srv, seconds):
        self.srv, self.seconds = srv, seconds
        self.ready = threading.Event()

    def run(self):
        if BACKEND == "sqlite":
            import sqlite3
            con = sqlite3.connect(self.srv.db.url, timeout=30, isolation_level=None)
            con.execute("BEGIN EXCLUSIVE")
            self.ready.set()
            time.sleep(self.seconds)
            con.execute("COMMIT")
            con.close()
        else:
            # Statement by statement on stdin: psql prints each result as it comes.
            p = subprocess.Popen([PSQL, self.srv.db.url, "-qAt"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            p.stdin.write("BEGIN;\nLOCK TABLE intake_events IN EXCLUSIVE MODE;\nSELECT 'locked';\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == "locked"
            self.ready.set()
            time.sleep(self.seconds)
            p.stdin.write("COMMIT;\n")
            p.stdin.close()
            p.wait(timeout=60)


def test_backlog_answers_503(start_server):
    srv = start_server("--rate-limit", "0", "--intake-backlog", "1")
    slug, key = new_source(srv)
    ok200(send(srv, "/v1/track", {"userId": "u", "event": "warm"}, key=key))  # the cache knows the key
    held = HeldLock(srv, 3)
    th = threading.Thread(target=held.run, daemon=True)
    th.start()
    assert held.ready.wait(30)
    first = {}
    t1 = threading.Thread(target=lambda: first.setdefault("r", send(srv, "/v1/track", {"userId": "u", "event": "slow"}, key=key)))
    t1.start()
    time.sleep(1)  # the first request now waits on the lock, holding the only slot
    r = send(srv, "/v1/track", {"userId": "u", "event": "refused"}, key=key)
    err(r, 503)
    assert r.headers["Retry-After"] == "1"
    t1.join(60)
    th.join(60)
    ok200(first["r"])
    assert sorted(e["event"]["event"] for e in events(srv, slug)) == ["slow", "warm"]


# ---- Protocols enforcement at intake -------------------------------------------------------


def test_protocols_block_and_forward(server):
    """A source connected to a plan that blocks unplanned track events: the blocked event is
    stored BLOCKED and counted, forwarded into the named source with forwardedFromProject;
    a planned event passes; a later config change applies to the next event."""
    slug, key = new_source(server)
    sink, _ = new_source(server)
    plans = "/v1beta/workspaces/myworkspace/tracking-plans"
    plan = assert_ok(server.post(plans, json={"tracking_plan": {"display_name": "P", "rules": {"events": [
        {"name": "Planned", "version": 1, "rules": {"$schema": "http://json-schema.org/draft-07/schema#",
                                                     "type": "object"}}]}}}))
    pid = plan["id"] if "id" in plan else plan["name"].rsplit("/", 1)[1]
    assert_ok(server.post(f"{plans}/{pid}/source-connections", json={"source_name": src_name(slug)}))
    r = server.request("PATCH", src_path(slug) + "/schema-config", json={
        "schema_config": {"allow_unplanned_track_events": False, "forwarding_blocked_events_to": sink},
        "update_mask": {"paths": ["schema_config.allow_unplanned_track_events",
                                  "schema_config.forwarding_blocked_events_to"]}})
    assert_ok(r)
    ok200(send(server, "/v1/track", {"userId": "u", "event": "Unplanned"}, key=key))
    ok200(send(server, "/v1/track", {"userId": "u", "event": "Planned"}, key=key))
    ok200(send(server, "/v1/page", {"userId": "u", "name": "Home"}, key=key))  # pages are not enforced
    by = {e["event"].get("event", e["type"]): e for e in events(server, slug)}
    assert by["Unplanned"]["status"] == "BLOCKED"
    assert by["Planned"]["status"] == "ACCEPTED" and by["page"]["status"] == "ACCEPTED"
    s = summary(server, slug)
    assert (s["blocked"], s["accepted"]) == (1, 2)
    [fwd] = events(server, sink)
    assert fwd["status"] == "ACCEPTED" and fwd["event"]["forwardedFromProject"] == slug
    assert fwd["message_id"] == by["Unplanned"]["message_id"]
    # Allowing unplanned events again applies to the next event at once.
    assert_ok(server.request("PATCH", src_path(slug) + "/schema-config", json={
        "schema_config": {"allow_unplanned_track_events": True},
        "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}))
    ok200(send(server, "/v1/track", {"userId": "u", "event": "Unplanned"}, key=key))
    assert events(server, slug)[0]["status"] == "ACCEPTED"


def test_sources_from_before_the_intake_get_their_write_key_indexed(start_server):
    """A source written by a version without the intake has no write key in resources.ref:
    the next start gives it one, so its events are accepted (not 'unknown_source')."""
    srv = start_server("--rate-limit", "0", "--strict-write-keys")
    slug, key = new_source(srv)
    srv.stop()
    srv.db.execute("UPDATE resources SET ref = NULL WHERE kind = 'source'")
    srv.start()
    ok200(send(srv, "/v1/track", {"userId": "u", "event": "Before"}, key=key))
    assert [e["event"]["event"] for e in events(srv, slug)] == ["Before"]
    assert "their secondary key" in srv.stderr()
    # the key is an index, not a copy: a second start finds nothing to do
    srv.stop()
    srv.start()
    assert srv.stderr().count("their secondary key") == 1

"""Delivery to cloud-mode destinations (delivery.md §1, §4–§6, §9.2, §10; docs/delivery.md):
events accepted by the intake reach a classic Webhooks destination — signed, with its
headers, retried on the §4.1 schedule (MANIFOLD_RETRY_TIME_SCALE makes it seconds),
discarded with the right code, filtered by D1–D5, refused by the outbound policy — and
survive restarts and kill -9 (at least once). Receivers are local threaded HTTP servers
(webhook_receiver.py) answering scripted statuses."""
import base64
import hashlib
import hmac
import json
import re
import signal
import threading
import time
import uuid

import pytest
import requests

from conftest import BACKEND, assert_error, assert_ok, environ, module_server
from helpers_resources import (SOURCES, create_dest, db_rows, dest_metrics, dst_coll, dst_name, dst_path, patch,
                               pending_retries, source_body, src_name, uniq, wait_dest_metrics)
from webhook_receiver import Receiver, closed_port

SCALE = "0.0005"  # 30 s → 15 ms; the whole ten-attempt schedule in about 6 s


def start(start_server, *args, db=None, **env):
    env.setdefault("MANIFOLD_RETRY_TIME_SCALE", SCALE)
    with environ(**env):
        return start_server("--rate-limit", "0", *args, db=db)


@pytest.fixture(scope="module")
def dsrv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "deliv", "--rate-limit", "0", env={"MANIFOLD_RETRY_TIME_SCALE": SCALE})


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.close()


# ---- set-up helpers ----------------------------------------------------------------------

def webhook(srv, config, enabled=True, mode="CLOUD", slug=None):
    """A new source with a Webhooks destination; returns (source slug, write key)."""
    slug = slug or uniq("wh")
    key = assert_ok(srv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    entries = [{"name": k, "value": v} for k, v in config.items()]
    create_dest(srv, slug, "webhooks", enabled=enabled, connection_mode=mode, config=entries)
    return slug, key


def auth(key):
    return {"Authorization": "Basic " + base64.b64encode((key + ":").encode()).decode()}


def track(srv, key, event="Order Completed", **extra):
    mid = extra.pop("messageId", "m-" + uuid.uuid4().hex)
    body = {"type": "track", "event": event, "userId": "u-1", "messageId": mid, "properties": {"total": 9.99}}
    body.update(extra)
    r = requests.post(srv.url("/v1/track"), json=body, headers=auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return mid


def identify(srv, key, **extra):
    mid = "m-" + uuid.uuid4().hex
    body = {"type": "identify", "userId": "u-2", "traits": {"name": "Zoë"}, "messageId": mid}
    body.update(extra)
    r = requests.post(srv.url("/v1/identify"), json=body, headers=auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return mid


def stored_event(srv, mid):
    rows = db_rows(srv, f"SELECT event FROM intake_events WHERE message_id = '{mid}'")
    assert rows, mid
    return rows[0][0]


def summary(srv, slug):
    """The destination's §11 summary (config-api.md §11.4) over the default window (the last hour)."""
    r = srv.get(dst_path(slug, "webhooks") + "/metrics:getSummary")
    return assert_ok(r)


def metrics(srv, slug):
    """The Webhooks destination's non-zero counters {metric: n} (helpers_resources.dest_metrics),
    with filtered_at_destination_<reason> and successes_attempt_<n> from the table."""
    return dest_metrics(srv, dst_path(slug, "webhooks"), dst_name(slug, "webhooks"),
                        ("filtered", "successes_attempt"), summary_may_fail=True)


def wait_metrics(srv, slug, want, timeout=20):
    """Waits until every metric in want has reached its value; returns all metrics."""
    return wait_dest_metrics(srv, dst_path(slug, "webhooks"), dst_name(slug, "webhooks"), want, timeout,
                             counters=("filtered", "successes_attempt"), summary_may_fail=True)


def pending(srv, slug):
    return pending_retries(srv, dst_name(slug, "webhooks"))


def sig(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


# ---- W1–W4: the request --------------------------------------------------------------------

def test_w1_signed_json_post(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url("/w1"), "sharedSecret": "topsecret"})
    mid = track(dsrv, key)
    (req,) = rx.wait_for(1)
    assert req.path == "/w1"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == "Segment.io/1.0"
    assert req.headers["x-signature"] == sig("topsecret", req.body)
    assert req.body.decode() == stored_event(dsrv, mid)  # the stored event, byte for byte
    ev = req.json()
    assert ev["messageId"] == mid and ev["type"] == "track" and "receivedAt" in ev
    m = wait_metrics(dsrv, slug, {"successes": 1})
    assert m.get("successes_attempt_1") == 1
    assert not [k for k in m if k.startswith(("retried", "discarded"))], m


def test_shared_secret_is_write_only_and_keeps_signing(dsrv, rx):
    """The catalog types sharedSecret "string", but it signs requests: the API masks it like
    a password, and writing the mask back keeps the stored key (it still signs)."""
    slug, key = webhook(dsrv, {"globalHook": rx.url("/a"), "sharedSecret": "topsecret"})
    d = assert_ok(dsrv.get(dst_path(slug, "webhooks")))
    (cfg,) = [e for e in d["config"] if e["name"].endswith("/config/sharedSecret")]
    assert cfg["value"] == "********" and cfg["type"] == "string" and cfg["secret_version"]
    assert "topsecret" not in json.dumps(d)
    cat = assert_ok(dsrv.get("/v1beta/catalog/destinations/webhooks"))
    assert [s["type"] for s in cat["settings"] if s["name"] == "sharedSecret"] == ["string"]
    edited = [{"name": e["name"], "value": rx.url("/b") if e["name"].endswith("/globalHook") else e["value"]}
              for e in d["config"] if e["name"].endswith(("/globalHook", "/sharedSecret"))]
    d2 = assert_ok(patch(dsrv, dst_path(slug, "webhooks"), "destination", {"config": edited},
                         ["destination.config"]))
    assert [e["secret_version"] for e in d2["config"] if e["name"].endswith("/sharedSecret")] == [cfg["secret_version"]]
    track(dsrv, key)
    (req,) = rx.wait_for(1)
    assert req.path == "/b" and req.headers["x-signature"] == sig("topsecret", req.body)


def test_w2_no_secret_no_signature(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url(), "sharedSecret": ""})
    track(dsrv, key)
    (req,) = rx.wait_for(1)
    assert "x-signature" not in req.headers


def test_w3_hooks_with_their_own_headers(dsrv, rx):
    hooks = [{"hook": rx.url("/a"), "headers": [{"key": "X-Team", "value": "growth"}, {"key": "", "value": "x"}]},
             {"hook": rx.url("/b"), "headers": []}]
    slug, key = webhook(dsrv, {"hooks": hooks})
    mid = identify(dsrv, key)
    reqs = rx.wait_for(2)
    by = {r.path: r for r in rx.quiet_for(0.5)}
    assert set(by) == {"/a", "/b"} and len(rx.requests) == 2
    assert by["/a"].headers["x-team"] == "growth"
    assert "x-team" not in by["/b"].headers
    assert by["/a"].body == by["/b"].body and json.loads(by["/a"].body)["messageId"] == mid
    del reqs


def test_w4_same_url_called_once(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url("/same"),
                               "hooks": [{"hook": rx.url("/same"), "headers": [{"key": "X-A", "value": "1"}]}]})
    track(dsrv, key)
    rx.wait_for(1)
    reqs = rx.quiet_for(0.7)
    assert len(reqs) == 1 and reqs[0].headers.get("x-a") == "1"


def test_custom_headers_cannot_replace_reserved_ones(dsrv, rx):
    hooks = [{"hook": rx.url("/h"), "headers": [{"key": "Content-Type", "value": "text/plain"},
                                                {"key": "X-Signature", "value": "forged"},
                                                {"key": "User-Agent", "value": "mine/1"}]}]
    slug, key = webhook(dsrv, {"hooks": hooks, "sharedSecret": "s"})
    track(dsrv, key)
    (req,) = rx.wait_for(1)
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-signature"] == sig("s", req.body)
    assert req.headers["user-agent"] == "mine/1"


def test_sixth_hook_is_refused(dsrv, rx):
    slug = uniq("wh")
    assert_ok(dsrv.post(SOURCES, json=source_body(slug)))
    six = [{"hook": rx.url(f"/{i}"), "headers": []} for i in range(6)]
    r = dsrv.post(dst_coll(slug), json={"destination": {"name": dst_name(slug, "webhooks"), "config": [
        {"name": "hooks", "value": six}]}})
    assert_error(r, 400, 3)
    create_dest(dsrv, slug, "webhooks", config=[{"name": "hooks", "value": six[:5]}])
    r = patch(dsrv, dst_path(slug, "webhooks"), "destination", {"config": [{"name": "hooks", "value": six}]},
              ["destination.config"])
    assert_error(r, 400, 3)


# ---- W5–W11, W15–W17: outcomes and retries ----------------------------------------------------

def test_w5_retries_are_byte_identical(dsrv):
    rx = Receiver(script=[(503, {}, 0), (503, {}, 0)])
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url(), "sharedSecret": "topsecret"})
        track(dsrv, key)
        reqs = rx.wait_for(3)
        assert len({r.body for r in reqs}) == 1
        assert len({r.headers["x-signature"] for r in reqs}) == 1
        m = wait_metrics(dsrv, slug, {"successes": 1, "retried_503": 2})
        assert m.get("successes_attempt_3") == 1
        assert not [k for k in m if k.startswith("discarded")], m
        assert len(rx.quiet_for(0.5)) == 3
        assert pending(dsrv, slug) == 0
    finally:
        rx.close()


def test_w6_400_is_discarded_without_retry(dsrv):
    rx = Receiver(default=(400, {}, 0))
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        rx.wait_for(1)
        m = wait_metrics(dsrv, slug, {"discarded_400": 1})
        assert len(rx.quiet_for(0.5)) == 1
        assert "successes" not in m and not [k for k in m if k.startswith("retried")], m
    finally:
        rx.close()


@pytest.mark.parametrize("status", [408, 423, 429, 500, 502, 504])
def test_retryable_statuses(dsrv, status):
    rx = Receiver(script=[(status, {}, 0)])
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        rx.wait_for(2)
        wait_metrics(dsrv, slug, {f"retried_{status}": 1, "successes": 1})
    finally:
        rx.close()


@pytest.mark.parametrize("status", [301, 401, 403, 404, 413, 422, 501])
def test_discarded_statuses(dsrv, status):
    rx = Receiver(default=(status, {"Location": "/elsewhere"} if status == 301 else {}, 0))
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        wait_metrics(dsrv, slug, {f"discarded_{status}": 1})
        assert len(rx.quiet_for(0.3)) == 1
    finally:
        rx.close()


def test_w7_retry_after_is_honoured(dsrv):
    # Retry-After: 1000 s × the time scale 0.0005 = 500 ms, far above the 15 ms backoff.
    rx = Receiver(script=[(429, {"Retry-After": "1000"}, 0)])
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        a, b = rx.wait_for(2)
        assert b.time - a.time >= 0.45, b.time - a.time
        wait_metrics(dsrv, slug, {"retried_429": 1, "successes": 1})
    finally:
        rx.close()


def test_w8_timeout_after_5_seconds(dsrv):
    rx = Receiver(script=[(200, {}, 6.5)])
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        t0 = time.monotonic()
        track(dsrv, key)
        a, b = rx.wait_for(2, timeout=30)
        assert 4.5 <= b.time - a.time < 6.5, b.time - a.time
        wait_metrics(dsrv, slug, {"retried_ETIMEDOUT": 1, "successes": 1})
        assert time.monotonic() - t0 < 15
    finally:
        rx.close()


def test_w9_connection_refused_until_exhausted(dsrv):
    slug, key = webhook(dsrv, {"globalHook": f"http://127.0.0.1:{closed_port()}/x"})
    track(dsrv, key)
    m = wait_metrics(dsrv, slug, {"discarded_ECONNREFUSED": 1}, timeout=40)
    assert m.get("retried_ECONNREFUSED") == 9, m
    assert pending(dsrv, slug) == 0


def test_w10_ten_attempts_in_all(dsrv):
    rx = Receiver(default=(500, {}, 0))
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        m = wait_metrics(dsrv, slug, {"discarded_500": 1}, timeout=40)
        assert m.get("retried_500") == 9, m
        assert len(rx.quiet_for(1.0)) == 10
    finally:
        rx.close()


def test_w11_one_success_is_enough(dsrv):
    rx = Receiver(routes={"/a": (500, {}, 0), "/b": (200, {}, 0)})
    try:
        slug, key = webhook(dsrv, {"hooks": [{"hook": rx.url("/a"), "headers": []},
                                             {"hook": rx.url("/b"), "headers": []}]})
        track(dsrv, key)
        rx.wait_for(2)
        m = wait_metrics(dsrv, slug, {"successes": 1})
        assert len(rx.quiet_for(0.5)) == 2
        assert not [k for k in m if k.startswith(("retried", "discarded"))], m
    finally:
        rx.close()


def test_all_hooks_failing_records_the_first_hooks_code(dsrv):
    rx = Receiver(routes={"/a": (404, {}, 0), "/b": (503, {}, 0)})
    try:
        slug, key = webhook(dsrv, {"hooks": [{"hook": rx.url("/a"), "headers": []},
                                             {"hook": rx.url("/b"), "headers": []}]})
        track(dsrv, key)
        # one target retryable → retry; the code is the first target's (404)
        wait_metrics(dsrv, slug, {"retried_404": 1})
    finally:
        rx.close()


def test_w15_307_is_followed_with_the_same_body(dsrv):
    rx = Receiver()
    rx.routes["/old"] = (307, {"Location": rx.url("/moved")}, 0)
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url("/old"), "sharedSecret": "k"})
        track(dsrv, key)
        a, b = rx.wait_for(2)
        assert (a.path, b.path) == ("/old", "/moved")
        assert a.body == b.body and b.headers["x-signature"] == sig("k", b.body)
        wait_metrics(dsrv, slug, {"successes": 1})
    finally:
        rx.close()


def test_w16_disabled_while_waiting_for_a_retry(dsrv):
    rx = Receiver(default=(503, {"Retry-After": "3000"}, 0))  # 1.5 s at this time scale
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        track(dsrv, key)
        rx.wait_for(1)
        assert_ok(patch(dsrv, dst_path(slug, "webhooks"), "destination", {"enabled": False},
                        ["destination.enabled"]))
        assert len(rx.quiet_for(3)) == 1
        m = metrics(dsrv, slug)
        assert m.get("retried_503") == 1 and not [k for k in m if k.startswith("discarded")], m
        assert pending(dsrv, slug) == 0
    finally:
        rx.close()


def test_w17_unusable_url_is_invalid_settings(dsrv):
    slug, key = webhook(dsrv, {"globalHook": "ftp://x"})
    track(dsrv, key)
    m = wait_metrics(dsrv, slug, {"discarded_INVALID_SETTINGS": 1})
    assert not [k for k in m if k.startswith("retried")], m


def test_no_url_at_all_is_invalid_settings(dsrv):
    slug, key = webhook(dsrv, {"sharedSecret": "x"})
    track(dsrv, key)
    wait_metrics(dsrv, slug, {"discarded_INVALID_SETTINGS": 1})


# ---- W12–W14, D2, D5: what a destination gets ------------------------------------------------

def add_filter(srv, slug, if_, actions):
    f = {"if": if_, "actions": actions, "title": "t", "enabled": True}
    return assert_ok(srv.post(dst_path(slug, "webhooks") + "/filters", json={"filter": f}))


def test_w12_destination_filter_drops(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url()})
    add_filter(dsrv, slug, "type = 'identify'", [{"type": "drop_event"}])
    identify(dsrv, key)
    mid = track(dsrv, key)
    (req,) = rx.wait_for(1)
    assert req.json()["messageId"] == mid
    m = wait_metrics(dsrv, slug, {"filtered_at_destination_FILTERED_BY_RULES": 1, "successes": 1})
    assert len(rx.quiet_for(0.5)) == 1
    assert not [k for k in m if k.startswith("discarded")], m


def test_filter_changes_are_frozen_into_the_payload(dsrv):
    rx = Receiver(script=[(503, {"Retry-After": "2000"}, 0)])  # retry after 1 s
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url(), "sharedSecret": "k"})
        add_filter(dsrv, slug, "type = 'track'",
                   [{"type": "blacklist_fields", "fields": {"properties": {"fields": ["total"]}}}])
        track(dsrv, key, properties={"total": 1, "keep": 2})
        (first,) = rx.wait_for(1)
        assert first.json()["properties"] == {"keep": 2}
        # A filter added while the event waits for its retry does not touch it (D7).
        add_filter(dsrv, slug, "type = 'track'", [{"type": "drop_event"}])
        a, b = rx.wait_for(2)
        assert b.body == a.body and b.headers["x-signature"] == sig("k", b.body)
        wait_metrics(dsrv, slug, {"successes": 1})
        # ... while new events are filtered by it
        track(dsrv, key)
        wait_metrics(dsrv, slug, {"filtered_at_destination_FILTERED_BY_RULES": 1})
        assert len(rx.quiet_for(0.3)) == 2
    finally:
        rx.close()


def test_w13_integrations_object(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url()})
    track(dsrv, key, integrations={"All": False})
    track(dsrv, key, integrations={"All": False, "Webhooks": True}, event="Named")
    track(dsrv, key, integrations={"Webhooks": False}, event="Off")
    (req,) = rx.wait_for(1)
    assert req.json()["event"] == "Named"
    m = wait_metrics(dsrv, slug, {"filtered_at_destination_FILTERED_BY_INTEGRATIONS_OBJECT": 2, "successes": 1})
    assert len(rx.quiet_for(0.5)) == 1
    assert not [k for k in m if k.startswith(("retried", "discarded"))], m


def test_w14_disabled_and_device_mode_get_nothing(dsrv, rx):
    s1, k1 = webhook(dsrv, {"globalHook": rx.url("/disabled")}, enabled=False)
    s2, k2 = webhook(dsrv, {"globalHook": rx.url("/device")}, mode="DEVICE")
    s3, k3 = webhook(dsrv, {"globalHook": rx.url("/unspecified")}, mode="UNSPECIFIED")
    track(dsrv, k1)
    track(dsrv, k2)
    track(dsrv, k3)  # webhooks has no device mode: UNSPECIFIED is cloud
    (req,) = rx.wait_for(1)
    assert req.path == "/unspecified"
    assert len(rx.quiet_for(0.7)) == 1
    assert metrics(dsrv, s1) == {} and metrics(dsrv, s2) == {}


def test_enabling_later_does_not_replay_old_events(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url()}, enabled=False)
    track(dsrv, key, event="Before")
    time.sleep(0.6)
    assert_ok(patch(dsrv, dst_path(slug, "webhooks"), "destination", {"enabled": True}, ["destination.enabled"]))
    time.sleep(1.2)  # the engine re-reads configuration at least once a second
    track(dsrv, key, event="After")
    (req,) = rx.wait_for(1)
    assert req.json()["event"] == "After"
    assert len(rx.quiet_for(0.5)) == 1


def test_events_before_the_destination_existed_are_not_sent(dsrv, rx):
    slug = uniq("wh")
    key = assert_ok(dsrv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    track(dsrv, key, event="Old")
    create_dest(dsrv, slug, "webhooks", enabled=True, connection_mode="CLOUD",
                config=[{"name": "globalHook", "value": rx.url()}])
    track(dsrv, key, event="New")  # no wait: the cursor is made in the create transaction
    (req,) = rx.wait_for(1)
    assert req.json()["event"] == "New"
    assert len(rx.quiet_for(0.5)) == 1


def test_every_event_type_is_delivered(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url()})
    body = {"batch": [{"type": t, "userId": "u", "messageId": f"{t}-{uuid.uuid4().hex}",
                       **({"event": "E"} if t == "track" else {}), **({"groupId": "g"} if t == "group" else {}),
                       **({"previousId": "p"} if t == "alias" else {})}
                      for t in ("track", "identify", "page", "screen", "group", "alias")]}
    r = requests.post(dsrv.url("/v1/batch"), json=body, headers=auth(key), timeout=30)
    assert r.status_code == 200
    reqs = rx.wait_for(6)
    assert sorted(x.json()["type"] for x in reqs) == sorted(["track", "identify", "page", "screen", "group", "alias"])


def test_other_catalog_destinations_count_no_integration(dsrv, rx):
    slug = uniq("wh")
    key = assert_ok(dsrv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    create_dest(dsrv, slug, "amplitude", enabled=False, connection_mode="CLOUD")
    assert_ok(patch(dsrv, dst_path(slug, "amplitude"), "destination",
                    {"enabled": True, "config": [{"name": "apiKey", "value": "x" * 32}]},
                    ["destination.enabled", "destination.config"]))
    track(dsrv, key)
    name = dst_name(slug, "amplitude")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = db_rows(dsrv, f"SELECT metric, SUM(n) FROM dm_counts WHERE destination = '{name}' GROUP BY metric")
        if rows:
            break
        time.sleep(0.1)
    assert dict(rows) == {"filtered_at_destination_NO_INTEGRATION": "1"}


def test_w19_blocked_at_source_is_not_delivered(dsrv, rx):
    slug, key = webhook(dsrv, {"globalHook": rx.url()})
    plans = "/v1beta/workspaces/myworkspace/tracking-plans"
    plan = assert_ok(dsrv.post(plans, json={"tracking_plan": {"display_name": "P", "rules": {"events": [
        {"name": "Planned", "version": 1, "rules": {"$schema": "http://json-schema.org/draft-07/schema#",
                                                     "type": "object"}}]}}}))
    pid = plan["id"] if "id" in plan else plan["name"].rsplit("/", 1)[1]
    assert_ok(dsrv.post(f"{plans}/{pid}/source-connections", json={"source_name": src_name(slug)}))
    assert_ok(dsrv.request("PATCH", f"{SOURCES}/{slug}/schema-config", json={
        "schema_config": {"allow_unplanned_track_events": False},
        "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}))
    track(dsrv, key, event="Unplanned")
    track(dsrv, key, event="Planned")
    (req,) = rx.wait_for(1)
    assert req.json()["event"] == "Planned"
    assert len(rx.quiet_for(0.5)) == 1
    assert metrics(dsrv, slug) == {"successes": 1, "successes_attempt_1": 1}


# ---- outbound policy --------------------------------------------------------------------------

def test_outbound_deny_refuses_loopback(start_server):
    rx = Receiver()
    try:
        srv = start(start_server, MANIFOLD_OUTBOUND_DENY="10.0.0.0/8, 127.0.0.0/8",
                    MANIFOLD_OUTBOUND_ALLOW="127.0.0.2")
        slug, key = webhook(srv, {"globalHook": rx.url()})
        track(srv, key)
        m = wait_metrics(srv, slug, {"discarded_INVALID_SETTINGS": 1})
        assert not [k for k in m if k.startswith("retried")], m
        # by name too: the check is on the address connected to, after resolution
        slug2, key2 = webhook(srv, {"globalHook": f"http://localhost:{rx.port}/x"})
        track(srv, key2)
        wait_metrics(srv, slug2, {"discarded_INVALID_SETTINGS": 1})
        assert rx.quiet_for(0.3) == []
    finally:
        rx.close()


def test_outbound_allow_carves_an_exception(start_server):
    rx = Receiver()
    try:
        srv = start(start_server, MANIFOLD_OUTBOUND_DENY="0.0.0.0/0 ::/0", MANIFOLD_OUTBOUND_ALLOW="127.0.0.1/32")
        slug, key = webhook(srv, {"globalHook": rx.url()})
        track(srv, key)
        rx.wait_for(1)
        wait_metrics(srv, slug, {"successes": 1})
    finally:
        rx.close()


def test_bad_outbound_list_stops_the_server(start_server):
    with environ(MANIFOLD_OUTBOUND_DENY="10.0.0.0/33"):
        srv = start_server("--rate-limit", "0", start=False)
        with pytest.raises(RuntimeError, match="OUTBOUND"):
            srv.start()
    start_server.servers.remove(srv)  # it exited 1 on purpose
    srv.db.drop()


# ---- durability: restarts and kill -9 -----------------------------------------------------------

def test_w18_restart_resumes_pending_retries(start_server):
    rx = Receiver(script=[(503, {"Retry-After": "4000"}, 0)])  # the retry is due 2 s later
    try:
        srv = start(start_server)
        slug, key = webhook(srv, {"globalHook": rx.url(), "sharedSecret": "k"})
        track(srv, key)
        (first,) = rx.wait_for(1)
        deadline = time.monotonic() + 5
        while pending(srv, slug) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pending(srv, slug) == 1
        srv.proc.send_signal(signal.SIGKILL)
        srv.kill()
        with environ(MANIFOLD_RETRY_TIME_SCALE=SCALE):
            srv.start()
        a, b = rx.wait_for(2, timeout=20)
        assert b.body == a.body and b.headers["x-signature"] == a.headers["x-signature"]
        assert b.time - a.time >= 1.9  # at its due time, not earlier
        wait_metrics(srv, slug, {"successes": 1, "retried_503": 1})
        assert pending(srv, slug) == 0
    finally:
        rx.close()


@pytest.mark.parametrize("rounds", [3])
def test_kill_9_during_delivery_loses_nothing(start_server, rounds):
    """Events acknowledged by the intake all reach the receiver although the server is
    killed (SIGKILL) several times while delivering; duplicates only as re-deliveries of
    the same messageId."""
    rx = Receiver(default=(200, {}, 0.002))
    try:
        srv = start(start_server)
        slug, key = webhook(srv, {"globalHook": rx.url()})
        acked = []
        for rnd in range(rounds):
            s = requests.Session()
            for i in range(15):
                ids = [f"k9-{rnd}-{i}-{j}-{uuid.uuid4().hex[:8]}" for j in range(20)]
                body = {"batch": [{"type": "track", "event": "K", "userId": "u", "messageId": m} for m in ids]}
                r = s.post(srv.url("/v1/batch"), json=body, headers=auth(key), timeout=30)
                assert r.status_code == 200
                acked += ids
            # kill while the receiver is busy with this round
            deadline = time.monotonic() + 10
            while len(rx.requests) < len(acked) - 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            srv.proc.send_signal(signal.SIGKILL)
            srv.kill()
            with environ(MANIFOLD_RETRY_TIME_SCALE=SCALE):
                srv.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = {json.loads(r.body)["messageId"] for r in list(rx.requests)}
            if got >= set(acked):
                break
            time.sleep(0.2)
        missing = set(acked) - got
        assert not missing, f"{len(missing)} acknowledged events never delivered, e.g. {sorted(missing)[:3]}"
        assert got <= set(acked)
    finally:
        rx.close()


# ---- isolation ----------------------------------------------------------------------------------

def test_a_dead_destination_does_not_slow_another(dsrv):
    slow = Receiver(default=(200, {}, 6))  # every answer after 6 s: each attempt times out
    fast = Receiver()
    try:
        s1, k1 = webhook(dsrv, {"globalHook": slow.url()})
        s2, k2 = webhook(dsrv, {"globalHook": fast.url()})
        for i in range(50):
            track(dsrv, k1, event=f"slow-{i}")
        time.sleep(0.3)
        t0 = time.monotonic()
        for i in range(20):
            track(dsrv, k2, event=f"fast-{i}")
        fast.wait_for(20, timeout=10)
        assert fast.requests[-1].time - t0 < 2.5
        slow.wait_for(50, timeout=10)  # all 50 in flight at once (bounded by the batch)
    finally:
        fast.close()
        slow.close()


def test_w20_time_to_success(dsrv):
    rx = Receiver(default=(200, {}, 0.15))
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        for _ in range(20):
            track(dsrv, key)
        wait_metrics(dsrv, slug, {"successes": 20})
        t = {m["metric_name"]: m["total"] for m in summary(dsrv, slug)["metrics"]}
        assert 150 <= t["time_to_success_p95"] < 5000, t
        assert 150 <= t["time_to_success_p50"] <= t["time_to_success_p95"] <= t["time_to_success_p99"], t
        assert t["total"] == 20 and t["discarded"] == 0
    finally:
        rx.close()


def test_metrics_count_what_was_delivered(dsrv):
    rx = Receiver(script=[(500, {}, 0)] * 5)
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        ids = [track(dsrv, key) for _ in range(30)]
        m = wait_metrics(dsrv, slug, {"successes": 30})
        got = [json.loads(r.body)["messageId"] for r in rx.quiet_for(0.5)]
        assert set(got) == set(ids) and len(got) == 35
        assert m["successes"] == 30 and m.get("retried_500") == 5
        assert sum(v for k, v in m.items() if k.startswith("successes_attempt_")) == 30
        t = {x["metric_name"]: x for x in summary(dsrv, slug)["metrics"]}
        assert t["total"]["total"] == 30 and t["retried"]["total"] == 5 and t["discarded"]["total"] == 0
        assert t["retried"]["breakdown"] == [{"metric_name": "retried_500", "total": 5}]
    finally:
        rx.close()



def test_pending_retry_shows_the_backlog(dsrv):
    rx = Receiver(script=[(503, {"Retry-After": "3000"}, 0)] * 3)  # retries 1.5 s later
    try:
        slug, key = webhook(dsrv, {"globalHook": rx.url()})
        for _ in range(3):
            track(dsrv, key)
        rx.wait_for(3)
        deadline = time.monotonic() + 5
        while summary(dsrv, slug)["pending_retry"] != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert summary(dsrv, slug)["pending_retry"] == 3
        wait_metrics(dsrv, slug, {"successes": 3})
        assert summary(dsrv, slug)["pending_retry"] == 0
    finally:
        rx.close()


@pytest.mark.skipif(BACKEND != "postgres", reason="several processes share one database only on PostgreSQL")
def test_two_processes_share_the_work_without_duplicates(start_server):
    """Two servers on one PostgreSQL database: each destination's cursor is leased by one
    of them at a time, so every event is delivered exactly once (no failures here, so no
    re-delivery is expected) whichever process accepted it."""
    rx = Receiver()
    try:
        a = start(start_server)
        b = start(start_server, db=a.db)
        b.token = a.token
        slugs = []
        for _ in range(3):
            slug, key = webhook(a, {"globalHook": rx.url()})
            slugs.append((slug, key))
        sent = []
        for i in range(40):
            srv = a if i % 2 else b
            for slug, key in slugs:
                sent.append(track(srv, key, event=f"e{i}"))
        reqs = rx.wait_for(len(sent), timeout=60)
        got = [json.loads(r.body)["messageId"] for r in rx.quiet_for(1.0)]
        assert sorted(got) == sorted(sent), (len(got), len(sent))
        owners = {r[0] for r in db_rows(a, "SELECT owner FROM delivery_cursors WHERE destination LIKE '%webhooks'")}
        assert len(owners) >= 1 and "" not in owners
        del reqs
    finally:
        rx.close()


def test_a_new_url_applies_to_the_next_attempt(dsrv):
    old = Receiver(default=(503, {"Retry-After": "2000"}, 0))  # the retry is due 1 s later
    new = Receiver()
    try:
        slug, key = webhook(dsrv, {"globalHook": old.url(), "sharedSecret": "k"})
        track(dsrv, key)
        (first,) = old.wait_for(1)
        assert_ok(patch(dsrv, dst_path(slug, "webhooks"), "destination",
                        {"config": [{"name": "globalHook", "value": new.url("/new")}]}, ["destination.config"]))
        (second,) = new.wait_for(1)
        assert second.body == first.body and second.headers["x-signature"] == first.headers["x-signature"]
        assert len(old.quiet_for(0.3)) == 1
        wait_metrics(dsrv, slug, {"successes": 1, "retried_503": 1})
    finally:
        old.close()
        new.close()


def test_deleting_a_destination_drops_its_queue(dsrv):
    old = Receiver(default=(503, {"Retry-After": "2000"}, 0))
    new = Receiver()
    try:
        slug, key = webhook(dsrv, {"globalHook": old.url()})
        track(dsrv, key, event="Queued")
        old.wait_for(1)
        deadline = time.monotonic() + 5
        while pending(dsrv, slug) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pending(dsrv, slug) == 1
        assert_ok(dsrv.delete(dst_path(slug, "webhooks")))
        assert pending(dsrv, slug) == 0  # in the delete's transaction
        create_dest(dsrv, slug, "webhooks", enabled=True, connection_mode="CLOUD",
                    config=[{"name": "globalHook", "value": new.url()}])
        track(dsrv, key, event="Fresh")
        (req,) = new.wait_for(1)
        assert req.json()["event"] == "Fresh"
        got = [r.json()["event"] for r in new.quiet_for(1.5)]
        assert got == ["Fresh"] and len(old.requests) == 1, (got, len(old.requests))
        m = wait_metrics(dsrv, slug, {"successes": 1})
        assert "retried_503" not in m, m  # the new destination's counters start from zero
    finally:
        old.close()
        new.close()


def _deliveries_total(srv):
    """manifold_deliveries_total by outcome, from GET /metrics."""
    text = requests.get(srv.url("/metrics"), timeout=30).text
    out = {}
    for line in text.splitlines():
        m = re.match(r'^manifold_deliveries_total\{outcome="(\w+)"\} (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_prometheus_counts_delivery_outcomes(start_server):
    """/metrics' manifold_deliveries_total{outcome} moves with the outcomes the engine commits,
    exactly: 503, 503, 200 is two retried attempts and one success; a 400 is one discard."""
    srv = start(start_server)
    before = _deliveries_total(srv)
    assert before == {"success": 0, "retried": 0, "discarded": 0}, before
    rx = Receiver(script=[(503, {}, 0), (503, {}, 0)])
    bad = Receiver(default=(400, {}, 0))
    try:
        slug, key = webhook(srv, {"globalHook": rx.url()})
        track(srv, key)
        slug2, key2 = webhook(srv, {"globalHook": bad.url()})
        track(srv, key2)
        wait_metrics(srv, slug, {"successes": 1, "retried_503": 2})
        wait_metrics(srv, slug2, {"discarded_400": 1})
        want = {"success": 1, "retried": 2, "discarded": 1}
        deadline = time.monotonic() + 10  # the counter moves just after the batch's commit
        while _deliveries_total(srv) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _deliveries_total(srv) == want
        assert len(rx.quiet_for(0.5)) == 3 and len(bad.quiet_for(0.1)) == 1
        assert _deliveries_total(srv) == want  # nothing more arrives later
    finally:
        rx.close()
        bad.close()

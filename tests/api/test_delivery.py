"""Delivery to cloud-mode destinations (delivery.md §1, §4–§6, §9.2, §10; docs/delivery.md):
events accepted by the intake reach a classic Webhooks destination — signed, with its
headers, retried on the §4.1 schedule (MANIFOLD_RETRY_TIME_SCALE makes it seconds),
discarded with the right code, filtered by D1–D5, refused by the outbound policy — and
survive restarts and kill -9 (at least once). Receivers are local threaded HTTP servers
(webhook_receiver.py) answering scripted statuses."""
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from conftest import BACKEND, assert_error, assert_ok
from helpers_resources import (SOURCES, create_dest, db_rows, dst_coll, dst_name, dst_path, patch, source_body,
                               src_name, uniq)
from webhook_receiver import Receiver, closed_port

SCALE = "0.0005"  # 30 s → 15 ms; the whole ten-attempt schedule in about 6 s


@contextlib.contextmanager
def environ(**kv):
    old = {k: os.environ.get(k) for k in kv}
    os.environ.update({k: str(v) for k, v in kv.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start(start_server, *args, db=None, **env):
    env.setdefault("MANIFOLD_RETRY_TIME_SCALE", SCALE)
    with environ(**env):
        return start_server("--rate-limit", "0", *args, db=db)


@pytest.fixture(scope="module")
def dsrv(tmp_path_factory):
    from conftest import ServerFactory
    f = ServerFactory(tmp_path_factory.mktemp("deliv"))
    with environ(MANIFOLD_RETRY_TIME_SCALE=SCALE):
        srv = f("--rate-limit", "0")
    yield srv
    f.teardown()


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


def metrics(srv, slug):
    """The destination's counters, summed over all minutes: {metric: n}."""
    name = dst_name(slug, "webhooks")
    out = {}
    for m, n in db_rows(srv, f"SELECT metric, SUM(n) FROM dm_stub WHERE destination = '{name}' GROUP BY metric"):
        out[m] = int(n)
    return out


def wait_metrics(srv, slug, want, timeout=20):
    """Waits until every metric in want has reached its value; returns all metrics."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(srv, slug)
        if all(m.get(k, 0) >= v for k, v in want.items()):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics {m}, wanted {want}")
        time.sleep(0.1)


def pending(srv, slug):
    return int(db_rows(srv, "SELECT COUNT(*) FROM delivery_retries WHERE destination = '%s'"
                       % dst_name(slug, "webhooks"))[0][0])


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

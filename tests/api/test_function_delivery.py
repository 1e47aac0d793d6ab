"""Delivery to destination functions (delivery.md §8, functions-runtime.md §5.2, §7;
docs/delivery.md): a destination whose catalog entry is a DESTINATION function gets each
event through the Functions runtime instead of HTTP — the handler's fetch reaches a local
receiver with the event and the instance's settings; RetryError is retried on the delivery
schedule (MANIFOLD_RETRY_TIME_SCALE), ValidationError discarded as message_rejected, a plain
Error as bad_request, each counted in the §11 metrics; a code change applies to the next
event. Skipped where Node.js cannot run."""
import json

import pytest

from conftest import assert_ok, environ, module_server
from helpers_resources import SOURCES, pending_retries, source_body, src_name, src_path, wait_dest_metrics
from test_delivery import SCALE, auth, track
from test_functions import FNS, mk, patch, runtime_available, uniq
from webhook_receiver import Receiver

FETCH = """
async function onTrack(event, settings) {
  const r = await fetch(settings.url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                       body: JSON.stringify({tag: settings.tag, event})});
  if (r.status >= 500) throw new RetryError('upstream ' + r.status);
  return r.status;
}
"""


@pytest.fixture(scope="module")
def fsrv(tmp_path_factory):
    servers = module_server(tmp_path_factory, "fndeliv", "--rate-limit", "0", "--functions-per-workspace", "0",
                            env={"MANIFOLD_RETRY_TIME_SCALE": SCALE})
    srv = next(servers)
    if not runtime_available(srv):
        servers.close()  # stops and checks the server before the skip
        pytest.skip("the Functions runtime cannot run Node.js here")
    yield srv
    servers.close()


@pytest.fixture
def rx():
    r = Receiver()
    yield r
    r.close()


def instance(srv, code, config=None, settings=None):
    """A new source with an enabled instance of a new DESTINATION function; returns
    (function, source slug, write key, destination path)."""
    fn = mk(srv, "DESTINATION", code=code, settings=settings or [])
    slug = uniq("fd")
    key = assert_ok(srv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    dname = f"{src_name(slug)}/destinations/{fn['catalog_id']}"
    cfg = [{"name": f"{dname}/config/{k}", "value": v} for k, v in (config or {}).items()]
    assert_ok(srv.post(src_path(slug) + "/destinations", json={"destination": {
        "name": dname, "catalog_name": f"catalog/destinations/{fn['catalog_id']}", "connection_mode": "CLOUD",
        "enabled": True, "config": cfg}}))
    return fn, slug, key, "/v1beta/" + dname, dname


def wait_metrics(srv, dpath, dname, want, timeout=30):
    return wait_dest_metrics(srv, dpath, dname, want, timeout)


SETTINGS = [{"name": "url", "label": "URL", "required": True}, {"name": "tag", "label": "Tag"}]


def test_function_delivery_fetch(fsrv, rx):
    fn, slug, key, dpath, dname = instance(fsrv, FETCH, {"url": rx.url("/fn"), "tag": "t1"}, SETTINGS)
    mid = track(fsrv, key, event="Fn Order")
    (req,) = rx.wait_for(1, timeout=30)
    body = req.json()
    assert body["tag"] == "t1"
    assert body["event"]["messageId"] == mid and body["event"]["event"] == "Fn Order"
    assert body["event"]["properties"] == {"total": 9.99}
    m = wait_metrics(fsrv, dpath, dname, {"successes": 1})
    assert m.get("successes_attempt_1") == 1
    assert not [k for k in m if k.startswith(("retried", "discarded"))], m


def test_function_delivery_retry_then_success(fsrv):
    rx = Receiver(script=[(503, {}, 0), (503, {}, 0)])
    try:
        fn, slug, key, dpath, dname = instance(fsrv, FETCH, {"url": rx.url("/r")}, SETTINGS)
        mid = track(fsrv, key)
        reqs = rx.wait_for(3, timeout=30)
        assert all(r.json()["event"]["messageId"] == mid for r in reqs)
        m = wait_metrics(fsrv, dpath, dname, {"successes": 1, "retried_retry": 2})
        assert m.get("successes_attempt_3") == 1, m
        assert not [k for k in m if k.startswith("discarded")], m
        assert pending_retries(fsrv, dname) == 0
    finally:
        rx.close()


@pytest.mark.parametrize("throw,code", [("new ValidationError('bad')", "message_rejected"),
                                        ("new InvalidEventPayload('x')", "message_rejected"),
                                        ("new EventNotSupported('no')", "unsupported_event_type"),
                                        ("new TypeError('oops')", "bad_request")])
def test_function_delivery_discard(fsrv, throw, code):
    fn, slug, key, dpath, dname = instance(fsrv, "async function onTrack(e, s) { throw %s }" % throw)
    track(fsrv, key)
    track(fsrv, key)
    m = wait_metrics(fsrv, dpath, dname, {"discarded_" + code: 2})
    assert not [k for k in m if k.startswith(("retried", "successes"))], m
    assert pending_retries(fsrv, dname) == 0


def test_function_delivery_no_handler_and_required_setting(fsrv):
    # identify has no handler: unsupported; a required setting without a value: invalid_settings
    fn, slug, key, dpath, dname = instance(fsrv, "async function onTrack(e, s) { return 1 }")
    import requests
    r = requests.post(fsrv.url("/v1/identify"), json={"userId": "u", "traits": {}}, headers=auth(key), timeout=30)
    assert r.status_code == 200
    wait_metrics(fsrv, dpath, dname, {"discarded_unsupported_event_type": 1})
    fn2, slug2, key2, dpath2, dname2 = instance(
        fsrv, "async function onTrack(e, s) { return 1 }", settings=[{"name": "need", "label": "N", "required": False}])
    assert_ok(fsrv.request("PATCH", f"{FNS}/{fn2['id']}", json={
        "function": {"settings": [{"name": "need", "label": "N", "required": True}]},
        "update_mask": {"paths": ["function.settings"]}}))
    track(fsrv, key2)
    m = wait_metrics(fsrv, dpath2, dname2, {"discarded_invalid_settings": 1})
    assert "successes" not in m


def test_function_delivery_code_update_applies(fsrv, rx):
    code = FETCH.replace("tag: settings.tag", "tag: 'v1'")
    fn, slug, key, dpath, dname = instance(fsrv, code, {"url": rx.url("/u")}, SETTINGS)
    track(fsrv, key)
    (r1,) = rx.wait_for(1, timeout=30)
    assert r1.json()["tag"] == "v1"
    assert_ok(patch(fsrv, fn["id"], {"code": FETCH.replace("tag: settings.tag", "tag: 'v2'")}, ["function.code"]))
    track(fsrv, key)
    reqs = rx.wait_for(2, timeout=30)
    assert reqs[1].json()["tag"] == "v2"
    assert json.loads(reqs[1].body)["event"]["type"] == "track"


def test_function_delivery_runtime_unavailable_retries(start_server):
    # Without Node.js the event is not lost: retried as runtime_unavailable, never discarded.
    with environ(MANIFOLD_RETRY_TIME_SCALE=SCALE):
        srv = start_server("--rate-limit", "0", "--functions-node", "/nonexistent/node")
    fn, slug, key, dpath, dname = instance(srv, "async function onTrack(e, s) { return 1 }")
    track(srv, key)
    m = wait_metrics(srv, dpath, dname, {"retried_runtime_unavailable": 2})
    assert "successes" not in m and not [k for k in m if k.startswith("discarded")], m

"""The Functions runtime (functions-runtime.md), black-box through `manifold function run`:
every example of §10, the util.format vectors of §9.3, the 4 KB log cap, time limits, memory
limits, hostile code (escapes, fork/exec, file reads, canaries, prototype pollution), the
outbound policy, and one long-running runtime that keeps answering while a function loops.
The runtime is exercised through the CLI because it is the same code the server calls
(src/functions/); the database backend does not matter here.

Needs Node.js (Debian's nodejs); without it every test but test_runtime_unavailable is skipped.
"""
import http.server
import json
import os
import pathlib
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, sanitizer_lines, free_port
from helpers_fn import D1, S1, S1A_BODY, S1A_OUT, S1C_BODY, S2

NODE = shutil.which("node") or shutil.which("nodejs")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def run(kind, code, payload, settings=None, extra=(), env=None, timeout=60, raw_input=None):
    """Runs one invocation (or, with --jsonl in extra, many) and returns the parsed result(s)."""
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "fn.js"
        path.write_text(code)
        cmd = [BIN, "function", "run", "--type", kind, "--code", str(path)]
        if settings is not None:
            cmd += ["--settings", json.dumps(settings)]
        cmd += list(extra)
        data = raw_input if raw_input is not None else json.dumps(payload)
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout, env=e)
    assert not sanitizer_lines(p.stderr), p.stderr
    assert p.returncode == 0, p.stderr
    if "--jsonl" in extra:
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()], p
    return json.loads(p.stdout), p


def ok(r):
    assert r["invoke"]["success"] is True, r
    assert r["invoke"]["error_reason"] is None
    return json.loads(r["invoke"]["output"])


def fails(r, reason=None, startswith=None):
    assert r["invoke"]["success"] is False, r
    assert r["invoke"]["output"] == ""
    if reason is not None:
        assert r["invoke"]["error_reason"] == reason
    if startswith is not None:
        assert r["invoke"]["error_reason"].startswith(startswith), r["invoke"]["error_reason"]
    return r["invoke"]["error_reason"]


def messages(r):
    return [l["message"] for l in r["logs"]]


# ---- a loopback mock endpoint --------------------------------------------------------------


class Mock:
    def __init__(self):
        self.requests = []
        self.status = 200
        self.delay = 0
        mock = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                mock.requests.append({"method": "POST", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body.decode()})
                if mock.delay:
                    time.sleep(mock.delay)
                out = b'{"ok":true}'
                try:
                    self.send_response(mock.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

            do_GET = do_POST

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def mock():
    m = Mock()
    yield m
    m.close()


# ---- §10.1 / §10.2 source functions -----------------------------------------------------------
# (S1, S2 and their inputs are in helpers_fn.py)


@needs_node
def test_s1a_payment_settled():
    r, _ = run("source", S1, {"payload": {"body": S1A_BODY, "headers": {}, "queryParameters": {}}})
    assert ok(r) == S1A_OUT
    assert r["logs"] == [] and r["logs_truncated"] is False


@needs_node
def test_s1b_ignored_kind_logs():
    r, _ = run("source", S1, {"payload": {"body": {"kind": "payment.failed"}}})
    assert ok(r) == {"events": [], "objects": []}
    assert messages(r) == ["ignored kind payment.failed"]
    assert r["logs"][0]["created_at"].endswith("Z") and "T" in r["logs"][0]["created_at"]


@needs_node
def test_s1c_missing_identity():
    r, _ = run("source", S1, {"payload": {"body": S1C_BODY}})
    fails(r, "ValidationError: One of userId,anonymousId is required but not defined")
    assert r["invoke"]["error_name"] == "ValidationError"


@needs_node
def test_s2a_objects_headers_query():
    payload = {"payload": {"body": {"items": [{"sku": "A-1", "title": "Mug"}, {"sku": "B-2", "title": "Cap"}]},
                           "headers": {"X-Hook-Token": ["s3cr3t"]}, "queryParameters": {"store": "berlin"}}}
    r, _ = run("source", S2, payload, settings={"hookToken": "s3cr3t"})
    assert ok(r) == {"events": [], "objects": [
        {"collection": "products", "id": "A-1", "properties": {"title": "Mug", "store": "berlin"}},
        {"collection": "products", "id": "B-2", "properties": {"title": "Cap", "store": "berlin"}}]}
    assert messages(r) == ["stored 2 items for berlin"]


@needs_node
def test_s2b_bad_token():
    payload = {"payload": {"body": {"items": []}, "headers": {"X-Hook-Token": ["nope"]},
                           "queryParameters": {"store": "berlin"}}}
    r, _ = run("source", S2, payload, settings={"hookToken": "s3cr3t"})
    fails(r, "ValidationError: bad hook token")
    assert r["logs"] == []


@needs_node
def test_source_request_text_form_body_and_segment_shapes():
    code = """
    async function onRequest(req) {
      Segment.page({ anonymousId: 'a1', name: 'Home', category: 'dropped', properties: { p: 1 } })
      Segment.screen({ userId: 'u', name: 'S' })
      Segment.group({ userId: 'u', groupId: 'g1', traits: { n: 2 } })
      Segment.alias({ userId: 'u', previousId: 'old' })
      Segment.set({ collection: 'Rooms', id: 'r1' })
      console.log(req.text(), req.headers.get('x-multi'), req.url.searchParams.getAll('t').join('+'))
      let err = ''
      try { Segment.track({ userId: 'u' }) } catch (e) { err = e.name + ': ' + e.message + ' ' + (e instanceof ValidationError) }
      try { req.json() } catch (e) { err += ' / ' + e.name }
      console.log(err)
    }
    """
    r, _ = run("source", code, {"payload": {"body": "a=1&b=2", "headers": {"X-Multi": ["1", "2"]},
                                            "queryParameters": {"t": ["x", "y"]}}})
    out = ok(r)
    assert out["events"] == [
        {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"p": 1}},
        {"type": "screen", "userId": "u", "name": "S"},
        {"type": "group", "userId": "u", "groupId": "g1", "traits": {"n": 2}},
        {"type": "alias", "userId": "u", "previousId": "old"}]
    assert out["objects"] == [{"collection": "rooms", "id": "r1"}]
    assert messages(r) == ["a=1&b=2 1, 2 x+y",
                           "ValidationError: event is required but not defined true / SyntaxError"]


@needs_node
def test_source_throw_emits_nothing_and_missing_onrequest():
    r, _ = run("source", "async function onRequest(){ Segment.track({event:'E', userId:'u'}); throw new RetryError('later') }",
               {"payload": {"body": {}}})
    fails(r, "RetryError: later")
    r, _ = run("source", "const x = 1", {"payload": {"body": {}}})
    fails(r, "EventNotSupported: request not supported")


@needs_node
def test_source_body_keys_sorted_only_when_deployed():
    code = "console.log('top-level runs', 1); async function onRequest(req){ console.log(req.text()) }"
    payload = {"payload": {"body": {"b": 1, "a": {"d": 2, "c": [{"z": 1, "y": 2}]}}}}
    r, _ = run("source", code, payload)  # preview: as sent, and top-level logs are this call's logs
    assert messages(r) == ["top-level runs 1", '{"b":1,"a":{"d":2,"c":[{"z":1,"y":2}]}}']
    r, _ = run("source", code, payload, extra=["--instance", "src-1"])  # a deployed instance
    assert messages(r) == ["top-level runs 1", '{"a":{"c":[{"y":2,"z":1}],"d":2},"b":1}']


# ---- §10.3 destination function D1 -----------------------------------------------------------
# (D1 is in helpers_fn.py)

E = {"type": "track", "event": "Order Completed", "userId": "u-7", "messageId": "m-77", "properties": {"revenue": 42.5}}


def d1_settings(port):
    return {"endpoint": f"http://127.0.0.1:{port}/in", "apiKey": "k1"}


@needs_node
def test_d1a_success_and_request_shape(mock):
    r, _ = run("destination", D1, E, settings=d1_settings(mock.port))
    assert ok(r) == {"status": 200}
    assert messages(r) == ["sent m-77"]
    assert len(mock.requests) == 1
    q = mock.requests[0]
    assert q["path"] == "/in"
    assert q["headers"]["authorization"] == "Basic azE6"
    assert q["headers"]["content-type"] == "application/json"
    assert json.loads(q["body"]) == {"name": "Order Completed", "user": "u-7", "value": 42.5}
    assert q["body"] == '{"name":"Order Completed","user":"u-7","value":42.5}'


@needs_node
@pytest.mark.parametrize("status,reason", [(503, "RetryError: upstream status 503"),
                                           (404, "ValidationError: upstream rejected: 404")])
def test_d1b_d1c_upstream_status(mock, status, reason):
    mock.status = status
    r, _ = run("destination", D1, E, settings=d1_settings(mock.port))
    fails(r, reason)
    assert len(mock.requests) == 1


@needs_node
def test_d1d_invalid_payload_no_request(mock):
    e = dict(E, properties={"revenue": "42.5"})
    r, _ = run("destination", D1, e, settings=d1_settings(mock.port))
    fails(r, "InvalidEventPayload: properties.revenue must be a number")
    assert mock.requests == []


@needs_node
def test_d1e_d1f_unsupported(mock):
    r, _ = run("destination", D1, {"type": "identify", "userId": "u-7"}, settings=d1_settings(mock.port))
    fails(r, "EventNotSupported: identify is not supported")
    r, _ = run("destination", D1, {"type": "page", "userId": "u-7", "name": "Home"}, settings=d1_settings(mock.port))
    fails(r, "EventNotSupported: page not supported")
    assert r["invoke"]["error_name"] == "EventNotSupported"


@needs_node
def test_d1g_closed_port():
    r, _ = run("destination", D1, E, settings={"endpoint": f"http://127.0.0.1:{free_port()}/in", "apiKey": "k1"})
    fails(r, "TypeError: fetch failed")


@needs_node
def test_d1h_slow_upstream_times_out_at_5s(mock):
    mock.delay = 6
    t = time.monotonic()
    r, _ = run("destination", D1, E, settings=d1_settings(mock.port))
    took = time.monotonic() - t
    fails(r, "Timeout: function exceeded 5000 ms")
    assert r["invoke"]["error_name"] == "Timeout"
    assert 4.9 <= took < 5.9 + 3, took


# ---- §10.4 insert I1, §10.5 batch B1 ---------------------------------------------------------

I1 = """
async function onTrack(event, settings) {
  event.properties = event.properties || {}
  event.properties.region = settings.region
  if (event.context && event.context.ip) delete event.context.ip
  return event
}
async function onIdentify(event, settings) {
  if (event.traits && event.traits.internal === true) {
    throw new DropEvent('internal user')
  }
  return event
}
"""


@needs_node
def test_i1_insert_function():
    s = {"region": "eu"}
    r, _ = run("insert", I1, {"type": "track", "event": "Signed Up", "userId": "u-1",
                              "context": {"ip": "10.0.0.1", "locale": "en-US"}}, settings=s)
    assert ok(r) == {"type": "track", "event": "Signed Up", "userId": "u-1", "context": {"locale": "en-US"},
                     "properties": {"region": "eu"}}
    r, _ = run("insert", I1, {"type": "identify", "userId": "u-2", "traits": {"internal": True}}, settings=s)
    fails(r, "DropEvent: internal user")
    assert r["invoke"]["error_name"] == "DropEvent"
    e = {"type": "identify", "userId": "u-3", "traits": {"internal": False}}
    r, _ = run("insert", I1, e, settings=s)
    assert ok(r) == e
    r, _ = run("insert", I1, {"type": "group", "userId": "u-3", "groupId": "g"}, settings=s)
    fails(r, "EventNotSupported: group not supported")


B1 = """
async function onBatch(events, settings) {
  return events.map(e => (e.type === 'track' && e.event ? { status: 200 } : { status: 400, errormessage: 'only named track events' }))
}
async function onTrack(event, settings) { return { status: 200 } }
"""


@needs_node
def test_b1a_batch_preview():
    r, _ = run("destination", B1, [{"type": "track", "event": "A", "userId": "1"}, {"type": "identify", "userId": "2"},
                                   {"type": "track", "userId": "3"}])
    assert ok(r) == [{"status": 200}, {"status": 400, "errormessage": "only named track events"},
                     {"status": 400, "errormessage": "only named track events"}]
    r, _ = run("destination", "async function onTrack(){}", [{"type": "track"}])
    fails(r, "EventNotSupported: batch not supported")


# ---- §10.6 runtime edge vectors ---------------------------------------------------------------

T = {"type": "track", "event": "X", "userId": "u"}


@needs_node
def test_r1_no_require():
    r, _ = run("destination", "async function onTrack(e){ return require('fs') }", T)
    fails(r, startswith="ReferenceError:")


@needs_node
def test_r2_module_state_per_instance_and_preview():
    code = "let n = 0; async function onTrack(e){ n++; return n }"
    lines = "\n".join(json.dumps(T) for _ in range(3))
    rs, _ = run("destination", code, None, raw_input=lines, extra=["--jsonl", "--instance", "dest-1", "--workers", "1"])
    assert [ok(r) for r in rs] == [1, 2, 3]
    rs, _ = run("destination", code, None, raw_input=lines, extra=["--jsonl"])
    assert [ok(r) for r in rs] == [1, 1, 1]  # preview: a fresh instance every time
    # const/let handlers count as handlers too (§2)
    r, _ = run("destination", "const onTrack = async (e) => e.event + '!'", T)
    assert ok(r) == "X!"


@needs_node
def test_r3_r4_globals_and_cache():
    r, _ = run("destination", "async function onTrack(e, s){ return typeof _ + typeof fetch + typeof crypto.createHmac }", T)
    assert ok(r) == "undefinedfunctionfunction"  # lodash is not installed with the runtime
    r, _ = run("destination", "async function onTrack(e){ return await cache.load('k', 1000, async () => 41 + 1) }", T)
    assert ok(r) == 42
    code = """async function onTrack(e) {
      const h = crypto.createHmac('sha1', 'abc123').update('{"a":1}').digest('hex')
      const u = new URL('https://x.test/p?a=1'); u.searchParams.append('b', '2')
      return [h, u.href, atob(btoa('hi')), Buffer.from('hé').toString('base64'), new URLSearchParams({q: 'a b'}).toString(),
              typeof setTimeout, typeof clearInterval, window === globalThis, typeof Headers, typeof Request,
              typeof Response, typeof ValidationError, typeof RetryError, typeof DropEvent, typeof InvalidEventPayload,
              typeof EventNotSupported, typeof Segment]
    }"""
    r, _ = run("destination", code, T)
    assert ok(r) == ["3e00835f622cfab98f4a3b8a6c14ff71e8fd2d21", "https://x.test/p?a=1&b=2", "hi", "aMOp", "q=a+b",
                     "function", "function", True, "function", "function", "function", "function", "function",
                     "function", "function", "function", "undefined"]


@needs_node
def test_r5_r6_thrown_string_and_sync_handler():
    r, _ = run("destination", "async function onTrack(e){ throw 'plain string' }", T)
    fails(r, "Error: plain string")
    r, _ = run("destination", "function onTrack(e){ return {sync: true} }", T)
    assert ok(r) == {"sync": True}
    r, _ = run("destination", "async function onTrack(e){ }", T)
    assert r["invoke"]["output"] == "null" and ok(r) is None
    r, _ = run("destination", "async function onTrack(e){ return 1 }", {"type": "weird"})
    assert ok(r) is None  # unknown type: no handler runs, success


@needs_node
def test_result_size_cap_and_weird_results():
    r, _ = run("destination", "async function onTrack(){ return 'x'.repeat(17 * 1024 * 1024) }", T)
    fails(r, startswith="RangeError: the result is over")
    r, _ = run("destination", "async function onTrack(){ return 10n }", T)
    fails(r, startswith="TypeError:")  # BigInt is not JSON
    r, _ = run("destination", "async function onTrack(){ return { toJSON() { return 'custom' } } }", T)
    assert ok(r) == "custom"
    r, _ = run("destination", "async function onTrack(){ return () => 1 }", T)
    assert r["invoke"]["output"] == "null"


@needs_node
def test_r7_log_cap():
    r, _ = run("destination", "async function onTrack(e){ console.log('x'.repeat(5000)); return 1 }", T)
    assert ok(r) == 1
    assert r["logs_truncated"] is True and r["logs"] == []
    # lines within 4 KB are kept in call order; the first one past it and all after are dropped
    r, _ = run("destination", "async function onTrack(e){ for (let i = 0; i < 10; i++) console.log(String(i).repeat(500)); }", T)
    assert r["logs_truncated"] is True
    assert messages(r) == [str(i) * 500 for i in range(8)]
    r, _ = run("destination", "async function onTrack(e){ for (let i = 0; i < 8; i++) console.log(String(i).repeat(512)) }", T)
    assert r["logs_truncated"] is False and len(r["logs"]) == 8


@needs_node
def test_r8_syntax_error():
    r, _ = run("destination", "async function onTrack(e {", T)
    fails(r, startswith="SyntaxError:")
    assert r["invoke"]["error_name"] == "SyntaxError"


@needs_node
def test_util_format_vectors():
    code = """async function onTrack(e) {
      console.log({foo: 'bar'})
      console.info('User ID is', 'u-1')
      console.warn('n=%d', 5, {a: [1, 2]}, null, undefined)
      console.error(new Map([[1, 2]]), [1, 'a'], Buffer.from('ab'))
      console.debug('%s|%j|%i|%%', 'str', {x: 1}, 42.9)
    }"""
    r, _ = run("destination", code, T)
    assert messages(r) == ["{ foo: 'bar' }", "User ID is u-1", "n=5 { a: [ 1, 2 ] } null undefined",
                           "Map(1) { 1 => 2 } [ 1, 'a' ] <Buffer 61 62>", 'str|{"x":1}|42|%']


# ---- time limits ----------------------------------------------------------------------------


@needs_node
def test_timeout_infinite_loop_knob():
    t = time.monotonic()
    r, _ = run("destination", "async function onTrack(){ while (true) {} }", T,
               env={"MANIFOLD_FUNCTION_TIMEOUT_MS": "800"})
    fails(r, "Timeout: function exceeded 800 ms")
    assert time.monotonic() - t < 10
    r, _ = run("destination", "while (true) {}", T, extra=["--timeout-ms", "700"])  # top-level code
    fails(r, "Timeout: function exceeded 700 ms")
    r, _ = run("destination", "async function onTrack(){ await new Promise(r => setTimeout(r, 60000)) }", T,
               extra=["--timeout-ms", "700"])
    fails(r, "Timeout: function exceeded 700 ms")


@needs_node
def test_long_running_runtime_keeps_answering_while_one_loops():
    """One runtime (one process, two workers): the first call loops forever, twenty trivial
    calls behind it all complete long before the loop is killed, and after the kill the
    replacement worker serves again."""
    code = """async function onTrack(e){ if (e.event === 'loop') while (true) {} ; return e.properties.i }"""
    lines = [json.dumps({"type": "track", "event": "loop", "userId": "u"})]
    lines += [json.dumps({"type": "track", "event": "ok", "userId": "u", "properties": {"i": i}}) for i in range(20)]
    lines += [json.dumps({"type": "track", "event": "loop", "userId": "u"})]
    lines += [json.dumps({"type": "track", "event": "ok", "userId": "u", "properties": {"i": i}}) for i in range(20, 30)]
    rs, _ = run("destination", code, None, raw_input="\n".join(lines),
                extra=["--jsonl", "--workers", "2", "--timeout-ms", "3000"])
    assert len(rs) == 32
    fails(rs[0], "Timeout: function exceeded 3000 ms")
    fails(rs[21], "Timeout: function exceeded 3000 ms")
    assert [ok(r) for r in rs[1:21]] == list(range(20))
    assert [ok(r) for r in rs[22:]] == list(range(20, 30))
    assert max(r["duration_ms"] for r in rs[1:21]) < 1500


@needs_node
def test_warm_pipeline_survives_a_killed_call():
    """Calls of one warm instance are sent ahead to the worker running it (its pipeline).
    When the call it runs loops and is killed, the calls sent ahead had not started: they
    are taken back, run on the replacement worker, and each is answered exactly once with
    its own result. The runtime's counters show that calls were sent ahead and taken back."""
    code = """var seen = 0;
      async function onTrack(e){ if (e.event === 'loop') while (true) {} ; seen++; return [e.properties.i, seen] }"""
    lines = [json.dumps({"type": "track", "event": "ok", "userId": "u", "properties": {"i": i}}) for i in range(5)]
    lines += [json.dumps({"type": "track", "event": "loop", "userId": "u"})]
    lines += [json.dumps({"type": "track", "event": "ok", "userId": "u", "properties": {"i": i}}) for i in range(5, 30)]
    rs, p = run("destination", code, None, raw_input="\n".join(lines),
                extra=["--jsonl", "--workers", "1", "--timeout-ms", "1000", "--instance", "pipe", "--stats"])
    assert len(rs) == 31
    fails(rs[5], "Timeout: function exceeded 1000 ms")
    outs = [ok(r) for r in rs[:5] + rs[6:]]
    assert [o[0] for o in outs] == list(range(30))
    # each call ran once: the instance's counter counts up by one per call in each worker, in
    # the order the calls were sent (the loop killed the first worker and its counter)
    assert [o[1] for o in outs[:5]] == [1, 2, 3, 4, 5]
    assert [o[1] for o in outs[5:]] == list(range(1, 26))
    stats = json.loads([l for l in p.stderr.splitlines() if l.startswith("{")][-1])
    assert stats["calls"] == 31 and stats["killed"] == 1
    assert stats["sent_ahead"] >= 1 and stats["requeued"] >= 1, stats


@needs_node
def test_queue_is_bounded():
    """One worker, a queue of 3: of 10 calls submitted at once, the ones beyond the bound are
    answered at once with Timeout (so delivery retries them), the others run."""
    code = "async function onTrack(e){ await new Promise(r => setTimeout(r, 200)); return e.properties.i }"
    lines = [json.dumps({"type": "track", "userId": "u", "properties": {"i": i}}) for i in range(10)]
    rs, _ = run("destination", code, None, raw_input="\n".join(lines), extra=["--jsonl", "--workers", "1"],
                env={"MANIFOLD_FUNCTION_QUEUE": "3"})
    ran = [ok(r) for r in rs if r["invoke"]["success"]]
    refused = [r for r in rs if not r["invoke"]["success"]]
    assert ran == list(range(3))
    assert len(refused) == 7
    for r in refused:
        assert r["invoke"]["error_name"] == "Timeout"
        assert r["invoke"]["error_message"] == "the runtime's queue is full"


# ---- memory ------------------------------------------------------------------------------------


@needs_node
def test_memory_bomb_is_memory_limit_not_timeout():
    code = """async function onTrack(e){
      if (e.event !== 'bomb') return 'alive'
      const a = []; for (let i = 0; i < 512; i++) a.push(Buffer.alloc(1 << 20, 1)); return a.length }"""
    lines = [json.dumps(dict(T, event="bomb")), json.dumps(T), json.dumps(dict(T, event="bomb")), json.dumps(T)]
    t = time.monotonic()
    # a generous time limit: on a loaded machine writing 256 MiB can take seconds, and this
    # test is about which limit stops the function, not about how fast the box is
    rs, _ = run("destination", code, None, raw_input="\n".join(lines),
                extra=["--jsonl", "--instance", "m", "--workers", "1", "--timeout-ms", "20000"])
    for i in (0, 2):
        fails(rs[i], startswith="MemoryLimit")
        assert rs[i]["invoke"]["error_name"] == "MemoryLimit"
    # the worker is replaced and the runtime answers again
    assert ok(rs[1]) == "alive" and ok(rs[3]) == "alive"
    assert time.monotonic() - t < 60
    r, _ = run("destination", "async function onTrack(){ return Buffer.alloc(512 * 1024 * 1024).length }", T)
    fails(r, startswith="MemoryLimit")


# ---- hostile code -------------------------------------------------------------------------------

ESCAPES = [
    "globalThis.constructor.constructor('return process')()",
    "this.constructor.constructor('return process')()",
    "Buffer.constructor('return process')()",
    "Buffer.from('').constructor.constructor('return process')()",
    "fetch.constructor('return process')()",
    "console.log.constructor('return process')()",
    "crypto.createHash.constructor('return process')()",
    "new URL('http://x').constructor.constructor('return process')()",
    "(async () => {}).constructor('return process')()",
    "eval('process')",
    "new Function('return process')()",
    "process",
    "require",
    "module",
    "import('fs')",
    "Object.getPrototypeOf(Buffer).constructor.constructor('return process')()",
]


@needs_node
@pytest.mark.parametrize("expr", ESCAPES)
def test_escape_attempts_fail(expr):
    code = f"async function onTrack(e){{ const p = await ({expr}); return typeof p === 'object' && p ? Object.keys(p).slice(0, 5) : String(p) }}"
    r, _ = run("destination", code, T)
    assert r["invoke"]["success"] is False, r
    assert r["invoke"]["error_name"] in ("EvalError", "ReferenceError", "TypeError"), r


@needs_node
def test_prototype_pollution_does_not_cross_instances():
    """Two fresh instances, one after the other in the same worker process: what the first
    does to its built-ins and to the host objects it was given is not seen by the second."""
    code = """
    async function onTrack(e){
      if (e.event === 'poison') {
        Object.prototype.polluted = 'yes'; Array.prototype.includes = () => true; JSON.parse = () => 'pwned'
        try { Object.getPrototypeOf(Object.getPrototypeOf(Object.getPrototypeOf(Buffer.prototype))).hostPolluted = 'yes' } catch (x) {}
        try { Buffer.prototype.toString = () => 'pwned' } catch (x) {}
        try { Buffer.from = () => 'pwned' } catch (x) {}
        return 'poisoned'
      }
      return [({}).polluted, [].includes(1), JSON.parse('1'), Buffer.from('ok').toString(), ({}).hostPolluted]
    }"""
    lines = [json.dumps(dict(T, event="poison")), json.dumps(dict(T, event="check"))]
    rs, _ = run("destination", code, None, raw_input="\n".join(lines), extra=["--jsonl", "--workers", "1"])
    assert ok(rs[0]) == "poisoned"
    assert ok(rs[1]) == [None, False, 1, "ok", None]


@pytest.fixture
def canaries(tmp_path):
    secret_env = "canary-env-" + os.urandom(8).hex()
    secret_file = "canary-file-" + os.urandom(8).hex()
    f = tmp_path / "manifold.key"
    f.write_text(secret_file)
    f.chmod(0o644)
    tmp_path.chmod(0o755)
    return {"env": {"MANIFOLD_CANARY": secret_env, "DATABASE_URL": "postgres://u:" + secret_env + "@h/db"},
            "file": str(f), "secrets": [secret_env, secret_file]}


@needs_node
def test_canaries_never_reach_function_output(canaries):
    code = f"""async function onTrack(e){{
      const seen = []
      const tryit = (f) => {{ try {{ seen.push(String(f())) }} catch (x) {{ seen.push(x.name) }} }}
      tryit(() => JSON.stringify(globalThis))
      tryit(() => Object.getOwnPropertyNames(globalThis).join())
      tryit(() => process.env.MANIFOLD_CANARY)
      tryit(() => Buffer.constructor('return process.env')())
      tryit(() => require('fs').readFileSync({json.dumps(canaries['file'])}, 'utf8'))
      tryit(() => import('fs'))
      const r = await fetch('file://' + {json.dumps(canaries['file'])}).then(r => r.text(), x => x.message)
      seen.push(r)
      console.log(seen)
      return seen
    }}"""
    r, p = run("destination", code, T, env=canaries["env"])
    text = json.dumps(r) + p.stdout + p.stderr
    for s in canaries["secrets"]:
        assert s not in text


@needs_node
def test_escaped_code_is_still_contained(canaries, tmp_path):
    """`manifold function sandbox-exec` runs plain Node.js code — with require and process —
    inside the same cage as a worker: exactly what code that escaped its vm context would
    have. No environment, no files (key file canary, /etc/passwd, the working directory),
    no writes, no child processes, no signals to others, no Unix sockets, no listening."""
    script = tmp_path / "escape.js"
    marker = tmp_path / "written"
    script.write_text(f"""
const fs = require('fs'), cp = require('child_process'), net = require('net')
const out = {{}}
const t = (k, f) => {{ try {{ out[k] = 'ALLOWED ' + String(f()).slice(0, 200) }} catch (e) {{ out[k] = 'denied ' + (e.code || e.message) }} }}
out.env = JSON.stringify(process.env)
t('key', () => fs.readFileSync({json.dumps(canaries['file'])}, 'utf8'))
t('passwd', () => fs.readFileSync('/etc/passwd', 'utf8'))
t('cwd', () => fs.readdirSync('.'))
t('proc_environ', () => fs.readFileSync('/proc/1/environ', 'utf8'))
t('parent_environ', () => fs.readFileSync('/proc/' + process.ppid + '/environ', 'utf8'))
t('write', () => fs.writeFileSync({json.dumps(str(marker))}, 'x'))
t('exec', () => cp.execSync('echo hi'))
t('spawn', () => {{ const r = cp.spawnSync('/bin/sh', ['-c', 'echo hi']); if (r.error) throw r.error; return r.stdout }})
t('kill_parent', () => process.kill(process.ppid, 0))
t('unix', () => {{ const s = new net.Socket(); s.connect('/tmp/x.sock'); return 'pending' }})
t('uid', () => process.getuid())
console.log(JSON.stringify(out))
""")
    e = dict(os.environ)
    e.update(canaries["env"])
    p = subprocess.run([BIN, "function", "sandbox-exec", "--script", str(script)], capture_output=True, text=True,
                       timeout=60, env=e)
    assert not sanitizer_lines(p.stderr), p.stderr
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][0]
    out = json.loads(line)
    env = json.loads(out["env"])
    assert set(env) <= {"MALLOC_ARENA_MAX", "UV_THREADPOOL_SIZE"}, env
    for k in ("key", "passwd", "cwd", "write", "exec", "spawn", "kill_parent", "proc_environ", "parent_environ"):
        assert out[k].startswith("denied"), (k, out[k])
    assert not marker.exists()
    for s in canaries["secrets"]:
        assert s not in p.stdout + p.stderr
    if os.geteuid() == 0:
        assert out["uid"] == "ALLOWED 65534"


# ---- outbound policy ----------------------------------------------------------------------------

FETCH = """async function onTrack(e, s){ try { const r = await fetch(s.url); return r.status } catch (x) { return x.name + ': ' + x.message + (x.cause ? ' / ' + x.cause.message : '') } }"""


@needs_node
def test_outbound_policy_on_resolved_address(mock):
    url = f"http://127.0.0.1:{mock.port}/x"
    r, _ = run("destination", FETCH, T, settings={"url": url})
    assert ok(r) == 200
    r, _ = run("destination", FETCH, T, settings={"url": url}, env={"MANIFOLD_OUTBOUND_DENY": "127.0.0.0/8"})
    assert ok(r).startswith("TypeError: fetch failed")
    assert "outbound policy" in ok(r)
    # a name resolving to a denied address is refused too (checked after resolution)
    r, _ = run("destination", FETCH, T, settings={"url": f"http://localhost:{mock.port}/x"},
               env={"MANIFOLD_OUTBOUND_DENY": "127.0.0.0/8,::1/128"})
    assert ok(r).startswith("TypeError: fetch failed")
    # ALLOW carves an exception out of DENY; ALLOW alone is an allow-list
    r, _ = run("destination", FETCH, T, settings={"url": url},
               env={"MANIFOLD_OUTBOUND_DENY": "127.0.0.0/8", "MANIFOLD_OUTBOUND_ALLOW": "127.0.0.1/32"})
    assert ok(r) == 200
    r, _ = run("destination", FETCH, T, settings={"url": url}, env={"MANIFOLD_OUTBOUND_ALLOW": "10.0.0.0/8"})
    assert ok(r).startswith("TypeError: fetch failed")
    assert len(mock.requests) == 2


# ---- no runtime ------------------------------------------------------------------------------


def test_runtime_unavailable(tmp_path):
    r, _ = run("destination", "async function onTrack(){ return 1 }", T, extra=["--node", str(tmp_path / "no-node")])
    assert r["invoke"] == {"success": False, "output": "", "error_reason": "runtime unavailable",
                           "error_name": "RuntimeUnavailable", "error_message": "runtime unavailable"}
    assert r["logs"] == [] and r["logs_truncated"] is False

"""Hostile input: bad bodies, transport abuse (sizes, smuggling, slow clients, connection
floods) and hostile paths. After every test the server must still answer normally."""
import json
import socket
import time

import pytest

from conftest import (DEFAULT_WS, assert_error, assert_ok, connect, raw_request, read_response,
                      wait_closed)

TOKENS = "/v1beta/access-tokens"
MAX_BODY = 4096


@pytest.fixture(scope="module")
def srv(start_server_module):
    return start_server_module


@pytest.fixture(scope="module")
def start_server_module(tmp_path_factory):
    from conftest import module_server
    yield from module_server(tmp_path_factory, "hostile", "--rate-limit", "0", "--max-body", str(MAX_BODY))


@pytest.fixture(autouse=True)
def still_alive(srv):
    """After each test: the server answers a normal authenticated request."""
    yield
    assert srv.proc is not None and srv.proc.poll() is None, "the server died:\n" + srv.stderr()[-5000:]
    b = assert_ok(srv.get("/v1beta/workspaces"))
    assert b["workspaces"][0]["name"] == "workspaces/" + DEFAULT_WS
    assert_ok(srv.get("/healthz", token=None))


def post_raw(srv, body, extra_headers=""):
    if isinstance(body, str):
        body = body.encode()
    head = (f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra_headers}\r\n").encode()
    return raw_request(srv.port, head + body)


def raw_get(srv, target, extra=b""):
    if isinstance(target, str):
        target = target.encode("latin-1")
    return raw_request(srv.port, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                       + srv.token.encode() + b"\r\n" + extra + b"\r\n")


def assert_raw_error(r, status, code):
    assert r is not None, "connection closed without a response"
    assert r.status == status, (r.status, r.body[:300])
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    b = r.json()
    assert set(b) == {"error", "code"} and isinstance(b["error"], str) and b["code"] == code, b
    return b


# ---- bodies -----------------------------------------------------------------------------

VALID = {"access_token": {"description": "d", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}


@pytest.mark.parametrize("body", [
    b"{", b"}", b"{\"access_token\":}", b"nul", b"{'access_token': {}}", b"{\"a\":1,}", b"[1,]",
    b"{} x", b"{}{}", b"\xef\xbb\xbf{}", b"// comment\n{}", b"{\"a\": NaN}", b"{\"a\": Infinity}",
    b"{\"a\": 01}", b"{\"a\": .5}", b"{\"a\": \"\\x41\"}", b"{\"a\": \"tab\there\"}", b"\x00",
    b"{\"a\": \"\\ud800\"}", b"{\"a\": tru}", b"[" * 4000, b"{\"a\":" * 800,
], ids=lambda b: repr(b[:24]))
def test_malformed_json(srv, body):
    assert_error(srv.post(TOKENS, data=body, headers={"Content-Type": "application/json"}), 400, 3)


@pytest.mark.parametrize("body", [b"[]", b"\"x\"", b"5", b"null", b"true", b"[{}]"])
def test_body_not_an_object(srv, body):
    assert_error(srv.post(TOKENS, data=body), 400, 3)


def test_nesting_depth_limit(srv):
    deep = {"access_token": VALID["access_token"], "x": None}
    v = 1
    for _ in range(200):
        v = [v]
    deep["x"] = v
    assert_error(srv.post(TOKENS, json=deep), 400, 3)


@pytest.mark.parametrize("body", [
    '{"access_token": {"description": "a", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},'
    ' "access_token": {"description": "b", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
    '{"access_token": {"description": "a", "description": "b", "scopes": "workspace",'
    ' "workspace_names": ["workspaces/myworkspace"]}}',
    '{"access_token": {"description": "a", "scopes": "workspace:read", "scopes": "workspace",'
    ' "workspace_names": ["workspaces/myworkspace"]}}',
    # a camelCase alias next to its snake_case field is a duplicate too
    '{"access_token": {"description": "a", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"],'
    ' "workspaceNames": ["workspaces/otherws"]}}',
])
def test_duplicate_keys(srv, body):
    assert_error(srv.post(TOKENS, data=body.encode()), 400, 3)


@pytest.mark.parametrize("field,value", [
    ("description", 5), ("description", True), ("description", ["d"]), ("description", {"a": 1}),
    ("scopes", 1), ("scopes", None), ("workspace_names", "workspaces/myworkspace"),
    ("workspace_names", [["workspaces/myworkspace"]]), ("workspace_names", [9007199254740993]),
    ("workspace_names", {"0": "workspaces/myworkspace"}),
])
def test_wrong_json_types(srv, field, value):
    at = dict(VALID["access_token"])
    at[field] = value
    assert_error(srv.post(TOKENS, json={"access_token": at}), 400, 3)


@pytest.mark.parametrize("body", [
    {"access_token": dict(VALID["access_token"], token="x")},
    {"access_token": dict(VALID["access_token"], name="access-tokens/1")},
    {"access_token": dict(VALID["access_token"], create_time="2020-01-01T00:00:00Z")},
    dict(VALID, update_mask={"paths": []}),
    dict(VALID, error="x"),
    {"Access_Token": VALID["access_token"]},
])
def test_unknown_fields(srv, body):
    assert_error(srv.post(TOKENS, json=body), 400, 3)


@pytest.mark.parametrize("raw", [
    b'{"access_token": {"description": "\xff\xfe", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
    b'{"access_token": {"description": "\xc0\xaf", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
    b'{"access_token": {"description": "\xed\xa0\x80", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
    b'{"access_token": {"description": "ok\xe2\x82", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
    b'{"\xff": 1}',
    b'{"access_token": {"description": "nul\\u0000byte", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]}}',
], ids=["ff-fe", "overlong", "surrogate", "truncated", "bad-key", "escaped-nul"])
def test_invalid_utf8_and_nul(srv, raw):
    assert_error(srv.post(TOKENS, data=raw), 400, 3)


def test_unicode_description_round_trips(srv):
    d = "naïve ☃ \U0001F600 \"quoted\" \\ \n\t\u0001"
    t = assert_ok(srv.post(TOKENS, json={"access_token": dict(VALID["access_token"], description=d)}))
    assert t["description"] == d
    assert assert_ok(srv.get("/v1beta/" + t["name"]))["description"] == d


def test_body_at_the_limit_is_read(srv):
    body = json.dumps(VALID).encode()
    body = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
    assert len(body) == MAX_BODY
    r = post_raw(srv, body)
    assert r.status == 200 and "token" in r.json()


def test_body_over_the_limit(srv):
    body = json.dumps(VALID).encode()
    body = body[:-1] + b" " * (MAX_BODY + 1 - len(body)) + b"}"
    assert_raw_error(post_raw(srv, body), 413, 3)


@pytest.mark.parametrize("expect", [False, True])
def test_huge_content_length_answered_before_the_body(srv, expect):
    """Only the headers are sent: the 413 must come without waiting for the body."""
    s = connect(srv.port)
    try:
        s.sendall((f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                   + ("Expect: 100-continue\r\n" if expect else "")
                   + "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n").encode())
        t0 = time.monotonic()
        r = read_response(s, timeout=5)
        assert time.monotonic() - t0 < 3
        assert_raw_error(r, 413, 3)
        assert r.headers.get("connection", "").lower() == "close"
        assert wait_closed(s, 5) is not None, "connection left open after refusing the body"
    finally:
        s.close()


def test_chunked_body_over_the_limit(srv):
    chunk = "x" * 1000
    body = "".join(f"{len(chunk):x}\r\n{chunk}\r\n" for _ in range(8)) + "0\r\n\r\n"
    r = raw_request(srv.port, (f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                               f"Transfer-Encoding: chunked\r\n\r\n{body}").encode())
    assert_raw_error(r, 413, 3)


def test_chunked_body_is_accepted(srv):
    body = json.dumps(VALID)
    r = raw_request(srv.port, (f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                               f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n{body}\r\n0\r\n\r\n").encode())
    assert r.status == 200 and "token" in r.json()


@pytest.mark.parametrize("cl,status", [("99999999999999999999999999", 413), ("-1", 400), ("abc", 400),
                                       ("1 2", 400), ("0x10", 400), ("", 400)])
def test_absurd_content_length(srv, cl, status):
    """libmicrohttpd refuses these itself, before our handler runs; the answer is still
    the JSON error body, complete (0.9.75 would send its header block twice), and the
    connection is closed."""
    s = connect(srv.port)
    try:
        s.sendall((f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                   f"Content-Length: {cl}\r\n\r\n{{}}").encode())
        r = read_response(s, timeout=5)
        assert_raw_error(r, status, 3)
        assert r.headers.get("x-request-id"), r.headers
        assert wait_closed(s, 5) is not None, "connection kept open after a bad Content-Length"
    finally:
        s.close()


def test_bad_content_length_after_a_keep_alive_request(srv):
    """The JSON answer goes to the right request: after a normal one on the same connection."""
    s = connect(srv.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = read_response(s, timeout=5)
        assert r.status == 200 and r.json() == {"status": "ok"}
        s.sendall(f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n".encode())
        assert_raw_error(read_response(s, timeout=5), 400, 3)
        assert wait_closed(s, 5) is not None
    finally:
        s.close()


@pytest.mark.parametrize("size", ["99999999999999999999999", "1e400", "-99999999999999999999", "NaN", "inf",
                                  " 5", "5 ", "+-5", "%00"])
def test_absurd_page_size(srv, size):
    r = srv.get("/v1beta/catalog/sources?page_size=" + size.replace(" ", "%20"))
    if r.status_code == 200:
        assert 1 <= len(r.json()["sources"]) <= 100
    else:
        assert_error(r, 400, 3)


def test_huge_page_size_is_clamped(srv):
    assert len(assert_ok(srv.get("/v1beta/catalog/destinations?page_size=99999999999999999999"))["destinations"]) == 100


# ---- headers and framing ---------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one-header", "many-headers", "long-request-line-query", "3000-tiny-headers"])
def test_100kb_headers(srv, shape):
    if shape == "one-header":
        head = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + "a" * 100_000 + "\r\n\r\n"
    elif shape == "many-headers":
        head = "GET /healthz HTTP/1.1\r\nHost: t\r\n" + "".join(f"X-H{i}: {'v' * 40}\r\n" for i in range(2500)) + "\r\n"
    elif shape == "3000-tiny-headers":  # ~20 KB: fits the buffer, not the header records
        head = "GET /healthz HTTP/1.1\r\nHost: t\r\n" + "".join(f"X{i}:y\r\n" for i in range(3000)) + "\r\n"
    else:
        head = "GET /healthz?" + "a=b&" * 25_000 + " HTTP/1.1\r\nHost: t\r\n\r\n"
    r = raw_request(srv.port, head.encode())
    # libmicrohttpd's own refusal, answered with the JSON error body
    b = assert_raw_error(r, 414 if shape == "long-request-line-query" else 431, 3)
    if shape == "long-request-line-query":
        assert b["error"] == "request target too long", b


def test_big_authorization_header(srv):
    # well inside the default header buffer (--max-header-bytes), far beyond any token
    r = srv.get("/v1beta/workspaces", token=None, headers={"Authorization": "Bearer " + "x" * 8000})
    assert_error(r, 401, 16)


@pytest.mark.parametrize("lengths", [("2", "3"), ("2", "2"), ("0", "2")])
def test_two_content_length_headers(srv, lengths):
    a, b = lengths
    r = raw_request(srv.port, (f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                               f"Content-Length: {a}\r\nContent-Length: {b}\r\n\r\n{{}}").encode())
    # conflicting lengths are refused; identical duplicates may be merged (RFC 9110) or
    # refused, and the body "{}" then fails validation: 400/3 either way
    assert_raw_error(r, 400, 3)


@pytest.mark.parametrize("te", ["chunked", "Chunked", "gzip, chunked", "chunked, identity"])
def test_content_length_with_transfer_encoding(srv, te):
    smuggled = f"GET /v1beta/access-tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n\r\n"
    body = f"0\r\n\r\n{smuggled}"
    s = connect(srv.port)
    try:
        s.sendall((f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                   f"Content-Length: {len(body)}\r\nTransfer-Encoding: {te}\r\n\r\n{body}").encode())
        r = read_response(s, timeout=5)
        assert r is None or r.status == 400, (r.status, r.body)
        if r is not None and r.headers.get("content-type", "").startswith("application/json"):
            assert r.json()["code"] == 3
        # the smuggled request must never be answered
        assert wait_closed(s, 5) is not None, "connection kept open after a framing conflict"
    finally:
        s.close()


@pytest.mark.parametrize("body", [
    "zz\r\n{}\r\n0\r\n\r\n",          # chunk size not hexadecimal
    "2\r\n{}XX0\r\n\r\n",               # no CRLF after the chunk data
    ";ext\r\n{}\r\n0\r\n\r\n",        # empty chunk size
    "2\r\n{}\r\n\r\n",                  # an empty line where a chunk size belongs
    "fffffffffffffffffffff\r\n",        # chunk size beyond 64 bits: 413
])
def test_malformed_chunked_encoding(srv, body):
    """libmicrohttpd finds these while reading the body, after our handler has started;
    the answer is still the JSON error body and the connection is closed."""
    s = connect(srv.port)
    try:
        s.sendall((f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
                   f"Transfer-Encoding: chunked\r\n\r\n{body}").encode())
        assert_raw_error(read_response(s, timeout=5), 413 if body.startswith("fff") else 400, 3)
        assert wait_closed(s, 5) is not None, "connection kept open after bad chunked framing"
    finally:
        s.close()


@pytest.mark.parametrize("data,status", [
    (b"GET /healthz HTTP/1.1\r\n\r\n", 400),                           # HTTP/1.1 without Host
    (b"POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400),  # the same, with a body
    (b"GET /heal thz HTTP/1.1\r\nHost: t\r\n\r\n", 400),              # space in the target
    (b"GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", 505),
])
def test_refusals_before_the_handler_are_json(srv, data, status):
    s = connect(srv.port)
    try:
        s.sendall(data)
        r = read_response(s, timeout=5)
        assert_raw_error(r, status, 3)
        assert r.headers.get("x-request-id"), r.headers
        assert wait_closed(s, 5) is not None
    finally:
        s.close()


def test_host_is_optional_in_http_1_0(srv):
    r = raw_request(srv.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.json() == {"status": "ok"}


def test_library_errors_never_reach_another_connection(srv):
    """Bad framing on some connections while others run keep-alive requests in parallel:
    every good request gets its own 200, every bad one its own JSON 400."""
    bad = (f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n"
           "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX").encode()
    bad_cl = b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: zz\r\n\r\n"
    errors = []

    def good_worker():
        try:
            s = connect(srv.port)
            with s:
                for _ in range(30):
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                    r = read_response(s, timeout=10)
                    assert r is not None and r.status == 200 and r.json() == {"status": "ok"}, r and r.body
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def bad_worker(data):
        try:
            for _ in range(30):
                r = raw_request(srv.port, data, timeout=10)
                assert r is not None and r.status == 400 and r.json()["code"] == 3, r and r.body
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    import threading
    threads = [threading.Thread(target=good_worker) for _ in range(4)]
    threads += [threading.Thread(target=bad_worker, args=(d,)) for d in (bad, bad_cl, bad, bad_cl)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]


@pytest.mark.parametrize("data", [
    b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\nHost: t\r\n\r\n", b"\r\n\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",                  # HTTP/1.1 without Host
    b"GET /healthz HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
])
def test_garbage_requests(srv, data):
    try:
        r = raw_request(srv.port, data, timeout=5)
    except TimeoutError:
        r = None  # waiting for more bytes is fine too
    assert r is None or r.status in (400, 404, 505), r.status


def test_odd_header_lines(srv):
    """Header lines MHD may tolerate: whatever the answer, it is a complete HTTP response."""
    for line in (b": empty-name", b"X-A: a\x00b", b"X-Fold: a\r\n folded", b"X-Utf8: \xc3\xa9\xff"):
        r = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + line + b"\r\n\r\n")
        assert r is None or r.status in (200, 400), r.status


def test_pipelined_requests(srv):
    one = f"GET /v1beta/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {srv.token}\r\n\r\n"
    s = connect(srv.port)
    try:
        s.sendall((one * 3).encode())
        for _ in range(3):
            r = read_response(s, timeout=5)
            assert r is not None and r.status == 200
            assert r.json()["workspaces"][0]["name"] == "workspaces/" + DEFAULT_WS
    finally:
        s.close()


def test_http_1_0(srv):
    r = raw_request(srv.port, f"GET /v1beta/workspaces HTTP/1.0\r\nAuthorization: Bearer {srv.token}\r\n\r\n".encode())
    assert r.status == 200 and "workspaces" in r.json()


def test_abrupt_disconnects(srv):
    for data in (b"GET /v1beta/work", f"POST {TOKENS} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{{".encode()):
        for _ in range(20):
            s = connect(srv.port)
            s.sendall(data)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()


# ---- hostile paths ------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/v1beta/catalog/sources/../destinations",
    "/v1beta/catalog/sources/%2e%2e/destinations",
    "/v1beta/catalog/sources/%2E%2E/destinations",
    "/v1beta/catalog/sources/.%2e/destinations",
    "/v1beta/workspaces/../catalog/sources",
    "/v1beta/./workspaces",
    "/v1beta/workspaces/.",
    "/v1beta/workspaces/%2e",
    "/v1beta/workspaces/myworkspace/..",
    "/../v1beta/workspaces",
])
def test_dot_segments_never_resolve(srv, target):
    r = raw_get(srv, target)
    assert r is not None and r.status in (400, 404), (r.status, r.body[:200])
    assert r.json()["code"] in (3, 5)


@pytest.mark.parametrize("target", [
    "/v1beta/catalog%2Fsources",
    "/v1beta/catalog%2fsources/javascript",
    "/v1beta%2Fworkspaces",
    "/v1beta/catalog/sources%2Fjavascript",
    "/v1beta/workspaces/myworkspace%2F",
    "/v1beta/access-tokens%2F1",
    "%2Fv1beta/workspaces",
    "/v1beta/catalog/sources/%2F",
    "/v1beta/catalog/sources/javascript%2F..%2F..%2Fdestinations",
])
def test_encoded_slash_is_never_a_separator(srv, target):
    r = raw_get(srv, target)
    assert r is not None and r.status in (400, 404), (r.status, r.body[:200])
    assert r.json()["code"] in (3, 5)


def test_percent_decoding_is_per_segment(srv):
    r = raw_get(srv, "/v1beta/catalog/destinations/customer%2Eio")
    assert r.status == 200 and r.json()["name"] == "catalog/destinations/customer.io"
    r = raw_get(srv, "/v1beta/catalog/sources/%2Enet")
    assert r.status == 200 and r.json()["name"] == "catalog/sources/.net"


@pytest.mark.parametrize("target", [
    "/v1beta/catalog/sources/javascript%00",
    "/v1beta/catalog/sources/java%00script",
    "/v1beta/workspaces/myworkspace%00.json",
    "/v1beta/catalog/sources?page_size=5%00",
    "/v1beta/catalog/sources?page%00_size=5",
])
def test_encoded_nul(srv, target):
    assert_raw_error(raw_get(srv, target), 400, 3)


@pytest.mark.parametrize("target", [
    b"/v1beta/catalog/sources/java\x00script",
    b"/v1beta/workspaces\x00/../access-tokens",
    b"/v1beta/catalog/sources/javascript\x00",
])
def test_raw_nul_in_request_line(srv, target):
    """A NUL byte in the request target must be refused, never silently cut off."""
    r = raw_get(srv, target)
    assert r is None or r.status == 400, (r.status, r.body[:200])


@pytest.mark.parametrize("target", [
    "/v1beta/catalog/sources/%zz", "/v1beta/catalog/sources/%", "/v1beta/catalog/sources/%4",
    "/v1beta/catalog/sources/%G0", "/v1beta/%/workspaces", "/v1beta/catalog/sources/javascript%",
    "/v1beta/catalog/sources?page_size=%zz", "/v1beta/catalog/sources?page_token=%",
])
def test_bad_percent_encoding(srv, target):
    assert_raw_error(raw_get(srv, target), 400, 3)


@pytest.mark.parametrize("target", [
    "/v1beta/catalog/sources/" + "a" * 10_000,
    "/a" * 5_000,
    "/v1beta/catalog/sources/" + "%41" * 3_400,
    "/" + "/" * 10_000 + "v1beta/workspaces",
    "/v1beta/workspaces/" + "x/" * 5_000,
])
def test_10kb_paths(srv, target):
    r = raw_get(srv, target)
    assert r is not None and r.status in (400, 404, 414), r.status
    assert r.json()["code"] in (3, 5)


@pytest.mark.parametrize("target", [
    "/v1beta/catalog/sources/\xff\xfe", "/v1beta/catalog/sources/%C0%AF", "/v1beta/catalog/sources/%FF",
    "/v1beta/workspaces/\u00e9".encode("utf-8").decode("latin-1"),
])
def test_non_utf8_paths(srv, target):
    r = raw_get(srv, target)
    assert r is not None and r.status in (400, 403, 404), r.status
    # an error message that quotes the path must still be valid UTF-8 JSON
    b = json.loads(r.body.decode("utf-8"))
    assert b["code"] == {400: 3, 403: 7, 404: 5}[r.status]


@pytest.mark.parametrize("slug", ["%22", "%5C", "%0A", "%01", "%7F", "%22%7D%2C%22code%22%3A0%7D", "%E2%80%A8"])
def test_error_message_quoting_the_path_stays_valid_json(srv, slug):
    r = raw_get(srv, "/v1beta/catalog/sources/x" + slug)
    b = assert_raw_error(r, 404, 5)
    assert b["code"] == 5


@pytest.mark.parametrize("target", ["http://t/v1beta/workspaces", "*", "v1beta/workspaces", "//v1beta/workspaces"])
def test_odd_request_targets(srv, target):
    r = raw_get(srv, target)
    assert r is None or r.status in (200, 400, 404)
    if r is not None and r.status == 200:
        assert target == "//v1beta/workspaces"  # an empty leading segment is dropped


def test_many_query_parameters(srv):
    """Parameters beyond what the server keeps are refused, never silently dropped (a
    page_size after 40 others must not turn into the default)."""
    for n in (40, 200):
        q = "&".join(f"p{i}=v" for i in range(n)) + "&page_size=3"
        assert_error(srv.get("/v1beta/catalog/sources?" + q), 400, 3)
    # So many that MHD's per-connection pool runs out before the handler: MHD 0.9.75 logs a
    # 431 but would send nothing until the idle timeout; the server answers the JSON 431 at
    # once and ends the stream. The request is never served with a shortened list.
    q = "&".join(f"p{i}=v" for i in range(1000)) + "&page_size=3"
    s = connect(srv.port, timeout=3)
    try:
        s.sendall(f"GET /v1beta/catalog/sources?{q} HTTP/1.1\r\nHost: t\r\n"
                  f"Authorization: Bearer {srv.token}\r\n\r\n".encode())
        assert_raw_error(read_response(s, timeout=3), 431, 3)
        assert wait_closed(s, 3) is not None
    finally:
        s.close()
    q = "&".join(f"p{i}=v" for i in range(20)) + "&page_size=3"
    assert len(assert_ok(srv.get("/v1beta/catalog/sources?" + q))["sources"]) == 3
    # empty segments do not count
    q = "&" * 60 + "page_size=3"
    assert len(assert_ok(srv.get("/v1beta/catalog/sources?" + q))["sources"]) == 3

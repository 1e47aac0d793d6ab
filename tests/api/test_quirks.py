"""Client quirks the server must tolerate (spec §15, §1.1)."""
import pytest
import requests

from conftest import DEFAULT_WS, assert_error, assert_ok, raw_request

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/v1beta/workspaces", "/v1beta/workspaces/" + DEFAULT_WS,
                                  "/v1beta/catalog/sources", "/v1beta/catalog/destinations/customer.io",
                                  "/v1beta/access-tokens"])
@pytest.mark.parametrize("data", [None, b"", b"{}", b" {} \n", b'{"page_size": 5}'])
def test_get_with_empty_or_json_body(server, path, data):
    """Go clients send an empty body, the Python client `{}` (or a JSON object) on GET."""
    want = assert_ok(server.get(path))
    r = server.get(path, data=data, headers=JSON)
    assert assert_ok(r) == want


def test_get_with_body_on_raw_socket(server):
    for body in (b"", b"{}"):
        req = (f"GET /v1beta/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        r = raw_request(server.port, req)
        assert r.status == 200 and "error" not in r.json()


@pytest.mark.parametrize("data", [None, b"", b"{}"])
def test_delete_with_empty_or_json_body(server, data):
    t = assert_ok(server.post("/v1beta/access-tokens", json={"access_token": {
        "description": "quirk", "scopes": "workspace", "workspace_names": ["workspaces/" + DEFAULT_WS]}}))
    r = server.delete("/v1beta/" + t["name"], data=data, headers=JSON)
    assert r.status_code == 200 and r.text.strip() == "{}", r.text


def test_delete_response_is_exactly_empty_object(server):
    t = assert_ok(server.post("/v1beta/access-tokens", json={"access_token": {
        "description": "quirk", "scopes": "workspace", "workspace_names": ["workspaces/" + DEFAULT_WS]}}))
    r = server.delete("/v1beta/" + t["name"])
    assert r.text.strip() == "{}"
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("query,count", [
    ("?&page_size=5", 5), ("?page_size=5&", 5), ("?&&page_size=5&&", 5), ("?", 10), ("?&", 10),
    ("?&type=SOURCE&page_size=5", 5), ("?unknown=1&page_size=3", 3), ("?page_size=", 10),
])
def test_query_string_with_empty_segments(server, query, count):
    b = assert_ok(server.get("/v1beta/catalog/sources" + query))
    assert len(b["sources"]) == count


def test_percent_encoded_query(server):
    assert len(assert_ok(server.get("/v1beta/catalog/sources?page%5Fsize=%34"))["sources"]) == 4
    assert_error(server.get("/v1beta/catalog/sources?page_size=%zz"), 400, 3)


@pytest.mark.parametrize("path", [
    "/v1beta/workspaces", "/v1beta/workspaces/" + DEFAULT_WS, "/v1beta/catalog/sources",
    "/v1beta/catalog/destinations/customer.io", "/v1beta/access-tokens", "/healthz",
])
def test_trailing_slash(server, path):
    a = assert_ok(server.get(path))
    b = assert_ok(server.get(path + "/"))
    assert a == b


def test_trailing_slash_on_post_and_delete(server):
    body = {"access_token": {"description": "slash", "scopes": "workspace",
                             "workspace_names": ["workspaces/" + DEFAULT_WS]}}
    t = assert_ok(server.post("/v1beta/access-tokens/", json=body))
    r = server.delete("/v1beta/" + t["name"] + "/")
    assert r.status_code == 200 and r.text.strip() == "{}"


def test_doubled_slashes(server):
    assert assert_ok(server.get("/v1beta//workspaces")) == assert_ok(server.get("/v1beta/workspaces"))


def test_content_type_on_every_request_and_response(server):
    r = server.get("/v1beta/workspaces", headers=JSON)
    assert_ok(r)
    r = server.get("/v1beta/workspaces", headers={"Content-Type": "text/plain"})
    assert_ok(r)
    assert_error(server.get("/nope", headers=JSON), 404, 5)


def test_workspace_by_id_everywhere(server):
    w = assert_ok(server.get("/v1beta/workspaces"))["workspaces"][0]
    assert assert_ok(server.get("/v1beta/workspaces/" + w["id"] + "/")) == w

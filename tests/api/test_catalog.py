"""Source and destination catalogs (spec §4, §5) and pagination (§1.9)."""
import base64
import json
import pathlib

import pytest

from conftest import ROOT, assert_error, assert_ok

SOURCES, DESTINATIONS = 130, 546
LISTS = [("sources", SOURCES), ("destinations", DESTINATIONS)]


def walk(srv, kind, page_size=None, limit=1000):
    """Follows next_page_token to the end; returns (items, number of pages)."""
    items, token, pages = [], "", 0
    while True:
        params = {}
        if page_size is not None:
            params["page_size"] = page_size
        if token:
            params["page_token"] = token
        b = assert_ok(srv.get(f"/v1beta/catalog/{kind}", params=params))
        assert set(b) == {kind, "next_page_token"}, set(b)
        assert isinstance(b["next_page_token"], str)
        items += b[kind]
        pages += 1
        token = b["next_page_token"]
        if not token:
            return items, pages
        assert pages < limit


@pytest.mark.parametrize("kind,total", LISTS)
def test_walk_default_page_size(server, kind, total):
    items, pages = walk(server, kind)
    assert len(items) == total
    assert pages == (total + 9) // 10
    names = [i["name"] for i in items]
    assert len(set(names)) == total, "an item appeared twice"
    assert names == sorted(names), "not in ascending name order"
    assert all(n.startswith(f"catalog/{kind}/") for n in names)


@pytest.mark.parametrize("kind,total", LISTS)
@pytest.mark.parametrize("size", [1, 7, 100])
def test_walk_other_page_sizes(server, kind, total, size):
    if size == 1 and kind == "destinations":
        size = 3  # keep the test fast: 182 pages
    items, pages = walk(server, kind, size)
    assert len(items) == total and len({i["name"] for i in items}) == total
    assert pages == -(-total // size)


@pytest.mark.parametrize("kind,total", LISTS)
def test_page_sizes(server, kind, total):
    def n(params):
        return len(assert_ok(server.get(f"/v1beta/catalog/{kind}", params=params))[kind])
    assert n({}) == 10
    assert n({"page_size": 0}) == 10
    assert n({"page_size": 5}) == 5
    assert n({"page_size": 100}) == 100
    assert n({"page_size": 101}) == 100
    assert n({"page_size": 1000000}) == 100
    assert n({"page_size": "99999999999999999999999999"}) == 100
    assert n({"pageSize": 3}) == 3  # lowerCamelCase alias


@pytest.mark.parametrize("kind", ["sources", "destinations"])
@pytest.mark.parametrize("bad", ["-1", "-100", "abc", "1.5", "5x", "0x10", "1e3", "--5", "-99999999999999999999"])
def test_bad_page_size(server, kind, bad):
    assert_error(server.get(f"/v1beta/catalog/{kind}", params={"page_size": bad}), 400, 3)


def first_token(srv, kind, size=10):
    return assert_ok(srv.get(f"/v1beta/catalog/{kind}", params={"page_size": size}))["next_page_token"]


def flip(tok, i):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    c = tok[i]
    repl = alphabet[(alphabet.index(c) + 1) % 64] if c in alphabet else "A"
    return tok[:i] + repl + tok[i + 1:]


@pytest.mark.parametrize("kind", ["sources", "destinations"])
def test_forged_page_tokens(server, kind):
    good = first_token(server, kind)
    assert good
    forged = [
        "MTI=",                                          # Segment's style: base64 of the offset 12
        base64.b64encode(b"10").decode(),
        base64.b64encode(b"10" + b"\0" * 12).decode(),   # right length, zero MAC
        "a3pVcVE2SkxaUg==",
        "!!!!",
        "x",
        good[:-4],                                       # truncated
        good + "AAAA",                                   # extended
        "%00",
        good.rstrip("=") + "A",                          # non-canonical length
    ]
    for i in range(len(good.rstrip("="))):                # every single-character edit
        forged.append(flip(good, i))
    for t in forged:
        r = server.get(f"/v1beta/catalog/{kind}", params={"page_token": t})
        assert_error(r, 400, 3)


def test_page_token_with_spliced_payload(server):
    """A token whose payload was replaced (keeping the old MAC) is refused."""
    good = first_token(server, "sources")
    # Opaque to clients: URL-safe base64 (no padding) of a payload and a 12-byte MAC.
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))
    prefix = raw[:-12].split(b":")[0] + b":"
    for payload in (b"0", b"120", b"20", b"100000", prefix + b"0", prefix + b"120"):
        t = base64.urlsafe_b64encode(payload + raw[-12:]).decode().rstrip("=")
        assert_error(server.get("/v1beta/catalog/sources", params={"page_token": t}), 400, 3)


def test_page_token_of_another_list_is_refused(server):
    src = first_token(server, "sources")
    dst = first_token(server, "destinations")
    assert_error(server.get("/v1beta/catalog/destinations", params={"page_token": src}), 400, 3)
    assert_error(server.get("/v1beta/catalog/sources", params={"page_token": dst}), 400, 3)
    tok = assert_ok(server.get("/v1beta/access-tokens", params={"page_size": 1}))["next_page_token"]
    if tok:
        assert_error(server.get("/v1beta/catalog/sources", params={"page_token": tok}), 400, 3)
    assert_error(server.get("/v1beta/access-tokens", params={"page_token": src}), 400, 3)


def test_page_token_resumes(server):
    t1 = first_token(server, "destinations", 25)
    a = assert_ok(server.get("/v1beta/catalog/destinations", params={"page_size": 25, "page_token": t1}))
    full = assert_ok(server.get("/v1beta/catalog/destinations", params={"page_size": 50}))
    assert a["destinations"] == full["destinations"][25:]


def test_last_page_has_empty_next_page_token(server):
    b = assert_ok(server.get("/v1beta/catalog/sources", params={"page_size": 100}))
    b2 = assert_ok(server.get("/v1beta/catalog/sources", params={"page_size": 100,
                                                                 "page_token": b["next_page_token"]}))
    assert len(b2["sources"]) == SOURCES - 100
    assert b2["next_page_token"] == ""


def test_source_item_shape(server):
    b = assert_ok(server.get("/v1beta/catalog/sources", params={"page_size": 100}))
    for s in b["sources"]:
        for k in ("name", "display_name", "description"):
            assert isinstance(s[k], str), (k, s)
        assert isinstance(s["categories"], list) and all(isinstance(c, str) for c in s["categories"])


def test_destination_item_shape(server):
    b = assert_ok(server.get("/v1beta/catalog/destinations", params={"page_size": 100}))
    for d in b["destinations"]:
        for k in ("name", "display_name", "description", "website", "status"):
            assert isinstance(d[k], str), (k, d["name"])
        assert d["type"] == "STREAMING"
        assert d["status"] in ("PUBLIC", "PRIVATE", "PUBLIC_BETA", "PRIVATE_BETA", "DEPRECATED"), d["status"]
        assert set(d["categories"]) == {"primary", "secondary", "additional"}, d["categories"]
        assert isinstance(d["categories"]["additional"], list)
        assert isinstance(d["components"], list)
        assert isinstance(d["settings"], list)
        for st in d["settings"]:
            assert isinstance(st["name"], str) and isinstance(st["type"], str)


@pytest.mark.parametrize("path,name,display", [
    ("sources/javascript", "catalog/sources/javascript", None),
    ("sources/ios", "catalog/sources/ios", None),
    ("sources/.net", "catalog/sources/.net", ".NET"),
    ("destinations/customer.io", "catalog/destinations/customer.io", "Customer.io"),
    ("destinations/google-analytics", "catalog/destinations/google-analytics", "Google Analytics"),
])
def test_get_by_slug(server, path, name, display):
    b = assert_ok(server.get("/v1beta/catalog/" + path))
    assert b["name"] == name
    if display:
        assert b["display_name"] == display
    # the same object as in the list
    kind = path.split("/")[0]
    items, _ = walk(server, kind, 100)
    assert [i for i in items if i["name"] == name] == [b]


def test_get_item_trailing_slash(server):
    a = assert_ok(server.get("/v1beta/catalog/sources/.net"))
    b = assert_ok(server.get("/v1beta/catalog/sources/.net/"))
    assert a == b


def test_get_destination_has_settings(server):
    b = assert_ok(server.get("/v1beta/catalog/destinations/google-analytics"))
    names = {s["name"] for s in b["settings"]}
    assert "trackingId" in names


@pytest.mark.parametrize("path", [
    "sources/no-such-source", "destinations/no-such-destination", "sources/customer.io",
    "destinations/javascript", "sources/JAVASCRIPT", "destinations/customer.i", "sources/%20",
])
def test_get_unknown(server, path):
    assert_error(server.get("/v1beta/catalog/" + path), 404, 5)


def test_catalog_needs_a_token(server):
    for path in ("/v1beta/catalog/sources", "/v1beta/catalog/destinations/customer.io"):
        assert_error(server.get(path, token=None), 401, 16)


def test_catalog_counts_match_the_shipped_data(server):
    d = ROOT / "data" / "catalog"
    assert len(json.loads((d / "sources.json").read_text())) == SOURCES
    assert len(json.loads((d / "destinations.json").read_text())) == DESTINATIONS

"""Sources (spec §7.1–§7.4): create from the catalog, generated write keys, zero-valued
library_config, labels, list/get/delete, and the error cases of §1.3/§7.2."""
import pytest

from conftest import RFC3339_Z, assert_error, assert_ok
from helpers_resources import (CATALOG_SOURCES, SOURCES, WRITE_KEY_RE, WS, WS_PATH, ZERO_LIBRARY_CONFIG,
                               assert_insufficient, create_dest, create_source, dst_coll, list_all, sc_path,
                               source_body, src_name, src_path, srv, uniq)

SOURCE_KEYS = {"name", "parent", "catalog_name", "display_name", "write_keys", "library_config", "labels",
               "create_time"}


def check_source(b, slug, catalog="catalog/sources/javascript", labels=None):
    assert SOURCE_KEYS <= set(b), b
    assert b["name"] == src_name(slug)
    assert b["parent"] == f"workspaces/{WS}"
    assert b["catalog_name"] == catalog
    assert b["display_name"] == slug
    assert isinstance(b["write_keys"], list) and len(b["write_keys"]) == 1, b
    assert WRITE_KEY_RE.match(b["write_keys"][0]), b["write_keys"]
    assert b["library_config"] == ZERO_LIBRARY_CONFIG
    assert b["labels"] == (labels or {})
    assert RFC3339_Z.match(b["create_time"]), b["create_time"]


# ---- create -------------------------------------------------------------------------------

def test_create_with_labels_returns_the_source(srv):
    slug = uniq()
    labels = {"environment": "dev", "team": "growth", "empty": ""}
    r = srv.post(SOURCES, json=source_body(slug, labels=labels))
    b = assert_ok(r)
    check_source(b, slug, labels=labels)
    assert r.headers.get("ETag")
    # The stored source is what the create answered.
    assert assert_ok(srv.get(src_path(slug))) == b


def test_create_without_labels_has_empty_labels(srv):
    slug = uniq()
    b = create_source(srv, slug)
    check_source(b, slug)


def test_create_from_every_catalog_source(srv):
    """Every catalog source (including the Config-API-only ones and names such as
    catalog/sources/.net or node.js) can back a source; catalog_name round-trips."""
    assert len(CATALOG_SOURCES) >= 100
    keys = set()
    for i, rec in enumerate(CATALOG_SOURCES):
        slug = f"cat{i:03d}-{uniq('')[:6]}"
        r = srv.post(SOURCES, json=source_body(slug, catalog=rec["name"], labels={"i": str(i)}))
        b = assert_ok(r)
        check_source(b, slug, catalog=rec["name"], labels={"i": str(i)})
        assert assert_ok(srv.get(src_path(slug)))["catalog_name"] == rec["name"]
        keys.add(b["write_keys"][0])
        assert srv.delete(src_path(slug)).json() == {}
    assert len(keys) == len(CATALOG_SOURCES), "write keys must be unique"


def test_write_keys_are_random_per_source(srv):
    a = create_source(srv)
    b = create_source(srv)
    assert a["write_keys"] != b["write_keys"]


def test_create_accepts_camel_case_aliases(srv):
    slug = uniq()
    r = srv.post(SOURCES, json={"source": {"name": src_name(slug), "catalogName": "catalog/sources/ios"}})
    b = assert_ok(r)
    check_source(b, slug, catalog="catalog/sources/ios")


def test_workspace_id_in_path_emits_slug_names(srv):
    ws = assert_ok(srv.get(WS_PATH))
    slug = uniq()
    r = srv.post(f"/v1beta/workspaces/{ws['id']}/sources", json=source_body(slug))
    check_source(assert_ok(r), slug)
    got = assert_ok(srv.get(f"/v1beta/workspaces/{ws['id']}/sources/{slug}"))
    assert got["name"] == src_name(slug)


# ---- get / delete ---------------------------------------------------------------------------

def test_get_with_trailing_slash_and_empty_json_body(srv):
    created = create_source(srv)
    slug = created["name"].rsplit("/", 1)[1]
    assert assert_ok(srv.get(src_path(slug) + "/")) == created
    assert assert_ok(srv.get(src_path(slug), json={})) == created


def test_delete_returns_exactly_empty_object(srv):
    slug = uniq()
    create_source(srv, slug)
    r = srv.delete(src_path(slug))
    assert r.status_code == 200
    assert r.text.strip() == "{}"
    assert r.json() == {}
    assert_error(srv.get(src_path(slug)), 404, 5)
    assert_error(srv.delete(src_path(slug)), 404, 5)
    assert src_name(slug) not in [s["name"] for s in list_all(srv, SOURCES, "sources", 100)[0]]


def test_delete_with_empty_json_body(srv):
    slug = uniq()
    create_source(srv, slug)
    r = srv.delete(src_path(slug), json={})
    assert r.status_code == 200 and r.json() == {}
    assert_error(srv.get(src_path(slug)), 404, 5)


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("DELETE", ""), ("GET", "/schema-config"),
                                           ("PATCH", "/schema-config"), ("GET", "/destinations"),
                                           ("POST", "/destinations")])
def test_missing_source_is_404(srv, method, suffix):
    slug = uniq("missing")
    body = None
    if method == "POST":
        body = {"destination": {"name": f"{src_name(slug)}/destinations/google-analytics"}}
    elif method == "PATCH":
        body = {"schema_config": {"allow_unplanned_track_events": False},
                "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}
    assert_error(srv.request(method, src_path(slug) + suffix, json=body), 404, 5)


def test_unknown_workspace_is_not_reachable(srv):
    r = srv.get("/v1beta/workspaces/no-such-ws/sources")
    assert r.status_code in (403, 404), r.text
    assert r.json()["code"] in (7, 5)


# ---- list ---------------------------------------------------------------------------------

def test_list_paginates_in_ascending_name_order(start_server):
    s = start_server("--rate-limit", "0")
    slugs = [f"src{n:02d}" for n in (17, 3, 22, 9, 0, 11, 5, 20, 14, 1, 8, 19, 2, 6, 13, 21, 4)]
    # Byte order, not a locale's: '-' < '0'-'9' < '_' < 'a'-'z'.
    slugs += ["src-a", "src_a", "srca", "src-", "src0-x", "src9"]
    assert len(slugs) == 23
    created = {}
    for slug in slugs:
        b = create_source(s, slug, labels={"n": slug})
        created[b["name"]] = b
    want = sorted(created)
    for size in (1, 5, 7, 10, 23, 100):
        items, pages = list_all(s, SOURCES, "sources", size)
        assert [i["name"] for i in items] == want, size
        assert pages == -(-len(want) // size), (size, pages)  # no trailing empty page
        for i in items:
            assert i == created[i["name"]]
    # Default page size is 10.
    b = assert_ok(s.get(SOURCES))
    assert [i["name"] for i in b["sources"]] == want[:10]
    assert b["next_page_token"] != ""
    # A page size over 100 is clamped, not refused; the whole collection fits.
    b = assert_ok(s.get(SOURCES + "?page_size=1000"))
    assert [i["name"] for i in b["sources"]] == want and b["next_page_token"] == ""


def test_list_of_empty_collection(start_server):
    s = start_server("--rate-limit", "0")
    assert assert_ok(s.get(SOURCES)) == {"sources": [], "next_page_token": ""}


@pytest.mark.parametrize("q", ["page_size=-1", "page_size=abc", "page_size=1.5", "page_token=%%%",
                               "page_token=bm90LWEtdG9rZW4="])
def test_list_bad_paging_parameters(srv, q):
    assert_error(srv.get(SOURCES + "?" + q), 400, 3)


# ---- errors -------------------------------------------------------------------------------

def test_duplicate_slug_is_409_and_leaves_the_original(srv):
    slug = uniq()
    first = create_source(srv, slug, labels={"v": "1"})
    r = srv.post(SOURCES, json=source_body(slug, catalog="catalog/sources/ios", labels={"v": "2"}))
    assert_error(r, 409, 6)
    assert assert_ok(srv.get(src_path(slug))) == first


@pytest.mark.parametrize("slug", ["UPPER", "Mixed", "-lead", "_lead", "a b", "a.b", "a+b", "x" * 101, "ünï",
                                  "a%2Fb"])
def test_bad_slug_is_400(srv, slug):
    r = srv.post(SOURCES, json={"source": {"name": f"workspaces/{WS}/sources/{slug}",
                                           "catalog_name": "catalog/sources/javascript"}})
    assert_error(r, 400, 3)


def test_longest_valid_slug_is_accepted(srv):
    slug = "a" * 88 + uniq("")
    assert len(slug) == 100
    check_source(create_source(srv, slug), slug)


@pytest.mark.parametrize("name", ["", f"workspaces/{WS}/sources/", f"workspaces/{WS}/sources/a/b",
                                  f"workspaces/{WS}/sources", f"workspaces/{WS}/destinations/x",
                                  "workspaces/other-ws/sources/x", f"workspaces/{WS}x/sources/x",
                                  "sources/x", "/x"])
def test_bad_or_foreign_name_is_400(srv, name):
    r = srv.post(SOURCES, json={"source": {"name": name, "catalog_name": "catalog/sources/javascript"}})
    assert_error(r, 400, 3)


def test_missing_name_is_400(srv):
    assert_error(srv.post(SOURCES, json={"source": {"catalog_name": "catalog/sources/javascript"}}), 400, 3)


@pytest.mark.parametrize("catalog", ["catalog/sources/no-such-source", "catalog/destinations/google-analytics",
                                     "catalog/sources/", "", "catalog/sources/javascript/x", None, 42,
                                     ["catalog/sources/javascript"]])
def test_unknown_or_bad_catalog_name_is_400(srv, catalog):
    slug = uniq()
    body = {"source": {"name": src_name(slug)}}
    if catalog is not None:
        body["source"]["catalog_name"] = catalog
    assert_error(srv.post(SOURCES, json=body), 400, 3)
    assert_error(srv.get(src_path(slug)), 404, 5)


@pytest.mark.parametrize("body", [
    {"source": {"name": "__N__", "catalog_name": "catalog/sources/javascript", "bogus": 1}},
    {"source": {"name": "__N__", "catalog_name": "catalog/sources/javascript"}, "bogus": True},
    {"src": {"name": "__N__", "catalog_name": "catalog/sources/javascript"}},
])
def test_unknown_fields_are_400(srv, body):
    slug = uniq()
    import json as _j
    text = _j.dumps(body).replace("__N__", src_name(slug))
    r = srv.post(SOURCES, data=text, headers={"Content-Type": "application/json"})
    assert_error(r, 400, 3)
    assert_error(srv.get(src_path(slug)), 404, 5)


@pytest.mark.parametrize("labels", [{"a": 1}, {"a": None}, {"a": ["x"]}, ["a"], "env=dev", {"": "x"}])
def test_bad_labels_are_400(srv, labels):
    slug = uniq()
    assert_error(srv.post(SOURCES, json=source_body(slug, labels=labels)), 400, 3)
    assert_error(srv.get(src_path(slug)), 404, 5)


@pytest.mark.parametrize("text", ["{", "not json", "[]", '"source"', "null", "42",
                                  '{"source": {"name": "x",}}', '{"source": }', '{"source": null}',
                                  '{"source": []}', '{"source": "x"}',
                                  '{"source": {"name": "a", "name": "b", "catalog_name": "catalog/sources/ios"}}',
                                  '{"source": {"catalog_name": "catalog/sources/ios"}} trailing'])
def test_malformed_json_is_400(srv, text):
    r = srv.post(SOURCES, data=text, headers={"Content-Type": "application/json"})
    assert_error(r, 400, 3)


def test_read_token_cannot_write(srv):
    slug = uniq()
    r = srv.post(SOURCES, json=source_body(slug), token=srv.read_token)
    assert_insufficient(r)
    assert_error(srv.get(src_path(slug)), 404, 5)
    existing = create_source(srv)
    eslug = existing["name"].rsplit("/", 1)[1]
    assert_insufficient(srv.delete(src_path(eslug), token=srv.read_token))
    assert assert_ok(srv.get(src_path(eslug))) == existing
    # Reads are fine with the read token.
    assert assert_ok(srv.get(src_path(eslug), token=srv.read_token)) == existing
    names = [s["name"] for s in list_all(srv, SOURCES, "sources", 100, token=srv.read_token)[0]]
    assert existing["name"] in names


def test_read_token_cannot_write_below_a_source(srv):
    src = uniq()
    create_source(srv, src)
    create_dest(srv, src, "google-analytics")
    assert_insufficient(srv.request("PATCH", sc_path(src), token=srv.read_token, json={
        "schema_config": {"allow_unplanned_track_events": False},
        "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}))
    assert_insufficient(srv.post(dst_coll(src), token=srv.read_token,
                                 json={"destination": {"name": f"{src_name(src)}/destinations/amplitude"}}))
    assert_insufficient(srv.request("PATCH", dst_coll(src) + "/google-analytics", token=srv.read_token,
                                    json={"destination": {"enabled": True},
                                          "update_mask": {"paths": ["destination.enabled"]}}))
    assert_insufficient(srv.delete(dst_coll(src) + "/google-analytics", token=srv.read_token))
    d = assert_ok(srv.get(dst_coll(src) + "/google-analytics", token=srv.read_token))
    assert d["enabled"] is False
    assert assert_ok(srv.get(sc_path(src), token=srv.read_token))["allow_unplanned_track_events"] is True
    assert_error(srv.get(dst_coll(src) + "/amplitude"), 404, 5)


def test_other_workspace_token_is_denied(srv):
    other = "ws-" + uniq("")
    srv.add_workspace(other, uniq("id")[:10])
    tok = srv.create_token(workspace=other, description="other ws")
    slug = uniq()
    create_source(srv, slug)
    r = srv.get(src_path(slug), token=tok)
    assert_error(r, 403, 7)
    assert_error(srv.delete(src_path(slug), token=tok), 403, 7)
    assert_ok(srv.get(src_path(slug)))
    # …and the other workspace's own sources are separate.
    r = srv.post(f"/v1beta/workspaces/{other}/sources", token=tok,
                 json={"source": {"name": f"workspaces/{other}/sources/{slug}",
                                  "catalog_name": "catalog/sources/javascript"}})
    b = assert_ok(r)
    assert b["name"] == f"workspaces/{other}/sources/{slug}" and b["parent"] == f"workspaces/{other}"
    assert [s["name"] for s in assert_ok(srv.get(f"/v1beta/workspaces/{other}/sources", token=tok))["sources"]] \
        == [b["name"]]

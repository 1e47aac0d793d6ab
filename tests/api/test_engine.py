"""The generic engine's extras on real resources: ETag / If-Match (412 code 9),
?validate_only=true dry runs, Idempotency-Key replays, page tokens bound to their
collection, and concurrent writers."""
import concurrent.futures
import re
import threading
import urllib.parse

import pytest

from conftest import assert_error, assert_ok
from helpers_resources import (SOURCES, WS, config_values, create_dest, create_source, dest_body, dst_coll,
                               dst_name, dst_path, list_all, orphans, patch, sc_defaults, sc_path, source_body,
                               src_name, src_path, srv, uniq)

ETAG_RE = re.compile(r'^(W/)?"[^"]+"$')


def dpatch(srv, src, dest, obj, paths, **kw):
    return patch(srv, dst_path(src, dest), "destination", obj, paths, **kw)


def etag(r):
    e = r.headers.get("ETag")
    assert e and ETAG_RE.match(e), (r.status_code, r.headers)
    return e


def q(tok):
    return urllib.parse.quote(tok, safe="")


@pytest.fixture
def src(srv):
    slug = uniq()
    create_source(srv, slug)
    return slug


# ---- ETag / If-Match ---------------------------------------------------------------------------

def test_every_get_create_update_carries_an_etag(srv):
    slug = uniq()
    c = srv.post(SOURCES, json=source_body(slug))
    e_src = etag(c)
    assert etag(srv.get(src_path(slug))) == e_src
    e_sc = etag(srv.get(sc_path(slug)))
    u = patch(srv, sc_path(slug), "schema_config", {"allow_unplanned_track_events": False},
              ["allow_unplanned_track_events"])
    assert etag(u) != e_sc
    assert etag(srv.get(sc_path(slug))) == etag(u)
    d = srv.post(dst_coll(slug), json=dest_body(slug, "google-analytics"))
    e1 = etag(d)
    assert etag(srv.get(dst_path(slug, "google-analytics"))) == e1
    u1 = dpatch(srv, slug, "google-analytics", {"enabled": True}, ["enabled"])
    e2 = etag(u1)
    assert e2 != e1
    assert etag(srv.get(dst_path(slug, "google-analytics"))) == e2
    u2 = dpatch(srv, slug, "google-analytics", {"connection_mode": "CLOUD"}, ["connection_mode"])
    assert etag(u2) not in (e1, e2)
    # An update without paths changes nothing, ETag included.
    assert etag(dpatch(srv, slug, "google-analytics", {}, [])) == etag(u2)


def test_stale_if_match_on_update_is_412_and_changes_nothing(srv, src):
    c = srv.post(dst_coll(src), json=dest_body(src, "google-analytics"))
    old = etag(c)
    cur = etag(dpatch(srv, src, "google-analytics", {"connection_mode": "CLOUD"}, ["connection_mode"]))
    before = srv.get(dst_path(src, "google-analytics"))
    r = dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"], headers={"If-Match": old})
    assert_error(r, 412, 9)
    after = srv.get(dst_path(src, "google-analytics"))
    assert after.json() == before.json() and etag(after) == cur
    # The current ETag (strong or weak), a list holding it, and * all match.
    for form in ("strong", "weak", "list", "star"):
        h = {"strong": cur, "weak": "W/" + cur, "list": f'{old}, {cur}', "star": "*"}[form]
        r = dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"], headers={"If-Match": h})
        assert assert_ok(r)["enabled"] is True, h
        cur = etag(r)
        assert_ok(dpatch(srv, src, "google-analytics", {}, ["enabled"], headers={"If-Match": cur}))
        cur = etag(srv.get(dst_path(src, "google-analytics")))
    for h in ('"999999"', '"0"', "garbage", '""'):
        assert_error(dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"], headers={"If-Match": h}),
                     412, 9)
    assert srv.get(dst_path(src, "google-analytics")).json()["enabled"] is False


def test_stale_if_match_on_schema_config_is_412(srv, src):
    old = etag(srv.get(sc_path(src)))
    assert_ok(patch(srv, sc_path(src), "schema_config", {"allow_unplanned_track_events": False},
                    ["allow_unplanned_track_events"], headers={"If-Match": old}))
    r = patch(srv, sc_path(src), "schema_config", {"common_group_event_on_violations": "BLOCK"},
              ["common_group_event_on_violations"], headers={"If-Match": old})
    assert_error(r, 412, 9)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src) | {"allow_unplanned_track_events": False}


def test_stale_if_match_on_delete_is_412_and_deletes_nothing(srv, src):
    d = create_dest(srv, src, "google-analytics")
    old = etag(srv.get(dst_path(src, "google-analytics")))
    assert_ok(dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"]))
    assert_error(srv.delete(dst_path(src, "google-analytics"), headers={"If-Match": old}), 412, 9)
    cur_dest = srv.get(dst_path(src, "google-analytics"))
    assert assert_ok(cur_dest)["enabled"] is True
    # A source with a stale ETag: nothing of its subtree goes either.
    src_tag = etag(srv.get(src_path(src)))
    assert_error(srv.delete(src_path(src), headers={"If-Match": '"12345"'}), 412, 9)
    assert_ok(srv.get(src_path(src)))
    assert_ok(srv.get(sc_path(src)))
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == cur_dest.json()
    # The current ETags delete.
    r = srv.delete(dst_path(src, "google-analytics"), headers={"If-Match": etag(cur_dest)})
    assert r.status_code == 200 and r.json() == {}
    assert_error(srv.get(dst_path(src, "google-analytics")), 404, 5)
    r = srv.delete(src_path(src), headers={"If-Match": src_tag})
    assert r.status_code == 200 and r.json() == {}
    assert_error(srv.get(src_path(src)), 404, 5)
    assert d


def test_if_match_on_missing_resource_is_404(srv, src):
    assert_error(dpatch(srv, src, "amplitude", {"enabled": True}, ["enabled"], headers={"If-Match": '"1"'}), 404, 5)
    assert_error(srv.delete(dst_path(src, "amplitude"), headers={"If-Match": '"1"'}), 404, 5)


def test_concurrent_writers_with_the_same_if_match_exactly_one_wins(srv, src):
    create_dest(srv, src, "google-analytics")
    n = 8
    for rnd in range(4):
        tag = etag(srv.get(dst_path(src, "google-analytics")))
        barrier = threading.Barrier(n)

        def writer(i):
            barrier.wait()
            return dpatch(srv, src, "google-analytics",
                          {"config": [{"name": "trackingId", "value": f"UA-{rnd}-{i}"}]}, ["config"],
                          headers={"If-Match": tag})

        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            results = list(ex.map(writer, range(n)))
        ok = [(i, r) for i, r in enumerate(results) if r.status_code == 200]
        assert len(ok) == 1, [(r.status_code, r.text[:200]) for r in results]
        for r in results:
            if r.status_code != 200:
                assert_error(r, 412, 9)
        i, won = ok[0]
        got = srv.get(dst_path(src, "google-analytics"))
        assert config_values(assert_ok(got))["trackingId"] == f"UA-{rnd}-{i}"
        assert etag(got) == etag(won) != tag


def test_concurrent_updates_without_if_match_lose_nothing(srv, src):
    """Writers merging different config settings at once: every update answers 200 with the
    destination showing its own change, and the end state holds every one of them (no
    lost update, no empty answer)."""
    create_dest(srv, src, "google-analytics")
    strings = {"identifyEventName": "e{}", "identifyCategory": "c{}", "optimize": "o{}", "userDeletion": "u{}",
               "trackingId": "UA-1-{}", "serversideTrackingId": "UA-2-{}", "mobileTrackingId": "UA-3-{}",
               "domain": "d{}.example.com"}
    bools = ["anonymizeIp", "nonInteraction", "enhancedEcommerce", "sendUserId"]
    keys = list(strings) + bools

    def value(key, rnd):
        return strings[key].format(rnd) if key in strings else rnd % 2 == 0

    rounds = 8
    barrier = threading.Barrier(len(keys))

    def writer(key):
        out = []
        for rnd in range(rounds):
            barrier.wait()
            r = dpatch(srv, src, "google-analytics", {"config": [{"name": key, "value": value(key, rnd)}]},
                       ["config"])
            shown = None
            if r.status_code == 200 and r.text.startswith("{"):
                shown = config_values(r.json())[key]
            out.append((r.status_code, r.text[:200], shown == value(key, rnd)))
        return out

    with concurrent.futures.ThreadPoolExecutor(len(keys)) as ex:
        results = list(ex.map(writer, keys))
    bad = [(key, status, text) for key, res in zip(keys, results) for status, text, ok in res if not ok]
    assert not bad, f"{len(bad)} of {len(keys) * rounds} updates did not answer the updated destination: {bad[:5]}"
    final = config_values(assert_ok(srv.get(dst_path(src, "google-analytics"))))
    for key in keys:
        assert final[key] == value(key, rounds - 1), key


# ---- validate_only -------------------------------------------------------------------------------

def test_dry_run_create_source_stores_nothing(srv):
    slug = uniq()
    r = srv.post(SOURCES + "?validate_only=true", json=source_body(slug, labels={"a": "b"}))
    b = assert_ok(r)
    assert b["name"] == src_name(slug) and b["labels"] == {"a": "b"} and len(b["write_keys"]) == 1
    assert_error(srv.get(src_path(slug)), 404, 5)
    assert_error(srv.get(sc_path(slug)), 404, 5)
    assert src_name(slug) not in [s["name"] for s in list_all(srv, SOURCES, "sources", 100)[0]]
    # The slug is still free.
    real = create_source(srv, slug, labels={"a": "b"})
    assert real["name"] == b["name"]
    # Dry runs still validate: a duplicate is 409, a bad body 400.
    assert_error(srv.post(SOURCES + "?validate_only=true", json=source_body(slug)), 409, 6)
    assert_error(srv.post(SOURCES + "?validate_only=true", json=source_body(uniq(), catalog="catalog/sources/nope")),
                 400, 3)
    assert_error(srv.post(SOURCES + "?validate_only=true", json=source_body("BAD")), 400, 3)


def test_dry_run_create_destination_stores_nothing(srv, src):
    body = dest_body(src, "google-analytics", enabled=True, config=[{"name": "trackingId", "value": "UA-5-5"}])
    b = assert_ok(srv.post(dst_coll(src) + "?validate_only=true", json=body))
    assert b["name"] == dst_name(src, "google-analytics") and b["enabled"] is True
    assert config_values(b)["trackingId"] == "UA-5-5"
    assert_error(srv.get(dst_path(src, "google-analytics")), 404, 5)
    assert assert_ok(srv.get(dst_coll(src)))["destinations"] == []
    assert_error(srv.post(dst_coll(src) + "?validate_only=true",
                          json=dest_body(src, "google-analytics", config=[{"name": "trackingId", "value": "x"}])),
                 400, 3)
    real = assert_ok(srv.post(dst_coll(src), json=body))
    assert config_values(real) == config_values(b)


def test_dry_run_update_stores_nothing(srv, src):
    create_dest(srv, src, "google-analytics")
    before = srv.get(dst_path(src, "google-analytics"))
    r = patch(srv, dst_path(src, "google-analytics") + "?validate_only=true", "destination",
              {"enabled": True, "config": [{"name": "trackingId", "value": "UA-7-7"}]}, ["enabled", "config"])
    b = assert_ok(r)
    assert b["enabled"] is True and config_values(b)["trackingId"] == "UA-7-7"
    after = srv.get(dst_path(src, "google-analytics"))
    assert after.json() == before.json() and etag(after) == etag(before)
    # A dry run that fails validation is the same error as the real update.
    r = patch(srv, dst_path(src, "google-analytics") + "?validate_only=true", "destination",
              {"config": [{"name": "trackingId", "value": "nope"}]}, ["config"])
    assert_error(r, 400, 3)
    r = patch(srv, sc_path(src) + "?validate_only=true", "schema_config",
              {"common_track_event_on_violations": "BLOCK"}, ["common_track_event_on_violations"])
    assert assert_ok(r)["common_track_event_on_violations"] == "BLOCK"
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


def test_dry_run_delete_deletes_nothing(srv, src):
    d = create_dest(srv, src, "google-analytics")
    s = assert_ok(srv.get(src_path(src)))
    r = srv.delete(src_path(src) + "?validate_only=true")
    assert r.status_code == 200 and r.json() == {}
    assert assert_ok(srv.get(src_path(src))) == s
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == d
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)
    r = srv.delete(dst_path(src, "google-analytics") + "?validate_only=true")
    assert r.status_code == 200 and r.json() == {}
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == d
    assert_error(srv.delete(dst_path(src, "amplitude") + "?validate_only=true"), 404, 5)
    assert_error(srv.delete(src_path(src) + "?validate_only=true", headers={"If-Match": '"777"'}), 412, 9)


def test_validate_only_false_is_a_real_write_and_bad_values_are_400(srv):
    slug = uniq()
    assert_ok(srv.post(SOURCES + "?validate_only=false", json=source_body(slug)))
    assert_ok(srv.get(src_path(slug)))
    for v in ("yes", "TRUE", "2", ""):
        other = uniq()
        r = srv.post(SOURCES + "?validate_only=" + v, json=source_body(other))
        assert_error(r, 400, 3)
        assert_error(srv.get(src_path(other)), 404, 5)


# ---- Idempotency-Key ---------------------------------------------------------------------------

def test_idempotent_create_replays_the_first_response(srv):
    slug = uniq()
    key = "idem-" + uniq("")
    body = source_body(slug, labels={"k": "v"})
    r1 = srv.post(SOURCES, json=body, headers={"Idempotency-Key": key})
    b1 = assert_ok(r1)
    for _ in range(3):
        r2 = srv.post(SOURCES, json=body, headers={"Idempotency-Key": key})
        assert r2.status_code == r1.status_code == 200
        assert r2.text == r1.text  # byte for byte: same write key, same create_time
    names = [s["name"] for s in list_all(srv, SOURCES, "sources", 100)[0]]
    assert names.count(src_name(slug)) == 1
    assert assert_ok(srv.get(src_path(slug))) == b1
    # Without the key, the same body is a duplicate.
    assert_error(srv.post(SOURCES, json=body), 409, 6)


def test_idempotent_replay_carries_the_etag(srv):
    """A replay is the create's response again, so it carries the create's ETag as the
    first response did (every create response has one)."""
    slug = uniq()
    key = "idem-" + uniq("")
    r1 = srv.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key})
    r2 = srv.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key})
    assert r2.status_code == 200 and r2.text == r1.text
    assert r2.headers.get("ETag") == etag(r1), dict(r2.headers)


def test_idempotency_key_with_a_different_body_is_422(srv):
    key = "idem-" + uniq("")
    a, b = uniq(), uniq()
    assert_ok(srv.post(SOURCES, json=source_body(a), headers={"Idempotency-Key": key}))
    r = srv.post(SOURCES, json=source_body(b), headers={"Idempotency-Key": key})
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"error", "code"} and isinstance(body["error"], str) and body["error"]
    assert type(body["code"]) is int
    assert_error(srv.get(src_path(b)), 404, 5)
    # The first response is still what the key replays.
    assert srv.post(SOURCES, json=source_body(a), headers={"Idempotency-Key": key}).json()["name"] == src_name(a)


def test_idempotent_destination_create(srv, src):
    key = "idem-" + uniq("")
    body = dest_body(src, "actions-airship", config=[{"name": "access_token", "value": "idem-secret-xyz"}])
    r1 = srv.post(dst_coll(src), json=body, headers={"Idempotency-Key": key})
    assert_ok(r1)
    r2 = srv.post(dst_coll(src), json=body, headers={"Idempotency-Key": key})
    assert (r2.status_code, r2.text) == (r1.status_code, r1.text)
    assert "idem-secret-xyz" not in r2.text
    assert len(assert_ok(srv.get(dst_coll(src)))["destinations"]) == 1
    r3 = srv.post(dst_coll(src), json=dest_body(src, "actions-airship"), headers={"Idempotency-Key": key})
    assert r3.status_code == 422
    assert len(assert_ok(srv.get(dst_coll(src)))["destinations"]) == 1


def test_dry_run_does_not_consume_an_idempotency_key(srv):
    slug = uniq()
    key = "idem-" + uniq("")
    assert_ok(srv.post(SOURCES + "?validate_only=true", json=source_body(slug), headers={"Idempotency-Key": key}))
    assert_error(srv.get(src_path(slug)), 404, 5)
    assert_ok(srv.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key}))
    assert_ok(srv.get(src_path(slug)))


def test_failed_create_does_not_consume_an_idempotency_key(srv):
    slug = uniq()
    key = "idem-" + uniq("")
    body = source_body(slug)
    create_source(srv, slug)
    assert_error(srv.post(SOURCES, json=body, headers={"Idempotency-Key": key}), 409, 6)
    assert srv.delete(src_path(slug)).json() == {}
    assert_ok(srv.post(SOURCES, json=body, headers={"Idempotency-Key": key}))
    assert_ok(srv.get(src_path(slug)))


def test_idempotency_keys_expire_after_24_hours(srv):
    """Within 24 h the key is bound to its first request (a different body is 422); after
    that it is free again. The stored key's age is moved straight in the database."""
    import time as _t
    key = "idem-" + uniq("")
    a, b, c = uniq(), uniq(), uniq()
    assert_ok(srv.post(SOURCES, json=source_body(a), headers={"Idempotency-Key": key}))
    now_ms = int(_t.time() * 1000)
    srv.db.execute("UPDATE idempotency SET create_ms = ?", (str(now_ms - 23 * 3600 * 1000),))
    assert srv.post(SOURCES, json=source_body(b), headers={"Idempotency-Key": key}).status_code == 422
    assert_error(srv.get(src_path(b)), 404, 5)
    srv.db.execute("UPDATE idempotency SET create_ms = ?", (str(now_ms - 25 * 3600 * 1000),))
    r = srv.post(SOURCES, json=source_body(c), headers={"Idempotency-Key": key})
    assert assert_ok(r)["name"] == src_name(c)
    # …and the same key now replays the new first response.
    r2 = srv.post(SOURCES, json=source_body(c), headers={"Idempotency-Key": key})
    assert r2.status_code == 200 and r2.text == r.text


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_idempotency_key_is_400(srv, key):
    slug = uniq()
    assert_error(srv.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key}), 400, 3)
    assert_error(srv.get(src_path(slug)), 404, 5)


# ---- page tokens ----------------------------------------------------------------------------------

def first_token(srv, path, n=1, token=None):
    b = assert_ok(srv.get(f"{path}?page_size={n}") if token is None else srv.get(f"{path}?page_size={n}", token=token))
    assert b["next_page_token"], b
    return b["next_page_token"]


@pytest.fixture
def two_sources_with_destinations(srv):
    a, b = "pt-a-" + uniq(""), "pt-b-" + uniq("")
    for s in (a, b):
        create_source(srv, s)
        for d in ("amplitude", "google-analytics", "mixpanel"):
            create_dest(srv, s, d)
    return a, b


def test_sources_token_on_destinations_list_is_400(srv, two_sources_with_destinations):
    a, b = two_sources_with_destinations
    tok = first_token(srv, SOURCES)
    for s in (a, b):
        assert_error(srv.get(f"{dst_coll(s)}?page_token={q(tok)}"), 400, 3)


def test_destinations_token_of_one_source_on_another_is_400(srv, two_sources_with_destinations):
    a, b = two_sources_with_destinations
    tok = first_token(srv, dst_coll(a))
    assert assert_ok(srv.get(f"{dst_coll(a)}?page_token={q(tok)}"))["destinations"]
    assert_error(srv.get(f"{dst_coll(b)}?page_token={q(tok)}"), 400, 3)


def test_destinations_token_on_sources_list_is_400(srv, two_sources_with_destinations):
    a, _ = two_sources_with_destinations
    tok = first_token(srv, dst_coll(a))
    assert_error(srv.get(f"{SOURCES}?page_token={q(tok)}"), 400, 3)


def test_catalog_token_on_sources_list_is_400(srv, two_sources_with_destinations):
    a, _ = two_sources_with_destinations
    for cat in ("/v1beta/catalog/sources", "/v1beta/catalog/destinations"):
        tok = first_token(srv, cat, 5)
        assert_error(srv.get(f"{SOURCES}?page_token={q(tok)}"), 400, 3)
        assert_error(srv.get(f"{dst_coll(a)}?page_token={q(tok)}"), 400, 3)


def test_sources_token_of_another_workspace_is_400(srv, two_sources_with_destinations):
    other = "pt-ws-" + uniq("")
    srv.add_workspace(other, uniq("w")[:10])
    tok_other = srv.create_token(workspace=other, description="other")
    for i in range(3):
        assert_ok(srv.post(f"/v1beta/workspaces/{other}/sources", token=tok_other,
                           json={"source": {"name": f"workspaces/{other}/sources/s{i}",
                                            "catalog_name": "catalog/sources/javascript"}}))
    tok = first_token(srv, SOURCES)
    assert_error(srv.get(f"/v1beta/workspaces/{other}/sources?page_token={q(tok)}", token=tok_other), 400, 3)
    tok2 = first_token(srv, f"/v1beta/workspaces/{other}/sources", token=tok_other)
    assert_error(srv.get(f"{SOURCES}?page_token={q(tok2)}"), 400, 3)


def test_tampered_token_is_400(srv, two_sources_with_destinations):
    a, _ = two_sources_with_destinations
    tok = first_token(srv, dst_coll(a))
    bad = tok[:-3] + ("A" if tok[-3] != "A" else "B") + tok[-2:]
    assert_error(srv.get(f"{dst_coll(a)}?page_token={q(bad)}"), 400, 3)


def test_pagination_is_stable_under_concurrent_changes(start_server):
    s = start_server("--rate-limit", "0")
    for i in range(0, 20, 2):
        create_source(s, f"p{i:02d}")
    b = assert_ok(s.get(SOURCES + "?page_size=4"))
    page1 = [x["name"] for x in b["sources"]]
    assert page1 == [src_name(f"p{i:02d}") for i in (0, 2, 4, 6)]
    # Changes between pages: insert before and after the cursor, delete the cursor item.
    create_source(s, "p01")
    create_source(s, "p13")
    assert s.delete(src_path("p06")).json() == {}
    rest, _ = list_all_from(s, SOURCES, b["next_page_token"], 4)
    names = page1 + rest
    assert len(names) == len(set(names)), names
    assert rest == [src_name(x) for x in ("p08", "p10", "p12", "p13", "p14", "p16", "p18")]


def list_all_from(s, path, tok, size):
    items, pages = [], 0
    while tok:
        b = assert_ok(s.get(f"{path}?page_size={size}&page_token={q(tok)}"))
        items += [x["name"] for x in b["sources"]]
        tok = b["next_page_token"]
        pages += 1
    return items, pages


# ---- concurrency ---------------------------------------------------------------------------------

def test_concurrent_creates_of_distinct_sources(start_server):
    s = start_server("--rate-limit", "0")
    slugs = [f"c{t}-{i:02d}" for t in range(8) for i in range(8)]

    def create(slug):
        return slug, s.post(SOURCES, json=source_body(slug))

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(create, slugs))
    keys = set()
    for slug, r in results:
        b = assert_ok(r)
        assert b["name"] == src_name(slug)
        keys.add(b["write_keys"][0])
    assert len(keys) == len(slugs)
    items, _ = list_all(s, SOURCES, "sources", 100)
    assert [i["name"] for i in items] == sorted(src_name(x) for x in slugs)
    assert all(assert_ok(s.get(sc_path(x))) == sc_defaults(x) for x in slugs[::7])


def test_concurrent_creates_of_the_same_slug_one_wins(srv):
    for _ in range(3):
        slug = uniq()
        barrier = threading.Barrier(8)

        def create(i):
            barrier.wait()
            return srv.post(SOURCES, json=source_body(slug, labels={"i": str(i)}))

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(create, range(8)))
        ok = [r for r in results if r.status_code == 200]
        assert len(ok) == 1, [(r.status_code, r.text[:100]) for r in results]
        for r in results:
            if r.status_code != 200:
                assert_error(r, 409, 6)
        assert assert_ok(srv.get(src_path(slug))) == ok[0].json()


def test_concurrent_creates_of_the_same_destination_one_wins(srv, src):
    barrier = threading.Barrier(6)

    def create(i):
        barrier.wait()
        return srv.post(dst_coll(src), json=dest_body(src, "google-analytics",
                                                      config=[{"name": "trackingId", "value": f"UA-1-{i}"}]))

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = list(ex.map(create, range(6)))
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) == 1, [(r.status_code, r.text[:100]) for r in results]
    for r in results:
        if r.status_code != 200:
            assert_error(r, 409, 6)
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == ok[0].json()


def test_creates_racing_a_source_delete_leave_no_orphans(srv):
    """Destinations created while their source is being deleted: once the delete has
    answered and every create has answered, no destination may outlive its source, and a
    new source with the same slug starts with no destinations."""
    dests = ["amplitude", "google-analytics", "mixpanel", "intercom", "hubspot", "customer.io"]
    for rnd in range(12):
        slug = uniq("race")
        create_source(srv, slug)
        barrier = threading.Barrier(len(dests) + 1)

        def create(d):
            barrier.wait()
            return srv.post(dst_coll(slug), json=dest_body(slug, d))

        def delete():
            barrier.wait()
            return srv.delete(src_path(slug))

        with concurrent.futures.ThreadPoolExecutor(len(dests) + 1) as ex:
            futs = [ex.submit(create, d) for d in dests] + [ex.submit(delete)]
            results = [f.result() for f in futs]
        assert results[-1].status_code == 200 and results[-1].json() == {}
        for r in results[:-1]:
            assert r.status_code in (200, 404), r.text
        assert orphans(srv) == [], f"round {rnd}"
        create_source(srv, slug)
        assert assert_ok(srv.get(dst_coll(slug)))["destinations"] == [], f"round {rnd}"
        assert srv.delete(src_path(slug)).json() == {}


def test_if_match_delete_racing_an_update_cannot_both_succeed(srv, src):
    """An update and a delete sent with the same If-Match: whichever goes first, the other
    saw a changed (or gone) resource, so they cannot both answer 200."""
    both = []
    for rnd in range(25):
        d = "google-analytics"
        create_dest(srv, src, d)
        tag = etag(srv.get(dst_path(src, d)))
        barrier = threading.Barrier(2)

        def update():
            barrier.wait()
            return dpatch(srv, src, d, {"enabled": True}, ["enabled"], headers={"If-Match": tag})

        def delete():
            barrier.wait()
            return srv.delete(dst_path(src, d), headers={"If-Match": tag})

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            fu, fd = ex.submit(update), ex.submit(delete)
            u, dl = fu.result(), fd.result()
        assert u.status_code in (200, 404, 412), u.text
        assert dl.status_code in (200, 412), dl.text
        if u.status_code == 200 and dl.status_code == 200:
            both.append(rnd)
        if dl.status_code != 200:
            assert srv.delete(dst_path(src, d)).json() == {}
    assert both == [], f"update and delete with the same If-Match both succeeded in rounds {both}"

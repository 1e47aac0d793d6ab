"""Destination filters (spec config-api.md §10.1–§10.5): create (bare, df_ ids), list
(paginated), get, update with unprefixed and filter.-prefixed mask paths, delete; the
10-per-destination limit; FQL and action validation; input aliases; parents; scopes; and the
cascade from destinations and sources."""
import time

import pytest

from helpers_fp import *  # noqa: F401,F403  (srv fixture, helpers)
from helpers_resources import dst_coll


def patch_filter(srv, fpath, obj, paths, **kw):
    body = {}
    if obj is not None:
        body["filter"] = obj
    if paths is not None:
        body["update_mask"] = {"paths": paths}
    return srv.request("PATCH", fpath, json=body, **kw)


def fpath_of(f):
    return "/v1beta/" + f["name"]


# ---- create --------------------------------------------------------------------------------

def test_create_returns_the_bare_filter_with_a_df_id(srv):
    src, dpath = new_dest(srv)
    sent = {"if": "type != 'track'", "actions": [{"type": "drop_event"}], "title": "Only allow track events",
            "description": "We don't need identify and page calls", "enabled": True}
    r = srv.post(filters_path(dpath), json={"filter": sent})
    b = assert_ok(r)
    assert set(b) == FILTER_KEYS, b  # bare, not {"filter": {...}}
    prefix = dst_name(src, DEST) + "/filters/"
    assert b["name"].startswith(prefix), b["name"]
    assert FILTER_ID_RE.match(b["name"][len(prefix):]), b["name"]
    for k, v in sent.items():
        assert b[k] == v, (k, b)
    assert assert_ok(srv.get(fpath_of(b))) == b


def test_create_defaults_description_and_enabled(srv):
    _, dpath = new_dest(srv)
    b = create_filter(srv, dpath, fql="all")
    assert b["description"] == ""
    assert b["enabled"] is False
    assert b["if"] == "all"


def test_create_ids_are_unique(srv):
    _, dpath = new_dest(srv)
    ids = {filter_id(create_filter(srv, dpath, title=f"t{i}")) for i in range(10)}
    assert len(ids) == 10
    assert all(FILTER_ID_RE.match(i) for i in ids)


def test_create_accepts_and_ignores_update_mask_and_name(srv):
    """The Go client sends update_mask and name on create (§10.2)."""
    src, dpath = new_dest(srv)
    fake = dst_name(src, DEST) + "/filters/df_1JjE7f3gz8OXU6lVbUGuDhHcyKz"
    body = {"filter": dict(filter_obj(description="d", enabled=True), name=fake),
            "update_mask": {"paths": ["if", "actions", "title", "description", "enabled"]}}
    b = assert_ok(srv.post(filters_path(dpath), json=body))
    assert b["name"] != fake
    assert FILTER_ID_RE.match(filter_id(b))
    assert b["title"] == "Only allow track events" and b["enabled"] is True
    # An update_mask naming only some fields still stores all of them (it is ignored).
    body = {"filter": filter_obj(title="masked", description="kept", enabled=True),
            "update_mask": {"paths": ["title"]}}
    b = assert_ok(srv.post(filters_path(dpath), json=body))
    assert (b["title"], b["description"], b["enabled"], b["if"]) == ("masked", "kept", True, "type != 'track'")
    # ... and so does a mask with a path that would be unknown on update.
    body["update_mask"] = {"paths": ["no_such_field"]}
    assert_ok(srv.post(filters_path(dpath), json=body))


def test_sample_event_percent_and_path_echo(srv):
    _, dpath = new_dest(srv)
    actions = [{"type": "sample_event", "percent": 0.3, "path": "userId"}]
    b = create_filter(srv, dpath, actions=actions)
    assert b["actions"] == actions
    r = srv.get(fpath_of(b))
    assert '"percent":0.3' in r.text.replace(" ", ""), r.text  # echoed as given, no float noise
    b = create_filter(srv, dpath, actions=[{"type": "sample_event", "percent": 1}])
    assert b["actions"][0]["percent"] == 1


def test_all_four_action_types_round_trip(srv):
    _, dpath = new_dest(srv)
    actions = [{"type": "drop_event"},
               {"type": "sample_event", "percent": 0.6, "path": "userId"},
               {"type": "whitelist_fields", "fields": {"properties": {"fields": ["email", "plan"]},
                                                       "context": {"fields": ["ip"]}}},
               {"type": "blacklist_fields", "fields": {"context": {"fields": ["foo"]},
                                                       "properties": {"fields": ["bar"]},
                                                       "traits": {"fields": ["baz"]}}}]
    b = create_filter(srv, dpath, fql="all", actions=actions)
    assert b["actions"] == actions
    assert assert_ok(srv.get(fpath_of(b)))["actions"] == actions


def test_input_aliases_are_stored_as_canonical_names(srv):
    """blocklist_fields/allowlist_fields and the inner key "field" (§10) are input aliases."""
    _, dpath = new_dest(srv)
    actions = [{"type": "blocklist_fields", "fields": {"properties": {"field": ["a", "b"]}}},
               {"type": "allowlist_fields", "fields": {"context": {"field": ["ip"]}, "traits": {"fields": ["x"]}}}]
    want = [{"type": "blacklist_fields", "fields": {"properties": {"fields": ["a", "b"]}}},
            {"type": "whitelist_fields", "fields": {"context": {"fields": ["ip"]}, "traits": {"fields": ["x"]}}}]
    b = create_filter(srv, dpath, fql="all", actions=actions)
    assert b["actions"] == want
    assert assert_ok(srv.get(fpath_of(b)))["actions"] == want
    # The same on update.
    b2 = create_filter(srv, dpath)
    r = patch_filter(srv, fpath_of(b2), {"actions": actions}, ["actions"])
    assert assert_ok(r)["actions"] == want
    listed = {f["name"]: f for f in list_all(srv, filters_path(dpath), "filters")[0]}
    assert listed[b["name"]]["actions"] == want and listed[b2["name"]]["actions"] == want
    assert "blocklist" not in srv.get(filters_path(dpath)).text
    assert '"field"' not in srv.get(filters_path(dpath)).text


def test_title_is_required_and_at_most_64_characters(srv):
    _, dpath = new_dest(srv)
    create_filter(srv, dpath, title="x" * 64)
    for bad in ("", "x" * 65, None, 5):
        f = filter_obj()
        if bad is None:
            del f["title"]
        else:
            f["title"] = bad
        assert_error(srv.post(filters_path(dpath), json={"filter": f}), 400, 3)


def test_title_limit_counts_characters_not_bytes(srv):
    """§10: title max 64 *chars* (the UI limit). 64 two-byte or three-byte characters are
    64 characters."""
    _, dpath = new_dest(srv)
    for t in ("é" * 64, "ア" * 64, "a" * 63 + "€"):
        b = create_filter(srv, dpath, title=t)
        assert b["title"] == t
        assert assert_ok(srv.get(fpath_of(b)))["title"] == t
        r = patch_filter(srv, fpath_of(b), {"title": t[::-1]}, ["title"])
        assert assert_ok(r)["title"] == t[::-1]
    for t in ("é" * 65, "ア" * 65):
        assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj(title=t)}), 400, 3)


def test_bad_field_types_are_400(srv):
    _, dpath = new_dest(srv)
    for key, val in (("enabled", "yes"), ("description", 5), ("if", 5), ("if", None)):
        f = filter_obj()
        f[key] = val
        assert_error(srv.post(filters_path(dpath), json={"filter": f}), 400, 3)
    f = filter_obj()
    del f["if"]
    assert_error(srv.post(filters_path(dpath), json={"filter": f}), 400, 3)
    assert_error(srv.post(filters_path(dpath), json={}), 400, 3)
    assert_error(srv.post(filters_path(dpath), data=b"{not json"), 400, 3)
    assert list_all(srv, filters_path(dpath), "filters")[0] == []


# ---- FQL validation ------------------------------------------------------------------------

def test_invalid_fql_is_400_with_a_positioned_message(srv):
    _, dpath = new_dest(srv)
    #                 1234567890123456 7
    fql = "type = 'tracks' )"
    assert fql.index(")") + 1 == 17
    r = srv.post(filters_path(dpath), json={"filter": filter_obj(fql=fql)})
    e = assert_error(r, 400, 3)
    assert e["error"].startswith("if: unexpected ')' at column 17"), e


@pytest.mark.parametrize("fql", [
    "",
    "type = ",
    "(type = 'track'",
    "type == 'track'",
    "event == \"Checkout\"",
    "userId = oops\"",
    "a = 1 AND b = 2",
    "properties.1st = 1",
    "a = 'it\\'s'",
    "a = .5", "a = 1.", "a = 1.2.3", "a = 1.5e3",
    "a = 'unterminated",
    "nosuchfunction(a) = 1",
    "a < b < c",
])
def test_fql_syntax_errors_are_400(srv, fql):
    _, dpath = new_dest(srv)
    e = assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj(fql=fql)}), 400, 3)
    assert e["error"].startswith("if"), e
    assert list_all(srv, filters_path(dpath), "filters")[0] == []


def test_valid_fql_forms_are_accepted(srv):
    _, dpath = new_dest(srv)
    ok = ["all", "type = 'identify' or type = 'track'", "match( context.library.version, '1.*' )",
          "!contains( context.library.name, 'js' )", "'dark-mode' in properties.features",
          "!( type in ['track', 'identify'] )", "length( userId ) < 1", "typeof( x ) = 'number'",
          "properties.product\\ 1.price = '19.99'", "properties.\\1st = 1", "a = TRUE", "a >= 1", "flag"]
    for i, fql in enumerate(ok):
        b = create_filter(srv, dpath, fql=fql, title=f"ok {i}")
        assert b["if"] == fql
        assert srv.delete(fpath_of(b)).text == "{}"


# ---- action validation ---------------------------------------------------------------------

@pytest.mark.parametrize("actions", [
    [],
    None,
    "drop_event",
    {"type": "drop_event"},
    [{}],
    ["drop_event"],
    [{"type": "no_such_action"}],
    [{"type": "DROP"}],
    [{"type": "sample_event"}],
    [{"type": "sample_event", "percent": 1.5}],
    [{"type": "sample_event", "percent": -0.1}],
    [{"type": "sample_event", "percent": "0.5"}],
    [{"type": "sample_event", "percent": 0.5, "path": 5}],
    [{"type": "blacklist_fields"}],
    [{"type": "blacklist_fields", "fields": ["a"]}],
    [{"type": "blacklist_fields", "fields": {"properties": {"fields": "a"}}}],
    [{"type": "blacklist_fields", "fields": {"properties": {"fields": [1]}}}],
    [{"type": "whitelist_fields", "fields": "properties"}],
    [{"type": "drop_event"}, {"type": "bogus"}],
], ids=lambda a: repr(a)[:60])
def test_bad_actions_are_400(srv, actions):
    _, dpath = new_dest(srv)
    f = filter_obj()
    if actions is None:
        del f["actions"]
    else:
        f["actions"] = actions
    assert_error(srv.post(filters_path(dpath), json={"filter": f}), 400, 3)
    assert list_all(srv, filters_path(dpath), "filters")[0] == []


# ---- limit ---------------------------------------------------------------------------------

def test_at_most_10_filters_per_destination(srv):
    src, dpath = new_dest(srv)
    made = [create_filter(srv, dpath, title=f"f{i}") for i in range(10)]
    assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj(title="eleventh")}), 400, 3)
    items, _ = list_all(srv, filters_path(dpath), "filters", page_size=100)
    assert len(items) == 10 and "eleventh" not in {f["title"] for f in items}
    # The limit is per destination: another destination of the same source is not affected.
    create_dest(srv, src, "mixpanel")
    create_filter(srv, dst_path(src, "mixpanel"))
    # Deleting one makes room for one.
    assert srv.delete(fpath_of(made[3])).text == "{}"
    create_filter(srv, dpath, title="tenth again")
    assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj(title="eleventh")}), 400, 3)


# ---- list / get ----------------------------------------------------------------------------

def test_list_is_paginated_and_sorted(srv):
    _, dpath = new_dest(srv)
    names = sorted(create_filter(srv, dpath, title=f"f{i}")["name"] for i in range(7))
    b = assert_ok(srv.get(filters_path(dpath)))
    assert set(b) == {"filters", "next_page_token"}
    assert [f["name"] for f in b["filters"]] == names and b["next_page_token"] == ""
    items, pages = list_all(srv, filters_path(dpath), "filters", page_size=3)
    assert pages == 3
    assert [f["name"] for f in items] == names
    for f in items:
        assert set(f) == FILTER_KEYS
    items, pages = list_all(srv, filters_path(dpath), "filters", page_size=7)
    assert [f["name"] for f in items] == names and pages in (1, 2)
    assert_error(srv.get(filters_path(dpath) + "?page_size=-1"), 400, 3)
    assert_error(srv.get(filters_path(dpath) + "?page_token=%25%25garbage"), 400, 3)


def test_empty_list(srv):
    _, dpath = new_dest(srv)
    assert assert_ok(srv.get(filters_path(dpath))) == {"filters": [], "next_page_token": ""}


def test_list_only_shows_this_destinations_filters(srv):
    src, dpath = new_dest(srv)
    create_dest(srv, src, "mixpanel")
    mine = create_filter(srv, dpath)
    other = create_filter(srv, dst_path(src, "mixpanel"))
    assert [f["name"] for f in list_all(srv, filters_path(dpath), "filters")[0]] == [mine["name"]]
    assert [f["name"] for f in list_all(srv, filters_path(dst_path(src, "mixpanel")), "filters")[0]] == [other["name"]]
    # A filter id under the wrong destination is not found.
    assert_error(srv.get(filters_path(dpath) + "/" + filter_id(other)), 404, 5)


def test_get_missing_filter_is_404(srv):
    _, dpath = new_dest(srv)
    assert_error(srv.get(filters_path(dpath) + "/df_1JjE7f3gz8OXU6lVbUGuDhHcyKz"), 404, 5)
    assert_error(srv.get(filters_path(dpath) + "/nonsense"), 404, 5)


# ---- update --------------------------------------------------------------------------------

def test_update_with_unprefixed_paths(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath, description="old", enabled=False)
    new = {"name": f["name"], "if": "type = 'identify'", "actions": [{"type": "sample_event", "percent": 0.25}],
           "title": "New title", "description": "new", "enabled": True}
    r = patch_filter(srv, fpath_of(f), new, ["if", "actions", "title", "description", "enabled"])
    b = assert_ok(r)
    assert set(b) == FILTER_KEYS  # bare
    assert b == new
    assert assert_ok(srv.get(fpath_of(f))) == new


def test_update_with_filter_prefixed_paths(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    r = patch_filter(srv, fpath_of(f), {"title": "Prefixed", "enabled": True, "if": "all"},
                     ["filter.title", "filter.enabled", "filter.if"])
    b = assert_ok(r)
    assert (b["title"], b["enabled"], b["if"]) == ("Prefixed", True, "all")
    assert b["actions"] == f["actions"] and b["description"] == f["description"]
    # Mixed forms in one mask.
    r = patch_filter(srv, fpath_of(f), {"description": "mixed", "actions": [{"type": "drop_event"}, {
        "type": "blacklist_fields", "fields": {"properties": {"fields": ["email"]}}}]},
        ["description", "filter.actions"])
    b = assert_ok(r)
    assert b["description"] == "mixed" and len(b["actions"]) == 2
    assert assert_ok(srv.get(fpath_of(f))) == b


def test_update_changes_only_masked_fields(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath, description="keep me", enabled=True)
    r = patch_filter(srv, fpath_of(f), {"title": "changed", "description": "ignored", "enabled": False,
                                        "if": "all"}, ["title"])
    b = assert_ok(r)
    assert b["title"] == "changed"
    assert (b["description"], b["enabled"], b["if"]) == ("keep me", True, f["if"])


def test_update_without_paths_changes_nothing(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath, description="d")
    assert assert_ok(patch_filter(srv, fpath_of(f), {"title": "nope"}, None)) == f
    assert assert_ok(patch_filter(srv, fpath_of(f), {"title": "nope"}, [])) == f
    assert assert_ok(srv.get(fpath_of(f))) == f


def test_update_path_without_value_sets_zero(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath, description="d", enabled=True)
    b = assert_ok(patch_filter(srv, fpath_of(f), {}, ["description", "enabled"]))
    assert (b["description"], b["enabled"]) == ("", False)
    # A zero title or empty action list is not a valid filter.
    assert_error(patch_filter(srv, fpath_of(f), {}, ["title"]), 400, 3)
    assert_error(patch_filter(srv, fpath_of(f), {}, ["actions"]), 400, 3)
    assert assert_ok(srv.get(fpath_of(f)))["title"] == f["title"]


def test_update_unknown_path_is_400(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    for p in ("name", "filter.name", "nope", "filter.", "destination.enabled", "filter.actions.type"):
        assert_error(patch_filter(srv, fpath_of(f), {"title": "x"}, [p]), 400, 3)
    assert assert_ok(srv.get(fpath_of(f))) == f


def test_update_rejects_bad_fql_and_actions_and_keeps_the_filter(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    e = assert_error(patch_filter(srv, fpath_of(f), {"if": "type = 'tracks' )"}, ["if"]), 400, 3)
    assert e["error"].startswith("if: unexpected ')' at column 17"), e
    assert_error(patch_filter(srv, fpath_of(f), {"actions": [{"type": "nope"}]}, ["actions"]), 400, 3)
    assert_error(patch_filter(srv, fpath_of(f), {"actions": []}, ["actions"]), 400, 3)
    assert_error(patch_filter(srv, fpath_of(f), {"title": "y" * 65}, ["title"]), 400, 3)
    assert assert_ok(srv.get(fpath_of(f))) == f


def test_update_missing_filter_is_404(srv):
    _, dpath = new_dest(srv)
    assert_error(patch_filter(srv, filters_path(dpath) + "/df_1JjE7f3gz8OXU6lVbUGuDhHcyKz",
                              {"title": "x"}, ["title"]), 404, 5)


# ---- delete --------------------------------------------------------------------------------

def test_delete_returns_empty_object(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    keep = create_filter(srv, dpath, title="keep")
    r = srv.delete(fpath_of(f))
    assert r.status_code == 200 and r.text.strip() == "{}"
    assert_error(srv.get(fpath_of(f)), 404, 5)
    assert_error(srv.delete(fpath_of(f)), 404, 5)
    assert [x["name"] for x in list_all(srv, filters_path(dpath), "filters")[0]] == [keep["name"]]


# ---- parents -------------------------------------------------------------------------------

def test_missing_parent_destination_is_404(srv):
    src = uniq("f")
    create_source(srv, src)
    dpath = dst_path(src, DEST)  # the source exists, the destination does not
    assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj()}), 404, 5)
    assert_error(srv.get(filters_path(dpath)), 404, 5)
    nosrc = dst_path(uniq("nosrc"), DEST)  # neither exists
    assert_error(srv.post(filters_path(nosrc), json={"filter": filter_obj()}), 404, 5)
    assert_error(srv.get(filters_path(nosrc)), 404, 5)


def test_deleting_the_destination_deletes_its_filters(srv):
    src, dpath = new_dest(srv)
    made = [create_filter(srv, dpath, title=f"f{i}") for i in range(3)]
    assert srv.delete(dpath).text.strip() == "{}"
    for f in made:
        assert_error(srv.get(fpath_of(f)), 404, 5)
    # A destination created again in the same place starts with no filters, and may hold 10.
    create_dest(srv, src, DEST)
    assert assert_ok(srv.get(filters_path(dpath))) == {"filters": [], "next_page_token": ""}
    for f in made:
        assert_error(srv.get(fpath_of(f)), 404, 5)
    for i in range(10):
        create_filter(srv, dpath, title=f"again {i}")


def test_deleting_the_source_deletes_its_filters(srv):
    src, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    assert srv.delete(src_path(src)).text.strip() == "{}"
    assert_error(srv.get(fpath_of(f)), 404, 5)
    create_source(srv, src)
    create_dest(srv, src, DEST)
    assert assert_ok(srv.get(filters_path(dpath)))["filters"] == []


# ---- scopes --------------------------------------------------------------------------------

def test_read_token_can_read_but_not_write(srv):
    _, dpath = new_dest(srv)
    f = create_filter(srv, dpath)
    rt = srv.read_token
    assert_insufficient(srv.post(filters_path(dpath), json={"filter": filter_obj()}, token=rt))
    assert_insufficient(patch_filter(srv, fpath_of(f), {"title": "x"}, ["title"], token=rt))
    assert_insufficient(srv.delete(fpath_of(f), token=rt))
    assert assert_ok(srv.get(fpath_of(f), token=rt)) == f
    assert [x["name"] for x in assert_ok(srv.get(filters_path(dpath), token=rt))["filters"]] == [f["name"]]
    assert assert_ok(srv.get(fpath_of(f))) == f


def test_no_token_is_401(srv):
    _, dpath = new_dest(srv)
    assert_error(srv.get(filters_path(dpath), token=None), 401, 16)
    assert_error(srv.post(filters_path(dpath), json={"filter": filter_obj()}, token=None), 401, 16)


def test_filters_stay_in_their_workspace(start_server):
    s = start_server("--rate-limit", "0")
    s.add_workspace("otherws", "oth1234567")
    t2 = s.create_token(workspace="otherws")
    src, dpath = new_dest(s)
    f = create_filter(s, dpath)
    other = dpath.replace(f"/workspaces/{WS}/", "/workspaces/otherws/")
    assert_error(s.get(filters_path(other), token=t2), 404, 5)
    assert_error(s.get(filters_path(other) + "/" + filter_id(f), token=t2), 404, 5)
    assert_error(s.post(filters_path(other), json={"filter": filter_obj()}, token=t2), 404, 5)
    assert_error(s.get(fpath_of(f), token=t2), 403, 7)
    assert_error(s.delete(fpath_of(f), token=t2), 403, 7)
    assert assert_ok(s.get(fpath_of(f))) == f
    # Reached through the workspace id, the filter keeps its slug-form name.
    ws_id = assert_ok(s.get(WS_PATH))["id"]
    by_id = dpath.replace(f"/workspaces/{WS}/", f"/workspaces/{ws_id}/")
    assert assert_ok(s.get(filters_path(by_id) + "/" + filter_id(f))) == f


def test_limit_holds_under_concurrent_creates(start_server):
    """The 10-per-destination limit must hold when creates race: with 8 filters stored and
    16 creates at once, exactly 2 succeed. (Count-then-insert without a lock lets a
    PostgreSQL server store 11 or more.)"""
    import concurrent.futures
    s = start_server("--rate-limit", "0")
    stored = []
    for trial in range(8):
        _, dpath = new_dest(s)
        for i in range(8):
            create_filter(s, dpath, title=f"f{i}")
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda i: s.post(filters_path(dpath), json={"filter": filter_obj(title=f"c{i}")}),
                             range(16)))
        ok = sum(r.status_code == 200 for r in rs)
        for r in rs:
            if r.status_code != 200:
                assert_error(r, 400, 3)
        n = len(list_all(s, filters_path(dpath), "filters", page_size=100)[0])
        stored.append((ok, n))
    assert all(x == (2, 10) for x in stored), f"(successful creates, filters stored) per trial: {stored}"

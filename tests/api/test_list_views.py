"""List pages are written from views stored at write time (src/api/view.h): every List item
must be exactly what a GET of that item answers, across pages, including rendered-only
fields (destination settings from the catalog, masked secrets and their versions), and a
view must never be served once the row or what rendering depends on has changed: a body
edited behind the engine's back, another server key, a database from before views."""
import json

import pytest

from conftest import assert_ok
from helpers_resources import create_dest, create_source, db_rows, dst_coll, dst_path, patch, srv, uniq, SOURCES

SECRET = "s3cr3t-Value-9f8e7d"


def ordered(text):
    """A JSON text as nested lists of (key, value) pairs: equal only with the same key order."""
    return json.loads(text, object_pairs_hook=list)


def raw_items(srv, path, key, page_size):
    """Every item of a collection, page by page, each with its key order kept."""
    items, tok = [], ""
    while True:
        r = srv.get(f"{path}?page_size={page_size}" + (f"&page_token={tok}" if tok else ""))
        assert_ok(r)
        page = dict(ordered(r.text))
        items.extend(page[key])
        tok = page["next_page_token"]
        if not tok:
            return items


def assert_list_is_gets(srv, path, key, page_size):
    """Each listed item equals, key order included, the GET of the item it names."""
    items = raw_items(srv, path, key, page_size)
    assert items
    for item in items:
        name = dict(item)["name"]
        g = srv.get("/v1beta/" + name)
        assert_ok(g)
        assert item == ordered(g.text), f"the list shows {name} otherwise than its GET"
    return items


def make_dests(srv, src):
    """Destinations of one source: a secret set, one changed after create, one with defaults."""
    create_dest(srv, src, "actions-airship", config=[{"name": "access_token", "value": SECRET},
                                                     {"name": "app_key", "value": "k\u00e9y\n\"1\""}])
    create_dest(srv, src, "google-analytics")
    create_dest(srv, src, "actions-amplitude")
    create_dest(srv, src, "amplitude", connection_mode="CLOUD")
    r = patch(srv, dst_path(src, "actions-airship"), "destination",
              {"config": [{"name": "access_token", "value": SECRET + "-2"}], "enabled": True},
              ["config", "enabled"])
    assert_ok(r)


def test_sources_list_is_their_gets_across_pages(srv):
    for i in range(7):
        create_source(srv, uniq(f"v{i}"), labels={"team": f"t{i}", "odd \"key\"": "\u00e9\t\\"})
    items = assert_list_is_gets(srv, SOURCES, "sources", 3)
    assert len(items) >= 7


def test_destinations_with_secrets_list_is_their_gets_across_pages(srv):
    src = create_source(srv, uniq("d"))["name"].rsplit("/", 1)[1]
    make_dests(srv, src)
    items = assert_list_is_gets(srv, dst_coll(src), "destinations", 3)
    assert len(items) == 4
    airship = [dict(i) for i in items if dict(i)["name"].endswith("/actions-airship")][0]
    token = [dict(e) for e in airship["config"] if dict(e)["name"].endswith("/access_token")][0]
    assert token["value"] == "********" and token["secret_version"]
    assert SECRET not in json.dumps(items)


def test_body_changed_behind_the_engine_is_listed_as_stored(srv):
    """A row edited directly in the database (an operator, an older binary) is rendered
    again, not served from the view made before the edit."""
    slug = uniq("e")
    create_source(srv, slug, labels={"k": "before"})
    name = f"workspaces/myworkspace/sources/{slug}"
    srv.db.execute("UPDATE resources SET body = replace(body, ?, ?) WHERE name = ?",
                   ('"before"', '"after-edit"', name))
    listed = [i for i in assert_list_is_gets(srv, SOURCES, "sources", 100) if dict(i)["name"] == name]
    assert dict(dict(listed[0])["labels"]) == {"k": "after-edit"}


def test_rows_without_views_are_listed_and_get_their_views(srv):
    """Rows written without a view (a database from before views, rows written outside the
    engine) are rendered by List, which then stores their views."""
    src = create_source(srv, uniq("n"))["name"].rsplit("/", 1)[1]
    make_dests(srv, src)
    parent = f"workspaces/myworkspace/sources/{src}"
    srv.db.execute("UPDATE resources SET rendered = NULL WHERE parent = ?", (parent,))
    assert_list_is_gets(srv, dst_coll(src), "destinations", 2)
    rows = db_rows(srv, "SELECT name, CASE WHEN rendered IS NULL THEN 'none' ELSE 'stored' END FROM resources "
                        f"WHERE parent = '{parent}' AND kind = 'destination'")
    assert len(rows) == 4 and all(v == "stored" for _, v in rows), rows
    # and what List stored is what it serves next time
    assert_list_is_gets(srv, dst_coll(src), "destinations", 2)


def test_views_follow_the_server_key_and_survive_an_old_schema(start_server):
    """Secret versions are keyed: a server started with another key file on the same
    database must list the versions its GET shows, not those stored under the old key. The
    database is also taken back to the schema before views (no column, no meta key): the
    new server adds the column and lists every item as its GET."""
    a = start_server("--rate-limit", "0")
    src = create_source(a, "keyed")["name"].rsplit("/", 1)[1]
    make_dests(a, src)
    create_source(a, "keyed-2")
    old = {dict(i)["name"]: i for i in raw_items(a, dst_coll(src), "destinations", 10)}
    a.stop()
    b = start_server("--rate-limit", "0", db=a.db)
    b.token = b.create_token()
    new = assert_list_is_gets(b, dst_coll(src), "destinations", 3)
    assert [dict(i)["name"] for i in new] == sorted(old)
    changed = [dict(i)["name"] for i in new if i != old[dict(i)["name"]]]
    assert changed == [f"workspaces/myworkspace/sources/{src}/destinations/actions-airship"], changed
    assert_list_is_gets(b, SOURCES, "sources", 1)
    b.stop()
    a.db.execute("ALTER TABLE resources DROP COLUMN rendered")
    a.db.execute("DELETE FROM meta WHERE key = 'resources.rendered'")
    c = start_server("--rate-limit", "0", db=a.db, start=False)
    c.key_file = b.key_file  # b's token goes on working
    c.start()
    c.token = b.token
    assert_list_is_gets(c, dst_coll(src), "destinations", 3)
    assert_list_is_gets(c, SOURCES, "sources", 1)
    views = db_rows(c, "SELECT name FROM resources WHERE kind IN ('source', 'destination') AND rendered IS NULL")
    assert views == [], views
    assert_list_is_gets(c, dst_coll(src), "destinations", 3)

"""Shared helpers for the resource tests (sources, schema config, destinations, engine):
paths and names, create/list helpers, catalog look-ups straight from data/catalog, and a
module-scoped `srv` fixture (the module's server plus a read-only token).

Import the fixture into a test module with `from helpers_resources import srv`."""
import json
import re
import urllib.parse
import uuid

import pytest

from conftest import CATALOG, DEFAULT_WS, assert_error, assert_ok

WS = DEFAULT_WS
WS_PATH = f"/v1beta/workspaces/{WS}"
SOURCES = WS_PATH + "/sources"
INSUFFICIENT = {"error": "insufficient scope", "code": 7}
WRITE_KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")
ZERO_LIBRARY_CONFIG = {"metrics_enabled": False, "retry_queue": False,
                       "cross_domain_id_enabled": False, "api_host": ""}

SC_BOOLS = ["allow_unplanned_track_events", "allow_unplanned_identify_traits",
            "allow_unplanned_group_traits", "allow_unplanned_track_event_properties",
            "allow_track_event_on_violations", "allow_identify_traits_on_violations",
            "allow_group_traits_on_violations", "allow_track_properties_on_violations"]
SC_FORWARDING = ["forwarding_blocked_events_to", "forwarding_violations_to"]
SC_ENUMS = {"common_track_event_on_violations": ["ALLOW", "OMIT_PROPERTIES", "BLOCK"],
            "common_identify_event_on_violations": ["ALLOW", "OMIT_TRAITS", "BLOCK"],
            "common_group_event_on_violations": ["ALLOW", "OMIT_TRAITS", "BLOCK"]}
SC_FIELDS = SC_BOOLS + SC_FORWARDING + list(SC_ENUMS)


def sc_defaults(src):
    d = {"name": src_name(src) + "/schema-config", "parent": src_name(src)}
    d.update({k: True for k in SC_BOOLS})
    d.update({k: "" for k in SC_FORWARDING})
    d.update({k: "ALLOW" for k in SC_ENUMS})
    return d


# ---- names and paths --------------------------------------------------------------------

def uniq(prefix="s"):
    return prefix + uuid.uuid4().hex[:12]


def src_name(slug, ws=WS):
    return f"workspaces/{ws}/sources/{slug}"


def src_path(slug):
    return f"{SOURCES}/{slug}"


def sc_path(slug):
    return src_path(slug) + "/schema-config"


def dst_coll(src):
    return src_path(src) + "/destinations"


def dst_path(src, dest):
    return f"{dst_coll(src)}/{dest}"


def dst_name(src, dest):
    return f"{src_name(src)}/destinations/{dest}"


def setting_name(src, dest, key):
    return f"{dst_name(src, dest)}/config/{key}"


# ---- catalog data -----------------------------------------------------------------------

def _load(file):
    with open(f"{CATALOG}/{file}", encoding="utf-8") as f:
        return json.load(f)


CATALOG_SOURCES = _load("sources.json")
CATALOG_DESTS = {r["name"].rsplit("/", 1)[1]: r for r in _load("destinations.json")}


def cat_settings(dest):
    """The catalog settings of a destination (by its catalog key), in catalog order."""
    return CATALOG_DESTS[dest]["settings"]


def cat_setting(dest, key):
    for s in cat_settings(dest):
        if s["name"] == key:
            return s
    raise KeyError(key)


ZERO_OF_TYPE = {"boolean": False, "number": 0, "map": {}, "text-map": {}, "list": [], "array": []}


def expected_default(setting):
    """The value a never-set setting shows: the catalog default, else the type's zero."""
    v = setting.get("default_value")
    if v is None:
        t = setting.get("type")
        if t == "mixed":
            return None
        return ZERO_OF_TYPE.get(t, "")
    return v


def dests_without_required(n, exclude=()):
    """n catalog destinations that have no required setting (enable-able with no config)."""
    out = []
    for k in sorted(CATALOG_DESTS):
        r = CATALOG_DESTS[k]
        if k in exclude or not re.match(r"^[a-z0-9][a-z0-9_-]*$", k):
            continue
        if r["settings"] and not any(s.get("required") for s in r["settings"]):
            out.append(k)
            if len(out) == n:
                break
    assert len(out) == n
    return out


# ---- requests ---------------------------------------------------------------------------

def source_body(slug, catalog="catalog/sources/javascript", labels=None, **extra):
    s = {"name": src_name(slug), "catalog_name": catalog}
    if labels is not None:
        s["labels"] = labels
    s.update(extra)
    return {"source": s}


def create_source(srv, slug=None, catalog="catalog/sources/javascript", labels=None, **kw):
    slug = slug or uniq()
    return assert_ok(srv.post(SOURCES, json=source_body(slug, catalog, labels), **kw))


def dest_body(src, dest, **fields):
    d = {"name": dst_name(src, dest)}
    d.update(fields)
    return {"destination": d}


def create_dest(srv, src, dest, **fields):
    return assert_ok(srv.post(dst_coll(src), json=dest_body(src, dest, **fields)))


def patch(srv, path, kind, obj, paths, **kw):
    body = {}
    if obj is not None:
        body[kind] = obj
    if paths is not None:
        body["update_mask"] = {"paths": paths}
    return srv.request("PATCH", path, json=body, **kw)


def list_all(srv, path, key, page_size=None, token=None):
    """Follows next_page_token to the end; returns (items, number of pages)."""
    items, pages, tok = [], 0, ""
    while True:
        q = []
        if page_size is not None:
            q.append(f"page_size={page_size}")
        if tok:
            q.append("page_token=" + urllib.parse.quote(tok, safe=""))
        url = path + ("?" + "&".join(q) if q else "")
        b = assert_ok(srv.get(url) if token is None else srv.get(url, token=token))
        assert set(b) == {key, "next_page_token"}, b
        assert isinstance(b["next_page_token"], str)
        if page_size is not None:
            assert len(b[key]) <= page_size
        items.extend(b[key])
        pages += 1
        assert pages < 1000, "pagination does not terminate"
        tok = b["next_page_token"]
        if not tok:
            return items, pages
        assert b[key], "a non-final page must not be empty"


def config_map(dest_obj):
    """{setting key: config entry} from a destination object's config list."""
    out = {}
    prefix = dest_obj["name"] + "/config/"
    for e in dest_obj["config"]:
        assert e["name"].startswith(prefix), e
        out[e["name"][len(prefix):]] = e
    return out


def config_values(dest_obj):
    return {k: e["value"] for k, e in config_map(dest_obj).items()}


@pytest.fixture(scope="module")
def srv(server):
    """The module's server with a `read_token` attribute (scope workspace:read)."""
    if not getattr(server, "read_token", None):
        server.read_token = server.create_token(scope="workspace:read", description="reader")
    return server


def assert_insufficient(r):
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == INSUFFICIENT





def db_rows(server, sql):
    """Runs a read-only query straight on a server's database; rows as tuples of strings."""
    import sqlite3
    import subprocess
    from conftest import BACKEND, PSQL
    if BACKEND == "sqlite" or not server.db.url.startswith("postgres"):
        con = sqlite3.connect(server.db.url, timeout=30)
        try:
            return [tuple("" if v is None else str(v) for v in row) for row in con.execute(sql).fetchall()]
        finally:
            con.close()
    p = subprocess.run([PSQL, server.db.url, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t", "-c", sql],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [tuple(line.split("\t")) for line in p.stdout.splitlines() if line]


def orphans(server):
    """Resources whose parent is neither a workspace nor an existing resource."""
    return db_rows(server, "SELECT r.name FROM resources r WHERE r.kind IN ('destination', 'schema_config', 'filter') AND "
                           "NOT EXISTS (SELECT 1 FROM resources p WHERE p.name = r.parent) ORDER BY r.name")


def dest_metrics(server, dpath, dname, counters=("successes_attempt",), summary_may_fail=False):
    """A destination's non-zero counters {metric: n}: successes, retried_<code> and discarded_<code>
    read through the §11 API (the breakdowns of dpath's metrics:getSummary), then the non-§11
    counters whose names start with one of counters (e.g. filtered_at_destination_<reason>,
    successes_attempt_<n>) summed from the dm_counts table for dname. summary_may_fail: a
    getSummary answer other than 200 (a device-mode destination has no §11 metrics) is skipped
    rather than failing the test."""
    out = {}
    r = server.get(dpath + "/metrics:getSummary")
    if summary_may_fail and r.status_code != 200:
        summary = {"metrics": []}
    else:
        summary = r.json() if summary_may_fail else assert_ok(r)
    for m in summary["metrics"]:
        if m["metric_name"] == "successes" and m["total"]:
            out["successes"] = m["total"]
        for b in m.get("breakdown", []):
            if b["total"]:
                out[b["metric_name"]] = b["total"]
    like = " OR ".join("metric LIKE '%s%%'" % c for c in counters)
    for m, n in db_rows(server, "SELECT metric, SUM(n) FROM dm_counts WHERE destination = '%s' AND (%s) "
                                "GROUP BY metric" % (dname, like)):
        if int(n):
            out[m] = int(n)
    return out


def wait_dest_metrics(server, dpath, dname, want, timeout=20, **kw):
    """Waits until every metric in want has reached its value (dest_metrics, same keywords);
    returns all the destination's metrics."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        m = dest_metrics(server, dpath, dname, **kw)
        if all(m.get(k, 0) >= v for k, v in want.items()):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics {m}, wanted {want}")
        time.sleep(0.1)


def pending_retries(server, dname):
    """How many deliveries to the destination named dname wait for a retry."""
    return int(db_rows(server, "SELECT COUNT(*) FROM delivery_retries WHERE destination = '%s'" % dname)[0][0])

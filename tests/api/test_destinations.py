"""Destinations (spec §8): create from the catalog, config validated against the catalog
settings, the §1.8 update-mask matrix with config merged by setting name, password
settings, one destination per (source, catalog destination), delete and cascades."""
import datetime
import time

import pytest

from conftest import RFC3339_Z, assert_error, assert_ok
from helpers_resources import (CATALOG_DESTS, cat_setting, cat_settings, config_map, config_values, create_dest,
                               create_source, dest_body, dests_without_required, dst_coll, dst_name, dst_path,
                               expected_default, list_all, patch, sc_defaults, sc_path, setting_name, src_name,
                               src_path, srv, uniq, WS)

DEST_KEYS = {"name", "parent", "display_name", "enabled", "connection_mode", "config", "create_time", "update_time"}


def ts(s):
    assert RFC3339_Z.match(s), s
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def dpatch(srv, src, dest, obj, paths, **kw):
    return patch(srv, dst_path(src, dest), "destination", obj, paths, **kw)


def check_dest(b, src, dest, given=None, enabled=False, mode="UNSPECIFIED"):
    """b is a full destination object for catalog destination `dest` on source `src`:
    every catalog setting listed in catalog order, given values set, the rest at defaults."""
    given = given or {}
    assert DEST_KEYS <= set(b), b
    assert "error" not in b
    assert b["name"] == dst_name(src, dest)
    assert b["parent"] == src_name(src)
    assert b["display_name"] == CATALOG_DESTS[dest]["display_name"]
    assert b["enabled"] is enabled
    assert b["connection_mode"] == mode
    ts(b["create_time"]), ts(b["update_time"])
    settings = cat_settings(dest)
    assert [e["name"] for e in b["config"]] == [setting_name(src, dest, s["name"]) for s in settings]
    for e, s in zip(b["config"], settings):
        assert e["display_name"] == s["display_name"], e
        assert e["type"] == s["type"], e
        if s["type"] == "password":
            if s["name"] in given:
                assert e["value"] != given[s["name"]] and isinstance(e["value"], str), e
                assert isinstance(e.get("secret_version"), str) and e["secret_version"], e
            else:
                assert e["value"] == "" and "secret_version" not in e, e
        elif s["name"] in given:
            assert e["value"] == given[s["name"]], e
        else:
            assert e["value"] == expected_default(s), (e, s.get("default_value"))
    unknown = set(given) - {s["name"] for s in settings}
    assert not unknown, unknown


@pytest.fixture
def src(srv):
    slug = uniq()
    create_source(srv, slug)
    return slug


# ---- create ---------------------------------------------------------------------------------

def test_create_with_full_and_bare_setting_names(srv, src):
    cfg = [{"name": setting_name(src, "google-analytics", "trackingId"), "type": "string", "value": "UA-970334309-1"},
           {"name": "anonymizeIp", "type": "boolean", "value": True},
           {"name": setting_name(src, "google-analytics", "dimensions"), "value": {"plan": "dimension1"}},
           {"name": "sampleRate", "value": 50},
           {"name": "resetCustomDimensionsOnPage", "value": ["plan"]},
           {"name": "domain", "value": "example.com", "display_name": "ignored on input"}]
    r = srv.post(dst_coll(src), json=dest_body(src, "google-analytics", connection_mode="CLOUD", enabled=True,
                                               config=cfg))
    b = assert_ok(r)
    assert r.headers.get("ETag")
    given = {"trackingId": "UA-970334309-1", "anonymizeIp": True, "dimensions": {"plan": "dimension1"},
             "sampleRate": 50, "resetCustomDimensionsOnPage": ["plan"], "domain": "example.com"}
    check_dest(b, src, "google-analytics", given, enabled=True, mode="CLOUD")
    assert b["create_time"] == b["update_time"]
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == b


def test_create_with_bare_destination_name(srv, src):
    r = srv.post(dst_coll(src), json={"destination": {"name": "amplitude"}})
    check_dest(assert_ok(r), src, "amplitude")


def test_enabled_defaults_to_false_and_mode_to_unspecified(srv, src):
    b = create_dest(srv, src, "google-analytics")
    check_dest(b, src, "google-analytics")


@pytest.mark.parametrize("mode", ["CLOUD", "DEVICE", "UNSPECIFIED"])
def test_connection_modes(srv, src, mode):
    check_dest(create_dest(srv, src, "google-analytics", connection_mode=mode), src, "google-analytics", mode=mode)


def test_every_catalog_destination_lists_all_its_settings(srv, src):
    """Creates each of the catalog's destinations on one source and checks the rendered config
    (every setting, catalog order, display names, types, catalog defaults)."""
    n = 0
    for dest in sorted(CATALOG_DESTS):
        r = srv.post(dst_coll(src), json=dest_body(src, dest))
        check_dest(assert_ok(r), src, dest)
        n += 1
    assert n == len(CATALOG_DESTS) > 500
    items, _ = list_all(srv, dst_coll(src), "destinations", 100)
    assert [i["name"] for i in items] == sorted(dst_name(src, d) for d in CATALOG_DESTS)
    assert srv.delete(src_path(src)).json() == {}


def test_default_values_from_the_catalog(srv, src):
    # uservoice.accentColor has a non-empty catalog default, adobe-analytics.events a list.
    u = config_values(create_dest(srv, src, "uservoice"))
    assert u["accentColor"] == cat_setting("uservoice", "accentColor")["default_value"] == "#448dd6"
    a = config_values(create_dest(srv, src, "adobe-analytics"))
    assert a["productIdentifier"] == "name"
    assert a["events"] == cat_setting("adobe-analytics", "events")["default_value"]


# ---- list / get ---------------------------------------------------------------------------------

def test_list_paginates_in_ascending_name_order(srv, src):
    dests = dests_without_required(12)
    created = {}
    for d in reversed(dests):
        b = create_dest(srv, src, d, enabled=True)
        created[b["name"]] = b
    for size in (1, 5, 12, 100):
        items, pages = list_all(srv, dst_coll(src), "destinations", size)
        assert [i["name"] for i in items] == sorted(created)
        assert pages == -(-12 // size)
        for i in items:
            assert i == created[i["name"]]
    b = assert_ok(srv.get(dst_coll(src)))
    assert len(b["destinations"]) == 10 and b["next_page_token"]
    for name, obj in created.items():
        assert assert_ok(srv.get(dst_path(src, name.rsplit("/", 1)[1]))) == obj


def test_list_only_shows_this_sources_destinations(srv, src):
    other = uniq()
    create_source(srv, other)
    create_dest(srv, src, "google-analytics")
    create_dest(srv, other, "amplitude")
    assert [d["name"] for d in list_all(srv, dst_coll(src), "destinations")[0]] == [dst_name(src, "google-analytics")]
    assert [d["name"] for d in list_all(srv, dst_coll(other), "destinations")[0]] == [dst_name(other, "amplitude")]


def test_list_of_source_without_destinations(srv, src):
    assert assert_ok(srv.get(dst_coll(src))) == {"destinations": [], "next_page_token": ""}


def test_get_missing_destination_is_404(srv, src):
    assert_error(srv.get(dst_path(src, "google-analytics")), 404, 5)
    assert_error(srv.get(dst_path(src, "no-such-destination")), 404, 5)
    assert_error(srv.delete(dst_path(src, "google-analytics")), 404, 5)
    assert_error(dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"]), 404, 5)


# ---- update: the §1.8 matrix --------------------------------------------------------------------

GA_GIVEN = {"trackingId": "UA-1-1", "anonymizeIp": True, "domain": "example.com"}


@pytest.fixture
def ga(srv, src):
    b = create_dest(srv, src, "google-analytics", connection_mode="DEVICE",
                    config=[{"name": k, "value": v} for k, v in GA_GIVEN.items()])
    time.sleep(0.01)
    return src, b


@pytest.mark.parametrize("prefix", ["destination.", ""])
def test_listed_path_with_value_is_set(srv, ga, prefix):
    src, before = ga
    etag = srv.get(dst_path(src, "google-analytics")).headers["ETag"]
    r = dpatch(srv, src, "google-analytics", {"enabled": True, "connection_mode": "CLOUD"},
               [prefix + "enabled", prefix + "connection_mode"])
    b = assert_ok(r)
    check_dest(b, src, "google-analytics", GA_GIVEN, enabled=True, mode="CLOUD")
    assert b["create_time"] == before["create_time"]
    assert ts(b["update_time"]) > ts(before["update_time"])
    assert r.headers.get("ETag") and r.headers["ETag"] != etag
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == b


def test_listed_paths_without_values_reset_to_zero(srv, ga):
    src, _ = ga
    assert_ok(dpatch(srv, src, "google-analytics", {"enabled": True}, ["enabled"]))
    b = assert_ok(dpatch(srv, src, "google-analytics", {}, ["destination.enabled", "destination.connection_mode"]))
    check_dest(b, src, "google-analytics", GA_GIVEN, enabled=False, mode="UNSPECIFIED")
    # config listed without a value: every setting back to its catalog default
    b = assert_ok(dpatch(srv, src, "google-analytics", None, ["destination.config"]))
    check_dest(b, src, "google-analytics", {}, enabled=False, mode="UNSPECIFIED")
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == b


def test_null_values_count_as_absent(srv, ga):
    src, _ = ga
    b = assert_ok(dpatch(srv, src, "google-analytics", {"connection_mode": None}, ["connection_mode"]))
    assert b["connection_mode"] == "UNSPECIFIED"


def test_values_without_paths_are_ignored(srv, ga):
    src, before = ga
    obj = {"enabled": True, "connection_mode": "CLOUD", "config": [{"name": "trackingId", "value": "UA-9-9"}]}
    b = assert_ok(dpatch(srv, src, "google-analytics", obj, ["destination.connection_mode"]))
    check_dest(b, src, "google-analytics", GA_GIVEN, enabled=False, mode="CLOUD")


@pytest.mark.parametrize("paths", [None, []])
def test_no_paths_changes_nothing(srv, ga, paths):
    src, before = ga
    etag = srv.get(dst_path(src, "google-analytics")).headers["ETag"]
    obj = {"enabled": True, "connection_mode": "CLOUD", "config": [{"name": "trackingId", "value": "UA-9-9"}]}
    r = dpatch(srv, src, "google-analytics", obj, paths)
    assert assert_ok(r) == before
    assert r.headers["ETag"] == etag
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == before


@pytest.mark.parametrize("path", ["destination.bogus", "bogus", "destination.name", "destination.display_name",
                                  "destination.create_time", "destination.config.trackingId", "config.trackingId",
                                  "source.enabled", "filter.enabled", "destination.", "", "Enabled",
                                  "destination.enabled.x"])
def test_unknown_path_is_400_and_changes_nothing(srv, ga, path):
    src, before = ga
    r = dpatch(srv, src, "google-analytics", {"enabled": True, "connection_mode": "CLOUD"},
               ["destination.enabled", path, "destination.connection_mode"])
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == before


def test_config_merges_by_setting_name(srv, ga):
    src, _ = ga
    b = assert_ok(dpatch(srv, src, "google-analytics",
                         {"config": [{"name": setting_name(src, "google-analytics", "enableServerIdentify"),
                                      "type": "boolean", "value": True}]}, ["destination.config"]))
    check_dest(b, src, "google-analytics", GA_GIVEN | {"enableServerIdentify": True}, mode="DEVICE")
    b = assert_ok(dpatch(srv, src, "google-analytics",
                         {"config": [{"name": "trackingId", "value": "UA-2-2"},
                                     {"name": "anonymizeIp", "value": False}]}, ["config"]))
    want = GA_GIVEN | {"enableServerIdentify": True, "trackingId": "UA-2-2", "anonymizeIp": False}
    check_dest(b, src, "google-analytics", want, mode="DEVICE")
    check_dest(assert_ok(srv.get(dst_path(src, "google-analytics"))), src, "google-analytics", want, mode="DEVICE")


def test_config_empty_list_changes_nothing(srv, ga):
    src, before = ga
    b = assert_ok(dpatch(srv, src, "google-analytics", {"config": []}, ["destination.config"]))
    assert b["config"] == before["config"]
    check_dest(b, src, "google-analytics", GA_GIVEN, mode="DEVICE")


def test_update_with_matching_name_inside_object(srv, ga):
    src, _ = ga
    for name in (dst_name(src, "google-analytics"), "google-analytics"):
        b = assert_ok(dpatch(srv, src, "google-analytics", {"name": name, "enabled": True}, ["destination.enabled"]))
        assert b["enabled"] is True


@pytest.mark.parametrize("name", ["__other_src__", "amplitude", "workspaces/x/sources/y/destinations/google-analytics"])
def test_update_with_mismatching_name_is_400(srv, ga, name):
    src, before = ga
    if name == "__other_src__":
        name = dst_name(uniq(), "google-analytics")
    r = dpatch(srv, src, "google-analytics", {"name": name, "enabled": True}, ["destination.enabled"])
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == before


@pytest.mark.parametrize("obj,paths", [({"enabled": "true"}, ["enabled"]), ({"enabled": 1}, ["enabled"]),
                                       ({"connection_mode": "cloud"}, ["connection_mode"]),
                                       ({"connection_mode": "SERVER"}, ["connection_mode"]),
                                       ({"connection_mode": 1}, ["connection_mode"]),
                                       ({"config": {"trackingId": "UA-1-1"}}, ["config"]),
                                       ({"config": ["trackingId"]}, ["config"]),
                                       ({"config": [{"value": "UA-1-1"}]}, ["config"]),
                                       ({"config": [{"name": "trackingId"}]}, ["config"]),
                                       ({"config": [{"name": "trackingId", "value": "UA-1-1", "x": 1}]}, ["config"]),
                                       ({"bogus": 1}, ["enabled"])])
def test_bad_update_values_are_400(srv, ga, obj, paths):
    src, before = ga
    assert_error(dpatch(srv, src, "google-analytics", obj, paths), 400, 3)
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == before


# ---- config validation ------------------------------------------------------------------------

TYPE_ERRORS = [
    ("google-analytics", "trackingId", 123), ("google-analytics", "trackingId", True),
    ("google-analytics", "trackingId", ["UA-1-1"]), ("google-analytics", "trackingId", {"v": "UA-1-1"}),
    ("google-analytics", "anonymizeIp", "true"), ("google-analytics", "anonymizeIp", 1),
    ("google-analytics", "sampleRate", "50"), ("google-analytics", "sampleRate", False),
    ("google-analytics", "dimensions", ["a"]), ("google-analytics", "dimensions", "a=b"),
    ("google-analytics", "resetCustomDimensionsOnPage", {"a": 1}), ("google-analytics", "resetCustomDimensionsOnPage", "a"),
    ("ab-smartly", "goalMapping", ["x"]), ("uservoice", "accentColor", 448),
    ("actions-airship", "endpoint", 7), ("actions-airship", "access_token", 12345),
    ("actions-airship", "access_token", {"secret": "x"}), ("google-analytics", "trackingId", None),
]


@pytest.mark.parametrize("dest,key,value", TYPE_ERRORS)
def test_wrong_json_type_is_400_naming_the_setting(srv, src, dest, key, value):
    r = srv.post(dst_coll(src), json=dest_body(src, dest, config=[{"name": key, "value": value}]))
    assert key in assert_error(r, 400, 3)["error"]
    assert_error(srv.get(dst_path(src, dest)), 404, 5)


@pytest.mark.parametrize("dest,key,value", TYPE_ERRORS[:8])
def test_wrong_json_type_on_update_is_400(srv, src, dest, key, value):
    before = create_dest(srv, src, dest)
    r = dpatch(srv, src, dest, {"config": [{"name": setting_name(src, dest, key), "value": value}]}, ["config"])
    assert key in assert_error(r, 400, 3)["error"]
    assert assert_ok(srv.get(dst_path(src, dest))) == before


@pytest.mark.parametrize("dest,key,value", [
    ("google-analytics", "trackingId", "UA-123"), ("google-analytics", "trackingId", "ua-1-2"),
    ("google-analytics", "trackingId", "UA-1-2 "), ("google-analytics", "trackingId", "UA-1-2\n"),
    ("google-analytics", "trackingId", "xUA-1-2"), ("google-analytics", "trackingId", "G-12345"),
    ("google-analytics", "serversideTrackingId", "UA-x-1"), ("google-analytics", "mobileTrackingId", "UA--1"),
    ("google-analytics", "domain", "not a domain"), ("amplitude", "apiKey", "ABCDEF0123456789abcdef0123456789"),
    ("amplitude", "apiKey", "abc"), ("adroll", "advId", "abc"),
    ("adobe-analytics", "productIdentifier", "bogus"), ("appboy", "datacenter", "mars"),
])
def test_value_failing_the_setting_regexp_is_400(srv, src, dest, key, value):
    r = srv.post(dst_coll(src), json=dest_body(src, dest, config=[{"name": key, "value": value}]))
    assert key in assert_error(r, 400, 3)["error"]
    assert_error(srv.get(dst_path(src, dest)), 404, 5)


@pytest.mark.parametrize("dest,key,value", [
    ("google-analytics", "trackingId", "UA-970334309-1"), ("google-analytics", "trackingId", "UA-1-2"),
    ("google-analytics", "domain", "none"), ("google-analytics", "domain", "example.co.uk"),
    ("amplitude", "apiKey", "abcdef0123456789abcdef0123456789"), ("adroll", "advId", "ABCDEFGHIJ0123456789KL"),
    ("adobe-analytics", "productIdentifier", "sku"), ("appboy", "datacenter", "eu"),
    ("google-analytics", "trackingId", ""),
])
def test_value_matching_the_setting_regexp_is_accepted(srv, src, dest, key, value):
    b = create_dest(srv, src, dest, config=[{"name": key, "value": value}])
    assert config_values(b)[key] == value


def test_regexp_checked_on_update_too(srv, ga):
    src, before = ga
    r = dpatch(srv, src, "google-analytics", {"config": [{"name": "trackingId", "value": "UA-nope"}]}, ["config"])
    assert "trackingId" in assert_error(r, 400, 3)["error"]
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == before


@pytest.mark.parametrize("name", ["noSuchSetting", "__full__noSuchSetting", "apiKey", "TrackingId",
                                  "__other_dest__trackingId", "__other_src__trackingId", "config/trackingId",
                                  "__full__"])
def test_unknown_setting_is_400_naming_it(srv, src, name):
    shown = name
    if name.startswith("__full__"):
        shown = name[len("__full__"):] or "''"
        name = setting_name(src, "google-analytics", name[len("__full__"):])
    elif name.startswith("__other_dest__"):
        name = setting_name(src, "amplitude", "trackingId")
        shown = "amplitude"
    elif name.startswith("__other_src__"):
        name = setting_name(uniq(), "google-analytics", "trackingId")
        shown = name.split("/")[3]
    r = srv.post(dst_coll(src), json=dest_body(src, "google-analytics", config=[{"name": name, "value": "x"}]))
    msg = assert_error(r, 400, 3)["error"]
    assert shown in msg, msg
    assert_error(srv.get(dst_path(src, "google-analytics")), 404, 5)


def test_missing_required_settings_when_enabling(srv, src):
    # Airship: access_token (password), app_key and endpoint are required; endpoint has a default.
    r = srv.post(dst_coll(src), json=dest_body(src, "actions-airship", enabled=True))
    assert "access_token" in assert_error(r, 400, 3)["error"]
    r = srv.post(dst_coll(src), json=dest_body(src, "actions-airship", enabled=True,
                                               config=[{"name": "access_token", "value": "tok"}]))
    assert "app_key" in assert_error(r, 400, 3)["error"]
    assert_error(srv.get(dst_path(src, "actions-airship")), 404, 5)
    # Disabled, the settings are not needed.
    b = create_dest(srv, src, "actions-airship")
    assert b["enabled"] is False
    r = dpatch(srv, src, "actions-airship", {"enabled": True}, ["enabled"])
    assert "access_token" in assert_error(r, 400, 3)["error"]
    assert assert_ok(srv.get(dst_path(src, "actions-airship"))) == b
    # Setting the config and enabling in one update works (the default endpoint counts).
    b = assert_ok(dpatch(srv, src, "actions-airship",
                         {"enabled": True, "config": [{"name": "access_token", "value": "tok"},
                                                      {"name": "app_key", "value": "key"}]},
                         ["enabled", "config"]))
    assert b["enabled"] is True and config_values(b)["endpoint"] == "US"
    # While enabled, a required setting cannot be emptied…
    for key, empty in (("app_key", ""), ("endpoint", ""), ("access_token", "")):
        r = dpatch(srv, src, "actions-airship", {"config": [{"name": key, "value": empty}]}, ["config"])
        assert key in assert_error(r, 400, 3)["error"]
    r = dpatch(srv, src, "actions-airship", None, ["config"])
    assert_error(r, 400, 3)
    got = assert_ok(srv.get(dst_path(src, "actions-airship")))
    assert got == b
    # …but disabling and emptying together is fine.
    b = assert_ok(dpatch(srv, src, "actions-airship", None, ["enabled", "config"]))
    check_dest(b, src, "actions-airship", {}, enabled=False)


def test_required_setting_named_for_1flow(srv, src):
    r = srv.post(dst_coll(src), json=dest_body(src, "1flow", enabled=True, config=[{"name": "apiKey", "value": ""}]))
    assert "apiKey" in assert_error(r, 400, 3)["error"]
    b = create_dest(srv, src, "1flow", enabled=True, config=[{"name": "apiKey", "value": "k"}])
    check_dest(b, src, "1flow", {"apiKey": "k"}, enabled=True)


# ---- password settings ---------------------------------------------------------------------

SECRET = "s3cr3t-Value-9f8e7d"


def versions(b):
    return {k: e.get("secret_version") for k, e in config_map(b).items() if e["type"] == "password"}


def test_password_settings_are_masked_with_a_stable_version(srv, src):
    r = srv.post(dst_coll(src), json=dest_body(src, "actions-airship",
                                               config=[{"name": "access_token", "value": SECRET}]))
    assert SECRET not in r.text
    b = assert_ok(r)
    check_dest(b, src, "actions-airship", {"access_token": SECRET})
    v1 = versions(b)["access_token"]
    texts = [r.text]
    # Reads: get and list show the same version, never the secret.
    g = srv.get(dst_path(src, "actions-airship"))
    texts.append(g.text)
    assert versions(assert_ok(g))["access_token"] == v1
    lst = srv.get(dst_coll(src))
    texts.append(lst.text)
    assert versions(assert_ok(lst)["destinations"][0])["access_token"] == v1
    # Another setting changes: the version stays.
    u = dpatch(srv, src, "actions-airship", {"config": [{"name": "app_key", "value": "k1"}]}, ["config"])
    texts.append(u.text)
    assert versions(assert_ok(u))["access_token"] == v1
    # The same value again: the same version.
    u = dpatch(srv, src, "actions-airship", {"config": [{"name": "access_token", "value": SECRET}]}, ["config"])
    texts.append(u.text)
    assert versions(assert_ok(u))["access_token"] == v1
    # Writing back what a read showed keeps the secret.
    shown = config_map(assert_ok(g))["access_token"]["value"]
    u = dpatch(srv, src, "actions-airship", {"config": [{"name": "access_token", "value": shown}]}, ["config"])
    texts.append(u.text)
    assert versions(assert_ok(u))["access_token"] == v1
    # A new value: a new version; and back again: the first version.
    other = SECRET + "-rotated"
    u = dpatch(srv, src, "actions-airship", {"config": [{"name": "access_token", "value": other}]}, ["config"])
    texts.append(u.text)
    v2 = versions(assert_ok(u))["access_token"]
    assert v2 and v2 != v1
    g2 = srv.get(dst_path(src, "actions-airship"))
    texts.append(g2.text)
    assert versions(assert_ok(g2))["access_token"] == v2
    u = dpatch(srv, src, "actions-airship", {"config": [{"name": "access_token", "value": SECRET}]}, ["config"])
    texts.append(u.text)
    assert versions(assert_ok(u))["access_token"] == v1
    # The secret is really stored: the destination can be enabled (access_token is required).
    u = dpatch(srv, src, "actions-airship", {"enabled": True}, ["enabled"])
    texts.append(u.text)
    assert assert_ok(u)["enabled"] is True
    # The audit trail shows destinations as the API renders them: no secret there either.
    audit = srv.get(f"/v1beta/workspaces/{WS}/audit-events?page_size=100&resource=" + dst_name(src, "actions-airship"))
    assert_ok(audit)
    assert len(audit.json()["audit_events"]) >= 5
    texts.append(audit.text)
    for t in texts:
        assert SECRET not in t and other not in t
    # Reset: no secret, no version.
    u = assert_ok(dpatch(srv, src, "actions-airship", None, ["enabled", "config"]))
    assert config_map(u)["access_token"]["value"] == "" and "secret_version" not in config_map(u)["access_token"]


def test_several_password_settings_have_independent_versions(srv, src):
    b = create_dest(srv, src, "actions-gameball", config=[{"name": "apiKey", "value": "A-" + SECRET},
                                                          {"name": "secretKey", "value": "B-" + SECRET}])
    v = versions(b)
    assert v["apiKey"] and v["secretKey"] and v["apiKey"] != v["secretKey"]
    u = assert_ok(dpatch(srv, src, "actions-gameball", {"config": [{"name": "secretKey", "value": "C"}]}, ["config"]))
    assert versions(u)["apiKey"] == v["apiKey"] and versions(u)["secretKey"] != v["secretKey"]


def test_secret_version_does_not_reveal_equal_secrets_elsewhere(srv, src):
    """Whoever can set a secret on one destination must not be able to confirm a guess of
    another destination's secret by comparing secret_version values: the same value in
    another setting, destination or source has another version."""
    other = uniq()
    create_source(srv, other)
    a = create_dest(srv, src, "actions-gameball", config=[{"name": "apiKey", "value": SECRET},
                                                          {"name": "secretKey", "value": SECRET}])
    b = create_dest(srv, other, "actions-gameball", config=[{"name": "apiKey", "value": SECRET}])
    c = create_dest(srv, src, "actions-airship", config=[{"name": "access_token", "value": SECRET}])
    vs = [versions(a)["apiKey"], versions(a)["secretKey"], versions(b)["apiKey"], versions(c)["access_token"]]
    assert all(vs) and len(set(vs)) == 4, vs
    # …while each stays stable for its own value.
    assert versions(assert_ok(srv.get(dst_path(other, "actions-gameball"))))["apiKey"] == vs[2]


def test_secret_not_echoed_by_failing_requests(srv, src):
    # Valid JSON that fails validation for another reason must not echo the secret.
    bodies = [dest_body(src, "actions-airship", enabled=True, config=[{"name": "access_token", "value": SECRET}]),
              dest_body(src, "actions-airship", config=[{"name": "access_token", "value": SECRET},
                                                        {"name": "app_key", "value": 5}]),
              dest_body(src, "actions-airship", config=[{"name": "access_token", "value": SECRET}], bogus=1),
              dest_body(src, "actions-airship", connection_mode="X", config=[{"name": "access_token", "value": SECRET}])]
    for body in bodies:
        r = srv.post(dst_coll(src), json=body)
        assert_error(r, 400, 3)
        assert SECRET not in r.text
    create_dest(srv, src, "actions-airship", config=[{"name": "access_token", "value": SECRET}])
    r = srv.post(dst_coll(src), json=dest_body(src, "actions-airship", config=[{"name": "access_token", "value": SECRET}]))
    assert_error(r, 409, 6)
    assert SECRET not in r.text
    r = dpatch(srv, src, "actions-airship", {"enabled": True, "config": [{"name": "access_token", "value": SECRET}]},
               ["enabled", "config"])
    assert_error(r, 400, 3)
    assert SECRET not in r.text


# ---- uniqueness, unknown destinations, bad bodies ------------------------------------------------

def test_one_destination_per_source_and_catalog_destination(srv, src):
    first = create_dest(srv, src, "google-analytics", config=[{"name": "trackingId", "value": "UA-1-1"}])
    r = srv.post(dst_coll(src), json=dest_body(src, "google-analytics", enabled=True))
    assert_error(r, 409, 6)
    r = srv.post(dst_coll(src), json={"destination": {"name": "google-analytics"}})
    assert_error(r, 409, 6)
    assert assert_ok(srv.get(dst_path(src, "google-analytics"))) == first
    # The same catalog destination on another source is fine.
    other = uniq()
    create_source(srv, other)
    check_dest(create_dest(srv, other, "google-analytics"), other, "google-analytics")


@pytest.mark.parametrize("key,alias", [("customer.io", "customer-io"), ("appboy", "braze"), ("piwik", "matomo")])
def test_catalog_alias_does_not_make_a_second_destination(srv, src, key, alias):
    """catalog/destinations/customer.io has the docs slug customer-io: a destination named by
    the alias must not become a second destination of the same catalog destination."""
    create_dest(srv, src, key)
    r = srv.post(dst_coll(src), json=dest_body(src, alias))
    assert r.status_code in (400, 409), r.text
    assert_error(r, r.status_code, 3 if r.status_code == 400 else 6)
    names = [d["name"] for d in list_all(srv, dst_coll(src), "destinations")[0]]
    assert names == [dst_name(src, key)]


@pytest.mark.parametrize("name", ["no-such-destination", "__full__no-such-destination", "Google-Analytics",
                                  "__full__GOOGLE-ANALYTICS", "javascript", "catalog/destinations/google-analytics",
                                  "__other_src__", "__ws__", "", "__full__", "__full__google-analytics/x",
                                  "google-analytics/filters"])
def test_unknown_or_misplaced_destination_is_400(srv, src, name):
    if name.startswith("__full__"):
        name = dst_name(src, name[len("__full__"):])
    elif name == "__other_src__":
        name = dst_name(uniq(), "google-analytics")
    elif name == "__ws__":
        name = "workspaces/other/sources/" + src + "/destinations/google-analytics"
    assert_error(srv.post(dst_coll(src), json={"destination": {"name": name}}), 400, 3)
    assert list_all(srv, dst_coll(src), "destinations")[0] == []


@pytest.mark.parametrize("body", [{"destination": {}}, {"destination": {"name": 5}}, {"destination": None},
                                  {"destination": []}, {}, {"destination": {"name": "google-analytics", "bogus": 1}},
                                  {"destination": {"name": "google-analytics"}, "bogus": 1},
                                  {"destination": {"name": "google-analytics", "enabled": "yes"}},
                                  {"destination": {"name": "google-analytics", "connection_mode": "cloud"}},
                                  {"destination": {"name": "google-analytics", "config": {"trackingId": "UA-1-1"}}},
                                  {"destination": {"name": "google-analytics", "config": [{"name": "trackingId"}]}},
                                  {"destination": {"name": "google-analytics", "config": [{"value": "UA-1-1"}]}},
                                  {"destination": {"name": "google-analytics",
                                                   "config": [{"name": "trackingId", "value": "UA-1-1", "x": 1}]}}])
def test_bad_create_bodies_are_400(srv, src, body):
    assert_error(srv.post(dst_coll(src), json=body), 400, 3)
    assert list_all(srv, dst_coll(src), "destinations")[0] == []


@pytest.mark.parametrize("text", ["{", '{"destination": {"name": "google-analytics",}}', "[]", "null",
                                  '{"destination": {"name": "google-analytics", "name": "amplitude"}}'])
def test_malformed_json_is_400(srv, src, text):
    r = srv.post(dst_coll(src), data=text, headers={"Content-Type": "application/json"})
    assert_error(r, 400, 3)
    r = srv.request("PATCH", dst_path(src, "google-analytics"), data=text, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 404)
    assert list_all(srv, dst_coll(src), "destinations")[0] == []


# ---- delete and cascades ---------------------------------------------------------------------

def test_delete_destination(srv, src):
    create_dest(srv, src, "google-analytics")
    keep = create_dest(srv, src, "amplitude")
    r = srv.delete(dst_path(src, "google-analytics"))
    assert r.status_code == 200 and r.text.strip() == "{}" and r.json() == {}
    assert_error(srv.get(dst_path(src, "google-analytics")), 404, 5)
    assert_error(srv.delete(dst_path(src, "google-analytics")), 404, 5)
    assert [d["name"] for d in list_all(srv, dst_coll(src), "destinations")[0]] == [keep["name"]]
    assert assert_ok(srv.get(dst_path(src, "amplitude"))) == keep
    # It can be created again, and starts from the catalog defaults.
    check_dest(create_dest(srv, src, "google-analytics"), src, "google-analytics")


def test_deleting_a_source_deletes_its_destinations_and_schema_config(srv, src):
    create_dest(srv, src, "google-analytics", enabled=True, config=[{"name": "trackingId", "value": "UA-1-1"}])
    create_dest(srv, src, "actions-airship", config=[{"name": "access_token", "value": SECRET}])
    create_dest(srv, src, "customer.io")
    assert_ok(patch(srv, sc_path(src), "schema_config", {"common_track_event_on_violations": "BLOCK"},
                    ["common_track_event_on_violations"]))
    assert srv.delete(src_path(src)).json() == {}
    for d in ("google-analytics", "actions-airship", "customer.io"):
        assert_error(srv.get(dst_path(src, d)), 404, 5)
        assert_error(dpatch(srv, src, d, {"enabled": True}, ["enabled"]), 404, 5)
    assert_error(srv.get(dst_coll(src)), 404, 5)
    assert_error(srv.get(sc_path(src)), 404, 5)
    # A new source with the same slug starts clean.
    new = create_source(srv, src)
    assert assert_ok(srv.get(dst_coll(src))) == {"destinations": [], "next_page_token": ""}
    for d in ("google-analytics", "actions-airship", "customer.io"):
        assert_error(srv.get(dst_path(src, d)), 404, 5)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)
    assert new["labels"] == {}
    b = create_dest(srv, src, "actions-airship")
    check_dest(b, src, "actions-airship")  # no secret carried over


def test_deleting_a_source_leaves_sources_with_the_same_prefix(srv):
    base = uniq()
    siblings = [base + "-a", base + "_a", base + "0", base + "a", base + "-"]
    for s in [base] + siblings:
        create_source(srv, s)
        create_dest(srv, s, "google-analytics", config=[{"name": "trackingId", "value": "UA-1-1"}])
    keep = {s: assert_ok(srv.get(dst_path(s, "google-analytics"))) for s in siblings}
    sc = {s: assert_ok(srv.get(sc_path(s))) for s in siblings}
    assert srv.delete(src_path(base)).json() == {}
    assert_error(srv.get(src_path(base)), 404, 5)
    for s in siblings:
        assert_ok(srv.get(src_path(s)))
        assert assert_ok(srv.get(dst_path(s, "google-analytics"))) == keep[s]
        assert assert_ok(srv.get(sc_path(s))) == sc[s]

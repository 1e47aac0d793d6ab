"""Source schema config (spec §7.5) with the update-mask rules of §1.8."""
import pytest

from conftest import assert_error, assert_ok
from helpers_resources import (SC_BOOLS, SC_ENUMS, SC_FIELDS, SC_FORWARDING, create_source, patch, sc_defaults,
                               sc_path, src_path, srv, uniq)


def sc_patch(srv, src, obj, paths, **kw):
    return patch(srv, sc_path(src), "schema_config", obj, paths, **kw)


@pytest.fixture
def src(srv):
    slug = uniq()
    create_source(srv, slug)
    return slug


def test_defaults_for_a_new_source(srv, src):
    r = srv.get(sc_path(src))
    assert assert_ok(r) == sc_defaults(src)
    assert r.headers.get("ETag")


def test_patch_with_prefixed_paths(srv, src):
    obj = {"allow_unplanned_track_events": False, "common_group_event_on_violations": "BLOCK"}
    r = sc_patch(srv, src, obj, ["schema_config.allow_unplanned_track_events",
                                 "schema_config.common_group_event_on_violations"])
    want = sc_defaults(src) | obj
    assert assert_ok(r) == want
    assert r.headers.get("ETag")
    assert assert_ok(srv.get(sc_path(src))) == want


def test_patch_with_bare_paths(srv, src):
    obj = {"allow_identify_traits_on_violations": False, "common_track_event_on_violations": "OMIT_PROPERTIES",
           "common_identify_event_on_violations": "OMIT_TRAITS"}
    r = sc_patch(srv, src, obj, list(obj))
    want = sc_defaults(src) | obj
    assert assert_ok(r) == want
    assert assert_ok(srv.get(sc_path(src))) == want


def test_patch_all_thirteen_settings_at_once(srv, src):
    other = uniq()
    create_source(srv, other)
    obj = {k: False for k in SC_BOOLS}
    obj |= {k: other for k in SC_FORWARDING}
    obj |= {"common_track_event_on_violations": "BLOCK", "common_identify_event_on_violations": "BLOCK",
            "common_group_event_on_violations": "OMIT_TRAITS"}
    assert len(obj) == 13
    r = sc_patch(srv, src, obj, ["schema_config." + k for k in SC_FIELDS])
    want = sc_defaults(src) | obj
    assert assert_ok(r) == want
    assert assert_ok(srv.get(sc_path(src))) == want
    # The other source's own config is untouched.
    assert assert_ok(srv.get(sc_path(other))) == sc_defaults(other)


@pytest.mark.parametrize("field,value,zero", [(b, False, False) for b in SC_BOOLS[:1]] +
                         [("forwarding_violations_to", "__other__", ""),
                          ("common_track_event_on_violations", "BLOCK", "ALLOW"),
                          ("common_identify_event_on_violations", "OMIT_TRAITS", "ALLOW")])
def test_listed_path_without_value_resets_to_zero(srv, src, field, value, zero):
    if value == "__other__":
        value = uniq()
        create_source(srv, value)
    assert assert_ok(sc_patch(srv, src, {field: value}, [field]))[field] == value
    # Listed, no value: the zero value. For a bool that is false even though the default is true.
    b = assert_ok(sc_patch(srv, src, {"allow_unplanned_group_traits": False}, [field, "allow_unplanned_group_traits"]))
    assert b[field] == zero
    assert b["allow_unplanned_group_traits"] is False
    assert assert_ok(srv.get(sc_path(src)))[field] == zero


def test_listed_bool_without_value_is_false(srv, src):
    b = assert_ok(sc_patch(srv, src, {}, ["schema_config.allow_unplanned_track_event_properties"]))
    assert b == sc_defaults(src) | {"allow_unplanned_track_event_properties": False}


def test_listed_path_with_null_value_resets(srv, src):
    b = assert_ok(sc_patch(srv, src, {"allow_group_traits_on_violations": None},
                           ["allow_group_traits_on_violations"]))
    assert b["allow_group_traits_on_violations"] is False


def test_value_without_path_is_ignored(srv, src):
    before = srv.get(sc_path(src))
    obj = {"allow_unplanned_track_events": False, "common_track_event_on_violations": "BLOCK"}
    r = sc_patch(srv, src, obj, ["allow_unplanned_identify_traits"])
    assert assert_ok(r) == sc_defaults(src) | {"allow_unplanned_identify_traits": False}


@pytest.mark.parametrize("paths", [None, []])
def test_no_paths_changes_nothing(srv, src, paths):
    before = srv.get(sc_path(src))
    r = sc_patch(srv, src, {"allow_unplanned_track_events": False, "forwarding_violations_to": "nope"}, paths)
    assert assert_ok(r) == sc_defaults(src)
    assert r.headers.get("ETag") == before.headers.get("ETag")
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


def test_empty_body_changes_nothing(srv, src):
    r = srv.request("PATCH", sc_path(src), json={})
    assert assert_ok(r) == sc_defaults(src)


@pytest.mark.parametrize("path", ["schema_config.nope", "nope", "name", "parent", "schema_config.name",
                                  "source.allow_unplanned_track_events", "schema_config.", "",
                                  "schema_config.allow_unplanned_track_events.x", "Allow_unplanned_track_events",
                                  "destination.enabled"])
def test_unknown_path_is_400_and_changes_nothing(srv, src, path):
    r = sc_patch(srv, src, {"allow_unplanned_track_events": False},
                 ["schema_config.allow_unplanned_track_events", path])
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


@pytest.mark.parametrize("field,value", [
    ("common_track_event_on_violations", "OMIT_TRAITS"),
    ("common_identify_event_on_violations", "OMIT_PROPERTIES"),
    ("common_group_event_on_violations", "OMIT_PROPERTIES"),
    ("common_track_event_on_violations", "allow"),
    ("common_track_event_on_violations", "BLOCKED"),
    ("common_group_event_on_violations", ""),
    ("common_group_event_on_violations", 1),
    ("common_identify_event_on_violations", True),
    ("allow_unplanned_track_events", "false"),
    ("allow_unplanned_track_events", 0),
    ("allow_group_traits_on_violations", "yes"),
    ("forwarding_violations_to", 5),
    ("forwarding_blocked_events_to", False),
])
def test_bad_values_are_400(srv, src, field, value):
    r = sc_patch(srv, src, {field: value, "allow_unplanned_group_traits": False},
                 [field, "allow_unplanned_group_traits"])
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


@pytest.mark.parametrize("field", SC_FORWARDING)
def test_forwarding_to_unknown_source_is_400(srv, src, field):
    for target in ["no-such-source-" + uniq(""), "UPPER", "a/b", "../" + src, "x" * 120, src]:
        assert_error(sc_patch(srv, src, {field: target}, [field]), 400, 3)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


def test_forwarding_to_a_deleted_source_is_400(srv, src):
    gone = uniq()
    create_source(srv, gone)
    assert srv.delete(src_path(gone)).json() == {}
    assert_error(sc_patch(srv, src, {"forwarding_violations_to": gone}, ["forwarding_violations_to"]), 400, 3)


def test_forwarding_to_another_source(srv, src):
    other = uniq()
    create_source(srv, other)
    b = assert_ok(sc_patch(srv, src, {"forwarding_blocked_events_to": other, "forwarding_violations_to": other},
                           SC_FORWARDING))
    assert b["forwarding_blocked_events_to"] == other and b["forwarding_violations_to"] == other
    # and back to "" explicitly
    b = assert_ok(sc_patch(srv, src, {"forwarding_blocked_events_to": ""}, ["forwarding_blocked_events_to"]))
    assert b["forwarding_blocked_events_to"] == "" and b["forwarding_violations_to"] == other


@pytest.mark.parametrize("field", list(SC_ENUMS))
def test_every_enum_value_is_accepted(srv, src, field):
    for v in SC_ENUMS[field]:
        assert assert_ok(sc_patch(srv, src, {field: v}, ["schema_config." + field]))[field] == v
        assert assert_ok(srv.get(sc_path(src)))[field] == v


def test_unknown_field_in_object_is_400(srv, src):
    r = sc_patch(srv, src, {"allow_unplanned_track_events": False, "bogus": 1},
                 ["allow_unplanned_track_events"])
    assert_error(r, 400, 3)
    r = srv.request("PATCH", sc_path(src), json={"schema_config": {}, "update_mask": {"paths": []}, "x": 1})
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


@pytest.mark.parametrize("mask", [{"paths": "allow_unplanned_track_events"}, ["allow_unplanned_track_events"],
                                  {"paths": [1]}, {"paths": [None]}, "allow_unplanned_track_events",
                                  {"paths": ["allow_unplanned_track_events"], "extra": 1}])
def test_malformed_update_mask_is_400(srv, src, mask):
    r = srv.request("PATCH", sc_path(src), json={"schema_config": {"allow_unplanned_track_events": False},
                                                 "update_mask": mask})
    assert_error(r, 400, 3)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


def test_camel_case_body_is_accepted(srv, src):
    r = srv.request("PATCH", sc_path(src), json={"schemaConfig": {"allowUnplannedTrackEvents": False},
                                                 "updateMask": {"paths": ["schema_config.allow_unplanned_track_events"]}})
    assert assert_ok(r) == sc_defaults(src) | {"allow_unplanned_track_events": False}


def test_malformed_json_is_400(srv, src):
    r = srv.request("PATCH", sc_path(src), data='{"schema_config": {', headers={"Content-Type": "application/json"})
    assert_error(r, 400, 3)


def test_schema_config_has_no_other_methods(srv, src):
    for m in ("POST", "DELETE", "PUT"):
        assert_error(srv.request(m, sc_path(src), json={}), 404, 5)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)


def test_deleting_the_source_removes_its_schema_config(srv, src):
    assert_ok(sc_patch(srv, src, {"common_track_event_on_violations": "BLOCK"}, ["common_track_event_on_violations"]))
    assert srv.delete(src_path(src)).json() == {}
    assert_error(srv.get(sc_path(src)), 404, 5)
    assert_error(sc_patch(srv, src, {"allow_unplanned_track_events": False}, ["allow_unplanned_track_events"]),
                 404, 5)
    create_source(srv, src)
    assert assert_ok(srv.get(sc_path(src))) == sc_defaults(src)

"""Workspaces (spec §6): list and get, by slug and by id; tenant isolation (§1.2)."""
import re

import pytest

from conftest import DEFAULT_WS, RFC3339_Z, assert_error, assert_ok

OTHER_WS, OTHER_ID = "second-ws", "k2secondw9"


@pytest.fixture(scope="module")
def srv(server):
    server.add_workspace(OTHER_WS, OTHER_ID, display_name='Second "quoted" \\ Ünïcode')
    server.other_token = server.create_token(workspace=OTHER_WS, description="second owner")
    server.other_read = server.create_token(workspace=OTHER_WS, scope="workspace:read", description="second reader")
    server.read_token = server.create_token(scope="workspace:read", description="reader")
    return server


def the_workspace(srv, token="__default__"):
    b = assert_ok(srv.get("/v1beta/workspaces", token=token))
    assert set(b) == {"workspaces", "next_page_token"}
    assert b["next_page_token"] == ""
    assert len(b["workspaces"]) == 1, b
    return b["workspaces"][0]


def test_list_shape(srv):
    w = the_workspace(srv)
    assert set(w) == {"name", "display_name", "id", "create_time"}, w
    assert w["name"] == "workspaces/" + DEFAULT_WS
    assert w["display_name"] == "My Workspace"
    assert re.fullmatch(r"[a-z0-9]{10}", w["id"]), w["id"]
    assert RFC3339_Z.match(w["create_time"]), w


def test_list_with_read_token(srv):
    assert the_workspace(srv, srv.read_token)["name"] == "workspaces/" + DEFAULT_WS


def test_list_shows_only_the_tokens_workspaces(srv):
    w = the_workspace(srv, srv.other_token)
    assert w == {"name": "workspaces/" + OTHER_WS, "display_name": 'Second "quoted" \\ Ünïcode',
                 "id": OTHER_ID, "create_time": "2024-01-02T03:04:05Z"}


def test_get_by_slug_and_by_id(srv):
    w = the_workspace(srv)
    by_slug = assert_ok(srv.get("/v1beta/workspaces/" + DEFAULT_WS))
    by_id = assert_ok(srv.get("/v1beta/workspaces/" + w["id"]))
    assert by_slug == w
    assert by_id == w  # the name is always the slug form
    o = assert_ok(srv.get("/v1beta/workspaces/" + OTHER_ID, token=srv.other_read))
    assert o["name"] == "workspaces/" + OTHER_WS


def test_get_with_trailing_slash(srv):
    assert assert_ok(srv.get(f"/v1beta/workspaces/{DEFAULT_WS}/")) == the_workspace(srv)


def test_other_workspace_is_permission_denied(srv):
    mine = the_workspace(srv)
    for ws in (OTHER_WS, OTHER_ID):
        assert_error(srv.get("/v1beta/workspaces/" + ws), 403, 7)
        assert_error(srv.get("/v1beta/workspaces/" + ws, token=srv.read_token), 403, 7)
    for ws in (DEFAULT_WS, mine["id"]):
        assert_error(srv.get("/v1beta/workspaces/" + ws, token=srv.other_token), 403, 7)


def test_unknown_workspace(srv):
    # A workspace that does not exist must not be told apart from one the caller may not
    # see (403/7), or be a plain 404/5; never anything else.
    for ws in ("doesnotexist", "0000000000", "MYWORKSPACE", "myworkspace2"):
        r = srv.get("/v1beta/workspaces/" + ws)
        assert r.status_code in (403, 404), r.text
        assert_error(r, r.status_code, 7 if r.status_code == 403 else 5)


def test_workspaces_need_a_token(srv):
    assert_error(srv.get("/v1beta/workspaces", token=None), 401, 16)
    assert_error(srv.get("/v1beta/workspaces/" + DEFAULT_WS, token=None), 401, 16)


def test_list_pagination_params(srv):
    b = assert_ok(srv.get("/v1beta/workspaces", params={"page_size": 1}))
    assert len(b["workspaces"]) == 1 and b["next_page_token"] == ""
    assert_error(srv.get("/v1beta/workspaces", params={"page_size": -1}), 400, 3)
    assert_error(srv.get("/v1beta/workspaces", params={"page_token": "MTI="}), 400, 3)


def test_multi_workspace_token_pages(srv):
    """A token for two workspaces lists both, in slug order, across pages."""
    user = srv.add_user("both@example.com", "password-both-1", workspace=DEFAULT_WS)
    # the second workspace's owner makes the user an owner there too (IAM policy)
    assert_ok(srv.post(f"/v1beta/workspaces/{OTHER_WS}/roles/workspace-owner/policies", token=srv.other_token,
                       json={"policy": {"subject": user, "resource": "workspaces/" + OTHER_WS}}))
    t = srv.post("/v1beta/access-tokens", token=None, auth=("both@example.com", "password-both-1"),
                 json={"access_token": {"description": "two", "scopes": "workspace:read",
                                        "workspace_names": ["workspaces/" + DEFAULT_WS, "workspaces/" + OTHER_WS]}})
    tok = assert_ok(t)["token"]
    allws = assert_ok(srv.get("/v1beta/workspaces", token=tok))
    assert [w["name"] for w in allws["workspaces"]] == ["workspaces/" + OTHER_WS, "workspaces/" + DEFAULT_WS] \
        if OTHER_WS < DEFAULT_WS else ["workspaces/" + DEFAULT_WS, "workspaces/" + OTHER_WS]
    p1 = assert_ok(srv.get("/v1beta/workspaces", token=tok, params={"page_size": 1}))
    assert len(p1["workspaces"]) == 1 and p1["next_page_token"]
    p2 = assert_ok(srv.get("/v1beta/workspaces", token=tok,
                           params={"page_size": 1, "page_token": p1["next_page_token"]}))
    assert len(p2["workspaces"]) == 1 and p2["next_page_token"] == ""
    assert p1["workspaces"] + p2["workspaces"] == allws["workspaces"]
    for ws in (DEFAULT_WS, OTHER_WS, OTHER_ID):
        assert_ok(srv.get("/v1beta/workspaces/" + ws, token=tok))

"""Access tokens (spec §3): create with HTTP Basic or a Bearer `workspace` token, list, get,
delete, and the admin commands `manifold token create|list|revoke`."""
import re
import time

import pytest
import requests

from conftest import DEFAULT_WS, RFC3339_Z, TOKEN_RE, assert_error, assert_ok

EMAIL = "owner2@example.com"
PASSWORD = "correct horse battery staple"
OTHER_WS, OTHER_ID = "otherws", "zz9otherw1"
OTHER_EMAIL = "other@example.com"
INSUFFICIENT = {"error": "insufficient scope", "code": 7}


def body(description="my access token", scopes="workspace", names=("workspaces/" + DEFAULT_WS,)):
    return {"access_token": {"description": description, "scopes": scopes, "workspace_names": list(names)}}


@pytest.fixture(scope="module")
def srv(server):
    server.add_user(EMAIL, PASSWORD)
    server.add_workspace(OTHER_WS, OTHER_ID)
    server.add_user(OTHER_EMAIL, PASSWORD, workspace=OTHER_WS)
    server.other_token = server.create_token(workspace=OTHER_WS, description="other ws owner")
    server.read_token = server.create_token(scope="workspace:read", description="read only")
    return server


def create(srv, payload=None, token="__default__", **kw):
    return srv.post("/v1beta/access-tokens", token=token, json=payload if payload is not None else body(), **kw)


def check_token_object(t, description, scopes, names):
    assert re.fullmatch(r"access-tokens/[1-9]\d*", t["name"]), t
    assert t["description"] == description
    assert t["scopes"] == scopes
    assert t["workspace_names"] == names
    assert RFC3339_Z.match(t["create_time"]), t
    assert "token" not in t


# ---- create --------------------------------------------------------------------------


def test_create_with_basic_auth(srv):
    r = create(srv, body(description="via basic"), token=None, auth=(EMAIL, PASSWORD))
    t = assert_ok(r)
    assert set(t) == {"name", "description", "scopes", "workspace_names", "create_time", "token"}
    assert TOKEN_RE.match(t["token"]), t["token"]
    check_token_object({k: v for k, v in t.items() if k != "token"}, "via basic", "workspace",
                       ["workspaces/" + DEFAULT_WS])
    # the new token works at once
    assert_ok(srv.get("/v1beta/workspaces", token=t["token"]))


def test_create_with_bearer_workspace_token(srv):
    t = assert_ok(create(srv, body(description="via bearer", scopes="workspace:read")))
    assert TOKEN_RE.match(t["token"])
    check_token_object({k: v for k, v in t.items() if k != "token"}, "via bearer", "workspace:read",
                       ["workspaces/" + DEFAULT_WS])
    ws = assert_ok(srv.get("/v1beta/workspaces", token=t["token"]))
    assert [w["name"] for w in ws["workspaces"]] == ["workspaces/" + DEFAULT_WS]


def test_create_accepts_bare_slug_and_emits_full_name(srv):
    t = assert_ok(create(srv, body(names=[DEFAULT_WS])))
    assert t["workspace_names"] == ["workspaces/" + DEFAULT_WS]


def test_create_accepts_camel_case_aliases(srv):
    payload = {"accessToken": {"description": "camel", "scopes": "workspace",
                               "workspaceNames": ["workspaces/" + DEFAULT_WS]}}
    t = assert_ok(create(srv, payload))
    assert t["workspace_names"] == ["workspaces/" + DEFAULT_WS]
    assert t["description"] == "camel"


def test_created_tokens_are_distinct(srv):
    a = assert_ok(create(srv))
    b = assert_ok(create(srv))
    assert a["token"] != b["token"] and a["name"] != b["name"]


@pytest.mark.parametrize("auth", [
    (EMAIL, "wrong password"),
    ("nobody@example.com", PASSWORD),
    (EMAIL, ""),
    ("", ""),
])
def test_create_bad_basic_credentials(srv, auth):
    assert_error(create(srv, token=None, auth=auth), 401, 16)


@pytest.mark.parametrize("header", [
    "Basic !!!notbase64!!!",
    "Basic ",
    "Basic bm9jb2xvbg==",            # "nocolon"
    "Basic b3duZXIyQGV4YW1wbGUuY29t",  # the e-mail alone
    "Bearer ",
    "Bearer not-a-token",
    "Bearer " + "A" * 43 + "." + "B" * 43,
    "Digest username=x",
    "",
])
def test_create_bad_authorization_header(srv, header):
    r = create(srv, token=None, headers={"Authorization": header})
    assert_error(r, 401, 16)


def test_create_without_credentials(srv):
    assert_error(create(srv, token=None), 401, 16)


def test_create_with_read_token_is_insufficient_scope(srv):
    r = create(srv, token=srv.read_token)
    assert r.status_code == 403
    assert r.json() == INSUFFICIENT


@pytest.mark.parametrize("at", [
    {"scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},
    {"description": "", "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},
    {"description": None, "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},
    {"description": 5, "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},
    {"description": "x" * 501, "scopes": "workspace", "workspace_names": ["workspaces/myworkspace"]},
], ids=["missing", "empty", "null", "number", "too-long"])
def test_create_bad_description(srv, at):
    assert_error(create(srv, {"access_token": at}), 400, 3)


@pytest.mark.parametrize("scopes", [None, "", "admin", "WORKSPACE", "workspace:write", ["workspace"],
                                    "destination/google-analytics-x", 7])
def test_create_bad_scope(srv, scopes):
    at = {"description": "d", "workspace_names": ["workspaces/" + DEFAULT_WS]}
    if scopes is not None:
        at["scopes"] = scopes
    assert_error(create(srv, {"access_token": at}), 400, 3)


@pytest.mark.parametrize("names", [
    ["workspaces/doesnotexist"],
    ["doesnotexist"],
    ["workspaces/myworkspace", "workspaces/doesnotexist"],
])
def test_create_unknown_workspace(srv, names):
    assert_error(create(srv, body(names=names)), 400, 3)


@pytest.mark.parametrize("names", [None, [], "workspaces/myworkspace", [5], [None], {}])
def test_create_bad_workspace_names(srv, names):
    at = {"description": "d", "scopes": "workspace"}
    if names is not None:
        at["workspace_names"] = names
    assert_error(create(srv, {"access_token": at}), 400, 3)


@pytest.mark.parametrize("payload", [
    {},
    {"access_token": None},
    {"access_token": "x"},
    {"access_token": []},
    {"access_token": {"description": "d", "scopes": "workspace",
                      "workspace_names": ["workspaces/myworkspace"], "extra": 1}},
    {"access_token": {"description": "d", "scopes": "workspace",
                      "workspace_names": ["workspaces/myworkspace"]}, "extra": 1},
], ids=["empty", "null", "string", "array", "unknown-inner-field", "unknown-top-field"])
def test_create_bad_body_shape(srv, payload):
    assert_error(create(srv, payload), 400, 3)


def test_create_for_a_workspace_the_caller_does_not_own(srv):
    # the other workspace exists, but neither the bootstrap token nor its user owns it
    assert_error(create(srv, body(names=["workspaces/" + OTHER_WS])), 403, 7)
    r = create(srv, body(names=["workspaces/" + OTHER_WS]), token=None, auth=(EMAIL, PASSWORD))
    assert_error(r, 403, 7)
    # and the other workspace's owner cannot mint tokens for ours
    assert_error(create(srv, body(), token=srv.other_token), 403, 7)


def test_basic_auth_user_of_other_workspace(srv):
    t = assert_ok(create(srv, body(names=["workspaces/" + OTHER_WS]), token=None, auth=(OTHER_EMAIL, PASSWORD)))
    assert t["workspace_names"] == ["workspaces/" + OTHER_WS]
    ws = assert_ok(srv.get("/v1beta/workspaces", token=t["token"]))
    assert [w["name"] for w in ws["workspaces"]] == ["workspaces/" + OTHER_WS]


def test_basic_auth_is_only_for_token_creation(srv):
    for path in ("/v1beta/workspaces", "/v1beta/access-tokens", "/v1beta/catalog/sources"):
        r = srv.get(path, token=None, auth=(EMAIL, PASSWORD))
        assert_error(r, 401, 16)


# ---- list / get / delete -------------------------------------------------------------


def test_plain_token_only_in_create_response(srv):
    t = assert_ok(create(srv, body(description="secret check")))
    plain = t["token"]
    g = srv.get("/v1beta/" + t["name"])
    assert_ok(g)
    assert plain not in g.text and "token" not in g.json()
    found = False
    page = ""
    while True:
        r = srv.get("/v1beta/access-tokens", params={"page_size": 100, "page_token": page})
        lst = assert_ok(r)
        assert plain not in r.text
        for item in lst["access_tokens"]:
            assert "token" not in item
            found |= item["name"] == t["name"]
        page = lst["next_page_token"]
        if not page:
            break
    assert found


def test_get_token(srv):
    t = assert_ok(create(srv, body(description="get me", scopes="workspace:read")))
    g = assert_ok(srv.get("/v1beta/" + t["name"]))
    assert g == {k: v for k, v in t.items() if k != "token"}


def test_list_tokens_shape_and_pagination(srv):
    made = {assert_ok(create(srv, body(description=f"page {i}")))["name"] for i in range(3)}
    first = assert_ok(srv.get("/v1beta/access-tokens"))
    assert set(first) == {"access_tokens", "next_page_token"}
    assert isinstance(first["next_page_token"], str)
    seen, page, pages = [], "", 0
    while True:
        lst = assert_ok(srv.get("/v1beta/access-tokens", params={"page_size": 2, "page_token": page}))
        assert len(lst["access_tokens"]) <= 2
        for item in lst["access_tokens"]:
            check_token_object(item, item["description"], item["scopes"], item["workspace_names"])
        seen += [i["name"] for i in lst["access_tokens"]]
        page = lst["next_page_token"]
        pages += 1
        if not page:
            break
        assert pages < 100
    assert len(seen) == len(set(seen)), "a token appeared on two pages"
    assert made <= set(seen)
    ids = [int(n.split("/")[1]) for n in seen]
    assert ids == sorted(ids)
    # a last page has next_page_token "" (present, not omitted)
    assert lst["next_page_token"] == ""


def test_list_pages_skip_other_workspaces_tokens(srv):
    """Tokens of two workspaces interleaved by id: every page of the other workspace's
    list is full, nothing is missed or repeated."""
    made = []
    for i in range(7):
        assert_ok(create(srv, body(description=f"mine {i}")))
        made.append(srv.create_token(workspace=OTHER_WS, description=f"theirs {i}"))
    seen, page = [], ""
    for _ in range(100):
        lst = assert_ok(srv.get("/v1beta/access-tokens", token=srv.other_token,
                                params={"page_size": 2, "page_token": page}))
        items = lst["access_tokens"]
        page = lst["next_page_token"]
        assert len(items) == 2 or not page, (len(items), page)
        seen += [t["description"] for t in items]
        for t in items:
            assert t["workspace_names"] == ["workspaces/" + OTHER_WS]
        if not page:
            break
    assert len(seen) == len(set(seen))
    assert {f"theirs {i}" for i in range(7)} <= set(seen)
    assert not any(d.startswith("mine ") for d in seen)


def test_concurrent_creates(srv):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: create(srv, body(description=f"parallel {i}")), range(24)))
    made = [assert_ok(r) for r in rs]
    assert len({t["name"] for t in made}) == 24
    assert len({t["token"] for t in made}) == 24
    for t in made[:4]:
        assert_ok(srv.get("/v1beta/workspaces", token=t["token"]))


def test_list_shows_only_own_workspace_tokens(srv):
    mine = assert_ok(create(srv, body(description="mine")))
    lst = assert_ok(srv.get("/v1beta/access-tokens", token=srv.other_token, params={"page_size": 100}))
    names = {t["name"] for t in lst["access_tokens"]}
    assert mine["name"] not in names
    for t in lst["access_tokens"]:
        assert t["workspace_names"] == ["workspaces/" + OTHER_WS]
    # nor can it be read or deleted from the other workspace
    assert_error(srv.get("/v1beta/" + mine["name"], token=srv.other_token), 404, 5)
    assert_error(srv.delete("/v1beta/" + mine["name"], token=srv.other_token), 404, 5)
    assert_ok(srv.get("/v1beta/workspaces", token=mine["token"]))


def test_token_routes_need_write_scope(srv):
    for method, path in (("GET", "/v1beta/access-tokens"), ("GET", "/v1beta/access-tokens/1"),
                         ("DELETE", "/v1beta/access-tokens/1")):
        r = srv.request(method, path, token=srv.read_token)
        assert r.status_code == 403 and r.json() == INSUFFICIENT, (method, path, r.text)


@pytest.mark.parametrize("n", ["999999", "0", "-1", "abc", "1x", "99999999999999999999999"])
def test_get_unknown_token(srv, n):
    assert_error(srv.get("/v1beta/access-tokens/" + n), 404, 5)
    assert_error(srv.delete("/v1beta/access-tokens/" + n), 404, 5)


def test_delete_token_revokes_at_once(srv):
    t = assert_ok(create(srv, body(description="delete me")))
    s = requests.Session()  # keep-alive: the same connection before and after
    s.headers["Authorization"] = "Bearer " + t["token"]
    assert_ok(s.get(srv.url("/v1beta/workspaces")))
    r = srv.delete("/v1beta/" + t["name"])
    assert r.status_code == 200 and r.text.strip() == "{}", r.text
    assert_error(s.get(srv.url("/v1beta/workspaces")), 401, 16)
    assert_error(srv.get("/v1beta/workspaces", token=t["token"]), 401, 16)
    assert_error(srv.get("/v1beta/" + t["name"]), 404, 5)
    assert_error(srv.delete("/v1beta/" + t["name"]), 404, 5)


def test_token_can_delete_itself(srv):
    t = assert_ok(create(srv, body(description="suicide")))
    r = srv.delete("/v1beta/" + t["name"], token=t["token"])
    assert r.status_code == 200 and r.text.strip() == "{}"
    assert_error(srv.get("/v1beta/workspaces", token=t["token"]), 401, 16)


# ---- admin commands --------------------------------------------------------------------


def test_cli_token_create_prints_only_the_token(srv):
    p = srv.cli("token", "create", "--workspace", DEFAULT_WS, "--scope", "workspace:read",
                "--description", "cli token")
    assert TOKEN_RE.match(p.stdout.rstrip("\n")) and p.stdout.count("\n") == 1, repr(p.stdout)
    tok = p.stdout.strip()
    assert tok not in p.stderr
    assert_ok(srv.get("/v1beta/workspaces", token=tok))
    r = create(srv, token=tok)
    assert r.status_code == 403 and r.json() == INSUFFICIENT


def test_cli_token_create_errors(srv):
    p = srv.cli("token", "create", "--workspace", "doesnotexist", "--description", "x", check=False)
    assert p.returncode != 0 and p.stdout == ""
    p = srv.cli("token", "create", "--workspace", DEFAULT_WS, check=False)  # no description
    assert p.returncode != 0 and p.stdout == ""
    p = srv.cli("token", "create", "--workspace", DEFAULT_WS, "--description", "x", "--scope", "admin",
                check=False)
    assert p.returncode != 0 and p.stdout == ""


def test_cli_token_list(srv):
    tok = srv.create_token(description="listed by cli")
    p = srv.cli("token", "list")
    lines = p.stdout.splitlines()
    assert lines[0].split("\t")[:2] == ["ID", "SCOPES"]
    rows = [l.split("\t") for l in lines[1:]]
    mine = [r for r in rows if r[-1] == "listed by cli"]
    assert len(mine) == 1
    assert mine[0][0].isdigit() and mine[0][1] == "workspace"
    assert tok not in p.stdout
    # the API agrees on the id
    g = assert_ok(srv.get("/v1beta/access-tokens/" + mine[0][0]))
    assert g["description"] == "listed by cli"


def cli_token_id(srv, description):
    rows = [l.split("\t") for l in srv.cli("token", "list").stdout.splitlines()[1:]]
    ids = [r[0] for r in rows if r[-1] == description]
    assert len(ids) == 1, rows
    return ids[0]


def test_cli_revoke_reaches_running_server_within_a_second(srv):
    tok = srv.create_token(description="revoke me")
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tok
    assert_ok(s.get(srv.url("/v1beta/workspaces")))  # now cached by the server
    n = cli_token_id(srv, "revoke me")
    p = srv.cli("token", "revoke", n)
    revoked_at = time.monotonic()
    assert p.stdout == ""
    while True:
        r = s.get(srv.url("/v1beta/workspaces"))
        if r.status_code == 401:
            break
        assert_ok(r)
        assert time.monotonic() - revoked_at < 2.0, "revoked token still accepted after 2 s"
        time.sleep(0.05)
    assert_error(r, 401, 16)
    # and it stays revoked
    for _ in range(3):
        assert_error(s.get(srv.url("/v1beta/workspaces")), 401, 16)
    assert_error(srv.get("/v1beta/access-tokens/" + n), 404, 5)


def test_cli_revoke_errors(srv):
    for arg in ("999999", "abc", "0", "-3"):
        p = srv.cli("token", "revoke", arg, check=False)
        assert p.returncode != 0, arg

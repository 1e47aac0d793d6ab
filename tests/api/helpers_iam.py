"""Shared helpers for the IAM tests (test_iam.py, test_access_matrix.py, test_audit.py):
users made with `manifold user create`, policies, tokens of users (HTTP Basic), principals
(a user holding one role on one resource, with a token), small resource makers, and the
audit-trail reader.

Everything goes through the real binary and the real HTTP API; the servers come from the
conftest fixtures."""
import json
import re
import subprocess
import urllib.parse
import uuid

from conftest import BIN, CATALOG, DEFAULT_WS, RFC3339_Z, TOKEN_RE, assert_error, assert_ok

WS = DEFAULT_WS
WS_NAME = f"workspaces/{WS}"
WSP = f"/v1beta/workspaces/{WS}"
PASSWORD = "correct horse battery staple"
INSUFFICIENT = {"error": "insufficient scope", "code": 7}

BUILTIN_ROLES = {
    "workspace-owner": "Workspace Owner",
    "workspace-member": "Workspace Member",
    "source-admin": "Source Admin",
    "source-read-only": "Source Read-only",
    "tracking-plan-admin": "Tracking Plan Admin",
    "tracking-plan-read-only": "Tracking Plan Read-only",
    "function-admin": "Function Admin",
    "function-read-only": "Function Read-only",
}


def uniq(prefix="x"):
    return prefix + uuid.uuid4().hex[:12]


def route_table(bin_path=BIN):
    """`manifold routes`: the JSON array of {method, path, action}."""
    p = subprocess.run([bin_path, "routes"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert isinstance(rows, list) and rows, p.stdout[:500]
    for r in rows:
        assert set(r) == {"method", "path", "action"}, r
    return rows


def has_route(method, path):
    return any(r["method"] == method and r["path"] == path for r in route_table())


# ---- assertions -------------------------------------------------------------------------

def assert_denied(r):
    """403 with code 7 (permission denied or insufficient scope)."""
    return assert_error(r, 403, 7)


def assert_insufficient(r):
    assert_error(r, 403, 7)
    assert r.json() == INSUFFICIENT, r.text


def assert_unauthenticated(r):
    return assert_error(r, 401, 16)


# ---- users, policies, tokens --------------------------------------------------------------

class User:
    def __init__(self, uid, email, password):
        self.id = uid
        self.name = "users/" + uid
        self.email = email
        self.password = password

    def __repr__(self):
        return f"User({self.name}, {self.email})"


def new_user(srv, role="none", email=None, workspace=WS, password=PASSWORD):
    """`manifold user create --role ROLE|none` → User. role=None passes no --role at all."""
    email = email or f"{uniq('u')}@example.com"
    args = ["user", "create", "--email", email, "--password-stdin", "--workspace", workspace]
    if role is not None:
        args += ["--role", role]
    p = srv.cli(*args, input=password + "\n")
    m = re.match(r"^users/(\S+)\n$", p.stdout)
    assert m, repr(p.stdout)
    return User(m.group(1), email, password)


def policies_path(role, ws=WS):
    return f"/v1beta/workspaces/{ws}/roles/{role}/policies"


def grant(srv, role, subject, resource, token="__default__", ws=WS):
    """POST a policy; returns the created policy."""
    if isinstance(subject, User):
        subject = subject.name
    r = srv.post(policies_path(role, ws), token=token,
                 json={"policy": {"subject": subject, "resource": resource}})
    return assert_ok(r)


def name_path(name):
    """A resource name → its API path."""
    return "/v1beta/" + name


def token_body(scope="workspace", workspaces=(WS,), description=None):
    return {"access_token": {"description": description or uniq("tok "),
                             "scopes": scope,
                             "workspace_names": [f"workspaces/{w}" for w in workspaces]}}


def basic_token_request(srv, email, password, scope="workspace", workspaces=(WS,), description=None):
    return srv.post("/v1beta/access-tokens", token=None, auth=(email, password),
                    json=token_body(scope, workspaces, description))


def token_id(name):
    m = re.match(r"^access-tokens/(\d+)$", name)
    assert m, name
    return int(m.group(1))


class Principal:
    """Something that sends requests: a token, maybe of a user."""

    def __init__(self, label, token, token_name=None, user=None):
        self.label = label
        self.token = token
        self.token_name = token_name
        self.user = user

    @property
    def token_id(self):
        return token_id(self.token_name)

    def __repr__(self):
        return f"Principal({self.label})"


def user_principal(srv, label, user, scope="workspace", workspaces=(WS,)):
    """A token of user (made with HTTP Basic)."""
    b = assert_ok(basic_token_request(srv, user.email, user.password, scope, workspaces,
                                      description=f"{label} token"))
    assert TOKEN_RE.match(b["token"]), b
    return Principal(label, b["token"], b["name"], user)


def principal_with(srv, label, role, resource=WS_NAME, scope="workspace"):
    """A new user holding role on resource (granted through the API), with a token."""
    u = new_user(srv, role="none")
    grant(srv, role, u, resource)
    return user_principal(srv, label, u, scope)


def admin_token_name(srv, description, lister_token):
    """The name (access-tokens/N) of an admin-command token, found by its description in
    the list a token with write scope (lister_token) sees."""
    for t in list_all(srv, "/v1beta/access-tokens", "access_tokens", token=lister_token):
        if t["description"] == description:
            return t["name"]
    raise AssertionError(f"token {description!r} not in the list")


def admin_principal(srv, label, workspace=WS, scope="workspace", lister_token=None):
    """A token made by `manifold token create` (belongs to no user)."""
    desc = uniq(f"{label} ")
    tok = srv.create_token(workspace=workspace, scope=scope, description=desc)
    name = admin_token_name(srv, desc, lister_token or (tok if scope == "workspace" else srv.token))
    return Principal(label, tok, name, None)


# ---- lists --------------------------------------------------------------------------------

def list_all(srv, path, key, page_size=None, token="__default__", params=None):
    """Follows next_page_token to the end; returns the items."""
    items, tok, pages = [], "", 0
    while True:
        q = dict(params or {})
        if page_size is not None:
            q["page_size"] = str(page_size)
        if tok:
            q["page_token"] = tok
        url = path + ("?" + urllib.parse.urlencode(q) if q else "")
        b = assert_ok(srv.get(url, token=token))
        assert set(b) == {key, "next_page_token"}, b
        assert isinstance(b["next_page_token"], str), b
        if page_size is not None:
            assert len(b[key]) <= page_size, b
        items.extend(b[key])
        pages += 1
        assert pages < 500, "pagination does not terminate"
        tok = b["next_page_token"]
        if not tok:
            return items
        assert b[key], "a non-final page must not be empty"


def policies_of(srv, role="-", token="__default__"):
    return list_all(srv, policies_path(role), "policies", token=token)


def invites(srv, token="__default__"):
    return list_all(srv, f"{WSP}/invites", "invites", token=token)


def users(srv, token="__default__"):
    return list_all(srv, f"{WSP}/users", "users", token=token)


# ---- resources ----------------------------------------------------------------------------

def _catalog_dests():
    with open(f"{CATALOG}/destinations.json", encoding="utf-8") as f:
        return {r["name"].rsplit("/", 1)[1]: r for r in json.load(f)}


CATALOG_DESTS = _catalog_dests()


def dests_without_required(n):
    out = []
    for k in sorted(CATALOG_DESTS):
        r = CATALOG_DESTS[k]
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", k):
            continue
        if r["settings"] and not any(s.get("required") for s in r["settings"]) and \
                not any(s.get("type") == "password" for s in r["settings"]):
            out.append(k)
            if len(out) == n:
                return out
    raise AssertionError("not enough catalog destinations")


# A catalog destination whose only setting is a password (write-only, masked on read).
SECRET_DEST = "actions-accoil-analytics"
SECRET_KEY = "api_key"
assert [s["type"] for s in CATALOG_DESTS[SECRET_DEST]["settings"]] == ["password"]


def src_name(slug, ws=WS):
    return f"workspaces/{ws}/sources/{slug}"


def src_path(slug, ws=WS):
    return f"/v1beta/workspaces/{ws}/sources/{slug}"


def dst_name(src, dest, ws=WS):
    return f"{src_name(src, ws)}/destinations/{dest}"


def dst_path(src, dest, ws=WS):
    return f"{src_path(src, ws)}/destinations/{dest}"


def plan_path(plan_id, ws=WS):
    return f"/v1beta/workspaces/{ws}/tracking-plans/{plan_id}"


def source_body(slug, ws=WS):
    return {"source": {"name": src_name(slug, ws), "catalog_name": "catalog/sources/javascript"}}


def mk_source(srv, slug=None, token="__default__", ws=WS):
    slug = slug or uniq("s")
    assert_ok(srv.post(f"/v1beta/workspaces/{ws}/sources", token=token, json=source_body(slug, ws)))
    return slug


def dest_body(src, dest, ws=WS, **fields):
    d = {"name": dst_name(src, dest, ws)}
    d.update(fields)
    return {"destination": d}


def mk_dest(srv, src, dest, token="__default__", ws=WS, **fields):
    return assert_ok(srv.post(f"{src_path(src, ws)}/destinations", token=token,
                              json=dest_body(src, dest, ws, **fields)))


FILTER = {"if": "all", "actions": [{"type": "drop_event"}], "title": "drop everything", "enabled": True}


def mk_filter(srv, src, dest, token="__default__", **over):
    f = dict(FILTER, **over)
    b = assert_ok(srv.post(f"{dst_path(src, dest)}/filters", token=token, json={"filter": f}))
    return b


def mk_plan(srv, display_name=None, token="__default__"):
    b = assert_ok(srv.post(f"{WSP}/tracking-plans", token=token,
                           json={"tracking_plan": {"display_name": display_name or uniq("plan ")}}))
    return b


def plan_id(plan):
    return plan["name"].rsplit("/", 1)[1]


def connect(srv, pid, slug, token="__default__"):
    return assert_ok(srv.post(f"{plan_path(pid)}/source-connections", token=token,
                              json={"source_name": src_name(slug)}))


def mk_invite(srv, email=None, role="source-read-only", resource=WS_NAME, token="__default__"):
    email = email or f"{uniq('i')}@example.com"
    return assert_ok(srv.post(f"{WSP}/invites", token=token,
                              json={"invite": {"email": email,
                                               "policies": [{"role": role, "resource": resource}]}}))


# ---- the audit trail ------------------------------------------------------------------------

AUDIT_KEYS = {"id", "time", "actor", "access_token", "action", "resource", "before", "after", "request_id"}


def audit_path(ws=WS):
    return f"/v1beta/workspaces/{ws}/audit-events"


def audit_page(srv, token="__default__", ws=WS, **params):
    q = urllib.parse.urlencode(params)
    return srv.get(audit_path(ws) + ("?" + q if q else ""), token=token)


def is_cli_event(e):
    """Entries written by the admin commands (manifold user create / token create), which
    fixtures run between API calls; their request id starts with "cli-"."""
    return e["actor"] == "admin" and e["request_id"].startswith("cli-") and e["access_token"] is None


def audit_events(srv, token="__default__", ws=WS, page_size=100, include_cli=False, **params):
    """Every audit event (all pages), newest first; without the admin commands' entries
    unless include_cli."""
    evs = list_all(srv, audit_path(ws), "audit_events", page_size=page_size, token=token, params=params)
    for e in evs:
        check_event_shape(e)
    return [e for e in evs if include_cli or not is_cli_event(e)]


def latest_event_id(srv, ws=WS):
    b = assert_ok(audit_page(srv, ws=ws, page_size=1))
    return int(b["audit_events"][0]["id"]) if b["audit_events"] else 0


def events_since(srv, last_id, ws=WS, token="__default__"):
    """Events newer than last_id, oldest first."""
    out = []
    for e in audit_events(srv, ws=ws, token=token):
        if int(e["id"]) <= last_id:
            break
        out.append(e)
    return list(reversed(out))


def check_event_shape(e):
    assert set(e) == AUDIT_KEYS, e
    assert isinstance(e["id"], str) and re.match(r"^\d+$", e["id"]), e
    assert isinstance(e["time"], str) and RFC3339_Z.match(e["time"]), e
    for k in ("actor", "action", "resource", "request_id"):
        assert isinstance(e[k], str) and e[k], e
    assert e["access_token"] is None or re.match(r"^access-tokens/\d+$", e["access_token"]), e
    for k in ("before", "after"):
        assert e[k] is None or isinstance(e[k], dict), e


__all__ = [n for n in dir() if not n.startswith("__")] + ["assert_error", "assert_ok"]

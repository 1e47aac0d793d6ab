"""Fixtures for the black-box API tests: they start the real `manifold serve` binary on a
free port against a fresh database and stop it with SIGTERM at teardown.

Environment (set by tests/run.sh; the defaults suit a developer running pytest by hand):
  MANIFOLD_TEST_BIN       the binary (default build/asan/manifold)
  MANIFOLD_TEST_BACKEND   sqlite | postgres (default sqlite)
  MANIFOLD_TEST_PG        postgres only: URL of a superuser connection to the throwaway
                          cluster's `postgres` database; each server gets a fresh database
  MANIFOLD_TEST_PSQL      the psql binary (default: psql)

Every server's exit status must be 0 after SIGTERM and its stderr must hold no sanitizer
report; so must the stderr of every admin command (`manifold token ...`) a test runs.
"""
import contextlib
import ctypes
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
import weakref

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("MANIFOLD_TEST_BIN") or str(ROOT / "build" / "asan" / "manifold")
CATALOG = str(ROOT / "data" / "catalog")
BACKEND = os.environ.get("MANIFOLD_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("MANIFOLD_TEST_PG", "")
PSQL = os.environ.get("MANIFOLD_TEST_PSQL", "psql")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
START_TIMEOUT = 60  # an ASan build on a loaded CI machine can be slow to start
DEFAULT_WS = "myworkspace"

# Tests that need several processes on one database (only PostgreSQL can be shared):
# decorate a test, or set `pytestmark = postgres_only` in a module.
postgres_only = pytest.mark.skipif(BACKEND != "postgres",
                                   reason="several processes share one database only on PostgreSQL")

if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"MANIFOLD_TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")
if BACKEND == "postgres" and not PG_ADMIN_URL:
    raise RuntimeError("MANIFOLD_TEST_BACKEND=postgres needs MANIFOLD_TEST_PG")


def _die_with_parent():
    """In the child before exec: SIGKILL when pytest goes away (a killed or timed-out
    run must not leave servers behind)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, Linux only
        pass


def sanitizer_lines(text):
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sql_quote(s):
    return "'" + str(s).replace("'", "''") + "'"


# ---- databases ------------------------------------------------------------------------


class Database:
    """A fresh, empty database for one server (and the admin commands run against it)."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        if BACKEND == "sqlite":
            self.url = str(self.workdir / "manifold.db")
            # SQLite: the bootstrap token is written beside the database file.
            self.token_file = self.workdir / "bootstrap-token"
        else:
            self.name = "mt_" + uuid.uuid4().hex[:16]
            self._psql(PG_ADMIN_URL, f"CREATE DATABASE {self.name}")
            u = urllib.parse.urlsplit(PG_ADMIN_URL)
            self.url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + self.name, u.query, u.fragment))
            # PostgreSQL: ./var/bootstrap-token relative to the server's cwd (the workdir).
            self.token_file = self.workdir / "var" / "bootstrap-token"

    @staticmethod
    def _psql(url, statement):
        p = subprocess.run([PSQL, url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"psql failed ({statement}): {p.stderr}")
        return p.stdout

    def execute(self, statement, params=()):
        """Runs one SQL statement directly on the database (test set-up only)."""
        if BACKEND == "sqlite":
            con = sqlite3.connect(self.url, timeout=30)
            try:
                con.execute(statement, params)
                con.commit()
            finally:
                con.close()
        else:
            # psql takes no bound parameters here: inline them, quoted (test-controlled values).
            parts = statement.split("?")
            assert len(parts) == len(params) + 1
            text = parts[0]
            for p, rest in zip(params, parts[1:]):
                text += sql_quote(p) + rest
            self._psql(self.url, text)

    def drop(self):
        if BACKEND == "postgres":
            try:
                self._psql(PG_ADMIN_URL, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            except RuntimeError:
                pass


# ---- servers --------------------------------------------------------------------------


class Server:
    """One `manifold serve` process on its own database and work directory."""

    def __init__(self, workdir, args=(), db=None, make_var=True):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if make_var:
            # With PostgreSQL the bootstrap token goes to ./var/bootstrap-token; the server
            # does not create ./var itself when --key-file points elsewhere.
            (self.workdir / "var").mkdir(exist_ok=True)
        self.db = db or Database(self.workdir)
        self.own_db = db is None
        self.key_file = str(self.workdir / "manifold.key")
        self.args = list(args)
        self.proc = None
        self.port = None
        self.returncode = None
        self.token = None
        self.stderr_path = self.workdir / f"server-{uuid.uuid4().hex[:6]}.stderr"

    # -- life cycle --
    def start(self):
        last = ""
        for _ in range(8):
            self.port = free_port()
            cmd = [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--database", self.db.url,
                   "--catalog", CATALOG, "--key-file", self.key_file] + self.args
            self.err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self.err,
                                         preexec_fn=_die_with_parent)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = requests.get(self.url("/healthz"), timeout=2)
                    if r.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                break
            self.err.close()
            last = self.stderr()
            if "cannot listen" not in last:  # a real start-up failure, not a port race
                raise RuntimeError(f"manifold serve exited with {self.proc.returncode}:\n{last}")
        else:
            raise RuntimeError(f"manifold serve could not bind a port:\n{last}")
        if self.proc.poll() is not None or not self._healthy():
            self.kill()
            raise RuntimeError(f"manifold serve did not become healthy:\n{self.stderr()}")
        if self.token is None and self.db.token_file.exists():
            self.token = self.db.token_file.read_text().strip()
        return self

    def _healthy(self):
        try:
            return requests.get(self.url("/healthz"), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig and waits; returns the exit status (idempotent)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "did not exit within %ss of %s" % (timeout, sig.name)
                self.err.close()
                self.proc = None
                return self.returncode
        self.returncode = self.proc.returncode
        self.err.close()
        self.proc = None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_clean_exit(self):
        """Stops the server (if still running) and asserts exit 0 and no sanitizer report."""
        rc = self.stop()
        text = self.stderr()
        bad = sanitizer_lines(text)
        assert not bad, f"sanitizer report in server stderr:\n{text[-20000:]}"
        assert rc == 0, f"server exit status {rc!r} after SIGTERM:\n{text[-5000:]}"

    # -- helpers --
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def session(self, token=None):
        s = requests.Session()
        if token is not None:
            s.headers["Authorization"] = f"Bearer {token}"
        return s

    def get(self, path, token="__default__", **kw):
        return self.request("GET", path, token=token, **kw)

    def post(self, path, token="__default__", **kw):
        return self.request("POST", path, token=token, **kw)

    def delete(self, path, token="__default__", **kw):
        return self.request("DELETE", path, token=token, **kw)

    def request(self, method, path, token="__default__", headers=None, **kw):
        h = dict(headers or {})
        if token == "__default__":
            token = self.token
        if token is not None and "Authorization" not in h and "auth" not in kw:
            h["Authorization"] = f"Bearer {token}"
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url(path), headers=h, **kw)

    def cli(self, *args, input=None, check=True):
        """Runs an admin sub-command on this server's database; asserts no sanitizer report."""
        cmd = [BIN] + list(args) + ["--database", self.db.url, "--key-file", self.key_file]
        p = subprocess.run(cmd, cwd=self.workdir, input=input if input is not None else "",
                           capture_output=True, text=True, timeout=120)
        bad = sanitizer_lines(p.stderr)
        assert not bad, f"sanitizer report from {' '.join(args)}:\n{p.stderr}"
        if check:
            assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}: {p.stderr}"
        return p

    def create_token(self, workspace=DEFAULT_WS, scope="workspace", description="test token"):
        """A token made with `manifold token create` (prints only the token)."""
        p = self.cli("token", "create", "--workspace", workspace, "--scope", scope,
                     "--description", description)
        tok = p.stdout.strip()
        assert TOKEN_RE.match(tok), repr(p.stdout)
        return tok

    def add_workspace(self, slug, ws_id, display_name="Other Workspace"):
        """Inserts a second workspace straight into the database (there is no API for it)."""
        self.db.execute("INSERT INTO workspaces (id, slug, display_name, create_time) VALUES (?, ?, ?, ?)",
                        (ws_id, slug, display_name, "2024-01-02T03:04:05Z"))

    def add_user(self, email, password, workspace=DEFAULT_WS, role="workspace-owner"):
        """`manifold user create`, an owner of the workspace unless role says otherwise."""
        p = self.cli("user", "create", "--email", email, "--password-stdin", "--workspace", workspace,
                     "--role", role, input=password + "\n")
        assert re.match(r"^users/\S+\n$", p.stdout), p.stdout
        return p.stdout.strip()


class ServerFactory:
    """Starts servers on demand; every one is stopped and checked at teardown."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.servers = []

    def __call__(self, *args, db=None, start=True, make_var=True, peer=None):
        """peer: another Server whose database, key file and bootstrap token this one shares
        (one more process of the same service; PostgreSQL only)."""
        d = pathlib.Path(tempfile.mkdtemp(prefix="srv-", dir=self.base))
        s = Server(d, args, db=peer.db if peer else db, make_var=make_var)
        if peer:
            s.own_db = False
            s.key_file = peer.key_file
            s.token = peer.token
        self.servers.append(s)
        if not start:
            return s
        try:
            return s.start()
        except BaseException:
            s.kill()
            raise

    def teardown(self):
        errors = []
        for s in self.servers:
            try:
                s.check_clean_exit()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                s.kill()
        for s in self.servers:
            if s.own_db:
                s.db.drop()
        assert not errors, "\n\n".join(errors)


@contextlib.contextmanager
def environ(**kv):
    """Sets environment variables (values as str) for the with-block — a server started inside
    inherits them — and restores the previous values (or their absence) afterwards."""
    old = {k: os.environ.get(k) for k in kv}
    os.environ.update({k: str(v) for k, v in kv.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def module_server(tmp_path_factory, name, *args, env=None, start=None):
    """The body of a module-scoped server fixture (`yield from module_server(...)`): a
    ServerFactory in a fresh directory `name`; start(factory) — by default factory(*args) —
    with the variables of env set; yields what it returns and tears the factory down (every
    server stopped and checked) afterwards. A failed set-up kills the servers it started and
    drops their databases before the error propagates."""
    f = ServerFactory(tmp_path_factory.mktemp(name))
    try:
        with environ(**(env or {})):
            srv = start(f) if start else f(*args)
    except BaseException:
        for s in f.servers:  # a failed set-up must not leave servers running
            s.kill()
        for s in f.servers:  # (all killed first: processes of one cluster share a database)
            if s.own_db:
                s.db.drop()
        raise
    try:
        yield srv
    finally:
        f.teardown()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server per test module, rate limit off so tests never trip it by accident."""
    def start(f):
        srv = f("--rate-limit", "0")
        assert srv.token and TOKEN_RE.match(srv.token), "no bootstrap token was written"
        return srv
    yield from module_server(tmp_path_factory, "mod", start=start)


@pytest.fixture
def start_server(tmp_path_factory):
    """start_server(*flags) → a fresh server on a fresh database, stopped at teardown."""
    f = ServerFactory(tmp_path_factory.mktemp("fn"))
    yield f
    f.teardown()


def npm_ci(pkg_dir, purpose):
    """The node binary, with the packages pinned in pkg_dir's package-lock.json installed (npm ci
    when node_modules is missing or older than the lock). Fails — not skips — without node and
    npm: purpose names the tests that need them."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        pytest.fail(f"node and npm are needed for {purpose} (scripts/install-deps.sh test installs them)")
    stamp = pkg_dir / "node_modules" / ".package-lock.json"
    lock = pkg_dir / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=pkg_dir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"npm ci in {pkg_dir.relative_to(ROOT)} failed:\n{p.stdout}\n{p.stderr}"
    return node


# ---- assertions -----------------------------------------------------------------------


def assert_ok(r):
    """A success: 200, JSON object body, and never a top-level "error" key (spec §1.1)."""
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict), body
    assert "error" not in body, body
    return body


def assert_error(r, status, code):
    """An error: the given status and the spec's {"error": "<text>", "code": N} body."""
    assert r.status_code == status, (
        f"{r.request.method} {r.request.url}: want {status}, got {r.status_code} {r.text[:500]}")
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "code"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert type(body["code"]) is int and body["code"] == code, body
    return body


# ---- raw HTTP over sockets ------------------------------------------------------------


class RawResponse:
    def __init__(self, status, headers, body, closed):
        self.status = status
        self.headers = headers
        self.body = body
        self.closed = closed

    def json(self):
        return json.loads(self.body)


def connect(port, timeout=10, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


_leftover = weakref.WeakKeyDictionary()  # bytes read past one response (pipelining)


def read_response(s, timeout=10):
    """Reads one HTTP response from socket s. Returns RawResponse, or None when the
    server closed (or reset) the connection without answering. Raises TimeoutError when
    nothing complete arrives within timeout."""
    s.settimeout(timeout)
    data = _leftover.pop(s, b"")
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None if not data else RawResponse(0, {}, data, True)
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    closed = False
    try:
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            rest += chunk
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    if len(rest) > n:
        _leftover[s] = rest[n:]
    return RawResponse(status, headers, rest[:n], closed)


def raw_request(port, data, timeout=10):
    """Sends raw bytes on a fresh connection and reads one response (None if closed)."""
    s = connect(port, timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(s, timeout)
    finally:
        s.close()


def wait_closed(s, limit):
    """Reads (discarding) until the peer closes; returns seconds waited, or None if the
    connection was still open after `limit` seconds."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            chunk = s.recv(65536)
            if not chunk:
                return time.monotonic() - start
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, OSError):
            return time.monotonic() - start
    return None

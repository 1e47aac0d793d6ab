"""Crash safety: concurrent writers, `kill -9` of the server in the middle, restart on the
same database. Every create (and update) that was answered 200 before the kill must be
there afterwards, exactly as answered, and the database must pass its integrity checks
(SQLite: PRAGMA integrity_check; PostgreSQL: pg_amcheck).

Runs on SQLite always, and on PostgreSQL too when that is the selected backend. A killed
server leaves no sanitizer report (it had no chance to write one); the last, restarted
server of each test is stopped with SIGTERM and checked by the fixtures as usual."""
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from conftest import BACKEND, PSQL, assert_ok
from helpers_resources import (SOURCES, config_values, dest_body, dst_coll, dst_path, orphans, patch, sc_defaults,
                               sc_path, source_body, src_name, src_path)

BACKENDS = ["sqlite"] + (["postgres"] if BACKEND == "postgres" else [])
THREADS = 8
ROUNDS = 5


class SqliteDb:
    """A SQLite database for a server, whatever backend the suite runs on."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.url = str(self.workdir / "manifold.db")
        self.token_file = self.workdir / "bootstrap-token"

    def drop(self):
        pass


class Load:
    """Writer threads: each creates sources (every third with a destination) and keeps
    bumping a counter in the config of a destination it owns. Records what was answered 200."""

    def __init__(self, srv, rnd, owned, kill_at):
        self.srv = srv
        self.proc = srv.proc
        self.kill_at = kill_at  # SIGKILL the server as soon as this many creates were answered
        self.killed = threading.Event()
        self.rnd = rnd
        self.owned = owned  # thread → source slug whose google-analytics destination it updates
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sources = {}   # slug → response body
        self.dests = {}     # slug → response body
        self.updates = {}   # thread → highest counter answered 200
        self.attempted = {}  # thread → highest counter sent
        self.errors = []

    def _post(self, path, body):
        return requests.post(self.srv.url(path), json=body, timeout=20,
                             headers={"Authorization": f"Bearer {self.srv.token}"})

    def worker(self, t):
        i = 0
        counter = self.updates.get(t, 0)
        try:
            while not self.stop.is_set():
                slug = f"k{self.rnd}-{t}-{i:04d}"
                r = self._post(SOURCES, source_body(slug, labels={"t": str(t), "i": str(i)}))
                if r.status_code == 200:
                    with self.lock:
                        self.sources[slug] = r.json()
                        # Kill right after an answer: the moment an early answer (one sent before
                        # its commit) would be lost.
                        if len(self.sources) >= self.kill_at and not self.killed.is_set():
                            self.killed.set()
                            self.proc.send_signal(signal.SIGKILL)
                else:
                    self.errors.append((slug, r.status_code, r.text[:200]))
                    return
                if i % 3 == 0:
                    r = self._post(dst_coll(slug), dest_body(slug, "google-analytics", enabled=True,
                                                            config=[{"name": "trackingId", "value": f"UA-{t}-{i}"}]))
                    if r.status_code == 200:
                        with self.lock:
                            self.dests[slug] = r.json()
                    else:
                        self.errors.append((slug, r.status_code, r.text[:200]))
                        return
                counter += 1
                self.attempted[t] = counter
                r = requests.patch(self.srv.url(dst_path(self.owned[t], "google-analytics")), timeout=20,
                                   headers={"Authorization": f"Bearer {self.srv.token}"},
                                   json={"destination": {"config": [{"name": "identifyEventName", "value": str(counter)}]},
                                         "update_mask": {"paths": ["destination.config"]}})
                if r.status_code == 200:
                    assert config_values(r.json())["identifyEventName"] == str(counter)
                    with self.lock:
                        self.updates[t] = counter
                else:
                    self.errors.append(("update", r.status_code, r.text[:200]))
                    return
                i += 1
        except requests.RequestException:
            return  # the server died under us: what was not answered is not recorded


def sqlite_integrity(path):
    con = sqlite3.connect(path, timeout=30)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        con.close()
    return rows, fk


def pg_amcheck(db_url):
    exe = None
    for cand in (os.path.join(os.path.dirname(shutil.which(PSQL) or PSQL), "pg_amcheck"),
                 "/usr/lib/postgresql/15/bin/pg_amcheck", shutil.which("pg_amcheck")):
        if cand and os.path.exists(cand):
            exe = cand
            break
    assert exe, "pg_amcheck not found"
    p = subprocess.run([exe, "--install-missing", "--heapallindexed", "--rootdescend", "--parent-check", db_url],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    out = [l for l in (p.stdout + p.stderr).splitlines()
           if not l.startswith('NOTICE:  extension "amcheck" already exists')]
    return p.returncode, "\n".join(out)


def check_integrity(srv, backend):
    if backend == "sqlite":
        rows, fk = sqlite_integrity(srv.db.url)
        assert rows == [("ok",)], rows
        assert fk == [], fk
    else:
        rc, out = pg_amcheck(srv.db.url)
        assert rc == 0 and out.strip() == "", f"pg_amcheck exit {rc}:\n{out}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_writes_survive_kill_9(start_server, tmp_path, backend):
    db = SqliteDb(tmp_path / "sqlite-db") if backend == "sqlite" else None
    srv = start_server("--rate-limit", "0", db=db)
    assert srv.token
    # Each writer thread owns one destination whose config it keeps updating.
    owned = {}
    for t in range(THREADS):
        slug = f"owner-{t}"
        assert_ok(srv.post(SOURCES, json=source_body(slug)))
        assert_ok(srv.post(dst_coll(slug), json=dest_body(slug, "google-analytics")))
        owned[t] = slug
    all_sources, all_dests, acked_updates, attempted = {}, {}, {}, {}
    for rnd in range(ROUNDS):
        load = Load(srv, rnd, owned, kill_at=20 + 7 * rnd)
        load.updates = dict(acked_updates)
        threads = [threading.Thread(target=load.worker, args=(t,), daemon=True) for t in range(THREADS)]
        for th in threads:
            th.start()
        # The writers kill -9 the server themselves, with requests in flight.
        assert load.killed.wait(60), "the load never reached the kill point"
        srv.kill()  # reaps the killed process
        load.stop.set()
        for th in threads:
            th.join(60)
            assert not th.is_alive()
        assert not load.errors, load.errors[:5]
        assert len(load.sources) >= 10, "the load never got going"
        print(f"round {rnd}: {len(load.sources)} sources, {len(load.dests)} destinations, updates {load.updates}, attempted {load.attempted}")
        all_sources.update(load.sources)
        all_dests.update(load.dests)
        acked_updates.update(load.updates)
        for t, c in load.attempted.items():
            attempted[t] = max(attempted.get(t, 0), c)
        if backend == "sqlite":
            check_integrity(srv, backend)  # straight after the crash, before the server recovers it
        srv.start()
        # Every acknowledged create is there, exactly as it was answered.
        for slug, body in all_sources.items():
            assert assert_ok(srv.get(src_path(slug))) == body, slug
            assert assert_ok(srv.get(sc_path(slug))) == sc_defaults(slug)
        for slug, body in all_dests.items():
            assert assert_ok(srv.get(dst_path(slug, "google-analytics"))) == body, slug
        # Every acknowledged update is there (or a later one that was sent but not answered).
        for t, slug in owned.items():
            got = int(config_values(assert_ok(srv.get(dst_path(slug, "google-analytics"))))["identifyEventName"] or 0)
            assert acked_updates.get(t, 0) <= got <= attempted.get(t, 0), (t, acked_updates.get(t), got, attempted.get(t))
        # The server still works normally on the recovered database.
        assert_ok(srv.post(SOURCES, json=source_body(f"after-crash-{rnd}")))
        assert orphans(srv) == []
    listed = []
    tok = ""
    while True:
        b = assert_ok(srv.get(SOURCES + "?page_size=100" + (f"&page_token={requests.utils.quote(tok, safe='')}" if tok else "")))
        listed += [s["name"] for s in b["sources"]]
        tok = b["next_page_token"]
        if not tok:
            break
    assert set(src_name(s) for s in all_sources) <= set(listed)
    assert len(listed) == len(set(listed))
    # Integrity of the database after the crashes (and a clean stop for SQLite).
    if backend == "sqlite":
        assert srv.stop() == 0
    check_integrity(srv, backend)

"""Intake crash safety: a stream of /v1/batch requests from several threads, `kill -9` of
the server right after an answer, restart on the same database. Every messageId of every
batch answered 200 must be in the event log (and a retry of it is a duplicate, not a
second copy). Runs on SQLite always and on PostgreSQL when that is the selected backend
(the pattern of test_crash.py)."""
import base64
import signal
import threading
import uuid

import pytest
import requests

from conftest import BACKEND, assert_ok
from helpers_resources import SOURCES, db_rows, source_body, src_path
from test_crash import SqliteDb, check_integrity

BACKENDS = ["sqlite"] + (["postgres"] if BACKEND == "postgres" else [])
THREADS = 6
ROUNDS = 3
BATCH = 20


class Stream:
    def __init__(self, srv, key, kill_at):
        self.srv, self.key, self.kill_at = srv, key, kill_at
        self.proc = srv.proc
        self.killed = threading.Event()
        self.lock = threading.Lock()
        self.acked = []      # messageIds of batches answered 200
        self.batches = 0
        self.errors = []
        self.auth = "Basic " + base64.b64encode((key + ":").encode()).decode()

    def worker(self, t):
        s = requests.Session()
        try:
            while not self.killed.is_set():
                ids = [f"crash-{t}-{uuid.uuid4().hex}" for _ in range(BATCH)]
                body = {"batch": [{"type": "track", "userId": f"u{t}", "event": "Crash", "messageId": m,
                                   "properties": {"i": i, "pad": "p" * 800}} for i, m in enumerate(ids)]}
                r = s.post(self.srv.url("/v1/batch"), json=body, headers={"Authorization": self.auth}, timeout=30)
                if r.status_code != 200:
                    self.errors.append((r.status_code, r.text[:200]))
                    return
                with self.lock:
                    self.acked += ids
                    self.batches += 1
                    if self.batches >= self.kill_at and not self.killed.is_set():
                        self.killed.set()
                        self.proc.send_signal(signal.SIGKILL)
        except requests.RequestException:
            return  # the server died under us: unanswered batches are not recorded


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_events_survive_kill_9(start_server, tmp_path, backend):
    db = SqliteDb(tmp_path / "sqlite-db") if backend == "sqlite" else None
    srv = start_server("--rate-limit", "0", db=db)
    slug = "crash" + uuid.uuid4().hex[:6]
    key = assert_ok(srv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    acked = []
    for rnd in range(ROUNDS):
        st = Stream(srv, key, kill_at=15 + 10 * rnd)
        threads = [threading.Thread(target=st.worker, args=(t,), daemon=True) for t in range(THREADS)]
        for th in threads:
            th.start()
        assert st.killed.wait(120), f"the stream never reached the kill point: {st.errors[:3]}"
        srv.kill()
        for th in threads:
            th.join(60)
        assert not st.errors, st.errors[:5]
        acked += st.acked
        if backend == "sqlite":
            check_integrity(srv, backend)
        srv.start()
        stored = {r[0] for r in db_rows(srv, "SELECT message_id FROM intake_events WHERE status = 'ACCEPTED'")}
        missing = [m for m in acked if m not in stored]
        assert not missing, f"round {rnd}: {len(missing)} acknowledged events lost, e.g. {missing[:3]}"
        # Counters moved in the same transactions as the events they count.
        s = assert_ok(srv.get(src_path(slug) + "/events:summary"))
        assert s["accepted"] == len(stored), (s, len(stored))
    # A client retrying an acknowledged batch after the crash gets 200 and no second copy.
    m = acked[0]
    r = requests.post(srv.url("/v1/batch"), json={"writeKey": key, "batch": [
        {"type": "track", "userId": "u", "event": "Crash", "messageId": m}]}, timeout=30)
    assert r.status_code == 200
    assert db_rows(srv, f"SELECT status FROM intake_events WHERE message_id = '{m}' ORDER BY id") == \
        [("ACCEPTED",), ("DUPLICATE",)]
    if backend == "sqlite":
        assert srv.stop() == 0
    check_integrity(srv, backend)

"""Several `manifold serve` processes on one PostgreSQL database (same --key-file) are one
service (docs/scaling.md): a write on one is read at once on the others; revoked tokens,
removed roles, deleted sources and changed schema configs take effect everywhere within a
second (LISTEN/NOTIFY, with polling of a change counter when the listener is down);
conflicts, If-Match races and Idempotency-Key replays behave as on one process; the rate
limit per token is global; delivery work is shared (a lease per destination cursor) and
survives kill -9 of a process at least once, never by two processes at once.

PostgreSQL only: SQLite is one process's database."""
import concurrent.futures
import json
import signal
import threading
import time
import uuid

import pytest
import requests

from conftest import assert_error, assert_ok, environ, module_server, postgres_only
from helpers_iam import (WS_NAME, assert_denied, assert_unauthenticated, grant, name_path,
                         new_user, token_body, user_principal)
from helpers_resources import SOURCES, create_dest, sc_path, source_body, src_name, src_path
from webhook_receiver import Receiver

pytestmark = postgres_only

TRACK = {"userId": "u", "event": "E"}


def uniq(prefix="s"):
    return prefix + uuid.uuid4().hex[:10]


def start_cluster(factory, n=3, args=("--rate-limit", "0", "--strict-write-keys"), env=None):
    """n processes on one fresh database, sharing its key file and bootstrap token."""
    with environ(**(env or {})):
        first = factory(*args)
        return [first] + [factory(*args, peer=first) for _ in range(n - 1)]


def send(srv, key, body=TRACK):
    return requests.post(srv.url("/v1/track"), data=json.dumps(body), auth=(key, ""), timeout=30)


def within(seconds, probe):
    """Calls probe() until it returns true; the seconds it took, or None past the limit."""
    t0 = time.monotonic()
    while True:
        if probe():
            return time.monotonic() - t0
        if time.monotonic() - t0 > seconds:
            return None
        time.sleep(0.01)


def new_source(srv, slug=None):
    slug = slug or uniq()
    b = assert_ok(srv.post(SOURCES, json=source_body(slug)))
    return slug, b["source"]["write_keys"][0] if "source" in b else b["write_keys"][0]


def sc_patch(allow):
    return {"schema_config": {"allow_unplanned_track_events": allow},
            "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three processes shared by the module's tests (each test makes its own resources)."""
    yield from module_server(tmp_path_factory, "cluster", start=start_cluster)


# ---- read-after-write --------------------------------------------------------------------


def test_a_write_on_one_process_is_read_at_once_on_the_others(cluster):
    a, b, c = cluster
    for i in range(5):
        writer, readers = cluster[i % 3], [s for s in cluster if s is not cluster[i % 3]]
        slug = uniq()
        created = assert_ok(writer.post(SOURCES, json=source_body(slug, labels={"i": str(i)})))
        for r in readers:  # no wait: the very next request
            assert assert_ok(r.get(src_path(slug))) == created
        upd = assert_ok(readers[0].request("PATCH", sc_path(slug), json=sc_patch(i % 2 == 0)))
        assert assert_ok(readers[1].get(sc_path(slug))) == upd
        assert assert_ok(writer.get(sc_path(slug))) == upd
        assert_ok(readers[1].delete(src_path(slug)))
        for s in cluster:
            assert_error(s.get(src_path(slug)), 404, 5)
    # Tokens created on one process authenticate on the others at once.
    t = assert_ok(a.post("/v1beta/access-tokens", json=token_body()))
    for s in (b, c):
        assert_ok(s.get("/v1beta/workspaces", token=t["token"]))


# ---- invalidation of every cache -----------------------------------------------------------


def test_a_revoked_token_stops_everywhere_within_a_second(cluster):
    a, b, c = cluster
    for revoker in cluster:
        t = assert_ok(revoker.post("/v1beta/access-tokens", json=token_body()))
        for s in cluster:  # every process has it cached
            assert_ok(s.get("/v1beta/workspaces", token=t["token"]))
        assert_ok(revoker.delete(name_path(t["name"])))
        assert_unauthenticated(revoker.get("/v1beta/workspaces", token=t["token"]))
        for s in cluster:
            took = within(1.0, lambda: s.get("/v1beta/workspaces", token=t["token"]).status_code == 401)
            assert took is not None, f"revoked token still works on port {s.port} after 1 s"


def test_a_role_removed_on_one_process_denies_on_another_within_a_second(cluster):
    a, b, c = cluster
    user = new_user(a, role="none")
    pol = grant(a, "source-admin", user, WS_NAME)
    p = user_principal(b, "member", user)
    slug, _ = new_source(a)
    for s in cluster:
        assert_ok(s.get(src_path(slug), token=p.token))
    assert_ok(c.delete(name_path(pol["name"]) if "name" in pol else name_path(pol["policy"]["name"])))
    for s in (a, b):
        took = within(1.0, lambda: s.get(src_path(slug), token=p.token).status_code == 403)
        assert took is not None, f"removed role still allows on port {s.port} after 1 s"
        assert_denied(s.get(src_path(slug), token=p.token))
    # and granted again on another process: allowed everywhere within a second
    grant(b, "source-read-only", user, WS_NAME)
    for s in cluster:
        assert within(1.0, lambda: s.get(src_path(slug), token=p.token).status_code == 200) is not None


def test_write_keys_follow_sources_across_processes_at_once(cluster):
    """The intake's write-key cache (keyed by the config epoch) hears about other
    processes' changes by NOTIFY: much faster than its one-second time-to-live."""
    a, b, c = cluster
    slug, key = new_source(a)
    for s in cluster:  # a new source's key works everywhere at once
        assert send(s, key).status_code == 200
    for s in cluster:  # cached on every process now
        assert send(s, key).status_code == 200
    assert_ok(a.delete(src_path(slug)))
    for s in (b, c):
        took = within(1.0, lambda: send(s, key).status_code == 401)
        assert took is not None and took < 0.5, f"deleted source's key accepted on {s.port} for {took}"


def _events(srv, slug):
    b = assert_ok(srv.get(src_path(slug) + "/events?page_size=100"))
    return b["events"]


def test_schema_config_and_tracking_plan_changes_apply_on_every_process(cluster):
    a, b, c = cluster
    slug, key = new_source(a)
    plans = "/v1beta/workspaces/myworkspace/tracking-plans"
    plan = assert_ok(a.post(plans, json={"tracking_plan": {"display_name": "P", "rules": {"events": [
        {"name": "Planned", "version": 1, "rules": {"type": "object"}}]}}}))
    pid = plan["id"] if "id" in plan else plan["tracking_plan"]["id"] if "tracking_plan" in plan else \
        plan["name"].rsplit("/", 1)[1]
    assert_ok(b.post(f"{plans}/{pid}/source-connections", json={"source_name": src_name(slug)}))
    for s in cluster:  # warm every cache with the permissive config
        assert send(s, key, {"userId": "u", "event": "Warm"}).status_code == 200
    assert_ok(c.request("PATCH", src_path(slug) + "/schema-config", json={
        "schema_config": {"allow_unplanned_track_events": False},
        "update_mask": {"paths": ["schema_config.allow_unplanned_track_events"]}}))
    time.sleep(0.3)  # NOTIFY is milliseconds; well inside the caches' 1 s time-to-live
    for i, s in enumerate(cluster):
        assert send(s, key, {"userId": "u", "event": f"Unplanned{i}"}).status_code == 200

    def blocked_everywhere():
        by = {e["event"].get("event"): e["status"] for e in _events(a, slug)}
        return all(by.get(f"Unplanned{i}") == "BLOCKED" for i in range(3))
    assert within(10, blocked_everywhere) is not None, _events(a, slug)


def test_the_fallback_polls_when_the_listener_is_down(start_server):
    """MANIFOLD_WATCH=poll never listens: a moved change counter still invalidates within a
    second; and a LISTEN connection terminated by the server is noticed and replaced."""
    a, b = start_cluster(start_server, n=2, env={"MANIFOLD_WATCH": "poll"})
    slug, key = new_source(a)
    assert send(b, key).status_code == 200
    assert_ok(a.delete(src_path(slug)))
    assert within(1.0, lambda: send(b, key).status_code == 401) is not None
    t = assert_ok(b.post("/v1beta/access-tokens", json=token_body()))
    assert_ok(a.get("/v1beta/workspaces", token=t["token"]))
    assert_ok(b.delete(name_path(t["name"])))
    assert within(1.0, lambda: a.get("/v1beta/workspaces", token=t["token"]).status_code == 401) is not None


WATCHERS = (" FROM pg_stat_activity WHERE application_name = 'manifold-watch'"
            " AND datname = current_database()")


def test_a_terminated_listener_reconnects(cluster):
    a, b, c = cluster
    db = a.db
    assert int(db._psql(db.url, "SELECT count(*)" + WATCHERS)) == 3
    db._psql(db.url, "SELECT pg_terminate_backend(pid)" + WATCHERS)
    slug, key = new_source(a)
    assert send(b, key).status_code == 200
    assert_ok(a.delete(src_path(slug)))
    assert within(1.0, lambda: send(b, key).status_code == 401) is not None
    assert within(10, lambda: int(db._psql(db.url, "SELECT count(*)" + WATCHERS)) == 3)
    assert "LISTEN connection was lost" in b.stderr()
    slug, key = new_source(a)
    assert send(c, key).status_code == 200
    assert_ok(b.delete(src_path(slug)))
    assert within(0.5, lambda: send(c, key).status_code == 401) is not None


# ---- conflicts, If-Match, Idempotency-Key ----------------------------------------------------


def test_conflicting_creates_on_different_processes(cluster):
    for _ in range(5):
        slug = uniq()
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            rs = list(ex.map(lambda s: s.post(SOURCES, json=source_body(slug)), cluster))
        codes = sorted(r.status_code for r in rs)
        assert codes == [200, 409, 409], [r.text for r in rs]
        for r in rs:
            if r.status_code == 409:
                assert_error(r, 409, 6)


def test_if_match_races_across_processes(cluster):
    a = cluster[0]
    slug = uniq()
    assert_ok(a.post(SOURCES, json=source_body(slug)))
    for round_ in range(6):
        tag = a.get(sc_path(slug)).headers["ETag"]
        barrier = threading.Barrier(3)

        def upd(s, i=round_):
            barrier.wait()
            return s.request("PATCH", sc_path(slug), headers={"If-Match": tag}, json=sc_patch(i % 2 == 0))
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            rs = list(ex.map(upd, cluster))
        codes = sorted(r.status_code for r in rs)
        assert codes == [200, 412, 412], [r.text for r in rs]
        winner = next(r for r in rs if r.status_code == 200)
        for s in cluster:
            assert assert_ok(s.get(sc_path(slug))) == winner.json()


def test_idempotency_key_replays_across_processes(cluster):
    a, b, c = cluster
    slug, key = uniq(), "idem-" + uniq("")
    r1 = a.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key})
    assert_ok(r1)
    for s in (b, c):
        r = s.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key})
        assert r.status_code == 200 and r.text == r1.text
    # concurrent first use on every process: one create, the same answer everywhere
    slug, key = uniq(), "idem-" + uniq("")
    barrier = threading.Barrier(3)

    def create(s):
        barrier.wait()
        return s.post(SOURCES, json=source_body(slug), headers={"Idempotency-Key": key})
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        rs = list(ex.map(create, cluster))
    assert [r.status_code for r in rs] == [200] * 3, [r.text for r in rs]
    assert len({r.text for r in rs}) == 1
    # a different body under the same key is refused on another process too
    other = b.post(SOURCES, json=source_body(uniq()), headers={"Idempotency-Key": key})
    assert other.status_code == 422, other.text


# ---- the global rate limit ----------------------------------------------------------------------


def test_the_rate_limit_is_global(start_server):
    """One token bucket per token for the whole service (burst `rate`, refilled at `rate`
    per second), leased by the processes in slices: what three processes let through
    together stays within what one bucket allows (plus one lapsed slice per process),
    where per-process buckets would let through three times as much."""
    rate = 20
    cluster = start_cluster(start_server, args=("--rate-limit", str(rate)))
    tok = cluster[0].token
    sessions = [s.session(tok) for s in cluster]
    for s, sess in zip(cluster, sessions):  # connections up before the clock starts
        sess.get(s.url("/healthz"))
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(3)

    def burst(i):
        s, sess = cluster[i], sessions[i]
        mine = []
        barrier.wait()
        for _ in range(2 * rate):
            r = sess.get(s.url("/v1beta/workspaces"))
            mine.append((r.status_code, r.headers))
        with lock:
            results.extend(mine)
    threads = [threading.Thread(target=burst, args=(i,)) for i in range(3)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    ok = sum(1 for code, _ in results if code == 200)
    assert all(code in (200, 429) for code, _ in results)
    assert all(h["X-RateLimit-Limit"] == str(rate) for _, h in results)
    slice_ = -(-rate // 10)
    bound = rate + rate * (took + 0.1) + 3 * slice_
    assert ok <= bound, (ok, bound, took)
    assert ok >= rate * 0.75, (ok, took)  # the budget is not lost to the leasing
    for code, h in results:
        if code == 429:
            assert h["X-RateLimit-Remaining"] == "0" and 1 <= int(h["Retry-After"]) <= 2, dict(h)
        else:
            assert 0 <= int(h["X-RateLimit-Remaining"]) < rate, dict(h)
    # the bucket refills for everyone
    time.sleep(1.1)
    for s, sess in zip(cluster, sessions):
        assert sess.get(s.url("/v1beta/workspaces")).status_code == 200


# ---- delivery shared through the database --------------------------------------------------------


def _owner_pids(db):
    rows = db._psql(db.url, "SELECT destination, owner FROM delivery_cursors WHERE owner IS NOT NULL "
                            "AND owner <> '' ORDER BY destination")
    return {l.split("|")[0]: int(l.split("|")[1].split("-")[0]) for l in rows.splitlines() if "|" in l}


def test_delivery_is_shared_and_survives_kill_9(start_server):
    """Events sent to all three processes reach the webhooks; each destination is worked by
    one process at a time (its cursor's lease), so an event is delivered twice only when
    it was in flight on a process killed with SIGKILL, whose destinations the others take
    over once its leases expire: every acknowledged event arrives at least once."""
    rx = Receiver(default=(200, {}, 0.002))
    try:
        cluster = start_cluster(start_server, args=("--rate-limit", "0"),
                                env={"MANIFOLD_RETRY_TIME_SCALE": "0.0005"})
        a = cluster[0]
        keys, paths = {}, {}
        for i in range(3):
            slug = uniq("wh")
            keys[slug] = assert_ok(a.post(SOURCES, json=source_body(slug)))["write_keys"][0]
            paths[slug] = f"/{slug}"
            create_dest(a, slug, "webhooks", enabled=True, connection_mode="CLOUD",
                        config=[{"name": "globalHook", "value": rx.url(paths[slug])}])
        acked = {}  # messageId → the path it must reach
        sessions = [requests.Session() for _ in cluster]

        def send_round(rnd, servers):
            for k, s in enumerate(servers):
                for slug, key in keys.items():
                    ids = [f"sc-{rnd}-{k}-{j}-{uuid.uuid4().hex[:8]}" for j in range(20)]
                    body = {"batch": [{"type": "track", "event": "S", "userId": "u", "messageId": m} for m in ids]}
                    r = sessions[cluster.index(s)].post(s.url("/v1/batch"), json=body, auth=(key, ""), timeout=30)
                    assert r.status_code == 200, r.text
                    for m in ids:
                        acked[m] = paths[slug]
        for rnd in range(3):
            send_round(rnd, cluster)
        rx.wait_for(60, timeout=60)
        # kill -9 the process that owns the most destinations, mid-delivery
        owners = _owner_pids(a.db)
        by_pid = {s.proc.pid: s for s in cluster}
        counts = {}
        for pid in owners.values():
            counts[pid] = counts.get(pid, 0) + 1
        assert counts and set(counts) <= set(by_pid), (owners, list(by_pid))
        victim = by_pid[max(counts, key=lambda p: counts[p])]
        send_round(3, cluster)
        victim.proc.send_signal(signal.SIGKILL)
        victim.kill()
        t_kill = time.monotonic()
        alive = [s for s in cluster if s is not victim]
        for rnd in range(4, 7):
            send_round(rnd, alive)

        def all_delivered():
            with rx.lock:
                got = {(json.loads(r.body).get("messageId"), r.path) for r in rx.requests}
            return all((m, p) in got for m, p in acked.items())
        assert within(90, all_delivered) is not None, f"{len(acked)} acknowledged, {len(rx.requests)} received"
        by_mid = {}
        for r in rx.requests:
            by_mid.setdefault(json.loads(r.body)["messageId"], []).append(r.time)
        dups = {m: ts for m, ts in by_mid.items() if len(ts) > 1}
        for m, ts in dups.items():
            # only a re-delivery of what the killed process had in flight: the first copy
            # arrived before the kill, every other one after it
            ts.sort()
            assert ts[0] < t_kill and all(t > t_kill for t in ts[1:]), (m, [t - t_kill for t in ts])
        assert len(dups) <= 200 * 3, len(dups)  # at most one batch per destination
        assert set(by_mid) <= set(acked)
        # the killed process comes back and joins in again
        with environ(MANIFOLD_RETRY_TIME_SCALE="0.0005"):
            victim.start()
        n = len(rx.requests)
        send_round(7, cluster)
        assert within(30, all_delivered) is not None
        assert len(rx.requests) >= n + 3 * 3 * 20
    finally:
        rx.close()

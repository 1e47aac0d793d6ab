"""Transport limits: idle and trickling clients (--idle-timeout, --request-timeout) and
connection floods (--max-connections, --max-per-ip). After each, a normal request works."""
import socket
import threading
import time

import pytest

from conftest import assert_ok, connect, read_response, wait_closed

IDLE, DEADLINE = 2, 4
SLACK = 2.0  # scheduling, the sweeper's 250 ms period, an ASan build


@pytest.fixture(scope="module")
def slow_srv(tmp_path_factory):
    from conftest import module_server
    yield from module_server(tmp_path_factory, "limits", "--rate-limit", "0", "--idle-timeout", str(IDLE),
                             "--request-timeout", str(DEADLINE))


def healthy(s):
    assert s.proc.poll() is None, s.stderr()[-3000:]
    assert_ok(s.get("/v1beta/workspaces"))


def trickle(sock, data, interval, stop_after):
    """Sends data one byte per interval until it is sent, the peer closes, or stop_after
    seconds pass. Returns (seconds until the server closed the connection or None, bytes sent)."""
    start = time.monotonic()
    sent = 0
    sock.settimeout(interval)
    while time.monotonic() - start < stop_after:
        try:
            if sent < len(data):
                sock.send(data[sent:sent + 1])
                sent += 1
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - start, sent
            # a response (e.g. 408) is fine; keep reading until the close
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, OSError):
            return time.monotonic() - start, sent
    return None, sent


def test_idle_client_is_closed(slow_srv):
    s = connect(slow_srv.port)
    try:
        took = wait_closed(s, IDLE + DEADLINE + 5)
        assert took is not None, "idle connection never closed"
        # MHD's idle timeout counts whole seconds; the request deadline is the hard bound
        assert took <= DEADLINE + SLACK, f"idle connection closed after {took:.1f}s (idle {IDLE}s, deadline {DEADLINE}s)"
    finally:
        s.close()
    healthy(slow_srv)


def test_idle_after_a_request_is_closed(slow_srv):
    s = connect(slow_srv.port)
    try:
        s.sendall(f"GET /v1beta/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {slow_srv.token}\r\n\r\n".encode())
        r = read_response(s, 5)
        assert r.status == 200
        took = wait_closed(s, IDLE + DEADLINE + 5)
        assert took is not None and took <= DEADLINE + SLACK, took
    finally:
        s.close()
    healthy(slow_srv)


def test_trickling_headers_hit_the_request_deadline(slow_srv):
    """One header byte per second never trips the idle timeout; the deadline must."""
    s = connect(slow_srv.port)
    try:
        head = ("GET /v1beta/workspaces HTTP/1.1\r\nHost: t\r\nX-Slow: " + "a" * 200 + "\r\n\r\n").encode()
        took, sent = trickle(s, head, 1.0, DEADLINE + 10)
        assert took is not None, f"trickling client still connected after {DEADLINE + 10}s ({sent} bytes)"
        assert took <= DEADLINE + SLACK, f"closed after {took:.1f}s, deadline {DEADLINE}s"
    finally:
        s.close()
    healthy(slow_srv)


def test_trickling_body_hits_the_request_deadline(slow_srv):
    s = connect(slow_srv.port)
    try:
        body = b'{"access_token": {"description": "' + b"x" * 100 + b'"}}'
        s.sendall((f"POST /v1beta/access-tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {slow_srv.token}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode())
        took, sent = trickle(s, body, 1.0, DEADLINE + 10)
        assert took is not None, f"trickling body still connected after {DEADLINE + 10}s ({sent} bytes)"
        assert took <= DEADLINE + SLACK, f"closed after {took:.1f}s, deadline {DEADLINE}s"
    finally:
        s.close()
    healthy(slow_srv)


def test_many_slow_clients_do_not_block_others(slow_srv):
    socks = [connect(slow_srv.port) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(b"GET /v1beta/workspaces HTTP/1.1\r\nHo")
        t0 = time.monotonic()
        healthy(slow_srv)
        assert time.monotonic() - t0 < 2
        for s in socks:
            assert wait_closed(s, IDLE + DEADLINE + 5) is not None
    finally:
        for s in socks:
            s.close()
    healthy(slow_srv)


def refused(port, source=None, timeout=3):
    """True when a new connection is not served: refused, reset or closed without a
    response (MHD accepts and closes connections over its limits)."""
    try:
        s = connect(port, timeout, source=source)
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
        return True
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = read_response(s, timeout)
        return r is None
    except (ConnectionResetError, BrokenPipeError, TimeoutError, OSError):
        return True
    finally:
        s.close()


def settle():
    """Lets the server finish closing the connections of the start-up health checks, so
    they do not count against the limits under test."""
    time.sleep(1.0)


def open_conns(port, n, source=None):
    out = []
    for _ in range(n):
        s = connect(port, 5, source=source)
        # make sure the server has accepted it: one request on it
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = read_response(s, 5)
        assert r is not None and r.status == 200
        out.append(s)
    return out


def test_max_per_ip(start_server):
    srv = start_server("--rate-limit", "0", "--max-per-ip", "3", "--max-connections", "50")
    settle()
    held = open_conns(srv.port, 3, source="127.0.0.5")
    try:
        for _ in range(3):
            assert refused(srv.port, source="127.0.0.5"), "a 4th connection from one address was served"
        # another client address is not affected
        other = open_conns(srv.port, 1, source="127.0.0.6")
        other[0].close()
        # the held ones still work
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(held[0], 5).status == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    healthy(srv)


def test_max_connections(start_server):
    srv = start_server("--rate-limit", "0", "--max-connections", "4", "--max-per-ip", "100", "--threads", "2")
    settle()
    held = []
    try:
        for i in range(4):
            held += open_conns(srv.port, 1, source=f"127.0.0.{10 + i}")
        for i in range(3):
            assert refused(srv.port, source=f"127.0.1.{i + 1}"), "a 5th connection was served"
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    healthy(srv)


def test_max_connections_below_thread_count(start_server):
    """A connection cap smaller than the worker pool must still serve (MHD splits the cap
    between its worker threads)."""
    srv = start_server("--rate-limit", "0", "--max-connections", "2", "--threads", "8")
    for _ in range(10):
        healthy(srv)
    settle()
    held = open_conns(srv.port, 2)
    try:
        assert refused(srv.port)
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    healthy(srv)


def test_connection_flood_recovers(start_server):
    srv = start_server("--rate-limit", "0", "--max-per-ip", "16", "--max-connections", "32", "--idle-timeout", "3")
    stop = time.monotonic() + 3
    errors = []

    def flood():
        while time.monotonic() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
                s.close()
            except OSError:
                pass
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    ts = [threading.Thread(target=flood) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    time.sleep(0.5)
    healthy(srv)


FLOOD = r"""
import sys, threading, time, requests
url, seconds = sys.argv[1], float(sys.argv[2])
stop = time.monotonic() + seconds
def run():
    while time.monotonic() < stop:
        try:
            requests.post(url, auth=("flood@example.com", "wrong"), json={}, timeout=30)
        except requests.RequestException:
            pass
ts = [threading.Thread(target=run) for _ in range(48)]
for t in ts: t.start()
for t in ts: t.join()
"""


def test_password_flood_does_not_starve_token_requests(start_server):
    """HTTP Basic checks cost an Argon2id hash each. A crowd of clients sending wrong
    passwords (no token needed) must not hold every worker thread: requests with a valid
    Bearer token keep being answered promptly. (The flood runs in its own process so the
    probe's latency is the server's, not the test's GIL.)"""
    import subprocess
    import sys
    srv = start_server("--rate-limit", "0")
    srv.add_user("flood@example.com", "the-right-password")
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, srv.url("/v1beta/access-tokens"), "6"],
                             stdin=subprocess.DEVNULL)
    worst = 0.0
    try:
        time.sleep(2.0)
        for _ in range(5):
            t0 = time.monotonic()
            assert_ok(srv.get("/v1beta/workspaces", timeout=30))
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.3)
    finally:
        flood.wait(timeout=60)
    assert worst < 2.0, f"a Bearer request took {worst:.1f}s during a wrong-password flood"
    healthy(srv)

"""A local webhook receiver for the delivery tests: a threaded HTTP/1.1 server on
127.0.0.1 that records every request (path, headers, raw body, arrival time) and answers
from a script — a list of (status, headers, delay seconds) consumed one per request,
then a default answer. Keep-alive works (HTTP/1.1, Content-Length on every answer).

    rx = Receiver(script=[(503, {}, 0), (503, {}, 0)], default=(200, {}, 0))
    ... rx.url("/hook") ...
    rx.wait_for(3, timeout=10)
    rx.close()
"""
import http.server
import json
import socket
import threading
import time


class Recorded:
    def __init__(self, path, headers, body, t):
        self.path = path
        self.headers = headers  # dict, lower-case names → value
        self.body = body        # bytes, exactly as received
        self.time = t           # time.monotonic() at arrival

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self, script=(), default=(200, {}, 0), routes=None):
        self.lock = threading.Condition()
        self.requests = []
        self.script = list(script)
        self.default = default
        self.routes = dict(routes or {})  # path → (status, headers, delay), beats the script
        self.connections = 0
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with rx.lock:
                    rx.connections += 1

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with rx.lock:
                    rx.requests.append(rec)
                    if self.path in rx.routes:
                        status, headers, delay = rx.routes[self.path]
                    elif rx.script:
                        status, headers, delay = rx.script.pop(0)
                    else:
                        status, headers, delay = rx.default
                    rx.lock.notify_all()
                if delay:
                    time.sleep(delay)
                out = b'{"ok":true}'
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, n, timeout=20):
        """Waits until at least n requests arrived; returns the list (asserts on timeout)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {n}")
                self.lock.wait(left)
            return list(self.requests)

    def quiet_for(self, seconds):
        """The requests after making sure none arrives for `seconds` more."""
        time.sleep(seconds)
        with self.lock:
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port():
    """A local port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

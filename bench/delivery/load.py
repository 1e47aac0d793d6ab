#!/usr/bin/env python3
"""Load for bench/delivery/run.sh: POST /v1/batch requests of BATCH events (~1 KB each,
unique messageIds) to the intake, from THREADS threads over keep-alive connections, for
SECONDS, either as fast as the intake answers (RATE 0) or paced to RATE events/s in all.
Prints: accepted=N failed=N seconds=S"""
import base64
import http.client
import json
import sys
import threading
import time
import uuid

host, port, key, rate, seconds, threads, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), \
    float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
auth = "Basic " + base64.b64encode((key + ":").encode()).decode()
props = {"order_id": "50314b8e9bcf000000000000", "total": 27.5, "currency": "USD",
         "products": [{"sku": "45790-32", "name": "Monopoly: 3rd Edition", "price": 19, "quantity": 1}] * 4}
lock = threading.Lock()
accepted = failed = 0


def worker(t):
    global accepted, failed
    c = http.client.HTTPConnection(host, port, timeout=30)
    per_thread = rate / threads if rate > 0 else 0
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        run = uuid.uuid4().hex
        body = json.dumps({"batch": [{"type": "track", "event": "Order Completed", "userId": f"u{t}",
                                      "messageId": f"b-{run}-{i}", "properties": props} for i in range(batch)]})
        try:
            c.request("POST", "/v1/batch", body, {"Authorization": auth, "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            ok = r.status == 200
        except OSError:
            c = http.client.HTTPConnection(host, port, timeout=30)
            ok = False
        with lock:
            if ok:
                accepted += batch
            else:
                failed += batch
        n += batch
        if per_thread:
            wait = t0 + n / per_thread - time.monotonic()
            if wait > 0:
                time.sleep(wait)


ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
start = time.monotonic()
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"accepted={accepted} failed={failed} seconds={time.monotonic() - start:.2f}")

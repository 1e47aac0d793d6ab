"""The browser dashboard (docs/dashboard.md) in a real headless Chromium (Debian's chromium,
chromium-driver and python3-selenium): GET / and /ui/ serve the files compiled into the binary
with their security headers and ETags; sign-in with a good and a bad token; every page shows
what the API holds for a workspace seeded through the API (a source with a tracking plan,
events sent to /v1/track with its write key, Webhooks destinations delivering to a local
receiver so that Event Delivery Metrics have real data), a chart drawn from those metrics
matches the API's numbers, no console errors, no request to another host, and each page loads
in under a second. Screenshots go to $MANIFOLD_SCREENSHOTS (default: the test's tmp dir)."""
import base64
import json
import os
import pathlib
import time
import urllib.parse

import pytest
import requests

from conftest import assert_ok, module_server
from helpers_resources import SOURCES, create_dest, dst_name, dst_path, source_body, src_name, wait_dest_metrics, WS_PATH
from webhook_receiver import Receiver

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SCALE = "0.0005"  # the retry schedule in milliseconds (as in test_delivery.py)
CSP = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'")
ORDER_RULE = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {
    "properties": {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}}}
FQL = "event = 'Debug Ping'"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, "dash", "--rate-limit", "0", env={"MANIFOLD_RETRY_TIME_SCALE": SCALE})


def auth(key):
    return {"Authorization": "Basic " + base64.b64encode((key + ":").encode()).decode()}


def track(srv, key, event, **props):
    r = requests.post(srv.url("/v1/track"), json={"type": "track", "event": event, "userId": "u-1",
                                                  "properties": props}, headers=auth(key), timeout=30)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def seeded(srv):
    """js → webhooks (first attempt 503, then 200; a filter drops Debug Ping), ios → webhooks
    (400: discarded), server → webhooks (disabled); a plan on js; events on js and ios."""
    rx = Receiver(script=[(503, {}, 0)], routes={"/gone": (400, {}, 0)})
    keys = {}
    for slug in ("js", "ios", "server"):
        keys[slug] = assert_ok(srv.post(SOURCES, json=source_body(slug)))["write_keys"][0]
    hook = lambda path: [{"name": "globalHook", "value": rx.url(path)}]
    create_dest(srv, "js", "webhooks", enabled=True, connection_mode="CLOUD",
                config=hook("/hook") + [{"name": "sharedSecret", "value": "s3cret"}])
    create_dest(srv, "ios", "webhooks", enabled=True, connection_mode="CLOUD", config=hook("/gone"))
    create_dest(srv, "server", "webhooks", enabled=False, connection_mode="CLOUD", config=hook("/hook"))
    assert_ok(srv.post(dst_path("js", "webhooks") + "/filters", json={"filter": {
        "if": FQL, "actions": [{"type": "drop_event"}], "title": "drop pings", "enabled": True}}))
    plan = assert_ok(srv.post(WS_PATH + "/tracking-plans", json={"tracking_plan": {
        "display_name": "Web plan", "rules": {"events": [{"name": "Order Completed", "version": 1, "rules": ORDER_RULE}]}}}))
    pid = plan["name"].rsplit("/", 1)[1]
    assert_ok(srv.post(f"{WS_PATH}/tracking-plans/{pid}/source-connections", json={"source_name": src_name("js")}))
    track(srv, keys["js"], "Order Completed", total=9.99)
    track(srv, keys["js"], "Order Completed", total="<img src=x onerror=alert(1)>")  # a violation, and hostile
    track(srv, keys["js"], "Debug Ping")
    track(srv, keys["js"], "Signed Up", plan="pro")
    track(srv, keys["ios"], "App Opened")
    js = wait_dest_metrics(srv, dst_path("js", "webhooks"), dst_name("js", "webhooks"), {"successes": 3, "retried_503": 1})
    ios = wait_dest_metrics(srv, dst_path("ios", "webhooks"), dst_name("ios", "webhooks"), {"discarded_400": 1})
    yield {"keys": keys, "plan": pid, "js": js, "ios": ios}
    rx.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = os.environ.get("MANIFOLD_SCREENSHOTS")
    p = pathlib.Path(d) if d else tmp_path_factory.mktemp("screenshots")
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.fixture
def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
              "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-extensions",
              "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def wait(d, css, timeout=10):
    return WebDriverWait(d, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))[0]


def sign_in(d, srv, token):
    d.get(srv.url("/"))
    wait(d, "#token").send_keys(token)
    d.find_element(By.CSS_SELECTOR, "#signin button").click()


def load_ms(d):
    return d.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                            "return n.loadEventEnd > 0 ? n.loadEventEnd - n.startTime : -1;")


def open_page(d, srv, frag, css):
    """A fresh load of the page at #/frag (the token stays in the tab's sessionStorage): the
    document loads, and the page is drawn with its data, in under a second."""
    d.get("about:blank")
    d.get(srv.url("/ui/#/" + frag))
    el = wait(d, css)
    rendered = int(wait(d, "body[data-rendered-ms]").get_attribute("data-rendered-ms"))
    print(f"#/{frag}: document loaded in {load_ms(d):.0f} ms, drawn with its data at {rendered} ms")
    assert 0 < load_ms(d) < 1000 and 0 < rendered < 1000, (frag, load_ms(d), rendered)
    return el


def check_clean(d, host):
    """No console errors, and every request the page made went to the server."""
    errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    urls = []
    for e in d.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            urls.append(m["params"]["request"]["url"])
    assert urls
    foreign = [u for u in urls if urllib.parse.urlsplit(u).netloc != host and not u.startswith("data:")]
    assert not foreign, foreign
    return urls


def shot(d, shots, name):
    """The whole page, below the fold too (CDP's captureBeyondViewport)."""
    w, h = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    png = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                      "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    (shots / f"dashboard-{name}.png").write_bytes(base64.b64decode(png["data"]))


# ---- the files -----------------------------------------------------------------------------

def test_static_files(srv):
    r = requests.get(srv.url("/"), allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == "/ui/"
    r = requests.get(srv.url("/ui/"), timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
    assert "<script src=\"/ui/app.js\"" in r.text and "<style" not in r.text and "<script>" not in r.text
    assert requests.get(srv.url("/ui"), timeout=30).text == r.text
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")):
        a = requests.get(srv.url("/ui/" + name), timeout=30)
        assert a.status_code == 200 and a.headers["Content-Type"].startswith(ctype), a.headers
        assert a.content == (pathlib.Path(__file__).parents[2] / "ui" / name).read_bytes()
        etag = a.headers["ETag"]
        assert etag.startswith('"') and a.headers["Cache-Control"] == "no-cache"
        n = requests.get(srv.url("/ui/" + name), headers={"If-None-Match": etag}, timeout=30)
        assert n.status_code == 304 and n.content == b"" and n.headers["ETag"] == etag
        n = requests.get(srv.url("/ui/" + name), headers={"If-None-Match": '"other", W/' + etag}, timeout=30)
        assert n.status_code == 304
        assert requests.get(srv.url("/ui/" + name), headers={"If-None-Match": '"other"'}, timeout=30).status_code == 200
        h = requests.head(srv.url("/ui/" + name), timeout=30)  # HEAD: the GET's headers, no body
        assert h.status_code == 200 and h.content == b"" and h.headers["ETag"] == etag
        assert h.headers["Content-Length"] == str(len(a.content))
    assert requests.head(srv.url("/v1beta/workspaces"), timeout=30).status_code == 404  # API: GET only
    for bad in ("/ui/nope.js", "/ui/app.js/x", "/ui/%2e%2e"):
        assert requests.get(srv.url(bad), timeout=30).status_code in (400, 404), bad
    # counted in GET /metrics under their patterns, never under the raw path
    text = requests.get(srv.url("/metrics"), timeout=30).text
    assert 'route="/ui/{file}",code="304"' in text and 'route="/",code="302"' in text, text[:2000]
    assert "nope.js" not in text and "app.css" not in text
    # pages, not API operations: not in the OpenAPI document
    paths = requests.get(srv.url("/v1beta/openapi.json"), timeout=30).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)


# ---- the browser ---------------------------------------------------------------------------

def test_sign_in(srv, driver, shots):
    d = driver
    sign_in(d, srv, "A" * 43 + "." + "B" * 43)
    WebDriverWait(d, 10).until(lambda d: "not accepted" in d.find_element(By.ID, "signin-error").text)
    assert d.execute_script("return sessionStorage.length + localStorage.length") == 0
    assert not d.find_element(By.ID, "nav").is_displayed()  # no navigation before signing in
    shot(d, shots, "signin-bad-token")
    d.get_log("browser")  # the refused /v1beta/workspaces is logged as a failed load: expected here
    d.find_element(By.ID, "token").clear()
    d.find_element(By.ID, "token").send_keys(srv.token)
    d.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait(d, 'body[data-page="workspace"]')
    assert d.find_element(By.ID, "nav").is_displayed()
    assert d.execute_script("return sessionStorage.getItem('manifold.token')") == srv.token
    assert d.execute_script("return localStorage.length") == 0
    assert srv.token not in d.current_url
    # a reload keeps the session (the tab's sessionStorage); signing out forgets the token
    d.refresh()
    wait(d, 'body[data-page="workspace"]')
    d.find_element(By.ID, "sign-out").click()
    wait(d, "#token")
    assert d.execute_script("return sessionStorage.length") == 0


def test_pages(srv, seeded, driver, shots):
    d = driver
    host = urllib.parse.urlsplit(srv.url("/")).netloc
    sign_in(d, srv, srv.token)
    wait(d, 'body[data-page="workspace"]')
    flow = open_page(d, srv, "", "#flow")

    # the workspace: every source and destination of the graph, with state and filters
    names = {e.get_attribute("data-name") for e in flow.find_elements(By.CSS_SELECTOR, "a.node")}
    assert names == {src_name(s) for s in ("js", "ios", "server")} | {
        src_name(s) + "/destinations/webhooks" for s in ("js", "ios", "server")}
    assert len(flow.find_elements(By.CSS_SELECTOR, "path.edge")) == 3
    assert len(flow.find_elements(By.CSS_SELECTOR, "path.edge.off")) == 1
    off = flow.find_element(By.CSS_SELECTOR, "a.node.dest.off")
    assert off.get_attribute("data-name") == src_name("server") + "/destinations/webhooks"
    assert FQL in d.find_element(By.TAG_NAME, "main").text
    shot(d, shots, "workspace")

    # a source: write key, plan, schema config, debugger (the hostile payload shown as text)
    open_page(d, srv, "sources/js", "#events table")
    assert d.find_element(By.ID, "write-key").text == seeded["keys"]["js"]
    assert d.find_element(By.ID, "source-plan").text == "Web plan"
    summary = assert_ok(srv.get(SOURCES + "/js/events:summary"))
    for k in ("received", "accepted", "blocked"):
        got = d.find_element(By.CSS_SELECTOR, f'[data-count="{k}"] b').text
        assert got == str(summary[k]), (k, got, summary)
    rows = d.find_elements(By.CSS_SELECTOR, "#events tbody tr")
    assert len(rows) == 4
    text = d.find_element(By.ID, "events").text
    assert "Order Completed" in text and "Signed Up" in text and "properties.total" in text
    assert d.execute_script("return document.querySelectorAll('#events img').length") == 0
    pres = d.execute_script("return [...document.querySelectorAll('#events pre')].map(p => p.textContent)")
    assert any("<img src=x onerror=alert(1)>" in p for p in pres)
    assert "allow_unplanned_track_events" in d.find_element(By.TAG_NAME, "main").text
    # live: a new event shows without reloading
    track(srv, seeded["keys"]["js"], "Live Event")
    WebDriverWait(d, 10).until(lambda d: "Live Event" in d.find_element(By.ID, "events").text)
    shot(d, shots, "source")

    # a destination: settings, filters with their FQL, metrics charts from real deliveries
    dpath = dst_path("js", "webhooks")
    wait_dest_metrics(srv, dpath, dst_name("js", "webhooks"), {"successes": 4})  # the live event too
    open_page(d, srv, "sources/js/destinations/webhooks", "#chart-successes rect.bar")
    main = d.find_element(By.TAG_NAME, "main").text
    assert FQL in main and "drop pings" in main and "Webhook URL" in main
    assert "Shared Secret\n********" in main or "Shared Secret ********" in main, main
    assert "s3cret" not in d.page_source  # the secret never reaches the browser
    series = {m["name"].rsplit("/", 1)[1]: m for m in assert_ok(srv.get(dpath + "/metrics"))["metrics"]}
    bars = d.find_elements(By.CSS_SELECTOR, "#chart-successes rect.bar")
    drawn = {b.get_attribute("data-time"): int(b.get_attribute("data-value")) for b in bars}
    api = {p["time"]: p["value"] for p in series["successes"]["datapoints"]}
    assert {t: v for t, v in drawn.items() if v} == {t: v for t, v in api.items() if v}
    assert sum(drawn.values()) == 4
    heights = {b.get_attribute("data-time"): float(b.get_attribute("height")) for b in bars}
    assert all(heights[t] > 0 for t, v in drawn.items() if v)
    retried = d.find_elements(By.CSS_SELECTOR, "#chart-retried rect.bar")
    assert sum(int(b.get_attribute("data-value")) for b in retried) == 1
    codes = {b.get_attribute("data-code"): int(b.get_attribute("data-value"))
             for b in d.find_elements(By.CSS_SELECTOR, "#retried-codes rect.bar")}
    summary = assert_ok(srv.get(dpath + "/metrics:getSummary"))
    tot = {m["metric_name"]: m for m in summary["metrics"]}
    assert sum(codes.values()) == tot["retried"]["total"] == 1
    for k in ("successes", "retried", "discarded"):
        assert d.find_element(By.CSS_SELECTOR, f'[data-total="{k}"] b').text == str(tot[k]["total"])
    points = d.find_elements(By.CSS_SELECTOR, "#chart-time_to_success_p95 circle.point.p95")
    p95 = {p["time"]: p["value"] for p in series["time_to_success_p95"]["datapoints"] if p["value"]}
    assert {p.get_attribute("data-time"): int(p.get_attribute("data-value")) for p in points} == p95
    shot(d, shots, "destination")
    d.find_element(By.CSS_SELECTOR, 'button[data-window="week"]').click()
    WebDriverWait(d, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-successes rect.bar")) >= 150)
    week = d.find_elements(By.CSS_SELECTOR, "#chart-successes rect.bar")
    assert sum(int(b.get_attribute("data-value")) for b in week) == 4

    # discards by code, on the ios destination
    d.get(srv.url("/ui/#/sources/ios/destinations/webhooks"))
    bar = wait(d, "#discarded-codes rect.bar")
    assert bar.get_attribute("data-code") == "400" and bar.get_attribute("data-value") == "1"

    # tracking plans: the list, a plan's rules and sources, and :validate
    open_page(d, srv, "tracking-plans", "main table a").click()
    wait(d, "#validate-input")
    open_page(d, srv, "tracking-plans/" + seeded["plan"], "#validate-input")
    assert d.find_element(By.ID, "plan-sources").text == "js"
    assert "Order Completed" in d.find_element(By.TAG_NAME, "main").text
    box = d.find_element(By.ID, "validate-input")
    box.clear()
    box.send_keys(json.dumps({"type": "track", "event": "Order Completed", "properties": {}}))
    d.find_element(By.ID, "validate").click()
    WebDriverWait(d, 10).until(lambda d: "invalid" in d.find_element(By.ID, "validate-result").text)
    assert "Required-Missing" in d.find_element(By.ID, "validate-result").text
    shot(d, shots, "tracking-plan")

    check_clean(d, host)

"""Event Delivery Metrics (config-api.md §11, delivery.md §9; docs/metrics.md): the five
routes over counters written the way the delivery engine writes them — through the hidden
admin command `manifold metrics add --stdin`, which calls store_dm_add / store_dm_latency on
the server's own database. Checks response shapes, MINUTE/HOUR/DAY bucketing with empty
buckets, window edges (start inclusive, end exclusive), the retried/discarded/total
roll-ups and breakdowns, time_to_success percentiles (one sample exact, many within 1% of
the nearest-rank value), every parameter error, cloud-mode only, 404s, the workspace
:batchGetSummary, counters surviving a restart and going with their destination/source."""
import datetime as dt
import math
import random
import re
import uuid

import pytest

from conftest import assert_error, assert_ok
from helpers_iam import CATALOG_DESTS, WS, WSP, dst_name, dst_path, mk_dest, mk_source, src_path

UTC = dt.timezone.utc
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
FIXED = ["successes", "retried", "discarded", "total",
         "time_to_success_p50", "time_to_success_p95", "time_to_success_p99"]
DEVICE_MSG = "metrics are only available for cloud-mode destinations"


def _dests(device, cloud):
    out = []
    for k in sorted(CATALOG_DESTS):
        r = CATALOG_DESTS[k]
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", k) or any(s.get("required") for s in r["settings"] or []):
            continue
        m = r.get("connection_modes") or {}
        if any((m.get("device") or {}).values()) == device and any((m.get("cloud") or {}).values()) == cloud:
            out.append(k)
    return out


CLOUD_ONLY = _dests(False, True)[:3]
DEVICE_ONLY = _dests(True, False)[0]
BOTH = _dests(True, True)[0]
assert len(CLOUD_ONLY) == 3


def iso(t):
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ".%03d" % (t.microsecond // 1000)
    return s + "Z"


def now():
    return dt.datetime.now(UTC)


def floor(t, unit):
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // unit) * unit


def feed(srv, lines):
    """Writes counters like the delivery engine: 'count DEST METRIC T N' / 'latency DEST T MS'."""
    srv.cli("metrics", "add", "--stdin", input="\n".join(lines) + "\n")


def count(dest, metric, t, n=1):
    return f"count {dest} {metric} {iso(t)} {n}"


def latency(dest, t, ms):
    return f"latency {dest} {iso(t)} {ms}"


def new_dest(srv, catalog=None, **fields):
    """A fresh source with one destination; returns (its name, its path)."""
    src = mk_source(srv, "m" + uuid.uuid4().hex[:10])
    d = catalog or CLOUD_ONLY[0]
    mk_dest(srv, src, d, **fields)
    return dst_name(src, d), dst_path(src, d)


def series(srv, path, metric=None, **params):
    url = path + "/metrics" + (f"/{metric}" if metric else "")
    return assert_ok(srv.get(url, params=params))


def values(s):
    return [p["value"] for p in s["datapoints"]]


def by_name(body):
    return {m["name"].rsplit("/", 1)[1]: m for m in body["metrics"]}


def summary(srv, path, **params):
    return assert_ok(srv.get(path + "/metrics:getSummary", params=params))


def totals(summ):
    return {m["metric_name"]: m for m in summ["metrics"]}


def nearest_rank(samples, p):
    s = sorted(samples)
    return s[math.ceil(p * len(s) / 100) - 1]


# ---- shapes and bucketing -------------------------------------------------------------------


def test_all_series_shape_and_minute_buckets(server):
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - 2 * HOUR
    feed(server, [count(name, "successes", t0 + 5 * MIN + dt.timedelta(seconds=10), 3),
                  count(name, "successes", t0 + 5 * MIN + dt.timedelta(seconds=59), 1),
                  count(name, "successes", t0 + 7 * MIN, 2),
                  count(name, "retried_502", t0 + 5 * MIN, 2),
                  count(name, "retried_ETIMEDOUT", t0 + 6 * MIN, 1),
                  count(name, "discarded_400", t0 + 7 * MIN, 1),
                  # not a §11 series: kept by the engine for a Delivery Overview, never listed
                  count(name, "filtered_at_destination_filter", t0 + 5 * MIN, 9),
                  count(name, "successes_attempt_1", t0 + 5 * MIN, 4),
                  latency(name, t0 + 5 * MIN, 90200)])
    body = series(server, path, start_time=iso(t0), end_time=iso(t0 + 10 * MIN))
    assert set(body) == {"metrics", "next_page_token"} and body["next_page_token"] == ""
    names = [m["name"].rsplit("/", 1)[1] for m in body["metrics"]]
    assert names == FIXED + ["retried_502", "retried_ETIMEDOUT", "discarded_400"]
    m = by_name(body)
    for k, s in m.items():
        assert set(s) == {"name", "display_name", "granularity", "start_time", "end_time", "datapoints"}
        assert s["name"] == f"{name}/metrics/{k}"
        assert s["granularity"] == "MINUTE"
        assert s["start_time"] == iso(t0) and s["end_time"] == iso(t0 + 10 * MIN)
        assert [p["time"] for p in s["datapoints"]] == [iso(t0 + i * MIN) for i in range(10)]
        assert all(set(p) == {"time", "value"} and type(p["value"]) is int for p in s["datapoints"])
    assert m["successes"]["display_name"] == "Successes"
    assert m["time_to_success_p95"]["display_name"] == "Time to Success (p95)"
    assert m["retried_502"]["display_name"] == "Retried (502)"
    assert m["discarded_400"]["display_name"] == "Discarded (400)"
    z = [0] * 5
    assert values(m["successes"]) == z + [4, 0, 2, 0, 0]
    assert values(m["retried_502"]) == z + [2, 0, 0, 0, 0]
    assert values(m["retried"]) == z + [2, 1, 0, 0, 0]
    assert values(m["discarded"]) == z + [0, 0, 1, 0, 0]
    assert values(m["total"]) == z + [4, 0, 3, 0, 0]  # successes + discarded
    assert values(m["time_to_success_p50"]) == z + [90200, 0, 0, 0, 0]
    # a window without codes lists only the fixed series, all zero
    body = series(server, path, start_time=iso(t0), end_time=iso(t0 + 5 * MIN))
    assert [m["name"].rsplit("/", 1)[1] for m in body["metrics"]] == FIXED
    assert all(values(s) == [0] * 5 for s in body["metrics"])


def test_window_edges_start_inclusive_end_exclusive(server):
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - 3 * HOUR
    feed(server, [count(name, "successes", t0 - dt.timedelta(milliseconds=1), 100),
                  count(name, "successes", t0, 1),
                  count(name, "successes", t0 + 30 * MIN - dt.timedelta(milliseconds=1), 10),
                  count(name, "successes", t0 + 30 * MIN, 1000)])
    s = series(server, path, "successes", start_time=iso(t0), end_time=iso(t0 + 30 * MIN))
    assert len(s["datapoints"]) == 30
    assert sum(values(s)) == 11 and values(s)[0] == 1 and values(s)[-1] == 10
    assert totals(summary(server, path, start_time=iso(t0), end_time=iso(t0 + 30 * MIN)))["successes"]["total"] == 11
    # a start inside a minute is aligned down to the minute (the bucket holding it)
    s = series(server, path, "successes", start_time=iso(t0 + dt.timedelta(seconds=30)),
               end_time=iso(t0 + 2 * MIN))
    assert s["start_time"] == iso(t0) and values(s) == [1, 0]
    # an end inside a minute is aligned up: the bucket holding it is included
    s = series(server, path, "successes", start_time=iso(t0 + 28 * MIN),
               end_time=iso(t0 + 29 * MIN + dt.timedelta(seconds=1)))
    assert s["end_time"] == iso(t0 + 30 * MIN) and values(s) == [0, 10]
    # offsets are understood
    s = series(server, path, "successes", start_time=(t0 + 2 * HOUR).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
               end_time=(t0 + 2 * HOUR + 2 * MIN).strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    assert s["start_time"] == iso(t0) and values(s) == [1, 0]


def test_hour_and_day_rollups_with_empty_buckets(server):
    name, path = new_dest(server)
    today = floor(now(), DAY)
    h0 = floor(now(), HOUR) - 5 * HOUR
    # the DAY window ends two days ago: h0 (up to yesterday 19:00 when run just after
    # midnight UTC) must not fall into it
    d0 = today - 5 * DAY
    feed(server, [count(name, "successes", h0 + 1 * MIN, 1),
                  count(name, "successes", h0 + 59 * MIN, 2),
                  count(name, "successes", h0 + 2 * HOUR + 30 * MIN, 5),
                  count(name, "discarded_503", h0 + 2 * HOUR, 1),
                  count(name, "successes", d0 + 1 * HOUR, 7),
                  count(name, "successes", d0 + 23 * HOUR + 59 * MIN, 1),
                  count(name, "retried_429", d0 + 2 * DAY, 4)])
    s = series(server, path, "successes", granularity="HOUR", start_time=iso(h0), end_time=iso(h0 + 4 * HOUR))
    assert s["granularity"] == "HOUR"
    assert [p["time"] for p in s["datapoints"]] == [iso(h0 + i * HOUR) for i in range(4)]
    assert values(s) == [3, 0, 5, 0]
    t = series(server, path, "total", granularity="HOUR", start_time=iso(h0), end_time=iso(h0 + 4 * HOUR))
    assert values(t) == [3, 0, 6, 0]
    body = series(server, path, granularity="DAY", start_time=iso(d0), end_time=iso(d0 + 3 * DAY))
    m = by_name(body)
    assert [p["time"] for p in m["successes"]["datapoints"]] == [iso(d0 + i * DAY) for i in range(3)]
    assert values(m["successes"]) == [8, 0, 0]
    assert values(m["retried_429"]) == [0, 0, 4] and values(m["retried"]) == [0, 0, 4]
    assert "discarded_503" not in m  # no data in this window
    # DAY buckets are UTC days: a start in the middle of a day gives that day's bucket
    s = series(server, path, "successes", granularity="DAY", start_time=iso(d0 + 12 * HOUR),
               end_time=iso(d0 + DAY + HOUR))
    assert s["start_time"] == iso(d0) and s["end_time"] == iso(d0 + 2 * DAY) and values(s) == [8, 0]


def test_percentiles_single_sample_exact_and_many_within_one_percent(server):
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - 2 * HOUR
    rnd = random.Random(11)
    samples = [int(20 * 10 ** (rnd.random() * 4)) for _ in range(3000)]  # 20 ms … 200 s
    lines = [latency(name, t0 + 10 * MIN, 90200)]  # the worked example of delivery.md §9.2
    lines += [latency(name, t0 + (20 + i % 30) * MIN + dt.timedelta(seconds=i % 60), v)
              for i, v in enumerate(samples)]
    feed(server, lines)
    # one sample: exact in its minute, hour and summary
    for p in ("p50", "p95", "p99"):
        s = series(server, path, f"time_to_success_{p}", start_time=iso(t0 + 10 * MIN), end_time=iso(t0 + 12 * MIN))
        assert values(s) == [90200, 0]
    summ = totals(summary(server, path, start_time=iso(t0), end_time=iso(t0 + 15 * MIN)))
    assert summ["time_to_success_p95"]["total"] == 90200 and summ["time_to_success_p50"]["total"] == 90200
    # many samples: over the whole window, per hour and per minute, within 1% of nearest rank
    summ = totals(summary(server, path, start_time=iso(t0 + 20 * MIN), end_time=iso(t0 + 50 * MIN)))
    for p in (50, 95, 99):
        want = nearest_rank(samples, p)
        got = summ[f"time_to_success_p{p}"]["total"]
        assert abs(got - want) <= 0.01 * want + 1, (p, got, want)
    hourly = series(server, path, granularity="HOUR", start_time=iso(t0), end_time=iso(t0 + HOUR))
    m = by_name(hourly)
    for p in (50, 95, 99):
        want = nearest_rank(samples + [90200], p)
        got = values(m[f"time_to_success_p{p}"])[0]
        assert abs(got - want) <= 0.01 * want + 1, (p, got, want)
    minute = [v for i, v in enumerate(samples) if i % 30 == 3]
    s = series(server, path, "time_to_success_p99", start_time=iso(t0 + 23 * MIN), end_time=iso(t0 + 24 * MIN))
    want = nearest_rank(minute, 99)
    assert abs(values(s)[0] - want) <= 0.01 * want + 1
    # the largest sample is exact (p100 is not a metric, but p99 of 2 samples is the larger)
    feed(server, [latency(name, t0 + 55 * MIN, 1234), latency(name, t0 + 55 * MIN, 98765)])
    s = series(server, path, "time_to_success_p99", start_time=iso(t0 + 55 * MIN), end_time=iso(t0 + 56 * MIN))
    assert values(s) == [98765]
    s = series(server, path, "time_to_success_p50", start_time=iso(t0 + 55 * MIN), end_time=iso(t0 + 56 * MIN))
    assert values(s) == [1234]


def test_summary_breakdowns(server):
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - HOUR
    feed(server, [count(name, "successes", t0, 1024),
                  count(name, "retried_502", t0 + MIN, 10),
                  count(name, "retried_502", t0 + 2 * MIN, 2),
                  count(name, "retried_429", t0 + 2 * MIN, 5),
                  count(name, "discarded_400", t0 + 3 * MIN, 2),
                  count(name, "discarded_INVALID_SETTINGS", t0 + 3 * MIN, 1),
                  count(name, "discarded_400", t0 - MIN, 50)])  # outside the window
    s = summary(server, path, start_time=iso(t0), end_time=iso(t0 + HOUR))
    assert set(s) == {"name", "start_time", "end_time", "metrics", "pending_retry"}
    assert s["pending_retry"] == 0  # events waiting for a retry now (the delivery engine's gauge)
    assert s["name"] == name and s["start_time"] == iso(t0) and s["end_time"] == iso(t0 + HOUR)
    assert [m["metric_name"] for m in s["metrics"]] == FIXED
    t = totals(s)
    assert t["successes"] == {"metric_name": "successes", "total": 1024}
    assert t["retried"] == {"metric_name": "retried", "total": 17, "breakdown": [
        {"metric_name": "retried_429", "total": 5}, {"metric_name": "retried_502", "total": 12}]}
    assert t["discarded"] == {"metric_name": "discarded", "total": 3, "breakdown": [
        {"metric_name": "discarded_400", "total": 2}, {"metric_name": "discarded_INVALID_SETTINGS", "total": 1}]}
    assert t["total"]["total"] == 1027
    assert t["time_to_success_p95"]["total"] == 0  # no latency samples
    # an empty window: zeros and empty breakdowns
    e = totals(summary(server, path, start_time=iso(t0 + 10 * MIN), end_time=iso(t0 + 20 * MIN)))
    assert e["retried"] == {"metric_name": "retried", "total": 0, "breakdown": []}
    assert all(e[k]["total"] == 0 for k in FIXED)


def test_one_series_and_batch_get(server):
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - HOUR
    feed(server, [count(name, "successes", t0, 3), count(name, "retried_502", t0, 2)])
    w = {"start_time": iso(t0), "end_time": iso(t0 + 3 * MIN)}
    s = series(server, path, "retried_502", **w)
    assert s["name"] == f"{name}/metrics/retried_502" and values(s) == [2, 0, 0]
    # a well-formed code without data is a zero series, not an error
    assert values(series(server, path, "discarded_418", **w)) == [0, 0, 0]
    full = f"{name}/metrics/successes"
    want = [full, f"{name}/metrics/retried", f"{name}/metrics/time_to_success_p99"]
    # repeated names, comma-separated, bare metric names, and a JSON body on GET
    for params, body in (({"names": want}, None),
                         ({"names": ",".join(want)}, None),
                         ({"names": "successes, retried,time_to_success_p99"}, None),
                         ({}, {"names": want, "start_time": w["start_time"], "end_time": w["end_time"]}),
                         ({}, {"names": ",".join(want), "startTime": w["start_time"], "endTime": w["end_time"]})):
        q = dict(w, **params) if params else {}
        b = assert_ok(server.get(path + "/metrics:batchGet", params=q, json=body))
        assert set(b) == {"metrics"}
        assert [m["name"] for m in b["metrics"]] == want, (params, body)
        assert [values(m) for m in b["metrics"]] == [[3, 0, 0], [2, 0, 0], [0, 0, 0]]
    # the query wins over the body
    b = assert_ok(server.get(path + "/metrics:batchGet", params=dict(w, names="successes"),
                             json={"names": ["retried"], "granularity": "HOUR"}))
    assert [m["name"] for m in b["metrics"]] == [full] and b["metrics"][0]["granularity"] == "HOUR"


# ---- defaults and parameter errors ------------------------------------------------------------


def test_default_windows(server):
    _, path = new_dest(server)
    for g, n in (("MINUTE", (60, 61)), ("HOUR", (168, 169)), ("DAY", (15,))):
        t = now()
        s = series(server, path, "successes", **({"granularity": g} if g != "MINUTE" else {}))
        assert s["granularity"] == g
        assert len(s["datapoints"]) in n, (g, len(s["datapoints"]))
        end = dt.datetime.fromisoformat(s["end_time"].replace("Z", "+00:00"))
        assert t - dt.timedelta(minutes=2) <= end <= t + DAY + MIN
    # only end_time: the default length before it
    end = floor(now(), HOUR) - HOUR
    s = series(server, path, "successes", end_time=iso(end))
    assert s["start_time"] == iso(end - HOUR) and len(s["datapoints"]) == 60
    # only start_time: until now
    start = floor(now(), MIN) - 10 * MIN
    s = series(server, path, "successes", start_time=iso(start))
    assert s["start_time"] == iso(start) and len(s["datapoints"]) in (10, 11)


@pytest.mark.parametrize("suffix", ["/metrics", "/metrics/successes", "/metrics:getSummary",
                                    "/metrics:batchGet?names=successes"])
def test_parameter_errors(server, suffix):
    _, path = new_dest(server)
    url = path + suffix
    sep = "&" if "?" in url else "?"
    t = floor(now(), MIN)

    def bad(query="", body=None, msg=None):
        r = server.get(url + (sep + query if query else ""), json=body)
        b = assert_error(r, 400, 3)
        if msg:
            assert msg in b["error"], b
    bad("granularity=WEEK", msg="granularity must be MINUTE, HOUR or DAY")
    bad("granularity=minute")
    bad("start_time=yesterday", msg="start_time must be an RFC 3339 time")
    bad("start_time=2024-01-01", msg="start_time")
    bad("end_time=2024-13-01T00:00:00Z", msg="end_time must be an RFC 3339 time")
    bad("start_time=" + iso(t).replace("Z", ""), msg="start_time")
    bad(f"start_time={iso(t)}&end_time={iso(t)}", msg="end_time must be later than start_time")
    bad(f"start_time={iso(t)}&end_time={iso(t - MIN)}")
    # longest windows: 4 h / 7 d / 14 d
    bad(f"start_time={iso(t - 4 * HOUR - MIN)}&end_time={iso(t)}", msg="at most 4 hours")
    assert server.get(url + sep + f"start_time={iso(t - 4 * HOUR)}&end_time={iso(t)}").status_code == 200
    h = floor(now(), HOUR)
    bad(f"granularity=HOUR&start_time={iso(h - 7 * DAY + HOUR)}&end_time={iso(h + 2 * HOUR)}", msg="at most 7 days")
    assert server.get(url + sep + f"granularity=HOUR&start_time={iso(h - 6 * DAY)}&end_time={iso(h + DAY)}").status_code == 200
    d = floor(now(), DAY)
    bad(f"granularity=DAY&start_time={iso(d - 10 * DAY)}&end_time={iso(d + 5 * DAY)}", msg="at most 14 days")
    # oldest starts: 48 h / 7 d / 14 d
    bad(f"start_time={iso(t - 49 * HOUR)}&end_time={iso(t - 48 * HOUR)}", msg="at most 48 hours ago")
    assert server.get(url + sep + f"start_time={iso(t - 47 * HOUR)}&end_time={iso(t - 46 * HOUR)}").status_code == 200
    bad(f"granularity=HOUR&start_time={iso(h - 8 * DAY)}&end_time={iso(h - 7 * DAY)}", msg="at most 7 days ago")
    bad(f"granularity=DAY&start_time={iso(d - 16 * DAY)}&end_time={iso(d - 15 * DAY)}", msg="at most 14 days ago")
    assert server.get(url + sep + f"granularity=DAY&start_time={iso(d - 13 * DAY)}").status_code == 200
    bad(f"end_time={iso(t - 49 * HOUR)}", msg="end_time must be within the last 48 hours")
    # the same rules for parameters in a GET body
    bad(body={"granularity": "WEEK"})
    bad(body={"start_time": 12})
    bad(body={"start_time": "not a time"}, msg="start_time")
    bad(body={"startTime": iso(t - 5 * HOUR)}, msg="at most 4 hours")
    bad(body={"no_such_field": 1})
    r = server.get(url, data=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, 3)


def test_batch_names_errors(server):
    name, path = new_dest(server)
    other, _ = new_dest(server, CLOUD_ONLY[1])
    url = path + "/metrics:batchGet"
    assert "names" in assert_error(server.get(url), 400, 3)["error"]
    assert_error(server.get(url, params={"names": " , "}), 400, 3)
    assert_error(server.get(url, json={"names": [1]}), 400, 3)
    assert_error(server.get(url, json={"names": {"a": 1}}), 400, 3)
    assert_error(server.get(url, params={"names": f"{other}/metrics/successes"}), 400, 3)
    assert_error(server.get(url, params={"names": ",".join(["successes"] * 101)}), 400, 3)
    assert_error(server.get(url, params={"names": "successes,nope"}), 404, 5)
    assert_error(server.get(url, params={"names": f"{name}/metrics/retried_"}), 404, 5)
    assert len(assert_ok(server.get(url, params={"names": ",".join(["successes"] * 100)}))["metrics"]) == 100


# ---- which destinations, 404s ------------------------------------------------------------------


def test_device_mode_destinations_are_400(server):
    src = mk_source(server, "m" + uuid.uuid4().hex[:10])
    routes = ["/metrics", "/metrics/successes", "/metrics:getSummary", "/metrics:batchGet?names=successes"]
    # DEVICE set explicitly, on a cloud-only entry too
    mk_dest(server, src, CLOUD_ONLY[0], connection_mode="DEVICE")
    # UNSPECIFIED on an entry that has device mode (device-only, or both)
    mk_dest(server, src, DEVICE_ONLY)
    mk_dest(server, src, BOTH)
    for d in (CLOUD_ONLY[0], DEVICE_ONLY, BOTH):
        for r in routes:
            b = assert_error(server.get(dst_path(src, d) + r), 400, 3)
            assert b["error"] == DEVICE_MSG
        b = assert_error(server.get(f"{WSP}/event-delivery-metrics:batchGetSummary",
                                    params={"names": dst_name(src, d)}), 400, 3)
        assert b["error"] == DEVICE_MSG
    # CLOUD on an entry with both modes, and UNSPECIFIED on a cloud-only one, have metrics
    src2 = mk_source(server, "m" + uuid.uuid4().hex[:10])
    mk_dest(server, src2, BOTH, connection_mode="CLOUD")
    mk_dest(server, src2, CLOUD_ONLY[1])
    for d in (BOTH, CLOUD_ONLY[1]):
        for r in routes:
            assert_ok(server.get(dst_path(src2, d) + r))
    # switching the mode switches the answer
    assert_ok(server.request("PATCH", dst_path(src2, BOTH), json={
        "destination": {"connection_mode": "DEVICE"}, "update_mask": {"paths": ["destination.connection_mode"]}}))
    assert assert_error(server.get(dst_path(src2, BOTH) + "/metrics"), 400, 3)["error"] == DEVICE_MSG


def test_not_found(server):
    _, path = new_dest(server)
    src = path.split("/destinations/")[0]
    for r in ("/metrics", "/metrics/successes", "/metrics:getSummary", "/metrics:batchGet?names=successes"):
        assert_error(server.get(f"{src}/destinations/{CLOUD_ONLY[2]}{r}"), 404, 5)
        assert_error(server.get(f"{src_path('no-such-source')}/destinations/{CLOUD_ONLY[0]}{r}"), 404, 5)
    for m in ("nope", "retried_", "retried_%20", "successes_attempt_1", "filtered_at_destination_x",
              "time_to_success_p90", "Successes", "discarded_" + "x" * 65):
        assert_error(server.get(f"{path}/metrics/{m}"), 404, 5)
    assert_ok(server.get(f"{path}/metrics/retried"))
    # no such route
    assert_error(server.get(f"{path}/metrics/x/y"), 404, 5)


# ---- the workspace batch -----------------------------------------------------------------------


def test_batch_get_summary(server):
    a, _ = new_dest(server)
    b, _ = new_dest(server, CLOUD_ONLY[1])
    t0 = floor(now(), HOUR) - HOUR
    feed(server, [count(a, "successes", t0, 5), count(b, "successes", t0 + MIN, 7),
                  count(b, "discarded_400", t0 + MIN, 1), latency(b, t0 + MIN, 321)])
    url = f"{WSP}/event-delivery-metrics:batchGetSummary"
    w = {"start_time": iso(t0), "end_time": iso(t0 + HOUR)}
    for params, body in (({"names": [a, b]}, None), ({"names": f"{a},{b}"}, None), ({}, {"names": [a, b]})):
        r = assert_ok(server.get(url, params=dict(w, **params), json=body and dict(w, **body)))
        assert set(r) == {"summaries"}
        assert [s["name"] for s in r["summaries"]] == [a, b]
        ta, tb = totals(r["summaries"][0]), totals(r["summaries"][1])
        assert ta["successes"]["total"] == 5 and ta["total"]["total"] == 5
        assert tb["successes"]["total"] == 7 and tb["total"]["total"] == 8
        assert tb["discarded"]["breakdown"] == [{"metric_name": "discarded_400", "total": 1}]
        assert tb["time_to_success_p99"]["total"] == 321
        assert r["summaries"][0]["start_time"] == iso(t0)
    # the workspace by id in a name is the same workspace
    ws_id = assert_ok(server.get(WSP))["id"]
    r = assert_ok(server.get(url, params=dict(w, names=a.replace(f"workspaces/{WS}/", f"workspaces/{ws_id}/"))))
    assert r["summaries"][0]["name"] == a
    # names must be destinations of this workspace
    assert_error(server.get(url), 400, 3)
    for bad in (a.replace(f"workspaces/{WS}/", "workspaces/otherws/"), a.rsplit("/destinations/", 1)[0],
                a + "/metrics/successes", "successes", a + "/"):
        assert_error(server.get(url, params={"names": bad}), 400, 3)
    assert_error(server.get(url, params={"names": [a, a.rsplit("/", 1)[0] + "/" + CLOUD_ONLY[2]]}), 404, 5)
    assert_error(server.get(url, params={"names": a, "granularity": "YEAR"}), 400, 3)


# ---- durability and deletion ---------------------------------------------------------------------


def test_counters_survive_restart(start_server):
    srv = start_server("--rate-limit", "0")
    name, path = new_dest(srv)
    t0 = floor(now(), HOUR) - HOUR
    feed(srv, [count(name, "successes", t0, 42), latency(name, t0, 777)])
    w = {"start_time": iso(t0), "end_time": iso(t0 + HOUR)}
    before = summary(srv, path, **w)
    assert totals(before)["successes"]["total"] == 42
    assert srv.stop() == 0
    srv.start()
    assert summary(srv, path, **w) == before
    assert totals(before)["time_to_success_p50"]["total"] == 777


def test_counters_go_with_their_destination_and_source(server):
    src = mk_source(server, "m" + uuid.uuid4().hex[:10])
    d1, d2 = CLOUD_ONLY[0], CLOUD_ONLY[1]
    mk_dest(server, src, d1)
    mk_dest(server, src, d2)
    other, other_path = new_dest(server)
    n1, n2 = dst_name(src, d1), dst_name(src, d2)
    t0 = floor(now(), HOUR) - HOUR
    feed(server, [count(n1, "successes", t0, 1), latency(n1, t0, 50), count(n2, "successes", t0, 2),
                  count(other, "successes", t0, 3)])
    w = {"start_time": iso(t0), "end_time": iso(t0 + HOUR)}
    assert totals(summary(server, dst_path(src, d1), **w))["successes"]["total"] == 1
    # a dry-run delete keeps them
    assert_ok(server.delete(dst_path(src, d1), params={"validate_only": "true"}))
    assert totals(summary(server, dst_path(src, d1), **w))["successes"]["total"] == 1
    assert_ok(server.delete(dst_path(src, d1)))
    assert_error(server.get(dst_path(src, d1) + "/metrics:getSummary", params=w), 404, 5)
    mk_dest(server, src, d1)  # the same name again starts from zero
    t = totals(summary(server, dst_path(src, d1), **w))
    assert all(t[k]["total"] == 0 for k in FIXED), t
    # deleting the source takes its destinations' counters, not another source's
    assert_ok(server.delete(src_path(src)))
    mk_source(server, src)
    mk_dest(server, src, d2)
    assert totals(summary(server, dst_path(src, d2), **w))["successes"]["total"] == 0
    assert totals(summary(server, other_path, **w))["successes"]["total"] == 3


def test_metrics_add_command(server):
    """The hidden admin command's flag form, and its refusals (exit 2, nothing written)."""
    name, path = new_dest(server)
    t0 = floor(now(), HOUR) - HOUR
    server.cli("metrics", "add", "--destination", name, "--metric", "retried_502", "--n", "4", "--at", iso(t0))
    server.cli("metrics", "add", "--destination", name, "--metric", "successes", "--at", iso(t0 + MIN))
    server.cli("metrics", "add", "--destination", name, "--latency", "10,20,30", "--at", iso(t0 + MIN))
    for args, stdin in ((["--destination", name, "--metric", "successes", "--at", "yesterday"], None),
                        (["--destination", name, "--metric", "successes", "--n", "x", "--at", iso(t0)], None),
                        (["--destination", name, "--metric", "successes", "--latency", "5", "--at", iso(t0)], None),
                        (["--destination", name, "--latency", "5,x", "--at", iso(t0)], None),
                        (["--metric", "successes", "--at", iso(t0)], None),
                        (["--stdin"], f"count {name} successes {iso(t0)} 1000\ncount {name} successes\n"),
                        (["--stdin"], f"latency {name} {iso(t0)} ms\n")):
        p = server.cli("metrics", "add", *args, input=stdin, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
    t = totals(summary(server, path, start_time=iso(t0), end_time=iso(t0 + HOUR)))
    assert t["retried"]["total"] == 4 and t["successes"]["total"] == 1
    assert t["time_to_success_p50"]["total"] == 20 and t["time_to_success_p99"]["total"] == 30

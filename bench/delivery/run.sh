#!/usr/bin/env bash
# Delivery benchmark: events sent to the intake (bench/delivery/load.py: /v1/batch of
# BENCH_BATCH events) are delivered by the engine to a classic Webhooks destination whose
# URL is a fast local receiver (bench/delivery/receiver.c, libmicrohttpd, records
# intake-to-receipt latency = arrival − the event's receivedAt). Two phases on one server:
#   full  load as fast as the intake takes it for BENCH_DURATION s; deliveries/s =
#         events received / (last − first arrival) once everything arrived
#   half  load paced at half the measured delivery rate; p50/p99 intake-to-receipt latency
#   outage the receiver answers 503 for BENCH_OUTAGE s (60) while BENCH_OUTAGE_RATE events/s
#         (500) keep coming, then recovers: the server's RSS is sampled every 2 s throughout
#         (it must stay flat: retries wait in the database, not in memory) and every event
#         must arrive after the recovery. The server runs with MANIFOLD_RETRY_TIME_SCALE=0.02
#         (the 30 s, 1 m, 2 m … schedule becomes 0.6 s, 1.2 s, 2.4 s …) so that the backlog
#         drains within a minute or two of the recovery; the full and half phases have no
#         retries, so the scale does not touch them.
# Goals: ≥ 10,000 deliveries/s; p99 < 250 ms at half rate; memory flat through a one-minute
# outage and its recovery. Every accepted event must
# arrive (the run fails otherwise). Results go to docs/delivery.md between the
# bench/delivery markers (BENCH_NO_DOCS=1 leaves it alone).
#
# Knobs: BENCH_DURATION (10), BENCH_BATCH (100), BENCH_LOAD_THREADS (4), MANIFOLD_BIN
# (build/manifold), BENCH_DATABASE (a postgres:// URL; default a fresh SQLite file),
# RECEIVER_THREADS (2), BENCH_OUTAGE (60; 0 skips the phase), BENCH_OUTAGE_RATE (500). A 20 s smoke run: BENCH_DURATION=5 bench/delivery/run.sh
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
bench_init delivery

DURATION=${BENCH_DURATION:-10}
BATCH=${BENCH_BATCH:-100}
LTHREADS=${BENCH_LOAD_THREADS:-4}
RTHREADS=${RECEIVER_THREADS:-2}
OUTAGE=${BENCH_OUTAGE:-60}
OUTAGE_RATE=${BENCH_OUTAGE_RATE:-500}
BIN=${MANIFOLD_BIN:-$ROOT/build/manifold}
DOC="$ROOT/docs/delivery.md"
WS=/v1beta/workspaces/myworkspace

need_tools cc curl python3 pkg-config
need_manifold
bench_workdir manifold-bench-delivery

# shellcheck disable=SC2046
cc -O2 -Wall -Wextra -o "$WORK/receiver" "$HERE/receiver.c" $(pkg-config --cflags --libs libmicrohttpd) -lpthread
pick_port
RPORT=$PORT
"$WORK/receiver" "$RPORT" "$RTHREADS" >"$WORK/receiver.log" 2>&1 &
RPID=$!
PIDS+=("$RPID")
wait_http "http://127.0.0.1:$RPORT/stats" "$RPID" receiver

dir="$WORK/manifold"
mkdir -p "$dir"
pick_port
DB=${BENCH_DATABASE:-$dir/manifold.db}
MANIFOLD_RETRY_TIME_SCALE=0.02 "$BIN" serve --listen "127.0.0.1:$PORT" --database "$DB" --key-file "$dir/manifold.key" --rate-limit 0 \
    >"$WORK/manifold.log" 2>&1 &
MPID=$!
PIDS+=("$MPID")
M="http://127.0.0.1:$PORT"
for _ in $(seq 150); do
    [ -s "$dir/bootstrap-token" ] || [ -s var/bootstrap-token ] && break
    sleep 0.1
done
wait_http "$M/readyz" "$MPID" manifold
TOKEN=$(cat "$dir/bootstrap-token" 2>/dev/null || cat var/bootstrap-token)
SRC=bench-delivery-$$
body=$(curl -sS -H "Authorization: Bearer $TOKEN" -d "{\"source\":{\"name\":\"workspaces/myworkspace/sources/$SRC\",\"catalog_name\":\"catalog/sources/javascript\"}}" "$M$WS/sources")
KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["write_keys"][0])' <<<"$body") || die "no write key: $body"
curl -sS -o /dev/null -H "Authorization: Bearer $TOKEN" -d "{\"destination\":{\"name\":\"workspaces/myworkspace/sources/$SRC/destinations/webhooks\",\"enabled\":true,\"connection_mode\":\"CLOUD\",\"config\":[{\"name\":\"globalHook\",\"value\":\"http://127.0.0.1:$RPORT/hook\"},{\"name\":\"sharedSecret\",\"value\":\"bench\"}]}}" "$M$WS/sources/$SRC/destinations"

stat_of() { curl -s "http://127.0.0.1:$RPORT/stats" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
drain() { # WANT [SECONDS]: waits until the receiver counted WANT requests (60 s by default)
    local limit=${2:-60}
    for _ in $(seq $((limit * 10))); do
        [ "$(stat_of count)" -ge "$1" ] && return 0
        sleep 0.1
    done
    die "only $(stat_of count) of $1 accepted events arrived within $limit s"
}
load() { python3 "$HERE/load.py" 127.0.0.1 "$PORT" "$KEY" "$1" "${2:-$DURATION}" "$LTHREADS" "$BATCH"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$MPID/status"; }

say "full: load as fast as the intake answers for ${DURATION}s"
curl -s -o /dev/null "http://127.0.0.1:$RPORT/reset"
out=$(load 0)
acc=$(awk -F'[= ]' '{print $2}' <<<"$out")
say "full: $out; waiting for every event to arrive"
drain "$acc"
first=$(stat_of first_ms); last=$(stat_of last_ms)
RATE=$(awk -v n="$acc" -v a="$first" -v b="$last" 'BEGIN { printf "%.0f", (b > a) ? n * 1000 / (b - a) : n }')
FULL_P50=$(stat_of p50_ms); FULL_P99=$(stat_of p99_ms)
say "full: $acc deliveries, $RATE deliveries/s (p50 ${FULL_P50} ms, p99 ${FULL_P99} ms under saturation)"

HALF=$((RATE / 2))
say "half: paced at $HALF events/s for ${DURATION}s"
curl -s -o /dev/null "http://127.0.0.1:$RPORT/reset"
out=$(load "$HALF")
acc2=$(awk -F'[= ]' '{print $2}' <<<"$out")
drain "$acc2"
P50=$(stat_of p50_ms); P99=$(stat_of p99_ms)
say "half: $out; p50 $P50 ms, p99 $P99 ms"

OUT_ROW=""
if [ "$OUTAGE" -gt 0 ]; then
    say "outage: the receiver answers 503 for ${OUTAGE}s while $OUTAGE_RATE events/s arrive"
    curl -s -o /dev/null "http://127.0.0.1:$RPORT/reset"
    RSS0=$(rss_kb)
    (while kill -0 "$MPID" 2>/dev/null; do rss_kb; sleep 2; done) >"$WORK/rss.log" 2>/dev/null &
    SAMPLER=$!
    PIDS+=("$SAMPLER")
    curl -s -o /dev/null "http://127.0.0.1:$RPORT/down"
    out=$(load "$OUTAGE_RATE" "$OUTAGE")
    acc3=$(awk -F'[= ]' '{print $2}' <<<"$out")
    RSS_DOWN=$(sort -n "$WORK/rss.log" | tail -1)
    PENDING=$(curl -s -H "Authorization: Bearer $TOKEN" "$M$WS/sources/$SRC/destinations/webhooks/metrics:getSummary" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("pending_retry", "?"))')
    curl -s -o /dev/null "http://127.0.0.1:$RPORT/up"
    t0=$(date +%s%N)
    drain "$acc3" 300
    RECOVER_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    sleep 2
    kill "$SAMPLER" 2>/dev/null || true
    RSS_MAX=$(sort -n "$WORK/rss.log" | tail -1)
    RSS_END=$(rss_kb)
    GROWTH=$(awk -v a="$RSS0" -v b="$RSS_MAX" 'BEGIN { printf "%.0f", (b - a) / 1024 }')
    say "outage: $out; $PENDING pending at recovery; all arrived ${RECOVER_S}s after; RSS ${RSS0} -> max ${RSS_MAX} -> ${RSS_END} KiB"
    FLAT=$(awk -v a="$RSS0" -v b="$RSS_MAX" 'BEGIN { print (b - a < 32768) ? 1 : 0 }')
    OUT_ROW="| ${OUTAGE} s outage at $(fmt_int "$OUTAGE_RATE") events/s ($acc3 events, $PENDING waiting for a retry at recovery): server RSS before / max / after | $((RSS0 / 1024)) / $((RSS_MAX / 1024)) / $((RSS_END / 1024)) MiB (+$GROWTH MiB); every event arrived ${RECOVER_S} s after the recovery | flat (< 32 MiB growth): $(verdict "$FLAT") |"
fi

report="$(cat <<MD
Last run: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores (shared), database ${BENCH_DATABASE:+PostgreSQL}${BENCH_DATABASE:-SQLite}, \`BENCH_DURATION=$DURATION BENCH_OUTAGE=$OUTAGE BENCH_OUTAGE_RATE=$OUTAGE_RATE bench/delivery/run.sh\`.

| measure | result | goal |
|---|---|---|
| deliveries/s (full load, $acc events) | $(fmt_int "$RATE") | ≥ 10,000: $(verdict "$(ge "$RATE" 10000)") |
| intake-to-receipt p50 / p99 at half rate ($(fmt_int "$HALF") events/s) | $P50 ms / $P99 ms | p99 < 250 ms: $(verdict "$(lt "$P99" 250)") |
| intake-to-receipt p50 / p99 under saturation | $FULL_P50 ms / $FULL_P99 ms | |
$OUT_ROW
MD
)"
printf '%s\n' "$report"
write_doc_section delivery "$DOC" "$report"

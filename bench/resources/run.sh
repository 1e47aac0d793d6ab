#!/usr/bin/env bash
# Resource-engine benchmark: how manifold's sources and destinations behave as a workspace
# grows, and how fast durable creates are. One run measures, side by side, with wrk on
# this box:
#   for each size in BENCH_SIZES (100 and 100,000 sources), on a fresh SQLite database:
#     seed     the workspace through the API with concurrent POST .../sources (create
#              throughput, group commit statistics from manifold's debug log)
#     walk     every page of GET .../sources?page_size=100 (checks the count and order)
#     list     GET .../sources?page_size=100                      (the first page)
#     deep     GET .../sources?page_size=100&page_token=...       (page BENCH_DEEP_PAGES+1)
#     get      GET .../sources/<middle source>/destinations/google-analytics
#   raw SQLite   bench/resources/raw_sqlite.c: single-row INSERT + COMMIT per transaction,
#                WAL, synchronous=FULL, on the same disk (peer a: the disk's durable
#                commit rate), and the same with BENCH_RAW_BATCH rows per commit (the
#                batched commit rate: creates/s are reported as a ratio of it)
#   256 conns    the same creates into a fresh database with BENCH_HI_CONNECTIONS (256)
#                connections and the server's default threads (a group must grow with the
#                load, not with --threads)
#   json-server  json-server 0.17 (bench/resources/package.json) taking the same POSTs for
#                BENCH_CREATE_SECONDS from an empty file (peer b)
# then checks the issue's goals, prints a table and writes it into
# docs/benchmarks-resources.md between the bench/resources markers.
#
# Knobs (environment): BENCH_SIZES ("100 100000"), BENCH_CONNECTIONS (64), BENCH_WARMUP
# seconds (2), BENCH_DURATION seconds (8), BENCH_THREADS wrk threads (nproc),
# BENCH_DEEP_PAGES (500), BENCH_SEED_TIMEOUT seconds (300), BENCH_CREATE_SECONDS (10, the
# json-server run), BENCH_RAW_SECONDS (5), BENCH_RAW_BATCH (100), BENCH_HI_TOTAL (20000:
# creates in the extra row with more connections; 0 skips it), BENCH_HI_THREADS (the
# server's --threads in that row; default: its own default), BENCH_HI_CONNECTIONS (256;
# the server runs with --max-per-ip above it), MANIFOLD_BIN
# (build/manifold), MANIFOLD_THREADS (manifold's --threads; default: its own default),
# BENCH_OUT (build/bench/resources: raw output), BENCH_NO_DOCS=1 (leave docs/ alone).
# Loopback only; every run is bounded in time; every process it starts is stopped on exit.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
bench_init resources

SIZES=${BENCH_SIZES:-100 100000}
CONNS=${BENCH_CONNECTIONS:-64}
WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-8}
THREADS=${BENCH_THREADS:-$(nproc)}
DEEP=${BENCH_DEEP_PAGES:-500}
SEED_TIMEOUT=${BENCH_SEED_TIMEOUT:-300}
CREATE_SECONDS=${BENCH_CREATE_SECONDS:-10}
RAW_SECONDS=${BENCH_RAW_SECONDS:-5}
RAW_BATCH=${BENCH_RAW_BATCH:-100}
HI_TOTAL=${BENCH_HI_TOTAL:-20000}
HI_THREADS=${BENCH_HI_THREADS:-}
HI_CONNS=${BENCH_HI_CONNECTIONS:-256}
BIN=${MANIFOLD_BIN:-$ROOT/build/manifold}
OUT=${BENCH_OUT:-$ROOT/build/bench/resources}
DOC="$ROOT/docs/benchmarks-resources.md"
WS=/v1beta/workspaces/myworkspace
DEST=google-analytics

need_tools wrk node npm cc curl awk
need_manifold

bench_workdir manifold-bench-resources
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log

# ---- helpers (the shared ones are in bench/lib.sh) ------------------------------------------
# Context switches (voluntary and not) of all of a process's threads so far.
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "inf" && a <= b) ? 1 : 0 }'; }
ERRORS=0
check_errors() { # KEY RESULT_LINE
    local bad
    bad=$(( $(kv "$2" non2xx) + $(kv "$2" sockerr) ))
    if [ "$bad" -ne 0 ]; then
        say "$1: $(kv "$2" non2xx) non-2xx responses, $(kv "$2" sockerr) socket errors"
        ERRORS=1
    fi
}

# ---- load on the box before we start ---------------------------------------------------------
load_before

# ---- build the raw SQLite peer, install json-server -----------------------------------------
say "building bench/resources/raw_sqlite.c"
cc -O2 -Wall -Wextra -o "$WORK/raw_sqlite" "$HERE/raw_sqlite.c" -lsqlite3
need_node_package json-server

# ---- peer (a): raw SQLite on this disk -------------------------------------------------------
declare -A RES
raw_run() { # KEY ROWS_PER_COMMIT
    local line
    rm -f "$WORK/raw.db" "$WORK/raw.db-wal" "$WORK/raw.db-shm"
    say "$1: raw SQLite, $2 row(s) per commit, ${RAW_SECONDS}s"
    line=$("$WORK/raw_sqlite" "$WORK/raw.db" "$2" "$RAW_SECONDS" | grep '^RESULT ') || die "raw_sqlite failed"
    echo "$line" >"$OUT/$1.txt"
    RES[$1]=$line
    rm -f "$WORK/raw.db" "$WORK/raw.db-wal" "$WORK/raw.db-shm"
}
raw_run raw1 1
raw_run rawN "$RAW_BATCH"

# ---- manifold, one fresh database per size -----------------------------------------------------
declare -A SEED INFO
manifold_up() { # DIR [THREADS]: start_manifold (bench/lib.sh) with this benchmark's flags;
    # --log-level debug: manifold logs one line per group commit (size and duration), and
    # nothing per request.
    local threads=${2:-${MANIFOLD_THREADS:-}} extra=()
    [ -n "$threads" ] && extra=(--threads "$threads")
    start_manifold "$1" "/v1beta/catalog/sources?page_size=1" \
        --rate-limit 0 --log-level debug --max-per-ip 1024 --max-connections 2048 "${extra[@]}"
}

run_create() { # KEY URL TOTAL(0 = for CREATE_SECONDS) SERVER_PID TOKEN [CONNECTIONS]
    local key=$1 url=$2 total=$3 pid=$4 tok=$5 conns=${6:-$CONNS} line dur what
    rm -rf "$WORK/done"; mkdir -p "$WORK/done"
    if [ "$total" -gt 0 ]; then dur=$SEED_TIMEOUT; else dur=$CREATE_SECONDS; fi
    if [ "$total" -gt 0 ]; then what="$(fmt_int "$total") creates"; else what="creates for ${CREATE_SECONDS}s"; fi
    say "$key: POST $what ($conns connections, $THREADS threads)"
    local cs0
    cs0=$(ctxsw "$pid")
    window "$pid" env MANIFOLD_TOKEN="$tok" BENCH_PATH="$WS/sources" BENCH_PREFIX=src BENCH_TOTAL="$total" \
        BENCH_THREADS="$THREADS" BENCH_STATE_DIR="$WORK/done" \
        timeout $((dur + 60)) wrk -t"$THREADS" -c"$conns" -d"${dur}s" --timeout 10s --latency \
        -s "$HERE/create.lua" "$url" >"$OUT/$key.txt"
    line=$(grep '^RESULT ' "$OUT/$key.txt") || die "$key: wrk printed no result (see $OUT/$key.txt)"
    check_errors "$key" "$line"
    [ "$(kv "$line" failed)" = 0 ] || say "$key: first failure: $(kv "$line" first_error)"
    if [ "$total" -gt 0 ] && [ "$(kv "$line" created)" -ne "$total" ]; then
        die "$key: created $(kv "$line" created) of $total sources within ${SEED_TIMEOUT}s (see $OUT/$key.txt)"
    fi
    RES[$key]="$line srv=$WIN_SRV gen=$WIN_GEN other=$WIN_OTHER secs=$WIN_SECS ctxsw=$(( $(ctxsw "$pid") - cs0 ))"
}

run_get() { # KEY URL SERVER_PID
    local key=$1 url=$2 pid=$3 line
    say "$key: warm-up ${WARMUP}s, then ${DURATION}s measured ($CONNS connections, $THREADS threads)"
    MANIFOLD_TOKEN=$TOKEN timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s \
        -s "$HERE/get.lua" "$url" >/dev/null
    window "$pid" env MANIFOLD_TOKEN="$TOKEN" timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" \
        -d"${DURATION}s" --timeout 5s --latency -s "$HERE/get.lua" "$url" >"$OUT/$key.txt"
    line=$(grep '^RESULT ' "$OUT/$key.txt") || die "$key: wrk printed no result (see $OUT/$key.txt)"
    check_errors "$key" "$line"
    RES[$key]="$line srv=$WIN_SRV gen=$WIN_GEN other=$WIN_OTHER secs=$WIN_SECS"
}

# Group commits logged since line FROM of the manifold log: "commits txns max sum_ms".
group_stats() {
    tail -n +"$1" "$WORK/manifold.log" | awk '/group commit: / {
        for (i = 1; i <= NF; i++) if ($i == "commit:") { n = $(i + 1); t = $(i + 4) }
        c++; s += n; if (n > m) m = n; ms += t }
        END { printf "%d %d %d %d", c, s, m, ms }'
}

for N in $SIZES; do
    dir="$WORK/db-$N"
    say "--- $(fmt_int "$N") sources: fresh database"
    manifold_up "$dir"
    from=$(($(wc -l <"$WORK/manifold.log") + 1))
    run_create "seed-$N" "$M$WS/sources" "$N" "$MPID" "$TOKEN"
    SEED[$N]=$(group_stats "$from")
    # A destination on the source in the middle of the collection.
    mid=$(printf 'src-%07d' $((N / 2)))
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"destination\":{\"name\":\"workspaces/myworkspace/sources/$mid/destinations/$DEST\",\"enabled\":false}}" \
        "$M$WS/sources/$mid/destinations" || die "creating $DEST on $mid failed"
    # Walk every page: checks the count and the order, and finds the deep page's token.
    walk=$(node "$HERE/walk.js" "$M" "$WS/sources" "$TOKEN" "$DEEP") || die "walking the pages failed"
    items=$(echo "$walk" | node -p 'JSON.parse(require("fs").readFileSync(0)).items')
    [ "$items" -eq "$N" ] || die "the workspace lists $items sources, not $N"
    deep_token=$(echo "$walk" | node -p 'JSON.parse(require("fs").readFileSync(0)).deep_token')
    INFO[walk-$N]=$walk
    say "walked $(echo "$walk" | node -p 'const w = JSON.parse(require("fs").readFileSync(0)); `${w.pages} pages, ${w.items} sources in ${w.ms} ms`')"
    curl -sf -H "Authorization: Bearer $TOKEN" -o "$WORK/page.json" "$M$WS/sources?page_size=100" || die "list failed"
    INFO[listbytes-$N]=$(wc -c <"$WORK/page.json")
    curl -sf -H "Authorization: Bearer $TOKEN" -o "$WORK/dest.json" "$M$WS/sources/$mid/destinations/$DEST" || die "get failed"
    INFO[getbytes-$N]=$(wc -c <"$WORK/dest.json")

    run_get "list-$N" "$M$WS/sources?page_size=100" "$MPID"
    if [ -n "$deep_token" ]; then
        curl -sf -H "Authorization: Bearer $TOKEN" -o "$WORK/deep.json" "$M$WS/sources?page_size=100&page_token=$deep_token" \
            || die "deep page failed"
        INFO[deepbytes-$N]=$(wc -c <"$WORK/deep.json")
        run_get "deep-$N" "$M$WS/sources?page_size=100&page_token=$deep_token" "$MPID"
    fi
    run_get "get-$N" "$M$WS/sources/$mid/destinations/$DEST" "$MPID"

    INFO[dbsize-$N]=$(du -sk "$dir" | cut -f1)
    INFO[hwm-$N]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MPID/status")
    cp "$WORK/manifold.log" "$OUT/manifold-$N.log"
    stop_pid "$MPID"
done

# ---- the same creates with more connections ------------------------------------------------------
# A group holds whatever arrived during one fsync; a waiting writer holds no server thread,
# so the group (and the rate) should follow the load: this row repeats the creates with
# HI_CONNS connections (skipped with BENCH_HI_TOTAL=0).
if [ "$HI_TOTAL" -gt 0 ]; then
    say "--- $(fmt_int "$HI_TOTAL") creates with $HI_CONNS connections${HI_THREADS:+, --threads $HI_THREADS}: fresh database"
    default_threads=$MTHREADS
    manifold_up "$WORK/db-hi" "$HI_THREADS"
    from=$(($(wc -l <"$WORK/manifold.log") + 1))
    run_create seed-hi "$M$WS/sources" "$HI_TOTAL" "$MPID" "$TOKEN" "$HI_CONNS"
    SEED[hi]=$(group_stats "$from")
    HI_MTHREADS=$MTHREADS
    MTHREADS=$default_threads
    cp "$WORK/manifold.log" "$OUT/manifold-hi.log"
    stop_pid "$MPID"
fi

# ---- peer (b): json-server taking the same POSTs ---------------------------------------------------
echo '{"sources": []}' >"$WORK/json-server.json"
for attempt in 1 2 3 4 5; do
    pick_port
    JPORT=$PORT
    node "$HERE/json-server.js" "$WORK/json-server.json" "$JPORT" >"$WORK/json-server.log" 2>&1 &
    JPID=$!
    PIDS+=("$JPID")
    for _ in $(seq 150); do
        kill -0 "$JPID" 2>/dev/null || break
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$JPORT/sources" && break
        sleep 0.1
    done
    if ! kill -0 "$JPID" 2>/dev/null && grep -q EADDRINUSE "$WORK/json-server.log"; then
        say "port $JPORT was taken meanwhile; trying another (attempt $attempt)"
        stop_pid "$JPID"
        continue
    fi
    break
done
wait_http "http://127.0.0.1:$JPORT/sources" "$JPID" json-server
run_create json-server "http://127.0.0.1:$JPORT$WS/sources" 0 "$JPID" "$TOKEN" # the same header, ignored
sleep 0.5 # its last writeFileSync
JS_ITEMS=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).sources.length' "$WORK/json-server.json" 2>/dev/null || echo "?")
JS_KB=$(du -k "$WORK/json-server.json" | cut -f1)
stop_pid "$JPID"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tables, goals ---------------------------------------------------------------------------------
r() { kv "${RES[$1]}" "$2"; }
rps() { awk -v n="$(r "$1" requests)" -v d="$(r "$1" duration_us)" 'BEGIN { printf "%.0f", n / (d / 1e6) }'; }
set -- $SIZES
SMALL=$1
LARGE=${!#}

READS="| Request | Sources in workspace | Body | req/s | p50 | p99 | p99 vs $(fmt_int "$SMALL") sources | server CPU | other load |
|---|--:|--:|--:|--:|--:|--:|--:|--:|"
OTHER_MAX=0
OTHER_SUM=0
OTHER_N=0
note_other() { # KEY: counts its window's "other load" (windows under 2 s are too short
    # for /proc/stat's 10 ms ticks, and are left out)
    local o
    o=$(r "$1" other)
    [ "$(ge "$(r "$1" secs)" 2)" = 1 ] || return 0
    set -- "$o"
    OTHER_MAX=$(awk -v a="$OTHER_MAX" -v b="$1" 'BEGIN { print (b > a) ? b : a }')
    OTHER_SUM=$(awk -v a="$OTHER_SUM" -v b="$1" 'BEGIN { print a + b }')
    OTHER_N=$((OTHER_N + 1))
}
for ep in list deep get; do
    for N in $SIZES; do
        k="$ep-$N"
        [ -n "${RES[$k]:-}" ] || continue
        case $ep in
            list) label="GET .../sources?page_size=100 (first page)"; bytes=${INFO[listbytes-$N]} ;;
            deep) label="GET .../sources?page_size=100&page_token=… (page $((DEEP + 1)))"; bytes=${INFO[deepbytes-$N]} ;;
            get) label="GET .../sources/<slug>/destinations/$DEST"; bytes=${INFO[getbytes-$N]} ;;
        esac
        base=list-$SMALL
        [ "$ep" = get ] && base=get-$SMALL
        growth=$(ratio "$(r "$k" p99_us)" "$(r "$base" p99_us)")
        note_other "$k"
        READS+="
| $label | $(fmt_int "$N") | $(fmt_int "$bytes") B | $(fmt_int "$(rps "$k")") | $(ms "$(r "$k" p50_us)") | $(ms "$(r "$k" p99_us)") | ${growth}× | $(r "$k" srv) cores | $(r "$k" other) cores |"
    done
done

create_rate() { awk -v c="$(r "$1" created)" -v e="$(r "$1" elapsed_us)" 'BEGIN { printf "%.0f", c / (e / 1e6) }'; }
raw_rate() { awk -v c="$(r "$1" "$2")" -v s="$(r "$1" seconds)" 'BEGIN { printf "%.0f", c / s }'; }
CREATES="| Writer | Creates | creates/s | p50 | p99 | Notes |
|---|--:|--:|--:|--:|---|"
seed_row() { # KEY STATS LABEL THREADS
    local k=$1 gc gt gm gms el
    read -r gc gt gm gms <<<"$2"
    el=$(r "$k" elapsed_us)
    note_other "$k"
    CREATES+="
| $3 | $(fmt_int "$(r "$k" created)") | **$(fmt_int "$(create_rate "$k")")** | $(ms "$(r "$k" p50_us)") | $(ms "$(r "$k" p99_us)") | $(ratio "$(create_rate "$k")" "$(raw_rate rawN rows)")× raw SQLite's batched rate ($RAW_BATCH rows per commit); $(fmt_int "$gc") commits, $(awk -v t="$gt" -v c="$gc" 'BEGIN { printf "%.1f", c ? t / c : 0 }') creates per commit on average (max $gm, $4 server threads); the flusher's COMMIT + fsync ran $(awk -v m="$gms" -v e="$el" 'BEGIN { printf "%.0f%%", 100 * m / (e / 1000) }') of the wall time; server CPU $(r "$k" srv) cores = $(awk -v s="$(r "$k" srv)" -v e="$el" -v c="$(r "$k" created)" 'BEGIN { printf "%.0f", s * (e / 1e6) / c * 1e6 }') µs and $(awk -v n="$(r "$k" ctxsw)" -v c="$(r "$k" created)" 'BEGIN { printf "%.1f", n / c }') context switches per create; other load $(r "$k" other) cores |"
}
for N in $SIZES; do
    seed_row "seed-$N" "${SEED[$N]}" "manifold, POST .../sources into an empty workspace up to $(fmt_int "$N") sources ($CONNS connections; SQLite, durable group commit)" "$MTHREADS"
done
if [ "$HI_TOTAL" -gt 0 ]; then
    seed_row seed-hi "${SEED[hi]}" "manifold as above with $HI_CONNS connections, up to $(fmt_int "$HI_TOTAL") sources" "$HI_MTHREADS"
fi
CREATES+="
| raw SQLite, 1 single-row INSERT per COMMIT (1 thread) | $(fmt_int "$(r raw1 rows)") | $(fmt_int "$(raw_rate raw1 rows)") | $(ms "$(r raw1 commit_p50_us)") | $(ms "$(r raw1 commit_p99_us)") | = $(fmt_int "$(raw_rate raw1 commits)") durable commits/s: this disk's fsync rate as SQLite sees it |
| raw SQLite, $RAW_BATCH single-row INSERTs per COMMIT (1 thread) | $(fmt_int "$(r rawN rows)") | $(fmt_int "$(raw_rate rawN rows)") | $(ms "$(r rawN commit_p50_us)") | $(ms "$(r rawN commit_p99_us)") | $(fmt_int "$(raw_rate rawN commits)") commits/s; latency per commit of $RAW_BATCH rows: what a full group commit could reach |
| json-server $(node -p 'require(process.argv[1]).version' "$HERE/node_modules/json-server/package.json"), same POSTs, ${CREATE_SECONDS} s from an empty file | $(fmt_int "$(r json-server created)") | $(fmt_int "$(create_rate json-server)") | $(ms "$(r json-server p50_us)") | $(ms "$(r json-server p99_us)") | rewrites the whole JSON file on every create, no fsync ($JS_ITEMS sources, $(fmt_int "$JS_KB") KiB at the end); server CPU $(r json-server srv) cores |"
note_other json-server

SEED_RATE=$(create_rate "seed-$LARGE")
# A comparison whose windows had other work on the box says so next to its verdict.
caveat() { # KEY...
    local k worst=0
    for k in "$@"; do worst=$(awk -v a="$worst" -v b="$(r "$k" other)" 'BEGIN { print (b > a) ? b : a }'); done
    if [ "$(ge "$worst" 0.2)" = 1 ]; then
        printf ' (inconclusive: other processes used up to %s cores during these rows; re-run on a quiet box)' "$worst"
    fi
}
GOALS="| Goal | Measured | Verdict |
|---|---|---|"
for ep in list get; do
    g=$(ratio "$(r "$ep-$LARGE" p99_us)" "$(r "$ep-$SMALL" p99_us)")
    what="list sources (page of 100)"
    [ "$ep" = get ] && what="get one destination"
    GOALS+="
| $what: p99 at $(fmt_int "$LARGE") sources ≤ 2× p99 at $(fmt_int "$SMALL") | $(ms "$(r "$ep-$LARGE" p99_us)") vs $(ms "$(r "$ep-$SMALL" p99_us)") = ${g}× | $(verdict "$(le "$g" 2)")$(caveat "$ep-$LARGE" "$ep-$SMALL") |"
done
if [ -n "${RES[deep-$LARGE]:-}" ]; then
    g=$(ratio "$(r "deep-$LARGE" p99_us)" "$(r "list-$LARGE" p99_us)")
    GOALS+="
| a deep page costs what the first page costs (page $((DEEP + 1)) of $(echo "${INFO[walk-$LARGE]}" | node -p 'JSON.parse(require("fs").readFileSync(0)).pages'); p99 ≤ 2× the first page's, req/s within 2×) | p99 $(ms "$(r "deep-$LARGE" p99_us)") vs $(ms "$(r "list-$LARGE" p99_us)") = ${g}×; $(fmt_int "$(rps "deep-$LARGE")") vs $(fmt_int "$(rps "list-$LARGE")") req/s | $(verdict "$(( $(le "$g" 2) * $(le "$(ratio "$(rps "list-$LARGE")" "$(rps "deep-$LARGE")")" 2) ))")$(caveat "deep-$LARGE" "list-$LARGE") |"
fi
GOALS+="
| ≥ 4,000 durable creates/s on SQLite (seeding $(fmt_int "$LARGE") sources, $CONNS connections) | $(fmt_int "$SEED_RATE")/s ($(ratio "$SEED_RATE" "$(raw_rate rawN rows)")× raw SQLite's batched rate of $RAW_BATCH rows per commit, $(ratio "$SEED_RATE" "$(raw_rate raw1 rows)")× raw SQLite at 1 row per commit, $(ratio "$SEED_RATE" "$(create_rate json-server)")× json-server) | $(verdict "$(ge "$SEED_RATE" 4000)")$(caveat "seed-$LARGE") |"
if [ "$HI_TOTAL" -gt 0 ]; then
    HI_RATE=$(create_rate seed-hi)
    GOALS+="
| ≥ 4,000 durable creates/s with $HI_CONNS connections (groups grow with the load) | $(fmt_int "$HI_RATE")/s ($(ratio "$HI_RATE" "$(raw_rate rawN rows)")× raw SQLite's batched rate) | $(verdict "$(ge "$HI_RATE" 4000)")$(caveat seed-hi) |"
fi

# ---- what limits the numbers (from this run's measurements) ---------------------------------------
read -r gc gt gm gms <<<"${SEED[$LARGE]}"
el=$(r "seed-$LARGE" elapsed_us)
LIMITS="- Creates: each create is one write transaction (three rows: the source, its schema config and its audit-trail event) on SQLite's single writer, and manifold commits them in groups: $(fmt_int "$gc") COMMITs for $(fmt_int "$gt") creates, $(awk -v t="$gt" -v c="$gc" 'BEGIN { printf "%.1f", c ? t / c : 0 }') per COMMIT on average and at most $gm with $MTHREADS server threads (a writer waiting for its group is a suspended connection, not a thread, so a group holds whatever arrived during one fsync). The flusher's COMMIT (WAL append) + fsync ran $(awk -v m="$gms" -v e="$el" 'BEGIN { printf "%.0f%%", 100 * m / (e / 1000) }') of the wall time, $(awk -v m="$gms" -v c="$gc" 'BEGIN { printf "%.2f", c ? m / c : 0 }') ms per group on average (raw SQLite on this disk: $(ms "$(r raw1 commit_p50_us)") p50 for 1 row, $(ms "$(r rawN commit_p50_us)") for $RAW_BATCH), while the next group fills. The server used $(r "seed-$LARGE" srv) cores, $(awk -v s="$(r "seed-$LARGE" srv)" -v e="$el" -v c="$gt" 'BEGIN { printf "%.0f", s * (e / 1e6) / c * 1e6 }') µs per create, with $(awk -v n="$(r "seed-$LARGE" ctxsw)" -v c="$gt" 'BEGIN { printf "%.1f", n / c }') context switches per create; wrk used $(r "seed-$LARGE" gen) of the box's $(nproc) cores."
if [ "$HI_TOTAL" -gt 0 ]; then
    read -r gc gt gm gms <<<"${SEED[hi]}"
    LIMITS+=" With $HI_CONNS connections: $(awk -v t="$gt" -v c="$gc" 'BEGIN { printf "%.1f", c ? t / c : 0 }') creates per commit (max $gm), $(fmt_int "$(create_rate seed-hi)") creates/s."
fi
for N in $SIZES; do
    LIMITS+="
- List at $(fmt_int "$N"): server $(r "list-$N" srv) cores, wrk $(r "list-$N" gen), other processes $(r "list-$N" other) (of $(nproc)); get destination: server $(r "get-$N" srv), wrk $(r "get-$N" gen), other $(r "get-$N" other)."
done

machine_info
OTHER_MEAN=$(awk -v s="$OTHER_SUM" -v n="$OTHER_N" 'BEGIN { printf "%.2f", n ? s / n : 0 }')
BUSY_NOTE="quiet enough: numbers stand"
if [ "$(ge "$OTHER_MAX" 0.2)" = 1 ]; then
    BUSY_NOTE="**the box was busy with other work during the run: treat the numbers as lower bounds and re-run when it is quiet**"
fi
REPORT="Command: \`make bench\` (this section: \`bench/resources/run.sh\`), $(date -u '+%Y-%m-%d %H:%M UTC'), manifold at commit $COMMIT.

Machine: $(nproc) cores, $CPU_MODEL, $MEM RAM, $OS, kernel $(uname -r); database files on $DISK, whose durable commit rate (raw SQLite, 1 row per commit, WAL, synchronous=FULL) is $(fmt_int "$(raw_rate raw1 commits)")/s ($(ms "$(r raw1 commit_p50_us)") p50 per commit).
Load on the box: load average $LOAD_BEFORE before the run, $LOAD_AFTER after; CPU used by processes other than the server under test and wrk: $OTHER_MEAN cores on average over the measured windows of 2 s or more, $OTHER_MAX at most (of $(nproc)) — $BUSY_NOTE.
Load generator: wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') on the same box, $THREADS threads, $CONNS keep-alive connections; reads: ${WARMUP} s warm-up then ${DURATION} s measured per row, every request with \`Authorization: Bearer\`; creates: \`bench/resources/create.lua\`, a new slug per POST, until the workspace holds the target (manifold) or for ${CREATE_SECONDS} s (json-server). Manifold: default flags but \`--rate-limit 0 --log-level debug\` (the debug log is one line per group commit), $MTHREADS threads, a fresh SQLite database per size. Peak RSS (VmHWM): $(for N in $SIZES; do printf '%s KiB at %s sources; ' "${INFO[hwm-$N]}" "$(fmt_int "$N")"; done)database directory $(for N in $SIZES; do printf '%s KiB at %s; ' "$(fmt_int "${INFO[dbsize-$N]}")" "$(fmt_int "$N")"; done | sed 's/; $//').

Reads (\"server CPU\" is the server process's user+system time over the measured window; \"other load\" is CPU used by everything else on the box but wrk in that window; the box has $(nproc) cores):

$READS

Creates (durable unless noted):

$CREATES

$GOALS

What limits the numbers in this run:

$LIMITS"

printf '\n%s\n\n' "$REPORT"

write_doc_section resources "$DOC" "$REPORT"
printf '%s\n' "$REPORT" >"$OUT/results.md"
[ "$ERRORS" -eq 0 ] || die "some requests failed (see above and $OUT)"

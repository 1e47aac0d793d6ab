# shellcheck shell=bash disable=SC2034  # (sourced: the variables it sets are the callers')
# Shared plumbing for the bench/*/run.sh scripts (sourced, not run): the preamble (say/die,
# tool and binary checks), a scratch directory with every started process stopped on exit,
# free loopback ports, waiting for a server to answer, starting manifold on a fresh
# database, CPU accounting of a measured window, and small number/text helpers. The caller
# calls bench_init first, or defines say() and die() itself.

# bench_init NAME: defines say/die (they print "bench/NAME: …" on stderr; die exits 1),
# sets ROOT (the repository) and HERE (bench/NAME), and makes ROOT the working directory.
# (Scripts that define their own say/die do not call it.)
bench_init() {
    BENCH_NAME=$1
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    HERE="$ROOT/bench/$1"
    cd "$ROOT" || exit 1
    say() { printf 'bench/%s: %s\n' "$BENCH_NAME" "$*" >&2; }
    die() { say "error: $*"; exit 1; }
}

# need_tools TOOL...: every TOOL is on the PATH, or die.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found (make bench installs it: scripts/install-deps.sh bench)"
    done
}

# need_manifold: BIN (from MANIFOLD_BIN, default build/manifold) is an executable; the
# default one is built with `make all` when missing, a MANIFOLD_BIN that is none is an error.
need_manifold() {
    [ -x "$BIN" ] && return 0
    [ -z "${MANIFOLD_BIN:-}" ] || die "$BIN is not an executable"
    say "build/manifold missing: make all"
    make -C "$ROOT" all >&2
}

# bench_workdir PREFIX: sets WORK (a fresh temporary directory) and PIDS (processes to stop);
# on exit every PID gets SIGTERM, then SIGKILL after 5 s, and WORK is removed.
bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

# need_node_package NAME: the packages pinned in HERE/package-lock.json, installed with npm
# ci unless HERE/node_modules/NAME is already there.
need_node_package() {
    [ -f "$HERE/node_modules/$1/package.json" ] && return 0
    say "installing $1 (npm ci in ${HERE#"$ROOT"/})"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

stop_pid() { # PID: stop one process this script started (TERM, KILL after 10 s), and forget it
    local pid=$1 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=$((20000 + $$ % 20000))
pick_port() { # sets PORT (not in a subshell: NEXT_PORT must advance)
    while ! port_free "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
}

wait_http() { # URL PID NAME: waits up to 15 s for URL to answer while PID lives
    for _ in $(seq 150); do
        kill -0 "$2" 2>/dev/null || { tail -20 "$WORK/$3.log" >&2; die "$3 exited at start-up"; }
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    die "$3 did not answer on $1 within 15 s"
}

# start_manifold DIR READY_PATH [SERVE_FLAGS...]: `BIN serve` on a free loopback port with a
# fresh database and key file in DIR (emptied first) and SERVE_FLAGS, output in
# $WORK/manifold.log; waits for its bootstrap token and for READY_PATH to answer. Sets PORT,
# MPID (also in PIDS), M (its base URL), TOKEN and MTHREADS (its MHD threads, from the log;
# empty if it does not say). Retries on another port when the one picked was taken
# meanwhile (other people's servers come and go on this box).
start_manifold() {
    local dir=$1 ready=$2 attempt
    shift 2
    for attempt in 1 2 3 4 5; do
        rm -rf "$dir"
        mkdir -p "$dir"
        pick_port
        "$BIN" serve --listen "127.0.0.1:$PORT" --database "$dir/manifold.db" --key-file "$dir/manifold.key" "$@" \
            >"$WORK/manifold.log" 2>&1 &
        MPID=$!
        PIDS+=("$MPID")
        M="http://127.0.0.1:$PORT"
        for _ in $(seq 150); do
            [ -s "$dir/bootstrap-token" ] && break
            kill -0 "$MPID" 2>/dev/null || break
            sleep 0.1
        done
        if ! kill -0 "$MPID" 2>/dev/null && grep -q 'cannot listen' "$WORK/manifold.log"; then
            say "port $PORT was taken meanwhile; trying another (attempt $attempt)"
            stop_pid "$MPID"
            continue
        fi
        [ -s "$dir/bootstrap-token" ] || { tail -20 "$WORK/manifold.log" >&2; die "manifold wrote no bootstrap token"; }
        TOKEN=$(cat "$dir/bootstrap-token")
        wait_http "$M$ready" "$MPID" manifold
        MTHREADS=$(grep -o '[0-9]* threads' "$WORK/manifold.log" | head -1 | cut -d' ' -f1)
        return 0
    done
    die "manifold could not get a free port"
}

# ---- CPU accounting -------------------------------------------------------------------------
# CPU seconds (user+system, all threads) a process has used so far.
cpu_s() {
    local stat rest
    stat=$(cat "/proc/$1/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    awk -v u="${12}" -v s="${13}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (u + s) / hz }'
}
# CPU seconds the whole box has been busy (all cores; user, nice, system, irq, softirq, steal).
box_busy_s() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
now_s() { date +%s.%N; }
# window SERVER_PID CMD...: runs CMD (stdout to the caller, stderr appended to
# $WORK/cmd.err) and sets, for its duration,
#   WIN_SRV   cores used by the server process
#   WIN_GEN   cores used by CMD and its children (the load generator)
#   WIN_OTHER cores used by everything else on the box (other people's work)
#   WIN_SECS  its length in seconds
window() {
    local spid=$1 b0 b1 s0 s1 t0 t1 tf
    shift
    tf="$WORK/time.out"
    b0=$(box_busy_s); s0=$(cpu_s "$spid"); t0=$(now_s)
    { TIMEFORMAT='%U %S'; time "$@" 2>>"$WORK/cmd.err"; } 2>"$tf"
    t1=$(now_s); s1=$(cpu_s "$spid"); b1=$(box_busy_s)
    WIN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    read -r WIN_SRV WIN_GEN WIN_OTHER < <(awk -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" \
        -v g="$(tail -n 1 "$tf")" 'BEGIN {
            d = t1 - t0; split(g, gu, " "); gen = gu[1] + gu[2]
            o = (b1 - b0) - (s1 - s0) - gen; if (o < 0) o = 0
            printf "%.2f %.2f %.2f\n", (s1 - s0) / d, gen / d, o / d }')
}
# load_before: sets LOAD_BEFORE (the load average) and BUSY_BEFORE (the busiest other
# processes right now: a ps snapshot, %CPU over each one's lifetime) and says both.
load_before() {
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    BUSY_BEFORE=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 10 { printf "%s%s (%s%%)", (n++ ? ", " : ""), $2, $1 }')
    say "load average before: $LOAD_BEFORE${BUSY_BEFORE:+; busy processes: $BUSY_BEFORE}"
}

# machine_info: sets what a report says about the box and the code: CPU_MODEL, MEM (RAM in
# GiB), OS (with Debian's exact version), DISK (the device and file system of $WORK) and
# COMMIT (HEAD's short hash, noting uncommitted changes under src/).
machine_info() {
    CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    # shellcheck disable=SC1091
    OS=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo unknown)
    if [ -r /etc/debian_version ]; then OS="$OS (debian_version $(cat /etc/debian_version))"; fi
    DISK=$(df -PT "$WORK" | awk 'NR == 2 { print $1 " (" $2 ")" }')
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT (src/ modified)"
}

# ---- numbers and text -----------------------------------------------------------------------
kv() { # LINE KEY: value of KEY=value in a RESULT line
    echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2) }'
}
json_get() { # JSON_TEXT EXPR (a JavaScript expression on `j`; needs node)
    node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); const v = eval(process.argv[1]); process.stdout.write(String(v))' "$2" <<<"$1"
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; } # microseconds as "N.NN ms"
lt() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? 1 : 0 }'; }
fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
verdict() { if [ "$1" = 1 ]; then echo "**met**"; else echo "**NOT met**"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }

# write_doc_section NAME DOC REPORT: replaces the part of DOC between the markers
# "<!-- BEGIN bench/NAME … -->" and "<!-- END bench/NAME -->" with REPORT (appending the
# section when DOC lacks it), unless BENCH_NO_DOCS=1. Everything else in DOC is kept.
write_doc_section() {
    [ "${BENCH_NO_DOCS:-0}" = 1 ] && return 0
    local begin="<!-- BEGIN bench/$1 (generated by bench/$1/run.sh; edits inside are overwritten) -->"
    local end="<!-- END bench/$1 -->" doc=$2
    printf '%s\n' "$3" >"$WORK/report.md"
    if [ -f "$doc" ] && grep -qF "$begin" "$doc" && grep -qF "$end" "$doc"; then
        awk -v b="$begin" -v e="$end" -v f="$WORK/report.md" '
            $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$doc" >"$WORK/doc.md"
    else
        { [ -f "$doc" ] && cat "$doc" && echo; echo "$begin"; cat "$WORK/report.md"; echo "$end"; } >"$WORK/doc.md"
    fi
    cat "$WORK/doc.md" >"$doc"
    say "updated $doc"
}

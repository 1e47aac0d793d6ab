# Shared plumbing for the bench/*/run.sh scripts (sourced, not run): a scratch directory
# with every started process stopped on exit, free loopback ports, and waiting for a server
# to answer. The caller defines say() and die() first.

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

fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
verdict() { if [ "$1" = 1 ]; then echo "**met**"; else echo "**NOT met**"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }

#!/bin/bash
# The whole test run behind `make test` (which first builds build/asan/manifold, the unit
# tests and the fuzz targets):
#   1. every unit-test binary build/asan/tests/test_* (cmocka), from the repository root;
#   2. every libFuzzer target build/fuzz/fuzz_* for a short while on fuzz/corpus/<name>/;
#   3. the black-box API suite tests/api/ (pytest) against build/asan/manifold, on SQLite
#      and then on PostgreSQL (a throwaway cluster started here and removed at the end).
# Each unit binary, each fuzz target and each pytest test counts as one. The last line is
# exactly "N passed, M failed"; the exit status is non-zero when anything failed.
#
# Knobs: FUZZ_SECONDS (default 20 per target), FUZZ_RUNS (default unlimited within the
# time), MANIFOLD_TEST_BIN (default build/asan/manifold), PYTEST_ARGS (extra arguments,
# e.g. "-x" or "-k tokens"), SKIP_UNIT=1, SKIP_FUZZ=1, SKIP_SQLITE=1, SKIP_POSTGRES=1.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONDONTWRITEBYTECODE=1
SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'
BIN=${MANIFOLD_TEST_BIN:-$ROOT/build/asan/manifold}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_RUNS=${FUZZ_RUNS:--1}

PASSED=0
FAILED=0
FAILURES=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/manifold-test.XXXXXX") || exit 2
PGTMP=""
PG_CTL=""
AS_PG=()

cleanup() {
    if [ -n "$PGTMP" ] && [ -n "$PG_CTL" ] && [ -f "$PGTMP/data/postmaster.pid" ]; then
        "${AS_PG[@]}" "$PG_CTL" -D "$PGTMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1
    fi
    [ -n "$PGTMP" ] && rm -rf "$PGTMP"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

pass() { PASSED=$((PASSED + $1)); }
fail() { # fail COUNT WHAT
    FAILED=$((FAILED + $1))
    FAILURES+=("$2")
    echo "FAIL: $2"
}
section() { printf '\n==== %s ====\n' "$*"; }
show_log() { # the end of a log, indented
    tail -n "${2:-60}" "$1" | sed 's/^/    | /'
}

# ---- 1. unit tests -------------------------------------------------------------------

run_unit() {
    section "unit tests (build/asan/tests)"
    local src t name log n=0
    # every tests/unit/test_*.c must have produced a binary
    for src in tests/unit/test_*.c; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .c)
        [ -x "build/asan/tests/$name" ] || fail 1 "unit $name: binary build/asan/tests/$name missing"
    done
    for t in build/asan/tests/test_*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        name=$(basename "$t")
        log="$WORK/unit-$name.log"
        n=$((n + 1))
        local t0=$SECONDS
        if timeout 1200 "$t" </dev/null >"$log" 2>&1 && ! grep -Eq "$SAN_RE" "$log"; then
            pass 1
            echo "ok   unit $name ($((SECONDS - t0))s)"
        else
            fail 1 "unit $name"
            show_log "$log"
        fi
    done
    [ "$n" -gt 0 ] || fail 1 "unit: no unit-test binaries in build/asan/tests (run make SAN=1 unit)"
}

# ---- 1b. source checks -------------------------------------------------------------------

run_lint() {
    section "source checks (tests/lint)"
    local t log
    for t in tests/lint/*.sh; do
        [ -x "$t" ] || continue
        log="$WORK/lint-$(basename "$t").log"
        if "$t" >"$log" 2>&1; then
            pass 1
            echo "ok   lint $(basename "$t")"
        else
            fail 1 "lint $(basename "$t")"
            show_log "$log"
        fi
    done
}

# ---- 2. fuzz targets -------------------------------------------------------------------

run_fuzz() {
    section "fuzz targets (build/fuzz, ${FUZZ_SECONDS}s each)"
    local src f name corpus log n=0 dirs
    for src in fuzz/fuzz_*.c; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .c)
        [ -x "build/fuzz/$name" ] || fail 1 "fuzz $name: binary build/fuzz/$name missing (run make fuzz)"
    done
    for f in build/fuzz/fuzz_*; do
        [ -f "$f" ] && [ -x "$f" ] || continue
        case "$(basename "$f")" in *.*) continue ;; esac
        name=$(basename "$f")
        corpus="fuzz/corpus/${name#fuzz_}"
        log="$WORK/$name.log"
        n=$((n + 1))
        # New inputs go to a scratch directory (first), the checked-in corpus is only read.
        mkdir -p "$WORK/corpus-$name" "$WORK/artifacts-$name"
        dirs=("$WORK/corpus-$name")
        [ -d "$corpus" ] && dirs+=("$corpus")
        if timeout $((FUZZ_SECONDS + 300)) "$f" -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" \
            -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
            -artifact_prefix="$WORK/artifacts-$name/" "${dirs[@]}" </dev/null >"$log" 2>&1; then
            pass 1
            echo "ok   fuzz $name ($(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?') runs)"
        else
            fail 1 "fuzz $name"
            show_log "$log" 80
            if ls "$WORK/artifacts-$name"/* >/dev/null 2>&1; then
                mkdir -p build/fuzz/artifacts
                cp "$WORK/artifacts-$name"/* build/fuzz/artifacts/
                echo "    crashing inputs copied to build/fuzz/artifacts/"
            fi
        fi
    done
    [ "$n" -gt 0 ] || echo "(no fuzz targets built)"
}

# ---- 3. API tests ------------------------------------------------------------------------

PY=""
find_python() {
    local p
    for p in /usr/bin/python3 python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import pytest, requests' >/dev/null 2>&1; then
            PY=$p
            return 0
        fi
    done
    return 1
}

# Counts a pytest JUnit XML file: prints "passed failed skipped".
count_junit() {
    "$PY" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0")
    sys.exit(0)
p = f = s = 0
for tc in root.iter("testcase"):
    tags = {c.tag for c in tc}
    if tags & {"failure", "error"}:
        f += 1
    elif "skipped" in tags:
        s += 1
    else:
        p += 1
print(p, f, s)
EOF
}

run_pytest() { # run_pytest BACKEND [env assignments...]
    local backend=$1
    shift
    section "API tests on $backend (tests/api)"
    if [ -z "$PY" ]; then
        fail 1 "api/$backend: python3 with pytest and requests not found (apt-get install python3-pytest python3-requests)"
        return
    fi
    if [ ! -x "$BIN" ]; then
        fail 1 "api/$backend: $BIN is missing (run make SAN=1 all)"
        return
    fi
    local junit="$WORK/pytest-$backend.xml" base="$WORK/pytest-$backend" rc extra=()
    # PYTEST_ARGS is split like a shell command line (quotes allowed): a developer knob.
    eval "extra=(${PYTEST_ARGS:-})"
    env "$@" MANIFOLD_TEST_BACKEND="$backend" MANIFOLD_TEST_BIN="$BIN" \
        timeout 5400 "$PY" -m pytest -p no:cacheprovider -q -rfE --color=no --continue-on-collection-errors \
        --basetemp="$base" --junitxml="$junit" "${extra[@]}" tests/api </dev/null
    rc=$?
    local counts p f s
    counts=$(count_junit "$junit")
    read -r p f s <<<"$counts"
    pass "$p"
    [ "$s" -gt 0 ] && echo "($s skipped tests are counted neither as passed nor as failed)"
    if [ "$f" -gt 0 ]; then
        fail "$f" "api/$backend: $f failed tests"
    elif [ "$rc" -ne 0 ]; then
        # exit 5 = no tests collected; others = collection or internal errors, timeout
        fail 1 "api/$backend: pytest exited with status $rc"
    fi
    # A safety net behind the fixtures' own checks: no sanitizer report in any server log.
    if [ -d "$base" ] && grep -rlE "$SAN_RE" "$base" --include='*.stderr' >"$WORK/san-$backend" 2>/dev/null; then
        if [ "$f" -eq 0 ] && [ "$rc" -eq 0 ]; then
            fail 1 "api/$backend: sanitizer report in server stderr"
        fi
        sed 's/^/    sanitizer report: /' "$WORK/san-$backend"
        while read -r l; do show_log "$l" 40; done <"$WORK/san-$backend"
    fi
}

start_postgres() {
    local bin
    PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
    if [ ! -x "$PGBIN/initdb" ]; then
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        [ -n "$bin" ] && PGBIN=$bin
    fi
    if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
        echo "PostgreSQL server binaries not found (apt-get install postgresql)"
        return 1
    fi
    PG_CTL="$PGBIN/pg_ctl"
    # Under /tmp, not $TMPDIR: the postgres user must reach it, and socket paths are short.
    PGTMP=$(mktemp -d /tmp/manifold-pg.XXXXXX) || return 1
    mkdir -p "$PGTMP/sock"
    if [ "$(id -u)" -eq 0 ]; then
        # PostgreSQL refuses to run as root: use the postgres system user (or our own).
        local user=postgres
        if ! id "$user" >/dev/null 2>&1; then
            user=manifold-test
            id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || return 1
        fi
        chown -R "$user" "$PGTMP"
        AS_PG=(runuser -u "$user" --)
    fi
    PGPORT_TEST=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)
    (cd "$PGTMP" && "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-locale -N) \
        >"$PGTMP/initdb.log" 2>&1 || { show_log "$PGTMP/initdb.log"; return 1; }
    # Unix socket only (listen_addresses=''), in our own directory; durability off: throwaway.
    (cd "$PGTMP" && "${AS_PG[@]}" "$PG_CTL" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $PGTMP/sock -p $PGPORT_TEST -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start) >"$PGTMP/pg_ctl.log" 2>&1 || { show_log "$PGTMP/pg_ctl.log"; show_log "$PGTMP/server.log"; return 1; }
    PG_URL="postgresql://postgres@/postgres?host=$PGTMP/sock&port=$PGPORT_TEST"
    "$PGBIN/psql" "$PG_URL" -qAt -c 'select 1' </dev/null >/dev/null 2>"$PGTMP/psql.log" ||
        { show_log "$PGTMP/psql.log"; show_log "$PGTMP/server.log"; return 1; }
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $NF}') on socket $PGTMP/sock port $PGPORT_TEST"
    return 0
}

# ---- main ------------------------------------------------------------------------------

[ "${SKIP_UNIT:-0}" = 1 ] || { run_unit; run_lint; }
[ "${SKIP_FUZZ:-0}" = 1 ] || run_fuzz
find_python
[ "${SKIP_SQLITE:-0}" = 1 ] || run_pytest sqlite
if [ "${SKIP_POSTGRES:-0}" != 1 ]; then
    section "PostgreSQL throwaway cluster"
    if [ -n "$PY" ] && start_postgres; then
        run_pytest postgres MANIFOLD_TEST_PG="$PG_URL" MANIFOLD_TEST_PSQL="$PGBIN/psql"
    else
        fail 1 "api/postgres: could not start a PostgreSQL cluster"
    fi
fi

section "summary"
if [ "${#FAILURES[@]}" -gt 0 ]; then
    echo "failures:"
    for f in "${FAILURES[@]}"; do echo "  - $f"; done
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

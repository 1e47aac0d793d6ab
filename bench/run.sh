#!/usr/bin/env bash
# Entry point of `make bench`: runs every benchmark. bench/http (the foundation: HTTP and
# auth) first, then every other bench/*/run.sh in name order. Each sub-benchmark cleans up
# after itself; this script reports which ones failed and exits non-zero if any did.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

run_one() {
    local script=$1
    printf '\n=== %s ===\n' "$script" >&2
    if [ -x "$script" ]; then "$script"; else bash "$script"; fi
}

failed=()
scripts=(bench/http/run.sh)
for s in bench/*/run.sh; do
    [ -f "$s" ] && [ "$s" != bench/http/run.sh ] && scripts+=("$s")
done
for s in "${scripts[@]}"; do
    run_one "$s" || failed+=("$s")
done
if [ ${#failed[@]} -gt 0 ]; then
    printf '\nbench: FAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf '\nbench: all %d benchmark(s) ran: %s\n' "${#scripts[@]}" "${scripts[*]}" >&2

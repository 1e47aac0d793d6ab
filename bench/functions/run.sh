#!/bin/sh
# bench/functions/run.sh — the Functions runtime (docs/functions-runtime.md): warm invocations
# per second of a trivial destination function through the real runtime (contained workers,
# pipes, vm contexts; `manifold function bench`), and cold-start latency, side by side with the
# same function called directly in a bare Node.js loop (the ceiling). Short runs: the machine
# is shared. Knobs: SECONDS_PER_RUN (default 3), WORKERS (default 2), CONCURRENCY (default 32).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
secs=${SECONDS_PER_RUN:-3}
workers=${WORKERS:-2}
conc=${CONCURRENCY:-32}
node=$(command -v node || command -v nodejs || true)
[ -n "$node" ] || { echo "bench/functions: no Node.js" >&2; exit 1; }
make --no-print-directory all >/dev/null
mkdir -p build/bench

ours=$(build/manifold function bench --seconds "$secs" --workers "$workers" --concurrency "$conc")
bare=$("$node" "$here/bare.js" "$secs")
# cold start of a bare node process (start, run nothing, exit), best of 5
bare_cold=$(python3 -c '
import subprocess, sys, time
best = 1e9
for _ in range(5):
    t = time.monotonic(); subprocess.run([sys.argv[1], "-e", "0"], check=True); best = min(best, time.monotonic() - t)
print(round(best * 1000))' "$node")

echo "$ours" > build/bench/functions_manifold.json
echo "$bare" > build/bench/functions_bare.json
python3 - "$ours" "$bare" "$bare_cold" "$workers" "$conc" <<'PY'
import json, sys, os
ours, bare = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bare_cold, workers, conc = int(sys.argv[3]), sys.argv[4], sys.argv[5]
ratio = ours["warm_per_second"] / bare["per_second"] * 100 if bare["per_second"] else 0
print(f"node {os.popen('node --version').read().strip()}; {os.cpu_count()} cores; {workers} workers, {conc} calls in flight")
print()
print("| measure | Manifold runtime | bare Node.js loop | goal |")
print("|---|---:|---:|---|")
print(f"| warm invocations/s (trivial destination function) | {ours['warm_per_second']:,.0f} | {bare['per_second']:,} | >= 1,000/s and >= 20% of bare ({ratio:.1f}%) |")
print(f"| cold start: new runtime to first answer (process spawn + worker + instance) | {ours['cold_start_process_ms']} ms | {bare_cold} ms (node -e 0) | < 200 ms |")
print(f"| cold start: new instance on a running worker (fresh context + top-level code) | {ours['cold_start_instance_ms']} ms | - | |")
ok = ours["warm_per_second"] >= 1000 and ratio >= 20 and ours["cold_start_process_ms"] < 200 and ours["failed"] == 0
print()
print("goals met" if ok else "goals NOT met (a busy machine lowers every number)")
PY

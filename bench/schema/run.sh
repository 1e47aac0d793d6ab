#!/bin/sh
# bench/schema/run.sh — Manifold's JSON Schema validator against ajv, side by side: the
# same tracking plans, the same events, valid and invalid checks timed separately, all
# violations collected on both sides. See docs/benchmarks-schema.md.
# Run from anywhere; needs cc, pkg-config, node and npm. Builds build/libmanifold.a.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

if [ ! -d "$here/node_modules/ajv" ] || [ ! -d "$here/node_modules/ajv-draft-04" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --silent)
fi
make --no-print-directory build/libmanifold.a >/dev/null
mkdir -p build/bench
cc -O2 -Isrc "$here/schema_bench.c" -o build/bench/schema_bench build/libmanifold.a \
    $(pkg-config --cflags --libs jansson libpcre2-8) -lpthread -lm

# Three alternating rounds; the table keeps each side's best (the machine may be busy).
: > build/bench/schema_manifold.txt
: > build/bench/schema_ajv.txt
for round in 1 2 3; do
    build/bench/schema_bench "$here/data" >> build/bench/schema_manifold.txt
    node "$here/bench.js" "$here/data" >> build/bench/schema_ajv.txt
done

echo "ajv $(node -p "require('$here/node_modules/ajv/package.json').version")," \
     "ajv-draft-04 $(node -p "require('$here/node_modules/ajv-draft-04/package.json').version")," \
     "ajv-formats $(node -p "require('$here/node_modules/ajv-formats/package.json').version")," \
     "node $(node --version); $(nproc) cores, $(uname -m)"
echo
awk '
FNR == 1 { side++ }
$1 == "class" { cls[side, $2] = $3; plans[$2] = 1 }
$1 == "prep"  { if (!((side, $2) in prep) || $3 < prep[side, $2]) prep[side, $2] = $3 }
$1 == "time"  { key = $2 " " $3; n[key] = $4; viol[side, key] = $6
                if (!((side, key) in ns) || $5 < ns[side, key]) ns[side, key] = $5
                if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
END {
    print "| plan | set | checks | violations | Manifold ns/check | ajv ns/check | ajv / Manifold |"
    print "|---|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= k; i++) {
        key = order[i]; split(key, p, " ")
        v = viol[1, key] == viol[2, key] ? viol[1, key] : viol[1, key] " / " viol[2, key]
        r = ns[1, key] > 0 ? sprintf("%.1fx", ns[2, key] / ns[1, key]) : "-"
        printf "| %s | %s | %d | %s | %d | %d | %s |\n", p[1], p[2], n[key], v, ns[1, key], ns[2, key], r
    }
    same = 0; diff = 0
    for (pl in plans) {
        a = cls[1, pl]; b = cls[2, pl]
        for (j = 1; j <= length(a); j++) if (substr(a, j, 1) == substr(b, j, 1)) same++; else diff++
    }
    printf "\nverdicts (valid / invalid / unchecked) agree on %d of %d event-plan pairs\n", same, same + diff
    printf "\nper event, outside the check times on both sides: JSON text to memory: jansson %d ns," \
           " JSON.parse %d ns; building the view of a parsed event that the Manifold validator reads (util/jview): %d ns\n",
           prep[1, "parse"], prep[2, "parse"], prep[1, "view"]
}' build/bench/schema_manifold.txt build/bench/schema_ajv.txt

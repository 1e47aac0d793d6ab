#!/bin/bash
# Layering check: the API's dependencies run one way. router.c (dispatch) may call into
# IAM, paging and the request helpers of call.c; none of those may call back into the
# router. Checked on the built objects: no symbol that router.o defines may be undefined
# (i.e. used) in call.o, iam.o or page.o. Prints what it finds; exit 1 on a violation.
# Usage: tests/lint/layering.sh [OBJDIR]   (default build/asan/obj)
set -u
OBJ=${1:-build/asan/obj}/src/api
for f in router call iam page; do
    [ -f "$OBJ/$f.o" ] || { echo "layering: $OBJ/$f.o missing (build first)"; exit 2; }
done
defined=$(nm --defined-only -g "$OBJ/router.o" | awk '{print $3}' | sort -u)
bad=0
for f in call iam page; do
    used=$(nm -u "$OBJ/$f.o" | awk '{print $2}' | sort -u)
    back=$(comm -12 <(echo "$defined") <(echo "$used"))
    if [ -n "$back" ]; then
        echo "layering: $f.c uses router.c's $(echo $back | tr ' ' ',')"
        bad=1
    fi
done
exit $bad

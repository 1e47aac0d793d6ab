#!/bin/sh
# Installs the Debian packages Manifold needs to build, run, test and benchmark.
# Idempotent: it only calls apt-get when a package is missing.
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3 \
libpq-dev libsodium-dev libcurl4-openssl-dev libpcre2-dev libcmocka-dev zlib1g-dev"
# The Functions runtime runs function code in Node.js workers (docs/functions-runtime.md);
# a Node.js from elsewhere (18 or newer) is fine, apt is asked only when there is none.
command -v node >/dev/null 2>&1 || command -v nodejs >/dev/null 2>&1 || PKGS="$PKGS nodejs"
case "${1:-run}" in
  test)  PKGS="$PKGS postgresql python3-pytest python3-requests clang libclang-rt-14-dev prometheus"
         # the dashboard's test drives a real headless browser (tests/api/test_dashboard.py)
         PKGS="$PKGS chromium chromium-driver python3-selenium"
         # prometheus: its promtool checks GET /metrics (tests/api/test_observability.py)
         # tests/api/test_intake_sdk.py runs Segment's Node SDKs (tests/sdk); as for bench,
         # a Node.js from elsewhere is fine, apt is asked only when there is none.
         { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || PKGS="$PKGS nodejs npm" ;;
  bench) PKGS="$PKGS wrk"
         # Node.js may come from elsewhere (e.g. NodeSource, which bundles npm and
         # conflicts with Debian's npm): only ask apt for it when there is none.
         command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm" ;;
esac
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

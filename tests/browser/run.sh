#!/usr/bin/env bash
# Runs the admin console in a real browser (tests/browser/console.test.mjs) against a freshly
# started Tessera server: Debian's chromium driven by playwright-core (no browser download).
#
#   bash tests/browser/run.sh [node --test arguments, e.g. --test-name-pattern=viewer]
#   bash tests/browser/run.sh --prepare   (steps 1 and 2 only: what .ci/run does during the build)
#
# 1. Installs Debian's chromium and chromium-driver with apt-get when /usr/bin/chromium or
#    /usr/bin/chromedriver is missing (and node with npm when node is missing).
# 2. Installs tests/browser/node_modules from package-lock.json (`npm ci`, again whenever the
#    lock file changes) with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1: playwright-core drives the
#    system chromium (`executablePath`), nothing downloads a browser.
# 3. Starts $TESSERA_BIN (else target/debug/tessera) on a free 127.0.0.1 port with a temporary
#    data directory and a random bootstrap admin API key; waits for GET /readyz.
# 4. Runs the suite with node's test runner, stops the server whatever happens, and exits with
#    the runner's status.
#
# Screenshots: a failing test saves one of each open page to $TESSERA_BROWSER_FAILURES (default
# ${TESSERA_CI_LOGS:-target/ci-logs}/browser, the CI log directory of .ci/run). With
# TESSERA_SCREENSHOTS=docs/console the suite also writes the screenshots of the main pages that
# docs/console.md shows (relative paths are from the repository root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
say() { printf 'browser: %s\n' "$*"; }
started=$SECONDS

# --- 1. The browser (and node) ---------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get (deploy/check.sh fetching promtool) may hold the lock for a moment.
  apt_get() { apt-get -o DPkg::Lock::Timeout=120 "$@" >/dev/null; }
  apt_get install -y "${missing[@]}" ||
    { apt_get update && apt_get install -y "${missing[@]}"; }
fi
say "$(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: unknown version'), node $(node --version)"

# --- 2. playwright-core ----------------------------------------------------------------------
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$here/node_modules/playwright-core" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "installing tests/browser/package-lock.json (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  printf '%s\n' "$want" >"$stamp"
fi
if [ "${1:-}" = "--prepare" ]; then
  say "chromium and playwright-core ready in $((SECONDS - started)) s"
  exit 0
fi

# --- 3. The server ---------------------------------------------------------------------------
# shellcheck source=../lib/server.sh
. "$root/tests/lib/server.sh"
start_work browser

port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
admin_key="$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')"
start_server "$port" "$admin_key"

# --- 4. The suite ----------------------------------------------------------------------------
failures="${TESSERA_BROWSER_FAILURES:-${TESSERA_CI_LOGS:-$root/target/ci-logs}/browser}"
mkdir -p "$failures"
export TESSERA_URL="$url"
export TESSERA_ADMIN_APIKEY="$admin_key"
export TESSERA_BROWSER_FAILURES="$(cd "$failures" && pwd)"
if [ -n "${TESSERA_SCREENSHOTS:-}" ]; then
  mkdir -p "$TESSERA_SCREENSHOTS"
  TESSERA_SCREENSHOTS="$(cd "$TESSERA_SCREENSHOTS" && pwd)"
  export TESSERA_SCREENSHOTS
fi
set +e
node --test --test-concurrency=1 --test-reporter=spec "$@" "$here/console.test.mjs"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  say "failed; screenshots of the failing pages are in $TESSERA_BROWSER_FAILURES"
fi
say "$((SECONDS - started)) s in all"
exit "$status"

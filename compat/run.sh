#!/usr/bin/env bash
# Runs the official-SDK compatibility suite (compat/*.py) against a freshly started Tessera server.
#
#   bash compat/run.sh [pytest arguments, e.g. -k client]
#
# 1. Creates compat/.venv with compat/requirements.txt (again whenever that file changes).
# 2. Finds the server: $TESSERA_BIN, else target/release/tessera, else target/debug/tessera,
#    else builds it with `cargo build --release --bin tessera`.
# 3. Starts `tessera serve --tls-self-signed` on a free 127.0.0.1 port with a temporary data
#    directory and a random bootstrap admin API key, and waits (at most 30 s) for GET /readyz.
#    TLS because the Yandex SDK opens only TLS channels; the IBM SDK trusts the local CA through
#    REQUESTS_CA_BUNDLE, as a user of a private CA would set it up.
# 4. Runs pytest with TESSERA_URL, TESSERA_ADMIN_APIKEY, TESSERA_CA (the local CA certificate),
#    TESSERA_GRPC_ENDPOINT (localhost:<port>) and TESSERA_BIN (for `tessera agent`) set, stops the
#    server whatever happens, and exits with pytest's status. No tests collected (pytest's 5) is a
#    failure too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

say() { printf 'compat: %s\n' "$*"; }

# --- 1. The Python environment ---------------------------------------------------------------
# shellcheck source=../tests/lib/venv.sh
. "$root/tests/lib/venv.sh"
ensure_venv "$here/.venv" "$here/requirements.txt"

# --- 2. The server binary --------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="${TESSERA_BIN:-}"
if [ -z "$bin" ]; then
  for candidate in "$target_dir/release/tessera" "$target_dir/debug/tessera"; do
    if [ -x "$candidate" ]; then
      bin="$candidate"
      break
    fi
  done
fi
if [ -z "$bin" ]; then
  say "no server binary found: cargo build --release --bin tessera"
  cargo build --release --bin tessera
  bin="$target_dir/release/tessera"
fi
if [ ! -x "$bin" ]; then
  say "server binary $bin does not exist or is not executable" >&2
  exit 1
fi

# --- 3. Start the server ---------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-compat.XXXXXX")"
log="$work/server.log"
server_pid=""

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ]; then
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  local status=$?
  stop_server
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
  say "server log ($log), last ${1:-80} lines:"
  tail -n "${1:-80}" "$log" 2>/dev/null || true
}

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_key="$("$py" -c 'import secrets; print(secrets.token_hex(24))')"
url="https://127.0.0.1:$port"
ca="$work/data/tls/ca.pem"

say "starting $bin serve on $url"
# An empty configuration file of our own, so a stray ./tessera.toml cannot change the server.
: >"$work/tessera.toml"
TESSERA_BOOTSTRAP_ADMIN_APIKEY="$admin_key" "$bin" serve --config "$work/tessera.toml" \
  --listen "127.0.0.1:$port" --data-dir "$work/data" --tls-self-signed >"$log" 2>&1 &
server_pid=$!

ready() {
  [ -f "$ca" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 --cacert "$ca" "$url/readyz" 2>/dev/null
  else
    "$py" -c 'import ssl, sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2, context=ssl.create_default_context(cafile=sys.argv[2]))' "$url/readyz" "$ca" 2>/dev/null
  fi
}
deadline=$((SECONDS + 30))
until ready; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the server exited before it was ready"
    show_log
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "the server did not answer GET /readyz with 200 within 30 s"
    show_log
    exit 1
  fi
  sleep 0.2
done
say "server ready"

# --- 4. The suite ----------------------------------------------------------------------------
export TESSERA_URL="$url"
export TESSERA_ADMIN_APIKEY="$admin_key"
export TESSERA_CA="$ca"
export TESSERA_GRPC_ENDPOINT="localhost:$port"
export TESSERA_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"  # the agent tests start `tessera agent`
export REQUESTS_CA_BUNDLE="$ca"
export PYTHONDONTWRITEBYTECODE=1
set +e
"$py" -m pytest -q -p no:cacheprovider -rfEsw "$here" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  say "pytest collected no tests: that is a failure"
fi
if [ "$status" -ne 0 ]; then
  show_log 60
fi
exit "$status"

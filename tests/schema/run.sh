#!/usr/bin/env bash
# Fuzzes the server against its own /openapi.json with schemathesis (tests/schema/requirements.txt).
#
#   bash tests/schema/run.sh
#
# 1. Creates tests/schema/.venv (tests/lib/venv.sh, as compat/run.sh does).
# 2. Starts $TESSERA_BIN (else target/debug/tessera) on a free 127.0.0.1 port with a temporary
#    data directory and a random bootstrap admin API key; waits for GET /readyz.
# 3. Gets an administrator's IAM token, and a token of a second principal without any access
#    binding (a service account of the admin's account with an API key).
# 4. Runs `schemathesis run` against the admin API (`/v1/…`) with `--checks all` and every phase
#    (examples, coverage, fuzzing, stateful: the document links each create to its
#    get/update/delete): once with a fixed seed, then with $SCHEMA_RANDOM_SEEDS random seeds
#    (default 2). Then the authorization-negative run: the same operations with the second
#    principal's token, where no answer may be a server error and every answer must conform.
# Exits non-zero on any failure; prints schemathesis's summary lines and the time taken.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
say() { printf 'schema: %s\n' "$*"; }
started=$SECONDS

# shellcheck source=../lib/venv.sh
. "$root/tests/lib/venv.sh"
ensure_venv "$here/.venv" "$here/requirements.txt"

bin="${TESSERA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/tessera}"
if [ ! -x "$bin" ]; then
  say "no server binary at $bin: cargo build --bin tessera"
  cargo build --bin tessera
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-schema.XXXXXX")"
log="$work/server.log"
server_pid=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    say "server log, last 40 lines:"
    tail -n 40 "$log" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_key="$("$py" -c 'import secrets; print(secrets.token_hex(24))')"
url="http://127.0.0.1:$port"
: >"$work/tessera.toml"
TESSERA_BOOTSTRAP_ADMIN_APIKEY="$admin_key" "$bin" serve --config "$work/tessera.toml" \
  --listen "127.0.0.1:$port" --data-dir "$work/data" >"$log" 2>&1 &
server_pid=$!
deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null; do
  kill -0 "$server_pid" 2>/dev/null || { say "the server exited before it was ready"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { say "not ready within 30 s"; exit 1; }
  sleep 0.2
done
say "server ready on $url"

token_of() {
  curl -fsS "$url/identity/token" --data-urlencode "grant_type=urn:ibm:params:oauth:grant-type:apikey" \
    --data-urlencode "apikey=$1" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
admin_token="$(token_of "$admin_key")"
sa_iam_id="$(curl -fsS "$url/v1/service_accounts" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d '{"name": "schema-unprivileged"}' |
  "$py" -c 'import json, sys; print(json.load(sys.stdin)["iam_id"])')"
unprivileged_key="$(curl -fsS "$url/v1/api_keys" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d "{\"name\": \"schema\", \"owner_iam_id\": \"$sa_iam_id\"}" |
  "$py" -c 'import json, sys; print(json.load(sys.stdin)["apikey"])')"

examples="${SCHEMA_MAX_EXAMPLES:-15}"
run() {
  local label=$1 apikey=$2 seed=$3 checks=$4
  say "$label (seed $seed)"
  set +e
  TESSERA_URL="$url" TESSERA_SCHEMA_APIKEY="$apikey" PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks \
    "$here/.venv/bin/schemathesis" run "$url/openapi.json" \
    --url "$url" \
    --include-path-regex '^/v1/' \
    --checks "$checks" \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$examples" \
    --seed "$seed" \
    --workers 2 \
    --no-color >"$work/out.txt" 2>&1
  local status=$?
  if [ -n "${SCHEMA_OUT:-}" ]; then cp "$work/out.txt" "$SCHEMA_OUT"; fi
  set -e
  # The summary: the checks table and the final line.
  sed -n '/SUMMARY/,$p' "$work/out.txt" | grep -Ev '^\s*$' | tail -n 40
  if [ "$status" -ne 0 ]; then
    sed -n '/FAILURES/,/SUMMARY/p' "$work/out.txt" | head -n 200
    say "$label failed (seed $seed)"
    exit "$status"
  fi
}

run "admin, fixed seed" "$admin_key" 20260101 all
for _ in $(seq "${SCHEMA_RANDOM_SEEDS:-2}"); do
  run "admin, random seed" "$admin_key" "$RANDOM$RANDOM" all
done
run "unprivileged principal" "$unprivileged_key" 20260102 not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

say "0 failures; $((SECONDS - started)) s in all"

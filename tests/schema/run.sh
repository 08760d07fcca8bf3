#!/usr/bin/env bash
# Fuzzes the server against its own /openapi.json with schemathesis (tests/schema/requirements.txt).
#
#   bash tests/schema/run.sh
#
# 1. Creates tests/schema/.venv (tests/lib/venv.sh, as compat/run.sh does).
# 2. Starts $TESSERA_BIN (else target/debug/tessera) on a free 127.0.0.1 port with a temporary
#    data directory and a random bootstrap admin API key; waits for GET /readyz.
# 3. As the bootstrap administrator, creates the fuzzer's principal (a service account of a "home"
#    account that is admin of a separate "sandbox" account; see below why) and a second
#    principal without any access binding, each with an API key.
# 4. Runs `schemathesis run` against the admin API (`/v1/…`) with `--checks all` and every phase
#    (examples, coverage, fuzzing, stateful: the document links each create to its
#    get/update/delete): once with a fixed seed, then with $SCHEMA_RANDOM_SEEDS random seeds
#    (default 2; without the coverage phase, which does not depend on the seed, see run()). Then the authorization-negative run: the same operations with the second
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

# shellcheck source=../lib/server.sh
. "$root/tests/lib/server.sh"
start_work schema

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_key="$("$py" -c 'import secrets; print(secrets.token_hex(24))')"
start_server "$port" "$admin_key"

token_of() {
  curl -fsS "$url/identity/token" --data-urlencode "grant_type=urn:ibm:params:oauth:grant-type:apikey" \
    --data-urlencode "apikey=$1" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
admin_token="$(token_of "$admin_key")"
# post PATH JSON FIELD: creates an object as the bootstrap administrator, prints one field of it.
post() {
  curl -fsS "$url$1" -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -d "$2" | "$py" -c "import json, sys; print(json.load(sys.stdin)[\"$3\"])"
}
# The fuzzer's principal. Not the bootstrap administrator: the fuzzer finds ids in list answers
# (schemathesis infers links from them) and, as a global administrator, reached its own
# credential through the operations it exercises (deleted its API key or its owner, enrolled
# TOTP on its user), after which every token fetch failed. So it is a service account (no
# password, no TOTP) that is admin of a dedicated "sandbox" account only, and lives there so
# that the objects it creates without an account_id land where it may manage them. Its own
# objects (the sandbox account, the service account, its admin binding, its API key) are the
# only ones in reach that would lock it out; hooks.py sends every request addressing one of
# them (by path id) to an id that does not exist, so the fuzzer cannot destroy them, and the
# API key itself is never given to it as data. Revoking its own tokens (token cut-offs) does no
# lasting harm: hooks.py mints the token again from the key.
sandbox="$(post /v1/accounts '{"name": "schema-sandbox"}' id)"
fuzzer_sa_id="$(post /v1/service_accounts "{\"name\": \"schema-fuzzer\", \"account_id\": \"$sandbox\"}" id)"
fuzzer_sa="iam-$fuzzer_sa_id"
fuzzer_binding="$(post /v1/access_bindings \
  "{\"subject_iam_id\": \"$fuzzer_sa\", \"role\": \"admin\", \"resource\": \"account/$sandbox\"}" id)"
fuzzer_key_json="$(curl -fsS "$url/v1/api_keys" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d "{\"name\": \"schema\", \"owner_iam_id\": \"$fuzzer_sa\"}")"
fuzzer_key="$(printf '%s' "$fuzzer_key_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["apikey"])')"
fuzzer_key_id="$(printf '%s' "$fuzzer_key_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
home="$(post /v1/accounts '{"name": "schema-home"}' id)"
# The authorization-negative principal: a service account of the home account without any
# access binding. It may still delete its own API key (a credential is its owner's business),
# so its service account and key are protected too.
unprivileged_sa_json="$(curl -fsS "$url/v1/service_accounts" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d "{\"name\": \"schema-unprivileged\", \"account_id\": \"$home\"}")"
sa_id="$(printf '%s' "$unprivileged_sa_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
sa_iam_id="$(printf '%s' "$unprivileged_sa_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["iam_id"])')"
unprivileged_key_json="$(curl -fsS "$url/v1/api_keys" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d "{\"name\": \"schema\", \"owner_iam_id\": \"$sa_iam_id\"}")"
unprivileged_key="$(printf '%s' "$unprivileged_key_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["apikey"])')"
unprivileged_key_id="$(printf '%s' "$unprivileged_key_json" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
export TESSERA_SCHEMA_PROTECTED="$sandbox $fuzzer_sa_id $fuzzer_sa $fuzzer_binding $fuzzer_key_id \
$sa_id $sa_iam_id $unprivileged_key_id"

examples="${SCHEMA_MAX_EXAMPLES:-15}"
# Every phase with the fixed seed and for the unprivileged principal. The random seeds skip the
# coverage phase: its cases come from the schema alone, drawn with a fixed seed of
# schemathesis's own whatever --seed says (`generation/hypothesis/examples.py`, `seed(0)`), so
# each random run repeated the fixed run's coverage cases (most of a run's time, whatever the
# number of examples), and only the examples, fuzzing and stateful phases draw from the seed.
all_phases=examples,coverage,fuzzing,stateful
seeded_phases=examples,fuzzing,stateful
run() {
  local label=$1 apikey=$2 account=$3 seed=$4 checks=$5 phases=$6
  say "$label (seed $seed, phases $phases)"
  set +e
  TESSERA_URL="$url" TESSERA_SCHEMA_APIKEY="$apikey" TESSERA_SCHEMA_ACCOUNT="$account" \
    PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks \
    "$here/.venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
    --url "$url" \
    --include-path-regex '^/v1/' \
    --checks "$checks" \
    --phases "$phases" \
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

run "sandbox admin, fixed seed" "$fuzzer_key" "$sandbox" 20260101 all "$all_phases"
for _ in $(seq "${SCHEMA_RANDOM_SEEDS:-2}"); do
  run "sandbox admin, random seed" "$fuzzer_key" "$sandbox" "$RANDOM$RANDOM" all "$seeded_phases"
done
run "unprivileged principal" "$unprivileged_key" "$home" 20260102 \
  not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  "$all_phases"

say "0 failures; $((SECONDS - started)) s in all"

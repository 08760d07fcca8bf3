# shellcheck shell=bash
# The server a script-driven suite (tests/schema, tests/browser) runs against: the debug binary
# (built when missing), a temporary work directory with the server's log, and a clean-up on exit
# that stops the server, shows the end of its log when the suite failed, and removes the
# directory. Sourced after the script has set $root and defined say().
#
#   start_work NAME   sets bin, work (…/tessera-NAME.XXXXXX), log and server_pid=""; traps
#                     EXIT, INT and TERM.
#   start_server PORT ADMIN_KEY
#                     starts $bin on 127.0.0.1:PORT with its data in $work/data, an empty
#                     configuration file of its own (so a stray ./tessera.toml cannot change
#                     the server) and the bootstrap admin API key ADMIN_KEY; sets url and
#                     server_pid and waits (30 s at most) until GET /readyz answers.

start_work() {
  bin="${TESSERA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/tessera}"
  if [ ! -x "$bin" ]; then
    say "no server binary at $bin: cargo build --bin tessera"
    cargo build --bin tessera
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-$1.XXXXXX")"
  log="$work/server.log"
  server_pid=""
  trap end_work EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

start_server() {
  url="http://127.0.0.1:$1"
  : >"$work/tessera.toml"
  TESSERA_BOOTSTRAP_ADMIN_APIKEY="$2" "$bin" serve --config "$work/tessera.toml" \
    --listen "127.0.0.1:$1" --data-dir "$work/data" >"$log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null --max-time 2 "$url/readyz" 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { say "the server exited before it was ready"; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { say "not ready within 30 s"; exit 1; }
    sleep 0.2
  done
  say "server ready on $url"
}

end_work() {
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

# shellcheck shell=bash
# The server a script-driven suite (tests/schema, tests/browser) runs against: the debug binary
# (built when missing), a temporary work directory with the server's log, and a clean-up on exit
# that stops the server, shows the end of its log when the suite failed, and removes the
# directory. Sourced after the script has set $root and defined say().
#
#   start_work NAME   sets bin, work (…/tessera-NAME.XXXXXX), log and server_pid=""; traps
#                     EXIT, INT and TERM. The script starts the server and sets server_pid.

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

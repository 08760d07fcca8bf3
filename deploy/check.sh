#!/usr/bin/env bash
# Checks the deployment files in deploy/ with the real tools, offline. One check per argument:
#
#   bash deploy/check.sh systemd      # systemd-analyze verify + security (exposure <= 2.0 of 10)
#   bash deploy/check.sh kubernetes   # kubectl kustomize renders every overlay; schemas (strict)
#   bash deploy/check.sh prometheus   # promtool check rules + promtool test rules
#   bash deploy/check.sh compose      # the compose file's structure (no Docker daemon here)
#
# Tools: deploy/.venv from deploy/requirements.txt (kubectl with kustomize, kubernetes-validate,
# PyYAML), made again when that file changes; promtool from Debian's prometheus package,
# unpacked into deploy/.tools (nothing is installed system-wide, no service is started).
# systemd-analyze is systemd's own. The Dockerfile's build steps are checked by a unit test
# (src/tidy.rs), the dashboard's and the rules' metric names by tessera-server's tests.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
say() { printf 'deploy: %s\n' "$*"; }

# Kubernetes version the manifests are validated against (the oldest we support).
KUBERNETES_VERSION=1.30.0

venv() {
  local venv="$here/.venv" stamp want
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    say "installing deploy/requirements.txt into deploy/.venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    printf '%s\n' "$want" >"$stamp"
  fi
  PY="$venv/bin/python"
  KUBECTL="$venv/bin/kubectl"
  VALIDATE="$venv/bin/kubernetes-validate"
}

check_systemd() {
  command -v systemd-analyze >/dev/null || { say "systemd-analyze not found"; return 1; }
  # `verify` checks that ExecStart's binary exists: give it a root with the binary where the
  # units expect it, the system's units (targets) and ip(8) for the agent's ExecStartPre.
  local bin=""
  for candidate in "${TESSERA_BIN:-}" target/release/tessera target/debug/tessera; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then bin="$candidate"; break; fi
  done
  [ -n "$bin" ] || { say "no tessera binary: build it first (cargo build)"; return 1; }
  local sroot status=0
  sroot="$(mktemp -d)"
  mkdir -p "$sroot/usr/local/bin" "$sroot/usr/sbin" "$sroot/usr/lib/systemd" "$sroot/etc/systemd/system"
  cp "$bin" "$sroot/usr/local/bin/tessera"
  cp "$(command -v ip || echo /usr/sbin/ip)" "$sroot/usr/sbin/ip"
  cp -r /usr/lib/systemd/system "$sroot/usr/lib/systemd/"
  cp "$here"/systemd/*.service "$sroot/etc/systemd/system/"
  local units=() unit out
  for unit in "$here"/systemd/*.service; do units+=("/etc/systemd/system/$(basename "$unit")"); done
  # verify exits 0 on unknown keys and bad values; any message at all is a failure.
  out="$(systemd-analyze verify --root="$sroot" "${units[@]}" 2>&1)" || status=1
  if [ -n "$out" ] || [ "$status" -ne 0 ]; then
    printf '%s\n' "$out"
    say "systemd-analyze verify complained"
    rm -rf "$sroot"
    return 1
  fi
  say "systemd-analyze verify: ${#units[@]} units clean"
  # The threshold is on systemd's internal 0-100 scale: 20 is the 2.0 it prints.
  for unit in "$here"/systemd/*.service; do
    out="$(systemd-analyze security --offline=yes --root="$sroot" --threshold=20 "$(basename "$unit")" 2>&1)" || status=1
    printf '%s\n' "$out" | grep -E 'Overall exposure' || printf '%s\n' "$out"
  done
  rm -rf "$sroot"
  if [ "$status" -ne 0 ]; then
    say "a unit is more exposed than 2.0"
    return 1
  fi
}

check_kubernetes() {
  venv
  local overlay name rendered="$here/.tools/rendered"
  rm -rf "$rendered" && mkdir -p "$rendered"
  for overlay in "$here"/kubernetes/overlays/*/; do
    name="$(basename "$overlay")"
    "$KUBECTL" kustomize "$overlay" >"$rendered/$name.yaml"
    say "rendered overlays/$name: $(grep -c '^kind:' "$rendered/$name.yaml") objects"
    "$VALIDATE" --strict --quiet -k "$KUBERNETES_VERSION" "$rendered/$name.yaml"
    "$PY" "$here/check_manifests.py" "$name" "$rendered/$name.yaml"
  done
  say "kubernetes: every overlay renders and validates against $KUBERNETES_VERSION"
}

promtool() {
  local tools="$here/.tools" deb
  if [ ! -x "$tools/usr/bin/promtool" ]; then
    say "fetching promtool from Debian's prometheus package (unpacked, not installed)"
    mkdir -p "$tools"
    (cd "$tools" && rm -f prometheus_*.deb && apt-get download prometheus >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get download prometheus >/dev/null; })
    deb="$(ls "$tools"/prometheus_*.deb)"
    dpkg-deb -x "$deb" "$tools"
    rm -f "$deb"
  fi
  "$tools/usr/bin/promtool" "$@"
}

check_prometheus() {
  promtool check rules "$here/prometheus/tessera-rules.yml"
  promtool test rules "$here/prometheus/tessera-rules.test.yml"
}

check_compose() {
  venv
  "$PY" "$here/check_manifests.py" compose "$here/compose/compose.yaml"
}

[ "$#" -gt 0 ] || { sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 2; }
for check in "$@"; do
  case "$check" in
    systemd) check_systemd ;;
    kubernetes) check_kubernetes ;;
    prometheus) check_prometheus ;;
    compose) check_compose ;;
    # Only the tools (deploy/.venv, promtool): .ci/run makes them in the background early.
    tools) venv && promtool --version >/dev/null ;;
    *) say "unknown check $check"; exit 2 ;;
  esac
done

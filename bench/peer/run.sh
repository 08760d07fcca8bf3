#!/bin/sh
# Installs the pinned node-oidc-provider (npm ci: exactly package-lock.json) and starts the
# benchmark peer in the foreground. Configuration through the PEER_* variables of server.mjs;
# `tessera-bench peer` starts `node server.mjs` itself and needs only the install step.
#   PEER_ALG=ES256 PEER_CLIENT_SECRET=$(openssl rand -hex 16) bench/peer/run.sh
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules/oidc-provider ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
exec node server.mjs

#!/usr/bin/env bash
# Installs everything dora-ts needs on a fresh machine (idempotent, quick when done).
# npm packages (and the TypeScript build, via `prepare`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run --silent build
fi

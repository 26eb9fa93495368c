#!/usr/bin/env bash
# Installs everything dora-ts needs on a fresh machine (idempotent, quick when done):
# the system packages of the C binding (libzmq, pkg-config), the npm packages (and the
# TypeScript build, via `prepare`), the C library and the example's C node, and the
# Python package with its test dependencies in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: only when missing, so a prepared machine needs no root.
if ! { command -v pkg-config >/dev/null && pkg-config --exists libzmq; }; then
  echo "setup: installing libzmq3-dev and pkg-config (Debian/Ubuntu)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libzmq3-dev pkg-config >/dev/null
fi

# Chromium, for the browser tests of `dora ui` and `dora graph --html` (tests/ui.test.ts).
if ! command -v chromium >/dev/null; then
  echo "setup: installing chromium (Debian/Ubuntu)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run --silent build
fi

# The C library, then the example's C node (through `dora build`, as a user would).
make -s -C bindings/c
node dist/cli/main.js build examples/dataflow.yml >/dev/null

# The Python package (its native core is the C library) in the project's virtual
# environment, .venv, where `dora run` finds it for .py nodes.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check './bindings/python[test]'

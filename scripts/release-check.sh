#!/usr/bin/env bash
# `npm run release-check`: what a user gets from the packages, checked outside this
# checkout. Packs the npm package (`npm pack`, whose prepack step builds the prebuilt
# library) and the Python wheel, installs the tarball into a fresh npm project and the
# wheel into fresh virtual environments, then, with the installed `dora`: scaffolds a
# project per language (`dora new`), follows the commands its README prints, and runs it
# (`dora run`), expecting the ten counter values; and a TypeScript project from a global
# install (`npm install -g`). Everything lives in one temporary
# folder, removed at the end (and on failure).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
# nothing of a developer's environment may point back into the checkout
unset VIRTUAL_ENV DORA_PYTHON DORA_NODE_API_LIB DORA_C_RUNTIME
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dora-release-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS
step() { printf 'release-check [%3ds]: %s\n' $((SECONDS - started)) "$*" >&2; }
fail() {
  echo "release-check: FAILED: $*" >&2
  exit 1
}
npm_q() { npm --no-audit --no-fund --loglevel=error "$@"; }

step "packing the npm package"
tarball="$WORK/$(cd "$REPO" && npm pack --silent --pack-destination "$WORK" 2>/dev/null | tail -n 1)"
[ -f "$tarball" ] || fail "npm pack produced no tarball"
tar -tzf "$tarball" >"$WORK/contents"
grep -q "^package/prebuilds/$(node -p 'process.platform + "-" + process.arch')/libdora_node_api.so.0$" "$WORK/contents" ||
  fail "$tarball has no prebuilt library for this platform"

step "building the Python wheel"
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps "$REPO/bindings/python" -w "$WORK/wheel" >&2
wheel="$(ls "$WORK"/wheel/dora_ts-*.whl)"

step "installing $(basename "$tarball") into a fresh npm project"
mkdir "$WORK/app"
cd "$WORK/app"
npm_q init -y >/dev/null
npm_q install "$tarball" >/dev/null
DORA="$WORK/app/node_modules/.bin/dora"
"$DORA" --version >/dev/null || fail "the installed dora bin does not run"
node -e "const { Node, DoraError } = require('dora-ts'); if (typeof Node !== 'function' || typeof DoraError !== 'function') process.exit(1)" ||
  fail "require('dora-ts') (CommonJS) lacks Node"
node --input-type=module -e "import { Node, ErrorCode } from 'dora-ts'; if (typeof Node !== 'function' || typeof ErrorCode !== 'object') process.exit(1)" ||
  fail "import { Node } from 'dora-ts' (ESM) lacks Node"
cat >types.ts <<'TS'
import { Node, type Event } from 'dora-ts';
export async function first(node: Node): Promise<Event | undefined> {
  for await (const event of node) return event;
  return undefined;
}
TS
# the project's own @types (the package brings @types/node, which its types use); only the compiler comes from the checkout
[ -d node_modules/@types/node ] || fail "installing the package did not bring @types/node, which its types need"
"$REPO/node_modules/.bin/tsc" --noEmit --strict --module node16 --moduleResolution node16 --target es2022 --types node --typeRoots ./node_modules/@types types.ts ||
  fail "the package's types do not check"

# README commands must be the ones this script runs, so they cannot drift apart
expect_in_readme() { grep -qF -- "$2" "$1/README.md" || fail "$1/README.md does not say \`$2\`"; }
# `dora run` of a scaffolded project: the receiver gets 0..9 and the dataflow finishes
expect_run() {
  local out
  out="$("$@" 2>&1)" || fail "\`$*\` in $PWD failed:"$'\n'"$out"
  [ "$(grep -o '\[receiver\] received counter: \[\?[0-9]*' <<<"$out" | grep -o '[0-9]*$' | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 8 9 " ] ||
    fail "\`$*\` in $PWD did not print the ten counter values:"$'\n'"$out"
}

step "TypeScript: dora new, npm install, npx dora run"
cd "$WORK"
"$DORA" new ts-robot >/dev/null
cd ts-robot
expect_in_readme . "npm install"
expect_in_readme . "npx dora run dataflow.yml"
grep -qF "\"dora-ts\": \"file:$tarball\"" package.json || fail "ts-robot/package.json does not depend on $tarball"
npm_q install >/dev/null
[ -d node_modules/dora-ts ] && [ ! -L node_modules/dora-ts ] || fail "npm install did not install dora-ts from the tarball"
expect_run npx dora run dataflow.yml

step "C: dora new --lang c, dora build, dora run"
cd "$WORK"
"$DORA" new --lang c c-robot >/dev/null
cd c-robot
expect_in_readme . "dora build dataflow.yml"
expect_in_readme . "dora run dataflow.yml"
"$DORA" build dataflow.yml >/dev/null 2>&1 || fail "dora build of the C project failed: $("$DORA" build dataflow.yml 2>&1)"
ldd ./sender | grep -q "$WORK/app/node_modules/dora-ts/prebuilds/" || fail "the C node is not linked against the library in the installed package"
expect_run "$DORA" run dataflow.yml

step "C operator: built against the package's dora-operator-api, run by its prebuilt C runtime"
mkdir -p "$WORK/c-operator" && cd "$WORK/c-operator"
cp "$REPO/tests/fixtures/c/operator.c" .
cat > dataflow.yml <<'YML'
nodes:
  - id: ops
    operators:
      - id: counter
        shared-library: build/counter
        build: mkdir -p build && cc -shared -fPIC operator.c -o build/libcounter.so $(pkg-config --cflags --libs dora-operator-api)
        inputs:
          message: dora/timer/millis/20
        outputs: [counter]
YML
"$DORA" build dataflow.yml >/dev/null 2>&1 || fail "dora build of the C operator failed: $("$DORA" build dataflow.yml 2>&1)"
out="$("$DORA" run dataflow.yml --stop-after 1s 2>&1)" || fail "the C operator's dataflow failed:"$'\n'"$out"
grep -q "exe $WORK/app/node_modules/dora-ts/prebuilds/.*/dora-runtime" <<<"$out" || fail "the operator did not run in the package's prebuilt C runtime:"$'\n'"$out"
grep -q "c operator: dropped after [1-9]" <<<"$out" || fail "the C operator received nothing:"$'\n'"$out"

step "Python: dora new --lang python, a fresh .venv with the wheel, dora run"
cd "$WORK"
"$DORA" new --lang python py-robot >/dev/null
cd py-robot
expect_in_readme . "python3 -m venv .venv"
expect_in_readme . ".venv/bin/pip install"
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check "$wheel" >&2
expect_run "$DORA" run dataflow.yml

step "a global install: npm install -g, dora new, npm install, npx dora run"
npm_q install -g --prefix "$WORK/global" "$tarball" >/dev/null
cd "$WORK"
"$WORK/global/bin/dora" new global-robot >/dev/null
cd global-robot
grep -qF "\"dora-ts\": \"file:$WORK/global/lib/node_modules/dora-ts\"" package.json || fail "global-robot/package.json does not depend on the global dora-ts"
npm_q install >/dev/null
expect_run npx dora run dataflow.yml

step "ok: $(basename "$tarball") and $(basename "$wheel") install and run TypeScript, C (node and operator) and Python projects"

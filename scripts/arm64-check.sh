#!/usr/bin/env bash
# scripts/arm64-check.sh [ROOTFS]: the npm package on Linux arm64, where it ships no
# prebuilt node library and builds one from its C sources on first use
# (node-api/library.ts), checked on an x64 machine by emulation (qemu-user through
# binfmt_misc). A Debian 13 (trixie) arm64 root with what a user would install
# (nodejs 20 and npm, gcc, make, pkg-config, libzmq3-dev from Debian) runs, under chroot:
#   - `npm install` of this checkout's `npm pack` tarball into a fresh project (npm fetches
#     koffi's and esbuild's arm64 packages; zeromq brings its arm64 prebuild), `npx dora
#     --version`, `import { Node }` and `require`;
#   - with libzmq3-dev, then gcc, removed (apt-get remove; reinstalled after): a node run by
#     `dora run` fails in `new Node()` naming the missing package;
#   - `dora new` (TypeScript) and its README's commands (`npm install`, `npx dora run`):
#     the first run builds the library; `dora new --lang c`, `dora build`, `dora run`;
#   - `npm install git+file://` of a bare clone of this checkout (HEAD), a `dora new` project of
#     that install run with it (its library built from sources too: git installs have no prebuilds);
#   - a 1 MiB payload (above the 4 KiB shared-memory threshold) TypeScript -> C -> TypeScript,
#     intact, through shared-memory segments;
#   - when $PYTHON (default: the checkout's .venv) has `build`: the Python sdist, installed by
#     pip (pyarrow and numpy arm64 wheels from PyPI; the C compiled there) into a `dora new
#     --lang python` project's .venv as its README says, then `dora run`.
#
# Takes about half an hour on 2 x64 cores: ~10 minutes to make the root (debootstrap 5.5-7.5,
# apt-get inside 2.5 on an idle machine), 21.5 for the checks as measured (node starts in
# ~10 s under emulation; each first build of the library ~1.5 min, npm's git install with
# its tsc 4 min, pip's build of the sdist with pyarrow and numpy 7 min). With ROOTFS, the root is made there once and reused by later
# runs (about 1.1 GB; the checks work in its /root and /tmp, emptied first); without, it
# lives in a temporary folder removed at the end. Not run by CI.
#
# Needs root (debootstrap, chroot, mounts: in a private mount namespace that ends with each
# step), qemu-user-static and binfmt-support (`apt-get install qemu-user-static
# binfmt-support debootstrap`), deb.debian.org and registry.npmjs.org reachable. Extra CA
# certificates of this machine (/usr/local/share/ca-certificates, a TLS proxy's) are
# installed in the root too, so npm inside reaches the registry as npm outside does.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
started=$SECONDS
step() { printf 'arm64-check [%4ds]: %s\n' $((SECONDS - started)) "$*" >&2; }
fail() {
  echo "arm64-check: FAILED: $*" >&2
  exit 1
}
for tool in debootstrap chroot unshare; do command -v "$tool" >/dev/null || fail "needs $tool (apt-get install debootstrap util-linux coreutils)"; done
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mounts)"
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  command -v update-binfmts >/dev/null || fail "no binfmt_misc entry for arm64 binaries: apt-get install qemu-user-static binfmt-support"
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "the binfmt_misc entry qemu-aarch64 is disabled (update-binfmts --enable qemu-aarch64)"
# F: the interpreter is opened now, so it works inside the chroot without a copy there
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "the qemu-aarch64 binfmt entry lacks the F flag (use qemu-user-static's)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dora-arm64.XXXXXX")"
ROOT="${1:-$WORK/root}"
mkdir -p "$ROOT"
ROOT="$(cd "$ROOT" && pwd)"
# mounts live in private namespaces (in_root): none survives the script, so removing is safe
trap 'rm -rf "$WORK"' EXIT
# the root bind-mounts the host's /dev, so its dataflows' segments land in this /dev/shm
# while their run folders live in the root's /tmp: no daemon here would reclaim a leftover
ls /dev/shm | grep '^dora-ts-' | sort >"$WORK/shm-before" || true

# runs a bash script ($1) inside the root as root, with /proc, /sys and /dev mounted
in_root() {
  unshare -m --propagation private sh -euc '
    mount -t proc proc "$1/proc"; mount -t sysfs sys "$1/sys"; mount --rbind /dev "$1/dev"
    exec chroot "$1" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive /bin/bash -euo pipefail -c "$2"
  ' sh "$ROOT" "$1"
}

MARK="$ROOT/.dora-arm64-rootfs"
if [ ! -f "$MARK" ]; then
  step "making a Debian trixie arm64 root in $ROOT (debootstrap)"
  # debootstrap's own resolver cannot install npm (its alternatives): apt-get does, inside
  nice -n 19 debootstrap --arch=arm64 --variant=minbase --include=ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg trixie "$ROOT" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
    fail "debootstrap failed: $(tail -n 20 "$WORK/debootstrap.log")"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"; fi
  step "apt-get install nodejs npm gcc make pkg-config libzmq3-dev python3-venv python3-dev git (inside)"
  in_root 'update-ca-certificates >/dev/null 2>&1 && apt-get -q update >/dev/null &&
    nice -n 19 apt-get -q install -y nodejs npm gcc libc6-dev make pkg-config libzmq3-dev python3 python3-venv python3-dev git >/dev/null' ||
    fail "apt-get install inside the root failed"
  touch "$MARK"
else
  step "reusing the arm64 root in $ROOT"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  [ -x "$ROOT/usr/bin/git" ] || in_root 'apt-get -q install -y git >/dev/null' || fail "apt-get install git inside the root failed"
fi

step "npm pack (x64: its prebuilds/ has linux-x64 only)"
tarball="$(cd "$REPO" && nice -n 19 npm pack --silent --pack-destination "$WORK" 2>/dev/null | tail -n 1)"
[ -f "$WORK/$tarball" ] || fail "npm pack produced no tarball"
rm -rf "$ROOT/root" "$ROOT/tmp"
mkdir -p "$ROOT/root" "$ROOT/tmp/big"
chmod 1777 "$ROOT/tmp"
cp "$WORK/$tarball" "$ROOT/tmp/$tarball"
# the git install: a bare clone of this checkout, at its HEAD commit (what is committed, not the working tree)
commit="$(git -C "$REPO" rev-parse HEAD)"
git clone -q --bare "$REPO" "$ROOT/tmp/dora-ts.git"
cp "$REPO/tests/fixtures/c/echo.c" "$ROOT/tmp/big/"
# .mts: /root/app's package.json (npm init) makes .ts files CommonJS, where top-level await fails
cat >"$ROOT/tmp/big/sender.mts" <<'TS'
import { Node } from 'dora-ts';

// 1 MiB, i % 251: far above the 4 KiB shared-memory threshold; three times
const node = new Node();
const big = new Uint8Array(1 << 20).map((_, i) => i % 251);
let n = 0;
for await (const event of node) {
  if (event.type === 'INPUT' && event.id === 'tick') {
    await node.sendOutput('big', big);
    if (++n === 3) {
      console.log(`SENDER segments created: ${node.sharedMemoryStats.created}`);
      break;
    }
  }
}
TS
cat >"$ROOT/tmp/big/receiver.mts" <<'TS'
import { Node } from 'dora-ts';

const node = new Node();
for await (const event of node) {
  if (event.type !== 'INPUT') continue;
  const data = event.data.toArray() as Uint8Array;
  const intact = data.length === 1 << 20 && data.every((v, i) => v === i % 251);
  console.log(`RESULT ${data.length} bytes ${intact ? 'intact' : 'CORRUPT'}, segments mapped: ${node.sharedMemoryStats.mapped}`);
}
TS
mkdir -p "$ROOT/tmp/probe"
printf '%s\n' "import { Node } from 'dora-ts';" 'new Node();' >"$ROOT/tmp/probe/probe.ts"
printf '%s\n' 'nodes:' '  - id: probe' '    path: probe.ts' '    inputs:' '      tick: dora/timer/millis/100' >"$ROOT/tmp/probe/dataflow.yml"
cat >"$ROOT/tmp/big/dataflow.yml" <<'YML'
nodes:
  - id: sender
    path: sender.mts
    inputs:
      tick: dora/timer/millis/300
    outputs: [big]
  - id: echo
    path: ./echo
    build: cc -std=c11 -O2 -o echo echo.c $(pkg-config --cflags --libs dora-node-api)
    inputs:
      in: sender/big
    outputs: [out]
  - id: receiver
    path: receiver.mts
    inputs:
      big: echo/out
YML

# the Python package's sdist, when this checkout's Python has `build` (its [test] extra)
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
sdist=
if "$PYTHON" -c 'import build' 2>/dev/null; then
  step "python -m build --sdist bindings/python"
  nice -n 19 "$PYTHON" -m build --sdist --outdir "$WORK/sdist" "$REPO/bindings/python" >"$WORK/sdist.log" 2>&1 || fail "building the sdist failed: $(tail -n 20 "$WORK/sdist.log")"
  sdist="$(cd "$WORK/sdist" && ls dora_ts-*.tar.gz)"
  cp "$WORK/sdist/$sdist" "$ROOT/tmp/"
else
  step "$PYTHON has no 'build' module: the Python sdist is not checked (PYTHON=<a python with build>)"
fi

# the checks, as a user types them, inside the root
in_root "started=$((started - SECONDS)); TARBALL=/tmp/$tarball; COMMIT=$commit; SDIST=${sdist:+/tmp/$sdist}; $(declare -f step fail)"'
npm_q() { npm --no-audit --no-fund --loglevel=error "$@"; }
expect_run() {
  local out
  out="$("$@" 2>&1)" || fail "\`$*\` in $PWD failed:"$'"'\n'"'"$out"
  [ "$(grep -o "\[receiver\] received counter: \[\?[0-9]*" <<<"$out" | grep -o "[0-9]*$" | tr "\n" " ")" = "0 1 2 3 4 5 6 7 8 9 " ] ||
    fail "\`$*\` in $PWD did not print the ten counter values:"$'"'\n'"'"$out"
}
step "$(uname -m), Debian $(cat /etc/debian_version), node $(node --version), npm $(npm --version), $(gcc --version | head -n 1), libzmq $(pkg-config --modversion libzmq)"

step "npm install $TARBALL into a fresh project"
mkdir /root/app && cd /root/app && npm_q init -y >/dev/null
npm_q install "$TARBALL" >/dev/null
step "installed: $(cd node_modules && ls -d @koromix/* @esbuild/* zeromq/build/linux/arm64 2>/dev/null | tr "\n" " ")"
D=/root/app/node_modules/.bin/dora
step "npx dora --version: $(npx dora --version)"
node --input-type=module -e "import { Node } from \"dora-ts\"; if (typeof Node !== \"function\") process.exit(1)" || fail "import { Node } from dora-ts lacks Node"
node -e "if (typeof require(\"dora-ts\").Node !== \"function\") process.exit(1)" || fail "require(\"dora-ts\") lacks Node"

# what a node says where the library cannot be built (`new Node()` builds it): it must name the missing package
without() {
  local package="$1" want="$2" out
  apt-get -q remove -y "$package" >/dev/null 2>&1
  out="$(cd /root/app/probe && "$D" run dataflow.yml 2>&1)" && fail "a node without $package ran"
  apt-get -q install -y "$package" >/dev/null 2>&1
  grep -qF -- "$want" <<<"$out" || fail "a node without $package does not say \"$want\":"$'"'\n'"'"$out"
  step "without $package: $(grep -m1 -o "dora-ts has no prebuilt node library for linux.*" <<<"$out")"
}
mv /tmp/probe /root/app/probe
without libzmq3-dev "needs libzmq3-dev: install it"
without gcc "needs a C compiler (gcc): install it"
[ ! -e node_modules/dora-ts/bindings/c/build/libdora_node_api.so ] || fail "a library was built without what it needs"

step "TypeScript: dora new my-robot, then its README: npm install, npx dora run (builds the library)"
cd /root && "$D" new my-robot --lang typescript >/dev/null && cd my-robot
grep -qF "npm install" README.md && grep -qF "npx dora run dataflow.yml" README.md || fail "my-robot/README.md does not say npm install, npx dora run dataflow.yml"
npm_q install >/dev/null
expect_run npx dora run dataflow.yml
[ -f node_modules/dora-ts/bindings/c/build/libdora_node_api.so ] || fail "npx dora run did not build the library in my-robot/node_modules/dora-ts"

step "C: dora new c-robot --lang c, dora build (builds the library), dora run"
cd /root && "$D" new c-robot --lang c >/dev/null && cd c-robot
grep -qF "dora build dataflow.yml" README.md && grep -qF "dora run dataflow.yml" README.md || fail "c-robot/README.md does not say dora build, dora run"
"$D" build dataflow.yml >/dev/null 2>&1 || fail "dora build failed: $("$D" build dataflow.yml 2>&1)"
# (not `ldd | grep -q`: grep ending first fails the pipe under pipefail)
[[ "$(ldd ./sender)" == *"/root/app/node_modules/dora-ts/bindings/c/build/"* ]] || fail "the C node is not linked against the library built in the package: $(ldd ./sender)"
expect_run "$D" run dataflow.yml

step "1 MiB payloads through shared memory: TypeScript -> C -> TypeScript"
mv /tmp/big /root/app/big && cd /root/app/big
"$D" build dataflow.yml >/dev/null 2>&1 || fail "dora build of the echo node failed: $("$D" build dataflow.yml 2>&1)"
out="$("$D" run dataflow.yml 2>&1)" || fail "the big-payload dataflow failed:"$'"'\n'"'"$out"
[ "$(grep -c "RESULT 1048576 bytes intact, segments mapped: [1-9]" <<<"$out")" = 3 ] && grep -q "SENDER segments created: [1-9]" <<<"$out" ||
  fail "the 1 MiB payloads did not arrive intact through shared memory:"$'"'\n'"'"$out"
step "$(grep -m1 -o "SENDER.*" <<<"$out"); $(grep -m1 -o "RESULT.*" <<<"$out") (3 of 3)"

step "git: npm install git+file:///tmp/dora-ts.git#<HEAD> (npm runs its prepare, tsc) into another project, dora new there, dora run"
mkdir /root/git-app && cd /root/git-app && npm_q init -y >/dev/null
npm_q install "git+file:///tmp/dora-ts.git#$COMMIT" >/dev/null
G=/root/git-app/node_modules/.bin/dora
step "$G --version: $("$G" --version)"
node --input-type=module -e "import { Node } from \"dora-ts\"; if (typeof Node !== \"function\") process.exit(1)" || fail "import { Node } from a git install lacks Node"
cd /root && "$G" new git-robot >/dev/null && cd git-robot
grep -qF "\"dora-ts\": \"git+file:///tmp/dora-ts.git" package.json || fail "git-robot/package.json does not depend on the git URL: $(cat package.json)"
# its node_modules/dora-ts links to the git install already (dora new), whose library the run builds
expect_run "$G" run dataflow.yml

if [ -n "$SDIST" ]; then
  step "Python $(python3 -c "import platform; print(platform.python_version())"): dora new py-robot --lang python, its README: python3 -m venv .venv, .venv/bin/pip install $SDIST, dora run"
  cd /root && "$D" new py-robot --lang python >/dev/null && cd py-robot
  grep -qF "python3 -m venv .venv" README.md && grep -qF ".venv/bin/pip install" README.md || fail "py-robot/README.md does not say python3 -m venv .venv, .venv/bin/pip install"
  python3 -m venv .venv
  # pip bundles its own CA certificates: the system ones hold a TLS proxy'"'"'s too
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt .venv/bin/pip install -q --disable-pip-version-check "$SDIST" >/tmp/pip.log 2>&1 ||
    fail "pip install $SDIST failed: $(tail -n 30 /tmp/pip.log)"
  step "installed: $(.venv/bin/pip list --format freeze 2>/dev/null | grep -E "^(dora-ts|pyarrow|numpy)=" | tr "\n" " ")"
  expect_run "$D" run dataflow.yml
  langs="TypeScript, C and Python"
fi
step "ok: the npm package installs, builds its node library and runs ${langs:-TypeScript and C} nodes on $(uname -m)"
'
ls /dev/shm | grep '^dora-ts-' | sort >"$WORK/shm-after" || true
left="$(comm -13 "$WORK/shm-before" "$WORK/shm-after" | tr '\n' ' ')"
[ -z "$left" ] || fail "shared-memory segments left in /dev/shm by the emulated runs: $left"
step "done (no segment left in /dev/shm)"

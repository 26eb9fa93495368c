#!/usr/bin/env bash
# scripts/python-debian11-check.sh WHEEL: the cp39 wheel (a manylinux_2_31 one, built with
# DORA_TS_SYSROOT from scripts/python-sysroot.sh) on a real glibc 2.31: Debian 11's own
# python3.9, unpacked from Debian's packages into a temporary chroot, installs it with
# pyarrow and numpy in a fresh venv and runs a sender and a receiver through `dora run`
# (this checkout's CLI and this machine's node, mounted in), three small arrays and one of
# 1 MiB through shared memory. A wheel whose modules need something newer than glibc 2.31
# fails to import there, which auditwheel's symbol check alone does not show (a symbol
# that moved between libraries, as shm_open from librt into libc in 2.34).
#
# Needs root (chroot and mounts, in a private mount namespace that ends with the script),
# apt-get and dpkg-deb, and deb.debian.org and the package index reachable.
set -euo pipefail
WHEEL="$(realpath "${1:?usage: scripts/python-debian11-check.sh dora_ts-...-cp39-cp39-manylinux_2_31_x86_64.whl}")"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
case "$(basename "$WHEEL")" in *-cp39-cp39-*) ;; *) echo "python-debian11-check: $WHEEL is not a cp39 wheel (Debian 11's Python is 3.9)" >&2; exit 1 ;; esac
[ -f "$REPO/dist/cli/main.js" ] || { echo "python-debian11-check: no $REPO/dist/cli/main.js (npm run build)" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dora-debian11.XXXXXX")"
ROOT="$WORK/root"
# the checkout is mounted only inside the private namespace; never remove through a mount
trap 'mountpoint -q "$ROOT$REPO" 2>/dev/null || rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$ROOT"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian bullseye main" >"$WORK/sources.list"
apt_get() {
  apt-get -q -o Dir::Etc::SourceList="$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/cache" -o Dir::State::status=/dev/null \
    -o APT::Architecture=amd64 -o APT::Sandbox::User=root "$@"
}
apt_get update >&2
# python3.9 with venv and ensurepip, what it and node link, a shell
(cd "$WORK/debs" && apt_get download libc6 libgcc-s1 libstdc++6 python3.9-minimal libpython3.9-minimal \
  libpython3.9-stdlib python3.9 python3.9-venv python-pip-whl python3-distutils python3-lib2to3 libexpat1 zlib1g \
  libssl1.1 libffi7 libbz2-1.0 liblzma5 libsqlite3-0 libmpdec3 libncursesw6 libtinfo6 libreadline8 libuuid1 libdb5.3 \
  libgdbm6 libcrypt1 libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 \
  libkeyutils1 dash coreutils libselinux1 libpcre2-8-0 libacl1 libattr1 libgmp10 >&2)
for deb in "$WORK"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
ln -sf dash "$ROOT/bin/sh"
mkdir -p "$ROOT/wheels" "$ROOT/tmp/flow" "$ROOT/proc" "$ROOT/dev" "$ROOT$REPO"
touch "$ROOT/usr/bin/node"
cp "$WHEEL" "$ROOT/wheels/"
"$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version 3.9 \
  --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$ROOT/wheels" pyarrow numpy >&2
# the nodes of tests/test_packaging.py
(cd "$REPO/bindings/python/tests" && "$PYTHON" -c "
import pathlib, test_packaging as t
flow = pathlib.Path('$ROOT/tmp/flow')
(flow / 'sender.py').write_text(t.SENDER)
(flow / 'receiver.py').write_text(t.RECEIVER)
(flow / 'dataflow.yml').write_text('nodes:\n  - id: sender\n    path: sender.py\n    outputs: [out, big]\n'
                                   '  - id: receiver\n    path: receiver.py\n    inputs:\n      x: sender/out\n      big: sender/big\n')
print(sum(i % 251 for i in range(t.BIG)), t.BIG)" >"$WORK/expected")
read -r SUM BIG <"$WORK/expected"

unshare -m --propagation private sh -euc '
  mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"
  mount --bind "$(command -v node)" "$1/usr/bin/node"; mount --bind "$2" "$1$2"
  exec chroot "$1" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp /bin/sh -euc "
    /lib/x86_64-linux-gnu/libc.so.6 | head -n 1
    python3.9 -m venv /tmp/venv
    /tmp/venv/bin/pip install -q --disable-pip-version-check --no-index --find-links /wheels dora-ts
    cd /tmp/flow && DORA_PYTHON=/tmp/venv/bin/python node $2/dist/cli/main.js run dataflow.yml"
' sh "$ROOT" "$REPO" >&2
result="$(grep -ho 'RESULT .*' "$ROOT"/tmp/flow/out/*/log_receiver.txt)"
echo "$result" >&2
expected='{"seen": [[0, [0, 1, 2]], [1, [1, 2, 3]], [2, [2, 3, 4]]], "big": ['"$BIG, $SUM"', true], "python": "3.9", "dora": "/tmp/venv/lib/python3.9/site-packages/dora/__init__.py"}'
[ "$result" = "RESULT $expected" ] || { echo "python-debian11-check: FAILED, expected RESULT $expected" >&2; exit 1; }
echo "python-debian11-check: $(basename "$WHEEL") runs on Debian 11 (glibc 2.31, Python 3.9)" >&2

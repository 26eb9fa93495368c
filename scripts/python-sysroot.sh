#!/usr/bin/env bash
# scripts/python-sysroot.sh DIR: a sysroot for building the Python wheel against an older
# glibc and libzmq than this machine's: Debian 11's (glibc 2.31, libstdc++ of GCC 10,
# libzmq 4.3.4 with the libraries it needs), unpacked from Debian's own packages into DIR.
#
#   scripts/python-sysroot.sh /opt/dora-sysroot
#   DORA_TS_SYSROOT=/opt/dora-sysroot pip wheel --no-deps ./bindings/python
#
# gives a manylinux_2_31 wheel (Debian 11+, Ubuntu 20.04+, RHEL 9) where this machine's
# own libraries give manylinux_2_35 (bindings/python/README.md, "Packaging"). The packages
# come from deb.debian.org through apt-get with a configuration of its own (nothing of the
# system's apt state changes) and are checked against Debian's archive keyring.
set -euo pipefail
DIR="${1:?usage: scripts/python-sysroot.sh DIR}"
SUITE=bullseye
ARCH="$(dpkg --print-architecture)"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || { echo "python-sysroot: $KEYRING missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "python-sysroot: needs dpkg-deb and apt-get (a Debian or Ubuntu machine)" >&2; exit 1; }

# glibc and its headers, and libzmq with what it links (runtime libraries, and the -dev
# packages whose .pc files pkg-config needs for `pkg-config --cflags libzmq`)
PACKAGES=(
  libc6 libc6-dev linux-libc-dev libcrypt1 libcrypt-dev libnsl2 libnsl-dev libtirpc3 libtirpc-dev
  libstdc++6 libgcc-s1
  libzmq5 libzmq3-dev libsodium23 libsodium-dev libpgm-5.3-0 libpgm-dev libnorm1 libnorm-dev
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libkrb5-dev krb5-multidev comerr-dev
  libbsd0 libbsd-dev libmd0 libmd-dev libxml2-dev libicu-dev liblzma-dev zlib1g-dev
)

APT="$(mktemp -d "${TMPDIR:-/tmp}/dora-sysroot-apt.XXXXXX")"
trap 'rm -rf "$APT"' EXIT
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $SUITE main" >"$APT/sources.list"
apt_get() {
  apt-get -q -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Dir::State::status=/dev/null \
    -o APT::Architecture="$ARCH" -o APT::Sandbox::User=root "$@"
}
apt_get update >&2
(cd "$APT/debs" && apt_get download "${PACKAGES[@]}" >&2)

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
for deb in "$APT"/debs/*.deb; do dpkg-deb -x "$deb" "$DIR"; done
# absolute symlinks (libzmq.so -> /usr/lib/...) would point into this machine: made relative
find "$DIR" -type l | while read -r link; do
  target="$(readlink "$link")"
  case "$target" in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$DIR$target")" "$link" ;;
  esac
done
[ -f "$DIR/usr/include/zmq.h" ] || { echo "python-sysroot: no zmq.h in $DIR" >&2; exit 1; }
echo "python-sysroot: Debian $SUITE in $DIR; build with DORA_TS_SYSROOT=$DIR" >&2

#!/usr/bin/env bash
# `npm pack`'s prepack step: the node library prebuilt for this platform, shipped in the
# tarball as prebuilds/<platform>-<arch>/ (npm may not run a dependency's install script,
# so an installed package must not need a compiler where a prebuilt library matches).
# Beside it, a pkg-config file whose paths are relative to itself (${pcfiledir}), so it is
# right wherever the package is installed. postpack removes the folder again.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="$(node -p 'process.platform + "-" + process.arch')"
out="prebuilds/$tag"
if ! make -s -C bindings/c all; then
  echo "prepack: building bindings/c failed; it needs a C compiler, make, pkg-config and libzmq3-dev (Debian/Ubuntu: apt-get install build-essential pkg-config libzmq3-dev)" >&2
  exit 1
fi
version="$(sed -n 's/^VERSION *:= *//p' bindings/c/Makefile)"
rm -rf prebuilds
mkdir -p "$out/pkgconfig"
# one file named after the SONAME (npm does not pack symlinks); debug info stays in the checkout's build
cp "bindings/c/build/libdora_node_api.so.$version" "$out/libdora_node_api.so.0"
if command -v strip >/dev/null; then strip --strip-debug "$out/libdora_node_api.so.0"; fi
cat > "$out/pkgconfig/dora-node-api.pc" <<PC
libdir=\${pcfiledir}/..
includedir=\${pcfiledir}/../../../bindings/c/include

Name: dora-node-api
Description: C node API of dora-ts, source-compatible with dora's node_api.h
Version: $version
Requires.private: libzmq
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -l:libdora_node_api.so.0
Libs.private: -lpthread -lrt
PC
# the C operator runtime (its rpath, $ORIGIN, finds the library beside it) and what a C operator links
cp bindings/c/build/dora-runtime bindings/c/build/libdora_operator_api_c.a "$out/"
if command -v strip >/dev/null; then strip --strip-debug "$out/dora-runtime"; fi
cat > "$out/pkgconfig/dora-operator-api.pc" <<PC
libdir=\${pcfiledir}/..
includedir=\${pcfiledir}/../../../bindings/c/include

Name: dora-operator-api
Description: dora's C operator API (operator_api.h), for operators run by dora-ts
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libdora_operator_api_c.a
PC
echo "prepack: $out/libdora_node_api.so.0 ($(du -k "$out/libdora_node_api.so.0" | cut -f1) KiB)" >&2

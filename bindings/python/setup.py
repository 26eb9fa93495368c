"""Builds the native core: the C node library (bindings/c/src) and its Python binding
(src/native.c) compiled together into one CPython extension module, dora._native; and
the C operator host (bindings/c/operator) with its binding (src/operator.c) into
dora._operator, which the operator runtime (dora.runtime) uses for C operators.

Every call from Python into the core goes through that module (no ctypes). It is
libdora_node_api itself, linked against libzmq (Debian: libzmq3-dev); the wheel built by
`pip wheel` is repaired by auditwheel (build_backend/dora_build.py), which copies libzmq and
its libraries into it.

The C sources live in bindings/c, outside this folder: in the repository they are compiled
from there; the sdist carries a copy of them under csrc/ (made by the sdist command below,
never committed), so it builds on its own.
"""
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.sdist import sdist

HERE = pathlib.Path(__file__).resolve().parent
VENDORED = HERE / "csrc"
# the files of bindings/c this package compiles, by folder: copied into the sdist
C_FILES = {"src": ("*.c", "*.h"), "include": ("*.h",), "operator": ("host.c", "api.c", "abi.h", "host.h")}
# an unpacked sdist has csrc/; the repository has bindings/c
C_ROOT = VENDORED if VENDORED.is_dir() else HERE.parent / "c"


class VendoringSdist(sdist):
    """Copies the C sources of bindings/c into the sdist's csrc/ (not into this folder)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        # setuptools lists the extensions' ../c sources too: copied as is, they would land
        # beside base_dir (in this folder), not in the sdist
        super().make_release_tree(base_dir, [f for f in files if not os.path.normpath(f).startswith("..")])
        # from bindings/c, or from csrc/ itself in an sdist made from an unpacked sdist
        for folder, patterns in C_FILES.items():
            target = pathlib.Path(base_dir) / "csrc" / folder
            target.mkdir(parents=True, exist_ok=True)
            for pattern in patterns:
                found = sorted((C_ROOT / folder).glob(pattern))
                if not found:
                    raise SystemExit(f"sdist: no {folder}/{pattern} in {C_ROOT}")
                for src in found:
                    if not (target / src.name).exists():  # setuptools may have linked it there already
                        shutil.copy2(src, target / src.name)


# DORA_TS_SYSROOT: compile and link against an older distribution's glibc and libzmq (a
# sysroot: scripts/python-sysroot.sh makes Debian 11's), so that the wheel's manylinux tag
# is that distribution's (manylinux_2_31) and not this machine's.
SYSROOT = os.environ.get("DORA_TS_SYSROOT", "")
MULTIARCH = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
if SYSROOT and not (pathlib.Path(SYSROOT) / "usr" / "include" / "zmq.h").is_file():
    raise SystemExit(f"DORA_TS_SYSROOT={SYSROOT}: no usr/include/zmq.h there (scripts/python-sysroot.sh makes a sysroot)")
# the sysroot's library folders come first: GCC's own search path holds this machine's
SYSROOT_COMPILE = [f"--sysroot={SYSROOT}"] if SYSROOT else []
SYSROOT_LINK = [f"--sysroot={SYSROOT}", f"-L{SYSROOT}/usr/lib/{MULTIARCH}", f"-L{SYSROOT}/lib/{MULTIARCH}"] if SYSROOT else []


def pkg_config(*args: str) -> list[str]:
    env = os.environ.copy()
    if SYSROOT:
        env["PKG_CONFIG_SYSROOT_DIR"] = SYSROOT
        env["PKG_CONFIG_LIBDIR"] = f"{SYSROOT}/usr/lib/{MULTIARCH}/pkgconfig:{SYSROOT}/usr/share/pkgconfig"
    try:
        return subprocess.check_output(["pkg-config", *args, "libzmq"], text=True, env=env).split()
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(
            "dora-ts needs libzmq and pkg-config to build its native core "
            "(Debian/Ubuntu: apt-get install libzmq3-dev pkg-config)"
        ) from err


# Python 3.11+ builds against the stable ABI of 3.11 (the first with the buffer protocol,
# which sends bytes-like objects without a copy): one cp311-abi3 wheel serves 3.11, 3.12,
# 3.13 and later. 3.9 and 3.10 build against their full API, a wheel each, from the same C
# (src/pycompat.h gives 3.9 the few functions of 3.10 it uses); a limited API of 3.9 or
# 3.10 would mean copying every bytes-like object sent, or two ways of sending.
LIMITED_API = sys.version_info >= (3, 11)
ABI_MACROS = [("Py_LIMITED_API", "0x030B0000")] if LIMITED_API else []

# setuptools wants paths relative to this folder, even outside it
sources = sorted(os.path.relpath(p, HERE) for p in (C_ROOT / "src").glob("*.c")) + ["src/native.c"]
# a changed header (facts.h is generated from protocol/facts.json) rebuilds every source
headers = sorted(os.path.relpath(p, HERE) for d in ("src", "include") for p in (C_ROOT / d).glob("*.h")) + ["src/pycompat.h"]
native = Extension(
    "dora._native",
    sources=sources,
    depends=headers,
    include_dirs=[os.path.relpath(C_ROOT / "include", HERE), os.path.relpath(C_ROOT / "src", HERE)],
    define_macros=[("_GNU_SOURCE", None), *ABI_MACROS],
    py_limited_api=LIMITED_API,
    extra_compile_args=["-std=c11", "-O2", *SYSROOT_COMPILE, *pkg_config("--cflags")],
    # librt: shm_open and shm_unlink are there before glibc 2.34 (a sysroot's, an older system's)
    extra_link_args=[*SYSROOT_LINK, *pkg_config("--libs"), "-lpthread", "-lrt"],
)

# The operator host (bindings/c/operator) for C operators in the Python runtime: its own
# module, dora._operator, with nothing of the node core.
operator = Extension(
    "dora._operator",
    sources=[os.path.relpath(C_ROOT / "operator" / f, HERE) for f in ("host.c", "api.c")] + ["src/operator.c"],
    depends=[os.path.relpath(C_ROOT / p, HERE) for p in ("operator/abi.h", "operator/host.h", "include/operator_types.h")] + ["src/pycompat.h"],
    include_dirs=[os.path.relpath(C_ROOT / "include", HERE), os.path.relpath(C_ROOT / "operator", HERE)],
    define_macros=[("_GNU_SOURCE", None), *ABI_MACROS],
    py_limited_api=LIMITED_API,
    extra_compile_args=["-std=c11", "-O2", *SYSROOT_COMPILE],
    extra_link_args=[*SYSROOT_LINK, "-ldl"],
)

setup(
    ext_modules=[native, operator],
    cmdclass={"sdist": VendoringSdist},
    options={
        **({"bdist_wheel": {"py_limited_api": "cp311"}} if LIMITED_API else {}),
        # objects built against the sysroot apart from those built against this machine
        # (the C of bindings/c lands in <build_base>/c, shared by every build there), and
        # always rebuilt: setuptools would keep objects and modules older than their sources
        # whatever the flags (a release build, a few seconds)
        **({"build": {"build_base": "build/sysroot", "force": True}} if SYSROOT else {}),
    },
)

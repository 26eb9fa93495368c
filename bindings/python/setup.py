"""Builds the native core: the C node library (bindings/c/src) and its Python binding
(src/native.c) compiled together into one CPython extension module, dora._native; and
the C operator host (bindings/c/operator) with its binding (src/operator.c) into
dora._operator, which the operator runtime (dora.runtime) uses for C operators.

Every call from Python into the core goes through that module (no ctypes). It is
libdora_node_api itself, linked against the system's libzmq (Debian: libzmq3-dev).
"""
import os
import pathlib
import subprocess

from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent
C_ROOT = HERE.parent / "c"


def pkg_config(*args: str) -> list[str]:
    try:
        return subprocess.check_output(["pkg-config", *args, "libzmq"], text=True).split()
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(
            "dora-ts needs libzmq and pkg-config to build its native core "
            "(Debian/Ubuntu: apt-get install libzmq3-dev pkg-config)"
        ) from err


# setuptools wants paths relative to this folder, even outside it
sources = sorted(os.path.relpath(p, HERE) for p in (C_ROOT / "src").glob("*.c")) + ["src/native.c"]
# a changed header (facts.h is generated from protocol/facts.json) rebuilds every source
headers = sorted(os.path.relpath(p, HERE) for d in ("src", "include") for p in (C_ROOT / d).glob("*.h"))
native = Extension(
    "dora._native",
    sources=sources,
    depends=headers,
    include_dirs=[os.path.relpath(C_ROOT / "include", HERE), os.path.relpath(C_ROOT / "src", HERE)],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2", *pkg_config("--cflags")],
    extra_link_args=[*pkg_config("--libs"), "-lpthread"],
)

# The operator host (bindings/c/operator) for C operators in the Python runtime: its own
# module, dora._operator, with nothing of the node core.
operator = Extension(
    "dora._operator",
    sources=[os.path.relpath(C_ROOT / "operator" / f, HERE) for f in ("host.c", "api.c")] + ["src/operator.c"],
    depends=[os.path.relpath(C_ROOT / p, HERE) for p in ("operator/abi.h", "operator/host.h", "include/operator_types.h")],
    include_dirs=[os.path.relpath(C_ROOT / "include", HERE), os.path.relpath(C_ROOT / "operator", HERE)],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-O2"],
    extra_link_args=["-ldl"],
)

setup(ext_modules=[native, operator])

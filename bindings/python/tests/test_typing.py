"""The type stubs (dora/__init__.pyi, the compiled module's dora/_native.pyi, py.typed) checked
by mypy --strict: the package itself (node.py against the compiled module's stub), a typed
node using the installed package, and misuses the stubs must catch."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
CONFIG = PACKAGE / "pyproject.toml"
EXAMPLES = pathlib.Path(__file__).resolve().parent / "typing"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(cwd: pathlib.Path, cache: pathlib.Path, *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(cache), "--no-error-summary",
                           "--show-error-codes", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_the_package_and_its_stubs_type_check_strictly(cache: pathlib.Path) -> None:
    code, out = mypy(PACKAGE, cache, "-p", "dora")
    assert code == 0, out


def test_a_typed_node_type_checks_against_the_installed_package(tmp_path: pathlib.Path, cache: pathlib.Path) -> None:
    (tmp_path / "usage.py").write_text((EXAMPLES / "usage.py").read_text())
    code, out = mypy(tmp_path, cache, "usage.py")  # outside the source tree: dora is the installed package (py.typed)
    assert code == 0, out


def test_misuses_are_type_errors(tmp_path: pathlib.Path, cache: pathlib.Path) -> None:
    source = (EXAMPLES / "bad_usage.py").read_text()
    (tmp_path / "bad_usage.py").write_text(source)
    expected = {(n, m[1]) for n, line in enumerate(source.splitlines(), 1) if (m := re.search(r"# E: ([\w-]+)", line))}
    code, out = mypy(tmp_path, cache, "bad_usage.py")
    found = {(int(m[1]), m[2]) for m in re.finditer(r"^bad_usage\.py:(\d+): error: .*\[([\w-]+)\]$", out, re.M)}
    assert code == 1 and found == expected, out

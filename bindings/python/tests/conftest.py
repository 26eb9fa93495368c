"""Helpers for tests that run real dataflows through the repository's `dora` CLI."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
from typing import Any, NamedTuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
CLI = ROOT / "dist" / "cli" / "main.js"
NODES = pathlib.Path(__file__).resolve().parent / "nodes"
TS_NODES = ROOT / "tests" / "fixtures" / "nodes"
VECTORS = ROOT / "tests" / "vectors"


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str
    dataflow_id: str | None

    def log(self, directory: pathlib.Path, node: str) -> str:
        return (directory / "out" / str(self.dataflow_id) / f"log_{node}.txt").read_text()


def run_dataflow(directory: pathlib.Path, yaml: str, timeout: float = 60, build: bool = False) -> Run:
    """Writes dataflow.yml into `directory`, builds it if asked, and runs it in the foreground with this Python."""
    (directory / "dataflow.yml").write_text(yaml)
    env = {**os.environ, "DORA_PYTHON": sys.executable}
    if build:
        subprocess.run(["node", str(CLI), "build", "dataflow.yml"], cwd=directory, env=env, check=True, capture_output=True, timeout=timeout)
    done = subprocess.run(["node", str(CLI), "run", "dataflow.yml"], cwd=directory, env=env, capture_output=True, text=True, timeout=timeout)
    match = re.search(r"dataflow ([0-9a-f-]{36})", done.stderr)
    dataflow_id = match.group(1) if match else None
    if dataflow_id:  # nothing of the run may be left in /dev/shm
        assert [n for n in os.listdir("/dev/shm") if n.startswith(f"dora-ts-{dataflow_id}")] == []
    return Run(done.returncode, done.stdout, done.stderr, dataflow_id)


def read_record(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture
def workdir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path

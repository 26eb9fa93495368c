"""Operators without a dataflow: the C operator host (dora._operator) driving a real
operator library, and the Python runtime's pieces (arguments, statuses, input bytes).
The runtime in dataflows is tested end to end by tests/operators.test.ts."""

from __future__ import annotations

import pathlib
import subprocess

import pyarrow as pa
import pytest

import dora
from conftest import ROOT
from dora import DoraStatus, runtime
from dora._operator import SharedLibraryOperator

C_DIR = ROOT / "bindings" / "c"
OPERATOR_SOURCE = ROOT / "tests" / "fixtures" / "c" / "operator.c"


def build_operator(directory: pathlib.Path, linked: bool) -> pathlib.Path:
    """The fixture operator as a shared library: linked with libdora_operator_api_c.a, or
    with the header only (its operator functions then come from this module)."""
    library = directory / ("liblinked.so" if linked else "libplain.so")
    archive = C_DIR / "build" / "libdora_operator_api_c.a"
    if linked and not archive.exists():
        pytest.skip("bindings/c is not built (make -C bindings/c)")
    command = ["cc", "-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{C_DIR / 'include'}", str(OPERATOR_SOURCE), "-o", str(library)]
    subprocess.run(command + ([str(archive)] if linked else []), check=True, capture_output=True)
    return library


def test_dora_status_has_doras_values() -> None:
    assert dora.DoraStatus is DoraStatus
    assert [(s.name, s.value) for s in DoraStatus] == [("CONTINUE", 0), ("STOP", 1), ("STOP_ALL", 2)]


@pytest.mark.parametrize("linked", [True, False], ids=["linked", "header-only"])
def test_a_c_operator_gets_its_events_and_sends_through_the_callback(tmp_path: pathlib.Path, linked: bool, capfd: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, bytes]] = []
    op = SharedLibraryOperator(str(build_operator(tmp_path, linked)), lambda output, data: sent.append((output, data)))
    assert op.on_input("message", b"tick 0") == DoraStatus.CONTINUE.value
    assert op.on_input("message", memoryview(b"tick 1")) == DoraStatus.CONTINUE.value
    assert op.on_input("other", pa.py_buffer(b"")) == DoraStatus.CONTINUE.value
    assert sent == [("counter", b"The current counter value is 1"), ("counter", b"The current counter value is 2")]
    monkeypatch.setenv("C_STOP_AFTER", "3")
    monkeypatch.setenv("C_STATUS", "STOP_ALL")
    assert op.on_input("message", b"tick 2") == DoraStatus.STOP_ALL.value
    assert op.on_input_closed("message") == 0
    assert op.on_error("the daemon went away") == 0
    assert op.on_stop() == 0
    op.drop()
    op.drop()  # once only
    with pytest.raises(dora.NodeError, match="dropped"):
        op.on_stop()
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].startswith("c operator: pid ")
    assert lines[1:] == [
        "c operator: unexpected input other",
        "c operator: input message closed",
        "c operator: error the daemon went away",
        "c operator: stop",
        "c operator: dropped after 3 messages",
    ]


def test_a_failing_send_is_the_operators_error_and_an_unknown_status_is_refused(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(output: str, data: bytes) -> None:
        raise dora.UndeclaredOutputError(f"no output {output!r}")

    op = SharedLibraryOperator(str(build_operator(tmp_path, linked=False)), refuse)
    # the operator hands send's error back as its own result, as dora's example does
    with pytest.raises(dora.NodeError, match=r"dora_on_event failed: UndeclaredOutputError: no output 'counter'"):
        op.on_input("message", b"x")
    monkeypatch.setenv("C_STOP_AFTER", "1")
    monkeypatch.setenv("C_STATUS", "9")
    op2 = SharedLibraryOperator(str(build_operator(tmp_path, linked=False)), lambda output, data: None)
    with pytest.raises(dora.NodeError, match=r"returned the unknown status 9"):
        op2.on_input("message", b"x")


def test_libraries_that_are_not_operators_are_refused_with_the_reason(tmp_path: pathlib.Path) -> None:
    with pytest.raises(dora.NodeError, match=r"cannot load .*libmissing\.so"):
        SharedLibraryOperator(str(tmp_path / "libmissing.so"), lambda output, data: None)
    (tmp_path / "empty.c").write_text("int nothing(void) { return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", str(tmp_path / "empty.c"), "-o", str(tmp_path / "libempty.so")], check=True)
    with pytest.raises(dora.NodeError, match=r"does not export dora_init_operator"):
        SharedLibraryOperator(str(tmp_path / "libempty.so"), lambda output, data: None)


def test_runtime_arguments_statuses_and_input_bytes() -> None:
    specs = runtime.parse_arguments(["--operator", "a", "python", "/x/a.py", "tick,image", "out", "--operator", "b", "shared-library", "/x/libb.so", "", ""])
    assert [(s.id, s.kind, s.path, s.inputs, s.outputs) for s in specs] == [
        ("a", "python", "/x/a.py", ["tick", "image"], ["out"]),
        ("b", "shared-library", "/x/libb.so", [], []),
    ]
    for bad in ([], ["--operator", "a", "python", "/x/a.py"], ["--operator", "a", "wasm", "/x/a.wasm", "", ""]):
        with pytest.raises(dora.UsageError):
            runtime.parse_arguments(bad)
    assert runtime._status(DoraStatus.STOP, "a") == 1
    assert runtime._status(2, "a") == 2
    for bad_status in (None, True, 3, "CONTINUE"):
        with pytest.raises(TypeError, match="must return a DoraStatus"):
            runtime._status(bad_status, "a")
    # what C's dora_read_data gives: the values of fixed-width arrays, in place; nothing for others
    ints = pa.array([1, 2, 3, 4], type=pa.int16()).slice(1, 2)
    assert bytes(runtime._raw_bytes(ints)) == pa.array([2, 3], type=pa.int16()).buffers()[1].to_pybytes()
    assert bytes(runtime._raw_bytes(pa.array([7, 8], type=pa.uint8()))) == b"\x07\x08"
    assert runtime._raw_bytes(pa.array(["a"])) == b""
    assert runtime._raw_bytes(pa.array([], type=pa.null())) == b""
    assert runtime._raw_bytes(pa.array([True])) == b""

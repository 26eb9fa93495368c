"""The compiled module's handles: a closed node, a wrong handle or a consumed export raises
a Python exception instead of crashing the interpreter; nothing but handle objects
crosses into Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import dora
from conftest import VECTORS, run_dataflow
from dora import _native
from dora import node as node_module

CLOSED_NODE = '''
import json, os
import pyarrow as pa
from dora import Node, _native

node = Node()
report = {"type": type(node._ctx).__name__, "closed_before": node._ctx.closed}
node.close()
node.close()  # idempotent
report["closed_after"] = node._ctx.closed
report["next"] = node.next()
report["next_timeout"] = node.next(timeout=0.1)
report["try_recv"] = node.try_recv()
report["drain"] = node.drain()
node.log_info("dropped after close")

def error(call):
    try:
        call()
    except Exception as err:
        return [type(err).__name__, str(err), isinstance(err, RuntimeError), getattr(err, "code", None)]
    return None

report["send_bytes"] = error(lambda: node.send_output("out", b"x"))
report["send_arrow"] = error(lambda: node.send_output("out", pa.array([1, 2])))
report["next_event"] = error(lambda: node._ctx.next_event(0))
report["stream_ended"] = error(lambda: node._ctx.stream_ended())
report["log"] = error(lambda: node._ctx.log("info", "x"))
report["wrong_handle"] = error(lambda: _native.Context.next_event(object(), 0))
report["not_arrow"] = error(lambda: node._ctx.send_arrow("out", object(), None))
report["new_export"] = error(lambda: _native.ArrowExport())
open(os.environ["RECORD"], "w").write(json.dumps(report))
'''


def test_a_closed_node_raises_instead_of_crashing(workdir: Path) -> None:
    (workdir / "closer.py").write_text(CLOSED_NODE)
    run = run_dataflow(workdir, """nodes:
  - id: closer
    path: closer.py
    env: { RECORD: ./report.json }
    outputs: [out]
""")
    assert run.code == 0, run.stderr
    report = json.loads((workdir / "report.json").read_text())
    assert report["type"] == "Context" and report["closed_before"] is False and report["closed_after"] is True
    assert report["next"] is None and report["next_timeout"] is None and report["try_recv"] is None and report["drain"] == []
    closed = ["NoContextError", "node is closed", True, 1]  # a dora.DoraError (NO_CONTEXT), and a RuntimeError
    assert report["send_bytes"] == closed and report["send_arrow"] == closed
    assert report["next_event"] == closed and report["stream_ended"] == closed and report["log"] == closed
    assert report["wrong_handle"][0] == "TypeError"
    assert report["not_arrow"][0] == "TypeError"  # checked before the closed handle is used
    assert report["new_export"][0] == "TypeError"


def test_outside_a_dataflow_the_handle_cannot_be_made() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DORA_NODE_CONFIG"}
    done = subprocess.run([sys.executable, "-c", "from dora import _native; _native.Context()"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "dora.ConfigError: could not join the dataflow: DORA_NODE_CONFIG is not set" in done.stderr


def test_a_core_failure_raises_the_dora_error_of_its_code() -> None:
    """The core's code comes with its message: a malformed frame, a configuration that is not JSON."""
    with pytest.raises(dora.MalformedMessageError, match="bad magic") as refused:
        _native.decode_frames([b"XORA\x01\x00"])
    assert (refused.value.code, refused.value.code_name) == (8, "MALFORMED_MESSAGE")
    assert isinstance(refused.value, dora.DoraError) and isinstance(refused.value, RuntimeError)

    env = {**os.environ, "DORA_NODE_CONFIG": "{not json"}
    script = "from dora import _native, DoraError\ntry:\n    _native.Context()\nexcept DoraError as err:\n    print(type(err).__name__, err.code, err.code_name, err)\n"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.startswith("ConfigError 4 CONFIG could not join the dataflow: DORA_NODE_CONFIG is not valid JSON: invalid JSON at byte"), done.stderr



def test_a_node_whose_run_folder_is_gone_fails_at_once(tmp_path) -> None:
    """A node starting after its daemon died and its run folder was reclaimed cannot bind its
    outputs: it fails with that error, and closing what it opened does not hang (it did, on a
    request to a daemon it had not connected to yet)."""
    gone = tmp_path / "gone"
    config = {
        "protocolVersion": 1, "dataflowId": "00000000-0000-0000-0000-000000000000", "nodeId": "x", "daemonPid": 1,
        "daemonStartTime": None, "dynamic": False, "daemonRequests": f"ipc://{gone}/daemon", "daemonEvents": f"ipc://{gone}/events",
        "dataEndpoint": f"ipc://{gone}/0.data", "dropEndpoint": f"ipc://{gone}/0.drops", "sharedMemoryThreshold": 4096,
        "segmentPrefix": "dora-ts-00000000-0000-0000-0000-000000000000-", "outputs": ["out"], "subscribers": {"out": []}, "inputs": [],
        "nodeDescriptor": {}, "dataflowDescriptorFile": "/dev/null", "restartCount": 0, "healthCheckTimeoutMs": 0,
    }
    env = {**os.environ, "DORA_NODE_CONFIG": json.dumps(config)}
    script = "from dora import Node, DoraError\ntry:\n    Node()\nexcept DoraError as err:\n    print(err.code_name, err)\n"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=10)
    assert done.stdout.strip() == f"ZMQ could not join the dataflow: cannot bind ipc://{gone}/0.data: No such file or directory", done.stderr


def test_every_code_of_the_catalogue_has_its_class() -> None:
    from dora import _facts

    assert set(_facts.ERRORS) == set(_facts.ERROR_NAMES) - {0}
    for code, cls in _facts.ERRORS.items():
        error = _facts.make_error(code, "m")
        assert type(error) is cls and error.code == code and error.code_name == _facts.ERROR_NAMES[code]
        assert issubclass(cls, dora.DoraError) and getattr(dora, cls.__name__) is cls
    unknown = _facts.make_error(999, "m")
    assert type(unknown) is dora.DoraError and (unknown.code, unknown.code_name) == (999, "UNKNOWN")


def test_a_received_export_is_handed_over_once_through_the_pycapsule_interface() -> None:
    vector = json.loads((VECTORS / "arrow" / "int32.json").read_text())
    frames = [(VECTORS / "arrow" / f).read_bytes() for f in vector["frames"]]
    _native.configure(node_module._ns_to_datetime, node_module._timestamp_ns, lambda export: export)  # keep the raw exports
    try:
        exports = [_native.decode_frames(frames)["value"] for _ in range(3)]
    finally:
        _native.configure(node_module._ns_to_datetime, node_module._timestamp_ns, pa.array)
    assert all(type(e) is _native.ArrowExport for e in exports)
    # the capsules of the PyCapsule interface; dropped unconsumed, they release the structs
    schema, array = exports[0].__arrow_c_array__()
    assert ('"arrow_schema"' in repr(schema), '"arrow_array"' in repr(array)) == (True, True)
    del schema, array
    # pyarrow's public route takes it once
    value = pa.array(exports[1])
    assert value.type == pa.int32() and len(value) == len(vector["values"])
    with pytest.raises(dora.UsageError, match="already handed over"):  # a RuntimeError too
        pa.array(exports[1])
    with pytest.raises(RuntimeError, match="already handed over"):
        exports[0].__arrow_c_array__()
    del exports  # the third, never imported, is released with its object

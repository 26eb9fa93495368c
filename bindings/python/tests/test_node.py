"""The Python node API in real dataflows, and outside one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import NODES, ROOT, TS_NODES, VECTORS, read_record, run_dataflow


def test_outside_a_dataflow_node_raises_a_clear_runtime_error():
    env = {k: v for k, v in os.environ.items() if k != "DORA_NODE_CONFIG"}
    done = subprocess.run([sys.executable, "-c", "from dora import Node; Node()"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    # dora.ConfigError: a dora.DoraError (code CONFIG) and a RuntimeError
    assert "dora.ConfigError: DORA_NODE_CONFIG is not set: this program is a dora node and must be started by dora" in done.stderr

    assert 'for a dynamic node (`path: dynamic`), name it: Node("<node id>")' in done.stderr


def test_a_dynamic_node_with_no_dataflow_running_says_so_and_where_it_looked(tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "DORA_NODE_CONFIG"}
    code = "from dora import Node, ConfigError\ntry:\n    Node('explorer')\nexcept ConfigError as e:\n    print(e.code_name, e)"
    done = subprocess.run([sys.executable, "-c", code], env={**env, "DORA_RUNTIME_DIR": str(runtime)}, capture_output=True, text=True)
    assert done.stdout.strip() == f'CONFIG no dataflow is running (none in {runtime}): start the dataflow that declares node "explorer" with `path: dynamic` first'
    # a runtime directory others can enter is refused, not searched
    runtime.chmod(0o755)
    done = subprocess.run([sys.executable, "-c", "from dora import Node; Node('explorer')"], env={**env, "DORA_RUNTIME_DIR": str(runtime)}, capture_output=True, text=True)
    assert f"refusing the runtime directory {runtime}: it is open to other users" in done.stderr


def test_python_to_python_values_metadata_and_zero_copy(workdir):
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {NODES / 'py_sender.py'}
    outputs: [out]
  - id: receiver
    path: {NODES / 'py_receiver.py'}
    env: {{ RECORD: ./r.jsonl }}
    inputs:
      data: {{ source: sender/out, queue_size: 100 }}
""")
    assert run.code == 0, run.stderr
    events = read_record(workdir / "r.jsonl")
    inputs = {e["case"]: e for e in events if e["type"] == "INPUT"}
    assert inputs["int32"]["values"] == [1, 2, None, 4]
    assert inputs["int32"]["arrow_type"] == "int32"
    meta = inputs["int32"]["metadata"]
    assert meta["frame"] == 7 and meta["gain"] == 0.5 and meta["ok"] is True and meta["label"] == "cam"
    assert meta["when"] == "2024-01-02T03:04:05.678000+00:00"
    assert meta["shape"] == [480, 640] and meta["scale"] == [0.5, 2.0] and meta["tags"] == ["a", "b"]
    assert meta["timestamp"].endswith("+00:00")  # the message's own timestamp, as a datetime
    assert inputs["list"]["values"] == [1.5, 2.5]
    assert inputs["strings"]["values"] == ["x", None, "zé"]
    assert inputs["struct"]["values"] == [{"x": 1.0, "label": "a"}, None]
    assert inputs["bytes"]["values"] == list(b"raw bytes") and inputs["bytes"]["arrow_type"] == "uint8"
    assert inputs["matrix"]["values"] == [float(i) for i in range(12)] and inputs["matrix"]["arrow_type"] == "float"
    large = inputs["large"]
    assert large["length"] == 4 << 20 and large["pattern_ok"] is True
    assert large["in_place"] is True  # the receiver's numpy view is the sender's shared memory
    # its one input closed, then STOP because every input is (dora's semantics)
    assert events[-2:] == [{"type": "INPUT_CLOSED", "id": "data"}, {"type": "STOP", "id": "ALL_INPUTS_CLOSED"}]


def test_every_arrow_vector_type_round_trips_typescript_python_typescript(workdir):
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {TS_NODES / 'vector-sender.ts'}
    outputs: [out]
  - id: echo
    path: {NODES / 'py_echo.py'}
    inputs:
      data: {{ source: sender/out, queue_size: 100 }}
    outputs: [out]
  - id: receiver
    path: {TS_NODES / 'vector-receiver.ts'}
    env: {{ RECORD: ./received.jsonl }}
    inputs:
      data: {{ source: echo/out, queue_size: 100 }}
""")
    assert run.code == 0, run.stderr
    received = {e["vector"]: e for e in read_record(workdir / "received.jsonl") if e["type"] == "INPUT"}
    expected = 0
    for path in sorted((VECTORS / "arrow").glob("*.json")):
        vector = json.loads(path.read_text())
        if vector.get("decodeOnly"):
            continue
        expected += 1
        assert received[path.stem]["values"] == vector["values"], path.stem
    assert received["large"]["patternOk"] is True and received["large"]["length"] == 4 << 20
    assert len(received) == expected + 1


def test_every_arrow_vector_type_passes_python_and_c_nodes_in_both_directions(workdir):
    echo_c = ROOT / "tests" / "fixtures" / "c" / "echo.c"
    subprocess.run(["make", "-s", "-C", str(ROOT / "bindings" / "c")], check=True)
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {TS_NODES / 'vector-sender.ts'}
    outputs: [out]
  - id: py1
    path: {NODES / 'py_echo.py'}
    inputs:
      data: {{ source: sender/out, queue_size: 100 }}
    outputs: [out]
  - id: c
    path: ./echo
    build: cc {echo_c} -o echo $(pkg-config --cflags --libs dora-node-api)
    inputs:
      data: {{ source: py1/out, queue_size: 100 }}
    outputs: [out]
  - id: py2
    path: {NODES / 'py_echo.py'}
    inputs:
      data: {{ source: c/out, queue_size: 100 }}
    outputs: [out]
  - id: receiver
    path: {TS_NODES / 'vector-receiver.ts'}
    env: {{ RECORD: ./received.jsonl }}
    inputs:
      data: {{ source: py2/out, queue_size: 100 }}
""", build=True)
    assert run.code == 0, run.stderr
    received = {e["vector"]: e for e in read_record(workdir / "received.jsonl") if e["type"] == "INPUT"}
    for path in sorted((VECTORS / "arrow").glob("*.json")):
        vector = json.loads(path.read_text())
        if not vector.get("decodeOnly"):
            assert received[path.stem]["values"] == vector["values"], path.stem
    assert received["large"]["patternOk"] is True


def test_api_methods_logging_and_undeclared_outputs(workdir):
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {TS_NODES / 'sender.ts'}
    env: {{ COUNT: 3 }}
    inputs:
      tick: dora/timer/millis/20
    outputs: [out]
  - id: api
    path: {NODES / 'py_api.py'}
    env: {{ RECORD: ./report.json }}
    inputs:
      data: sender/out
      slow: dora/timer/secs/10
    outputs: [result, debug]
""")
    assert run.code == 0, run.stderr
    report = json.loads((workdir / "report.json").read_text())
    assert report["first"] == ["INPUT", "data"]
    assert report["is_empty"] is False
    assert report["drained"] == [["INPUT", "data"], ["INPUT", "data"], ["INPUT_CLOSED", "data"]]
    assert report["try_recv"] is None
    # on a timeout, dora's ERROR event; the `slow` timer keeps the stream open
    assert report["next_timeout"] == {"type": "ERROR", "error": "Receiver timed out", "kind": "dora"} and 0.15 <= report["waited"] < 2
    assert report["dataflow_id"] == run.dataflow_id
    assert report["node_config_id"] == "api"
    assert report["descriptor_nodes"] == ["sender", "api"]
    assert report["undeclared"] == "node 'api' has no output 'nope' (declared outputs: result, debug)"
    # waits in slices: a send from another thread does not wait for the receive to time out (1.2 s more)
    assert report["send_while_receiving"] < 0.5 and report["recv_async_timeout"]["error"] == "Receiver timed out"
    log = run.log(workdir, "api")
    assert "[info] root: hello from python logging" in log
    assert "[warn] a warning through node.log_warn" in log


def test_a_python_node_sees_an_error_event_when_its_daemon_is_killed(workdir):
    script = workdir / "waiter.py"
    script.write_text(
        "import json, os\nfrom dora import Node\nnode = Node()\n"
        "events = [e['type'] for e in node]\n"
        "open(os.environ['RECORD'], 'w').write(json.dumps(events))\n"
    )
    (workdir / "dataflow.yml").write_text(f"nodes:\n  - id: waiter\n    path: {script}\n    env: {{ RECORD: ./events.json }}\n    inputs:\n      tick: dora/timer/secs/100\n")
    env = {**os.environ, "DORA_PYTHON": sys.executable}
    from conftest import CLI
    import signal
    import time
    daemon = subprocess.Popen(["node", str(CLI), "run", "dataflow.yml"], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _started(workdir):
            time.sleep(0.1)
        time.sleep(1)  # past the start barrier
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (workdir / "events.json").exists():
            time.sleep(0.1)
        assert json.loads((workdir / "events.json").read_text()) == ["ERROR"]
    finally:
        if daemon.poll() is None:
            daemon.kill()


def _started(workdir) -> bool:
    out = workdir / "out"
    return out.exists() and any(out.iterdir())

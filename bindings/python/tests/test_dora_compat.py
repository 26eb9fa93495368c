"""dora's Python API contracts that code written for dora relies on."""
from __future__ import annotations

import json

from conftest import NODES, TS_NODES, read_record, run_dataflow


def test_next_timeout_gives_an_error_event_and_none_only_at_the_end(workdir):
    # the dora idiom: `while True: event = node.next(timeout=...); if event is None: break`
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {TS_NODES / 'sender.ts'}
    env: {{ COUNT: 3 }}
    inputs:
      tick: dora/timer/millis/300
    outputs: [out]
  - id: loop
    path: {NODES / 'py_timeout_loop.py'}
    env: {{ RECORD: ./loop.jsonl }}
    inputs:
      data: sender/out
""")
    assert run.code == 0, run.stderr
    events = read_record(workdir / "loop.jsonl")
    kinds = [e["type"] for e in events]
    assert kinds.count("INPUT") == 3
    timeouts = [e for e in events if e["type"] == "ERROR"]
    assert len(timeouts) >= 3 and all(e["error"] == "Receiver timed out" for e in timeouts)  # quiet moments do not end it
    assert kinds[-3:] == ["INPUT_CLOSED", "STOP", "END"]  # None came only after the stream ended


def test_send_output_raw_sends_40_mb_without_a_copy_on_either_side(workdir):
    run = run_dataflow(workdir, f"""nodes:
  - id: sender
    path: {NODES / 'py_raw_sender.py'}
    env: {{ RECORD: ./sender.json }}
    outputs: [out]
  - id: receiver
    path: {NODES / 'py_raw_receiver.py'}
    env: {{ RECORD: ./receiver.json }}
    inputs:
      data: sender/out
""")
    assert run.code == 0, run.stderr
    sender = json.loads((workdir / "sender.json").read_text())
    receiver = json.loads((workdir / "receiver.json").read_text())
    assert sender["in_shm"] is True  # fill wrote straight into the shared-memory sample
    assert receiver == {"length": 40_000_000, "pattern_ok": True, "frame": 1, "in_place": True}

"""Test node: exercises recv_async, is_empty, drain, try_recv, next(timeout), logging,
dataflow_id/node_config/dataflow_descriptor, an undeclared output and send_output while
recv_async waits; writes a JSON report.
Inputs: `data` (three messages, then closed) and `slow` (a 10 s timer that keeps the stream open)."""
import asyncio
import json
import logging
import os
import time

import pyarrow as pa

from dora import Node

node = Node("a-node-hub-package")  # the daemon's configuration wins, as in dora
report = {}
first = asyncio.run(node.recv_async(timeout=5))
report["first"] = [first["type"], first["id"]]
time.sleep(0.5)  # the other two messages and the end of `data` arrive meanwhile
report["is_empty"] = node.is_empty()
report["drained"] = [[e["type"], e["id"]] for e in node.drain()]
report["try_recv"] = node.try_recv()
start = time.monotonic()
report["next_timeout"] = node.next(timeout=0.2)
report["waited"] = time.monotonic() - start
report["dataflow_id"] = node.dataflow_id()
report["node_config_id"] = node.node_config().get("id")
report["descriptor_nodes"] = [n["id"] for n in node.dataflow_descriptor()["nodes"]]
try:
    node.send_output("nope", b"x")
except ValueError as err:
    report["undeclared"] = str(err)


async def send_while_receiving() -> tuple[float, object]:
    """send_output from the event loop while recv_async waits in a worker thread."""
    waiting = asyncio.ensure_future(node.recv_async(timeout=1.5))  # nothing comes: `slow` ticks every 10 s
    await asyncio.sleep(0.3)  # the worker is inside next() by now
    start = time.monotonic()
    node.send_output("result", pa.array([1, 2, 3]))
    took = time.monotonic() - start
    return took, await waiting


report["send_while_receiving"], report["recv_async_timeout"] = asyncio.run(send_while_receiving())
logging.info("hello from python logging")
node.log_warn("a warning through node.log_warn")
with open(os.environ["RECORD"], "w") as out:
    json.dump(report, out)

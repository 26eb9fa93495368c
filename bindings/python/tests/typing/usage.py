"""A typed dora node, checked by mypy --strict against the package's stubs (tests/test_typing.py).
It is only type-checked, never run."""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from dora import DoraError, DoraStatus, UndeclaredOutputError, Node
from dora.operator import SendOutput

if TYPE_CHECKING:  # type-only names of the stubs
    from dora import Event, MetadataValue


def describe(event: Event) -> str:
    if event["type"] == "INPUT":
        value: pa.Array = event["value"]
        when: object = event["metadata"]["timestamp"]
        return f"{event['id']}: {len(value)} values at {when}"
    if event["type"] == "INPUT_CLOSED":
        return f"{event['id']} closed"
    if event["type"] == "STOP":
        cause: str = event["id"]
        return f"stop ({cause})"
    # `==` narrows the union in every mypy; `in (...)` only from mypy 1.20 (3.9 has up to 1.19)
    if event["type"] == "INPUT_RECOVERED" or event["type"] == "NODE_RESTARTED" or event["type"] == "NODE_FAILED":
        return f"{event['type']} {event['id']}"
    if event["type"] == "ERROR":
        return f"error: {event['error']}"
    return "unknown"


def main() -> None:
    parameters: dict[str, MetadataValue] = {"frame": 1, "gain": 0.5, "ok": True, "label": "cam", "shape": [480, 640],
                                           "when": datetime.datetime.now(datetime.timezone.utc)}
    with Node() as node:
        node.send_output("out", pa.array([1, 2, 3]), parameters)
        node.send_output("out", b"raw", {"tags": ["a", "b"]})
        node.send_output("out", np.zeros((2, 3), dtype=np.float32))
        node.send_output("out", [1.5, 2.5], None)
        for event in node:
            print(describe(event))
        later: Event | None = node.next(timeout=0.5)
        maybe = node.try_recv()
        rest: list[Event] = node.drain()
        empty: bool = node.is_empty()
        print(later, maybe, rest, empty, node.dataflow_id(), node.node_config(), node.dataflow_descriptor())
        node.log("info", "done", target="usage", fields={"n": len(rest)})
        node.log_warn("careful")
        print(asyncio.run(node.recv_async(timeout=1.0)))
        try:
            node.send_output("undeclared", b"x")
        except UndeclaredOutputError as err:
            code: int = err.code
            name: str = err.code_name
            print(code, name)
        except DoraError as err:
            print(err.code)


class Operator:
    """A typed Python operator (dora.runtime calls on_event)."""

    def __init__(self) -> None:
        self.seen = 0

    def on_event(self, dora_event: Event, send_output: SendOutput) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            self.seen += 1
            send_output("count", pa.array([self.seen]), {"source": dora_event["id"]})
            send_output("raw", b"bytes too")
        return DoraStatus.STOP if self.seen >= 10 else DoraStatus.CONTINUE

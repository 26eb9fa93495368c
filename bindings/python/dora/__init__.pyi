import datetime
from typing import Any, Callable, Iterator, Literal, Mapping, TypedDict, Union

import numpy as np
import pyarrow as pa

from ._facts import *  # DoraError and its subclasses (generated from protocol/facts.json)
from .operator import DoraStatus as DoraStatus

__version__: str

MetadataValue = Union[bool, int, float, str, datetime.datetime, list[int], list[float], list[str], list[bool]]

class InputEvent(TypedDict):
    type: Literal["INPUT"]
    id: str
    kind: Literal["dora"]
    value: pa.Array
    metadata: dict[str, Any]

class InputClosedEvent(TypedDict):
    type: Literal["INPUT_CLOSED"]
    id: str
    kind: Literal["dora"]

class StopEvent(TypedDict):
    type: Literal["STOP"]
    id: Literal["MANUAL", "ALL_INPUTS_CLOSED"]
    kind: Literal["dora"]

class ErrorEvent(TypedDict):
    type: Literal["ERROR"]
    error: str
    kind: Literal["dora"]

class InputRecoveredEvent(TypedDict):
    type: Literal["INPUT_RECOVERED"]
    id: str
    kind: Literal["dora"]

class NodeRestartedEvent(TypedDict):
    type: Literal["NODE_RESTARTED"]
    id: str
    kind: Literal["dora"]

class NodeFailedEvent(TypedDict):
    type: Literal["NODE_FAILED"]
    id: str
    kind: Literal["dora"]

Event = Union[InputEvent, InputClosedEvent, InputRecoveredEvent, NodeRestartedEvent, NodeFailedEvent, StopEvent, ErrorEvent]

class Node:
    def __init__(self, node_id: str | None = None, *, dataflow: str | None = None) -> None:
        """Joins the dataflow: the daemon's configuration when it started this process, else
        the running dataflow declaring dynamic node ``node_id`` (``path: dynamic``); ``dataflow``
        (an id or name, else $DORA_DATAFLOW) chooses among several."""
    def next(self, timeout: float | None = None) -> Event | None: ...
    def __iter__(self) -> Iterator[Event]: ...
    def __next__(self) -> Event: ...
    def try_recv(self) -> Event | None: ...
    def drain(self) -> list[Event]: ...
    def is_empty(self) -> bool: ...
    async def recv_async(self, timeout: float | None = None) -> Event | None: ...
    def send_output(
        self,
        output_id: str,
        data: pa.Array | pa.ChunkedArray | bytes | bytearray | memoryview | np.ndarray[Any, Any] | list[Any],
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> None: ...
    def send_output_raw(
        self,
        output_id: str,
        data_len: int,
        fill: Callable[[memoryview], object],
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> None: ...
    def dataflow_id(self) -> str: ...
    def restart_count(self) -> int: ...
    def is_restart(self) -> bool: ...
    def node_config(self) -> dict[str, Any]: ...
    def dataflow_descriptor(self) -> dict[str, Any]: ...
    def log(self, level: str, message: str, target: str | None = None, fields: dict[str, Any] | None = None) -> None: ...
    def log_error(self, message: str) -> None: ...
    def log_warn(self, message: str) -> None: ...
    def log_info(self, message: str) -> None: ...
    def log_debug(self, message: str) -> None: ...
    def log_trace(self, message: str) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Node: ...
    def __exit__(self, *exc: object) -> None: ...

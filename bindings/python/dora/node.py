"""dora's Python node API over the native core.

Inputs arrive as pyarrow arrays imported through the Arrow C Data Interface: their
buffers point into the received message (into the sender's shared memory for large
inputs), and the sample goes back to its sender when pyarrow frees the array.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import ctypes
import datetime as _dt
import json
import logging
import os
import threading
import time
from typing import Any, Iterator

import pyarrow as pa

from . import _ffi, _native
from ._ffi import lib

_EVENT_TYPES = {0: "STOP", 1: "INPUT", 2: "INPUT_CLOSED", 3: "ERROR"}
# Longest stretch next() holds the native context while waiting (see Node.next).
_WAIT_SLICE_MS = 20
_LEVELS = ("error", "warn", "info", "debug", "trace")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _ns_to_datetime(ns: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(microseconds=ns // 1000)


def _datetime_to_ns(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.astimezone()  # naive datetimes are local time, as in Python
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _timestamp_ns(key: str, value: Any) -> int:
    """A datetime parameter as nanoseconds (the core calls this for values of no other type)."""
    if isinstance(value, _dt.datetime):
        return _datetime_to_ns(value)
    raise TypeError(
        f"metadata {key!r}: {type(value).__name__} values are not supported "
        "(bool, int, float, str, datetime, or a list of bool, int, float or str)"
    )


_native.configure(_ns_to_datetime, _timestamp_ns)


def _read_metadata(handle: int) -> dict[str, Any]:
    """The parameters of a DoraMetadata, converted in C."""
    return _native.metadata_dict(handle)


def _import_arrow(event: int) -> pa.Array:
    """The event's data as a pyarrow array over the received bytes (no copy)."""
    array = ctypes.create_string_buffer(_ffi.ARROW_ARRAY_SIZE)
    schema = ctypes.create_string_buffer(_ffi.ARROW_SCHEMA_SIZE)
    if lib.dora_event_arrow(event, ctypes.addressof(array), ctypes.addressof(schema)) != 0:
        raise RuntimeError(_ffi.last_error())
    # pyarrow moves the structs' contents out and calls release when the array is freed
    return pa.Array._import_from_c(ctypes.addressof(array), ctypes.addressof(schema))


def _to_arrow(data: Any) -> pa.Array:
    if isinstance(data, pa.ChunkedArray):
        return data.combine_chunks()
    if isinstance(data, pa.Array):
        return data
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None and isinstance(data, np.ndarray):
        flat = data.reshape(-1) if data.flags.c_contiguous else np.ascontiguousarray(data).reshape(-1)
        return pa.array(flat)  # zero copy for primitive dtypes
    if isinstance(data, (list, tuple)):
        return pa.array(data)
    raise TypeError(f"send_output: cannot send {type(data).__name__} (send a pyarrow.Array, bytes, a numpy array or a list)")


class _LogHandler(logging.Handler):
    """Python logging → the dataflow's logs, under the node's id."""

    _LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error", logging.CRITICAL: "error"}

    def __init__(self, node: "Node") -> None:
        super().__init__()
        self._node = node

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = self._LEVELS.get(record.levelno, "trace" if record.levelno < logging.DEBUG else "info")
            self._node.log(level, self.format(record), target=record.name)
        except Exception:  # never let logging break the node
            self.handleError(record)


class Node:
    """A dora node: ``Node()`` joins the dataflow described by the daemon's environment."""

    def __init__(self, node_id: str | None = None) -> None:
        raw = os.environ.get("DORA_NODE_CONFIG")
        if raw is None:
            raise RuntimeError(
                "DORA_NODE_CONFIG is not set: this program is a dora node and must be started by dora, "
                "e.g. `dora run dataflow.yml` with this node in the dataflow"
            )
        self._config = json.loads(raw)
        if node_id is not None and node_id != self._config.get("nodeId"):
            raise RuntimeError(f"dynamic nodes are not supported: this process is node {self._config.get('nodeId')!r}, not {node_id!r}")
        self._lock = threading.Lock()
        # Scratch Arrow C Data Interface structs, used under the lock (receiving, sending)
        self._in_array = ctypes.create_string_buffer(_ffi.ARROW_ARRAY_SIZE)
        self._in_schema = ctypes.create_string_buffer(_ffi.ARROW_SCHEMA_SIZE)
        self._out_array = ctypes.create_string_buffer(_ffi.ARROW_ARRAY_SIZE)
        self._out_schema = ctypes.create_string_buffer(_ffi.ARROW_SCHEMA_SIZE)
        self._out_array_ptr = ctypes.addressof(self._out_array)
        self._out_schema_ptr = ctypes.addressof(self._out_schema)
        self._in_array_ptr = ctypes.addressof(self._in_array)
        self._in_schema_ptr = ctypes.addressof(self._in_schema)
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._ctx = lib.init_dora_context_from_env()
        if not self._ctx:
            raise RuntimeError(f"could not join the dataflow: {_ffi.last_error()}")
        self._outputs = list(self._config.get("outputs", []))
        self._handler = _LogHandler(self)
        logging.getLogger().addHandler(self._handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
            logging.getLogger().setLevel(logging.INFO)
        atexit.register(self.close)

    # -- events -----------------------------------------------------------------------

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None on timeout and once the stream has ended."""
        if self._pending:
            return self._pending.popleft()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            # The native context serves one thread at a time, so the wait is cut into short
            # slices: another thread (send_output while recv_async waits) gets the context
            # between two of them instead of after the whole wait.
            slice_ms = _WAIT_SLICE_MS if deadline is None else max(0, min(_WAIT_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
            with self._lock:
                if not self._ctx:
                    return None
                event = _native.next_event(self._ctx, slice_ms, self._in_array_ptr, self._in_schema_ptr)
                if event is not None:
                    return self._event(*event)
                if lib.dora_event_stream_ended(self._ctx):
                    return None
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    def try_recv(self) -> dict[str, Any] | None:
        """An event that has already arrived, or None (never waits)."""
        return self.next(timeout=0)

    def drain(self) -> list[dict[str, Any]]:
        """Every event that has already arrived."""
        events = []
        while (event := self.try_recv()) is not None:
            events.append(event)
        return events

    def is_empty(self) -> bool:
        """True if no event is waiting."""
        if self._pending:
            return False
        event = self.try_recv()
        if event is None:
            return True
        self._pending.append(event)
        return False

    async def recv_async(self, timeout: float | None = None) -> dict[str, Any] | None:
        """``next`` for asyncio: waits in a worker thread, so the event loop keeps running."""
        return await asyncio.get_running_loop().run_in_executor(None, self.next, timeout)

    def _event(self, type_code: int, input_id: str | None, timestamp: int, metadata: dict[str, Any] | None, message: str | None) -> dict[str, Any]:
        """An event dict from _native.next_event's tuple (called under the lock)."""
        kind = _EVENT_TYPES.get(type_code, "UNKNOWN")
        if kind == "INPUT":
            try:
                value = pa.Array._import_from_c(self._in_array_ptr, self._in_schema_ptr)
            except BaseException:
                lib.dora_arrow_release(self._in_array_ptr, self._in_schema_ptr)
                raise
            parameters = metadata if metadata is not None else {}
            parameters["timestamp"] = _ns_to_datetime(timestamp)
            return {"type": kind, "id": input_id, "kind": "dora", "value": value, "metadata": parameters}
        if kind == "INPUT_CLOSED":
            return {"type": kind, "id": input_id, "kind": "dora"}
        if kind == "STOP":
            return {"type": kind, "id": message or "MANUAL", "kind": "dora"}
        if kind == "ERROR":
            return {"type": kind, "error": message or "", "kind": "dora"}
        return {"type": kind, "kind": "dora"}

    # -- sending ----------------------------------------------------------------------

    def send_output(self, output_id: str, data: Any, metadata: dict[str, Any] | None = None) -> None:
        """Sends ``data`` (pyarrow array, bytes, numpy array or list) on ``output_id``."""
        if output_id not in self._outputs:
            raise ValueError(f"node {self._config['nodeId']!r} has no output {output_id!r} (declared outputs: {', '.join(self._outputs) or 'none'})")
        oid = output_id.encode()
        # One crossing into the core each: the parameters dict is converted there.
        if isinstance(data, (bytes, bytearray, memoryview)):
            with self._lock:
                _native.send_bytes(self._ctx, oid, data, metadata)
            return
        arr = _to_arrow(data)
        with self._lock:
            arr._export_to_c(self._out_array_ptr, self._out_schema_ptr)
            _native.send_arrow(self._ctx, oid, self._out_array_ptr, self._out_schema_ptr, metadata)

    # -- the dataflow -----------------------------------------------------------------

    def dataflow_id(self) -> str:
        return str(self._config["dataflowId"])

    def node_config(self) -> dict[str, Any]:
        """This node's entry of the dataflow YAML, as a dict."""
        return dict(self._config.get("nodeDescriptor", {}))

    def dataflow_descriptor(self) -> dict[str, Any]:
        """The whole dataflow descriptor, as a dict."""
        with open(self._config["dataflowDescriptorFile"], encoding="utf-8") as f:
            return json.load(f)

    def log(self, level: str, message: str, target: str | None = None, fields: dict[str, Any] | None = None) -> None:
        """Writes a record to the node's log in the dataflow's logs."""
        level = {"warning": "warn"}.get(level.lower(), level.lower())
        if level not in _LEVELS:
            raise ValueError(f"log level must be one of {', '.join(_LEVELS)}")
        text = message if not target else f"{target}: {message}"
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        data, lvl = text.encode(), level.encode()
        with self._lock:
            if self._ctx:
                lib.dora_log(self._ctx, lvl, len(lvl), data, len(data))

    def log_error(self, message: str) -> None:
        self.log("error", message)

    def log_warn(self, message: str) -> None:
        self.log("warn", message)

    def log_info(self, message: str) -> None:
        self.log("info", message)

    def log_debug(self, message: str) -> None:
        self.log("debug", message)

    def log_trace(self, message: str) -> None:
        self.log("trace", message)

    def close(self) -> None:
        """Closes the outputs (receivers get INPUT_CLOSED) and leaves the dataflow; idempotent."""
        with self._lock:
            if not self._ctx:
                return
            logging.getLogger().removeHandler(self._handler)
            ctx, self._ctx = self._ctx, None
            self._pending.clear()
        lib.free_dora_context(ctx)

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""dora's Python node API over the native core (the compiled module ``dora._native``).

Inputs arrive as pyarrow arrays imported through the Arrow PyCapsule interface: their
buffers point into the received message (into the sender's shared memory for large
inputs), and the sample goes back to its sender when pyarrow frees the array.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import datetime as _dt
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import pyarrow as pa

from . import _native
from ._facts import LOG_LEVELS, NODE_CONFIG_ENV, ConfigError, InvalidArgumentError, NoContextError, UndeclaredOutputError

if TYPE_CHECKING:
    from . import Event, MetadataValue

# Longest stretch next() holds the native context while waiting (see Node.next).
_WAIT_SLICE_MS = 20
_TIMED_OUT = "Receiver timed out"  # dora's message for next(timeout) returning nothing
_LEVELS = LOG_LEVELS
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _ns_to_datetime(ns: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(microseconds=ns // 1000)


def _datetime_to_ns(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.astimezone()  # naive datetimes are local time, as in Python
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _timestamp_ns(key: str, value: object) -> int:
    """A datetime parameter as nanoseconds (the core calls this for values of no other type)."""
    if isinstance(value, _dt.datetime):
        return _datetime_to_ns(value)
    raise TypeError(
        f"metadata {key!r}: {type(value).__name__} values are not supported "
        "(bool, int, float, str, datetime, or a list of bool, int, float or str)"
    )


# Received inputs reach pyarrow through the Arrow PyCapsule interface: pa.array() takes the
# core's export (an object with __arrow_c_array__) over the received bytes, without a copy.
_native.configure(_ns_to_datetime, _timestamp_ns, pa.array)


def _to_arrow(data: Any) -> pa.Array:
    if isinstance(data, pa.ChunkedArray):
        return data.combine_chunks()
    if isinstance(data, pa.Array):
        return data
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None  # type: ignore[assignment]
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
    """A dora node.

    ``Node()`` joins the dataflow described by the environment the daemon sets when it
    starts the node. ``Node("<id>")`` in a process the user started (a terminal, a notebook)
    joins the running dataflow that declares ``<id>`` as a dynamic node (``path: dynamic``);
    ``dataflow`` (an id or name, else $DORA_DATAFLOW) chooses when several running
    dataflows declare it. When the daemon started the process, its configuration wins
    over ``node_id``, as in dora. The constructor returns once the dataflow has started;
    Ctrl-C while it waits raises ``KeyboardInterrupt`` at once (a dynamic node that had
    registered leaves). ``close()`` leaves the dataflow; a dynamic node may then join it
    again with a new ``Node``.
    """

    def __init__(self, node_id: str | None = None, *, dataflow: str | None = None) -> None:
        from_env = os.environ.get(NODE_CONFIG_ENV)
        if from_env is None and node_id is None:
            raise ConfigError(
                f"{NODE_CONFIG_ENV} is not set: this program is a dora node and must be started by dora, "
                "e.g. `dora run dataflow.yml` with this node in the dataflow; "
                'or, for a dynamic node (`path: dynamic`), name it: Node("<node id>")'
            )
        # Started by the daemon, the daemon's configuration wins over the id passed (as in dora:
        # node-hub packages construct their node with their package name).
        dynamic = from_env is None
        # a dynamic node's configuration comes from the daemon of the running dataflow that
        # declares it (ConfigError, naming the running dataflows, when none or several do)
        raw = from_env if from_env is not None else _native.dynamic_config(str(node_id), dataflow)
        self._config: dict[str, Any] = json.loads(raw)
        self._pending: collections.deque[Event] = collections.deque()
        # The handle of the native core; it serializes the calls of several threads itself,
        # and raises NoContextError("node is closed") once closed.
        self._ctx = _native.Context(raw if dynamic else None)
        self._outputs = list(self._config.get("outputs", []))
        self._handler = _LogHandler(self)
        logging.getLogger().addHandler(self._handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
            logging.getLogger().setLevel(logging.INFO)
        atexit.register(self.close)

    # -- events -----------------------------------------------------------------------

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event; on a timeout an ``ERROR`` event ("Receiver timed out"), as in dora;
        None only once the stream has ended."""
        event = self._next(timeout)
        if event is None and timeout is not None and not self._ended():
            return {"type": "ERROR", "error": _TIMED_OUT, "kind": "dora"}
        return event

    def _ended(self) -> bool:
        try:
            return self._ctx.closed or self._ctx.stream_ended()
        except NoContextError:
            return True

    def _next(self, timeout: float | None) -> Event | None:
        """The next event; None on timeout and once the stream has ended."""
        if self._pending:
            return self._pending.popleft()
        ctx = self._ctx
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            # The native context serves one thread at a time, so the wait is cut into short
            # slices: another thread (send_output while recv_async waits) gets the context
            # between two of them instead of after the whole wait.
            slice_ms = _WAIT_SLICE_MS if deadline is None else max(0, min(_WAIT_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
            try:
                event = ctx.next_event(slice_ms)  # the event dict, built in C; the value is zero copy
                if event is not None:
                    return event
                if ctx.stream_ended():
                    return None
            except NoContextError:
                if ctx.closed:  # closed (before or meanwhile): no more events
                    return None
                raise
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    def try_recv(self) -> Event | None:
        """An event that has already arrived, or None (never waits)."""
        return self._next(timeout=0)

    def drain(self) -> list[Event]:
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

    async def recv_async(self, timeout: float | None = None) -> Event | None:
        """``next`` for asyncio: waits in a worker thread, so the event loop keeps running."""
        return await asyncio.get_running_loop().run_in_executor(None, self.next, timeout)

    # -- sending ----------------------------------------------------------------------

    def send_output(self, output_id: str, data: Any, metadata: Mapping[str, MetadataValue] | None = None) -> None:
        """Sends ``data`` (pyarrow array, bytes, numpy array or list) on ``output_id``."""
        self._check_output(output_id)
        if metadata is not None and type(metadata) is not dict:
            metadata = dict(metadata)  # any mapping, as in dora; the core reads a dict
        # One crossing into the core each: the parameters dict is converted there, and an
        # array is read through its __arrow_c_array__ capsules.
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._ctx.send_bytes(output_id, data, metadata)
        else:
            self._ctx.send_arrow(output_id, _to_arrow(data), metadata)

    def send_output_raw(self, output_id: str, data_len: int, fill: Callable[[memoryview], object],
                        metadata: Mapping[str, MetadataValue] | None = None) -> None:
        """Sends ``data_len`` bytes (as uint8) that ``fill`` writes in place: ``fill`` gets a
        writable memoryview of the sample itself (shared memory at or above the dataflow's
        threshold), so nothing is copied on either side. Views made from it (a numpy array)
        must not outlive ``fill``: the sample belongs to the receivers once sent (a memoryview
        still exported is refused with BufferError; a numpy array cannot be detected)."""
        self._check_output(output_id)
        if metadata is not None and type(metadata) is not dict:
            metadata = dict(metadata)
        self._ctx.send_raw(output_id, data_len, fill, metadata)

    def _check_output(self, output_id: str) -> None:
        if output_id not in self._outputs:
            raise UndeclaredOutputError(f"node {self._config['nodeId']!r} has no output {output_id!r} (declared outputs: {', '.join(self._outputs) or 'none'})")

    # -- the dataflow -----------------------------------------------------------------

    def dataflow_id(self) -> str:
        return str(self._config["dataflowId"])

    def restart_count(self) -> int:
        """How many times the daemon has restarted this node under its ``restart_policy`` (0 on its first run);
        for a dynamic node, how many times it joined the dataflow before."""
        return int(self._config.get("restartCount", 0))

    def is_restart(self) -> bool:
        """Whether this process is a restart of the node."""
        return self.restart_count() > 0

    def node_config(self) -> dict[str, Any]:
        """This node's entry of the dataflow YAML, as a dict."""
        return dict(self._config.get("nodeDescriptor", {}))

    def dataflow_descriptor(self) -> dict[str, Any]:
        """The whole dataflow descriptor, as a dict."""
        with open(self._config["dataflowDescriptorFile"], encoding="utf-8") as f:
            descriptor: dict[str, Any] = json.load(f)
        return descriptor

    def log(self, level: str, message: str, target: str | None = None, fields: dict[str, Any] | None = None) -> None:
        """Writes a record to the node's log in the dataflow's logs."""
        level = {"warning": "warn"}.get(level.lower(), level.lower())
        if level not in _LEVELS:
            raise InvalidArgumentError(f"log level must be one of {', '.join(_LEVELS)}")
        # fields travel as a JSON object (to send_logs_as and dora/logs receivers); values
        # that JSON cannot hold go as their str()
        encoded = json.dumps(fields, default=str) if fields else ""
        try:
            self._ctx.log(level, message, target or "", encoded)
        except NoContextError:
            if not self._ctx.closed:
                raise  # after close(), records are dropped

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
        logging.getLogger().removeHandler(self._handler)
        self._pending.clear()
        self._ctx.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Stub of dora._native, the compiled native core (src/native.c with bindings/c/src)."""

import datetime
from typing import Any, Callable, Protocol, final, overload

from . import Event, MetadataValue

class _ArrowArrayExportable(Protocol):
    """An object of the Arrow PyCapsule interface (a pyarrow.Array, among others)."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...

_Parameters = dict[str, MetadataValue] | None
_Buffer = bytes | bytearray | memoryview

@final
class ArrowExport:
    """A received input exported through the Arrow C Data Interface, for pyarrow.array()."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        """(arrow_schema capsule, arrow_array capsule), once; a requested schema is not honoured."""

@final
class Context:
    """A node's connection to its dataflow; ``Context(config)`` joins it with that configuration
    (JSON text, a dynamic node's from ``dynamic_config``), ``Context()`` with DORA_NODE_CONFIG's.

    Calls from several threads are serialized; once closed, every call but ``close()``
    raises ``dora.NoContextError("node is closed")`` (a ``RuntimeError``); a failure of the
    core raises the ``dora.DoraError`` subclass of its code."""

    def __new__(cls, config: str | None = None) -> Context: ...
    @property
    def closed(self) -> bool: ...
    def next_event(self, timeout_ms: int, /) -> Event | None:
        """The next event, or None when none came within timeout_ms (< 0: no limit) or the stream has ended."""
    def stream_ended(self) -> bool: ...
    def send_arrow(self, output_id: str, data: _ArrowArrayExportable, metadata: _Parameters, /) -> None: ...
    def send_bytes(self, output_id: str, data: _Buffer, metadata: _Parameters, /) -> None: ...
    def send_raw(self, output_id: str, length: int, fill: Callable[[memoryview], object], metadata: _Parameters, /) -> None: ...
    @overload
    def log(self, level: str, message: str, /) -> bool: ...
    @overload
    def log(self, level: str, message: str, target: str, fields_json: str, /) -> bool: ...
    def close(self) -> None: ...

def configure(
    to_datetime: Callable[[int], datetime.datetime],
    timestamp_ns: Callable[[str, object], int],
    import_array: Callable[[ArrowExport], Any],
    /,
) -> None:
    """How timestamps become datetimes and back, and how a received input becomes an array (pyarrow.array)."""

def dynamic_config(node_id: str, dataflow: str | None = None, /) -> str:
    """The configuration (JSON text) of dynamic node ``node_id``, from the daemon of the running
    dataflow that declares it; ``dataflow`` (an id or name, else $DORA_DATAFLOW) chooses among
    several. Raises ``dora.ConfigError`` when none or several do, naming them."""

# For the tests: the core's codec without a dataflow.
def metadata_roundtrip(parameters: _Parameters, /) -> dict[str, Any]: ...
def decode_frames(frames: list[bytes], /) -> Event | None: ...
def encode_inline(array: _ArrowArrayExportable, timestamp: int, seq: int, /) -> list[bytes]: ...

"""The operator runtime: the process that runs the operators of one node (dora's runtime).

The daemon starts it as ``python -u -m dora.runtime`` for a node with at least one Python
operator (a node with C operators only runs in the C runtime, bindings/c/build/dora-runtime),
with the node's ``DORA_NODE_CONFIG`` and one group of arguments per operator::

    --operator <id> python|shared-library <file> <inputs,...> <outputs,...>

The node's inputs are its operators' inputs, named ``<operator>/<input>``, and its outputs
``<operator>/<output>``. The runtime loads every operator (a Python module's ``Operator``
class, or a C library through dora._operator), joins the dataflow as the node, and hands
each event to the operator it belongs to under the operator's own input id; ``STOP``,
``ERROR`` and the events about peers go to every operator. An operator is done when it
returns STOP or STOP_ALL, when all its inputs have closed, or at STOP; the process ends
once all are done. STOP_ALL asks the daemon to stop the dataflow (a log record starting
with ``STOP_ALL_PREFIX``, which the daemon recognizes for runtime nodes). An exception in
an operator ends the process with status 1 and its traceback on stderr.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import os
import pathlib
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ._facts import NODE_CONFIG_ENV, UndeclaredOutputError, UsageError
from .node import Node
from .operator import DoraStatus

if TYPE_CHECKING:
    from . import Event, MetadataValue

#: Start of the log record by which a runtime asks the daemon to stop the dataflow
#: (coordinator/operators.ts and bindings/c/operator/runtime.c use the same text).
STOP_ALL_PREFIX = "dora-runtime stop-all:"

_CONTINUE, _STOP, _STOP_ALL = (s.value for s in DoraStatus)
#: Events about one input, routed to the operator the input belongs to.
_INPUT_EVENTS = ("INPUT", "INPUT_CLOSED", "INPUT_RECOVERED")


class OperatorFailed(Exception):
    """An operator raised (the exception is the cause)."""

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"operator {operator_id} failed")
        self.operator_id = operator_id


@dataclass
class OperatorSpec:
    """One operator, as the daemon describes it on the command line."""

    id: str
    kind: str
    path: str
    inputs: list[str]
    outputs: list[str]


def parse_arguments(argv: list[str]) -> list[OperatorSpec]:
    """The operators of ``--operator <id> <kind> <path> <inputs> <outputs>`` groups."""
    specs = []
    for i in range(0, len(argv), 6):
        group = argv[i : i + 6]
        if len(group) != 6 or group[0] != "--operator":
            raise UsageError("usage: python -m dora.runtime (--operator <id> python|shared-library <path> <inputs,...> <outputs,...>)...")
        _, op_id, kind, path, inputs, outputs = group
        if kind not in ("python", "shared-library"):
            raise UsageError(f"operator {op_id}: unknown kind {kind!r} (python or shared-library)")
        specs.append(OperatorSpec(op_id, kind, path, [i for i in inputs.split(",") if i], [o for o in outputs.split(",") if o]))
    if not specs:
        raise UsageError("no operators given")
    return specs


class _Outputs:
    """Sends for the operators, once the node exists; checks each operator's declared outputs."""

    def __init__(self) -> None:
        self.node: Node | None = None

    def send(self, spec: OperatorSpec, output_id: str, data: Any, metadata: dict[str, MetadataValue] | None = None) -> None:
        if output_id not in spec.outputs:
            declared = ", ".join(spec.outputs) or "none"
            raise UndeclaredOutputError(f"operator {spec.id!r} has no output {output_id!r} (declared outputs: {declared})")
        if self.node is None:
            raise UsageError(f"operator {spec.id!r}: outputs cannot be sent before the node has joined the dataflow (not from Operator.__init__)")
        self.node.send_output(f"{spec.id}/{output_id}", data, metadata)


@dataclass
class _Operator:
    spec: OperatorSpec
    open_inputs: set[str] = field(default_factory=set)
    done: bool = False

    def on_event(self, event: Event) -> int:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError


class _PythonOperator(_Operator):
    def __init__(self, spec: OperatorSpec, outputs: _Outputs, descriptor: dict[str, Any]) -> None:
        super().__init__(spec, set(spec.inputs))
        file = pathlib.Path(spec.path)
        folder = str(file.parent)
        if folder not in sys.path:
            sys.path.append(folder)  # as dora does: the operator can import modules next to it
        name = file.stem
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) != str(file):
            name = f"_dora_operator_{spec.id}"  # another module has that name (another operator's, the standard library's)
        module_spec = importlib.util.spec_from_file_location(name, file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {file} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        operator_class = getattr(module, "Operator", None)
        if operator_class is None:
            raise AttributeError(f"{file} defines no class `Operator` (a Python operator is a class Operator with on_event(self, dora_event, send_output))")
        self.instance: Any = operator_class()
        try:
            self.instance.dataflow_descriptor = descriptor
        except AttributeError:
            pass  # a class with __slots__: dora sets it too, but it is optional

        def send_output(output_id: str, data: Any, metadata: dict[str, MetadataValue] | None = None) -> None:
            outputs.send(spec, output_id, data, metadata)

        self.send_output = send_output

    def on_event(self, event: Event) -> int:
        return _status(self.instance.on_event(event, self.send_output), self.spec.id)

    def drop(self) -> None:
        self.instance = None


class _SharedLibraryOperator(_Operator):
    def __init__(self, spec: OperatorSpec, outputs: _Outputs) -> None:
        super().__init__(spec, set(spec.inputs))
        from ._operator import SharedLibraryOperator  # compiled: only loaded for C operators

        def send(output_id: str, data: bytes) -> None:
            outputs.send(spec, output_id, data)

        self.library = SharedLibraryOperator(spec.path, send)

    def on_event(self, event: Event) -> int:
        if event["type"] == "INPUT":
            return self.library.on_input(event["id"], _raw_bytes(event["value"]))
        if event["type"] == "INPUT_CLOSED":
            return self.library.on_input_closed(event["id"])
        if event["type"] == "STOP":
            return self.library.on_stop()
        if event["type"] == "ERROR":
            return self.library.on_error(event["error"])
        return _CONTINUE  # C operators have no events for recovered inputs or restarted peers

    def drop(self) -> None:
        self.library.drop()


def _status(value: object, operator_id: str) -> int:
    raw = value.value if isinstance(value, enum.Enum) else value
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in (_CONTINUE, _STOP, _STOP_ALL):
        raise TypeError(f"operator {operator_id!r}: on_event returned {value!r}; it must return a DoraStatus (CONTINUE, STOP or STOP_ALL)")
    return raw


def _raw_bytes(array: pa.Array) -> Any:
    """The values of a primitive fixed-width array, in place (what C's dora_read_data copies); empty otherwise."""
    try:
        width = array.type.bit_width
    except ValueError:
        return b""
    buffers = array.buffers()
    if width % 8 or len(array) == 0 or len(buffers) < 2 or buffers[1] is None:
        return b""
    size = width // 8
    return buffers[1].slice(array.offset * size, len(array) * size)


class Runtime:
    """The operators of one node and the dispatch of its events to them."""

    def __init__(self, specs: list[OperatorSpec], descriptor: dict[str, Any]) -> None:
        self.outputs = _Outputs()
        self.operators: dict[str, _Operator] = {}
        try:
            for spec in specs:
                if spec.kind == "python":
                    self.operators[spec.id] = _PythonOperator(spec, self.outputs, descriptor)
                else:
                    self.operators[spec.id] = _SharedLibraryOperator(spec, self.outputs)
        except BaseException:
            self.finish_all()
            raise

    @property
    def live(self) -> list[_Operator]:
        return [op for op in self.operators.values() if not op.done]

    def finish(self, op: _Operator) -> None:
        if not op.done:
            op.done = True
            try:
                op.drop()
            except Exception:  # reported; the other operators still get dropped
                print(f"dora.runtime: operator {op.spec.id} could not be dropped\n{traceback.format_exc()}", file=sys.stderr, end="")

    def finish_all(self) -> None:
        for op in list(self.operators.values()):
            self.finish(op)

    def call(self, node: Node, op: _Operator, event: Event) -> None:
        """Hands one event to an operator and acts on the status it returns."""
        try:
            status = op.on_event(event)
        except Exception as err:
            raise OperatorFailed(op.spec.id) from err
        if status == _STOP_ALL:
            node.log("info", f"{STOP_ALL_PREFIX} operator {op.spec.id} returned STOP_ALL: stopping the dataflow")
        if status != _CONTINUE:
            self.finish(op)

    def dispatch(self, node: Node, event: Event) -> None:
        kind = event["type"]
        if kind in _INPUT_EVENTS:
            op_id, _, input_id = str(event.get("id", "")).partition("/")
            op = self.operators.get(op_id)
            if op is None or op.done:
                return  # a stopped operator gets nothing more
            routed: Any = {**event, "id": input_id}
            self.call(node, op, routed)
            if kind == "INPUT_CLOSED":
                op.open_inputs.discard(input_id)
                if not op.open_inputs:
                    self.finish(op)  # nothing more can come: dora ends the operator
            return
        for op in self.live:
            self.call(node, op, event)
        if kind == "STOP":
            self.finish_all()

    def run(self, node: Node) -> None:
        self.outputs.node = node
        for event in node:
            self.dispatch(node, event)
            if not self.live:
                break


def _descriptor() -> dict[str, Any]:
    """The dataflow descriptor, read from the file the node configuration names."""
    try:
        config = json.loads(os.environ[NODE_CONFIG_ENV])
        with open(config["dataflowDescriptorFile"], encoding="utf-8") as f:
            descriptor: dict[str, Any] = json.load(f)
        return descriptor
    except (KeyError, OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    try:
        specs = parse_arguments(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        print(f"dora.runtime: {err}", file=sys.stderr)
        return 2
    try:
        runtime = Runtime(specs, _descriptor())  # before joining, as dora: a failing operator fails the start
    except Exception:
        print(f"dora.runtime: an operator could not be loaded\n{traceback.format_exc()}", file=sys.stderr, end="")
        return 1
    node = None
    try:
        node = Node()
        runtime.run(node)
        return 0
    except OperatorFailed as err:
        cause = err.__cause__
        trace = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)) if cause else ""  # 3.9: three arguments
        print(f"dora.runtime: {err}:\n{trace}", file=sys.stderr, end="")
        return 1
    except Exception:
        print(f"dora.runtime: {traceback.format_exc()}", file=sys.stderr, end="")
        return 1
    finally:
        try:
            runtime.finish_all()
        finally:
            if node is not None:
                node.close()


if __name__ == "__main__":
    sys.exit(main())

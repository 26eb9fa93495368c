"""dora-ts Python node API: ``from dora import Node``, as in dora; ``DoraStatus`` for operators.

Events are dicts: ``{"type": "INPUT", "id": str, "kind": "dora", "value": pyarrow.Array,
"metadata": {"timestamp": datetime, ...}}``, ``{"type": "INPUT_CLOSED", "id": str}``,
``{"type": "STOP", "id": cause}``, ``{"type": "ERROR", "error": str}``.

Failures raise ``DoraError`` subclasses (``UndeclaredOutputError``, ``ConfigError``, …),
whose ``code`` and ``code_name`` are the error's number and name in the catalogue shared
with the C and TypeScript APIs (docs/protocol.md, "Error codes").
"""

from . import _facts
from ._facts import *  # noqa: F401,F403 - DoraError and its subclasses (_facts.__all__)
from .node import Node
from .operator import DoraStatus

__all__ = ["Node", "DoraStatus", *_facts.__all__]
__version__ = _facts.VERSION

"""dora-ts Python node API: ``from dora import Node``, as in dora.

Events are dicts: ``{"type": "INPUT", "id": str, "kind": "dora", "value": pyarrow.Array,
"metadata": {"timestamp": datetime, ...}}``, ``{"type": "INPUT_CLOSED", "id": str}``,
``{"type": "STOP", "id": cause}``, ``{"type": "ERROR", "error": str}``.
"""

from .node import Node

__all__ = ["Node"]
__version__ = "0.1.0"

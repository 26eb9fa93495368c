"""dora's in-process operators, as a Python operator sees them: ``from dora import DoraStatus``.

An operator is a Python file declared under a node's ``operator:`` or ``operators:`` in the
dataflow (``python: my_operator.py``). It defines a class ``Operator``; the runtime process
of the node (``dora.runtime``) creates one instance, then calls, for every event of the
operator's inputs and for ``STOP``::

    def on_event(self, dora_event: dict, send_output) -> DoraStatus

``dora_event`` is the dict a node receives (``type``, ``id``, ``value``, ``metadata``), with
the operator's own input ids. ``send_output(output_id, data, metadata=None)`` sends on one
of the operator's ``outputs``, with the data types ``Node.send_output`` takes. The returned
``DoraStatus`` says whether to go on (``CONTINUE``), stop this operator (``STOP``: it gets no
more events, and the process ends once all its operators have stopped) or stop the whole
dataflow (``STOP_ALL``: every node gets ``STOP``). The instance also has
``dataflow_descriptor``, the dataflow as a dict, set after it is created.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from . import MetadataValue


class DoraStatus(enum.Enum):
    """What ``Operator.on_event`` returns (dora's values)."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2


class SendOutput(Protocol):
    """The ``send_output`` an operator's ``on_event`` receives."""

    def __call__(self, output_id: str, data: Any, metadata: dict[str, MetadataValue] | None = None) -> None: ...

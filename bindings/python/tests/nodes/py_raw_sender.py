"""Test node: sends one 40 MB message with send_output_raw, filled in place through numpy
with the byte pattern i % 251, and records whether the buffer fill got is shared memory."""
import json
import os
from collections import OrderedDict

import numpy as np

from dora import Node
from shm_probe import mapped_from_shm

SIZE = 40_000_000


node = Node()
report = {}


def fill(buf: memoryview) -> None:
    array = np.frombuffer(buf, dtype=np.uint8)
    report["in_shm"] = mapped_from_shm(array.ctypes.data)
    array[:] = np.arange(SIZE, dtype=np.uint64) % 251


# any mapping is accepted as metadata, as in dora
node.send_output_raw("out", SIZE, fill, OrderedDict([("frame", 1)]))
with open(os.environ["RECORD"], "w") as out:
    json.dump(report, out)

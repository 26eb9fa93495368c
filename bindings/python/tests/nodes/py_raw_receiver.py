"""Test node: checks the 40 MB message of py_raw_sender in place (no copy) and records
its length, pattern check, metadata and whether its buffer is the sender's shared memory."""
import json
import os

import numpy as np

from dora import Node
from shm_probe import mapped_from_shm


node = Node()
for event in node:
    if event["type"] == "INPUT":
        value = event["value"]
        view = value.to_numpy(zero_copy_only=True)
        expected = (np.arange(len(view), dtype=np.uint64) % 251).astype(np.uint8)
        report = {"length": len(view), "pattern_ok": bool(np.array_equal(view, expected)), "frame": event["metadata"].get("frame"),
                  "in_place": mapped_from_shm(value.buffers()[1].address)}
        with open(os.environ["RECORD"], "w") as out:
            json.dump(report, out)
        break

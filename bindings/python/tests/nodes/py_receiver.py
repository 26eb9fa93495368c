"""Test node: records every event as a JSON line in RECORD; for large inputs, whether the
values are read in place from shared memory (buffer address inside a /dev/shm mapping)."""
import datetime
import json
import os

import numpy as np
from dora import Node
from shm_probe import mapped_from_shm


def plain(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


node = Node()
with open(os.environ["RECORD"], "a") as out:
    for event in node:
        entry = {"type": event["type"], "id": event.get("id")}
        if event["type"] == "INPUT":
            value = event["value"]
            entry["case"] = event["metadata"].get("case")
            entry["metadata"] = {k: plain(v) for k, v in event["metadata"].items()}
            entry["arrow_type"] = str(value.type)
            if len(value) > 1000:
                array = value.to_numpy(zero_copy_only=True)  # raises if a copy were needed
                entry["length"] = len(value)
                entry["in_place"] = mapped_from_shm(value.buffers()[1].address)
                entry["pattern_ok"] = bool(np.array_equal(array, (np.arange(len(array), dtype=np.uint64) % 251).astype(np.uint8)))
            else:
                entry["values"] = value.to_pylist()
        out.write(json.dumps(entry) + "\n")
        out.flush()

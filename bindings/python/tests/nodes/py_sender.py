"""Test node: sends one message of each kind on `out`, each with parameter `case`, then exits."""
import datetime

import numpy as np
import pyarrow as pa
from dora import Node

node = Node()
when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
node.send_output("out", pa.array([1, 2, None, 4], type=pa.int32()), {"case": "int32", "frame": 7, "gain": 0.5, "ok": True,
                                                                     "label": "cam", "when": when, "shape": [480, 640],
                                                                     "scale": [0.5, 2.0], "tags": ["a", "b"]})
node.send_output("out", [1.5, 2.5], {"case": "list"})
node.send_output("out", pa.array(["x", None, "zé"]), {"case": "strings"})
node.send_output("out", pa.array([{"x": 1.0, "label": "a"}, None]), {"case": "struct"})
node.send_output("out", b"raw bytes", {"case": "bytes"})
frame = (np.arange(4 << 20, dtype=np.uint64) % 251).astype(np.uint8)
node.send_output("out", frame, {"case": "large"})
node.send_output("out", np.arange(12, dtype=np.float32).reshape(3, 4), {"case": "matrix"})

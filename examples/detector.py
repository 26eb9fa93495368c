"""Finds the bright object in each camera frame with numpy and sends its bounding box
as a struct array of detections (one row per object found).

The frame is read in place: `to_numpy(zero_copy_only=True)` views the camera's shared
memory, no copy.
"""
import numpy as np
import pyarrow as pa
from dora import Node

DETECTION = pa.struct([("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()), ("score", pa.float32())])

node = Node()
frames = found = 0
for event in node:
    if event["type"] != "INPUT" or event["id"] != "image":
        continue
    meta = event["metadata"]
    image = event["value"].to_numpy(zero_copy_only=True).reshape(meta["height"], meta["width"])
    bright = image > 128
    rows, cols = np.any(bright, axis=1), np.any(bright, axis=0)
    detections = []
    if rows.any():
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        score = float(bright[y0 : y1 + 1, x0 : x1 + 1].mean())
        detections.append({"x": int(x0), "y": int(y0), "w": int(x1 - x0 + 1), "h": int(y1 - y0 + 1), "score": score})
        found += 1
    node.send_output("detections", pa.array(detections, type=DETECTION), {"frame": meta["frame"]})
    frames += 1
print(f"detector: {found} objects in {frames} frames")

"""Benchmark sender in Python (the twin of sender.ts; runs unchanged on dora 1.1 too): MODE=latency sends COUNT messages of
SIZE bytes paced at RATE Hz after WARMUP messages; MODE=throughput sends COUNT back to back.
Every message carries its send time (CLOCK_MONOTONIC, shared by all processes) in ns."""
import os
import time

import numpy as np
import pyarrow as pa
from dora import Node

node = Node()
size, count = int(os.environ["SIZE"]), int(os.environ["COUNT"])
warmup, rate = int(os.environ.get("WARMUP", "10")), float(os.environ.get("RATE", "100"))
paced = os.environ["MODE"] == "latency"
payload = pa.array(np.full(size, 7, dtype=np.uint8))  # an array the node made (pyarrow wraps numpy without a copy)
start = time.monotonic()
for i in range(warmup + count):
    if paced:
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    node.send_output("data", payload, {"sent": time.monotonic_ns(), "i": i, "warmup": i < warmup})
# LINGER (seconds): stay a moment, for a middleware that drops what is in flight when its sender exits
time.sleep(float(os.environ.get("LINGER", "0")))

"""Benchmark sender in Python (the twin of sender.ts): MODE=latency sends COUNT messages of
SIZE bytes paced at RATE Hz after WARMUP messages; MODE=throughput sends COUNT back to back.
Every message carries its send time (CLOCK_MONOTONIC, shared by all processes) in ns."""
import os
import time

import numpy as np
from dora import Node

node = Node()
size, count = int(os.environ["SIZE"]), int(os.environ["COUNT"])
warmup, rate = int(os.environ.get("WARMUP", "10")), float(os.environ.get("RATE", "100"))
paced = os.environ["MODE"] == "latency"
payload = np.full(size, 7, dtype=np.uint8)  # sent like a typical node sends an array it made
start = time.monotonic()
for i in range(warmup + count):
    if paced:
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    node.send_output("data", payload, {"sent": time.monotonic_ns(), "i": i, "warmup": i < warmup})

"""Benchmark receiver in Python (the twin of receiver.ts; runs unchanged on dora 1.1 too): one-way latency of every non-warm-up
message and the receive times, written as JSON to RESULT when the input closes."""
import json
import os
import time

from dora import Node

node = Node()
latencies, first, last, received = [], 0, 0, 0
for event in node:
    if event["type"] != "INPUT":
        continue
    now = time.monotonic_ns()
    meta = event["metadata"]
    if not meta["warmup"]:
        if received == 0:
            first = now
        last = now
        received += 1
        latencies.append(now - meta["sent"])
    del event  # returns a shared-memory sample at once
with open(os.environ["RESULT"], "w") as out:
    json.dump({"received": received, "latenciesNs": latencies, "spanNs": last - first}, out)

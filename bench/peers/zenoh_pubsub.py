"""zenoh (PyPI `eclipse-zenoh` 1.10) publisher → subscriber, Python → Python, measured like the other
systems (see common.py): `python zenoh_pubsub.py send|recv` with ZENOH_ENDPOINT (tcp/127.0.0.1:PORT).

Two peers on loopback: the receiver listens on the endpoint, the sender connects to it; multicast
scouting and gossip are off, so they find each other by the explicit endpoints only. Shared memory is
on as it ships (zenoh 1.10's Python wheel has it, and enables it by default; we set it explicitly):
`transport/shared_memory` with its transport optimization, which puts every message of 3 KiB or more
into a shared-memory pool of 16 MiB that zenoh manages, so a `put` of bytes crosses as a
shared-memory buffer rather than through the socket. A message that does not fit the pool goes through TCP:
16 MiB (with its header) and 40 MB always, and back to back any message sent while the pool is taken
by messages the receiver has not got to yet. The receiver counts, in the result's notes, how many
payloads came as shared-memory buffers. The send time (CLOCK_MONOTONIC ns) and the warm-up flag travel
in the put's attachment; the payload is the bytes the sender made, as in sender.py.

Nothing is dropped: the publisher's congestion control is BLOCK (the default for `put` is to drop
when the link is congested), reliability is reliable, and the subscriber's FIFO channel holds the
whole run. The sender starts only once the publisher matches the subscriber."""
import json
import os
import struct
import sys
import time

import zenoh

from common import SIZE, TOTAL, WARMUP, Receipts, paced, ready, wait_for_result

KEY = "dora-bench/data"
STAMP = struct.Struct("<qB")  # send time, warm-up flag


def config(role: str) -> zenoh.Config:
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    endpoints = json.dumps([os.environ["ZENOH_ENDPOINT"]])
    conf.insert_json5("listen/endpoints", endpoints if role == "recv" else "[]")
    conf.insert_json5("connect/endpoints", endpoints if role == "send" else "[]")
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("scouting/gossip/enabled", "false")
    conf.insert_json5("transport/shared_memory/enabled", "true")
    return conf


def recv() -> None:
    session = zenoh.open(config("recv"))
    subscriber = session.declare_subscriber(KEY, zenoh.handlers.FifoChannel(TOTAL + 1))
    receipts = Receipts()
    through_shm = 0
    ready()
    while not receipts.done():
        sample = subscriber.recv()  # sleeps until a sample is there
        now = time.monotonic_ns()
        sent, warmup = STAMP.unpack(sample.attachment.to_bytes())
        payload = sample.payload  # the ZBytes as received (a shared-memory buffer when it came that way), no copy
        assert len(payload) == SIZE
        if not warmup and payload.as_shm() is not None:  # how it came: a shared-memory buffer, or bytes off the socket
            through_shm += 1
        receipts.add(now, sent, bool(warmup))
        del payload, sample
    counted = len(receipts.latencies)
    rest = "" if through_shm == counted else ", the others through TCP" if through_shm else " (all through TCP)"
    receipts.notes.append(f"{os.environ['MODE']}: {through_shm} of {counted} payloads through shared memory{rest}")
    receipts.write()
    session.close()


def send() -> None:
    session = zenoh.open(config("send"))
    publisher = session.declare_publisher(KEY, congestion_control=zenoh.CongestionControl.BLOCK, reliability=zenoh.Reliability.RELIABLE)
    end = time.monotonic() + 30
    while not publisher.matching_status:  # the subscriber's declaration has reached this peer
        if time.monotonic() > end:
            sys.exit("zenoh: the publisher never matched the subscriber")
        time.sleep(0.001)
    payload = bytes([7]) * SIZE  # a buffer the node made, as sender.py's
    start = time.monotonic()
    for i in range(TOTAL):
        paced(i, start)
        publisher.put(payload, attachment=STAMP.pack(time.monotonic_ns(), i < WARMUP))
    wait_for_result()
    session.close()


{"send": send, "recv": recv}[sys.argv[1]]()

"""iceoryx2 (PyPI `iceoryx2` 0.10) publish-subscribe, Python → Python, measured like the other systems
(see common.py): `python iceoryx2_pubsub.py send|recv`.

A publish-subscribe service of uint8 slices with a user header carrying the send time (CLOCK_MONOTONIC
ns) and the warm-up flag, and an event service beside it: the sender loans a sample
(loan_slice_uninit), writes the payload into it (one copy, as our senders copy into shared memory),
sends it and notifies; the receiver sleeps in the listener until notified, then takes every sample
that is there (zero-copy: it looks at the header and takes a view of the payload).

Sized so that nothing can be lost and the sender never waits: the subscriber's buffer holds the
whole run (WARMUP + COUNT samples, so it cannot overflow), safe overflow is off and the backpressure
strategy is to retry (so even a full buffer would make the sender wait rather than drop), and no
history is kept; the publisher's data segment is sized for the message (initial_max_slice_len =
SIZE, static allocation) and by iceoryx2 for every sample the buffer can hold. The segment is
sparse: only the samples in use are ever touched (two or three here, as the receiver returns each
at once), so 300 × 40 MB of it costs 80–120 MB. A loan that found the segment exhausted would raise,
and the run would fail rather than lose anything.

Its files (service and node descriptions under IOX2_ROOT, shared memory named /dev/shm/IOX2_PREFIX*)
are per run; run.ts removes them afterwards."""
import ctypes
import os
import sys
import time

import iceoryx2 as iox2

from common import COUNT, PACED, SIZE, TOTAL, WARMUP, Receipts, paced, ready, wait_for_result


class Header(ctypes.Structure):
    _fields_ = [("sent", ctypes.c_int64), ("warmup", ctypes.c_uint8)]


iox2.set_log_level(iox2.LogLevel.Error)
config = iox2.config.default()
config.global_cfg.root_path = iox2.Path.new(os.environ["IOX2_ROOT"])
config.global_cfg.prefix = iox2.FileName.new(os.environ["IOX2_PREFIX"])
node = iox2.NodeBuilder.new().config(config).create(iox2.ServiceType.Ipc)
name = iox2.ServiceName.new("dora-bench/data")


def pubsub(builder):
    return (
        builder.publish_subscribe(iox2.Slice[ctypes.c_uint8])
        .user_header(Header)
        .max_publishers(1)
        .max_subscribers(1)
        .max_nodes(2)
        .history_size(0)
        .subscriber_max_buffer_size(TOTAL)
        .enable_safe_overflow(False)
    )


def recv() -> None:
    service = pubsub(node.service_builder(name)).create()
    subscriber = service.subscriber_builder().buffer_size(TOTAL).create()
    listener = node.service_builder(name).event().max_notifiers(1).max_listeners(1).create().listener_builder().create()
    receipts = Receipts()
    ready()
    while not receipts.done():
        listener.timed_wait(iox2.Duration.from_secs(1))  # every notification that came in, at once
        while True:
            sample = subscriber.receive()
            if sample is None:
                break
            now = time.monotonic_ns()
            header = sample.user_header().contents
            data = sample.payload().as_memory_view()  # the payload in shared memory, no copy
            assert len(data) == SIZE
            receipts.add(now, header.sent, bool(header.warmup))
            del data, header, sample  # returns the sample to the publisher
    receipts.write()


def send() -> None:
    service = pubsub(node.service_builder(name)).open()
    publisher = (
        service.publisher_builder()
        .initial_max_slice_len(SIZE)
        .allocation_strategy(iox2.AllocationStrategy.Static)
        .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
        .create()
    )
    notifier = node.service_builder(name).event().open().notifier_builder().create()
    payload = bytes([7]) * SIZE  # a buffer the node made, as sender.py's
    start = time.monotonic()
    for i in range(TOTAL):
        paced(i, start)
        sent = time.monotonic_ns()
        sample = publisher.loan_slice_uninit(SIZE)
        header = sample.user_header().contents
        header.sent = sent
        header.warmup = i < WARMUP
        ctypes.memmove(sample.payload().as_ptr(), payload, SIZE)
        sample.assume_init().send()
        notifier.notify()
    wait_for_result()


assert PACED or COUNT > 0
{"send": send, "recv": recv}[sys.argv[1]]()

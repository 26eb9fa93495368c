"""What the peers' benchmark programs (iceoryx2.py, zenoh_pubsub.py) share with each other and with
bench/nodes/sender.py and receiver.py: the environment they read (MODE, SIZE, COUNT, WARMUP, RATE;
RESULT, READY), the pacing, and the result file.

Each program runs as `python PROGRAM send|recv`. The receiver sets up its side, then creates the
READY file; run.ts starts the sender only after that. The receiver expects WARMUP + COUNT messages
and writes RESULT once it has them all (or, if none arrives for STALL seconds, what it got, which
run.ts reports as a loss). The sender exits only once RESULT exists, so that a middleware that
drops what is in flight when a sender goes away is not penalized, without timing anything."""
import json
import os
import threading
import time

SIZE = int(os.environ["SIZE"])
COUNT = int(os.environ["COUNT"])
WARMUP = int(os.environ.get("WARMUP", "10"))
RATE = float(os.environ.get("RATE", "100"))
PACED = os.environ["MODE"] == "latency"
TOTAL = WARMUP + COUNT
RESULT = os.environ["RESULT"]
STALL = 30.0  # seconds without a message before the receiver gives up


def paced(i: int, start: float) -> None:
    """Sleeps until message i is due (latency mode: RATE Hz from start); returns at once otherwise."""
    if PACED:
        wait = start + i / RATE - time.monotonic()
        if wait > 0:
            time.sleep(wait)


def ready() -> None:
    with open(os.environ["READY"], "w"):
        pass


def wait_for_result(timeout: float = 120.0) -> None:
    """The sender's last step: stay until the receiver wrote its result (or gave up)."""
    end = time.monotonic() + timeout
    while not os.path.exists(RESULT) and time.monotonic() < end:
        time.sleep(0.01)


class Receipts:
    """One-way latencies of the non-warm-up messages, as receiver.py records them."""

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.first = self.last = 0
        self.seen = 0  # warm-up included
        self.progress = time.monotonic()
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._written = False
        threading.Thread(target=self._watchdog, daemon=True).start()

    def add(self, now: int, sent: int, warmup: bool) -> None:
        self.seen += 1
        self.progress = time.monotonic()
        if not warmup:
            if not self.latencies:
                self.first = now
            self.last = now
            self.latencies.append(now - sent)

    def done(self) -> bool:
        return self.seen >= TOTAL

    def write(self) -> None:
        with self._lock:
            if self._written:
                return
            self._written = True
            tmp = RESULT + ".tmp"
            with open(tmp, "w") as out:
                json.dump({"received": len(self.latencies), "latenciesNs": self.latencies, "spanNs": self.last - self.first, "notes": self.notes}, out)
            os.rename(tmp, RESULT)  # the sender polls for RESULT: it must appear complete

    def _watchdog(self) -> None:
        while True:
            time.sleep(1)
            if time.monotonic() - self.progress > STALL:
                self.notes.append(f"no message for {STALL:.0f} s after {self.seen} of {TOTAL}")
                self.write()
                os._exit(1)

/**
 * Receiver for one mechanism: WARMUP + PACED latency messages, then BURST back to back.
 * Prints one JSON line: {"lat": [ns...], "burst": n, "span": ns from first to last burst receipt,
 * "wakeups": waits that ended during the burst}.
 * Usage: recv.ts MECHANISM ENDPOINT [WARMUP PACED BURST]; MECHANISM is one of a a2 b c f d.
 */
import { Mechanism, now, openWaiter, probe } from './probe';

const [kind, endpoint, ...counts] = process.argv.slice(2);
const [WARMUP, PACED, BURST] = counts.length === 3 ? counts.map(Number) : [100, 200, 100000];
const TOTAL = WARMUP + PACED + BURST;
const lat: number[] = [];
let n = 0, first = 0, last = 0, wakeups = 0;

/** The JS code now holds the message carrying send time ts. */
function take(ts: number) {
  if (n < WARMUP + PACED) { if (n >= WARMUP) lat.push(now() - ts); }
  else if (n === WARMUP + PACED) first = now();
  if (n === TOTAL - 1) last = now();
  n++;
}

async function viaWaiter() {
  const { p, waiter } = openWaiter(kind as Mechanism, endpoint);
  for (;;) {
    // One wake-up, then synchronous koffi calls take every waiting message; ZMQ_EVENTS is
    // checked (which also resets ZMQ_FD) before waiting again.
    do {
      for (let ts = probe.tryRecv(p); ts !== -1; ts = probe.tryRecv(p)) take(Number(ts));
    } while (probe.readable(p));
    if (n >= TOTAL) return;
    await waiter.wait(-1);
    if (n > WARMUP + PACED) wakeups++;
  }
}

/** (d) reference: zeromq.js, await receive() per message. */
async function viaZeromqJs() {
  const { Subscriber } = await import('zeromq');
  const sub = new Subscriber({ receiveHighWaterMark: 0, linger: 0 });
  sub.connect(endpoint);
  sub.subscribe();
  while (n < TOTAL) {
    const [msg] = await sub.receive();
    take(Number(msg.readBigInt64LE(0)));
  }
  sub.close();
}

(kind === 'd' ? viaZeromqJs() : viaWaiter()).then(() => {
  // The process must now exit on its own: nothing may hold the event loop after the last wait.
  process.stdout.write(JSON.stringify({ lat, burst: BURST, span: last - first, ...(kind === 'd' ? {} : { wakeups }) }) + '\n');
});

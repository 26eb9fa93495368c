// Benchmark sender: MODE=latency sends COUNT messages of SIZE bytes paced at RATE Hz
// (after WARMUP unpaced-ish warm-up messages); MODE=throughput sends COUNT back to back.
// Every message carries its send time (CLOCK_MONOTONIC, shared by all processes) in ns.
import { Node, OutputSample } from 'dora-ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const node = new Node();
  const size = Number(process.env.SIZE);
  const count = Number(process.env.COUNT);
  const warmup = Number(process.env.WARMUP ?? 10);
  const rate = Number(process.env.RATE ?? 100);
  const paced = process.env.MODE === 'latency';
  // One prebuilt payload, sent like a typical node sends a buffer it made (one copy into shared memory).
  // IN_PLACE=1: each message is instead produced straight into an output sample (allocateOutput), no copy.
  const inPlace = process.env.IN_PLACE === '1';
  const payload = new Uint8Array(size).fill(7);
  const start = performance.now();
  for (let i = 0; i < warmup + count; i++) {
    if (paced) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    let data: Uint8Array | OutputSample = payload;
    if (inPlace) {
      data = node.allocateOutput('data', size);
      data.bytes.fill(7); // producing the message (a camera driver would write its frame here)
    }
    await node.sendOutput('data', data, { sent: process.hrtime.bigint(), i, warmup: i < warmup });
  }
}

void main();

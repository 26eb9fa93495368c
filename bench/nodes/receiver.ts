// Benchmark receiver: records the one-way latency of every non-warm-up message and
// the receive times, and writes them as JSON to RESULT when its input closes.
import * as fs from 'node:fs';
import { Node } from 'dora-ts';

async function main(): Promise<void> {
  const node = new Node();
  const latenciesNs: number[] = [];
  let first = 0n;
  let last = 0n;
  let received = 0;
  for await (const event of node) {
    if (event.type !== 'INPUT') continue;
    const now = process.hrtime.bigint();
    const p = event.metadata.parameters;
    if (p.warmup !== true) {
      if (received === 0) first = now;
      last = now;
      received++;
      latenciesNs.push(Number(now - BigInt(p.sent as number | bigint)));
    }
    event[Symbol.dispose]();
  }
  fs.writeFileSync(process.env.RESULT!, JSON.stringify({ received, latenciesNs, spanNs: Number(last - first) }));
}

void main();

// Raw zeromq.js baseline, no middleware: `tsx zmq.ts send|recv ENDPOINT` with the benchmark's
// environment (MODE, SIZE, COUNT, WARMUP, RATE; RESULT for recv). PUSH → PULL; each message
// is one frame: an 8-byte send time (CLOCK_MONOTONIC ns), a warm-up flag byte, the payload.
// With CURVE_SERVER_PUBLIC and CURVE_SERVER_SECRET (a tcp:// endpoint), the receiver is a
// CURVE server with that key pair and the sender a CURVE client with keys of its own.
import * as fs from 'node:fs';
import * as zmq from 'zeromq';

const [role, endpoint] = process.argv.slice(2);
const size = Number(process.env.SIZE);
const count = Number(process.env.COUNT);
const warmup = Number(process.env.WARMUP ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(): Promise<void> {
  const push = new zmq.Push({ sendHighWaterMark: 0, linger: -1 });
  if (process.env.CURVE_SERVER_PUBLIC) {
    const mine = zmq.curveKeyPair();
    push.curveServerKey = process.env.CURVE_SERVER_PUBLIC;
    push.curvePublicKey = mine.publicKey;
    push.curveSecretKey = mine.secretKey;
  }
  push.connect(endpoint);
  const rate = Number(process.env.RATE ?? 100);
  const paced = process.env.MODE === 'latency';
  const start = performance.now();
  for (let i = 0; i < warmup + count; i++) {
    if (paced) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const message = Buffer.allocUnsafe(size + 9).fill(7); // a fresh buffer: zeromq.js may send without copying
    message.writeBigInt64LE(process.hrtime.bigint(), 0);
    message[8] = i < warmup ? 1 : 0;
    await push.send(message);
  }
  push.close();
}

async function recv(): Promise<void> {
  const pull = new zmq.Pull({ receiveHighWaterMark: 0 });
  if (process.env.CURVE_SERVER_SECRET) {
    pull.curveServer = true;
    pull.curveSecretKey = process.env.CURVE_SERVER_SECRET;
  }
  await pull.bind(endpoint);
  const latenciesNs: number[] = [];
  let first = 0n;
  let last = 0n;
  for (let n = 0; n < warmup + count; n++) {
    const [message] = await pull.receive();
    const now = process.hrtime.bigint();
    if (message[8] === 0) {
      if (latenciesNs.length === 0) first = now;
      last = now;
      latenciesNs.push(Number(now - message.readBigInt64LE(0)));
    }
  }
  fs.writeFileSync(process.env.RESULT!, JSON.stringify({ received: latenciesNs.length, latenciesNs, spanNs: Number(last - first) }));
  pull.close();
}

void (role === 'send' ? send() : recv());

/**
 * What a pending wait costs the rest of the process. Waits on endpoints nobody binds:
 *   keepalive.ts MECHANISM abandon   starts a 10 s wait and returns with it pending
 *   keepalive.ts MECHANISM cancel    the same, but waiter.cancel() right after starting it
 *   keepalive.ts MECHANISM idle      the mechanism is set up, no wait is started
 *   keepalive.ts MECHANISM pool      four 2 s waits (four sockets), then times an fs.readFile
 * Prints "returned <Date.now()>" when the script's code is done, "settled <result> <Date.now()>"
 * when the wait ends and "readfile <ms>"; run.ts measures when the process exits.
 */
import * as fs from 'node:fs';
import { Mechanism, openWaiter, probe } from './probe';

const [kind, mode] = process.argv.slice(2);
const endpoint = (i: number) => `ipc://@dora-wakeup-nobody-${process.pid}-${i}`;

/** What a node's next(timeout) does: check the socket, wait, repeat after spurious wake-ups. */
async function next({ p, waiter }: ReturnType<typeof openWaiter>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let spurious = 0;
  for (;;) {
    if (probe.readable(p)) return 'message';
    const r = await waiter.wait(Math.max(0, deadline - Date.now()));
    if (r !== 'ready') return `${r}${spurious ? ` after ${spurious} spurious wake-ups` : ''}`;
    spurious++;
  }
}

if (mode === 'pool') {
  // koffi runs .async calls as napi async work, i.e. on libuv's thread pool (4 threads by
  // default), which fs, dns.lookup, zlib and crypto share.
  for (let i = 0; i < 4; i++) next(openWaiter(kind as Mechanism, endpoint(i)), 2_000);
  const t = Date.now();
  fs.readFile(__filename, () => console.log(`readfile ${Date.now() - t}`));
} else {
  const node = openWaiter(kind as Mechanism, endpoint(0));
  if (mode !== 'idle') next(node, 10_000).then((r) => console.log(`settled ${r} ${Date.now()}`));
  if (mode === 'cancel') node.waiter.cancel();
}
console.log(`returned ${Date.now()}`);

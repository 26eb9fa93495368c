/**
 * The JS halves of the wake-up mechanisms: each one is a Waiter over the same SUB socket
 * (probe.c). wait() resolves once the socket may have messages; the caller then drains with
 * synchronous koffi calls (see drain in recv.ts). Only this thread touches the socket, except
 * in (a2).
 */
import koffi from 'koffi';
import type { LibraryHandle } from 'koffi';
import * as net from 'node:net';
import * as path from 'node:path';

export const BUILD = path.join(__dirname, 'build');
const lib = koffi.load(path.join(BUILD, 'libprobe.so'));
const NotifyCb = koffi.proto('void probe_notify_cb(void)');

export const probe = {
  now: lib.func('int64_t probe_now(void)'),
  open: lib.func('void *probe_open(const char *endpoint)'),
  zmqFd: lib.func('int probe_zmq_fd(void *p)'),
  tryRecv: lib.func('int64_t probe_try_recv(void *p)'),
  readable: lib.func('int probe_readable(void *p)'),
  waitFd: lib.func('int probe_wait_fd(void *p, int timeout_ms)'),
  waitZmq: lib.func('int probe_wait_zmq(void *p, int timeout_ms)'),
  cancel: lib.func('void probe_cancel(void *p)'),
  notifierStart: lib.func('int probe_notifier_start(void *p, probe_notify_cb *cb)'),
  arm: lib.func('void probe_arm(void *p)'),
  disarm: lib.func('int probe_disarm(void *p)'),
};
/** CLOCK_MONOTONIC in ns, the sender's clock (int64 comes back as a BigInt only past 2^53 ns). */
export const now = (): number => Number(probe.now());

export type WaitResult = 'ready' | 'timeout' | 'cancelled';
export interface Waiter {
  /** timeoutMs < 0: no timeout. */
  wait(timeoutMs: number): Promise<WaitResult>;
  cancel(): void;
}

/** (a)/(a2): a koffi .async call that blocks in poll(ZMQ_FD) or zmq_poll(socket) on a pool thread. */
function asyncWaiter(p: unknown, fn: ReturnType<LibraryHandle['func']>): Waiter {
  let pending = false;
  return {
    wait: (timeoutMs) => new Promise((resolve, reject) => {
      pending = true;
      fn.async(p, timeoutMs, (err: unknown, r: number) => {
        pending = false;
        if (err) reject(err); else resolve(r > 0 ? 'ready' : r === 0 ? 'timeout' : 'cancelled');
      });
    }),
    cancel: () => { if (pending) probe.cancel(p); },
  };
}

/** The JS side of (b), (c), (f): one pending wait, settled by a notification, its timer or cancel(). */
function oneShot(onArm: () => void, onSettle: () => void, keepAliveTimer: boolean) {
  let settle: ((r: WaitResult) => void) | null = null;
  let timer: NodeJS.Timeout | undefined;
  const finish = (r: WaitResult) => {
    const f = settle;
    if (!f) return;
    settle = null;
    clearTimeout(timer);
    onSettle();
    f(r);
  };
  return {
    get waiting() { return settle !== null; },
    finish,
    wait: (timeoutMs: number) => new Promise<WaitResult>((resolve) => {
      settle = resolve;
      onArm();
      // (c) has nothing else holding the event loop, so its timer is the keep-alive (an
      // "infinite" one when there is no timeout); (b) and (f) hold their own handle.
      if (timeoutMs >= 0 || keepAliveTimer) {
        timer = setTimeout(() => finish('timeout'), timeoutMs >= 0 ? timeoutMs : 2 ** 31 - 1);
        if (!keepAliveTimer) timer.unref();
      }
    }),
  };
}

/** (b): C notifier thread writes a byte to a pipe; JS reads it with a net.Socket, ref'd only while waiting. */
function pipeWaiter(p: unknown): Waiter {
  const fd = probe.notifierStart(p, null);
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  pipe.unref();
  const w = oneShot(() => { pipe.ref(); probe.arm(p); }, () => { probe.disarm(p); pipe.unref(); }, false);
  pipe.on('data', () => w.finish('ready')); // bytes arriving after a cancel are ignored
  return { wait: w.wait, cancel: () => w.finish('cancelled') };
}

/** (c): C notifier thread calls a koffi-registered JS function; koffi queues it to this thread. */
function callbackWaiter(p: unknown): Waiter {
  let w: ReturnType<typeof oneShot>;
  const cb = koffi.register(() => w.finish('ready'), koffi.pointer(NotifyCb));
  probe.notifierStart(p, cb);
  w = oneShot(() => probe.arm(p), () => probe.disarm(p), true);
  return { wait: w.wait, cancel: () => w.finish('cancelled') };
}

/** (f): no thread at all: koffi.node.poll puts ZMQ_FD in Node's own epoll (a libuv uv_poll_t), started only while waiting. */
function uvPollWaiter(p: unknown): Waiter {
  const onPoll = () => w.finish('ready');
  const handle = koffi.node.poll(probe.zmqFd(p), { readable: true }, onPoll);
  handle.stop();
  const w = oneShot(() => handle.start({ readable: true }, onPoll), () => handle.stop(), false);
  return { wait: w.wait, cancel: () => w.finish('cancelled') };
}

export const MECHANISMS = ['a', 'a2', 'b', 'c', 'f'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export function openWaiter(kind: Mechanism, endpoint: string): { p: unknown; waiter: Waiter } {
  const p = probe.open(endpoint);
  if (!p) throw new Error(`cannot connect to ${endpoint}`);
  const waiter = kind === 'a' ? asyncWaiter(p, probe.waitFd)
    : kind === 'a2' ? asyncWaiter(p, probe.waitZmq)
    : kind === 'b' ? pipeWaiter(p)
    : kind === 'c' ? callbackWaiter(p)
    : uvPollWaiter(p);
  return { p, waiter };
}

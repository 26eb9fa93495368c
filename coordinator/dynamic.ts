/**
 * Dynamic nodes (`path: dynamic`), the daemon's side: the processes it did not start.
 *
 * A dynamic node's process (a terminal, a notebook's kernel) finds the running dataflow in
 * the user's runtime directory (daemon.json lists the dataflow's dynamic nodes and its
 * request endpoint), asks the daemon for its configuration (`dynamic-config`), then joins
 * like a restarted node: it registers, its senders count it as a holder of their samples
 * again (`node-restarted`, `restart-seen`), and only then does it connect to them and to
 * its timers (`start`). It leaves with its last request (`closing`) or when its process
 * ends, which the daemon notices here by watching the PID it registered with: the daemon
 * cannot wait for a process that is not its child.
 */
import { startTime } from './rundir';

/** How often the daemon looks for joined dynamic nodes whose process has ended. */
export const PROCESS_WATCH_MS = 250;

/** A dynamic node's process, from its registration on. */
export interface JoinedProcess {
  readonly pid: number;
  /** /proc/<pid>/stat field 22: a later process given the same PID is not this one. */
  readonly startTime: string | undefined;
}

/** The process that registered with `pid`, identified for as long as it lives. */
export function joinedProcess(pid: number): JoinedProcess {
  return { pid, startTime: startTime(pid) };
}

/** Whether the process still runs (a zombie does not: it has exited). */
export function isRunning(process: JoinedProcess): boolean {
  const now = startTime(process.pid);
  return now !== undefined && (process.startTime === undefined || now === process.startTime);
}

/**
 * Calls `onGone(key)` once for each watched process that has ended, checking every
 * PROCESS_WATCH_MS while any is watched. The timer never keeps the daemon alive.
 */
export class ProcessWatch<K> {
  private readonly watched = new Map<K, JoinedProcess>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly onGone: (key: K) => void) {}

  add(key: K, process: JoinedProcess): void {
    this.watched.set(key, process);
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), PROCESS_WATCH_MS);
    this.timer.unref();
  }

  remove(key: K): void {
    this.watched.delete(key);
    if (this.watched.size === 0) this.close();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    for (const [key, process] of [...this.watched]) {
      if (isRunning(process)) continue;
      this.remove(key);
      this.onGone(key);
    }
  }
}

/**
 * `dora topic echo|hz` of a dataflow over several machines: the coordinator runs the tool on
 * the machine of the output's sender, where the tap can read its shared memory
 * (coordinator/cluster/watch.ts), and this process prints what it prints, as it comes. Ctrl-C
 * (or this process going away) ends the tool there: the coordinator stops a watch nobody reads.
 */
import { controlRequest } from '../../coordinator/control';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import type { WatchTool } from '../../coordinator/cluster/messages';
import type { ClusterTarget } from './runs';
import * as arrow from 'apache-arrow';
import { parseWireLine } from '../record/wire';

/** How long one read waits at the coordinator for new lines. */
const READ_WAIT_MS = 1000;

/** Runs the tool on the sender's machine until it ends; returns its exit code. */
export async function watchRemote(target: ClusterTarget, tool: WatchTool, topic: string, args: readonly string[]): Promise<number> {
  const opened = await controlRequest({ cmd: 'watch', dataflow: target.id, tool, topic, args });
  const watch = opened.watch!;
  const stop = () => void controlRequest({ cmd: 'unwatch', watch }, { timeoutMs: 2000 }).catch(() => undefined).finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (;;) {
      const chunk = (await controlRequest({ cmd: 'watch-read', watch, waitMs: READ_WAIT_MS }, { timeoutMs: READ_WAIT_MS + 10_000 })).watched!;
      for (const { fd, line } of chunk.lines) (fd === 1 ? process.stdout : process.stderr).write(`${line}\n`);
      if (chunk.dropped > 0) process.stderr.write(`dora topic ${tool}: ${chunk.dropped} line(s) printed on machine ${opened.machine} were dropped (printed faster than they could be sent)\n`);
      if (chunk.ended) {
        if (chunk.ended.error) throw new DoraError(`dora topic ${tool} on machine ${opened.machine}: ${chunk.ended.error}`, { code: ErrorCode.CONTROL });
        return chunk.ended.code ?? 1;
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** How long the tool on the other machine may take to start and read a first message before sampling gives up. */
const FIRST_MESSAGE_MS = 5000;

/**
 * Reads whole messages of `topic` on its sender's machine for `durationMs` from the first
 * one (`echo --arrow` there), for `dora topic info`; returns why it ended early, if it did.
 */
export async function sampleRemote(target: ClusterTarget, topic: string, durationMs: number, onMessage: (data: arrow.Vector) => void): Promise<string | undefined> {
  const opened = await controlRequest({ cmd: 'watch', dataflow: target.id, tool: 'echo', topic, args: ['--arrow'] });
  const watch = opened.watch!;
  let deadline = Date.now() + FIRST_MESSAGE_MS;
  let first = true;
  try {
    while (Date.now() < deadline) {
      const chunk = (await controlRequest({ cmd: 'watch-read', watch, waitMs: Math.min(READ_WAIT_MS, Math.max(0, deadline - Date.now())) }, { timeoutMs: READ_WAIT_MS + 10_000 })).watched!;
      for (const { fd, line } of chunk.lines) {
        const message = fd === 1 ? parseWireLine(line) : undefined;
        if (!message || 'dropped' in message) continue;
        if (first) (first = false), (deadline = Date.now() + durationMs);
        onMessage(arrow.makeVector(message.data));
      }
      if (chunk.ended) return chunk.ended.error ?? (first ? `the tap on machine ${opened.machine} read nothing before it ended` : undefined);
    }
    return first ? `no message read on machine ${opened.machine} within ${FIRST_MESSAGE_MS / 1000} s` : undefined;
  } finally {
    await controlRequest({ cmd: 'unwatch', watch }, { timeoutMs: 2000 }).catch(() => undefined);
  }
}

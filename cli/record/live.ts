/**
 * `dora record <running dataflow>`: records outputs of a dataflow that is already running
 * (`dora start` or `dora run`) through taps (docs/protocol.md 6.2), one per output, in this
 * process, into the same files as the recorder node writes. The dataflow is not touched:
 * Ctrl-C or --stop-after ends the recording, not the dataflow.
 *
 * A tap's queue is the daemon's (4 messages) and drops its oldest when full: observing must
 * never hold a sender's memory nor make it wait. Messages are written as they come, so the
 * queue stays empty unless the disk stalls; what was dropped is counted in the manifest and
 * said. Messages sent before a tap joined are not recorded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import type { DaemonRecord } from '../../coordinator/rundir';
import type { TopicsReply } from '../../coordinator/metrics';
import { runtimeDir } from '../../coordinator/userdirs';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import type { Node } from '../../node-api';
import { findRun, findTarget, isCluster, requestRun, requestTarget, type ClusterTarget } from '../observe/runs';
import { controlRequest } from '../../coordinator/control';
import { parseWireLine } from './wire';
import { openTap } from '../observe/tap';
import { OutputRecorder, startRecording, writeManifest } from './format';

export async function recordRunning(ref: string, dir: string, topics: readonly string[] | undefined, stopAfterMs: number | undefined): Promise<void> {
  const target = await findTarget(ref);
  if (isCluster(target)) return recordAcrossMachines(target, dir, topics, stopAfterMs);
  const run = findRun(ref);
  const all = (await requestRun<TopicsReply>(run, { cmd: 'topics' })).topics;
  // printed lines and log records (send_stdout_as/send_logs_as) come from the daemon, not from a node: no tap reads them
  const tappable = all.filter((t) => !t.routed);
  const chosen =
    topics === undefined
      ? tappable
      : topics.map((name) => tappable.find((t) => t.name === name) ?? unknown(name, all.find((t) => t.name === name) !== undefined, tappable.map((t) => t.name), run.id));
  if (chosen.length === 0) throw new DoraError(`dataflow ${run.id} has no output to record`, { code: ErrorCode.USAGE });
  // the taps first: a refusal (the dataflow is not started yet, or stopping) leaves no folder behind
  const nodes: Node[] = [];
  try {
    for (const t of chosen) nodes.push(await openTap(run, t.name));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.close()));
    throw err;
  }
  const file = dataflowFile(run.id);
  const manifest = startRecording(dir, file, file !== null ? path.dirname(file) : '', chosen.map((t) => ({ topic: t.name, node: t.node, output: t.output })));
  if (file === null) process.stderr.write(`warning: dataflow ${run.id} does not name its file: the recording cannot be replayed\n`);
  const taps = nodes.map((node, i) => ({ node, recorder: new OutputRecorder(dir, manifest.topics[i]) }));
  let ending = false;
  const end = () => {
    if (ending) return;
    ending = true;
    for (const t of taps) void t.node.close();
  };
  process.once('SIGINT', end);
  process.once('SIGTERM', end);
  const timer = stopAfterMs === undefined ? undefined : setTimeout(end, stopAfterMs);
  process.stderr.write(`recording ${chosen.map((t) => t.name).join(', ')} of dataflow ${run.id} to ${dir} (Ctrl-C ends the recording, not the dataflow)\n`);
  try {
    await Promise.all(taps.map((t) => record(t.node, t.recorder)));
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', end);
    process.off('SIGTERM', end);
    for (const t of taps) {
      t.recorder.close();
      t.recorder.entry.dropped = [...t.node.droppedMessages.values()].reduce((a, b) => a + b, 0);
      await t.node.close();
    }
    manifest.endedAt = new Date().toISOString();
    writeManifest(dir, manifest);
  }
  const dropped = manifest.topics.filter((t) => t.dropped > 0);
  if (dropped.length > 0) process.stderr.write(`warning: the taps could not keep up and dropped messages: ${dropped.map((t) => `${t.topic}: ${t.dropped}`).join(', ')}\n`);
  process.stderr.write(`recorded ${manifest.topics.reduce((n, t) => n + t.messages, 0)} messages of ${manifest.topics.length} outputs to ${dir}\n`);
}

/** Writes what one tap reads until its input closes, the dataflow stops or the tap is closed. */
async function record(node: Node, recorder: OutputRecorder): Promise<void> {
  for (;;) {
    let event;
    try {
      event = await node.next();
    } catch {
      return; // closed by end()
    }
    if (!event || event.type === 'INPUT_CLOSED' || event.type === 'STOP' || event.type === 'ERROR') return;
    if (event.type !== 'INPUT') continue;
    try {
      const data = event.data.data.length === 1 ? event.data.data[0] : arrow.vectorFromArray([...event.data], event.data.type).data[0];
      recorder.write(event.metadata.timestamp, event.metadata.parameters, data);
    } finally {
      event[Symbol.dispose]();
    }
  }
}

/** The dataflow file its daemon names in the run folder, if it names one that still exists. */
function dataflowFile(id: string): string | null {
  try {
    const record = JSON.parse(fs.readFileSync(path.join(runtimeDir(), id, 'daemon.json'), 'utf8')) as DaemonRecord;
    return record.file && fs.existsSync(record.file) ? record.file : null;
  } catch {
    return null;
  }
}

function unknown(name: string, routed: boolean, known: readonly string[], id: string): never {
  if (routed) throw new DoraError(`${name} carries printed lines or log records, sent by the daemon: record the dataflow from its file to have it`, { code: ErrorCode.USAGE });
  throw new DoraError(`dataflow ${id} has no output "${name}" to record (outputs: ${known.join(', ')})`, { code: ErrorCode.USAGE });
}

/** After the end of a recording across machines, how long the tools there have to hand over what they read. */
const DRAIN_MS = 10_000;

/**
 * `dora record` of a dataflow over several machines: each output is read by a tap on its
 * sender's machine (`dora topic echo --arrow` run there by its daemon, coordinator/cluster/
 * watch.ts), which prints each message whole; the lines come here through the coordinator
 * and are written as a local tap's messages would be. What a bound on the way dropped (the
 * tap's queue there, the relays) is counted in the manifest as the tap's drops are.
 */
async function recordAcrossMachines(target: ClusterTarget, dir: string, topics: readonly string[] | undefined, stopAfterMs: number | undefined): Promise<void> {
  const all = (await requestTarget<TopicsReply>(target, 'topics')).topics;
  const tappable = all.filter((t) => !t.routed);
  const chosen =
    topics === undefined
      ? tappable
      : topics.map((name) => tappable.find((t) => t.name === name) ?? unknown(name, all.find((t) => t.name === name) !== undefined, tappable.map((t) => t.name), target.id));
  if (chosen.length === 0) throw new DoraError(`dataflow ${target.id} has no output to record`, { code: ErrorCode.USAGE });
  // the watches first: a refusal leaves no folder behind
  const watches: number[] = [];
  const unwatch = (drain = false) => Promise.all(watches.map((watch) => controlRequest({ cmd: 'unwatch', watch, drain }, { timeoutMs: 2000 }).catch(() => undefined)));
  try {
    for (const t of chosen) watches.push((await controlRequest({ cmd: 'watch', dataflow: target.id, tool: 'echo', topic: t.name, args: ['--arrow'] })).watch!);
  } catch (err) {
    await unwatch();
    throw err;
  }
  const file = fs.existsSync(target.file) ? target.file : null;
  const manifest = startRecording(dir, file, file !== null ? path.dirname(file) : '', chosen.map((t) => ({ topic: t.name, node: t.node, output: t.output })));
  if (file === null) process.stderr.write(`warning: the file of dataflow ${target.id} is not on this machine: the recording cannot be replayed\n`);
  // ending: the tools there are stopped, and what they had read, with their last drop counts, is still read until they end
  let ending = false;
  let drained: number | undefined;
  const end = () => {
    if (ending) return;
    ending = true;
    drained = Date.now() + DRAIN_MS;
    void unwatch(true);
  };
  process.once('SIGINT', end);
  process.once('SIGTERM', end);
  const timer = stopAfterMs === undefined ? undefined : setTimeout(end, stopAfterMs);
  process.stderr.write(`recording ${chosen.map((t) => `${t.name} (on ${t.machine})`).join(', ')} of dataflow ${target.id} to ${dir} (Ctrl-C ends the recording, not the dataflow)\n`);
  const recorders = chosen.map((_, i) => new OutputRecorder(dir, manifest.topics[i]));
  const failures: string[] = [];
  try {
    await Promise.all(
      watches.map(async (watch, i) => {
        const recorder = recorders[i];
        let tapDropped = 0; // the tap's own count, there
        let relayDropped = 0;
        try {
          for (;;) {
            if (drained !== undefined && Date.now() > drained) {
              failures.push(`${chosen[i].name} (on ${chosen[i].machine}): its last messages did not arrive within ${DRAIN_MS / 1000} s of the end (not in the recording nor counted as dropped)`);
              break;
            }
            const chunk = (await controlRequest({ cmd: 'watch-read', watch, waitMs: 500 }, { timeoutMs: 15_000 })).watched!;
            relayDropped += chunk.dropped;
            for (const { fd, line } of chunk.lines) {
              const message = fd === 1 ? parseWireLine(line) : undefined;
              if (message && 'dropped' in message) tapDropped = message.dropped;
              else if (message) recorder.write(message.timestamp, message.parameters, message.data);
              else if (line.startsWith('{"timestamp"')) relayDropped++; // a message cut short (its tool was stopped while writing it)
              else if (line.trim() && !ending) process.stderr.write(`${chosen[i].name} (on ${chosen[i].machine}): ${line.slice(0, 500)}\n`);
            }
            if (chunk.ended) {
              // the tool there ends by itself only when the stream does (exit 0); anything else is a failure to say
              if (chunk.ended.error || (chunk.ended.code !== 0 && !ending)) failures.push(`${chosen[i].name} (on ${chosen[i].machine}): ${chunk.ended.error ?? `its tap exited with status ${chunk.ended.code}`}`);
              break;
            }
          }
        } finally {
          recorder.entry.dropped = tapDropped + relayDropped;
        }
      }),
    );
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', end);
    process.off('SIGTERM', end);
    await unwatch();
    for (const r of recorders) r.close();
    manifest.endedAt = new Date().toISOString();
    writeManifest(dir, manifest);
  }
  if (failures.length > 0) throw new DoraError(`the recording in ${dir} is incomplete: ${failures.join('; ')}`, { code: ErrorCode.CONTROL });
  const dropped = manifest.topics.filter((t) => t.dropped > 0);
  if (dropped.length > 0) process.stderr.write(`warning: messages were dropped on the way (the taps or the link could not keep up): ${dropped.map((t) => `${t.topic}: ${t.dropped}`).join(', ')}\n`);
  process.stderr.write(`recorded ${manifest.topics.reduce((n, t) => n + t.messages, 0)} messages of ${manifest.topics.length} outputs across machines to ${dir}\n`);
}

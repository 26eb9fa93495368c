/**
 * `dora record` and `dora replay`: each derives a dataflow from a file (adding the
 * recorder node, or putting players in the place of recorded nodes) and runs it in the
 * foreground like `dora run`. The derived dataflow goes through the descriptor's usual
 * checks; the file the user wrote is checked first, so its errors name its lines.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, type Option } from 'commander';
import { isMap, isSeq, parseDocument } from 'yaml';
import { loadDescriptor, parseDescriptor } from '../../coordinator/descriptor';
import type { ResolvedDataflow } from '../../coordinator/dataflow';
import { DoraError, ErrorCode, formatIssue } from '../../coordinator/errors';
import { runForeground } from '../foreground';
import { recordRunning } from './live';
import {
  RECORD_DIR_ENV,
  RECORD_TOPICS_ENV,
  REPLAY_DIR_ENV,
  REPLAY_LOOP_ENV,
  REPLAY_SPEED_ENV,
  readManifest,
  startRecording,
} from './format';

/**
 * The recorder's input queues. A queue in the node core drops its oldest message when
 * full; `backpressure` makes it 10 × queue_size. The recorder writes each message at once
 * and releases it, so its queues stay nearly empty; this bound is only reached when the
 * disk cannot keep up for 10,000 messages in a row, and then what was dropped is counted
 * in the manifest and reported, never silently lost. (A bigger queue would let a stalled
 * recorder hold that many shared-memory samples of their senders.)
 */
const RECORDER_QUEUE_SIZE = 1000;
const RECORDER_QUEUE_POLICY = 'backpressure';

/** The file next to this one, compiled (dist) or not (tsx). */
const sibling = (name: string) => path.join(__dirname, name + path.extname(__filename));

export interface CommandHelpers {
  readonly parseDuration: (text: string) => number;
  readonly durationArg: (text: string) => string;
  readonly graceOption: () => Option;
}

export function recordCommand(h: CommandHelpers): Command {
  return new Command('record')
    .description('run a dataflow and record the messages of its outputs into Arrow IPC files (one stream per output) and a manifest')
    .argument('<dataflow>', "dataflow YAML file (run with a recorder), or a running dataflow's id or name (recorded through taps)")
    .option('-o, --output <dir>', 'folder for the recording (new or empty; default: recording-<date>-<time>)')
    .option('--topics <list>', 'outputs to record, as node/output,… (default: every output)')
    .option('--stop-after <duration>', 'stop the dataflow gracefully after this long (e.g. 10s); of a running dataflow, end the recording', h.durationArg)
    .option('--out <dir>', 'folder for run logs (default: out/ next to the dataflow file)')
    .addOption(h.graceOption())
    .action(async (file: string, opts: { output?: string; topics?: string; stopAfter?: string; out?: string; grace: string }) => {
      const dir = path.resolve(opts.output ?? defaultRecordingDir());
      const topics = opts.topics?.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
      if (!isFile(file)) return recordRunning(file, dir, topics, opts.stopAfter !== undefined ? h.parseDuration(opts.stopAfter) : undefined);
      const dataflow = prepareRecording(path.resolve(file), dir, topics);
      await runForeground(dataflow, {
        graceMs: h.parseDuration(opts.grace),
        outDir: opts.out ? path.resolve(opts.out) : undefined,
        stopAfterMs: opts.stopAfter !== undefined ? h.parseDuration(opts.stopAfter) : undefined,
        stopAfterText: opts.stopAfter,
        onStarted: () => process.stderr.write(`recording to ${dir}\n`),
      });
    });
}

export function replayCommand(h: CommandHelpers): Command {
  return new Command('replay')
    .description('run a recorded dataflow with recorded nodes replaced by players that send what they sent, at the recorded pace')
    .argument('<dir>', 'folder written by `dora record`')
    .option('--speed <factor>', 'pace relative to the recording (2 = twice as fast)', (v) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`"${v}" is not a positive number`);
      return v;
    }, '1')
    .option('--loop', 'start over after the last message, until stopped')
    .option('--replace <nodes>', 'nodes to replace, as a,b,… (default: every node whose outputs were all recorded)')
    .option('--stop-after <duration>', 'stop the dataflow gracefully after this long (e.g. 10s)', h.durationArg)
    .option('--out <dir>', 'folder for run logs (default: out/ next to the dataflow file)')
    .addOption(h.graceOption())
    .action(async (dir: string, opts: { speed: string; loop?: boolean; replace?: string; stopAfter?: string; out?: string; grace: string }) => {
      const replace = opts.replace?.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
      const dataflow = prepareReplay(path.resolve(dir), { speed: Number(opts.speed), loop: opts.loop === true, ...(replace ? { replace } : {}) });
      await runForeground(dataflow, {
        graceMs: h.parseDuration(opts.grace),
        outDir: opts.out ? path.resolve(opts.out) : undefined,
        stopAfterMs: opts.stopAfter !== undefined ? h.parseDuration(opts.stopAfter) : undefined,
        stopAfterText: opts.stopAfter,
      });
    });
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function defaultRecordingDir(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `recording-${t}`;
}

/** Every output a dataflow declares, as `node/output`. */
function outputsOf(dataflow: ResolvedDataflow): { topic: string; node: string; output: string }[] {
  return dataflow.nodes.flatMap((n) => n.outputs.map((o) => ({ topic: `${n.id}/${o}`, node: n.id, output: o })));
}

/** Checks the file, creates the recording folder and its manifest; returns the dataflow with the recorder added. */
export function prepareRecording(file: string, dir: string, topics?: readonly string[]): ResolvedDataflow {
  const original = loadDescriptor(file);
  for (const w of original.warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
  const all = outputsOf(original);
  const chosen = topics === undefined ? all : topics.map((t) => all.find((o) => o.topic === t) ?? unknownTopic(t, all.map((o) => o.topic), file));
  if (chosen.length === 0) throw new DoraError(`${file}: no node has an output to record`, { code: ErrorCode.USAGE });
  startRecording(dir, file, original.workingDir, chosen);
  const text = fs.readFileSync(file, 'utf8');

  const ids = new Set(original.nodes.map((n) => n.id));
  let id = 'dora-record';
  for (let i = 2; ids.has(id); i++) id = `dora-record-${i}`;
  const inputs = Object.fromEntries(chosen.map((o, i) => [`r${i}`, { source: o.topic, queue_size: RECORDER_QUEUE_SIZE, queue_policy: RECORDER_QUEUE_POLICY }]));
  const wiring = Object.fromEntries(chosen.map((o, i) => [`r${i}`, o.topic]));
  const doc = parseDocument(text);
  const nodes = doc.get('nodes');
  if (!isSeq(nodes)) throw new DoraError(`${file}: \`nodes\` is not a list`, { code: ErrorCode.DESCRIPTOR });
  nodes.add(doc.createNode({ id, path: sibling('recorder-node'), env: { [RECORD_DIR_ENV]: dir, [RECORD_TOPICS_ENV]: JSON.stringify(wiring) }, inputs }));
  return parseDescriptor(String(doc), file, original.workingDir);
}

function unknownTopic(topic: string, known: readonly string[], file: string): never {
  throw new DoraError(`${file}: no output "${topic}" to record (outputs: ${known.join(', ')})`, { code: ErrorCode.USAGE });
}

export interface ReplayOptions {
  readonly speed: number;
  readonly loop: boolean;
  /** Nodes to replace; default every node all of whose outputs were recorded. */
  readonly replace?: readonly string[];
}

/** The recorded dataflow with players in the place of the replaced nodes. */
export function prepareReplay(dir: string, opts: ReplayOptions): ResolvedDataflow {
  const manifest = readManifest(dir);
  if (manifest.dataflowCopy === null) throw new DoraError(`${dir}: the recording has no copy of its dataflow file (the running dataflow did not name it): it cannot be replayed`, { code: ErrorCode.USAGE });
  const copy = path.join(dir, manifest.dataflowCopy);
  const text = fs.readFileSync(copy, 'utf8');
  const original = parseDescriptor(text, copy, manifest.workingDir);
  const recorded = new Set(manifest.topics.map((t) => t.topic));
  const replace =
    opts.replace ??
    original.nodes.filter((n) => n.outputs.length > 0 && n.outputs.every((o) => recorded.has(`${n.id}/${o}`))).map((n) => n.id);
  if (replace.length === 0) throw new DoraError(`${dir}: no node has all its outputs recorded: name the nodes to replace with --replace`, { code: ErrorCode.USAGE });
  for (const id of replace) {
    const n = original.nodes.find((x) => x.id === id);
    if (!n) throw new DoraError(`--replace: the recorded dataflow has no node "${id}" (nodes: ${original.nodes.map((x) => x.id).join(', ')})`, { code: ErrorCode.USAGE });
    if (!manifest.topics.some((t) => t.node === id)) throw new DoraError(`--replace: none of the outputs of node "${id}" was recorded (recorded: ${[...recorded].join(', ')})`, { code: ErrorCode.USAGE });
    if (n.operators) throw new DoraError(`--replace: node "${id}" is a node of operators, which a player cannot stand in for yet`, { code: ErrorCode.USAGE });
  }
  const doc = parseDocument(text);
  const nodes = doc.get('nodes');
  if (!isSeq(nodes)) throw new DoraError(`${copy}: \`nodes\` is not a list`, { code: ErrorCode.DESCRIPTOR });
  nodes.items.forEach((item, i) => {
    if (!isMap(item)) return;
    const id = String(item.get('id'));
    if (!replace.includes(id)) return;
    const spec = original.nodes.find((x) => x.id === id)!;
    const env = { [REPLAY_DIR_ENV]: dir, [REPLAY_SPEED_ENV]: String(opts.speed), [REPLAY_LOOP_ENV]: opts.loop ? '1' : '0' };
    nodes.items[i] = doc.createNode({ id, path: sibling('player-node'), outputs: [...spec.outputs], env, ...(spec.raw.output_types ? { output_types: spec.raw.output_types } : {}) });
  });
  return parseDescriptor(String(doc), copy, manifest.workingDir);
}

/**
 * Seeing inside a running dataflow: `dora topic list|echo|hz|info|pub` and `dora top`.
 * They find the dataflow in the runtime directory (runs.ts), so they work on `dora start`
 * and `dora run` alike; they read counters from the run's control endpoint
 * (coordinator/runcontrol.ts) and data through taps (tap.ts), which never slow a sender.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { EdgeMetrics, MetricsReply, NodeMetrics, TopicInfo, TopicsReply } from '../../coordinator/metrics';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import { Node } from '../../node-api/node';
import type { Event } from '../../node-api/events';
import { bytes, formatMessage, formatParameters, isoTime, plain, valueOrSummary } from './format';
import { findTarget, isCluster, requestTarget, type ClusterTarget, type Target } from './runs';
import { openTap } from './tap';
import { sampleRemote, watchRemote } from './watch';
import type * as arrow from 'apache-arrow';
import { droppedLine, messageLine } from '../record/wire';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive number`);
  return n;
}

/** `<dataflow> <node>/<output>`, or just the topic when one dataflow runs. */
async function dataflowAndTopic(first: string, second: string | undefined, what: string): Promise<{ run: Target; topic: string }> {
  const [ref, topic] = second === undefined ? [undefined, first] : [first, second];
  const slash = topic.indexOf('/');
  if (slash <= 0 || slash === topic.length - 1) throw new DoraError(`"${topic}" is not ${what}`, { code: ErrorCode.INVALID_ARGUMENT });
  return { run: await findTarget(ref), topic };
}

async function topics(run: Target): Promise<readonly TopicInfo[]> {
  return (await requestTarget<TopicsReply>(run, 'topics')).topics;
}

/** Runs echo or hz on the machine of the output's sender (a dataflow over several machines): its exit code becomes ours. */
async function remote(run: ClusterTarget, tool: 'echo' | 'hz', name: string, args: string[]): Promise<void> {
  findTopic(await topics(run), run, name);
  const code = await watchRemote(run, tool, name, args);
  if (code !== 0) process.exitCode = code;
}

function findTopic(all: readonly TopicInfo[], run: Target, name: string): TopicInfo {
  const topic = all.find((t) => t.name === name);
  if (!topic) throw new DoraError(`dataflow ${run.id} has no output "${name}" (outputs: ${all.map((t) => t.name).join(', ') || 'none'})`, { code: ErrorCode.INVALID_ARGUMENT });
  return topic;
}

/** Ends the tap when the process is told to stop (Ctrl-C), so its sender is told at once. */
function closeOnSignal(node: Node, last?: () => void): () => void {
  const stop = () => {
    last?.();
    void node.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return () => (process.off('SIGINT', stop), process.off('SIGTERM', stop));
}

/** Why a tap's stream ended, for the user; undefined for an input event. */
function ending(event: Event): string | undefined {
  if (event.type === 'INPUT') return undefined;
  if (event.type === 'INPUT_CLOSED') return `${event.id} closed (its node finished or exited)`;
  if (event.type === 'STOP') return `the dataflow is stopping (${event.cause})`;
  if (event.type === 'ERROR') return event.error;
  return '';
}

/**
 * Reads a tapped output until `until` says stop, the stream ends or `deadline` passes; each
 * input event is disposed right after `onInput` (its shared-memory sample goes back at once).
 */
async function readTap(node: Node, onInput: (event: Extract<Event, { type: 'INPUT' }>) => boolean | void, deadline = Infinity): Promise<string | undefined> {
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    const event = await node.next(Number.isFinite(left) ? left : undefined);
    if (!event) return Number.isFinite(deadline) && Date.now() >= deadline ? undefined : 'the stream ended';
    const why = ending(event);
    if (why === '') continue; // NODE_RESTARTED and the like: not for a tap
    if (why !== undefined) return why;
    if (event.type !== 'INPUT') continue;
    let more: boolean | void;
    try {
      more = onInput(event);
    } finally {
      event[Symbol.dispose]();
    }
    if (more === false) return undefined;
  }
}

function printTable(header: string[], rows: string[][], out: string[] = []): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) out.push(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  return out;
}

const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const us = (v: number | null) => (v === null ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(0)} ms` : v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${v} µs`);

export function registerObserveCommands(program: Command): void {
  const topic = program.command('topic').description('the outputs of a running dataflow: list, echo, hz, info, pub');

  topic
    .command('list')
    .description('list the outputs of a running dataflow with their type, readers and traffic')
    .argument('[dataflow]', 'id or name (default: the only running dataflow)')
    .option('--json', 'print JSON')
    .action(async (ref: string | undefined, opts: { json?: boolean }) => {
      const run = await findTarget(ref);
      const all = await topics(run);
      if (opts.json) return console.log(JSON.stringify(all, null, 2));
      const machines = all.some((t) => t.machine !== undefined);
      console.log(
        printTable(
          ['TOPIC', ...(machines ? ['MACHINE'] : []), 'TYPE', 'SUBSCRIBERS', 'MSG/S', 'BYTES/S'],
          all.map((t) => [t.name, ...(machines ? [t.machine ?? '-'] : []), t.type ?? '-', t.subscribers.join(', ') || '-', t.stale ? '?' : rate(t.messagesPerSec), t.stale ? '?' : `${bytes(t.bytesPerSec)}/s`]),
        )
          .concat(staleNotes(all))
          .join('\n'),
      );
    });

  topic
    .command('echo')
    .description('print the messages of an output as they are sent (large arrays summarised)')
    .argument('<dataflow>', 'id or name (may be left out when one dataflow runs)')
    .argument('[topic]', '<node>/<output>')
    .option('--count <n>', 'stop after n messages', positiveInt)
    .option('--json', 'one JSON object per message')
    // each message whole (its Arrow data as an IPC stream): what `dora record` across machines reads (cli/record/wire.ts)
    .addOption(new Option('--arrow').hideHelp())
    .action(async (first: string, second: string | undefined, opts: { count?: number; json?: boolean; arrow?: boolean }) => {
      const { run, topic: name } = await dataflowAndTopic(first, second, '<node>/<output>');
      if (isCluster(run)) return remote(run, 'echo', name, [...(opts.json ? ['--json'] : []), ...(opts.count !== undefined ? ['--count', String(opts.count)] : [])]);
      findTopic(await topics(run), run, name);
      const node = await openTap(run, name);
      let seen = 0;
      let dropped = 0;
      // --arrow: the tap's drop count goes out whenever it changes, and last when stopped (a recording's manifest counts it)
      const reportDrops = () => {
        const now = [...node.droppedMessages.values()].reduce((a, b) => a + b, 0);
        if (now !== dropped) console.log(droppedLine((dropped = now)));
      };
      const release = closeOnSignal(node, opts.arrow ? reportDrops : undefined);
      try {
        const why = await readTap(node, (event) => {
          const parameters = event.metadata.parameters;
          if (opts.arrow) {
            reportDrops();
            console.log(messageLine(event.metadata.timestamp, parameters, event.data));
          } else if (opts.json) {
            const shown = valueOrSummary(event.data, parameters);
            console.log(JSON.stringify({ topic: name, timestamp: event.metadata.timestamp.toString(), type: String(event.data.type), length: event.data.length, parameters: plain(parameters), ...shown }));
          } else {
            const p = formatParameters(parameters);
            console.log(`[${isoTime(event.metadata.timestamp)}] ${formatMessage(event.data, parameters)}${p ? `  ${p}` : ''}`);
          }
          return opts.count === undefined || ++seen < opts.count;
        });
        if (opts.arrow) reportDrops();
        if (why) process.stderr.write(`dora topic echo: ${why}\n`);
      } finally {
        release();
        await node.close();
      }
    });

  topic
    .command('hz')
    .description('measure the rate of an output: messages per second, and the min/max/std of the interval')
    .argument('<dataflow>', 'id or name (may be left out when one dataflow runs)')
    .argument('[topic]', '<node>/<output>')
    .option('--window <seconds>', 'statistics over the messages of the last this many seconds', positiveNumber, 5)
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)', positiveNumber)
    .option('--json', 'one JSON object per report')
    .action(async (first: string, second: string | undefined, opts: { window: number; duration?: number; json?: boolean }) => {
      const { run, topic: name } = await dataflowAndTopic(first, second, '<node>/<output>');
      if (isCluster(run)) {
        return remote(run, 'hz', name, [...(opts.json ? ['--json'] : []), '--window', String(opts.window), ...(opts.duration !== undefined ? ['--duration', String(opts.duration)] : [])]);
      }
      findTopic(await topics(run), run, name);
      const node = await openTap(run, name);
      const release = closeOnSignal(node);
      const arrivals: number[] = []; // ms, performance.now()
      const report = () => {
        const now = performance.now();
        while (arrivals.length > 0 && arrivals[0] < now - opts.window * 1000) arrivals.shift();
        const intervals = arrivals.slice(1).map((t, i) => (t - arrivals[i]) / 1000);
        if (intervals.length === 0) {
          if (opts.json) console.log(JSON.stringify({ topic: name, messages: arrivals.length, rate: 0 }));
          else console.log('no new messages');
          return;
        }
        const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
        const std = Math.sqrt(intervals.reduce((a, b) => a + (b - mean) ** 2, 0) / intervals.length);
        const stats = { topic: name, rate: 1 / mean, min: Math.min(...intervals), max: Math.max(...intervals), std, window: intervals.length + 1 };
        if (opts.json) console.log(JSON.stringify(stats));
        else console.log(`average rate: ${stats.rate.toFixed(3)} Hz\n\tmin: ${stats.min.toFixed(4)}s max: ${stats.max.toFixed(4)}s std dev: ${stats.std.toFixed(5)}s window: ${stats.window}`);
      };
      const timer = setInterval(report, 1000);
      try {
        const deadline = opts.duration !== undefined ? Date.now() + opts.duration * 1000 : Infinity;
        const why = await readTap(node, () => void arrivals.push(performance.now()), deadline);
        if (why) process.stderr.write(`dora topic hz: ${why}\n`);
      } finally {
        clearInterval(timer);
        release();
        await node.close();
      }
    });

  topic
    .command('info')
    .description("describe an output: its type, publisher, subscribers, rate and message sizes")
    .argument('<dataflow>', 'id or name (may be left out when one dataflow runs)')
    .argument('[topic]', '<node>/<output>')
    .option('--duration <seconds>', 'how long to sample messages for their type and sizes', positiveNumber, 1)
    .option('--json', 'print JSON')
    .action(async (first: string, second: string | undefined, opts: { duration: number; json?: boolean }) => {
      const { run, topic: name } = await dataflowAndTopic(first, second, '<node>/<output>');
      const info = findTopic(await topics(run), run, name);
      const sizes: number[] = [];
      const types = new Set<string>();
      let why: string | undefined;
      const sample = (data: arrow.Vector) => {
        sizes.push(byteLength(data));
        types.add(String(data.type));
      };
      // over several machines: sampled on the sender's machine (cli/observe/watch.ts)
      if (isCluster(run)) {
        if (!info.routed) why = await sampleRemote(run, name, opts.duration * 1000, sample);
      } else if (!info.routed) {
        const node = await openTap(run, name);
        const release = closeOnSignal(node);
        try {
          why = await readTap(node, (event) => sample(event.data), Date.now() + opts.duration * 1000);
        } finally {
          release();
          await node.close();
        }
      }
      const sampled = sizes.length > 0 ? { messages: sizes.length, minBytes: Math.min(...sizes), maxBytes: Math.max(...sizes), arrowTypes: [...types] } : { messages: 0 };
      const result = { ...info, meanBytes: info.messages > 0 ? info.bytes / info.messages : null, sampled };
      if (opts.json) return console.log(JSON.stringify(result, null, 2));
      const lines = [
        `topic:        ${name}`,
        `declared type: ${info.type ?? '(none declared)'}`,
        `arrow type:   ${sampled.messages > 0 ? [...types].join(', ') : `(no message within ${opts.duration} s${why ? `: ${why}` : ''})`}`,
        ...(info.machine !== undefined ? [`machine:      ${info.machine}${info.stale ? ` (${info.stale}: numbers unknown)` : ''}`] : []),
        `publisher:    ${info.node}${info.dynamic ? ' (dynamic node)' : ''}${info.routed ? ' (its printed lines or logs, sent by the daemon)' : ''}`,
        `subscribers:  ${info.subscribers.join(', ') || '(none)'}`,
        `taps:         ${info.taps}`,
        `rate:         ${rate(info.messagesPerSec)} msg/s, ${bytes(info.bytesPerSec)}/s`,
        `messages:     ${info.messages} sent, ${bytes(info.bytes)}${result.meanBytes !== null ? ` (mean ${bytes(result.meanBytes)})` : ''}`,
        ...(sampled.messages > 0 ? [`sizes:        ${bytes(sampled.minBytes!)} to ${bytes(sampled.maxBytes!)} over ${sampled.messages} sampled message(s)`] : []),
      ];
      console.log(lines.join('\n'));
    });

  topic
    .command('pub')
    .description('send values onto an input fed by a dynamic node (`path: dynamic`), as that node')
    .argument('<dataflow>', 'id or name')
    .argument('<input>', '<node>/<input>: an input whose source is an output of a `path: dynamic` node')
    .argument('<value>', 'JSON (42, 1.5, "text", [1,2,3], {"x":1}); anything else is sent as a string')
    .option('--rate <hz>', 'send this many times a second (with --count, or until Ctrl-C)', positiveNumber)
    .option('--count <n>', 'send n times (default 1, or until Ctrl-C with --rate)', positiveInt)
    .action(async (ref: string, input: string, text: string, opts: { rate?: number; count?: number }) => {
      const run = await findTarget(ref);
      const all = await topics(run);
      const source = all.find((t) => t.subscribers.includes(input));
      if (!source) {
        const inputs = all.flatMap((t) => t.subscribers);
        throw new DoraError(`dataflow ${run.id} has no input "${input}" fed by a node's output (inputs fed by nodes: ${inputs.join(', ') || 'none'})`, { code: ErrorCode.INVALID_ARGUMENT });
      }
      if (!source.dynamic) {
        const open = all.filter((t) => t.dynamic).flatMap((t) => t.subscribers);
        throw new DoraError(
          `input "${input}" is fed by ${source.name}, an output of node "${source.node}", which is not a dynamic node: dora topic pub sends only onto inputs fed by a \`path: dynamic\` node ` +
            `(declare one, e.g. {id: ${source.node}-pub, path: dynamic, outputs: [value]}, and map the input to it)${open.length > 0 ? `; inputs open to it here: ${open.join(', ')}` : ''}`,
          { code: ErrorCode.INVALID_ARGUMENT },
        );
      }
      if (isCluster(run)) {
        throw new DoraError(
          `dataflow ${run.id} runs on several machines: dora topic pub does not reach a dataflow over several machines yet (the dynamic node "${source.node}" that feeds ${input} is placed on machine ${source.machine})`,
          { code: ErrorCode.INVALID_ARGUMENT },
        );
      }
      const value = parseValue(text);
      const count = opts.count ?? (opts.rate !== undefined ? Infinity : 1);
      const node = new Node({ nodeId: source.node, dataflow: run.id });
      const release = closeOnSignal(node);
      try {
        const period = opts.rate !== undefined ? 1000 / opts.rate : 0;
        let start = 0; // when the first message went (the join comes before it)
        for (let i = 0; i < count; i++) {
          if (i > 0 && period > 0) await new Promise((r) => setTimeout(r, Math.max(0, start + i * period - performance.now())));
          await node.sendOutput(source.output, value);
          if (i === 0) start = performance.now();
        }
        process.stderr.write(`dora topic pub: sent ${count} message(s) on ${source.name} as dynamic node "${source.node}"\n`);
      } finally {
        release();
        await node.close();
      }
    });

  program
    .command('top')
    .description('live table of the nodes (CPU, memory, restarts, queues, drops) and edges (rates, latency) of a running dataflow')
    .argument('[dataflow]', 'id or name (default: the only running dataflow)')
    .option('--once', 'print one snapshot and exit')
    .option('--json', 'with --once: the snapshot as JSON (the `metrics` reply)')
    .option('--interval <seconds>', 'refresh period', positiveNumber, 1)
    .action(async (ref: string | undefined, opts: { once?: boolean; json?: boolean; interval: number }) => {
      const run = await findTarget(ref);
      if (opts.once) {
        const m = await requestTarget<MetricsReply>(run, 'metrics');
        console.log(opts.json ? JSON.stringify(m, null, 2) : renderTop(run, m).join('\n'));
        return;
      }
      if (opts.json) throw new DoraError('--json goes with --once (a live table is for a terminal)', { code: ErrorCode.INVALID_ARGUMENT });
      for (;;) {
        let m: MetricsReply;
        try {
          m = await requestTarget<MetricsReply>(run, 'metrics');
        } catch (err) {
          process.stdout.write(`\ndataflow ${run.id} is no longer running (${(err as Error).message})\n`);
          return;
        }
        process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${renderTop(run, m).join('\n')}\n`);
        await new Promise((r) => setTimeout(r, opts.interval * 1000));
      }
    });
}

export function renderTop(run: Pick<Target, 'id' | 'name'>, m: MetricsReply): string[] {
  const out = [`dataflow ${run.id}${run.name ? ` (${run.name})` : ''}  ${new Date(m.at).toISOString()}`, ''];
  const machines = m.nodes.some((n) => n.machine !== undefined);
  // a machine that did not answer: its numbers are unknown ('?'), not zero
  const known = (stale: string | undefined, text: string) => (stale ? '?' : text);
  printTable(
    ['NODE', ...(machines ? ['MACHINE'] : []), 'PID', 'STATUS', 'CPU%', 'RSS', 'RESTARTS', 'QUEUED', 'DROPPED', 'HELD'],
    m.nodes.map((n: NodeMetrics) => [
      n.id,
      ...(machines ? [n.machine ?? '-'] : []),
      n.pid === null ? '-' : String(n.pid),
      n.status,
      known(n.stale, n.cpuPercent === null ? '-' : n.cpuPercent.toFixed(1)),
      known(n.stale, n.rssBytes === null ? '-' : bytes(n.rssBytes)),
      String(n.restarts),
      known(n.stale, String(n.queueDepth)),
      known(n.stale, String(n.dropped)),
      known(n.stale, String(n.samplesHeld)),
    ]),
    out,
  );
  out.push('');
  printTable(
    ['EDGE', 'MSG/S', 'BYTES/S', 'P50', 'P99', 'QUEUED', 'DROPPED'],
    m.edges.map((e: EdgeMetrics) => [
      `${e.source} -> ${e.target}`,
      known(e.stale, rate(e.messagesPerSec)),
      known(e.stale, `${bytes(e.bytesPerSec)}/s`),
      known(e.stale, us(e.latencyP50Us)),
      known(e.stale, us(e.latencyP99Us)),
      known(e.stale, String(e.queueDepth)),
      known(e.stale, String(e.dropped)),
    ]),
    out,
  );
  out.push(...staleNotes([...m.nodes, ...m.edges]));
  return out;
}

/** One line per machine that did not answer, saying why its numbers are '?'. */
function staleNotes(items: readonly { stale?: string }[]): string[] {
  const reasons = [...new Set(items.flatMap((i) => (i.stale ? [i.stale] : [])))];
  return reasons.length > 0 ? ['', ...reasons.map((r) => `? ${r}`)] : [];
}

/** What `dora topic pub` sends for its argument: JSON as the node API converts it (a scalar becomes an array of one). */
export function parseValue(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text; // a bare word: a string
  }
  if (value === null) throw new DoraError('cannot send null: give a value (a number, a string, an array or an object)', { code: ErrorCode.INVALID_ARGUMENT });
  return Array.isArray(value) ? value : typeof value === 'string' ? value : [value];
}

/** The bytes of an Arrow vector's buffers (what went over the wire, about). */
function byteLength(v: { data: readonly { values?: { byteLength: number }; valueOffsets?: { byteLength: number }; nullBitmap?: { byteLength: number }; children?: readonly unknown[] }[] }): number {
  let n = 0;
  const visit = (d: { values?: { byteLength: number }; valueOffsets?: { byteLength: number }; nullBitmap?: { byteLength: number }; children?: readonly unknown[] }) => {
    n += (d.values?.byteLength ?? 0) + (d.valueOffsets?.byteLength ?? 0) + (d.nullBitmap?.byteLength ?? 0);
    for (const c of d.children ?? []) visit(c as typeof d);
  };
  for (const d of v.data) visit(d);
  return n;
}

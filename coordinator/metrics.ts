/**
 * What `dora top`, `dora topic` and the web view show of a running dataflow: the counters
 * each node's core reports once a second (`stats`, bindings/c/src/stats.c), turned into
 * rates per edge, and each node process's CPU and resident memory read from /proc.
 *
 * Nothing here runs unless someone looks: the reports are kept as they arrive (one object
 * per node), and /proc is read only while metrics are asked for (every SAMPLE_MS, stopping
 * IDLE_MS after the last request).
 */
import * as fs from 'node:fs';
import type { InputStats, OutputStats } from '../protocol/control';
import type { ResolvedDataflow } from './dataflow';
import type { NodeOutcome } from './daemon';

export const SAMPLE_MS = 1000;
const IDLE_MS = 10_000;
/** A node reports only when its counters change: no report for this long means no traffic. */
const STALE_MS = 2500;
/** Linux's USER_HZ: /proc/<pid>/stat times are in these ticks on every architecture. */
const CLOCK_TICKS = 100;
/** CPU % is measured over this long: ticks are 10 ms, so over 1 s a light node would read 0 or 1%. */
const CPU_WINDOW_MS = 5000;

export interface NodeMetrics {
  readonly id: string;
  readonly pid: number | null;
  readonly status: string;
  readonly cpuPercent: number | null;
  readonly rssBytes: number | null;
  readonly restarts: number;
  /** Shared-memory samples of its outputs some receiver holds now. */
  readonly samplesHeld: number;
  /** Over its inputs: messages waiting in its queues, and dropped by them since it started. */
  readonly queueDepth: number;
  readonly dropped: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  /** For a dataflow over several machines (cluster/observe.ts): the machine that measured this. */
  readonly machine?: string;
  /** That machine did not answer in time (why): the numbers here are unknown, not zero. */
  readonly stale?: string;
}

export interface EdgeMetrics {
  /** `node/output`, or a timer or log source (`dora/timer/millis/100`). */
  readonly source: string;
  /** `node/input`. */
  readonly target: string;
  readonly messagesPerSec: number;
  readonly bytesPerSec: number;
  readonly latencyP50Us: number | null;
  readonly latencyP99Us: number | null;
  readonly dropped: number;
  readonly queueDepth: number;
  /** Since the receiver started. */
  readonly messages: number;
  readonly bytes: number;
  /** For a dataflow over several machines (cluster/observe.ts): the machine that measured this. */
  readonly machine?: string;
  /** That machine did not answer in time (why): the numbers here are unknown, not zero. */
  readonly stale?: string;
}

export interface MetricsReply {
  readonly ok: true;
  /** When this snapshot was taken (epoch ms). */
  readonly at: number;
  readonly nodes: readonly NodeMetrics[];
  readonly edges: readonly EdgeMetrics[];
}

/** One `stats` report, as it arrived. */
interface Report {
  readonly at: number;
  readonly outputs: Readonly<Record<string, OutputStats>>;
  readonly inputs: Readonly<Record<string, InputStats>>;
}

interface Latency {
  readonly at: number;
  readonly p50: number;
  readonly p99: number;
}

interface NodeReports {
  pid?: number;
  last?: Report;
  previous?: Report;
  /** Per input, the last latencies reported (a report without new messages has none). */
  latency: Map<string, Latency>;
}

interface CpuSample {
  readonly pid: number;
  /** Earlier readings of the same process, oldest first, over the last CPU_WINDOW_MS. */
  readonly history: readonly { readonly at: number; readonly ticks: number }[];
  readonly rssBytes: number | null;
  readonly cpuPercent: number | null;
}

export class Metrics {
  private readonly reports = new Map<string, NodeReports>();
  private readonly cpu = new Map<string, CpuSample>();
  private timer?: NodeJS.Timeout;
  private lastAsked = 0;

  constructor(
    private readonly dataflow: ResolvedDataflow,
    private readonly outcomes: () => NodeOutcome[],
  ) {}

  /** A node's `stats` report. A new process starts its counters from zero: rates restart with it. */
  report(node: string, pid: number | undefined, outputs: Readonly<Record<string, OutputStats>>, inputs: Readonly<Record<string, InputStats>>): void {
    const r = this.reports.get(node) ?? { latency: new Map<string, Latency>() };
    const now = Date.now();
    if (r.pid !== pid) Object.assign(r, { pid, last: undefined, previous: undefined, latency: new Map() });
    r.previous = r.last;
    r.last = { at: now, outputs, inputs };
    for (const [input, s] of Object.entries(inputs)) {
      if (s.latencyCount && s.latencyP50Us !== undefined && s.latencyP99Us !== undefined) r.latency.set(input, { at: now, p50: s.latencyP50Us, p99: s.latencyP99Us });
    }
    this.reports.set(node, r);
  }

  /** The snapshot `metrics` answers with; keeps /proc sampled while it is asked for. */
  snapshot(): MetricsReply {
    const now = Date.now();
    this.lastAsked = now;
    if (!this.timer) {
      this.sampleCpu();
      this.timer = setInterval(() => {
        if (Date.now() - this.lastAsked > IDLE_MS) this.close();
        else this.sampleCpu();
      }, SAMPLE_MS);
      this.timer.unref();
    }
    const nodes = this.outcomes().map((n) => this.nodeMetrics(n));
    return { ok: true, at: now, nodes, edges: this.edges(now) };
  }

  /** Totals per output (`node/output`): messages and bytes sent, and the current rates. */
  outputTotals(): Map<string, { messages: number; bytes: number; messagesPerSec: number; bytesPerSec: number }> {
    const out = new Map<string, { messages: number; bytes: number; messagesPerSec: number; bytesPerSec: number }>();
    const now = Date.now();
    for (const [node, r] of this.reports) {
      for (const [output, s] of Object.entries(r.last?.outputs ?? {})) {
        const before = r.previous?.outputs[output];
        out.set(`${node}/${output}`, {
          messages: s.messages,
          bytes: s.bytes,
          messagesPerSec: rate(r, now, s.messages, before?.messages),
          bytesPerSec: rate(r, now, s.bytes, before?.bytes),
        });
      }
    }
    return out;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private nodeMetrics(n: NodeOutcome): NodeMetrics {
    const r = this.reports.get(n.id);
    const current = r && r.pid === n.pid ? r.last : undefined;
    const inputs = Object.values(current?.inputs ?? {});
    const outputs = Object.values(current?.outputs ?? {});
    const cpu = n.pid !== undefined ? this.cpu.get(n.id) : undefined;
    const sample = cpu && cpu.pid === n.pid ? cpu : undefined;
    return {
      id: n.id,
      pid: n.pid ?? null,
      status: n.status,
      cpuPercent: sample?.cpuPercent ?? null,
      rssBytes: sample?.rssBytes ?? null,
      restarts: n.restarts,
      samplesHeld: sum(outputs.map((o) => o.held)),
      queueDepth: sum(inputs.map((i) => i.queued)),
      dropped: sum(inputs.map((i) => i.dropped)),
      messagesSent: sum(outputs.map((o) => o.messages)),
      messagesReceived: sum(inputs.map((i) => i.messages)),
    };
  }

  private edges(now: number): EdgeMetrics[] {
    const edges: EdgeMetrics[] = [];
    for (const node of this.dataflow.nodes) {
      const r = this.reports.get(node.id);
      for (const input of node.inputs) {
        const source = input.source.kind === 'node' ? `${input.source.node}/${input.source.output}` : input.source.name;
        const s = r?.last?.inputs[input.id];
        const before = r?.previous?.inputs[input.id];
        const latency = r?.latency.get(input.id);
        const fresh = latency !== undefined && now - latency.at < STALE_MS;
        edges.push({
          source,
          target: `${node.id}/${input.id}`,
          messagesPerSec: r && s ? rate(r, now, s.messages, before?.messages) : 0,
          bytesPerSec: r && s ? rate(r, now, s.bytes, before?.bytes) : 0,
          latencyP50Us: fresh ? latency.p50 : null,
          latencyP99Us: fresh ? latency.p99 : null,
          dropped: s?.dropped ?? 0,
          queueDepth: s?.queued ?? 0,
          messages: s?.messages ?? 0,
          bytes: s?.bytes ?? 0,
        });
      }
    }
    return edges;
  }

  /** CPU (since the previous sample, or since the process started) and resident memory of every node process. */
  private sampleCpu(): void {
    const now = Date.now();
    for (const n of this.outcomes()) {
      if (n.pid === undefined) {
        this.cpu.delete(n.id);
        continue;
      }
      const stat = readStat(n.pid);
      if (!stat) continue;
      const previous = this.cpu.get(n.id);
      const history = previous && previous.pid === n.pid ? previous.history.filter((h, i, all) => now - h.at <= CPU_WINDOW_MS || now - (all[i + 1]?.at ?? now) < CPU_WINDOW_MS) : [];
      const oldest = history[0];
      let cpuPercent: number | null;
      // until the readings span a few seconds, the average over the process's life (10 ms ticks over 1 s say little)
      if (oldest && now - oldest.at >= CPU_WINDOW_MS / 2) cpuPercent = (((stat.ticks - oldest.ticks) / CLOCK_TICKS) * 1000 * 100) / (now - oldest.at);
      else cpuPercent = stat.lifetimeMs > 0 ? (((stat.ticks / CLOCK_TICKS) * 1000) * 100) / stat.lifetimeMs : null;
      this.cpu.set(n.id, {
        pid: n.pid,
        history: [...history, { at: now, ticks: stat.ticks }],
        rssBytes: readRss(n.pid),
        cpuPercent: cpuPercent === null ? null : Math.round(cpuPercent * 10) / 10,
      });
    }
  }
}

/** The rate of a counter between a node's last two reports; 0 once it has stopped reporting (nothing changed). */
function rate(r: NodeReports, now: number, value: number, before: number | undefined): number {
  if (!r.last || !r.previous || before === undefined || now - r.last.at > STALE_MS) return 0;
  const seconds = (r.last.at - r.previous.at) / 1000;
  return seconds > 0 ? Math.max(0, value - before) / seconds : 0;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

let bootTimeMs: number | undefined;
/** When the machine booted (epoch ms): process start times in /proc are relative to it. */
function bootTime(): number {
  if (bootTimeMs === undefined) {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('btime '));
    bootTimeMs = line ? Number(line.slice(6)) * 1000 : 0;
  }
  return bootTimeMs;
}

/** utime + stime (ticks) of a live process, and how long it has lived. */
function readStat(pid: number): { ticks: number; lifetimeMs: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
  const started = bootTime() + (Number(fields[19]) / CLOCK_TICKS) * 1000; // starttime (22)
  return { ticks, lifetimeMs: Math.max(0, Date.now() - started) };
}

function readRss(pid: number): number | null {
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.replace(/[^0-9]/g, '')) * 1024 : null;
  } catch {
    return null;
  }
}

/** An output of the dataflow, as `dora topic list` and `dora topic info` show it. */
export interface TopicInfo {
  /** `node/output`. */
  readonly name: string;
  readonly node: string;
  readonly output: string;
  /** Its node is a dynamic node (`path: dynamic`): `dora topic pub` can send on it as that node. */
  readonly dynamic: boolean;
  /** Its declared type (`output_types`), if any. */
  readonly type: string | null;
  /** `node/input` of every input reading it. */
  readonly subscribers: readonly string[];
  /** Carries the node's printed lines or log records (send_stdout_as/send_logs_as): sent by the daemon. */
  readonly routed: boolean;
  /** Tools reading it now (dora topic echo, ...). */
  readonly taps: number;
  readonly messages: number;
  readonly bytes: number;
  readonly messagesPerSec: number;
  readonly bytesPerSec: number;
  /** For a dataflow over several machines (cluster/observe.ts): the machine that measured this. */
  readonly machine?: string;
  /** That machine did not answer in time (why): the numbers here are unknown, not zero. */
  readonly stale?: string;
}

export interface TopicsReply {
  readonly ok: true;
  readonly at: number;
  readonly topics: readonly TopicInfo[];
}

/** Every output of the dataflow with its readers and traffic. */
export function describeTopics(
  dataflow: ResolvedDataflow,
  metrics: Metrics,
  taps: Map<string, number>,
  routed: (node: string) => readonly string[],
  typeOf: (node: string, output: string) => string | null,
): TopicsReply {
  const totals = metrics.outputTotals();
  const topics: TopicInfo[] = [];
  for (const node of dataflow.nodes) {
    for (const output of node.outputs) {
      const name = `${node.id}/${output}`;
      const subscribers = dataflow.nodes.flatMap((n) =>
        n.inputs.filter((i) => i.source.kind === 'node' && i.source.node === node.id && i.source.output === output).map((i) => `${n.id}/${i.id}`),
      );
      const t = totals.get(name);
      topics.push({
        name,
        node: node.id,
        output,
        dynamic: node.dynamic,
        type: typeOf(node.id, output),
        subscribers,
        routed: routed(node.id).includes(output),
        taps: taps.get(name) ?? 0,
        messages: t?.messages ?? 0,
        bytes: t?.bytes ?? 0,
        messagesPerSec: t?.messagesPerSec ?? 0,
        bytesPerSec: t?.bytesPerSec ?? 0,
      });
    }
  }
  return { ok: true, at: Date.now(), topics };
}

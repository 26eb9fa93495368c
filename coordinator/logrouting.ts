/**
 * What becomes of a node's printed lines and log records, in dora's order:
 *
 *   1. a printed line (stdout or stderr) goes out on its `send_stdout_as` output;
 *   2. `min_log_level` drops what is below it (printed lines rank lowest, as `stdout`);
 *   3. a record goes out on its `send_logs_as` output, as JSON;
 *   4. lines and records go to the `dora/logs…` inputs of the other nodes that ask for them;
 *   5. they are written to the node's log (and shown by `dora run`).
 *
 * Nodes bind their own data sockets, so the daemon cannot publish on a node's output.
 * Instead every input fed this way (a routed output, or `dora/logs…`) is wired to the
 * daemon's events socket under a topic of its own, `dora/route/<receiver>/<input>`, as
 * timers are: the receiving node core sees ordinary data messages (a utf8 array of one
 * string, increasing `seq`) and ends the input at the end-of-stream the daemon sends when
 * the routed output's node has finished for good. `dora/logs…` inputs never end by
 * themselves, like timers. Until the start barrier is passed (which waits for every such
 * subscription), messages are held, up to the receiving queue's size.
 *
 * Across machines (one part per machine, coordinator/cluster/): each part routes the lines
 * of its own nodes. A route whose receiver is on another machine is not published here:
 * its texts are batched (per route, at most its queue size per batch: the receiver's queue
 * would drop the oldest anyway) and relayed through the coordinator to the receiver's part,
 * which sends them on the route exactly as a local line (its own seq, timestamps, held
 * until its start); the end of the route follows the last batch the same way. Log outputs
 * are low-rate, and the coordinator keeps the order of what one part sends.
 */
import { LOG_LEVELS_OR_STDOUT, type LogLevelOrStdout, type ResolvedDataflow, type ResolvedInput, type ResolvedNode } from './dataflow';
import type { LogStore } from './logs';
import { encodeEndOfStream, encodeTextMessage } from '../protocol/text';

/** A record logged through the node API (node.log, Python logging). */
export interface LogRecord {
  readonly node: string;
  readonly level: Exclude<LogLevelOrStdout, 'stdout'>;
  readonly message: string;
  readonly target?: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** One log entry as receivers get it (dora's LogMessage fields). */
export interface LogEntry {
  readonly timestamp: string;
  readonly level: LogLevelOrStdout;
  readonly node_id: string;
  readonly message: string;
  readonly target: string | null;
  readonly fields: Readonly<Record<string, unknown>> | null;
}

/** An input the daemon feeds. */
interface Route {
  readonly receiver: string;
  readonly input: string;
  readonly topic: Buffer;
  /** Messages held until the start barrier is passed (at most `limit`, the oldest dropped). */
  held: Uint8Array[][] | undefined;
  readonly limit: number;
  seq: bigint;
  ended: boolean;
}

/** Topic of an input the daemon feeds; ids contain no '/', so no two inputs share one. */
export function routeTopic(receiver: string, input: string): string {
  return `dora/route/${receiver}/${input}\0`;
}

const rank = (level: LogLevelOrStdout) => LOG_LEVELS_OR_STDOUT.indexOf(level);

/** Whether an entry of `level` passes a filter at `min`: `stdout` passes everything; printed lines pass nothing else. */
export function passes(level: LogLevelOrStdout, min: LogLevelOrStdout): boolean {
  return min === 'stdout' || (level !== 'stdout' && rank(level) >= rank(min));
}

/** Where routed texts for receivers on other machines go (a part of a dataflow over several machines). */
export interface RemoteRoutes {
  readonly isLocal: (node: string) => boolean;
  /** Texts for one route of another machine's receiver, in order; `end`: the route ends after them. */
  readonly forward: (receiver: string, input: string, texts: string[], end: boolean) => void;
}

export class LogRouting {
  /** Texts for remote receivers, sent at the end of this turn of the event loop. */
  private readonly outgoing = new Map<Route, string[]>();
  private flushScheduled = false;
  private readonly routes = new Map<string, Route>();
  /** By sending node: routes fed by its `send_stdout_as` and `send_logs_as` outputs. */
  private readonly stdoutRoutes = new Map<string, Route[]>();
  private readonly recordRoutes = new Map<string, Route[]>();
  /** `dora/logs…` routes, with their filter. */
  private readonly logsRoutes: { route: Route; level: LogLevelOrStdout; node?: string }[] = [];
  private readonly nodes: Map<string, ResolvedNode>;
  private started = false;

  constructor(
    dataflow: ResolvedDataflow,
    private readonly store: LogStore,
    private readonly publish: (frames: Uint8Array[]) => void,
    private readonly now: () => bigint,
    private readonly remote?: RemoteRoutes,
  ) {
    this.nodes = new Map(dataflow.nodes.map((n) => [n.id, n]));
    for (const node of dataflow.nodes) {
      if (node.logging.maxLogBytes !== undefined) store.rotate(node.id, { maxBytes: node.logging.maxLogBytes, maxFiles: node.logging.maxRotatedFiles });
      for (const input of node.inputs) {
        const s = input.source;
        if (s.kind === 'logs') {
          this.logsRoutes.push({ route: this.add(node.id, input), level: s.level, ...(s.node !== undefined ? { node: s.node } : {}) });
        } else if (s.kind === 'node') {
          const logging = this.nodes.get(s.node)!.logging;
          if (s.output !== logging.sendStdoutAs && s.output !== logging.sendLogsAs) continue;
          const route = this.add(node.id, input);
          if (s.output === logging.sendStdoutAs) push(this.stdoutRoutes, s.node, route);
          if (s.output === logging.sendLogsAs) push(this.recordRoutes, s.node, route);
        }
      }
    }
  }

  private add(receiver: string, input: ResolvedInput): Route {
    const topic = routeTopic(receiver, input.id);
    const route: Route = { receiver, input: input.id, topic: Buffer.from(topic), held: [], limit: input.queueSize, seq: 0n, ended: false };
    this.routes.set(topic, route);
    return route;
  }

  /** The topic of a receiver's input when the daemon feeds it, else undefined. */
  topicOf(receiver: string, input: string): string | undefined {
    const topic = routeTopic(receiver, input);
    return this.routes.has(topic) ? topic : undefined;
  }

  /** Topics of the inputs of `receiver` that the daemon feeds (each awaits its subscription at the barrier). */
  topicsOf(receiver: string): string[] {
    return [...this.routes.values()].filter((r) => r.receiver === receiver).map((r) => r.topic.toString('utf8'));
  }

  /** Outputs of `node` that only the daemon sends on (its send_stdout_as and send_logs_as). */
  routedOutputs(node: ResolvedNode): string[] {
    return [node.logging.sendStdoutAs, node.logging.sendLogsAs].filter((o): o is string => o !== undefined);
  }

  /** The start barrier is passed: every receiver has subscribed; what was held goes out. */
  start(): void {
    this.started = true;
    for (const route of this.routes.values()) {
      for (const frames of route.held ?? []) this.publish(frames);
      route.held = undefined;
    }
  }

  /** A line the node printed. */
  printed(node: string, stream: 'stdout' | 'stderr', line: string): void {
    const routes = this.stdoutRoutes.get(node);
    if (routes) for (const route of routes) this.send(route, line);
    if (!passes('stdout', this.nodes.get(node)?.logging.minLevel ?? 'stdout')) {
      if (stream === 'stderr') this.store.remember(node, line); // crash reports still show it
      return;
    }
    const time = new Date().toISOString();
    this.toLogInputs({ timestamp: time, level: 'stdout', node_id: node, message: line, target: null, fields: null });
    this.store.append({ node, stream, line, time });
  }

  /** A record the node logged through the node API. */
  record(record: LogRecord): void {
    if (!passes(record.level, this.nodes.get(record.node)?.logging.minLevel ?? 'stdout')) return;
    const entry: LogEntry = {
      timestamp: new Date().toISOString(),
      level: record.level,
      node_id: record.node,
      message: record.message,
      target: record.target ?? null,
      fields: record.fields ?? null,
    };
    const json = JSON.stringify(entry);
    for (const route of this.recordRoutes.get(record.node) ?? []) this.send(route, json);
    this.toLogInputs(entry, json);
    const fields = record.fields ? ' ' + Object.entries(record.fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
    this.store.append({ node: record.node, stream: 'log', line: `[${record.level}]${record.target ? ` ${record.target}:` : ''} ${record.message}${fields}`, time: entry.timestamp });
  }

  private toLogInputs(entry: LogEntry, json?: string): void {
    for (const { route, level, node } of this.logsRoutes) {
      if (route.receiver === entry.node_id || (node !== undefined && node !== entry.node_id) || !passes(entry.level, level)) continue;
      json ??= JSON.stringify(entry);
      this.send(route, json);
    }
  }

  /**
   * `node` has finished for good: the inputs fed by its routed outputs end (on other
   * machines after what was relayed to them). For a node of another machine (its machine was
   * lost), only this machine's routes.
   */
  finished(node: string): void {
    const routes = new Set([...(this.stdoutRoutes.get(node) ?? []), ...(this.recordRoutes.get(node) ?? [])]);
    const here = !this.remote || this.remote.isLocal(node);
    for (const route of routes) {
      if (route.ended) continue;
      if (this.remote && !this.remote.isLocal(route.receiver)) {
        if (!here) continue;
        route.ended = true;
        this.flush(route, true);
        continue;
      }
      route.ended = true;
      this.deliver(route, [route.topic, encodeEndOfStream(this.now())]);
    }
  }

  /** Texts relayed from another machine for a receiver of this one (`end`: its route ends after them). */
  relayed(receiver: string, input: string, texts: readonly string[], end: boolean): void {
    const route = this.routes.get(routeTopic(receiver, input));
    if (!route) return;
    for (const text of texts) this.send(route, text);
    if (end && !route.ended) {
      route.ended = true;
      this.deliver(route, [route.topic, encodeEndOfStream(this.now())]);
    }
  }

  private send(route: Route, text: string): void {
    if (route.ended) return;
    if (this.remote && !this.remote.isLocal(route.receiver)) return this.relay(route, text);
    const [header, payload] = encodeTextMessage(this.now(), route.seq++, text);
    this.deliver(route, [route.topic, header, payload]);
  }

  /** Batches a text for a receiver on another machine: at most its queue size per batch, the oldest dropped. */
  private relay(route: Route, text: string): void {
    let batch = this.outgoing.get(route);
    if (!batch) this.outgoing.set(route, (batch = []));
    batch.push(text);
    if (batch.length > route.limit) batch.shift();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        for (const r of [...this.outgoing.keys()]) this.flush(r, false);
      });
    }
  }

  private flush(route: Route, end: boolean): void {
    const batch = this.outgoing.get(route);
    this.outgoing.delete(route);
    if (!batch && !end) return;
    this.remote!.forward(route.receiver, route.input, batch ?? [], end);
  }

  private deliver(route: Route, frames: Uint8Array[]): void {
    if (this.started) return this.publish(frames);
    route.held!.push(frames);
    // the receiver's queue would drop the oldest anyway; the end of stream is never dropped
    if (route.held!.length > route.limit + 1) route.held!.splice(0, 1);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Taps, the daemon's side: a tool that is not a node of the dataflow (`dora topic echo`,
 * `dora topic hz`, the web view) reads one output of a running node. It joins like a
 * dynamic node (coordinator/dynamic.ts, docs/protocol.md 6.2): `tap` gives it a
 * configuration with one input and a small queue under the id `dora/tap/<n>` (a `/`, so no
 * node of a descriptor has it), it registers, the sender is told `node-restarted` naming
 * the output it reads and counts it as a holder of that output's samples, answers
 * `restart-seen`, and only then is the tap started. When it leaves (`closing`, or its
 * process ends) the sender is told `peer-exited` and releases what it held.
 */
import { PROTOCOL_VERSION, outputTopic, type NodeConfig } from '../protocol/config';
import type { DaemonEvent } from '../protocol/control';
import { ProcessWatch, joinedProcess, type JoinedProcess } from './dynamic';

/** A tap's node id starts with this: never a descriptor's node id (ids have no `/`). */
export const TAP_PREFIX = 'dora/tap/';
/** A tap's queue: small, so a tap that cannot keep up drops (and returns samples) at once. */
export const TAP_QUEUE_SIZE = 4;

interface Tap {
  readonly id: string;
  readonly node: string;
  readonly output: string;
  joined?: JoinedProcess;
  ready: boolean;
  subscribed: boolean;
  /** The sender has said it counts the tap as a holder. */
  seen: boolean;
  started: boolean;
  /** Events for the tap before its event subscription arrived. */
  pending: DaemonEvent[];
}

/** What the daemon does for its taps. */
export interface TapHost {
  /** Why `node/output` cannot be tapped now, if it cannot. */
  refusal(node: string, output: string): string | undefined;
  /** Publishes an event to a node of the dataflow (the tapped sender). */
  publishToNode(node: string, event: DaemonEvent): void;
  /** Publishes an event on a tap's event topic (it has subscribed). */
  publishToTap(id: string, event: DaemonEvent): void;
  /** Whether the node's current process runs (a tap of a finished sender is told its input closed). */
  running(node: string): boolean;
}

export class Taps {
  private readonly taps = new Map<string, Tap>();
  private next = 1;
  private readonly watch = new ProcessWatch<string>((id) => this.leave(id));

  constructor(private readonly host: TapHost) {}

  static isTap(id: string): boolean {
    return id.startsWith(TAP_PREFIX);
  }

  /** A new tap of `source` (`node/output`): its id, or why not. */
  create(source: string): { id: string; node: string; output: string } | { error: string } {
    const slash = source.indexOf('/');
    if (slash <= 0 || slash === source.length - 1) return { error: `"${source}" is not <node>/<output>` };
    const node = source.slice(0, slash);
    const output = source.slice(slash + 1);
    const refusal = this.host.refusal(node, output);
    if (refusal) return { error: refusal };
    const id = `${TAP_PREFIX}${this.next++}`;
    this.taps.set(id, { id, node, output, ready: false, subscribed: false, seen: false, started: false, pending: [] });
    return { id, node, output };
  }

  has(id: string): boolean {
    return this.taps.has(id);
  }

  /** The tap's process registered: its sender is told to count it as a holder. */
  register(id: string, pid: number): string | undefined {
    const tap = this.taps.get(id);
    if (!tap) return `no tap ${id}: ask for a new one`;
    if (tap.joined) return `tap ${id} has registered already`;
    tap.joined = joinedProcess(pid);
    this.watch.add(id, tap.joined);
    if (!this.host.running(tap.node)) {
      this.publish(tap, { t: 'inputs-closed', inputs: [`${tap.node}/${tap.output}`], reason: 'its sender has finished' });
      tap.seen = true;
    } else {
      this.host.publishToNode(tap.node, { t: 'node-restarted', node: id, first: true, outputs: [tap.output] });
    }
    return undefined;
  }

  ready(id: string): void {
    const tap = this.taps.get(id);
    if (tap) (tap.ready = true), this.maybeStart(tap);
  }

  /** The sender counts the tap as a holder (`restart-seen` from `sender` for `peer`). */
  seen(sender: string, peer: string): void {
    const tap = this.taps.get(peer);
    if (tap && tap.node === sender) (tap.seen = true), this.maybeStart(tap);
  }

  subscribed(id: string): void {
    const tap = this.taps.get(id);
    if (!tap) return;
    tap.subscribed = true;
    for (const event of tap.pending.splice(0)) this.host.publishToTap(id, event);
    this.maybeStart(tap);
  }

  /** The tap left (`closing`, or its process ended): the sender releases what it held. */
  leave(id: string): void {
    const tap = this.taps.get(id);
    if (!tap) return;
    this.taps.delete(id);
    this.watch.remove(id);
    if (tap.joined && this.host.running(tap.node)) this.host.publishToNode(tap.node, { t: 'peer-exited', node: id });
  }

  /**
   * The tapped node's process ended (to be restarted or for good): a later process does not
   * know the taps of this one, so their inputs end (a tool may tap the new process).
   */
  senderExited(node: string): void {
    for (const tap of this.taps.values()) {
      if (tap.node === node) this.publish(tap, { t: 'inputs-closed', inputs: [`${tap.node}/${tap.output}`], reason: `node ${node} exited` });
    }
  }

  /** The taps of each output, as `node/output` → count (for `dora topic info`). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const tap of this.taps.values()) out.set(`${tap.node}/${tap.output}`, (out.get(`${tap.node}/${tap.output}`) ?? 0) + 1);
    return out;
  }

  close(): void {
    this.watch.close();
    this.taps.clear();
  }

  private publish(tap: Tap, event: DaemonEvent): void {
    if (tap.subscribed) this.host.publishToTap(tap.id, event);
    else tap.pending.push(event);
  }

  private maybeStart(tap: Tap): void {
    if (tap.started || !tap.ready || !tap.subscribed || !tap.seen) return;
    tap.started = true;
    this.publish(tap, { t: 'start' });
  }
}

/** What a tap's configuration takes from its run. */
export interface TapRun {
  readonly dataflowId: string;
  readonly daemonStartTime: string | null;
  readonly daemonRequests: string;
  readonly daemonEvents: string;
  /** The tapped node's data and drop-token endpoints. */
  readonly senderData: string;
  readonly senderDrops: string;
  readonly sharedMemoryThreshold: number;
  readonly segmentPrefix: string;
  readonly descriptorFile: string;
}

/**
 * A tap's node configuration (docs/protocol.md 6.2): a dynamic node without outputs, with
 * one input reading `source` through a small queue. `restartable: false`: the sender's end
 * of stream closes it (a tool has nothing to wait for).
 */
export function tapNodeConfig(tap: { id: string; node: string; output: string }, source: string, run: TapRun): NodeConfig {
  return {
    protocolVersion: PROTOCOL_VERSION,
    dataflowId: run.dataflowId,
    nodeId: tap.id,
    daemonPid: process.pid,
    daemonStartTime: run.daemonStartTime,
    dynamic: true,
    daemonRequests: run.daemonRequests,
    daemonEvents: run.daemonEvents,
    dataEndpoint: null,
    dropEndpoint: null,
    sharedMemoryThreshold: run.sharedMemoryThreshold,
    segmentPrefix: run.segmentPrefix,
    outputs: [],
    subscribers: {},
    inputs: [
      {
        id: source,
        queueSize: TAP_QUEUE_SIZE,
        endpoint: run.senderData,
        topic: outputTopic(tap.node, tap.output),
        source,
        dropEndpoint: run.senderDrops,
        timeoutMs: 0,
        restartable: false,
      },
    ],
    nodeDescriptor: { id: tap.id },
    dataflowDescriptorFile: run.descriptorFile,
    restartCount: 0,
    outputTypes: {},
    healthCheckTimeoutMs: 0,
    remote: null,
  };
}

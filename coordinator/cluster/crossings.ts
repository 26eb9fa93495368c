/**
 * The edges of a dataflow that cross machines, as one machine's part sees them: which of
 * its outputs other machines receive (it exports them), which outputs of other machines its
 * nodes receive (it imports them). Pure functions of the dataflow and its placement.
 */
import { outputTopic } from '../../protocol/config';
import type { ResolvedDataflow, ResolvedInput } from '../dataflow';
import type { Placement } from '../placement';

export interface Export {
  readonly sender: string;
  /** Nodes on other machines that receive the topic (the sender's barrier counts each). */
  readonly receivers: number;
  /** The machines they are on (each subscribes once to the export socket). */
  readonly machines: ReadonlySet<string>;
}

/**
 * Whether an input is fed by another node's data socket: not by a routed output
 * (send_stdout_as, send_logs_as), whose lines the daemons relay (logrouting.ts).
 */
function fromData(dataflow: ResolvedDataflow, input: ResolvedInput): input is ResolvedInput & { readonly source: { readonly kind: 'node' } } {
  const source = input.source;
  if (source.kind !== 'node') return false;
  const logging = dataflow.nodes.find((n) => n.id === source.node)?.logging;
  return source.output !== logging?.sendStdoutAs && source.output !== logging?.sendLogsAs;
}

/** Topics of `machine`'s outputs that nodes elsewhere receive. */
export function exportsOf(dataflow: ResolvedDataflow, placement: Placement, machine: string): Map<string, Export> {
  const topics = new Map<string, { sender: string; receivers: number; machines: Set<string> }>();
  for (const receiver of dataflow.nodes) {
    const there = placement.get(receiver.id)!;
    if (there === machine) continue;
    const seen = new Set<string>();
    for (const input of receiver.inputs) {
      if (!fromData(dataflow, input) || placement.get(input.source.node) !== machine) continue;
      const topic = outputTopic(input.source.node, input.source.output);
      if (seen.has(topic)) continue;
      seen.add(topic);
      const entry = topics.get(topic) ?? { sender: input.source.node, receivers: 0, machines: new Set<string>() };
      entry.receivers++;
      entry.machines.add(there);
      topics.set(topic, entry);
    }
  }
  return topics;
}

/** Topics that `machine`'s nodes receive from other machines, by sending machine. */
export function importsOf(dataflow: ResolvedDataflow, placement: Placement, machine: string): Map<string, Set<string>> {
  const byMachine = new Map<string, Set<string>>();
  for (const receiver of dataflow.nodes) {
    if (placement.get(receiver.id) !== machine) continue;
    for (const input of receiver.inputs) {
      if (!fromData(dataflow, input)) continue;
      const from = placement.get(input.source.node)!;
      if (from === machine) continue;
      const topics = byMachine.get(from) ?? new Set<string>();
      topics.add(outputTopic(input.source.node, input.source.output));
      byMachine.set(from, topics);
    }
  }
  return byMachine;
}

/** Whether a node has receivers on other machines (its payloads then go inline: a handle never leaves its machine). */
export function sendsAcross(dataflow: ResolvedDataflow, placement: Placement, node: string): boolean {
  const machine = placement.get(node);
  return dataflow.nodes.some((n) => placement.get(n.id) !== machine && n.inputs.some((i) => fromData(dataflow, i) && i.source.node === node));
}

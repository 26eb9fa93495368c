/**
 * The edges of a dataflow that cross machines, as one machine's part sees them: which of
 * its senders have receivers on other machines (each binds a TCP data socket for them, on
 * a port its daemon reserves), and who those receivers are. Pure functions of the dataflow
 * and its placement.
 */
import type { ResolvedDataflow } from '../dataflow';
import type { Placement } from '../placement';

/** Per output of `sender`, the nodes on other machines than the sender's that receive it. */
export function remoteReceivers(dataflow: ResolvedDataflow, placement: Placement, sender: string): Record<string, string[]> {
  const machine = placement.get(sender);
  const byOutput: Record<string, string[]> = {};
  for (const receiver of dataflow.nodes) {
    if (placement.get(receiver.id) === machine) continue;
    for (const input of receiver.inputs) {
      if (input.source.kind !== 'node' || input.source.node !== sender) continue;
      const list = (byOutput[input.source.output] ??= []);
      if (!list.includes(receiver.id)) list.push(receiver.id);
    }
  }
  return byOutput;
}

/** The nodes of `machine` that have receivers on other machines. */
export function crossingSenders(dataflow: ResolvedDataflow, placement: Placement, machine: string): string[] {
  return dataflow.nodes.filter((n) => placement.get(n.id) === machine && Object.keys(remoteReceivers(dataflow, placement, n.id)).length > 0).map((n) => n.id);
}

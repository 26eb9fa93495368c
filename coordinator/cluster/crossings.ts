/**
 * The edges of a dataflow that cross machines: which receivers of a sender's outputs are
 * on other machines (the sender binds a TCP data socket for them, on a port its daemon
 * reserves). A pure function of the dataflow and its placement.
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

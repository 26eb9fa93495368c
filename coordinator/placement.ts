/**
 * Placement: which machine's daemon runs each node of a dataflow, from its `deploy`
 * (`machine`, `labels`) and the daemons connected now. Checked before anything starts:
 * a machine that is not connected, or labels no daemon has, is reported at the place the
 * descriptor names it, like any descriptor error.
 */
import type { ResolvedDataflow } from './dataflow';
import { DescriptorError, type DescriptorIssue } from './errors';

/** A connected daemon, as placement sees it. */
export interface MachineInfo {
  readonly machine: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Machine id of each node. */
export type Placement = ReadonlyMap<string, string>;

/**
 * Places every node: its `deploy.machine`, else the first daemon (by machine id) with all of
 * its `deploy.labels`, else `local` (the coordinator's own daemon). Throws DescriptorError
 * naming every node that cannot be placed.
 */
export function place(dataflow: ResolvedDataflow, machines: readonly MachineInfo[], local: string): Placement {
  const issues: DescriptorIssue[] = [];
  const placement = new Map<string, string>();
  const byId = new Map(machines.map((m) => [m.machine, m]));
  const connected = () => machines.map((m) => m.machine).sort().join(', ');
  for (const node of dataflow.nodes) {
    const deploy = node.deploy;
    const wanted = Object.entries(deploy?.labels ?? {});
    const fits = (m: MachineInfo) => wanted.every(([k, v]) => m.labels[k] === v);
    if (deploy?.machine !== undefined) {
      const m = byId.get(deploy.machine);
      if (!m) {
        issues.push({
          file: dataflow.file,
          position: deploy.machineAt,
          path: '',
          node: node.id,
          message: `\`deploy.machine\` "${deploy.machine}" is not connected to the coordinator`,
          hint: `connected machines: ${connected()}; start \`dora daemon --machine-id ${deploy.machine} --coordinator-addr <host>\` there`,
        });
        continue;
      }
      if (!fits(m)) {
        issues.push({
          file: dataflow.file,
          position: deploy.labelsAt,
          path: '',
          node: node.id,
          message: `machine "${m.machine}" does not have the labels \`deploy.labels\` asks for (${labelText(wanted)}; it has ${labelText(Object.entries(m.labels)) || 'none'})`,
        });
        continue;
      }
      placement.set(node.id, m.machine);
    } else if (wanted.length > 0) {
      const m = [...machines].sort((a, b) => a.machine.localeCompare(b.machine)).find(fits);
      if (!m) {
        issues.push({
          file: dataflow.file,
          position: deploy?.labelsAt,
          path: '',
          node: node.id,
          message: `no connected machine has the labels \`deploy.labels\` asks for (${labelText(wanted)})`,
          hint: `connected machines: ${machines.map((x) => `${x.machine} (${labelText(Object.entries(x.labels)) || 'no labels'})`).join(', ')}`,
        });
        continue;
      }
      placement.set(node.id, m.machine);
    } else placement.set(node.id, local);
  }
  if (issues.length > 0) throw new DescriptorError(dataflow.file, issues);
  return placement;
}

/** Whether every node runs on the coordinator's own machine (then the dataflow runs as on one machine). */
export function allLocal(placement: Placement, local: string): boolean {
  return [...placement.values()].every((m) => m === local);
}

function labelText(entries: readonly [string, string][]): string {
  return entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

/** Parses `--labels k=v,k2=v2`. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',').filter((p) => p.trim().length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`label "${part}" is not key=value`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}

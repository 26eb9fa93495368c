/**
 * The shared-memory segments of a dataflow, from the daemon's side: it names their
 * prefix for every node, and removes whatever is left of them when the run ends
 * (also what crashed nodes left). Nodes create and map segments in the node core.
 */
import * as fs from 'node:fs';
import { SEGMENT_PREFIX } from '../protocol/facts';

/** Prefix of every segment this project creates: `/dev/shm/dora-ts-<dataflow>-<random>` (protocol/facts.json). */
export { SEGMENT_PREFIX };

/** Removes every segment of a dataflow; returns the names removed. */
export function unlinkDataflowSegments(dataflowId: string): string[] {
  const prefix = `${SEGMENT_PREFIX}${dataflowId}-`;
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/dev/shm');
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    try {
      fs.unlinkSync(`/dev/shm/${entry}`);
      removed.push(entry);
    } catch {
      // already gone
    }
  }
  return removed;
}

/**
 * One message as one line of text, whole: what `dora record` of a dataflow over several
 * machines receives from the tap on the sender's machine (`dora topic echo --arrow` there,
 * relayed by coordinator/cluster/watch.ts). The data go as an Arrow IPC stream (base64), so
 * the recording holds the same Arrow array a local tap would have read; parameters as the
 * recording stores them (parametersToJson).
 */
import * as arrow from 'apache-arrow';
import type { Parameters } from '../../protocol';
import { parametersFromJson, parametersToJson } from './format';

/** A line: a message, or the tap's count of messages its queue dropped so far. */
export type WireLine = { readonly timestamp: bigint; readonly parameters: Parameters; readonly data: arrow.Data } | { readonly dropped: number };

export function messageLine(timestamp: bigint, parameters: Parameters, data: arrow.Vector): string {
  const ipc = arrow.tableToIPC(new arrow.Table({ data }), 'stream');
  return JSON.stringify({ timestamp: timestamp.toString(), parameters: parametersToJson(parameters), arrow: Buffer.from(ipc).toString('base64') });
}

export const droppedLine = (dropped: number) => JSON.stringify({ dropped });

/** The line's message or drop count; undefined for a line that is neither (a tool's notice). */
export function parseWireLine(line: string): WireLine | undefined {
  let value: { timestamp?: unknown; parameters?: unknown; arrow?: unknown; dropped?: unknown };
  try {
    value = JSON.parse(line) as typeof value;
  } catch {
    return undefined;
  }
  if (typeof value.dropped === 'number') return { dropped: value.dropped };
  if (typeof value.timestamp !== 'string' || typeof value.parameters !== 'string' || typeof value.arrow !== 'string') return undefined;
  const column = arrow.tableFromIPC(Buffer.from(value.arrow, 'base64')).getChild('data');
  if (!column) return undefined;
  const data = column.data.length === 1 ? column.data[0] : arrow.vectorFromArray([...column], column.type).data[0];
  return { timestamp: BigInt(value.timestamp), parameters: parametersFromJson(value.parameters), data };
}

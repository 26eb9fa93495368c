/**
 * A tap: this process reads one output of a running node through the node core, as a
 * node not in the descriptor (docs/protocol.md 6.2). The daemon gives the configuration;
 * the core does the rest (holding and returning shared-memory samples, dropping when the
 * small queue is full, leaving on close or exit).
 */
import * as zmq from 'zeromq';
import { Node } from '../../node-api/node';
import { PROTOCOL_VERSION, type NodeConfig } from '../../protocol/config';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import type { LiveRun } from './runs';

const ANSWER_MS = 5000;

/** Asks the run's daemon for a tap of `source` (`node/output`): its configuration. */
export async function tapConfig(run: LiveRun, source: string): Promise<NodeConfig> {
  const socket = new zmq.Dealer({ linger: 0, receiveTimeout: ANSWER_MS });
  try {
    socket.connect(run.requests);
    await socket.send(JSON.stringify({ t: 'tap', source, version: PROTOCOL_VERSION }));
    let frame: Buffer;
    try {
      [frame] = await socket.receive();
    } catch {
      throw new DoraError(`the daemon of dataflow ${run.id} did not answer within ${ANSWER_MS / 1000} s`, { code: ErrorCode.TIMEOUT });
    }
    const answer = JSON.parse(frame.toString('utf8')) as { t?: string; message?: string } & NodeConfig;
    if (answer.t === 'error') throw new DoraError(`cannot read ${source}: ${answer.message}`, { code: ErrorCode.INVALID_ARGUMENT });
    return answer;
  } finally {
    socket.close();
  }
}

/** Opens a tap of `source` as a node (close it to leave; exiting leaves too). */
export async function openTap(run: LiveRun, source: string): Promise<Node> {
  const config = await tapConfig(run, source);
  return new Node({ config }); // joins in the background: its first next() waits for the start
}

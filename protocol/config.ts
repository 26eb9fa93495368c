/**
 * What the daemon tells a node when it spawns it: everything the node needs to
 * join the dataflow, as JSON in the `DORA_NODE_CONFIG` environment variable
 * (dora's variable name). Its fields are described once, in protocol/facts.json,
 * from which the TypeScript interface, the C library's keys and docs/protocol.md's
 * table are generated.
 */

import { DoraError } from './errors';
import { ErrorCode, EVENTS_TOPIC_PREFIX } from './facts';

// The version, the variable's name and the configuration's fields are protocol facts
// (protocol/facts.json), generated into ./facts.
export { NODE_CONFIG_ENV, PROTOCOL_VERSION, type InputWiring, type NodeConfig } from './facts';

/** Topic of messages a node publishes on `output`; the trailing NUL stops prefix matches (`a/x` vs `a/xy`). */
export function outputTopic(node: string, output: string): string {
  return `${node}/${output}\0`;
}

/** Topic of the daemon's control events addressed to one node. */
export function eventTopic(node: string): string {
  return `${EVENTS_TOPIC_PREFIX}${node}\0`;
}

/** Topic of a built-in timer's ticks (node ids cannot be `dora`, so no clash with outputs). */
export function timerTopic(timerName: string): string {
  return `${timerName}\0`;
}

/** Longest path a unix socket address holds on Linux (`sun_path` is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/**
 * ZeroMQ endpoints for one dataflow: unix sockets in its folder `dir`, which only its
 * user can enter (abstract-namespace addresses have no permissions: any local user could
 * connect to them). A node is named by its index in `nodes`, which keeps the paths short
 * whatever its id. Throws when the longest path would not fit a socket address.
 */
export function endpoints(dir: string, nodes: readonly string[]) {
  const index = new Map(nodes.map((id, i) => [id, i]));
  const of = (node: string) => {
    const i = index.get(node);
    if (i === undefined) throw new DoraError(`no node "${node}" in this dataflow`, { code: ErrorCode.INVALID_ARGUMENT });
    return i;
  };
  const longest = `${dir}/${Math.max(nodes.length - 1, 0)}.drops`;
  if (Buffer.byteLength(longest) > MAX_SOCKET_PATH) {
    throw new DoraError(
      `the dataflow's socket paths, such as ${longest}, are longer than the ${MAX_SOCKET_PATH} bytes a unix socket address holds; set DORA_RUNTIME_DIR to a shorter directory`,
      { code: ErrorCode.SYSTEM },
    );
  }
  return {
    daemonRequests: `ipc://${dir}/daemon`,
    daemonEvents: `ipc://${dir}/events`,
    nodeData: (node: string) => `ipc://${dir}/${of(node)}.data`,
    nodeDrops: (node: string) => `ipc://${dir}/${of(node)}.drops`,
  };
}

/**
 * What the daemon tells a node when it spawns it: everything the node needs to
 * join the dataflow, as JSON in the `DORA_NODE_CONFIG` environment variable
 * (dora's variable name). Its fields are described once, in protocol/facts.json,
 * from which the TypeScript interface, the C library's keys and docs/protocol.md's
 * table are generated.
 */

import { EVENTS_TOPIC_PREFIX } from './facts';

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

/**
 * ZeroMQ endpoints for one dataflow. Linux abstract-namespace ipc addresses leave
 * no socket files behind, even after a crash.
 */
export function endpoints(dataflowId: string) {
  const base = `ipc://@dora-ts/${dataflowId}`;
  return {
    daemonRequests: `${base}/daemon`,
    daemonEvents: `${base}/events`,
    nodeData: (node: string) => `${base}/node/${node}`,
    nodeDrops: (node: string) => `${base}/node/${node}/drops`,
  };
}

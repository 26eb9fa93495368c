/**
 * The protocol shared by the daemon and every node implementation: node
 * configuration, control messages, the data message and its Arrow layout.
 * docs/protocol.md is the specification; this folder is its TypeScript side.
 */
export * from './config';
export * from './control';
export * from './clock';
export * from './wire';
export * from './parameters';
export * from './arrow';
export * from './data';
export * from './drop';
export * from './facts';
export * from './errors';
export { encodeTimerTick } from './tick';

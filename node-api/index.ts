/** The TypeScript node API: `new Node()`, `for await (const event of node)`, `node.sendOutput(...)`. */
export { Node, configFromEnv, type NodeOptions } from './node';
export { OutputSample } from './send';
export type { Event, InputEvent, InputClosedEvent, InputRecoveredEvent, NodeRestartedEvent, NodeFailedEvent, StopEvent, ErrorEvent, Metadata } from './events';
export type { Parameters, ParameterValue } from '../protocol';
export type { LogLevel, StopCause } from '../protocol/control';
export { DoraError } from '../protocol/errors';
export { ErrorCode, errorName } from '../protocol/facts';

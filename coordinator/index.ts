/**
 * The coordinator's public surface: load and validate dataflows, run them
 * (the daemon), serve the control API, draw graphs. The CLI is built on this.
 */
export { loadDescriptor, parseDescriptor, splitArgs, DATAFLOW_SCHEMA_FILE, DEFAULT_SHARED_MEMORY_THRESHOLD, type DescriptorOptions } from './descriptor';
export * from './dataflow';
export * from './errors';
export { DataflowRun, describeFailure, DEFAULT_GRACE_MS, type RunResult, type RunOptions, type RunStatus, type NodeStatus, type NodeOutcome } from './daemon';
export { Coordinator } from './coordinator';
export { controlRequest, controlPort, DEFAULT_CONTROL_PORT, type ControlRequest, type ControlReply, type DataflowSummary } from './control';
export { toMermaid, toHtml, toSvg } from './graph';
export { readLogs, type LogLine } from './logs';

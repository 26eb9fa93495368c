/**
 * The events a node receives, typed once. `type` carries dora's names so code
 * reads the same in every language.
 */
import type * as arrow from 'apache-arrow';
import type { StopCause } from '../protocol/control';
import type { Parameters } from '../protocol';

/** What travels with every input message besides its data. */
export interface Metadata {
  /** Hybrid-logical-clock timestamp of the message: nanoseconds since the Unix epoch. */
  readonly timestamp: bigint;
  /** User parameters sent with the message. */
  readonly parameters: Parameters;
}

/**
 * A message on one of the node's inputs (a timer tick carries an empty array).
 * For a shared-memory payload, `data` is a view of the sender's memory; the sender
 * reuses that memory once every receiver has released it: call
 * `event[Symbol.dispose]()` (or declare the event with `using`) when done with the
 * data. An event that is never disposed is released once it is garbage collected.
 */
export interface InputEvent extends Disposable {
  /** Discriminates the Event union. */
  readonly type: 'INPUT';
  /** The input id as declared in the dataflow YAML. */
  readonly id: string;
  /** The Arrow data; for large messages a view into shared memory, not a copy. */
  readonly data: arrow.Vector;
  /** The message's timestamp and parameters. */
  readonly metadata: Metadata;
}

/** Every sender of this input has finished; no more messages will arrive on it. */
export interface InputClosedEvent {
  /** Discriminates the Event union. */
  readonly type: 'INPUT_CLOSED';
  /** The closed input's id. */
  readonly id: string;
}

/** The dataflow is being stopped; finish up and return. Nothing follows a STOP. */
export interface StopEvent {
  /** Discriminates the Event union. */
  readonly type: 'STOP';
  /** `MANUAL` (dora stop, Ctrl-C) or `ALL_INPUTS_CLOSED`. */
  readonly cause: StopCause;
}

/** Something went wrong outside the node's code (e.g. its daemon is gone). */
export interface ErrorEvent {
  /** Discriminates the Event union. */
  readonly type: 'ERROR';
  /** What went wrong, for people. */
  readonly error: string;
}

/** Data arrived again on an input its `input_timeout` had closed; it is open again. */
export interface InputRecoveredEvent {
  /** Discriminates the Event union. */
  readonly type: 'INPUT_RECOVERED';
  /** The recovered input's id. */
  readonly id: string;
}

/** A node this node receives from was restarted under its restart policy; its inputs from it are open again. */
export interface NodeRestartedEvent {
  /** Discriminates the Event union. */
  readonly type: 'NODE_RESTARTED';
  /** The restarted node's id. */
  readonly id: string;
}

/** A node this node receives from failed and will not be restarted; INPUT_CLOSED follows for its inputs. */
export interface NodeFailedEvent {
  /** Discriminates the Event union. */
  readonly type: 'NODE_FAILED';
  /** The failed node's id. */
  readonly id: string;
}

/** Everything `for await (const event of node)` yields: switch on `event.type`. */
export type Event = InputEvent | InputClosedEvent | InputRecoveredEvent | NodeRestartedEvent | NodeFailedEvent | StopEvent | ErrorEvent;

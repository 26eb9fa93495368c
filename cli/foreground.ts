/**
 * A dataflow run in the CLI's own process, as `dora run` does it: node lines on the
 * terminal, Ctrl-C stops (twice kills), an optional stop after a duration, and the
 * outcome reported with the exit status. `dora run` runs the dataflow of its file through
 * it, `dora record` and `dora replay` the dataflows they derive from one.
 */
import type { ResolvedDataflow } from '../coordinator/dataflow';
import { DataflowRun, describeFailure, type RunResult } from '../coordinator/daemon';
import { colourEnabled, formatLine } from './console';
import { place } from '../coordinator/placement';
import { LOCAL_MACHINE } from '../coordinator/cluster/hub';

export interface ForegroundOptions {
  readonly graceMs: number;
  readonly outDir?: string;
  /** Stops gracefully after this long, as a first Ctrl-C would; `stopAfterText` says so. */
  readonly stopAfterMs?: number;
  readonly stopAfterText?: string;
  readonly timestamps?: boolean;
  /** Overrides the descriptor's `exit_when_nodes_finish`. */
  readonly exitWhenNodesFinish?: boolean;
  /** Called once the nodes are spawned (e.g. to say where a recording goes). */
  readonly onStarted?: (run: DataflowRun) => void;
}

export async function runForeground(dataflow: ResolvedDataflow, opts: ForegroundOptions): Promise<RunResult> {
  place(dataflow, [{ machine: LOCAL_MACHINE, labels: {} }], LOCAL_MACHINE); // no other machine here: a `deploy` naming one is an error
  let run: DataflowRun | undefined;
  let interrupts = 0;
  const act = () => {
    if (!run || interrupts === 0) return;
    if (interrupts === 1) void run.stop(opts.graceMs);
    else void run.kill();
  };
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) process.stderr.write(`\nstopping dataflow${run ? ` ${run.id}` : ''} (Ctrl-C again to kill)\n`);
    act();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // handlers first: a Ctrl-C while the nodes are being spawned must stop them, not orphan them
  run = await DataflowRun.start(dataflow, {
    outDir: opts.outDir,
    onLine: (l) => {
      const out = l.stream === 'stderr' ? process.stderr : process.stdout;
      out.write(`${opts.timestamps && l.time ? `${l.time} ` : ''}${formatLine(l.node, l.line, colourEnabled(out))}\n`);
    },
    ...(opts.exitWhenNodesFinish !== undefined ? { exitWhenNodesFinish: opts.exitWhenNodesFinish } : {}),
  });
  opts.onStarted?.(run);
  act();
  const started = run;
  // --stop-after: the same graceful stop as a first Ctrl-C, and the same exit status
  const stopTimer =
    opts.stopAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          if (interrupts > 0) return;
          interrupts = 1;
          process.stderr.write(`stopping dataflow ${started.id}: --stop-after ${opts.stopAfterText ?? `${opts.stopAfterMs} ms`} has passed\n`);
          void started.stop(opts.graceMs);
        }, opts.stopAfterMs);
  const result = await run.finished;
  clearTimeout(stopTimer);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  const killed = result.nodes.filter((n) => n.killed);
  if (result.status === 'failed') {
    process.stderr.write(`dataflow ${result.id} failed\n${describeFailure(result)}\nlogs: ${run.logs.dir}\n`);
    process.exitCode = 1;
  } else if (killed.length > 0) {
    // a planned stop that had to kill is not a clean stop
    for (const n of killed) process.stderr.write(`node "${n.id}" ${n.detail}\n`);
    process.stderr.write(`dataflow ${result.id} stopped, ${killed.length} node(s) killed; logs: ${run.logs.dir}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`dataflow ${result.id} ${result.status === 'stopped' ? 'stopped' : 'finished'}; logs: ${run.logs.dir}\n`);
  }
  return result;
}

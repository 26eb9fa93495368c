/**
 * Launches node processes. Each node runs in its own process group so that
 * stopping it also stops whatever it started, and its stdout/stderr are split
 * into lines for the log store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ResolvedNode } from './dataflow';

export interface Command {
  readonly program: string;
  readonly args: readonly string[];
}

let tsLoader: string | undefined;
/** URL of the TypeScript loader (tsx) so `.ts` nodes run without a build step. */
function typescriptLoader(): string {
  tsLoader ??= pathToFileURL(require.resolve('tsx')).href;
  return tsLoader;
}

/**
 * The Python that runs `.py` nodes: $DORA_PYTHON, else the active virtual environment's,
 * else the nearest `.venv` in the node file's folder or above it (the project's
 * environment, as `scripts/setup.sh` creates it), else the system's python3.
 */
export function pythonInterpreter(env: NodeJS.ProcessEnv = process.env, nodeFile?: string): string {
  if (env.DORA_PYTHON) return env.DORA_PYTHON;
  if (env.VIRTUAL_ENV) return path.join(env.VIRTUAL_ENV, 'bin', 'python');
  for (let dir = nodeFile ? path.dirname(nodeFile) : undefined; dir; ) {
    const candidate = path.join(dir, '.venv', 'bin', 'python');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    dir = parent === dir ? undefined : parent;
  }
  return 'python3';
}

/**
 * Flags for Node.js nodes. `--expose-gc` lets the node API ask for a collection when
 * a node holds many shared-memory samples it no longer references: V8 does not
 * count that memory, so it would otherwise collect (and return them) too late.
 */
const NODE_FLAGS = ['--expose-gc'];

/** How a node's `path` is launched, by its extension (as dora does for `.py`). */
export function commandFor(node: Pick<ResolvedNode, 'resolvedPath' | 'args'>, env: NodeJS.ProcessEnv = process.env): Command {
  const file = node.resolvedPath;
  switch (path.extname(file)) {
    case '.ts':
    case '.mts':
    case '.cts':
      return { program: process.execPath, args: [...NODE_FLAGS, '--import', typescriptLoader(), file, ...node.args] };
    case '.js':
    case '.mjs':
    case '.cjs':
      return { program: process.execPath, args: [...NODE_FLAGS, file, ...node.args] };
    case '.py':
      return { program: pythonInterpreter(env, file), args: ['-u', file, ...node.args] };
    default:
      return { program: file, args: [...node.args] };
  }
}

export type Stream = 'stdout' | 'stderr';

export interface Exit {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  readonly spawnError?: Error;
}

export interface SpawnOptions {
  readonly command: Command;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly onLine: (stream: Stream, line: string) => void;
}

/** A running node process. */
export class NodeProcess {
  readonly pid: number | undefined;
  /** Resolves once the process has exited and its output has been fully read. */
  readonly exited: Promise<Exit>;
  private child: ChildProcess;
  private done = false;

  constructor(options: SpawnOptions) {
    const child = spawn(options.command.program, options.command.args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: a Ctrl-C on the terminal reaches the daemon, which stops nodes gracefully
    });
    this.child = child;
    this.pid = child.pid;
    const streams = [lines(child.stdout!, (l) => options.onLine('stdout', l)), lines(child.stderr!, (l) => options.onLine('stderr', l))];
    this.exited = new Promise<Exit>((resolve) => {
      child.once('error', (err) => {
        // 'error' without a pid means the process never started; 'close' will not follow.
        if (child.pid === undefined) {
          this.done = true;
          resolve({ code: null, signal: null, spawnError: err });
        }
      });
      child.once('close', (code, signal) => {
        this.done = true;
        void Promise.all(streams).then(() => resolve({ code, signal }));
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Sends a signal to the node's whole process group; ignores a group that is already gone. */
  kill(signal: NodeJS.Signals): void {
    if (this.done || this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      try {
        this.child.kill(signal);
      } catch {
        // already exited
      }
    }
  }
}

/** Calls `onLine` for every line of a stream; resolves when the stream ends. */
function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const part of parts) onLine(part.endsWith('\r') ? part.slice(0, -1) : part);
    });
    stream.on('end', () => {
      if (rest) onLine(rest);
      resolve();
    });
    stream.on('error', () => resolve());
  });
}

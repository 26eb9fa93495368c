/**
 * The user's own directories: the state directory (coordinator logs, the control
 * token) and the runtime directory (one folder per running dataflow, holding its
 * sockets). Whoever can write the first could plant a token, and whoever can enter
 * the second could connect to any node, so each must be ours and closed to others: a
 * directory that is not is refused with the reason, never repaired behind the user's back.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DoraError, ErrorCode } from './errors';

/**
 * The state directory: $DORA_STATE_DIR, else $XDG_STATE_HOME/dora-ts, else
 * ~/.local/state/dora-ts; created 0700 when missing. Refused when it is not ours or
 * others can write to it (reading is harmless: the token file itself is 0600).
 */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DORA_STATE_DIR ?? path.join(env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'dora-ts');
  return ownDirectory(dir, { what: 'state directory', forbidden: 0o022, followLink: true, variable: 'DORA_STATE_DIR' });
}

/**
 * The runtime directory: $DORA_RUNTIME_DIR, else $XDG_RUNTIME_DIR/dora-ts when that
 * directory is ours, else /tmp/dora-ts-<uid> (short on purpose: socket paths are
 * limited to 107 bytes); created 0700 when missing. Refused when it is a symbolic
 * link, is not ours, or others have any access to it.
 */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const options = { what: 'runtime directory', forbidden: 0o077, followLink: false, variable: 'DORA_RUNTIME_DIR' };
  if (env.DORA_RUNTIME_DIR) return ownDirectory(env.DORA_RUNTIME_DIR, options);
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg) && ownedByUs(xdg)) return ownDirectory(path.join(xdg, 'dora-ts'), options);
  return ownDirectory(`/tmp/dora-ts-${uid()}`, options);
}

interface Requirements {
  readonly what: string;
  /** Mode bits that must be clear. */
  readonly forbidden: number;
  /** Whether the path itself may be a symbolic link (to a directory that passes). */
  readonly followLink: boolean;
  /** The variable that chooses another directory, named in the error. */
  readonly variable: string;
}

function ownDirectory(dir: string, req: Requirements): string {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DoraError(`cannot create the ${req.what} ${dir}: ${(err as Error).message}`, { code: ErrorCode.SYSTEM, cause: err });
  }
  // Checked after mkdir, on what is there: another user may have created it first.
  const st = req.followLink ? fs.statSync(dir) : fs.lstatSync(dir);
  const problem = st.isSymbolicLink()
    ? 'is a symbolic link'
    : !st.isDirectory()
      ? 'is not a directory'
      : st.uid !== uid()
        ? `belongs to uid ${st.uid}, not to this user (uid ${uid()})`
        : (st.mode & req.forbidden) !== 0
          ? `is open to other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`
          : undefined;
  if (problem) {
    const fix = problem.startsWith('is open') ? `run \`chmod go-rwx ${dir}\`` : 'remove it';
    throw new DoraError(`refusing the ${req.what} ${dir}: it ${problem}, so other users could reach what dora-ts keeps there; ${fix}, or set ${req.variable} to a directory of your own`, {
      code: ErrorCode.SYSTEM,
    });
  }
  return dir;
}

function ownedByUs(dir: string): boolean {
  try {
    const st = fs.statSync(dir);
    return st.isDirectory() && st.uid === uid();
  } catch {
    return false;
  }
}

function uid(): number {
  return process.getuid!();
}

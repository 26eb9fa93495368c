/**
 * Machines simulated on one host for multi-machine tests: a coordinator accepting daemons
 * (`dora coordinator --bind`), and daemons of other "machines". As root (tests and CI), a
 * daemon can run isolated: in network and mount namespaces of its own, with a private
 * /dev/shm and a veth pair to the host (10.213.N.1 here, 10.213.N.2 there), so it can
 * neither see this machine's shared memory nor reach it other than over that link.
 * Otherwise it runs beside the coordinator with another loopback address (127.0.0.2...).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadOrCreateKeyPair } from '../../coordinator/cluster/keys';
import { CLI, dora, waitFor, type Result } from './dataflow';

/** A sleep that does not keep the test process alive once the race it is in is decided. */
const unrefSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly done: Promise<Result>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(command, args, { env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, output: () => stdout + stderr, done };
}

/** Whether daemons can be isolated in namespaces here (root, with unshare and ip). */
export const CAN_ISOLATE = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = spawnSync('unshare', ['--net', '--mount', '--fork', 'sh', '-c', 'mount -t tmpfs tmpfs /dev/shm && ip link set lo up'], { stdio: 'ignore' });
  return probe.status === 0 && spawnSync('ip', ['-V'], { stdio: 'ignore' }).status === 0;
})();

const netns = (pid: number) => {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
};

/** Direct children of a process. */
export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter((s) => s.length > 0)
      .map(Number);
  } catch {
    return [];
  }
}

export interface Daemon extends Proc {
  readonly machine: string;
  /** The daemon's own process (inside its namespaces, when isolated). */
  readonly pid: () => number;
  readonly isolated: boolean;
  readonly address: string;
}

export class TestCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-mm-'));
  readonly stateDir = path.join(this.dir, 'state');
  /** Below Linux's ephemeral ports (32768 and up): an outgoing connection elsewhere on the host cannot hold it when a coordinator restarts on it. */
  readonly controlPort = 20000 + 2 * Math.floor(Math.random() * 6000);
  readonly clusterPort = this.controlPort + 1;
  /** Every daemon's run folders (the isolated one's too: it shares the file system, not /dev/shm). */
  readonly runtimeDir = path.join(this.dir, 'run');
  readonly env: NodeJS.ProcessEnv = { DORA_STATE_DIR: this.stateDir, DORA_RUNTIME_DIR: this.runtimeDir, DORA_COORDINATOR_PORT: String(this.controlPort) };
  coordinator?: Proc;
  readonly daemons: Daemon[] = [];
  private readonly links: string[] = [];
  private readonly subnet = 1 + Math.floor(Math.random() * 250);
  private linkCount = 0;

  /** The address this machine is reached at by isolated daemons (the host side of their veth links). */
  get hostAddress(): string {
    return CAN_ISOLATE ? `10.213.${this.subnet}.1` : '127.0.0.1';
  }

  async startCoordinator(extra: string[] = []): Promise<Proc> {
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.runtimeDir, { recursive: true, mode: 0o700 });
    // 0.0.0.0: isolated daemons reach it over their veth links, which come later
    const proc = run(process.execPath, [CLI, 'coordinator', '--bind', '0.0.0.0', '--cluster-port', String(this.clusterPort), '--data-address', this.hostAddress, ...extra], this.env);
    this.coordinator = proc;
    await waitFor(() => proc.output().includes('cluster listening') || proc.child.exitCode !== null, 15_000, 'the coordinator to listen');
    await waitFor(() => fs.existsSync(path.join(this.stateDir, `coordinator-${this.controlPort}.token`)) || proc.child.exitCode !== null, 15_000, 'the control token');
    if (proc.child.exitCode !== null) throw new Error(`coordinator exited: ${proc.output()}`);
    return proc;
  }

  /** Dataflow folders in the runtime directory (a running part has one); those of one daemon's process when `pid` is given. */
  runFolders(pid?: number): string[] {
    const owner = (n: string) => {
      try {
        return (JSON.parse(fs.readFileSync(path.join(this.runtimeDir, n, 'daemon.json'), 'utf8')) as { pid: number }).pid;
      } catch {
        return undefined;
      }
    };
    return fs.readdirSync(this.runtimeDir).filter((n) => /^[0-9a-f]{8}-/.test(n) && (pid === undefined || owner(n) === pid));
  }

  /** The CLI against this cluster's coordinator. */
  dora(args: string[], cwd?: string): Promise<Result> {
    return dora(args, { env: this.env, ...(cwd ? { cwd } : {}) });
  }

  /** The coordinator's public key (its file, as `--coordinator-key` accepts it). */
  get coordinatorKeyFile(): string {
    return path.join(this.stateDir, 'cluster', 'coordinator.pub');
  }

  /** A daemon key pair file, authorised unless told otherwise; returns its file and public key. */
  async daemonKey(name: string, authorise = true): Promise<{ file: string; publicKey: string }> {
    const file = path.join(this.dir, `${name}.key`);
    const { publicKey } = loadOrCreateKeyPair(file);
    if (authorise) {
      // `--`: a Z85 key may begin with '-', which would read as an option
      const r = await this.dora(['cluster', 'authorize', '--comment', name, '--', publicKey]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    return { file, publicKey };
  }

  /**
   * Starts `dora daemon --machine-id <machine>`; isolated in its own namespaces when
   * possible. Resolves once it registered (or exited, when `expectExit`).
   */
  async startDaemon(machine: string, options: { keyFile?: string; coordinatorKey?: string; labels?: string; isolate?: boolean; expectExit?: boolean; extra?: string[] } = {}): Promise<Daemon> {
    const keyFile = options.keyFile ?? (await this.daemonKey(machine)).file;
    // one isolated daemon at a time per cluster: its link is the host's one address for the
    // coordinator's data (one that ended took its namespace and link with it: a new one gets its address)
    const isolate = (options.isolate ?? true) && CAN_ISOLATE && !this.daemons.some((d) => d.isolated && d.child.exitCode === null && d.child.signalCode === null);
    const n = ++this.linkCount;
    const address = isolate ? `10.213.${this.subnet}.2` : `127.0.0.${1 + n}`;
    const coordinatorAddr = `${isolate ? this.hostAddress : '127.0.0.1'}:${this.clusterPort}`;
    const args = [
      CLI, 'daemon', '--machine-id', machine, '--coordinator-addr', coordinatorAddr, '--key-file', keyFile,
      '--coordinator-key', options.coordinatorKey ?? this.coordinatorKeyFile,
      ...(isolate ? [] : ['--data-address', address]),
      ...(options.labels ? ['--labels', options.labels] : []),
      ...(options.extra ?? []),
    ];
    let proc: Proc;
    if (isolate) {
      const inner = `dvb${this.subnet}x${n}`;
      const script = [
        'mount -t tmpfs -o mode=1777 tmpfs /dev/shm',
        'ip link set lo up',
        `while ! ip -4 addr show dev ${inner} 2>/dev/null | grep -q inet; do sleep 0.05; done`,
        `exec ${[process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}`,
      ].join(' && ');
      proc = run('unshare', ['--net', '--mount', '--fork', 'sh', '-c', script], this.env);
      const pid = proc.child.pid!;
      await waitFor(() => netns(pid) !== undefined && netns(pid) !== netns(process.pid), 5000, 'the daemon namespace');
      const outer = `dva${this.subnet}x${n}`;
      const host = this.hostAddress;
      const sh = (cmd: string) => {
        const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
      };
      sh(`ip link add ${outer} type veth peer name ${inner} netns ${pid}`);
      this.links.push(outer);
      sh(`ip addr add ${host}/30 dev ${outer} && ip link set ${outer} up`);
      sh(`nsenter -t ${pid} -n sh -c 'ip addr add ${address}/30 dev ${inner} && ip link set ${inner} up'`);
    } else proc = run(process.execPath, args, this.env);
    const daemon: Daemon = {
      ...proc,
      machine,
      isolated: isolate,
      address,
      // isolated: unshare → sh (exec'd into node)
      pid: () => (isolate ? (childrenOf(proc.child.pid!)[0] ?? -1) : proc.child.pid!),
    };
    this.daemons.push(daemon);
    if (options.expectExit) await proc.done;
    else await waitFor(() => proc.output().includes('registered with the coordinator') || proc.child.exitCode !== null, 15_000, `daemon ${machine} to register`);
    if (!options.expectExit && proc.child.exitCode !== null) throw new Error(`daemon ${machine} exited: ${proc.output()}`);
    return daemon;
  }

  /** Stops everything: `dora down`, then whatever did not exit; removes the links and the folder. */
  async stop(): Promise<void> {
    if (this.coordinator && this.coordinator.child.exitCode === null) {
      await this.dora(['down']).catch(() => undefined);
      await Promise.race([this.coordinator.done, unrefSleep(10_000)]);
      this.coordinator.child.kill('SIGKILL');
    }
    for (const d of this.daemons) {
      if (d.child.exitCode === null && d.child.signalCode === null) {
        d.child.kill('SIGTERM');
        const pid = d.pid();
        if (pid > 0) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // gone
          }
        }
        await Promise.race([d.done, unrefSleep(5000)]);
        d.child.kill('SIGKILL');
      }
    }
    for (const link of this.links) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

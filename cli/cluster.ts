/**
 * The CLI's multi-machine commands: `dora daemon` (the daemon of a machine), `dora daemons`
 * / `dora cluster status` (the connected daemons), `dora cluster authorize` and
 * `dora cluster key` (the cluster's CURVE keys).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { controlRequest } from '../coordinator/control';
import { DoraError, ErrorCode } from '../coordinator/errors';
import { parseLabels } from '../coordinator/placement';
import { MachineDaemon } from '../coordinator/cluster/machine';
import { authorize, authorizeCommand, authorizedKeysFile, clusterDir, coordinatorKeys, daemonKeys, keyArgument } from '../coordinator/cluster/keys';
import { reclaimStaleRuns } from '../coordinator/rundir';

/** Port daemons reach the coordinator's cluster listener on (`--cluster-port`): the control port's neighbour. */
export const DEFAULT_CLUSTER_PORT = 6281;

export function labelsArg(value: string): Record<string, string> {
  try {
    return parseLabels(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `host[:port]`, the port defaulting to the cluster port. */
export function hostPort(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not host[:port]`);
  const port = m[2] !== undefined ? Number(m[2]) : DEFAULT_CLUSTER_PORT;
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`"${m[2]}" is not a TCP port (1-65535)`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export function registerClusterCommands(program: Command, sleep: (ms: number) => Promise<void>): void {
  program
    .command('daemon')
    .description("run this machine's daemon of a multi-machine cluster, in the foreground")
    .requiredOption('--machine-id <id>', 'this machine\'s id, as `deploy: {machine: <id>}` names it')
    .requiredOption('--coordinator-addr <host[:port]>', `the coordinator's cluster address (port default ${DEFAULT_CLUSTER_PORT})`, hostPort)
    .option('--labels <k=v,...>', 'labels `deploy.labels` can select this machine by', labelsArg)
    .option('--coordinator-key <key|file>', "the coordinator's public key (`dora cluster key` prints it), or a file holding it (default: this user's coordinator.pub, for a coordinator on this machine)")
    .option('--key-file <file>', "this daemon's key pair (created 0600 if missing; default <state dir>/cluster/daemon.key)")
    .option('--data-address <ip>', 'the address other machines reach this one on (default: the one used to reach the coordinator)')
    .option('--out <dir>', 'base folder for run logs (default: out/ next to each dataflow file)')
    .option('--insecure', 'talk to the coordinator over plain TCP without keys (data between machines stays encrypted)')
    .action(async (opts: { machineId: string; coordinatorAddr: { host: string; port: number }; labels?: Record<string, string>; coordinatorKey?: string; keyFile?: string; dataAddress?: string; out?: string; insecure?: boolean }) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(opts.machineId)) throw new DoraError(`--machine-id "${opts.machineId}" may contain only letters, digits, '_', '-' and '.'`, { code: ErrorCode.USAGE });
      const log = (line: string) => process.stderr.write(`dora daemon ${opts.machineId}: ${line}\n`);
      const keys = daemonKeys(opts.keyFile ? path.resolve(opts.keyFile) : undefined);
      let coordinatorKey: string | undefined;
      if (opts.insecure) log('WARNING: --insecure: the link to the coordinator is plain TCP without keys; anyone on the network can read and forge it');
      else {
        const local = path.join(clusterDir(), 'coordinator.pub');
        if (opts.coordinatorKey === undefined && !fs.existsSync(local)) {
          throw new DoraError(`the coordinator's public key is needed: pass --coordinator-key <key|file> (\`dora cluster key\` prints it on the coordinator's machine)`, { code: ErrorCode.USAGE });
        }
        coordinatorKey = keyArgument(opts.coordinatorKey ?? local, '--coordinator-key');
      }
      log(`public key ${keys.publicKey} (authorise it on the coordinator's machine: \`${authorizeCommand(keys.publicKey)}\`)`);
      reclaimStaleRuns();
      const daemon = new MachineDaemon({
        machine: opts.machineId,
        labels: opts.labels ?? {},
        host: opts.coordinatorAddr.host,
        port: opts.coordinatorAddr.port,
        keys,
        ...(coordinatorKey ? { coordinatorKey } : {}),
        ...(opts.dataAddress ? { dataAddress: opts.dataAddress } : {}),
        ...(opts.out ? { outDir: path.resolve(opts.out) } : {}),
        log,
      });
      let stopping = false;
      const onSignal = () => {
        if (stopping) return;
        stopping = true;
        log('stopping');
        void daemon.shutdown();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      await daemon.start();
      await daemon.ended;
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    });

  const status = async (opts: { json?: boolean }) => {
    const { daemons = [] } = await controlRequest({ cmd: 'daemons' });
    if (opts.json) return console.log(JSON.stringify(daemons, null, 2));
    const rows = daemons.map((d) => [
      d.machine + (d.local ? ' (coordinator)' : ''),
      d.address,
      Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
      d.local ? '-' : `${(d.heartbeatAgeMs / 1000).toFixed(1)}s`,
      d.nodes.join(', ') || '-',
    ]);
    const header = ['MACHINE', 'ADDRESS', 'LABELS', 'HEARTBEAT', 'NODES'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  };
  program.command('daemons').description('list the daemons connected to the coordinator: machine id, address, labels, heartbeat age, running nodes').option('--json', 'print JSON').action(status);

  const cluster = program.command('cluster').description("the coordinator's cluster: status, keys, authorised daemons");
  cluster.command('status').description('same as `dora daemons`').option('--json', 'print JSON').action(status);
  cluster
    .command('key')
    .description("print the coordinator's public key (created with its key pair, 0600, on first use), for `dora daemon --coordinator-key`")
    .action(() => console.log(coordinatorKeys().publicKey));
  cluster
    .command('authorize')
    .description(`let a daemon with this public key join (adds it to ${'<state dir>/cluster/authorized_keys'}; takes effect at once)`)
    .argument('<public-key>', 'the key `dora daemon` prints')
    .option('--comment <text>', 'a note kept beside the key (e.g. the machine)')
    // a Z85 key may begin with '-' (1 in 85): taken as the key, not refused as an unknown option
    .allowUnknownOption()
    .action((key: string, opts: { comment?: string }) => {
      const added = authorize(key.trim(), opts.comment);
      console.log(added ? `authorised ${key.trim()} (${authorizedKeysFile()})` : `${key.trim()} was already authorised`);
    });
  void sleep;
}

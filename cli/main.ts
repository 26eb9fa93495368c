#!/usr/bin/env node
/**
 * The `dora` command. `run` hosts the daemon in this process; the other commands
 * talk to the background coordinator that `up` starts.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Coordinator } from '../coordinator/coordinator';
import { controlPort, controlRequest, type DataflowSummary } from '../coordinator/control';
import { LOG_LEVELS, PROTOCOL_VERSION, type LogLevel } from '../protocol/facts';
import { DEFAULT_GRACE_MS } from '../coordinator/daemon';
import { loadDescriptor } from '../coordinator/descriptor';
import { ControlError, DoraError, ErrorCode, formatIssue, type DescriptorIssue } from '../coordinator/errors';
import { toHtml, toMermaid } from '../coordinator/graph';
import { parseLogLine } from '../coordinator/logs';
import { reclaimStaleRuns } from '../coordinator/rundir';
import { stateDir } from '../coordinator/userdirs';
import { locateLibrary } from '../node-api/library';
import { levelOf } from './console';
import { LANGUAGES, scaffold, type Language } from './new';
import { runForeground } from './foreground';
import { recordCommand, replayCommand } from './record/commands';
import { uiCommand, uiPortSpelling } from './ui/command';
import { registerObserveCommands } from './observe/commands';
import { DEFAULT_CLUSTER_PORT, registerClusterCommands } from './cluster';
import { LOCAL_MACHINE } from '../coordinator/cluster/hub';

const program = new Command('dora')
  .description('dora-ts: run dataflows of TypeScript, C and Python nodes that exchange Arrow data')
  .version(`dora-ts ${require('../../package.json').version as string} (protocol version ${PROTOCOL_VERSION})`, '-V, --version', 'print the package and protocol versions')
  .option('--port <port>', 'control port of the coordinator (default: $DORA_COORDINATOR_PORT, else 6280)', portArg)
  .hook('preAction', (root) => {
    // every command reaches the coordinator through controlPort(): the global --port sets it
    const port = root.opts<{ port?: string }>().port;
    if (port !== undefined) process.env.DORA_COORDINATOR_PORT = port;
  })
  .showHelpAfterError();

/** A TCP port, checked when the command line is parsed. */
function portArg(value: string): string {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a TCP port (1-65535)`);
  return value;
}

/** Checks a duration when the command line is parsed, so a typo fails at once with the option's name, not later. */
function duration(value: string): string {
  try {
    parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

const graceOption = () =>
  new Option('--grace <duration>', 'time nodes get to stop after STOP before SIGTERM (e.g. 500ms, 2s)').default(`${DEFAULT_GRACE_MS}ms`).argParser(duration);

program
  .command('run')
  .description('run a dataflow in the foreground; Ctrl-C stops it (twice kills it)')
  .argument('<dataflow>', 'dataflow YAML file')
  .addOption(graceOption())
  .option('--out <dir>', 'folder for run logs (default: out/ next to the dataflow file)')
  .option('--stop-after <duration>', 'stop the dataflow gracefully after this long (e.g. 30s, 2m), as a Ctrl-C would', duration)
  .option('--timestamps', 'start each node line with the time it was read (ISO 8601, UTC), as in the log files')
  .option('--exit-when-nodes-finish', "end once every node has finished, timers counting as a clock, not as work (overrides the file's exit_when_nodes_finish; `=false` turns it off)")
  .addOption(new Option('--no-exit-when-nodes-finish', 'what --exit-when-nodes-finish=false means').hideHelp())
  .action(async (file: string, opts: { grace: string; out?: string; stopAfter?: string; exitWhenNodesFinish?: boolean; timestamps?: boolean }) => {
    const dataflow = loadDescriptor(path.resolve(file));
    printWarnings(dataflow.warnings);
    reportReclaimed();
    await runForeground(dataflow, {
      graceMs: parseDuration(opts.grace),
      outDir: opts.out ? path.resolve(opts.out) : undefined,
      ...(opts.stopAfter !== undefined ? { stopAfterMs: parseDuration(opts.stopAfter), stopAfterText: opts.stopAfter } : {}),
      ...(opts.timestamps ? { timestamps: true } : {}),
      ...(opts.exitWhenNodesFinish !== undefined ? { exitWhenNodesFinish: opts.exitWhenNodesFinish } : {}),
    });
  });

program
  .command('check')
  .alias('validate')
  .description('validate a dataflow file without running it')
  .argument('<dataflow>', 'dataflow YAML file')
  .option('--strict-types', 'incompatible port types (input_types/output_types) are errors, not warnings')
  .action((file: string, opts: { strictTypes?: boolean }) => {
    const dataflow = loadDescriptor(path.resolve(file), { strictTypes: opts.strictTypes });
    printWarnings(dataflow.warnings);
    const timers = dataflow.timers.length;
    console.log(`${file}: ok (${dataflow.nodes.length} node${dataflow.nodes.length === 1 ? '' : 's'}, ${timers} timer${timers === 1 ? '' : 's'})`);
  });

program
  .command('graph')
  .description('print the dataflow graph as Mermaid, or write an HTML page that renders it')
  .argument('<dataflow>', 'dataflow YAML file')
  .option('--mermaid', 'print Mermaid text (the default)')
  .option('--html [file]', 'write an HTML page (default: <dataflow>.html)')
  .option('--open', 'write the HTML page and open it in a browser')
  .action((file: string, opts: { html?: string | boolean; open?: boolean }) => {
    const dataflow = loadDescriptor(path.resolve(file));
    if (opts.html === undefined && !opts.open) {
      process.stdout.write(toMermaid(dataflow) + '\n');
      return;
    }
    const target = typeof opts.html === 'string' ? opts.html : file.replace(/\.ya?ml$/, '') + '.html';
    fs.writeFileSync(target, toHtml(dataflow));
    console.log(`wrote ${target}`);
    if (opts.open) spawn('xdg-open', [target], { stdio: 'ignore', detached: true }).on('error', () => console.log('(could not open a browser)')).unref();
  });

/**
 * The environment of build commands: pkg-config also finds this package's C library
 * (the checkout's bindings/c/build/pkgconfig, or the installed package's prebuilt one),
 * so `cc node.c $(pkg-config --cflags --libs dora-node-api)` (and `dora-operator-api`
 * for C operators, in a checkout) works before the library is installed.
 */
function buildEnv(): NodeJS.ProcessEnv {
  let inTree: string;
  try {
    inTree = locateLibrary().pkgConfigDir;
  } catch (err) {
    // only C nodes need it: say why, and let the build commands run
    process.stderr.write(`warning: ${err instanceof Error ? err.message : String(err)}\n`);
    return process.env;
  }
  const current = process.env.PKG_CONFIG_PATH;
  return { ...process.env, PKG_CONFIG_PATH: current ? `${inTree}:${current}` : inTree };
}

program
  .command('build')
  .description("run every node's `build` command, in the dataflow file's folder")
  .argument('<dataflow>', 'dataflow YAML file')
  .action((file: string) => {
    const dataflow = loadDescriptor(path.resolve(file));
    // a node's build, then its operators' (each in the order written)
    const steps = dataflow.nodes.flatMap((node) => [
      ...(node.build ? [{ who: node.id, what: `node "${node.id}"`, command: node.build }] : []),
      ...(node.operators ?? []).flatMap((op) => (op.build ? [{ who: `${node.id}/${op.id}`, what: `operator "${op.id}" of node "${node.id}"`, command: op.build }] : [])),
    ]);
    for (const step of steps) {
      console.log(`[${step.who}] $ ${step.command}`);
      const r = spawnSync(step.command, { shell: true, cwd: dataflow.workingDir, stdio: 'inherit', env: buildEnv() });
      if (r.status !== 0) throw new DoraError(`build of ${step.what} failed (${r.signal ?? `status ${r.status}`}): ${step.command}`, { code: ErrorCode.NODE });
    }
  });

/** Options of `dora up` and `dora coordinator` for daemons of other machines. */
interface ClusterOptions {
  bind?: string;
  clusterPort?: string;
  insecure?: boolean;
  machineId?: string;
  dataAddress?: string;
}
const clusterOptions = (command: Command) =>
  command
    .option('--bind <addr>', `also accept daemons of other machines on <addr>:<cluster port> (CURVE-encrypted; the CLI stays on 127.0.0.1)`)
    .option('--cluster-port <port>', `port daemons connect to with --bind (default ${DEFAULT_CLUSTER_PORT})`, portArg)
    .option('--insecure', 'with --bind: plain TCP to the daemons, without keys (logged as a warning)')
    .option('--machine-id <id>', `this machine's id for \`deploy.machine\` (default ${LOCAL_MACHINE})`)
    .option('--data-address <ip>', "with --bind: the address other machines reach this one's data sockets on (default: the bind address)");
const clusterArgs = (o: ClusterOptions) => [
  ...(o.bind ? ['--bind', o.bind] : []),
  ...(o.clusterPort ? ['--cluster-port', o.clusterPort] : []),
  ...(o.insecure ? ['--insecure'] : []),
  ...(o.machineId ? ['--machine-id', o.machineId] : []),
  ...(o.dataAddress ? ['--data-address', o.dataAddress] : []),
];

clusterOptions(
  program
    .command('up')
    .description('start the background coordinator (listening on 127.0.0.1 only, unless --bind lets daemons of other machines join)')
    .option('--port <port>', 'control port (default: $DORA_COORDINATOR_PORT, else 6280)', portArg),
).action(async (opts: { port?: string } & ClusterOptions) => {
    const port = opts.port !== undefined ? Number(opts.port) : controlPort();
    const running = await probeCoordinator(port);
    if (running.state === 'ours') {
      console.log(`a coordinator is already running on 127.0.0.1:${port} (pid ${running.pid})`);
      return;
    }
    if (running.state === 'other') throw portTaken(port, running.why);
    const logFile = path.join(stateDir(), `coordinator-${port}.log`);
    const log = fs.openSync(logFile, 'a', 0o600);
    const child = spawn(process.execPath, [__filename, 'coordinator', '--port', String(port), ...clusterArgs(opts)], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    for (let i = 0; i < 100; i++) {
      // Until the child has written its token, an answer may still be a refusal: keep asking.
      const probe = await probeCoordinator(port);
      if (probe.state === 'ours' && probe.pid === child.pid) {
        console.log(`coordinator started on 127.0.0.1:${port} (pid ${child.pid}; log ${logFile})`);
        return;
      }
      if (probe.state === 'ours') {
        // Another `dora up` won the race for the port.
        console.log(`a coordinator is already running on 127.0.0.1:${port} (pid ${probe.pid})`);
        return;
      }
      if (child.exitCode !== null) break;
      await sleep(100);
    }
    throw new DoraError(`the coordinator did not come up on 127.0.0.1:${port}; see ${logFile}`, { code: ErrorCode.CONTROL });
  });

clusterOptions(
  program
    .command('coordinator')
    .description('run the coordinator in the foreground (what `dora up` starts); with --bind, daemons of other machines join it')
    .option('--port <port>', 'control port (default: $DORA_COORDINATOR_PORT, else 6280)', portArg)
    .option('--out <dir>', 'base folder for run logs (default: out/ next to each dataflow file)'),
).action(async (opts: { port?: string; out?: string } & ClusterOptions) => {
  reportReclaimed();
  const coordinator = new Coordinator({ outDir: opts.out ? path.resolve(opts.out) : undefined });
  const onSignal = () => void coordinator.shutdown();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (opts.bind) {
    await coordinator.listenCluster({
      bind: opts.bind,
      port: opts.clusterPort !== undefined ? Number(opts.clusterPort) : DEFAULT_CLUSTER_PORT,
      insecure: opts.insecure === true,
      ...(opts.machineId ? { machine: opts.machineId } : {}),
      ...(opts.dataAddress ? { dataAddress: opts.dataAddress } : {}),
    });
  }
  const port = opts.port !== undefined ? Number(opts.port) : controlPort();
  try {
    await coordinator.listen(port);
  } catch (err) {
    // without this, the cluster listener would keep a coordinator that serves nothing alive
    coordinator.abandon();
    throw new DoraError(`cannot serve control requests on 127.0.0.1:${port}: ${(err as Error).message}`, { code: ErrorCode.CONTROL });
  }
});

program
  .command('down')
  .description('stop every running dataflow and the background coordinator')
  .option('--port <port>', 'control port (default: $DORA_COORDINATOR_PORT, else 6280)', portArg)
  .action(async (opts: { port?: string }) => {
    const port = opts.port !== undefined ? Number(opts.port) : controlPort();
    const running = await probeCoordinator(port);
    if (running.state === 'none') {
      console.log('no coordinator is running');
      return;
    }
    if (running.state === 'other') throw portTaken(port, running.why);
    await controlRequest({ cmd: 'down' }, { port });
    for (let i = 0; i < 100 && (await probeCoordinator(port)).state === 'ours'; i++) await sleep(100);
    console.log('coordinator stopped');
  });

program
  .command('start')
  .description('start a dataflow on the background coordinator and print its id')
  .argument('<dataflow>', 'dataflow YAML file')
  .option('--name <name>', 'a name to refer to the dataflow by')
  .option('--attach', 'stream its logs until it ends, and exit with its status')
  .option('--detach', 'return as soon as it has started (the default)')
  .action(async (file: string, opts: { name?: string; attach?: boolean; detach?: boolean }) => {
    if (opts.attach && opts.detach) throw new DoraError('--attach and --detach contradict each other: choose one', { code: ErrorCode.USAGE });
    const reply = await controlRequest({ cmd: 'start', file: path.resolve(file), name: opts.name });
    const df = reply.dataflow!;
    console.log(df.id);
    if (opts.attach) await attach(df.id);
  });

program
  .command('list')
  .alias('ps')
  .description('list running and finished dataflows')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { dataflows = [] } = await controlRequest({ cmd: 'list' });
    if (opts.json) {
      console.log(JSON.stringify(dataflows, null, 2));
      return;
    }
    if (dataflows.length === 0) {
      console.log('no dataflows');
      return;
    }
    const rows = dataflows.map((d) => [d.id, d.name ?? '-', d.status, String(d.nodes.length), d.startedAt]);
    printTable(['ID', 'NAME', 'STATUS', 'NODES', 'STARTED'], rows);
  });

program
  .command('logs')
  .description("print a dataflow's logs, each line with the time it was stored (one node's, or all nodes' merged in time order, prefixed by node id)")
  .argument('<dataflow>', 'dataflow id, id prefix or name')
  .argument('[node]', 'node id')
  .option('--tail <lines>', 'only the last N lines', (v) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a number of lines`);
    return Number(v);
  })
  .option('--grep <regex>', 'only lines matching this regular expression', (v) => {
    try {
      return new RegExp(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  })
  .addOption(new Option('--level <level>', 'only log records at this level or above (printed lines have none)').choices([...LOG_LEVELS]))
  .option('--follow', 'keep printing new lines until the dataflow ends')
  .action(async (dataflow: string, node: string | undefined, opts: { tail?: number; grep?: RegExp; level?: LogLevel; follow?: boolean }) => {
    const keep = (line: string) => {
      const { text } = parseLogLine(line, node === undefined); // without its timestamp and node prefix
      if (opts.grep && !opts.grep.test(line)) return false;
      if (opts.level) {
        const level = levelOf(text);
        if (!level || LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(opts.level)) return false;
      }
      return true;
    };
    const reply = await controlRequest({ cmd: 'logs', dataflow, node });
    let lines = (reply.text ?? '').split('\n').filter((l) => l.length > 0).filter(keep);
    if (opts.tail !== undefined) lines = opts.tail === 0 ? [] : lines.slice(-opts.tail);
    for (const line of lines) process.stdout.write(`${line}\n`);
    if (!opts.follow) return;
    // the coordinator's buffer of recent lines, from now on (what was stored is printed above)
    let from = (await controlRequest({ cmd: 'follow', dataflow, from: Number.MAX_SAFE_INTEGER })).next ?? 0;
    for (;;) {
      const next = await controlRequest({ cmd: 'follow', dataflow, from });
      for (const line of next.lines ?? []) {
        // followed lines are `<time> [node] text`; one node's are shown as its stored lines are, `<time> text`
        const parsed = parseLogLine(line, true);
        const shown = node === undefined ? line : `${parsed.time !== undefined ? `${parsed.time} ` : ''}${parsed.text}`;
        if ((node === undefined || parsed.node === node) && keep(shown)) process.stdout.write(`${shown}\n`);
      }
      from = next.next ?? from;
      if (next.dataflow && next.dataflow.status !== 'running' && next.dataflow.status !== 'stopping') return;
      await sleep(200);
    }
  });

program
  .command('stop')
  .description('stop a dataflow: STOP to every node, then SIGTERM/SIGKILL after the grace period')
  .argument('[dataflow]', 'dataflow id, id prefix or name (default: the only running one)')
  .option('--name <name>', 'dataflow name')
  .option('--all', 'stop every running dataflow of the coordinator')
  .addOption(graceOption())
  .addOption(new Option('--grace-duration <duration>', "alias of --grace (dora's spelling)").hideHelp().argParser(duration).argParser(duration))
  .action(async (ref: string | undefined, opts: { name?: string; all?: boolean; grace: string; graceDuration?: string }) => {
    if (opts.all) {
      if (ref !== undefined || opts.name !== undefined) throw new DoraError('--all stops every dataflow: do not name one as well', { code: ErrorCode.USAGE });
      await stopAll(parseDuration(opts.graceDuration ?? opts.grace));
      return;
    }
    let target = ref ?? opts.name;
    if (!target) {
      const running = ((await controlRequest({ cmd: 'list' })).dataflows ?? []).filter((d) => d.status === 'running');
      if (running.length !== 1) throw new DoraError(running.length === 0 ? 'no dataflow is running' : 'several dataflows are running: name one (see `dora list`)', { code: ErrorCode.USAGE });
      target = running[0].id;
    }
    const grace = parseDuration(opts.graceDuration ?? opts.grace);
    const reply = await controlRequest({ cmd: 'stop', dataflow: target, graceMs: grace }, { timeoutMs: grace + 10_000 });
    console.log(`dataflow ${reply.dataflow!.id}: ${reply.dataflow!.status}`);
    reportKilled(reply.dataflow!);
  });

program
  .command('restart')
  .description('stop a dataflow and start its file again under the same name; prints the new id')
  .argument('<dataflow>', 'dataflow id, id prefix or name')
  .addOption(graceOption())
  .action(async (ref: string, opts: { grace: string }) => {
    const grace = parseDuration(opts.grace);
    const reply = await controlRequest({ cmd: 'restart', dataflow: ref, graceMs: grace }, { timeoutMs: grace + 20_000 });
    console.log(reply.dataflow!.id);
  });

const nodeCommand = program.command('node').description("the nodes of a running dataflow: list, info, restart, stop");
nodeCommand
  .command('list')
  .description("a dataflow's nodes with their status, pid and restarts")
  .argument('<dataflow>', 'dataflow id, id prefix or name')
  .option('--json', 'print JSON')
  .action(async (ref: string, opts: { json?: boolean }) => {
    const nodes = (await controlRequest({ cmd: 'list' })).dataflows?.find((d) => d.id === ref || d.name === ref || d.id.startsWith(ref))?.nodes;
    if (!nodes) throw new DoraError(`no dataflow with id or name "${ref}" (see \`dora list\`)`, { code: ErrorCode.USAGE });
    if (opts.json) return console.log(JSON.stringify(nodes, null, 2));
    printTable(['NODE', 'STATUS', 'PID', 'RESTARTS', 'DETAIL'], nodes.map((n) => [n.id, n.status, n.pid === null ? '-' : String(n.pid), String(n.restarts), n.detail ?? '']));
  });
nodeCommand
  .command('info')
  .description('one node: status, process, restarts, inputs and outputs, last stderr lines')
  .argument('<dataflow>', 'dataflow id, id prefix or name')
  .argument('<node>', 'node id')
  .action(async (ref: string, node: string) => {
    const df = (await controlRequest({ cmd: 'node', action: 'info', dataflow: ref, node })).dataflow!;
    const n = df.nodes.find((x) => x.id === node)!;
    const rows: [string, string][] = [
      ['node', n.id],
      ['dataflow', `${df.id}${df.name ? ` (${df.name})` : ''}`],
      ['status', `${n.status}${n.detail ? ` (${n.detail})` : ''}`],
      ['pid', n.pid === null ? '-' : String(n.pid)],
      ['restarts', `${n.restarts} (restart_policy: ${n.restartPolicy})`],
      ['inputs', n.inputs.join(', ') || '-'],
      ['outputs', n.outputs.join(', ') || '-'],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(9)} ${v}`);
    if (n.stderrTail.length > 0) console.log(`last stderr lines:\n${n.stderrTail.map((l) => `  ${l}`).join('\n')}`);
  });
for (const action of ['restart', 'stop'] as const) {
  nodeCommand
    .command(action)
    .description(action === 'stop' ? 'stop one node (STOP, then SIGTERM/SIGKILL after the grace period); it is not restarted' : 'restart one node now, whatever its restart_policy')
    .argument('<dataflow>', 'dataflow id, id prefix or name')
    .argument('<node>', 'node id')
    .addOption(graceOption())
    .action(async (ref: string, node: string, opts: { grace: string }) => {
      await controlRequest({ cmd: 'node', action, dataflow: ref, node, graceMs: parseDuration(opts.grace) });
      console.log(`node ${node}: ${action === 'stop' ? 'stopping' : 'restarting'}`);
    });
}

const recordHelpers = { parseDuration: (t: string) => parseDuration(t), durationArg: duration, graceOption };
program.addCommand(recordCommand(recordHelpers));
program.addCommand(replayCommand(recordHelpers));
program.addCommand(uiCommand());
registerClusterCommands(program, sleep);

program
  .command('new')
  .description('create a new dataflow project: a sender and a receiver node in the language chosen')
  .argument('<dir>', 'folder to create')
  .addOption(new Option('--lang <language>', `language of the nodes: ${LANGUAGES.join(', ')}`).default('typescript').argParser(parseLanguage))
  .action((dir: string, opts: { lang: Language }) => {
    const { build } = scaffold(path.resolve(dir), opts.lang);
    const yml = path.join(dir, 'dataflow.yml');
    console.log(`created ${dir} (${opts.lang}): run it with ${build ? `\`dora build ${yml}\`, then ` : ''}\`dora run ${yml}\` (set-up: ${path.join(dir, 'README.md')})`);
  });

function parseLanguage(value: string): Language {
  const lang = ({ ts: 'typescript', py: 'python' } as Record<string, string>)[value] ?? value;
  if ((LANGUAGES as readonly string[]).includes(lang)) return lang as Language;
  const why = ['rust', 'cxx', 'c++'].includes(value) ? `dora-ts has no ${value === 'rust' ? 'Rust' : 'C++'} node API; ` : '';
  throw new InvalidArgumentError(`${why}choose one of ${LANGUAGES.join(', ')}`);
}

/** `dora stop --all`: every running dataflow at once, each reported. */
async function stopAll(graceMs: number): Promise<void> {
  const running = ((await controlRequest({ cmd: 'list' })).dataflows ?? []).filter((d) => d.status === 'running');
  if (running.length === 0) {
    console.log('no dataflow is running');
    return;
  }
  const replies = await Promise.all(running.map((d) => controlRequest({ cmd: 'stop', dataflow: d.id, graceMs }, { timeoutMs: graceMs + 10_000 })));
  for (const reply of replies) {
    console.log(`dataflow ${reply.dataflow!.id}: ${reply.dataflow!.status}`);
    reportKilled(reply.dataflow!);
  }
}

async function attach(id: string): Promise<void> {
  let from = 0;
  for (;;) {
    const reply = await controlRequest({ cmd: 'follow', dataflow: id, from });
    // as `dora run` shows them: without the timestamps the stored lines carry
    for (const line of reply.lines ?? []) console.log(line.replace(/^\S+Z (?=\[)/, ''));
    from = reply.next ?? from;
    const df = reply.dataflow!;
    if (df.status !== 'running' && df.status !== 'stopping') {
      reportEnd(df);
      return;
    }
    await sleep(200);
  }
}

function printWarnings(warnings: readonly DescriptorIssue[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
}

/** A planned stop that had to kill a node says so, and exits with status 1. */
function reportKilled(df: DataflowSummary): void {
  const killed = df.nodes.filter((n) => n.killed);
  for (const n of killed) console.error(`node "${n.id}" ${n.detail}`);
  if (killed.length > 0) process.exitCode = 1;
}

function reportEnd(df: DataflowSummary): void {
  reportKilled(df);
  if (df.status === 'failed') {
    for (const n of df.nodes.filter((n) => n.status === 'failed')) {
      console.error(`node "${n.id}" failed: ${n.detail}`);
      for (const line of n.stderrTail) console.error(`    ${line}`);
    }
    process.exitCode = 1;
  }
  console.error(`dataflow ${df.id} ${df.status}; logs: ${df.logDir}`);
}

/** What listens on the control port: nothing, this user's coordinator (its pid), or something that does not take our token. */
type Probe = { readonly state: 'none' } | { readonly state: 'ours'; readonly pid: number } | { readonly state: 'other'; readonly why: string };

async function probeCoordinator(port: number): Promise<Probe> {
  // A refused TCP connection answers at once; ZeroMQ would keep retrying until the timeout.
  const listening = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ host: '127.0.0.1', port }, () => (probe.destroy(), resolve(true)));
    probe.on('error', () => resolve(false));
  });
  if (!listening) return { state: 'none' };
  try {
    // Generous: on a loaded machine an idle coordinator still answers well within this.
    return { state: 'ours', pid: (await controlRequest({ cmd: 'ping' }, { port, timeoutMs: 2000 })).pid! };
  } catch (err) {
    if (!(err instanceof ControlError)) throw err; // e.g. our state directory is refused: that is the message
    return { state: 'other', why: err.message };
  }
}

function portTaken(port: number, why: string): DoraError {
  return new DoraError(`127.0.0.1:${port} is taken by something other than this user's coordinator (${why}); choose another port with --port or DORA_COORDINATOR_PORT`, { code: ErrorCode.CONTROL });
}

/** Removes what daemons killed earlier left in the runtime directory (rundir.ts), and says so. */
function reportReclaimed(): void {
  const { dataflows, segments } = reclaimStaleRuns();
  if (dataflows.length > 0) {
    process.stderr.write(`dora: reclaimed ${dataflows.length} dataflow folder(s) and ${segments} shared-memory segment(s) left by daemons that are gone\n`);
  }
}

/** `500ms`, `2s`, `1.5s`, `1m` or a bare number of seconds (dora's style). */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new DoraError(`invalid duration "${text}" (examples: 500ms, 2s, 1m)`, { code: ErrorCode.INVALID_ARGUMENT });
  const value = Number(m[1]);
  return Math.round(m[2] === 'ms' ? value : m[2] === 'm' ? value * 60_000 : value * 1000);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** dora spells the off switch `--exit-when-nodes-finish=false`; commander knows it as `--no-…`. */
function doraSpellings(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const m = /^--exit-when-nodes-finish=(true|false)$/.exec(arg);
    return m ? (m[1] === 'true' ? '--exit-when-nodes-finish' : '--no-exit-when-nodes-finish') : arg;
  });
}

registerObserveCommands(program); // topic list|echo|hz|info|pub, top

program.parseAsync(uiPortSpelling(doraSpellings(process.argv))).catch((err: unknown) => {
  if (err instanceof DoraError) {
    process.stderr.write(`error: ${err.message}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exitCode = 1;
});

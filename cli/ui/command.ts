/** `dora ui [<dataflow>] [--port N]`: serves the live page until Ctrl-C (server.ts). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import { DEFAULT_UI_PORT, startUi } from './server';
import { listDataflows, pick } from './sources';

export function uiCommand(): Command {
  return new Command('ui')
    .description("serve a live page of a running dataflow on 127.0.0.1: its graph with each edge's msg/s, latency and drops, each node's CPU and memory, a node's last log lines, a stop button")
    .argument('[dataflow]', 'dataflow id, id prefix or name (default: the newest running one; the page can switch)')
    // `--port` after `ui` is the page's port (uiPortSpelling); `dora --port P ui` still names the coordinator's
    .addOption(
      new Option('--ui-port <port>')
        .hideHelp()
        .default(String(DEFAULT_UI_PORT))
        .argParser((v) => {
          const n = Number(v);
          if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`"${v}" is not a TCP port (0-65535)`);
          return v;
        }),
    )
    .addHelpText('after', `\nOptions:\n  --port <port>  HTTP port on 127.0.0.1 (default: ${DEFAULT_UI_PORT}; 0: any free port)`)
    .action(async (dataflow: string | undefined, opts: { uiPort: string }) => {
      // a missing dataflow is said now, not on the page: the coordinator's or a `dora run`'s
      const { listed, coordinatorError } = await listDataflows();
      if (dataflow !== undefined ? !pick(listed, dataflow) : listed.length === 0 && coordinatorError !== undefined) {
        const what = dataflow !== undefined ? `no dataflow with id or name "${dataflow}"` : 'no dataflow to show';
        const where = coordinatorError ? `: no \`dora run\` of this user has it, and ${coordinatorError.replace(/;.*/, '')}` : ' (see `dora list`)';
        throw new DoraError(`${what}${where}`, { code: ErrorCode.USAGE });
      }
      const ui = await startUi({ port: Number(opts.uiPort), ...(dataflow !== undefined ? { dataflow } : {}) });
      // the token is the access: only the user who runs this sees it
      process.stdout.write(`dora ui: ${ui.url}\n(open it in a browser on this machine; Ctrl-C stops the server)\n`);
      await new Promise<void>((resolve) => {
        const onSignal = () => void ui.close().then(resolve);
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
      });
    });
}

/**
 * The global `--port` names the coordinator's control port wherever it is written; after
 * `ui` it means the page's port, so it is renamed there before commander reads it.
 */
export function uiPortSpelling(argv: readonly string[]): string[] {
  const at = argv.indexOf('ui', 2);
  if (at < 0 || argv.slice(2, at).some((a) => !a.startsWith('-') && !/^\d+$/.test(a))) return [...argv];
  return argv.map((a, i) => (i <= at ? a : a === '--port' ? '--ui-port' : a.startsWith('--port=') ? `--ui-port=${a.slice(7)}` : a));
}

/**
 * `dora ui`: an HTTP server on 127.0.0.1 serving one self-contained page (page.ts) and the
 * JSON it polls, each answer made from the control requests (list, metrics, logs, stop) of
 * the coordinator or of a `dora run` (sources.ts). Nothing is fetched from elsewhere, so it
 * works offline.
 *
 * Every local user can connect to 127.0.0.1, and any web page the user visits can make
 * the browser send requests there, so every request must pass three checks:
 *   - the Host header names this server (127.0.0.1:<port> or localhost:<port>): a DNS
 *     rebinding page reaches us under its own host name, and is refused;
 *   - it carries the random token printed in the URL: the page in `?token=`, the API in an
 *     `X-Dora-Token` header (a cross-site page can only send a custom header after a CORS
 *     preflight, which is never granted);
 *   - a POST (stop) also has no foreign Origin and no cross-site Sec-Fetch-Site.
 * Answers forbid framing (no clickjacking of the stop button), caching and referrers, and
 * the page's scripts run under a Content-Security-Policy with a fresh nonce.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { sameToken } from '../../coordinator/control';
import { loadDescriptor } from '../../coordinator/descriptor';
import { toSvg } from '../../coordinator/graph';
import { pageHtml } from './page';
import { listDataflows, logsOf, metricsOf, pick, stopIt, type Listed } from './sources';

/** Default port of `dora ui` (the coordinator's control port is 6280, its cluster port 6281); 0 lets the system choose. */
export const DEFAULT_UI_PORT = 6282;

export interface UiServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOG_TAIL_MAX = 500;

export async function startUi(options: { port: number; dataflow?: string }): Promise<UiServer> {
  const token = randomBytes(24).toString('hex');
  const server = http.createServer((req, res) => {
    void serve(req, res, token, port, options.dataflow).catch((err: unknown) => send(res, 500, { error: err instanceof Error ? err.message : String(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const SECURITY_HEADERS = {
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'" });
  res.end(JSON.stringify(body));
}

/** Why a request is refused, or undefined when it may be served. */
export function refusal(req: Pick<http.IncomingMessage, 'method' | 'headers' | 'url'>, token: string, port: number): string | undefined {
  const host = req.headers.host;
  if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return `refused: Host "${host ?? ''}" is not this server (127.0.0.1:${port})`;
  const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
  const given = url.pathname === '/' ? url.searchParams.get('token') : req.headers['x-dora-token'];
  if (!sameToken(given, token)) return 'refused: this request does not carry the token of the URL `dora ui` printed';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`) return `refused: a request from ${origin}`;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') return `refused: a ${site} request`;
  }
  return undefined;
}

async function serve(req: http.IncomingMessage, res: http.ServerResponse, token: string, port: number, initial: string | undefined): Promise<void> {
  const why = refusal(req, token, port);
  if (why) return send(res, 403, { error: why });
  const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
  const ref = url.searchParams.get('dataflow') ?? '';
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /': {
      const nonce = randomBytes(16).toString('base64');
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
      });
      res.end(pageHtml({ nonce, dataflow: initial ?? null }));
      return;
    }
    case 'GET /api/dataflows':
      return send(res, 200, { dataflows: (await listDataflows()).listed.map((l) => l.dataflow) });
    case 'GET /api/graph': {
      const df = (await find(ref)).dataflow;
      let svg: string;
      try {
        if (!df.file) throw new Error('its run folder does not name it');
        svg = toSvg(loadDescriptor(df.file));
      } catch (err) {
        return send(res, 200, { id: df.id, error: `cannot draw ${df.file || 'the dataflow'}: ${(err as Error).message}` });
      }
      return send(res, 200, { id: df.id, svg });
    }
    case 'GET /api/metrics': {
      const l = await find(ref);
      try {
        const reply = await metricsOf(l);
        return send(res, 200, { available: true, at: reply.at, nodes: reply.nodes ?? [], edges: reply.edges ?? [], dataflow: l.dataflow });
      } catch (err) {
        // no numbers (a finished dataflow, an older coordinator): the page says why and shows n/a, never made-up numbers
        return send(res, 200, { available: false, message: `no metrics (${(err as Error).message})`, dataflow: l.dataflow });
      }
    }
    case 'GET /api/logs': {
      const l = await find(ref);
      const node = url.searchParams.get('node') ?? undefined;
      const tail = Math.min(LOG_TAIL_MAX, Math.max(1, Number(url.searchParams.get('tail') ?? 50) || 50));
      const text = await logsOf(l, node);
      return send(res, 200, { lines: text.split('\n').filter((line) => line.length > 0).slice(-tail) });
    }
    case 'POST /api/stop':
      return send(res, 200, { dataflow: await stopIt(await find(ref)) });
  }
  send(res, 404, { error: `no ${route}` });
}

/** The dataflow a request names (id, id prefix or name, as the CLI takes them), else the newest running one. */
async function find(ref: string): Promise<Listed> {
  const { listed, coordinatorError } = await listDataflows();
  const hit = pick(listed, ref);
  if (!hit) throw new Error(ref ? `no dataflow with id or name "${ref}"` : `no dataflow is running${coordinatorError ? ` (${coordinatorError})` : ''}`);
  return hit;
}

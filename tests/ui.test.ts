/// <reference lib="dom" />
/**
 * `dora ui` in a real headless browser (Debian's Chromium, driven by playwright-core):
 * the graph of a running dataflow, its live numbers, a node's log lines, the stop button;
 * and the server's refusals (no token, a foreign Host, a cross-site stop). Also checks
 * that `dora graph --html` renders every node in that browser.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT, dora, leftovers, node, startDora, tempDataflow, waitFor } from './support/dataflow';

const port = String(20000 + ((process.pid + 12011) % 20000));
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-state-'));
const env = { DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir };
/** Debian's package (scripts/setup.sh installs it); CHROMIUM names another. */
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
let browser: Browser;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup.sh (it installs Debian's chromium) or set CHROMIUM`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  expect((await dora(['up'], { env })).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await dora(['down'], { env });
  fs.rmSync(stateDir, { recursive: true, force: true });
  expect(leftovers()).toEqual([]);
});

/** Polls an asynchronous condition every 200 ms until it holds. */
async function until(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await predicate()); await new Promise((r) => setTimeout(r, 200))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** A raw request to the UI server, with the headers given (Host included). */
function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('dora ui: the graph with the dataflow’s nodes, live numbers that follow the edges’ rates and the nodes’ memory, a clicked node’s log lines, the stop button; requests without the token, from another Host or a cross-site stop are refused', async () => {
  // 20 or 80 messages a second on ticker/out, switching every 1.5 s
  const df = tempDataflow(`nodes:\n` + node('ticker', 'wave-sender.ts', `    inputs: { tick: dora/timer/millis/50 }\n    outputs: [out]\n`) + node('printer', 'printer.ts', `    inputs: { data: ticker/out }\n`));
  const id = (await dora(['start', df.file, '--name', 'ui-demo'], { env })).stdout.trim();
  const wrong = await dora(['ui', 'ui-dmeo', '--port', '0'], { env });
  expect([wrong.code, wrong.stderr.trim()]).toEqual([1, 'error: no dataflow with id or name "ui-dmeo" (see `dora list`)']);
  const ui = startDora(['ui', 'ui-demo', '--port', '0'], { env });
  try {
    let out = '';
    ui.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.test(out), 10_000, 'the URL');
    const url = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=(\w+)/.exec(out)!;
    const [base, uiPort, token] = [`http://127.0.0.1:${url[1]}`, url[1], url[2]];

    // refusals, before any browser
    expect((await request(`${base}/`)).status).toBe(403);
    expect((await request(`${base}/?token=${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`)).status).toBe(403);
    expect((await request(`${base}/api/dataflows`)).status).toBe(403);
    expect((await request(`${base}/api/dataflows?token=${token}`)).status).toBe(403); // the API takes it in a header only
    const rebound = await request(`${base}/?token=${token}`, { headers: { Host: `attacker.example:${uiPort}` } });
    expect([rebound.status, JSON.parse(rebound.body).error]).toEqual([403, `refused: Host "attacker.example:${uiPort}" is not this server (127.0.0.1:${uiPort})`]);
    expect((await request(`${base}/api/stop`, { method: 'POST', headers: { 'X-Dora-Token': token, Origin: 'http://attacker.example' } })).status).toBe(403);
    expect((await request(`${base}/api/stop`, { method: 'POST', headers: { 'X-Dora-Token': token, 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    expect((await request(`${base}/api/stop`, { method: 'GET', headers: { 'X-Dora-Token': token } })).status).toBe(404);
    const page0 = await request(`${base}/?token=${token}`);
    expect(page0.status).toBe(200);
    // self-contained: nothing loaded from elsewhere (the SVG namespace is a name, not a fetch)
    expect(page0.body).not.toMatch(/<script[^>]+src=|<link[^>]+href="(?!data:)|https?:\/\/(?!127\.0\.0\.1|www\.w3\.org\/2000\/svg)/);
    expect(JSON.parse((await dora(['list', '--json'], { env })).stdout).find((d: { id: string }) => d.id === id).status).toBe('running');

    const page = await browser.newPage();
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(r.url()));
    page.on('console', (m) => (m.type() === 'error' ? failed.push(m.text()) : undefined));
    await page.goto(`${base}/?token=${token}`);
    expect(page.url()).toBe(`${base}/`); // the token left the address bar
    await page.waitForSelector('svg g.node');
    expect(await page.locator('svg g.node text:not(.nmetric)').allTextContents()).toEqual(['ticker', 'printer']);
    const edge = page.locator('g.edge[data-source="ticker/out"][data-target="printer/data"] .metric');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'running');

    // live numbers: the edge's rate follows the sender's, up and down
    const rates = new Set<number>();
    for (let deadline = Date.now() + 20_000; Date.now() < deadline && !([...rates].some((r) => r > 10 && r < 40) && [...rates].some((r) => r > 50)); ) {
      const m = /^([\d.]+) msg\/s/.exec((await edge.textContent()) ?? '');
      if (m) rates.add(Number(m[1]));
      await page.waitForTimeout(250);
    }
    expect([...rates].some((r) => r > 10 && r < 40)).toBe(true);
    expect([...rates].some((r) => r > 50)).toBe(true);
    expect(await page.locator('#banner').isVisible()).toBe(false);
    // each node's memory, from the coordinator's metrics (CPU needs a few seconds of samples)
    const printerRow = page.locator('#nodes tbody tr', { hasText: 'printer' });
    await page.waitForFunction(() => /\d+(\.\d)? MB/.test(Array.from(document.querySelectorAll('#nodes tbody tr')).find((r) => r.textContent!.startsWith('printer'))?.textContent ?? ''));
    expect(await printerRow.locator('td').nth(1).textContent()).toBe('running');
    expect(await page.locator('g.node[data-key="node:printer"] .nmetric').textContent()).toMatch(/^cpu (n\/a|[\d.]+ %) · [\d.]+ MB$/);

    await page.locator('g.node[data-key="node:printer"]').click();
    await page.waitForFunction(() => /received \d+/.test(document.querySelector('#logs')?.textContent ?? ''));
    expect(await page.locator('#logtitle').textContent()).toBe('Logs of printer');
    expect((await page.locator('#logs').textContent())!.split('\n').at(-1)).toMatch(/^\d{4}-\d\d-\d\dT\S+Z received \d+$/);

    await page.locator('#stop').click();
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'stopped', undefined, { timeout: 20_000 });
    expect(JSON.parse((await dora(['list', '--json'], { env })).stdout).find((d: { id: string }) => d.id === id).status).toBe('stopped');
    expect(failed).toEqual([]);
    await page.close();
  } finally {
    ui.child.kill('SIGINT');
    expect((await ui.done).code).toBe(0);
  }
}, 90_000);

test('dora ui shows a dataflow of `dora run` (no coordinator involved): its live numbers and logs from the run’s own control socket, and its stop button ends the run', async () => {
  const df = tempDataflow(`nodes:\n` + node('ticker', 'wave-sender.ts', `    inputs: { tick: dora/timer/millis/50 }\n    outputs: [out]\n`) + node('printer', 'printer.ts', `    inputs: { data: ticker/out }\n`));
  const run = startDora(['run', df.file], { env, cwd: df.dir });
  let out = '';
  run.child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // the run's id: the folder in the runtime directory whose daemon.json names this file
  const runtime = `/tmp/dora-ts-${process.getuid!()}`;
  const idOf = () => fs.readdirSync(runtime).find((d) => { try { return JSON.parse(fs.readFileSync(path.join(runtime, d, 'daemon.json'), 'utf8')).file === df.file; } catch { return false; } });
  await waitFor(() => idOf() !== undefined, 20_000, 'the dataflow to start');
  const id = idOf()!;
  const ui = startDora(['ui', id, '--port', '0'], { env });
  try {
    let printed = '';
    ui.child.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.test(printed), 10_000, 'the URL');
    const [, uiPort, token] = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=(\w+)/.exec(printed)!;
    const api = async (route: string, method = 'GET') => {
      const r = await request(`http://127.0.0.1:${uiPort}${route}`, { method, headers: { 'X-Dora-Token': token } });
      expect(r.status).toBe(200);
      return JSON.parse(r.body);
    };
    const listed = (await api('/api/dataflows')).dataflows.find((d: { id: string }) => d.id === id);
    expect([listed.status, listed.file, listed.nodes.map((n: { id: string }) => n.id).sort()]).toEqual(['running', df.file, ['printer', 'ticker']]);
    let m: { available: boolean; edges: { source: string; messages: number }[] } = { available: false, edges: [] };
    await until(async () => ((m = await api(`/api/metrics?dataflow=${id}`)), m.available && m.edges.some((e) => e.source === 'ticker/out' && e.messages > 0)), 20_000, 'messages counted on ticker/out');
    await until(async () => (await api(`/api/logs?dataflow=${id}&node=printer`)).lines.some((l: string) => /received \d+/.test(l)), 10_000, "printer's log lines");
    expect((await api(`/api/graph?dataflow=${id}`)).svg).toContain('printer');
    expect((await api(`/api/stop?dataflow=${id}`, 'POST')).dataflow.status).toBe('stopping');
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(out).toMatch(/dataflow [0-9a-f-]+ stopped/);
    // once ended it is still listed, as stopped, and says why it has no numbers
    expect((await api(`/api/metrics?dataflow=${id}`)).available).toBe(false);
    expect((await api('/api/dataflows')).dataflows.find((d: { id: string }) => d.id === id).status).toBe('stopped');
  } finally {
    run.child.kill('SIGINT');
    ui.child.kill('SIGINT');
    expect((await ui.done).code).toBe(0);
  }
}, 60_000);

test('dora graph --html renders in Chromium with every node visible (no network)', async () => {
  const file = path.join(ROOT, 'examples/dataflow.yml');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dora-graph-')), 'graph.html');
  try {
    expect((await dora(['graph', file, '--html', out])).code).toBe(0);
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${out}`);
    const ids = (await dora(['graph', file])).stdout.match(/^ {2}n\d+\["([^"]+)"\]$/gm)!.map((l) => /"([^"]+)"/.exec(l)![1]);
    expect(ids.length).toBeGreaterThan(1);
    expect(await page.locator('svg g.node text').allTextContents()).toEqual(ids);
    const svg = (await page.locator('svg').first().boundingBox())!;
    for (const box of await page.locator('svg g.node rect').all()) {
      await expect(box.isVisible()).resolves.toBe(true);
      const b = (await box.boundingBox())!;
      expect(b.width).toBeGreaterThan(0);
      // inside the drawing
      expect(b.x).toBeGreaterThanOrEqual(svg.x);
      expect(b.y).toBeGreaterThanOrEqual(svg.y);
      expect(b.x + b.width).toBeLessThanOrEqual(svg.x + svg.width + 0.5);
      expect(b.y + b.height).toBeLessThanOrEqual(svg.y + svg.height + 0.5);
    }
    expect(requests).toEqual([`file://${out}`]);
    await page.close();
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}, 60_000);

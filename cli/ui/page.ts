/**
 * The one page `dora ui` serves: styles and script inline (allowed by the nonce of the
 * server's Content-Security-Policy), nothing loaded from elsewhere. The script keeps the
 * token out of the address bar, polls the server once a second, and draws live numbers
 * onto the graph `dora graph` lays out (edges carry `data-source`/`data-target`).
 */

const STYLE = `
body{font-family:system-ui,sans-serif;margin:0;color:#202124}
header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#f1f3f4;border-bottom:1px solid #dadce0}
header h1{font-size:1.1em;margin:0}
#status{font-weight:bold}
#stop{background:#d93025;color:#fff;border:0;padding:.4em 1em;border-radius:4px;cursor:pointer}
#stop:disabled{background:#bbb;cursor:default}
#banner{padding:.5em 1em;background:#fef7e0;display:none}
main{display:flex;gap:1em;padding:1em;align-items:flex-start}
#graph{flex:1;overflow:auto}
aside{width:38%;min-width:300px}
#logs{background:#202124;color:#e8eaed;padding:.6em;height:22em;overflow:auto;font-size:12px;white-space:pre-wrap}
table{border-collapse:collapse;margin:0 1em 1em;font-size:13px}
td,th{border:1px solid #dadce0;padding:.2em .6em;text-align:left}
.node{cursor:pointer}
.node.selected rect{stroke-width:3;stroke:#d93025}
.metric{fill:#137333;font-size:10px;text-anchor:start}
.nmetric{fill:#5f6368;font-size:10px;text-anchor:middle}
`;

const SCRIPT = `
'use strict';
const params = new URLSearchParams(location.search);
const token = params.get('token') || sessionStorage.getItem('dora-ui-token') || '';
sessionStorage.setItem('dora-ui-token', token);
history.replaceState(null, '', '/'); // the token leaves the address bar (and the history)
let dataflow = INITIAL.dataflow;
let selected = null;
let drawn = null;
const $ = (id) => document.getElementById(id);

async function api(path, init) {
  const res = await fetch(path, Object.assign({ headers: { 'X-Dora-Token': token } }, init || {}));
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
const q = () => '?dataflow=' + encodeURIComponent(dataflow || '');

function fmtRate(n) { return n == null ? 'n/a' : (n >= 100 ? n.toFixed(0) : n.toFixed(1)); }
function fmtBytes(n) {
  if (n == null) return 'n/a';
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
}
function fmtUs(n) { return n == null ? 'n/a' : n >= 1000 ? (n / 1000).toFixed(1) + ' ms' : n.toFixed(0) + ' µs'; }
function svgText(parent, cls, x, y, text) {
  const t = document.createElementNS('http://www.w3.org/2000/svg', 'text');
  t.setAttribute('class', cls); t.setAttribute('x', x); t.setAttribute('y', y); t.textContent = text;
  parent.appendChild(t);
  return t;
}

async function drawGraph() {
  const g = await api('/api/graph' + q());
  dataflow = g.id;
  if (g.error) { $('graph').textContent = g.error; return; }
  $('graph').innerHTML = g.svg;
  const svg = $('graph').querySelector('svg');
  // room for the numbers: left of the boxes' labels, right of the edges' labels, below the last row
  const [w, h] = [Number(svg.getAttribute('width')) + 200, Number(svg.getAttribute('height')) + 16];
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  svg.setAttribute('viewBox', '-60 0 ' + w + ' ' + h);
  for (const edge of svg.querySelectorAll('g.edge')) {
    const r = edge.querySelector('rect');
    edge.metric = svgText(edge, 'metric', Number(r.getAttribute('x')) + Number(r.getAttribute('width')) + 4, Number(r.getAttribute('y')) + 13, 'n/a');
  }
  for (const node of svg.querySelectorAll('g.node')) {
    const r = node.querySelector('rect');
    node.metric = svgText(node, 'nmetric', Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2, Number(r.getAttribute('y')) + Number(r.getAttribute('height')) + 11, '');
    node.addEventListener('click', () => select(node.dataset.key.slice(5)));
  }
  drawn = dataflow;
}

function select(id) {
  selected = id;
  for (const n of document.querySelectorAll('g.node')) n.classList.toggle('selected', n.dataset.key === 'node:' + id);
  $('logtitle').textContent = 'Logs of ' + id;
  $('logs').textContent = '';
  void refreshLogs();
}

async function refreshLogs() {
  if (!selected) return;
  const { lines } = await api('/api/logs' + q() + '&node=' + encodeURIComponent(selected) + '&tail=100');
  const box = $('logs');
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.textContent = lines.length ? lines.join('\\n') : '(no log lines yet)';
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
  return tr;
}

async function refreshMetrics() {
  const m = await api('/api/metrics' + q());
  const df = m.dataflow;
  $('status').textContent = df.status;
  $('status').dataset.status = df.status;
  $('stop').disabled = df.status !== 'running';
  const nodeRows = $('nodes').querySelector('tbody');
  const edgeRows = $('edges').querySelector('tbody');
  nodeRows.replaceChildren();
  edgeRows.replaceChildren();
  const banner = $('banner');
  banner.style.display = m.available ? 'none' : 'block';
  banner.textContent = m.available ? '' : 'Live numbers n/a: ' + m.message;
  const byNode = new Map((m.nodes || []).map((n) => [n.id, n]));
  for (const n of df.nodes) {
    const live = byNode.get(n.id);
    // a node of a machine that did not answer in time: its numbers are unknown, not zero
    const stale = live && live.stale;
    const cpu = stale ? '?' : live && live.cpuPercent != null ? live.cpuPercent.toFixed(1) + ' %' : 'n/a';
    const mem = stale ? '?' : live ? fmtBytes(live.rssBytes) : 'n/a';
    const num = (v) => (stale ? '?' : live && v != null ? String(v) : 'n/a');
    const machine = live && live.machine ? live.machine + (stale ? ' (not answering)' : '') : '-';
    const tr = row([n.id, n.status, n.pid == null ? '-' : String(n.pid), String(n.restarts), cpu, mem, num(live && live.queueDepth), num(live && live.dropped), num(live && live.samplesHeld), machine]);
    if (stale) tr.title = stale;
    nodeRows.appendChild(tr);
    const g = document.querySelector('g.node[data-key="node:' + CSS.escape(n.id) + '"]');
    if (g && g.metric) g.metric.textContent = 'cpu ' + cpu + ' · ' + mem;
  }
  const byEdge = new Map((m.edges || []).map((e) => [e.source + ' -> ' + e.target, e]));
  for (const g of document.querySelectorAll('g.edge')) {
    const measured = byEdge.get(g.dataset.source + ' -> ' + g.dataset.target);
    // an edge whose receiver's machine did not answer: unknown (n/a, the reason in the tooltip), not zero
    const e = measured && !measured.stale ? measured : undefined;
    // short on the drawing (edges run close together), everything in the table and the tooltip
    if (g.metric) {
      g.metric.textContent = e ? fmtRate(e.messagesPerSec) + ' msg/s' + (e.dropped > 0 ? ' · ' + e.dropped + ' dropped' : '') : 'n/a';
      const tip = e ? g.dataset.source + ' → ' + g.dataset.target + ': ' + fmtRate(e.messagesPerSec) + ' msg/s, ' + fmtBytes(e.bytesPerSec) + '/s, p50 ' + fmtUs(e.latencyP50Us) + ', p99 ' + fmtUs(e.latencyP99Us) + ', ' + e.dropped + ' dropped' : measured && measured.stale ? 'n/a: ' + measured.stale : 'n/a';
      let title = g.querySelector('title');
      if (!title) { title = document.createElementNS('http://www.w3.org/2000/svg', 'title'); g.prepend(title); }
      title.textContent = tip;
    }
    edgeRows.appendChild(row([g.dataset.source, g.dataset.target, e ? fmtRate(e.messagesPerSec) : 'n/a', e ? fmtBytes(e.bytesPerSec) + '/s' : 'n/a', e ? fmtUs(e.latencyP50Us) : 'n/a', e ? fmtUs(e.latencyP99Us) : 'n/a', e ? String(e.dropped) : 'n/a', e && e.queueDepth != null ? String(e.queueDepth) : 'n/a']));
  }
}

async function refreshList() {
  const { dataflows } = await api('/api/dataflows');
  const sel = $('dataflows');
  const current = sel.value;
  sel.replaceChildren();
  for (const d of dataflows.slice().reverse()) {
    const o = document.createElement('option');
    o.value = d.id; o.textContent = (d.name ? d.name + ' ' : '') + d.id.slice(0, 8) + ' (' + d.status + ')';
    sel.appendChild(o);
  }
  sel.value = dataflow || current;
}

async function tick() {
  try {
    if (drawn !== dataflow || !drawn) await drawGraph();
    await refreshList();
    await refreshMetrics();
    await refreshLogs();
    $('error').textContent = '';
  } catch (err) {
    $('error').textContent = String(err.message || err);
  }
  setTimeout(tick, 1000);
}

$('dataflows').addEventListener('change', (e) => { dataflow = e.target.value; selected = null; drawn = null; });
$('stop').addEventListener('click', async () => {
  $('stop').disabled = true;
  try {
    const r = await api('/api/stop' + q(), { method: 'POST' });
    $('status').textContent = r.dataflow.status;
  } catch (err) { $('error').textContent = String(err.message || err); }
});
void tick();
`;

/** The page, with the initial dataflow (the command's argument, or null for the newest running one). */
export function pageHtml(options: { nonce: string; dataflow: string | null }): string {
  // JSON in a script: '<' escaped so no value can close the element
  const initial = JSON.stringify({ dataflow: options.dataflow }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dora ui</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>dora ui</h1><select id="dataflows" aria-label="dataflow"></select><span>status: <span id="status">…</span></span><button id="stop" disabled>Stop dataflow</button><span id="error" role="alert"></span></header>
<div id="banner"></div>
<main><section id="graph">loading…</section>
<aside><h2 id="logtitle">Logs</h2><pre id="logs">Click a node to see its last log lines.</pre></aside></main>
<h2 style="margin:0 1em">Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>status</th><th>pid</th><th>restarts</th><th>CPU</th><th>memory</th><th>queued</th><th>dropped</th><th>samples held</th><th>machine</th></tr></thead><tbody></tbody></table>
<h2 style="margin:0 1em">Edges</h2>
<table id="edges"><thead><tr><th>source</th><th>target</th><th>msg/s</th><th>bytes/s</th><th>p50</th><th>p99</th><th>dropped</th><th>queue</th></tr></thead><tbody></tbody></table>
<script nonce="${options.nonce}">const INITIAL = ${initial};${SCRIPT}</script>
</body>
</html>
`;
}

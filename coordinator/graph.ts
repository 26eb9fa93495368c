/**
 * The dataflow as a picture: Mermaid text (`dora graph`), and a self-contained HTML
 * page (`dora graph --html`) that draws it as SVG laid out here, so it shows offline.
 */
import type { ResolvedDataflow } from './dataflow';
import { DEFAULT_QUEUE_SIZE } from './dataflow';

/** Mermaid ids must be plain identifiers; node ids may contain '-' and '.'. */
const nodeKey = (index: number) => `n${index}`;
const timerKey = (index: number) => `t${index}`;
const label = (text: string) => `"${text.replace(/"/g, '#quot;')}"`;

export function toMermaid(dataflow: ResolvedDataflow): string {
  const lines = ['flowchart TB'];
  const keys = new Map(dataflow.nodes.map((n, i) => [n.id, nodeKey(i)]));
  const timerKeys = new Map(dataflow.timers.map((t, i) => [t.name, timerKey(i)]));
  dataflow.timers.forEach((t, i) => lines.push(`  ${timerKey(i)}([${label(t.name.replace(/^dora\/timer\//, 'timer '))}])`));
  // Each distinct `dora/logs…` source is drawn once, like a timer.
  const logsKeys = new Map<string, string>();
  for (const input of dataflow.nodes.flatMap((n) => n.inputs)) {
    if (input.source.kind !== 'logs' || logsKeys.has(input.source.name)) continue;
    logsKeys.set(input.source.name, `l${logsKeys.size}`);
    lines.push(`  l${logsKeys.size - 1}([${label(input.source.name.replace(/^dora\//, ''))}])`);
  }
  dataflow.nodes.forEach((n, i) => lines.push(`  ${nodeKey(i)}[${label(n.id)}]`));
  for (const node of dataflow.nodes) {
    for (const input of node.inputs) {
      const s = input.source;
      const from = s.kind === 'timer' ? timerKeys.get(s.name) : s.kind === 'logs' ? logsKeys.get(s.name) : keys.get(s.node);
      const output = s.kind === 'node' ? s.output : '';
      let text = output === input.id || output === '' ? input.id : `${output} as ${input.id}`;
      if (input.queueSize !== DEFAULT_QUEUE_SIZE) text += ` (queue ${input.queueSize})`;
      lines.push(`  ${from} -- ${label(text)} --> ${keys.get(node.id)}`);
    }
  }
  return lines.join('\n');
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A vertex of the drawing: a node, or a built-in source (timer, `dora/logs…`). */
interface Vertex {
  readonly key: string;
  readonly text: string;
  readonly builtin: boolean;
}

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly text: string;
  /** The source as written (`node/output`, or the built-in's name) and `node/input`: how live metrics name the edge (`dora ui`). */
  readonly source: string;
  readonly target: string;
}

/** The graph's vertices and labelled edges, shared by the Mermaid text and the drawing. */
function graphOf(dataflow: ResolvedDataflow): { vertices: Vertex[]; edges: Edge[] } {
  const vertices: Vertex[] = [];
  const sources = new Map<string, string>();
  const edges: Edge[] = [];
  for (const node of dataflow.nodes) vertices.push({ key: `node:${node.id}`, text: node.id, builtin: false });
  for (const node of dataflow.nodes) {
    for (const input of node.inputs) {
      const s = input.source;
      let from = `node:${s.kind === 'node' ? s.node : ''}`;
      if (s.kind !== 'node') {
        from = `${s.kind}:${s.name}`;
        if (!sources.has(from)) {
          sources.set(from, from);
          vertices.push({ key: from, text: s.kind === 'timer' ? s.name.replace(/^dora\/timer\//, 'timer ') : s.name.replace(/^dora\//, ''), builtin: true });
        }
      }
      const output = s.kind === 'node' ? s.output : '';
      let text = output === input.id || output === '' ? input.id : `${output} → ${input.id}`;
      if (input.queueSize !== DEFAULT_QUEUE_SIZE) text += ` (queue ${input.queueSize})`;
      edges.push({ from, to: `node:${node.id}`, text, source: s.kind === 'node' ? `${s.node}/${s.output}` : s.name, target: `${node.id}/${input.id}` });
    }
  }
  return { vertices, edges };
}

const CHAR_W = 7.2; // px per character of the 12 px monospace labels
const BOX_H = 34;
const LAYER_GAP = 110;
const BOX_GAP = 40;

/**
 * The dataflow drawn as SVG, laid out here (no library, no network): vertices in layers
 * by their longest path from a source (edges that close a cycle are left out of the
 * ranking and drawn curving back), each layer ordered by the mean position of its
 * predecessors, edges as curves labelled with their input.
 */
export function toSvg(dataflow: ResolvedDataflow): string {
  const { vertices, edges } = graphOf(dataflow);
  // Ranks: a DFS marks back edges; the others rank by longest path (a DAG once they are gone).
  const out = new Map<string, Edge[]>(vertices.map((v) => [v.key, []]));
  for (const e of edges) out.get(e.from)?.push(e);
  const back = new Set<Edge>();
  const state = new Map<string, 1 | 2>();
  const visit = (key: string) => {
    state.set(key, 1);
    for (const e of out.get(key) ?? []) {
      if (state.get(e.to) === 1) back.add(e);
      else if (!state.has(e.to)) visit(e.to);
    }
    state.set(key, 2);
  };
  for (const v of vertices) if (!state.has(v.key)) visit(v.key);
  const rank = new Map<string, number>(vertices.map((v) => [v.key, 0]));
  for (let changed = true, rounds = 0; changed && rounds <= vertices.length; rounds++) {
    changed = false;
    for (const e of edges) {
      if (back.has(e) || !rank.has(e.from) || !rank.has(e.to)) continue;
      if (rank.get(e.to)! < rank.get(e.from)! + 1) (rank.set(e.to, rank.get(e.from)! + 1), (changed = true));
    }
  }
  const width = (v: Vertex) => Math.max(70, v.text.length * CHAR_W + 24);
  // Edges longer than one layer pass through a waypoint in every layer between, which the
  // layer's ordering treats like a box, so they are routed around boxes instead of through them.
  const waypoints = new Map<Edge, string[]>();
  const layers: { key: string; w: number; preds: string[]; vertex?: Vertex }[][] = [];
  const place = (r: number, item: { key: string; w: number; preds: string[]; vertex?: Vertex }) => (layers[r] ??= []).push(item);
  const preds = (key: string) => edges.filter((e) => e.to === key && !back.has(e)).map((e) => waypoints.get(e)?.at(-1) ?? e.from);
  for (const e of edges) {
    if (back.has(e)) continue;
    const [r1, r2] = [rank.get(e.from)!, rank.get(e.to)!];
    const ids: string[] = [];
    for (let r = r1 + 1; r < r2; r++) ids.push(`wp:${edges.indexOf(e)}:${r}`);
    waypoints.set(e, ids);
  }
  for (const v of vertices) place(rank.get(v.key)!, { key: v.key, w: width(v), preds: [], vertex: v });
  for (const [e, ids] of waypoints) ids.forEach((id, k) => place(rank.get(e.from)! + 1 + k, { key: id, w: 24, preds: [k === 0 ? e.from : ids[k - 1]] }));
  for (const layer of layers) for (const item of layer ?? []) if (item.vertex) item.preds = preds(item.key);
  const pos = new Map<string, { x: number; y: number; w: number }>();
  let widest = 0;
  layers.forEach((layer, r) => {
    // order by the mean x of predecessors already placed (barycenter), keeping file order on ties
    const mean = (item: { preds: string[] }) => {
      const xs = item.preds.filter((k) => pos.has(k)).map((k) => pos.get(k)!.x);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Infinity;
    };
    const ordered = (layer ?? []).map((item, i) => ({ item, i, m: mean(item) })).sort((a, b) => (a.m === b.m ? a.i - b.i : a.m - b.m));
    let x = 20;
    for (const { item } of ordered) {
      pos.set(item.key, { x: x + item.w / 2, y: 30 + r * LAYER_GAP, w: item.w });
      x += item.w + BOX_GAP;
    }
    widest = Math.max(widest, x);
  });
  const height = 30 + (layers.length - 1) * LAYER_GAP + BOX_H / 2 + 24;
  const parts: string[] = [];
  const labels: { x: number; y: number; w: number }[] = [];
  // Edges leave and enter a box at points spread along its edge, ordered by where they go or come from.
  const ports = new Map<string, number>();
  const spread = (key: string, list: { id: string; x: number }[]) => {
    const box = pos.get(key);
    if (!box) return;
    const step = Math.min(24, (box.w - 16) / Math.max(1, list.length));
    list.sort((p, q) => p.x - q.x).forEach((item, k) => ports.set(item.id, box.x + (k - (list.length - 1) / 2) * step));
  };
  for (const v of vertices) {
    const forward = edges.filter((e) => !back.has(e));
    spread(v.key, forward.filter((e) => e.from === v.key).map((e) => ({ id: `out:${edges.indexOf(e)}`, x: pos.get(waypoints.get(e)?.[0] ?? e.to)?.x ?? 0 })));
    spread(v.key, forward.filter((e) => e.to === v.key).map((e) => ({ id: `in:${edges.indexOf(e)}`, x: pos.get(waypoints.get(e)?.at(-1) ?? e.from)?.x ?? 0 })));
  }
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    let d: string;
    let lx: number;
    let ly: number;
    if (back.has(e) || b.y <= a.y) {
      // back to an earlier layer: out of the side, round, and in from above
      const side = Math.max(a.x + a.w / 2, b.x + b.w / 2) + 30;
      d = `M${a.x + a.w / 2},${a.y} C${side},${a.y} ${side},${b.y - BOX_H} ${b.x},${b.y - BOX_H / 2}`;
      [lx, ly] = [side, (a.y + b.y) / 2];
    } else {
      // through its waypoints: a vertical S-curve per layer gap
      const i = edges.indexOf(e);
      const points = [{ x: ports.get(`out:${i}`) ?? a.x, y: a.y + BOX_H / 2 }, ...(waypoints.get(e) ?? []).map((k) => pos.get(k)!), { x: ports.get(`in:${i}`) ?? b.x, y: b.y - BOX_H / 2 }];
      d = `M${points[0].x},${points[0].y}`;
      for (let k = 1; k < points.length; k++) {
        const [p, q] = [points[k - 1], points[k]];
        const my = (p.y + q.y) / 2;
        d += ` C${p.x},${my} ${q.x},${my} ${q.x},${q.y}`;
      }
      // the label sits on the last stretch, where the edges into one box are furthest apart
      const [p, q] = [points[points.length - 2], points[points.length - 1]];
      [lx, ly] = [(p.x + q.x) / 2, (p.y + q.y) / 2];
    }
    const lw = e.text.length * CHAR_W + 8;
    // a label that would cover another moves up or down a line, nearest free place first
    const free = (y: number) => !labels.some((l) => Math.abs(l.x - lx) < (l.w + lw) / 2 + 2 && Math.abs(l.y - y) < 19);
    ly = [0, -19, 19, -38, 38].map((dy) => ly + dy).find(free) ?? ly;
    labels.push({ x: lx, y: ly, w: lw });
    parts.push(
      `<g class="edge" data-from="${escapeHtml(e.from)}" data-to="${escapeHtml(e.to)}" data-source="${escapeHtml(e.source)}" data-target="${escapeHtml(e.target)}"><path d="${d}" marker-end="url(#arrow)"/>` +
        `<rect x="${lx - lw / 2}" y="${ly - 9}" width="${lw}" height="18" rx="3"/><text x="${lx}" y="${ly + 4}">${escapeHtml(e.text)}</text></g>`,
    );
  }
  for (const v of vertices) {
    const p = pos.get(v.key)!;
    parts.push(
      `<g class="${v.builtin ? 'source' : 'node'}" data-key="${escapeHtml(v.key)}"><rect x="${p.x - p.w / 2}" y="${p.y - BOX_H / 2}" width="${p.w}" height="${BOX_H}" rx="${v.builtin ? BOX_H / 2 : 6}"/>` +
        `<text x="${p.x}" y="${p.y + 4}">${escapeHtml(v.text)}</text></g>`,
    );
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(widest, 200)}" height="${height}" viewBox="0 0 ${Math.max(widest, 200)} ${height}" font-family="monospace" font-size="12">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>` +
    `<style>.node rect{fill:#e8f0fe;stroke:#3367d6}.source rect{fill:#fef7e0;stroke:#e37400}text{text-anchor:middle;fill:#202124}` +
    `.edge path{fill:none;stroke:#555;stroke-width:1.3}.edge rect{fill:#fff;opacity:.85}.edge text{fill:#555;font-size:11px}</style>` +
    parts.join('') +
    `</svg>`
  );
}

/** A self-contained page: the graph drawn as SVG (it needs no network), and its Mermaid text to copy. */
export function toHtml(dataflow: ResolvedDataflow): string {
  const mermaid = escapeHtml(toMermaid(dataflow));
  const title = escapeHtml(dataflow.file);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dataflow ${title}</title>
<style>body { font-family: sans-serif; margin: 2em; } pre { background: #fafafa; padding: 1em; }</style>
</head>
<body>
<h1>${title}</h1>
${toSvg(dataflow)}
<details><summary>Mermaid</summary>
<pre class="mermaid">
${mermaid}
</pre>
</details>
</body>
</html>
`;
}

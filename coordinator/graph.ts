/**
 * The dataflow as a picture: Mermaid text (`dora graph`) and a self-contained
 * HTML page that renders it (`dora graph --html`).
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

/** A page that renders the graph with Mermaid from a CDN and shows the Mermaid text when offline. */
export function toHtml(dataflow: ResolvedDataflow): string {
  const mermaid = escapeHtml(toMermaid(dataflow));
  const title = escapeHtml(dataflow.file);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dataflow ${title}</title>
<style>body { font-family: sans-serif; margin: 2em; } pre.mermaid { background: #fafafa; }</style>
</head>
<body>
<h1>${title}</h1>
<pre class="mermaid">
${mermaid}
</pre>
<script type="module">
import mermaid from 'https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs';
mermaid.initialize({ startOnLoad: true });
</script>
</body>
</html>
`;
}

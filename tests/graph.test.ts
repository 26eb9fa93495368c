/** `dora graph`: Mermaid text and the HTML page. */
import * as fs from 'node:fs';
import { parseDescriptor, toHtml, toMermaid, toSvg } from '../coordinator';
import { dora, tempDataflow } from './support/dataflow';

const df = parseDescriptor(
  `nodes:
  - id: camera
    path: camera.py
    inputs: { tick: dora/timer/hz/30 }
    outputs: [image]
  - id: object-detector.v2
    path: det.py
    inputs:
      frame: camera/image
      slow: { source: camera/image, queue_size: 1 }
    outputs: [boxes]
  - id: sink
    path: x.py
    inputs: { boxes: object-detector.v2/boxes }
`,
  '/flows/<robot>.yml',
  '/flows',
  { checkPaths: false },
);

test('Mermaid: timers, nodes, and one labelled edge per input', () => {
  expect(toMermaid(df)).toBe(
    [
      'flowchart TB',
      '  t0(["timer hz/30"])',
      '  n0["camera"]',
      '  n1["object-detector.v2"]',
      '  n2["sink"]',
      '  t0 -- "tick" --> n0',
      '  n0 -- "image as frame" --> n1',
      '  n0 -- "image as slow (queue 1)" --> n1',
      '  n1 -- "boxes" --> n2',
    ].join('\n'),
  );
});

test('HTML escapes text and draws the graph itself: SVG laid out here, nothing fetched from the network', () => {
  const html = toHtml(df);
  expect(html).toContain('<h1>/flows/&lt;robot&gt;.yml</h1>');
  expect(html).toContain('n2[&quot;sink&quot;]'); // the Mermaid text, to copy
  expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // no CDN: it shows offline
  expect(html).not.toContain('<script');
  const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>') + 6);
  for (const node of df.nodes) expect(svg).toContain(`data-key="node:${node.id}"`);
  const edges = df.nodes.reduce((n, node) => n + node.inputs.length, 0);
  expect(svg.match(/<g class="edge"/g)).toHaveLength(edges);
});

test('the drawing keeps every box inside the picture and apart, also with a cycle and long edges', () => {
  const flow = parseDescriptor(
    `nodes:\n  - { id: a, path: /bin/true, inputs: { t: dora/timer/millis/10, back: c/y }, outputs: [x] }\n` +
      `  - { id: b, path: /bin/true, inputs: { x: a/x }, outputs: [y] }\n  - { id: c, path: /bin/true, inputs: { y: b/y, skip: a/x }, outputs: [y] }\n`,
    '/flows/cycle.yml',
    '/flows',
    { checkPaths: false },
  );
  const svg = toSvg(flow);
  const [, width, height] = /width="([\d.]+)" height="([\d.]+)"/.exec(svg)!.map(Number);
  const boxes = [...svg.matchAll(/<g class="(?:node|source)"[^>]*><rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)].map((m) => m.slice(1).map(Number));
  expect(boxes).toHaveLength(4); // a, b, c and the timer
  for (const [x, y, w, h] of boxes) expect(x >= 0 && y >= 0 && x + w <= width && y + h <= height).toBe(true);
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const [p, q] = [boxes[i], boxes[j]];
      const apart = p[0] + p[2] <= q[0] || q[0] + q[2] <= p[0] || p[1] + p[3] <= q[1] || q[1] + q[3] <= p[1];
      expect(apart).toBe(true);
    }
  expect(svg.match(/<g class="edge"/g)).toHaveLength(5);
});

test('`dora graph` prints Mermaid; `--html` writes a page', async () => {
  const flow = tempDataflow(`nodes:\n  - id: a\n    path: /bin/true\n    outputs: [x]\n  - id: b\n    path: /bin/true\n    inputs: { x: a/x }\n`);
  const printed = await dora(['graph', flow.file]);
  expect(printed.code).toBe(0);
  expect(printed.stdout).toContain('n0 -- "x" --> n1');
  const page = `${flow.dir}/graph.html`;
  const written = await dora(['graph', flow.file, '--html', page]);
  expect(written.code).toBe(0);
  expect(fs.readFileSync(page, 'utf8')).toContain('n0 -- &quot;x&quot; --&gt; n1');
});

/** `dora graph`: Mermaid text and the HTML page. */
import * as fs from 'node:fs';
import { parseDescriptor, toHtml, toMermaid } from '../coordinator';
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

test('HTML escapes text and embeds the graph', () => {
  const html = toHtml(df);
  expect(html).toContain('<h1>/flows/&lt;robot&gt;.yml</h1>');
  expect(html).toContain('n2[&quot;sink&quot;]');
  expect(html).toContain('class="mermaid"');
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

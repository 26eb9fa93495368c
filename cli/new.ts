/** `dora new`: a minimal dataflow project with a TypeScript sender and receiver. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DoraError, ErrorCode } from '../coordinator/errors';

const DATAFLOW = `# yaml-language-server: $schema=node_modules/dora-ts/coordinator/dataflow.schema.json
nodes:
  - id: sender
    path: sender.ts
    inputs:
      tick: dora/timer/millis/100
    outputs:
      - counter
  - id: receiver
    path: receiver.ts
    inputs:
      counter: sender/counter
`;

const SENDER = `import { Node } from 'dora-ts';

// Sends an increasing counter on every timer tick, ten times, then exits.
const node = new Node();
let n = 0;
for await (const event of node) {
  if (event.type === 'INPUT' && event.id === 'tick') {
    await node.sendOutput('counter', [n++]);
    if (n === 10) break;
  }
}
`;

const RECEIVER = `import { Node } from 'dora-ts';

// Prints every counter value until the sender closes its output.
const node = new Node();
for await (const event of node) {
  if (event.type === 'INPUT') console.log(\`received \${event.id}: \${event.data.toArray()}\`);
}
`;

export function scaffold(dir: string): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new DoraError(`${dir} exists and is not empty`, { code: ErrorCode.INVALID_ARGUMENT });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'dataflow.yml'), DATAFLOW);
  fs.writeFileSync(path.join(dir, 'sender.ts'), SENDER);
  fs.writeFileSync(path.join(dir, 'receiver.ts'), RECEIVER);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: path.basename(dir), private: true, type: 'module', dependencies: { 'dora-ts': '*' } }, null, 2) + '\n');
}

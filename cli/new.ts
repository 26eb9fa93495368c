/**
 * `dora new [--lang typescript|python|c]`: a minimal dataflow project, a sender that
 * counts on a timer and a receiver that prints what it gets. Each runs with `dora run`
 * inside a checkout of this repository (the C one after `dora build`); packaging the
 * node APIs for projects elsewhere is not this command's job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DoraError, ErrorCode } from '../coordinator/errors';

export const LANGUAGES = ['typescript', 'python', 'c'] as const;
export type Language = (typeof LANGUAGES)[number];

const dataflow = (sender: string, receiver: string, build?: (node: string) => string) => `nodes:
  - id: sender
    path: ${sender}
${build ? `    build: ${build('sender')}\n` : ''}    inputs:
      tick: dora/timer/millis/100
    outputs:
      - counter
  - id: receiver
    path: ${receiver}
${build ? `    build: ${build('receiver')}\n` : ''}    inputs:
      counter: sender/counter
`;

const TS_SENDER = `import { Node } from 'dora-ts';

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

const TS_RECEIVER = `import { Node } from 'dora-ts';

// Prints every counter value until the sender closes its output.
const node = new Node();
for await (const event of node) {
  if (event.type === 'INPUT') console.log(\`received \${event.id}: \${event.data.toArray()}\`);
}
`;

const PY_SENDER = `"""Sends an increasing counter on every timer tick, ten times, then exits."""
import pyarrow as pa
from dora import Node

node = Node()
n = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        node.send_output("counter", pa.array([n]))
        n += 1
        if n == 10:
            break
`;

const PY_RECEIVER = `"""Prints every counter value until the sender closes its output."""
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        print(f"received {event['id']}: {event['value'].to_pylist()}")
`;

const C_SENDER = `/* Sends an increasing counter (one byte) on every timer tick, ten times, then exits. */
#include <stdio.h>

#include "node_api.h"

int main(void) {
  void *dora = init_dora_context_from_env();
  if (!dora) {
    fprintf(stderr, "sender: %s\\n", dora_last_error());
    return 1;
  }
  unsigned char n = 0;
  void *event;
  while (n < 10 && (event = dora_next_event(dora)) != NULL) {
    if (read_dora_event_type(event) == DoraEventType_Input) {
      if (dora_send_output(dora, "counter", 7, (char *)&n, 1) != 0) fprintf(stderr, "sender: %s\\n", dora_last_error());
      n++;
    }
    free_dora_event(event);
  }
  free_dora_context(dora);
  return 0;
}
`;

const C_RECEIVER = `/* Prints every counter value until the sender closes its output. */
#include <stdio.h>

#include "node_api.h"

int main(void) {
  void *dora = init_dora_context_from_env();
  if (!dora) {
    fprintf(stderr, "receiver: %s\\n", dora_last_error());
    return 1;
  }
  void *event;
  while ((event = dora_next_event(dora)) != NULL) {
    if (read_dora_event_type(event) == DoraEventType_Input) {
      char *id, *data;
      size_t id_len, len;
      read_dora_input_id(event, &id, &id_len);
      read_dora_input_data(event, &data, &len);
      printf("received %.*s: [", (int)id_len, id);
      for (size_t i = 0; i < len; i++) printf("%s%u", i ? "," : "", (unsigned char)data[i]);
      printf("]\\n");
      fflush(stdout);
    }
    free_dora_event(event);
  }
  free_dora_context(dora);
  return 0;
}
`;

/** The dora-ts package this command belongs to (a checkout, or an installed copy). */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** Writes the project into `dir` (new or empty); `build` says whether it needs `dora build` first. */
export function scaffold(dir: string, lang: Language = 'typescript'): { build: boolean } {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new DoraError(`${dir} exists and is not empty`, { code: ErrorCode.INVALID_ARGUMENT });
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  switch (lang) {
    case 'typescript':
      write('dataflow.yml', `# yaml-language-server: $schema=node_modules/dora-ts/coordinator/dataflow.schema.json\n${dataflow('sender.ts', 'receiver.ts')}`);
      write('sender.ts', TS_SENDER);
      write('receiver.ts', TS_RECEIVER);
      write('package.json', JSON.stringify({ name: path.basename(dir), private: true, type: 'module', dependencies: { 'dora-ts': '*' } }, null, 2) + '\n');
      // `import 'dora-ts'` resolves to the dora-ts this command came from, as `npm link` would do.
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(PACKAGE_ROOT, path.join(dir, 'node_modules', 'dora-ts'), 'dir');
      return { build: false };
    case 'python':
      write('dataflow.yml', dataflow('sender.py', 'receiver.py'));
      write('sender.py', PY_SENDER);
      write('receiver.py', PY_RECEIVER);
      return { build: false };
    case 'c':
      write('dataflow.yml', dataflow('./sender', './receiver', (node) => `cc -std=c11 -Wall -O2 -o ${node} ${node}.c $(pkg-config --cflags --libs dora-node-api)`));
      write('sender.c', C_SENDER);
      write('receiver.c', C_RECEIVER);
      return { build: true };
  }
}

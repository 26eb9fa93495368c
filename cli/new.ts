/**
 * `dora new [--lang typescript|python|c]`: a minimal dataflow project, a sender that
 * counts on a timer and a receiver that prints what it gets, with a README of the
 * commands that set it up and run it. It works anywhere: the TypeScript project depends
 * on the dora-ts this command came from (see dependencySpec), the C one builds against
 * the library in that package (`dora build` points pkg-config at it), the Python one
 * uses the `dora` Python package of the project's .venv (the dora-ts wheel).
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

const readJson = (file: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

/** `file:` specs relative to `base` made absolute, so they hold in the new project's folder. */
function absoluteSpec(spec: string, base: string): string {
  const m = /^file:(.*)$/.exec(spec);
  return m && !path.isAbsolute(m[1]) ? `file:${path.resolve(base, m[1])}` : spec;
}

/**
 * How the new TypeScript project depends on dora-ts: as the project this copy is installed
 * in does (its package.json's spec: a version range from the registry, the tarball or git
 * URL it was installed from), else as that project's npm lock recorded it (`--no-save`: a
 * version range if it came from the registry), else this very folder (a checkout, a global
 * install: `file:` makes npm link it).
 */
export function dependencySpec(root = PACKAGE_ROOT): string {
  const version = (readJson(path.join(root, 'package.json'))?.version as string | undefined) ?? '*';
  if (path.basename(path.dirname(root)) === 'node_modules') {
    const project = path.dirname(path.dirname(root));
    const deps = readJson(path.join(project, 'package.json'));
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
      const spec = (deps?.[field] as Record<string, string> | undefined)?.['dora-ts'];
      if (spec) return absoluteSpec(spec, project);
    }
    const lock = readJson(path.join(project, 'node_modules', '.package-lock.json'));
    const resolved = (lock?.packages as Record<string, { resolved?: string }> | undefined)?.['node_modules/dora-ts']?.resolved;
    if (resolved && /^https?:/.test(resolved)) return `^${version}`;
    if (resolved) return absoluteSpec(resolved, project);
  }
  return `file:${root}`;
}

const DORA_NOTE = 'Here `dora` is the command you ran `dora new` with (for a dora-ts installed in a project, `npx dora` in that project, or its full path `<project>/node_modules/.bin/dora`).';

const readme = (name: string, lang: Language, spec: string) => {
  const intro = `# ${name}\n\nA dora-ts dataflow (${lang}): \`sender\` counts on a timer and sends the counter ten times; \`receiver\` prints what it gets. The graph is in \`dataflow.yml\`.\n\n`;
  switch (lang) {
    case 'typescript':
      return `${intro}Set up and run (Node.js 20 or later):

\`\`\`sh
npm install
npx dora run dataflow.yml
\`\`\`

\`npm install\` installs dora-ts as \`package.json\` says: \`${spec}\`. That is how the dora-ts that created this project was installed; to use another, change it (\`npm install dora-ts@<version>\` from the registry, \`npm install <path>/dora-ts-<version>.tgz\` for a packed tarball, \`npm install git+<url>\` for a git repository). The nodes are TypeScript files that \`dora run\` runs directly (no build step).
`;
    case 'python':
      return `${intro}Set up: the nodes use the \`dora\` Python package, which the dora-ts wheel installs (Python 3.10 or later; \`dora run\` uses the \`.venv\` of this folder):

\`\`\`sh
python3 -m venv .venv
.venv/bin/pip install <path>/dora_ts-<version>-<platform>.whl   # or: .venv/bin/pip install dora-ts, once published
\`\`\`

Run:

\`\`\`sh
dora run dataflow.yml
\`\`\`

${DORA_NOTE}
`;
    case 'c':
      return `${intro}Build (a C compiler, pkg-config and libzmq3-dev: \`apt-get install build-essential pkg-config libzmq3-dev\` on Debian/Ubuntu), then run:

\`\`\`sh
dora build dataflow.yml
dora run dataflow.yml
\`\`\`

\`dora build\` runs each node's \`build\` command with pkg-config pointed at the node library inside the dora-ts package (\`pkg-config --cflags --libs dora-node-api\`). ${DORA_NOTE}
`;
  }
};

/** Writes the project into `dir` (new or empty); `build` says whether it needs `dora build` first. */
export function scaffold(dir: string, lang: Language = 'typescript'): { build: boolean } {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new DoraError(`${dir} exists and is not empty`, { code: ErrorCode.INVALID_ARGUMENT });
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const spec = dependencySpec();
  write('README.md', readme(path.basename(dir), lang, spec));
  switch (lang) {
    case 'typescript':
      write('dataflow.yml', `# yaml-language-server: $schema=node_modules/dora-ts/coordinator/dataflow.schema.json\n${dataflow('sender.ts', 'receiver.ts')}`);
      write('sender.ts', TS_SENDER);
      write('receiver.ts', TS_RECEIVER);
      write('package.json', JSON.stringify({ name: path.basename(dir), private: true, type: 'module', dependencies: { 'dora-ts': spec } }, null, 2) + '\n');
      // `dora run` works before `npm install`: `import 'dora-ts'` resolves to the dora-ts this command came from, as `npm link` would do
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

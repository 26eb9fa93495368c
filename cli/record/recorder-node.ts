/**
 * The recorder `dora record` adds to a dataflow: an ordinary node, spawned by the daemon,
 * whose inputs are the recorded outputs. Each message is written to its output's Arrow
 * file as it arrives (format.ts), then released, so a shared-memory sample goes back to
 * its sender at once. The manifest is written at the start and again at the end, with
 * the counts and what the recorder's queues dropped.
 */
import * as fs from 'node:fs';
import * as arrow from 'apache-arrow';
import { Node } from '../../node-api';
import { OutputRecorder, RECORD_DIR_ENV, RECORD_TOPICS_ENV, readManifest, writeManifest } from './format';

async function main(): Promise<void> {
  const dir = process.env[RECORD_DIR_ENV]!;
  // input id -> topic, as `dora record` wired them
  const inputs = JSON.parse(process.env[RECORD_TOPICS_ENV]!) as Record<string, string>;
  const manifest = readManifest(dir);
  const recorders = new Map<string, OutputRecorder>();
  for (const [input, topic] of Object.entries(inputs)) {
    recorders.set(input, new OutputRecorder(dir, manifest.topics.find((t) => t.topic === topic)!));
  }
  const node = new Node();
  const finish = () => {
    for (const r of recorders.values()) r.close();
    for (const [input, count] of node.droppedMessages) recorders.get(input)!.entry.dropped = count;
    manifest.endedAt = new Date().toISOString();
    writeManifest(dir, manifest);
  };
  try {
    for await (const event of node) {
      if (event.type !== 'INPUT') continue;
      const recorder = recorders.get(event.id);
      if (recorder) recorder.write(event.metadata.timestamp, event.metadata.parameters, oneChunk(event.data));
      event[Symbol.dispose]();
    }
  } finally {
    finish();
  }
  const dropped = manifest.topics.filter((t) => t.dropped > 0);
  if (dropped.length > 0) console.error(`[warn] the recorder could not keep up and dropped messages: ${dropped.map((t) => `${t.topic}: ${t.dropped}`).join(', ')}`);
  fs.writeSync(1, `recorded ${manifest.topics.reduce((n, t) => n + t.messages, 0)} messages of ${manifest.topics.length} outputs to ${dir}\n`);
}

/** A message's values in one piece (the node API gives one chunk; a list row needs one). */
function oneChunk(vector: arrow.Vector): arrow.Data {
  return vector.data.length === 1 ? vector.data[0] : arrow.vectorFromArray([...vector], vector.type).data[0];
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});

/**
 * A player `dora replay` puts in place of a recorded node: the same id and outputs, no
 * inputs; it sends the node's recorded messages (values, Arrow types, parameters) on the
 * same outputs, at their recorded pace: message i goes out (t_i - t_0) / speed after the
 * player started, t_0 being the recording's first timestamp of any output, so the players
 * of several nodes keep their relative timing. With loop, it starts over after the last
 * message, one mean interval later.
 */
import { Node } from '../../node-api';
import { REPLAY_DIR_ENV, REPLAY_LOOP_ENV, REPLAY_SPEED_ENV, readManifest, readNodeMessages } from './format';

async function main(): Promise<void> {
  const dir = process.env[REPLAY_DIR_ENV]!;
  const speed = Number(process.env[REPLAY_SPEED_ENV] ?? '1');
  const loop = process.env[REPLAY_LOOP_ENV] === '1';
  const manifest = readManifest(dir);
  const node = new Node();
  const messages = readNodeMessages(dir, manifest, node.id);
  const origin = manifest.topics.reduce<bigint | undefined>((min, t) => (t.firstTimestamp === null ? min : min === undefined || BigInt(t.firstTimestamp) < min ? BigInt(t.firstTimestamp) : min), undefined);
  if (messages.length === 0 || origin === undefined) return;
  const span = Number(messages[messages.length - 1].timestamp - origin) / 1e6;
  const period = span + (messages.length > 1 ? span / (messages.length - 1) : 1);
  let stopped = false;
  // a node without inputs may be told at once that all its inputs are closed: only `dora stop` / Ctrl-C ends the playing
  void (async () => {
    for await (const event of node) {
      if (event.type === 'STOP' && event.cause === 'MANUAL') stopped = true;
    }
  })();
  // The first send waits for the node to have joined the dataflow: the clock starts again
  // once it is out, so joining does not squeeze the first interval.
  let start = performance.now();
  let joined = false;
  for (let round = 0; !stopped; round++) {
    for (const m of messages) {
      const offset = (round * period + Number(m.timestamp - origin) / 1e6) / speed;
      const wait = start + offset - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopped) break;
      await node.sendOutput(m.output, m.data, m.parameters);
      if (!joined) {
        joined = true;
        start = Math.max(start, performance.now() - offset);
      }
    }
    if (!loop) break;
  }
  await node.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});

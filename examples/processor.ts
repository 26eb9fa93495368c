// Reduces each frame to [mean brightness, bright-pixel fraction] and passes the
// frame number on. Its image queue holds 2 frames: if it falls behind, it skips
// to the newest frames instead of building up latency.
import { Node } from 'dora-ts';

async function main(): Promise<void> {
  const node = new Node();
  let processed = 0;
  for await (const event of node) {
    if (event.type !== 'INPUT' || event.id !== 'image') continue;
    const pixels = event.data.toArray() as Uint8Array;
    let sum = 0;
    let bright = 0;
    for (let i = 0; i < pixels.length; i++) {
      sum += pixels[i];
      if (pixels[i] > 128) bright++;
    }
    await node.sendOutput('stats', new Float64Array([sum / pixels.length, bright / pixels.length]), {
      frame: event.metadata.parameters.frame ?? -1,
      captured: event.metadata.timestamp,
    });
    processed++;
    // The frame is in the camera's shared memory: hand it back for reuse now rather than at the next GC.
    event[Symbol.dispose]();
  }
  const dropped = node.droppedMessages.get('image') ?? 0;
  console.log(`processor: processed ${processed} frames, skipped ${dropped}`);
}

void main();

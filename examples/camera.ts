// A fake camera: on every timer tick, renders a grayscale frame with a moving
// bright square and sends it with its size as metadata.
import { Node } from 'dora-ts';

const width = Number(process.env.WIDTH ?? 320);
const height = Number(process.env.HEIGHT ?? 240);
const framesArg = process.argv.indexOf('--frames');
const frames = framesArg >= 0 ? Number(process.argv[framesArg + 1]) : 90;

function render(n: number): Uint8Array {
  const image = new Uint8Array(width * height).fill(32);
  const size = 40;
  const x0 = (n * 4) % (width - size);
  const y0 = (n * 2) % (height - size);
  for (let y = y0; y < y0 + size; y++) image.fill(224, y * width + x0, y * width + x0 + size);
  return image;
}

async function main(): Promise<void> {
  const node = new Node();
  let sent = 0;
  for await (const event of node) {
    if (event.type === 'INPUT' && event.id === 'tick') {
      await node.sendOutput('image', render(sent), { width, height, frame: sent });
      if (++sent === frames) break;
    }
  }
  console.log(`camera: sent ${sent} frames of ${width}x${height}`);
}

void main();

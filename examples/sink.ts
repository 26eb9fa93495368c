// Prints a line per second of statistics and a summary when its input closes.
import { Node } from 'dora-ts';

async function main(): Promise<void> {
  const node = new Node();
  let count = 0;
  let brightness = 0;
  let latencyUs = 0;
  let commands = 0;
  let gain = NaN;
  let detections = 0;
  let last = '';
  for await (const event of node) {
    if (event.type === 'INPUT' && event.id === 'detections') {
      detections += event.data.length;
      const d = event.data.get(0)?.toJSON();
      if (d) last = `${d.w}x${d.h} at (${d.x}, ${d.y})`;
    } else if (event.type === 'INPUT' && event.id === 'command') {
      commands++;
      [gain] = event.data.toArray() as Float64Array;
    } else if (event.type === 'INPUT') {
      const [mean] = event.data.toArray() as Float64Array;
      count++;
      brightness += mean;
      const captured = event.metadata.parameters.captured;
      if (typeof captured === 'bigint' || typeof captured === 'number') {
        latencyUs += Number(event.metadata.timestamp - BigInt(captured)) / 1000;
      }
      if (count % 30 === 0) console.log(`sink: frame ${event.metadata.parameters.frame}: mean brightness ${mean.toFixed(1)}`);
    } else if (event.type === 'INPUT_CLOSED') {
      console.log(`sink: input ${event.id} closed`);
    }
  }
  const avg = count > 0 ? (brightness / count).toFixed(1) : '-';
  const lat = count > 0 ? (latencyUs / count).toFixed(0) : '-';
  console.log(`sink: ${count} frames, average brightness ${avg}, average camera→sink processing time ${lat} µs`);
  console.log(`sink: ${commands} exposure commands from the C controller, last gain ${gain.toFixed(2)}`);
  console.log(`sink: ${detections} detections from the Python detector, last ${last || '-'}`);
}

void main();

/**
 * `dora record` and `dora replay` end to end: a timer-driven TypeScript sender of structs
 * (and of 4 MiB byte arrays, through shared memory), a Python node transforming them, a
 * Python sink writing what it received; pyarrow reads the recording as it is.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, dora, leftovers, node, tempDataflow, waitFor } from './support/dataflow';

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

const PYTHON = path.join(ROOT, '.venv/bin/python');
const MiB4 = 4 * 1024 * 1024;

interface Received {
  id: string;
  values: unknown[];
  parameters: Record<string, unknown>;
  at: number;
}
const received = (file: string): Received[] =>
  fs.readFileSync(file, 'utf8').trim().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Received);
const withoutTimes = (rows: Received[]) => rows.map(({ at: _at, ...rest }) => rest);

function pipeline(extraSender = '', tickMs = 50, count = 6): string {
  return (
    `nodes:\n` +
    node('sender', 'struct-sender.ts', `    env: { COUNT: ${count}${extraSender} }\n    inputs: { tick: dora/timer/millis/${tickMs} }\n    outputs: [out, blob]\n`) +
    node('transform', 'transformer.py', `    inputs: { in: sender/out, blob: sender/blob }\n    outputs: [out, digest]\n`) +
    node('sink', 'record_sink.py', `    inputs: { data: transform/out, digest: transform/digest }\n`)
  );
}

/** What pyarrow reads from each file: rows, column types, the first parameters, and per-row payload lengths. */
function readWithPyarrow(files: string[]): Record<string, { rows: number; timestamp: string; data: string; parameters: string; lengths: number[]; first: unknown }> {
  const script = `
import json, sys
import pyarrow.compute as pc
import pyarrow.ipc as ipc
out = {}
for f in sys.argv[1:]:
    with open(f, "rb") as s:
        t = ipc.open_stream(s).read_all()
    data = t.column("data")
    bytes_ = "uint8" in str(data.type)
    out[f] = {"rows": t.num_rows, "timestamp": str(t.schema.field("timestamp").type), "data": str(data.type),
              "parameters": t.column("parameters")[0].as_py(), "lengths": pc.list_value_length(data).to_pylist(),
              # a byte payload: the distinct byte values of each message, instead of the bytes
              "first": [pc.unique(data[i].values).to_pylist() for i in range(t.num_rows)] if bytes_ else data[0].as_py()}
print(json.dumps(out))
`;
  const r = spawnSync(PYTHON, ['-c', script, ...files], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof readWithPyarrow>;
}

test('record: one Arrow IPC stream per output that pyarrow reads as it is (rows, types, parameters, a 4 MiB payload intact); replay with the sender replaced reproduces the downstream outputs exactly', async () => {
  const df = tempDataflow(pipeline(`, PAYLOAD_BYTES: ${MiB4}`));
  const dir = path.join(df.dir, 'rec');
  const first = path.join(df.dir, 'first.jsonl');
  const recorded = await dora(['record', df.file, '-o', dir], { env: { RECORD: first } });
  expect(recorded.code).toBe(0);
  expect(recorded.stderr).toContain(`recording to ${dir}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  expect(manifest).toMatchObject({ format: 'dora-ts-record', version: 1, dataflow: df.file, dataflowCopy: 'dataflow.yml', workingDir: df.dir });
  expect(manifest.endedAt).toEqual(expect.any(String));
  expect(fs.readFileSync(path.join(dir, 'dataflow.yml'), 'utf8')).toBe(fs.readFileSync(df.file, 'utf8'));
  expect(manifest.topics.map((t: any) => [t.topic, t.files, t.messages, t.dropped])).toEqual([
    ['sender/out', ['sender/out.arrows'], 6, 0],
    ['sender/blob', ['sender/blob.arrows'], 6, 0],
    ['transform/out', ['transform/out.arrows'], 6, 0],
    ['transform/digest', ['transform/digest.arrows'], 6, 0],
  ]);

  const read = readWithPyarrow(['sender/out', 'sender/blob', 'transform/out', 'transform/digest'].map((t) => path.join(dir, `${t}.arrows`)));
  const at = (t: string) => read[path.join(dir, `${t}.arrows`)];
  for (const t of ['sender/out', 'sender/blob', 'transform/out', 'transform/digest']) {
    expect(at(t).rows).toBe(6);
    expect(at(t).timestamp).toBe('timestamp[ns, tz=UTC]');
  }
  expect(at('sender/out').data).toBe('list<item: struct<seq: int64 not null, name: string not null, value: double not null>>');
  expect(at('sender/out').first).toEqual([
    { seq: 0, name: 'item 0', value: 0 },
    { seq: 1000, name: 'other 0', value: -0 },
  ]);
  expect(JSON.parse(at('sender/out').parameters)).toEqual({ seq: 0, tag: 'struct', big: { $int: String(1n << 60n) } });
  expect(at('transform/out').data).toBe('list<item: struct<seq: int64, label: string, doubled: double>>');
  expect(at('transform/digest').data).toBe('list<item: uint64>');
  expect(at('sender/blob').data).toBe('list<item: uint8>');
  // each 4 MiB message intact: its length, and every byte the value the sender filled it with
  expect(at('sender/blob').lengths).toEqual(Array(6).fill(MiB4));
  expect(at('sender/blob').first).toEqual([[0], [1], [2], [3], [4], [5]]);

  const again = path.join(df.dir, 'again.jsonl');
  const replayed = await dora(['replay', dir, '--replace', 'sender'], { env: { RECORD: again } });
  expect(replayed.code).toBe(0);
  const before = received(first);
  expect(before).toHaveLength(12);
  expect(withoutTimes(received(again))).toEqual(withoutTimes(before));
  // the digests prove the 4 MiB payloads were replayed intact
  expect(before.filter((r) => r.id === 'digest').map((r) => r.values)).toEqual([0, 1, 2, 3, 4, 5].map((s) => [MiB4, (s * MiB4) % 2 ** 32]));
}, 60_000);

test('an output whose type changes goes on in a new file (<output>~1.arrows), each readable with its type; replay sends both types in order', async () => {
  const df = tempDataflow(pipeline(', TYPE_CHANGE_AT: 3', 20));
  const dir = path.join(df.dir, 'rec');
  const first = path.join(df.dir, 'first.jsonl');
  expect((await dora(['record', df.file, '-o', dir, '--topics', 'sender/out, transform/out'], { env: { RECORD: first } })).code).toBe(0);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  expect(manifest.topics.map((t: any) => [t.topic, t.files, t.types, t.messages])).toEqual([
    ['sender/out', ['sender/out.arrows', 'sender/out~1.arrows'], ['Struct<{seq:Int64, name:Utf8, value:Float64}>', 'Int32'], 6],
    ['transform/out', ['transform/out.arrows', 'transform/out~1.arrows'], ['Struct<{seq:Int64, label:Utf8, doubled:Float64}>', 'Int64'], 6],
  ]);
  const read = readWithPyarrow([path.join(dir, 'sender/out.arrows'), path.join(dir, 'sender/out~1.arrows')]);
  expect(Object.values(read).map((r) => [r.rows, r.data])).toEqual([
    [3, 'list<item: struct<seq: int64 not null, name: string not null, value: double not null>>'],
    [3, 'list<item: int32>'],
  ]);
  const again = path.join(df.dir, 'again.jsonl');
  expect((await dora(['replay', dir, '--replace', 'sender'], { env: { RECORD: again } })).code).toBe(0);
  expect(withoutTimes(received(again))).toEqual(withoutTimes(received(first)));
  expect(received(first).map((r) => r.values).slice(3)).toEqual([[6, -6], [8, -8], [10, -10]]);
}, 60_000);

test('replay keeps the recorded pace, scaled by --speed; --loop starts over until stopped; by default every node whose outputs were all recorded is replaced', async () => {
  const df = tempDataflow(pipeline('', 100));
  const dir = path.join(df.dir, 'rec');
  expect((await dora(['record', df.file, '-o', dir], { env: { RECORD: path.join(df.dir, 'first.jsonl') } })).code).toBe(0);
  const span = (rows: Received[]) => rows[rows.length - 1].at - rows[0].at;
  const recordedSpan = span(received(path.join(df.dir, 'first.jsonl')).filter((r) => r.id === 'data'));
  expect(recordedSpan).toBeGreaterThan(400); // 6 ticks 100 ms apart

  const fast = path.join(df.dir, 'fast.jsonl');
  expect((await dora(['replay', dir, '--speed', '2', '--replace', 'sender'], { env: { RECORD: fast } })).code).toBe(0);
  const fastSpan = span(received(fast).filter((r) => r.id === 'data'));
  expect(fastSpan).toBeGreaterThan(recordedSpan / 2 - 100);
  expect(fastSpan).toBeLessThan(recordedSpan / 2 + 150);

  // default: sender and transform (all their outputs recorded) are players; the sink gets transform's recorded output
  const looped = path.join(df.dir, 'looped.jsonl');
  const loop = await dora(['replay', dir, '--loop', '--speed', '4', '--stop-after', '1500ms'], { env: { RECORD: looped } });
  expect(loop.code).toBe(0);
  const rows = received(looped).filter((r) => r.id === 'data');
  expect(rows.length).toBeGreaterThan(12); // more than two rounds of 6
  expect(rows.slice(0, 12).map((r) => r.parameters.seq)).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
}, 60_000);

test('record and replay refuse what they cannot do, naming it', async () => {
  const df = tempDataflow(pipeline());
  const dir = path.join(df.dir, 'rec');
  const unknown = await dora(['record', df.file, '-o', dir, '--topics', 'sender/outt']);
  expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `error: ${df.file}: no output "sender/outt" to record (outputs: sender/out, sender/blob, transform/out, transform/digest)`]);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'x'), '');
  expect((await dora(['record', df.file, '-o', dir])).stderr).toContain(`${dir} is not empty`);
  expect((await dora(['replay', df.dir])).stderr).toContain(`${path.join(df.dir, 'manifest.json')}: not a recording of \`dora record\``);
  const rec = path.join(df.dir, 'rec2');
  expect((await dora(['record', df.file, '-o', rec, '--topics', 'sender/out', '--stop-after', '200ms'], { env: { RECORD: path.join(df.dir, 'r.jsonl') } })).code).toBe(0);
  expect((await dora(['replay', rec, '--replace', 'sink'])).stderr).toContain('--replace: none of the outputs of node "sink" was recorded (recorded: sender/out)');
  expect((await dora(['replay', rec, '--replace', 'nope'])).stderr).toContain('--replace: the recorded dataflow has no node "nope" (nodes: sender, transform, sink)');
  expect((await dora(['replay', rec, '--speed', '0'])).stderr).toContain('"0" is not a positive number');
}, 60_000);

test('record of a running dataflow (dora start) through taps: the dataflow goes on; the files hold what was sent meanwhile, 4 MiB payloads intact; replaying that recording feeds the downstream nodes the same messages', async () => {
  const port = String(20000 + ((process.pid + 4093) % 20000));
  const stateDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dora-state-'));
  const runtimeDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dora-run-'));
  const env = { DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir, DORA_RUNTIME_DIR: runtimeDir };
  try {
    expect((await dora(['up'], { env })).code).toBe(0);
    const df = tempDataflow(pipeline(`, PAYLOAD_BYTES: ${MiB4}`, 50, 1_000_000));
    // nodes of `dora start` get the coordinator's environment: the sink's file goes in the YAML
    const live = path.join(df.dir, 'live.jsonl');
    fs.writeFileSync(df.file, fs.readFileSync(df.file, 'utf8').replace('    inputs: { data: transform/out', `    env: { RECORD: ${JSON.stringify(live)} }\n    inputs: { data: transform/out`));
    expect((await dora(['start', df.file, '--name', 'taped'], { env })).code).toBe(0);
    const dir = path.join(df.dir, 'rec');
    // a tap is refused until the dataflow has started, and nothing is left behind
    const early = await dora(['record', 'taped', '-o', dir, '--stop-after', '100ms'], { env });
    if (early.code !== 0) {
      expect(early.stderr).toContain('the dataflow has not started yet');
      expect(fs.existsSync(dir)).toBe(false);
    }
    await waitFor(() => fs.existsSync(live) && fs.readFileSync(live, 'utf8').length > 0, 20_000, 'the dataflow to start');
    fs.rmSync(dir, { recursive: true, force: true });
    const recorded = await dora(['record', 'taped', '-o', dir, '--topics', 'sender/out,sender/blob', '--stop-after', '1500ms'], { env });
    expect(recorded.code).toBe(0);
    expect(recorded.stderr).toContain('(Ctrl-C ends the recording, not the dataflow)');
    const list = JSON.parse((await dora(['list', '--json'], { env })).stdout) as { name: string; status: string }[];
    expect(list.find((d) => d.name === 'taped')!.status).toBe('running');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ dataflow: df.file, dataflowCopy: 'dataflow.yml' });
    const [out, blob] = manifest.topics;
    expect([out.topic, out.dropped, blob.topic, blob.dropped]).toEqual(['sender/out', 0, 'sender/blob', 0]);
    expect(out.messages).toBeGreaterThan(15); // 20 Hz for 1.5 s
    const read = readWithPyarrow([path.join(dir, 'sender/out.arrows'), path.join(dir, 'sender/blob.arrows')]);
    const blobs = read[path.join(dir, 'sender/blob.arrows')];
    expect(blobs.lengths.every((n) => n === MiB4)).toBe(true);
    expect(blobs.rows).toBeGreaterThan(15);
    expect((blobs.first as number[][]).every((distinct) => distinct.length === 1)).toBe(true); // each filled with one value
    expect((await dora(['stop', 'taped'], { env })).code).toBe(0);

    // the copy of the file names the same sink file: it starts empty for the replay
    fs.rmSync(live);
    const again = live;
    expect((await dora(['replay', dir, '--replace', 'sender'])).code).toBe(0);
    const replayed = received(again).filter((r) => r.id === 'data');
    const recordedSeqs = readParameterSeqs(path.join(dir, 'sender/out.arrows'));
    expect(replayed.map((r) => r.parameters.seq)).toEqual(recordedSeqs);
    // the taps of sender/out and sender/blob did not end at the same message: the blobs replayed are those recorded
    expect(received(again).filter((r) => r.id === 'digest').map((r) => r.values[0])).toEqual(Array(blobs.rows).fill(MiB4));
  } finally {
    await dora(['down'], { env });
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(runtimeDir, { recursive: true, force: true });
  }
}, 90_000);

/** The `seq` parameter of every row of a recorded file, read with pyarrow. */
function readParameterSeqs(file: string): number[] {
  const r = spawnSync(PYTHON, ['-c', 'import json,sys,pyarrow.ipc as i; t=i.open_stream(open(sys.argv[1],"rb")).read_all(); print(json.dumps([json.loads(p)["seq"] for p in t.column("parameters").to_pylist()]))', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as number[];
}

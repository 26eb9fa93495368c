/**
 * The recording format of `dora record` / `dora replay` (docs/architecture.md, Recording):
 *
 *   <dir>/manifest.json                 what was recorded (RecordManifest)
 *   <dir>/dataflow.yml                  the dataflow file as it was recorded
 *   <dir>/<node>/<output>.arrows        one Arrow IPC stream per output, one row per message:
 *       timestamp   timestamp[ns, UTC]  the message's timestamp (the sender's hybrid clock)
 *       parameters  utf8                its metadata parameters as JSON (parametersToJson)
 *       data        list<T>             its Arrow array: row i holds message i's values
 *
 * A stream has one schema, so when an output's type changes between messages the
 * stream is closed and the messages that follow go to a new file, `<output>~1.arrows`,
 * `~2`, …: each file stays readable as it is, with its exact type, and the manifest lists
 * an output's files in order ('~' cannot occur in an output id).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import type { Parameters, ParameterValue } from '../../protocol';
import { DoraError, ErrorCode } from '../../coordinator/errors';

export const MANIFEST = 'manifest.json';
export const DATAFLOW_COPY = 'dataflow.yml';
export const RECORD_FORMAT = 'dora-ts-record';
export const RECORD_FORMAT_VERSION = 1;

/** The environment the recorder node reads (set by `dora record`). */
export const RECORD_DIR_ENV = 'DORA_RECORD_DIR';
export const RECORD_TOPICS_ENV = 'DORA_RECORD_TOPICS';
/** The environment a player node reads (set by `dora replay`). */
export const REPLAY_DIR_ENV = 'DORA_REPLAY_DIR';
export const REPLAY_SPEED_ENV = 'DORA_REPLAY_SPEED';
export const REPLAY_LOOP_ENV = 'DORA_REPLAY_LOOP';

/** One recorded output. */
export interface RecordedTopic {
  /** `<node>/<output>`. */
  readonly topic: string;
  readonly node: string;
  readonly output: string;
  /** Its files, relative to the recording's folder, in order (one per type the output had). */
  files: string[];
  /** Arrow type of each file, as arrow-js prints it. */
  types: string[];
  messages: number;
  /** Bytes of Arrow values recorded (the payloads' buffers). */
  bytes: number;
  /** Messages the recorder's queue dropped (0 unless it could not keep up). */
  dropped: number;
  /** First and last message timestamps, nanoseconds since the Unix epoch (decimal strings). */
  firstTimestamp: string | null;
  lastTimestamp: string | null;
}

export interface RecordManifest {
  readonly format: typeof RECORD_FORMAT;
  readonly version: number;
  /** The dataflow file recorded (absolute), and its copy in the folder (null when the file was unknown: no replay). */
  readonly dataflow: string | null;
  readonly dataflowCopy: string | null;
  /** Where the dataflow's relative paths point (the original file's folder). */
  readonly workingDir: string;
  readonly startedAt: string;
  endedAt: string | null;
  readonly topics: RecordedTopic[];
}

export function readManifest(dir: string): RecordManifest {
  const file = path.join(dir, MANIFEST);
  let manifest: RecordManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as RecordManifest;
  } catch (err) {
    throw new Error(`${file}: not a recording of \`dora record\` (${(err as Error).message})`);
  }
  if (manifest.format !== RECORD_FORMAT || manifest.version !== RECORD_FORMAT_VERSION) {
    throw new Error(`${file}: format ${String(manifest.format)} version ${String(manifest.version)}, this dora reads ${RECORD_FORMAT} version ${RECORD_FORMAT_VERSION}`);
  }
  return manifest;
}

/** Writes the manifest whole (a reader never sees half of it). */
export function writeManifest(dir: string, manifest: RecordManifest): void {
  const file = path.join(dir, MANIFEST);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Creates the recording folder (new or empty) with a copy of the dataflow file (when
 * there is one) and the manifest of what is about to be recorded; returns the manifest.
 */
export function startRecording(dir: string, file: string | null, workingDir: string, topics: readonly { topic: string; node: string; output: string }[]): RecordManifest {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new DoraError(`${dir} is not empty: record into a new folder (-o)`, { code: ErrorCode.USAGE });
  fs.mkdirSync(dir, { recursive: true });
  if (file !== null) fs.copyFileSync(file, path.join(dir, DATAFLOW_COPY));
  const manifest: RecordManifest = {
    format: RECORD_FORMAT,
    version: RECORD_FORMAT_VERSION,
    dataflow: file,
    dataflowCopy: file !== null ? DATAFLOW_COPY : null,
    workingDir,
    startedAt: new Date().toISOString(),
    endedAt: null,
    topics: topics.map((t) => ({ topic: t.topic, node: t.node, output: t.output, files: [], types: [], messages: 0, bytes: 0, dropped: 0, firstTimestamp: null, lastTimestamp: null })),
  };
  writeManifest(dir, manifest);
  return manifest;
}

/** The file of an output's `segment`-th type (0 first). */
export function segmentFile(node: string, output: string, segment: number): string {
  return path.join(node, `${output}${segment === 0 ? '' : `~${segment}`}.arrows`);
}

/**
 * Parameters as JSON text that keeps what JSON cannot say: an integer beyond 2^53 is
 * `{"$int": "<decimal>"}`, a date `{"$date": "<ISO 8601>"}`. Everything else is plain JSON,
 * so DuckDB's and polars' JSON functions read it. (A float with an integral value comes
 * out of the node API as a JavaScript integer, and is sent again as an integer.)
 */
export function parametersToJson(parameters: Parameters): string {
  const encode = (v: ParameterValue | number | bigint | string | boolean): unknown => {
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : { $int: v.toString() };
    if (v instanceof Date) return { $date: v.toISOString() };
    if (Array.isArray(v)) return v.map((x) => encode(x as ParameterValue));
    return v;
  };
  return JSON.stringify(Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, encode(v)])));
}

export function parametersFromJson(text: string): Parameters {
  const decode = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(decode);
    if (v !== null && typeof v === 'object') {
      const o = v as { $int?: string; $date?: string };
      if (typeof o.$int === 'string') return BigInt(o.$int);
      if (typeof o.$date === 'string') return new Date(o.$date);
    }
    return v;
  };
  return Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, unknown>).map(([k, v]) => [k, decode(v)])) as Parameters;
}

/** The schema of a file whose messages have `type`. */
export function recordSchema(type: arrow.DataType, topic: string): arrow.Schema {
  return new arrow.Schema(
    [
      new arrow.Field('timestamp', new arrow.TimestampNanosecond('UTC'), false),
      new arrow.Field('parameters', new arrow.Utf8(), false),
      new arrow.Field('data', new arrow.List(new arrow.Field('item', type, true)), false),
    ],
    new Map([['dora.topic', topic]]),
  );
}

/** An IPC stream writer that writes each chunk to a file at once, synchronously (arrow-js would queue it). */
class FileStreamWriter extends arrow.RecordBatchStreamWriter {
  constructor(private readonly fd: number) {
    super();
  }

  protected override _write(chunk: ArrayBufferView): this {
    if (this._started && chunk.byteLength > 0) {
      fs.writeSync(this.fd, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this._position += chunk.byteLength;
    }
    return this;
  }
}

/**
 * One output's recording: each message becomes a record batch of one row (a list needs
 * its values in one piece, and a message arrives as one), written at once with a
 * synchronous write so nothing is held in memory.
 */
export class OutputRecorder {
  private writer?: FileStreamWriter;
  private fd?: number;
  private type?: arrow.DataType;
  private schema?: arrow.Schema;

  constructor(
    private readonly dir: string,
    readonly entry: RecordedTopic,
  ) {}

  write(timestamp: bigint, parameters: Parameters, data: arrow.Data): void {
    if (this.type === undefined || !arrow.util.compareTypes(this.type, data.type)) this.open(data.type);
    const list = arrow.makeData({
      type: new arrow.List(new arrow.Field('item', data.type, true)),
      length: 1,
      nullCount: 0,
      valueOffsets: new Int32Array([0, data.length]),
      child: data,
    });
    const schema = this.schema!;
    const stamps = arrow.makeData({ type: new arrow.TimestampNanosecond('UTC'), length: 1, nullCount: 0, data: new BigInt64Array([timestamp]) });
    const params = arrow.vectorFromArray([parametersToJson(parameters)], new arrow.Utf8()).data[0];
    const batch = new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: 1, nullCount: 0, children: [stamps, params, list] }));
    this.writer!.write(batch);
    this.entry.messages++;
    this.entry.bytes += byteSize(data);
    this.entry.firstTimestamp ??= timestamp.toString();
    this.entry.lastTimestamp = timestamp.toString();
  }

  private open(type: arrow.DataType): void {
    this.close();
    const segment = this.entry.files.length;
    const file = segmentFile(this.entry.node, this.entry.output, segment);
    fs.mkdirSync(path.dirname(path.join(this.dir, file)), { recursive: true });
    this.fd = fs.openSync(path.join(this.dir, file), 'w');
    this.type = type;
    this.schema = recordSchema(type, this.entry.topic);
    this.writer = new FileStreamWriter(this.fd);
    this.writer.reset(undefined, this.schema);
    this.entry.files.push(file);
    this.entry.types.push(String(type));
  }

  close(): void {
    if (this.writer === undefined) return;
    this.writer.finish(); // the end-of-stream marker
    fs.closeSync(this.fd!);
    this.writer = undefined;
    this.fd = undefined;
  }
}

/** Bytes of the buffers of `data` and its children. */
function byteSize(data: arrow.Data): number {
  let n = 0;
  for (const buffer of [data.values, data.valueOffsets, data.nullBitmap, data.typeIds] as (ArrayBufferView | undefined)[]) n += buffer?.byteLength ?? 0;
  for (const child of data.children) n += byteSize(child);
  return n;
}

/** One recorded message, as the player sends it again. */
export interface RecordedMessage {
  readonly output: string;
  readonly timestamp: bigint;
  readonly parameters: Parameters;
  readonly data: arrow.Vector;
}

/** Every message of `node`'s recorded outputs, in timestamp order (outputs interleaved as they were sent). */
export function readNodeMessages(dir: string, manifest: RecordManifest, node: string): RecordedMessage[] {
  const messages: RecordedMessage[] = [];
  for (const topic of manifest.topics.filter((t) => t.node === node)) {
    for (const file of topic.files) {
      const table = arrow.tableFromIPC(fs.readFileSync(path.join(dir, file)));
      // the raw nanoseconds (arrow-js's get() turns them into milliseconds)
      const stamps = table.getChild('timestamp')!.data.flatMap((d) => [...(d.values as BigInt64Array).subarray(d.offset, d.offset + d.length)]);
      const params = table.getChild('parameters')!;
      const data = table.getChild('data')!;
      for (let i = 0; i < table.numRows; i++) {
        messages.push({ output: topic.output, timestamp: stamps[i], parameters: parametersFromJson(params.get(i) as string), data: data.get(i) as arrow.Vector });
      }
    }
  }
  // a stable sort: the messages of one output keep their order
  return messages.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
}

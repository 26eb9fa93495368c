/**
 * POSIX shared-memory segments through libc (koffi): create-and-map for senders,
 * map-read-only for receivers.
 *
 * A mapping is unmapped only when nothing can reach a view of it any more: a
 * `koffi.view` over an unmapped range kills the process when touched, and
 * arrow-js vectors handed to user code may be kept anywhere. Senders keep their
 * mappings for the life of their pool; receivers track, per mapping, the views
 * still alive (see segments.ts).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
// koffi ships a CommonJS build, but its type declarations are ESM-flavoured.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });

const O_RDONLY = 0o0;
const O_RDWR = 0o2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_POPULATE = 0x8000;
const MAP_FAILED = 0xffffffffffffffffn;

/** Prefix of every segment this project creates: `/dev/shm/dora-ts-<dataflow>-<random>`. */
export const SEGMENT_PREFIX = 'dora-ts-';

interface Libc {
  shm_open(name: string, flags: number, mode: number): number;
  shm_unlink(name: string): number;
  ftruncate(fd: number, length: bigint): number;
  close(fd: number): number;
  mmap(addr: null, length: bigint, prot: number, flags: number, fd: number, offset: bigint): unknown;
  munmap(addr: unknown, length: bigint): number;
}

let libc: Libc | undefined;
function c(): Libc {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      shm_open: lib.func('int shm_open(const char *name, int oflag, uint32_t mode)'),
      shm_unlink: lib.func('int shm_unlink(const char *name)'),
      ftruncate: lib.func('int ftruncate(int fd, int64_t length)'),
      close: lib.func('int close(int fd)'),
      mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      munmap: lib.func('int munmap(void *addr, size_t length)'),
    } as Libc;
  }
  return libc;
}

export class ShmError extends Error {
  override name = 'ShmError';
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(`${message} (errno ${errno})`);
  }
}

/** A mapped shared-memory segment. */
export class Segment {
  private mapped = true;
  private cached?: ArrayBuffer;

  private constructor(
    /** Name without the leading slash, as it appears in /dev/shm. */
    readonly name: string,
    /** Size of the mapping in bytes. */
    readonly size: number,
    /** The mapping's address (a koffi pointer), null for an empty segment. */
    private readonly ptr: unknown,
    readonly writable: boolean,
  ) {}

  /**
   * Creates a new segment of `size` bytes, mode 0600, with an unguessable name under
   * `prefix`, mapped read-write and pre-faulted (first-touch page faults would
   * otherwise cost more than the copy itself).
   */
  static create(prefix: string, size: number): Segment {
    const name = `${prefix}${randomBytes(12).toString('hex')}`;
    const fd = c().shm_open('/' + name, O_RDWR | O_CREAT | O_EXCL, 0o600);
    if (fd < 0) throw new ShmError(`shm_open(${name}) failed`, koffi.errno());
    try {
      if (c().ftruncate(fd, BigInt(size)) !== 0) {
        const errno = koffi.errno();
        c().shm_unlink('/' + name);
        throw new ShmError(`ftruncate(${name}, ${size}) failed`, errno);
      }
      return new Segment(name, size, map(name, fd, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE), true);
    } catch (err) {
      c().shm_unlink('/' + name);
      throw err;
    } finally {
      c().close(fd);
    }
  }

  /** Maps an existing segment read-only; its size is the segment's current size. */
  static open(name: string): Segment {
    if (!isSegmentName(name)) throw new ShmError(`refusing to open "${name}": not a dora-ts segment name`, 22);
    const fd = c().shm_open('/' + name, O_RDONLY, 0);
    if (fd < 0) throw new ShmError(`shm_open(${name}) failed`, koffi.errno());
    try {
      const size = fs.fstatSync(fd).size;
      return new Segment(name, size, map(name, fd, size, PROT_READ, MAP_SHARED), false);
    } finally {
      c().close(fd);
    }
  }

  /**
   * A new ArrayBuffer over the whole mapping. Each call returns a distinct object
   * over the same memory, so the lifetime of one message's views can be tracked
   * (FinalizationRegistry) independently of other messages in the same segment.
   */
  view(): ArrayBuffer {
    if (!this.mapped) throw new ShmError(`segment ${this.name} is no longer mapped`, 22);
    return this.ptr === null ? new ArrayBuffer(0) : koffi.view(this.ptr, this.size);
  }

  /**
   * One ArrayBuffer over the whole mapping, made once: for the sender, which owns its
   * segments and writes every message through the same buffer (a fresh foreign
   * ArrayBuffer per message would count as new external memory and trigger GCs).
   */
  get buffer(): ArrayBuffer {
    if (!this.mapped) throw new ShmError(`segment ${this.name} is no longer mapped`, 22);
    this.cached ??= this.view();
    return this.cached;
  }

  /**
   * A new ArrayBuffer over `length` bytes at `offset` (a receiver's view of one message:
   * V8 counts an ArrayBuffer's size as external memory, so views stay as small as the message).
   */
  viewAt(offset: number, length: number): ArrayBuffer {
    if (!this.mapped) throw new ShmError(`segment ${this.name} is no longer mapped`, 22);
    if (offset < 0 || length < 0 || offset + length > this.size) throw new ShmError(`range [${offset}, ${offset + length}) outside segment ${this.name}`, 22);
    return this.ptr === null || length === 0 ? new ArrayBuffer(0) : koffi.view(koffi.address(this.ptr) + BigInt(offset), length);
  }

  /** The mapping as bytes (a fresh view; see view()). */
  get bytes(): Uint8Array {
    return new Uint8Array(this.view());
  }

  /** Removes the name; existing mappings stay valid until they are unmapped. */
  unlink(): void {
    c().shm_unlink('/' + this.name);
  }

  /**
   * Unmaps the segment. Only call this when no view of it can be reached any more:
   * touching a view of an unmapped segment kills the process.
   */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    if (this.ptr !== null) c().munmap(this.ptr, BigInt(this.size));
  }
}

function map(name: string, fd: number, size: number, prot: number, flags: number): unknown {
  if (size === 0) return null;
  const ptr = c().mmap(null, BigInt(size), prot, flags, fd, 0n);
  if (ptr === null || koffi.address(ptr) === MAP_FAILED) throw new ShmError(`mmap(${name}, ${size}) failed`, koffi.errno());
  return ptr;
}

/** Segment names are `dora-ts-` followed by safe characters only (no path tricks). */
export function isSegmentName(name: string): boolean {
  return name.startsWith(SEGMENT_PREFIX) && name.length <= 200 && /^[A-Za-z0-9_.-]+$/.test(name);
}

/** Removes every segment of a dataflow (used by the daemon when a run ends, also after crashes). */
export function unlinkDataflowSegments(dataflowId: string): string[] {
  const prefix = `${SEGMENT_PREFIX}${dataflowId}-`;
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/dev/shm');
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    try {
      fs.unlinkSync(`/dev/shm/${entry}`);
      removed.push(entry);
    } catch {
      // already gone
    }
  }
  return removed;
}

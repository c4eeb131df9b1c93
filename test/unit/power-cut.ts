// A power-cut fault model for the library's I/O layer (ContainerFile), in memory. It records every
// write, size change and sync. A sync makes everything before it durable. A power cut at mutating step
// N (writes, size changes and syncs count) stops the process there (that step and every later call
// fail) and then leaves on "disk" what was synced plus an arbitrary subset of the unsynced writes, each
// torn at 512-byte sector granularity (a disk keeps or loses each sector of a write on its own).
// Unlike crashing-file.ts, which keeps every unsynced write (the host page cache survives a killed
// process), this is what the disk holds after the machine loses power: a missing fdatasync shows.
// Everything is seeded: a failing case prints the seed, the step and the cut number that replay it.
import type { ContainerFile, OpenContainerFile } from '../../src/container/file.js';

/** The disk's atomic unit: a write may land any subset of its 512-byte sectors. */
export const DISK_SECTOR = 512;

export class PowerCut extends Error {}

/** A small deterministic PRNG (mulberry32): the same seed gives the same cuts. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from VAULT_TEST_SEED (to replay a failure) or a fresh one; either way it is printed. */
export function testSeed(name: string): number {
  const given = process.env.VAULT_TEST_SEED;
  const seed = given ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32);
  console.log(`${name}: seed ${seed} (replay with VAULT_TEST_SEED=${seed})`);
  return seed;
}

export type TraceEntry =
  | { op: 'write'; offset: number; length: number }
  | { op: 'size'; size: number }
  | { op: 'sync' };

type Pending = { op: 'write'; offset: number; data: Buffer } | { op: 'size'; size: number };

export class PowerCutDisk {
  /** What the disk holds for sure (as of the last sync). */
  #durable: Buffer;
  /** What a reader sees now: the durable bytes with every write since applied (the page cache). */
  #cache: Buffer;
  #pending: Pending[] = [];
  #steps = 0;
  #dead = false;
  readonly trace: TraceEntry[] = [];

  constructor(
    image: Uint8Array,
    /** The mutating step at which the power fails (Infinity: never). */
    readonly cutAt = Number.POSITIVE_INFINITY,
  ) {
    this.#durable = Buffer.from(image);
    this.#cache = Buffer.from(image);
  }

  /** Mutating steps taken so far (writes, size changes, syncs). */
  get steps(): number {
    return this.#steps;
  }

  get cut(): boolean {
    return this.#dead;
  }

  /** The bytes a reader sees now (before any cut). */
  get current(): Buffer {
    return this.#cache;
  }

  /** Only what was synced: the image after a cut that lost every unsynced write. */
  get durable(): Buffer {
    return this.#durable;
  }

  #step(): void {
    if (this.#dead) throw new PowerCut('the power is off');
    if (this.#steps++ === this.cutAt) {
      this.#dead = true;
      throw new PowerCut(`power cut at step ${this.cutAt}`);
    }
  }

  write(data: Uint8Array, offset: number): void {
    this.#step();
    const copy = Buffer.from(data);
    if (offset + copy.length > this.#cache.length) this.#resizeCache(offset + copy.length);
    copy.copy(this.#cache, offset);
    this.#pending.push({ op: 'write', offset, data: copy });
    this.trace.push({ op: 'write', offset, length: copy.length });
  }

  setSize(size: number): void {
    this.#step();
    this.#resizeCache(size);
    this.#pending.push({ op: 'size', size });
    this.trace.push({ op: 'size', size });
  }

  sync(): void {
    this.#step();
    // The durable image becomes the cache: apply what is pending (cheaper than copying a large image).
    if (this.#durable.length !== this.#cache.length) this.#durable = Buffer.from(this.#cache);
    else
      for (const entry of this.#pending)
        if (entry.op === 'write') entry.data.copy(this.#durable, entry.offset);
    this.#pending = [];
    this.trace.push({ op: 'sync' });
  }

  #resizeCache(size: number): void {
    const grown = Buffer.alloc(size);
    this.#cache.copy(grown, 0, 0, Math.min(size, this.#cache.length));
    this.#cache = grown;
  }

  /**
   * The disk after the power failed: synced data plus an arbitrary subset of the unsynced writes' sectors
   * (each kept with probability `keep`, drawn from `random`), applied in their order. The size is the
   * synced one or one set since, whichever `random` picks; bytes past it are gone.
   */
  afterCut(random: () => number, keep = random()): Buffer {
    const sizes = [this.#durable.length];
    for (const entry of this.#pending) if (entry.op === 'size') sizes.push(entry.size);
    let image = Buffer.from(this.#durable);
    for (const entry of this.#pending) {
      if (entry.op !== 'write') continue;
      const end = entry.offset + entry.data.length;
      if (end > image.length) {
        const grown = Buffer.alloc(end);
        image.copy(grown);
        image = grown;
      }
      for (let at = entry.offset; at < end; ) {
        const next = Math.min(end, (Math.floor(at / DISK_SECTOR) + 1) * DISK_SECTOR);
        if (random() < keep) entry.data.copy(image, at, at - entry.offset, next - entry.offset);
        at = next;
      }
    }
    const size = sizes[Math.floor(random() * sizes.length)] as number;
    if (image.length === size) return image;
    const sized = Buffer.alloc(size);
    image.copy(sized, 0, 0, Math.min(size, image.length));
    return sized;
  }

  /** A read-only OpenContainerFile over `image` as it is (no copy: for checking a cut image). */
  static reader(image: Buffer): OpenContainerFile {
    return async (path, mode) => {
      if (mode !== 'read') throw new Error('PowerCutDisk.reader is read-only');
      return {
        path,
        writable: false,
        size: async () => image.length,
        identity: async () => ({ dev: 1, ino: 1, atimeMs: 0, mtimeMs: 0 }),
        async read(buffer, position) {
          if (position + buffer.length > image.length) throw new Error('read past the end of the file');
          buffer.set(image.subarray(position, position + buffer.length));
        },
        write: async () => {
          throw new Error('read-only file');
        },
        sync: async () => {},
        setTimes: async () => {},
        allocate: async () => {
          throw new Error('read-only file');
        },
        close: async () => {},
      };
    };
  }

  /** An OpenContainerFile whose every file is this disk (the path is only a name). */
  opener(): OpenContainerFile {
    return async (path, mode) => this.file(path, mode !== 'read');
  }

  file(path: string, writable: boolean): ContainerFile {
    const disk = this;
    const alive = () => {
      if (disk.#dead) throw new PowerCut('the power is off');
    };
    return {
      path,
      writable,
      async size() {
        alive();
        return disk.#cache.length;
      },
      async identity() {
        return { dev: 1, ino: 1, atimeMs: 0, mtimeMs: 0 };
      },
      async read(buffer, position) {
        alive();
        if (position + buffer.length > disk.#cache.length) throw new Error('read past the end of the file');
        buffer.set(disk.#cache.subarray(position, position + buffer.length));
      },
      async write(buffer, position) {
        if (!writable) throw new Error('read-only file');
        disk.write(buffer, position);
      },
      async sync() {
        disk.sync();
      },
      async setTimes() {},
      async allocate(length) {
        if (length > disk.#cache.length) disk.setSize(length);
      },
      async close() {},
    };
  }
}

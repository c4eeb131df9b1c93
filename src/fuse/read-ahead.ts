// Sequential read-ahead for the bridge. The kernel sends the bridge one read at a time (loop direct
// I/O on FUSE is synchronous), so the daemon sits idle while the kernel hands each reply to the reader
// and asks for the next block. After answering a read that continues the previous one, the bridge
// reads (and, for a vault, decrypts) the next block at once, on its own core, while the kernel works on
// the other; the next request is then a copy. A write drops any read-ahead it overlaps.
import type { BlockDevice } from '../container/block-device.js';

interface Block {
  offset: number;
  length: number;
  /** true once the bytes are in the buffer; false if the device read failed. */
  ready: Promise<boolean>;
}

export class ReadAhead {
  #buffer: Buffer | null = null;
  #block: Block | null = null;
  /** A device read into #buffer is in flight (even if its block was dropped): never start a second. */
  #busy = false;
  #lastEnd = -1;
  /** Reads served from the read-ahead, and blocks read ahead: for the daemon's request summary. */
  hits = 0;
  started = 0;

  constructor(
    private readonly device: BlockDevice,
    private readonly maxBytes: number,
  ) {}

  /** Fills `target` from the read-ahead when it holds the block at `offset`; false when it does not. */
  async take(target: Uint8Array, offset: number): Promise<boolean> {
    const block = this.#block;
    if (!block) return false;
    if (block.offset !== offset || target.length > block.length) {
      this.#block = null; // the reader went elsewhere: this block is not coming
      return false;
    }
    const ready = await block.ready;
    // A write may have dropped the block while it was being read.
    if (!ready || this.#block !== block || !this.#buffer) return false;
    target.set(this.#buffer.subarray(0, target.length));
    this.#block = null;
    this.hits++;
    return true;
  }

  /** After a read was answered: when it continued the previous one, start reading the next block. */
  afterRead(offset: number, length: number): void {
    const sequential = offset === this.#lastEnd;
    this.#lastEnd = offset + length;
    if (!sequential || this.#busy || this.#block || length > this.maxBytes) return;
    const next = offset + length;
    const size = Math.min(length, this.device.size - next);
    if (size <= 0) return;
    this.#buffer ??= Buffer.alloc(this.maxBytes);
    this.#busy = true;
    this.started++;
    const ready = this.device
      .readAt(this.#buffer.subarray(0, size), next)
      .then(
        () => true,
        () => false,
      )
      .finally(() => {
        this.#busy = false;
      });
    this.#block = { offset: next, length: size, ready };
  }

  /** Called when a write to [offset, offset + length) starts and when it ends. */
  invalidate(offset: number, length: number): void {
    const block = this.#block;
    if (block && offset < block.offset + block.length && block.offset < offset + length) this.#block = null;
  }
}

// The bridge's read-ahead never serves stale or foreign bytes: only the block right after a sequential
// read, only until a write overlaps it, and a failed device read is never served.
import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../src/container/block-device.js';
import { ReadAhead } from '../../src/fuse/read-ahead.js';

function memoryDevice(size: number): BlockDevice & { bytes: Buffer; reads: number; failNext: boolean } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7) & 0xff;
  const device = {
    bytes,
    reads: 0,
    failNext: false,
    size,
    readOnly: false,
    async readAt(plain: Uint8Array, offset: number) {
      device.reads++;
      if (device.failNext) {
        device.failNext = false;
        throw new Error('EIO');
      }
      plain.set(bytes.subarray(offset, offset + plain.length));
    },
    async writeAt(plain: Uint8Array, offset: number) {
      bytes.set(plain, offset);
    },
    async flush() {},
    async close() {},
  };
  return device;
}

describe('ReadAhead', () => {
  it('serves the next block of a sequential read from memory', async () => {
    const device = memoryDevice(64 * 1024);
    const ahead = new ReadAhead(device, 8192);
    const target = Buffer.alloc(8192);
    expect(await ahead.take(target, 0)).toBe(false);
    ahead.afterRead(0, 8192); // first read: not yet sequential
    expect(device.reads).toBe(0);
    ahead.afterRead(8192, 8192); // continues the previous read: read ahead 16384..24575
    expect(device.reads).toBe(1);
    expect(await ahead.take(target, 16384)).toBe(true);
    expect(target.equals(device.bytes.subarray(16384, 24576))).toBe(true);
    expect(await ahead.take(target, 16384)).toBe(false); // served once
  });

  it('never serves a block that a write overlapped, before or after it was read', async () => {
    const device = memoryDevice(64 * 1024);
    const ahead = new ReadAhead(device, 8192);
    ahead.afterRead(0, 8192);
    ahead.afterRead(8192, 8192);
    ahead.invalidate(20000, 10);
    expect(await ahead.take(Buffer.alloc(8192), 16384)).toBe(false);
    // A write elsewhere keeps it. (The bridge calls afterRead from setImmediate: the dropped read is over.)
    await new Promise((resolve) => setImmediate(resolve));
    ahead.afterRead(16384, 8192);
    ahead.invalidate(0, 4096);
    const target = Buffer.alloc(8192);
    expect(await ahead.take(target, 24576)).toBe(true);
    expect(target.equals(device.bytes.subarray(24576, 32768))).toBe(true);
  });

  it('does not serve a failed read, another offset, a longer read, or past the end', async () => {
    const device = memoryDevice(32 * 1024);
    const ahead = new ReadAhead(device, 8192);
    ahead.afterRead(0, 8192);
    device.failNext = true;
    ahead.afterRead(8192, 8192);
    expect(await ahead.take(Buffer.alloc(8192), 16384)).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    ahead.afterRead(16384, 8192); // sequential again: reads the last block
    expect(await ahead.take(Buffer.alloc(8192), 16000)).toBe(false);
    expect(await ahead.take(Buffer.alloc(16384), 24576)).toBe(false);
    ahead.afterRead(24576, 8192); // at the end: nothing left to read ahead
    expect(await ahead.take(Buffer.alloc(8192), 32768)).toBe(false);
  });

  it('recovers when a read-ahead started too late: the stale block is dropped and reading ahead resumes', async () => {
    const device = memoryDevice(64 * 1024);
    const ahead = new ReadAhead(device, 8192);
    ahead.afterRead(0, 8192);
    ahead.afterRead(8192, 8192); // reads ahead 16384, but the reader already moved on:
    expect(await ahead.take(Buffer.alloc(8192), 24576)).toBe(false); // drops the 16384 block
    await new Promise((resolve) => setImmediate(resolve));
    ahead.afterRead(24576, 8192); // sequential with 16384..24575? no: lastEnd was 16384, so not yet
    ahead.afterRead(32768, 8192); // now sequential again: reads ahead 40960
    const target = Buffer.alloc(8192);
    expect(await ahead.take(target, 40960)).toBe(true);
    expect(target.equals(device.bytes.subarray(40960, 49152))).toBe(true);
  });
});

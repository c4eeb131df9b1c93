// The bench's passthrough device (src/fuse/passthrough-device.ts): the BlockDevice contract without a
// cipher, so the bridge can be measured and tested alone. Same refusals as a vault: out of range,
// read-only, closed.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPassthroughDevice } from '../../src/fuse/passthrough-device.js';

let dir: string;
let path: string;
const SIZE = 64 * 1024;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-passthrough-'));
  path = join(dir, 'plain.img');
  await writeFile(path, Buffer.alloc(SIZE, 0x33));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the passthrough device', () => {
  it('reads and writes the file as it is, up to its last byte', async () => {
    const device = await openPassthroughDevice(path);
    expect(device.size).toBe(SIZE);
    expect(device.readOnly).toBe(false);
    await device.writeAt(Buffer.from('edge'), SIZE - 4);
    await device.writeAt(Buffer.alloc(0), SIZE);
    const tail = Buffer.alloc(4);
    await device.readAt(tail, SIZE - 4);
    expect(tail.toString()).toBe('edge');
    await device.flush();
    const raw = device.rawAccess?.();
    if (!raw) throw new Error('the passthrough device has raw access');
    expect(raw).toMatchObject({ dataOffset: 0, key: null, sectorSize: 4096, protectedRange: null });
    expect(raw.fd).toBeGreaterThan(2);
    await device.close();
    await device.close();
    expect((await readFile(path)).subarray(SIZE - 4).toString()).toBe('edge');
  });

  it('refuses every access outside the file, and anything after close', async () => {
    const device = await openPassthroughDevice(path);
    for (const [offset, length] of [
      [SIZE - 3, 4],
      [SIZE, 1],
      [-1, 1],
      [0.5, 1],
      [Number.NaN, 1],
    ] as Array<[number, number]>) {
      await expect(device.readAt(Buffer.alloc(length), offset), `${offset}+${length}`).rejects.toThrow(
        /^access beyond the end of the device$/,
      );
      await expect(device.writeAt(Buffer.alloc(length), offset), `${offset}+${length}`).rejects.toThrow(
        RangeError,
      );
    }
    await device.close();
    await expect(device.readAt(Buffer.alloc(1), 0)).rejects.toMatchObject({
      code: 'IO',
      message: 'the device is closed',
    });
    expect(() => device.rawAccess?.()).toThrow(/closed/);
  });

  it('read-only: reads, refuses writes, never syncs', async () => {
    const before = await readFile(path);
    const device = await openPassthroughDevice(path, { readOnly: true });
    expect(device.readOnly).toBe(true);
    await expect(device.writeAt(Buffer.from('x'), 0)).rejects.toMatchObject({
      code: 'IO',
      message: 'the device is read-only',
    });
    const first = Buffer.alloc(1);
    await device.readAt(first, 0);
    expect(first[0]).toBe(0x33);
    await device.flush();
    await device.close();
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});

it('close releases the file descriptor, also read-only', async () => {
  const count = async () => (await readdir('/proc/self/fd')).length;
  for (const readOnly of [false, true]) {
    const before = await count();
    const device = await openPassthroughDevice(path, { readOnly });
    expect(await count()).toBe(before + 1);
    await device.close();
    expect(await count()).toBe(before);
  }
});

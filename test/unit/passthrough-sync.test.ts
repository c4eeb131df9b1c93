// The passthrough device (src/fuse/passthrough-device.ts) flushes what it wrote: flush() and close() of a
// writable device reach fdatasync on the file, a read-only one never asks for it, and rawAccess after
// close is refused (the descriptor it would hand out is gone).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openPassthroughDevice } from '../../src/fuse/passthrough-device.js';

// The descriptors fdatasync was called on.
const synced = vi.hoisted(() => [] as number[]);
vi.mock('../../src/fuse/host-file.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/fuse/host-file.js')>();
  const { fdatasync } = await import('node:fs');
  const { promisify } = await import('node:util');
  const datasync = promisify(fdatasync);
  return {
    ...original,
    openHostFile: original.openHostFileWith(async (fd) => {
      synced.push(fd);
      await datasync(fd);
    }),
  };
});

let dir: string;
let path: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-passthrough-sync-'));
  path = join(dir, 'plain.img');
  await writeFile(path, Buffer.alloc(64 * 1024, 0x11));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  synced.length = 0;
});

describe('the passthrough device syncs what it wrote', () => {
  it('a writable device: flush syncs, close syncs once more', async () => {
    const device = await openPassthroughDevice(path);
    await device.writeAt(Buffer.from('data'), 0);
    await device.flush();
    expect(synced.length).toBe(1);
    await device.close();
    expect(synced.length).toBe(2);
  });

  it('a read-only device never syncs', async () => {
    const device = await openPassthroughDevice(path, { readOnly: true });
    await device.flush();
    await device.close();
    expect(synced).toEqual([]);
  });

  it('refuses raw access once closed', async () => {
    const device = await openPassthroughDevice(path, { readOnly: true });
    await device.close();
    expect(() => device.rawAccess?.()).toThrow(/^the device is closed$/);
  });
});

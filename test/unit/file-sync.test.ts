// ContainerFile.sync of the library's file (src/container/file.ts) is an fdatasync of its handle, and
// a failing fdatasync is reported, never swallowed: the durability every flush and header update rests
// on. Seen through a wrapped node:fs/promises handle, since a skipped fdatasync leaves no trace in the file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const calls = vi.hoisted(() => ({ datasync: 0, close: 0, fail: null as Error | null }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...original,
    open: async (...args: Parameters<typeof original.open>) => {
      const handle = await original.open(...args);
      const datasync = handle.datasync.bind(handle);
      const close = handle.close.bind(handle);
      handle.datasync = async () => {
        calls.datasync++;
        if (calls.fail) throw calls.fail;
        return datasync();
      };
      handle.close = async () => {
        calls.close++;
        return close();
      };
      return handle;
    },
  };
});

const { openContainerFile } = await import('../../src/container/file.js');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-file-sync-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the library file', () => {
  it('sync is one fdatasync; its failure is an IO error naming the file; close closes the handle', async () => {
    const path = join(dir, 'a.vol');
    const file = await openContainerFile(path, 'create');
    await file.write(Buffer.from('data'), 0);
    await file.sync();
    expect(calls.datasync).toBe(1);
    calls.fail = Object.assign(new Error('EIO'), { code: 'EIO' });
    await expect(file.sync()).rejects.toMatchObject({ code: 'IO', message: `I/O error on ${path}: EIO` });
    calls.fail = null;
    expect(calls.close).toBe(0);
    await file.close();
    expect(calls.close).toBe(1);
  });
});

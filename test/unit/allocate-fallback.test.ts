// ContainerFile.allocate (src/container/file.ts allocateDescriptor, as src/fuse/host-file.ts uses it)
// when posix_fallocate does not do the job: a filesystem without fallocate gets the file extended with
// ftruncate instead; a full disk (ENOSPC) is an error at once and the file keeps its length.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type OpenContainerFile, openContainerFile } from '../../src/container/file.js';
import { isVaultError } from '../../src/container/index.js';
import { openHostFile } from '../../src/fuse/host-file.js';

// What the addon's fallocate answers (an errno, 0 for success).
const answer = vi.hoisted(() => ({ errno: 0 }));
vi.mock('../../src/crypto/native.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/crypto/native.js')>();
  if (!original.nativeAddon) return original;
  return { ...original, nativeAddon: { ...original.nativeAddon, fallocate: () => answer.errno } };
});

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-allocate-fallback-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each([
  ['openContainerFile', openContainerFile],
  ['openHostFile', openHostFile],
] as Array<[string, OpenContainerFile]>)('%s: allocate without fallocate', (name, open) => {
  it('extends the file with ftruncate where the filesystem has no fallocate (EOPNOTSUPP)', async () => {
    answer.errno = 95;
    const path = join(dir, `${name}-sparse.vol`);
    const file = await open(path, 'create');
    try {
      await file.allocate(3 << 20);
    } finally {
      await file.close();
    }
    expect((await stat(path)).size).toBe(3 << 20);
  });

  it('refuses at once on a full disk (ENOSPC), the file as long as before', async () => {
    answer.errno = 28;
    const path = join(dir, `${name}-full.vol`);
    await writeFile(path, Buffer.alloc(4096, 1));
    const file = await open(path, 'write');
    let error: unknown = null;
    try {
      await file.allocate(3 << 20).catch((caught: unknown) => {
        error = caught;
      });
    } finally {
      await file.close();
    }
    expect(isVaultError(error, 'IO'), String(error)).toBe(true);
    expect((error as Error).message).toBe(`no space left on the disk holding ${path}`);
    expect((await stat(path)).size).toBe(4096);
  });
});

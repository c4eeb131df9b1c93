// ContainerFile.allocate (create --quick) works on the open descriptor, never on the path: a path
// swapped for a symlink after opening (in a directory another user can write) cannot make root
// extend or allocate some other file.
import { mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenContainerFile, openContainerFile } from '../../src/container/file.js';
import { openHostFile } from '../../src/fuse/host-file.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-allocate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each([
  ['openContainerFile', openContainerFile],
  ['openHostFile', openHostFile],
] as Array<[string, OpenContainerFile]>)('%s: allocate', (name, open) => {
  it('extends the file it opened, with the space reserved, even after its path was swapped for a symlink', async () => {
    const path = join(dir, `${name}.vol`);
    const moved = join(dir, `${name}.moved`);
    const victim = join(dir, `${name}.victim`);
    await writeFile(victim, 'precious');
    const file = await open(path, 'create');
    try {
      await rename(path, moved);
      await symlink(victim, path);
      await file.allocate(4 << 20);
    } finally {
      await file.close();
    }
    expect(await readFile(victim, 'utf8')).toBe('precious');
    const info = await stat(moved);
    expect(info.size).toBe(4 << 20);
    expect(info.blocks * 512).toBeGreaterThanOrEqual(4 << 20); // posix_fallocate, not a sparse truncate
  });
});

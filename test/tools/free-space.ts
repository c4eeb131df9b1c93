// TEST ONLY: node:fs/promises with statfs reporting a chosen amount of free space, through vi.mock:
//
//   const space = vi.hoisted(() => ({ free: null as number | null }));
//   vi.mock('node:fs/promises', async (importOriginal) =>
//     (await import('../tools/free-space.js')).withFreeSpace(await importOriginal(), space));
//
// While `space.free` is a number, every statfs says exactly that many bytes are free; null: the truth.
import type * as FsPromises from 'node:fs/promises';

export function withFreeSpace(
  original: typeof FsPromises,
  space: { free: number | null },
): typeof FsPromises {
  const statfs = (async (path: string, options?: { bigint?: boolean }) => {
    const real = await original.statfs(path, options as { bigint?: false });
    return space.free === null ? real : { ...real, bsize: 1, bavail: space.free };
  }) as typeof original.statfs;
  return { ...original, statfs };
}

// Fault injection through the library's I/O layer (ContainerFile), not by patching code: a container
// file that "crashes" at mutating step N (writes and syncs count). The dying write lands only its first
// half (a torn write); every later write or sync fails as if the process were gone.
import type { ContainerFile, OpenContainerFile } from '../../src/container/file.js';
import { openContainerFile } from '../../src/container/file.js';

export class Crash extends Error {}

export function crashingOpener(crashAt: number): { open: OpenContainerFile; steps: () => number } {
  let step = 0;
  let dead = false;
  const open: OpenContainerFile = async (path, mode) => {
    const real = await openContainerFile(path, mode);
    const file: ContainerFile = {
      path: real.path,
      writable: real.writable,
      size: () => real.size(),
      identity: () => real.identity(),
      read: (buffer, position) => real.read(buffer, position),
      setTimes: (a, m) => real.setTimes(a, m),
      allocate: (length) => real.allocate(length),
      close: () => real.close(),
      async write(buffer, position) {
        if (dead) throw new Crash('dead');
        if (step++ === crashAt) {
          dead = true;
          await real.write(buffer.subarray(0, Math.floor(buffer.length / 2)), position);
          throw new Crash('torn write');
        }
        await real.write(buffer, position);
      },
      async sync() {
        if (dead) throw new Crash('dead');
        if (step++ === crashAt) {
          dead = true;
          throw new Crash('sync failed');
        }
        await real.sync();
      },
    };
    return file;
  };
  return { open, steps: () => step };
}

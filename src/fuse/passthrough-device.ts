// A BlockDevice over a plain file, without any encryption. Bench-only: it is the "passthrough"
// baseline of `npm run bench -- mount` (the same bridge, daemon and loop device as a vault, minus
// the cipher) and lets the bridge be tested without the container library. Never used for user data.
import { open } from 'node:fs/promises';
import type { BlockDevice } from '../container/block-device.js';
import { VaultError } from '../container/errors.js';

export async function openPassthroughDevice(
  path: string,
  options: { readOnly?: boolean } = {},
): Promise<BlockDevice> {
  const readOnly = options.readOnly ?? false;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, readOnly ? 'r' : 'r+');
  } catch (error) {
    throw new VaultError('NOT_FOUND', `cannot open ${path}`, 'check the path', { cause: error });
  }
  const size = (await handle.stat()).size;
  let closed = false;

  const check = (length: number, offset: number): void => {
    if (closed) throw new Error('device closed');
    if (offset < 0 || offset + length > size) throw new RangeError('access beyond the end of the device');
  };

  return {
    size,
    readOnly,
    async readAt(plain, offset) {
      check(plain.length, offset);
      let done = 0;
      while (done < plain.length) {
        const { bytesRead } = await handle.read(plain, done, plain.length - done, offset + done);
        if (bytesRead === 0) throw new VaultError('IO', `unexpected end of ${path}`);
        done += bytesRead;
      }
    },
    async writeAt(plain, offset) {
      check(plain.length, offset);
      if (readOnly) throw new VaultError('USAGE', 'device is read-only');
      let done = 0;
      while (done < plain.length) {
        const { bytesWritten } = await handle.write(plain, done, plain.length - done, offset + done);
        done += bytesWritten;
      }
    },
    async flush() {
      if (!readOnly) await handle.datasync();
    },
    async close() {
      if (closed) return;
      try {
        if (!readOnly) await handle.datasync();
      } finally {
        closed = true;
        await handle.close();
      }
    },
  };
}

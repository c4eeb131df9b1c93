// A BlockDevice over a plain file, without any encryption. Bench-only: it is the "passthrough"
// baseline of `npm run bench -- mount` (the same bridge, daemon, host-file I/O and loop device as a
// vault, minus the cipher) and lets the bridge be tested alone. Never used for user data.
import type { BlockDevice } from '../container/block-device.js';
import { VaultError } from '../container/errors.js';
import { openHostFile } from './host-file.js';

export async function openPassthroughDevice(
  path: string,
  options: { readOnly?: boolean } = {},
): Promise<BlockDevice> {
  const readOnly = options.readOnly ?? false;
  const file = await openHostFile(path, readOnly ? 'read' : 'write');
  const size = await file.size();
  let closed = false;

  const check = (length: number, offset: number): void => {
    if (closed) throw new VaultError('IO', 'the device is closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > size) {
      throw new RangeError('access beyond the end of the device');
    }
  };

  return {
    size,
    readOnly,
    async readAt(plain, offset) {
      check(plain.length, offset);
      await file.read(plain, offset);
    },
    async writeAt(plain, offset) {
      check(plain.length, offset);
      if (readOnly) throw new VaultError('IO', 'the device is read-only');
      await file.write(plain, offset);
    },
    async flush() {
      if (!readOnly) await file.sync();
    },
    rawAccess() {
      if (closed || file.fd === undefined) throw new VaultError('IO', 'the device is closed');
      return { fd: file.fd, dataOffset: 0, key: null, sectorSize: 4096, protectedRange: null };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (!readOnly) await file.sync();
      } finally {
        await file.close();
      }
    },
  };
}

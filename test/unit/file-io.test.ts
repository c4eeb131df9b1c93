// The container file layer (src/container/file.ts): short reads and writes are continued until every
// byte is in place (a write the kernel splits must not lose its tail), the end of the file is an error,
// errno codes become the errors a user can act on, and the modes open what they say.
import { mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import {
  allocateDescriptor,
  fileError,
  openContainerFile,
  readFully,
  writeFully,
} from '../../src/container/file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-file-io-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('readFully and writeFully', () => {
  it('continue short transfers at the right offsets and lengths until the whole buffer is done', async () => {
    const source = Buffer.from('0123456789abcdefghij');
    const target = Buffer.alloc(source.length);
    const calls: Array<[number, number, number]> = [];
    await readFully('/f', target, 1000, (offset, length, position) => {
      calls.push([offset, length, position]);
      const n = Math.min(3, length);
      source.copy(target, offset, offset, offset + n);
      return n;
    });
    expect(target.equals(source)).toBe(true);
    expect(calls.slice(0, 2)).toEqual([
      [0, 20, 1000],
      [3, 17, 1003],
    ]);
    expect(calls).toHaveLength(7);

    const disk = Buffer.alloc(40);
    const writes: Array<[number, number, number]> = [];
    await writeFully('/f', source, 10, async (offset, length, position) => {
      writes.push([offset, length, position]);
      const n = Math.min(7, length);
      source.copy(disk, position, offset, offset + n);
      return n;
    });
    expect(disk.subarray(10, 30).equals(source)).toBe(true);
    expect(writes).toEqual([
      [0, 20, 10],
      [7, 13, 17],
      [14, 6, 24],
    ]);
    expect(
      disk.subarray(0, 10).every((byte) => byte === 0) && disk.subarray(30).every((byte) => byte === 0),
    ).toBe(true);
  });

  it('nothing to do is no call at all', async () => {
    let calls = 0;
    const chunk = () => {
      calls++;
      return 0;
    };
    await readFully('/f', new Uint8Array(0), 0, chunk);
    await writeFully('/f', new Uint8Array(0), 0, chunk);
    expect(calls).toBe(0);
  });

  it('the end of the file is a truncated container (or what the caller says, told where), errno errors are mapped', async () => {
    const atEnd = await readFully('/v.vol', Buffer.alloc(10), 0, (_o, length) => (length > 5 ? 5 : 0)).catch(
      (e: unknown) => e,
    );
    expect(isVaultError(atEnd, 'IO')).toBe(true);
    expect((atEnd as Error).message).toBe('unexpected end of file in /v.vol');
    expect((atEnd as { hint: string }).hint).toBe('the container file is truncated');
    // The caller's endOfFile is told where the file ended: 3 bytes after position 7.
    const custom = await readFully(
      '/v.vol',
      Buffer.alloc(10),
      7,
      (_o, length) => (length === 10 ? 3 : 0),
      (at) => fileError(errno(`E${at}`), 'x'),
    ).catch((e: unknown) => e);
    expect((custom as Error).message).toMatch(/: E10$/);
    const full = await writeFully('/v.vol', Buffer.alloc(10), 0, () => {
      throw errno('ENOSPC');
    }).catch((e: unknown) => e);
    expect((full as Error).message).toBe('no space left on the disk holding /v.vol');
    const failed = await readFully('/v.vol', Buffer.alloc(10), 0, () => {
      throw errno('EIO');
    }).catch((e: unknown) => e);
    expect((failed as Error).message).toBe('I/O error on /v.vol: EIO');
  });
});

describe('fileError', () => {
  it('maps each errno (or none) to a code, a message naming the path and a hint', () => {
    const cases: Array<[string, string, RegExp, string | undefined]> = [
      ['ENOENT', 'NOT_FOUND', /^no such file: \/p$/, undefined],
      ['EEXIST', 'EXISTS', /^file exists: \/p$/, 'exists'],
      ['EISDIR', 'USAGE', /^is a directory: \/p$/, undefined],
      ['EACCES', 'IO', /^permission denied: \/p$/, 'permission-denied'],
      ['EPERM', 'IO', /^permission denied: \/p$/, 'permission-denied'],
      ['EROFS', 'IO', /^permission denied: \/p$/, 'permission-denied'],
      ['ENOSPC', 'IO', /^no space left on the disk holding \/p$/, undefined],
      ['EDQUOT', 'IO', /^no space left on the disk holding \/p$/, undefined],
      ['EIO', 'IO', /^I\/O error on \/p: EIO$/, undefined],
    ];
    for (const [code, vaultCode, message, reason] of cases) {
      const error = fileError(errno(code), '/p');
      expect(isVaultError(error, vaultCode as never), code).toBe(true);
      expect(error.message, code).toMatch(message);
      expect(error.hint, code).toBeTruthy();
      expect(error.cause, code).toBeInstanceOf(Error);
      if (reason) expect(error.reason, code).toBe(reason);
    }
    expect(fileError('plain', '/p').message).toBe('I/O error on /p: plain');
    expect(fileError(undefined, '/p').message).toBe('I/O error on /p: undefined');
  });
});

describe('openContainerFile', () => {
  it('create: a new file, mode 0600, never an existing one; read: not writable; a directory is said to be one', async () => {
    const path = join(dir, 'new.vol');
    const created = await openContainerFile(path, 'create');
    expect(created.writable).toBe(true);
    await created.write(Buffer.from('abc'), 0);
    await created.sync();
    expect(await created.size()).toBe(3);
    await created.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await openContainerFile(path, 'create').catch((e: unknown) => e);
    expect(isVaultError(again, 'EXISTS')).toBe(true);

    const reader = await openContainerFile(path, 'read');
    expect(reader.writable).toBe(false);
    await expect(reader.write(Buffer.from('x'), 0)).rejects.toThrow();
    const bytes = Buffer.alloc(3);
    await reader.read(bytes, 0);
    expect(bytes.toString()).toBe('abc');
    await reader.close();

    const writer = await openContainerFile(path, 'write');
    expect(writer.writable).toBe(true);
    const identity = await writer.identity();
    expect(identity.ino).toBe((await stat(path)).ino);
    await writer.setTimes(2_000_000, 3_000_000);
    await writer.close();
    expect((await stat(path)).mtimeMs).toBe(3_000_000);

    await mkdir(join(dir, 'd'));
    for (const mode of ['read', 'write'] as const) {
      const error = await openContainerFile(join(dir, 'd'), mode).catch((e: unknown) => e);
      expect(isVaultError(error, 'USAGE'), mode).toBe(true);
    }
    const missing = await openContainerFile(join(dir, 'missing.vol'), 'write').catch((e: unknown) => e);
    expect(isVaultError(missing, 'NOT_FOUND')).toBe(true);
  });

  it('allocateDescriptor falls back to truncate where fallocate fails, and maps its errors', async () => {
    // /dev/null has no fallocate (an error other than ENOSPC): the sparse fallback runs.
    const handle = await open('/dev/null', 'r');
    try {
      const lengths: number[] = [];
      await allocateDescriptor('/p', handle.fd, 4096, async (length) => {
        lengths.push(length);
      });
      expect(lengths).toEqual([4096]);
      const error = await allocateDescriptor('/p', handle.fd, 4096, async () => {
        throw errno('EFBIG');
      }).catch((e: unknown) => e);
      expect((error as Error).message).toBe('I/O error on /p: EFBIG');
    } finally {
      await handle.close();
    }
  });
});

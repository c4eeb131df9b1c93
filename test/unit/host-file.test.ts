// The daemon's container file: writes land in the file, the host's writeback is started every
// WRITEBACK_BYTES without being waited for, and a failure of that background writeback is not lost:
// the next sync reports it (the kernel reports a writeback error to one fdatasync only).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import { openHostFileWith, WRITEBACK_BYTES } from '../../src/fuse/host-file.js';

const dir = mkdtempSync(join(tmpdir(), 'vault-host-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CHUNK = 1 << 20;

function recorder(fail?: () => Error | null) {
  const calls: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const datasync = (_fd: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      calls.push({ resolve, reject });
      const error = fail?.() ?? null;
      // Settles on a later turn, as a real fdatasync on the thread pool does.
      setImmediate(() => (error ? reject(error) : resolve()));
    });
  return { calls, datasync };
}

describe('host file (daemon side of the container)', () => {
  it('starts the writeback every WRITEBACK_BYTES, without waiting for it, and writes every byte', async () => {
    const path = join(dir, 'a.bin');
    writeFileSync(path, Buffer.alloc(0));
    const { calls, datasync } = recorder();
    const file = await openHostFileWith(datasync)(path, 'write');
    const chunks = (2 * WRITEBACK_BYTES) / CHUNK + 3;
    for (let i = 0; i < chunks; i++) await file.write(Buffer.alloc(CHUNK, i & 0xff), i * CHUNK);
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls.length).toBeLessThanOrEqual(2);
    await file.sync();
    await file.close();
    const written = readFileSync(path);
    expect(written.length).toBe(chunks * CHUNK);
    for (let i = 0; i < chunks; i++) expect(written[i * CHUNK + 7]).toBe(i & 0xff);
  });

  it('writes less than WRITEBACK_BYTES start no writeback; sync does', async () => {
    const path = join(dir, 'b.bin');
    writeFileSync(path, Buffer.alloc(0));
    const { calls, datasync } = recorder();
    const file = await openHostFileWith(datasync)(path, 'write');
    await file.write(Buffer.alloc(WRITEBACK_BYTES - CHUNK), 0);
    expect(calls.length).toBe(0);
    await file.sync();
    expect(calls.length).toBe(1);
    await file.close();
  });

  it('a failed background writeback makes the next sync fail (EIO), once', async () => {
    const path = join(dir, 'c.bin');
    writeFileSync(path, Buffer.alloc(0));
    let failNext = true;
    const { calls, datasync } = recorder(() => {
      if (!failNext) return null;
      failNext = false;
      return Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    });
    const file = await openHostFileWith(datasync)(path, 'write');
    for (let i = 0; i < WRITEBACK_BYTES / CHUNK; i++) await file.write(Buffer.alloc(CHUNK), i * CHUNK);
    expect(calls.length).toBe(1); // the background one, which fails
    const failed = await file.sync().then(
      () => null,
      (error: unknown) => error,
    );
    expect(isVaultError(failed)).toBe(true);
    expect((failed as Error).message).toContain(path);
    await expect(file.sync()).resolves.toBeUndefined();
    await file.close();
  });
});

// The daemon's container file: writes land in the file, the host's writeback is started every
// WRITEBACK_BYTES without being waited for, and a failure of that background writeback is not lost:
// the next sync reports it (the kernel reports a writeback error to one fdatasync only).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

describe('host file: modes, times, the writeback and close', () => {
  /** A datasync whose calls settle only when the test says so. */
  function held() {
    const calls: Array<{ resolve: () => void; reject: (error: Error) => void; settled: boolean }> = [];
    const datasync = (_fd: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const call = {
          settled: false,
          resolve: () => {
            call.settled = true;
            resolve();
          },
          reject: (error: Error) => {
            call.settled = true;
            reject(error);
          },
        };
        calls.push(call);
      });
    return { calls, datasync };
  }
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('is writable unless opened to read; knows its identity; sets times through the descriptor', async () => {
    const path = join(dir, 'modes.bin');
    writeFileSync(path, Buffer.alloc(4096, 1));
    const { datasync } = recorder();
    const reader = await openHostFileWith(datasync)(path, 'read');
    expect(reader.writable).toBe(false);
    const writer = await openHostFileWith(datasync)(path, 'write');
    expect(writer.writable).toBe(true);
    const created = await openHostFileWith(datasync)(join(dir, 'modes-new.bin'), 'create');
    expect(created.writable).toBe(true);
    const stats = statSync(path);
    expect(await reader.identity()).toEqual({
      dev: stats.dev,
      ino: stats.ino,
      atimeMs: stats.atimeMs,
      mtimeMs: stats.mtimeMs,
    });
    await writer.setTimes(1_000_000_000_000, 1_500_000_000_000);
    const after = statSync(path);
    expect(after.atimeMs).toBe(1_000_000_000_000);
    expect(after.mtimeMs).toBe(1_500_000_000_000);
    for (const file of [reader, writer, created]) await file.close();
  });

  it('starts one writeback at a time, and the next once the first is done', async () => {
    const path = join(dir, 'one-at-a-time.bin');
    writeFileSync(path, Buffer.alloc(0));
    const { calls, datasync } = held();
    const file = await openHostFileWith(datasync)(path, 'write');
    for (let i = 0; i < (2 * WRITEBACK_BYTES) / CHUNK; i++)
      await file.write(Buffer.alloc(CHUNK, 1), i * CHUNK);
    expect(calls.length).toBe(1); // the first still runs: no second one beside it
    calls[0]?.resolve();
    await tick();
    for (let i = 0; i < WRITEBACK_BYTES / CHUNK; i++) await file.write(Buffer.alloc(CHUNK, 2), i * CHUNK);
    expect(calls.length).toBe(2);
    calls[1]?.resolve();
    await tick();
    const synced = file.sync();
    await tick();
    calls[2]?.resolve();
    await synced;
    await file.close();
  });

  it('sync waits for the writeback in flight and reports its failure even when it fails last', async () => {
    const path = join(dir, 'late-failure.bin');
    writeFileSync(path, Buffer.alloc(0));
    const { calls, datasync } = held();
    const file = await openHostFileWith(datasync)(path, 'write');
    for (let i = 0; i < WRITEBACK_BYTES / CHUNK; i++) await file.write(Buffer.alloc(CHUNK, 3), i * CHUNK);
    expect(calls.length).toBe(1);
    let done = false;
    const synced = file.sync().then(
      () => {
        done = true;
        return null;
      },
      (error: unknown) => {
        done = true;
        return error;
      },
    );
    await tick();
    // sync's own fdatasync has not started while the background one runs.
    expect(calls.length).toBe(1);
    expect(done).toBe(false);
    calls[0]?.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await tick();
    calls[1]?.resolve();
    const failed = await synced;
    expect(isVaultError(failed)).toBe(true);
    await file.close();
  });

  it('close waits for the writeback in flight, closes the descriptor once, and may be called again', async () => {
    const path = join(dir, 'close.bin');
    writeFileSync(path, Buffer.alloc(0));
    const { calls, datasync } = held();
    const before = readdirSync('/proc/self/fd').length;
    const file = await openHostFileWith(datasync)(path, 'write');
    const fd = file.fd as number;
    expect(fd).toBeGreaterThan(2);
    for (let i = 0; i < WRITEBACK_BYTES / CHUNK; i++) await file.write(Buffer.alloc(CHUNK, 4), i * CHUNK);
    let closed = false;
    const closing = file.close().then(() => {
      closed = true;
    });
    await tick();
    expect(closed).toBe(false);
    expect(file.fd).toBe(fd);
    calls[0]?.resolve();
    await closing;
    expect(file.fd).toBe(-1);
    expect(readdirSync('/proc/self/fd').length).toBe(before);
    await file.close();
    expect(file.fd).toBe(-1);
  });
});

// The container file as the daemon opens it: positional reads and writes done synchronously on the
// event loop thread (headers, and the final flush; the data path is the FUSE 3 addon, on this file's
// descriptor). Synchronous because these few small requests only pay for a thread-pool round trip.
import { closeSync, fdatasync, fstat, ftruncate, futimes, openSync, readSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import {
  allocateDescriptor,
  type ContainerFile,
  fileError,
  type OpenContainerFile,
  readFully,
  writeFully,
} from '../container/file.js';

const fdatasyncAsync = promisify(fdatasync);
const fstatAsync = promisify(fstat);
const futimesAsync = promisify(futimes);
const ftruncateAsync = promisify(ftruncate);

export const openHostFile: OpenContainerFile = openHostFileWith(fdatasyncAsync);

/** @internal openHostFile with another fdatasync, so tests can see and fail the background writeback. */
export function openHostFileWith(datasync: (fd: number) => Promise<void>): OpenContainerFile {
  return async (path, mode) => {
    const flags = mode === 'read' ? 'r' : mode === 'write' ? 'r+' : 'wx+';
    let fd: number;
    try {
      fd = openSync(path, flags, 0o600);
    } catch (error) {
      throw fileError(error, path);
    }
    return new HostFile(path, fd, mode !== 'read', datasync);
  };
}

/**
 * After this many bytes written, the host's writeback of them is started (an fdatasync on the thread
 * pool, not waited for). Without it a 1 GiB copy into a vault sits in the host's page cache, below the
 * dirty thresholds, until the final fsync, which then writes all of it while everything waits; with it
 * the disk writes while the bridge still serves requests.
 */
export const WRITEBACK_BYTES = 32 << 20;

class HostFile implements ContainerFile {
  #fd: number;
  #unflushed = 0;
  #writeback: Promise<void> | null = null;
  /** A failure of the background writeback, reported by the next sync (the kernel reports it once). */
  #writebackError: unknown = null;

  constructor(
    readonly path: string,
    fd: number,
    readonly writable: boolean,
    private readonly datasync: (fd: number) => Promise<void>,
  ) {
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  async size(): Promise<number> {
    return (await fstatAsync(this.#fd)).size;
  }

  async identity(): Promise<{ dev: number; ino: number; atimeMs: number; mtimeMs: number }> {
    const stats = await fstatAsync(this.#fd);
    return { dev: stats.dev, ino: stats.ino, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
  }

  read(buffer: Uint8Array, position: number): Promise<void> {
    return readFully(this.path, buffer, position, (offset, length, at) =>
      readSync(this.#fd, buffer, offset, length, at),
    );
  }

  async write(buffer: Uint8Array, position: number): Promise<void> {
    await writeFully(this.path, buffer, position, (offset, length, at) =>
      writeSync(this.#fd, buffer, offset, length, at),
    );
    this.#unflushed += buffer.length;
    if (this.#unflushed >= WRITEBACK_BYTES && this.#writeback === null) this.#startWriteback();
  }

  #startWriteback(): void {
    this.#unflushed = 0;
    this.#writeback = this.datasync(this.#fd).then(
      () => {
        this.#writeback = null;
      },
      (error: unknown) => {
        this.#writebackError ??= error;
        this.#writeback = null;
      },
    );
  }

  async sync(): Promise<void> {
    // fdatasync may take long: off the event loop, so signals are still handled meanwhile.
    try {
      if (this.#writeback) await this.#writeback;
      this.#unflushed = 0;
      await this.datasync(this.#fd);
      const failed = this.#writebackError;
      if (failed !== null) {
        this.#writebackError = null;
        throw failed;
      }
    } catch (error) {
      throw fileError(error, this.path);
    }
  }

  async setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    await futimesAsync(this.#fd, atimeMs / 1000, mtimeMs / 1000);
  }

  async allocate(length: number): Promise<void> {
    await allocateDescriptor(this.path, this.#fd, length, (size) => ftruncateAsync(this.#fd, size));
  }

  async close(): Promise<void> {
    if (this.#fd < 0) return;
    if (this.#writeback) await this.#writeback;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }
}

// The container file as the daemon opens it: positional reads and writes done synchronously on the
// event loop thread. The kernel hands the bridge one request at a time (the loop device's direct I/O
// on a FUSE file is synchronous: libfuse 2 cannot negotiate async direct I/O), so a thread-pool round
// trip per 128 KiB request only adds latency: measured, it cost a third of the throughput.
import { closeSync, fdatasync, fstat, futimes, openSync, readSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { VaultError } from '../container/errors.js';
import { type ContainerFile, fileError, type OpenContainerFile } from '../container/file.js';

const fdatasyncAsync = promisify(fdatasync);
const fstatAsync = promisify(fstat);
const futimesAsync = promisify(futimes);

export const openHostFile: OpenContainerFile = async (path, mode) => {
  const flags = mode === 'read' ? 'r' : mode === 'write' ? 'r+' : 'wx+';
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (error) {
    throw fileError(error, path);
  }
  return new HostFile(path, fd, mode !== 'read');
};

class HostFile implements ContainerFile {
  #fd: number;

  constructor(
    readonly path: string,
    fd: number,
    readonly writable: boolean,
  ) {
    this.#fd = fd;
  }

  async size(): Promise<number> {
    return (await fstatAsync(this.#fd)).size;
  }

  async identity(): Promise<{ dev: number; ino: number; atimeMs: number; mtimeMs: number }> {
    const stats = await fstatAsync(this.#fd);
    return { dev: stats.dev, ino: stats.ino, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
  }

  async read(buffer: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      let bytesRead: number;
      try {
        bytesRead = readSync(this.#fd, buffer, done, buffer.length - done, position + done);
      } catch (error) {
        throw fileError(error, this.path);
      }
      if (bytesRead === 0) {
        throw new VaultError(
          'IO',
          `unexpected end of file in ${this.path}`,
          'the container file is truncated',
        );
      }
      done += bytesRead;
    }
  }

  async write(buffer: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      try {
        done += writeSync(this.#fd, buffer, done, buffer.length - done, position + done);
      } catch (error) {
        throw fileError(error, this.path);
      }
    }
  }

  async sync(): Promise<void> {
    // fdatasync may take long: off the event loop, so signals are still handled meanwhile.
    try {
      await fdatasyncAsync(this.#fd);
    } catch (error) {
      throw fileError(error, this.path);
    }
  }

  async setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    await futimesAsync(this.#fd, atimeMs / 1000, mtimeMs / 1000);
  }

  async close(): Promise<void> {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }
}

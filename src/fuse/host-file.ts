// The container file as the daemon opens it: positional reads and writes done synchronously on the
// event loop thread. The kernel hands the bridge one request at a time (the loop device's direct I/O
// on a FUSE file is synchronous: libfuse 2 cannot negotiate async direct I/O), so a thread-pool round
// trip per 128 KiB request only adds latency: measured, it cost a third of the throughput.
import { closeSync, fdatasync, fstat, futimes, openSync, readSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import {
  type ContainerFile,
  fileError,
  type OpenContainerFile,
  readFully,
  writeFully,
} from '../container/file.js';

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

  read(buffer: Uint8Array, position: number): Promise<void> {
    return readFully(this.path, buffer, position, (offset, length, at) =>
      readSync(this.#fd, buffer, offset, length, at),
    );
  }

  write(buffer: Uint8Array, position: number): Promise<void> {
    return writeFully(this.path, buffer, position, (offset, length, at) =>
      writeSync(this.#fd, buffer, offset, length, at),
    );
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

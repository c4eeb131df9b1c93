// The container file as the library sees it: positional reads and writes that are all-or-error, and
// sync. Everything that touches the host file goes through ContainerFile, so tests can inject faults
// (a write that fails at step N, a full disk) without patching code.
import { type FileHandle, open } from 'node:fs/promises';
import { nativeAddon } from '../crypto/native.js';
import { VaultError } from './errors.js';

export interface ContainerFile {
  readonly path: string;
  readonly writable: boolean;
  /** The OS file descriptor, when there is one (a native data path works on it). */
  readonly fd?: number;
  size(): Promise<number>;
  identity(): Promise<{ dev: number; ino: number; atimeMs: number; mtimeMs: number }>;
  read(buffer: Uint8Array, position: number): Promise<void>;
  write(buffer: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the data (and the size) reach the disk. */
  sync(): Promise<void>;
  setTimes(atimeMs: number, mtimeMs: number): Promise<void>;
  /**
   * Makes the file `length` bytes long, reserving the space on the host disk where it can
   * (posix_fallocate), else sparse (ftruncate). Always through the open descriptor, never by path.
   */
  allocate(length: number): Promise<void>;
  close(): Promise<void>;
}

export type OpenContainerFile = (path: string, mode: 'read' | 'write' | 'create') => Promise<ContainerFile>;

/** The real thing: node:fs file handles. 'create' fails if the path exists (O_EXCL) and uses mode 0600. */
export const openContainerFile: OpenContainerFile = async (path, mode) => {
  const flags = mode === 'read' ? 'r' : mode === 'write' ? 'r+' : 'wx+';
  let handle: FileHandle;
  try {
    handle = await open(path, flags, 0o600);
  } catch (error) {
    throw fileError(error, path);
  }
  // A directory opens fine read-only (only writing gives EISDIR): say what it is, not "cannot unlock".
  // Stryker disable next-line ConditionalExpression: equivalent, opening a directory for writing already fails with EISDIR
  if (mode === 'read' && (await handle.stat()).isDirectory()) {
    await handle.close();
    // Stryker disable next-line StringLiteral: equivalent, fileError words the error from the code alone
    throw fileError(Object.assign(new Error('EISDIR'), { code: 'EISDIR' }), path);
  }
  return new NodeContainerFile(path, handle, mode !== 'read');
};

class NodeContainerFile implements ContainerFile {
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly writable: boolean,
  ) {}

  get fd(): number {
    return this.handle.fd;
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async identity(): Promise<{ dev: number; ino: number; atimeMs: number; mtimeMs: number }> {
    const stats = await this.handle.stat();
    return { dev: stats.dev, ino: stats.ino, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
  }

  read(buffer: Uint8Array, position: number): Promise<void> {
    return readFully(this.path, buffer, position, async (offset, length, at) => {
      return (await this.handle.read(buffer, offset, length, at)).bytesRead;
    });
  }

  write(buffer: Uint8Array, position: number): Promise<void> {
    return writeFully(this.path, buffer, position, async (offset, length, at) => {
      return (await this.handle.write(buffer, offset, length, at)).bytesWritten;
    });
  }

  async sync(): Promise<void> {
    try {
      await this.handle.datasync();
    } catch (error) {
      throw fileError(error, this.path);
    }
  }

  async setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    await this.handle.utimes(atimeMs / 1000, mtimeMs / 1000);
  }

  async allocate(length: number): Promise<void> {
    await allocateDescriptor(this.path, this.handle.fd, length, (size) => this.handle.truncate(size));
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

type Chunk = (offset: number, length: number, position: number) => number | Promise<number>;

/**
 * Reads all of `buffer` from `position` with one or more calls of `chunk`. Running into the end of the
 * file is a truncated container unless `endOfFile` says what else it means.
 */
export async function readFully(
  path: string,
  buffer: Uint8Array,
  position: number,
  chunk: Chunk,
  endOfFile: (at: number) => VaultError = () =>
    new VaultError('IO', `unexpected end of file in ${path}`, 'the container file is truncated'),
): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    let bytesRead: number;
    try {
      bytesRead = await chunk(done, buffer.length - done, position + done);
    } catch (error) {
      throw fileError(error, path);
    }
    if (bytesRead === 0) throw endOfFile(position + done);
    done += bytesRead;
  }
}

/** Writes all of `buffer` at `position` with one or more calls of `chunk`. */
export async function writeFully(
  path: string,
  buffer: Uint8Array,
  position: number,
  chunk: Chunk,
): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    try {
      done += await chunk(done, buffer.length - done, position + done);
    } catch (error) {
      throw fileError(error, path);
    }
  }
}

/** Turns an errno error into the VaultError a user can act on. */
export function fileError(error: unknown, path: string): VaultError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new VaultError('NOT_FOUND', `no such file: ${path}`, 'check the path', { cause: error });
    case 'EEXIST':
      return new VaultError('EXISTS', `file exists: ${path}`, 'choose another name', {
        cause: error,
        reason: 'exists',
      });
    case 'EISDIR':
      return new VaultError('USAGE', `is a directory: ${path}`, 'name a file, not a directory', {
        cause: error,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new VaultError(
        'IO',
        `permission denied: ${path}`,
        'check the file permissions, or open it read-only',
        { cause: error, reason: 'permission-denied' },
      );
    case 'ENOSPC':
    case 'EDQUOT':
      return new VaultError(
        'IO',
        `no space left on the disk holding ${path}`,
        'free some space and try again',
        {
          cause: error,
        },
      );
    default:
      return new VaultError(
        'IO',
        `I/O error on ${path}: ${code ?? String(error)}`,
        'check the disk and the file',
        {
          cause: error,
        },
      );
  }
}

/**
 * ContainerFile.allocate for a descriptor: posix_fallocate through the addon; where the filesystem has
 * no fallocate (or the addon is not built) the file is extended sparse with ftruncate, and later writes
 * may then meet a full disk. A full disk now is an error (ENOSPC), as for any write.
 */
export async function allocateDescriptor(
  path: string,
  fd: number,
  length: number,
  truncate: (length: number) => Promise<void>,
): Promise<void> {
  const error = nativeAddon ? nativeAddon.fallocate(fd, length) : -1;
  // Stryker disable next-line ConditionalExpression: equivalent, after a successful fallocate the truncate to the same length changes nothing
  if (error === 0) return;
  const ENOSPC = 28;
  if (error === ENOSPC) throw fileError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), path);
  try {
    await truncate(length);
  } catch (truncateError) {
    throw fileError(truncateError, path);
  }
}

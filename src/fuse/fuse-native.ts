// Typed access to fuse-native 2.2.6 (CommonJS, no types), with the two fixes the bridge needs:
// large requests (its _fuseOptions() silently drops bigWrites/maxWrite) and a non-lazy unmount
// (its own unmount runs `fusermount -uz`, which "succeeds" on a busy mount and hides the problem).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { VaultError } from '../container/errors.js';

const require = createRequire(import.meta.url);

/** Negative errno values, as fuse-native expects them in callbacks. */
export const Errno = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EACCES: -13,
  EBUSY: -16,
  EINVAL: -22,
  EFBIG: -27,
  ENOSPC: -28,
  EROFS: -30,
} as const;

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink?: number;
  blksize?: number;
  blocks?: number;
  atime: Date | number;
  mtime: Date | number;
  ctime: Date | number;
}

export type Done = (errno: number) => void;
export type DoneWith<T> = (errno: number, value?: T) => void;

export interface FuseOperations {
  init?(cb: Done): void;
  getattr(path: string, cb: DoneWith<FuseStat>): void;
  fgetattr?(path: string, fd: number, cb: DoneWith<FuseStat>): void;
  readdir(path: string, cb: (errno: number, names?: string[]) => void): void;
  open(path: string, flags: number, cb: DoneWith<number>): void;
  release(path: string, fd: number, cb: Done): void;
  read(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: Done): void;
  write(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: Done): void;
  flush?(path: string, fd: number, cb: Done): void;
  fsync?(path: string, datasync: number, fd: number, cb: Done): void;
  truncate?(path: string, size: number, cb: Done): void;
  ftruncate?(path: string, fd: number, size: number, cb: Done): void;
  utimens?(path: string, atime: number, mtime: number, cb: Done): void;
  chmod?(path: string, mode: number, cb: Done): void;
  chown?(path: string, uid: number, gid: number, cb: Done): void;
  access?(path: string, mode: number, cb: Done): void;
  statfs?(path: string, cb: DoneWith<Record<string, number>>): void;
}

interface FuseInstance {
  mnt: string;
  _thread: Buffer | null;
  _fuseOptions(): string;
  _close(cb: (error: Error | null) => void): void;
  mount(cb: (error: Error | null) => void): void;
  close(cb: (error: Error | null) => void): void;
}

type FuseConstructor = new (
  mountpoint: string,
  ops: FuseOperations,
  options: { timeout?: false; force?: boolean; mkdir?: boolean },
) => FuseInstance;

interface FuseBinding {
  fuse_native_unmount(mountpoint: string, thread: Buffer): void;
}

let loaded: { Fuse: FuseConstructor; binding: FuseBinding } | undefined;

function load(): { Fuse: FuseConstructor; binding: FuseBinding } {
  if (!loaded) {
    const Fuse = require('fuse-native') as FuseConstructor;
    // The same (cached) native module fuse-native itself loaded.
    const nodeGypBuild = require(
      require.resolve('node-gyp-build', {
        paths: [dirname(require.resolve('fuse-native'))],
      }),
    ) as (dir: string) => FuseBinding;
    loaded = { Fuse, binding: nodeGypBuild(dirname(require.resolve('fuse-native'))) };
  }
  return loaded;
}

/** Loads fuse-native ahead of need (the daemon does it while it waits for its settings); errors wait too. */
export function preloadFuse(): void {
  try {
    load();
  } catch {
    // mountFuse loads it again and reports the failure where it can be logged.
  }
}

/** 128 KiB: the largest request libfuse 2 and the kernel hand over, whatever is asked for. */
export const MAX_REQUEST = 131072;

export interface FuseMount {
  readonly mountpoint: string;
  /** Detaches the kernel side of the session only after `unmountKernel` succeeded. */
  release(): void;
}

/**
 * Mounts `ops` at `mountpoint` (an existing empty directory). Resolves once the kernel sent INIT.
 * No per-request timeout: fuse-native's timeout would answer the kernel while our I/O still uses
 * the request buffer, and an early error on a write is worse than a slow one.
 */
export function mountFuse(
  mountpoint: string,
  ops: FuseOperations,
  options: { readOnly: boolean; fsname: string },
): Promise<FuseMount> {
  const { Fuse, binding } = load();
  const fuse = new Fuse(mountpoint, ops, { timeout: false });
  const extra = [
    'big_writes',
    `max_write=${MAX_REQUEST}`,
    `max_read=${MAX_REQUEST}`,
    `fsname=${options.fsname}`,
    'subtype=vault',
    'default_permissions',
    // The bridge directory holds one regular file: nothing in it is ever run or a device.
    'nosuid',
    'nodev',
    'noexec',
  ];
  if (options.readOnly) extra.push('ro');
  fuse._fuseOptions = () => `-o${extra.join(',')}`;
  let released = false;
  const release = (): void => {
    if (released || !fuse._thread) return;
    released = true;
    // Lets the event loop end; the FUSE thread itself ends when the kernel closes the session.
    binding.fuse_native_unmount(fuse.mnt, fuse._thread);
  };
  return new Promise((resolve, reject) => {
    fuse.mount((error) => {
      // fuse-native only says "fuse failed": /dev/fuse is not a usable FUSE device (or no mount is allowed).
      if (error) {
        reject(
          new VaultError(
            'NEEDS_SYSTEM',
            `cannot mount FUSE at ${mountpoint}: ${error.message}`,
            '/dev/fuse must be the FUSE device: load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
            { cause: error },
          ),
        );
      } else resolve({ mountpoint: fuse.mnt, release });
    });
  });
}

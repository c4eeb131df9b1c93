// The block-file bridge: a FUSE filesystem with one file, `volume`, whose bytes are a BlockDevice's
// cleartext. A loop device (or mkfs, dd, fsck) works on that file. Every write is acknowledged only
// after writeAt resolved (the bytes are in the container file); fsync reaches it as fdatasync.
import { statSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { BlockDevice } from '../container/block-device.js';
import { VaultError } from '../container/errors.js';
import {
  Errno,
  type FuseMount,
  type FuseOperations,
  type FuseStat,
  MAX_REQUEST,
  mountFuse,
} from './fuse-native.js';
import { ReadAhead } from './read-ahead.js';
import { isMountpoint, processAlive, run } from './system.js';

export const VOLUME_NAME = 'volume';
/** Where private bridge directories live (mode 0700); the daemon's state directories too. */
export const RUN_DIR = runDirFor(process.getuid?.() ?? 0);

/**
 * root: /run/vault. Anyone else (vault mount --user) cannot write there: $XDG_RUNTIME_DIR/vault (a
 * private per-user tmpfs under systemd); without it ~/.cache/vault-run, which no other user can
 * create first; /tmp/vault-<uid> only when there is no home of one's own (ensurePrivateRunDir checks it).
 */
function runDirFor(uid: number): string {
  if (uid === 0) return '/run/vault';
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime?.startsWith('/')) return `${runtime}/vault`;
  const home = homedir();
  if (home.startsWith('/') && statSync(home, { throwIfNoEntry: false })?.uid === uid) {
    return `${home}/.cache/vault-run`;
  }
  return `/tmp/vault-${uid}`;
}

/**
 * Creates RUN_DIR (0700) if needed and checks, before anything is created inside, that it is a
 * directory of ours that nobody else can enter: under /tmp another user could have made it first.
 */
export async function ensurePrivateRunDir(): Promise<void> {
  try {
    await mkdir(RUN_DIR, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') await mkdir(RUN_DIR, { recursive: true, mode: 0o700 });
    else if (code !== 'EEXIST') throw error;
  }
  const uid = process.getuid?.() ?? 0;
  const info = await lstat(RUN_DIR);
  if (!info.isDirectory() || info.uid !== uid || (info.mode & 0o077) !== 0) {
    throw new VaultError(
      'BUSY',
      `${RUN_DIR} is not a private directory of yours (owner ${info.uid}, mode ${(info.mode & 0o777).toString(8)})`,
      'another user may have created it: set XDG_RUNTIME_DIR to a private directory of yours, or ask an admin to remove it',
    );
  }
}
const SECTOR = 4096;

export interface BridgeOptions {
  /** Shown as the FUSE source in /proc/mounts; helps recognise stale endpoints. */
  fsname?: string;
  /** Called with a one-line message when the device fails a request (the kernel only sees EIO). */
  onError?: (message: string) => void;
}

export interface Bridge {
  readonly dir: string;
  readonly blockFile: string;
  /** Request sizes seen so far, for checking that big requests arrive (size -> count). */
  readonly requestSizes: { read: Map<number, number>; write: Map<number, number> };
  /** Most requests that were ever being served at once (the kernel's parallelism). */
  readonly maxInFlight: number;
  /** Blocks read ahead, and reads served from them. */
  readonly readAhead: { started: number; hits: number };
  /** Resolves when no request is in flight (used before flushing and unmounting). */
  idle(): Promise<void>;
  /**
   * Unmounts. Without `lazy` it fails (returns false) while something still has `volume` open,
   * e.g. a loop device; with `lazy` the endpoint disappears at once (used to clean up).
   */
  unmount(options?: { lazy?: boolean }): Promise<boolean>;
}

/** Mounts the bridge on `dir`, an existing empty directory. */
export async function mountBridge(
  device: BlockDevice,
  dir: string,
  options: BridgeOptions = {},
): Promise<Bridge> {
  const readOnly = device.readOnly;
  const mountedAt = Date.now();
  let modifiedAt = mountedAt;
  const requestSizes = { read: new Map<number, number>(), write: new Map<number, number>() };
  const count = (map: Map<number, number>, size: number): void => {
    map.set(size, (map.get(size) ?? 0) + 1);
  };
  const readAhead = new ReadAhead(device, MAX_REQUEST);
  let inFlight = 0;
  let maxInFlight = 0;
  let idleWaiters: Array<() => void> = [];
  const begin = (): void => {
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
  };
  const end = (): void => {
    inFlight--;
    if (inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
    }
  };
  const report = (what: string, error: unknown): number => {
    const message = error instanceof Error ? error.message : String(error);
    options.onError?.(`${what} failed: ${message}`);
    return Errno.EIO;
  };

  const fileStat = (): FuseStat => ({
    mode: 0o100000 | (readOnly ? 0o400 : 0o600),
    // Whoever runs the daemon (root, or the user of --user): default_permissions checks these.
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: device.size,
    nlink: 1,
    blksize: SECTOR,
    blocks: Math.ceil(device.size / 512),
    atime: mountedAt,
    mtime: modifiedAt,
    ctime: modifiedAt,
  });
  const dirStat = (): FuseStat => ({
    mode: 0o040000 | 0o700,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    size: 4096,
    nlink: 2,
    atime: mountedAt,
    mtime: mountedAt,
    ctime: mountedAt,
  });
  const isVolume = (path: string): boolean => path === `/${VOLUME_NAME}`;

  const ops: FuseOperations = {
    getattr(path, cb) {
      if (path === '/') return cb(0, dirStat());
      if (isVolume(path)) return cb(0, fileStat());
      cb(Errno.ENOENT);
    },
    fgetattr(path, _fd, cb) {
      ops.getattr(path, cb);
    },
    readdir(path, cb) {
      if (path === '/') return cb(0, [VOLUME_NAME]);
      cb(Errno.ENOENT);
    },
    open(path, flags, cb) {
      if (!isVolume(path)) return cb(Errno.ENOENT);
      // O_ACCMODE: 0 = read only.
      if (readOnly && (flags & 3) !== 0) return cb(Errno.EROFS);
      cb(0, 0);
    },
    release(_path, _fd, cb) {
      cb(0);
    },
    read(path, _fd, buffer, length, position, cb) {
      if (!isVolume(path)) return cb(Errno.ENOENT);
      if (position >= device.size) return cb(0);
      const n = Math.min(length, device.size - position);
      count(requestSizes.read, n);
      begin();
      const target = buffer.subarray(0, n);
      readAhead
        .take(target, position)
        .then((served) => (served ? undefined : device.readAt(target, position)))
        .then(
          () => {
            end();
            cb(n);
            // The reply is on its way: read the next block while the kernel delivers this one.
            setImmediate(() => readAhead.afterRead(position, n));
          },
          (error: unknown) => {
            end();
            cb(report('read', error));
          },
        );
    },
    write(path, _fd, buffer, length, position, cb) {
      if (!isVolume(path)) return cb(Errno.ENOENT);
      if (readOnly) return cb(Errno.EROFS);
      if (position >= device.size) return cb(Errno.ENOSPC);
      const n = Math.min(length, device.size - position);
      count(requestSizes.write, n);
      begin();
      readAhead.invalidate(position, n);
      const done = device.writeAt(buffer.subarray(0, n), position);
      done.then(
        () => {
          readAhead.invalidate(position, n);
          modifiedAt = Date.now();
          end();
          cb(n);
        },
        (error: unknown) => {
          readAhead.invalidate(position, n); // part of it may have landed
          end();
          cb(report('write', error));
        },
      );
    },
    flush(_path, _fd, cb) {
      // close() of the file: make what was written durable (mkfs, dd and loop all close at the end).
      if (readOnly) return cb(0);
      device.flush().then(
        () => cb(0),
        (error: unknown) => cb(report('flush', error)),
      );
    },
    fsync(_path, _datasync, _fd, cb) {
      if (readOnly) return cb(0);
      device.flush().then(
        () => cb(0),
        (error: unknown) => cb(report('fsync', error)),
      );
    },
    truncate(path, size, cb) {
      if (!isVolume(path)) return cb(Errno.ENOENT);
      cb(size === device.size ? 0 : Errno.EPERM);
    },
    ftruncate(path, _fd, size, cb) {
      ops.truncate?.(path, size, cb);
    },
    utimens(_path, _atime, _mtime, cb) {
      cb(0);
    },
    chmod(_path, _mode, cb) {
      cb(Errno.EPERM);
    },
    chown(_path, _uid, _gid, cb) {
      cb(Errno.EPERM);
    },
    access(_path, _mode, cb) {
      cb(0);
    },
    statfs(_path, cb) {
      const blocks = Math.ceil(device.size / SECTOR);
      cb(0, {
        bsize: SECTOR,
        frsize: SECTOR,
        blocks,
        bfree: 0,
        bavail: 0,
        files: 1,
        ffree: 0,
        favail: 0,
        namemax: 255,
      });
    },
  };

  const fuse: FuseMount = await mountFuse(dir, ops, { readOnly, fsname: options.fsname ?? 'vault' });
  let mounted = true;

  return {
    dir,
    blockFile: `${dir}/${VOLUME_NAME}`,
    requestSizes,
    get maxInFlight() {
      return maxInFlight;
    },
    get readAhead() {
      return { started: readAhead.started, hits: readAhead.hits };
    },
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async unmount({ lazy = false } = {}) {
      if (!mounted) return true;
      const result = await run('fusermount', lazy ? ['-u', '-z', dir] : ['-u', dir]);
      if (result.code !== 0) {
        // Already gone (e.g. someone ran umount by hand) counts as done.
        if (!/not found|not mounted|Invalid argument/i.test(result.stderr)) return false;
      }
      mounted = false;
      fuse.release();
      return true;
    },
  };
}

function noop(): void {}

/**
 * Creates a fresh private directory under /run/vault (0700) for a bridge, named after this process.
 * Directories that a killed process (kill -9 of `vault create`) left behind, empty and unmounted, go.
 */
export async function makePrivateDir(prefix: string): Promise<string> {
  await ensurePrivateRunDir();
  for (const name of await readdir(RUN_DIR).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    const path = `${RUN_DIR}/${name}`;
    if (!isMountpoint(path)) await rmdir(path).catch(noop); // rmdir: only ever removes an empty one
  }
  return mkdtemp(`${RUN_DIR}/${prefix}${process.pid}-`);
}

/**
 * Runs `fn` with the device exposed as a block file (in-process FUSE mount of a private directory),
 * then always unmounts, also when fn throws. `vault create` formats new vaults this way.
 * This process serves the block file, so fn must never block the event loop (no execFileSync,
 * spawnSync or sync fs calls on the block file: they deadlock), and should start programs with
 * run()/runChecked() or withoutFuseFds() from ./system.js, which keep /dev/fuse out of the child.
 */
export async function withBridge<T>(device: BlockDevice, fn: (blockFile: string) => Promise<T>): Promise<T> {
  const dir = await makePrivateDir('bridge-');
  let bridge: Bridge | undefined;
  try {
    bridge = await mountBridge(device, dir);
    return await fn(bridge.blockFile);
  } finally {
    if (bridge) {
      await bridge.idle();
      // A tool that just exited may still hold the file for a moment; then force it.
      let unmounted = false;
      for (let attempt = 0; attempt < 20 && !unmounted; attempt++) {
        unmounted = await bridge.unmount();
        if (!unmounted) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (!unmounted) await bridge.unmount({ lazy: true });
      if (!device.readOnly) await device.flush();
    }
    await rmdir(dir).catch(noop);
  }
}

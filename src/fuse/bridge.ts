// The block-file bridge: a FUSE filesystem with one file, `volume`, whose bytes are a BlockDevice's
// cleartext. A loop device (or mkfs, dd, fsck) works on that file. The data path is the FUSE 3 addon
// (native/fuse3.c): its threads pread, decrypt and reply, or encrypt, pwrite and only then acknowledge;
// flush and fsync become fdatasync. This side mounts, unmounts, and turns the addon's events into logs.
import { mkdtemp, readdir, rmdir } from 'node:fs/promises';
import type { BlockDevice } from '../container/block-device.js';
import { VaultError } from '../container/errors.js';
import { isMountpoint, unmountFilesystem } from '../host/mounts.js';
import { ensurePrivateRunDir, RUN_DIR } from '../host/paths.js';
import { findTool, processAlive, run } from '../host/process.js';
import { FuseEvent, fuse3, type NativeHandle } from './fuse3.js';

export const VOLUME_NAME = 'volume';
/** How long stop waits for the session's threads to end after the kernel unmounted it. */
const STOP_WAIT_MS = 5000;

export interface BridgeOptions {
  /** Shown as the FUSE source in /proc/mounts; helps recognise stale endpoints. */
  fsname?: string;
  /** Called with a one-line message when the device fails a request (the kernel only sees EIO). */
  onError?: (message: string) => void;
}

export interface Bridge {
  readonly dir: string;
  readonly blockFile: string;
  /** 'native': the addon's C threads serve every request; 'javascript': each one is a round trip here. */
  readonly dataPath: 'native' | 'javascript';
  /** Request sizes seen so far, for checking that big requests arrive (size -> count). */
  readonly requestSizes: { read: Map<number, number>; write: Map<number, number> };
  /** Most requests that were ever being served at once (the kernel's parallelism). */
  readonly maxInFlight: number;
  /** True once a write aimed at the protected hidden volume was refused: every write is refused since. */
  readonly protectionTripped: boolean;
  /** Requests (reads, writes, syncs) the kernel sent so far and those being served now (--idle-dismount). */
  activity(): { requests: number; inFlight: number };
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
  const addon = fuse3();
  // Vaults, AES-XTS foreign volumes and the passthrough are served by the addon alone; any other device
  // (CBC-ESSIV LUKS volumes) through a round trip per request to this event loop.
  const access = device.rawAccess?.() ?? null;
  const uid = process.getuid?.() ?? 0;
  let fusermount: string | undefined;
  if (uid !== 0) {
    // The setuid helper mounts for us: fusermount3 (Debian's fuse3) or fusermount (fuse 2, or fuse3's
    // link to fusermount3); both speak the same protocol.
    fusermount = findTool('fusermount3') ?? findTool('fusermount') ?? undefined;
    if (!fusermount) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        'fusermount is missing',
        'install it: apt-get install fuse3 (or fuse)',
      );
    }
  }
  let tripped = false;
  let handle: NativeHandle | null;
  try {
    const onEvent = (kind: number, message: string): void => {
      if (kind === FuseEvent.PROTECTION) tripped = true;
      options.onError?.(kind === FuseEvent.PROTECTION ? `write failed: ${message}` : message);
    };
    const common = {
      dir,
      fsname: (options.fsname ?? 'vault').replace(/[,\\]/g, '_'),
      size: device.size,
      readOnly: device.readOnly,
      ...(fusermount ? { fusermount } : {}),
      onEvent,
    };
    handle = access
      ? addon.start({
          ...common,
          fd: access.fd,
          dataOffset: access.dataOffset,
          sectorSize: access.sectorSize,
          ...(access.key ? { key: access.key } : {}),
          ...(access.ivOffset !== undefined ? { ivOffset: access.ivOffset } : {}),
          ...(access.ivUnitBytes !== undefined ? { ivUnitBytes: access.ivUnitBytes } : {}),
          ...(access.protectedRange
            ? { protectStart: access.protectedRange.start, protectEnd: access.protectedRange.end }
            : {}),
        })
      : addon.start({
          ...common,
          forward: true,
          dataOffset: 0,
          sectorSize: 4096,
          onRequest(kind, offset, data, token) {
            const what = kind === 1 ? 'read' : kind === 2 ? 'write' : 'flush';
            const bytes = data ? new Uint8Array(data) : null;
            const done =
              kind === 1 && bytes
                ? device.readAt(bytes, offset)
                : kind === 2 && bytes
                  ? device.writeAt(bytes, offset)
                  : device.flush();
            done.then(
              () => addon.complete(token, 0),
              (error: unknown) => {
                options.onError?.(
                  `${what} failed: ${error instanceof Error ? error.message : String(error)}`,
                );
                addon.complete(token, -5); // EIO
              },
            );
          },
        });
  } catch (error) {
    if (error instanceof VaultError) throw error;
    throw new VaultError(
      'NEEDS_SYSTEM',
      `cannot mount FUSE at ${dir}: ${error instanceof Error ? error.message : String(error)}`,
      '/dev/fuse must be the FUSE device: load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
      { cause: error },
    );
  }
  let last = addon.stats(handle);
  const stats = () => {
    if (handle) last = addon.stats(handle);
    return last;
  };

  return {
    dir,
    blockFile: `${dir}/${VOLUME_NAME}`,
    dataPath: access ? 'native' : 'javascript',
    get requestSizes() {
      const now = stats();
      return { read: new Map(now.read), write: new Map(now.write) };
    },
    get maxInFlight() {
      return stats().maxInFlight;
    },
    get protectionTripped() {
      return tripped || stats().protectionTripped;
    },
    activity() {
      const now = stats();
      return { requests: now.requests, inFlight: now.inFlight };
    },
    async idle() {
      while (handle && stats().inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    },
    async unmount({ lazy = false } = {}) {
      if (!handle) return true;
      const result = await run('fusermount', lazy ? ['-u', '-z', dir] : ['-u', dir]);
      if (result.code !== 0) {
        // Already gone (e.g. someone ran umount by hand) counts as done.
        if (!/not found|not mounted|Invalid argument/i.test(result.stderr)) return false;
      }
      stats();
      // A lazily detached mount may still be in use (a loop device): its session then ends on its own.
      addon.stop(handle, lazy ? 0 : STOP_WAIT_MS);
      handle = null;
      return true;
    },
  };
}

function noop(): void {}

/**
 * Removes the bridge directories (prefix `bridge-`, named after their process) of processes that are
 * gone: a `vault create` killed during mkfs (kill -9) leaves its FUSE mount there, dead ("transport
 * endpoint is not connected"); it is detached lazily first. rmdir only ever removes an empty directory.
 */
export async function reapAbandonedBridges(prefix = 'bridge-'): Promise<void> {
  const names = await readdir(RUN_DIR).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    const path = `${RUN_DIR}/${name}`;
    if (isMountpoint(path)) await unmountFilesystem(path, { fuse: process.getuid?.() !== 0, lazy: true });
    if (!isMountpoint(path)) await rmdir(path).catch(noop);
  }
}

/** Creates a fresh private directory under /run/vault (0700) for a bridge, named after this process. */
export async function makePrivateDir(prefix: string): Promise<string> {
  await ensurePrivateRunDir();
  await reapAbandonedBridges(prefix);
  return mkdtemp(`${RUN_DIR}/${prefix}${process.pid}-`);
}

/**
 * Runs `fn` with the device exposed as a block file (in-process FUSE mount of a private directory),
 * then always unmounts, also when fn throws. `vault create` formats new vaults this way.
 * The addon's threads serve the block file, not this event loop; programs should still be started with
 * run()/runChecked() or withoutFuseFds() from ../host/process.js, which keep /dev/fuse out of the child.
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

// Mount, dismount and list, as the CLI (and the bench) call them: checks before anything happens, the
// daemon started with its settings and secret over a pipe, and clean-up of every remain when a daemon
// died (kill -9, crash). The daemon itself does the mounting, so each step is undone in one place.
import { chown, mkdir, readdir, realpath, rmdir, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { basename, extname, resolve } from 'node:path';
import { VaultError, type VaultErrorCode } from '../container/errors.js';
import type { Secret } from '../container/secret.js';
import { USER_DRIVER_TOOLS } from '../host/filesystems.js';
import { describeHolders, findHolders } from '../host/holders.js';
import { detachLoop, loopBackingFile, loopsOfFile } from '../host/loop.js';
import { isMountpoint, mountsOfSource, mountTable, unmountFilesystem } from '../host/mounts.js';
import { checkTrustedPath, type Owner, resolveOwner } from '../host/owner.js';
import { MEDIA_DIR, userMediaDir } from '../host/paths.js';
import { type ChildProcess, run } from '../host/process.js';
import { checkSystem } from '../host/requirements.js';
import { channelOf, takeDaemon } from './daemon-process.js';
import { type DaemonSettings, readDaemonMessage, type VolumeSelection } from './protocol.js';
import {
  claimStateDir,
  daemonAlive,
  fuseDirOf,
  logFileOf,
  type MountState,
  readAllStates,
  readState,
  removeStateDir,
  stateDirOf,
  stateId,
  statusOf,
  type VaultStatus,
  writeState,
} from './state.js';

const MOUNT_TOOLS = ['losetup', 'mount', 'umount', 'blkid', 'fusermount'];

/**
 * Loop device caching (docs: "Mounting", Caching): buffered. The kernel keeps one cache for the
 * filesystem above the loop device and one for the FUSE file below; writes still reach the daemon
 * synchronously (FUSE without writeback cache is write-through) and flushes become fdatasync.
 */
export const DEFAULT_LOOP_DIRECT_IO = true;

export interface MountTarget {
  file: string;
  dev: number;
  ino: number;
  id: string;
  /** Absolute mountpoint, or null when one is to be created (or with --no-filesystem). */
  mountpoint: string | null;
  /** Whom the mount belongs to (host/owner.ts resolveOwner). */
  owner: Owner;
}

/**
 * Everything that can be checked before asking for the secret: root, /dev/fuse, tools, the file,
 * the mountpoint, and that this vault (by device and inode) is not mounted already.
 */
export async function checkMount(
  file: string,
  mountpoint: string | undefined,
  options: { noFilesystem: boolean; user?: boolean; owner?: string },
): Promise<MountTarget> {
  if (options.user)
    checkSystem(options.noFilesystem ? ['fusermount'] : ['fusermount', ...USER_DRIVER_TOOLS], { user: true });
  else checkSystem(options.noFilesystem ? ['fusermount'] : MOUNT_TOOLS);
  const absolute = resolve(file);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absolute);
  } catch {
    throw new VaultError('NOT_FOUND', `no such file: ${file}`, 'check the path of the vault');
  }
  if (!info.isFile())
    throw new VaultError('USAGE', `not a regular file: ${file}`, 'give the path of a vault file');
  const id = stateId(info.dev, info.ino);
  await refuseIfMounted(id, file);
  const owner = await resolveOwner(options.owner);
  let target: string | null = null;
  if (mountpoint !== undefined && !options.noFilesystem) {
    target = await checkMountpoint(mountpoint);
    // A user's own FUSE mount (--user) is checked by fusermount; root's mount must not be redirected.
    if (!options.user) await checkTrustedPath(target, owner);
  }
  return { file: absolute, dev: info.dev, ino: info.ino, id, mountpoint: target, owner };
}

async function refuseIfMounted(id: string, file: string): Promise<void> {
  const existing = await readState(id);
  const claimed =
    existing !== null ||
    (await readdir(stateDirOf(id)).then(
      () => true,
      () => false,
    ));
  if (!claimed) return;
  if (existing && statusOf(existing) !== 'broken') {
    const where = existing.mountpoint ?? existing.blockFile;
    throw new VaultError(
      'BUSY',
      `this vault is already mounted${existing.file !== resolve(file) ? ` (as ${existing.file})` : ''} at ${where}`,
      `dismount it first: vault dismount ${where}`,
    );
  }
  throw new VaultError(
    'BUSY',
    'this vault has remains of an earlier mount whose daemon is gone',
    `clean them up with: vault dismount ${existing?.file ?? file}`,
  );
}

async function checkMountpoint(mountpoint: string): Promise<string> {
  let path: string;
  try {
    path = await realpath(mountpoint);
  } catch {
    throw new VaultError(
      'NOT_FOUND',
      `mountpoint does not exist: ${mountpoint}`,
      `create it (mkdir ${mountpoint}), or leave it out to use ${MEDIA_DIR}/<name>`,
    );
  }
  if (!(await stat(path)).isDirectory()) {
    throw new VaultError('USAGE', `mountpoint is not a directory: ${mountpoint}`, 'give an empty directory');
  }
  if (isMountpoint(path)) {
    throw new VaultError(
      'BUSY',
      `something is already mounted at ${mountpoint}`,
      'choose another directory, or unmount what is there',
    );
  }
  if ((await readdir(path)).length > 0) {
    throw new VaultError(
      'USAGE',
      `mountpoint is not empty: ${mountpoint}`,
      'give an empty directory (files there would be hidden while the vault is mounted)',
    );
  }
  return path;
}

/**
 * The directory name for a vault's default mountpoint: the file name without its extension, letters
 * and digits of any script kept (tëst-ñø.vol -> tëst-ñø); spaces, control characters and anything
 * else but . _ + - become _, and a name that would be hidden or special (., ..) gets a prefix.
 */
export function mountpointName(file: string): string {
  const name = basename(file, extname(file))
    .normalize('NFC')
    .replace(/[^\p{L}\p{M}\p{N}._+-]/gu, '_');
  if (name === '' || name === '.' || name === '..') return 'vault';
  return name.startsWith('.') ? `vault${name}` : name;
}

/** A new mountpoint under /media/vault (~/vault with --user): mode 0700, owned by the mount's owner. */
async function createMountpoint(file: string, user: boolean, owner: Owner): Promise<string> {
  const mediaDir = user ? userMediaDir() : MEDIA_DIR;
  await mkdir(mediaDir, { recursive: true, mode: 0o755 });
  if (!user) await checkTrustedPath(mediaDir, owner);
  const name = mountpointName(file);
  for (let n = 1; n < 1000; n++) {
    const path = `${mediaDir}/${n === 1 ? name : `${name}-${n}`}`;
    try {
      await mkdir(path, { mode: 0o700 });
      if (process.getuid?.() === 0) await chown(path, owner.uid, owner.gid);
      return path;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new VaultError('BUSY', `no free mountpoint under ${mediaDir}`, 'give a mountpoint');
}

export interface MountRequest {
  readOnly: boolean;
  noFilesystem: boolean;
  preserveTimestamps: boolean;
  costLevel: number;
  /** The secret; the caller wipes it afterwards. null only with device 'passthrough'. */
  secret: Secret | null;
  /** The hidden volume's secret, to mount the outer volume with the hidden one protected. */
  protectHidden?: Secret | null;
  device?: 'vault' | 'passthrough';
  loopDirectIo?: boolean;
  /** Mount partition N of the volume (loop device with partition scan) instead of the whole volume. */
  partition?: number | null;
  /** Mount ext4 without root: fuse2fs on the block file instead of a loop device (see daemon). */
  user?: boolean;
  /** --fs-options: extra mount options, checked by host/mounts.ts parseFsOptions (never undoing nosuid,nodev). */
  fsOptions?: string[];
  /** Aborting (Ctrl-C) makes the daemon undo what it did; mountVault then throws INTERRUPTED. */
  signal?: AbortSignal;
  /** Which volume format to open (--type, --hash, --pim); detected when absent. */
  volume?: VolumeSelection;
}

export interface MountResult {
  state: MountState;
  warnings: string[];
}

/** Starts the daemon for a checked target and waits until everything is mounted or undone. */
export async function mountVault(target: MountTarget, request: MountRequest): Promise<MountResult> {
  if (!(await claimStateDir(target.id))) await refuseIfMounted(target.id, target.file);
  let child: ChildProcess | null = null;
  let mountpoint = target.mountpoint;
  let createdMountpoint = false;
  try {
    if (!request.noFilesystem && mountpoint === null) {
      mountpoint = await createMountpoint(target.file, request.user ?? false, target.owner);
      createdMountpoint = true;
    }
    // Usually prestarted by the CLI; it opens its own log (state.ts openLogFile) once it has the settings.
    child = takeDaemon();
    const pid = child.pid ?? 0;
    await writeState({
      version: 1,
      id: target.id,
      file: target.file,
      dev: target.dev,
      ino: target.ino,
      mountpoint: request.noFilesystem ? null : mountpoint,
      createdMountpoint,
      blockFile: `${fuseDirOf(target.id)}/volume`,
      loopDevice: null,
      fsType: null,
      readOnly: request.readOnly,
      pid,
      device: request.device ?? 'vault',
      phase: 'starting',
      mountedAt: new Date().toISOString(),
      unlockMs: null,
    });
    const channel = channelOf(child);
    const exited = new Promise<void>((resolveExit) => {
      if (child?.exitCode !== null) resolveExit();
      child?.once('exit', () => resolveExit());
    });
    const onAbort = (): void => {
      if (child?.pid) process.kill(child.pid, 'SIGTERM');
    };
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const answer = readDaemonMessage(channel);
      await sendSettings(channel, target, request, mountpoint, createdMountpoint);
      const message = await Promise.race([answer, exited.then(() => answer)]);
      if (message?.type === 'ready') {
        channel.destroy();
        child.unref();
        return { state: message.state, warnings: message.warnings };
      }
      await exited;
      if (message?.type === 'error') {
        throw new VaultError(message.code as VaultErrorCode, message.message, message.hint ?? undefined, {
          ...(message.reason === undefined ? {} : { reason: message.reason }),
          ...(message.details === undefined ? {} : { details: message.details }),
        });
      }
      throw new VaultError(
        'INTERNAL',
        `the mount daemon stopped without saying why (${child.signalCode ?? `exit code ${child.exitCode}`})`,
        `see its log, ${logFileOf(target.id)}; if it is empty, run node ${child.spawnargs[1]} by hand to see why it cannot start`,
      );
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
    }
  } catch (error) {
    if (child?.pid && daemonAlive(child.pid)) {
      process.kill(child.pid, 'SIGTERM');
      await waitForExit(child.pid, 30_000);
    }
    const state = await readState(target.id);
    if (state) await cleanupRemains(state);
    else await removeStateDir(target.id);
    if (createdMountpoint && mountpoint && !isMountpoint(mountpoint)) await rmdir(mountpoint).catch(() => {});
    throw error;
  }
}

function sendSettings(
  channel: Socket,
  target: MountTarget,
  request: MountRequest,
  mountpoint: string | null,
  createdMountpoint: boolean,
): Promise<void> {
  // The wire form carries the foreign parts too (LUKS, VeraCrypt, TrueCrypt); these copies are wiped below.
  const material = request.secret?.toWire() ?? Buffer.alloc(0);
  const hiddenMaterial = request.protectHidden?.toWire() ?? Buffer.alloc(0);
  const settings: DaemonSettings = {
    id: target.id,
    file: target.file,
    dev: target.dev,
    ino: target.ino,
    mountpoint,
    createdMountpoint,
    readOnly: request.readOnly,
    noFilesystem: request.noFilesystem,
    preserveTimestamps: request.preserveTimestamps,
    costLevel: request.costLevel,
    device: request.device ?? 'vault',
    loopDirectIo: request.loopDirectIo ?? DEFAULT_LOOP_DIRECT_IO,
    secretLength: material.length + hiddenMaterial.length,
    hiddenSecretLength: hiddenMaterial.length,
    partition: request.partition ?? null,
    user: request.user ?? false,
    owner: target.owner,
    fsOptions: request.fsOptions ?? [],
    ...(request.volume ? { volume: request.volume } : {}),
  };
  return new Promise((resolveSent, reject) => {
    channel.write(`${JSON.stringify(settings)}\n`);
    channel.write(material);
    channel.write(hiddenMaterial, (error) => {
      material.fill(0);
      hiddenMaterial.fill(0);
      return error ? reject(error) : resolveSent();
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!daemonAlive(pid)) return true;
    await sleep(20);
  }
  return !daemonAlive(pid);
}

/**
 * Removes whatever a dead daemon left: the filesystem mount, loop devices on its block file, the stale
 * FUSE endpoint, the created mountpoint and the state directory. Idempotent.
 */
export async function cleanupRemains(state: MountState): Promise<void> {
  if (state.user && state.mountpoint && isMountpoint(state.mountpoint)) {
    if (!(await unmountFilesystem(state.mountpoint, { fuse: true })))
      await unmountFilesystem(state.mountpoint, { fuse: true, lazy: true });
  }
  const loops = new Set(loopsOfFile(state.blockFile));
  if (state.loopDevice && loopBackingFile(state.loopDevice) === state.blockFile) loops.add(state.loopDevice);
  for (const loop of loops) {
    for (const entry of mountsOfSource(loop)) {
      if (!(await unmountFilesystem(entry.mountpoint)))
        await unmountFilesystem(entry.mountpoint, { lazy: true });
    }
    await detachLoop(loop);
  }
  const fuseDir = fuseDirOf(state.id);
  if (mountTable().some((entry) => entry.mountpoint === fuseDir)) {
    const result = await run('fusermount', ['-u', '-z', fuseDir]);
    if (result.code !== 0) await run('umount', ['--lazy', fuseDir]);
  }
  if (state.createdMountpoint && state.mountpoint && !isMountpoint(state.mountpoint)) {
    await rmdir(state.mountpoint).catch(() => {});
  }
  await removeStateDir(state.id);
}

// ---- dismount ----------------------------------------------------------------------------------

export interface DismountResult {
  state: MountState;
  /** Set when --force detached a busy filesystem: the vault closes once these processes let go. */
  pendingHolders: string | null;
}

/** The mounted vault a user means: its mountpoint, container file (any path/hard link), block file or loop. */
export async function findMounted(target: string): Promise<MountState> {
  const states = await readAllStates();
  const absolute = resolve(target);
  const real = await realpath(absolute).catch(() => absolute);
  const info = await stat(real).catch(() => null);
  const found = states.find(
    (state) =>
      state.mountpoint === real ||
      state.mountpoint === absolute ||
      state.file === absolute ||
      state.blockFile === absolute ||
      state.loopDevice === absolute ||
      (info?.isFile() && state.dev === info.dev && state.ino === info.ino),
  );
  if (!found) {
    throw new VaultError(
      'NOT_FOUND',
      `no mounted vault at ${target}`,
      '`vault list` shows the mounted vaults',
    );
  }
  return found;
}

export async function dismountVault(state: MountState, options: { force: boolean }): Promise<DismountResult> {
  // A user's states are in their own run directory (bridge.ts RUN_DIR): all of them are --user mounts.
  checkSystem([], { user: (state.user ?? false) || process.getuid?.() !== 0 });
  let pendingHolders: string | null = null;
  const alive = daemonAlive(state.pid);
  if (state.user && state.mountpoint && isMountpoint(state.mountpoint)) {
    if (!(await unmountFilesystem(state.mountpoint, { fuse: true }))) {
      const holders = await findHolders(state.mountpoint);
      if (!options.force) {
        throw new VaultError(
          'BUSY',
          `${state.mountpoint} is in use${holders.length > 0 ? ` by ${describeHolders(holders)}` : ''}`,
          'close those programs (or leave the directory) and try again; --force detaches it now',
        );
      }
      await unmountFilesystem(state.mountpoint, { fuse: true, lazy: true });
      pendingHolders = holders.length > 0 ? describeHolders(holders) : 'some process';
    }
  } else if (state.loopDevice) {
    for (const entry of mountsOfSource(state.loopDevice)) {
      if (await unmountFilesystem(entry.mountpoint)) continue;
      const holders = await findHolders(entry.mountpoint);
      if (!options.force) {
        throw new VaultError(
          'BUSY',
          `${entry.mountpoint} is in use${holders.length > 0 ? ` by ${describeHolders(holders)}` : ''}`,
          'close those programs (or leave the directory) and try again; --force detaches it now ' +
            'and the vault closes when they let go',
        );
      }
      await unmountFilesystem(entry.mountpoint, { lazy: true });
      pendingHolders = holders.length > 0 ? describeHolders(holders) : 'some process';
    }
  } else if (alive) {
    // --no-filesystem: the block file may be in use by the user's own loop device or program.
    const loops = loopsOfFile(state.blockFile);
    const holders = await findHolders(state.blockFile);
    if ((loops.length > 0 || holders.length > 0) && !options.force) {
      const users = [...loops, ...holders.map((holder) => `${holder.command} (pid ${holder.pid})`)].join(
        ', ',
      );
      throw new VaultError(
        'BUSY',
        `the block file ${state.blockFile} is in use by ${users}`,
        'unmount/detach and close those first, or use --force',
      );
    }
    for (const loop of loops) await detachLoop(loop);
  }
  if (state.loopDevice && loopBackingFile(state.loopDevice) === state.blockFile)
    await detachLoop(state.loopDevice);

  if (alive) {
    process.kill(state.pid, 'SIGTERM');
    // The daemon flushes, unmounts FUSE, wipes its keys and removes its state; with a lazily detached
    // filesystem it keeps serving until the last holder lets go, so do not wait for that.
    const stopped = await waitForExit(state.pid, pendingHolders ? 3_000 : 120_000);
    if (!stopped && !pendingHolders) {
      throw new VaultError(
        'IO',
        `the daemon (pid ${state.pid}) did not stop`,
        `see its log ${logFileOf(state.id)}; kill it, then run vault dismount again to clean up`,
      );
    }
    if (stopped) pendingHolders = null;
  }
  if (!daemonAlive(state.pid)) {
    const current = await readState(state.id);
    if (current) await cleanupRemains(current);
    else if (state.createdMountpoint && state.mountpoint && !isMountpoint(state.mountpoint)) {
      await rmdir(state.mountpoint).catch(() => {});
    }
  }
  return { state, pendingHolders };
}

// ---- list --------------------------------------------------------------------------------------

export interface ListedVault {
  file: string;
  mountpoint: string | null;
  blockFile: string;
  loopDevice: string | null;
  fsType: string | null;
  readOnly: boolean;
  pid: number;
  state: VaultStatus;
  mountedAt: string;
  /** With --protect-hidden: "on", or "tripped" once a write was refused (read-only since); else null. */
  hiddenProtection: 'on' | 'tripped' | null;
  /** 'vault', or the foreign format: 'luks1', 'luks2', 'veracrypt', 'truecrypt'. */
  format: string;
}

export async function listVaults(): Promise<ListedVault[]> {
  return (await readAllStates())
    .filter((state) => state.device === 'vault' || state.device === 'passthrough')
    .map((state) => ({
      file: state.file,
      mountpoint: state.mountpoint,
      blockFile: state.blockFile,
      loopDevice: state.loopDevice,
      fsType: state.fsType,
      readOnly: state.readOnly,
      pid: state.pid,
      state: statusOf(state),
      mountedAt: state.mountedAt,
      hiddenProtection: state.hiddenProtection ?? null,
      format: state.format ?? 'vault',
    }));
}

/** Every state, for `dismount --all`. */
export function allMounted(): Promise<MountState[]> {
  return readAllStates();
}

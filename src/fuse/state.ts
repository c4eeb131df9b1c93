// What is mounted: one directory per mounted vault, /run/vault/<dev>-<ino>/, holding state.json (written
// atomically), the daemon's log and the FUSE directory `fuse/` with the block file `volume`.
// Keyed by the container's device and inode, so another path or a hard link to it is the same vault.
import { openSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { mountTable } from '../host/mounts.js';
import { ensurePrivateRunDir, LOG_DIR, RUN_DIR } from '../host/paths.js';
import { processAlive, processCommand } from '../host/process.js';
import type { MountPlan } from './model.js';

export interface MountState {
  version: 1;
  /** `${dev}-${ino}` of the container file; also the state directory's name. */
  id: string;
  /** Absolute path of the container file as given at mount time. */
  file: string;
  dev: number;
  ino: number;
  /** Where the filesystem is mounted; null with --no-filesystem. */
  mountpoint: string | null;
  /** We created the mountpoint (/media/vault/<name>) and remove it at dismount. */
  createdMountpoint: boolean;
  /** The cleartext block file the daemon serves (FUSE). */
  blockFile: string;
  loopDevice: string | null;
  fsType: string | null;
  readOnly: boolean;
  /** Daemon process id. */
  pid: number;
  /** 'vault' for real vaults; 'passthrough' only in benchmarks. */
  device: 'vault' | 'passthrough';
  phase: 'starting' | 'mounted' | 'stopping';
  mountedAt: string;
  /** How long unlocking (the KDF) took in the daemon, for the mount-overhead benchmark. */
  unlockMs: number | null;
  /**
   * With --protect-hidden: 'on', or 'tripped' once a write aimed at the hidden volume was refused
   * (every write is refused from then on). Absent without protection.
   */
  hiddenProtection?: 'on' | 'tripped';
  /** The volume format when it is not a vault: 'luks1', 'luks2', 'veracrypt', 'truecrypt'. */
  format?: string;
  /** With --partition N: the filesystem is on partition N of the volume (/dev/loopXpN). */
  partition?: number;
  /** vault mount --user: no loop device; fuse2fs (run as the user) serves the ext4 at the mountpoint. */
  user?: boolean;
  /** --idle-dismount: the daemon dismounts after this many milliseconds without I/O. */
  idleDismountMs?: number;
}

/** The record of a mount as it starts (phase 'starting'): written by `vault mount`, then by the daemon. */
export function newMountState(plan: MountPlan, pid: number): MountState {
  return {
    version: 1,
    id: plan.id,
    file: plan.file,
    dev: plan.dev,
    ino: plan.ino,
    mountpoint: plan.noFilesystem ? null : plan.mountpoint,
    createdMountpoint: plan.createdMountpoint,
    blockFile: `${fuseDirOf(plan.id)}/volume`,
    loopDevice: null,
    fsType: null,
    readOnly: plan.readOnly,
    pid,
    device: plan.device,
    phase: 'starting',
    mountedAt: new Date().toISOString(),
    unlockMs: null,
    // --user (with or without a filesystem): dismount must not ask for root.
    ...(plan.user ? { user: true } : {}),
    ...(plan.idleDismountMs === null ? {} : { idleDismountMs: plan.idleDismountMs }),
  };
}

export type VaultStatus = 'ok' | 'starting' | 'stopping' | 'broken';

export function stateId(dev: number, ino: number): string {
  return `${dev}-${ino}`;
}

export function stateDirOf(id: string): string {
  return `${RUN_DIR}/${id}`;
}

export function fuseDirOf(id: string): string {
  return `${stateDirOf(id)}/fuse`;
}

export function logFileOf(id: string): string {
  return `${LOG_DIR}/${id}.log`;
}

/**
 * The daemon's log of a vault, opened for appending. It starts afresh once it grows past 1 MiB, and
 * when it was last written before `vaultFile` was created: the log is named by the file's device and
 * inode, which a new file reuses after an old one is deleted, and the old file's history is not its own.
 */
export function openLogFile(id: string, vaultFile: string): number {
  const file = logFileOf(id);
  const log = statSync(file, { throwIfNoEntry: false });
  // 0 where the filesystem keeps no creation time: then only the size counts.
  const born = statSync(vaultFile, { throwIfNoEntry: false })?.birthtimeMs ?? 0;
  const afresh = log !== undefined && (log.size > 1 << 20 || log.mtimeMs < born);
  return openSync(file, afresh ? 'w' : 'a', 0o600);
}

/**
 * Claims the state directory for a vault; false when it already exists (mounted, being mounted,
 * or remains of a crashed daemon). mkdir is atomic, so two concurrent mounts cannot both win.
 */
export async function claimStateDir(id: string): Promise<boolean> {
  await ensurePrivateRunDir();
  await mkdir(LOG_DIR, { recursive: true, mode: 0o700 });
  try {
    await mkdir(stateDirOf(id), { mode: 0o700 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

export async function writeState(state: MountState): Promise<void> {
  const path = `${stateDirOf(state.id)}/state.json`;
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

export async function readState(id: string): Promise<MountState | null> {
  try {
    return JSON.parse(await readFile(`${stateDirOf(id)}/state.json`, 'utf8')) as MountState;
  } catch {
    return null;
  }
}

/**
 * Removes a state directory: rmdir on `fuse/` (never descending into a live mount), unlink of our files.
 * Returns false when the FUSE directory is still mounted (the directory is then left in place).
 */
export async function removeStateDir(id: string): Promise<boolean> {
  const dir = stateDirOf(id);
  try {
    await rmdir(`${dir}/fuse`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return false;
  }
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return true;
  }
  for (const name of names) await unlink(`${dir}/${name}`).catch(() => {});
  await rmdir(dir).catch(() => {});
  return true;
}

/** Every vault with a state directory (mounted, starting, stopping or broken), oldest first. */
export async function readAllStates(): Promise<MountState[]> {
  let names: string[] = [];
  try {
    names = await readdir(RUN_DIR);
  } catch {
    return [];
  }
  const states: MountState[] = [];
  for (const name of names) {
    if (!/^\d+-\d+$/.test(name)) continue;
    const state = await readState(name);
    if (state) states.push(state);
  }
  return states.sort((a, b) => a.mountedAt.localeCompare(b.mountedAt));
}

/** True when `pid` is alive and is a vault daemon (not a recycled pid). */
export function daemonAlive(pid: number): boolean {
  return pid > 0 && processAlive(pid) && processCommand(pid).includes('fuse/daemon.js');
}

/** ok: daemon alive and everything in place; broken: daemon gone or its FUSE endpoint missing. */
export function statusOf(state: MountState): VaultStatus {
  if (!daemonAlive(state.pid)) return 'broken';
  if (state.phase !== 'mounted') return state.phase;
  const fuseDir = fuseDirOf(state.id);
  const table = mountTable();
  if (!table.some((entry) => entry.mountpoint === fuseDir)) return 'broken';
  if (state.mountpoint && state.loopDevice) {
    const source = state.partition ? `${state.loopDevice}p${state.partition}` : state.loopDevice;
    const mounted = table.some((entry) => entry.mountpoint === state.mountpoint && entry.source === source);
    if (!mounted) return 'broken';
  }
  return 'ok';
}

/** Waits until the daemon `pid` is gone; false when it is still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!daemonAlive(pid)) return true;
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 20));
  }
  return !daemonAlive(pid);
}

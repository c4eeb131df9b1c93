// What is mounted, from the state directories under the run directory: the list, the vault a user
// means by a path, the one check every command that must not touch a mounted vault makes, and (for a
// user without root) which vaults root has mounted, which only root can see and dismount.
import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VaultError } from '../container/errors.js';
import { loopBackingFile } from '../host/loop.js';
import { mountTable } from '../host/mounts.js';
import { pathExists, ROOT_RUN_DIR } from '../host/paths.js';
import { reapAbandonedBridges } from './bridge.js';
import {
  daemonAlive,
  type MountState,
  readAllStates,
  readState,
  stateDirOf,
  stateId,
  statusOf,
  type VaultStatus,
  waitForExit,
} from './state.js';

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
  /** --idle-dismount: dismounted after this many seconds without I/O; null: never. */
  idleDismountSeconds: number | null;
}

export async function listVaults(): Promise<ListedVault[]> {
  // What a killed `vault create` left (a dead FUSE mount of its bridge) goes on the way.
  await reapAbandonedBridges();
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
      idleDismountSeconds: state.idleDismountMs === undefined ? null : state.idleDismountMs / 1000,
    }));
}

/** Every state, for `dismount --all`. */
export function allMounted(): Promise<MountState[]> {
  return readAllStates();
}

/**
 * For a user without root: the ids of the vaults root has mounted. Their state is under /run/vault,
 * which only root can read, but their FUSE endpoints (/run/vault/<id>/fuse) are in the mount table.
 */
export function rootVaultIds(): string[] {
  if (process.getuid?.() === 0) return [];
  const endpoint = /^\/run\/vault\/(\d+-\d+)\/fuse$/;
  const ids: string[] = [];
  for (const entry of mountTable()) {
    const id = endpoint.exec(entry.mountpoint)?.[1];
    if (id && entry.mountpoint.startsWith(`${ROOT_RUN_DIR}/`)) ids.push(id);
  }
  return ids;
}

/** needs root: a user without root is told so instead of "no vaults mounted" or "no mounted vault". */
export function needsRoot(what: string, command: string): VaultError {
  return new VaultError('NEEDS_SYSTEM', `${what} needs root`, `run it with sudo: sudo vault ${command}`);
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
  if (found) return found;
  if (mountedByRoot(absolute, real, info)) {
    throw needsRoot(`${target} was mounted by root: dismounting it`, `dismount ${target}`);
  }
  throw new VaultError('NOT_FOUND', `no mounted vault at ${target}`, '`vault list` shows the mounted vaults');
}

/** Whether a path names a vault root mounted: its file, block file, mountpoint or loop device. */
function mountedByRoot(
  absolute: string,
  real: string,
  info: { isFile(): boolean; dev: number; ino: number } | null,
): boolean {
  const ids = rootVaultIds();
  if (ids.length === 0) return false;
  const ofRoot = (path: string | null): boolean =>
    path !== null && ids.some((id) => path.startsWith(`${ROOT_RUN_DIR}/${id}/`));
  if (info?.isFile() && ids.includes(stateId(info.dev, info.ino))) return true;
  if (ofRoot(absolute) || ofRoot(real)) return true;
  const sources = mountTable()
    .filter((entry) => entry.mountpoint === real || entry.mountpoint === absolute)
    .map((entry) => entry.source);
  sources.push(real);
  return sources.some(
    (source) =>
      /^\/dev\/loop\d+(p\d+)?$/.test(source) &&
      ofRoot(loopBackingFile(source.replace(/^(\/dev\/loop\d+)p\d+$/, '$1'))),
  );
}

/**
 * Refuses (BUSY) when the vault `file` is mounted, or being mounted, or has remains of a mount whose
 * daemon is gone: mount, create --force, resize, import and export all ask here. `allowReadOnly`: a
 * read-only mount is fine (readers such as export). A mount whose filesystem was just unmounted by hand
 * is given a moment: its daemon notices and takes the rest down by itself.
 */
export async function refuseIfMounted(
  file: string,
  options: { allowReadOnly?: boolean; id?: string } = {},
): Promise<void> {
  let id = options.id;
  if (id === undefined) {
    const info = await stat(resolve(file)).catch(() => null);
    if (!info) return;
    id = stateId(info.dev, info.ino);
  }
  let state = await readState(id);
  if (state && daemonAlive(state.pid) && statusOf(state) === 'broken' && state.phase === 'mounted') {
    await waitForExit(state.pid, 3_000);
    state = await readState(id);
  }
  if (state === null && !(await pathExists(stateDirOf(id)))) return;
  if (state && statusOf(state) !== 'broken') {
    if (options.allowReadOnly && state.readOnly) return;
    const where = state.mountpoint ?? state.blockFile;
    throw new VaultError(
      'BUSY',
      `this vault is already mounted${state.readOnly ? ' read-only' : ''}${state.file !== resolve(file) ? ` (as ${state.file})` : ''} at ${where}`,
      `dismount it first: vault dismount ${where}`,
    );
  }
  if (state && daemonAlive(state.pid)) {
    throw new VaultError(
      'BUSY',
      `this vault's mount is broken (its filesystem or FUSE endpoint is gone) but its daemon (pid ${state.pid}) still runs`,
      `dismount it: vault dismount ${state.file}`,
    );
  }
  throw new VaultError(
    'BUSY',
    'this vault has remains of an earlier mount whose daemon is gone',
    `clean them up with: vault dismount ${state?.file ?? file}`,
  );
}

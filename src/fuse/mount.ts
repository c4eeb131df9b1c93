// `vault mount` as the CLI (and the bench) call it: every check that can come before the secret, then
// the daemon started with the plan and the secret over its pipe (protocol.ts); the daemon does the
// mounting, and a mount that fails or is interrupted is undone by it, or by cleanupRemains when it died.
import { chown, mkdir, readdir, realpath, rmdir, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { basename, extname, resolve } from 'node:path';
import { VaultError, type VaultErrorCode } from '../container/errors.js';
import type { Secret } from '../container/secret.js';
import { USER_DRIVER_TOOLS } from '../host/filesystems.js';
import { isMountpoint } from '../host/mounts.js';
import { checkTrustedPath, type Owner, resolveOwner } from '../host/owner.js';
import { MEDIA_DIR, userMediaDir } from '../host/paths.js';
import type { ChildProcess } from '../host/process.js';
import { checkSystem } from '../host/requirements.js';
import { channelOf, takeDaemon } from './daemon-process.js';
import { cleanupRemains } from './dismount.js';
import { refuseIfMounted } from './list.js';
import { type MountOptionsInput, type MountPlan, type MountTarget, mountOptions } from './model.js';
import { type DaemonSettings, readDaemonMessage } from './protocol.js';
import {
  claimStateDir,
  daemonAlive,
  logFileOf,
  type MountState,
  newMountState,
  readState,
  removeStateDir,
  stateId,
  waitForExit,
  writeState,
} from './state.js';

export type { MountTarget } from './model.js';

const MOUNT_TOOLS = ['losetup', 'mount', 'umount', 'blkid', 'fusermount'];

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
  await refuseIfMounted(file, { id });
  const owner = await resolveOwner(options.owner);
  let target: string | null = null;
  if (mountpoint !== undefined && !options.noFilesystem) {
    target = await checkMountpoint(mountpoint);
    // A user's own FUSE mount (--user) is checked by fusermount; root's mount must not be redirected.
    if (!options.user) await checkTrustedPath(target, owner);
  }
  return { file: absolute, dev: info.dev, ino: info.ino, id, mountpoint: target, owner };
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

/** The options of one mount (model.ts; defaults filled in) and the secrets, which the caller wipes. */
export type MountRequest = MountOptionsInput & {
  /** The secret; the caller wipes it afterwards. null only with device 'passthrough'. */
  secret: Secret | null;
  /** The hidden volume's secret, to mount the outer volume with the hidden one protected. */
  protectHidden?: Secret | null;
  /** Aborting (Ctrl-C) makes the daemon undo what it did; mountVault then throws INTERRUPTED. */
  signal?: AbortSignal;
};

export interface MountResult {
  state: MountState;
  warnings: string[];
}

/** Starts the daemon for a checked target and waits until everything is mounted or undone. */
export async function mountVault(target: MountTarget, request: MountRequest): Promise<MountResult> {
  if (!(await claimStateDir(target.id))) await refuseIfMounted(target.file, { id: target.id });
  const options = mountOptions(request);
  let child: ChildProcess | null = null;
  let mountpoint = target.mountpoint;
  let createdMountpoint = false;
  try {
    if (!options.noFilesystem && mountpoint === null) {
      mountpoint = await createMountpoint(target.file, options.user, target.owner);
      createdMountpoint = true;
    }
    const plan: MountPlan = { ...target, ...options, mountpoint, createdMountpoint };
    // Usually prestarted by the CLI; it opens its own log (state.ts openLogFile) once it has the settings.
    child = takeDaemon();
    await writeState(newMountState(plan, child.pid ?? 0));
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
      await sendSettings(channel, plan, request);
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

function sendSettings(channel: Socket, plan: MountPlan, request: MountRequest): Promise<void> {
  // The wire form carries the foreign parts too (LUKS, VeraCrypt, TrueCrypt); these copies are wiped below.
  const material = request.secret?.toWire() ?? Buffer.alloc(0);
  const hiddenMaterial = request.protectHidden?.toWire() ?? Buffer.alloc(0);
  const settings: DaemonSettings = {
    ...plan,
    secretLength: material.length + hiddenMaterial.length,
    hiddenSecretLength: hiddenMaterial.length,
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

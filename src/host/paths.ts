// Where vault keeps things on the host: the private run directory (bridges, daemon state, logs),
// the default mountpoints, and small filesystem queries.
import { readlinkSync, statSync } from 'node:fs';
import { access, lstat, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { VaultError } from './errors.js';

export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export function statOrNull(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

export function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** root's run directory: root's vaults are mounted from here (their FUSE endpoints are in the mount table). */
export const ROOT_RUN_DIR = '/run/vault';

/** Where private bridge directories live (mode 0700); the daemon's state directories too. */
export const RUN_DIR = runDirFor(process.getuid?.() ?? 0);

/**
 * root: /run/vault. Anyone else (vault mount --user) cannot write there: $XDG_RUNTIME_DIR/vault (a
 * private per-user tmpfs under systemd); without it ~/.cache/vault-run, which no other user can
 * create first; /tmp/vault-<uid> only when there is no home of one's own (ensurePrivateRunDir checks it).
 */
function runDirFor(uid: number): string {
  if (uid === 0) return ROOT_RUN_DIR;
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

/** Daemon logs outlive the mount (so a failed mount can point to one); /run is emptied at boot. */
export const LOG_DIR = `${RUN_DIR}/log`;

/** Where mountpoints are created when none is given (root). */
export const MEDIA_DIR = '/media/vault';

/** Where --user creates mountpoints: ~/vault/<name> (a user cannot create directories in /media). */
export function userMediaDir(): string {
  return `${homedir()}/vault`;
}

// Whom a mount and a new filesystem belong to, and which mountpoint paths are safe for root to use.
import { lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VaultError } from './errors.js';
import { run } from './process.js';

/** Who owns a mount: the user who asked for it (SUDO_UID under sudo, --owner), as numbers. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Whom a mount (its mountpoint and, for FAT/exFAT, its files) and a new filesystem belong to: `--owner`
 * (a name or uid; root only), else under sudo the user who ran sudo (SUDO_UID/SUDO_GID), else the caller.
 */
export async function resolveOwner(name?: string): Promise<Owner> {
  const uid = process.getuid?.() ?? 0;
  if (name === undefined) {
    const sudoUid = Number(process.env.SUDO_UID);
    const sudoGid = Number(process.env.SUDO_GID);
    if (uid === 0 && Number.isSafeInteger(sudoUid) && sudoUid > 0 && Number.isSafeInteger(sudoGid)) {
      return { uid: sudoUid, gid: sudoGid };
    }
    return { uid, gid: process.getgid?.() ?? 0 };
  }
  if (uid !== 0) {
    throw new VaultError('USAGE', '--owner needs root', 'leave it out: your mounts belong to you');
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name)) {
    throw new VaultError('USAGE', `not a user name: "${name}"`, 'give a user name or a numeric uid');
  }
  const [uidResult, gidResult] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  const ownerUid = Number(uidResult.stdout.trim());
  const ownerGid = Number(gidResult.stdout.trim());
  if (
    uidResult.code !== 0 ||
    gidResult.code !== 0 ||
    !Number.isSafeInteger(ownerUid) ||
    !Number.isSafeInteger(ownerGid)
  ) {
    throw new VaultError(
      'USAGE',
      `no such user: ${name}`,
      'give an existing user name or uid (see: getent passwd)',
    );
  }
  return { uid: ownerUid, gid: ownerGid };
}

/**
 * A mountpoint root will mount on must be a path no other user can change between now and the mount
 * (the KDF runs in between): every directory from / down to it owned by root or the owner, and none
 * writable by anyone else unless it is sticky (/tmp: others cannot rename or remove what is not theirs).
 * Otherwise another user could swap a component for a symlink and have root mount over /etc.
 */
export async function checkTrustedPath(path: string, owner: Owner): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let depth = 0; depth <= parts.length; depth++) {
    const dir = `/${parts.slice(0, depth).join('/')}`;
    const info = await lstat(dir);
    const last = depth === parts.length;
    const trustedOwner = info.uid === 0 || info.uid === owner.uid;
    const othersMayWrite = (info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0;
    if (!info.isDirectory() || !trustedOwner || (!last && othersMayWrite)) {
      throw new VaultError(
        'USAGE',
        `the mountpoint ${path} is not safe to mount on: ${dir} ${
          info.isDirectory()
            ? trustedOwner
              ? 'is writable by other users'
              : `belongs to another user (uid ${info.uid})`
            : 'is not a directory'
        }`,
        "use a directory that only root and the mount's owner can change (--owner names the owner), or leave the mountpoint out (/media/vault/<name>)",
      );
    }
  }
}

/**
 * A file root acts on without asking (the vaulttab, a keyfile it names) must be one no other user can
 * change, as ssh and cryptsetup demand: the file and every directory from / down to it owned by root or
 * `trustedUid` (the user running vault), none writable by group or others (a sticky directory such as
 * /tmp excepted), and no symbolic link on the way, which could be pointed elsewhere after this check.
 * Throws USAGE naming the first part that fails; returns the file's mode.
 */
export async function checkTrustedFile(
  path: string,
  what: string,
  trustedUid = process.getuid?.() ?? 0,
): Promise<number> {
  const parts = resolve(path).split('/').filter(Boolean);
  for (let depth = 0; depth <= parts.length; depth++) {
    const current = `/${parts.slice(0, depth).join('/')}`;
    const last = depth === parts.length;
    let info: Awaited<ReturnType<typeof lstat>>;
    try {
      info = await lstat(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw new VaultError('NOT_FOUND', `${what} ${path} does not exist`, 'check the path');
      throw error;
    }
    const refuse = (why: string, hint: string): never => {
      throw new VaultError('USAGE', `${what} ${path} is not safe to use: ${why}`, hint);
    };
    if (info.isSymbolicLink()) {
      refuse(`${current} is a symbolic link`, 'name the file by its real path (readlink -f)');
    }
    if (last ? !info.isFile() : !info.isDirectory()) {
      refuse(`${current} is not a ${last ? 'regular file' : 'directory'}`, 'check the path');
    }
    if (info.uid !== 0 && info.uid !== trustedUid) {
      refuse(
        `${current} belongs to another user (uid ${info.uid})`,
        `only root${trustedUid === 0 ? '' : ' and you'} may own it and the directories above it: chown root ${current}`,
      );
    }
    const sticky = !last && (info.mode & 0o1000) !== 0;
    if ((info.mode & 0o022) !== 0 && !sticky) {
      refuse(
        `${current} is writable by ${(info.mode & 0o002) !== 0 ? 'every user' : 'its group'}`,
        `only its owner may write it: chmod go-w ${current}`,
      );
    }
    if (last) return info.mode & 0o7777;
  }
  return 0;
}

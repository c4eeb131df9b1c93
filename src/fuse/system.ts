// The host side of a mount: running losetup/mount/umount/blkid/fusermount, reading the mount table
// and loop devices from /proc and /sys, and finding which processes hold a mount or a file open.
// Everything here is idempotent enough to be used both on the way up and when cleaning up remains.
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { access, lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { VaultError } from '../container/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** File descriptors of this process that are FUSE devices (/dev/fuse), e.g. an in-process bridge's. */
export function fuseDeviceFds(): number[] {
  const found: number[] = [];
  try {
    for (const name of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') found.push(Number(name));
      } catch {}
    }
  } catch {}
  return found;
}

/**
 * The command line to start a child without our /dev/fuse descriptors. libfuse 2 opens /dev/fuse
 * without O_CLOEXEC, so a child (mkfs, losetup) would inherit it: if this process then dies (kill -9),
 * the child keeps the FUSE connection alive and waits forever for answers nobody will send.
 */
export function withoutFuseFds(command: string, args: readonly string[]): [string, string[]] {
  const fds = fuseDeviceFds();
  if (fds.length === 0) return [command, [...args]];
  const closing = fds.map((fd) => `${fd}>&-`).join(' ');
  // bash, not sh: dash only understands single-digit descriptors in redirections.
  return ['/bin/bash', ['-c', `exec "$@" ${closing}`, 'vault-run', command, ...args]];
}

/** Runs a system tool without a shell; never throws for a non-zero exit (callers decide). */
export function run(command: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  // The same lookup as checkSystem (PATH, then the sbin directories), so a PATH without /sbin works.
  const resolved = command.includes('/') ? command : (findTool(command) ?? command);
  const [file, argv] = withoutFuseFds(resolved, args);
  return new Promise((resolve) => {
    execFile(
      file,
      argv,
      { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) {
          const raw = (error as NodeJS.ErrnoException & { code?: unknown }).code;
          code = typeof raw === 'number' ? raw : 127;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a tool and throws VaultError IO with its stderr when it fails. */
export async function runChecked(command: string, args: readonly string[], what: string): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new VaultError(
      'IO',
      `${what} failed: ${firstLine(result.stderr) || `${command} exited ${result.code}`}`,
    );
  }
  return result.stdout;
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

const TOOL_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findTool(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...TOOL_DIRS]) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {}
  }
  return null;
}

/** Root, /dev/fuse and the tools a mount needs; one clear error for the first thing missing. */
export function checkSystem(tools: readonly string[], options: { user?: boolean } = {}): void {
  if (!options.user && process.getuid?.() !== 0) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      'mounting needs root rights (FUSE, loop devices and mount)',
      'run the command with sudo; an ext4 vault can also be mounted without root: vault mount --user',
    );
  }
  checkFuseDevice(options);
  for (const tool of tools) {
    if (!findTool(tool)) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        `the system tool ${tool} is missing`,
        'install util-linux, fuse and e2fsprogs (scripts/setup.sh does it on Debian)',
      );
    }
  }
}

/** /dev/fuse is there and usable by us; a clear error (and for --user, who can fix it) otherwise. */
export function checkFuseDevice(options: { user?: boolean } = {}): void {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    if (options.user && process.getuid?.() !== 0 && statOrNull('/dev/fuse')) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        '/dev/fuse is not accessible to you',
        'ask an admin to install fuse and give users access to /dev/fuse (Debian makes it mode 0666: chmod 0666 /dev/fuse)',
      );
    }
    throw new VaultError(
      'NEEDS_SYSTEM',
      '/dev/fuse is missing',
      'load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
    );
  }
}

// ---- mount table -------------------------------------------------------------------------------

export interface MountEntry {
  mountId: number;
  source: string;
  mountpoint: string;
  fstype: string;
  options: string;
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const tail = right.split(' ');
    entries.push({
      mountId: Number(fields[0]),
      mountpoint: unescapeMountField(fields[4] ?? ''),
      options: fields[5] ?? '',
      fstype: tail[0] ?? '',
      source: unescapeMountField(tail[1] ?? ''),
    });
  }
  return entries;
}

export function mountTable(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function isMountpoint(path: string): boolean {
  return mountTable().some((entry) => entry.mountpoint === path);
}

/** Mounts of `source`; for a loop device also those of its partitions (/dev/loop3p2, --partition). */
export function mountsOfSource(source: string): MountEntry[] {
  const partition = /^\/dev\/loop\d+$/.test(source) ? new RegExp(`^${source}p\\d+$`) : null;
  return mountTable().filter((entry) => entry.source === source || partition?.test(entry.source));
}

// ---- loop devices ------------------------------------------------------------------------------

/** The file a loop device is attached to, or null when it is free or gone. */
export function loopBackingFile(loopDevice: string): string | null {
  const name = loopDevice.replace(/^\/dev\//, '');
  try {
    return readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Loop devices attached to `file` (path as the kernel reports it). */
export function loopsOfFile(file: string): string[] {
  const found: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/block').filter((name) => name.startsWith('loop'));
  } catch {
    return found;
  }
  for (const name of names) {
    const backing = loopBackingFile(name);
    if (backing === file || backing === `${file} (deleted)`) found.push(`/dev/${name}`);
  }
  return found;
}

/** Whether the loop device uses direct I/O on its backing file (kernel view). */
export function loopDirectIo(loopDevice: string): boolean {
  const name = loopDevice.replace(/^\/dev\//, '');
  try {
    return readFileSync(`/sys/block/${name}/loop/dio`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

// ---- processes ---------------------------------------------------------------------------------

export interface Holder {
  pid: number;
  command: string;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie is dead for our purposes.
  try {
    const status = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return status.slice(status.lastIndexOf(')') + 2, status.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The command line of a process, for messages and to recognise our own daemon. */
export function processCommand(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function within(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * Processes that use anything under `root` (a mountpoint) or the file `root` itself: open files,
 * cwd, root directory, memory maps. Reads /proc like fuser does; our own process is left out.
 */
export async function findHolders(root: string): Promise<Holder[]> {
  const holders: Holder[] = [];
  let pids: string[] = [];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return holders;
  }
  for (const pidText of pids) {
    const pid = Number(pidText);
    if (pid === process.pid) continue;
    if (await usesPath(pid, root)) holders.push({ pid, command: processName(pid) });
  }
  return holders;
}

async function usesPath(pid: number, root: string): Promise<boolean> {
  const links = [`/proc/${pid}/cwd`, `/proc/${pid}/root`, `/proc/${pid}/exe`];
  try {
    for (const fd of await readdir(`/proc/${pid}/fd`)) links.push(`/proc/${pid}/fd/${fd}`);
  } catch {}
  for (const link of links) {
    try {
      const target = await readlink(link);
      if (within(target.replace(/ \(deleted\)$/, ''), root)) return true;
    } catch {}
  }
  try {
    const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
    for (const line of maps.split('\n')) {
      const path = line.split(/\s+/).slice(5).join(' ');
      if (path && within(path.replace(/ \(deleted\)$/, ''), root)) return true;
    }
  } catch {}
  return false;
}

export function describeHolders(holders: readonly Holder[]): string {
  return holders.map((holder) => `${holder.command} (pid ${holder.pid})`).join(', ');
}

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

// ---- the steps of a mount ----------------------------------------------------------------------

/**
 * Attaches a loop device to `file`; returns its path (/dev/loopN). When the kernel refuses direct I/O,
 * losetup has attached the device all the same (and exits 1): it then works with buffered I/O.
 */
export async function attachLoop(
  file: string,
  options: { readOnly: boolean; directIo: boolean; partScan?: boolean },
): Promise<string> {
  const args = ['--find', '--show'];
  if (options.readOnly) args.push('--read-only');
  if (options.partScan) args.push('--partscan');
  if (options.directIo) args.push('--direct-io=on');
  args.push(file);
  const result = await run('losetup', args);
  const loopDevice = result.stdout.trim().split('\n')[0]?.trim() ?? '';
  if (/^\/dev\/loop\d+$/.test(loopDevice) && loopBackingFile(loopDevice) === file) return loopDevice;
  throw new VaultError(
    'IO',
    `attaching a loop device failed: ${firstLine(result.stderr) || `losetup exited ${result.code}`}`,
    'check that loop devices are available (modprobe loop; losetup -f)',
  );
}

/**
 * The partition numbers the kernel found on a loop device attached with --partscan (from /sys), waiting
 * briefly until /dev/loopNpM exists for each (devtmpfs creates the nodes just after the scan).
 */
export async function loopPartitions(loopDevice: string): Promise<number[]> {
  const name = loopDevice.replace(/^\/dev\//, '');
  const found = (): number[] => {
    try {
      return readdirSync(`/sys/block/${name}`)
        .map((entry) => new RegExp(`^${name}p(\\d+)$`).exec(entry)?.[1])
        .filter((number): number is string => number !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return [];
    }
  };
  // Some kernels (seen on 6.18 in a microVM) attach with partscan set but add no partitions; partx
  // reads the table and adds them (BLKPG). They go away with the loop device all the same.
  if (found().length === 0 && findTool('partx')) await run('partx', ['--add', loopDevice]);
  for (let attempt = 0; attempt < 40; attempt++) {
    const numbers = found();
    if (numbers.every((number) => statOrNull(`${loopDevice}p${number}`)?.isBlockDevice())) return numbers;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return found();
}

export async function detachLoop(loopDevice: string): Promise<boolean> {
  const result = await run('losetup', ['--detach', loopDevice]);
  return result.code === 0 || loopBackingFile(loopDevice) === null;
}

/** The filesystem type blkid finds on a device (ext4, vfat, exfat, ...), or null. */
export async function detectFilesystem(device: string): Promise<string | null> {
  const result = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device]);
  const type = result.stdout.trim();
  return result.code === 0 && /^[a-z0-9_.-]+$/i.test(type) ? type : null;
}

function noFilesystem(): VaultError {
  return new VaultError(
    'USAGE',
    'the vault holds no filesystem that could be recognised',
    'mount it with --no-filesystem and format the block file, or create the vault with a filesystem',
  );
}

/** Who owns a mount: the user who asked for it (SUDO_UID under sudo, --owner), as numbers. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * The filesystems vault mounts, and the ownership options of those whose files have no owner of their
 * own (FAT, exFAT): uid/gid of the owner and umask 077, so nobody else lists, reads or writes anything.
 * Anything else in a vault is refused rather than handed to whichever kernel driver recognises it.
 */
const MOUNTABLE: Record<string, { ownerOptions: (owner: Owner) => string[] }> = {
  ext2: { ownerOptions: () => [] },
  ext3: { ownerOptions: () => [] },
  ext4: { ownerOptions: () => [] },
  vfat: { ownerOptions: (owner) => [`uid=${owner.uid}`, `gid=${owner.gid}`, 'umask=077'] },
  exfat: { ownerOptions: (owner) => [`uid=${owner.uid}`, `gid=${owner.gid}`, 'umask=077'] },
};

export const MOUNTABLE_TYPES = Object.keys(MOUNTABLE);

/** Always last on every mount's option list, so nothing before them can switch them off. */
export const SAFE_MOUNT_OPTIONS = ['nosuid', 'nodev'];

/**
 * Checks `--fs-options` (extra mount options such as noatime): comma-separated plain options; never
 * one that would undo nosuid/nodev (suid, dev, defaults) or change what vault decides (ro/rw, remount).
 */
export function parseFsOptions(text: string): string[] {
  const options = text.split(',').filter((option) => option.length > 0);
  for (const option of options) {
    const name = option.split('=')[0] ?? '';
    if (!/^[a-z0-9_]+(=[A-Za-z0-9_.:/+-]*)?$/.test(option)) {
      throw new VaultError('USAGE', `not a mount option: "${option}"`, 'give options like noatime,commit=30');
    }
    if (['suid', 'dev', 'defaults', 'user', 'users', 'owner', 'group'].includes(name)) {
      throw new VaultError(
        'USAGE',
        `--fs-options cannot include "${name}": vault mounts are always nosuid,nodev`,
        'leave it out; nosuid and nodev keep setuid programs and device nodes inside a vault harmless',
      );
    }
    if (['ro', 'rw', 'remount', 'bind', 'rbind', 'move', 'loop', 'offset', 'sizelimit'].includes(name)) {
      throw new VaultError(
        'USAGE',
        `--fs-options cannot include "${name}"`,
        name === 'ro' || name === 'rw' ? 'use --read-only (-r) for a read-only mount' : 'leave it out',
      );
    }
  }
  return options;
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

export interface FilesystemMountOptions {
  readOnly: boolean;
  owner: Owner;
  /** From --fs-options, already checked by parseFsOptions. */
  extra?: readonly string[];
}

/**
 * Mounts the filesystem on `device` at `mountpoint` and returns its type. The type is probed first and
 * pinned with -t (mount(8) never guesses, so only the drivers of MOUNTABLE ever see a vault's bytes);
 * every mount is nosuid,nodev; FAT and exFAT belong to the owner with umask 077. Read-only ext3/ext4
 * get `noload`: never replay the journal, so nothing at all is written.
 */
export async function mountFilesystem(
  device: string,
  mountpoint: string,
  options: FilesystemMountOptions,
): Promise<string> {
  const fsType = await detectFilesystem(device);
  if (!fsType) throw noFilesystem();
  const known = MOUNTABLE[fsType];
  if (!known) {
    throw new VaultError(
      'USAGE',
      `the vault holds a ${fsType} filesystem, which vault does not mount`,
      `vault mounts ${MOUNTABLE_TYPES.join(', ')}; to use it anyway, mount the block file yourself: vault mount --no-filesystem`,
    );
  }
  const list = [
    options.readOnly ? 'ro' : 'rw',
    ...(options.readOnly && /^ext[34]$/.test(fsType) ? ['noload'] : []),
    ...known.ownerOptions(options.owner),
    ...(options.extra ?? []),
    ...SAFE_MOUNT_OPTIONS,
  ].join(',');
  const result = await run('mount', ['-t', fsType, '-o', list, device, mountpoint]);
  if (result.code === 0) return fsType;
  const fuseDriver = await mountWithFuseDriver(fsType, device, mountpoint, list);
  if (fuseDriver) return fuseDriver;
  throw mountFailed(fsType, result.stderr);
}

/**
 * Filesystems a kernel may lack (exfat, e.g. on minimal cloud kernels) can still be mounted by their
 * FUSE driver when it is installed (Debian exfat-fuse: mount.exfat-fuse), with the same options.
 * Returns the type mounted, or null when there is no such driver or it failed too.
 */
async function mountWithFuseDriver(
  fsType: string,
  device: string,
  mountpoint: string,
  options: string,
): Promise<string | null> {
  const driver = FUSE_DRIVERS[fsType];
  if (!driver || !findTool(`mount.${driver}`)) return null;
  const result = await run('mount', ['-t', driver, '-o', options, device, mountpoint]);
  return result.code === 0 ? driver : null;
}

const FUSE_DRIVERS: Record<string, string> = { exfat: 'exfat-fuse' };

function mountFailed(fsType: string, stderr: string): VaultError {
  return new VaultError(
    'IO',
    `mounting the ${fsType} filesystem failed: ${firstLine(stderr)}`,
    'check it: mount with --no-filesystem and run fsck on the printed block file',
  );
}

/** Unmounts a filesystem; false when it is busy (non-lazy) or unmounting failed. */
export async function unmountFilesystem(
  mountpoint: string,
  options: { lazy?: boolean; fuse?: boolean } = {},
): Promise<boolean> {
  // A user's FUSE mount (fuse2fs, --user) is unmounted by the setuid fusermount, not umount.
  const result = options.fuse
    ? await run('fusermount', options.lazy ? ['-u', '-z', mountpoint] : ['-u', mountpoint])
    : await run('umount', options.lazy ? ['--lazy', mountpoint] : [mountpoint]);
  return result.code === 0 || !isMountpoint(mountpoint);
}

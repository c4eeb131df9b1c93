// The mount table (/proc/self/mountinfo), and mounting a filesystem the way vault always does: type
// probed and pinned, nosuid,nodev last, owner options for filesystems without owners.
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { VaultError } from './errors.js';
import {
  type FilesystemRecord,
  filesystemRecord,
  installedFuseDriver,
  MOUNTABLE_TYPES,
} from './filesystems.js';
import type { Owner } from './owner.js';
import { findTool, firstLine, run } from './process.js';
import { mountDirect } from './syscalls.js';

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

/** The filesystem type blkid finds on a device (ext4, vfat, exfat, ...), or null. */
export async function detectFilesystem(device: string): Promise<string | null> {
  const sniffed = await readHead(device).then(extFilesystemType, () => null);
  if (sniffed) return sniffed;
  const result = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device]);
  const type = result.stdout.trim();
  return result.code === 0 && /^[a-z0-9_.-]+$/i.test(type) ? type : null;
}

async function readHead(device: string): Promise<Uint8Array> {
  const handle = await open(device, 'r');
  try {
    const head = Buffer.alloc(EXT_SUPERBLOCK + 1024);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

const EXT_SUPERBLOCK = 1024;

/**
 * ext2, ext3 or ext4 as blkid names them, read from the superblock (1 KiB in): a mount of the default
 * filesystem then needs no blkid run. ext4 has a feature ext3 lacks, ext3 a journal, ext2 neither;
 * null for anything else (an external journal, a test filesystem, another type), which blkid probes.
 */
export function extFilesystemType(head: Uint8Array): string | null {
  if (head.length < EXT_SUPERBLOCK + 1024) return null;
  const view = new DataView(head.buffer, head.byteOffset + EXT_SUPERBLOCK, 1024);
  if (view.getUint16(0x38, true) !== 0xef53) return null;
  const compat = view.getUint32(0x5c, true);
  const incompat = view.getUint32(0x60, true);
  const roCompat = view.getUint32(0x64, true);
  const JOURNAL_DEV = 0x8;
  const TEST_FILESYSTEM = 0x4; // s_flags: blkid calls it ext4dev
  if (incompat & JOURNAL_DEV || view.getUint32(0x160, true) & TEST_FILESYSTEM) return null;
  // ext3 knows filetype, recover and meta_bg (incompat) and sparse_super, large_file, btree_dir.
  if (incompat & ~0x16 || roCompat & ~0x7) return 'ext4';
  const HAS_JOURNAL = 0x4;
  if (compat & HAS_JOURNAL) return 'ext3';
  return incompat & ~0x12 ? null : 'ext2';
}

function noFilesystem(): VaultError {
  return new VaultError(
    'USAGE',
    'the vault holds no filesystem that could be recognised',
    'mount it with --no-filesystem and format the block file, or create the vault with a filesystem',
  );
}

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

export interface FilesystemMountOptions {
  readOnly: boolean;
  owner: Owner;
  /** From --fs-options, already checked by parseFsOptions. */
  extra?: readonly string[];
  /** The type detectFilesystem found on the same bytes (e.g. on the block file, while losetup ran). */
  detected?: string | null | undefined;
}

/** The option list of every mount vault makes: ro/rw first, nosuid,nodev last. */
export function mountOptions(record: FilesystemRecord, options: FilesystemMountOptions): string {
  return [
    options.readOnly ? 'ro' : 'rw',
    ...(options.readOnly ? record.readOnlyOptions : []),
    ...record.ownerOptions(options.owner),
    ...(options.extra ?? []),
    ...SAFE_MOUNT_OPTIONS,
  ].join(',');
}

/**
 * Mounts the filesystem on `device` at `mountpoint` and returns its type (the FUSE driver's, when one
 * stood in for the kernel). The type is probed first and pinned with -t (mount(8) never guesses, so
 * only the drivers of the registry, src/host/filesystems.ts, ever see a vault's bytes); every mount is
 * nosuid,nodev; filesystems without owners (FAT, exFAT, NTFS) belong to the owner with umask 077; a
 * read-only mount adds the record's options that keep a journal or log from being replayed.
 */
export async function mountFilesystem(
  device: string,
  mountpoint: string,
  options: FilesystemMountOptions,
): Promise<string> {
  const fsType = options.detected !== undefined ? options.detected : await detectFilesystem(device);
  if (!fsType) throw noFilesystem();
  const record = filesystemRecord(fsType);
  if (!record) {
    throw new VaultError(
      'USAGE',
      `the vault holds a ${fsType} filesystem, which vault does not mount`,
      `vault mounts ${MOUNTABLE_TYPES.join(', ')}; to use it anyway, mount the block file yourself: vault mount --no-filesystem`,
    );
  }
  const list = mountOptions(record, options);
  const kernelType = record.kernelDriver ?? record.name;
  // mount(2) itself for a kernel filesystem that has no mount helper (mount.<type>, which mount(8)
  // would run instead); mount(8) after any refusal, for its message and its FUSE fallback below.
  if (!findTool(`mount.${kernelType}`) && (await mountDirect(device, mountpoint, kernelType, list)))
    return fsType;
  const result = await run('mount', ['-t', kernelType, '-o', list, device, mountpoint]);
  if (result.code === 0) return fsType;
  // Filesystems a kernel may lack (exfat, ntfs3 on minimal cloud kernels) are mounted by their FUSE
  // driver when it is installed (Debian exfat-fuse, ntfs-3g), with the same options.
  const fuseDriver = installedFuseDriver(record);
  if (fuseDriver) {
    const viaFuse = await run('mount', ['-t', fuseDriver, '-o', list, device, mountpoint]);
    if (viaFuse.code === 0) return fuseDriver;
  }
  throw mountFailed(fsType, result.stderr);
}

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

// The filesystems vault makes and mounts: one record each, with everything the rest of the code asks
// of a filesystem (how to make one, how to mount it safely and read-only, which FUSE program stands in
// for a missing kernel driver or for root, whether it can grow, whether it can hide a volume).
// Anything not in this table is refused by name rather than handed to whichever driver recognises it.
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { VaultError } from './errors.js';
import type { Owner } from './owner.js';
import { ensurePrivateRunDir, RUN_DIR } from './paths.js';
import { findTool, firstLine, run, runChecked } from './process.js';

export interface FilesystemRecord {
  /** blkid's TYPE, and the name `--filesystem` takes. */
  readonly name: string;
  /** The kernel's driver (/proc/filesystems), when it differs from `name`. */
  readonly kernelDriver?: string;
  /** Making one on a block file (absent: vault mounts it but does not create it). */
  readonly mkfs?: {
    readonly tool: string;
    readonly package: string;
    readonly args: (blockFile: string, owner: Owner, work: string) => string[];
    /** Smallest volume it accepts, when the tool has a limit. */
    readonly minBytes?: number;
    /** A file the tool reads (written into `work` first): xfs's protofile. */
    readonly input?: (owner: Owner) => { name: string; text: string };
  };
  /**
   * How the new filesystem's root directory becomes the owner's, mode 0700: 'mkfs' (its arguments do
   * it), 'debugfs' (ext: mkfs sets the owner, debugfs the mode), 'mount' (mounted once, chown+chmod),
   * 'options' (no owners on disk: ownerOptions at every mount).
   */
  readonly privateRoot: 'mkfs' | 'debugfs' | 'mount' | 'options';
  /** Mount options that give the files an owner: filesystems without owners of their own. */
  readonly ownerOptions: (owner: Owner) => string[];
  /** Added to a read-only mount so that nothing at all is written (no journal or log replay). */
  readonly readOnlyOptions: readonly string[];
  /** A FUSE driver mount(8) runs when the kernel has none (mount -t <type>). */
  readonly fuseDriver?: { readonly type: string; readonly package: string };
  /** `vault mount --user`: the FUSE program that serves it as the user, on the block file. */
  readonly userDriver?: { readonly tool: string; readonly package: string };
  /** Growing it offline after `vault resize`: a check, then the resize, on the block file. */
  readonly grow?: {
    readonly check: readonly string[];
    readonly resize: readonly string[];
    readonly package: string;
  };
  /** Its metadata stays at the start of the volume, so its free tail can hold a hidden volume. */
  readonly hiddenOuter: boolean;
}

const noOwnerOptions = (): string[] => [];
const fatOwnerOptions = (owner: Owner): string[] => [`uid=${owner.uid}`, `gid=${owner.gid}`, 'umask=077'];
const MiB = 1024 * 1024;

function ext(name: string, options: { mkfs: boolean; readOnly: string[] }): FilesystemRecord {
  return {
    name,
    ...(options.mkfs
      ? {
          mkfs: {
            tool: `mkfs.${name}`,
            package: 'e2fsprogs',
            // nodiscard: the block file is a FUSE file, discarding it would only be refused.
            args: (file: string, owner: Owner) => [
              '-q',
              '-F',
              '-E',
              `nodiscard,root_owner=${owner.uid}:${owner.gid}`,
              file,
            ],
          },
        }
      : {}),
    privateRoot: 'debugfs',
    ownerOptions: noOwnerOptions,
    readOnlyOptions: options.readOnly,
    userDriver: { tool: 'fuse2fs', package: 'fuse2fs' },
    grow: { check: ['e2fsck', '-f', '-y'], resize: ['resize2fs'], package: 'e2fsprogs' },
    hiddenOuter: false,
  };
}

const RECORDS: readonly FilesystemRecord[] = [
  ext('ext2', { mkfs: false, readOnly: [] }),
  ext('ext3', { mkfs: false, readOnly: ['noload'] }),
  ext('ext4', { mkfs: true, readOnly: ['noload'] }),
  {
    name: 'exfat',
    mkfs: { tool: 'mkfs.exfat', package: 'exfatprogs', args: (file) => [file] },
    privateRoot: 'options',
    ownerOptions: fatOwnerOptions,
    readOnlyOptions: [],
    fuseDriver: { type: 'exfat-fuse', package: 'exfat-fuse' },
    hiddenOuter: true,
  },
  {
    name: 'vfat',
    mkfs: { tool: 'mkfs.vfat', package: 'dosfstools', args: (file) => [file] },
    privateRoot: 'options',
    ownerOptions: fatOwnerOptions,
    readOnlyOptions: [],
    hiddenOuter: true,
  },
  {
    name: 'xfs',
    mkfs: {
      tool: 'mkfs.xfs',
      package: 'xfsprogs',
      // A protofile gives the root directory its owner and mode 0700; nodiscard as for ext4.
      args: (file, _owner, work) => ['-q', '-f', '-K', '-p', join(work, 'proto'), file],
      input: (owner) => ({ name: 'proto', text: `vault\n0 0\nd--700 ${owner.uid} ${owner.gid}\n$\n` }),
      minBytes: 300 * MiB,
    },
    privateRoot: 'mkfs',
    ownerOptions: noOwnerOptions,
    readOnlyOptions: ['norecovery'],
    hiddenOuter: false,
  },
  {
    name: 'btrfs',
    mkfs: {
      tool: 'mkfs.btrfs',
      package: 'btrfs-progs',
      args: (file) => ['-q', '-f', '-K', file],
      minBytes: 114 * MiB,
    },
    privateRoot: 'mount',
    ownerOptions: noOwnerOptions,
    readOnlyOptions: ['rescue=nologreplay'],
    hiddenOuter: false,
  },
  {
    name: 'ntfs',
    kernelDriver: 'ntfs3',
    mkfs: { tool: 'mkfs.ntfs', package: 'ntfs-3g', args: (file) => ['-q', '-F', '-f', file] },
    privateRoot: 'options',
    ownerOptions: fatOwnerOptions,
    readOnlyOptions: [],
    fuseDriver: { type: 'ntfs-3g', package: 'ntfs-3g' },
    hiddenOuter: false,
  },
];

/** The record of a filesystem type (blkid's TYPE), or undefined for one vault does not handle. */
export function filesystemRecord(type: string): FilesystemRecord | undefined {
  return RECORDS.find((record) => record.name === type);
}

/** Types vault mounts, for messages. */
export const MOUNTABLE_TYPES: readonly string[] = RECORDS.map((record) => record.name);

/** Types `vault create --filesystem` makes (and 'none'). */
export const CREATABLE_TYPES: readonly string[] = RECORDS.filter((record) => record.mkfs).map(
  (record) => record.name,
);

/** Types `vault mount --user` mounts (through their user driver), and the tools that needs. */
export const USER_MOUNTABLE_TYPES: readonly string[] = RECORDS.filter((record) => record.userDriver).map(
  (record) => record.name,
);
export const USER_DRIVER_TOOLS: readonly string[] = [
  ...new Set(RECORDS.flatMap((record) => (record.userDriver ? [record.userDriver.tool] : []))),
];

/** Types that can be the outer filesystem of a hidden volume. */
export const HIDDEN_OUTER_TYPES: readonly string[] = RECORDS.filter((record) => record.hiddenOuter).map(
  (record) => record.name,
);

/** The record for `--filesystem NAME`; USAGE naming the choices otherwise. */
export function creatableFilesystem(name: string): FilesystemRecord {
  const record = filesystemRecord(name);
  if (!record?.mkfs) {
    throw new VaultError(
      'USAGE',
      `unknown filesystem "${name}"`,
      `choose one of: ${[...CREATABLE_TYPES, 'none'].join(', ')}`,
    );
  }
  return record;
}

/** Whether the running kernel has the driver: registered now, built in, or a module it can load. */
export function kernelHasDriver(record: FilesystemRecord): boolean {
  const driver = record.kernelDriver ?? record.name;
  try {
    const registered = readFileSync('/proc/filesystems', 'utf8')
      .split('\n')
      .some((line) => line.split('\t').pop()?.trim() === driver);
    if (registered) return true;
  } catch {}
  for (const list of ['modules.builtin', 'modules.dep']) {
    try {
      const text = readFileSync(`/lib/modules/${release()}/${list}`, 'utf8');
      if (new RegExp(`/${driver}\\.ko`).test(text)) return true;
    } catch {}
  }
  return false;
}

/** The FUSE driver this machine can use for it (installed), or null. */
export function installedFuseDriver(record: FilesystemRecord): string | null {
  const driver = record.fuseDriver;
  return driver && findTool(`mount.${driver.type}`) ? driver.type : null;
}

/**
 * Before a vault is created with this filesystem: the tools to make it are here, the volume is big
 * enough, and this machine can mount it (kernel driver or FUSE driver), so nothing is written for a
 * volume that could not be used here.
 */
export function checkCanMake(record: FilesystemRecord, volumeBytes: number): void {
  const mkfs = record.mkfs;
  if (!mkfs) throw creatableFilesystem(record.name);
  if (mkfs.minBytes !== undefined && volumeBytes < mkfs.minBytes) {
    throw new VaultError(
      'USAGE',
      `${record.name} needs a volume of at least ${mkfs.minBytes / MiB} MiB`,
      `give a larger size, or choose another filesystem (--filesystem ext4)`,
    );
  }
  if (!findTool(mkfs.tool)) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      `${mkfs.tool} is missing`,
      `install the Debian package ${mkfs.package}`,
    );
  }
  if (!kernelHasDriver(record) && !installedFuseDriver(record)) {
    const fuse = record.fuseDriver;
    throw new VaultError(
      'NEEDS_SYSTEM',
      `this kernel has no ${record.kernelDriver ?? record.name} driver${fuse ? ` and ${fuse.type} is not installed` : ''}: a ${record.name} vault could not be mounted here`,
      fuse
        ? `install the Debian package ${fuse.package}, or choose another filesystem`
        : `choose another filesystem (${CREATABLE_TYPES.filter((name) => name !== record.name).join(', ')}), or load the module (modprobe ${record.kernelDriver ?? record.name})`,
    );
  }
}

/** Makes the filesystem on `blockFile`, its root directory the owner's with mode 0700 where it has owners. */
export async function makeFilesystem(
  record: FilesystemRecord,
  blockFile: string,
  owner: Owner,
): Promise<void> {
  const mkfs = record.mkfs;
  if (!mkfs) throw creatableFilesystem(record.name);
  // A private working directory (under RUN_DIR, mode 0700) only for the filesystems that need one.
  const needsWork = mkfs.input !== undefined || record.privateRoot === 'mount';
  if (needsWork) await ensurePrivateRunDir();
  const work = needsWork ? await mkdtemp(join(RUN_DIR, 'mkfs-')) : '';
  try {
    const input = mkfs.input?.(owner);
    if (input) await writeFile(join(work, input.name), input.text, { mode: 0o600 });
    await runChecked(mkfs.tool, mkfs.args(blockFile, owner, work), `making the ${record.name} filesystem`);
    if (record.privateRoot === 'debugfs') {
      // mke2fs sets the root directory's owner but not its mode (0755): make it private.
      await runChecked(
        'debugfs',
        ['-w', '-R', 'set_inode_field <2> mode 040700', blockFile],
        'making the root directory private',
      );
    } else if (record.privateRoot === 'mount') {
      await privateRootByMount(record, blockFile, owner, work);
    }
  } finally {
    if (work) await rm(work, { recursive: true, force: true });
  }
}

/** Mounts the new filesystem once (loop, nosuid,nodev, in a 0700 directory) to give its root to the owner. */
async function privateRootByMount(
  record: FilesystemRecord,
  blockFile: string,
  owner: Owner,
  work: string,
): Promise<void> {
  const at = join(work, 'root');
  await mkdir(at, { mode: 0o700 });
  const mounted = await run('mount', ['-t', record.name, '-o', 'loop,nosuid,nodev', blockFile, at]);
  if (mounted.code !== 0) {
    throw new VaultError(
      'IO',
      `mounting the new ${record.name} filesystem failed: ${firstLine(mounted.stderr)}`,
    );
  }
  try {
    await chown(at, owner.uid, owner.gid);
    await chmod(at, 0o700);
  } finally {
    await runChecked('umount', [at], `unmounting the new ${record.name} filesystem`);
  }
}

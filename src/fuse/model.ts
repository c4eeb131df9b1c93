// The one mount model. What `vault mount` asks for (MountOptions), and the plan for one vault file that
// the daemon carries out (MountPlan: the checked target, the options, the mountpoint); the daemon's
// settings (protocol.ts) are the plan plus the secret's length, and state.ts newMountState records it.
import type { TcryptHash } from '../container/volume.js';
import type { Owner } from '../host/owner.js';

/** Which volume format to open (--type, --hash, --pim); detected when absent. */
export interface VolumeSelection {
  type?: 'vault' | 'luks' | 'veracrypt' | 'truecrypt';
  hash?: TcryptHash;
  pim?: number;
}

/**
 * Loop device caching (docs: "Mounting", Caching): buffered. The kernel keeps one cache for the
 * filesystem above the loop device and one for the FUSE file below; writes still reach the daemon
 * synchronously (FUSE without writeback cache is write-through) and flushes become fdatasync.
 */
export const DEFAULT_LOOP_DIRECT_IO = true;

export interface MountOptions {
  readOnly: boolean;
  /** --no-filesystem: only the block file, no loop device and no filesystem mount. */
  noFilesystem: boolean;
  preserveTimestamps: boolean;
  costLevel: number;
  /** 'passthrough' (bench only) serves the file's bytes as they are, without a secret. */
  device: 'vault' | 'passthrough';
  /** Loop device direct I/O (see docs-mount "Caching"); the bench can switch it. */
  loopDirectIo: boolean;
  /** --partition N: mount partition N of the volume (loop device with partition scan); null: the whole. */
  partition: number | null;
  /** --user: mount the ext4 with fuse2fs on the block file, as the (non-root) user, not via a loop device. */
  user: boolean;
  /** --fs-options, already checked (host/mounts.ts parseFsOptions): added before nosuid,nodev. */
  fsOptions: string[];
  /** --idle-dismount: the daemon dismounts after this long without I/O (fuse/idle.ts); null: never. */
  idleDismountMs: number | null;
  /** --type/--hash/--pim: which volume format to open (LUKS, VeraCrypt, TrueCrypt); absent: detect. */
  volume?: VolumeSelection;
}

/** A vault file checked for mounting (mount.ts checkMount). */
export interface MountTarget {
  file: string;
  dev: number;
  ino: number;
  /** `${dev}-${ino}`: the state directory's name (state.ts stateId). */
  id: string;
  /** Absolute mountpoint, or null when one is to be created (or with --no-filesystem). */
  mountpoint: string | null;
  /** Whom the mount belongs to (host/owner.ts resolveOwner); FAT/exFAT get uid=,gid=,umask=077. */
  owner: Owner;
}

/** Everything the daemon needs to know but the secret. */
export interface MountPlan extends MountTarget, MountOptions {
  /** We created the mountpoint (/media/vault/<name>) and remove it at dismount. */
  createdMountpoint: boolean;
}

/** The options with their defaults filled in; the fields a caller may leave out are optional. */
export type MountOptionsInput = Pick<
  MountOptions,
  'readOnly' | 'noFilesystem' | 'preserveTimestamps' | 'costLevel'
> &
  Partial<Omit<MountOptions, 'readOnly' | 'noFilesystem' | 'preserveTimestamps' | 'costLevel'>>;

export function mountOptions(input: MountOptionsInput): MountOptions {
  return {
    readOnly: input.readOnly,
    noFilesystem: input.noFilesystem,
    preserveTimestamps: input.preserveTimestamps,
    costLevel: input.costLevel,
    device: input.device ?? 'vault',
    loopDirectIo: input.loopDirectIo ?? DEFAULT_LOOP_DIRECT_IO,
    partition: input.partition ?? null,
    user: input.user ?? false,
    fsOptions: input.fsOptions ?? [],
    idleDismountMs: input.idleDismountMs ?? null,
    ...(input.volume ? { volume: input.volume } : {}),
  };
}

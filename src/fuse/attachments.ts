// What a mount sets up, each piece with its way up and its way down (STYLE.md "One lifecycle"). Above
// the block file: a loop device with the filesystem mounted from it or from one of its partitions,
// a user driver such as fuse2fs on the block file (--user), or nothing (--no-filesystem: the block file alone). Below it: the
// mount's record and FUSE endpoint, or a running daemon seen from outside. One teardown walks a stack of
// them back, for the daemon, for `vault dismount` and for the remains of a killed daemon alike: they
// differ only in what a busy filesystem gets (refused, or detached lazily).
import { rmdir } from 'node:fs/promises';
import { VaultError } from '../container/errors.js';
import { filesystemRecord, USER_MOUNTABLE_TYPES } from '../host/filesystems.js';
import { describeHolders, findHolders } from '../host/holders.js';
import {
  attachLoop,
  detachLoop,
  loopBackingFile,
  loopPartitions,
  loopsOfFile,
  tuneLoopQueue,
} from '../host/loop.js';
import {
  detectFilesystem,
  isMountpoint,
  mountFilesystem,
  mountsOfSource,
  mountTable,
  SAFE_MOUNT_OPTIONS,
  unmountFilesystem,
} from '../host/mounts.js';
import { firstLine, run } from '../host/process.js';
import { MAX_REQUEST } from './fuse3.js';
import type { MountOptions, MountTarget } from './model.js';
import { daemonAlive, fuseDirOf, logFileOf, type MountState, removeStateDir, waitForExit } from './state.js';

/** The loop device's read-ahead: 16 MiB, 16 of the bridge's 1 MiB requests (2.5 MiB by default here). */
const LOOP_READ_AHEAD_KB = 16384;

/** What a busy filesystem gets: refused (BUSY, naming the processes), or detached lazily. */
export type Busy = 'refuse' | 'lazy';

export interface Teardown {
  readonly busy: Busy;
  log(message: string): void;
  /** Set once a busy filesystem was detached lazily: who still uses it (the vault closes when they let go). */
  pendingHolders: string | null;
}

export interface UpContext {
  /** Records what is now set up in the mount's state, so that a crash right after leaves it findable. */
  record(patch: Partial<MountState>): Promise<void>;
  /** Throws INTERRUPTED when a stop was asked for meanwhile (Ctrl-C of `vault mount`). */
  checkStop(): void;
  /** Notes that a step ended (the daemon logs how long each took). */
  step(name: string): void;
}

export interface Attachment {
  readonly kind: string;
  up(context: UpContext): Promise<void>;
  down(teardown: Teardown): Promise<void>;
  /** Filesystems only: false once it was unmounted by something else than vault (a plain umount). */
  present?(): boolean;
}

/**
 * Takes a stack down, last attached first. Refusing, the first busy filesystem stops it (BUSY); lazily,
 * every attachment is taken down even when one fails (keys are always wiped), and the first error is
 * thrown at the end.
 */
export async function teardown(
  stack: readonly Attachment[],
  options: { busy: Busy; log?: (message: string) => void },
): Promise<{ pendingHolders: string | null }> {
  const context: Teardown = { busy: options.busy, log: options.log ?? noop, pendingHolders: null };
  let failure: unknown = null;
  for (const attachment of [...stack].reverse()) {
    try {
      await attachment.down(context);
    } catch (error) {
      if (options.busy === 'refuse') throw error;
      context.log(`taking down the ${attachment.kind} failed: ${String(error)}`);
      failure ??= error;
    }
  }
  if (failure !== null) throw failure;
  return { pendingHolders: context.pendingHolders };
}

function noop(): void {}

/** Unmounts a filesystem; when it is busy, refuses or detaches it lazily (teardown.busy). */
async function unmountOrDetach(mountpoint: string, fuse: boolean, teardown: Teardown): Promise<void> {
  if (await unmountFilesystem(mountpoint, { fuse })) return;
  const holders = await findHolders(mountpoint);
  const users = holders.length > 0 ? describeHolders(holders) : null;
  if (teardown.busy === 'refuse') {
    throw new VaultError(
      'BUSY',
      `${mountpoint} is in use${users ? ` by ${users}` : ''}`,
      'close those programs (or leave the directory) and try again; --force detaches it now ' +
        'and the vault closes when they let go',
    );
  }
  teardown.log(`${mountpoint} is busy; detaching it lazily`);
  await unmountFilesystem(mountpoint, { fuse, lazy: true });
  teardown.pendingHolders = users ?? 'some process';
}

/** Every loop device on the block file keeps it busy: ours, or one a failed attach (or a user) left. */
async function detachLoops(blockFile: string, recorded: string | null, teardown: Teardown): Promise<void> {
  const loops = new Set(loopsOfFile(blockFile));
  if (recorded && loopBackingFile(recorded) === blockFile) loops.add(recorded);
  for (const loop of loops) {
    for (const entry of mountsOfSource(loop)) await unmountOrDetach(entry.mountpoint, false, teardown);
    await detachLoop(loop);
  }
}

/** What up() needs beyond the state: decided at mount time, not recorded (owner, --fs-options, caching). */
export type MountSettings = Pick<MountTarget, 'owner'> &
  Pick<MountOptions, 'fsOptions' | 'loopDirectIo' | 'partition'>;

function needSettings(settings: MountSettings | null): MountSettings {
  if (!settings) throw new VaultError('INTERNAL', 'a recorded mount cannot be set up again');
  return settings;
}

/**
 * The filesystem attachment of a mount: a loop device (with --partition N, partition N of it), fuse2fs
 * (--user) or the block file alone (--no-filesystem). From a recorded state only down() works; the
 * daemon passes the settings to bring it up.
 */
export function filesystemAttachment(state: MountState, settings: MountSettings | null = null): Attachment {
  if (!state.mountpoint) return new BlockFileOnly(state);
  if (state.user) return new UserDriver(state, state.mountpoint, settings);
  return new LoopFilesystem(state, state.mountpoint, settings);
}

class LoopFilesystem implements Attachment {
  readonly kind: string;
  private loopDevice: string | null;

  constructor(
    private readonly state: MountState,
    private readonly mountpoint: string,
    private readonly settings: MountSettings | null,
  ) {
    const partition = settings ? settings.partition : (state.partition ?? null);
    this.kind = partition === null ? 'loop device' : 'loop device with partitions';
    this.loopDevice = state.loopDevice;
  }

  async up(context: UpContext): Promise<void> {
    const settings = needSettings(this.settings);
    const { partition } = settings;
    // blkid probes the block file itself while losetup attaches it: the same bytes, one step less
    // (with --partition the filesystem is inside, so it is probed on the partition afterwards). A
    // failed probe here is simply repeated on the device.
    const detected =
      partition === null ? detectFilesystem(this.state.blockFile).catch(() => undefined) : undefined;
    const loopDevice = await attachLoop(this.state.blockFile, {
      readOnly: this.state.readOnly,
      directIo: settings.loopDirectIo,
      partScan: partition !== null,
    });
    this.loopDevice = loopDevice;
    await context.record({ loopDevice, ...(partition !== null ? { partition } : {}) });
    context.step('loop');
    context.checkStop();
    let source = loopDevice;
    if (partition !== null) {
      const partitions = await loopPartitions(loopDevice);
      if (!partitions.includes(partition)) {
        throw new VaultError(
          'USAGE',
          partitions.length === 0
            ? `${this.state.file} holds no partition table (no partitions found)`
            : `${this.state.file} has no partition ${partition}; its partitions are ${partitions.join(', ')}`,
          partitions.length === 0
            ? 'mount it without --partition'
            : `choose one of them: --partition ${partitions[0]}`,
        );
      }
      source = `${loopDevice}p${partition}`;
    }
    const fsType = await mountFilesystem(source, this.mountpoint, {
      readOnly: this.state.readOnly,
      owner: settings.owner,
      extra: settings.fsOptions,
      ...(detected ? { detected: await detected } : {}),
    });
    await context.record({ fsType });
    context.step('mount');
    // Requests of exactly the bridge's 1 MiB (not 1280 KiB cut into 1 MiB + 256 KiB), and a read-ahead
    // deep enough to keep several in flight: a cold sequential read is bound by the FUSE round trip's
    // latency otherwise, with only two requests out at a time. A kernel that refuses keeps its defaults.
    // Set after the mount and not waited for: the max_sectors_kb write freezes the queue (15-20 ms
    // here), which would stall the mount's own reads; it is done while `vault mount` returns.
    void tuneLoopQueue(loopDevice, { maxSectorsKb: MAX_REQUEST / 1024, readAheadKb: LOOP_READ_AHEAD_KB });
  }

  present(): boolean {
    return this.loopDevice === null || mountsOfSource(this.loopDevice).length > 0;
  }

  down(teardown: Teardown): Promise<void> {
    return detachLoops(this.state.blockFile, this.loopDevice, teardown);
  }
}

/**
 * --user: no loop device without root; the filesystem's user driver (fuse2fs for ext2/3/4, run as this
 * user) serves it from the block file.
 */
class UserDriver implements Attachment {
  readonly kind = 'user filesystem driver';

  constructor(
    private readonly state: MountState,
    private readonly mountpoint: string,
    private readonly settings: MountSettings | null,
  ) {}

  async up(context: UpContext): Promise<void> {
    const settings = needSettings(this.settings);
    const fsType = await detectFilesystem(this.state.blockFile);
    const driver = fsType === null ? undefined : filesystemRecord(fsType)?.userDriver;
    if (!driver) {
      throw new VaultError(
        'USAGE',
        `vault mount --user cannot mount ${fsType === null ? 'a volume without a recognised filesystem' : `a ${fsType} filesystem`}`,
        `--user mounts ${USER_MOUNTABLE_TYPES.join(', ')}; mount this one as root (sudo vault mount)`,
      );
    }
    const options = [
      this.state.readOnly ? 'ro' : 'rw',
      'fakeroot',
      ...settings.fsOptions,
      ...SAFE_MOUNT_OPTIONS,
    ].join(',');
    await context.record({ user: true });
    const result = await run(driver.tool, [this.state.blockFile, this.mountpoint, '-o', options]);
    if (result.code !== 0 || !isMountpoint(this.mountpoint)) {
      throw new VaultError(
        'IO',
        `${driver.tool} could not mount the filesystem: ${firstLine(result.stderr) || firstLine(result.stdout) || `exit ${result.code}`}`,
        `check it with fsck (as root: vault mount --no-filesystem, then fsck on the block file)`,
      );
    }
    await context.record({ fsType: `${fsType} (${driver.tool})` });
    context.step('fuse2fs');
  }

  present(): boolean {
    return isMountpoint(this.mountpoint);
  }

  async down(teardown: Teardown): Promise<void> {
    if (isMountpoint(this.mountpoint)) await unmountOrDetach(this.mountpoint, true, teardown);
    await detachLoops(this.state.blockFile, null, teardown);
  }
}

/** --no-filesystem: the block file is the user's; refusing, a loop device or program using it is named. */
class BlockFileOnly implements Attachment {
  readonly kind = 'block file';

  constructor(private readonly state: MountState) {}

  async up(): Promise<void> {}

  async down(teardown: Teardown): Promise<void> {
    const { blockFile } = this.state;
    if (teardown.busy === 'refuse') {
      const loops = loopsOfFile(blockFile);
      const holders = await findHolders(blockFile);
      if (loops.length > 0 || holders.length > 0) {
        const users = [...loops, ...holders.map((holder) => `${holder.command} (pid ${holder.pid})`)];
        throw new VaultError(
          'BUSY',
          `the block file ${blockFile} is in use by ${users.join(', ')}`,
          'unmount/detach and close those first, or use --force',
        );
      }
    }
    await detachLoops(blockFile, null, teardown);
  }
}

/**
 * The bottom of every stack: the mount's record (state directory) and its FUSE endpoint. Down removes a
 * FUSE endpoint still mounted (a dead daemon's; lazily, it may be stuck), the mountpoint vault created,
 * and the state directory.
 */
export function mountRecord(state: MountState): Attachment {
  return {
    kind: 'mount record',
    async up() {},
    async down() {
      const fuseDir = fuseDirOf(state.id);
      if (mountTable().some((entry) => entry.mountpoint === fuseDir)) {
        const result = await run('fusermount', ['-u', '-z', fuseDir]);
        if (result.code !== 0) await run('umount', ['--lazy', fuseDir]);
      }
      if (state.createdMountpoint && state.mountpoint && !isMountpoint(state.mountpoint)) {
        await rmdir(state.mountpoint).catch(noop);
      }
      await removeStateDir(state.id);
    },
  };
}

/**
 * A running daemon, seen from `vault dismount`: SIGTERM makes it take its own stack down (flush, FUSE,
 * keys wiped, record removed). With a lazily detached filesystem it serves until the last holder lets
 * go, so then it is not waited for.
 */
export function runningDaemon(state: MountState): Attachment {
  return {
    kind: 'daemon',
    async up() {},
    async down(teardown) {
      if (!daemonAlive(state.pid)) return;
      try {
        process.kill(state.pid, 'SIGTERM');
      } catch {
        return; // it was just exiting by itself
      }
      const stopped = await waitForExit(state.pid, teardown.pendingHolders ? 3_000 : 120_000);
      if (!stopped && !teardown.pendingHolders) {
        throw new VaultError(
          'IO',
          `the daemon (pid ${state.pid}) did not stop`,
          `see its log ${logFileOf(state.id)}; kill it, then run vault dismount again to clean up`,
        );
      }
      if (stopped) teardown.pendingHolders = null;
    },
  };
}

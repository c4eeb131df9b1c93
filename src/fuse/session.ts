// The daemon's mount session: the mount's state record, the stack of what is set up (attachments.ts),
// and stopping exactly once, whoever asks (a signal, a failed step, the filesystem unmounted from
// outside). The process around it (fd 3, signals, exit) is daemon.ts; this part runs in a unit test.
import { isVaultError, VaultError } from '../container/errors.js';
import { type Attachment, teardown } from './attachments.js';
import type { MountState } from './state.js';

export interface SessionIo {
  log(message: string): void;
  /** Writes the state record (state.ts writeState); a unit test keeps it in memory. */
  writeState(state: MountState): Promise<void>;
}

export class MountSession {
  private current: MountState | null = null;
  private readonly stack: Attachment[] = [];
  private stopRequested = false;
  private stopping: Promise<void> | null = null;
  private mounted = false;
  private watcher: NodeJS.Timeout | null = null;
  /** While dismountIfUnused unmounts the filesystem, the watcher must not take that for a plain umount. */
  private dismounting = false;

  constructor(private readonly io: SessionIo) {}

  /** The state as last recorded; null until begin(). */
  get state(): MountState | null {
    return this.current;
  }

  /** True once every step is up (markMounted) and until a stop starts. */
  get isMounted(): boolean {
    return this.mounted && this.stopping === null;
  }

  /** Records the starting state; `record` (attachments.ts mountRecord) is the bottom of the stack. */
  async begin(state: MountState, record: Attachment): Promise<void> {
    this.current = state;
    this.stack.push(record);
    await this.io.writeState(state);
  }

  /** Merges `patch` into the state and writes it. */
  async record(patch: Partial<MountState>): Promise<void> {
    if (!this.current) return;
    this.current = { ...this.current, ...patch };
    await this.io.writeState(this.current);
  }

  checkStop(): void {
    if (this.stopRequested) {
      throw new VaultError(
        'INTERRUPTED',
        'interrupted; the mount was cancelled and undone',
        'run the command again',
      );
    }
  }

  /**
   * Brings an attachment up. It is on the stack before anything else, so a step that fails half-way (a
   * loop device attached, its mount failed) or is interrupted is taken down with the rest.
   */
  async attach(attachment: Attachment, step: (name: string) => void = () => {}): Promise<void> {
    this.stack.push(attachment);
    this.checkStop();
    await attachment.up({ record: (patch) => this.record(patch), checkStop: () => this.checkStop(), step });
  }

  async markMounted(): Promise<void> {
    await this.record({ phase: 'mounted' });
    this.mounted = true;
  }

  /**
   * A signal asked to stop. True when the mount is complete and stop() should run now; while start-up
   * is under way the next step notices (checkStop) and start-up undoes what it did.
   */
  requestStop(): boolean {
    this.stopRequested = true;
    return this.mounted;
  }

  /** Takes every attachment down, last first. Safe to call at any point, and more than once. */
  stop(why: string): Promise<void> {
    this.stopRequested = true;
    if (!this.stopping) this.stopping = this.takeDown(why);
    return this.stopping;
  }

  /**
   * Dismounts as `vault dismount` does (--idle-dismount): the filesystem first, refused while it is in
   * use, then everything else. Resolves to null once stopped, or to why it was refused (BUSY), with
   * everything left mounted as it was.
   */
  async dismountIfUnused(why: string): Promise<string | null> {
    // Being stopped already (a signal, a plain umount): done once that stop is, never earlier.
    if (!this.isMounted) {
      await this.stopping;
      return null;
    }
    // The filesystem (or the block file alone) is the last thing attached.
    const top = this.stack[this.stack.length - 1];
    this.dismounting = true;
    try {
      if (top) await teardown([top], { busy: 'refuse', log: (message) => this.io.log(message) });
    } catch (error) {
      if (isVaultError(error, 'BUSY')) return error.message;
      throw error;
    } finally {
      this.dismounting = false;
    }
    await this.stop(why);
    return null;
  }

  private async takeDown(why: string): Promise<void> {
    this.unwatch();
    if (this.current === null) return;
    this.io.log(`stopping (${why})`);
    await this.record({ phase: 'stopping' }).catch(() => {});
    await teardown(this.stack, { busy: 'lazy', log: (message) => this.io.log(message) });
    this.io.log('stopped; keys wiped');
  }

  /**
   * Checks every `intervalMs` that the filesystem is still mounted. A plain `umount` of the mountpoint
   * (or fusermount -u of a --user mount) leaves the daemon, its keys, the loop device and the block file
   * behind; `onGone` is called once it happened, to stop the session.
   */
  watchFilesystem(intervalMs: number, onGone: () => void): void {
    this.unwatch();
    this.watcher = setInterval(() => {
      if (!this.dismounting && this.filesystemGone()) {
        this.unwatch();
        onGone();
      }
    }, intervalMs);
    this.watcher.unref();
  }

  /** True when the mount is complete and one of its filesystems is no longer mounted. */
  filesystemGone(): boolean {
    if (!this.isMounted) return false;
    return this.stack.some((attachment) => attachment.present !== undefined && !attachment.present());
  }

  private unwatch(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
  }
}

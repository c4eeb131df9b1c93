// `vault dismount` and the clean-up of what a dead daemon left (kill -9, crash): one teardown
// (attachments.ts) over the mount's filesystem and either its running daemon or its remains.
import { checkSystem } from '../host/requirements.js';
import { filesystemAttachment, mountRecord, runningDaemon, teardown } from './attachments.js';
import { daemonAlive, type MountState, readState } from './state.js';

export interface DismountResult {
  state: MountState;
  /** Set when --force detached a busy filesystem: the vault closes once these processes let go. */
  pendingHolders: string | null;
}

/**
 * Unmounts the filesystem (busy: refused naming the processes, or with `force` detached lazily), then
 * stops the daemon, which flushes, unmounts FUSE, wipes its keys and removes its state. When the daemon
 * is (or turns out) dead, its remains are cleaned up instead.
 */
export async function dismountVault(state: MountState, options: { force: boolean }): Promise<DismountResult> {
  // A user's states are in their own run directory (host/paths.ts RUN_DIR): all of them are --user mounts.
  checkSystem([], { user: (state.user ?? false) || process.getuid?.() !== 0 });
  const stack = [
    daemonAlive(state.pid) ? runningDaemon(state) : mountRecord(state),
    filesystemAttachment(state),
  ];
  const { pendingHolders } = await teardown(stack, { busy: options.force ? 'lazy' : 'refuse' });
  // A daemon that died on the way (or before) left its record: clean up after it.
  if (!daemonAlive(state.pid)) await cleanupRemains((await readState(state.id)) ?? state);
  return { state, pendingHolders };
}

/**
 * Removes whatever a dead daemon left: the filesystem mount, loop devices on its block file, the stale
 * FUSE endpoint, the created mountpoint and the state directory. Idempotent.
 */
export async function cleanupRemains(state: MountState): Promise<void> {
  await teardown([mountRecord(state), filesystemAttachment(state)], { busy: 'lazy' });
}

// The mount daemon: one detached process per mounted vault. It receives settings and the secret on fd 3,
// unlocks (the one KDF run), serves the cleartext through the FUSE bridge, attaches the loop device and
// mounts the filesystem; on SIGTERM/SIGINT (or any failure) it undoes all of it in reverse and wipes keys.
import { writeSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../container/block-device.js';
import { isVaultError, VaultError } from '../container/errors.js';
import { ForeignVolume } from '../container/foreign-volume.js';
import { Secret } from '../container/secret.js';
import { Vault } from '../container/vault.js';
import { openVolume } from '../container/volume.js';
import { hardenProcess, keyMemoryLocked } from '../crypto/memory.js';
import { filesystemRecord, USER_MOUNTABLE_TYPES } from '../host/filesystems.js';
import { attachLoop, detachLoop, loopPartitions, loopsOfFile } from '../host/loop.js';
import {
  detectFilesystem,
  isMountpoint,
  mountFilesystem,
  mountsOfSource,
  SAFE_MOUNT_OPTIONS,
  unmountFilesystem,
} from '../host/mounts.js';
import { firstLine, run } from '../host/process.js';
import { type Bridge, mountBridge } from './bridge.js';
import { preloadFuse } from './fuse3.js';
import { openHostFile } from './host-file.js';
import { openPassthroughDevice } from './passthrough-device.js';
import { type DaemonMessage, type DaemonSettings, readSettingsAndSecret } from './protocol.js';
import { fuseDirOf, type MountState, openLogFile, removeStateDir, writeState } from './state.js';

/** The vault's log (state.ts openLogFile), once the settings say which vault; nothing is logged before. */
let logFd: number | null = null;

function log(message: string): void {
  if (logFd === null) return;
  try {
    writeSync(logFd, `${new Date().toISOString()} vault-daemon[${process.pid}]: ${message}\n`);
  } catch {
    // A full /run must not stop the daemon from serving or from wiping its keys.
  }
}

// Before the secret arrives: not dumpable (no core file, no ptrace or /proc/<pid>/mem for processes of
// the same user, which matters for --user daemons) and a core limit of 0. Keys then live in locked
// pages (crypto/memory.ts); the log says when they could not be locked.
const hardening = hardenProcess();

const channel = new Socket({ fd: 3, readable: true, writable: true });
let settings: DaemonSettings | null = null;
let state: MountState | null = null;
let device: BlockDevice | null = null;
let bridge: Bridge | null = null;
let started = false;
let stopRequested = false;
let stopping: Promise<void> | null = null;
const warnings: string[] = [];

function send(message: DaemonMessage): Promise<void> {
  return new Promise((resolve) => {
    if (channel.destroyed || !channel.writable) return resolve();
    channel.write(`${JSON.stringify(message)}\n`, () => resolve());
  });
}

async function saveState(patch: Partial<MountState>): Promise<void> {
  if (!state) return;
  state = { ...state, ...patch };
  await writeState(state);
}

function checkStop(): void {
  if (stopRequested) {
    throw new VaultError(
      'INTERRUPTED',
      'interrupted; the mount was cancelled and undone',
      'run the command again',
    );
  }
}

async function start(): Promise<void> {
  preloadFuse();
  const received = await readSettingsAndSecret(channel);
  settings = received.settings;
  const s = settings;
  logFd = openLogFile(s.id);
  state = {
    version: 1,
    id: s.id,
    file: s.file,
    dev: s.dev,
    ino: s.ino,
    mountpoint: s.noFilesystem ? null : s.mountpoint,
    createdMountpoint: s.createdMountpoint,
    blockFile: `${fuseDirOf(s.id)}/volume`,
    loopDevice: null,
    fsType: null,
    readOnly: s.readOnly,
    pid: process.pid,
    device: s.device,
    phase: 'starting',
    mountedAt: new Date().toISOString(),
    unlockMs: null,
    // --user (with or without a filesystem): dismount must not ask for root.
    ...(s.user ? { user: true } : {}),
  };
  await writeState(state);
  log(`mounting ${s.file}${s.readOnly ? ' read-only' : ''}`);
  if (hardening.dumpable) log('warning: the native addon is not loaded: this daemon stays dumpable');
  const unlockStarted = performance.now();
  if (s.device === 'passthrough') {
    received.secret.fill(0);
    device = await openPassthroughDevice(s.file, { readOnly: s.readOnly });
  } else {
    // The outer secret, then (with --protect-hidden) the hidden one: split into two owned buffers.
    const outerLength = received.secret.length - (s.hiddenSecretLength ?? 0);
    const secret = Secret.fromWire(received.secret.subarray(0, outerLength));
    const hiddenSecret =
      s.hiddenSecretLength > 0 ? Secret.fromWire(received.secret.subarray(outerLength)) : null;
    received.secret.fill(0);
    try {
      const vault = await openVolume(s.file, secret, {
        ...s.volume,
        costLevel: s.costLevel,
        readOnly: s.readOnly,
        preserveTimestamps: s.preserveTimestamps,
        openFile: openHostFile,
        ...(hiddenSecret ? { protectHidden: hiddenSecret } : {}),
      });
      device = vault;
      if (vault.identity.dev !== s.dev || vault.identity.ino !== s.ino) {
        throw new VaultError('BUSY', `${s.file} was replaced while mounting`, 'run the command again');
      }
      if (!keyMemoryLocked())
        log('warning: key memory could not be locked (RLIMIT_MEMLOCK); keys may reach swap');
      if (vault instanceof ForeignVolume) await saveState({ format: vault.format });
      warnings.push(...vault.warnings);
      for (const warning of vault.warnings) log(`warning: ${warning}`);
    } finally {
      secret.wipe();
      hiddenSecret?.wipe();
    }
  }
  const unlockMs = Math.round(performance.now() - unlockStarted);
  const timings = [`unlock ${unlockMs} ms`];
  let stepStarted = performance.now();
  const step = (name: string): void => {
    const now = performance.now();
    timings.push(`${name} ${Math.round(now - stepStarted)} ms`);
    stepStarted = now;
  };
  checkStop();

  const fuseDir = fuseDirOf(s.id);
  await mkdir(fuseDir, { mode: 0o700 });
  bridge = await mountBridge(device, fuseDir, {
    fsname: `vault:${s.id}`,
    onError: (message) => {
      log(message);
      if (
        (bridge?.protectionTripped ||
          ((device instanceof Vault || device instanceof ForeignVolume) && device.protectionTripped)) &&
        state?.hiddenProtection === 'on'
      ) {
        log(
          'hidden volume protection: a write would have landed in the hidden volume; all writes are refused now',
        );
        saveState({ hiddenProtection: 'tripped' }).catch(() => {});
      }
    },
  });
  await saveState({
    blockFile: bridge.blockFile,
    unlockMs,
    ...(s.hiddenSecretLength > 0 ? { hiddenProtection: 'on' as const } : {}),
  });
  step('fuse');
  checkStop();

  if (!s.noFilesystem && s.mountpoint && s.user) {
    // No loop device without root: the filesystem's user driver (fuse2fs for ext2/3/4, run as this
    // user) serves it from the block file.
    const fsType = await detectFilesystem(bridge.blockFile);
    const driver = fsType === null ? undefined : filesystemRecord(fsType)?.userDriver;
    if (!driver) {
      throw new VaultError(
        'USAGE',
        `vault mount --user cannot mount ${fsType === null ? 'a volume without a recognised filesystem' : `a ${fsType} filesystem`}`,
        `--user mounts ${USER_MOUNTABLE_TYPES.join(', ')}; mount this one as root (sudo vault mount)`,
      );
    }
    const options = [s.readOnly ? 'ro' : 'rw', 'fakeroot', ...s.fsOptions, ...SAFE_MOUNT_OPTIONS].join(',');
    await saveState({ user: true });
    const result = await run(driver.tool, [bridge.blockFile, s.mountpoint, '-o', options]);
    if (result.code !== 0 || !isMountpoint(s.mountpoint)) {
      throw new VaultError(
        'IO',
        `${driver.tool} could not mount the filesystem: ${firstLine(result.stderr) || firstLine(result.stdout) || `exit ${result.code}`}`,
        `check it with fsck (as root: vault mount --no-filesystem, then fsck on the block file)`,
      );
    }
    await saveState({ fsType: `${fsType} (${driver.tool})` });
    step('fuse2fs');
  } else if (!s.noFilesystem && s.mountpoint) {
    const partition = s.partition ?? null;
    const loopDevice = await attachLoop(bridge.blockFile, {
      readOnly: s.readOnly,
      directIo: s.loopDirectIo,
      partScan: partition !== null,
    });
    await saveState({ loopDevice, ...(partition !== null ? { partition } : {}) });
    step('loop');
    checkStop();
    let source = loopDevice;
    if (partition !== null) {
      const partitions = await loopPartitions(loopDevice);
      if (!partitions.includes(partition)) {
        throw new VaultError(
          'USAGE',
          partitions.length === 0
            ? `${s.file} holds no partition table (no partitions found)`
            : `${s.file} has no partition ${partition}; its partitions are ${partitions.join(', ')}`,
          partitions.length === 0
            ? 'mount it without --partition'
            : `choose one of them: --partition ${partitions[0]}`,
        );
      }
      source = `${loopDevice}p${partition}`;
    }
    const fsType = await mountFilesystem(source, s.mountpoint, {
      readOnly: s.readOnly,
      owner: s.owner,
      extra: s.fsOptions,
    });
    await saveState({ fsType });
    step('mount');
  }
  await saveState({ phase: 'mounted' });
  started = true;
  log(`mounted: block file ${bridge.blockFile}${state?.loopDevice ? `, loop ${state.loopDevice}` : ''}`);
  log(`timings: ${timings.join(', ')}`);
  await send({ type: 'ready', state: state as MountState, warnings });
  channel.end();
  channel.destroy();
}

/** Undoes every step that happened, in reverse. Safe to call at any point, and more than once. */
function stop(why: string): Promise<void> {
  if (!stopping) stopping = doStop(why);
  return stopping;
}

async function doStop(why: string): Promise<void> {
  log(`stopping (${why})`);
  await saveState({ phase: 'stopping' }).catch(() => {});
  const loopDevice = state?.loopDevice ?? null;
  const blockFile = bridge?.blockFile ?? null;
  if (state?.user && state.mountpoint && isMountpoint(state.mountpoint)) {
    if (!(await unmountFilesystem(state.mountpoint, { fuse: true }))) {
      log(`${state.mountpoint} is busy; detaching it lazily`);
      await unmountFilesystem(state.mountpoint, { fuse: true, lazy: true });
    }
  }
  if (loopDevice) {
    for (const entry of mountsOfSource(loopDevice)) {
      // Normally `vault dismount` already did this; a SIGTERM from elsewhere (shutdown) lands here.
      if (!(await unmountFilesystem(entry.mountpoint))) {
        log(`${entry.mountpoint} is busy; detaching it lazily`);
        await unmountFilesystem(entry.mountpoint, { lazy: true });
      }
    }
  }
  // Every loop device on the block file keeps it busy: ours, or one a failed attach left behind.
  if (blockFile) for (const loop of loopsOfFile(blockFile)) await detachLoop(loop);
  if (bridge) {
    log(
      `requests served: ${describeSizes('read', bridge.requestSizes.read)}; ${describeSizes('write', bridge.requestSizes.write)}; at most ${bridge.maxInFlight} at once`,
    );
    await bridge.idle();
    if (device && !device.readOnly)
      await device.flush().catch((error) => log(`flush failed: ${String(error)}`));
    let reported = false;
    // Busy while a lazily detached filesystem still uses the loop device: keep serving until it is released.
    while (!(await bridge.unmount())) {
      if (!reported) log('the block file is still in use; waiting for it to be released');
      reported = true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  if (device) {
    await device.close().catch((error) => log(`close failed: ${String(error)}`));
    device = null;
  }
  if (settings) {
    if (settings.createdMountpoint && settings.mountpoint && !isMountpoint(settings.mountpoint)) {
      await rmdir(settings.mountpoint).catch(() => {});
    }
    await removeStateDir(settings.id);
  }
  log('stopped; keys wiped');
}

/** "write: 8123 x 128 KiB, 12 x 4 KiB, ..." (the four commonest sizes): shows that big requests arrive. */
function describeSizes(what: string, sizes: Map<number, number>): string {
  const top = [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 4);
  if (top.length === 0) return `${what}: none`;
  return `${what}: ${top.map(([size, count]) => `${count} x ${size % 1024 === 0 ? `${size / 1024} KiB` : `${size} B`}`).join(', ')}`;
}

function onSignal(signal: NodeJS.Signals): void {
  stopRequested = true;
  if (!started) return; // start() notices at its next step and undoes what it did
  stop(signal).then(
    () => process.exit(0),
    (error) => {
      log(`stop failed: ${String(error)}`);
      process.exit(1);
    },
  );
}

process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('SIGHUP', () => {});
process.on('uncaughtException', (error) => {
  log(`internal error: ${error.stack ?? error.message}`);
  stop('internal error').finally(() => process.exit(1));
});

try {
  await start();
} catch (error) {
  // A daemon prestarted by a `vault mount` that then failed or was interrupted: it never had anything.
  if (settings === null) process.exit(0);
  if (!isVaultError(error))
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  else log(`failed: ${error.message}`);
  await stop('mount failed').catch((stopError) => log(`undo failed: ${String(stopError)}`));
  const vaultError = isVaultError(error)
    ? error
    : new VaultError(
        'INTERNAL',
        `the mount daemon failed: ${error instanceof Error ? error.message : String(error)}`,
      );
  await send({
    type: 'error',
    code: vaultError.code,
    message: vaultError.message,
    hint: vaultError.hint ?? null,
    ...(vaultError.reason === undefined
      ? {}
      : { reason: vaultError.reason, details: { ...vaultError.details } }),
  });
  process.exit(1);
}

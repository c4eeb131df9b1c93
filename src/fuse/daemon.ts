// The mount daemon: one detached process per mounted vault. It receives settings and the secret on fd 3,
// unlocks (the one KDF run), serves the cleartext through the FUSE bridge, attaches the loop device and
// mounts the filesystem; on SIGTERM/SIGINT (or any failure) it undoes all of it in reverse and wipes keys.
import { writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BlockDevice } from '../container/block-device.js';
import { isVaultError, VaultError } from '../container/errors.js';
import { Secret } from '../container/secret.js';
import { Vault } from '../container/vault.js';
import { openVolume } from '../container/volume.js';
import { loadArgon2 } from '../crypto/kdf.js';
import { hardenProcess, keyMemoryLocked } from '../crypto/memory.js';
import { type Attachment, filesystemAttachment, mountRecord } from './attachments.js';
import { type Bridge, mountBridge } from './bridge.js';
import { preloadFuse } from './fuse3.js';
import { openHostFile } from './host-file.js';
import { IdleWatch } from './idle.js';
import { openPassthroughDevice } from './passthrough-device.js';
import { type DaemonMessage, type DaemonSettings, readSettingsAndSecret } from './protocol.js';
import { MountSession } from './session.js';
import { fuseDirOf, type MountState, newMountState, openLogFile, writeState } from './state.js';

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
const session = new MountSession({ log, writeState });
/** How often the daemon checks that its filesystem is still mounted (a plain umount stops it). */
const WATCH_INTERVAL_MS = 1000;

function send(message: DaemonMessage): Promise<void> {
  return new Promise((resolve) => {
    if (channel.destroyed || !channel.writable) return resolve();
    channel.write(`${JSON.stringify(message)}\n`, () => resolve());
  });
}

async function start(): Promise<void> {
  // What unlocking needs is loaded before the settings arrive, while the CLI still reads the secret;
  // a foreign volume's code is loaded when the volume is not a vault (container/volume.ts).
  preloadFuse();
  await loadArgon2();
  const received = await readSettingsAndSecret(channel);
  const s = received.settings;
  logFd = openLogFile(s.id, s.file);
  const warnings: string[] = [];
  const initial = newMountState(s, process.pid);
  await session.begin(initial, mountRecord(initial));
  log(`mounting ${s.file}${s.readOnly ? ' read-only' : ''}`);
  if (hardening.dumpable) log('warning: the native addon is not loaded: this daemon stays dumpable');
  const unlockStarted = performance.now();
  let device: BlockDevice;
  if (s.device === 'passthrough') {
    received.secret.fill(0);
    device = await openPassthroughDevice(s.file, { readOnly: s.readOnly });
    await session.attach(deviceAttachment(device));
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
      await session.attach(deviceAttachment(vault));
      if (vault.identity.dev !== s.dev || vault.identity.ino !== s.ino) {
        throw new VaultError('BUSY', `${s.file} was replaced while mounting`, 'run the command again');
      }
      if (!keyMemoryLocked())
        log('warning: key memory could not be locked (RLIMIT_MEMLOCK); keys may reach swap');
      if (!(vault instanceof Vault)) await session.record({ format: vault.format });
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

  const bridge = bridgeAttachment(device, s, unlockMs);
  await session.attach(bridge.attachment, step);
  const filesystem = filesystemAttachment(session.state as MountState, s);
  await session.attach(filesystem, step);
  await session.markMounted();
  const state = session.state as MountState;
  log(`mounted: block file ${state.blockFile}${state.loopDevice ? `, loop ${state.loopDevice}` : ''}`);
  log(`timings: ${timings.join(', ')}`);
  await send({ type: 'ready', state, warnings });
  channel.end();
  channel.destroy();
  session.watchFilesystem(WATCH_INTERVAL_MS, () => {
    log('the filesystem was unmounted outside vault (umount)');
    stopAndExit('filesystem unmounted', 0);
  });
  if (s.idleDismountMs !== null) watchIdle(s.idleDismountMs, bridge.activity);
}

/** --idle-dismount: after that long without I/O, dismount as `vault dismount` would (refused while busy). */
function watchIdle(idleMs: number, activity: () => { requests: number; inFlight: number }): void {
  log(`idle dismount after ${Math.round(idleMs / 1000)} s without I/O`);
  const watch = new IdleWatch({
    idleMs,
    activity,
    log,
    dismount: async () => {
      const refused = await session.dismountIfUnused('idle');
      // Dismounted: this daemon's work is done, as after a dismount's SIGTERM (once the watch has logged).
      if (refused === null) setTimeout(() => process.exit(0), 0);
      return refused;
    },
  });
  watch.start();
}

/** The unlocked volume: closed (keys wiped) last, after the bridge has flushed it. */
function deviceAttachment(device: BlockDevice): Attachment {
  return {
    kind: 'device',
    async up() {},
    async down() {
      await device.close().catch((error) => log(`close failed: ${String(error)}`));
    },
  };
}

/** The FUSE bridge serving the block file `volume` in the state directory's fuse/, and its activity. */
function bridgeAttachment(
  device: BlockDevice,
  s: DaemonSettings,
  unlockMs: number,
): { attachment: Attachment; activity: () => { requests: number; inFlight: number } } {
  let bridge: Bridge | null = null;
  let last = { requests: 0, inFlight: 0 };
  const activity = () => {
    if (bridge) last = bridge.activity();
    return last;
  };
  const attachment: Attachment = {
    kind: 'FUSE bridge',
    async up(context) {
      const fuseDir = fuseDirOf(s.id);
      await mkdir(fuseDir, { mode: 0o700 });
      bridge = await mountBridge(device, fuseDir, {
        fsname: `vault:${s.id}`,
        onError: (message) => {
          log(message);
          if (
            (bridge?.protectionTripped ||
              ('protectionTripped' in device && device.protectionTripped === true)) &&
            session.state?.hiddenProtection === 'on'
          ) {
            log(
              'hidden volume protection: a write would have landed in the hidden volume; all writes are refused now',
            );
            session.record({ hiddenProtection: 'tripped' }).catch(() => {});
          }
        },
      });
      log(
        bridge.dataPath === 'native'
          ? 'data path: C threads (native/fuse3.c)'
          : 'data path: JavaScript (each request through the event loop)',
      );
      await context.record({
        blockFile: bridge.blockFile,
        unlockMs,
        ...(s.hiddenSecretLength > 0 ? { hiddenProtection: 'on' as const } : {}),
      });
      context.step('fuse');
    },
    async down() {
      if (!bridge) return;
      log(
        `requests served: ${describeSizes('read', bridge.requestSizes.read)}; ${describeSizes('write', bridge.requestSizes.write)}; at most ${bridge.maxInFlight} at once`,
      );
      await bridge.idle();
      if (!device.readOnly) await device.flush().catch((error) => log(`flush failed: ${String(error)}`));
      let reported = false;
      // Busy while a lazily detached filesystem still uses the loop device: keep serving until it is released.
      while (!(await bridge.unmount())) {
        if (!reported) log('the block file is still in use; waiting for it to be released');
        reported = true;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
  };
  return { attachment, activity };
}

/** "write: 8123 x 128 KiB, 12 x 4 KiB, ..." (the four commonest sizes): shows that big requests arrive. */
function describeSizes(what: string, sizes: Map<number, number>): string {
  const top = [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 4);
  if (top.length === 0) return `${what}: none`;
  return `${what}: ${top.map(([size, count]) => `${count} x ${size % 1024 === 0 ? `${size / 1024} KiB` : `${size} B`}`).join(', ')}`;
}

function stopAndExit(why: string, code: number): void {
  session.stop(why).then(
    () => process.exit(code),
    (error) => {
      log(`stop failed: ${String(error)}`);
      process.exit(1);
    },
  );
}

function onSignal(signal: NodeJS.Signals): void {
  // During start-up, start() notices at its next step and undoes what it did.
  if (session.requestStop()) stopAndExit(signal, 0);
}

process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('SIGHUP', () => {});
process.on('uncaughtException', (error) => {
  log(`internal error: ${error.stack ?? error.message}`);
  session.stop('internal error').finally(() => process.exit(1));
});

try {
  await start();
} catch (error) {
  // A daemon prestarted by a `vault mount` that then failed or was interrupted: it never had anything.
  if (session.state === null) process.exit(0);
  if (!isVaultError(error))
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  else log(`failed: ${error.message}`);
  await session.stop('mount failed').catch((stopError) => log(`undo failed: ${String(stopError)}`));
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

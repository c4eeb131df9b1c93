// Starting the mount daemon (daemon.js): a detached process whose channel to us is fd 3. `vault mount`
// starts it before it even loads the CLI (bin/vault, which hands it over; src/cli/main.ts when run
// otherwise), so the daemon's node start-up and module loading run on the other core while the CLI
// does its own: together that was most of a mount.
import type { Socket } from 'node:net';
import { VaultError } from '../container/errors.js';
import { daemonScript, spawnNodeScript } from '../host/launch.js';
import { type ChildProcess, isChildProcess } from '../host/process.js';

let waiting: ChildProcess | null = null;

/**
 * Starts a daemon that waits for its settings. Until takeDaemon hands it out it keeps nothing alive,
 * and when this process exits without having used it, it is killed: it holds no key and no mount yet.
 * (Killed with us by SIGKILL instead, it reads end-of-file on its channel and exits by itself.)
 */
export function prestartDaemon(): void {
  if (waiting) return;
  const child = handedOver() ?? spawnDaemon();
  child.unref();
  (child.stdio[3] as Socket | null)?.unref();
  process.once('exit', () => {
    if (waiting === child) child.kill('SIGKILL');
  });
  waiting = child;
}

/** bin/vault starts the daemon before it loads the CLI, and leaves it here (once). */
const HANDED_OVER = Symbol.for('vault.prestartedDaemon');

function handedOver(): ChildProcess | null {
  const slot = globalThis as { [HANDED_OVER]?: unknown };
  const child = slot[HANDED_OVER];
  delete slot[HANDED_OVER];
  return isChildProcess(child) ? child : null;
}

/** The prestarted daemon if it is still alive, else a new one. The caller owns it from now on. */
export function takeDaemon(): ChildProcess {
  const early = waiting;
  waiting = null;
  if (early && started(early) && early.exitCode === null && early.signalCode === null) {
    early.ref();
    channelOf(early).ref();
    return early;
  }
  const child = spawnDaemon();
  if (!started(child)) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      `cannot start the mount daemon (${child.spawnargs.join(' ')})`,
      'check that node and /dev/null are usable here (in a container: a complete /dev)',
    );
  }
  return child;
}

/** Spawning failed (no pid), e.g. without /dev/null; the error event that follows is ignored. */
function started(child: ChildProcess): boolean {
  return child.pid !== undefined;
}

/** fd 3 of the daemon: settings and secret go down it, its answer comes back up. */
export function channelOf(child: ChildProcess): Socket {
  return child.stdio[3] as Socket;
}

function spawnDaemon(): ChildProcess {
  // No stdout or stderr: the daemon outlives us and writes its own log (state.ts openLogFile).
  return spawnNodeScript(daemonScript());
}

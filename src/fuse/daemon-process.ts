// Starting the mount daemon (daemon.js): a detached process whose channel to us is fd 3. `vault mount`
// starts it before it even parses its command line (src/cli/main.ts), so the daemon's node start-up and
// module loading run on the other core while the CLI does its own: together that was most of a mount.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

let waiting: ChildProcess | null = null;

/**
 * Starts a daemon that waits for its settings. Until takeDaemon hands it out it keeps nothing alive,
 * and when this process exits without having used it, it is killed: it holds no key and no mount yet.
 * (Killed with us by SIGKILL instead, it reads end-of-file on its channel and exits by itself.)
 */
export function prestartDaemon(): void {
  if (waiting) return;
  const child = spawnDaemon();
  child.unref();
  channelOf(child).unref();
  process.once('exit', () => {
    if (waiting === child) child.kill('SIGKILL');
  });
  waiting = child;
}

/** The prestarted daemon if it is still alive, else a new one. The caller owns it from now on. */
export function takeDaemon(): ChildProcess {
  const child = waiting;
  waiting = null;
  if (child && child.exitCode === null && child.signalCode === null) {
    child.ref();
    channelOf(child).ref();
    return child;
  }
  return spawnDaemon();
}

/** fd 3 of the daemon: settings and secret go down it, its answer comes back up. */
export function channelOf(child: ChildProcess): Socket {
  return child.stdio[3] as Socket;
}

function spawnDaemon(): ChildProcess {
  const daemonPath = fileURLToPath(new URL('./daemon.js', import.meta.url));
  // No stdout or stderr: the daemon outlives us and writes its own log (state.ts openLogFile).
  return spawn(process.execPath, [daemonPath], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
}

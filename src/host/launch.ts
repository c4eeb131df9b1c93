// What bin/vault does before it loads the CLI: tell a `vault mount` and start its mount daemon. A
// module of its own, importing nothing of ours, so that bin/vault loads it unbundled (dist/host/
// launch.js, tsc's output) in a millisecond; src/cli/main.ts and src/fuse/daemon-process.ts use the
// same functions (bundled), so the launcher and the CLI cannot disagree on either.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `vault [global options] mount ...`, not asking for help. */
export function isMountCommand(args: readonly string[]): boolean {
  const command = args.find((arg) => !arg.startsWith('-'));
  return command === 'mount' && !args.includes('--help') && !args.includes('-h');
}

/**
 * The mount daemon's script, dist/fuse/daemon.js: found from this module (dist/host/launch.js) or from
 * the bundle it is part of (dist/cli/main.js), both one level below dist/.
 */
export function daemonScript(): string {
  return fileURLToPath(new URL('../fuse/daemon.js', import.meta.url));
}

/**
 * Starts `node script` detached (its own session, outliving us) with stdin/stdout/stderr ignored and
 * a pipe as fd 3: the mount daemon. Spawn failures show as a missing pid, never as a thrown error.
 */
export function spawnNodeScript(script: string): ChildProcess {
  // Node 20 reads NODE_EXTRA_CA_CERTS at start-up, whether TLS is used or not (about 80 ms of CPU for
  // Debian's bundle here, before any of our code); the daemon makes no TLS connection, so leave it out.
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  const child = spawn(process.execPath, [script], {
    detached: true,
    env,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  child.on('error', () => {});
  return child;
}

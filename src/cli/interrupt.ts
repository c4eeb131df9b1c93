// Ctrl-C and SIGTERM while a command works. A command that can undo its work (remove a partial file,
// unmount) asks for `interruptSignal()` and watches it; from then on the first signal aborts it so it
// cleans up, and main.ts exits 130. A second signal exits at once, without cleanup. Commands that never
// ask keep Node's default: the signal ends the process immediately.
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VaultError } from '../container/errors.js';

let controller: AbortController | null = null;
let signalsSeen = 0;
/** Files this run builds under a temporary name next to them (create, import, export). */
const buildTargets = new Set<string>();

function onSignal(signal: NodeJS.Signals): void {
  signalsSeen += 1;
  if (signalsSeen > 1) {
    process.stderr.write(`\nvault: error: ${signal} again; exiting without cleanup\n`);
    const left = temporariesLeft();
    if (left.length > 0) {
      process.stderr.write(
        `vault: hint: left behind: ${left.join(', ')} (an incomplete file; remove it with rm, ` +
          'or the next run for the same file removes it)\n',
      );
    }
    process.exit(130);
  }
  // Start a fresh line: the terminal has just echoed ^C after a progress bar or prompt.
  if (process.stderr.isTTY) process.stderr.write('\n');
  controller?.abort(interruptedError());
}

export function interruptedError(): VaultError {
  return new VaultError(
    'INTERRUPTED',
    'interrupted; the operation was cancelled and undone',
    'run the command again to retry',
  );
}

/**
 * The AbortSignal of this run: aborted (reason: VaultError INTERRUPTED) on the first SIGINT or SIGTERM.
 * The first call installs the handlers, so call it before starting work that must be undone.
 */
export function interruptSignal(): AbortSignal {
  if (!controller) {
    controller = new AbortController();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return controller.signal;
}

/**
 * `target` is being built under a temporary name next to it (src/container/create.ts temporaryPath):
 * a second Ctrl-C, which exits without cleanup, names what it leaves.
 */
export function buildingFile(target: string): void {
  buildTargets.add(target);
}

/** This process's temporary files next to the targets it builds, as they are on disk now. */
export function temporariesLeft(): string[] {
  const left: string[] = [];
  for (const target of buildTargets) {
    const prefix = `.${basename(target)}.vault-tmp-${process.pid}-`;
    try {
      for (const name of readdirSync(dirname(target))) {
        if (name.startsWith(prefix)) left.push(join(dirname(target), name));
      }
    } catch {}
  }
  return left;
}

/** True once SIGINT/SIGTERM arrived while handlers were installed. */
export function wasInterrupted(): boolean {
  return signalsSeen > 0;
}

/** Throws VaultError INTERRUPTED if an interrupt arrived; for loops between steps. */
export function throwIfInterrupted(): void {
  if (signalsSeen > 0) throw interruptedError();
}

/** Removes the handlers (main.ts, when the command is over): later signals get Node's default again. */
export function releaseInterrupts(): void {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  controller = null;
}

/** For tests in one process. */
export function resetInterruptsForTests(): void {
  releaseInterrupts();
  signalsSeen = 0;
  buildTargets.clear();
}

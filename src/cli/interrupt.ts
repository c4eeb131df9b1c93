// Ctrl-C and SIGTERM while a command works. A command that can undo its work (remove a partial file,
// unmount) asks for `interruptSignal()` and watches it; from then on the first signal aborts it so it
// cleans up, and main.ts exits 130. A second signal exits at once, without cleanup. Commands that never
// ask keep Node's default: the signal ends the process immediately.
import { VaultError } from '../container/errors.js';

let controller: AbortController | null = null;
let signalsSeen = 0;

function onSignal(signal: NodeJS.Signals): void {
  signalsSeen += 1;
  if (signalsSeen > 1) {
    process.stderr.write(`\nvault: error: ${signal} again; exiting without cleanup\n`);
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
}

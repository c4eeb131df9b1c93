// How failures reach the user: one `vault: error:` line, one `vault: hint:` line, a stable exit code.
// Stack traces only with VAULT_DEBUG=1. Messages never contain secrets: VaultError texts are written
// by us, and unknown errors are reduced to their message.
import { isVaultError, VaultError, type VaultErrorCode } from '../container/errors.js';
import { EXIT_CODES } from './exit-codes.js';
import { cliWarning, cliWords } from './hints.js';

/**
 * Failures a command has already reported one by one (vault mount --tab): only the exit code is left
 * to give, that of the first.
 */
export class AlreadyReported extends Error {
  constructor(readonly exitCode: number) {
    super(`failed with exit code ${exitCode} (reported above)`);
  }
}

/**
 * Prints the error and its hint; returns its exit code. `prefix` goes in front of the message (which
 * of several things failed).
 */
export function reportError(
  error: unknown,
  options: { alreadyPrinted?: boolean; prefix?: string } = {},
): number {
  if (error instanceof AlreadyReported) return error.exitCode;
  const debug = process.env.VAULT_DEBUG === '1';
  const prefix = options.prefix ?? '';
  const known = isVaultError(error) ? error : fromSystemError(error);
  if (known) {
    const { message, hint } = cliWords(known);
    if (!options.alreadyPrinted) process.stderr.write(`vault: error: ${prefix}${message}\n`);
    if (hint) process.stderr.write(`vault: hint: ${hint}\n`);
    if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return EXIT_CODES[known.code];
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`vault: error: ${prefix}internal error: ${message}\n`);
  process.stderr.write('vault: hint: this is a bug; run again with VAULT_DEBUG=1 and report the output\n');
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return EXIT_CODES.INTERNAL;
}

/** Something worth knowing that is not a problem ("already mounted; skipped"). */
export function note(message: string): void {
  process.stderr.write(`vault: note: ${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`vault: warning: ${cliWarning(message)}\n`);
}

// A system call failure that reached here unwrapped is still the user's situation (a full disk, a
// missing file, no permission), not a bug: give it its exit code and a hint rather than "internal error".
const SYSTEM_ERRORS: Readonly<Record<string, { code: VaultErrorCode; hint: string }>> = {
  ENOSPC: { code: 'IO', hint: 'free space on the disk that holds the file, then run the command again' },
  EDQUOT: { code: 'IO', hint: 'your disk quota is full; free space, then run the command again' },
  EIO: { code: 'IO', hint: 'the disk reported a read/write error; check `dmesg` and the disk' },
  EROFS: { code: 'IO', hint: 'the filesystem is mounted read-only; choose a writable place' },
  EACCES: { code: 'IO', hint: 'check the permissions of the path; mount, dismount and formatting need root' },
  EPERM: { code: 'NEEDS_SYSTEM', hint: 'this needs root rights; run the command with sudo' },
  ENOENT: { code: 'NOT_FOUND', hint: 'check the path' },
  ENOTDIR: { code: 'NOT_FOUND', hint: 'a part of the path is not a directory; check the path' },
  EISDIR: { code: 'USAGE', hint: 'name a file, not a directory' },
  EEXIST: { code: 'EXISTS', hint: 'choose another name, or remove the existing file first' },
  EBUSY: { code: 'BUSY', hint: 'something is using it; close it (see `fuser -vm <path>`) and try again' },
  EMFILE: { code: 'IO', hint: 'too many open files; raise the limit (ulimit -n) or close other programs' },
};

function fromSystemError(error: unknown): VaultError | null {
  if (!(error instanceof Error)) return null;
  const errno = (error as NodeJS.ErrnoException).code;
  const known = errno ? SYSTEM_ERRORS[errno] : undefined;
  if (!known) return null;
  // Node's text is "ENOSPC: no space left on device, write" (plus the path when it has one).
  const message = error.message.replace(/^[A-Z]+: /, '');
  return new VaultError(known.code, message, known.hint, { cause: error });
}

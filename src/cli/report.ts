// How failures reach the user: one `vault: error:` line, one `vault: hint:` line, a stable exit code.
// Stack traces only with VAULT_DEBUG=1. Messages never contain secrets: VaultError texts are written
// by us, and unknown errors are reduced to their message.
import { isVaultError } from '../container/errors.js';
import { EXIT_CODES } from './exit-codes.js';

export function reportError(error: unknown, options: { alreadyPrinted?: boolean } = {}): number {
  const debug = process.env.VAULT_DEBUG === '1';
  if (isVaultError(error)) {
    if (!options.alreadyPrinted) process.stderr.write(`vault: error: ${error.message}\n`);
    if (error.hint) process.stderr.write(`vault: hint: ${error.hint}\n`);
    if (debug && error.stack) process.stderr.write(`${error.stack}\n`);
    return EXIT_CODES[error.code];
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`vault: error: internal error: ${message}\n`);
  process.stderr.write('vault: hint: this is a bug; run again with VAULT_DEBUG=1 and report the output\n');
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return EXIT_CODES.INTERNAL;
}

export function warn(message: string): void {
  process.stderr.write(`vault: warning: ${message}\n`);
}

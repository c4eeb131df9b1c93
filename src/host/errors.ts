// The one error type every layer throws for conditions a user can cause or fix.
// Each code maps to one exit code (src/cli/exit-codes.ts) and is documented in docs/CLI.md.

export type VaultErrorCode =
  | 'USAGE' // bad argument, option or size
  | 'CANNOT_UNLOCK' // wrong password/keyfile/cost level, or not a vault at all (deliberately indistinguishable)
  | 'NOT_FOUND' // a named file, keyfile, mountpoint or mounted vault does not exist
  | 'BUSY' // already mounted, mountpoint in use, filesystem busy
  | 'NEEDS_SYSTEM' // needs root, /dev/fuse or a system tool (mkfs, losetup, ...)
  | 'MISSING_SECRET' // --non-interactive (or no TTY) and no secret was supplied
  | 'EXISTS' // refusing to overwrite an existing file
  | 'IO' // host I/O failed: disk full, read/write error, truncated or damaged file
  | 'INTERRUPTED' // Ctrl-C / SIGTERM while working; the operation was undone
  | 'INTERNAL'; // a bug: please report

export class VaultError extends Error {
  override readonly name = 'VaultError';
  readonly code: VaultErrorCode;
  readonly hint: string | undefined;

  constructor(code: VaultErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.hint = hint;
  }
}

export function isVaultError(error: unknown, code?: VaultErrorCode): error is VaultError {
  return error instanceof VaultError && (code === undefined || error.code === code);
}

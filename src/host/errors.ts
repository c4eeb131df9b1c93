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

/** Values an error's reason is about (a path, a size), for whoever words the hint. */
export type ErrorDetails = Readonly<Record<string, string | number>>;

export interface VaultErrorOptions {
  cause?: unknown;
  /**
   * What exactly went wrong, as a stable kebab-case name (`last-keyslot`, `hidden-too-large`). The
   * library words its messages and hints without naming any command or flag; the CLI (src/cli/hints.ts)
   * turns a reason into its own advice ("add another secret first with `vault key add`").
   */
  reason?: string;
  details?: ErrorDetails;
}

export class VaultError extends Error {
  override readonly name = 'VaultError';
  readonly code: VaultErrorCode;
  readonly hint: string | undefined;
  readonly reason: string | undefined;
  readonly details: ErrorDetails;

  constructor(code: VaultErrorCode, message: string, hint?: string, options: VaultErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = hint;
    this.reason = options.reason;
    this.details = options.details ?? {};
  }
}

export function isVaultError(error: unknown, code?: VaultErrorCode): error is VaultError {
  return error instanceof VaultError && (code === undefined || error.code === code);
}

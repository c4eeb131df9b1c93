// The one table from error codes to process exit codes. docs/CLI.md repeats it; a test checks both agree.
import type { VaultErrorCode } from '../container/errors.js';

export const EXIT_CODES: Readonly<Record<VaultErrorCode | 'OK', number>> = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  CANNOT_UNLOCK: 3,
  NOT_FOUND: 4,
  BUSY: 5,
  NEEDS_SYSTEM: 6,
  MISSING_SECRET: 7,
  EXISTS: 8,
  IO: 9,
  INTERRUPTED: 130,
};

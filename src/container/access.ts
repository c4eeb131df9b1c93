// The two checks every volume (vault or foreign) makes before touching sectors: the byte range is
// inside the volume, and with --protect-hidden no write reaches the hidden volume. Shared so that both
// data paths refuse exactly the same things.
import { VaultError } from './errors.js';

/** Throws a RangeError for an access outside [0, size). */
export function checkAccessRange(length: number, offset: number, size: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > size) {
    throw new RangeError(`access outside the volume: offset ${offset}, length ${length}, size ${size}`);
  }
}

/**
 * --protect-hidden: the first write that would land in `range` trips the protection (a warning is
 * added once), and from then on every write is refused: the outer volume is read-only until dismounted.
 */
export class HiddenProtection {
  #tripped = false;

  constructor(
    private readonly range: { start: number; end: number } | undefined,
    private readonly warnings: string[],
  ) {}

  /** True once a write aimed at the hidden volume was refused. */
  get tripped(): boolean {
    return this.#tripped;
  }

  checkWrite(length: number, offset: number): void {
    const range = this.range;
    if (!range) return;
    if (!this.#tripped && offset < range.end && range.start < offset + length) {
      this.#tripped = true;
      this.warnings.push(
        'a write to the outer volume would have damaged the hidden volume; the outer volume is now read-only',
      );
    }
    if (this.#tripped) {
      throw new VaultError(
        'IO',
        'write refused to protect the hidden volume; the outer volume is read-only until dismounted',
        'copy what you need from the outer volume, dismount it, and keep less data on it',
      );
    }
  }
}

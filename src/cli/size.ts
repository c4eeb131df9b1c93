// Sizes as users type them for `vault create` and friends: bytes, or binary units as dd and VeraCrypt
// use them (K = 1024). Decimals are fine ("1.5T") as long as the result is a whole number of bytes.
import { VaultError } from '../container/errors.js';

const UNIT_SHIFT: Readonly<Record<string, bigint>> = { '': 0n, K: 10n, M: 20n, G: 30n, T: 40n };

// digits, optional fraction, then either a unit letter with optional "B"/"iB", or a bare "B".
const SIZE_PATTERN = /^(\d+)(?:\.(\d+))?(?:([KMGT])(?:i?B)?|B)?$/i;

const SIZE_HINT =
  'write a size like 64M, 512M, 2G, 1.5T, 4096K or 1048576 (bytes); K, M, G, T are powers of 1024';

/** Parses "64M", "1.5T", "2GiB", "1048576" into bytes. Throws VaultError USAGE for anything else. */
export function parseSize(text: string): number {
  const trimmed = text.trim();
  const match = SIZE_PATTERN.exec(trimmed);
  if (!match) throw new VaultError('USAGE', `not a size: "${text}"`, SIZE_HINT);
  const [, whole = '', fraction = '', unit = ''] = match;
  const scale = 10n ** BigInt(fraction.length);
  const scaledBytes = BigInt(whole + fraction) << (UNIT_SHIFT[unit.toUpperCase()] ?? 0n);
  if (scaledBytes % scale !== 0n) {
    throw new VaultError('USAGE', `size "${text}" is not a whole number of bytes`, SIZE_HINT);
  }
  const bytes = scaledBytes / scale;
  if (bytes === 0n) throw new VaultError('USAGE', 'size must be greater than zero', SIZE_HINT);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new VaultError('USAGE', `size "${text}" is too large`, SIZE_HINT);
  }
  return Number(bytes);
}

/** "1.5 GiB": for messages and tables (binary units, at most one decimal). */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  const text = value >= 100 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1);
  return `${text.replace(/\.0$/, '')} ${units[unit]}`;
}

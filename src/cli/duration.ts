// Durations as users type them for --idle-dismount and the vaulttab's idle-dismount=: whole numbers of
// seconds, minutes, hours or days, one or more in a row from the largest unit down ("90s", "10m", "1h30m").
import { VaultError } from '../container/errors.js';

const UNIT_MS: Readonly<Record<string, number>> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };
const ORDER = ['d', 'h', 'm', 's'];

/** The shortest and the longest duration accepted. */
export const MIN_DURATION_MS = 1000;
export const MAX_DURATION_MS = 30 * 86_400_000;

export const DURATION_HINT = 'write a duration like 30s, 10m, 1h or 1h30m (s, m, h, d; from 1s to 30d)';

/** "30s", "10m", "1h30m", "2d" in milliseconds; `what` names the option in the error. Throws USAGE. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d{1,7})([dhms])/g)];
  const joined = parts.map((part) => part[0]).join('');
  const units = parts.map((part) => part[2] ?? '');
  const ordered = units.every(
    (unit, i) => i === 0 || ORDER.indexOf(unit) > ORDER.indexOf(units[i - 1] ?? ''),
  );
  if (trimmed === '' || joined !== trimmed || !ordered) {
    throw new VaultError('USAGE', `${what}: not a duration: "${text}"`, DURATION_HINT);
  }
  const ms = parts.reduce((sum, part) => sum + Number(part[1]) * (UNIT_MS[part[2] ?? ''] ?? 0), 0);
  if (ms < MIN_DURATION_MS || ms > MAX_DURATION_MS) {
    throw new VaultError(
      'USAGE',
      `${what}: "${text}" is ${ms < MIN_DURATION_MS ? 'too short' : 'too long'}`,
      DURATION_HINT,
    );
  }
  return ms;
}

/** 90000 -> "1m30s": for `vault list`, `info` and messages. */
export function formatDuration(ms: number): string {
  let left = Math.round(ms / 1000);
  if (left === 0) return '0s';
  let text = '';
  for (const unit of ORDER) {
    const size = (UNIT_MS[unit] ?? 1000) / 1000;
    if (left >= size) {
      text += `${Math.floor(left / size)}${unit}`;
      left %= size;
    }
  }
  return text;
}

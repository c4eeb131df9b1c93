// Progress lines for long operations (create fill, import, benchmark): on stderr, only when stderr is a
// terminal, redrawn in place at most ~10 times a second with percent, rate and time left. Silent when
// piped or redirected, so logs and scripts never see control characters.
import { formatSize } from './size.js';

export interface Progress {
  /** `totalBytes` replaces the total given at creation (e.g. when the work turns out smaller). */
  update(doneBytes: number, totalBytes?: number): void;
  /** Draws the final state and ends the line. Safe to call more than once, and after an error. */
  done(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream | { isTTY?: boolean; columns?: number; write(text: string): unknown };
  /** 'bytes' shows MiB/s; 'items' shows "3/7" (e.g. benchmark steps). */
  unit?: 'bytes' | 'items';
  /** Milliseconds clock, replaceable in tests. */
  now?: () => number;
}

const REDRAW_INTERVAL_MS = 100;

export function createProgress(label: string, totalBytes: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY) return { update() {}, done() {} };
  const now = options.now ?? (() => performance.now());
  const unit = options.unit ?? 'bytes';
  const started = now();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let current = 0;
  let finished = false;

  const draw = (final: boolean): void => {
    const elapsedSeconds = Math.max((now() - started) / 1000, 1e-6);
    const fraction = totalBytes > 0 ? Math.min(current / totalBytes, 1) : 1;
    const parts = [label, `${(fraction * 100).toFixed(0).padStart(3)}%`];
    if (unit === 'bytes') {
      const rate = current / elapsedSeconds;
      parts.push(`${formatSize(current)} of ${formatSize(totalBytes)}`);
      parts.push(`${(rate / 1048576).toFixed(rate >= 10 * 1048576 ? 0 : 1)} MiB/s`);
      if (final) parts.push(`in ${formatDuration(elapsedSeconds)}`);
      else if (rate > 0 && elapsedSeconds >= 0.5) {
        parts.push(`${formatDuration((totalBytes - current) / rate)} left`);
      }
    } else {
      parts.push(`${current}/${totalBytes}`);
      if (final) parts.push(`in ${formatDuration(elapsedSeconds)}`);
    }
    // A pty nobody sized reports 0 columns.
    const width = Math.max((stream.columns || 80) - 1, 20);
    const line = parts.join('  ').slice(0, width);
    // \r back to column 0, \x1b[K clears whatever a longer previous line left.
    stream.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
  };

  return {
    update(doneBytes: number, newTotal?: number): void {
      if (finished) return;
      if (newTotal !== undefined && newTotal >= 0) totalBytes = newTotal;
      current = Math.max(0, Math.min(doneBytes, totalBytes));
      const time = now();
      if (time - lastDraw < REDRAW_INTERVAL_MS) return;
      lastDraw = time;
      draw(false);
    },
    done(): void {
      if (finished) return;
      finished = true;
      draw(true);
    },
  };
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(seconds: number): string {
  const total = Number.isFinite(seconds) ? Math.max(0, Math.round(seconds)) : 0;
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${secs}` : `${minutes}:${secs}`;
}

// Progress lines: drawn on a terminal (percent, rate, time left), never when stderr is piped.
// A fake clock drives the redraw limit, so nothing here depends on real time.
import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration } from '../../src/cli/progress.js';

const MiB = 1048576;

/** The last line drawn, with the clear-to-end-of-line sequence spelled out. */
function last(writes: string[]): string {
  return (writes.at(-1) ?? '').replace('\u001b[K', '<clear>');
}

function fakeTerminal(isTTY: boolean, columns = 100) {
  const writes: string[] = [];
  return { stream: { isTTY, columns, write: (text: string) => writes.push(text) }, writes };
}

describe('createProgress', () => {
  it('writes nothing when stderr is not a terminal', () => {
    const { stream, writes } = fakeTerminal(false);
    const progress = createProgress('Filling', 100 * MiB, { stream });
    progress.update(50 * MiB);
    progress.done();
    expect(writes).toEqual([]);
  });

  it('shows percent, MiB/s and time left, redrawn in place', () => {
    const { stream, writes } = fakeTerminal(true);
    let now = 0;
    const progress = createProgress('Filling', 100 * MiB, { stream, now: () => now });
    now = 1000;
    progress.update(25 * MiB);
    expect(last(writes)).toMatch(/^\rFilling\s+25%.*25 MiB of 100 MiB {2}25 MiB\/s {2}0:03 left<clear>$/);
    now = 2000;
    progress.done();
    expect(last(writes)).toMatch(/in 0:02<clear>\n$/);
    expect(writes.at(-1)).not.toMatch(/100%/); // done() draws where it stopped: no false 100%
  });

  it('redraws at most every 100 ms of the clock', () => {
    const { stream, writes } = fakeTerminal(true);
    let now = 0;
    const progress = createProgress('Filling', 1000, { stream, now: () => now });
    for (let done = 1; done <= 100; done += 1) {
      now += 5; // 100 updates over 500 ms
      progress.update(done);
    }
    expect(writes.length).toBeGreaterThanOrEqual(4);
    expect(writes.length).toBeLessThanOrEqual(6);
  });

  it('ends the line once, even when done() is called twice; ignores updates after', () => {
    const { stream, writes } = fakeTerminal(true);
    const progress = createProgress('x', 10, { stream });
    progress.done();
    progress.done();
    progress.update(5);
    expect(writes.filter((text) => text.endsWith('\n'))).toHaveLength(1);
    expect(writes).toHaveLength(1);
  });

  it('accepts a corrected total and counts items', () => {
    const { stream, writes } = fakeTerminal(true);
    const progress = createProgress('benchmark', 4, { stream, unit: 'items', now: () => 0 });
    progress.update(2, 8);
    expect(writes.at(-1)).toMatch(/benchmark\s+25%\s+2\/8/);
  });

  it('fits the terminal width (and survives a pty that reports 0 columns)', () => {
    for (const columns of [30, 0]) {
      const { stream, writes } = fakeTerminal(true, columns);
      createProgress('a long label for the fill of a vault', 10 * MiB, { stream }).update(MiB);
      const visible = (writes.at(-1) ?? '').replace('\r', '').replace('\x1b[K', '');
      expect(visible.length).toBeLessThanOrEqual(columns === 0 ? 79 : 29);
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [59.6, '1:00'],
    [75, '1:15'],
    [3725, '1:02:05'],
    [Number.POSITIVE_INFINITY, '0:00'],
  ])('%d s -> %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

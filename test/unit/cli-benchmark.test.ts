// The benchmark's advice (issue 18): the cost level is not stored, so advice to leave the default is a
// trap unless it says so. It favours the default, and says plainly what any other level commits you to.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GOOD_UP_TO_SECONDS,
  recommendation,
  recommendLevel,
} from '../../src/cli/commands/benchmark.js';
import { costParams, DEFAULT_COST_LEVEL } from '../../src/crypto/kdf.js';

type Level = Parameters<typeof recommendLevel>[0][number];

function levels(seconds: Record<number, number | null>): Level[] {
  return Object.entries(seconds).map(([text, time]) => {
    const level = Number(text);
    const { memoryKiB, iterations, parallelism } = costParams(level);
    return {
      level,
      memoryKiB,
      iterations,
      parallelism,
      seconds: time,
      skipped: time === null ? 'not enough memory' : null,
    } as Level;
  });
}

describe('vault benchmark advice', () => {
  it('keeps the default when it unlocks within the limit, even if a lower level is closer to 1 s', () => {
    const measured = levels({ 10: 0.4, 11: 0.9, [DEFAULT_COST_LEVEL]: 1.8, 13: 2.7 });
    expect(recommendLevel(measured)).toBe(DEFAULT_COST_LEVEL);
    const advice = recommendation(measured.find((row) => row.level === DEFAULT_COST_LEVEL) as Level);
    expect(advice).toMatch(
      /^Recommended: the default, level 12 \(about 1\.8 s and 1 GiB per unlock here\); leave out --cost\.$/,
    );
  });

  it('on a slow machine (or without the memory) names another level, and says it must be typed at every unlock', () => {
    const slow = levels({ 9: 0.8, 10: 1.6, 11: 3.1, [DEFAULT_COST_LEVEL]: DEFAULT_GOOD_UP_TO_SECONDS + 1 });
    expect(recommendLevel(slow)).toBe(9);
    const noMemory = levels({ 9: 0.5, 10: 1.1, 11: null, [DEFAULT_COST_LEVEL]: null });
    expect(recommendLevel(noMemory)).toBe(10);
    const advice = recommendation(slow.find((row) => row.level === 9) as Level);
    expect(advice).toContain('Recommended: --cost 9');
    expect(advice).toContain('NOT stored in the vault: every unlock of such a vault needs --cost 9');
    expect(advice).toContain('looks exactly like a wrong password');
  });

  it('nothing measured: no recommendation', () => {
    expect(recommendLevel(levels({ 11: null, 12: null }))).toBeNull();
  });
});

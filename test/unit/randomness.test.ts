// Deniability: a vault looks like random bytes. A full-fill vault passes a byte chi-square test with no
// all-zero 4 KiB block, and header copies share no 16-byte run, within one vault or across two vaults
// made with the same password.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault, Secret } from '../../src/container/index.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-random-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function make(name: string): Promise<Buffer> {
  const path = join(dir, name);
  const secret = await Secret.fromInputs({ password: Buffer.from('same password', 'utf8') });
  await createVault(path, { fileSize: 4 * 2 ** 20, secret, costLevel: MIN_COST_LEVEL });
  return readFile(path);
}

/** The header sectors an observer could compare: primary and backup. */
function headers(raw: Buffer): Buffer[] {
  return [raw.subarray(0, 4096), raw.subarray(raw.length - 131072, raw.length - 131072 + 4096)];
}

function runs16(sector: Buffer): Set<string> {
  const runs = new Set<string>();
  for (let at = 0; at + 16 <= sector.length; at++) runs.add(sector.subarray(at, at + 16).toString('hex'));
  return runs;
}

describe('a new vault is indistinguishable from random bytes', () => {
  it('passes a byte chi-square test and has no all-zero 4 KiB block', async () => {
    const raw = await make('chi.vol');
    const counts = new Array<number>(256).fill(0);
    for (const byte of raw) counts[byte] = (counts[byte] as number) + 1;
    const expected = raw.length / 256;
    const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: P(chi2 > 360) is about 1e-5 for truly random bytes.
    expect(chiSquare).toBeLessThan(360);
    const zero = Buffer.alloc(4096);
    for (let at = 0; at < raw.length; at += 4096)
      expect(raw.subarray(at, at + 4096).equals(zero)).toBe(false);
  });

  it('two vaults with the same password, and the two copies of one vault, share no 16-byte run', async () => {
    const [a, b] = [await make('a.vol'), await make('b.vol')];
    const sectors = [...headers(a), ...headers(b)];
    const seen = new Map<string, number>();
    sectors.forEach((sector, index) => {
      for (const run of runs16(sector)) {
        const owner = seen.get(run);
        if (owner !== undefined && owner !== index)
          throw new Error(`header sectors ${owner} and ${index} share ${run}`);
        seen.set(run, index);
      }
    });
    expect(seen.size).toBeGreaterThan(4 * 4000);
  });
});

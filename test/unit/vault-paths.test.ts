// The two data paths of Vault (src/container/vault.ts) against an in-memory model: whole aligned
// sectors go straight through XTS (fast path), anything else is a read-modify-write of the partial
// sectors. Each sector's tweak is its number, so bytes written through one path at any offset must read
// back through the other, and the ciphertext of a sector must not depend on the path that wrote it.
// Also the exact refusal a wrong secret gets, and the warning for a file longer than its layout.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault, isVaultError, openVault, Secret, VAULT_WARNINGS } from '../../src/container/index.js';
import { DATA_OFFSET, SECTOR_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const FILE_SIZE = 2 * 2 ** 20;
let dir: string;
let path: string;
const secret = (text = 'two paths') => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-paths-'));
  path = join(dir, 'paths.vol');
  await createVault(path, { fileSize: FILE_SIZE, secret: await secret(), costLevel, quick: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fast and read-modify-write paths agree', () => {
  it('random reads and writes, aligned or not, match a model of the volume', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    try {
      const model = Buffer.alloc(vault.size);
      await vault.readAt(model, 0);
      const sectors = vault.size / SECTOR_BYTES;
      const access = fc
        .tuple(
          fc.boolean(),
          fc.integer({ min: 0, max: sectors - 1 }),
          fc.integer({ min: 1, max: 4 }),
          fc.nat(SECTOR_BYTES - 1),
          fc.nat(2 * SECTOR_BYTES),
          fc.boolean(),
        )
        .map(([aligned, sector, count, skew, extra, write]) => {
          const offset = aligned
            ? sector * SECTOR_BYTES
            : Math.min(sector * SECTOR_BYTES + skew, vault.size - 1);
          const wanted = aligned ? count * SECTOR_BYTES : 1 + extra;
          return { offset, length: Math.min(wanted, vault.size - offset), write };
        });
      await fc.assert(
        fc.asyncProperty(fc.array(access, { minLength: 1, maxLength: 12 }), async (steps) => {
          for (const { offset, length, write } of steps) {
            if (write) {
              const bytes = randomBytes(length);
              await vault.writeAt(bytes, offset);
              bytes.copy(model, offset);
            } else {
              const bytes = Buffer.alloc(length);
              await vault.readAt(bytes, offset);
              expect(bytes.equals(model.subarray(offset, offset + length)), `read ${offset}+${length}`).toBe(
                true,
              );
            }
          }
          // Aligned reads of every sector, one at a time (fast path at every offset).
          const sector = Buffer.alloc(SECTOR_BYTES);
          for (let at = 0; at < vault.size; at += SECTOR_BYTES) {
            await vault.readAt(sector, at);
            if (!sector.equals(model.subarray(at, at + SECTOR_BYTES)))
              throw new Error(`sector at ${at} differs`);
          }
        }),
        { numRuns: 15 },
      );
    } finally {
      await vault.close();
    }
  });

  it('a sector written whole or in pieces has the same ciphertext', async () => {
    const vault = await openVault(path, await secret(), { costLevel });
    const plain = randomBytes(3 * SECTOR_BYTES);
    const at = 7 * SECTOR_BYTES;
    try {
      await vault.writeAt(plain, at);
    } finally {
      await vault.close();
    }
    const whole = (await readFile(path)).subarray(DATA_OFFSET + at, DATA_OFFSET + at + plain.length);
    const again = await openVault(path, await secret(), { costLevel });
    try {
      await again.writeAt(Buffer.alloc(plain.length), at);
      // The same bytes in three unaligned pieces: head, middle, tail.
      await again.writeAt(plain.subarray(0, 100), at);
      await again.writeAt(plain.subarray(100, 2 * SECTOR_BYTES + 5), at + 100);
      await again.writeAt(plain.subarray(2 * SECTOR_BYTES + 5), at + 2 * SECTOR_BYTES + 5);
    } finally {
      await again.close();
    }
    const pieces = (await readFile(path)).subarray(DATA_OFFSET + at, DATA_OFFSET + at + plain.length);
    expect(pieces.equals(whole)).toBe(true);
  });
});

describe('what the user is told', () => {
  it('a wrong secret: the exact refusal', async () => {
    const error = await openVault(path, await secret('wrong'), { costLevel }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
    expect(error).toMatchObject({
      message: 'cannot unlock the vault: wrong password, keyfile or cost level, or not a vault',
      hint: 'check the password, every keyfile and the cost level the vault was created with',
      reason: 'cannot-unlock',
    });
  });

  it('a file longer than its layout (an interrupted resize) is reported', async () => {
    const grown = join(dir, 'grown.vol');
    await createVault(grown, { fileSize: FILE_SIZE, secret: await secret(), costLevel, quick: true });
    await truncate(grown, FILE_SIZE + 2 ** 20);
    const vault = await openVault(grown, await secret(), { costLevel, readOnly: true });
    try {
      expect(vault.warnings).toEqual([VAULT_WARNINGS.interruptedResize]);
    } finally {
      await vault.close();
    }
  });
});

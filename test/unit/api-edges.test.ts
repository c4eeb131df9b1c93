// The edges of the library API (Vault.readAt / writeAt / flush): across the end, at the end, length 0,
// offsets past 2^53, negative or fractional offsets, read-only vaults and vaults opened with the hidden
// volume protected. Every refused call leaves the file byte-identical (above all the header sectors at
// the front and the backup area at the end), and every accepted one changes only its own sectors.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault, openVault, Secret, type Vault } from '../../src/container/index.js';
import { BACKUP_AREA_BYTES, DATA_OFFSET, SECTOR_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const FILE_SIZE = 4 * MiB;
const HIDDEN_SIZE = MiB;
let dir: string;
let plain: string;
let withHidden: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-api-edges-'));
  plain = join(dir, 'plain.vol');
  withHidden = join(dir, 'hidden.vol');
  await createVault(plain, { fileSize: FILE_SIZE, secret: await secret('outer'), costLevel });
  await createVault(withHidden, {
    fileSize: FILE_SIZE,
    secret: await secret('outer'),
    costLevel,
    hidden: { dataSize: HIDDEN_SIZE, secret: await secret('hidden') },
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `call` and expects it refused (`kind`); the whole file, headers and backup area included, unchanged. */
async function refusedUnchanged(
  path: string,
  vault: Vault,
  call: () => Promise<void>,
  kind: 'range' | 'vault',
): Promise<void> {
  await vault.flush().catch(() => {});
  const before = await readFile(path);
  const error = await call().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, 'the call was refused').not.toBeNull();
  if (kind === 'range') {
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/^access outside the volume: offset \S+, length \d+, size \d+$/);
  } else expect((error as { code?: string }).code).toBe('IO');
  await vault.flush().catch(() => {});
  const after = await readFile(path);
  expect(after.subarray(0, DATA_OFFSET).equals(before.subarray(0, DATA_OFFSET)), 'front headers').toBe(true);
  expect(
    after
      .subarray(after.length - BACKUP_AREA_BYTES)
      .equals(before.subarray(before.length - BACKUP_AREA_BYTES)),
    'backup area',
  ).toBe(true);
  expect(after.equals(before), 'the whole file').toBe(true);
}

/** Offsets and lengths outside [0, size): each refused by readAt and writeAt. */
function outside(size: number): Array<[string, number, number]> {
  return [
    ['across the end', size - 10, 20],
    ['one byte across the end', size - SECTOR_BYTES, SECTOR_BYTES + 1],
    ['a whole sector across the end', size - SECTOR_BYTES, 2 * SECTOR_BYTES],
    ['at the end', size, 1],
    ['a sector at the end', size, SECTOR_BYTES],
    ['past the end', size + SECTOR_BYTES, SECTOR_BYTES],
    ['length 0 past the end', size + 1, 0],
    ['at 2^53', 2 ** 53, 1],
    ['past 2^53', 2 ** 53 + 2, 1],
    ['at 2^53 - 1 (safe, far past the end)', 2 ** 53 - 1, 1],
    ['at 2^60', 2 ** 60, SECTOR_BYTES],
    ['negative', -1, 1],
    ['negative, length 0', -SECTOR_BYTES, 0],
    ['fractional', 0.5, 1],
    ['NaN', Number.NaN, 1],
    ['Infinity', Number.POSITIVE_INFINITY, 1],
  ];
}

describe('Vault.readAt and writeAt at the edges', () => {
  it('refuses every access outside the volume and changes nothing', async () => {
    const vault = await openVault(plain, await secret('outer'), { costLevel });
    try {
      for (const [name, offset, length] of outside(vault.size)) {
        const buffer = Buffer.alloc(length, 0xee);
        await refusedUnchanged(plain, vault, () => vault.writeAt(buffer, offset), 'range').catch((error) => {
          throw new Error(`writeAt ${name}: ${(error as Error).message}`);
        });
        await expect(vault.readAt(buffer, offset), `readAt ${name}`).rejects.toBeInstanceOf(RangeError);
        expect(
          buffer.every((byte) => byte === 0xee),
          `readAt ${name} left the buffer alone`,
        ).toBe(true);
      }
    } finally {
      await vault.close();
    }
  });

  it('accepts the last bytes and length 0 at the end; changes only their sectors', async () => {
    const vault = await openVault(plain, await secret('outer'), { costLevel });
    try {
      const size = vault.size;
      await vault.flush();
      const before = await readFile(plain);
      await vault.writeAt(Buffer.alloc(0), size);
      await vault.writeAt(Buffer.alloc(0), 0);
      await vault.readAt(Buffer.alloc(0), size);
      await vault.flush();
      expect((await readFile(plain)).equals(before), 'length 0 writes change nothing').toBe(true);

      const tail = Buffer.from('the last bytes of the volume');
      await vault.writeAt(tail, size - tail.length);
      const back = Buffer.alloc(tail.length);
      await vault.readAt(back, size - tail.length);
      expect(back.equals(tail)).toBe(true);
      await vault.flush();
      const after = await readFile(plain);
      const lastSector = DATA_OFFSET + size - SECTOR_BYTES;
      expect(after.subarray(0, lastSector).equals(before.subarray(0, lastSector))).toBe(true);
      expect(
        after
          .subarray(lastSector, DATA_OFFSET + size)
          .equals(before.subarray(lastSector, DATA_OFFSET + size)),
      ).toBe(false);
      expect(
        after.subarray(DATA_OFFSET + size).equals(before.subarray(DATA_OFFSET + size)),
        'backup area',
      ).toBe(true);
    } finally {
      await vault.close();
    }
  });

  it('a read-only vault refuses every write, inside or not, and flush writes nothing', async () => {
    const vault = await openVault(plain, await secret('outer'), { costLevel, readOnly: true });
    try {
      expect(vault.readOnly).toBe(true);
      for (const [offset, length] of [
        [0, SECTOR_BYTES],
        [100, 1],
        [0, 0],
        [vault.size - 1, 1],
        [vault.size, 1],
      ] as const) {
        await refusedUnchanged(plain, vault, () => vault.writeAt(Buffer.alloc(length, 1), offset), 'vault');
      }
      const before = await readFile(plain);
      await vault.flush();
      expect((await readFile(plain)).equals(before)).toBe(true);
      const data = Buffer.alloc(SECTOR_BYTES);
      await vault.readAt(data, vault.size - SECTOR_BYTES);
    } finally {
      await vault.close();
    }
  });

  it('with the hidden volume protected: a write that touches it by one byte is refused, then every write', async () => {
    const vault = await openVault(withHidden, await secret('outer'), {
      costLevel,
      protectHidden: await secret('hidden'),
    });
    try {
      const hiddenStart = vault.size - HIDDEN_SIZE;
      // Just before the hidden volume: allowed.
      await vault.writeAt(Buffer.alloc(SECTOR_BYTES, 7), hiddenStart - SECTOR_BYTES);
      expect(vault.protectionTripped).toBe(false);
      // Ending one byte into the hidden volume: refused, nothing written, protection tripped.
      await refusedUnchanged(
        withHidden,
        vault,
        () => vault.writeAt(Buffer.alloc(SECTOR_BYTES, 8), hiddenStart - SECTOR_BYTES + 1),
        'vault',
      );
      expect(vault.protectionTripped).toBe(true);
      expect(vault.warnings.join('\n')).toMatch(/would have damaged the hidden volume/);
      // From now on even writes far from it are refused.
      await refusedUnchanged(withHidden, vault, () => vault.writeAt(Buffer.alloc(1, 9), 0), 'vault');
      await refusedUnchanged(
        withHidden,
        vault,
        () => vault.writeAt(Buffer.alloc(1, 9), hiddenStart),
        'vault',
      );
      // The warning is given once, not once per refused write.
      expect(
        vault.warnings.filter((warning) => /would have damaged the hidden volume/.test(warning)),
      ).toHaveLength(1);
      // Out-of-range calls are still range errors, and change nothing either.
      await refusedUnchanged(
        withHidden,
        vault,
        () => vault.writeAt(Buffer.alloc(20), vault.size - 10),
        'range',
      );
    } finally {
      await vault.close();
    }
    const hidden = await openVault(withHidden, await secret('hidden'), { costLevel, readOnly: true });
    expect(hidden.info().kind).toBe('hidden');
    await hidden.close();
  });

  it('a closed vault refuses reads, writes and flush', async () => {
    const vault = await openVault(plain, await secret('outer'), { costLevel });
    await vault.close();
    const before = await readFile(plain);
    await expect(vault.writeAt(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'IO' });
    await expect(vault.readAt(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'IO' });
    await expect(vault.flush()).rejects.toMatchObject({ code: 'IO' });
    expect((await readFile(plain)).equals(before)).toBe(true);
  });
});

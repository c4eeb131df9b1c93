// A vault file cut short (a copy that stopped early, a full disk, `truncate`): the right secret gets
// "truncated", with how much of the volume is left, never the wrong-password error; a wrong secret
// still gets the one cannot-unlock error; and the recovery the hint gives (extend a copy, repair) works.
import { copyFile, mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault, isVaultError, openVault, repairHeaders, Secret } from '../../src/container/index.js';
import { DATA_OFFSET, OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const SIZE = 4 * 2 ** 20;
const DATA_BYTES = SIZE - OVERHEAD_BYTES;
let dir: string;

const password = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (caught: unknown) => caught,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-truncated-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a truncated vault', () => {
  for (const [name, cutTo] of [
    ['cut by 4 KiB', SIZE - 4096],
    ['cut to half', SIZE / 2],
    ['cut below the smallest vault', 300 * 1024],
  ] as const) {
    it(`${name}: the right secret says truncated (exit code 9) with what is left; a wrong one cannot unlock`, async () => {
      const path = join(dir, `${cutTo}.vol`);
      await createVault(path, { fileSize: SIZE, secret: await password('right'), costLevel, quick: true });
      await truncate(path, cutTo);
      const present = Math.min(DATA_BYTES, Math.max(0, cutTo - DATA_OFFSET));
      const opened = await failure(
        password('right').then((secret) => openVault(path, secret, { costLevel })),
      );
      expect(isVaultError(opened, 'IO')).toBe(true);
      expect((opened as Error).message).toContain(`${path} is truncated`);
      expect((opened as Error).message).toContain(
        `the file has ${cutTo} bytes where the header describes ${SIZE}`,
      );
      expect((opened as Error).message).toContain(`${present} of the volume's ${DATA_BYTES} bytes`);
      const repaired = await failure(
        password('right').then((secret) => repairHeaders(path, secret, { costLevel })),
      );
      expect(isVaultError(repaired, 'IO')).toBe(true);
      const wrong = await failure(password('wrong').then((secret) => openVault(path, secret, { costLevel })));
      expect(isVaultError(wrong, 'CANNOT_UNLOCK')).toBe(true);
    });
  }

  it('the hint works: extend a copy to the size the header gives, repair it, and the data before the cut reads back', async () => {
    const path = join(dir, 'recover.vol');
    await createVault(path, { fileSize: SIZE, secret: await password('right'), costLevel, quick: true });
    const marker = Buffer.alloc(4096, 0x5a);
    const vault = await openVault(path, await password('right'), { costLevel });
    await vault.writeAt(marker, 0);
    await vault.close();
    await truncate(path, SIZE / 2);
    const copy = join(dir, 'copy.vol');
    await copyFile(path, copy);
    await truncate(copy, SIZE);
    expect((await repairHeaders(copy, await password('right'), { costLevel })).repaired).toEqual(['backup']);
    const reopened = await openVault(copy, await password('right'), { costLevel });
    const back = Buffer.alloc(4096);
    await reopened.readAt(back, 0);
    await reopened.close();
    expect(back.equals(marker)).toBe(true);
  });
});

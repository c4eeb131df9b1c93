// Hidden volumes at the library level (docs/FORMAT.md 8): the outer secret opens the outer volume and
// says nothing of the hidden one, the hidden secret opens the hidden one, protection refuses every
// write that would land in the hidden area, and the hidden volume survives everything else.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addKey,
  backupHeader,
  changeSecret,
  createVault,
  isVaultError,
  openVault,
  repairHeaders,
  restoreHeader,
  Secret,
} from '../../src/container/index.js';
import { DATA_OFFSET, HIDDEN_AREA_OFFSET } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const FILE_SIZE = 8 * 2 ** 20;
const HIDDEN_SIZE = 2 * 2 ** 20;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-hidden-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function makeHidden(name: string): Promise<string> {
  const path = join(dir, name);
  await createVault(path, {
    fileSize: FILE_SIZE,
    secret: await secret('outer password'),
    costLevel,
    hidden: { dataSize: HIDDEN_SIZE, secret: await secret('hidden password') },
  });
  return path;
}

const hiddenCipherRange = (fileSize: number) => {
  const outerData = fileSize - 262144;
  const start = DATA_OFFSET + outerData - HIDDEN_SIZE;
  return [start, start + HIDDEN_SIZE] as const;
};

describe('hidden volumes', () => {
  it('each secret opens its own volume; the outer one reveals nothing of the hidden one', async () => {
    const path = await makeHidden('both.vol');
    const outer = await openVault(path, await secret('outer password'), { costLevel });
    const plainVault = await (async () => {
      const other = join(dir, 'plain.vol');
      await createVault(other, { fileSize: FILE_SIZE, secret: await secret('outer password'), costLevel });
      const opened = await openVault(other, await secret('outer password'), { costLevel });
      const info = opened.info();
      await opened.close();
      return info;
    })();
    const outerInfo = outer.info();
    expect(outerInfo.kind).toBe('outer');
    expect(outer.size).toBe(FILE_SIZE - 262144);
    // Same fields as a vault without a hidden volume, apart from the path.
    expect({ ...outerInfo, path: '' }).toEqual({ ...plainVault, path: '' });
    await outer.writeAt(Buffer.from('outer file'), 0);
    await outer.close();

    const hidden = await openVault(path, await secret('hidden password'), { costLevel });
    expect(hidden.info().kind).toBe('hidden');
    expect(hidden.size).toBe(HIDDEN_SIZE);
    expect(hidden.info().dataOffset).toBe(hiddenCipherRange(FILE_SIZE)[0]);
    await hidden.writeAt(Buffer.from('hidden file'), 0);
    await hidden.writeAt(Buffer.from('hidden tail'), HIDDEN_SIZE - 11);
    await hidden.close();

    const again = await openVault(path, await secret('outer password'), { costLevel, readOnly: true });
    const read = Buffer.alloc(10);
    await again.readAt(read, 0);
    expect(read.toString()).toBe('outer file');
    await again.close();
    const hiddenAgain = await openVault(path, await secret('hidden password'), { costLevel, readOnly: true });
    const hiddenRead = Buffer.alloc(11);
    await hiddenAgain.readAt(hiddenRead, 0);
    expect(hiddenRead.toString()).toBe('hidden file');
    await hiddenAgain.close();
  });

  it('protection refuses writes into the hidden area and turns the outer volume read-only', async () => {
    const path = await makeHidden('protected.vol');
    const hidden = await openVault(path, await secret('hidden password'), { costLevel });
    await hidden.writeAt(Buffer.from('precious'), 100);
    await hidden.close();
    const raw = await readFile(path);
    const [start, end] = hiddenCipherRange(raw.length);
    const hiddenBefore = createHash('sha256').update(raw.subarray(start, end)).digest('hex');

    const outer = await openVault(path, await secret('outer password'), {
      costLevel,
      protectHidden: await secret('hidden password'),
    });
    const boundary = outer.size - HIDDEN_SIZE;
    await outer.writeAt(Buffer.alloc(4096, 1), boundary - 4096); // just below: allowed
    await expect(outer.writeAt(Buffer.alloc(8192, 2), boundary - 4096)).rejects.toMatchObject({ code: 'IO' });
    expect(outer.protectionTripped).toBe(true);
    expect(outer.warnings.join()).toMatch(/outer volume is now read-only/);
    // After the first refusal, every write is refused, even far from the hidden area.
    await expect(outer.writeAt(Buffer.alloc(10, 3), 0)).rejects.toMatchObject({ code: 'IO' });
    await outer.close();

    const after = await readFile(path);
    expect(createHash('sha256').update(after.subarray(start, end)).digest('hex')).toBe(hiddenBefore);
    const check = await openVault(path, await secret('hidden password'), { costLevel, readOnly: true });
    const read = Buffer.alloc(8);
    await check.readAt(read, 100);
    expect(read.toString()).toBe('precious');
    await check.close();
  });

  it('protection with a wrong hidden secret is refused', async () => {
    const path = await makeHidden('wrong-protect.vol');
    await expect(
      openVault(path, await secret('outer password'), { costLevel, protectHidden: await secret('nope') }),
    ).rejects.toMatchObject({ code: 'CANNOT_UNLOCK' });
  });

  it('outer and hidden passwords change independently; repair and header backup work for both', async () => {
    const path = await makeHidden('manage.vol');
    await changeSecret(path, await secret('outer password'), await secret('outer 2'), { costLevel });
    await changeSecret(path, await secret('hidden password'), await secret('hidden 2'), { costLevel });
    expect(await addKey(path, await secret('hidden 2'), await secret('hidden 3'), { costLevel })).toBe(1);
    for (const [text, kind] of [
      ['outer 2', 'outer'],
      ['hidden 2', 'hidden'],
      ['hidden 3', 'hidden'],
    ] as const) {
      const vault = await openVault(path, await secret(text), { costLevel, readOnly: true });
      expect(vault.info().kind).toBe(kind);
      await vault.close();
    }
    // Damage the hidden primary header: the hidden backup opens it, and repair restores it.
    const raw = await readFile(path);
    raw[HIDDEN_AREA_OFFSET + 3000] = (raw[HIDDEN_AREA_OFFSET + 3000] as number) ^ 1;
    await writeFile(path, raw);
    const damaged = await openVault(path, await secret('hidden 2'), { costLevel, readOnly: true });
    expect(damaged.warnings).toEqual([
      'primary header damaged, using the backup; a repair rewrites it from the backup',
    ]);
    await damaged.close();
    expect(await repairHeaders(path, await secret('hidden 3'), { costLevel })).toEqual({
      repaired: ['primary'],
    });
    // The outer volume never noticed.
    const outer = await openVault(path, await secret('outer 2'), { costLevel, readOnly: true });
    expect(outer.warnings).toEqual([]);
    await outer.close();

    const backup = join(dir, 'manage.hdr');
    await backupHeader(path, await secret('hidden 2'), backup, { costLevel });
    expect((await stat(backup)).size).toBe(8192);
    await changeSecret(path, await secret('hidden 2'), await secret('hidden 4'), { costLevel });
    expect(await restoreHeader(path, await secret('hidden 2'), backup, { costLevel })).toBe('hidden');
    const restored = await openVault(path, await secret('hidden 2'), { costLevel, readOnly: true });
    expect(restored.info().kind).toBe('hidden');
    await restored.close();
    const outerStill = await openVault(path, await secret('outer 2'), { costLevel, readOnly: true });
    await outerStill.close();
  });

  it('no secret can be given to both volumes: passwd and key add refuse one that opens the other kind', async () => {
    const path = await makeHidden('crossed.vol');
    const before = await readFile(path);
    const refused = async (work: Promise<unknown>): Promise<Error> => {
      const error = await work.then(
        () => null,
        (caught: unknown) => caught as Error,
      );
      expect(isVaultError(error, 'USAGE'), String(error)).toBe(true);
      return error as Error;
    };
    // As an outer secret, the hidden password would always open the outer volume first.
    const outerKey = await refused(
      addKey(path, await secret('outer password'), await secret('hidden password'), { costLevel }),
    );
    expect(outerKey.message).toMatch(/opens the hidden volume of this vault/);
    await refused(
      changeSecret(path, await secret('outer password'), await secret('hidden password'), { costLevel }),
    );
    // As a hidden secret, an outer password could never reach the hidden volume.
    const hiddenKey = await refused(
      addKey(path, await secret('hidden password'), await secret('outer password'), { costLevel }),
    );
    expect(hiddenKey.message).toMatch(/opens the outer volume of this vault/);
    await refused(
      changeSecret(path, await secret('hidden password'), await secret('outer password'), { costLevel }),
    );
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    // A vault without a hidden volume: its random hidden area opens nothing, so any new secret is fine.
    const plain = join(dir, 'without-hidden.vol');
    await createVault(plain, { fileSize: FILE_SIZE, secret: await secret('outer password'), costLevel });
    expect(
      await addKey(plain, await secret('outer password'), await secret('hidden password'), { costLevel }),
    ).toBe(1);
  });

  it('refuses --quick with a hidden volume (unfilled sectors would give it away)', async () => {
    await expect(
      createVault(join(dir, 'quick.vol'), {
        fileSize: FILE_SIZE,
        secret: await secret('a'),
        costLevel,
        quick: true,
        hidden: { dataSize: HIDDEN_SIZE, secret: await secret('b') },
      }),
    ).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('refuses a hidden volume that does not fit', async () => {
    await expect(
      createVault(join(dir, 'too-big.vol'), {
        fileSize: FILE_SIZE,
        secret: await secret('a'),
        costLevel,
        hidden: { dataSize: FILE_SIZE, secret: await secret('b') },
      }),
    ).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('the headers of a vault with a hidden volume share no 16-byte run with each other', async () => {
    const raw = await readFile(await makeHidden('random.vol'));
    const sectors = [0, HIDDEN_AREA_OFFSET, raw.length - 131072, raw.length - 65536].map((at) =>
      raw.subarray(at, at + 4096),
    );
    const seen = new Map<string, number>();
    sectors.forEach((sector, index) => {
      for (let at = 0; at + 16 <= sector.length; at++) {
        const run = sector.subarray(at, at + 16).toString('hex');
        const owner = seen.get(run);
        if (owner !== undefined && owner !== index)
          throw new Error(`sectors ${owner} and ${index} share a run`);
        seen.set(run, index);
      }
    });
  });
  it('header backups are the two front sectors verbatim: which secret made one, or whether a hidden volume exists, does not show', async () => {
    const path = await makeHidden('backups.vol');
    const plain = join(dir, 'backups-plain.vol');
    await createVault(plain, { fileSize: FILE_SIZE, secret: await secret('outer password'), costLevel });
    const front = async (file: string) => {
      const raw = await readFile(file);
      return Buffer.concat([
        raw.subarray(0, 4096),
        raw.subarray(HIDDEN_AREA_OFFSET, HIDDEN_AREA_OFFSET + 4096),
      ]);
    };
    const made: Buffer[] = [];
    for (const [file, text] of [
      [path, 'outer password'],
      [path, 'hidden password'],
      [plain, 'outer password'],
    ] as const) {
      const backup = join(dir, `backup-${made.length}.hdr`);
      await backupHeader(file, await secret(text), backup, { costLevel });
      const bytes = await readFile(backup);
      // The same relation to the vault file for all three: its two front sectors, byte for byte.
      expect(bytes.equals(await front(file))).toBe(true);
      made.push(bytes);
    }
    expect((made[0] as Buffer).equals(made[1] as Buffer)).toBe(true);
    // Both kinds restore from the one backup.
    await changeSecret(path, await secret('outer password'), await secret('outer new'), { costLevel });
    await changeSecret(path, await secret('hidden password'), await secret('hidden new'), { costLevel });
    const backup = join(dir, 'backup-0.hdr');
    expect(await restoreHeader(path, await secret('outer password'), backup, { costLevel })).toBe('outer');
    expect(await restoreHeader(path, await secret('hidden password'), backup, { costLevel })).toBe('hidden');
    for (const text of ['outer password', 'hidden password']) {
      const vault = await openVault(path, await secret(text), { costLevel, readOnly: true });
      await vault.close();
    }
  });

  it('a header backup of a damaged front copy is refused, pointing to vault repair', async () => {
    const path = await makeHidden('backup-damaged.vol');
    const raw = await readFile(path);
    raw[3000] = (raw[3000] as number) ^ 1;
    await writeFile(path, raw);
    const backup = join(dir, 'backup-damaged.hdr');
    await expect(
      backupHeader(path, await secret('outer password'), backup, { costLevel }),
    ).rejects.toMatchObject({
      code: 'USAGE',
      reason: 'backup-of-damaged-front',
      details: { path },
    });
    await expect(stat(backup)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readFile(path)).equals(raw)).toBe(true);
  });
});

// The container library end to end on real files: create, open, sector I/O against a model,
// header maintenance, damage and recovery. Uses the lowest cost level so the KDF is fast.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addKey,
  backupHeader,
  changeSecret,
  createVault,
  isVaultError,
  openVault,
  removeKey,
  repairHeaders,
  restoreHeader,
  Secret,
} from '../../src/container/index.js';
import { DATA_OFFSET, MIN_FILE_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
const SIZE = 2 * 2 ** 20;
let dir: string;

const password = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function newVault(
  name: string,
  text = 'correct horse',
  extra: { quick?: boolean } = {},
): Promise<string> {
  const path = join(dir, name);
  await createVault(path, { fileSize: SIZE, secret: await password(text), costLevel, ...extra });
  return path;
}

async function expectCannotUnlock(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-container-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('create and open', () => {
  it('creates a file of exactly the requested size that opens with its password', async () => {
    const path = await newVault('a.vol');
    expect((await stat(path)).size).toBe(SIZE);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const vault = await openVault(path, await password('correct horse'), { costLevel });
    expect(vault.size).toBe(SIZE - 262144);
    expect(vault.warnings).toEqual([]);
    const info = vault.info();
    expect(info.keyslots).toEqual({ total: 16, used: [0], opened: 0 });
    expect(info.headers.primary).toEqual({ state: 'ok', sequence: 1 });
    expect(info.headers.backup).toEqual({ state: 'ok', sequence: 1 });
    await vault.close();
  });

  it('gives the same "cannot unlock" for a wrong password, a wrong cost level and a random file', async () => {
    const path = await newVault('b.vol');
    await expectCannotUnlock(openVault(path, await password('wrong'), { costLevel }));
    await expectCannotUnlock(openVault(path, await password('correct horse'), { costLevel: costLevel + 1 }));
    const random = join(dir, 'random.bin');
    await writeFile(random, Buffer.alloc(MIN_FILE_BYTES, 7));
    await expectCannotUnlock(openVault(random, await password('correct horse'), { costLevel }));
    const short = join(dir, 'short.bin');
    await writeFile(short, Buffer.alloc(1000));
    await expectCannotUnlock(openVault(short, await password('x'), { costLevel }));
  });

  it('never changes a byte of the file when opening fails or succeeds', async () => {
    const path = await newVault('c.vol');
    const before = await readFile(path);
    await expectCannotUnlock(openVault(path, await password('nope'), { costLevel }));
    const vault = await openVault(path, await password('correct horse'), { costLevel });
    await vault.close();
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('refuses to overwrite an existing file unless forced, and refuses tiny or ragged sizes', async () => {
    const path = await newVault('d.vol');
    const secret = await password('p');
    await expect(createVault(path, { fileSize: SIZE, secret, costLevel })).rejects.toMatchObject({
      code: 'EXISTS',
    });
    await expect(
      createVault(join(dir, 'e.vol'), { fileSize: 4096, secret, costLevel }),
    ).rejects.toMatchObject({
      code: 'USAGE',
    });
    await expect(
      createVault(join(dir, 'e.vol'), { fileSize: SIZE + 1, secret, costLevel }),
    ).rejects.toMatchObject({
      code: 'USAGE',
    });
    await createVault(path, { fileSize: SIZE, secret, costLevel, force: true });
    await (await openVault(path, secret, { costLevel })).close();
  });

  it('removes the partial file when aborted', async () => {
    const controller = new AbortController();
    const path = join(dir, 'aborted.vol');
    const creation = createVault(path, {
      fileSize: 8 * 2 ** 20,
      secret: await password('p'),
      costLevel,
      signal: controller.signal,
      onProgress: (done) => {
        if (done > 2 ** 20) controller.abort();
      },
    });
    await expect(creation).rejects.toMatchObject({ code: 'INTERRUPTED' });
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir)).filter((name) => name.includes('aborted'))).toEqual([]);
  });
});

describe('sector I/O', () => {
  it('matches an in-memory model for random reads and writes at random offsets', async () => {
    const path = await newVault('io.vol', 'pw', { quick: true });
    const vault = await openVault(path, await password('pw'), { costLevel });
    const model = Buffer.alloc(vault.size);
    await vault.readAt(model, 0); // whatever the quick vault holds now
    const span = 64 * 1024; // keep the model small: operations stay in the first 64 KiB... and near the end
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset: fc.oneof(
              fc.integer({ min: 0, max: span }),
              fc.integer({ min: vault.size - span, max: vault.size - 1 }),
            ),
            length: fc.integer({ min: 0, max: 20000 }),
            seed: fc.integer({ min: 0, max: 255 }),
          }),
          { maxLength: 30 },
        ),
        async (operations) => {
          await Promise.all(
            operations.map(async ({ write, offset, length, seed }) => {
              const size = Math.min(length, vault.size - offset);
              if (write) {
                const bytes = Buffer.alloc(size, seed);
                model.set(bytes, offset); // writes are applied in call order: sector-overlapping ones serialise
                await vault.writeAt(bytes, offset);
              }
            }),
          );
          for (const { offset, length } of operations) {
            const size = Math.min(length, vault.size - offset);
            const read = Buffer.alloc(size);
            await vault.readAt(read, offset);
            expect(read.equals(model.subarray(offset, offset + size))).toBe(true);
          }
        },
      ),
      { numRuns: 40 },
    );
    await vault.close();
    const again = await openVault(path, await password('pw'), { costLevel });
    const all = Buffer.alloc(again.size);
    await again.readAt(all, 0);
    expect(all.equals(model)).toBe(true);
    await again.close();
  });

  it('stores no cleartext: a written marker never appears in the file', async () => {
    const path = await newVault('marker.vol', 'pw');
    const vault = await openVault(path, await password('pw'), { costLevel });
    const marker = Buffer.from('VAULT-MARKER-7f3a'.repeat(256));
    await vault.writeAt(marker, 12345);
    await vault.close();
    const raw = await readFile(path);
    expect(raw.includes(Buffer.from('VAULT-MARKER-7f3a'))).toBe(false);
  });

  it('rejects access outside the volume and writes to a read-only vault', async () => {
    const path = await newVault('ro.vol', 'pw');
    const vault = await openVault(path, await password('pw'), { costLevel, readOnly: true });
    await expect(vault.readAt(Buffer.alloc(1), vault.size)).rejects.toThrow(RangeError);
    await expect(vault.writeAt(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'IO' });
    await vault.close();
  });
});

describe('header maintenance', () => {
  it('passwd rewraps one slot; the data and the master key stay', async () => {
    const path = await newVault('passwd.vol', 'old');
    const vault = await openVault(path, await password('old'), { costLevel });
    await vault.writeAt(Buffer.from('hello'), 0);
    await vault.close();
    const rawBefore = await readFile(path);
    expect(await changeSecret(path, await password('old'), await password('new'), { costLevel })).toBe(0);
    await expectCannotUnlock(openVault(path, await password('old'), { costLevel }));
    const reopened = await openVault(path, await password('new'), { costLevel });
    const read = Buffer.alloc(5);
    await reopened.readAt(read, 0);
    expect(read.toString()).toBe('hello');
    expect(reopened.info().headers.primary.sequence).toBe(2);
    await reopened.close();
    const rawAfter = await readFile(path);
    expect(
      rawAfter
        .subarray(DATA_OFFSET, rawAfter.length - 131072)
        .equals(rawBefore.subarray(DATA_OFFSET, rawBefore.length - 131072)),
    ).toBe(true);
  });

  it('key add and key remove; the last slot cannot be removed', async () => {
    const path = await newVault('keys.vol', 'first');
    expect(await addKey(path, await password('first'), await password('second'), { costLevel })).toBe(1);
    const second = await openVault(path, await password('second'), { costLevel });
    expect(second.info().keyslots).toMatchObject({ used: [0, 1], opened: 1 });
    await second.close();
    expect(await removeKey(path, await password('first'), { costLevel })).toBe(0);
    await expectCannotUnlock(openVault(path, await password('first'), { costLevel }));
    await expect(removeKey(path, await password('second'), { costLevel })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });

  it('opens from the backup when the primary is damaged, and repair restores it', async () => {
    const path = await newVault('damaged.vol', 'pw');
    const raw = await readFile(path);
    raw[2000] = (raw[2000] as number) ^ 1;
    await writeFile(path, raw);
    const vault = await openVault(path, await password('pw'), { costLevel });
    expect(vault.warnings).toEqual([
      'primary header damaged, using the backup; a repair rewrites it from the backup',
    ]);
    await vault.close();
    expect(await repairHeaders(path, await password('pw'), { costLevel })).toEqual({ repaired: ['primary'] });
    const repaired = await openVault(path, await password('pw'), { costLevel });
    expect(repaired.warnings).toEqual([]);
    expect(repaired.info().headers.primary.state).toBe('ok');
    await repaired.close();
  });

  it('reports a damaged backup and still opens', async () => {
    const path = await newVault('backup-damaged.vol', 'pw');
    const raw = await readFile(path);
    raw[raw.length - 131072 + 100] = (raw[raw.length - 131072 + 100] as number) ^ 0x80;
    await writeFile(path, raw);
    const vault = await openVault(path, await password('pw'), { costLevel });
    expect(vault.info().headers.backup.state).toBe('damaged');
    expect(vault.warnings).toEqual([]);
    await vault.close();
  });

  it('header backup and restore bring back an old password', async () => {
    const path = await newVault('restore.vol', 'before');
    const backup = join(dir, 'restore.hdr');
    await backupHeader(path, await password('before'), backup, { costLevel });
    expect((await stat(backup)).size).toBe(8192);
    await changeSecret(path, await password('before'), await password('after'), { costLevel });
    await expectCannotUnlock(restoreHeader(path, await password('after'), backup, { costLevel }));
    await restoreHeader(path, await password('before'), backup, { costLevel });
    const vault = await openVault(path, await password('before'), { costLevel });
    expect(vault.info().headers.primary).toEqual({ state: 'ok', sequence: 3 });
    await vault.close();
    const other = await newVault('other.vol', 'before');
    await expect(restoreHeader(other, await password('before'), backup, { costLevel })).rejects.toMatchObject(
      {
        code: 'USAGE',
      },
    );
  });
});

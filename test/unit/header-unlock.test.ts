// Unlocking with the header pair (src/container/header-pair.ts) on real files, with a stand-in KDF
// (SHA-512 of material and salt in place of Argon2id, so each case takes milliseconds) and a recording
// wipe: every key derived on the way (KDF output, slot keys, header keys) is wiped, whatever the
// outcome; a file cut short says how much is left; an interrupted resize whose old backup is gone still
// opens from the primary; a secret of one kind of volume is never added to the other kind.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const wiped = vi.hoisted(() => [] as Buffer[]);
vi.mock('../../src/crypto/random.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/crypto/random.js')>();
  return {
    ...original,
    wipe: (...buffers: Array<Uint8Array | null | undefined>) => {
      for (const buffer of buffers) if (buffer) wiped.push(Buffer.from(buffer));
      original.wipe(...buffers);
    },
  };
});

const { createVault, isVaultError, openVault, Secret } = await import('../../src/container/index.js');
const { openContainerFile } = await import('../../src/container/file.js');
const { deriveHeaderKey, deriveSlotKey, copySlotTable } = await import('../../src/container/header.js');
const { deriveCopySlotKey, isTruncatedVault, otherSlotsOf, unlockHeaders, wrapInBothCopies } = await import(
  '../../src/container/header-pair.js'
);
const { MIN_FILE_BYTES, OVERHEAD_BYTES, DATA_OFFSET } = await import('../../src/container/layout.js');
const { VAULT_KDFS } = await import('../../src/container/vault-suites.js');

const standIn = (material: Uint8Array, salt: Uint8Array) =>
  createHash('sha512').update(material).update(salt).digest();

const kdfs = VAULT_KDFS as Map<number, typeof VAULT_KDFS extends ReadonlyMap<number, infer T> ? T : never>;
const real = kdfs.get(1);
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });
const costLevel = 1;
const FILE_SIZE = 4 * 2 ** 20;

beforeAll(async () => {
  if (!real) throw new Error('no KDF 1');
  kdfs.set(1, { ...real, derive: async (material, salt) => standIn(material, salt) });
  dir = await mkdtemp(join(tmpdir(), 'vault-header-unlock-'));
});
afterAll(async () => {
  if (real) kdfs.set(1, real);
  await rm(dir, { recursive: true, force: true });
});

const wasWiped = (bytes: Uint8Array) => wiped.some((buffer) => buffer.equals(Buffer.from(bytes)));

async function newVault(name: string, hidden = false): Promise<string> {
  const path = join(dir, name);
  await createVault(path, {
    fileSize: FILE_SIZE,
    secret: await secret('outer'),
    costLevel,
    ...(hidden ? { hidden: { dataSize: 2 ** 20, secret: await secret('hidden') } } : { quick: true }),
  });
  return path;
}

describe('every key derived on the way is wiped', () => {
  it('the KDF output and the slot key of an unlock; the KDF output of deriveCopySlotKey', async () => {
    const path = await newVault('plain.vol');
    const outer = await secret('outer');
    const file = await openContainerFile(path, 'read');
    wiped.length = 0;
    const state = await unlockHeaders(file, outer, costLevel);
    const salt = state.kdfSalts[0];
    expect(wasWiped(standIn(outer.material, salt))).toBe(true);
    expect(wasWiped(deriveSlotKey(standIn(outer.material, salt)))).toBe(true);
    // A wrong secret: both ends tried, both slot keys wiped.
    const wrong = await secret('wrong');
    wiped.length = 0;
    await expect(unlockHeaders(file, wrong, costLevel)).rejects.toMatchObject({ code: 'CANNOT_UNLOCK' });
    for (const end of [0, 1] as const) {
      expect(wasWiped(deriveSlotKey(standIn(wrong.material, state.kdfSalts[end]))), `end ${end}`).toBe(true);
    }
    wiped.length = 0;
    const slotKey = await deriveCopySlotKey(outer, salt, costLevel);
    expect(slotKey.equals(deriveSlotKey(standIn(outer.material, salt)))).toBe(true);
    expect(wasWiped(standIn(outer.material, salt))).toBe(true);
    await file.close();
  });

  it('the slot keys of a new secret wrapped into both copies', async () => {
    const path = await newVault('wrap.vol');
    const file = await openContainerFile(path, 'read');
    const state = await unlockHeaders(file, await secret('outer'), costLevel);
    const added = await secret('added');
    const tables = [copySlotTable(state.tables[0]), copySlotTable(state.tables[1])] as [
      ReturnType<typeof copySlotTable>,
      ReturnType<typeof copySlotTable>,
    ];
    wiped.length = 0;
    await wrapInBothCopies(state, tables, 3, added, costLevel);
    for (const end of [0, 1] as const) {
      expect(wasWiped(deriveSlotKey(standIn(added.material, state.kdfSalts[end]))), `end ${end}`).toBe(true);
    }
    await file.close();
  });
});

describe('a file cut short', () => {
  it('below the smallest vault: says it is truncated and how much is left, and wipes its keys', async () => {
    const path = await newVault('short.vol');
    const vault = await openVault(path, await secret('outer'), { costLevel });
    const headerKey = deriveHeaderKey(vault.state.masterKey);
    const dataSize = vault.size;
    await vault.close();
    const size = MIN_FILE_BYTES - 4096;
    await truncate(path, size);
    const outer = await secret('outer');
    wiped.length = 0;
    const error = await openVault(path, outer, { costLevel, readOnly: true }).catch((e: unknown) => e);
    expect(isTruncatedVault(error)).toBe(true);
    expect(isTruncatedVault(new Error('other'))).toBe(false);
    expect(isTruncatedVault('text')).toBe(false);
    expect(error).toMatchObject({ code: 'IO', reason: 'truncated', details: { expected: FILE_SIZE } });
    const present = size - DATA_OFFSET;
    const percent = Math.floor((present / dataSize) * 1000) / 10;
    expect((error as Error).message).toBe(
      `${path} is truncated: the secret opens its header, but the file has ${size} bytes where the header ` +
        `describes ${FILE_SIZE}; ${present} of the volume's ${dataSize} bytes (${percent}%) are in the file, ` +
        'the rest and the backup header are missing',
    );
    expect((error as { hint: string }).hint).toMatch(/extend the copy to 4194304 bytes/);
    expect(wasWiped(headerKey)).toBe(true);
    expect(wiped.some((buffer) => buffer.length === 32 && !buffer.equals(headerKey))).toBe(true); // the slot key
  });

  it('a wrong secret on a short file is the usual cannot-unlock', async () => {
    const path = await newVault('short-wrong.vol');
    await truncate(path, MIN_FILE_BYTES - 4096);
    const error = await openVault(path, await secret('wrong'), { costLevel, readOnly: true }).catch(
      (e: unknown) => e,
    );
    expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
    expect(isTruncatedVault(error)).toBe(false);
  });
});

describe('an interrupted resize', () => {
  it('whose old backup is gone too still opens from the primary, with the warning', async () => {
    const path = await newVault('grown.vol');
    // Grown by 1 MiB, as a resize cut before any header was written: the backup stays at its old place.
    await truncate(path, FILE_SIZE + 2 ** 20);
    const kept = await openVault(path, await secret('outer'), { costLevel, readOnly: true });
    expect(kept.info().headers.backup.state).toBe('ok');
    expect(kept.state.dataSize + OVERHEAD_BYTES).toBe(FILE_SIZE);
    expect(kept.warnings.some((warning) => /interrupted resize/.test(warning))).toBe(true);
    await kept.close();
    // Now destroy the old backup as well: the primary alone opens it.
    const file = await openContainerFile(path, 'write');
    await file.write(Buffer.alloc(4096, 0xee), FILE_SIZE - 131072);
    await file.close();
    const primaryOnly = await openVault(path, await secret('outer'), { costLevel, readOnly: true });
    expect(primaryOnly.info().headers.backup.state).toBe('damaged');
    expect(primaryOnly.info().headers.authoritative).toBe('primary');
    await primaryOnly.close();
  });
});

describe('a secret of the other kind of volume', () => {
  it('is refused as a new outer secret when it opens the hidden volume, and the other way round', async () => {
    const path = await newVault('hidden.vol', true);
    const file = await openContainerFile(path, 'read');
    const outerState = await unlockHeaders(file, await secret('outer'), costLevel);
    const hiddenState = await unlockHeaders(file, await secret('hidden'), costLevel);
    expect([outerState.kind, hiddenState.kind]).toEqual(['outer', 'hidden']);
    const ofOuter = await otherSlotsOf(file, outerState);
    const ofHidden = await otherSlotsOf(file, hiddenState);
    expect([ofOuter.kind, ofHidden.kind]).toEqual(['hidden', 'outer']);
    const copy = (state: typeof outerState) =>
      [copySlotTable(state.tables[0]), copySlotTable(state.tables[1])] as [
        ReturnType<typeof copySlotTable>,
        ReturnType<typeof copySlotTable>,
      ];
    await expect(
      wrapInBothCopies(outerState, copy(outerState), 2, await secret('hidden'), costLevel, ofOuter),
    ).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/opens the hidden volume/) });
    await expect(
      wrapInBothCopies(hiddenState, copy(hiddenState), 2, await secret('outer'), costLevel, ofHidden),
    ).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/opens the outer volume/) });
    // A fresh secret is fine either way.
    await wrapInBothCopies(outerState, copy(outerState), 2, await secret('third'), costLevel, ofOuter);
    await file.close();
  });
});

describe('reading a secret', () => {
  it('wipes the keyfile digests once they are in the material', async () => {
    const key = Buffer.from('keyfile bytes');
    wiped.length = 0;
    const read = await Secret.fromInputs({
      password: Buffer.from('p'),
      keyfiles: [{ name: 'k', bytes: key }],
    });
    expect(wasWiped(createHash('blake2b512').update(key).digest())).toBe(true);
    read.wipe();
  });
});

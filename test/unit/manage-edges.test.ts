// The header maintenance calls (src/container/manage.ts) at their edges: new secrets given as a
// function, a full and an empty keyslot, a secret that opens only an out-of-date copy, repair of a
// healthy vault, header backups that must never overwrite or leave a temporary behind, and restores
// of backups that are missing, cut, of another size or of another vault. Every refusal leaves the
// vault file byte for byte as it was; after every call, refused or not, each key buffer it made
// (master and header keys, slot keys, the restore's key copy) is zero and the vault file is closed.
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
import {
  BACKUP_AREA_BYTES,
  MIN_FILE_BYTES,
  SEALED_BODY_OFFSET,
  SECTOR_BYTES,
} from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { type KeyWatch, watched } from '../tools/key-watch.js';
import { closesPerOpen, recordingOpener } from '../tools/recording-file.js';
import { refusedUnchanged, sha256File } from '../tools/unchanged.js';

// Every locked key buffer (master and header keys of each header state), and what manage.ts itself
// derives or copies: the slot key of a restore and the master keys it hands to stateFromMasterKey.
const watch = vi.hoisted((): KeyWatch => ({ keys: [], ciphers: [] }));
vi.mock('../../src/crypto/memory.js', async (importOriginal) => {
  const { watchLockedMemory } = await import('../tools/key-watch.js');
  return watchLockedMemory(await importOriginal(), watch);
});
vi.mock('../../src/container/header-pair.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/header-pair.js')>();
  const { recordKey } = await import('../tools/key-watch.js');
  return {
    ...original,
    deriveCopySlotKey: async (...args: Parameters<typeof original.deriveCopySlotKey>) =>
      recordKey(watch, 'slot key', await original.deriveCopySlotKey(...args)),
    stateFromMasterKey: (...args: Parameters<typeof original.stateFromMasterKey>) => {
      recordKey(watch, 'master key given to stateFromMasterKey', args[3]);
      return original.stateFromMasterKey(...args);
    },
  };
});

const costLevel = MIN_COST_LEVEL;
const SIZE = MIN_FILE_BYTES;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-manage-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function newVault(name: string, text = 'first', fileSize = SIZE): Promise<string> {
  const path = join(dir, name);
  await createVault(path, { fileSize, secret: await secret(text), costLevel });
  return path;
}

async function opens(path: string, text: string): Promise<boolean> {
  const vault = await openVault(path, await secret(text), { costLevel, readOnly: true }).catch((error) => {
    if (isVaultError(error, 'CANNOT_UNLOCK')) return null;
    throw error;
  });
  await vault?.close();
  return vault !== null;
}

async function headers(path: string, text: string) {
  const vault = await openVault(path, await secret(text), { costLevel, readOnly: true });
  const info = vault.info();
  await vault.close();
  return info;
}

/** Flips one bit in the sealed body of a header copy: that copy no longer authenticates. */
async function damage(path: string, end: 'primary' | 'backup'): Promise<void> {
  const size = (await stat(path)).size;
  const at = (end === 'primary' ? 0 : size - BACKUP_AREA_BYTES) + SEALED_BODY_OFFSET + 100;
  const handle = await open(path, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, at);
  byte[0] = (byte[0] as number) ^ 1;
  await handle.write(byte, 0, 1, at);
  await handle.close();
}

/**
 * A passwd from `old` to `new` cut after its backup copy was written: the front copy is still the
 * old one (sequence 1, out of date), the back copy the new one (sequence 2).
 */
async function stalePrimary(name: string, before?: (path: string) => Promise<void>): Promise<string> {
  const path = await newVault(name, 'old');
  await before?.(path);
  const front = (await readFile(path)).subarray(0, SECTOR_BYTES);
  await changeSecret(path, await secret('old'), await secret('new'), { costLevel });
  const handle = await open(path, 'r+');
  await handle.write(front, 0, SECTOR_BYTES, 0);
  await handle.close();
  return path;
}

describe('new secrets given as a function', () => {
  it('passwd asks for the new secret only once the current one unlocked, and wipes it after use', async () => {
    const path = await newVault('passwd-fn.vol');
    const asked: Secret[] = [];
    const next = async () => {
      const given = await secret('second');
      asked.push(given);
      return given;
    };
    const wrong = await refusedUnchanged(path, watch, async () =>
      changeSecret(path, await secret('wrong'), next, { costLevel }),
    );
    expect(wrong.code).toBe('CANNOT_UNLOCK');
    expect(asked).toHaveLength(0);
    const current = await secret('first');
    expect(await watched(watch, () => changeSecret(path, current, next, { costLevel }))).toBe(0);
    expect(asked).toHaveLength(1);
    expect(() => asked[0]?.material).toThrow('secret already wiped');
    expect(await opens(path, 'second')).toBe(true);
    expect(await opens(path, 'first')).toBe(false);
  });

  it('key add takes a function too: the new secret lands in the next slot and is wiped', async () => {
    const path = await newVault('add-fn.vol');
    let given: Secret | null = null;
    const current = await secret('first');
    const slot = await watched(watch, () =>
      addKey(
        path,
        current,
        async () => {
          given = await secret('added');
          return given;
        },
        { costLevel },
      ),
    );
    expect(slot).toBe(1);
    expect(() => (given as Secret | null)?.material).toThrow('secret already wiped');
    expect(await opens(path, 'added')).toBe(true);
    expect(await opens(path, 'first')).toBe(true);
  });
});

describe('keyslots', () => {
  it('with all 16 slots in use key add is refused before the new secret is asked for; a freed slot is reused', async () => {
    const path = await newVault('full.vol', 'key 0');
    for (let slot = 1; slot < 16; slot++) {
      expect(await addKey(path, await secret('key 0'), await secret(`key ${slot}`), { costLevel })).toBe(
        slot,
      );
    }
    let asked = false;
    const error = await refusedUnchanged(path, watch, async () =>
      addKey(
        path,
        await secret('key 0'),
        async () => {
          asked = true;
          return secret('key 16');
        },
        { costLevel },
      ),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'all 16 keyslots are in use',
      hint: 'remove one first',
      reason: 'keyslots-full',
    });
    expect(asked).toBe(false);
    expect(await removeKey(path, await secret('key 0'), { costLevel, slot: 7 })).toBe(7);
    expect(await addKey(path, await secret('key 3'), await secret('key 16'), { costLevel })).toBe(7);
    expect((await headers(path, 'key 16')).keyslots).toMatchObject({ opened: 7 });
    expect((await headers(path, 'key 16')).keyslots.used).toHaveLength(16);
  });

  it('removing an empty slot by number is refused, naming the slot and the vault', async () => {
    const path = await newVault('empty-slot.vol');
    const error = await refusedUnchanged(path, watch, async () =>
      removeKey(path, await secret('first'), { costLevel, slot: 3 }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'keyslot 3 is empty',
      hint: 'list the keyslots in use first',
      reason: 'empty-keyslot',
      details: { path },
    });
  });

  it('the last keyslot is never removed, by secret or by number', async () => {
    const path = await newVault('last-slot.vol');
    for (const options of [{ costLevel }, { costLevel, slot: 0 }]) {
      const error = await refusedUnchanged(path, watch, async () =>
        removeKey(path, await secret('first'), options),
      );
      expect(error).toMatchObject({
        code: 'USAGE',
        message: 'this is the last keyslot; removing it would lock the vault for good',
        hint: 'add another secret first',
        reason: 'last-keyslot',
      });
    }
    expect(await opens(path, 'first')).toBe(true);
  });

  it('removing a slot by number clears that slot only: the others stay in use and open', async () => {
    const path = await newVault('remove-one.vol');
    await addKey(path, await secret('first'), await secret('second'), { costLevel });
    await addKey(path, await secret('first'), await secret('third'), { costLevel });
    const first = await secret('first');
    expect(await watched(watch, () => removeKey(path, first, { costLevel, slot: 1 }))).toBe(1);
    expect((await headers(path, 'third')).keyslots).toEqual({ total: 16, used: [0, 2], opened: 2 });
    expect(await opens(path, 'second')).toBe(false);
    expect(await opens(path, 'first')).toBe(true);
  });
});

describe('a secret that opens only the out-of-date copy of an interrupted update', () => {
  it('passwd and key remove with it are refused, pointing to repair; repair then finishes the update', async () => {
    const path = await stalePrimary('stale.vol');
    expect((await headers(path, 'old')).keyslots.opened).toBeNull();
    const expected = {
      code: 'USAGE',
      message: 'this secret opens only an out-of-date header copy (an earlier update was interrupted)',
      hint: 'repair the vault first, then try again',
      reason: 'stale-copy-only',
    };
    const passwd = await refusedUnchanged(path, watch, async () =>
      changeSecret(path, await secret('old'), await secret('other'), { costLevel }),
    );
    expect(passwd).toMatchObject(expected);
    const remove = await refusedUnchanged(path, watch, async () =>
      removeKey(path, await secret('old'), { costLevel }),
    );
    expect(remove).toMatchObject(expected);
    const current = await secret('new');
    expect(await watched(watch, () => repairHeaders(path, current, { costLevel }))).toEqual({
      repaired: ['primary'],
    });
    expect(await opens(path, 'old')).toBe(false);
    expect((await headers(path, 'new')).headers).toMatchObject({
      primary: { state: 'ok', sequence: 3 },
      backup: { state: 'ok', sequence: 3 },
    });
  });
});

describe('repair', () => {
  it('a healthy vault: nothing reported, nothing written', async () => {
    const path = await newVault('healthy.vol');
    const recording = recordingOpener();
    const before = await sha256File(path);
    const current = await secret('first');
    const result = await watched(watch, () =>
      repairHeaders(path, current, { costLevel, openFile: recording.open }),
    );
    expect(result).toEqual({ repaired: [] });
    expect(recording.events.filter((event) => event.op === 'write' || event.op === 'sync')).toEqual([]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
    expect(await sha256File(path)).toBe(before);
  });

  it('names the copy it rewrote: a damaged front copy as primary, a damaged back copy as backup', async () => {
    for (const end of ['primary', 'backup'] as const) {
      const path = await newVault(`damaged-${end}.vol`);
      await damage(path, end);
      expect((await headers(path, 'first')).headers[end].state).toBe('damaged');
      const current = await secret('first');
      expect(await watched(watch, () => repairHeaders(path, current, { costLevel }))).toEqual({
        repaired: [end],
      });
      expect((await headers(path, 'first')).headers).toMatchObject({
        primary: { state: 'ok', sequence: 2 },
        backup: { state: 'ok', sequence: 2 },
      });
    }
  });
});

describe('header backup', () => {
  it('an existing target is never overwritten (EXISTS with its own hint), and the vault is only read', async () => {
    const path = await newVault('backup-exists.vol');
    const target = join(dir, 'backup-exists.hdr');
    await writeFile(target, 'an older backup');
    const recording = recordingOpener();
    const error = await refusedUnchanged(path, watch, async () =>
      backupHeader(path, await secret('first'), target, { costLevel, openFile: recording.open }),
    );
    expect(error).toMatchObject({
      code: 'EXISTS',
      message: `file exists: ${target}`,
      hint: 'choose another name: a header backup is never overwritten',
      reason: 'exists-never-replaced',
    });
    expect(await readFile(target, 'utf8')).toBe('an older backup');
    // The target is checked before the secret: the vault was not even opened.
    expect(recording.events).toEqual([]);
  });

  it('a target that appears while the backup is taken is not overwritten, and no temporary file stays', async () => {
    const path = await newVault('backup-race.vol');
    const folder = await mkdtemp(join(dir, 'race-'));
    const target = join(folder, 'race.hdr');
    const recording = recordingOpener({
      onOpen: async () => {
        await writeFile(target, 'written by someone else');
      },
    });
    const error = await refusedUnchanged(path, watch, async () =>
      backupHeader(path, await secret('first'), target, { costLevel, openFile: recording.open }),
    );
    expect(error).toMatchObject({
      code: 'EXISTS',
      hint: 'choose another name: a header backup is never overwritten',
      reason: 'exists-never-replaced',
    });
    expect(await readFile(target, 'utf8')).toBe('written by someone else');
    expect(await readdir(folder)).toEqual(['race.hdr']);
    expect(recording.events.filter((event) => event.op === 'open')).toEqual([
      { op: 'open', path, mode: 'read' },
    ]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
  });

  it('a target in a missing folder: NOT_FOUND naming the target, nothing left behind', async () => {
    const path = await newVault('backup-nofolder.vol');
    const target = join(dir, 'no such folder', 'x.hdr');
    const error = await refusedUnchanged(path, watch, async () =>
      backupHeader(path, await secret('first'), target, { costLevel }),
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND', message: `no such file: ${target}` });
    await expect(stat(join(dir, 'no such folder'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a damaged or out-of-date front copy is refused, saying which, pointing to repair', async () => {
    const damaged = await newVault('backup-damaged.vol');
    await damage(damaged, 'primary');
    const stale = await stalePrimary('backup-stale.vol');
    for (const [path, text, what] of [
      [damaged, 'first', 'damaged'],
      [stale, 'new', 'out of date (an update was interrupted)'],
    ] as const) {
      const target = join(dir, `${what.length}.hdr`);
      const error = await refusedUnchanged(path, watch, async () =>
        backupHeader(path, await secret(text), target, { costLevel }),
      );
      expect(error).toMatchObject({
        code: 'USAGE',
        message: `the front header copy of ${path} is ${what}; a backup of it would not restore`,
        hint: 'repair the vault first (that rewrites it from the back copy), then take the backup',
        reason: 'backup-of-damaged-front',
        details: { path },
      });
      await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });
});

describe('header restore', () => {
  async function backupOf(path: string, text: string, name: string): Promise<string> {
    const target = join(dir, name);
    await backupHeader(path, await secret(text), target, { costLevel });
    return target;
  }

  it('a missing backup file: NOT_FOUND naming it, the vault untouched', async () => {
    const path = await newVault('restore-missing.vol');
    const source = join(dir, 'not-there.hdr');
    const error = await refusedUnchanged(path, watch, async () =>
      restoreHeader(path, await secret('first'), source, { costLevel }),
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND', message: `no such file: ${source}` });
  });

  it('a backup file one byte too long or too short is refused like a wrong secret', async () => {
    const path = await newVault('restore-length.vol');
    const good = await readFile(await backupOf(path, 'first', 'restore-length.hdr'));
    for (const [name, bytes] of [
      ['long.hdr', Buffer.concat([good, Buffer.alloc(1)])],
      ['short.hdr', good.subarray(0, good.length - 1)],
    ] as const) {
      const source = join(dir, name);
      await writeFile(source, bytes);
      const recording = recordingOpener();
      const error = await refusedUnchanged(path, watch, async () =>
        restoreHeader(path, await secret('first'), source, { costLevel, openFile: recording.open }),
      );
      expect(error.code).toBe('CANNOT_UNLOCK');
      expect(recording.events).toEqual([]);
    }
  });

  it('a file too short or of a ragged size to be a vault is refused before any key is derived', async () => {
    const vault = await newVault('restore-source.vol');
    const source = await backupOf(vault, 'first', 'restore-source.hdr');
    const short = join(dir, 'short.vol');
    await writeFile(short, (await readFile(vault)).subarray(0, SIZE - SECTOR_BYTES));
    const ragged = await newVault('ragged.vol');
    await writeFile(ragged, Buffer.alloc(100), { flag: 'a' });
    for (const path of [short, ragged]) {
      const error = await refusedUnchanged(path, watch, async () =>
        restoreHeader(path, await secret('first'), source, { costLevel }),
      );
      expect(error).toMatchObject({
        code: 'USAGE',
        message: `${path} is too short to be a vault`,
        hint: 'name the vault file the backup was made from',
      });
      expect(watch.keys).toEqual([]);
    }
  });

  it('restores onto a vault of the smallest size, with a sequence above both copies', async () => {
    const path = await newVault('restore-min.vol', 'before');
    expect((await stat(path)).size).toBe(MIN_FILE_BYTES);
    const source = await backupOf(path, 'before', 'restore-min.hdr');
    await changeSecret(path, await secret('before'), await secret('after'), { costLevel });
    const recording = recordingOpener();
    const current = await secret('before');
    expect(
      await watched(watch, () =>
        restoreHeader(path, current, source, { costLevel, openFile: recording.open }),
      ),
    ).toBe('outer');
    expect(closesPerOpen(recording.events)).toEqual([1]);
    expect(await opens(path, 'after')).toBe(false);
    expect((await headers(path, 'before')).headers).toMatchObject({
      primary: { state: 'ok', sequence: 3 },
      backup: { state: 'ok', sequence: 3 },
    });
  });

  it('a backup that opens but describes another size is refused; the vault untouched', async () => {
    const larger = await newVault('restore-larger.vol', 'first', 2 * SIZE);
    const source = await backupOf(larger, 'first', 'restore-larger.hdr');
    const path = await newVault('restore-smaller.vol');
    const error = await refusedUnchanged(path, watch, async () =>
      restoreHeader(path, await secret('first'), source, { costLevel }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'this header backup does not fit the vault (another size, or a damaged backup file)',
      hint: 'restore the backup of this vault',
    });
  });

  it("another vault's backup is refused unless forced; forced, it is written above the backup's sequence", async () => {
    const other = await newVault('restore-other-source.vol');
    const source = await backupOf(other, 'first', 'restore-other.hdr');
    const path = await newVault('restore-other-target.vol');
    const error = await refusedUnchanged(path, watch, async () =>
      restoreHeader(path, await secret('first'), source, { costLevel }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message:
        'cannot confirm that this header backup belongs to this vault (neither header copy of the vault opens with it)',
      hint: 'check that you named the right vault and backup; force the restore only if both headers are known to be damaged',
      reason: 'restore-unconfirmed',
    });
    // The key copy tried on the vault's own headers, which it did not open, is among the wiped ones.
    expect(watch.keys.filter((key) => key.what === 'master key given to stateFromMasterKey')).toHaveLength(2);
    const current = await secret('first');
    expect(await watched(watch, () => restoreHeader(path, current, source, { costLevel, force: true }))).toBe(
      'outer',
    );
    expect((await headers(path, 'first')).headers).toMatchObject({
      primary: { state: 'ok', sequence: 2 },
      backup: { state: 'ok', sequence: 2 },
    });
  });

  it('the restored copies get a sequence above a newer front copy when the back copy is damaged', async () => {
    const path = await newVault('restore-front-ahead.vol', 'a');
    const source = await backupOf(path, 'a', 'restore-front-ahead.hdr');
    await changeSecret(path, await secret('a'), await secret('b'), { costLevel });
    await changeSecret(path, await secret('b'), await secret('c'), { costLevel });
    await damage(path, 'backup');
    const current = await secret('a');
    await watched(watch, () => restoreHeader(path, current, source, { costLevel }));
    expect((await headers(path, 'a')).headers).toMatchObject({
      primary: { state: 'ok', sequence: 4 },
      backup: { state: 'ok', sequence: 4 },
    });
  });

  it('the restored copies get a sequence above a newer back copy when the front copy is out of date', async () => {
    let source = '';
    const path = await stalePrimary('restore-back-ahead.vol', async (vault) => {
      source = await backupOf(vault, 'old', 'restore-back-ahead.hdr');
    });
    const current = await secret('old');
    await watched(watch, () => restoreHeader(path, current, source, { costLevel }));
    expect(await opens(path, 'new')).toBe(false);
    expect((await headers(path, 'old')).headers).toMatchObject({
      primary: { state: 'ok', sequence: 3 },
      backup: { state: 'ok', sequence: 3 },
    });
  });
});

describe('files are closed', () => {
  it('passwd, key add, key remove and restore close the vault file once, also when refused', async () => {
    const path = await newVault('closes.vol');
    const source = join(dir, 'closes.hdr');
    await backupHeader(path, await secret('first'), source, { costLevel });
    const recording = recordingOpener();
    const openFile = recording.open;
    await changeSecret(path, await secret('first'), await secret('second'), { costLevel, openFile });
    await addKey(path, await secret('second'), await secret('third'), { costLevel, openFile });
    await removeKey(path, await secret('third'), { costLevel, openFile });
    await removeKey(path, await secret('second'), { costLevel, openFile }).catch(() => {});
    await changeSecret(path, await secret('wrong'), await secret('x'), { costLevel, openFile }).catch(
      () => {},
    );
    await restoreHeader(path, await secret('first'), source, { costLevel, openFile });
    expect(closesPerOpen(recording.events)).toEqual([1, 1, 1, 1, 1, 1]);
  });
});

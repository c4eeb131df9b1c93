// createVault (src/container/create.ts) at its edges: the sizes, hidden sizes and secrets it refuses
// (each with its message, hint and reason, nothing left in the folder), the outer format running with
// the hidden area protected to the byte, the formats' writes synced before the vault is published and
// the file closed once, a failing disk and an abort (nothing left behind, the fill stopping at once),
// what a quick vault writes, and the master key rule. After every call each key buffer is zero and
// each sector cipher, the fill's throwaway one included, destroyed.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { newMasterKey } from '../../src/container/create.js';
import {
  type CreateOptions,
  createVault,
  isVaultError,
  openVault,
  Secret,
  type VaultError,
} from '../../src/container/index.js';
import {
  DATA_OFFSET,
  MIN_DATA_BYTES,
  MIN_FILE_BYTES,
  OVERHEAD_BYTES,
  SECTOR_BYTES,
} from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { type KeyWatch, watched } from '../tools/key-watch.js';
import { closesPerOpen, errnoError, recordingOpener, unsyncedWrites } from '../tools/recording-file.js';

const watch = vi.hoisted((): KeyWatch => ({ keys: [], ciphers: [] }));
vi.mock('../../src/crypto/memory.js', async (importOriginal) => {
  const { watchLockedMemory } = await import('../tools/key-watch.js');
  return watchLockedMemory(await importOriginal(), watch);
});
vi.mock('../../src/container/vault-suites.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/container/vault-suites.js')>();
  const { watchCipherFactory } = await import('../tools/key-watch.js');
  return {
    ...original,
    createVaultSectorCipher: watchCipherFactory(original.createVaultSectorCipher, watch),
  };
});
const space = vi.hoisted(() => ({ free: null as number | null }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const { withFreeSpace } = await import('../tools/free-space.js');
  return withFreeSpace(await importOriginal(), space);
});
// randomFillSync, with the next `equalHalves` calls filling a constant (a key whose halves are equal).
const random = vi.hoisted(() => ({ equalHalves: 0, calls: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return {
    ...original,
    randomFillSync: <T extends NodeJS.ArrayBufferView>(buffer: T, ...rest: number[]): T => {
      random.calls++;
      if (random.equalHalves > 0) {
        random.equalHalves--;
        new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).fill(0x5c);
        return buffer;
      }
      return original.randomFillSync(buffer, ...rest);
    },
  };
});

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const SIZE = 2 * MiB;
const OUTER_DATA = SIZE - OVERHEAD_BYTES;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-create-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  space.free = null;
});

/** A createVault that must be refused, in a folder of its own that it must leave empty. */
async function refusedLeavingNothing(options: Omit<CreateOptions, 'secret'> & { secret?: Secret }) {
  const folder = await mkdtemp(join(dir, 'refused-'));
  const path = join(folder, 'refused.vol');
  const given = options.secret ?? (await secret('outer'));
  const error = await watched(watch, () => createVault(path, { costLevel, ...options, secret: given })).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(isVaultError(error), String(error)).toBe(true);
  expect(await readdir(folder), 'files left behind').toEqual([]);
  return { error: error as VaultError, path, folder };
}

describe('refused sizes and secrets', () => {
  it('a vault below 1 MiB, or not in whole 4 KiB sectors', async () => {
    for (const fileSize of [4096, MIN_FILE_BYTES - SECTOR_BYTES]) {
      const { error } = await refusedLeavingNothing({ fileSize });
      expect(error).toMatchObject({
        code: 'USAGE',
        message: 'a vault must be at least 1 MiB',
        hint: 'give a larger size, e.g. 64M',
      });
    }
    const { error } = await refusedLeavingNothing({ fileSize: MIN_FILE_BYTES + 1 });
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'the size must be a multiple of 4 KiB (4096 bytes)',
      hint: 'use units: 64M, 2G, 1.5T',
    });
  });

  it('a size past 8 PiB (beyond exact JavaScript integers), and one that is not a whole number', async () => {
    for (const fileSize of [2 ** 60, 2 ** 53]) {
      const { error } = await refusedLeavingNothing({ fileSize });
      expect(error).toMatchObject({
        code: 'USAGE',
        message: 'the size is larger than a vault can be (8 PiB)',
        hint: 'give a smaller size',
      });
    }
    for (const fileSize of [Number.NaN, MIN_FILE_BYTES + 0.5]) {
      const { error } = await refusedLeavingNothing({ fileSize });
      expect(error).toMatchObject({ code: 'USAGE', message: 'a vault must be at least 1 MiB' });
    }
  });

  it('too little free space for the vault, naming what needs it', async () => {
    space.free = SIZE - 1;
    const { error, folder } = await refusedLeavingNothing({ fileSize: SIZE });
    expect(error).toMatchObject({
      code: 'IO',
      message: `not enough free space: the vault needs 0.0 GiB, ${folder} has 0.0 GiB free`,
    });
  });

  it('a quick vault with a hidden volume', async () => {
    const { error } = await refusedLeavingNothing({
      fileSize: SIZE,
      quick: true,
      hidden: { dataSize: MIN_DATA_BYTES, secret: await secret('hidden') },
    });
    expect(error).toMatchObject({
      code: 'USAGE',
      message:
        'a vault created without its fill cannot hold a hidden volume: never-written sectors would stand out around it',
      hint: 'fill the data area (the fill runs at disk speed)',
      reason: 'quick-with-hidden',
    });
  });

  it('a hidden volume below 768 KiB or not in whole sectors; then one too large for the outer volume', async () => {
    for (const dataSize of [MIN_DATA_BYTES - SECTOR_BYTES, MIN_DATA_BYTES + 1]) {
      const { error } = await refusedLeavingNothing({
        fileSize: SIZE,
        hidden: { dataSize, secret: await secret('hidden') },
      });
      expect(error).toMatchObject({
        code: 'USAGE',
        message: 'a hidden volume must be a multiple of 4 KiB and at least 768 KiB',
        hint: 'give a larger hidden volume size',
        reason: 'hidden-too-small',
      });
    }
    const { error } = await refusedLeavingNothing({
      fileSize: SIZE,
      hidden: { dataSize: OUTER_DATA - MIN_DATA_BYTES + SECTOR_BYTES, secret: await secret('hidden') },
    });
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'the hidden volume must be smaller than the outer volume, leaving it at least 768 KiB',
      hint: 'give a smaller hidden volume or a larger vault',
      reason: 'hidden-too-large-for-vault',
    });
  });

  it('the outer secret given for the hidden volume too', async () => {
    const { error } = await refusedLeavingNothing({
      fileSize: SIZE,
      hidden: { dataSize: MIN_DATA_BYTES, secret: await secret('outer') },
    });
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'the hidden volume needs a secret different from the outer one',
      hint: 'choose another password or keyfile for the hidden volume',
    });
  });

  it('a secret already wiped: a VaultError, not a crash, and nothing left', async () => {
    const wiped = await secret('outer');
    wiped.wipe();
    await refusedLeavingNothing({ fileSize: SIZE, secret: wiped });
  });
});

describe('hidden volumes of the smallest and the largest size', () => {
  for (const [name, dataSize] of [
    ['smallest', MIN_DATA_BYTES],
    ['largest', OUTER_DATA - MIN_DATA_BYTES],
  ] as const) {
    it(`the ${name} hidden volume that fits is made and opens`, async () => {
      const path = join(dir, `hidden-${name}.vol`);
      const outer = await secret('outer');
      const hidden = await secret('hidden');
      await watched(watch, () =>
        createVault(path, { fileSize: SIZE, secret: outer, costLevel, hidden: { dataSize, secret: hidden } }),
      );
      const vault = await openVault(path, await secret('hidden'), { costLevel, readOnly: true });
      expect(vault.size).toBe(dataSize);
      expect(vault.info().kind).toBe('hidden');
      await vault.close();
    });
  }
});

describe('the formats', () => {
  it('the outer format runs with the hidden area protected from its first byte; the hidden format on the hidden volume', async () => {
    const path = join(dir, 'protected.vol');
    const hiddenStart = OUTER_DATA - MIN_DATA_BYTES;
    const outerSaw: unknown[] = [];
    const hiddenSaw: unknown[] = [];
    const recording = recordingOpener();
    const outer = await secret('outer');
    const hidden = await secret('hidden');
    await watched(watch, () =>
      createVault(path, {
        fileSize: SIZE,
        secret: outer,
        costLevel,
        openFile: recording.open,
        format: async (vault) => {
          await vault.writeAt(Buffer.from('outer, just below the hidden area'), hiddenStart - 33);
          const refused = await vault.writeAt(Buffer.from('x'), hiddenStart).then(
            () => null,
            (error: unknown) => error,
          );
          outerSaw.push({ readOnly: vault.readOnly, refused: (refused as Error | null)?.message ?? null });
        },
        hidden: {
          dataSize: MIN_DATA_BYTES,
          secret: hidden,
          format: async (vault) => {
            hiddenSaw.push({ kind: vault.info().kind, size: vault.size, readOnly: vault.readOnly });
            await vault.writeAt(Buffer.from('hidden, first bytes'), 0);
          },
        },
      }),
    );
    expect(outerSaw).toEqual([
      {
        readOnly: false,
        refused: 'write refused to protect the hidden volume; the outer volume is read-only until dismounted',
      },
    ]);
    expect(hiddenSaw).toEqual([{ kind: 'hidden', size: MIN_DATA_BYTES, readOnly: false }]);
    // Every write synced before the file was closed (and published), the file closed once.
    expect(unsyncedWrites(recording.events)).toEqual([]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
    const outerVault = await openVault(path, await secret('outer'), { costLevel, readOnly: true });
    const below = Buffer.alloc(33);
    await outerVault.readAt(below, hiddenStart - 33);
    expect(below.toString()).toBe('outer, just below the hidden area');
    await outerVault.close();
    const hiddenVault = await openVault(path, await secret('hidden'), { costLevel, readOnly: true });
    const first = Buffer.alloc(19);
    await hiddenVault.readAt(first, 0);
    expect(first.toString()).toBe('hidden, first bytes');
    await hiddenVault.close();
  });

  it('without a hidden volume the outer format writes are synced before the vault is published', async () => {
    const path = join(dir, 'format-synced.vol');
    const recording = recordingOpener();
    const outer = await secret('outer');
    await watched(watch, () =>
      createVault(path, {
        fileSize: SIZE,
        secret: outer,
        costLevel,
        openFile: recording.open,
        format: (vault) => vault.writeAt(Buffer.alloc(SECTOR_BYTES, 7), SECTOR_BYTES),
      }),
    );
    expect(unsyncedWrites(recording.events)).toEqual([]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
  });
});

describe('failures leave nothing behind', () => {
  it('a disk that fills up during the fill: IO naming the vault, no file, keys wiped, fill cipher destroyed', async () => {
    const recording = recordingOpener({
      failWrite: (offset) => (offset >= DATA_OFFSET + MiB ? errnoError('ENOSPC') : null),
    });
    const { error, path } = await refusedLeavingNothing({
      fileSize: SIZE,
      openFile: recording.open,
      hidden: { dataSize: MIN_DATA_BYTES, secret: await secret('hidden') },
    });
    expect(error).toMatchObject({
      code: 'IO',
      message: `no space left on the disk holding ${path}`,
      hint: 'free some space and try again',
    });
    expect(closesPerOpen(recording.events)).toEqual([1]);
  });

  it('an abort during the fill stops it at the chunk in flight; the partial vault is removed', async () => {
    const controller = new AbortController();
    let progressAfterAbort = 0;
    const { error } = await refusedLeavingNothing({
      fileSize: 8 * MiB,
      signal: controller.signal,
      onProgress: () => {
        if (controller.signal.aborted) progressAfterAbort++;
        controller.abort();
      },
    });
    expect(error).toMatchObject({
      code: 'INTERRUPTED',
      message: 'interrupted; the partial vault was removed',
      hint: 'run the command again',
    });
    expect(progressAfterAbort).toBe(0);
  });
});

describe('what is written', () => {
  it('a quick vault writes its header areas only: the data area is left unwritten', async () => {
    const path = join(dir, 'quick.vol');
    const outer = await secret('outer');
    await watched(watch, () => createVault(path, { fileSize: SIZE, secret: outer, costLevel, quick: true }));
    const raw = await readFile(path);
    const zero = (from: number, to: number) => raw.subarray(from, to).every((byte) => byte === 0);
    expect(zero(SECTOR_BYTES, DATA_OFFSET)).toBe(false); // random bytes around the header
    expect(zero(DATA_OFFSET, DATA_OFFSET + OUTER_DATA)).toBe(true);
    expect(zero(DATA_OFFSET + OUTER_DATA, SIZE)).toBe(false); // the backup area
  });

  it('a master key whose two halves came out equal is drawn again (XTS needs two different keys)', () => {
    random.calls = 0;
    random.equalHalves = 1;
    const key = newMasterKey();
    expect(random.calls).toBe(2);
    expect(key.subarray(0, 32).equals(key.subarray(32))).toBe(false);
    expect(key.every((byte) => byte === 0x5c)).toBe(false);
  });
});

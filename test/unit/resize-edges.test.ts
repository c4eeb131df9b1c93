// resizeVault (src/container/resize.ts) at its edges: the secrets and sizes it refuses (a wrong or
// hidden secret, a shrink, a size below what an interrupted resize left), each leaving the file byte
// for byte as it was; a resize to the same size that writes nothing; the free space it asks for; an
// abort during the fill; the old backup area, which becomes data (overwritten, nothing next to it
// touched); and the vault handed to afterGrow. After every call each key buffer is zero, each fill
// cipher destroyed, and the file closed once.
import { mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createVault,
  openVault,
  resizeVault,
  Secret,
  VAULT_WARNINGS,
  type Vault,
} from '../../src/container/index.js';
import { DATA_OFFSET, HEADER_AREA_BYTES, OVERHEAD_BYTES, SECTOR_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { type KeyWatch, watched } from '../tools/key-watch.js';
import { closesPerOpen, recordingOpener } from '../tools/recording-file.js';
import { refusedUnchanged, sha256File } from '../tools/unchanged.js';

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

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const SIZE = 2 * MiB;
const DATA = SIZE - OVERHEAD_BYTES;
const HIDDEN = 768 * 1024;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-resize-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  space.free = null;
});

/** A 2 MiB vault ('pw'), optionally with a 768 KiB hidden volume ('hidden'), a mark at offset 0. */
async function newVault(name: string, hidden = false): Promise<string> {
  const path = join(dir, name);
  await createVault(path, {
    fileSize: SIZE,
    secret: await secret('pw'),
    costLevel,
    format: (vault) => vault.writeAt(Buffer.from('outer mark'), 0),
    ...(hidden ? { hidden: { dataSize: HIDDEN, secret: await secret('hidden') } } : {}),
  });
  return path;
}

async function readText(vault: Vault, offset: number, length: number): Promise<string> {
  const bytes = Buffer.alloc(length);
  await vault.readAt(bytes, offset);
  return bytes.toString();
}

async function outerMark(path: string, dataSize: number, warnings: string[] = []): Promise<void> {
  const vault = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
  expect(vault.size).toBe(dataSize);
  expect(vault.warnings).toEqual(warnings);
  expect(await readText(vault, 0, 10)).toBe('outer mark');
  await vault.close();
}

describe('resize refusals leave the file as it was', () => {
  it('a wrong secret: cannot unlock', async () => {
    const path = await newVault('wrong.vol');
    const error = await refusedUnchanged(path, watch, async () =>
      resizeVault(path, await secret('wrong'), 3 * MiB, { costLevel }),
    );
    expect(error.code).toBe('CANNOT_UNLOCK');
  });

  it('the secret of a hidden volume: refused as such, pointing to the outer secret', async () => {
    const path = await newVault('hidden-secret.vol', true);
    const error = await refusedUnchanged(path, watch, async () =>
      resizeVault(path, await secret('hidden'), 3 * MiB, { costLevel }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: 'this secret opens a hidden volume, which cannot be resized',
      hint: 'resize with the outer volume secret; the hidden volume keeps its size and place',
    });
  });

  it('a smaller size: shrinking is refused, naming the current size; the file closed once', async () => {
    const path = await newVault('shrink.vol');
    const recording = recordingOpener();
    const error = await refusedUnchanged(path, watch, async () =>
      resizeVault(path, await secret('pw'), SIZE - MiB / 4, { costLevel, openFile: recording.open }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: `shrinking is not supported (the vault file is ${SIZE} bytes)`,
      hint: 'give a size larger than the current one, or copy the files to a new, smaller vault',
    });
    expect(closesPerOpen(recording.events)).toEqual([1]);
  });

  it('a size below what an interrupted resize left is refused with that size; resizing to it finishes', async () => {
    const path = await newVault('interrupted.vol');
    await truncate(path, 4 * MiB); // a grow that stopped after lengthening the file
    const error = await refusedUnchanged(path, watch, async () =>
      resizeVault(path, await secret('pw'), 3 * MiB, { costLevel }),
    );
    expect(error).toMatchObject({
      code: 'USAGE',
      message: `an interrupted resize made the file ${4 * MiB} bytes; give at least that size`,
      hint: `resize it again to ${4 * MiB} bytes or more`,
      reason: 'resize-below-interrupted',
      details: { size: 4 * MiB },
    });
    const current = await secret('pw');
    expect(await watched(watch, () => resizeVault(path, current, 4 * MiB, { costLevel }))).toEqual({
      oldDataSize: DATA,
      newDataSize: 4 * MiB - OVERHEAD_BYTES,
    });
    await outerMark(path, 4 * MiB - OVERHEAD_BYTES);
  });

  it('too little free space for the growth: refused before any write, naming what needs it', async () => {
    const path = await newVault('space.vol');
    space.free = MiB - 1;
    const error = await refusedUnchanged(path, watch, async () =>
      resizeVault(path, await secret('pw'), SIZE + MiB, { costLevel }),
    );
    expect(error.code).toBe('IO');
    expect(error.message).toBe(
      `not enough free space: growing the vault needs 0.0 GiB, ${dir} has 0.0 GiB free`,
    );
    // Exactly the growth free is enough: the file already on the disk is not counted twice.
    space.free = MiB;
    const current = await secret('pw');
    await watched(watch, () => resizeVault(path, current, SIZE + MiB, { costLevel }));
    space.free = null;
    await outerMark(path, SIZE + MiB - OVERHEAD_BYTES);
  });
});

describe('resize to the size the vault has', () => {
  it('a healthy vault: nothing written, nothing synced; afterGrow still gets the vault', async () => {
    const path = await newVault('same.vol');
    const before = await sha256File(path);
    const recording = recordingOpener();
    const sizes: number[] = [];
    const current = await secret('pw');
    const result = await watched(watch, () =>
      resizeVault(path, current, SIZE, {
        costLevel,
        openFile: recording.open,
        afterGrow: async (vault) => {
          sizes.push(vault.size);
        },
      }),
    );
    expect(result).toEqual({ oldDataSize: DATA, newDataSize: DATA });
    expect(sizes).toEqual([DATA]);
    expect(recording.events.filter((event) => event.op === 'write')).toEqual([]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
    expect(await sha256File(path)).toBe(before);
  });
});

describe('growing', () => {
  it('afterGrow gets the grown vault, writable, at the cost level given, both copies current; its writes stay', async () => {
    const path = await newVault('after-grow.vol');
    const recording = recordingOpener();
    const progress: Array<[number, number]> = [];
    const seen: unknown[] = [];
    const current = await secret('pw');
    const newData = 4 * MiB - OVERHEAD_BYTES;
    await watched(watch, () =>
      resizeVault(path, current, 4 * MiB, {
        costLevel,
        openFile: recording.open,
        onProgress: (done, total) => progress.push([done, total]),
        afterGrow: async (vault) => {
          const info = vault.info();
          seen.push({
            size: vault.size,
            readOnly: vault.readOnly,
            costLevel: vault.costLevel,
            kind: info.kind,
            headers: info.headers,
            warnings: vault.warnings,
          });
          await vault.writeAt(Buffer.from('written by afterGrow'), newData - 20);
        },
      }),
    );
    expect(seen).toEqual([
      {
        size: newData,
        readOnly: false,
        costLevel,
        kind: 'outer',
        headers: {
          authoritative: 'primary',
          primary: { state: 'ok', sequence: 2 },
          backup: { state: 'ok', sequence: 2 },
        },
        warnings: [],
      },
    ]);
    expect(progress[0]).toEqual([0, 2 * MiB]);
    expect(progress.at(-1)).toEqual([2 * MiB, 2 * MiB]);
    // The timestamps are the writes' own (a backup tool must see the change), the file closed once.
    expect(recording.events.filter((event) => event.op === 'setTimes')).toEqual([]);
    expect(closesPerOpen(recording.events)).toEqual([1]);
    await outerMark(path, newData);
    const vault = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
    expect(await readText(vault, newData - 20, 20)).toBe('written by afterGrow');
    await vault.close();
  });

  it('the old backup area becomes data: its header sectors are overwritten, the data right below is intact', async () => {
    const path = await newVault('old-backup.vol', true);
    // The hidden volume's last 64 KiB end where the old backup area starts.
    const hidden = await openVault(path, await secret('hidden'), { costLevel });
    await hidden.writeAt(Buffer.from('hidden mark below the old backup area'), HIDDEN - HEADER_AREA_BYTES);
    await hidden.writeAt(Buffer.from('hidden last bytes'), HIDDEN - 17);
    await hidden.close();
    const oldBackup = DATA_OFFSET + DATA;
    const raw = await readFile(path);
    const outerBackup = raw.subarray(oldBackup, oldBackup + SECTOR_BYTES);
    const hiddenBackup = raw.subarray(
      oldBackup + HEADER_AREA_BYTES,
      oldBackup + HEADER_AREA_BYTES + SECTOR_BYTES,
    );
    const current = await secret('pw');
    await watched(watch, () => resizeVault(path, current, 3 * MiB, { costLevel }));
    const after = await readFile(path);
    expect(after.subarray(oldBackup, oldBackup + SECTOR_BYTES).equals(outerBackup)).toBe(false);
    const oldHidden = after.subarray(
      oldBackup + HEADER_AREA_BYTES,
      oldBackup + HEADER_AREA_BYTES + SECTOR_BYTES,
    );
    expect(oldHidden.equals(hiddenBackup), 'the old hidden backup header is still there').toBe(false);
    // ... and now at the new end.
    expect(after.subarray(3 * MiB - HEADER_AREA_BYTES, 3 * MiB - HEADER_AREA_BYTES + SECTOR_BYTES)).toEqual(
      hiddenBackup,
    );
    const reopened = await openVault(path, await secret('hidden'), { costLevel, readOnly: true });
    expect(reopened.info().headers.backup.state).toBe('ok');
    expect(await readText(reopened, HIDDEN - HEADER_AREA_BYTES, 37)).toBe(
      'hidden mark below the old backup area',
    );
    expect(await readText(reopened, HIDDEN - 17, 17)).toBe('hidden last bytes');
    await reopened.close();
    await outerMark(path, 3 * MiB - OVERHEAD_BYTES);
  });

  it('an abort during the fill stops it at once: the vault is not grown, opens as before, and a new resize works', async () => {
    const path = await newVault('abort.vol');
    const controller = new AbortController();
    let progressAfterAbort = 0;
    const error = await watched(watch, async () =>
      resizeVault(path, await secret('pw'), SIZE + 3 * MiB, {
        costLevel,
        signal: controller.signal,
        onProgress: () => {
          if (controller.signal.aborted) progressAfterAbort++;
          controller.abort();
        },
      }).then(
        () => null,
        (caught: unknown) => caught,
      ),
    );
    expect(error).toMatchObject({
      code: 'INTERRUPTED',
      message: 'interrupted; the vault was not grown and opens as before; run the same resize again',
      hint: 'run the command again',
    });
    expect(progressAfterAbort).toBe(0);
    // At most the chunk in flight when the abort came was written past the old end.
    expect((await stat(path)).size).toBeLessThanOrEqual(SIZE + MiB);
    await outerMark(path, DATA, (await stat(path)).size > SIZE ? [VAULT_WARNINGS.interruptedResize] : []);
    await resizeVault(path, await secret('pw'), SIZE + 3 * MiB, { costLevel });
    await outerMark(path, SIZE + 3 * MiB - OVERHEAD_BYTES);
  });
});

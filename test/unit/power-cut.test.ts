// Power cuts (test/unit/power-cut.ts) at every mutating step of every header update (passwd, key add,
// key remove, repair, header restore, resize, hidden add) and of the data path (writeAt, flush):
// - the old or the new secret always opens, with the data intact;
// - once a call returned (acknowledged), what it did survives any cut: the new secret opens, a removed
//   secret does not, data written before an acknowledged flush is there;
// - backup -> sync -> primary -> sync: at no cut is the primary copy newer than the backup, and in the
//   recorded trace every primary header write comes after a sync that follows the backup write.
// Quick form in `npm test`; VAULT_SOAK=1 (`npm run soak`) draws many more cuts per step. Seeded: a
// failure names its seed, step and cut; VAULT_TEST_SEED=<seed> replays it.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addHiddenVolume,
  addKey,
  backupHeader,
  changeSecret,
  createVault,
  isVaultError,
  type OpenContainerFile,
  openVault,
  removeKey,
  repairHeaders,
  resizeVault,
  restoreHeader,
  Secret,
  type Vault,
} from '../../src/container/index.js';
import {
  BACKUP,
  type End,
  headerOffset,
  OVERHEAD_BYTES,
  PRIMARY,
  SECTOR_BYTES,
} from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { openHostFileWith } from '../../src/fuse/host-file.js';
import { findTool } from '../../src/host/process.js';
import { DISK_SECTOR, PowerCutDisk, prng, type TraceEntry, testSeed } from './power-cut.js';

const SOAK = process.env.VAULT_SOAK === '1';
/** Cuts drawn per step: the first keeps no unsynced write, the second all of them, the rest at random. */
const CUTS_PER_STEP = SOAK ? 40 : 3;
const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
const MARK = Buffer.from('survives a power cut');
const MARK_AT = SECTOR_BYTES * 7 + 100;
const seed = testSeed('power-cut');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-power-cut-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

/** Opens `image` with `text` read-only: the vault, or null when the secret does not open it. */
async function openImage(image: Buffer, text: string, kind?: 'outer' | 'hidden'): Promise<Vault | null> {
  try {
    const vault = await openVault('image.vol', await secret(text), {
      costLevel,
      readOnly: true,
      openFile: PowerCutDisk.reader(image),
    });
    if (kind) expect(vault.info().kind).toBe(kind);
    return vault;
  } catch (error) {
    if (isVaultError(error, 'CANNOT_UNLOCK')) return null;
    throw error;
  }
}

/** The secret opens the image, the mark is intact, and the primary copy is never ahead of the backup. */
async function opensIntact(image: Buffer, text: string, backupFirst = true): Promise<boolean> {
  const vault = await openImage(image, text);
  if (!vault) return false;
  try {
    const mark = Buffer.alloc(MARK.length);
    await vault.readAt(mark, MARK_AT);
    expect(mark.toString()).toBe(MARK.toString());
    const { primary, backup } = vault.info().headers;
    // Backup first: a primary copy that is readable and newer than a readable backup means the primary
    // was written before the backup was durable.
    if (backupFirst && primary.sequence !== null && backup.sequence !== null) {
      expect(primary.sequence, 'primary header newer than the backup').toBeLessThanOrEqual(backup.sequence);
    }
    return true;
  } finally {
    await vault.close();
  }
}

/** A vault file made on disk (createVault), with the mark written, as an in-memory image. */
async function baseImage(
  name: string,
  fileSize: number,
  build?: (path: string) => Promise<void>,
): Promise<{ path: string; image: Buffer }> {
  const path = join(dir, `${name}.vol`);
  await createVault(path, { fileSize, secret: await secret('old'), costLevel });
  const vault = await openVault(path, await secret('old'), { costLevel });
  await vault.writeAt(MARK, MARK_AT);
  await vault.close();
  await build?.(path);
  return { path, image: await readFile(path) };
}

/**
 * In the trace of a complete run: each write to the header copy that goes second (the primary, or the
 * backup when the primary was damaged) comes after a write of the other copy of the same kind and a
 * sync after that; the run ends with a sync after its last write.
 */
function checkOrder(trace: TraceEntry[], fileSize: number, first: End = BACKUP): void {
  const writes = trace.filter((entry) => entry.op === 'write');
  if (writes.length === 0) return;
  expect(trace.at(-1)?.op, 'an acknowledged update ends with a sync').toBe('sync');
  const second: End = first === BACKUP ? PRIMARY : BACKUP;
  for (const kind of ['outer', 'hidden'] as const) {
    const firstAt = headerOffset(kind, first, fileSize);
    const secondAt = headerOffset(kind, second, fileSize);
    let firstWritten = false;
    let syncedSinceFirst = false;
    let secondWritten = false;
    for (const entry of trace) {
      if (entry.op === 'sync') {
        if (firstWritten) syncedSinceFirst = true;
        continue;
      }
      if (entry.op !== 'write') continue;
      const touches = (at: number) => entry.offset < at + SECTOR_BYTES && at < entry.offset + entry.length;
      if (touches(firstAt)) {
        expect(secondWritten && !syncedSinceFirst, `${kind}: copies written in the wrong order`).toBe(false);
        firstWritten = true;
        syncedSinceFirst = false;
      }
      if (touches(secondAt)) {
        expect(
          firstWritten,
          `${kind}: ${END_NAME[second]} header written before the ${END_NAME[first]}`,
        ).toBe(true);
        expect(
          syncedSinceFirst,
          `${kind}: ${END_NAME[second]} header written before the ${END_NAME[first]} was synced`,
        ).toBe(true);
        secondWritten = true;
      }
    }
  }
}

const END_NAME = ['primary', 'backup'] as const;

interface Case {
  name: string;
  setup(): Promise<{ path: string; image: Buffer }>;
  run(path: string, openFile: OpenContainerFile): Promise<unknown>;
  /** Checks a cut image; `acknowledged`: the call had returned before the power failed. */
  check(image: Buffer, acknowledged: boolean): Promise<void>;
  /** The file size after the update (for the order check). */
  finalSize: number;
  /** The header copy written first: the backup, except when the primary is damaged. */
  first?: End;
}

const SIZE = 2 * MiB;

async function oldOrNew(image: Buffer, acknowledged: boolean, before = 'old', after = 'new'): Promise<void> {
  const opensAfter = await opensIntact(image, after);
  if (acknowledged) expect(opensAfter, `acknowledged: "${after}" opens`).toBe(true);
  else if (!opensAfter)
    expect(await opensIntact(image, before), `"${before}" or "${after}" opens`).toBe(true);
}

const cases: Case[] = [
  {
    name: 'passwd',
    finalSize: SIZE,
    setup: () => baseImage('passwd', SIZE),
    run: async (path, openFile) =>
      changeSecret(path, await secret('old'), await secret('new'), { costLevel, openFile }),
    async check(image, acknowledged) {
      await oldOrNew(image, acknowledged);
      if (acknowledged)
        expect(await openImage(image, 'old'), 'acknowledged passwd: old secret gone').toBeNull();
    },
  },
  {
    name: 'key add',
    finalSize: SIZE,
    setup: () => baseImage('key-add', SIZE),
    run: async (path, openFile) =>
      addKey(path, await secret('old'), await secret('new'), { costLevel, openFile }),
    async check(image, acknowledged) {
      expect(await opensIntact(image, 'old')).toBe(true);
      await oldOrNew(image, acknowledged);
    },
  },
  {
    name: 'key remove',
    finalSize: SIZE,
    setup: () =>
      baseImage('key-remove', SIZE, async (path) => {
        await addKey(path, await secret('old'), await secret('gone'), { costLevel });
      }),
    run: async (path, openFile) => removeKey(path, await secret('gone'), { costLevel, openFile }),
    async check(image, acknowledged) {
      expect(await opensIntact(image, 'old')).toBe(true);
      const removed = await openImage(image, 'gone');
      await removed?.close();
      if (acknowledged) expect(removed, 'acknowledged key remove: the removed secret opens').toBeNull();
    },
  },
  {
    name: 'repair',
    finalSize: SIZE,
    first: PRIMARY, // the damaged primary first: the intact backup is the only copy that opens
    setup: () =>
      baseImage('repair', SIZE, async (path) => {
        const image = await readFile(path);
        image.fill(0x5a, 100, 200); // the primary copy damaged
        await writeFile(path, image);
      }),
    run: async (path, openFile) => repairHeaders(path, await secret('old'), { costLevel, openFile }),
    async check(image, acknowledged) {
      expect(await opensIntact(image, 'old', false)).toBe(true);
      if (acknowledged) {
        const vault = await openImage(image, 'old');
        expect(vault?.info().headers.primary.state).toBe('ok');
        expect(vault?.info().headers.backup.state).toBe('ok');
        await vault?.close();
      }
    },
  },
  {
    name: 'header restore',
    finalSize: SIZE,
    setup: () =>
      baseImage('restore', SIZE, async (path) => {
        await backupHeader(path, await secret('old'), `${path}.hdr`, { costLevel });
        await changeSecret(path, await secret('old'), await secret('new'), { costLevel });
      }),
    run: async (path, openFile) =>
      restoreHeader(path, await secret('old'), `${path}.hdr`, { costLevel, openFile }),
    async check(image, acknowledged) {
      // Restoring the backup brings back the secret of its time: here "old" is the new state.
      await oldOrNew(image, acknowledged, 'new', 'old');
    },
  },
  {
    name: 'resize',
    finalSize: SIZE + 3 * MiB,
    setup: () => baseImage('resize', SIZE),
    run: async (path, openFile) =>
      resizeVault(path, await secret('old'), SIZE + 3 * MiB, { costLevel, openFile }),
    async check(image, acknowledged) {
      expect(await opensIntact(image, 'old')).toBe(true);
      const vault = await openImage(image, 'old');
      const size = vault?.size;
      await vault?.close();
      if (acknowledged) expect(size).toBe(SIZE + 3 * MiB - OVERHEAD_BYTES);
      else expect([SIZE - OVERHEAD_BYTES, SIZE + 3 * MiB - OVERHEAD_BYTES]).toContain(size);
    },
  },
];

const HIDDEN_FILE = 16 * MiB;
if (findTool('mkfs.vfat') || process.env.VAULT_REQUIRE_E2E === '1') {
  cases.push({
    name: 'hidden add',
    finalSize: HIDDEN_FILE,
    async setup() {
      const fat = join(dir, 'outer.img');
      await writeFile(fat, '');
      await truncate(fat, HIDDEN_FILE - OVERHEAD_BYTES);
      execFileSync('mkfs.vfat', [fat], { stdio: 'ignore' });
      const image = await readFile(fat);
      const path = join(dir, 'hidden.vol');
      await createVault(path, {
        fileSize: HIDDEN_FILE,
        secret: await secret('old'),
        costLevel,
        format: async (vault) => {
          await vault.writeAt(image.subarray(0, 4 * MiB), 0);
          await vault.writeAt(MARK, MARK_AT + 3 * MiB); // inside the FAT's used area, never in the hidden one
        },
      });
      return { path, image: await readFile(path) };
    },
    run: async (path, openFile) =>
      addHiddenVolume(path, {
        outerSecret: await secret('old'),
        costLevel,
        openFile,
        hidden: {
          dataSize: 4 * MiB,
          secret: await secret('hidden'),
          format: async (vault) => {
            await vault.writeAt(MARK, MARK_AT);
          },
        },
      }),
    async check(image, acknowledged) {
      const outer = await openImage(image, 'old', 'outer');
      expect(outer).not.toBeNull();
      const mark = Buffer.alloc(MARK.length);
      await outer?.readAt(mark, MARK_AT + 3 * MiB);
      await outer?.close();
      expect(mark.toString()).toBe(MARK.toString());
      const hidden = await openImage(image, 'hidden', 'hidden');
      if (acknowledged) {
        expect(hidden, 'acknowledged hidden add: the hidden secret opens').not.toBeNull();
        const inner = Buffer.alloc(MARK.length);
        await hidden?.readAt(inner, MARK_AT);
        expect(inner.toString()).toBe(MARK.toString());
      }
      await hidden?.close();
    },
  });
}

/** Runs `run` with the power failing at every step, and `check`s several cut images per step. */
async function everyStep(c: Case, random: () => number): Promise<number> {
  const { path, image } = await c.setup();
  // A run without a cut: how many steps there are, and the trace for the order check.
  const whole = new PowerCutDisk(image);
  await c.run(path, whole.opener());
  checkOrder(whole.trace, c.finalSize, c.first);
  const total = whole.steps;
  expect(total).toBeGreaterThan(0);
  for (let cutAt = 0; cutAt <= total; cutAt++) {
    const disk = new PowerCutDisk(image, cutAt);
    let acknowledged = true;
    try {
      await c.run(path, disk.opener());
    } catch (error) {
      if (!disk.cut) throw error; // a PowerCut, possibly wrapped in a VaultError
      acknowledged = false;
    }
    expect(acknowledged).toBe(cutAt === total);
    for (let cut = 0; cut < CUTS_PER_STEP; cut++) {
      const keep = cut === 0 ? 0 : cut === 1 ? 1 : random();
      const after = disk.afterCut(random, keep);
      try {
        await c.check(after, acknowledged);
      } catch (error) {
        throw new Error(
          `${c.name}: power cut at step ${cutAt} of ${total}, cut ${cut} (seed ${seed}): ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
  }
  return total;
}

describe('power cuts during header updates', () => {
  for (const [index, c] of cases.entries()) {
    it(`${c.name}: old or new secret opens, an acknowledged update stays, backup before primary`, async () => {
      await everyStep(c, prng(seed + index));
    });
  }

  it('the order check itself fails a primary-first update', () => {
    const size = SIZE;
    const w = (offset: number): TraceEntry => ({ op: 'write', offset, length: SECTOR_BYTES });
    const sync: TraceEntry = { op: 'sync' };
    const primary = headerOffset('outer', PRIMARY, size);
    const backup = headerOffset('outer', BACKUP, size);
    expect(() => checkOrder([w(backup), sync, w(primary), sync], size)).not.toThrow();
    expect(() => checkOrder([w(primary), sync, w(backup), sync], size)).toThrow();
    expect(() => checkOrder([w(backup), w(primary), sync], size)).toThrow();
    expect(() => checkOrder([w(backup), sync, w(primary)], size)).toThrow();
    expect(() => checkOrder([w(primary), sync, w(backup), sync], size, PRIMARY)).not.toThrow();
    expect(() => checkOrder([w(backup), sync, w(primary), sync], size, PRIMARY)).toThrow();
  });
});

describe('power cuts on the data path (writeAt, flush)', () => {
  it('after an acknowledged flush the data is there; unflushed sectors may be anything', async () => {
    const random = prng(seed ^ 0xdada);
    const { image } = await baseImage('data', SIZE);
    const dataSize = SIZE - OVERHEAD_BYTES;
    const rounds = SOAK ? 200 : 5;
    for (let round = 0; round < rounds; round++) {
      // A random sequence of writes (aligned and not, some across sector ends) and flushes.
      const ops: Array<{ offset: number; data: Buffer } | 'flush'> = [];
      const count = 4 + Math.floor(random() * 12);
      for (let i = 0; i < count; i++) {
        if (random() < 0.3) ops.push('flush');
        else {
          const length = 1 + Math.floor(random() * 3 * SECTOR_BYTES);
          const offset = Math.floor(random() * (64 * SECTOR_BYTES - length));
          const data = Buffer.alloc(length);
          for (let j = 0; j < length; j++) data[j] = Math.floor(random() * 256);
          ops.push({ offset, data });
        }
      }
      const steps = new PowerCutDisk(image);
      await replay(steps, ops, () => {});
      for (let cutAt = 0; cutAt <= steps.steps; cutAt++) {
        const disk = new PowerCutDisk(image, cutAt);
        // The model as of the last acknowledged flush, and the sectors written since.
        const model = Buffer.alloc(64 * SECTOR_BYTES);
        let flushed = Buffer.alloc(0);
        let dirty = new Set<number>();
        const base = await openImage(image, 'old');
        await base?.readAt(model, 0);
        await base?.close();
        flushed = Buffer.from(model);
        await replay(disk, ops, (op) => {
          if (op === 'flush') {
            flushed = Buffer.from(model);
            dirty = new Set();
          } else {
            op.data.copy(model, op.offset);
            for (
              let s = Math.floor(op.offset / SECTOR_BYTES);
              s * SECTOR_BYTES < op.offset + op.data.length;
              s++
            )
              dirty.add(s);
          }
        }).catch((error: unknown) => {
          if (!disk.cut) throw error;
        });
        for (let cut = 0; cut < CUTS_PER_STEP; cut++) {
          const keep = cut === 0 ? 0 : cut === 1 ? 1 : random();
          const vault = await openImage(disk.afterCut(random, keep), 'old');
          expect(vault, `data path: vault lost at step ${cutAt} (seed ${seed})`).not.toBeNull();
          const seen = Buffer.alloc(model.length);
          await vault?.readAt(seen, 0);
          await vault?.close();
          for (let s = 0; s < 64; s++) {
            if (dirty.has(s)) continue;
            const range = [s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES] as const;
            if (!seen.subarray(...range).equals(flushed.subarray(...range))) {
              throw new Error(
                `round ${round}, cut at step ${cutAt}, cut ${cut} (seed ${seed}): sector ${s}, flushed and not written since, lost`,
              );
            }
          }
        }
      }
      expect(dataSize).toBeGreaterThan(64 * SECTOR_BYTES);
    }
  });
});

describe('a passwd cut after the backup was synced, before the primary was written', () => {
  it('the newer backup is authoritative, and repair completes the change (never undoes it)', async () => {
    const { path, image } = await baseImage('half-passwd', SIZE);
    // Steps: write backup (0), sync (1), write primary (2): a cut at 2 leaves the new backup, the old primary.
    const disk = new PowerCutDisk(image, 2);
    await expect(
      changeSecret(path, await secret('old'), await secret('new'), { costLevel, openFile: disk.opener() }),
    ).rejects.toThrow();
    const half = Buffer.from(disk.durable);
    const vault = await openImage(half, 'new');
    expect(vault?.info().headers.authoritative).toBe('backup');
    expect(vault?.warnings).toHaveLength(1); // the primary is out of date
    await vault?.close();
    const repaired = new PowerCutDisk(half);
    await repairHeaders(path, await secret('new'), { costLevel, openFile: repaired.opener() });
    expect(await opensIntact(repaired.durable, 'new')).toBe(true);
    expect(await openImage(repaired.durable, 'old')).toBeNull();
  });
});

describe('close() with writes still in flight', () => {
  it('waits for them, then syncs: what was written before close() returned is durable', async () => {
    const { image } = await baseImage('close', SIZE);
    const disk = new PowerCutDisk(image);
    const vault = await openVault('close.vol', await secret('old'), { costLevel, openFile: disk.opener() });
    const data = Buffer.alloc(3 * SECTOR_BYTES + 5, 0xc3);
    const writing = [vault.writeAt(data, 100), vault.writeAt(data, 40 * SECTOR_BYTES)];
    await vault.close(); // not after the writes: while they are in flight
    await Promise.all(writing);
    const reopened = await openImage(disk.durable, 'old');
    const seen = Buffer.alloc(data.length);
    for (const offset of [100, 40 * SECTOR_BYTES]) {
      await reopened?.readAt(seen, offset);
      expect(seen.equals(data), `the write at ${offset} is durable after close()`).toBe(true);
    }
    await reopened?.close();
  });
});

/** Opens the vault on `disk`, runs `ops` (telling `acknowledged` after each returned), closes. */
async function replay(
  disk: PowerCutDisk,
  ops: Array<{ offset: number; data: Buffer } | 'flush'>,
  acknowledged: (op: { offset: number; data: Buffer } | 'flush') => void,
): Promise<void> {
  const vault = await openVault('data.vol', await secret('old'), { costLevel, openFile: disk.opener() });
  try {
    for (const op of ops) {
      if (op === 'flush') await vault.flush();
      else await vault.writeAt(op.data, op.offset);
      acknowledged(op);
    }
  } finally {
    if (!disk.cut) await vault.close();
  }
}

describe('power cuts under the daemon host file (src/fuse/host-file.ts)', () => {
  it('after an acknowledged flush the data is there, whatever the disk kept of the rest', async () => {
    const random = prng(seed ^ 0x4057);
    const { path, image } = await baseImage('host-file', SIZE);
    // The disk's durable content: the file as it was at the last fdatasync (its writes are real pwrites).
    let durable = Buffer.from(image);
    const datasync = async () => {
      durable = await readFile(path);
    };
    const vault = await openVault(path, await secret('old'), {
      costLevel,
      openFile: openHostFileWith(datasync),
    });
    const area = 64 * SECTOR_BYTES;
    const flushed = Buffer.alloc(area);
    await vault.readAt(flushed, 0);
    const model = Buffer.from(flushed);
    try {
      for (let round = 0; round < (SOAK ? 100 : 10); round++) {
        const length = 1 + Math.floor(random() * 3 * SECTOR_BYTES);
        const offset = Math.floor(random() * (area - length));
        const data = Buffer.alloc(length);
        for (let i = 0; i < length; i++) data[i] = Math.floor(random() * 256);
        await vault.writeAt(data, offset);
        data.copy(model, offset);
        if (random() < 0.5) continue;
        await vault.flush();
        model.copy(flushed);
        // A cut now: the durable bytes plus any subset of the 512-byte sectors written since.
        const current = await readFile(path);
        for (const keep of [0, random()]) {
          const cut = Buffer.from(durable);
          for (let at = 0; at < current.length; at += DISK_SECTOR) {
            const sector = current.subarray(at, at + DISK_SECTOR);
            if (!sector.equals(cut.subarray(at, at + DISK_SECTOR)) && random() < keep) sector.copy(cut, at);
          }
          const opened = await openImage(cut, 'old');
          const seen = Buffer.alloc(area);
          await opened?.readAt(seen, 0);
          await opened?.close();
          expect(seen.equals(flushed), `round ${round}, keep ${keep.toFixed(2)} (seed ${seed})`).toBe(true);
        }
      }
    } finally {
      await vault.close();
    }
  });
});

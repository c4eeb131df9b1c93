// The two copies of a header together (src/container/header-pair.ts) with the master key known, so no
// Argon2id run: which copy is authoritative, what counts as stale or damaged, which bodies fit the file
// (outer, backup, hidden; at each bound), the write order of an update and what an update changes.
// Fast, so Stryker runs it for every mutant of header-pair.ts.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HiddenProtection } from '../../src/container/access.js';
import { isVaultError } from '../../src/container/errors.js';
import type { ContainerFile } from '../../src/container/file.js';
import {
  deriveHeaderKey,
  type HeaderBody,
  randomSlotTable,
  type SlotTable,
  sealHeader,
} from '../../src/container/header.js';
import {
  type HeaderSectors,
  type HeaderState,
  layoutIncomplete,
  sealHeaderPair,
  stateFromMasterKey,
  updateHeaders,
  usedSlots,
  wipeHeaderState,
  writeHeaderPair,
} from '../../src/container/header-pair.js';
import {
  BACKUP_AREA_BYTES,
  type CopyId,
  DATA_OFFSET,
  HEADER_AREA_BYTES,
  HIDDEN_AREA_OFFSET,
  MIN_DATA_BYTES,
  OVERHEAD_BYTES,
  SECTOR_BYTES,
} from '../../src/container/layout.js';

const DATA_SIZE = 2 * MIN_DATA_BYTES;
const FILE_SIZE = DATA_SIZE + OVERHEAD_BYTES;
const BACKUP_OFFSET = FILE_SIZE - BACKUP_AREA_BYTES;

/** A master key that passes the XTS key rule (halves differ). */
const masterKey = randomBytes(64);
const headerKey = deriveHeaderKey(masterKey);

interface CopySpec {
  sequence?: number;
  flags?: number;
  dataOffset?: number;
  dataSize?: number;
  slotMask?: number;
}

/** Both outer copies sealed with the header key (null: random bytes, a damaged copy), hidden ones random. */
function outerSectors(primary: CopySpec | null, backup: CopySpec | null) {
  const tables: [SlotTable, SlotTable] = [randomSlotTable(), randomSlotTable()];
  const seal = (copy: CopyId, spec: CopySpec | null, own: SlotTable, other: SlotTable): Buffer =>
    spec === null ? randomBytes(SECTOR_BYTES) : sealHeader(copy, own, body(spec, other), headerKey);
  const sectors: HeaderSectors = {
    outer: [seal(0, primary, tables[0], tables[1]), seal(1, backup, tables[1], tables[0])],
    hidden: [randomBytes(SECTOR_BYTES), randomBytes(SECTOR_BYTES)],
  };
  return { sectors, tables };
}

function body(spec: CopySpec, mirror: SlotTable): HeaderBody {
  return {
    flags: spec.flags ?? 0,
    sequence: spec.sequence ?? 1,
    dataOffset: spec.dataOffset ?? DATA_OFFSET,
    dataSize: spec.dataSize ?? DATA_SIZE,
    slotMask: spec.slotMask ?? 1,
    mirrorSalt: mirror.salt,
    mirrorSlots: mirror.slots,
  };
}

const state = (sectors: HeaderSectors, fileSize = FILE_SIZE, kind: 'outer' | 'hidden' = 'outer') =>
  stateFromMasterKey(kind, sectors, fileSize, Buffer.from(masterKey));

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('which copy is authoritative', () => {
  it('equal sequences: the primary, both ok; the body and both tables as sealed', () => {
    const { sectors, tables } = outerSectors(
      { sequence: 4, slotMask: 0b11 },
      { sequence: 4, slotMask: 0b11 },
    );
    const opened = state(sectors) as HeaderState;
    expect(opened.authoritative).toBe(0);
    expect(opened.copies).toEqual([
      { state: 'ok', sequence: 4 },
      { state: 'ok', sequence: 4 },
    ]);
    expect(opened).toMatchObject({
      kind: 'outer',
      fileSize: FILE_SIZE,
      dataOffset: DATA_OFFSET,
      dataSize: DATA_SIZE,
    });
    expect(opened.sequence).toBe(4);
    expect(opened.slotMask).toBe(0b11);
    expect(
      same(opened.tables[0].slots, tables[0].slots) && same(opened.tables[1].slots, tables[1].slots),
    ).toBe(true);
    expect(same(opened.kdfSalts[0], tables[0].salt) && same(opened.kdfSalts[1], tables[1].salt)).toBe(true);
    expect(same(opened.masterKey, masterKey) && same(opened.headerKey, headerKey)).toBe(true);
    expect(opened.openedSlot).toBeNull();
    expect(layoutIncomplete(opened)).toBe(false);
  });

  it('a newer backup wins and the primary is stale (an update cut after the backup was written)', () => {
    const { sectors, tables } = outerSectors({ sequence: 5, slotMask: 1 }, { sequence: 6, slotMask: 0b11 });
    const opened = state(sectors) as HeaderState;
    expect(opened.authoritative).toBe(1);
    expect(opened.sequence).toBe(6);
    expect(opened.slotMask).toBe(0b11);
    expect(opened.copies).toEqual([
      { state: 'stale', sequence: 5 },
      { state: 'ok', sequence: 6 },
    ]);
    // The tables come from the backup: its own, and the primary's as the backup's body mirrors it.
    expect(
      same(opened.tables[1].slots, tables[1].slots) && same(opened.tables[0].slots, tables[0].slots),
    ).toBe(true);
    expect(same(opened.kdfSalts[0], tables[0].salt) && same(opened.kdfSalts[1], tables[1].salt)).toBe(true);
  });

  it('a newer primary wins and the backup is stale', () => {
    const { sectors } = outerSectors({ sequence: 9 }, { sequence: 8 });
    const opened = state(sectors) as HeaderState;
    expect(opened.authoritative).toBe(0);
    expect(opened.copies).toEqual([
      { state: 'ok', sequence: 9 },
      { state: 'stale', sequence: 8 },
    ]);
  });

  it('a damaged copy: the other one, whichever it is (salts from its mirror); both damaged: none', () => {
    const damagedFront = outerSectors(null, { sequence: 3 });
    const front = state(damagedFront.sectors) as HeaderState;
    // The primary's salt (the KDF salt of the front end) comes from the backup's mirror, not the garbage.
    expect(same(front.kdfSalts[0], damagedFront.tables[0].salt)).toBe(true);
    expect(same(front.tables[0].slots, damagedFront.tables[0].slots)).toBe(true);
    expect(front.authoritative).toBe(1);
    expect(front.copies).toEqual([
      { state: 'damaged', sequence: null },
      { state: 'ok', sequence: 3 },
    ]);
    const back = state(outerSectors({ sequence: 3 }, null).sectors) as HeaderState;
    expect(back.authoritative).toBe(0);
    expect(back.copies[1]).toEqual({ state: 'damaged', sequence: null });
    expect(state(outerSectors(null, null).sectors)).toBeNull();
  });

  it('a master key whose halves are equal opens nothing (only a forged header holds one)', () => {
    const weak = Buffer.concat([masterKey.subarray(0, 32), masterKey.subarray(0, 32)]);
    const weakHeaderKey = deriveHeaderKey(weak);
    const tables = [randomSlotTable(), randomSlotTable()] as const;
    const sectors: HeaderSectors = {
      outer: [
        sealHeader(0, tables[0], body({}, tables[1]), weakHeaderKey),
        sealHeader(1, tables[1], body({}, tables[0]), weakHeaderKey),
      ],
      hidden: [randomBytes(SECTOR_BYTES), randomBytes(SECTOR_BYTES)],
    };
    expect(stateFromMasterKey('outer', sectors, FILE_SIZE, Buffer.from(weak))).toBeNull();
  });
});

describe('which outer bodies fit the file', () => {
  it('an outer body must have flags 0 and the data at DATA_OFFSET', () => {
    expect(state(outerSectors({ flags: 1 }, { flags: 1 }).sectors)).toBeNull();
    const moved = { dataOffset: DATA_OFFSET + SECTOR_BYTES, dataSize: DATA_SIZE - SECTOR_BYTES };
    expect(state(outerSectors(moved, moved).sectors)).toBeNull();
  });

  it('the data area plus the overhead fills the file exactly, or is shorter (primary), never longer', () => {
    expect(state(outerSectors({}, {}).sectors, FILE_SIZE)).not.toBeNull();
    // Longer than the file: no copy fits.
    const longer = { dataSize: DATA_SIZE + SECTOR_BYTES };
    expect(state(outerSectors(longer, longer).sectors, FILE_SIZE)).toBeNull();
  });

  it('the backup must sit right after the data area it describes; the primary may describe a shorter file', () => {
    // Both describe a smaller volume than the file holds (an interrupted grow): the backup is not at the
    // end of the file where it was read, so only the primary fits, and the layout is incomplete.
    const shorter = { dataSize: DATA_SIZE - SECTOR_BYTES };
    const opened = state(outerSectors(shorter, shorter).sectors) as HeaderState;
    expect(opened.authoritative).toBe(0);
    expect(opened.copies[1].state).toBe('damaged');
    expect(opened.dataSize).toBe(DATA_SIZE - SECTOR_BYTES);
    expect(layoutIncomplete(opened)).toBe(true);
    // Told where the old backup is, it fits there.
    const relocated = stateFromMasterKey(
      'outer',
      outerSectors(shorter, shorter).sectors,
      FILE_SIZE,
      Buffer.from(masterKey),
      DATA_OFFSET + DATA_SIZE - SECTOR_BYTES,
    ) as HeaderState;
    expect(relocated.copies[1].state).toBe('ok');
  });
});

describe('hidden bodies', () => {
  const hiddenSize = MIN_DATA_BYTES;
  /** A hidden pair ending `gap` bytes before the backup area. */
  function hiddenSectors(spec: CopySpec, gap = 0) {
    const outer = outerSectors({}, {}).sectors;
    const tables: [SlotTable, SlotTable] = [randomSlotTable(), randomSlotTable()];
    const full: CopySpec = {
      flags: 1,
      dataOffset: BACKUP_OFFSET - hiddenSize - gap,
      dataSize: hiddenSize,
      ...spec,
    };
    outer.hidden = [
      sealHeader(2, tables[0], body(full, tables[1]), headerKey),
      sealHeader(3, tables[1], body(full, tables[0]), headerKey),
    ];
    return outer;
  }

  it('a hidden volume up to the backup area opens, with the outer salts as its KDF salts', () => {
    const sectors = hiddenSectors({});
    const opened = state(sectors, FILE_SIZE, 'hidden') as HeaderState;
    expect(opened.kind).toBe('hidden');
    expect(opened.dataOffset).toBe(BACKUP_OFFSET - hiddenSize);
    expect(same(opened.kdfSalts[0], sectors.outer[0].subarray(0, 32))).toBe(true);
    expect(same(opened.kdfSalts[1], sectors.outer[1].subarray(0, 32))).toBe(true);
    expect(layoutIncomplete(opened)).toBe(false);
    expect(state(hiddenSectors({}, SECTOR_BYTES), FILE_SIZE, 'hidden')).not.toBeNull();
  });

  it('one sector into the backup area, or without the hidden flag, it does not', () => {
    expect(state(hiddenSectors({}, -SECTOR_BYTES), FILE_SIZE, 'hidden')).toBeNull();
    expect(state(hiddenSectors({ flags: 0 }), FILE_SIZE, 'hidden')).toBeNull();
  });
});

/** A ContainerFile that records writes and syncs (no disk). */
function recordingFile(size = FILE_SIZE) {
  const log: string[] = [];
  const written = new Map<number, Buffer>();
  const file = {
    path: '/nowhere',
    writable: true,
    size: async () => size,
    identity: async () => ({ dev: 0, ino: 0, atimeMs: 0, mtimeMs: 0 }),
    read: async () => {},
    write: async (buffer: Uint8Array, position: number) => {
      log.push(`write ${position}`);
      written.set(position, Buffer.from(buffer));
    },
    sync: async () => {
      log.push('sync');
    },
    setTimes: async () => {},
    allocate: async () => {},
    close: async () => {},
  } satisfies ContainerFile;
  return { file, log, written };
}

describe('updates', () => {
  it('write the backup, sync, then the primary, sync; the primary first when it is damaged', async () => {
    const healthy = state(outerSectors({ sequence: 2 }, { sequence: 2 }).sectors) as HeaderState;
    const first = recordingFile();
    await writeHeaderPair(first.file, healthy, sealHeaderPair(healthy, healthy.tables, 1, 3));
    expect(first.log).toEqual([`write ${BACKUP_OFFSET}`, 'sync', 'write 0', 'sync']);

    const damaged = state(outerSectors(null, { sequence: 2 }).sectors) as HeaderState;
    const second = recordingFile();
    await writeHeaderPair(second.file, damaged, sealHeaderPair(damaged, damaged.tables, 1, 3));
    expect(second.log).toEqual(['write 0', 'sync', `write ${BACKUP_OFFSET}`, 'sync']);
  });

  it('a hidden pair goes to the hidden header sectors', async () => {
    const hidden = state(
      (() => {
        const outer = outerSectors({}, {}).sectors;
        const tables: [SlotTable, SlotTable] = [randomSlotTable(), randomSlotTable()];
        const spec = { flags: 1, dataOffset: BACKUP_OFFSET - MIN_DATA_BYTES, dataSize: MIN_DATA_BYTES };
        outer.hidden = [
          sealHeader(2, tables[0], body(spec, tables[1]), headerKey),
          sealHeader(3, tables[1], body(spec, tables[0]), headerKey),
        ];
        return outer;
      })(),
      FILE_SIZE,
      'hidden',
    ) as HeaderState;
    const { file, log, written } = recordingFile();
    await updateHeaders(file, hidden, () => 0b10);
    expect(log).toEqual([
      `write ${FILE_SIZE - HEADER_AREA_BYTES}`,
      'sync',
      `write ${HIDDEN_AREA_OFFSET}`,
      'sync',
    ]);
    // What was written opens as the new state: hidden flag kept, sequence and mask updated.
    const reread: HeaderSectors = {
      outer: [randomBytes(SECTOR_BYTES), randomBytes(SECTOR_BYTES)],
      hidden: [
        written.get(HIDDEN_AREA_OFFSET) as Buffer,
        written.get(FILE_SIZE - HEADER_AREA_BYTES) as Buffer,
      ],
    };
    const after = state(reread, FILE_SIZE, 'hidden') as HeaderState;
    expect(after.sequence).toBe(2);
    expect(after.slotMask).toBe(0b10);
    expect(after.dataOffset).toBe(BACKUP_OFFSET - MIN_DATA_BYTES);
  });

  it('an update seals the next sequence and the new mask into both copies and updates the state', async () => {
    const opened = state(outerSectors({ sequence: 5 }, { sequence: 4 }).sectors) as HeaderState;
    const { file, written } = recordingFile();
    await updateHeaders(file, opened, (tables) => {
      tables[0].slots.fill(1, 0, 104);
      tables[1].slots.fill(2, 0, 104);
      return 0b1001;
    });
    expect(opened.sequence).toBe(6);
    expect(opened.slotMask).toBe(0b1001);
    expect(opened.authoritative).toBe(0);
    expect(opened.copies).toEqual([
      { state: 'ok', sequence: 6 },
      { state: 'ok', sequence: 6 },
    ]);
    expect(opened.tables[0].slots[0]).toBe(1);
    expect(opened.tables[1].slots[0]).toBe(2);
    const reread = state({
      outer: [written.get(0) as Buffer, written.get(BACKUP_OFFSET) as Buffer],
      hidden: [randomBytes(SECTOR_BYTES), randomBytes(SECTOR_BYTES)],
    }) as HeaderState;
    expect(reread.copies).toEqual([
      { state: 'ok', sequence: 6 },
      { state: 'ok', sequence: 6 },
    ]);
    expect(reread.slotMask).toBe(0b1001);
    expect(reread.tables[0].slots.subarray(0, 104).every((byte) => byte === 1)).toBe(true);
    expect(reread.tables[1].slots.subarray(0, 104).every((byte) => byte === 2)).toBe(true);
  });

  it('a given sequence is used as is', async () => {
    const opened = state(outerSectors({ sequence: 5 }, { sequence: 5 }).sectors) as HeaderState;
    await updateHeaders(recordingFile().file, opened, () => 1, 40);
    expect(opened.sequence).toBe(40);
  });

  it('refuses an empty or impossible slot mask, and an interrupted resize (its reason), writing nothing', async () => {
    for (const mask of [0, 1 << 16]) {
      const opened = state(outerSectors({}, {}).sectors) as HeaderState;
      const { file, log } = recordingFile();
      await expect(updateHeaders(file, opened, () => mask)).rejects.toThrow(/mask/);
      expect(log).toEqual([]);
      expect(opened.sequence).toBe(1);
    }
    const opened = state(outerSectors({}, {}).sectors) as HeaderState;
    await updateHeaders(recordingFile().file, opened, () => 0xffff);
    expect(opened.slotMask).toBe(0xffff);

    const shorter = { dataSize: DATA_SIZE - SECTOR_BYTES };
    const incomplete = state(outerSectors(shorter, shorter).sectors) as HeaderState;
    const { file, log } = recordingFile();
    const error = await updateHeaders(file, incomplete, () => 1).catch((caught: unknown) => caught);
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(error).toMatchObject({
      reason: 'interrupted-resize',
      message: expect.stringMatching(/resize was interrupted/),
    });
    expect(log).toEqual([]);
  });
});

describe('usedSlots', () => {
  it('lists the set bits of the 16-slot mask in order', () => {
    expect(usedSlots(0)).toEqual([]);
    expect(usedSlots(0b1000_0000_0000_0101)).toEqual([0, 2, 15]);
    expect(usedSlots(0xffff)).toEqual([...Array(16).keys()]);
  });
});

describe('HiddenProtection', () => {
  it('refuses a write that touches the range by one byte, then every write; one warning', () => {
    const warnings: string[] = [];
    const protection = new HiddenProtection({ start: 1000, end: 2000 }, warnings);
    protection.checkWrite(1000, 0); // ends right before the range
    protection.checkWrite(10, 2000); // starts right after it
    expect(protection.tripped).toBe(false);
    expect(() => protection.checkWrite(2, 1999)).toThrow(/^write refused to protect the hidden volume/);
    expect(protection.tripped).toBe(true);
    expect(() => protection.checkWrite(1, 0)).toThrow(
      expect.objectContaining({ code: 'IO', hint: expect.stringMatching(/dismount it/) }),
    );
    expect(warnings).toHaveLength(1);
    new HiddenProtection(undefined, warnings).checkWrite(10, 1500);
  });
});

it('wipeHeaderState zeroes the master key and the header key', () => {
  const state = { masterKey: randomBytes(64), headerKey: randomBytes(32) } as HeaderState;
  const { masterKey, headerKey } = state;
  wipeHeaderState(state);
  expect(masterKey.every((byte) => byte === 0)).toBe(true);
  expect(headerKey.every((byte) => byte === 0)).toBe(true);
});

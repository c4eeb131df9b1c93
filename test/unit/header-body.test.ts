// One header copy as pure bytes (src/container/header.ts), without a file or a KDF: what a version-1
// reader accepts and MUST reject (docs/FORMAT.md 3.2), field by field at each bound, what the body's
// AEAD binds (copy id, salt, every keyslot byte), and the keyslots. Fast (no Argon2id), so Stryker can
// run it for every mutant of header.ts; the header fuzzer covers the same rules on whole files.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  clearSlot,
  copySlotTable,
  deriveHeaderKey,
  deriveSlotKey,
  type HeaderBody,
  openBody,
  openSlots,
  randomSlotTable,
  readSlotTable,
  type SlotTable,
  sealHeader,
  wrapSlot,
} from '../../src/container/header.js';
import {
  BODY,
  BODY_AD_LABEL,
  BODY_BYTES,
  BODY_NONCE_OFFSET,
  type CopyId,
  DATA_OFFSET,
  MAX_DATA_BYTES,
  MIN_DATA_BYTES,
  SALT_BYTES,
  SEALED_BODY_OFFSET,
  SECTOR_BYTES,
  SLOT_BYTES,
  SLOT_COUNT,
  SLOT_TABLE_BYTES,
  SLOTS_OFFSET,
} from '../../src/container/layout.js';
import { open as openAead, seal as sealAead } from '../../src/crypto/aead.js';

const headerKey = randomBytes(32);

function body(overrides: Partial<HeaderBody> = {}): HeaderBody {
  return {
    flags: 0,
    sequence: 7,
    dataOffset: DATA_OFFSET,
    dataSize: 4 * MIN_DATA_BYTES,
    slotMask: 0b101,
    mirrorSalt: randomBytes(SALT_BYTES),
    mirrorSlots: randomBytes(SLOT_TABLE_BYTES),
    ...overrides,
  };
}

function ad(copy: CopyId, table: SlotTable): Buffer {
  return Buffer.concat([Buffer.from(BODY_AD_LABEL, 'ascii'), Buffer.from([copy]), table.salt, table.slots]);
}

/** The plaintext body of a sealed sector, decrypted here independently of openBody. */
function plainOf(copy: CopyId, sector: Buffer, key: Uint8Array = headerKey): Buffer {
  const table = readSlotTable(sector);
  const nonce = sector.subarray(BODY_NONCE_OFFSET, SEALED_BODY_OFFSET);
  const plain = openAead(key, nonce, sector.subarray(SEALED_BODY_OFFSET), ad(copy, table));
  if (!plain) throw new Error('test: the sealed body did not open');
  return Buffer.from(plain);
}

/** A correctly sealed sector whose body bytes were edited before sealing (what only a forger writes). */
function forged(edit: (plain: Buffer) => void, copy: CopyId = 0, length = BODY_BYTES): Buffer {
  const table = randomSlotTable();
  const sector = sealHeader(copy, table, body(), headerKey);
  const plain = plainOf(copy, sector);
  edit(plain);
  const nonce = randomBytes(24);
  const sealed = sealAead(headerKey, nonce, plain.subarray(0, length), ad(copy, table));
  const out = Buffer.alloc(SECTOR_BYTES);
  out.set(table.salt, 0);
  out.set(table.slots, SLOTS_OFFSET);
  out.set(nonce, BODY_NONCE_OFFSET);
  out.set(sealed, SEALED_BODY_OFFSET);
  return out;
}

const accepts = (edit: (plain: Buffer) => void) =>
  expect(openBody(0, forged(edit), headerKey)).not.toBeNull();
const rejects = (edit: (plain: Buffer) => void) => expect(openBody(0, forged(edit), headerKey)).toBeNull();

describe('a sealed body', () => {
  it('opens to exactly what was sealed, for every copy id', () => {
    for (const copy of [0, 1, 2, 3] as const) {
      const table = randomSlotTable();
      const sealed = body({ flags: copy >= 2 ? 1 : 0, sequence: 2 ** 40 + copy, slotMask: 0xffff });
      const sector = sealHeader(copy, table, sealed, headerKey);
      expect(sector.length).toBe(SECTOR_BYTES);
      expect(sector.subarray(0, SALT_BYTES).equals(Buffer.from(table.salt))).toBe(true);
      expect(
        sector.subarray(SLOTS_OFFSET, SLOTS_OFFSET + SLOT_TABLE_BYTES).equals(Buffer.from(table.slots)),
      ).toBe(true);
      expect(openBody(copy, sector, headerKey)).toEqual({
        ...sealed,
        mirrorSalt: Uint8Array.from(sealed.mirrorSalt),
        mirrorSlots: Uint8Array.from(sealed.mirrorSlots),
      });
    }
  });

  it('lays the body out as FORMAT.md 3.2 says (the constant fields included)', () => {
    const sealed = body({ flags: 1, sequence: 0x0102030405, dataSize: 5 * MIN_DATA_BYTES, slotMask: 0x8001 });
    const plain = plainOf(2, sealHeader(2, randomSlotTable(), sealed, headerKey));
    expect(plain.length).toBe(BODY_BYTES);
    expect(plain.readUInt16BE(BODY.version)).toBe(1);
    expect(plain.readUInt16BE(BODY.flags)).toBe(1);
    expect(plain.readUInt32BE(BODY.sectorSize)).toBe(SECTOR_BYTES);
    expect(plain.readBigUInt64BE(BODY.sequence)).toBe(0x0102030405n);
    expect(plain.readBigUInt64BE(BODY.dataOffset)).toBe(BigInt(DATA_OFFSET));
    expect(plain.readBigUInt64BE(BODY.dataSize)).toBe(BigInt(5 * MIN_DATA_BYTES));
    expect(plain.readUInt32BE(BODY.slotMask)).toBe(0x8001);
    expect(plain.readUInt16BE(BODY.cipher)).toBe(1);
    expect(plain.readUInt16BE(BODY.kdf)).toBe(1);
    expect(plain.subarray(BODY.mirrorSalt, BODY.mirrorSalt + SALT_BYTES).equals(sealed.mirrorSalt)).toBe(
      true,
    );
    expect(
      plain.subarray(BODY.mirrorSlots, BODY.mirrorSlots + SLOT_TABLE_BYTES).equals(sealed.mirrorSlots),
    ).toBe(true);
  });

  it('is bound to its copy id, its header key, its salt and every keyslot byte', () => {
    const table = randomSlotTable();
    const sector = sealHeader(1, table, body(), headerKey);
    expect(openBody(1, sector, headerKey)).not.toBeNull();
    for (const copy of [0, 2, 3] as const) expect(openBody(copy, sector, headerKey)).toBeNull();
    expect(openBody(1, sector, randomBytes(32))).toBeNull();
    for (const at of [
      0,
      SALT_BYTES - 1,
      SLOTS_OFFSET,
      SLOTS_OFFSET + SLOT_TABLE_BYTES - 1,
      BODY_NONCE_OFFSET,
    ]) {
      const changed = Buffer.from(sector);
      changed[at] = (changed[at] as number) ^ 1;
      expect(openBody(1, changed, headerKey), `byte ${at}`).toBeNull();
    }
    // Two seals of the same body never repeat a nonce or a ciphertext.
    const again = sealHeader(1, table, body(), headerKey);
    expect(again.subarray(BODY_NONCE_OFFSET).equals(sector.subarray(BODY_NONCE_OFFSET))).toBe(false);
  });

  it('refuses a sector that is not 4096 bytes, saying so', () => {
    expect(() => openBody(0, Buffer.alloc(SECTOR_BYTES - 1), headerKey)).toThrow(
      /^a header copy is one 4096-byte sector$/,
    );
    expect(() => readSlotTable(Buffer.alloc(SECTOR_BYTES + 1))).toThrow(
      /^a header copy is one 4096-byte sector$/,
    );
  });
});

describe('what a version-1 reader accepts and rejects, at each bound', () => {
  it('the version, flags, sector size, cipher and KDF ids', () => {
    accepts(() => {});
    for (const version of [0, 2, 0x100]) rejects((p) => p.writeUInt16BE(version, BODY.version));
    accepts((p) => p.writeUInt16BE(1, BODY.flags));
    for (const flags of [2, 3, 0x8000]) rejects((p) => p.writeUInt16BE(flags, BODY.flags));
    for (const size of [512, 8192, 0]) rejects((p) => p.writeUInt32BE(size, BODY.sectorSize));
    for (const id of [0, 2]) rejects((p) => p.writeUInt16BE(id, BODY.cipher));
    for (const id of [0, 2]) rejects((p) => p.writeUInt16BE(id, BODY.kdf));
  });

  it('the reserved bytes: any non-zero byte, first or last, in either area', () => {
    for (const at of [BODY.reserved1, BODY.reserved1 + 23, BODY.reserved2, BODY_BYTES - 1]) {
      rejects((p) => {
        p[at] = 0x80;
      });
    }
  });

  it('the data offset: from DATA_OFFSET to 2^53, sector-aligned', () => {
    const set = (value: number) => (p: Buffer) => p.writeBigUInt64BE(BigInt(value), BODY.dataOffset);
    accepts(set(DATA_OFFSET));
    accepts(set(MAX_DATA_BYTES));
    rejects(set(DATA_OFFSET - SECTOR_BYTES));
    rejects(set(0));
    rejects(set(MAX_DATA_BYTES + SECTOR_BYTES));
    rejects(set(DATA_OFFSET + 512));
    rejects((p) => p.writeBigUInt64BE(2n ** 64n - 4096n, BODY.dataOffset));
  });

  it('the data size: from the minimum to 2^53, sector-aligned', () => {
    const set = (value: number) => (p: Buffer) => p.writeBigUInt64BE(BigInt(value), BODY.dataSize);
    accepts(set(MIN_DATA_BYTES));
    accepts(set(MAX_DATA_BYTES));
    rejects(set(MIN_DATA_BYTES - SECTOR_BYTES));
    rejects(set(MAX_DATA_BYTES + SECTOR_BYTES));
    rejects(set(MIN_DATA_BYTES + 1));
    rejects(set(MIN_DATA_BYTES + SECTOR_BYTES / 2));
  });

  it('the sequence: up to 2^53 - 1, read back exactly', () => {
    const at = (value: bigint) => (p: Buffer) => p.writeBigUInt64BE(value, BODY.sequence);
    const opened = openBody(0, forged(at(2n ** 53n - 1n)), headerKey);
    expect(opened?.sequence).toBe(Number.MAX_SAFE_INTEGER);
    rejects(at(2n ** 53n));
    rejects(at(2n ** 64n - 1n));
  });

  it('the slot mask: at least one slot, none beyond the 16th', () => {
    const set = (mask: number) => (p: Buffer) => p.writeUInt32BE(mask, BODY.slotMask);
    accepts(set(1));
    accepts(set(0xffff));
    rejects(set(0));
    rejects(set(0x10000));
    rejects(set(0xffffffff));
  });

  it('a body of any other length', () => {
    expect(
      openBody(
        0,
        forged(() => {}, 0, BODY_BYTES - 1),
        headerKey,
      ),
    ).toBeNull();
  });
});

describe('keyslots', () => {
  const masterKey = randomBytes(64);

  it('a wrapped slot opens with its key, in its copy, at its index, and nowhere else', () => {
    for (const index of [0, 1, SLOT_COUNT - 1]) {
      const table = randomSlotTable();
      const before = Buffer.from(table.slots);
      const slotKey = deriveSlotKey(randomBytes(64));
      wrapSlot(table, 3, index, slotKey, masterKey);
      // Only the slot's own 104 bytes changed.
      const changed = [...Buffer.from(table.slots)].flatMap((byte, at) => (byte !== before[at] ? [at] : []));
      expect(Math.min(...changed)).toBeGreaterThanOrEqual(index * SLOT_BYTES);
      expect(Math.max(...changed)).toBeLessThan((index + 1) * SLOT_BYTES);
      const opened = openSlots(table, 3, slotKey);
      expect(opened?.slot).toBe(index);
      expect(opened?.masterKey.equals(masterKey)).toBe(true);
      expect(openSlots(table, 2, slotKey)).toBeNull();
      expect(openSlots(table, 3, deriveSlotKey(randomBytes(64)))).toBeNull();
      // Moved to another index, the same bytes do not open (the index is bound in).
      const moved = copySlotTable(table);
      const other = (index + 1) % SLOT_COUNT;
      moved.slots.copyWithin(other * SLOT_BYTES, index * SLOT_BYTES, (index + 1) * SLOT_BYTES);
      moved.slots.set(randomBytes(SLOT_BYTES), index * SLOT_BYTES);
      expect(openSlots(moved, 3, slotKey)).toBeNull();
    }
  });

  it('a cleared slot no longer opens, and the others still do', () => {
    const table = randomSlotTable();
    const first = deriveSlotKey(randomBytes(64));
    const second = deriveSlotKey(randomBytes(64));
    wrapSlot(table, 0, 4, first, masterKey);
    wrapSlot(table, 0, 5, second, masterKey);
    const copy = copySlotTable(table);
    clearSlot(table, 4);
    expect(openSlots(table, 0, first)).toBeNull();
    expect(openSlots(table, 0, second)?.slot).toBe(5);
    // copySlotTable is a copy: clearing the original left it intact.
    expect(openSlots(copy, 0, first)?.slot).toBe(4);
  });

  it('refuses slot indexes outside 0..15 and master keys of another length, saying which', () => {
    const table = randomSlotTable();
    const key = deriveSlotKey(randomBytes(64));
    for (const index of [-1, SLOT_COUNT, 1.5]) {
      expect(() => wrapSlot(table, 0, index, key, masterKey)).toThrow(/^no such keyslot$/);
      expect(() => clearSlot(table, index)).toThrow(/^no such keyslot$/);
    }
    expect(() => wrapSlot(table, 0, 0, key, randomBytes(63))).toThrow(/^master key must be 64 bytes$/);
    expect(() => wrapSlot(table, 0, 0, key, randomBytes(65))).toThrow(/^master key must be 64 bytes$/);
  });

  it('slot and header keys are 32 bytes, distinct and deterministic', () => {
    const ikm = randomBytes(64);
    expect(deriveSlotKey(ikm).length).toBe(32);
    expect(deriveSlotKey(ikm).equals(deriveSlotKey(ikm))).toBe(true);
    expect(deriveHeaderKey(ikm).equals(deriveSlotKey(ikm))).toBe(false);
  });
});

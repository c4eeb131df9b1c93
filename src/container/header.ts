// One header copy (docs/FORMAT.md section 3): sealing and opening the 4096-byte sector, its keyslots
// and its body. Pure functions over bytes: no file access, no KDF; vault.ts drives them.
import { open, seal } from '../crypto/aead.js';
import { hkdfSha512 } from '../crypto/kdf.js';
import { randomBytes, wipe } from '../crypto/random.js';
import {
  BODY,
  BODY_AD_LABEL,
  BODY_BYTES,
  BODY_NONCE_OFFSET,
  CIPHER_AES_256_XTS,
  type CopyId,
  DATA_OFFSET,
  FLAG_HIDDEN,
  FORMAT_VERSION,
  HEADER_KEY_LABEL,
  KDF_ARGON2ID_V1,
  MASTER_KEY_BYTES,
  MAX_DATA_BYTES,
  MIN_DATA_BYTES,
  RESERVED1_BYTES,
  RESERVED2_BYTES,
  SALT_BYTES,
  SALT_OFFSET,
  SEALED_BODY_OFFSET,
  SECTOR_BYTES,
  SLOT_AD_LABEL,
  SLOT_BYTES,
  SLOT_COUNT,
  SLOT_KEY_LABEL,
  SLOT_NONCE_BYTES,
  SLOT_TABLE_BYTES,
  SLOTS_OFFSET,
} from './layout.js';
import { VAULT_KDFS, vaultSectorCipher } from './vault-suites.js';

const AEAD_NONCE_BYTES = 24;

/** The decoded body of one copy (docs/FORMAT.md 3.2); constant fields are checked, not kept. */
export interface HeaderBody {
  /** 0 for an outer vault, FLAG_HIDDEN for a hidden one. */
  flags: number;
  sequence: number;
  /** Byte offset of this vault's data area in the file. */
  dataOffset: number;
  dataSize: number;
  slotMask: number;
  /** The other copy's salt and keyslot table (the mirror). */
  mirrorSalt: Uint8Array;
  mirrorSlots: Uint8Array;
}

/** A copy's own public parts: salt and keyslot table, as on disk. */
export interface SlotTable {
  salt: Uint8Array;
  slots: Uint8Array;
}

export function deriveSlotKey(kdfOutput: Uint8Array): Buffer {
  return hkdfSha512(kdfOutput, SLOT_KEY_LABEL, 32);
}

export function deriveHeaderKey(masterKey: Uint8Array): Buffer {
  return hkdfSha512(masterKey, HEADER_KEY_LABEL, 32);
}

export function readSlotTable(sector: Uint8Array): SlotTable {
  checkSector(sector);
  return {
    salt: sector.slice(SALT_OFFSET, SALT_OFFSET + SALT_BYTES),
    slots: sector.slice(SLOTS_OFFSET, SLOTS_OFFSET + SLOT_TABLE_BYTES),
  };
}

/** A new table: fresh salt, every slot random (empty). */
export function randomSlotTable(): SlotTable {
  return { salt: randomBytes(SALT_BYTES), slots: randomBytes(SLOT_TABLE_BYTES) };
}

export function copySlotTable(table: SlotTable): SlotTable {
  return { salt: Uint8Array.from(table.salt), slots: Uint8Array.from(table.slots) };
}

/** Wraps the master key into slot `index` of `table`, in place (fresh nonce). */
export function wrapSlot(
  table: SlotTable,
  copy: CopyId,
  index: number,
  slotKey: Uint8Array,
  masterKey: Uint8Array,
): void {
  checkSlotIndex(index);
  if (masterKey.length !== MASTER_KEY_BYTES) throw new RangeError('master key must be 64 bytes');
  const nonce = randomBytes(SLOT_NONCE_BYTES);
  const sealed = seal(slotKey, nonce, masterKey, slotAd(copy, index));
  const at = index * SLOT_BYTES;
  table.slots.set(nonce, at);
  table.slots.set(sealed, at + SLOT_NONCE_BYTES);
}

/** Overwrites slot `index` with random bytes: an empty slot looks like a used one. */
export function clearSlot(table: SlotTable, index: number): void {
  checkSlotIndex(index);
  table.slots.set(randomBytes(SLOT_BYTES), index * SLOT_BYTES);
}

/** Tries every slot with one slot key. Returns the first that opens, with the master key (caller wipes). */
export function openSlots(
  table: SlotTable,
  copy: CopyId,
  slotKey: Uint8Array,
): { slot: number; masterKey: Buffer } | null {
  for (let index = 0; index < SLOT_COUNT; index++) {
    const at = index * SLOT_BYTES;
    const nonce = table.slots.subarray(at, at + SLOT_NONCE_BYTES);
    const sealed = table.slots.subarray(at + SLOT_NONCE_BYTES, at + SLOT_BYTES);
    const plain = open(slotKey, nonce, sealed, slotAd(copy, index));
    if (plain) {
      const masterKey = Buffer.alloc(MASTER_KEY_BYTES);
      masterKey.set(plain);
      wipe(plain);
      return { slot: index, masterKey };
    }
  }
  return null;
}

/** Builds the full 4096-byte sector of one copy. */
export function sealHeader(copy: CopyId, table: SlotTable, body: HeaderBody, headerKey: Uint8Array): Buffer {
  const plain = encodeBody(body);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const sealed = seal(headerKey, nonce, plain, bodyAd(copy, table));
  wipe(plain);
  const sector = Buffer.alloc(SECTOR_BYTES);
  sector.set(table.salt, SALT_OFFSET);
  sector.set(table.slots, SLOTS_OFFSET);
  sector.set(nonce, BODY_NONCE_OFFSET);
  sector.set(sealed, SEALED_BODY_OFFSET);
  return sector;
}

/** Authenticates and validates a copy's body. null: the copy is damaged, stale garbage or not ours. */
export function openBody(copy: CopyId, sector: Uint8Array, headerKey: Uint8Array): HeaderBody | null {
  checkSector(sector);
  const table = readSlotTable(sector);
  const nonce = sector.subarray(BODY_NONCE_OFFSET, BODY_NONCE_OFFSET + AEAD_NONCE_BYTES);
  const sealed = sector.subarray(SEALED_BODY_OFFSET);
  const plain = open(headerKey, nonce, sealed, bodyAd(copy, table));
  if (!plain) return null;
  try {
    return decodeBody(plain);
  } finally {
    wipe(plain);
  }
}

function encodeBody(body: HeaderBody): Buffer {
  const plain = Buffer.alloc(BODY_BYTES);
  plain.writeUInt16BE(FORMAT_VERSION, BODY.version);
  plain.writeUInt16BE(body.flags, BODY.flags);
  plain.writeUInt32BE(SECTOR_BYTES, BODY.sectorSize);
  plain.writeBigUInt64BE(BigInt(body.sequence), BODY.sequence);
  plain.writeBigUInt64BE(BigInt(body.dataOffset), BODY.dataOffset);
  plain.writeBigUInt64BE(BigInt(body.dataSize), BODY.dataSize);
  plain.writeUInt32BE(body.slotMask, BODY.slotMask);
  plain.writeUInt16BE(CIPHER_AES_256_XTS, BODY.cipher);
  plain.writeUInt16BE(KDF_ARGON2ID_V1, BODY.kdf);
  plain.set(body.mirrorSalt, BODY.mirrorSalt);
  plain.set(body.mirrorSlots, BODY.mirrorSlots);
  return plain;
}

/** Returns null for anything a version-1 reader MUST reject (docs/FORMAT.md 3.2). */
function decodeBody(plain: Uint8Array): HeaderBody | null {
  const view = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
  // Stryker disable next-line ConditionalExpression: equivalent, openBody always opens the whole rest of the sector, so an authentic body is always BODY_BYTES long
  if (view.length !== BODY_BYTES) return null;
  if (view.readUInt16BE(BODY.version) !== FORMAT_VERSION) return null;
  const flags = view.readUInt16BE(BODY.flags);
  if (flags !== 0 && flags !== FLAG_HIDDEN) return null;
  if (view.readUInt32BE(BODY.sectorSize) !== SECTOR_BYTES) return null;
  const dataOffset = view.readBigUInt64BE(BODY.dataOffset);
  if (dataOffset < BigInt(DATA_OFFSET) || dataOffset > BigInt(MAX_DATA_BYTES)) return null;
  if (dataOffset % BigInt(SECTOR_BYTES) !== 0n) return null;
  // Only the suites version 1 defines (one each today); anything else MUST be rejected.
  if (vaultSectorCipher(view.readUInt16BE(BODY.cipher)) === null) return null;
  if (!VAULT_KDFS.has(view.readUInt16BE(BODY.kdf))) return null;
  if (!isZero(view.subarray(BODY.reserved1, BODY.reserved1 + RESERVED1_BYTES))) return null;
  if (!isZero(view.subarray(BODY.reserved2, BODY.reserved2 + RESERVED2_BYTES))) return null;
  const sequence = view.readBigUInt64BE(BODY.sequence);
  const dataSize = view.readBigUInt64BE(BODY.dataSize);
  const slotMask = view.readUInt32BE(BODY.slotMask);
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  if (dataSize % BigInt(SECTOR_BYTES) !== 0n) return null;
  if (dataSize < BigInt(MIN_DATA_BYTES) || dataSize > BigInt(MAX_DATA_BYTES)) return null;
  if (slotMask === 0 || slotMask >= 1 << SLOT_COUNT) return null;
  return {
    flags,
    sequence: Number(sequence),
    dataOffset: Number(dataOffset),
    dataSize: Number(dataSize),
    slotMask,
    mirrorSalt: Uint8Array.from(view.subarray(BODY.mirrorSalt, BODY.mirrorSalt + SALT_BYTES)),
    mirrorSlots: Uint8Array.from(view.subarray(BODY.mirrorSlots, BODY.mirrorSlots + SLOT_TABLE_BYTES)),
  };
}

function slotAd(copy: CopyId, index: number): Uint8Array {
  return Buffer.concat([Buffer.from(SLOT_AD_LABEL, 'ascii'), Buffer.from([copy, index])]);
}

function bodyAd(copy: CopyId, table: SlotTable): Uint8Array {
  return Buffer.concat([Buffer.from(BODY_AD_LABEL, 'ascii'), Buffer.from([copy]), table.salt, table.slots]);
}

function checkSector(sector: Uint8Array): void {
  if (sector.length !== SECTOR_BYTES) throw new RangeError('a header copy is one 4096-byte sector');
}

function checkSlotIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= SLOT_COUNT) throw new RangeError('no such keyslot');
}

function isZero(bytes: Uint8Array): boolean {
  let accumulator = 0;
  for (const byte of bytes) accumulator |= byte;
  return accumulator === 0;
}

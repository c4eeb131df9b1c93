// Byte positions of the v1 format, named as in docs/FORMAT.md sections 1 and 3.
// Everything that knows an offset imports it from here.

export const SECTOR_BYTES = 4096;
export const FORMAT_VERSION = 1;

// Section 1: file layout.
export const PRIMARY_HEADER_OFFSET = 0;
export const HIDDEN_AREA_OFFSET = 65536;
export const HEADER_AREA_BYTES = 65536;
export const DATA_OFFSET = 131072;
/** The backup area (backup header + hidden backup) occupies the last 128 KiB of the file. */
export const BACKUP_AREA_BYTES = 131072;
export const OVERHEAD_BYTES = DATA_OFFSET + BACKUP_AREA_BYTES;
export const MIN_DATA_BYTES = 786432;
export const MIN_FILE_BYTES = OVERHEAD_BYTES + MIN_DATA_BYTES;
export const MAX_DATA_BYTES = 2 ** 53;

// Section 3: one header copy.
export const SALT_OFFSET = 0;
export const SALT_BYTES = 32;
export const SLOT_COUNT = 16;
export const SLOT_BYTES = 104;
export const SLOTS_OFFSET = 32;
export const SLOT_TABLE_BYTES = SLOT_COUNT * SLOT_BYTES;
export const BODY_NONCE_OFFSET = 1696;
export const SEALED_BODY_OFFSET = 1720;
export const BODY_BYTES = 2360;

// Section 3.1: keyslot.
export const SLOT_NONCE_BYTES = 24;
export const MASTER_KEY_BYTES = 64;

// Section 3.2: body fields.
export const BODY = {
  version: 0,
  flags: 2,
  sectorSize: 4,
  sequence: 8,
  dataOffset: 16,
  dataSize: 24,
  slotMask: 32,
  cipher: 36,
  kdf: 38,
  reserved1: 40,
  mirrorSalt: 64,
  mirrorSlots: 96,
  reserved2: 1760,
} as const;
export const RESERVED1_BYTES = 24;
export const RESERVED2_BYTES = 600;
export const CIPHER_AES_256_XTS = 1;
export const KDF_ARGON2ID_V1 = 1;

/** Which end of the file a header copy lives at: the front (primary) or the back (backup). */
export type End = 0 | 1;
export const PRIMARY: End = 0;
export const BACKUP: End = 1;

/** Outer: the ordinary vault. Hidden: a vault inside the tail of the outer data area (docs/FORMAT.md 8). */
export type HeaderKind = 'outer' | 'hidden';
/** The copy id bound into every AEAD: outer primary 0, outer backup 1, hidden primary 2, hidden backup 3. */
export type CopyId = 0 | 1 | 2 | 3;
export const FLAG_HIDDEN = 1;

export function copyId(kind: HeaderKind, end: End): CopyId {
  return (kind === 'outer' ? end : end + 2) as CopyId;
}

export const SLOT_AD_LABEL = 'vault-v1-keyslot';
export const BODY_AD_LABEL = 'vault-v1-header';
export const SLOT_KEY_LABEL = 'vault v1 keyslot';
export const HEADER_KEY_LABEL = 'vault v1 header';

export function backupHeaderOffset(fileSize: number): number {
  return fileSize - BACKUP_AREA_BYTES;
}

export function headerOffset(kind: HeaderKind, end: End, fileSize: number): number {
  if (kind === 'outer') return end === PRIMARY ? PRIMARY_HEADER_OFFSET : backupHeaderOffset(fileSize);
  return end === PRIMARY ? HIDDEN_AREA_OFFSET : fileSize - HEADER_AREA_BYTES;
}

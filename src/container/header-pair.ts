// The two header copies together (docs/FORMAT.md 5.1 and 5.2): unlocking with one KDF run per copy,
// deciding which copy is authoritative, and writing updates backup-first so a crash never loses the vault.
import { costMemoryCheck, deriveKdf } from '../crypto/kdf.js';
import { wipe } from '../crypto/random.js';
import { cannotUnlock, VaultError } from './errors.js';
import type { ContainerFile } from './file.js';
import {
  copySlotTable,
  deriveHeaderKey,
  deriveSlotKey,
  type HeaderBody,
  openBody,
  openSlots,
  readSlotTable,
  type SlotTable,
  sealHeader,
} from './header.js';
import {
  BACKUP,
  type CopyId,
  headerOffset,
  MIN_FILE_BYTES,
  OVERHEAD_BYTES,
  PRIMARY,
  SECTOR_BYTES,
  SLOT_COUNT,
} from './layout.js';
import type { Secret } from './secret.js';

export type CopyState = 'ok' | 'stale' | 'damaged';

/** Everything known after an unlock. Holds key material: call wipeHeaderState when done. */
export interface HeaderState {
  fileSize: number;
  dataSize: number;
  sequence: number;
  slotMask: number;
  /** Both copies' salt and keyslot table as the authoritative body says they should be. */
  tables: [SlotTable, SlotTable];
  masterKey: Buffer;
  headerKey: Buffer;
  /** The slot the secret opens in the authoritative state; null if an interrupted update moved it. */
  openedSlot: number | null;
  authoritative: CopyId;
  copies: [{ state: CopyState; sequence: number | null }, { state: CopyState; sequence: number | null }];
}

export async function readHeaderSectors(file: ContainerFile, fileSize: number): Promise<[Buffer, Buffer]> {
  const sectors: [Buffer, Buffer] = [Buffer.alloc(SECTOR_BYTES), Buffer.alloc(SECTOR_BYTES)];
  await file.read(sectors[PRIMARY], headerOffset(PRIMARY, fileSize));
  await file.read(sectors[BACKUP], headerOffset(BACKUP, fileSize));
  return sectors;
}

export function checkCostFits(level: number): void {
  const check = costMemoryCheck(level);
  if (!check.fits) {
    const mib = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MiB`;
    throw new VaultError(
      'USAGE',
      `cost level ${level} needs ${mib(check.neededBytes)} of memory, but only ${mib(check.availableBytes)} is free`,
      'free some memory, or use a lower --cost level (the one the vault was created with)',
    );
  }
}

/** Derives the slot key of one copy: the single Argon2id run per copy. */
export async function deriveCopySlotKey(
  secret: Secret,
  salt: Uint8Array,
  costLevel: number,
): Promise<Buffer> {
  const kdfOutput = await deriveKdf(secret.material, salt, costLevel);
  try {
    return deriveSlotKey(kdfOutput);
  } finally {
    wipe(kdfOutput);
  }
}

/** docs/FORMAT.md 5.1. Reads only; throws cannotUnlock() for every kind of failure to open. */
export async function unlockHeaders(
  file: ContainerFile,
  secret: Secret,
  costLevel: number,
): Promise<HeaderState> {
  const fileSize = await file.size();
  if (fileSize < MIN_FILE_BYTES || fileSize % SECTOR_BYTES !== 0) throw cannotUnlock();
  checkCostFits(costLevel);
  const sectors = await readHeaderSectors(file, fileSize);
  for (const copy of [PRIMARY, BACKUP] as const) {
    const table = readSlotTable(sectors[copy]);
    const slotKey = await deriveCopySlotKey(secret, table.salt, costLevel);
    try {
      const opened = openSlots(table, copy, slotKey);
      if (!opened) continue;
      const state = stateFromMasterKey(sectors, fileSize, opened.masterKey);
      if (!state) {
        wipe(opened.masterKey);
        continue;
      }
      // Which slot does this secret hold in the authoritative view of the copy it opened?
      state.openedSlot =
        state.authoritative === copy
          ? opened.slot
          : (openSlots(state.tables[copy], copy, slotKey)?.slot ?? null);
      return state;
    } finally {
      wipe(slotKey);
    }
  }
  throw cannotUnlock();
}

/**
 * With the master key known, opens both bodies (no KDF) and picks the newest that authenticates.
 * Returns null when neither body is valid for this file. Takes ownership of masterKey on success.
 */
export function stateFromMasterKey(
  sectors: [Uint8Array, Uint8Array],
  fileSize: number,
  masterKey: Buffer,
): HeaderState | null {
  const headerKey = deriveHeaderKey(masterKey);
  const bodies = ([PRIMARY, BACKUP] as const).map((copy) => {
    const body = openBody(copy, sectors[copy], headerKey);
    return body && body.dataSize + OVERHEAD_BYTES === fileSize ? body : null;
  }) as [HeaderBody | null, HeaderBody | null];
  const [primary, backup] = bodies;
  let authoritative: CopyId;
  if (primary && (!backup || primary.sequence >= backup.sequence)) authoritative = PRIMARY;
  else if (backup) authoritative = BACKUP;
  else {
    wipe(headerKey);
    return null;
  }
  const body = bodies[authoritative] as HeaderBody;
  const own = readSlotTable(sectors[authoritative]);
  const mirror: SlotTable = { salt: body.mirrorSalt, slots: body.mirrorSlots };
  const tables: [SlotTable, SlotTable] = authoritative === PRIMARY ? [own, mirror] : [mirror, own];
  const copyState = (candidate: HeaderBody | null) =>
    candidate === null
      ? { state: 'damaged' as const, sequence: null }
      : {
          state: candidate.sequence < body.sequence ? ('stale' as const) : ('ok' as const),
          sequence: candidate.sequence,
        };
  return {
    fileSize,
    dataSize: body.dataSize,
    sequence: body.sequence,
    slotMask: body.slotMask,
    tables,
    masterKey,
    headerKey,
    openedSlot: null,
    authoritative,
    copies: [copyState(primary), copyState(backup)],
  };
}

/** The two sectors of an update (5.2): each copy's body mirrors the other copy's table. */
export function sealHeaderPair(
  state: HeaderState,
  tables: [SlotTable, SlotTable],
  slotMask: number,
  sequence: number,
): [Buffer, Buffer] {
  const body = (other: SlotTable): HeaderBody => ({
    sequence,
    dataSize: state.dataSize,
    slotMask,
    mirrorSalt: other.salt,
    mirrorSlots: other.slots,
  });
  return [
    sealHeader(PRIMARY, tables[PRIMARY], body(tables[BACKUP]), state.headerKey),
    sealHeader(BACKUP, tables[BACKUP], body(tables[PRIMARY]), state.headerKey),
  ];
}

/**
 * docs/FORMAT.md 5.2: writes the backup, syncs, writes the primary, syncs. Updates `state` to match.
 * `change` edits copies of both tables (the same slot index in each) and returns the new slot mask.
 */
export async function updateHeaders(
  file: ContainerFile,
  state: HeaderState,
  change: (tables: [SlotTable, SlotTable]) => Promise<number> | number,
  sequence = state.sequence + 1,
): Promise<void> {
  const tables: [SlotTable, SlotTable] = [
    copySlotTable(state.tables[PRIMARY]),
    copySlotTable(state.tables[BACKUP]),
  ];
  const slotMask = await change(tables);
  if (slotMask === 0 || slotMask >= 1 << SLOT_COUNT) throw new Error('invalid keyslot mask');
  const sectors = sealHeaderPair(state, tables, slotMask, sequence);
  await file.write(sectors[BACKUP], headerOffset(BACKUP, state.fileSize));
  await file.sync();
  await file.write(sectors[PRIMARY], headerOffset(PRIMARY, state.fileSize));
  await file.sync();
  state.tables = tables;
  state.slotMask = slotMask;
  state.sequence = sequence;
  state.authoritative = PRIMARY;
  state.copies = [
    { state: 'ok', sequence },
    { state: 'ok', sequence },
  ];
}

export function wipeHeaderState(state: HeaderState): void {
  wipe(state.masterKey, state.headerKey);
}

export function usedSlots(slotMask: number): number[] {
  const used: number[] = [];
  for (let index = 0; index < SLOT_COUNT; index++) if (slotMask & (1 << index)) used.push(index);
  return used;
}

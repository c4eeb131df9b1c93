// The two copies of a vault's header together (docs/FORMAT.md 5.1, 5.2 and 8): unlocking with one KDF
// run per end of the file (that run tries the outer and the hidden keyslots), deciding which copy is
// authoritative, and writing updates backup-first so a crash never loses the vault.
import type { KdfSuite } from '../crypto/kdf.js';
import { costMemoryCheck } from '../crypto/kdf.js';
import { moveToLocked } from '../crypto/memory.js';
import { wipe } from '../crypto/random.js';
import { isUsableXtsKey } from '../crypto/xts.js';
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
  wrapSlot,
} from './header.js';
import {
  BACKUP,
  BACKUP_AREA_BYTES,
  copyId,
  DATA_OFFSET,
  type End,
  FLAG_HIDDEN,
  type HeaderKind,
  headerOffset,
  KDF_ARGON2ID_V1,
  MIN_DATA_BYTES,
  MIN_FILE_BYTES,
  OVERHEAD_BYTES,
  PRIMARY,
  SECTOR_BYTES,
  SLOT_COUNT,
} from './layout.js';
import type { Secret } from './secret.js';
import { VAULT_KDFS } from './vault-suites.js';

export type CopyState = 'ok' | 'stale' | 'damaged';
const ENDS = [PRIMARY, BACKUP] as const;

/** The four header sectors of a file, as read: [front, back] for each kind. */
export type HeaderSectors = Record<HeaderKind, [Buffer, Buffer]>;

/** Everything known after an unlock. Holds key material: call wipeHeaderState when done. */
export interface HeaderState {
  kind: HeaderKind;
  fileSize: number;
  dataOffset: number;
  dataSize: number;
  sequence: number;
  slotMask: number;
  /** Both copies' keyslot tables as the authoritative body says they should be. */
  tables: [SlotTable, SlotTable];
  /** The Argon2id salt of each end: the outer copy's salt (a hidden header has none of its own). */
  kdfSalts: [Uint8Array, Uint8Array];
  masterKey: Buffer;
  headerKey: Buffer;
  /** The slot the secret opens in the authoritative state; null if an interrupted update moved it. */
  openedSlot: number | null;
  authoritative: End;
  copies: [{ state: CopyState; sequence: number | null }, { state: CopyState; sequence: number | null }];
}

export async function readHeaderSectors(file: ContainerFile, fileSize: number): Promise<HeaderSectors> {
  const read = async (kind: HeaderKind, end: End) => {
    const sector = Buffer.alloc(SECTOR_BYTES);
    await file.read(sector, headerOffset(kind, end, fileSize));
    return sector;
  };
  return {
    outer: [await read('outer', PRIMARY), await read('outer', BACKUP)],
    // Stryker disable next-line StringLiteral: equivalent, headerOffset treats every kind but 'outer' as hidden
    hidden: [await read('hidden', PRIMARY), await read('hidden', BACKUP)],
  };
}

export function checkCostFits(level: number): void {
  const check = costMemoryCheck(level);
  if (!check.fits) {
    const mib = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MiB`;
    throw new VaultError(
      'USAGE',
      `cost level ${level} needs ${mib(check.neededBytes)} of memory, but only ${mib(check.availableBytes)} is free`,
      'free some memory, or give the cost level the vault was created with',
      { reason: 'cost-needs-memory' },
    );
  }
}

/** Derives the slot key of one end of the file: the single Argon2id run per end. */
export async function deriveCopySlotKey(
  secret: Secret,
  salt: Uint8Array,
  costLevel: number,
): Promise<Buffer> {
  const kdfOutput = await (VAULT_KDFS.get(KDF_ARGON2ID_V1) as KdfSuite).derive(
    secret.material,
    salt,
    costLevel,
  );
  try {
    return deriveSlotKey(kdfOutput);
  } finally {
    wipe(kdfOutput);
  }
}

/**
 * docs/FORMAT.md 5.1. Reads only; throws cannotUnlock() for every kind of failure to open.
 * `only` restricts the search to one kind (protect-hidden asks for the hidden one).
 */
export async function unlockHeaders(
  file: ContainerFile,
  secret: Secret,
  costLevel: number,
  only?: HeaderKind,
): Promise<HeaderState> {
  const fileSize = await file.size();
  // A size that is not a multiple of 4096 can only come from an interrupted resize (5.4): the primary decides.
  // Up to the end of the header area nothing of a volume is left: no KDF run, whatever the secret.
  if (fileSize <= DATA_OFFSET) throw cannotUnlock();
  checkCostFits(costLevel);
  if (fileSize < MIN_FILE_BYTES) throw await shortFileError(file, secret, costLevel, fileSize);
  const sectors = await readHeaderSectors(file, fileSize);
  const kinds: HeaderKind[] = only ? [only] : ['outer', 'hidden'];
  for (const end of ENDS) {
    const slotKey = await deriveCopySlotKey(secret, readSlotTable(sectors.outer[end]).salt, costLevel);
    try {
      for (const kind of kinds) {
        const opened = openSlots(readSlotTable(sectors[kind][end]), copyId(kind, end), slotKey);
        if (!opened) continue;
        const state = await withInterruptedResize(
          file,
          kind,
          sectors,
          fileSize,
          stateFromMasterKey(kind, sectors, fileSize, opened.masterKey),
        );
        if (!state) {
          // The secret opened a keyslot: if the body it seals describes a longer file, say so.
          const truncated = truncationError(
            file.path,
            kind,
            end,
            sectors[kind][end],
            fileSize,
            opened.masterKey,
          );
          wipe(opened.masterKey);
          if (truncated) throw truncated;
          continue;
        }
        // Which slot does this secret hold in the authoritative view of the copy it opened?
        state.openedSlot =
          // Stryker disable next-line ConditionalExpression: equivalent, when the opened end is authoritative its table is the one just opened, so openSlots finds the same slot
          state.authoritative === end
            ? opened.slot
            : (openSlots(state.tables[end], copyId(kind, end), slotKey)?.slot ?? null);
        return state;
      }
    } finally {
      wipe(slotKey);
    }
  }
  throw cannotUnlock();
}

/**
 * A file shorter than the smallest vault: a cut-off vault if the secret opens its front header (one KDF
 * run, as for any vault), else the usual cannot-unlock error.
 */
async function shortFileError(
  file: ContainerFile,
  secret: Secret,
  costLevel: number,
  fileSize: number,
): Promise<VaultError> {
  const sector = Buffer.alloc(SECTOR_BYTES);
  await file.read(sector, 0);
  const slotKey = await deriveCopySlotKey(secret, readSlotTable(sector).salt, costLevel);
  try {
    const opened = openSlots(readSlotTable(sector), copyId('outer', PRIMARY), slotKey);
    if (!opened) return cannotUnlock();
    const truncated = truncationError(file.path, 'outer', PRIMARY, sector, fileSize, opened.masterKey);
    wipe(opened.masterKey);
    return truncated ?? cannotUnlock();
  } finally {
    wipe(slotKey);
  }
}

/**
 * The secret opened a keyslot of `sector`, but no header state came of it: when the body of that copy
 * authenticates and describes a data area beyond the end of the file, the file was cut short (a copy
 * that stopped early, a full disk, `truncate`). Says so, with how much of the volume is still there,
 * instead of the cannot-unlock error a wrong password gets. Returns null in every other case.
 */
function truncationError(
  path: string,
  kind: HeaderKind,
  end: End,
  sector: Uint8Array,
  fileSize: number,
  masterKey: Uint8Array,
): VaultError | null {
  const headerKey = deriveHeaderKey(masterKey);
  let body: HeaderBody | null;
  try {
    body = openBody(copyId(kind, end), sector, headerKey);
  } finally {
    wipe(headerKey);
  }
  // Only an outer body that is a vault in every other respect (docs/FORMAT.md 3.2): a hidden area
  // lies inside the outer one, whose own header already says whether the file is whole.
  if (!body || kind !== 'outer' || body.flags !== 0 || body.dataOffset !== DATA_OFFSET) return null;
  if (body.dataSize % SECTOR_BYTES !== 0 || body.dataSize < MIN_DATA_BYTES) return null;
  const expected = body.dataSize + OVERHEAD_BYTES;
  if (expected <= fileSize) return null;
  const present = Math.min(Math.max(0, fileSize - body.dataOffset), body.dataSize);
  const percent = Math.floor((present / body.dataSize) * 1000) / 10;
  const error = new VaultError(
    'IO',
    `${path} is truncated: the secret opens its header, but the file has ${fileSize} bytes where the header ` +
      `describes ${expected}; ${present} of the volume's ${body.dataSize} bytes ` +
      `(${percent}%) are in the file, the rest and the backup header are missing`,
    `restore the vault from a backup copy if you have one; to read what is left, copy it, extend the copy ` +
      `to ${expected} bytes, repair the copy's headers, then open the copy read-only`,
    { reason: 'truncated', details: { expected } },
  );
  truncationErrors.add(error);
  return error;
}

const truncationErrors = new WeakSet<Error>();

/** True for the error of a vault whose header the secret opened but whose file is cut short. */
export function isTruncatedVault(error: unknown): boolean {
  return error instanceof Error && truncationErrors.has(error);
}

/**
 * docs/FORMAT.md 3.2 and 5.4: an outer primary may describe a file shorter than the one on disk (an
 * interrupted resize); an outer backup must sit right after the data area it describes.
 */
function bodyFits(
  kind: HeaderKind,
  end: End,
  body: HeaderBody,
  fileSize: number,
  backupOffset: number,
): boolean {
  if (kind === 'hidden') {
    return body.flags === FLAG_HIDDEN && body.dataOffset + body.dataSize <= fileSize - BACKUP_AREA_BYTES;
  }
  if (body.flags !== 0 || body.dataOffset !== DATA_OFFSET) return false;
  if (body.dataSize + OVERHEAD_BYTES > fileSize) return false;
  return end === PRIMARY || DATA_OFFSET + body.dataSize === backupOffset;
}

/**
 * With the master key known, opens both bodies of one kind (no KDF) and picks the newest that
 * authenticates. Returns null when neither is valid for this file. Takes ownership of masterKey on success.
 */
export function stateFromMasterKey(
  kind: HeaderKind,
  sectors: HeaderSectors,
  fileSize: number,
  masterKey: Buffer,
  backupOffset = headerOffset(kind, BACKUP, fileSize),
): HeaderState | null {
  // FORMAT.md 2.3: the key MUST pass the XTS key rule; only a forged header holds one that does not.
  if (!isUsableXtsKey(masterKey)) return null;
  const headerKey = deriveHeaderKey(masterKey);
  const bodies = ENDS.map((end) => {
    const body = openBody(copyId(kind, end), sectors[kind][end], headerKey);
    return body && bodyFits(kind, end, body, fileSize, backupOffset) ? body : null;
  }) as [HeaderBody | null, HeaderBody | null];
  const [primary, backup] = bodies;
  let authoritative: End;
  if (primary && (!backup || primary.sequence >= backup.sequence)) authoritative = PRIMARY;
  else if (backup) authoritative = BACKUP;
  else {
    wipe(headerKey);
    return null;
  }
  const body = bodies[authoritative] as HeaderBody;
  const own = readSlotTable(sectors[kind][authoritative]);
  const mirror: SlotTable = { salt: body.mirrorSalt, slots: body.mirrorSlots };
  const tables: [SlotTable, SlotTable] = authoritative === PRIMARY ? [own, mirror] : [mirror, own];
  const kdfSalts: [Uint8Array, Uint8Array] =
    kind === 'outer'
      ? [tables[PRIMARY].salt, tables[BACKUP].salt]
      : [readSlotTable(sectors.outer[PRIMARY]).salt, readSlotTable(sectors.outer[BACKUP]).salt];
  const copyState = (candidate: HeaderBody | null) =>
    candidate === null
      ? { state: 'damaged' as const, sequence: null }
      : {
          state: candidate.sequence < body.sequence ? ('stale' as const) : ('ok' as const),
          sequence: candidate.sequence,
        };
  return {
    kind,
    fileSize,
    dataOffset: body.dataOffset,
    dataSize: body.dataSize,
    sequence: body.sequence,
    slotMask: body.slotMask,
    tables,
    kdfSalts,
    // Held for as long as the volume is open (a mount: until dismount): in locked, undumpable pages.
    masterKey: moveToLocked(masterKey),
    headerKey: moveToLocked(headerKey),
    openedSlot: null,
    authoritative,
    copies: [copyState(primary), copyState(backup)],
  };
}

/**
 * A file longer than the outer layout is an interrupted resize (5.4): the backup copy is then still at
 * its old place right after the data area. Looks there when the end of the file has no valid backup.
 */
async function withInterruptedResize(
  file: ContainerFile,
  kind: HeaderKind,
  sectors: HeaderSectors,
  fileSize: number,
  state: HeaderState | null,
): Promise<HeaderState | null> {
  // Stryker disable next-line ConditionalExpression: equivalent, with the layout incomplete no backup at the end of the file fits (bodyFits), so it is always 'damaged' here
  if (!state || !layoutIncomplete(state) || state.copies[BACKUP].state !== 'damaged') return state;
  const oldBackupOffset = DATA_OFFSET + state.dataSize;
  const oldBackup = Buffer.alloc(SECTOR_BYTES);
  await file.read(oldBackup, oldBackupOffset);
  const masterKey = Buffer.from(state.masterKey);
  const relocated = stateFromMasterKey(
    kind,
    { ...sectors, outer: [sectors.outer[PRIMARY], oldBackup] },
    fileSize,
    masterKey,
    oldBackupOffset,
  );
  if (!relocated) {
    wipe(masterKey);
    return state;
  }
  wipeHeaderState(state);
  return relocated;
}

/** True when the file is longer than the outer layout describes (an interrupted resize). */
export function layoutIncomplete(state: HeaderState): boolean {
  return state.kind === 'outer' && state.dataSize + OVERHEAD_BYTES !== state.fileSize;
}

/** The two sectors of an update (5.2): each copy's body mirrors the other copy's table. */
export function sealHeaderPair(
  state: HeaderState,
  tables: [SlotTable, SlotTable],
  slotMask: number,
  sequence: number,
): [Buffer, Buffer] {
  const body = (other: SlotTable): HeaderBody => ({
    flags: state.kind === 'outer' ? 0 : FLAG_HIDDEN,
    sequence,
    dataOffset: state.dataOffset,
    dataSize: state.dataSize,
    slotMask,
    mirrorSalt: other.salt,
    mirrorSlots: other.slots,
  });
  return [
    sealHeader(copyId(state.kind, PRIMARY), tables[PRIMARY], body(tables[BACKUP]), state.headerKey),
    sealHeader(copyId(state.kind, BACKUP), tables[BACKUP], body(tables[PRIMARY]), state.headerKey),
  ];
}

/**
 * Writes both copies of a kind: the backup, sync, the primary, sync (docs/FORMAT.md 5.2). When the
 * primary is damaged (repair) it goes first: the backup is then the only copy that opens, and a power
 * cut while it is rewritten could tear it before any other good copy is on the disk.
 */
export async function writeHeaderPair(
  file: ContainerFile,
  state: HeaderState,
  sectors: [Buffer, Buffer],
): Promise<void> {
  const order = state.copies[PRIMARY].state === 'damaged' ? [PRIMARY, BACKUP] : [BACKUP, PRIMARY];
  for (const end of order) {
    await file.write(sectors[end], headerOffset(state.kind, end, state.fileSize));
    await file.sync();
  }
}

/**
 * docs/FORMAT.md 5.2: seals and writes both copies, then updates `state` to match.
 * `change` edits copies of both tables (the same slot index in each) and returns the new slot mask.
 */
export async function updateHeaders(
  file: ContainerFile,
  state: HeaderState,
  change: (tables: [SlotTable, SlotTable]) => Promise<number> | number,
  sequence = state.sequence + 1,
): Promise<void> {
  if (layoutIncomplete(state)) {
    throw new VaultError(
      'USAGE',
      'the vault file is longer than its volume: an earlier resize was interrupted',
      'resize it again to the size you wanted; that finishes the job',
      { reason: 'interrupted-resize' },
    );
  }
  const tables: [SlotTable, SlotTable] = [
    copySlotTable(state.tables[PRIMARY]),
    copySlotTable(state.tables[BACKUP]),
  ];
  const slotMask = await change(tables);
  if (slotMask === 0 || slotMask >= 1 << SLOT_COUNT) throw new Error('invalid keyslot mask');
  await writeHeaderPair(file, state, sealHeaderPair(state, tables, slotMask, sequence));
  state.tables = tables;
  state.slotMask = slotMask;
  state.sequence = sequence;
  state.authoritative = PRIMARY;
  state.copies = [
    { state: 'ok', sequence },
    { state: 'ok', sequence },
  ];
}

/**
 * The keyslots of the other kind of volume in the same file: the hidden header's for an outer state,
 * the outer header's for a hidden one. Both kinds derive their slot keys with the outer salts, so a
 * slot key made for one kind also tries the other's slots, at no extra KDF cost.
 */
export interface OtherSlots {
  kind: HeaderKind;
  tables: [SlotTable, SlotTable];
}

export async function otherSlotsOf(file: ContainerFile, state: HeaderState): Promise<OtherSlots> {
  const sectors = await readHeaderSectors(file, await file.size());
  const kind: HeaderKind = state.kind === 'outer' ? 'hidden' : 'outer';
  return { kind, tables: [readSlotTable(sectors[kind][PRIMARY]), readSlotTable(sectors[kind][BACKUP])] };
}

/**
 * Wraps the master key for `secret` into `slot` of both tables, each with its end's KDF salt. With
 * `other`, first refuses a secret that already opens the other kind of volume: unlocking tries the
 * outer keyslots first, so an outer slot holding the hidden secret would make the hidden volume
 * unreachable, and a hidden slot holding an outer secret could never be reached.
 */
export async function wrapInBothCopies(
  state: HeaderState,
  tables: [SlotTable, SlotTable],
  slot: number,
  secret: Secret,
  costLevel: number,
  other?: OtherSlots,
): Promise<void> {
  checkCostFits(costLevel);
  for (const end of ENDS) {
    const slotKey = await deriveCopySlotKey(secret, state.kdfSalts[end], costLevel);
    try {
      if (other) refuseSecretOfOther(other, end, slotKey);
      wrapSlot(tables[end], copyId(state.kind, end), slot, slotKey, state.masterKey);
    } finally {
      wipe(slotKey);
    }
  }
}

function refuseSecretOfOther(other: OtherSlots, end: End, slotKey: Uint8Array): void {
  const opened = openSlots(other.tables[end], copyId(other.kind, end), slotKey);
  if (!opened) return;
  wipe(opened.masterKey);
  throw new VaultError(
    'USAGE',
    other.kind === 'hidden'
      ? 'this secret opens the hidden volume of this vault; as a secret of the outer volume it would make the hidden volume unreachable'
      : 'this secret opens the outer volume of this vault; the hidden volume needs a different one',
    'choose another password or keyfile',
  );
}

export function wipeHeaderState(state: HeaderState): void {
  wipe(state.masterKey, state.headerKey);
}

export function usedSlots(slotMask: number): number[] {
  const used: number[] = [];
  // Stryker disable next-line EqualityOperator: equivalent, a valid mask has no bit 16 (decodeBody and updateHeaders refuse it)
  for (let index = 0; index < SLOT_COUNT; index++) if (slotMask & (1 << index)) used.push(index);
  return used;
}

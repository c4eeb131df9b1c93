// Creating a vault (docs/FORMAT.md 1 and 5.2): a temporary file next to the target, written in full
// (headers, random areas, the data area filled with XTS ciphertext of zeros under a throwaway key),
// synced, optionally formatted, then moved into place. Any failure or abort removes the temporary file.
import { randomFillSync, timingSafeEqual } from 'node:crypto';
import { DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import { lockedBuffer, moveToLocked } from '../crypto/memory.js';
import { randomBytes, wipe } from '../crypto/random.js';
import { isVaultError, VaultError } from './errors.js';
import { type ContainerFile, fileError, type OpenContainerFile, openContainerFile } from './file.js';
import { deriveHeaderKey, randomSlotTable, type SlotTable } from './header.js';
import {
  checkCostFits,
  type HeaderState,
  type OtherSlots,
  sealHeaderPair,
  wipeHeaderState,
  wrapInBothCopies,
  writeHeaderPair,
} from './header-pair.js';
import {
  BACKUP,
  DATA_OFFSET,
  HEADER_AREA_BYTES,
  type HeaderKind,
  MASTER_KEY_BYTES,
  MIN_DATA_BYTES,
  MIN_FILE_BYTES,
  OVERHEAD_BYTES,
  PRIMARY,
  SECTOR_BYTES,
} from './layout.js';
import type { Secret } from './secret.js';
import { abortIfAsked, stageFile } from './staged-file.js';
import { Vault } from './vault.js';
import { createVaultSectorCipher } from './vault-suites.js';

export interface CreateOptions {
  /** Total size of the container file in bytes (a multiple of 4096, at least 1 MiB). */
  fileSize: number;
  secret: Secret;
  costLevel?: number;
  /** Skip filling the data area (faster; reveals which sectors were ever written: docs/FORMAT.md 4). */
  quick?: boolean;
  /** Replace an existing file (only once the new vault is complete). */
  force?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
  /** Runs on the finished vault before it is moved into place, e.g. to make a filesystem. */
  format?: (vault: Vault) => Promise<void>;
  /** Also create a hidden vault in the tail of the outer data area (docs/FORMAT.md 8). */
  hidden?: HiddenOptions;
  openFile?: OpenContainerFile;
}

export interface HiddenOptions {
  /** Size of the hidden volume's data area in bytes (a multiple of 4096, at least 768 KiB). */
  dataSize: number;
  secret: Secret;
  /** Cost level of the hidden secret; defaults to the outer one. */
  costLevel?: number;
  format?: (vault: Vault) => Promise<void>;
}

const FILL_CHUNK_BYTES = 1 << 20;
const PARTIAL_VAULT_REMOVED = 'the partial vault was removed';

export async function createVault(path: string, options: CreateOptions): Promise<void> {
  const { fileSize } = options;
  checkFileSize(fileSize);
  if (options.hidden && options.quick) {
    throw new VaultError(
      'USAGE',
      'a vault created without its fill cannot hold a hidden volume: never-written sectors would stand out around it',
      'fill the data area (the fill runs at disk speed)',
      { reason: 'quick-with-hidden' },
    );
  }
  const costLevel = options.costLevel ?? DEFAULT_COST_LEVEL;
  checkCostFits(costLevel);
  const staged = await stageFile(path, {
    force: options.force ?? false,
    space: { bytes: fileSize, what: 'the vault' },
  });
  const file = await (options.openFile ?? openContainerFile)(staged.temporary, 'create');
  let keep = false;
  let outer: HeaderState | null = null;
  let hidden: HeaderState | null = null;
  try {
    outer = await newHeaderState('outer', options.secret, costLevel, {
      fileSize,
      dataOffset: DATA_OFFSET,
      dataSize: fileSize - OVERHEAD_BYTES,
    });
    hidden = options.hidden ? await buildHidden(outer, options.hidden, costLevel, options.secret) : null;
    const identity = await file.identity();
    const settings = { costLevel, readOnly: false, preserveTimestamps: false, identity };
    abortIfAsked(options.signal, PARTIAL_VAULT_REMOVED);
    await writeLayout(file, outer, options);
    await file.sync();
    if (hidden) await writeHeaderPair(file, hidden, sealHeaderPair(hidden, hidden.tables, 1, 1));
    // The outer volume is formatted first, with the hidden area protected: a filesystem whose mkfs
    // writes there (ext4 spreads metadata over the whole volume) is refused rather than overlapped.
    const outerVault = new Vault(file, outer, {
      ...settings,
      ...(hidden ? { protectedRange: protectedRangeOf(hidden) } : {}),
      keepFileOpen: true,
    });
    try {
      if (options.format) await options.format(outerVault);
      abortIfAsked(options.signal, PARTIAL_VAULT_REMOVED);
    } finally {
      await outerVault.close(); // syncs and wipes the outer keys; the file stays open for the hidden part
    }
    if (hidden && options.hidden) {
      const hiddenVault = new Vault(file, hidden, { ...settings, keepFileOpen: true });
      try {
        if (options.hidden.format) await options.hidden.format(hiddenVault);
        abortIfAsked(options.signal, PARTIAL_VAULT_REMOVED);
      } finally {
        await hiddenVault.close();
      }
    }
    await file.close();
    await staged.publish();
    keep = true;
  } catch (error) {
    if (isVaultError(error)) throw error;
    throw fileError(error, path);
  } finally {
    if (outer) wipeHeaderState(outer);
    if (hidden) wipeHeaderState(hidden);
    if (!keep) {
      await file.close().catch(() => {});
      await staged.discard();
    }
  }
}

export function checkFileSize(fileSize: number): void {
  if (!Number.isInteger(fileSize) || fileSize < MIN_FILE_BYTES) {
    throw new VaultError(
      'USAGE',
      `a vault must be at least ${MIN_FILE_BYTES / 2 ** 20} MiB`,
      'give a larger size, e.g. 64M',
    );
  }
  // Safe integers end at 2^53 - 1, so a safe size's data area is always below MAX_DATA_BYTES (2^53, the
  // 8 PiB of docs/FORMAT.md), and every byte offset stays exact in a JavaScript number.
  if (!Number.isSafeInteger(fileSize)) {
    throw new VaultError('USAGE', 'the size is larger than a vault can be (8 PiB)', 'give a smaller size');
  }
  if (fileSize % SECTOR_BYTES !== 0) {
    throw new VaultError(
      'USAGE',
      'the size must be a multiple of 4 KiB (4096 bytes)',
      'use units: 64M, 2G, 1.5T',
    );
  }
}

/**
 * A fresh master key and both slot tables of one kind, slot 0 holding the secret, sequence 1. The KDF
 * salts are the outer tables' own salts; a hidden header borrows them (docs/FORMAT.md 8).
 */
async function newHeaderState(
  kind: HeaderKind,
  secret: Secret,
  costLevel: number,
  layout: { fileSize: number; dataOffset: number; dataSize: number; kdfSalts?: [Uint8Array, Uint8Array] },
  other?: OtherSlots,
): Promise<HeaderState> {
  const masterKey = newMasterKey();
  const tables: [SlotTable, SlotTable] = [randomSlotTable(), randomSlotTable()];
  const state: HeaderState = {
    kind,
    fileSize: layout.fileSize,
    dataOffset: layout.dataOffset,
    dataSize: layout.dataSize,
    sequence: 1,
    slotMask: 1,
    tables,
    kdfSalts: layout.kdfSalts ?? [tables[PRIMARY].salt, tables[BACKUP].salt],
    masterKey,
    headerKey: moveToLocked(deriveHeaderKey(masterKey)),
    openedSlot: 0,
    authoritative: PRIMARY,
    copies: [
      { state: 'ok', sequence: 1 },
      { state: 'ok', sequence: 1 },
    ],
  };
  try {
    await wrapInBothCopies(state, tables, 0, secret, costLevel, other);
  } catch (error) {
    wipeHeaderState(state);
    throw error;
  }
  return state;
}

/**
 * The hidden header for `hidden` in the tail of `outer`'s data area, its secret wrapped (two KDF runs,
 * one per end, on the outer salts). Also used to add a hidden volume to an existing vault (hidden.ts).
 */
export async function buildHidden(
  outer: HeaderState,
  hidden: HiddenOptions,
  costLevel: number,
  outerSecret: Secret,
): Promise<HeaderState> {
  const { dataSize } = hidden;
  if (timingSafeEqualBytes(hidden.secret.material, outerSecret.material)) {
    throw new VaultError(
      'USAGE',
      'the hidden volume needs a secret different from the outer one',
      'choose another password or keyfile for the hidden volume',
    );
  }
  checkHiddenSize(outer.dataSize, dataSize);
  // Also refuses a hidden secret that opens any outer keyslot (an existing vault may have several).
  return newHeaderState(
    'hidden',
    hidden.secret,
    hidden.costLevel ?? costLevel,
    {
      fileSize: outer.fileSize,
      dataOffset: outer.dataOffset + outer.dataSize - dataSize,
      dataSize,
      kdfSalts: outer.kdfSalts,
    },
    { kind: 'outer', tables: outer.tables },
  );
}

/** A hidden volume of `dataSize` bytes is whole sectors, at least 768 KiB, and leaves the outer as much. */
export function checkHiddenSize(outerDataSize: number, dataSize: number): void {
  if (!Number.isSafeInteger(dataSize) || dataSize % SECTOR_BYTES !== 0 || dataSize < MIN_DATA_BYTES) {
    throw new VaultError(
      'USAGE',
      `a hidden volume must be a multiple of 4 KiB and at least ${MIN_DATA_BYTES / 1024} KiB`,
      'give a larger hidden volume size',
      { reason: 'hidden-too-small' },
    );
  }
  if (dataSize > outerDataSize - MIN_DATA_BYTES) {
    throw new VaultError(
      'USAGE',
      'the hidden volume must be smaller than the outer volume, leaving it at least 768 KiB',
      'give a smaller hidden volume or a larger vault',
      { reason: 'hidden-too-large-for-vault' },
    );
  }
}

/** The hidden volume's data area in the outer volume's cleartext byte offsets. */
export function protectedRangeOf(hidden: HeaderState): { start: number; end: number } {
  const start = hidden.dataOffset - DATA_OFFSET;
  return { start, end: start + hidden.dataSize };
}

function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A random master key in locked memory (crypto/memory.ts); its halves differ, as XTS requires. */
export function newMasterKey(): Buffer {
  const key = lockedBuffer(MASTER_KEY_BYTES);
  for (;;) {
    randomFillSync(key);
    if (!key.subarray(0, 32).equals(key.subarray(32))) return key;
  }
}

async function writeLayout(file: ContainerFile, state: HeaderState, options: CreateOptions): Promise<void> {
  const { fileSize } = state;
  const [primary, backup] = sealHeaderPair(state, state.tables, state.slotMask, state.sequence);
  // Header areas: the header sector, then random bytes up to the data area (hidden area included).
  await file.write(Buffer.concat([primary, randomBytes(DATA_OFFSET - SECTOR_BYTES)]), 0);
  const backupOffset = DATA_OFFSET + state.dataSize;
  await file.write(Buffer.concat([backup, randomBytes(2 * HEADER_AREA_BYTES - SECTOR_BYTES)]), backupOffset);
  if (options.quick) {
    await file.allocate(fileSize);
    options.onProgress?.(fileSize, fileSize);
    return;
  }
  await fillWithCiphertext(file, DATA_OFFSET, state.dataSize, {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Writes `length` bytes at `start` that look like vault data: XTS ciphertext of zeros under a
 * throwaway key, at crypto speed. Used for the data area at creation and for the new area of a resize.
 */
export async function fillWithCiphertext(
  file: ContainerFile,
  start: number,
  length: number,
  options: {
    onProgress?: (doneBytes: number, totalBytes: number) => void;
    signal?: AbortSignal;
    /** What an interruption leaves behind, for the error message. */
    interruptedOutcome?: string;
  } = {},
): Promise<void> {
  const throwawayKey = newMasterKey();
  const xts = createVaultSectorCipher(throwawayKey);
  wipe(throwawayKey);
  const zeros = Buffer.alloc(FILL_CHUNK_BYTES);
  // Two buffers: one is being written while the next is encrypted.
  const buffers = [Buffer.alloc(FILL_CHUNK_BYTES), Buffer.alloc(FILL_CHUNK_BYTES)];
  let pending: Promise<void> = Promise.resolve();
  try {
    for (let done = 0, turn = 0; done < length; done += FILL_CHUNK_BYTES, turn ^= 1) {
      abortIfAsked(options.signal, options.interruptedOutcome ?? PARTIAL_VAULT_REMOVED);
      const size = Math.min(FILL_CHUNK_BYTES, length - done);
      const buffer = (buffers[turn] as Buffer).subarray(0, size);
      xts.encrypt(zeros.subarray(0, size), done / SECTOR_BYTES, buffer);
      await pending;
      options.onProgress?.(done, length);
      pending = file.write(buffer, start + done);
    }
    await pending;
    options.onProgress?.(length, length);
  } finally {
    await pending.catch(() => {});
    xts.destroy();
  }
}

// Growing a vault (docs/FORMAT.md 5.4): new area filled like create, the backup headers moved to the
// new end, both header copies rewritten, in an order where a crash at any point leaves a vault that
// opens with the same secrets. Shrinking is refused. The filesystem inside is the caller's business.
import { dirname } from 'node:path';
import { DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import { checkFileSize, fillWithCiphertext } from './create.js';
import { VaultError } from './errors.js';
import { type ContainerFile, type OpenContainerFile, openContainerFile } from './file.js';
import {
  type HeaderState,
  sealHeaderPair,
  unlockHeaders,
  updateHeaders,
  wipeHeaderState,
} from './header-pair.js';
import { BACKUP_AREA_BYTES, DATA_OFFSET, HEADER_AREA_BYTES, OVERHEAD_BYTES, SECTOR_BYTES } from './layout.js';
import type { Secret } from './secret.js';
import { abortIfAsked, checkFreeSpace } from './staged-file.js';
import { Vault } from './vault.js';

export interface ResizeOptions {
  costLevel?: number;
  /**
   * Runs on the grown vault (also when it already had the size), e.g. to grow the filesystem inside,
   * without a second KDF run.
   */
  afterGrow?: (vault: Vault) => Promise<void>;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
  openFile?: OpenContainerFile;
}

async function runAfterGrow(file: ContainerFile, state: HeaderState, options: ResizeOptions): Promise<void> {
  const vault = new Vault(file, state, {
    costLevel: options.costLevel ?? DEFAULT_COST_LEVEL,
    readOnly: false,
    preserveTimestamps: false,
    identity: await file.identity(),
    keepFileOpen: true,
  });
  try {
    await options.afterGrow?.(vault);
  } finally {
    await vault.close();
  }
}

export interface ResizeResult {
  oldDataSize: number;
  newDataSize: number;
}

/**
 * Grows the vault file to `newFileSize` bytes. Steps (each followed by fdatasync):
 * 1. fill the new area [old end, new end) with ciphertext-looking bytes, and copy the old hidden
 *    backup sector (random bytes, or a hidden volume's backup header) to its new place at the end;
 * 2. write the new outer backup header (new size, sequence + 1) at the new end;
 * 3. overwrite the old backup header sectors, now inside the data area, with fill;
 * 4. write the new primary header.
 * After 1 the primary and the old backup describe the old size (the file is just longer); after 2
 * the new backup is the newest copy; after 4 both agree. Running resize again finishes any of these.
 */
export async function resizeVault(
  path: string,
  secret: Secret,
  newFileSize: number,
  options: ResizeOptions = {},
): Promise<ResizeResult> {
  checkFileSize(newFileSize);
  const file = await (options.openFile ?? openContainerFile)(path, 'write');
  let state: HeaderState | null = null;
  try {
    state = await unlockHeaders(file, secret, options.costLevel ?? DEFAULT_COST_LEVEL, 'outer').catch(
      async (error: unknown) => {
        // Distinguish "this opens a hidden volume" from a wrong secret only when it does.
        const hidden = await unlockHeaders(
          file,
          secret,
          options.costLevel ?? DEFAULT_COST_LEVEL,
          'hidden',
        ).catch(() => null);
        if (hidden) {
          wipeHeaderState(hidden);
          throw new VaultError(
            'USAGE',
            'this secret opens a hidden volume, which cannot be resized',
            'resize with the outer volume secret; the hidden volume keeps its size and place',
          );
        }
        throw error;
      },
    );
    const oldDataSize = state.dataSize;
    const oldFileSize = oldDataSize + OVERHEAD_BYTES;
    const currentFileSize = await file.size();
    if (newFileSize < oldFileSize) {
      throw new VaultError(
        'USAGE',
        `shrinking is not supported (the vault file is ${oldFileSize} bytes)`,
        'give a size larger than the current one, or copy the files to a new, smaller vault',
      );
    }
    if (newFileSize < currentFileSize) {
      throw new VaultError(
        'USAGE',
        `an interrupted resize made the file ${currentFileSize} bytes; give at least that size`,
        `resize it again to ${currentFileSize} bytes or more`,
        { reason: 'resize-below-interrupted', details: { size: currentFileSize } },
      );
    }
    if (newFileSize === oldFileSize) {
      // Nothing to grow; an update interrupted after its new backup header is finished here.
      const unlocked = state;
      if (unlocked.copies.some((copy) => copy.state !== 'ok'))
        await updateHeaders(file, unlocked, () => unlocked.slotMask);
      await runAfterGrow(file, state, options);
      state = null; // the vault handle owned and wiped the keys
      return { oldDataSize, newDataSize: oldDataSize };
    }
    await checkFreeSpace(dirname(path), newFileSize - currentFileSize, 0, 'growing the vault');

    const oldBackupOffset = DATA_OFFSET + oldDataSize;
    const hiddenBackup = Buffer.alloc(SECTOR_BYTES);
    await file.read(hiddenBackup, oldBackupOffset + HEADER_AREA_BYTES);
    // 1. The new area, then the hidden backup sector at its new place.
    const interruptedOutcome = 'the vault was not grown and opens as before; run the same resize again';
    await fillWithCiphertext(file, oldFileSize, newFileSize - oldFileSize, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      interruptedOutcome,
    });
    await file.write(hiddenBackup, newFileSize - HEADER_AREA_BYTES);
    await file.sync();
    abortIfAsked(options.signal, interruptedOutcome);

    const newDataSize = newFileSize - OVERHEAD_BYTES;
    const sequence = state.sequence + 1;
    const grown: HeaderState = { ...state, fileSize: newFileSize, dataSize: newDataSize };
    const [primary, backup] = sealHeaderPair(grown, state.tables, state.slotMask, sequence);
    // 2. The new backup header.
    await file.write(backup, newFileSize - BACKUP_AREA_BYTES);
    await file.sync();
    // 3. The old header sectors become data: overwrite them so no stale sealed header stays behind.
    await fillWithCiphertext(file, oldBackupOffset, SECTOR_BYTES);
    await fillWithCiphertext(file, oldBackupOffset + HEADER_AREA_BYTES, SECTOR_BYTES);
    await file.sync();
    // 4. The primary header.
    await file.write(primary, 0);
    await file.sync();
    const done: HeaderState = {
      ...grown,
      sequence,
      authoritative: 0,
      copies: [
        { state: 'ok', sequence },
        { state: 'ok', sequence },
      ],
    };
    await runAfterGrow(file, done, options);
    state = null; // the vault handle owned and wiped the keys
    return { oldDataSize, newDataSize };
  } finally {
    if (state) wipeHeaderState(state);
    await file.close();
  }
}

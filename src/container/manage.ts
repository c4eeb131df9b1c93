// Header maintenance: change a secret, add or remove a keyslot, repair a damaged copy, back up and
// restore the header. Each is one crash-safe update (docs/FORMAT.md 5.2) after one unlock.
import { open as openFile, readFile } from 'node:fs/promises';
import { DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import { wipe } from '../crypto/random.js';
import { cannotUnlock, isVaultError, VaultError } from './errors.js';
import { type ContainerFile, fileError, type OpenContainerFile, openContainerFile } from './file.js';
import { clearSlot, openSlots, readSlotTable } from './header.js';
import {
  checkCostFits,
  deriveCopySlotKey,
  type HeaderSectors,
  type HeaderState,
  otherSlotsOf,
  readHeaderSectors,
  stateFromMasterKey,
  unlockHeaders,
  updateHeaders,
  wipeHeaderState,
  wrapInBothCopies,
} from './header-pair.js';
import {
  BACKUP,
  copyId,
  type HeaderKind,
  MIN_FILE_BYTES,
  PRIMARY,
  SECTOR_BYTES,
  SLOT_COUNT,
} from './layout.js';

/** A header backup file: the outer front header sector, then the hidden-area front sector. */
export const HEADER_BACKUP_BYTES = 2 * SECTOR_BYTES;

import type { Secret } from './secret.js';
import { stageFile } from './staged-file.js';

export interface ManageOptions {
  /** Cost level of the secret that unlocks. */
  costLevel?: number;
  /** Cost level for the new secret (passwd, key add); defaults to costLevel. */
  newCostLevel?: number;
  openFile?: OpenContainerFile;
}

export interface RepairResult {
  repaired: Array<'primary' | 'backup'>;
}

/**
 * A new secret, given as is or as a function that asks for it: asked only once the current secret has
 * unlocked (no typing a new password twice for nothing). A secret the function returns is wiped here.
 */
export type NewSecret = Secret | (() => Promise<Secret>);

async function withNewSecret<T>(next: NewSecret, use: (secret: Secret) => Promise<T>): Promise<T> {
  if (typeof next !== 'function') return use(next);
  const secret = await next();
  try {
    return await use(secret);
  } finally {
    secret.wipe();
  }
}

/** `vault passwd`: rewraps the slot the current secret opens; the master key never changes. */
export async function changeSecret(
  path: string,
  current: Secret,
  next: NewSecret,
  options: ManageOptions = {},
): Promise<number> {
  return withUnlocked(path, current, options, async (file, state) => {
    const slot = requireOpenedSlot(state);
    const other = await otherSlotsOf(file, state);
    await withNewSecret(next, (secret) =>
      updateHeaders(file, state, async (tables) => {
        await wrapInBothCopies(state, tables, slot, secret, newCost(options), other);
        return state.slotMask;
      }),
    );
    return slot;
  });
}

/** `vault key add`: wraps the master key for a new secret in the lowest free slot. Returns the slot. */
export async function addKey(
  path: string,
  current: Secret,
  added: NewSecret,
  options: ManageOptions = {},
): Promise<number> {
  return withUnlocked(path, current, options, async (file, state) => {
    let slot = 0;
    while (slot < SLOT_COUNT && state.slotMask & (1 << slot)) slot++;
    if (slot === SLOT_COUNT) {
      throw new VaultError('USAGE', `all ${SLOT_COUNT} keyslots are in use`, 'remove one first', {
        reason: 'keyslots-full',
      });
    }
    const other = await otherSlotsOf(file, state);
    await withNewSecret(added, (secret) =>
      updateHeaders(file, state, async (tables) => {
        await wrapInBothCopies(state, tables, slot, secret, newCost(options), other);
        return state.slotMask | (1 << slot);
      }),
    );
    return slot;
  });
}

/**
 * `vault key remove`: empties the slot the given secret opens (random bytes), or with `slot` that slot,
 * whichever secret unlocked (as cryptsetup luksKillSlot); never the last one.
 */
export async function removeKey(
  path: string,
  removed: Secret,
  options: ManageOptions & { slot?: number } = {},
): Promise<number> {
  return withUnlocked(path, removed, options, async (file, state) => {
    const slot = options.slot ?? requireOpenedSlot(state);
    if (!(state.slotMask & (1 << slot))) {
      throw new VaultError('USAGE', `keyslot ${slot} is empty`, 'list the keyslots in use first', {
        reason: 'empty-keyslot',
        details: { path },
      });
    }
    if ((state.slotMask & ~(1 << slot)) === 0) {
      throw new VaultError(
        'USAGE',
        'this is the last keyslot; removing it would lock the vault for good',
        'add another secret first',
        { reason: 'last-keyslot' },
      );
    }
    await updateHeaders(file, state, (tables) => {
      clearSlot(tables[PRIMARY], slot);
      clearSlot(tables[BACKUP], slot);
      return state.slotMask & ~(1 << slot);
    });
    return slot;
  });
}

/** `vault repair`: rewrites both copies from the authoritative one when either is damaged or stale. */
export async function repairHeaders(
  path: string,
  secret: Secret,
  options: ManageOptions = {},
): Promise<RepairResult> {
  return withUnlocked(path, secret, options, async (file, state) => {
    const repaired: Array<'primary' | 'backup'> = [];
    if (state.copies[PRIMARY].state !== 'ok') repaired.push('primary');
    if (state.copies[BACKUP].state !== 'ok') repaired.push('backup');
    if (repaired.length > 0) await updateHeaders(file, state, () => state.slotMask);
    return { repaired };
  });
}

/**
 * `vault header backup`: 8192 bytes, the front header sector of the outer volume, then the front
 * sector of the hidden area, both copied verbatim (docs/FORMAT.md 5.3). The secret only proves that
 * the caller may take a backup: it never changes what is written, so a backup made with the outer
 * secret, with the hidden one, or of a vault without a hidden volume stands in the same relation to
 * the vault file, and tells nothing about which secret made it. A damaged or out-of-date front copy
 * is refused: `vault repair` rewrites it from the back copy first.
 */
export async function backupHeader(
  path: string,
  secret: Secret,
  target: string,
  options: ManageOptions = {},
): Promise<void> {
  // The target is checked before the secret is: a header backup is never overwritten.
  const staged = await stageFile(target, {
    force: false,
    existsHint: 'choose another name: a header backup is never overwritten',
  });
  const backup = await withUnlocked(path, secret, { ...options, readOnly: true }, async (file, state) => {
    if (state.copies[PRIMARY].state !== 'ok') {
      throw new VaultError(
        'USAGE',
        `the front header copy of ${path} is ${state.copies[PRIMARY].state === 'damaged' ? 'damaged' : 'out of date (an update was interrupted)'}; a backup of it would not restore`,
        'repair the vault first (that rewrites it from the back copy), then take the backup',
        { reason: 'backup-of-damaged-front', details: { path } },
      );
    }
    const sectors = await readHeaderSectors(file, state.fileSize);
    return Buffer.concat([sectors.outer[PRIMARY], sectors.hidden[PRIMARY]]);
  });
  let handle: Awaited<ReturnType<typeof openFile>> | undefined;
  let published = false;
  try {
    handle = await openFile(staged.temporary, 'wx', 0o600);
    await handle.writeFile(backup);
    await handle.datasync();
    await handle.close();
    handle = undefined;
    await staged.publish();
    published = true;
  } catch (error) {
    if (isVaultError(error)) throw error;
    throw fileError(error, target);
  } finally {
    await handle?.close().catch(() => {});
    if (!published) await staged.discard();
  }
}

/**
 * `vault header restore`: opens the backup file with the secret (outer or hidden), checks it belongs to
 * this vault (its master key opens one of the vault's header bodies of that kind; `force` skips that
 * when both are unreadable), then writes both copies of that kind with a sequence number above every
 * copy seen. The other kind is left as it is.
 */
export async function restoreHeader(
  path: string,
  secret: Secret,
  source: string,
  options: ManageOptions & { force?: boolean } = {},
): Promise<HeaderKind> {
  const costLevel = options.costLevel ?? DEFAULT_COST_LEVEL;
  checkCostFits(costLevel);
  let backup: Buffer;
  try {
    backup = await readFile(source);
  } catch (error) {
    throw fileError(error, source);
  }
  if (backup.length !== HEADER_BACKUP_BYTES) throw cannotUnlock();
  const file = await (options.openFile ?? openContainerFile)(path, 'write');
  let state: HeaderState | null = null;
  try {
    const fileSize = await file.size();
    if (fileSize < MIN_FILE_BYTES || fileSize % SECTOR_BYTES !== 0) {
      throw new VaultError(
        'USAGE',
        `${path} is too short to be a vault`,
        'name the vault file the backup was made from',
      );
    }
    const fromBackup: HeaderSectors = {
      outer: [backup.subarray(0, SECTOR_BYTES), Buffer.alloc(SECTOR_BYTES)],
      hidden: [backup.subarray(SECTOR_BYTES), Buffer.alloc(SECTOR_BYTES)],
    };
    const slotKey = await deriveCopySlotKey(secret, readSlotTable(fromBackup.outer[PRIMARY]).salt, costLevel);
    let kind: HeaderKind | null = null;
    let masterKey: Buffer | null = null;
    try {
      for (const candidate of ['outer', 'hidden'] as const) {
        const opened = openSlots(
          readSlotTable(fromBackup[candidate][PRIMARY]),
          copyId(candidate, PRIMARY),
          slotKey,
        );
        if (opened) {
          kind = candidate;
          masterKey = opened.masterKey;
          break;
        }
      }
    } finally {
      wipe(slotKey);
    }
    if (!kind || !masterKey) throw cannotUnlock();
    state = stateFromMasterKey(kind, fromBackup, fileSize, masterKey);
    if (!state) {
      wipe(masterKey);
      throw new VaultError(
        'USAGE',
        'this header backup does not fit the vault (another size, or a damaged backup file)',
        'restore the backup of this vault',
      );
    }
    const current = await readHeaderSectors(file, fileSize);
    const keyCopy = Buffer.from(state.masterKey);
    const seen = stateFromMasterKey(kind, current, fileSize, keyCopy);
    if (!seen) wipe(keyCopy);
    if (!seen && !options.force) {
      throw new VaultError(
        'USAGE',
        'cannot confirm that this header backup belongs to this vault (neither header copy of the vault opens with it)',
        'check that you named the right vault and backup; force the restore only if both headers are known to be damaged',
        { reason: 'restore-unconfirmed' },
      );
    }
    const sequence =
      Math.max(state.sequence, seen?.copies[PRIMARY].sequence ?? 0, seen?.copies[BACKUP].sequence ?? 0) + 1;
    if (seen) wipeHeaderState(seen);
    const restored = state;
    await updateHeaders(file, restored, () => restored.slotMask, sequence);
    return kind;
  } finally {
    if (state) wipeHeaderState(state);
    await file.close();
  }
}

async function withUnlocked<T>(
  path: string,
  secret: Secret,
  options: ManageOptions & { readOnly?: boolean },
  action: (file: ContainerFile, state: HeaderState) => Promise<T>,
): Promise<T> {
  const file = await (options.openFile ?? openContainerFile)(path, options.readOnly ? 'read' : 'write');
  try {
    const state = await unlockHeaders(file, secret, options.costLevel ?? DEFAULT_COST_LEVEL);
    try {
      return await action(file, state);
    } finally {
      wipeHeaderState(state);
    }
  } finally {
    await file.close();
  }
}

function requireOpenedSlot(state: HeaderState): number {
  if (state.openedSlot === null) {
    throw new VaultError(
      'USAGE',
      'this secret opens only an out-of-date header copy (an earlier update was interrupted)',
      'repair the vault first, then try again',
      { reason: 'stale-copy-only' },
    );
  }
  return state.openedSlot;
}

function newCost(options: ManageOptions): number {
  return options.newCostLevel ?? options.costLevel ?? DEFAULT_COST_LEVEL;
}

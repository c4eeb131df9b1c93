// An opened vault: the public handle applications embed (BlockDevice over cleartext byte offsets).
// Its bytes move through SectorIo (sector-io.ts): whole sectors straight through XTS, partial sectors
// read-modify-write under a sector lock.

import { costParams, DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import type { SectorCipher } from '../crypto/suites.js';
import { activeXtsImplementation, type XtsImplementation } from '../crypto/xts.js';
import { HiddenProtection } from './access.js';
import type { BlockDevice, RawAccess } from './block-device.js';
import { isVaultError, VaultError } from './errors.js';
import { type ContainerFile, type OpenContainerFile, openContainerFile } from './file.js';
import {
  type CopyState,
  type HeaderState,
  layoutIncomplete,
  unlockHeaders,
  usedSlots,
  wipeHeaderState,
} from './header-pair.js';
import { DATA_OFFSET, FORMAT_VERSION, PRIMARY, SECTOR_BYTES, SLOT_COUNT } from './layout.js';
import type { Secret } from './secret.js';
import { SectorIo } from './sector-io.js';
import { createVaultSectorCipher } from './vault-suites.js';
import { VAULT_WARNINGS } from './warnings.js';

export interface OpenOptions {
  /** The Argon2id cost level used when the secret was set (never stored in the vault). */
  costLevel?: number;
  readOnly?: boolean;
  /** Put the container's access and modification times back on close (VeraCrypt's default). */
  preserveTimestamps?: boolean;
  /**
   * The hidden volume's secret, to mount the outer volume with the hidden one protected: every write
   * that would land in the hidden volume is refused, and the outer volume turns read-only.
   */
  protectHidden?: Secret;
  /** Cost level of the protectHidden secret; defaults to costLevel. */
  protectHiddenCostLevel?: number;
  /** Fault injection and tests: how the container file is opened. */
  openFile?: OpenContainerFile;
}

export interface VaultInfo {
  path: string;
  formatVersion: number;
  fileSize: number;
  dataOffset: number;
  dataSize: number;
  sectorSize: number;
  cipher: 'aes-256-xts';
  xtsImplementation: XtsImplementation;
  kdf: 'argon2id';
  costLevel: number;
  kdfMemoryKiB: number;
  kdfIterations: number;
  kdfParallelism: number;
  /** 'hidden' when the secret opened the hidden volume of this file. */
  kind: 'outer' | 'hidden';
  keyslots: { total: number; used: number[]; opened: number | null };
  headers: {
    authoritative: 'primary' | 'backup';
    primary: { state: CopyState; sequence: number | null };
    backup: { state: CopyState; sequence: number | null };
  };
  readOnly: boolean;
}

/** Opens a vault with a secret: one Argon2id run when the primary header is healthy. */
export async function openVault(path: string, secret: Secret, options: OpenOptions = {}): Promise<Vault> {
  const costLevel = options.costLevel ?? DEFAULT_COST_LEVEL;
  const readOnly = options.readOnly ?? false;
  const file = await (options.openFile ?? openContainerFile)(path, readOnly ? 'read' : 'write');
  try {
    const identity = await file.identity();
    const state = await unlockHeaders(file, secret, costLevel);
    const settings: VaultSettings = {
      costLevel,
      readOnly,
      preserveTimestamps: options.preserveTimestamps ?? false,
      identity,
    };
    if (options.protectHidden) {
      try {
        if (state.kind !== 'outer') {
          throw new VaultError(
            'USAGE',
            'the first secret opens a hidden volume; protection is for mounting the outer volume',
            'give the outer volume secret first, then the hidden one',
          );
        }
        settings.protectedRange = await hiddenRange(
          file,
          options.protectHidden,
          options.protectHiddenCostLevel ?? costLevel,
        );
      } catch (error) {
        wipeHeaderState(state);
        throw error;
      }
    }
    return new Vault(file, state, settings);
  } catch (error) {
    await file.close();
    throw error;
  }
}

export { VAULT_WARNINGS };

const hiddenProtectionFailures = new WeakSet<Error>();

/**
 * True for the error of an openVault whose first secret opened the vault but whose --protect-hidden
 * secret did not: the file is a vault, so format detection (volume.ts) must stop there.
 */
export function isHiddenProtectionFailure(error: unknown): boolean {
  return error instanceof Error && hiddenProtectionFailures.has(error);
}

/** Unlocks the hidden header with its secret and returns its data area in outer cleartext offsets. */
async function hiddenRange(
  file: ContainerFile,
  secret: Secret,
  costLevel: number,
): Promise<{ start: number; end: number }> {
  let hidden: HeaderState;
  try {
    hidden = await unlockHeaders(file, secret, costLevel, 'hidden');
  } catch (error) {
    if (isVaultError(error, 'CANNOT_UNLOCK')) {
      const failure = new VaultError(
        'CANNOT_UNLOCK',
        'cannot unlock the hidden volume to protect it: wrong hidden password, keyfile or cost level, or no hidden volume',
        'give the hidden volume secret as the second secret, or open it without protection',
        { reason: 'protect-hidden-unlock' },
      );
      hiddenProtectionFailures.add(failure);
      throw failure;
    }
    throw error;
  }
  const start = hidden.dataOffset - DATA_OFFSET;
  const range = { start, end: start + hidden.dataSize };
  wipeHeaderState(hidden);
  return range;
}

export interface VaultSettings {
  costLevel: number;
  readOnly: boolean;
  preserveTimestamps: boolean;
  identity: { dev: number; ino: number; atimeMs: number; mtimeMs: number };
  /** Outer cleartext byte range [start, end) that writes must never touch (the hidden volume). */
  protectedRange?: { start: number; end: number };
  /** close() leaves the container file open (createVault formats the outer, then the hidden vault). */
  keepFileOpen?: boolean;
}

export class Vault implements BlockDevice {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  /** Things the user should hear about (VAULT_WARNINGS), e.g. the primary header is damaged. */
  readonly warnings: string[] = [];
  /** Device and inode of the container file: the same vault under another path or a hard link. */
  readonly identity: { dev: number; ino: number };
  #xts: SectorCipher | null;
  #closed = false;
  readonly #protection: HiddenProtection;
  readonly #sectors: SectorIo;

  /** @internal Use openVault or createVault. Takes ownership of state's keys. */
  constructor(
    readonly file: ContainerFile,
    readonly state: HeaderState,
    private readonly settings: VaultSettings,
  ) {
    this.path = file.path;
    this.size = state.dataSize;
    this.readOnly = settings.readOnly;
    this.identity = { dev: settings.identity.dev, ino: settings.identity.ino };
    this.#protection = new HiddenProtection(settings.protectedRange, this.warnings);
    this.#xts = createVaultSectorCipher(state.masterKey);
    this.#sectors = new SectorIo(file, {
      dataOffset: state.dataOffset,
      size: this.size,
      sectorBytes: SECTOR_BYTES,
      readOnly: this.readOnly,
      protection: this.#protection,
      noun: 'vault',
    });
    if (state.copies[PRIMARY].state === 'damaged') {
      this.warnings.push(VAULT_WARNINGS.primaryDamaged);
    } else if (state.copies[PRIMARY].state === 'stale') {
      this.warnings.push(VAULT_WARNINGS.primaryStale);
    }
    if (layoutIncomplete(state)) this.warnings.push(VAULT_WARNINGS.interruptedResize);
  }

  async readAt(plain: Uint8Array, offset: number): Promise<void> {
    await this.#sectors.read(this.#cipher(), plain, offset);
  }

  async writeAt(plain: Uint8Array, offset: number): Promise<void> {
    await this.#sectors.write(this.#cipher(), plain, offset);
  }

  /** For the FUSE bridge: the key is the vault's own buffer (the addon copies it), wiped at close. */
  rawAccess(): RawAccess {
    this.#cipher();
    const fd = this.file.fd;
    if (fd === undefined)
      throw new VaultError('INTERNAL', `${this.path} has no file descriptor to serve from`);
    return {
      fd,
      dataOffset: this.state.dataOffset,
      key: this.state.masterKey,
      sectorSize: SECTOR_BYTES,
      protectedRange: this.#protection.tripped
        ? { start: 0, end: this.size } // tripped before: nothing may be written any more
        : (this.settings.protectedRange ?? null),
    };
  }

  async flush(): Promise<void> {
    this.#cipher();
    if (!this.readOnly) await this.file.sync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#sectors.settled();
      if (!this.readOnly) await this.file.sync();
      if (this.settings.preserveTimestamps && !this.readOnly) {
        await this.file.setTimes(this.settings.identity.atimeMs, this.settings.identity.mtimeMs);
      }
    } finally {
      // Stryker disable next-line OptionalChaining: equivalent, #closed makes a second close return before this
      this.#xts?.destroy();
      this.#xts = null;
      wipeHeaderState(this.state);
      if (!this.settings.keepFileOpen) await this.file.close();
    }
  }

  info(): VaultInfo {
    const params = costParams(this.settings.costLevel);
    const copy = (index: 0 | 1) => ({ ...this.state.copies[index] });
    return {
      path: this.path,
      formatVersion: FORMAT_VERSION,
      fileSize: this.state.fileSize,
      dataOffset: this.state.dataOffset,
      dataSize: this.state.dataSize,
      sectorSize: SECTOR_BYTES,
      cipher: 'aes-256-xts',
      xtsImplementation:
        (this.#xts?.implementation as XtsImplementation | undefined) ?? activeXtsImplementation(),
      kdf: 'argon2id',
      kind: this.state.kind,
      costLevel: this.settings.costLevel,
      kdfMemoryKiB: params.memoryKiB,
      kdfIterations: params.iterations,
      kdfParallelism: params.parallelism,
      keyslots: { total: SLOT_COUNT, used: usedSlots(this.state.slotMask), opened: this.state.openedSlot },
      headers: {
        authoritative: this.state.authoritative === PRIMARY ? 'primary' : 'backup',
        primary: copy(0),
        backup: copy(1),
      },
      readOnly: this.readOnly,
    };
  }

  /** The cost level this handle was opened with (header updates reuse it unless told otherwise). */
  get costLevel(): number {
    return this.settings.costLevel;
  }

  #cipher(): SectorCipher {
    // Stryker disable next-line LogicalOperator: equivalent, #closed and a null cipher always go together
    if (this.#closed || !this.#xts) throw new VaultError('IO', 'the vault is closed', 'open it again');
    return this.#xts;
  }

  /** True once a write aimed at the protected hidden volume was refused: every write is refused since. */
  get protectionTripped(): boolean {
    return this.#protection.tripped;
  }
}

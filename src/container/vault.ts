// An opened vault: the public handle applications embed (BlockDevice over cleartext byte offsets).
// Whole sectors go straight through XTS; partial sectors are read-modify-write under a sector lock.

import { costParams, DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import type { SectorCipher } from '../crypto/suites.js';
import { activeXtsImplementation, type XtsImplementation } from '../crypto/xts.js';
import { checkAccessRange, HiddenProtection } from './access.js';
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
import { createVaultSectorCipher } from './vault-suites.js';
import { VAULT_WARNINGS } from './warnings.js';

/** Size of the reused write buffer: the largest FUSE request (128 KiB) and then some. */
const SCRATCH_BYTES = 1 << 20;

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
  #scratch: Buffer | null = null;
  // Stryker disable next-line BooleanLiteral: equivalent, performance only (a busy scratch means a fresh buffer per write)
  #scratchBusy = false;
  readonly #protection: HiddenProtection;
  #writesInFlight: Array<{ first: number; last: number; done: Promise<void> }> = [];

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
    if (state.copies[PRIMARY].state === 'damaged') {
      this.warnings.push(VAULT_WARNINGS.primaryDamaged);
    } else if (state.copies[PRIMARY].state === 'stale') {
      this.warnings.push(VAULT_WARNINGS.primaryStale);
    }
    if (layoutIncomplete(state)) this.warnings.push(VAULT_WARNINGS.interruptedResize);
  }

  async readAt(plain: Uint8Array, offset: number): Promise<void> {
    const xts = this.#cipher();
    checkAccessRange(plain.length, offset, this.size);
    if (plain.length === 0) return;
    if (offset % SECTOR_BYTES === 0 && plain.length % SECTOR_BYTES === 0) {
      // Fast path: read the ciphertext straight into the caller's buffer and decrypt in place.
      await this.file.read(plain, this.state.dataOffset + offset);
      xts.decrypt(plain, offset / SECTOR_BYTES);
      return;
    }
    const first = Math.floor(offset / SECTOR_BYTES);
    const last = Math.floor((offset + plain.length - 1) / SECTOR_BYTES);
    const sectors = Buffer.alloc((last - first + 1) * SECTOR_BYTES);
    await this.file.read(sectors, this.state.dataOffset + first * SECTOR_BYTES);
    xts.decrypt(sectors, first);
    const start = offset - first * SECTOR_BYTES;
    plain.set(sectors.subarray(start, start + plain.length));
    sectors.fill(0);
  }

  async writeAt(plain: Uint8Array, offset: number): Promise<void> {
    this.#cipher();
    if (this.readOnly)
      throw new VaultError('IO', 'the vault is open read-only', 'open it read-write', {
        reason: 'read-only',
      });
    checkAccessRange(plain.length, offset, this.size);
    if (plain.length === 0) return;
    this.#protection.checkWrite(plain.length, offset);
    const first = Math.floor(offset / SECTOR_BYTES);
    const last = Math.floor((offset + plain.length - 1) / SECTOR_BYTES);
    // Writes that share a sector run in arrival order, so a read-modify-write never undoes another write.
    // Stryker disable next-line ConditionalExpression: equivalent, waiting for every earlier write (not just those sharing a sector) is slower, not different
    const earlier = this.#writesInFlight.filter((write) => write.first <= last && first <= write.last);
    let release = () => {};
    const entry = { first, last, done: new Promise<void>((resolve) => (release = resolve)) };
    this.#writesInFlight.push(entry);
    try {
      if (earlier.length > 0) await Promise.all(earlier.map((write) => write.done));
      await this.#writeSectors(plain, offset, first, last);
    } finally {
      this.#writesInFlight.splice(this.#writesInFlight.indexOf(entry), 1);
      release();
    }
  }

  async #writeSectors(plain: Uint8Array, offset: number, first: number, last: number): Promise<void> {
    const xts = this.#cipher();
    const sectors = this.#takeScratch((last - first + 1) * SECTOR_BYTES);
    try {
      const start = offset - first * SECTOR_BYTES;
      const partialHead = start !== 0;
      const partialTail = (offset + plain.length) % SECTOR_BYTES !== 0;
      if (partialHead || partialTail) {
        // Read-modify-write: only the first and last sectors can be partial.
        const head = sectors.subarray(0, SECTOR_BYTES);
        const tail = sectors.subarray(sectors.length - SECTOR_BYTES);
        // With the cipher taken above: close() waits for writes in flight, and must not fail them.
        if (partialHead) await this.#readSectorPlain(head, first, xts);
        if (partialTail && (last !== first || !partialHead)) await this.#readSectorPlain(tail, last, xts);
        sectors.set(plain, start);
        xts.encrypt(sectors, first);
      } else {
        // Whole sectors: encrypt straight from the caller's buffer, which is never modified.
        xts.encrypt(plain, first, sectors);
      }
      await this.file.write(sectors, this.state.dataOffset + first * SECTOR_BYTES);
      // Stryker disable next-line BlockStatement: equivalent, a scratch never given back only costs fresh buffers from then on
    } finally {
      this.#returnScratch(sectors);
    }
  }

  /**
   * A buffer for ciphertext on its way to the file. One is kept and reused: the FUSE bridge writes one
   * request at a time, and a fresh 128 KiB allocation per request cost more than the encryption.
   * It only ever holds plaintext between a read-modify-write and the encryption that follows.
   */
  #takeScratch(length: number): Buffer {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, performance only (a fresh buffer instead of the scratch)
    if (this.#scratchBusy || length > SCRATCH_BYTES) return Buffer.allocUnsafe(length);
    this.#scratchBusy = true;
    this.#scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
    return this.#scratch.subarray(0, length);
  }

  #returnScratch(used: Buffer): void {
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent, a scratch never given back only costs fresh buffers from then on
    if (this.#scratch && used.buffer === this.#scratch.buffer) this.#scratchBusy = false;
  }

  async #readSectorPlain(into: Buffer, sector: number, xts: SectorCipher): Promise<void> {
    await this.file.read(into, this.state.dataOffset + sector * SECTOR_BYTES);
    xts.decrypt(into, sector);
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
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, Promise.all([]) resolves at once
      if (this.#writesInFlight.length > 0) await Promise.all(this.#writesInFlight.map((write) => write.done));
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

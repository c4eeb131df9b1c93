// An opened vault: the public handle applications embed (BlockDevice over cleartext byte offsets).
// Whole sectors go straight through XTS; partial sectors are read-modify-write under a sector lock.

import { costParams, DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import { activeXtsImplementation, createXts, type XtsCipher, type XtsImplementation } from '../crypto/xts.js';
import type { BlockDevice } from './block-device.js';
import { VaultError } from './errors.js';
import { type ContainerFile, type OpenContainerFile, openContainerFile } from './file.js';
import {
  type CopyState,
  type HeaderState,
  unlockHeaders,
  usedSlots,
  wipeHeaderState,
} from './header-pair.js';
import { DATA_OFFSET, FORMAT_VERSION, PRIMARY, SECTOR_BYTES, SLOT_COUNT } from './layout.js';
import type { Secret } from './secret.js';

export interface OpenOptions {
  /** The Argon2id cost level used when the secret was set (never stored in the vault). */
  costLevel?: number;
  readOnly?: boolean;
  /** Put the container's access and modification times back on close (VeraCrypt's default). */
  preserveTimestamps?: boolean;
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
    return new Vault(file, state, {
      costLevel,
      readOnly,
      preserveTimestamps: options.preserveTimestamps ?? false,
      identity,
    });
  } catch (error) {
    await file.close();
    throw error;
  }
}

interface VaultSettings {
  costLevel: number;
  readOnly: boolean;
  preserveTimestamps: boolean;
  identity: { dev: number; ino: number; atimeMs: number; mtimeMs: number };
}

export class Vault implements BlockDevice {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  /** Things the user should hear about, e.g. "primary header damaged, using the backup; run vault repair". */
  readonly warnings: string[] = [];
  /** Device and inode of the container file: the same vault under another path or a hard link. */
  readonly identity: { dev: number; ino: number };
  #xts: XtsCipher | null;
  #closed = false;
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
    this.#xts = createXts(state.masterKey);
    if (state.copies[PRIMARY].state === 'damaged') {
      this.warnings.push('primary header damaged, using the backup; run vault repair');
    } else if (state.copies[PRIMARY].state === 'stale') {
      this.warnings.push('primary header is out of date (an update was interrupted); run vault repair');
    }
  }

  async readAt(plain: Uint8Array, offset: number): Promise<void> {
    const xts = this.#cipher();
    this.#checkRange(plain.length, offset);
    if (plain.length === 0) return;
    if (offset % SECTOR_BYTES === 0 && plain.length % SECTOR_BYTES === 0) {
      // Fast path: read the ciphertext straight into the caller's buffer and decrypt in place.
      await this.file.read(plain, DATA_OFFSET + offset);
      xts.decrypt(plain, offset / SECTOR_BYTES);
      return;
    }
    const first = Math.floor(offset / SECTOR_BYTES);
    const last = Math.floor((offset + plain.length - 1) / SECTOR_BYTES);
    const sectors = Buffer.alloc((last - first + 1) * SECTOR_BYTES);
    await this.file.read(sectors, DATA_OFFSET + first * SECTOR_BYTES);
    xts.decrypt(sectors, first);
    const start = offset - first * SECTOR_BYTES;
    plain.set(sectors.subarray(start, start + plain.length));
    sectors.fill(0);
  }

  async writeAt(plain: Uint8Array, offset: number): Promise<void> {
    this.#cipher();
    if (this.readOnly)
      throw new VaultError('IO', 'the vault is open read-only', 'open it without --read-only');
    this.#checkRange(plain.length, offset);
    if (plain.length === 0) return;
    const first = Math.floor(offset / SECTOR_BYTES);
    const last = Math.floor((offset + plain.length - 1) / SECTOR_BYTES);
    // Writes that share a sector run in arrival order, so a read-modify-write never undoes another write.
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
    const sectors = Buffer.allocUnsafe((last - first + 1) * SECTOR_BYTES);
    const start = offset - first * SECTOR_BYTES;
    const partialHead = start !== 0;
    const partialTail = (offset + plain.length) % SECTOR_BYTES !== 0;
    if (partialHead || partialTail) {
      // Read-modify-write: only the first and last sectors can be partial.
      const head = sectors.subarray(0, SECTOR_BYTES);
      const tail = sectors.subarray(sectors.length - SECTOR_BYTES);
      if (partialHead) await this.#readSectorPlain(head, first);
      if (partialTail && (last !== first || !partialHead)) await this.#readSectorPlain(tail, last);
    }
    sectors.set(plain, start);
    xts.encrypt(sectors, first);
    await this.file.write(sectors, DATA_OFFSET + first * SECTOR_BYTES);
  }

  async #readSectorPlain(into: Buffer, sector: number): Promise<void> {
    await this.file.read(into, DATA_OFFSET + sector * SECTOR_BYTES);
    this.#cipher().decrypt(into, sector);
  }

  async flush(): Promise<void> {
    this.#cipher();
    if (!this.readOnly) await this.file.sync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#writesInFlight.length > 0) await Promise.all(this.#writesInFlight.map((write) => write.done));
      if (!this.readOnly) await this.file.sync();
      if (this.settings.preserveTimestamps && !this.readOnly) {
        await this.file.setTimes(this.settings.identity.atimeMs, this.settings.identity.mtimeMs);
      }
    } finally {
      this.#xts?.destroy();
      this.#xts = null;
      wipeHeaderState(this.state);
      await this.file.close();
    }
  }

  info(): VaultInfo {
    const params = costParams(this.settings.costLevel);
    const copy = (index: 0 | 1) => ({ ...this.state.copies[index] });
    return {
      path: this.path,
      formatVersion: FORMAT_VERSION,
      fileSize: this.state.fileSize,
      dataOffset: DATA_OFFSET,
      dataSize: this.state.dataSize,
      sectorSize: SECTOR_BYTES,
      cipher: 'aes-256-xts',
      xtsImplementation: this.#xts?.implementation ?? activeXtsImplementation(),
      kdf: 'argon2id',
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

  #cipher(): XtsCipher {
    if (this.#closed || !this.#xts) throw new VaultError('IO', 'the vault is closed', 'open it again');
    return this.#xts;
  }

  #checkRange(length: number, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new RangeError(
        `access outside the volume: offset ${offset}, length ${length}, size ${this.size}`,
      );
    }
  }
}

// An opened foreign volume (LUKS, VeraCrypt, TrueCrypt): the same BlockDevice the bridge, export and
// import use for vaults, over the format's sector cipher. Its bytes move through the same SectorIo as
// a vault's (sector-io.ts): partial sectors are read-modify-write, writes sharing a sector in order.
import { lockedBuffer } from '../crypto/memory.js';
import { AES_XTS_PLAIN64, type SectorCipher } from '../crypto/suites.js';
import { HiddenProtection } from './access.js';
import type { BlockDevice, RawAccess } from './block-device.js';
import { VaultError } from './errors.js';
import type { ContainerFile } from './file.js';
import {
  type ForeignFormat,
  type ForeignUnlock,
  type KdfDescription,
  wipeUnlock,
} from './formats/foreign.js';
import { SectorIo } from './sector-io.js';

export interface ForeignVolumeSettings {
  readOnly: boolean;
  preserveTimestamps: boolean;
  identity: { dev: number; ino: number; atimeMs: number; mtimeMs: number };
  /** Cleartext byte range [start, end) that writes must never touch (a hidden volume). */
  protectedRange?: { start: number; end: number };
}

export interface ForeignVolumeInfo {
  path: string;
  format: ForeignFormat;
  formatVersion: number;
  fileSize: number;
  dataOffset: number;
  dataSize: number;
  sectorSize: number;
  /** Bytes per IV step (dm-crypt plain64 and VeraCrypt count 512-byte units). */
  ivUnitBytes: number;
  /** IV of the first data sector, in IV units (VeraCrypt: the data offset / 512; LUKS2: iv_tweak). */
  ivOffset: number;
  cipher: string;
  cipherName: string;
  kdf: KdfDescription;
  kind: 'normal' | 'hidden';
  header: string;
  keyslot: number | null;
  readOnly: boolean;
}

export class ForeignVolume implements BlockDevice {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly format: ForeignFormat;
  readonly warnings: string[];
  readonly identity: { dev: number; ino: number };
  #cipher: SectorCipher | null;
  #closed = false;
  readonly #protection: HiddenProtection;
  readonly #sectors: SectorIo;
  readonly #sector: number;
  readonly #info: Omit<ForeignVolumeInfo, 'readOnly'>;
  /** AES-XTS only: the master key in locked memory for the FUSE addon's C data path (rawAccess). */
  #rawKey: Buffer | null = null;

  /** Takes ownership of unlock's master key (wiped here at once, the cipher keeps its own copy). */
  constructor(
    readonly file: ContainerFile,
    unlock: ForeignUnlock,
    fileSize: number,
    private readonly settings: ForeignVolumeSettings,
  ) {
    try {
      this.#cipher = unlock.suite.create(unlock.masterKey, unlock.layout);
      if (servedNatively(unlock, file)) {
        this.#rawKey = lockedBuffer(unlock.masterKey.length);
        this.#rawKey.set(unlock.masterKey);
      }
    } finally {
      wipeUnlock(unlock);
    }
    this.path = file.path;
    this.size = unlock.dataSize;
    this.readOnly = settings.readOnly;
    this.format = unlock.format;
    this.warnings = [...unlock.notes];
    this.#protection = new HiddenProtection(settings.protectedRange, this.warnings);
    this.identity = { dev: settings.identity.dev, ino: settings.identity.ino };
    this.#sector = unlock.layout.sectorBytes;
    this.#sectors = new SectorIo(file, {
      dataOffset: unlock.dataOffset,
      size: this.size,
      sectorBytes: unlock.layout.sectorBytes,
      readOnly: this.readOnly,
      protection: this.#protection,
      noun: 'volume',
    });
    this.#info = {
      path: file.path,
      format: unlock.format,
      formatVersion: unlock.version,
      fileSize,
      dataOffset: unlock.dataOffset,
      dataSize: unlock.dataSize,
      sectorSize: unlock.layout.sectorBytes,
      ivUnitBytes: unlock.layout.ivUnitBytes,
      ivOffset: unlock.layout.ivOffset,
      cipher: unlock.suite.id,
      cipherName: unlock.suite.describe(unlock.masterKey.length),
      kdf: unlock.kdf,
      kind: unlock.kind,
      header: unlock.header,
      keyslot: unlock.keyslot,
    };
  }

  info(): ForeignVolumeInfo {
    return { ...this.#info, readOnly: this.readOnly };
  }

  /**
   * For the FUSE bridge, AES-XTS volumes only (LUKS aes-xts-plain64, VeraCrypt, TrueCrypt): the addon
   * then serves them from C threads as it serves vaults, with the format's data offset and tweak rule.
   * CBC-ESSIV (old LUKS1) has no rawAccess and goes through readAt/writeAt.
   */
  rawAccess(): RawAccess | null {
    this.#live();
    const key = this.#rawKey;
    const fd = this.file.fd;
    if (key === null || fd === undefined) return null;
    return {
      fd,
      dataOffset: this.#info.dataOffset,
      key,
      sectorSize: this.#sector,
      ivUnitBytes: this.#info.ivUnitBytes,
      ivOffset: this.#info.ivOffset,
      protectedRange: this.#protection.tripped
        ? { start: 0, end: this.size } // tripped before: nothing may be written any more
        : (this.settings.protectedRange ?? null),
    };
  }

  get protectionTripped(): boolean {
    return this.#protection.tripped;
  }

  async readAt(plain: Uint8Array, offset: number): Promise<void> {
    await this.#sectors.read(this.#live(), plain, offset);
  }

  async writeAt(plain: Uint8Array, offset: number): Promise<void> {
    await this.#sectors.write(this.#live(), plain, offset);
  }

  async flush(): Promise<void> {
    this.#live();
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
      this.#cipher?.destroy();
      this.#cipher = null;
      this.#rawKey?.fill(0);
      this.#rawKey = null;
      await this.file.close();
    }
  }

  #live(): SectorCipher {
    if (this.#closed || !this.#cipher) throw new VaultError('IO', 'the volume is closed', 'open it again');
    return this.#cipher;
  }
}

/**
 * Whether the FUSE addon can serve this volume itself: AES-XTS with a 256- or 512-bit key, a power-of-two
 * sector of 512 B to 64 KiB, a whole number of sectors, and a host file descriptor.
 */
function servedNatively(unlock: ForeignUnlock, file: ContainerFile): boolean {
  const { sectorBytes, ivUnitBytes, ivOffset } = unlock.layout;
  return (
    unlock.suite.id === AES_XTS_PLAIN64.id &&
    (unlock.masterKey.length === 32 || unlock.masterKey.length === 64) &&
    file.fd !== undefined &&
    sectorBytes >= 512 &&
    sectorBytes <= 65536 &&
    (sectorBytes & (sectorBytes - 1)) === 0 &&
    sectorBytes % ivUnitBytes === 0 &&
    unlock.dataSize % sectorBytes === 0 &&
    Number.isSafeInteger(ivOffset + unlock.dataSize / ivUnitBytes)
  );
}

// Cipher suites as data: a sector cipher record (name, key sizes, key rule, how a sector's IV/tweak is
// computed) and a KDF record. The vault format and the foreign formats (LUKS, VeraCrypt, TrueCrypt)
// all get their data-area cipher from createSectorCipher, so "which tweak for which sector" lives here.
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { checkXtsKey, createXts, type XtsCipher } from './xts.js';

export { checkXtsKey, isUsableXtsKey } from './xts.js';

const BLOCK_BYTES = 16;

/** Where a sector's IV comes from: sector s (counted from the data area's start) gets
 *  ivOffset + s * (sectorBytes / ivUnitBytes). */
export interface SectorLayout {
  /** Bytes encrypted as one unit (the XTS data unit or the CBC chain). */
  sectorBytes: number;
  /** Bytes per IV step: the sector itself (vault), 512 (dm-crypt plain64, VeraCrypt). */
  ivUnitBytes: number;
  /** IV of the data area's first sector, in ivUnitBytes units (VeraCrypt: the data offset / 512). */
  ivOffset: number;
}

export interface SectorCipher {
  readonly suite: SectorCipherSuite;
  readonly layout: SectorLayout;
  readonly implementation: string;
  /** Whole sectors; sector j of the buffer is data-area sector firstSector + j. out defaults to input. */
  encrypt(input: Uint8Array, firstSector: number, out?: Uint8Array): void;
  decrypt(input: Uint8Array, firstSector: number, out?: Uint8Array): void;
  destroy(): void;
}

export interface SectorCipherSuite {
  /** dm-crypt style name, e.g. "aes-xts-plain64". */
  readonly id: string;
  /** For people: "AES-256-XTS". */
  describe(keyBytes: number): string;
  readonly keyBytes: readonly number[];
  /** Throws RangeError for a key this suite must not use. */
  checkKey(key: Uint8Array): void;
  create(key: Uint8Array, layout: SectorLayout): SectorCipher;
}

function checkLayout(layout: SectorLayout): number {
  const { sectorBytes, ivUnitBytes, ivOffset } = layout;
  if (!Number.isInteger(sectorBytes) || sectorBytes < BLOCK_BYTES || sectorBytes % BLOCK_BYTES !== 0)
    throw new RangeError('sectorBytes must be a positive multiple of 16');
  // Stryker disable next-line EqualityOperator: equivalent, ivUnitBytes 0 fails the divisibility check (x % 0 is NaN)
  if (!Number.isInteger(ivUnitBytes) || ivUnitBytes <= 0 || sectorBytes % ivUnitBytes !== 0)
    throw new RangeError('ivUnitBytes must divide sectorBytes');
  if (!Number.isSafeInteger(ivOffset) || ivOffset < 0) throw new RangeError('ivOffset must be >= 0');
  return sectorBytes / ivUnitBytes;
}

/** AES-XTS with a plain64 tweak (the IV is the 64-bit little-endian sector number). */
export const AES_XTS_PLAIN64: SectorCipherSuite = {
  id: 'aes-xts-plain64',
  keyBytes: [32, 64],
  describe: (keyBytes) => `AES-${keyBytes * 4}-XTS`,
  checkKey: (key) => checkXtsKey(key, [32, 64]),
  create(key, layout) {
    this.checkKey(key);
    const stride = checkLayout(layout);
    // The addon does AES-256-XTS over consecutive tweaks; other shapes go sector by sector.
    const xts: XtsCipher | null =
      key.length === 64 ? createXts(key, { sectorSize: layout.sectorBytes }) : null;
    return new XtsSectorCipher(this, layout, stride, key, xts);
  },
};

class XtsSectorCipher implements SectorCipher {
  readonly implementation: string;
  #xts: XtsCipher | null;
  #key: Buffer | null;
  #destroyed = false;

  constructor(
    readonly suite: SectorCipherSuite,
    readonly layout: SectorLayout,
    private readonly stride: number,
    key: Uint8Array,
    xts: XtsCipher | null,
  ) {
    this.#xts = xts;
    this.#key = xts ? null : Buffer.alloc(key.length);
    this.#key?.set(key);
    this.implementation = xts ? xts.implementation : 'node-crypto';
  }

  encrypt(input: Uint8Array, firstSector: number, out: Uint8Array = input): void {
    this.#run(true, input, firstSector, out);
  }

  decrypt(input: Uint8Array, firstSector: number, out: Uint8Array = input): void {
    this.#run(false, input, firstSector, out);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#xts?.destroy();
    this.#xts = null;
    this.#key?.fill(0);
    this.#key = null;
  }

  #run(encrypting: boolean, input: Uint8Array, firstSector: number, out: Uint8Array): void {
    if (this.#destroyed) throw new Error('sector cipher was destroyed');
    const { sectorBytes, ivOffset } = this.layout;
    checkRun(input, out, sectorBytes, firstSector);
    const xts = this.#xts;
    // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent, the fast path; the per-sector loop below gives the same bytes (only slower)
    if (xts && this.stride === 1) {
      const run = encrypting ? xts.encrypt.bind(xts) : xts.decrypt.bind(xts);
      run(input, ivOffset + firstSector, out);
      return;
    }
    const count = input.length / sectorBytes;
    for (let j = 0; j < count; j++) {
      const tweak = ivOffset + (firstSector + j) * this.stride;
      const from = input.subarray(j * sectorBytes, (j + 1) * sectorBytes);
      const to = out.subarray(j * sectorBytes, (j + 1) * sectorBytes);
      if (xts) {
        if (encrypting) xts.encrypt(from, tweak, to);
        else xts.decrypt(from, tweak, to);
      } else {
        const key = this.#key as Buffer;
        // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent, only 32-byte keys come here (64-byte keys always get an XtsCipher above)
        const name = key.length === 32 ? 'aes-128-xts' : 'aes-256-xts';
        const iv = plain64(tweak);
        const cipher = encrypting ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
        const result = cipher.update(from);
        cipher.final();
        to.set(result);
        result.fill(0);
      }
    }
  }
}

/** AES-CBC with ESSIV over SHA-256 (the old LUKS1 default): IV = AES-256_{SHA-256(key)}(plain64 sector). */
export const AES_CBC_ESSIV_SHA256: SectorCipherSuite = {
  id: 'aes-cbc-essiv:sha256',
  keyBytes: [16, 24, 32],
  describe: (keyBytes) => `AES-${keyBytes * 8}-CBC-ESSIV:SHA256`,
  checkKey(key) {
    if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
    if (!this.keyBytes.includes(key.length)) throw new RangeError('AES key must be 16, 24 or 32 bytes');
  },
  create(key, layout) {
    this.checkKey(key);
    const stride = checkLayout(layout);
    return new CbcEssivSectorCipher(this, layout, stride, key);
  },
};

class CbcEssivSectorCipher implements SectorCipher {
  readonly implementation = 'node-crypto';
  #key: Buffer | null;
  #essivKey: Buffer | null;

  constructor(
    readonly suite: SectorCipherSuite,
    readonly layout: SectorLayout,
    private readonly stride: number,
    key: Uint8Array,
  ) {
    this.#key = Buffer.alloc(key.length);
    this.#key.set(key);
    this.#essivKey = Buffer.alloc(32);
    const digest = createHash('sha256').update(key).digest();
    digest.copy(this.#essivKey);
    digest.fill(0);
  }

  encrypt(input: Uint8Array, firstSector: number, out: Uint8Array = input): void {
    this.#run(true, input, firstSector, out);
  }

  decrypt(input: Uint8Array, firstSector: number, out: Uint8Array = input): void {
    this.#run(false, input, firstSector, out);
  }

  destroy(): void {
    this.#key?.fill(0);
    this.#essivKey?.fill(0);
    this.#key = null;
    this.#essivKey = null;
  }

  #run(encrypting: boolean, input: Uint8Array, firstSector: number, out: Uint8Array): void {
    const key = this.#key;
    const essivKey = this.#essivKey;
    // Stryker disable next-line LogicalOperator: equivalent, destroy() clears both keys together
    if (!key || !essivKey) throw new Error('sector cipher was destroyed');
    const { sectorBytes, ivOffset } = this.layout;
    checkRun(input, out, sectorBytes, firstSector);
    const name = `aes-${key.length * 8}-cbc`;
    const count = input.length / sectorBytes;
    // Stryker disable next-line EqualityOperator: equivalent, one more round over an empty subarray writes nothing
    for (let j = 0; j < count; j++) {
      // Stryker disable next-line BooleanLiteral: equivalent, encrypting one whole block gives the same block with or without padding (final() is never called)
      const essiv = createCipheriv('aes-256-ecb', essivKey, null).setAutoPadding(false);
      const iv = essiv.update(plain64(ivOffset + (firstSector + j) * this.stride));
      const from = input.subarray(j * sectorBytes, (j + 1) * sectorBytes);
      const cipher = encrypting ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
      cipher.setAutoPadding(false);
      const result = cipher.update(from);
      cipher.final();
      out.set(result, j * sectorBytes);
      result.fill(0);
    }
  }
}

function plain64(sector: number): Buffer {
  const iv = Buffer.alloc(BLOCK_BYTES);
  iv.writeBigUInt64LE(BigInt(sector), 0);
  return iv;
}

function checkRun(input: Uint8Array, out: Uint8Array, sectorBytes: number, firstSector: number): void {
  if (out.length !== input.length) throw new RangeError('out must have the same length as input');
  if (input.length === 0 || input.length % sectorBytes !== 0)
    throw new RangeError('input length must be a positive multiple of the sector size');
  if (!Number.isSafeInteger(firstSector) || firstSector < 0)
    throw new RangeError('firstSector must be a non-negative integer');
}

/** Every sector cipher a volume format may name, by dm-crypt name. */
export const SECTOR_CIPHER_SUITES: readonly SectorCipherSuite[] = [AES_XTS_PLAIN64, AES_CBC_ESSIV_SHA256];

export function sectorCipherSuite(id: string): SectorCipherSuite | null {
  return SECTOR_CIPHER_SUITES.find((suite) => suite.id === id) ?? null;
}

// XTS-AES-256 over whole sectors (IEEE 1619; tweak = sector index, 128-bit little-endian).
// The hot path is the native addon in native/xts.c (OpenSSL with one keyed context reused across
// sectors); when it cannot load, a node:crypto cipher per sector gives the same bytes, about 10x slower.
import { createCipheriv, createDecipheriv, timingSafeEqual } from 'node:crypto';
import { type NativeAddon, type NativeXtsContext, nativeAddon } from './native.js';

export const SECTOR_SIZE = 4096;

export type XtsImplementation = 'openssl-addon' | 'node-crypto';

export interface XtsCipher {
  readonly implementation: XtsImplementation;
  readonly sectorSize: number;
  /** Encrypts whole sectors: input.length must be a multiple of sectorSize; sector j of the buffer uses
   *  tweak firstSector + j (128-bit little-endian data unit number). out defaults to input (in place). */
  encrypt(input: Uint8Array, firstSector: number | bigint, out?: Uint8Array): void;
  decrypt(input: Uint8Array, firstSector: number | bigint, out?: Uint8Array): void;
  /** Wipes the key copies held by this object; later calls throw. */
  destroy(): void;
}

export const XTS_KEY_BYTES = 64;
const BLOCK_BYTES = 16;
/** Same bound as the addon: OpenSSL refuses data units above 2^20 blocks anyway. */
const MAX_SECTOR_SIZE = 1 << 24;
const MAX_EXACT_NUMBER = 2 ** 53;
const TWO_POW_64 = 1n << 64n;

type NativeXtsConstructor = NativeAddon['XtsContext'];
const NativeXts: NativeXtsConstructor | null = nativeAddon?.XtsContext ?? null;

/** Implementations usable in this process: the addon only if it loaded. */
export function availableXtsImplementations(): XtsImplementation[] {
  return NativeXts === null ? ['node-crypto'] : ['openssl-addon', 'node-crypto'];
}

/** Which implementation createXts uses by default here (addon if it loaded, else node-crypto). */
export function activeXtsImplementation(): XtsImplementation {
  // VAULT_XTS=node-crypto forces the fallback, so tests and users can compare the two.
  if (process.env.VAULT_XTS === 'node-crypto' || NativeXts === null) return 'node-crypto';
  return 'openssl-addon';
}

export function createXts(
  key: Uint8Array /* 64 bytes */,
  options?: { sectorSize?: number; implementation?: XtsImplementation },
): XtsCipher {
  checkXtsKey(key);
  const sectorSize = options?.sectorSize ?? SECTOR_SIZE;
  checkSectorSize(sectorSize);
  const implementation = options?.implementation ?? activeXtsImplementation();
  if (implementation === 'openssl-addon') {
    if (NativeXts === null)
      throw new Error('the native XTS addon (build/Release/vault_xts.node) is not loaded');
    return new AddonXts(new NativeXts(key, sectorSize), sectorSize);
  }
  if (implementation === 'node-crypto') return new NodeCryptoXts(key, sectorSize);
  throw new TypeError(`unknown XTS implementation: ${String(implementation)}`);
}

class AddonXts implements XtsCipher {
  readonly implementation = 'openssl-addon';
  #context: NativeXtsContext | null;

  constructor(
    context: NativeXtsContext,
    readonly sectorSize: number,
  ) {
    this.#context = context;
  }

  encrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array = input): void {
    const context = this.#live();
    checkRun(input, out, this.sectorSize, firstSector);
    context.encrypt(input, firstSector, out);
  }

  decrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array = input): void {
    const context = this.#live();
    checkRun(input, out, this.sectorSize, firstSector);
    context.decrypt(input, firstSector, out);
  }

  destroy(): void {
    // The native side frees (and OpenSSL cleanses) both key schedules; the finalizer does the same
    // if destroy is never called.
    this.#context?.destroy();
    this.#context = null;
  }

  #live(): NativeXtsContext {
    if (this.#context === null) throw new Error('XTS cipher was destroyed');
    return this.#context;
  }
}

// A key copy nobody destroyed is still wiped once its cipher is garbage-collected.
const wipeOnCollect = new FinalizationRegistry<Buffer>((keyCopy) => keyCopy.fill(0));

class NodeCryptoXts implements XtsCipher {
  readonly implementation = 'node-crypto';
  #key: Buffer | null;

  constructor(
    key: Uint8Array,
    readonly sectorSize: number,
  ) {
    this.#key = Buffer.alloc(XTS_KEY_BYTES);
    this.#key.set(key);
    wipeOnCollect.register(this, this.#key, this);
  }

  encrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array = input): void {
    this.#run(true, input, firstSector, out);
  }

  decrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array = input): void {
    this.#run(false, input, firstSector, out);
  }

  destroy(): void {
    if (this.#key === null) return;
    this.#key.fill(0);
    wipeOnCollect.unregister(this);
    this.#key = null;
  }

  #run(encrypting: boolean, input: Uint8Array, firstSector: number | bigint, out: Uint8Array): void {
    if (this.#key === null) throw new Error('XTS cipher was destroyed');
    const sectorCount = checkRun(input, out, this.sectorSize, firstSector);
    const tweak = Buffer.alloc(BLOCK_BYTES);
    const first = BigInt(firstSector);
    for (let j = 0; j < sectorCount; j++) {
      tweak.writeBigUInt64LE(first + BigInt(j), 0); // the high 64 bits stay zero
      const cipher = encrypting
        ? createCipheriv('aes-256-xts', this.#key, tweak)
        : createDecipheriv('aes-256-xts', this.#key, tweak);
      const offset = j * this.sectorSize;
      const result = cipher.update(input.subarray(offset, offset + this.sectorSize));
      cipher.final();
      out.set(result, offset);
      result.fill(0); // after decrypt this copy is plaintext
    }
  }
}

/**
 * The XTS key rule, stated once for every format: two halves (data key, tweak key) that MUST differ.
 * Equal halves make the tweak key the data key, which voids XTS's security argument (OpenSSL refuses
 * them too). `allowed` lists the whole-key sizes (64 for AES-256-XTS, 32 for AES-128-XTS).
 */
export function checkXtsKey(key: Uint8Array, allowed: readonly number[] = [XTS_KEY_BYTES]): void {
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
  if (!allowed.includes(key.length)) {
    throw new RangeError(
      allowed.length === 1 && allowed[0] === XTS_KEY_BYTES
        ? `XTS-AES-256 key must be ${XTS_KEY_BYTES} bytes`
        : `XTS key must be ${allowed.join(' or ')} bytes`,
    );
  }
  const half = key.length / 2;
  if (timingSafeEqual(key.subarray(0, half), key.subarray(half)))
    throw new RangeError('XTS key halves must differ');
}

/** checkXtsKey as a yes/no, for code that must reject rather than throw (a forged header's key). */
export function isUsableXtsKey(key: Uint8Array, allowed: readonly number[] = [XTS_KEY_BYTES]): boolean {
  try {
    checkXtsKey(key, allowed);
    return true;
  } catch {
    return false;
  }
}

function checkSectorSize(sectorSize: number): void {
  if (typeof sectorSize !== 'number') throw new TypeError('sectorSize must be a number');
  if (
    !Number.isInteger(sectorSize) ||
    sectorSize < BLOCK_BYTES ||
    sectorSize > MAX_SECTOR_SIZE ||
    sectorSize % BLOCK_BYTES !== 0
  ) {
    throw new RangeError('sectorSize must be a multiple of 16 between 16 and 16 MiB');
  }
}

/** Validates one call and returns its sector count. */
function checkRun(
  input: Uint8Array,
  out: Uint8Array,
  sectorSize: number,
  firstSector: number | bigint,
): number {
  if (!(input instanceof Uint8Array)) throw new TypeError('input must be a Uint8Array');
  if (!(out instanceof Uint8Array)) throw new TypeError('out must be a Uint8Array');
  if (out.length !== input.length) throw new RangeError('out must have the same length as input');
  if (input.length === 0 || input.length % sectorSize !== 0) {
    throw new RangeError('input length must be a positive multiple of the sector size');
  }
  if (partiallyOverlaps(input, out)) throw new RangeError('out must be input itself or not overlap it');
  const sectorCount = input.length / sectorSize;
  if (typeof firstSector === 'number') {
    if (!Number.isInteger(firstSector) || firstSector < 0 || firstSector > MAX_EXACT_NUMBER) {
      throw new RangeError('firstSector must be an integer between 0 and 2^53');
    }
  } else if (typeof firstSector === 'bigint') {
    if (firstSector < 0n || firstSector >= TWO_POW_64) {
      throw new RangeError('firstSector must be a bigint between 0 and 2^64 - 1');
    }
    if (firstSector + BigInt(sectorCount) > TWO_POW_64) {
      throw new RangeError('firstSector + sector count exceeds 2^64');
    }
  } else {
    throw new TypeError('firstSector must be a number or a bigint');
  }
  return sectorCount;
}

/** True when out and input share memory but are not the very same bytes. */
function partiallyOverlaps(input: Uint8Array, out: Uint8Array): boolean {
  if (input.buffer !== out.buffer) return false;
  if (input.byteOffset === out.byteOffset) return false;
  return input.byteOffset < out.byteOffset + out.length && out.byteOffset < input.byteOffset + input.length;
}

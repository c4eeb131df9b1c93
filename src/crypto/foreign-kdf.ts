// The key derivations of the foreign formats: PBKDF2 over the hashes LUKS, VeraCrypt and TrueCrypt name,
// Argon2i/Argon2id with LUKS2's raw parameters, LUKS's anti-forensic splitter (AF merge) and the
// VeraCrypt/TrueCrypt keyfile pool. OpenSSL (node:crypto) where it has the hash; Whirlpool, which
// OpenSSL 3 keeps in its legacy provider, from Node's OpenSSL through the addon (native/kdf.c) when
// node:crypto lacks it; else @noble/hashes.
import { createHash, getHashes, pbkdf2 as nodePbkdf2 } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { loadArgon2 } from './kdf.js';
import { nativeAddon } from './native.js';

/** The PBKDF2 hashes, by the names LUKS headers and `--hash` use. */
export type Prf = 'sha1' | 'sha256' | 'sha512' | 'ripemd160' | 'whirlpool' | 'blake2s-256';

export const PRFS: readonly Prf[] = ['sha1', 'sha256', 'sha512', 'ripemd160', 'whirlpool', 'blake2s-256'];

const OPENSSL_NAMES: Record<Prf, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha512: 'sha512',
  ripemd160: 'ripemd160',
  whirlpool: 'whirlpool',
  'blake2s-256': 'blake2s256',
};

const NOBLE = { sha1, sha256, sha512, ripemd160, 'blake2s-256': blake2s } as const;

export const DIGEST_BYTES: Record<Prf, number> = {
  sha1: 20,
  sha256: 32,
  sha512: 64,
  ripemd160: 20,
  whirlpool: 64,
  'blake2s-256': 32,
};

/** Accepts the spellings headers and users write: "sha-256", "SHA512", "blake2s", "ripemd-160". */
export function parsePrf(name: string): Prf | null {
  const flat = name.toLowerCase().replace(/[-_]/g, '');
  const table: Record<string, Prf> = {
    sha1: 'sha1',
    sha256: 'sha256',
    sha512: 'sha512',
    ripemd160: 'ripemd160',
    whirlpool: 'whirlpool',
    blake2s: 'blake2s-256',
    blake2s256: 'blake2s-256',
  };
  // Own keys only: "constructor" or "__proto__" are not hash names.
  return Object.hasOwn(table, flat) ? (table[flat] as Prf) : null;
}

const opensslHashes = new Set(getHashes());

function opensslHas(prf: Prf): boolean {
  const name = OPENSSL_NAMES[prf];
  if (!opensslHashes.has(name)) return false;
  try {
    createHash(name); // listed is not always usable: whirlpool needs OpenSSL's legacy provider
    return true;
  } catch {
    return false;
  }
}

/** OpenSSL's name of the PRF in its legacy provider, when the addon can reach it there. */
const LEGACY_NAMES: Partial<Record<Prf, string>> = { whirlpool: 'WHIRLPOOL' };

const addonDigests = new Map<Prf, boolean>();

function addonHas(prf: Prf): boolean {
  let known = addonDigests.get(prf);
  if (known === undefined) {
    const name = LEGACY_NAMES[prf];
    known = name !== undefined && nativeAddon?.legacyDigestAvailable?.(name) === true;
    addonDigests.set(prf, known);
  }
  return known;
}

/**
 * Whether this process can compute the PRF. Whirlpool needs either node --openssl-legacy-provider or
 * the addon (built by npm ci), which loads OpenSSL's legacy provider into a private library context.
 */
export function prfAvailable(prf: Prf): boolean {
  return opensslHas(prf) || prf in NOBLE || addonHas(prf);
}

/** PBKDF2-HMAC-prf; off the main thread when OpenSSL has the hash. Result Buffer.alloc'd: caller wipes. */
export async function pbkdf2(
  prf: Prf,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Promise<Buffer> {
  if (!Number.isSafeInteger(iterations) || iterations < 1)
    throw new RangeError('PBKDF2 iterations must be >= 1');
  let computed: Uint8Array;
  if (opensslHas(prf)) {
    computed = await new Promise<Buffer>((resolve, reject) =>
      nodePbkdf2(password, salt, iterations, length, OPENSSL_NAMES[prf], (error, key) =>
        error ? reject(error) : resolve(key),
      ),
    );
  } else if (prf !== 'whirlpool') {
    computed = await pbkdf2Async(NOBLE[prf], password, salt, { c: iterations, dkLen: length });
  } else if (addonHas(prf) && nativeAddon?.pbkdf2Legacy) {
    const key = Buffer.alloc(length);
    await nativeAddon.pbkdf2Legacy(LEGACY_NAMES[prf] as string, password, salt, iterations, key);
    computed = key;
  } else {
    throw new RangeError(
      'whirlpool is not available in this Node.js (build the addon: npm ci; or start node with --openssl-legacy-provider)',
    );
  }
  const out = Buffer.alloc(length);
  out.set(computed);
  computed.fill(0);
  return out;
}

export interface Argon2Params {
  type: 'argon2i' | 'argon2id';
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** Raw Argon2 (version 0x13) as LUKS2 keyslots use it. Result Buffer.alloc'd: caller wipes. */
export async function argon2(
  params: Argon2Params,
  password: Uint8Array,
  salt: Uint8Array,
  length: number,
): Promise<Buffer> {
  // As in kdf.ts: a private ArrayBuffer, so the argon2 package makes no copy we cannot wipe.
  const argon2Package = await loadArgon2();
  const area = new ArrayBuffer(Math.max(password.length, 1));
  const view = new Uint8Array(area, 0, password.length);
  view.set(password);
  let computed: Buffer | null = null;
  try {
    computed = await argon2Package.hash(
      (password.length === 0 ? Buffer.alloc(0) : Buffer.from(area, 0, password.length)) as Buffer,
      {
        raw: true,
        type: params.type === 'argon2i' ? argon2Package.argon2i : argon2Package.argon2id,
        version: 0x13,
        hashLength: length,
        memoryCost: params.memoryKiB,
        timeCost: params.iterations,
        parallelism: params.parallelism,
        salt: Buffer.from(salt),
      },
    );
    const out = Buffer.alloc(length);
    computed.copy(out);
    return out;
  } finally {
    view.fill(0);
    computed?.fill(0);
  }
}

/**
 * VeraCrypt 1.26.2x's Argon2id header KDF (src/Common/Pkcs5.c, get_argon2_params and derive_key_argon2):
 * no PIM counts as PIM 12; memory min(64 + 32 (PIM - 1), 1024) MiB; passes 3 + floor((PIM - 1) / 3) up
 * to PIM 31, then 13 + (PIM - 31); one lane; version 0x13; the whole 64-byte header salt; and 192 bytes
 * of output (GetMaxPkcs5OutSize: two keys of the longest cascade), of which AES-256-XTS uses the first 64.
 */
export function veracryptArgon2(pim: number | null): Argon2Params {
  const level = pim === null || pim <= 0 ? 12 : pim;
  const memoryMiB = Math.min(64 + (level - 1) * 32, 1024);
  const iterations = level <= 31 ? 3 + Math.floor((level - 1) / 3) : 13 + (level - 31);
  return { type: 'argon2id', memoryKiB: memoryMiB * 1024, iterations, parallelism: 1 };
}

/** Argon2's output length is an input of the hash: VeraCrypt always asks for 192 bytes. */
export const VERACRYPT_ARGON2_OUTPUT_BYTES = 192;

/**
 * LUKS's anti-forensic merge: `split` holds `stripes` blocks of `keyBytes`; every block but the last is
 * XORed into an accumulator that is diffused (hashed in digest-sized pieces with a big-endian counter)
 * after each; the last block XOR the accumulator is the key. Result Buffer.alloc'd: caller wipes.
 */
export function afMerge(split: Uint8Array, keyBytes: number, stripes: number, hash: Prf): Buffer {
  if (split.length < keyBytes * stripes)
    throw new RangeError('AF material is shorter than key size x stripes');
  const accumulator = Buffer.alloc(keyBytes);
  for (let i = 0; i < stripes - 1; i++) {
    xorInto(accumulator, split.subarray(i * keyBytes, (i + 1) * keyBytes));
    diffuse(accumulator, hash);
  }
  xorInto(accumulator, split.subarray((stripes - 1) * keyBytes, stripes * keyBytes));
  return accumulator;
}

function diffuse(block: Buffer, hash: Prf): void {
  const digestBytes = DIGEST_BYTES[hash];
  const counter = Buffer.alloc(4);
  for (let start = 0, index = 0; start < block.length; start += digestBytes, index++) {
    const end = Math.min(start + digestBytes, block.length);
    counter.writeUInt32BE(index, 0);
    const digest = digestOf(hash, [counter, block.subarray(start, end)]);
    block.set(digest.subarray(0, end - start), start);
    digest.fill(0);
  }
}

function digestOf(prf: Prf, parts: Uint8Array[]): Uint8Array {
  if (opensslHas(prf)) {
    const hash = createHash(OPENSSL_NAMES[prf]);
    for (const part of parts) hash.update(part);
    return hash.digest();
  }
  if (prf === 'whirlpool') throw new RangeError('whirlpool is not available in this Node.js');
  const hash = NOBLE[prf].create();
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function xorInto(target: Uint8Array, source: Uint8Array): void {
  for (let i = 0; i < target.length; i++) target[i] = (target[i] as number) ^ (source[i] as number);
}

// ---- VeraCrypt / TrueCrypt keyfiles ----

/** Bytes of each keyfile that count (TrueCrypt and VeraCrypt read at most 1 MiB). */
export const TC_KEYFILE_BYTES = 1 << 20;
/** TrueCrypt's password and keyfile pool; VeraCrypt uses 128 bytes when the password is longer than 64. */
export const TC_POOL_BYTES = 64;
export const VC_POOL_BYTES = 128;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as zlib) of bytes: the header checksums of VeraCrypt/TrueCrypt. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Adds one keyfile (its first 1 MiB) into `pool`: the running CRC-32 state after each byte, its four
 * bytes big-endian, added modulo 256 at the next four pool positions (wrapping at pool.length). The sum
 * is the same in any keyfile order.
 */
export function addKeyfileToPool(pool: Uint8Array, keyfile: Uint8Array): void {
  let crc = 0xffffffff;
  let j = 0;
  const data = keyfile.subarray(0, TC_KEYFILE_BYTES);
  for (const byte of data) {
    crc = ((CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)) >>> 0;
    for (const shift of [24, 16, 8, 0]) {
      pool[j] = ((pool[j] as number) + ((crc >>> shift) & 0xff)) & 0xff;
      j++;
    }
    j %= pool.length;
  }
}

/**
 * The PBKDF2 password of a VeraCrypt/TrueCrypt volume: without keyfiles the password itself; with
 * keyfiles the pool (64 bytes, or 128 for a VeraCrypt password longer than 64) with the password's
 * bytes added in. `pool` is the keyfile pool of that size. Result Buffer.alloc'd: caller wipes.
 */
export function tcPassword(password: Uint8Array, pool: Uint8Array | null): Buffer {
  if (!pool) {
    const out = Buffer.alloc(password.length);
    out.set(password);
    return out;
  }
  const out = Buffer.alloc(pool.length);
  out.set(pool);
  for (let i = 0; i < password.length && i < out.length; i++) {
    out[i] = ((out[i] as number) + (password[i] as number)) & 0xff;
  }
  return out;
}

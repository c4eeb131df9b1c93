// Key derivation: Argon2id cost levels (like VeraCrypt's PIM: an integer the user remembers, never
// stored in a vault) and HKDF-SHA-512 for every key derived from the Argon2id output or the master
// key. The level formula and the labels are part of the format (docs/FORMAT.md section 6).
import { hkdfSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { freemem } from 'node:os';

export const KDF_SALT_BYTES = 32;
export const KDF_OUTPUT_BYTES = 64;
export const ARGON2_VERSION = 0x13;

export interface CostParams {
  level: number;
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export const MIN_COST_LEVEL = 1;
export const MAX_COST_LEVEL = 30;
/** About 1.2 s and 1 GiB on the 2-core reference machine (table in docs/FORMAT.md section 6). */
export const DEFAULT_COST_LEVEL = 12;

/** Memory doubles per level from 1 MiB at level 1 up to 1 GiB at level 11, then stays (as cryptsetup caps it). */
const MEMORY_CAP_LEVEL = 11;
const MEMORY_KIB_AT_LEVEL_0 = 512;
/**
 * Two lanes: on the 2-core reference machine p = 2 measured 2x faster than p = 1 and 15-30% faster
 * than p = 4 for the same memory and passes. Fixed forever: it changes the output.
 */
const PARALLELISM = 2;

/**
 * level L (integer, 1..30):  memoryKiB = 2^(min(L, 11) + 9)   (1 MiB .. 1 GiB)
 *                            iterations = max(1, L - 10)        (1 up to level 11, then +1 per level)
 *                            parallelism = 2
 */
export function costParams(level: number): CostParams {
  if (!Number.isInteger(level) || level < MIN_COST_LEVEL || level > MAX_COST_LEVEL) {
    throw new RangeError(`cost level must be an integer from ${MIN_COST_LEVEL} to ${MAX_COST_LEVEL}`);
  }
  return {
    level,
    memoryKiB: MEMORY_KIB_AT_LEVEL_0 * 2 ** Math.min(level, MEMORY_CAP_LEVEL),
    iterations: Math.max(1, level - (MEMORY_CAP_LEVEL - 1)),
    parallelism: PARALLELISM,
  };
}

export interface MemoryCheck {
  neededBytes: number;
  availableBytes: number;
  fits: boolean;
}

/** Memory the level needs vs what the machine has available now (os.freemem, i.e. MemAvailable). */
export function costMemoryCheck(level: number): MemoryCheck {
  // Argon2's block memory is the whole cost: the rest of the process is already resident.
  const neededBytes = costParams(level).memoryKiB * 1024;
  const availableBytes = freemem();
  return { neededBytes, availableBytes, fits: neededBytes <= availableBytes };
}

let argon2Module: Promise<typeof import('argon2')> | null = null;

/**
 * The argon2 package (a native module), loaded on first use: most commands never run the KDF here
 * (`vault mount` runs it in its daemon). The daemon calls this while it waits for its settings.
 */
export function loadArgon2(): Promise<typeof import('argon2')> {
  // require, not import(): the package is CommonJS, and node's ES module loader took 20-40 ms to load
  // it here against 12 ms for require (in the daemon, on every mount's path).
  argon2Module ??= Promise.resolve().then(
    () => createRequire(import.meta.url)('argon2') as typeof import('argon2'),
  );
  return argon2Module;
}

/**
 * Argon2id (argon2 package, raw, 64-byte output, version 0x13) of secret material with a 32-byte salt.
 * Refuses (RangeError) a level whose memory exceeds what is available, rather than let the kernel
 * kill the process or the machine swap (systemd issue 12124). Result: Buffer.alloc'd; caller wipes it.
 */
export async function deriveKdf(material: Uint8Array, salt: Uint8Array, level: number): Promise<Buffer> {
  const params = costParams(level);
  if (material.length === 0) throw new RangeError('secret material is empty');
  if (salt.length !== KDF_SALT_BYTES) throw new RangeError(`the KDF salt must be ${KDF_SALT_BYTES} bytes`);
  const memory = costMemoryCheck(level);
  if (!memory.fits) {
    throw new RangeError(
      `cost level ${level} needs ${mebibytes(memory.neededBytes)} MiB of memory, ` +
        `only ${mebibytes(memory.availableBytes)} MiB is available`,
    );
  }
  // argon2.hash() does Buffer.from(password): given a Buffer that makes a copy we could never wipe,
  // given an ArrayBuffer it makes a view. So hand it a private ArrayBuffer and wipe that. The native
  // side copies it once more and clears its copy (ARGON2_FLAG_CLEAR_PASSWORD).
  const argon2 = await loadArgon2();
  const passwordArea = new ArrayBuffer(material.length);
  const passwordView = new Uint8Array(passwordArea);
  passwordView.set(material);
  let computed: Buffer | null = null;
  try {
    computed = await argon2.hash(passwordArea as unknown as Buffer, {
      raw: true,
      type: argon2.argon2id,
      version: ARGON2_VERSION,
      hashLength: KDF_OUTPUT_BYTES,
      memoryCost: params.memoryKiB,
      timeCost: params.iterations,
      parallelism: params.parallelism,
      salt: Buffer.from(salt),
    });
    if (computed.length !== KDF_OUTPUT_BYTES) throw new Error('argon2 returned a wrong-length output');
    const output = Buffer.alloc(KDF_OUTPUT_BYTES);
    computed.copy(output);
    return output;
  } finally {
    passwordView.fill(0);
    computed?.fill(0);
  }
}

/** HKDF-SHA-512 (RFC 5869), empty salt, info = UTF-8 label; returns a Buffer.alloc'd key of `length` bytes. */
export function hkdfSha512(ikm: Uint8Array, label: string, length: number): Buffer {
  // Stryker disable next-line StringLiteral: equivalent, Buffer.from's default encoding is UTF-8
  return hkdfSha512Bytes(ikm, new Uint8Array(0), Buffer.from(label, 'utf8'), length);
}

/** Largest HKDF-SHA-512 output (RFC 5869: 255 blocks of 64 bytes). */
export const HKDF_SHA512_MAX_BYTES = 255 * 64;

/** HKDF-SHA-512 with any salt and info bytes; hkdfSha512 is the form the format uses. */
export function hkdfSha512Bytes(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (ikm.length === 0) throw new RangeError('HKDF input key material is empty');
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA512_MAX_BYTES) {
    throw new RangeError(`HKDF-SHA-512 output length must be an integer from 1 to ${HKDF_SHA512_MAX_BYTES}`);
  }
  const computed = new Uint8Array(hkdfSync('sha512', ikm, salt, info, length));
  try {
    const key = Buffer.alloc(length);
    key.set(computed);
    return key;
  } finally {
    computed.fill(0);
  }
}

function mebibytes(bytes: number): number {
  return Math.floor(bytes / (1024 * 1024));
}

/** A KDF as a record: what a format names, its parameters per cost level, and derive. */
export interface KdfSuite {
  readonly id: string;
  readonly name: string;
  params(level: number): CostParams;
  derive(material: Uint8Array, salt: Uint8Array, level: number): Promise<Buffer>;
}

/** The vault format's KDF (header KDF id 1): Argon2id over the cost levels above. */
export const ARGON2ID_COST_LEVELS: KdfSuite = {
  id: 'argon2id',
  name: 'Argon2id',
  params: costParams,
  derive: deriveKdf,
};

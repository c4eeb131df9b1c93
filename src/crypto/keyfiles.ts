// Secret material: the password and the keyfile digests encoded as one unambiguous byte string, the
// Argon2id input (docs/FORMAT.md section 6). Keyfiles are hashed whole with BLAKE2b-512, streamed, so
// any size works; reading the files is src/container's job (src/crypto never touches the disk).
import { createHash, type Hash } from 'node:crypto';

export const KEYFILE_DIGEST_BYTES = 64;

/** Domain label at the start of the material: a different construction can never give the same bytes. */
export const SECRET_MATERIAL_LABEL = 'vault-secret-v1';

/** Every variable-length field carries a 4-byte big-endian length. */
const LENGTH_PREFIX_BYTES = 4;
const MAX_FIELD_BYTES = 0xffff_ffff;

export interface KeyfileHasher {
  update(chunk: Uint8Array): void;
  /** Bytes hashed so far. */
  readonly bytes: number;
  /** BLAKE2b-512 of everything given to update(); a hasher gives one digest. Refuses an empty keyfile. */
  digest(): Buffer;
}

export function createKeyfileHasher(): KeyfileHasher {
  // node:crypto's BLAKE2b-512 (OpenSSL) hashes at ~1 GB/s here, so multi-GiB keyfiles are fine.
  let hash: Hash | null = createHash('blake2b512');
  let bytes = 0;
  return {
    update(chunk: Uint8Array): void {
      if (!hash) throw new TypeError('keyfile hasher already finished');
      hash.update(chunk);
      bytes += chunk.length;
    },
    get bytes(): number {
      return bytes;
    },
    digest(): Buffer {
      if (!hash) throw new TypeError('keyfile hasher already finished');
      if (bytes === 0) throw new RangeError('an empty keyfile adds no secret');
      const computed = hash.digest();
      hash = null;
      // Copy into a buffer we own so the caller can wipe the only copy.
      const digest = Buffer.alloc(KEYFILE_DIGEST_BYTES);
      computed.copy(digest);
      computed.fill(0);
      return digest;
    },
  };
}

/**
 * Argon2id input, in this order (docs/FORMAT.md section 6):
 *   u32 len(label)    || label ("vault-secret-v1", ASCII)
 *   u32 len(password) || password (UTF-8 bytes as given)
 *   u32 count
 *   count × (u32 64   || digest), digests sorted bytewise ascending
 * All integers big-endian. Sorting makes keyfile order irrelevant; the length prefixes and the count
 * make the encoding injective, so no two different (password, digests) give the same bytes.
 * Throws RangeError if the password is empty and there are no digests, or a digest is not 64 bytes.
 * Result: Buffer.alloc'd; the caller wipes it.
 */
export function secretMaterial(password: Uint8Array, keyfileDigests: readonly Uint8Array[]): Buffer {
  if (password.length === 0 && keyfileDigests.length === 0) {
    throw new RangeError('an empty password is allowed only together with a keyfile');
  }
  if (password.length > MAX_FIELD_BYTES) throw new RangeError('password too long');
  for (const digest of keyfileDigests) {
    if (digest.length !== KEYFILE_DIGEST_BYTES) {
      throw new RangeError(`a keyfile digest must be ${KEYFILE_DIGEST_BYTES} bytes, got ${digest.length}`);
    }
  }
  // Sort references only: the caller's array and buffers stay as they were.
  const sorted = [...keyfileDigests].sort((a, b) => Buffer.compare(a, b));
  // Stryker disable next-line StringLiteral: equivalent, the label is ASCII and Buffer.from's default (UTF-8) gives the same bytes
  const label = Buffer.from(SECRET_MATERIAL_LABEL, 'ascii');

  const total =
    LENGTH_PREFIX_BYTES +
    label.length +
    LENGTH_PREFIX_BYTES +
    password.length +
    LENGTH_PREFIX_BYTES +
    sorted.length * (LENGTH_PREFIX_BYTES + KEYFILE_DIGEST_BYTES);
  const material = Buffer.alloc(total);
  let offset = 0;
  offset = material.writeUInt32BE(label.length, offset);
  offset += label.copy(material, offset);
  offset = material.writeUInt32BE(password.length, offset);
  material.set(password, offset);
  offset += password.length;
  offset = material.writeUInt32BE(sorted.length, offset);
  for (const digest of sorted) {
    offset = material.writeUInt32BE(digest.length, offset);
    material.set(digest, offset);
    offset += digest.length;
  }
  // Stryker disable next-line ConditionalExpression,StringLiteral: an assertion that cannot fire (total is the sum of what is written)
  if (offset !== total) throw new Error('secret material length mismatch (bug)');
  return material;
}

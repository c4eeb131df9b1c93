// XChaCha20-Poly1305 (from @noble/ciphers) seals every header byte that is not itself a nonce or salt.
// 24-byte random nonces make nonce reuse across header rewrites a non-issue.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

/** Returns ciphertext || tag (plain.length + 16 bytes). */
export function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plain: Uint8Array,
  associated: Uint8Array,
): Uint8Array {
  checkSizes(key, nonce);
  return xchacha20poly1305(key, nonce, associated).encrypt(plain);
}

/** Returns the plaintext, or null when the tag does not verify (wrong key or any changed byte). */
export function open(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  associated: Uint8Array,
): Uint8Array | null {
  checkSizes(key, nonce);
  // Stryker disable next-line ConditionalExpression: equivalent, noble's decrypt throws on input shorter than the tag and the catch below returns null
  if (sealed.length < AEAD_TAG_BYTES) return null;
  try {
    return xchacha20poly1305(key, nonce, associated).decrypt(sealed);
  } catch {
    return null;
  }
}

function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== AEAD_KEY_BYTES) throw new RangeError(`AEAD key must be ${AEAD_KEY_BYTES} bytes`);
  if (nonce.length !== AEAD_NONCE_BYTES) throw new RangeError(`AEAD nonce must be ${AEAD_NONCE_BYTES} bytes`);
}

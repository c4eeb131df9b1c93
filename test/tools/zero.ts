// TEST ONLY: whether key material was wiped.

/**
 * True when every byte is zero; for a list, every byte of every buffer. Undefined or null is false:
 * a buffer the test never saw was not seen wiped.
 */
export function allZero(bytes: Uint8Array | readonly Uint8Array[] | null | undefined): boolean {
  if (bytes == null) return false;
  const buffers = bytes instanceof Uint8Array ? [bytes] : bytes;
  return buffers.every((buffer) => buffer.every((byte) => byte === 0));
}

// Randomness and wiping. Key material lives in Buffers we allocate and zero when done; in a
// garbage-collected runtime this raises the bar but cannot guarantee no copy survives (SECURITY.md).
import { randomFillSync } from 'node:crypto';

/** A new zero-initialised buffer filled from the OS CSPRNG (never allocUnsafe: it may hold old secrets). */
export function randomBytes(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  randomFillSync(bytes);
  return bytes;
}

export function wipe(...buffers: ReadonlyArray<Uint8Array | null | undefined>): void {
  for (const buffer of buffers) buffer?.fill(0);
}

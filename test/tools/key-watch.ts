// TEST ONLY: watching key material from outside the code under test, through vi.mock factories.
// A test file keeps a KeyWatch (vi.hoisted) and hands the original module to one of the wrappers:
//
//   const watch = vi.hoisted(() => ({ keys: [], ciphers: [] }) as KeyWatch);
//   vi.mock('../../src/crypto/memory.js', async (importOriginal) =>
//     (await import('../tools/key-watch.js')).watchLockedMemory(await importOriginal(), watch));
//
// Every buffer the wrapped functions hand out is recorded; `unwiped(watch)` names those that still
// hold a non-zero byte, and `undestroyed(watch)` the sector ciphers nobody destroyed.
import { expect } from 'vitest';
import type * as Memory from '../../src/crypto/memory.js';
import type { SectorCipher } from '../../src/crypto/suites.js';

export interface KeyWatch {
  /** Buffers that held or hold key material, with where they came from. */
  keys: Array<{ what: string; bytes: Uint8Array }>;
  /** Sector ciphers made, and whether each was destroyed. */
  ciphers: Array<{ destroyed: boolean }>;
}

/** Forgets what was recorded (call before the operation under test). */
export function resetWatch(watch: KeyWatch): void {
  watch.keys.length = 0;
  watch.ciphers.length = 0;
}

export function recordKey<T extends Uint8Array>(watch: KeyWatch, what: string, bytes: T): T {
  watch.keys.push({ what, bytes });
  return bytes;
}

/** src/crypto/memory.ts with every locked buffer (master keys, header keys, fill keys) recorded. */
export function watchLockedMemory(original: typeof Memory, watch: KeyWatch): typeof Memory {
  return {
    ...original,
    lockedBuffer: (length: number) => recordKey(watch, 'lockedBuffer', original.lockedBuffer(length)),
    moveToLocked: (source: Uint8Array) => recordKey(watch, 'moveToLocked', original.moveToLocked(source)),
  };
}

/** A createVaultSectorCipher-like function whose ciphers record their destroy(). */
export function watchCipherFactory<A extends unknown[]>(
  create: (...args: A) => SectorCipher,
  watch: KeyWatch,
): (...args: A) => SectorCipher {
  return (...args: A) => {
    const cipher = create(...args);
    const entry = { destroyed: false };
    watch.ciphers.push(entry);
    const destroy = cipher.destroy.bind(cipher);
    cipher.destroy = () => {
      entry.destroyed = true;
      destroy();
    };
    return cipher;
  };
}

/** The recorded buffers that still hold a non-zero byte, by origin (empty: all wiped). */
export function unwiped(watch: KeyWatch): string[] {
  return watch.keys.filter((key) => key.bytes.some((byte) => byte !== 0)).map((key) => key.what);
}

/** How many recorded ciphers were never destroyed. */
export function undestroyed(watch: KeyWatch): number {
  return watch.ciphers.filter((cipher) => !cipher.destroyed).length;
}

/** Runs one library call: afterwards (resolved or refused) every key it made is zero, every cipher destroyed. */
export async function watched<T>(watch: KeyWatch, run: () => Promise<T>): Promise<T> {
  resetWatch(watch);
  try {
    return await run();
  } finally {
    expect(unwiped(watch), 'key buffers left unwiped').toEqual([]);
    expect(undestroyed(watch), 'sector ciphers left undestroyed').toBe(0);
  }
}

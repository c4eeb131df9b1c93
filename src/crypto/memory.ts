// Key memory and process hardening (native/secure.c). Long-lived keys (master key, header key) live in
// pages the addon owns: locked in RAM, left out of core dumps, not inherited by children, wiped when
// freed. A process that holds keys first makes itself non-dumpable, which also stops processes of the
// same user from reading its memory through ptrace or /proc/<pid>/mem. Without the addon (not built),
// keys live in ordinary Buffers and the process stays dumpable: SECURITY.md says so.
import { nativeAddon } from './native.js';

export interface Hardening {
  /** False once prctl(PR_SET_DUMPABLE, 0) is in force: no core dumps, no same-user ptrace. */
  dumpable: boolean;
  /** RLIMIT_CORE after hardening: 0 with the addon. */
  coreLimit: number | null;
}

let hardened: Hardening | null = null;

/** Makes this process non-dumpable with a core limit of 0. Idempotent; call before any secret is read. */
export function hardenProcess(): Hardening {
  if (hardened) return hardened;
  hardened = nativeAddon ? nativeAddon.harden() : { dumpable: true, coreLimit: null };
  return hardened;
}

/**
 * A zeroed buffer for key material in locked, undumpable memory owned by the addon (Buffer.alloc
 * without it). Wipe it with fill(0) when done; the pages are wiped again when it is collected.
 */
export function lockedBuffer(length: number): Buffer {
  if (!nativeAddon || length === 0) return Buffer.alloc(length);
  return Buffer.from(nativeAddon.lockedBuffer(length));
}

/** Moves key bytes into locked memory: returns the locked copy and wipes `source`. */
export function moveToLocked(source: Uint8Array): Buffer {
  const locked = lockedBuffer(source.length);
  locked.set(source);
  source.fill(0);
  return locked;
}

/** Whether key memory is really locked: false without the addon or when mlock was refused (RLIMIT_MEMLOCK). */
export function keyMemoryLocked(): boolean {
  return nativeAddon?.lockedPagesOk() ?? false;
}

// The project's N-API addon (native/xts.c, native/secure.c, native/kdf.c), loaded once. null when it is not built
// (no compiler at install time, or built for another Node ABI): callers then use their fallbacks.
import { createRequire } from 'node:module';

export interface NativeXtsContext {
  encrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array): void;
  decrypt(input: Uint8Array, firstSector: number | bigint, out: Uint8Array): void;
  destroy(): void;
}

export interface NativeAddon {
  XtsContext: new (key: Uint8Array, sectorSize: number) => NativeXtsContext;
  harden(): { dumpable: boolean; coreLimit: number };
  lockedBuffer(length: number): ArrayBuffer;
  lockedPagesOk(): boolean;
  fallocate(fd: number, length: number): number;
  /** PBKDF2 over a digest of OpenSSL's legacy provider (Whirlpool) via a private library context
   *  (native/kdf.c), on the thread pool; `out` (1..1024 bytes) receives the key. Absent in older builds. */
  pbkdf2Legacy?(
    digest: string,
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    out: Buffer,
  ): Promise<void>;
  legacyDigestAvailable?(digest: string): boolean;
}

// build/ sits two levels above both src/crypto and dist/crypto, so one relative path serves both.
export const nativeAddon: NativeAddon | null = load();

function load(): NativeAddon | null {
  try {
    const loaded: unknown = createRequire(import.meta.url)('../../build/Release/vault_xts.node');
    if (
      typeof loaded === 'object' &&
      loaded !== null &&
      'XtsContext' in loaded &&
      typeof loaded.XtsContext === 'function' &&
      'lockedBuffer' in loaded &&
      typeof loaded.lockedBuffer === 'function'
    ) {
      return loaded as NativeAddon;
    }
  } catch {
    // Not built, or built for another Node ABI: the fallbacks take over.
  }
  return null;
}

// Typed access to the FUSE 3 addon (native/fuse3.c, build/Release/vault_fuse.node): a libfuse 3 session
// that serves the `volume` file from C threads (pread/pwrite on the container, XTS in OpenSSL). This
// side only starts and stops it, reads its counters and hears about its errors.
import { createRequire } from 'node:module';
import { VaultError } from '../container/errors.js';

/** The largest request negotiated (max_read, max_write): 256 pages, the kernel's max_pages_limit. */
export const MAX_REQUEST = 1 << 20;

/** Event kinds the session reports (native/fuse3.c). */
export const FuseEvent = { ERROR: 1, PROTECTION: 2 } as const;

export interface VolumeOptions {
  /** The host file; the addon works on its own duplicate of it. Absent with `forward`. */
  fd?: number;
  /** No raw access: every read, write and sync is handed to onRequest (a JavaScript BlockDevice). */
  forward?: boolean;
  dataOffset: number;
  size: number;
  sectorSize: number;
  readOnly: boolean;
  /** XTS-AES master key (64 bytes: AES-256, 32: AES-128), copied into locked memory; absent: no encryption. */
  key?: Uint8Array;
  /** Tweak of data sector s: ivOffset + s * (sectorSize / ivUnitBytes); defaults 0 and sectorSize. */
  ivOffset?: number;
  ivUnitBytes?: number;
  /** Cleartext bytes [protectStart, protectEnd) no write may touch (the hidden volume). */
  protectStart?: number;
  protectEnd?: number;
}

export interface SessionOptions extends VolumeOptions {
  dir: string;
  fsname: string;
  allowOther?: boolean;
  /** Path of fusermount3 or fusermount: how a process without root mounts. */
  fusermount?: string;
  onEvent: (kind: number, message: string) => void;
  /** With `forward`: kind 1 read into data, 2 write data, 3 sync; answer with complete(token, 0 or -errno). */
  onRequest?: (kind: number, offset: number, data: ArrayBuffer | null, token: RequestToken) => void;
}

declare const tokenBrand: unique symbol;
export type RequestToken = { readonly [tokenBrand]: true };

export interface FuseStats {
  /** [size, count] pairs: the request sizes served. */
  read: Array<[number, number]>;
  write: Array<[number, number]>;
  inFlight: number;
  maxInFlight: number;
  /** Reads that bypassed the host's page cache (large and aligned: O_DIRECT). */
  directReads: number;
  /** Every read, write and sync request the kernel sent (the idle-dismount's activity counter). */
  requests: number;
  protectionTripped: boolean;
  ended: boolean;
}

declare const handleBrand: unique symbol;
export type NativeHandle = { readonly [handleBrand]: true };

export interface Fuse3Addon {
  start(options: SessionOptions): NativeHandle;
  stats(handle: NativeHandle): FuseStats;
  /** After the kernel unmount: waits up to waitMs for the session to end; false if it still runs. */
  stop(handle: NativeHandle, waitMs: number): boolean;
  complete(token: RequestToken, result: number): void;
  /** The request handler without FUSE, for tests. */
  openVolume(options: VolumeOptions): NativeHandle;
  volumeRead(handle: NativeHandle, offset: number, length: number): Buffer | number;
  volumeWrite(handle: NativeHandle, offset: number, data: Uint8Array): number;
  volumeHammer(handle: NativeHandle, threads: number, rounds: number, chunk: number): number;
  volumeStats(handle: NativeHandle): FuseStats;
  closeVolume(handle: NativeHandle): void;
}

let addon: Fuse3Addon | null = null;
let loadError: unknown = null;

/** The addon, loaded once; throws NEEDS_SYSTEM when it is not built or libfuse3 is missing. */
export function fuse3(): Fuse3Addon {
  if (addon) return addon;
  try {
    // build/ sits two levels above both src/fuse and dist/fuse.
    addon = createRequire(import.meta.url)('../../build/Release/vault_fuse.node') as Fuse3Addon;
    return addon;
  } catch (error) {
    loadError = error;
    throw new VaultError(
      'NEEDS_SYSTEM',
      `the FUSE 3 addon cannot be loaded: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`,
      'install libfuse3 (apt-get install libfuse3-3 libfuse3-dev, or scripts/setup.sh), then rebuild: npm rebuild',
      { cause: error },
    );
  }
}

/** Loads the addon ahead of need (the daemon does it while it waits for its settings); errors wait too. */
export function preloadFuse(): void {
  if (addon || loadError) return;
  try {
    fuse3();
  } catch {
    // mountBridge loads it again and reports the failure where it can be logged.
  }
}

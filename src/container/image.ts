// Raw disk images in and out of vaults: importImage encrypts an image (file or block device) sector by
// sector into a new vault, created like any other (temporary file, moved into place only when complete);
// exportImage writes a vault's cleartext volume back out as a raw image (temporary file + rename).
import { type FileHandle, open, stat } from 'node:fs/promises';
import { blockDeviceSize } from '../host/loop.js';
import type { BlockDevice } from './block-device.js';
import { createVault } from './create.js';
import { VaultError } from './errors.js';
import { fileError, readFully, writeFully } from './file.js';
import { MAX_DATA_BYTES, MIN_DATA_BYTES, OVERHEAD_BYTES, SECTOR_BYTES } from './layout.js';
import type { Secret } from './secret.js';
import { abortIfAsked, checkNewFile, stageFile } from './staged-file.js';
import type { Vault } from './vault.js';
import { openVolume, type VolumeOpenOptions } from './volume.js';

/** Bytes per read and write while copying: big enough for full-speed I/O, small enough to stop quickly. */
export const IMAGE_CHUNK_BYTES = 1 << 20;

export interface ImageSource {
  /** Bytes the image holds (a block device's whole size). */
  size: number;
  kind: 'file' | 'block-device';
}

export interface ImportOptions {
  secret: Secret;
  costLevel?: number;
  /** Replace an existing target (only once the new vault is complete). */
  force?: boolean;
  /** Bytes of the new volume written so far, of the whole volume (image plus zero padding). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export interface ImportResult {
  imageSize: number;
  /** Volume size of the new vault: the image size rounded up to 4 KiB (at least 768 KiB). */
  dataSize: number;
  fileSize: number;
}

export interface ExportOptions {
  costLevel?: number;
  /** Which format to open (vault, LUKS, VeraCrypt, TrueCrypt; detected when left out). */
  volume?: Pick<VolumeOpenOptions, 'type' | 'hash' | 'pim'>;
  /** Replace an existing file; required to write onto a block device. */
  force?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
  /**
   * Called right after the vault opened, once per thing the user should hear about (Vault.warnings:
   * the backup header was used, an interrupted update or resize), as `vault info` and `mount` report them.
   */
  onWarning?: (message: string) => void;
}

export interface ExportResult {
  /** Bytes of cleartext written: the vault's volume size. */
  size: number;
  /** Bytes left as holes in a regular output file (all-zero chunks are not written). */
  sparseBytes: number;
}

/** The volume size a vault needs to hold an image of `imageSize` bytes. */
export function dataSizeForImage(imageSize: number): number {
  const rounded = Math.ceil(imageSize / SECTOR_BYTES) * SECTOR_BYTES;
  return Math.max(rounded, MIN_DATA_BYTES);
}

/** Size and kind of an image to import; refuses empty files, directories and character devices. */
export async function inspectImage(path: string): Promise<ImageSource> {
  const info = await stat(path).catch((error: unknown) => {
    throw fileError(error, path);
  });
  let source: ImageSource;
  if (info.isFile()) source = { size: info.size, kind: 'file' };
  else if (info.isBlockDevice())
    source = { size: await blockDeviceSize(path, info.rdev), kind: 'block-device' };
  else {
    throw new VaultError(
      'USAGE',
      `not a disk image or block device: ${path}`,
      'give a raw image file (e.g. made with dd) or a block device such as /dev/sdb1',
    );
  }
  if (source.size === 0) {
    throw new VaultError('USAGE', `the image is empty: ${path}`, 'give a raw image that holds a volume');
  }
  if (dataSizeForImage(source.size) > MAX_DATA_BYTES) {
    throw new VaultError('USAGE', `the image is larger than a vault can be (8 PiB): ${path}`);
  }
  return source;
}

/** Replacing the source with its own copy (with force) would silently destroy it: refuse (USAGE). */
export async function refuseSameFile(source: string, target: string, message: string): Promise<void> {
  // Stryker disable next-line ArrowFunction: equivalent, undefined and null both fail the check below
  const [a, b] = await Promise.all([stat(source).catch(() => null), stat(target).catch(() => null)]);
  if (a && b && a.dev === b.dev && a.ino === b.ino) {
    throw new VaultError('USAGE', `${message}: ${target}`, 'give another output name');
  }
}

/**
 * Creates the vault `target` holding the image `source`: every sector of the new volume is written
 * (the image, then zeros up to the 4 KiB boundary), so no sector is left as bare allocated space and
 * the vault needs no fill pass first. Sparse images are read sequentially too: the holes come from the
 * page cache as zeros without disk I/O. On any failure or abort no target file is left behind.
 */
export async function importImage(
  source: string,
  target: string,
  options: ImportOptions,
): Promise<ImportResult> {
  const image = await inspectImage(source);
  await refuseSameFile(source, target, 'the image and the new vault must be different files');
  const dataSize = dataSizeForImage(image.size);
  const fileSize = dataSize + OVERHEAD_BYTES;
  let input: FileHandle;
  try {
    input = await open(source, 'r');
  } catch (error) {
    throw fileError(error, source);
  }
  try {
    await createFilledVault(target, fileSize, options, (vault) =>
      copyIn(input, source, image.size, vault, options),
    );
  } finally {
    await input.close().catch(() => {});
  }
  return { imageSize: image.size, dataSize, fileSize };
}

async function copyIn(
  input: FileHandle,
  source: string,
  imageSize: number,
  vault: Vault,
  options: ImportOptions,
): Promise<void> {
  const total = vault.size;
  await pipeline(
    total,
    async (buffer, offset) => {
      const length = Math.min(IMAGE_CHUNK_BYTES, total - offset);
      const chunk = buffer.subarray(0, length);
      const wanted = Math.max(0, Math.min(length, imageSize - offset));
      await readImage(input, chunk.subarray(0, wanted), offset, source);
      // Past the end of the image (the last partial sector, or up to the minimum size): zeros.
      chunk.fill(0, wanted);
      return chunk;
    },
    (chunk, offset) => vault.writeAt(chunk, offset),
    options,
    'the partial vault was removed',
  );
}

function readImage(input: FileHandle, into: Buffer, position: number, path: string): Promise<void> {
  return readFully(
    path,
    into,
    position,
    async (offset, length, at) => (await input.read(into, offset, length, at)).bytesRead,
    (at) =>
      new VaultError(
        'IO',
        `the image ${path} ended early (at ${at} bytes): it changed while being imported`,
        'make sure nothing writes to the image, then run the command again',
      ),
  );
}

/**
 * Creates the vault `target` holding the cleartext of an opened volume (e.g. a LUKS or VeraCrypt
 * volume: the migration path of `vault import`). Like importImage, every sector is written, and no
 * target is left behind on failure or abort. The source is only read.
 */
export async function importVolume(
  source: BlockDevice,
  target: string,
  options: ImportOptions,
): Promise<ImportResult> {
  const dataSize = dataSizeForImage(source.size);
  if (dataSize > MAX_DATA_BYTES)
    throw new VaultError('USAGE', 'the volume is larger than a vault can be (8 PiB)');
  const fileSize = dataSize + OVERHEAD_BYTES;
  await createFilledVault(target, fileSize, options, (vault) => copyVolume(source, vault, options));
  return { imageSize: source.size, dataSize, fileSize };
}

/** createVault for an import: `fill` writes every data sector, so the vault is not filled with ciphertext first (quick). */
async function createFilledVault(
  target: string,
  fileSize: number,
  options: ImportOptions,
  fill: (vault: Vault) => Promise<void>,
): Promise<void> {
  await createVault(target, {
    fileSize,
    secret: options.secret,
    ...(options.costLevel === undefined ? {} : { costLevel: options.costLevel }),
    quick: true,
    force: options.force ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
    format: fill,
  });
}

async function copyVolume(source: BlockDevice, vault: Vault, options: ImportOptions): Promise<void> {
  const total = vault.size;
  await pipeline(
    total,
    async (buffer, offset) => {
      const length = Math.min(IMAGE_CHUNK_BYTES, total - offset);
      const chunk = buffer.subarray(0, length);
      const wanted = Math.max(0, Math.min(length, source.size - offset));
      if (wanted > 0) await source.readAt(chunk.subarray(0, wanted), offset);
      chunk.fill(0, wanted);
      return chunk;
    },
    (chunk, offset) => vault.writeAt(chunk, offset),
    options,
    'the partial vault was removed',
  );
}

/**
 * Writes the cleartext volume of the vault `path` to `target` (opened read-only, so the vault is not
 * touched). A regular file is written to a temporary file next to it (mode 0600, all-zero chunks left
 * as holes), synced, then moved into place; a block device is written in place (needs force).
 */
export async function exportImage(
  path: string,
  secret: Secret,
  target: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  // A block device (also through a symlink such as /dev/disk/by-id/...) is written in place, with
  // --force; anything else must be a new or regular file (the one check of every new file).
  const device = (await stat(target).catch(() => null))?.isBlockDevice() ?? false;
  if (!device) await checkNewFile(target, options.force ?? false);
  else if (!options.force) {
    throw new VaultError(
      'EXISTS',
      `${target} is a block device: writing the image over it destroys what it holds`,
      'force it to write the image onto the device',
      { reason: 'export-onto-device' },
    );
  }
  await refuseSameFile(path, target, 'the vault and the image must be different files');
  const vault = await openVolume(path, secret, {
    ...(options.costLevel === undefined ? {} : { costLevel: options.costLevel }),
    ...options.volume,
    readOnly: true,
  });
  try {
    for (const warning of vault.warnings) options.onWarning?.(warning);
    if (device) return await exportToDevice(vault, target, options);
    return await exportToFile(vault, target, options);
  } finally {
    await vault.close();
  }
}

/**
 * Streams the cleartext volume through `write` (e.g. to stdout), chunk by chunk. `write` must be done
 * with the chunk when its promise resolves: the buffer is reused and wiped.
 */
export async function streamImage(
  path: string,
  secret: Secret,
  write: (chunk: Buffer) => Promise<void>,
  options: Omit<ExportOptions, 'force'> = {},
): Promise<ExportResult> {
  const vault = await openVolume(path, secret, {
    ...(options.costLevel === undefined ? {} : { costLevel: options.costLevel }),
    ...options.volume,
    readOnly: true,
  });
  try {
    for (const warning of vault.warnings) options.onWarning?.(warning);
    await copyOut(vault, write, options, 'the output is incomplete');
    return { size: vault.size, sparseBytes: 0 };
  } finally {
    await vault.close();
  }
}

async function exportToFile(
  vault: BlockDevice,
  target: string,
  options: ExportOptions,
): Promise<ExportResult> {
  const staged = await stageFile(target, { force: options.force ?? false });
  let output: FileHandle;
  try {
    // 0600: the image is cleartext; whoever reads it reads the volume.
    output = await open(staged.temporary, 'wx', 0o600);
  } catch (error) {
    throw fileError(error, target);
  }
  let keep = false;
  let sparseBytes = 0;
  try {
    const zeros = Buffer.alloc(IMAGE_CHUNK_BYTES);
    let position = 0;
    await copyOut(
      vault,
      async (chunk) => {
        // Leave all-zero chunks as holes, like cp --sparse. Only zeros written into the volume give any:
        // never-written sectors decrypt to random-looking bytes (FORMAT.md 4).
        if (chunk.equals(zeros.subarray(0, chunk.length))) sparseBytes += chunk.length;
        else await writeOutput(output, chunk, position, target);
        position += chunk.length;
      },
      options,
      'the partial image was removed',
    );
    try {
      await output.truncate(vault.size);
      await output.datasync();
      await output.close();
    } catch (error) {
      throw fileError(error, target);
    }
    await staged.publish();
    // Stryker disable next-line BooleanLiteral: equivalent, after publish the temporary is gone, so discarding it and closing again change nothing
    keep = true;
    return { size: vault.size, sparseBytes };
  } finally {
    if (!keep) {
      await output.close().catch(() => {});
      await staged.discard();
    }
  }
}

async function exportToDevice(
  vault: BlockDevice,
  target: string,
  options: ExportOptions,
): Promise<ExportResult> {
  const info = await stat(target);
  const deviceSize = await blockDeviceSize(target, info.rdev);
  if (deviceSize < vault.size) {
    throw new VaultError(
      'USAGE',
      `the device ${target} (${deviceSize} bytes) is smaller than the volume (${vault.size} bytes)`,
      'choose a larger device, or export to a file',
    );
  }
  let output: FileHandle;
  try {
    output = await open(target, 'r+');
  } catch (error) {
    throw fileError(error, target);
  }
  try {
    let position = 0;
    await copyOut(
      vault,
      async (chunk) => {
        await writeOutput(output, chunk, position, target);
        position += chunk.length;
      },
      options,
      `${target} holds a partial image`,
    );
    await output.datasync().catch((error: unknown) => {
      throw fileError(error, target);
    });
    return { size: vault.size, sparseBytes: 0 };
  } finally {
    await output.close().catch(() => {});
  }
}

async function copyOut(
  vault: BlockDevice,
  write: (chunk: Buffer) => Promise<void>,
  options: { onProgress?: (doneBytes: number, totalBytes: number) => void; signal?: AbortSignal },
  onAbort: string,
): Promise<void> {
  const total = vault.size;
  await pipeline(
    total,
    async (buffer, offset) => {
      const chunk = buffer.subarray(0, Math.min(IMAGE_CHUNK_BYTES, total - offset));
      await vault.readAt(chunk, offset);
      return chunk;
    },
    (chunk) => write(chunk),
    options,
    onAbort,
  );
}

/**
 * Copies `total` bytes in IMAGE_CHUNK_BYTES chunks with two buffers: the next chunk is read (and
 * decrypted, for export) while the previous one is written (and encrypted, for import). Buffers are
 * wiped at the end: either side may be secret.
 */
/** Exported for its tests only (test/unit/image-edges.test.ts). */
export async function pipeline(
  total: number,
  read: (buffer: Buffer, offset: number) => Promise<Buffer>,
  write: (chunk: Buffer, offset: number) => Promise<void>,
  options: { onProgress?: (doneBytes: number, totalBytes: number) => void; signal?: AbortSignal },
  onAbort: string,
): Promise<void> {
  const buffers = [Buffer.alloc(IMAGE_CHUNK_BYTES), Buffer.alloc(IMAGE_CHUNK_BYTES)];
  let next: Promise<Buffer> | null = null;
  // The next read runs while the current chunk is written, and may fail before the write ends: it is
  // awaited (and its error thrown) only then, so mark it handled now, or Node reports an unhandled
  // rejection (and, by default, exits) in between.
  const ahead = (promise: Promise<Buffer>) => {
    promise.catch(() => {});
    return promise;
  };
  try {
    options.onProgress?.(0, total);
    next = ahead(read(buffers[0] as Buffer, 0));
    for (let offset = 0, turn = 0; next; turn ^= 1) {
      abortIfAsked(options.signal, onAbort);
      const chunk: Buffer = await next;
      const following = offset + chunk.length;
      next = following < total ? ahead(read(buffers[turn ^ 1] as Buffer, following)) : null;
      await write(chunk, offset);
      offset = following;
      options.onProgress?.(offset, total);
    }
    abortIfAsked(options.signal, onAbort);
  } finally {
    // A read still in flight must finish before its buffer is wiped (and the vault closed).
    await next?.catch(() => {});
    for (const buffer of buffers) buffer.fill(0);
  }
}

function writeOutput(output: FileHandle, chunk: Buffer, position: number, path: string): Promise<void> {
  return writeFully(
    path,
    chunk,
    position,
    async (offset, length, at) => (await output.write(chunk, offset, length, at)).bytesWritten,
  );
}

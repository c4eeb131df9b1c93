// importImage / exportImage on real files, without FUSE: an image goes in and comes back out byte for
// byte, sizes round up to whole sectors, holes stay holes on export, and an abort or a failure leaves
// no partial vault or image behind. Lowest cost level, so the KDF is fast.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dataSizeForImage,
  exportImage,
  IMAGE_CHUNK_BYTES,
  importImage,
  inspectImage,
  streamImage,
} from '../../src/container/image.js';
import { isVaultError, openVault, Secret } from '../../src/container/index.js';
import { MIN_DATA_BYTES, OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
let dir: string;

const password = (text = 'correct horse') => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (caught: unknown) => caught,
  );
}

/** An image with recognisable content at the start, a hole in the middle and data at the very end. */
async function makeImage(name: string, size: number): Promise<{ path: string; content: Buffer }> {
  const content = Buffer.alloc(size);
  randomBytes(Math.min(size, 3 * IMAGE_CHUNK_BYTES + 123)).copy(content, 0);
  if (size > 5 * IMAGE_CHUNK_BYTES) randomBytes(777).copy(content, size - 777);
  const path = join(dir, name);
  await writeFile(path, content);
  return { path, content };
}

async function readVolume(path: string, secret: Secret): Promise<Buffer> {
  const vault = await openVault(path, secret, { costLevel, readOnly: true });
  try {
    const volume = Buffer.alloc(vault.size);
    await vault.readAt(volume, 0);
    return volume;
  } finally {
    await vault.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('dataSizeForImage', () => {
  it('rounds up to whole 4 KiB sectors and to the smallest vault', () => {
    expect(dataSizeForImage(8 * 2 ** 20)).toBe(8 * 2 ** 20);
    expect(dataSizeForImage(8 * 2 ** 20 + 1)).toBe(8 * 2 ** 20 + 4096);
    expect(dataSizeForImage(8 * 2 ** 20 - 4095)).toBe(8 * 2 ** 20);
    expect(dataSizeForImage(1)).toBe(MIN_DATA_BYTES);
  });
});

describe('importImage', () => {
  it('makes a vault whose volume is the image followed by zeros up to the sector boundary', async () => {
    const size = 6 * IMAGE_CHUNK_BYTES + 5000; // not a multiple of 4096, and not of the chunk size
    const { path, content } = await makeImage('odd.img', size);
    const target = join(dir, 'odd.vol');
    const progress: number[] = [];
    const result = await importImage(path, target, {
      secret: await password(),
      costLevel,
      onProgress: (done) => progress.push(done),
    });
    const dataSize = Math.ceil(size / 4096) * 4096;
    expect(result).toEqual({ imageSize: size, dataSize, fileSize: dataSize + OVERHEAD_BYTES });
    expect((await stat(target)).size).toBe(dataSize + OVERHEAD_BYTES);
    const volume = await readVolume(target, await password());
    expect(volume.subarray(0, size).equals(content)).toBe(true);
    expect(volume.subarray(size).every((byte) => byte === 0)).toBe(true);
    expect(progress.at(-1)).toBe(dataSize);
    // The container holds none of the image's cleartext.
    const container = await readFile(target);
    expect(container.includes(content.subarray(1000, 1064))).toBe(false);
  });

  it('pads a tiny image up to the smallest vault, zeros after the image', async () => {
    const { path, content } = await makeImage('tiny.img', 10_000);
    const target = join(dir, 'tiny.vol');
    await importImage(path, target, { secret: await password(), costLevel });
    const volume = await readVolume(target, await password());
    expect(volume.length).toBe(MIN_DATA_BYTES);
    expect(volume.subarray(0, content.length).equals(content)).toBe(true);
    expect(volume.subarray(content.length).every((byte) => byte === 0)).toBe(true);
  });

  it('writes every sector of a sparse image, so its holes read back as zeros', async () => {
    const path = join(dir, 'sparse.img');
    const size = 16 * 2 ** 20;
    await writeFile(path, 'start');
    await truncate(path, size);
    const handle = await open(path, 'r+');
    await handle.write(Buffer.from('end'), 0, 3, size - 3);
    await handle.close();
    const target = join(dir, 'sparse.vol');
    await importImage(path, target, { secret: await password(), costLevel });
    const volume = await readVolume(target, await password());
    expect(volume.subarray(0, 5).toString()).toBe('start');
    expect(volume.subarray(size - 3).toString()).toBe('end');
    expect(volume.subarray(5, size - 3).every((byte) => byte === 0)).toBe(true);
  });

  it('refuses an existing target without force, and an empty image or a directory', async () => {
    const { path } = await makeImage('small.img', 100_000);
    const target = join(dir, 'exists.vol');
    await writeFile(target, 'keep me');
    const exists = await errorOf(importImage(path, target, { secret: await password(), costLevel }));
    expect(isVaultError(exists, 'EXISTS')).toBe(true);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    await importImage(path, target, { secret: await password(), costLevel, force: true });
    expect((await stat(target)).size).toBe(MIN_DATA_BYTES + OVERHEAD_BYTES);

    // Not even with force may the target be the image itself (it would be destroyed).
    const same = await errorOf(importImage(path, path, { secret: await password(), costLevel, force: true }));
    expect(isVaultError(same, 'USAGE')).toBe(true);
    expect((await stat(path)).size).toBe(100_000);

    const empty = join(dir, 'empty.img');
    await writeFile(empty, '');
    expect(isVaultError(await errorOf(inspectImage(empty)), 'USAGE')).toBe(true);
    expect(isVaultError(await errorOf(inspectImage(dir)), 'USAGE')).toBe(true);
    expect(isVaultError(await errorOf(inspectImage(join(dir, 'none.img'))), 'NOT_FOUND')).toBe(true);
  });

  it('an abort in the middle leaves no vault and no temporary file', async () => {
    const { path } = await makeImage('abort.img', 8 * IMAGE_CHUNK_BYTES);
    const target = join(dir, 'abort.vol');
    const controller = new AbortController();
    const before = await readdir(dir);
    const error = await errorOf(
      importImage(path, target, {
        secret: await password(),
        costLevel,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= 3 * IMAGE_CHUNK_BYTES) controller.abort();
        },
      }),
    );
    expect(isVaultError(error, 'INTERRUPTED')).toBe(true);
    expect(await readdir(dir)).toEqual(before);
  });
});

describe('exportImage', () => {
  it('gives back the imported image byte for byte, holes left as holes, mode 0600', async () => {
    const size = 8 * IMAGE_CHUNK_BYTES;
    const { path, content } = await makeImage('round.img', size);
    const vaultPath = join(dir, 'round.vol');
    await importImage(path, vaultPath, { secret: await password(), costLevel });
    const vaultBytes = await readFile(vaultPath);
    const out = join(dir, 'round.out.img');
    const result = await exportImage(vaultPath, await password(), out, { costLevel });
    expect(result.size).toBe(size);
    expect((await readFile(out)).equals(content)).toBe(true);
    const info = await stat(out);
    expect(info.mode & 0o777).toBe(0o600);
    // The all-zero chunks between the data at the start and at the end were not written.
    expect(result.sparseBytes).toBeGreaterThanOrEqual(3 * IMAGE_CHUNK_BYTES);
    expect(info.blocks * 512).toBeLessThan(size);
    // Exporting opens read-only: the vault is untouched.
    expect((await readFile(vaultPath)).equals(vaultBytes)).toBe(true);
  });

  it('tells the caller when it reads a backup header or a file left by an interrupted resize', async () => {
    const { path, content } = await makeImage('warn.img', 2 * IMAGE_CHUNK_BYTES);
    const vaultPath = join(dir, 'warn.vol');
    await importImage(path, vaultPath, { secret: await password(), costLevel });
    const healthy: string[] = [];
    await exportImage(vaultPath, await password(), join(dir, 'warn-healthy.img'), {
      costLevel,
      onWarning: (message) => healthy.push(message),
    });
    expect(healthy).toEqual([]);

    // A flipped byte in the primary header's sealed body: the backup copy is used.
    const handle = await open(vaultPath, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 3000);
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, 3000);
    await handle.close();
    const damaged: string[] = [];
    const out = join(dir, 'warn-damaged.img');
    await exportImage(vaultPath, await password(), out, {
      costLevel,
      onWarning: (message) => damaged.push(message),
    });
    expect(damaged).toEqual([
      'primary header damaged, using the backup; a repair rewrites it from the backup',
    ]);
    expect((await readFile(out)).equals(content)).toBe(true);

    // A file longer than its layout (resize interrupted after growing it), streamed.
    const grown = join(dir, 'warn-grown.vol');
    await importImage(path, grown, { secret: await password(), costLevel });
    await truncate(grown, (await stat(grown)).size + IMAGE_CHUNK_BYTES);
    const streamed: string[] = [];
    const chunks: Buffer[] = [];
    await streamImage(grown, await password(), async (chunk) => void chunks.push(Buffer.from(chunk)), {
      costLevel,
      onWarning: (message) => streamed.push(message),
    });
    expect(streamed).toEqual([
      'the vault file is longer than its volume (an interrupted resize); resizing it again finishes the job',
    ]);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('streams the same bytes through a writer', async () => {
    const { path, content } = await makeImage('stream.img', 3 * IMAGE_CHUNK_BYTES + 4096);
    const vaultPath = join(dir, 'stream.vol');
    await importImage(path, vaultPath, { secret: await password(), costLevel });
    const chunks: Buffer[] = [];
    await streamImage(vaultPath, await password(), async (chunk) => void chunks.push(Buffer.from(chunk)), {
      costLevel,
    });
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('refuses an existing output without force, a wrong password, and leaves nothing when aborted', async () => {
    const { path } = await makeImage('refuse.img', 6 * IMAGE_CHUNK_BYTES);
    const vaultPath = join(dir, 'refuse.vol');
    await importImage(path, vaultPath, { secret: await password(), costLevel });
    const out = join(dir, 'refuse.out.img');
    await writeFile(out, 'keep me');
    expect(
      isVaultError(await errorOf(exportImage(vaultPath, await password(), out, { costLevel })), 'EXISTS'),
    ).toBe(true);
    expect(await readFile(out, 'utf8')).toBe('keep me');

    const fresh = join(dir, 'fresh.out.img');
    const wrong = await errorOf(exportImage(vaultPath, await password('wrong'), fresh, { costLevel }));
    expect(isVaultError(wrong, 'CANNOT_UNLOCK')).toBe(true);

    const before = await readdir(dir);
    const controller = new AbortController();
    const aborted = await errorOf(
      exportImage(vaultPath, await password(), fresh, {
        costLevel,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= 2 * IMAGE_CHUNK_BYTES) controller.abort();
        },
      }),
    );
    expect(isVaultError(aborted, 'INTERRUPTED')).toBe(true);
    expect(await readdir(dir)).toEqual(before);

    const onto = await errorOf(
      exportImage(vaultPath, await password(), vaultPath, { costLevel, force: true }),
    );
    expect(isVaultError(onto, 'USAGE')).toBe(true);
    await openVault(vaultPath, await password(), { costLevel }).then((vault) => vault.close());

    await exportImage(vaultPath, await password(), out, { costLevel, force: true });
    expect((await readFile(out)).equals(await readFile(path))).toBe(true);
  });
});

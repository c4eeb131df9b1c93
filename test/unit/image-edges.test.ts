// The edges of src/container/image.ts that image.test.ts leaves open: importVolume (the migration path
// from LUKS/VeraCrypt, here from an in-memory BlockDevice), the exact refusals users read, an image that
// shrinks while it is imported, no descriptor (and so no key) left open, a zero tail that still gives a
// full-size image, and a real block device (a loop device over a temporary file) as the export target.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../src/container/block-device.js';
import {
  exportImage,
  IMAGE_CHUNK_BYTES,
  importImage,
  importVolume,
  inspectImage,
  pipeline,
  refuseSameFile,
  streamImage,
} from '../../src/container/image.js';
import { isVaultError, openVault, Secret, type VaultError } from '../../src/container/index.js';
import { MIN_DATA_BYTES, OVERHEAD_BYTES } from '../../src/container/layout.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { findTool } from '../../src/host/process.js';
import { refusal } from '../tools/refusal.js';
import { allZero } from '../tools/zero.js';

const costLevel = MIN_COST_LEVEL;
let dir: string;

const password = (text = 'correct horse') => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function failure(promise: Promise<unknown>, code: string): Promise<VaultError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  if (!isVaultError(error) || error.code !== code) throw new Error(`expected ${code}, got ${String(error)}`);
  return error;
}

async function readVolume(path: string): Promise<Buffer> {
  const vault = await openVault(path, await password(), { costLevel, readOnly: true });
  try {
    const volume = Buffer.alloc(vault.size);
    await vault.readAt(volume, 0);
    return volume;
  } finally {
    await vault.close();
  }
}

/** A BlockDevice over a buffer (what importVolume gets from an opened LUKS or VeraCrypt volume). */
function memoryDevice(bytes: Buffer, size = bytes.length): BlockDevice & { reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  return {
    size,
    readOnly: true,
    reads,
    async readAt(plain, offset) {
      if (offset < 0 || offset + plain.length > size) throw new Error(`read past the device: ${offset}`);
      reads.push([offset, plain.length]);
      Buffer.from(plain.buffer, plain.byteOffset, plain.length).set(
        bytes.subarray(offset, offset + plain.length),
      );
    },
    async writeAt() {
      throw new Error('the source is only read');
    },
    async flush() {},
    async close() {},
  };
}

const openDescriptors = async () => (await readdir('/proc/self/fd')).length;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-image-edges-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;

describe('importVolume', () => {
  it('copies the volume, then zeros up to the sector boundary and the smallest vault', async () => {
    for (const size of [10_000, 2 * IMAGE_CHUNK_BYTES + 777]) {
      const bytes = randomBytes(size);
      const source = memoryDevice(bytes);
      const target = join(dir, `volume-${size}.vol`);
      const progress: Array<[number, number]> = [];
      const result = await importVolume(source, target, {
        secret: await password(),
        costLevel,
        onProgress: (done, total) => progress.push([done, total]),
      });
      const dataSize = Math.max(MIN_DATA_BYTES, Math.ceil(size / 4096) * 4096);
      expect(result).toEqual({ imageSize: size, dataSize, fileSize: dataSize + OVERHEAD_BYTES });
      expect((await stat(target)).size).toBe(dataSize + OVERHEAD_BYTES);
      const volume = await readVolume(target);
      expect(volume.length).toBe(dataSize);
      expect(volume.subarray(0, size).equals(bytes)).toBe(true);
      expect(volume.subarray(size).every((byte) => byte === 0)).toBe(true);
      expect(progress.at(0)).toEqual([0, dataSize]);
      expect(progress.at(-1)).toEqual([dataSize, dataSize]);
      // Never read past the source's end, and every byte of it read exactly once.
      expect(source.reads.reduce((sum, [, length]) => sum + length, 0)).toBe(size);
    }
  });

  it('refuses an existing target without force, keeps it, and replaces it with force', async () => {
    const target = join(dir, 'volume-exists.vol');
    await writeFile(target, 'keep me');
    const bytes = randomBytes(5000);
    const source = memoryDevice(bytes);
    const error = await failure(
      importVolume(source, target, { secret: await password(), costLevel }),
      'EXISTS',
    );
    expect(error.message).toContain(target);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    await importVolume(source, target, { secret: await password(), costLevel, force: true });
    expect((await readVolume(target)).subarray(0, 5000).equals(bytes)).toBe(true);
  });

  it('refuses a volume larger than a vault can be, before creating anything', async () => {
    const target = join(dir, 'volume-huge.vol');
    const error = await failure(
      importVolume(memoryDevice(Buffer.alloc(0), 2 ** 53 + 4096), target, {
        secret: await password(),
        costLevel,
      }),
      'USAGE',
    );
    expect(error.message).toBe('the volume is larger than a vault can be (8 PiB)');
    expect(existsSync(target)).toBe(false);
  });

  it('an abort leaves no vault behind', async () => {
    const target = join(dir, 'volume-abort.vol');
    const controller = new AbortController();
    const before = await readdir(dir);
    const error = await failure(
      importVolume(memoryDevice(randomBytes(4 * IMAGE_CHUNK_BYTES)), target, {
        secret: await password(),
        costLevel,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= IMAGE_CHUNK_BYTES) controller.abort();
        },
      }),
      'INTERRUPTED',
    );
    expect(error.message).toBe('interrupted; the partial vault was removed');
    expect(await readdir(dir)).toEqual(before);
  });
});

describe('importImage: what the user reads, and an image that changes underneath', () => {
  it('names the image in every refusal, with its hint', async () => {
    const fifo = join(dir, 'not-a-file');
    execFileSync('mkfifo', [fifo]);
    const notImage = await failure(inspectImage(fifo), 'USAGE');
    expect(notImage.message).toBe(`not a disk image or block device: ${fifo}`);
    expect(notImage.hint).toBe(
      'give a raw image file (e.g. made with dd) or a block device such as /dev/sdb1',
    );
    const empty = join(dir, 'empty.img');
    await writeFile(empty, '');
    const isEmpty = await failure(inspectImage(empty), 'USAGE');
    expect(isEmpty.message).toBe(`the image is empty: ${empty}`);
    expect(isEmpty.hint).toBe('give a raw image that holds a volume');
    await writeFile(empty, 'x');
    expect(await inspectImage(empty)).toEqual({ size: 1, kind: 'file' });

    const same = await failure(
      importImage(empty, empty, { secret: await password(), costLevel, force: true }),
      'USAGE',
    );
    expect(same.message).toBe(`the image and the new vault must be different files: ${empty}`);
    expect(same.hint).toBe('give another output name');
    await refuseSameFile(empty, join(dir, 'missing'), 'x');
    await refuseSameFile(join(dir, 'missing'), empty, 'x');
  });

  // mknod needs root (CI runs as root); a developer's unit run without root skips these two.
  it.skipIf(!isRoot)(
    'a block device is inspected as one (its size comes from the kernel, not from stat)',
    async () => {
      // A device node of our own for a major number no driver has (240, local use): nothing can be read or written.
      const node = join(dir, 'no-such-device');
      execFileSync('mknod', [node, 'b', '240', '0']);
      const error = await failure(inspectImage(node), 'IO');
      expect(error.message).toBe(`cannot find the size of the block device ${node}`);
    },
  );

  it('an image that shrinks while being imported fails with IO and leaves no vault', async () => {
    const path = join(dir, 'shrinking.img');
    await writeFile(path, randomBytes(4 * IMAGE_CHUNK_BYTES));
    const target = join(dir, 'shrinking.vol');
    const before = await readdir(dir);
    let cut = false;
    const error = await failure(
      importImage(path, target, {
        secret: await password(),
        costLevel,
        onProgress: (done) => {
          if (done >= IMAGE_CHUNK_BYTES && !cut) {
            cut = true;
            execFileSync('truncate', ['-s', String(2 * IMAGE_CHUNK_BYTES + 100), path]);
          }
        },
      }),
      'IO',
    );
    expect(error.message).toBe(
      `the image ${path} ended early (at ${2 * IMAGE_CHUNK_BYTES + 100} bytes): it changed while being imported`,
    );
    expect(error.hint).toBe('make sure nothing writes to the image, then run the command again');
    expect(await readdir(dir)).toEqual(before);
  });

  it('closes the image and the new vault: no descriptor is left open', async () => {
    const path = join(dir, 'fds.img');
    await writeFile(path, randomBytes(100_000));
    const before = await openDescriptors();
    await importImage(path, join(dir, 'fds.vol'), { secret: await password(), costLevel });
    await exportImage(join(dir, 'fds.vol'), await password(), join(dir, 'fds.out'), { costLevel });
    await streamImage(join(dir, 'fds.vol'), await password(), async () => {}, { costLevel });
    expect(await openDescriptors()).toBe(before);
  });
});

describe('exportImage', () => {
  let vaultPath: string;
  let content: Buffer;
  beforeAll(async () => {
    // Data at the start, zeros at the end: the last chunks are holes in the output.
    content = Buffer.alloc(3 * IMAGE_CHUNK_BYTES);
    randomBytes(IMAGE_CHUNK_BYTES + 10).copy(content);
    const image = join(dir, 'tail.img');
    await writeFile(image, content);
    vaultPath = join(dir, 'tail.vol');
    await importImage(image, vaultPath, { secret: await password(), costLevel });
  });

  it('an image ending in zeros still has the full size', async () => {
    const out = join(dir, 'tail.out');
    const result = await exportImage(vaultPath, await password(), out, { costLevel });
    expect(result).toEqual({ size: content.length, sparseBytes: IMAGE_CHUNK_BYTES });
    expect((await stat(out)).size).toBe(content.length);
    expect((await readFile(out)).equals(content)).toBe(true);
    const streamed: Buffer[] = [];
    expect(
      await streamImage(
        vaultPath,
        await password(),
        async (chunk) => void streamed.push(Buffer.from(chunk)),
        {
          costLevel,
        },
      ),
    ).toEqual({ size: content.length, sparseBytes: 0 });
    expect(Buffer.concat(streamed).equals(content)).toBe(true);
  });

  it('reads while another process has the vault open for writing, and changes nothing', async () => {
    const writer = await openVault(vaultPath, await password(), { costLevel });
    try {
      const out = join(dir, 'while-open.out');
      await exportImage(vaultPath, await password(), out, { costLevel });
      expect((await readFile(out)).equals(content)).toBe(true);
    } finally {
      await writer.close();
    }
  });

  it('a warning without an onWarning callback is no error', async () => {
    const damaged = join(dir, 'damaged.vol');
    await writeFile(damaged, await readFile(vaultPath));
    const handle = await open(damaged, 'r+');
    await handle.write(Buffer.from([0x55]), 0, 1, 3000);
    await handle.close();
    const out = join(dir, 'damaged.out');
    await exportImage(damaged, await password(), out, { costLevel });
    expect((await readFile(out)).equals(content)).toBe(true);
    const chunks: Buffer[] = [];
    await streamImage(damaged, await password(), async (chunk) => void chunks.push(Buffer.from(chunk)), {
      costLevel,
    });
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('what the user reads: onto the vault itself, and an abort', async () => {
    const onto = await failure(
      exportImage(vaultPath, await password(), vaultPath, { costLevel, force: true }),
      'USAGE',
    );
    expect(onto.message).toBe(`the vault and the image must be different files: ${vaultPath}`);
    const controller = new AbortController();
    const aborted = await failure(
      exportImage(vaultPath, await password(), join(dir, 'aborted.out'), {
        costLevel,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= IMAGE_CHUNK_BYTES) controller.abort();
        },
      }),
      'INTERRUPTED',
    );
    expect(aborted.message).toBe('interrupted; the partial image was removed');
    const streamController = new AbortController();
    const streamAborted = await failure(
      streamImage(vaultPath, await password(), async () => streamController.abort(), {
        costLevel,
        signal: streamController.signal,
      }),
      'INTERRUPTED',
    );
    expect(streamAborted.message).toBe('interrupted; the output is incomplete');
  });

  it.skipIf(!isRoot)('refuses a block device without force, before opening the vault', async () => {
    const node = join(dir, 'device-node');
    execFileSync('mknod', [node, 'b', '240', '1']);
    const error = await failure(
      exportImage(vaultPath, await password('wrong'), node, { costLevel }),
      'EXISTS',
    );
    expect(error.message).toBe(`${node} is a block device: writing the image over it destroys what it holds`);
    expect(error.hint).toBe('force it to write the image onto the device');
    expect(error.reason).toBe('export-onto-device');
    // With force it is a device to write, not a file to replace: its size is asked (and cannot be had).
    await failure(exportImage(vaultPath, await password(), node, { costLevel, force: true }), 'IO');
    expect((await stat(node)).isBlockDevice()).toBe(true);
  });

  const canLoop = isRoot && findTool('losetup') !== null && existsSync('/dev/loop-control');

  it.skipIf(!canLoop)(
    'writes onto a block device in place, and refuses one smaller than the volume',
    async () => {
      // One device exactly the volume's size, one 4 KiB larger, one 4 KiB smaller.
      const exact = join(dir, 'device.img');
      await writeFile(exact, Buffer.alloc(content.length, 0xee));
      const backing = join(dir, 'larger-device.img');
      await writeFile(backing, Buffer.alloc(content.length + 4096, 0xee));
      const small = join(dir, 'small-device.img');
      await writeFile(small, Buffer.alloc(content.length - 4096, 0xee));
      const loops: string[] = [];
      try {
        for (const file of [exact, backing, small]) {
          loops.push(execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim());
        }
        const [exactDevice, device, smallDevice] = loops as [string, string, string];
        const descriptors = await openDescriptors();
        expect(
          await exportImage(vaultPath, await password(), exactDevice, { costLevel, force: true }),
        ).toEqual({
          size: content.length,
          sparseBytes: 0,
        });
        expect(await openDescriptors()).toBe(descriptors);
        execFileSync('blockdev', ['--flushbufs', exactDevice]);
        expect((await readFile(exact)).equals(content)).toBe(true);

        const result = await exportImage(vaultPath, await password(), device, { costLevel, force: true });
        expect(result).toEqual({ size: content.length, sparseBytes: 0 });
        execFileSync('blockdev', ['--flushbufs', device]);
        const written = await readFile(backing);
        // Every byte written (zeros too), the rest of the device untouched.
        expect(written.subarray(0, content.length).equals(content)).toBe(true);
        expect(written.subarray(content.length).every((byte) => byte === 0xee)).toBe(true);

        const controller = new AbortController();
        const aborted = await failure(
          exportImage(vaultPath, await password(), device, {
            costLevel,
            force: true,
            signal: controller.signal,
            onProgress: (done) => {
              if (done >= IMAGE_CHUNK_BYTES) controller.abort();
            },
          }),
          'INTERRUPTED',
        );
        expect(aborted.message).toBe(`interrupted; ${device} holds a partial image`);

        const tooSmall = await failure(
          exportImage(vaultPath, await password(), smallDevice, { costLevel, force: true }),
          'USAGE',
        );
        expect(tooSmall.message).toBe(
          `the device ${smallDevice} (${content.length - 4096} bytes) is smaller than the volume (${content.length} bytes)`,
        );
        expect(tooSmall.hint).toBe('choose a larger device, or export to a file');
        expect((await readFile(small)).every((byte) => byte === 0xee)).toBe(true);
      } finally {
        for (const loop of loops) execFileSync('losetup', ['--detach', loop]);
      }
    },
  );
});

describe('the read-ahead of import and export (pipeline)', () => {
  it('wipes both chunk buffers once done (either side may be secret)', async () => {
    const used = new Set<Buffer>();
    await pipeline(
      3 * IMAGE_CHUNK_BYTES,
      async (buffer) => {
        used.add(buffer.fill(0xa5));
        return buffer;
      },
      async () => {},
      {},
      'stopped',
    );
    expect(used.size).toBe(2);
    for (const buffer of used) expect(allZero(buffer)).toBe(true);
  });

  it('a failed write waits for the read in flight, then wipes its buffer', async () => {
    const late: Buffer[] = [];
    const error = await refusal(
      pipeline(
        3 * IMAGE_CHUNK_BYTES,
        async (buffer, offset) => {
          if (offset === 0) return buffer.fill(0xa5);
          await new Promise((resolve) => setTimeout(resolve, 30));
          late.push(buffer.fill(0x5a));
          return buffer;
        },
        async () => {
          throw new Error('write failed');
        },
        {},
        'stopped',
      ),
    );
    expect(String(error)).toBe('Error: write failed');
    // The read of the second chunk had finished when the pipeline gave up, and its cleartext is gone.
    expect(late).toHaveLength(1);
    expect(allZero(late[0])).toBe(true);
  });

  it('a read that fails while the previous chunk is still being written is its error, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const collect = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', collect);
    try {
      const written: number[] = [];
      const error = await pipeline(
        3 * IMAGE_CHUNK_BYTES,
        async (buffer, offset) => {
          if (offset > 0) throw new Error(`read at ${offset} failed`);
          return buffer;
        },
        async (_chunk, offset) => {
          // Slower than the failing read, which starts just before this write.
          await new Promise((resolve) => setTimeout(resolve, 50));
          written.push(offset);
        },
        {},
        'stopped',
      ).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(String(error)).toBe(`Error: read at ${IMAGE_CHUNK_BYTES} failed`);
      expect(written).toEqual([0]);
      // Node reports an unhandled rejection once a microtask turn passes without a handler.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', collect);
    }
  });
});

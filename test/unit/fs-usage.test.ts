// How far into a volume exFAT and FAT12/16/32 reach (src/container/fs-usage.ts), on plain image files
// made by the real mkfs tools and filled by real writers (mcopy, exfat-fuse on a loop device). The
// property that matters for a hidden volume: no byte the filesystem wrote lies past the used end.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import { measureFilesystem, type ReadVolume } from '../../src/container/fs-usage.js';
import { findTool } from '../../src/host/process.js';

const MiB = 2 ** 20;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-fs-usage-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const haveMtools = findTool('mcopy') !== null;
const canLoopMount =
  process.getuid?.() === 0 && findTool('mount.exfat-fuse') !== null && existsSync('/dev/fuse');

/** A sparse image of `bytes` formatted by `mkfs`. */
async function image(name: string, bytes: number, mkfs: string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, bytes);
  execFileSync(mkfs[0] as string, [...mkfs.slice(1), path], { stdio: 'ignore' });
  return path;
}

/** A reader over an image in memory that also checks every read stays inside the volume. */
function memoryReader(bytes: Buffer): ReadVolume & { largestRead: number } {
  const reader = Object.assign(
    async (offset: number, length: number) => {
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        throw new Error(`read outside the volume: ${offset}+${length}`);
      }
      reader.largestRead = Math.max(reader.largestRead, length);
      return bytes.subarray(offset, offset + length);
    },
    { largestRead: 0 },
  );
  return reader;
}

async function measure(path: string) {
  const bytes = await readFile(path);
  return measureFilesystem(memoryReader(bytes), bytes.length);
}

/** Offset of the last non-zero byte + 1: how far the tools actually wrote into a zeroed image. */
function writtenEnd(bytes: Buffer): number {
  for (let at = bytes.length - 1; at >= 0; at--) if (bytes[at] !== 0) return at + 1;
  return 0;
}

async function randomFile(name: string, bytes: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.from(Array.from({ length: bytes }, (_, index) => (index * 7 + 1) % 251 || 1)));
  return path;
}

describe('FAT12/16/32 (mkfs.vfat, mcopy)', () => {
  for (const [type, size, args] of [
    ['fat12', 4 * MiB, ['mkfs.vfat', '-F', '12']],
    ['fat16', 64 * MiB, ['mkfs.vfat', '-F', '16']],
    ['fat32', 64 * MiB, ['mkfs.vfat', '-F', '32']],
  ] as const) {
    it(`${type}: an empty filesystem uses only its start`, async () => {
      const path = await image(`empty-${type}.img`, size, [...args]);
      const usage = await measure(path);
      expect(usage).toMatchObject({ filesystem: type, filesystemBytes: size });
      if (usage.filesystem === 'other') return;
      expect(usage.usedEnd).toBeLessThan(Math.min(size / 4, 2 * MiB));
      expect(writtenEnd(await readFile(path))).toBeLessThanOrEqual(usage.usedEnd);
    });

    it.skipIf(!haveMtools)(`${type}: written files move the used end, and nothing lies past it`, async () => {
      const path = await image(`files-${type}.img`, size, [...args]);
      const before = await measure(path);
      const payload = type === 'fat12' ? MiB : 5 * MiB;
      const source = await randomFile(`payload-${type}`, payload);
      execFileSync('mcopy', ['-i', path, source, '::/a.bin']);
      execFileSync('mcopy', ['-i', path, source, '::/b.bin']);
      const after = await measure(path);
      if (before.filesystem === 'other' || after.filesystem === 'other') throw new Error('not measured');
      expect(after.usedEnd).toBeGreaterThanOrEqual(before.usedEnd + 2 * payload);
      expect(writtenEnd(await readFile(path))).toBeLessThanOrEqual(after.usedEnd);
      // A deleted file frees its clusters: the used end moves back to the first file.
      execFileSync('mdel', ['-i', path, '::/b.bin']);
      const deleted = await measure(path);
      if (deleted.filesystem === 'other') throw new Error('not measured');
      expect(deleted.usedEnd).toBeLessThan(after.usedEnd - payload / 2);
    });
  }
});

describe('exFAT (mkfs.exfat, exfat-fuse)', () => {
  it('an empty filesystem uses only its start', async () => {
    const path = await image('empty.exfat', 64 * MiB, ['mkfs.exfat']);
    const usage = await measure(path);
    expect(usage).toMatchObject({ filesystem: 'exfat', filesystemBytes: 64 * MiB });
    if (usage.filesystem === 'other') return;
    expect(usage.usedEnd).toBeLessThan(4 * MiB);
    expect(writtenEnd(await readFile(path))).toBeLessThanOrEqual(usage.usedEnd);
  });

  it('larger clusters and a larger volume', async () => {
    const path = await image('big.exfat', 512 * MiB, ['mkfs.exfat', '-c', '128K']);
    const usage = await measure(path);
    expect(usage).toMatchObject({ filesystem: 'exfat', filesystemBytes: 512 * MiB });
    if (usage.filesystem === 'other') return;
    expect(usage.usedEnd).toBeLessThan(64 * MiB);
    expect(writtenEnd(await readFile(path))).toBeLessThanOrEqual(usage.usedEnd);
  });

  it.skipIf(!canLoopMount)('written files move the used end, and nothing lies past it', async () => {
    const path = await image('files.exfat', 64 * MiB, ['mkfs.exfat']);
    const before = await measure(path);
    const source = await randomFile('payload-exfat', 5 * MiB);
    const mountpoint = join(dir, 'exfat-mnt');
    await mkdir(mountpoint, { recursive: true });
    const loop = execFileSync('losetup', ['--find', '--show', path], { encoding: 'utf8' }).trim();
    try {
      execFileSync('mount.exfat-fuse', [loop, mountpoint], { stdio: 'ignore' });
      try {
        execFileSync('cp', [source, join(mountpoint, 'a.bin')]);
        execFileSync('cp', [source, join(mountpoint, 'b.bin')]);
      } finally {
        execFileSync('umount', [mountpoint]);
      }
    } finally {
      execFileSync('losetup', ['--detach', loop]);
    }
    const after = await measure(path);
    if (before.filesystem === 'other' || after.filesystem === 'other') throw new Error('not measured');
    expect(after.usedEnd).toBeGreaterThanOrEqual(before.usedEnd + 10 * MiB);
    expect(writtenEnd(await readFile(path))).toBeLessThanOrEqual(after.usedEnd);
  });
});

describe('other filesystems and damaged ones', () => {
  it('names ext4 and gives up on it; a blank volume holds no filesystem', async () => {
    const ext4 = await image('ext4.img', 16 * MiB, ['mkfs.ext4', '-q', '-F']);
    expect(await measure(ext4)).toEqual({ filesystem: 'other', name: 'ext4' });
    const blank = join(dir, 'blank.img');
    await writeFile(blank, Buffer.alloc(MiB));
    expect(await measure(blank)).toEqual({ filesystem: 'other', name: null });
  });

  /** Measures `bytes` after `damage` edited its boot sector; returns the error message. */
  async function damagedMessage(path: string, damage: (boot: Buffer) => void): Promise<string> {
    const bytes = Buffer.from(await readFile(path));
    damage(bytes);
    const error = await measureFilesystem(memoryReader(bytes), bytes.length).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isVaultError(error, 'USAGE'), String(error)).toBe(true);
    return (error as Error).message;
  }

  it('refuses a damaged exFAT boot sector, FAT chain or bitmap with a clear error', async () => {
    const path = await image('damaged.exfat', 16 * MiB, ['mkfs.exfat']);
    expect(await damagedMessage(path, (b) => b.writeUInt8(20, 108))).toMatch(
      /exfat .*damaged.*bytes per sector/,
    );
    expect(await damagedMessage(path, (b) => b.writeUInt8(30, 109))).toMatch(/sectors per cluster/);
    expect(await damagedMessage(path, (b) => b.writeBigUInt64LE(2n ** 60n, 72))).toMatch(/larger than/);
    expect(await damagedMessage(path, (b) => b.writeUInt32LE(0xffffffff, 92))).toMatch(/clusters/);
    expect(await damagedMessage(path, (b) => b.writeUInt32LE(0, 96))).toMatch(/root directory/);
    expect(await damagedMessage(path, (b) => b.writeUInt32LE(1, 84))).toMatch(/FAT/);
    // The root directory's first cluster without its allocation bitmap entry.
    expect(
      await damagedMessage(path, (b) => {
        const heap = b.readUInt32LE(88) * 2 ** b.readUInt8(108);
        const clusterBytes = 2 ** (b.readUInt8(108) + b.readUInt8(109));
        const root = heap + (b.readUInt32LE(96) - 2) * clusterBytes;
        for (let at = root; at < root + clusterBytes; at += 32) if (b[at] === 0x81) b[at] = 0x01;
      }),
    ).toMatch(/no allocation bitmap/);
  });

  it('refuses a damaged FAT boot sector with a clear error', async () => {
    const path = await image('damaged.vfat', 16 * MiB, ['mkfs.vfat', '-F', '16']);
    expect(await damagedMessage(path, (b) => b.writeUInt16LE(1000, 11))).toMatch(
      /vfat .*damaged.*per sector/,
    );
    expect(await damagedMessage(path, (b) => b.writeUInt8(3, 13))).toMatch(/sectors per cluster/);
    expect(
      await damagedMessage(path, (b) => {
        b.writeUInt16LE(0, 22);
        b.writeUInt32LE(0, 36);
      }),
    ).toMatch(/FAT of size 0/);
    expect(
      await damagedMessage(path, (b) => {
        b.writeUInt16LE(0, 19);
        b.writeUInt32LE(0xffffffff, 32);
      }),
    ).toMatch(/larger than the volume/);
  });

  it('random damage to a boot sector gives a result or a clear error, never a crash or a huge read', async () => {
    const exfat = await readFile(await image('fuzz.exfat', 8 * MiB, ['mkfs.exfat']));
    const vfat = await readFile(await image('fuzz.vfat', 8 * MiB, ['mkfs.vfat']));
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (useExfat, edits) => {
          const bytes = Buffer.from(useExfat ? exfat : vfat);
          for (const [at, value] of edits) bytes[at] = value;
          const reader = memoryReader(bytes);
          try {
            const usage = await measureFilesystem(reader, bytes.length);
            if (usage.filesystem !== 'other') expect(usage.usedEnd).toBeLessThanOrEqual(bytes.length);
          } catch (error) {
            expect(isVaultError(error, 'USAGE'), String(error)).toBe(true);
          }
          expect(reader.largestRead).toBeLessThanOrEqual(32 * MiB);
        },
      ),
      { numRuns: 300 },
    );
  });
});

it('reads through any reader, e.g. a file handle', async () => {
  const path = await image('handle.exfat', 16 * MiB, ['mkfs.exfat']);
  const handle = await open(path, 'r');
  try {
    const usage = await measureFilesystem(async (offset, length) => {
      const bytes = Buffer.alloc(length);
      await handle.read(bytes, 0, length, offset);
      return bytes;
    }, 16 * MiB);
    expect(usage.filesystem).toBe('exfat');
  } finally {
    await handle.close();
  }
});

// Exact figures from src/container/fs-usage.ts on exFAT and FAT volumes built byte by byte here, so
// that every limit of the boot-sector checks and every step of the FAT/bitmap scan is pinned: the used
// end decides where a hidden volume may start, one cluster too few overwrites the outer files.
// (fs-usage.test.ts checks the same code against images made by the real mkfs tools.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVaultError, type VaultError } from '../../src/container/errors.js';
import { filesystemName, measureFilesystem, type ReadVolume } from '../../src/container/fs-usage.js';

const MiB = 2 ** 20;
const END = 0xffffffff;

/** A volume of `size` bytes, zero but for `regions`; reads outside it fail, every read is logged. */
function sparse(
  size: number,
  regions: Array<[number, Buffer]>,
): ReadVolume & { reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  const reader = async (offset: number, length: number) => {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > size) {
      throw new Error(`read outside the volume: ${offset}+${length}`);
    }
    reads.push([offset, length]);
    const bytes = Buffer.alloc(length);
    for (const [at, data] of regions) {
      const from = Math.max(at, offset);
      const to = Math.min(at + data.length, offset + length);
      if (from < to) data.copy(bytes, from - offset, from - at, to - at);
    }
    return bytes;
  };
  return Object.assign(reader, { reads });
}

async function damage(promise: Promise<unknown>): Promise<VaultError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  if (!isVaultError(error, 'USAGE')) throw new Error(`expected a USAGE error, got ${String(error)}`);
  return error;
}

// ---- exFAT --------------------------------------------------------------------------------------

interface ExfatSpec {
  sectorShift?: number;
  clusterShift?: number;
  clusterCount: number;
  fatCount?: number;
  fatOffset?: number;
  fatLength?: number;
  heapOffset?: number;
  volumeSectors?: number;
  /** Cluster of the root directory (default: right after the bitmap). */
  rootCluster?: number;
  /** The bitmap's clusters in chain order (default: contiguous from cluster 2). */
  bitmapClusters?: number[];
  /** Chain the bitmap with free FAT entries ("contiguous") instead of explicit links. */
  contiguous?: boolean;
  bitmapLength?: number;
  /** Bits (cluster index from 0 = cluster 2) set in the bitmap. */
  used: number[];
  /** Raw bitmap bytes set after `used` (e.g. bits past the cluster count). */
  rawBitmap?: Array<[number, number]>;
  /** A second bitmap (TexFAT) with these bits, stored after the root directory. */
  second?: number[];
  volumeBytes?: number;
  edit?: (boot: Buffer) => void;
  extraRoot?: (root: Buffer) => void;
  /** FAT entries set after the defaults: [cluster, value]. */
  links?: Array<[number, number]>;
  /** Fill the rest of the bitmap's last cluster (past the bitmap's length) with this byte. */
  trailing?: number;
}

function exfat(spec: ExfatSpec) {
  const sectorShift = spec.sectorShift ?? 9;
  const clusterShift = spec.clusterShift ?? 0;
  const sectorBytes = 2 ** sectorShift;
  const clusterBytes = sectorBytes * 2 ** clusterShift;
  const { clusterCount } = spec;
  const fatCount = spec.fatCount ?? 1;
  const fatOffset = spec.fatOffset ?? 24;
  const fatLength = spec.fatLength ?? Math.ceil(((clusterCount + 2) * 4) / sectorBytes);
  const heapOffset = spec.heapOffset ?? fatOffset + fatLength * fatCount;
  const volumeSectors = spec.volumeSectors ?? heapOffset + clusterCount * 2 ** clusterShift;
  const bitmapBytes = Math.ceil(clusterCount / 8);
  const bitmapClusters =
    spec.bitmapClusters ?? Array.from({ length: Math.ceil(bitmapBytes / clusterBytes) }, (_, i) => 2 + i);
  const rootCluster = spec.rootCluster ?? Math.max(...bitmapClusters) + 1;
  const secondCluster = rootCluster + 1;
  const heapBytes = heapOffset * sectorBytes;
  const clusterAt = (cluster: number) => heapBytes + (cluster - 2) * clusterBytes;

  const boot = Buffer.alloc(512);
  boot.write('EXFAT   ', 3, 'latin1');
  boot.writeBigUInt64LE(BigInt(volumeSectors), 72);
  boot.writeUInt32LE(fatOffset, 80);
  boot.writeUInt32LE(fatLength, 84);
  boot.writeUInt32LE(heapOffset, 88);
  boot.writeUInt32LE(clusterCount, 92);
  boot.writeUInt32LE(rootCluster, 96);
  boot.writeUInt8(sectorShift, 108);
  boot.writeUInt8(clusterShift, 109);
  boot.writeUInt8(fatCount, 110);
  boot.writeUInt16LE(0xaa55, 510);
  spec.edit?.(boot);

  const highest = Math.max(secondCluster, ...bitmapClusters, ...(spec.links ?? []).map(([c]) => c)) + 2;
  const fat = Buffer.alloc(Math.min(highest * 4, fatLength * sectorBytes));
  const setFat = (cluster: number, value: number) => {
    if (cluster * 4 + 4 <= fat.length) fat.writeUInt32LE(value >>> 0, cluster * 4);
  };
  setFat(0, 0xfffffff8);
  setFat(1, END);
  bitmapClusters.forEach((cluster, i) => {
    const next = bitmapClusters[i + 1];
    setFat(cluster, spec.contiguous ? 0 : (next ?? END));
  });
  setFat(rootCluster, END);
  setFat(secondCluster, END);
  for (const [cluster, value] of spec.links ?? []) setFat(cluster, value);

  const bitmap = (bits: number[]) => {
    const bytes = Buffer.alloc(bitmapBytes);
    for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] as number) | (1 << (bit & 7));
    return bytes;
  };
  const first = bitmap(spec.used);
  for (const [at, value] of spec.rawBitmap ?? []) first[at] = value;

  const root = Buffer.alloc(clusterBytes);
  root.writeUInt8(0x83, 0); // volume label
  root.writeUInt8(0x81, 32);
  root.writeUInt32LE(bitmapClusters[0] as number, 32 + 20);
  root.writeBigUInt64LE(BigInt(spec.bitmapLength ?? bitmapBytes), 32 + 24);
  root.writeUInt8(0x82, 64); // up-case table
  let next = 96;
  if (spec.second) {
    root.writeUInt8(0x81, next);
    root.writeUInt32LE(secondCluster, next + 20);
    root.writeBigUInt64LE(BigInt(bitmapBytes), next + 24);
    next += 32;
  }
  // Past the end of the directory (type 0): an entry that would be refused if it were read.
  root.writeUInt8(0x81, next + 32);
  root.writeBigUInt64LE(2n ** 63n, next + 32 + 24);
  spec.extraRoot?.(root);

  const regions: Array<[number, Buffer]> = [
    [0, boot],
    [fatOffset * sectorBytes, fat],
    [clusterAt(rootCluster), root],
  ];
  bitmapClusters.forEach((cluster, i) => {
    const part = first.subarray(i * clusterBytes, (i + 1) * clusterBytes);
    if (spec.trailing !== undefined && part.length < clusterBytes) {
      regions.push([clusterAt(cluster), Buffer.alloc(clusterBytes, spec.trailing)]);
    }
    regions.push([clusterAt(cluster), part]);
  });
  if (spec.second) regions.push([clusterAt(secondCluster), bitmap(spec.second)]);
  const volumeBytes = spec.volumeBytes ?? volumeSectors * sectorBytes;
  return {
    read: sparse(volumeBytes, regions),
    volumeBytes,
    heapBytes,
    clusterBytes,
    filesystemBytes: volumeSectors * sectorBytes,
    /** The used end when `bit` is the last cluster index in use. */
    endOf: (bit: number) => heapBytes + (bit + 1) * clusterBytes,
  };
}

async function measureExfat(spec: ExfatSpec) {
  const volume = exfat(spec);
  return { volume, usage: await measureFilesystem(volume.read, volume.volumeBytes) };
}

async function exfatError(spec: ExfatSpec): Promise<VaultError> {
  const volume = exfat(spec);
  return damage(measureFilesystem(volume.read, volume.volumeBytes));
}

describe('exFAT: the used end is the end of the last allocated cluster', () => {
  it('an empty bitmap: the used end is the start of the cluster heap', async () => {
    const { volume, usage } = await measureExfat({ clusterCount: 100, used: [] });
    expect(usage).toEqual({
      filesystem: 'exfat',
      usedEnd: volume.heapBytes,
      filesystemBytes: volume.filesystemBytes,
    });
  });

  it('pins the used end for the first, a middle and the last cluster', async () => {
    for (const bit of [0, 1, 7, 8, 9, 50, 98, 99]) {
      const { volume, usage } = await measureExfat({ clusterCount: 100, used: [0, bit] });
      expect(usage, `bit ${bit}`).toMatchObject({ usedEnd: volume.endOf(bit) });
    }
  });

  it('any set of bits: the highest one counts (4 KiB clusters, 4096-byte sectors too)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5000 }),
        fc.constantFrom([9, 0], [9, 3], [12, 0], [10, 2]),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (clusterCount, [sectorShift, clusterShift], picks) => {
          const used = picks.map((pick) => pick % clusterCount);
          const { volume, usage } = await measureExfat({
            clusterCount,
            sectorShift: sectorShift as number,
            clusterShift: clusterShift as number,
            used,
          });
          const expected = used.length === 0 ? volume.heapBytes : volume.endOf(Math.max(...used));
          expect(usage).toEqual({
            filesystem: 'exfat',
            usedEnd: expected,
            filesystemBytes: volume.filesystemBytes,
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ignores bits past the cluster count in the last bitmap byte', async () => {
    const { volume, usage } = await measureExfat({
      clusterCount: 13,
      used: [3],
      rawBitmap: [[1, 0xe0 | 0x02]],
    });
    // Byte 1 holds clusters 8..12 (bits 0..4); bits 5..7 are past the count. Bit 1 = cluster index 9.
    expect(usage).toMatchObject({ usedEnd: volume.endOf(9) });
    const last = await measureExfat({ clusterCount: 13, used: [12] });
    expect(last.usage).toMatchObject({ usedEnd: last.volume.endOf(12) });
    const none = await measureExfat({ clusterCount: 13, used: [], rawBitmap: [[1, 0xe0]] });
    expect(none.usage).toMatchObject({ usedEnd: none.volume.heapBytes });
  });

  it('follows a bitmap over several clusters, linked or contiguous, to its last cluster', async () => {
    // 512-byte clusters, 10000 clusters: a 1250-byte bitmap in 3 clusters.
    for (const spec of [
      { bitmapClusters: [2, 3, 4] },
      { bitmapClusters: [2, 3, 4], contiguous: true },
      { bitmapClusters: [9, 5, 7], rootCluster: 3 },
    ]) {
      for (const bit of [5, 4100, 8200, 9999]) {
        const { volume, usage } = await measureExfat({ clusterCount: 10000, used: [1, bit], ...spec });
        expect(usage, `${JSON.stringify(spec)} bit ${bit}`).toMatchObject({ usedEnd: volume.endOf(bit) });
      }
    }
  });

  it('a contiguous bitmap that ends at the last cluster of the heap is read to there and no further', async () => {
    const { volume, usage } = await measureExfat({
      clusterCount: 10000,
      bitmapClusters: [9999, 10000, 10001],
      contiguous: true,
      rootCluster: 2,
      used: [9998],
    });
    expect(usage).toMatchObject({ usedEnd: volume.endOf(9998) });
  });

  it('a bitmap cluster larger than the 1 MiB scan chunk is scanned to its start', async () => {
    // 2 MiB clusters and 12 Mi clusters: a 1.5 MiB bitmap in one cluster, scanned in two chunks.
    const clusterCount = 12 * MiB;
    for (const bit of [0, 9, 800 * 8 + 3, MiB * 8 - 1, MiB * 8, clusterCount - 1]) {
      const { volume, usage } = await measureExfat({ clusterCount, clusterShift: 12, used: [bit] });
      expect(usage, `bit ${bit}`).toMatchObject({ usedEnd: volume.endOf(bit) });
      expect(Math.max(...volume.read.reads.map(([, length]) => length))).toBeLessThanOrEqual(2 * MiB);
    }
  });

  it('with two allocation bitmaps (TexFAT), the higher used end of both', async () => {
    const a = await measureExfat({ clusterCount: 200, fatCount: 2, used: [10], second: [150] });
    expect(a.usage).toMatchObject({ usedEnd: a.volume.endOf(150) });
    const b = await measureExfat({ clusterCount: 200, fatCount: 2, used: [150], second: [10] });
    expect(b.usage).toMatchObject({ usedEnd: b.volume.endOf(150) });
  });

  it('accepts every limit exactly at its edge', async () => {
    const ok = async (spec: ExfatSpec) => {
      const { volume, usage } = await measureExfat(spec);
      expect(usage, JSON.stringify(spec)).toMatchObject({
        filesystem: 'exfat',
        usedEnd: volume.endOf(Math.max(...spec.used)),
      });
    };
    await ok({ clusterCount: 64, sectorShift: 12, used: [3] });
    await ok({ clusterCount: 64, sectorShift: 9, clusterShift: 16, used: [3] });
    await ok({ clusterCount: 64, fatOffset: 24, used: [3] });
    await ok({ clusterCount: 126, fatLength: 1, used: [3] }); // (126 + 2) * 4 = 512 bytes
    await ok({ clusterCount: 64, fatCount: 2, used: [3] });
    await ok({ clusterCount: 64, rootCluster: 65, used: [3] });
    await ok({ clusterCount: 64, used: [63], bitmapLength: 8 });
    await ok({ clusterCount: 64, used: [5], bitmapLength: Number.MAX_SAFE_INTEGER });
  });
});

describe('exFAT: chain limits and what lies past the bitmap', () => {
  it('a bitmap that fills its clusters exactly is read whole', async () => {
    // 8192 clusters: a 1024-byte bitmap in exactly two 512-byte clusters.
    const { volume, usage } = await measureExfat({ clusterCount: 8192, used: [8191] });
    expect(usage).toMatchObject({ usedEnd: volume.endOf(8191) });
  });

  it('bytes past the bitmap in its last cluster are not bitmap', async () => {
    // 10000 clusters: 1250 bytes, the last cluster holds 226 of them and 286 bytes of something else.
    const { volume, usage } = await measureExfat({ clusterCount: 10000, used: [40], trailing: 0xff });
    expect(usage).toMatchObject({ usedEnd: volume.endOf(40) });
  });

  it('a root directory is followed for at most 256 MiB', async () => {
    // 32 MiB clusters: 8 root clusters are the limit; the link after the 8th (past the heap) is not read.
    const links: Array<[number, number]> = [];
    for (let cluster = 3; cluster < 10; cluster++) links.push([cluster, cluster + 1]);
    links.push([10, 100]);
    const { volume, usage } = await measureExfat({
      clusterCount: 64,
      clusterShift: 16,
      rootCluster: 3,
      links,
      used: [5],
    });
    expect(usage).toMatchObject({ usedEnd: volume.endOf(5) });
  });
});

/** The refusal of a damaged outer filesystem, word for word: what is wrong and which fsck checks it. */
function expectDamaged(error: VaultError, type: 'exfat' | 'vfat', detail: string): void {
  expect(error.message).toBe(
    `the ${type} filesystem of the outer volume looks damaged (${detail}); cannot tell which part of it is free`,
  );
  expect(error.hint).toBe(`check it first with fsck.${type} -n on the volume`);
  expect(error.reason).toBe('outer-filesystem-damaged');
  expect(error.details).toEqual({ fsck: `fsck.${type}` });
}

describe('exFAT: a damaged boot sector, FAT or bitmap is refused, naming what is wrong', () => {
  const refused = async (spec: ExfatSpec, detail: string) => {
    expectDamaged(await exfatError(spec), 'exfat', detail);
  };

  it('the boot sector fields', async () => {
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeUInt16LE(0xaa54, 510) },
      'the boot sector has no 55 AA signature',
    );
    await refused({ clusterCount: 64, used: [], edit: (b) => b.writeUInt8(8, 108) }, 'bytes per sector 2^8');
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeUInt8(13, 108) },
      'bytes per sector 2^13',
    );
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeUInt8(17, 109) },
      'sectors per cluster 2^17',
    );
    await refused(
      { clusterCount: 64, sectorShift: 12, used: [], edit: (b) => b.writeUInt8(14, 109) },
      'sectors per cluster 2^14',
    );
    await refused(
      { clusterCount: 64, used: [], volumeBytes: 4096 * 8 },
      'it claims to be larger than the volume',
    );
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeBigUInt64LE(2n ** 53n, 72) },
      'it claims to be larger than the volume',
    );
    await refused({ clusterCount: 64, used: [], edit: (b) => b.writeUInt8(0, 110) }, '0 FATs');
    await refused({ clusterCount: 64, used: [], edit: (b) => b.writeUInt8(3, 110) }, '3 FATs');
    await refused({ clusterCount: 64, used: [], edit: (b) => b.writeUInt32LE(0, 92) }, '0 clusters');
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeUInt32LE(0xfffffff6, 92) },
      '4294967286 clusters',
    );
    await refused({ clusterCount: 64, used: [], fatOffset: 23 }, 'the FAT is misplaced');
    await refused({ clusterCount: 127, fatLength: 1, used: [] }, 'the FAT is misplaced');
    await refused(
      { clusterCount: 64, fatCount: 2, heapOffset: 24 + 2 - 1, used: [] },
      'the cluster heap overlaps the FAT',
    );
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeBigUInt64LE(b.readBigUInt64LE(72) - 1n, 72) },
      'the cluster heap ends beyond the filesystem',
    );
    await refused(
      {
        clusterCount: 64,
        clusterShift: 3,
        used: [],
        edit: (b) => b.writeBigUInt64LE(b.readBigUInt64LE(72) - 1n, 72),
      },
      'the cluster heap ends beyond the filesystem',
    );
    await refused({ clusterCount: 64, rootCluster: 1, used: [] }, 'the root directory is misplaced');
    await refused(
      { clusterCount: 64, used: [], edit: (b) => b.writeUInt32LE(66, 96) },
      'the root directory is misplaced',
    );
  });

  it('the chains and the bitmap', async () => {
    // The bitmap chain links to a cluster past the heap.
    await refused(
      { clusterCount: 10000, bitmapClusters: [2, 3, 10002], rootCluster: 5, used: [] },
      'the allocation bitmap leaves the cluster heap',
    );
    await refused(
      { clusterCount: 10000, bitmapClusters: [2, 3, 1], rootCluster: 5, used: [] },
      'the allocation bitmap leaves the cluster heap',
    );
    await refused(
      { clusterCount: 64, used: [], bitmapLength: 7 },
      'the allocation bitmap is shorter than the cluster count',
    );
    await refused(
      { clusterCount: 64, used: [], bitmapLength: 2 ** 53 },
      'the allocation bitmap has an impossible size',
    );
    // A bitmap of 3 clusters whose chain ends after 2.
    await refused(
      { clusterCount: 10000, bitmapClusters: [2, 3], rootCluster: 6, used: [] },
      'the allocation bitmap chain ends early',
    );
    await refused(
      { clusterCount: 64, used: [], extraRoot: (root) => root.writeUInt8(0x01, 32) },
      'no allocation bitmap in the root directory',
    );
  });
});

// ---- FAT12/16/32 -------------------------------------------------------------------------------

interface FatSpec {
  clusterCount: number;
  sectorBytes?: number;
  sectorsPerCluster?: number;
  reserved?: number;
  fatCount?: number;
  rootEntries?: number;
  fatSectors?: number;
  /** cluster -> FAT entry value */
  entries?: Array<[number, number]>;
  volumeBytes?: number;
  edit?: (boot: Buffer) => void;
}

function fatType(clusterCount: number) {
  return clusterCount < 4085 ? 'fat12' : clusterCount < 65525 ? 'fat16' : 'fat32';
}

function fatVolume(spec: FatSpec) {
  const type = fatType(spec.clusterCount);
  const bits = type === 'fat12' ? 12 : type === 'fat16' ? 16 : 32;
  const sectorBytes = spec.sectorBytes ?? 512;
  const sectorsPerCluster = spec.sectorsPerCluster ?? 1;
  const reserved = spec.reserved ?? (type === 'fat32' ? 32 : 1);
  const fatCount = spec.fatCount ?? 2;
  const rootEntries = spec.rootEntries ?? (type === 'fat32' ? 0 : 512);
  const fatSectors = spec.fatSectors ?? Math.ceil(((spec.clusterCount + 2) * bits) / 8 / sectorBytes);
  const rootSectors = Math.ceil((rootEntries * 32) / sectorBytes);
  const firstDataSector = reserved + fatCount * fatSectors + rootSectors;
  const totalSectors = firstDataSector + spec.clusterCount * sectorsPerCluster;

  const boot = Buffer.alloc(512);
  boot.set([0xeb, 0x3c, 0x90], 0);
  boot.writeUInt16LE(sectorBytes, 11);
  boot.writeUInt8(sectorsPerCluster, 13);
  boot.writeUInt16LE(reserved, 14);
  boot.writeUInt8(fatCount, 16);
  boot.writeUInt16LE(rootEntries, 17);
  if (totalSectors < 0x10000) boot.writeUInt16LE(totalSectors, 19);
  else boot.writeUInt32LE(totalSectors, 32);
  if (type === 'fat32') {
    boot.writeUInt32LE(fatSectors, 36);
    boot.write('FAT32   ', 82, 'latin1');
  } else {
    boot.writeUInt16LE(fatSectors, 22);
    boot.write(`${type.toUpperCase()}   `, 54, 'latin1');
  }
  boot.writeUInt16LE(0xaa55, 510);
  spec.edit?.(boot);

  const fat = Buffer.alloc(Math.ceil(((spec.clusterCount + 2) * bits) / 8) + 2);
  const setEntry = (cluster: number, value: number) => {
    if (bits === 32) fat.writeUInt32LE(value, cluster * 4);
    else if (bits === 16) fat.writeUInt16LE(value, cluster * 2);
    else {
      const at = Math.floor((cluster * 3) / 2);
      const pair = fat.readUInt16LE(at);
      fat.writeUInt16LE(cluster % 2 === 0 ? (pair & 0xf000) | value : (pair & 0x000f) | (value << 4), at);
    }
  };
  // Entries 0 and 1 are reserved and never 0 (media byte, end-of-chain).
  setEntry(0, bits === 32 ? 0x0ffffff8 : bits === 16 ? 0xfff8 : 0xff8);
  setEntry(1, bits === 32 ? 0x0fffffff : bits === 16 ? 0xffff : 0xfff);
  for (const [cluster, value] of spec.entries ?? []) setEntry(cluster, value);

  const dataStart = firstDataSector * sectorBytes;
  const clusterBytes = sectorsPerCluster * sectorBytes;
  const volumeBytes = spec.volumeBytes ?? totalSectors * sectorBytes;
  return {
    type,
    read: sparse(volumeBytes, [
      [0, boot],
      [reserved * sectorBytes, fat],
    ]),
    volumeBytes,
    dataStart,
    filesystemBytes: totalSectors * sectorBytes,
    endOf: (cluster: number) => dataStart + (cluster - 1) * clusterBytes,
  };
}

describe('FAT12/16/32: the used end is the end of the highest cluster in use', () => {
  it('an empty FAT: the used end is the start of the data area', async () => {
    for (const clusterCount of [100, 5000, 70000]) {
      const volume = fatVolume({ clusterCount });
      expect(await measureFilesystem(volume.read, volume.volumeBytes)).toEqual({
        filesystem: volume.type,
        usedEnd: volume.dataStart,
        filesystemBytes: volume.filesystemBytes,
      });
    }
  });

  it('the cluster count alone decides the type, at both limits', async () => {
    for (const [clusterCount, type] of [
      [4084, 'fat12'],
      [4085, 'fat16'],
      [65524, 'fat16'],
      [65525, 'fat32'],
    ] as const) {
      const volume = fatVolume({ clusterCount, entries: [[clusterCount + 1, 0x0ff7]] });
      const usage = await measureFilesystem(volume.read, volume.volumeBytes);
      expect(usage).toEqual({
        filesystem: type,
        usedEnd: volume.endOf(clusterCount + 1),
        filesystemBytes: volume.filesystemBytes,
      });
    }
  });

  it('any entry value at any cluster, FAT12 odd and even entries included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(300, 4000, 9000, 66000),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 0xfff })), { maxLength: 4 }),
        fc.constantFrom(1, 4),
        async (clusterCount, picks, sectorsPerCluster) => {
          const entries = picks.map(([pick, value]): [number, number] => [2 + (pick % clusterCount), value]);
          const volume = fatVolume({ clusterCount, entries, sectorsPerCluster });
          const usage = await measureFilesystem(volume.read, volume.volumeBytes);
          const last = Math.max(0, ...entries.map(([cluster]) => cluster));
          expect(usage).toEqual({
            filesystem: volume.type,
            usedEnd: last === 0 ? volume.dataStart : volume.endOf(last),
            filesystemBytes: volume.filesystemBytes,
          });
        },
      ),
      { numRuns: 80 },
    );
  });

  it('FAT12 neighbours: a nibble of the next entry is not this entry', async () => {
    for (const [cluster, value] of [
      [10, 0x001],
      [10, 0x800],
      [11, 0x001],
      [11, 0x800],
      [2, 0x001],
      [3, 0x010],
    ] as const) {
      const volume = fatVolume({ clusterCount: 100, entries: [[cluster, value]] });
      expect(await measureFilesystem(volume.read, volume.volumeBytes), `${cluster}=${value}`).toMatchObject({
        usedEnd: volume.endOf(cluster),
      });
    }
  });

  it('a FAT32 larger than one scan batch (2^18 entries) is scanned back to its first clusters', async () => {
    const clusterCount = 2 ** 18 + 5000;
    for (const cluster of [2, 3, 100, 4999, 5002, 2 ** 18, clusterCount + 1]) {
      const volume = fatVolume({ clusterCount, entries: [[cluster, 0x0fffffff]] });
      expect(await measureFilesystem(volume.read, volume.volumeBytes), `cluster ${cluster}`).toMatchObject({
        filesystem: 'fat32',
        usedEnd: volume.endOf(cluster),
      });
    }
    // A FAT32 entry's top 4 bits are reserved: 0xf0000000 is a free entry.
    const reservedBits = fatVolume({
      clusterCount,
      entries: [
        [7, 1],
        [9000, 0xf0000000],
      ],
    });
    expect(await measureFilesystem(reservedBits.read, reservedBits.volumeBytes)).toMatchObject({
      usedEnd: reservedBits.endOf(7),
    });
  });

  it('larger sectors, clusters, several FATs and a minimal FAT', async () => {
    for (const spec of [
      { clusterCount: 3000, sectorBytes: 4096, sectorsPerCluster: 8, entries: [[2000, 0xfff]] },
      { clusterCount: 3000, sectorBytes: 1024, fatCount: 1, entries: [[3001, 0xfff]] },
      { clusterCount: 3000, sectorBytes: 2048, fatCount: 3, reserved: 5, entries: [[17, 0xfff]] },
      { clusterCount: 1, entries: [[2, 0xfff]] },
    ] as Array<FatSpec & { entries: Array<[number, number]> }>) {
      const volume = fatVolume(spec);
      expect(await measureFilesystem(volume.read, volume.volumeBytes), JSON.stringify(spec)).toMatchObject({
        usedEnd: volume.endOf((spec.entries[0] as [number, number])[0]),
        filesystemBytes: volume.filesystemBytes,
      });
    }
    // The FAT just large enough for its entries.
    // (1022 + 2) FAT12 entries are exactly 3 sectors.
    const tight = fatVolume({ clusterCount: 1022, entries: [[1023, 0xfff]], fatSectors: 3 });
    expect(tight.type).toBe('fat12');
    expect(await measureFilesystem(tight.read, tight.volumeBytes)).toMatchObject({
      usedEnd: tight.endOf(1023),
    });
  });
});

describe('FAT: a damaged boot sector is refused, naming what is wrong', () => {
  const refused = async (spec: FatSpec, detail: string) => {
    const volume = fatVolume(spec);
    expectDamaged(await damage(measureFilesystem(volume.read, volume.volumeBytes)), 'vfat', detail);
  };

  it('every field check', async () => {
    await refused({ clusterCount: 300, edit: (b) => b.writeUInt16LE(256, 11) }, '256 bytes per sector');
    await refused({ clusterCount: 300, edit: (b) => b.writeUInt8(0, 13) }, '0 sectors per cluster');
    await refused({ clusterCount: 300, edit: (b) => b.writeUInt8(6, 13) }, '6 sectors per cluster');
    await refused({ clusterCount: 300, edit: (b) => b.writeUInt16LE(0, 14) }, 'no reserved sectors');
    await refused({ clusterCount: 300, edit: (b) => b.writeUInt8(0, 16) }, 'no FAT');
    await refused({ clusterCount: 300, volumeBytes: 8192 }, 'it claims to be larger than the volume');
    await refused(
      { clusterCount: 300, edit: (b) => b.writeUInt16LE(1 + 2 * b.readUInt16LE(22) + 32, 19) },
      'its metadata fills the whole filesystem',
    );
    await refused({ clusterCount: 70000, rootEntries: 16 }, 'a FAT32 with a fixed root directory');
    await refused({ clusterCount: 1023, fatSectors: 3 }, 'the FAT is too small');
    await refused({ clusterCount: 5000, fatSectors: 19 }, 'the FAT is too small'); // needs 5002 * 2 bytes
    await refused({ clusterCount: 70000, fatSectors: 546 }, 'the FAT is too small'); // needs 70002 * 4 bytes
  });

  it('a boot sector without the FAT jump, signature or type label is not FAT', async () => {
    for (const edit of [
      (b: Buffer) => b.writeUInt8(0xea, 0),
      (b: Buffer) => b.writeUInt8(0x91, 2),
      (b: Buffer) => b.writeUInt16LE(0xaa56, 510),
      (b: Buffer) => b.write('XAT', 54, 'latin1'),
    ]) {
      const volume = fatVolume({ clusterCount: 300, edit });
      expect(await measureFilesystem(volume.read, volume.volumeBytes)).toEqual({
        filesystem: 'other',
        name: null,
      });
      expect(await filesystemName(volume.read, volume.volumeBytes)).toBeNull();
    }
    // The other jump (E9 xx xx) and the FAT32 label at 82 are FAT.
    const e9 = fatVolume({ clusterCount: 300, edit: (b) => b.set([0xe9, 0, 0], 0) });
    expect(await measureFilesystem(e9.read, e9.volumeBytes)).toMatchObject({ filesystem: 'fat12' });
    const label32 = fatVolume({ clusterCount: 70000, edit: (b) => b.write('NOTFAT', 54, 'latin1') });
    expect(await filesystemName(label32.read, label32.volumeBytes)).toBe('vfat');
  });
});

// ---- names ----------------------------------------------------------------------------------------

describe('filesystem names by magic number', () => {
  const named = (size: number, regions: Array<[number, Buffer]>) => {
    const read = sparse(size, regions);
    return Promise.all([filesystemName(read, size), measureFilesystem(read, size)]);
  };
  const ext = (compat: number, incompat: number): Array<[number, Buffer]> => {
    const superblock = Buffer.alloc(1024);
    superblock.writeUInt16LE(0xef53, 56);
    superblock.writeUInt32LE(compat, 92);
    superblock.writeUInt32LE(incompat, 96);
    return [[1024, superblock]];
  };

  it('names exfat, vfat, ext2/3/4, ntfs, xfs and btrfs', async () => {
    const ex = exfat({ clusterCount: 64, used: [] });
    expect(await filesystemName(ex.read, ex.volumeBytes)).toBe('exfat');
    const vfat = fatVolume({ clusterCount: 300 });
    expect(await filesystemName(vfat.read, vfat.volumeBytes)).toBe('vfat');
    const other = (name: string | null) => [name, { filesystem: 'other', name }];
    expect(await named(MiB, ext(0, 0x40))).toEqual(other('ext4'));
    expect(await named(MiB, ext(0x4, 0x200))).toEqual(other('ext4'));
    expect(await named(MiB, ext(0x4, 0x2))).toEqual(other('ext3'));
    expect(await named(MiB, ext(0x38, 0x2))).toEqual(other('ext2'));
    expect(await named(MiB, [[3, Buffer.from('NTFS    ', 'latin1')]])).toEqual(other('ntfs'));
    expect(await named(MiB, [[0, Buffer.from('XFSB', 'latin1')]])).toEqual(other('xfs'));
    const btrfs: Array<[number, Buffer]> = [[0x10040, Buffer.from('_BHRfS_M', 'latin1')]];
    expect(await named(MiB, btrfs)).toEqual(other('btrfs'));
    expect(await named(0x10048, btrfs)).toEqual(other('btrfs'));
    expect(await named(MiB, [[0x10040, Buffer.from('_BHRfS_N', 'latin1')]])).toEqual(other(null));
  });

  it('a volume too small for a magic number is read no further than it goes', async () => {
    const btrfs: Array<[number, Buffer]> = [[0x10040, Buffer.from('_BHRfS_M', 'latin1')]];
    // 0x10047 bytes cannot hold the btrfs magic: nothing is read there (the reader refuses it).
    expect(await named(0x10047, btrfs)).toEqual([null, { filesystem: 'other', name: null }]);
    const read = sparse(4095, [[3, Buffer.from('EXFAT   ', 'latin1')]]);
    expect(await filesystemName(read, 4095)).toBeNull();
    expect(await measureFilesystem(read, 4095)).toEqual({ filesystem: 'other', name: null });
    expect(read.reads).toEqual([]);
    const exact = sparse(4096, [[3, Buffer.from('NTFS    ', 'latin1')]]);
    expect(await filesystemName(exact, 4096)).toBe('ntfs');
    expect(await measureFilesystem(exact, 4096)).toEqual({ filesystem: 'other', name: 'ntfs' });
  });
});

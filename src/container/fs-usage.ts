// How far into a volume its filesystem reaches, for adding a hidden volume to an existing vault
// (docs/CLI.md "Hidden volumes"): exFAT and FAT12/16/32 keep all metadata at the start and record every
// allocated cluster, so the end of the last allocated cluster bounds every byte they use.
// Pure functions over a reader: they run on a vault or on a plain image file alike.
import { VaultError } from './errors.js';

/** Reads `length` bytes at `offset` of the volume (the caller keeps both inside the volume). */
export type ReadVolume = (offset: number, length: number) => Promise<Uint8Array>;

export type MeasuredFilesystem = 'exfat' | 'fat12' | 'fat16' | 'fat32';

export interface FilesystemUsage {
  filesystem: MeasuredFilesystem;
  /** Bytes from the start of the volume to the end of the last byte the filesystem uses. */
  usedEnd: number;
  /** Bytes the filesystem spans (it never touches anything beyond). */
  filesystemBytes: number;
}

/** A filesystem whose use of the volume cannot be bounded: `name` when recognised (e.g. "ext4"). */
export interface UnmeasuredFilesystem {
  filesystem: 'other';
  name: string | null;
}

/** Bytes read at a time when scanning an allocation bitmap from its end. */
const SCAN_CHUNK_BYTES = 1 << 20;
/** exFAT spec 6.2: no directory is larger than 256 MiB. */
const MAX_DIRECTORY_BYTES = 256 * 2 ** 20;
const EXFAT_END_OF_CHAIN = 0xffffffff;
const EXFAT_MAX_CLUSTERS = 0xfffffff5;

/**
 * Finds the filesystem at the start of a volume of `volumeBytes` and, for exFAT and FAT, where its
 * last used byte is. A damaged exFAT/FAT boot sector, FAT or bitmap is a VaultError USAGE naming it.
 */
export async function measureFilesystem(
  read: ReadVolume,
  volumeBytes: number,
): Promise<FilesystemUsage | UnmeasuredFilesystem> {
  if (volumeBytes < 4096) return { filesystem: 'other', name: null };
  const boot = Buffer.from(await read(0, 512));
  if (boot.toString('latin1', 3, 11) === 'EXFAT   ') return measureExfat(read, volumeBytes, boot);
  if (looksLikeFat(boot)) return measureFat(read, volumeBytes, boot);
  return { filesystem: 'other', name: await otherName(read, volumeBytes, boot) };
}

/**
 * The name of the filesystem at the start of a volume by its magic numbers alone (`vault info`):
 * exfat, vfat, ext2/3/4, ntfs, xfs, btrfs, or null when none is recognised. Reads at most 3 small blocks.
 */
export async function filesystemName(read: ReadVolume, volumeBytes: number): Promise<string | null> {
  if (volumeBytes < 4096) return null;
  const boot = Buffer.from(await read(0, 512));
  if (boot.toString('latin1', 3, 11) === 'EXFAT   ') return 'exfat';
  if (looksLikeFat(boot)) return 'vfat';
  return otherName(read, volumeBytes, boot);
}

// ---- exFAT (Microsoft exFAT specification, sections 3.1 and 7.1) --------------------------------

async function measureExfat(read: ReadVolume, volumeBytes: number, boot: Buffer): Promise<FilesystemUsage> {
  const damaged = (detail: string) => damagedError('exfat', detail);
  if (boot.readUInt16LE(510) !== 0xaa55) throw damaged('the boot sector has no 55 AA signature');
  const sectorShift = boot.readUInt8(108);
  const clusterShift = boot.readUInt8(109);
  if (sectorShift < 9 || sectorShift > 12) throw damaged(`bytes per sector 2^${sectorShift}`);
  if (clusterShift > 25 - sectorShift) throw damaged(`sectors per cluster 2^${clusterShift}`);
  const sectorBytes = 2 ** sectorShift;
  const clusterBytes = sectorBytes * 2 ** clusterShift;
  const volumeSectors = safeU64(boot, 72);
  const fatOffset = boot.readUInt32LE(80);
  const fatLength = boot.readUInt32LE(84);
  const heapOffset = boot.readUInt32LE(88);
  const clusterCount = boot.readUInt32LE(92);
  const rootCluster = boot.readUInt32LE(96);
  const fatCount = boot.readUInt8(110);
  if (volumeSectors === null || volumeSectors * sectorBytes > volumeBytes) {
    throw damaged('it claims to be larger than the volume');
  }
  if (fatCount !== 1 && fatCount !== 2) throw damaged(`${fatCount} FATs`);
  if (clusterCount === 0 || clusterCount > EXFAT_MAX_CLUSTERS) throw damaged(`${clusterCount} clusters`);
  if (fatOffset < 24 || fatLength * sectorBytes < (clusterCount + 2) * 4)
    throw damaged('the FAT is misplaced');
  if (heapOffset < fatOffset + fatLength * fatCount) throw damaged('the cluster heap overlaps the FAT');
  if (heapOffset + clusterCount * 2 ** clusterShift > volumeSectors) {
    throw damaged('the cluster heap ends beyond the filesystem');
  }
  if (rootCluster < 2 || rootCluster > clusterCount + 1) throw damaged('the root directory is misplaced');

  const heapBytes = heapOffset * sectorBytes;
  const clusterAt = (cluster: number) => heapBytes + (cluster - 2) * clusterBytes;
  const fat = new SectorCache(read, fatOffset * sectorBytes, fatLength * sectorBytes);
  const next = async (cluster: number): Promise<number> => fat.u32(cluster * 4);
  /** The clusters of a chain, at most `limit`; a free FAT entry inside it means "contiguous". */
  const chain = async (first: number, limit: number, what: string): Promise<number[]> => {
    const clusters: number[] = [];
    for (let cluster = first; clusters.length < limit; ) {
      if (cluster < 2 || cluster > clusterCount + 1) throw damaged(`the ${what} leaves the cluster heap`);
      clusters.push(cluster);
      const entry = await next(cluster);
      if (entry === EXFAT_END_OF_CHAIN) break;
      cluster = entry === 0 ? cluster + 1 : entry;
    }
    return clusters;
  };

  // The root directory lists the allocation bitmap(s): entry type 0x81.
  const bitmaps: Array<{ firstCluster: number; length: number }> = [];
  const rootClusters = await chain(rootCluster, MAX_DIRECTORY_BYTES / clusterBytes, 'root directory');
  scan: for (const cluster of rootClusters) {
    const entries = Buffer.from(await read(clusterAt(cluster), clusterBytes));
    for (let at = 0; at < entries.length; at += 32) {
      const type = entries.readUInt8(at);
      if (type === 0x00) break scan;
      if (type === 0x81) {
        const length = safeU64(entries, at + 24);
        if (length === null) throw damaged('the allocation bitmap has an impossible size');
        bitmaps.push({ firstCluster: entries.readUInt32LE(at + 20), length });
      }
    }
  }
  if (bitmaps.length === 0) throw damaged('no allocation bitmap in the root directory');

  const bitmapBytes = Math.ceil(clusterCount / 8);
  let lastUsed = -1; // index of the last allocated cluster, counted from 0 (= cluster 2)
  for (const bitmap of bitmaps) {
    if (bitmap.length < bitmapBytes) throw damaged('the allocation bitmap is shorter than the cluster count');
    const clusters = await chain(
      bitmap.firstCluster,
      Math.ceil(bitmapBytes / clusterBytes),
      'allocation bitmap',
    );
    if (clusters.length * clusterBytes < bitmapBytes) throw damaged('the allocation bitmap chain ends early');
    const extents = clusters.map((cluster, index) => ({
      offset: clusterAt(cluster),
      length: Math.min(clusterBytes, bitmapBytes - index * clusterBytes),
      firstByte: index * clusterBytes,
    }));
    lastUsed = Math.max(lastUsed, await lastSetBit(read, extents, clusterCount));
  }
  const usedEnd = lastUsed < 0 ? heapBytes : clusterAt(lastUsed + 2) + clusterBytes;
  return { filesystem: 'exfat', usedEnd, filesystemBytes: volumeSectors * sectorBytes };
}

/** The highest bit set among the first `bitCount` bits of a bitmap stored in `extents`; -1 when none. */
async function lastSetBit(
  read: ReadVolume,
  extents: Array<{ offset: number; length: number; firstByte: number }>,
  bitCount: number,
): Promise<number> {
  for (let index = extents.length - 1; index >= 0; index--) {
    const extent = extents[index] as { offset: number; length: number; firstByte: number };
    for (let end = extent.length; end > 0; end -= SCAN_CHUNK_BYTES) {
      const start = Math.max(0, end - SCAN_CHUNK_BYTES);
      const bytes = await read(extent.offset + start, end - start);
      for (let at = bytes.length - 1; at >= 0; at--) {
        const byteIndex = extent.firstByte + start + at;
        let byte = bytes[at] as number;
        // Bits past the last cluster are not clusters; ignore them.
        const bitsHere = Math.min(8, bitCount - byteIndex * 8);
        if (bitsHere < 8) byte &= (1 << bitsHere) - 1;
        if (byte !== 0) return byteIndex * 8 + (31 - Math.clz32(byte));
      }
    }
  }
  return -1;
}

// ---- FAT12/16/32 (Microsoft FAT specification, "fatgen103", sections 3 and 4) ------------------

function looksLikeFat(boot: Buffer): boolean {
  const jump = boot.readUInt8(0) === 0xe9 || (boot.readUInt8(0) === 0xeb && boot.readUInt8(2) === 0x90);
  const typeLabel =
    boot.toString('latin1', 54, 57) === 'FAT' || boot.toString('latin1', 82, 90) === 'FAT32   ';
  return jump && boot.readUInt16LE(510) === 0xaa55 && typeLabel;
}

async function measureFat(read: ReadVolume, volumeBytes: number, boot: Buffer): Promise<FilesystemUsage> {
  const damaged = (detail: string) => damagedError('vfat', detail);
  const sectorBytes = boot.readUInt16LE(11);
  const sectorsPerCluster = boot.readUInt8(13);
  const reservedSectors = boot.readUInt16LE(14);
  const fatCount = boot.readUInt8(16);
  const rootEntries = boot.readUInt16LE(17);
  const totalSectors = boot.readUInt16LE(19) || boot.readUInt32LE(32);
  const fatSectors = boot.readUInt16LE(22) || boot.readUInt32LE(36);
  if (![512, 1024, 2048, 4096].includes(sectorBytes)) throw damaged(`${sectorBytes} bytes per sector`);
  if (sectorsPerCluster === 0 || (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0) {
    throw damaged(`${sectorsPerCluster} sectors per cluster`);
  }
  if (reservedSectors === 0) throw damaged('no reserved sectors');
  if (fatCount === 0) throw damaged('no FAT');
  if (fatSectors === 0) throw damaged('a FAT of size 0');
  if (totalSectors * sectorBytes > volumeBytes) throw damaged('it claims to be larger than the volume');
  const rootSectors = Math.ceil((rootEntries * 32) / sectorBytes);
  const firstDataSector = reservedSectors + fatCount * fatSectors + rootSectors;
  if (firstDataSector >= totalSectors) throw damaged('its metadata fills the whole filesystem');
  const clusterCount = Math.floor((totalSectors - firstDataSector) / sectorsPerCluster);
  // fatgen103 section 3.5: the cluster count alone decides the FAT type.
  const filesystem: MeasuredFilesystem =
    clusterCount < 4085 ? 'fat12' : clusterCount < 65525 ? 'fat16' : 'fat32';
  const entryBits = filesystem === 'fat12' ? 12 : filesystem === 'fat16' ? 16 : 32;
  if (filesystem === 'fat32' && rootEntries !== 0) throw damaged('a FAT32 with a fixed root directory');
  if (fatSectors * sectorBytes * 8 < (clusterCount + 2) * entryBits) throw damaged('the FAT is too small');

  // Scan the first FAT from its end, a batch of entries at a time (a batch is an even number of
  // entries, so a batch of FAT12's 1.5-byte entries starts and ends on whole bytes).
  const fatStart = reservedSectors * sectorBytes;
  const batchEntries = 2 ** 18;
  let lastUsed = 0; // the highest cluster number in use; 0 when none (clusters count from 2)
  for (let last = clusterCount + 1; last >= 2 && lastUsed === 0; last -= batchEntries) {
    const first = Math.max(0, last - batchEntries + 1);
    const base = Math.floor((first * entryBits) / 8);
    const end = Math.ceil(((last + 1) * entryBits) / 8);
    const bytes = Buffer.from(await read(fatStart + base, end - base));
    for (let cluster = last; cluster >= Math.max(2, first); cluster--) {
      if (fatEntry(bytes, cluster, base, filesystem) !== 0) {
        lastUsed = cluster;
        break;
      }
    }
  }
  const dataStart = firstDataSector * sectorBytes;
  const clusterBytes = sectorsPerCluster * sectorBytes;
  const usedEnd = lastUsed === 0 ? dataStart : dataStart + (lastUsed - 1) * clusterBytes;
  return { filesystem, usedEnd, filesystemBytes: totalSectors * sectorBytes };
}

/** FAT entry `cluster` from `bytes`, which hold the FAT from byte `base` on. */
function fatEntry(bytes: Buffer, cluster: number, base: number, filesystem: MeasuredFilesystem): number {
  if (filesystem === 'fat32') return bytes.readUInt32LE(cluster * 4 - base) & 0x0fffffff;
  if (filesystem === 'fat16') return bytes.readUInt16LE(cluster * 2 - base);
  const at = Math.floor((cluster * 3) / 2) - base;
  const pair = bytes.readUInt16LE(at);
  return cluster % 2 === 0 ? pair & 0x0fff : pair >>> 4;
}

// ---- anything else --------------------------------------------------------------------------------

/** Names the filesystems people are likely to have; null for none or an unknown one. */
async function otherName(read: ReadVolume, volumeBytes: number, boot: Buffer): Promise<string | null> {
  if (boot.toString('latin1', 3, 11) === 'NTFS    ') return 'ntfs';
  if (boot.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  const superblock = Buffer.from(await read(1024, 1024));
  if (superblock.readUInt16LE(56) === 0xef53) {
    const compat = superblock.readUInt32LE(92);
    const incompat = superblock.readUInt32LE(96);
    // ext4 is the one with extents (0x40) or flex_bg (0x200); ext3 has a journal (compat 0x4).
    if (incompat & 0x240) return 'ext4';
    return compat & 0x4 ? 'ext3' : 'ext2';
  }
  if (volumeBytes >= 0x10040 + 8) {
    const btrfs = Buffer.from(await read(0x10040, 8));
    if (btrfs.toString('latin1') === '_BHRfS_M') return 'btrfs';
  }
  return null;
}

function damagedError(filesystem: string, detail: string): VaultError {
  return new VaultError(
    'USAGE',
    `the ${filesystem} filesystem of the outer volume looks damaged (${detail}); cannot tell which part of it is free`,
    `check it first with fsck.${filesystem === 'vfat' ? 'vfat' : 'exfat'} -n on the volume`,
    {
      reason: 'outer-filesystem-damaged',
      details: { fsck: `fsck.${filesystem === 'vfat' ? 'vfat' : 'exfat'}` },
    },
  );
}

/** A little-endian u64 as a number, or null when it does not fit exactly. */
function safeU64(bytes: Buffer, offset: number): number | null {
  const value = bytes.readBigUInt64LE(offset);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(value);
}

/** Reads 4-byte FAT entries through a cache of 4 KiB blocks (the chains followed are short and local). */
class SectorCache {
  #blocks = new Map<number, Buffer>();
  constructor(
    private readonly read: ReadVolume,
    private readonly base: number,
    private readonly length: number,
  ) {}

  async u32(offset: number): Promise<number> {
    const index = Math.floor(offset / 4096);
    let block = this.#blocks.get(index);
    if (!block) {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, when the cache is emptied changes memory use only
      if (this.#blocks.size >= 64) this.#blocks.clear();
      const start = index * 4096;
      block = Buffer.from(await this.read(this.base + start, Math.min(4096, this.length - start)));
      this.#blocks.set(index, block);
    }
    return block.readUInt32LE(offset % 4096);
  }
}

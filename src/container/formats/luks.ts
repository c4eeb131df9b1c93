// LUKS1 and LUKS2 containers (cryptsetup's on-disk formats), read far enough to unlock: the binary
// header(s), LUKS2's JSON metadata, PBKDF2/Argon2 keyslots, the AF merge and the digest check. The data
// area is then ordinary dm-crypt sectors (aes-xts-plain64, aes-cbc-essiv:sha256); see docs/FORMAT.md 10.
import { createHash, timingSafeEqual } from 'node:crypto';
import { freemem } from 'node:os';
import { afMerge, argon2, DIGEST_BYTES, type Prf, parsePrf, pbkdf2 } from '../../crypto/foreign-kdf.js';
import { wipe } from '../../crypto/random.js';
import { type SectorCipherSuite, sectorCipherSuite } from '../../crypto/suites.js';
import { VaultError } from '../errors.js';
import type { ContainerFile } from '../file.js';
import type { Secret } from '../secret.js';
import { cannotUnlockAny, type ForeignUnlock, type KdfDescription, unsupported } from './foreign.js';
import { LUKS_MAGIC } from './luks-magic.js';

const cannotUnlock = () => cannotUnlockAny(['luks']);

export { hasLuksMagic, LUKS_MAGIC } from './luks-magic.js';

const LUKS2_SECONDARY_MAGIC = Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]); // "SKUL\xba\xbe"
const IV_UNIT = 512;

// LUKS1 header (big-endian), cryptsetup's LUKS1 on-disk format specification.
const L1 = {
  version: 6,
  cipherName: 8,
  cipherMode: 40,
  hashSpec: 72,
  payloadOffset: 104,
  keyBytes: 108,
  mkDigest: 112,
  mkDigestSalt: 132,
  mkDigestIterations: 164,
  keyslots: 208,
  headerBytes: 592,
} as const;
const L1_SLOT_BYTES = 48;
const L1_SLOT_COUNT = 8;
const L1_SLOT_ACTIVE = 0x00ac71f3;
const L1_DIGEST_BYTES = 20;

// LUKS2 binary header (one 4096-byte sector per copy, then the JSON area).
const L2 = {
  version: 6,
  headerSize: 8,
  seqid: 16,
  checksumAlg: 72,
  headerOffset: 256,
  checksum: 448,
} as const;
const L2_BINARY_BYTES = 4096;
const L2_CHECKSUM_BYTES = 64;
/** Where cryptsetup looks for the secondary header when the primary is unreadable. */
const L2_SECONDARY_OFFSETS = [
  0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];
const L2_MAX_HEADER_BYTES = 4 << 20;

/** True when the file starts with the LUKS magic (either version). */
export async function unlockLuks(file: ContainerFile, secret: Secret): Promise<ForeignUnlock> {
  const fileSize = await file.size();
  if (fileSize < L2_BINARY_BYTES) throw cannotUnlock();
  const head = Buffer.alloc(L2_BINARY_BYTES);
  await file.read(head, 0);
  const passphrase = luksPassphrase(secret);
  const version = head.readUInt16BE(L1.version);
  if (head.subarray(0, 6).equals(LUKS_MAGIC) && version === 1)
    return unlockLuks1(file, head, fileSize, passphrase);
  return unlockLuks2(file, fileSize, passphrase);
}

/** cryptsetup's rule: the key file's bytes when one is given, else the password. */
function luksPassphrase(secret: Secret): Buffer {
  const foreign = secret.foreign;
  if (!foreign) throw new Error('LUKS needs the foreign secret parts (Secret.fromInputs with foreign)');
  if (foreign.keyfileCount > 1) {
    throw new VaultError(
      'USAGE',
      'a LUKS volume takes one keyfile (its bytes are the passphrase), not several',
      'give exactly one keyfile, or the password alone',
      { reason: 'luks-one-keyfile' },
    );
  }
  if (foreign.keyfileCount === 1 && !foreign.luksKeyfile) {
    throw new VaultError(
      'USAGE',
      "the keyfile is larger than 8 MiB (cryptsetup's limit)",
      'use the keyfile LUKS was made with',
    );
  }
  return foreign.luksKeyfile ?? foreign.password;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end === -1 ? bytes.length : end)).toString('latin1');
}

function suiteFor(cipher: string): SectorCipherSuite {
  const suite = sectorCipherSuite(cipher);
  if (!suite) {
    throw unsupported(
      `this LUKS volume uses the cipher ${cipher}, which vault does not open`,
      'vault opens LUKS volumes with aes-xts-plain64 or aes-cbc-essiv:sha256',
    );
  }
  return suite;
}

function prfFor(name: string): Prf {
  const prf = parsePrf(name);
  if (!prf || prf === 'whirlpool' || prf === 'blake2s-256') {
    throw unsupported(
      `this LUKS volume uses the hash ${name}, which vault does not support for LUKS`,
      'vault opens LUKS keyslots with sha1, sha256 or sha512',
    );
  }
  return prf;
}

/** Decrypts a keyslot's AF area (512-byte sectors, IV from 0) and merges it into a candidate key. */
async function openArea(
  file: ContainerFile,
  suite: SectorCipherSuite,
  slotKey: Buffer,
  areaOffset: number,
  keyBytes: number,
  stripes: number,
  hash: Prf,
  fileSize: number,
): Promise<Buffer> {
  const length = Math.ceil((keyBytes * stripes) / IV_UNIT) * IV_UNIT;
  if (areaOffset + length > fileSize) throw cannotUnlock();
  const area = Buffer.alloc(length);
  await file.read(area, areaOffset);
  const cipher = suite.create(slotKey, { sectorBytes: IV_UNIT, ivUnitBytes: IV_UNIT, ivOffset: 0 });
  try {
    cipher.decrypt(area, 0);
    return afMerge(area, keyBytes, stripes, hash);
  } finally {
    cipher.destroy();
    area.fill(0);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---- LUKS1 ----

async function unlockLuks1(
  file: ContainerFile,
  header: Buffer,
  fileSize: number,
  passphrase: Buffer,
): Promise<ForeignUnlock> {
  const cipher = `${cString(header.subarray(L1.cipherName, L1.cipherName + 32))}-${cString(header.subarray(L1.cipherMode, L1.cipherMode + 32))}`;
  const suite = suiteFor(cipher);
  const hash = prfFor(cString(header.subarray(L1.hashSpec, L1.hashSpec + 32)));
  const keyBytes = header.readUInt32BE(L1.keyBytes);
  if (!suite.keyBytes.includes(keyBytes)) {
    throw unsupported(
      `this LUKS1 volume has a ${keyBytes * 8}-bit key for ${cipher}`,
      'vault opens 256- and 512-bit XTS keys',
    );
  }
  const dataOffset = header.readUInt32BE(L1.payloadOffset) * IV_UNIT;
  const mkDigest = header.subarray(L1.mkDigest, L1.mkDigest + L1_DIGEST_BYTES);
  const mkSalt = header.subarray(L1.mkDigestSalt, L1.mkDigestSalt + 32);
  const mkIterations = header.readUInt32BE(L1.mkDigestIterations);
  if (dataOffset < L1.headerBytes || dataOffset >= fileSize) {
    throw new VaultError(
      'IO',
      'the LUKS1 header puts the data area outside the file (truncated or damaged)',
      'check the file; compare its size with the original',
    );
  }
  for (let slot = 0; slot < L1_SLOT_COUNT; slot++) {
    const at = L1.keyslots + slot * L1_SLOT_BYTES;
    if (header.readUInt32BE(at) !== L1_SLOT_ACTIVE) continue;
    const iterations = header.readUInt32BE(at + 4);
    const salt = header.subarray(at + 8, at + 40);
    const areaOffset = header.readUInt32BE(at + 40) * IV_UNIT;
    const stripes = header.readUInt32BE(at + 44);
    if (iterations < 1 || stripes < 1 || stripes > 100_000) continue;
    const slotKey = await pbkdf2(hash, passphrase, salt, iterations, keyBytes);
    let candidate: Buffer | null = null;
    try {
      candidate = await openArea(file, suite, slotKey, areaOffset, keyBytes, stripes, hash, fileSize);
      const digest = await pbkdf2(hash, candidate, mkSalt, mkIterations, L1_DIGEST_BYTES);
      if (sameBytes(digest, mkDigest)) {
        const masterKey = candidate;
        candidate = null;
        return {
          format: 'luks1',
          version: 1,
          masterKey,
          suite,
          layout: { sectorBytes: IV_UNIT, ivUnitBytes: IV_UNIT, ivOffset: 0 },
          dataOffset,
          dataSize: Math.floor((fileSize - dataOffset) / IV_UNIT) * IV_UNIT,
          kdf: { type: 'pbkdf2', hash, iterations },
          kind: 'normal',
          header: 'primary',
          keyslot: slot,
          notes: [],
        };
      }
    } catch (error) {
      if (error instanceof VaultError) throw error;
      // A slot whose key the cipher refuses (equal XTS halves) cannot be the right one.
    } finally {
      wipe(slotKey, candidate);
    }
  }
  throw cannotUnlock();
}

// ---- LUKS2 ----

interface Luks2Copy {
  offset: number;
  seqid: bigint;
  json: Luks2Json;
}

interface Luks2Json {
  keyslots?: Record<string, Luks2Keyslot>;
  segments?: Record<string, Luks2Segment>;
  digests?: Record<string, Luks2Digest>;
  tokens?: Record<string, { type?: string; keyslots?: string[] }>;
  config?: { requirements?: { mandatory?: string[] } };
}

interface Luks2Keyslot {
  type?: string;
  key_size?: number;
  af?: { type?: string; stripes?: number; hash?: string };
  area?: { type?: string; offset?: string; size?: string; encryption?: string; key_size?: number };
  kdf?: {
    type?: string;
    hash?: string;
    iterations?: number;
    time?: number;
    memory?: number;
    cpus?: number;
    salt?: string;
  };
}

interface Luks2Segment {
  type?: string;
  offset?: string;
  size?: string;
  iv_tweak?: string;
  encryption?: string;
  sector_size?: number;
  integrity?: unknown;
  flags?: string[];
}

interface Luks2Digest {
  type?: string;
  keyslots?: string[];
  segments?: string[];
  hash?: string;
  iterations?: number;
  salt?: string;
  digest?: string;
}

/** Reads and checks one LUKS2 header copy at `offset`; null when it is not a valid copy there. */
async function readLuks2Copy(
  file: ContainerFile,
  offset: number,
  fileSize: number,
  magic: Buffer,
): Promise<Luks2Copy | null> {
  if (offset + L2_BINARY_BYTES > fileSize) return null;
  const binary = Buffer.alloc(L2_BINARY_BYTES);
  await file.read(binary, offset);
  if (!binary.subarray(0, 6).equals(magic) || binary.readUInt16BE(L2.version) !== 2) return null;
  const headerSize = Number(binary.readBigUInt64BE(L2.headerSize));
  if (
    headerSize < 2 * L2_BINARY_BYTES ||
    headerSize > L2_MAX_HEADER_BYTES ||
    headerSize % L2_BINARY_BYTES !== 0
  )
    return null;
  if (Number(binary.readBigUInt64BE(L2.headerOffset)) !== offset) return null;
  if (offset + headerSize > fileSize) return null;
  const whole = Buffer.alloc(headerSize);
  await file.read(whole, offset);
  const algorithm = cString(whole.subarray(L2.checksumAlg, L2.checksumAlg + 32));
  const prf = parsePrf(algorithm);
  if (!prf || prf === 'whirlpool') return null;
  const stored = Buffer.from(whole.subarray(L2.checksum, L2.checksum + DIGEST_BYTES[prf]));
  whole.fill(0, L2.checksum, L2.checksum + L2_CHECKSUM_BYTES);
  const computed = createHash(prf === 'blake2s-256' ? 'blake2s256' : prf)
    .update(whole)
    .digest();
  if (!computed.equals(stored)) return null;
  const jsonText = cString(whole.subarray(L2_BINARY_BYTES));
  let json: Luks2Json;
  try {
    json = JSON.parse(jsonText) as Luks2Json;
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null) return null;
  return { offset, seqid: binary.readBigUInt64BE(L2.seqid), json };
}

async function unlockLuks2(
  file: ContainerFile,
  fileSize: number,
  passphrase: Buffer,
): Promise<ForeignUnlock> {
  const primary = await readLuks2Copy(file, 0, fileSize, LUKS_MAGIC);
  let secondary: Luks2Copy | null = null;
  for (const offset of L2_SECONDARY_OFFSETS) {
    secondary = await readLuks2Copy(file, offset, fileSize, LUKS2_SECONDARY_MAGIC);
    if (secondary) break;
  }
  const copies = [primary, secondary].filter((copy): copy is Luks2Copy => copy !== null);
  if (copies.length === 0) {
    throw new VaultError(
      'IO',
      'both LUKS2 header copies are damaged (checksum or structure)',
      'restore a header backup with cryptsetup luksHeaderRestore',
    );
  }
  // The newer valid copy wins; on equal sequence ids the primary.
  const chosen = copies.reduce((best, copy) => (copy.seqid > best.seqid ? copy : best));
  const notes: string[] = [];
  if (!primary) notes.push('the primary LUKS2 header is damaged; the secondary copy was used');
  else if (!secondary) notes.push('the secondary LUKS2 header is missing or damaged');
  else if (primary.seqid !== secondary.seqid)
    notes.push('the two LUKS2 header copies differ; the newer one was used');
  const { json } = chosen;

  const mandatory = json.config?.requirements?.mandatory ?? [];
  const keyslots = json.keyslots ?? {};
  if (mandatory.length > 0 || Object.values(keyslots).some((slot) => slot.type === 'reencrypt')) {
    throw unsupported(
      `this LUKS2 volume is being re-encrypted or needs features vault lacks (${mandatory.join(', ') || 'reencrypt keyslot'})`,
      'finish the re-encryption with cryptsetup reencrypt first',
    );
  }
  const segmentEntries = Object.entries(json.segments ?? {});
  if (segmentEntries.length !== 1) {
    throw unsupported(
      `this LUKS2 volume has ${segmentEntries.length} data segments`,
      'vault opens LUKS2 volumes with one crypt segment',
    );
  }
  const [segmentId, segment] = segmentEntries[0] as [string, Luks2Segment];
  if (segment.type !== 'crypt') {
    throw unsupported(
      `this LUKS2 segment has type ${String(segment.type)}`,
      'vault opens crypt segments only',
    );
  }
  if (segment.integrity) {
    throw unsupported(
      'this LUKS2 volume uses dm-integrity (authenticated encryption)',
      'open it with cryptsetup; vault does not support integrity segments',
    );
  }
  const suite = suiteFor(String(segment.encryption));
  const sectorBytes = segment.sector_size ?? 512;
  if (![512, 1024, 2048, 4096].includes(sectorBytes)) {
    throw unsupported(
      `this LUKS2 volume has ${sectorBytes}-byte sectors`,
      'vault opens 512- to 4096-byte sectors',
    );
  }
  const dataOffset = Number(segment.offset);
  const ivTweak = Number(segment.iv_tweak ?? '0');
  if (!Number.isSafeInteger(dataOffset) || dataOffset <= 0 || !Number.isSafeInteger(ivTweak) || ivTweak < 0) {
    throw new VaultError(
      'IO',
      'the LUKS2 segment offsets are not valid',
      'check the file with cryptsetup luksDump',
    );
  }
  if (dataOffset >= fileSize) {
    throw new VaultError(
      'IO',
      'the LUKS2 data area starts beyond the end of the file (truncated)',
      'check the file; compare its size with the original',
    );
  }
  let dataSize: number;
  if (segment.size === 'dynamic' || segment.size === undefined) {
    dataSize = Math.floor((fileSize - dataOffset) / sectorBytes) * sectorBytes;
  } else {
    dataSize = Number(segment.size);
    if (!Number.isSafeInteger(dataSize) || dataOffset + dataSize > fileSize) {
      throw new VaultError(
        'IO',
        'the LUKS2 data segment is longer than the file (truncated)',
        'check the file; compare its size with the original',
      );
    }
  }
  const digest = Object.values(json.digests ?? {}).find((entry) => entry.segments?.includes(segmentId));
  if (digest?.type !== 'pbkdf2' || !digest.salt || !digest.digest) {
    throw unsupported(
      'this LUKS2 volume has no PBKDF2 digest for its segment',
      'check the volume with cryptsetup luksDump',
    );
  }
  const digestPrf = prfFor(String(digest.hash));
  const digestSalt = Buffer.from(digest.salt, 'base64');
  const digestValue = Buffer.from(digest.digest, 'base64');
  const tokenSlots = new Set(Object.values(json.tokens ?? {}).flatMap((token) => token.keyslots ?? []));
  let tried = 0;
  for (const slotId of digest.keyslots ?? []) {
    const slot = keyslots[slotId];
    if (slot?.type !== 'luks2') continue;
    tried += 1;
    const masterKey = await openLuks2Slot(file, slot, passphrase, fileSize);
    if (!masterKey) continue;
    const check = await pbkdf2(digestPrf, masterKey, digestSalt, digest.iterations ?? 1, digestValue.length);
    const good = sameBytes(check, digestValue);
    check.fill(0);
    if (!good) {
      masterKey.fill(0);
      continue;
    }
    const kdf = slot.kdf ?? {};
    const description: KdfDescription =
      kdf.type === 'pbkdf2'
        ? { type: 'pbkdf2', hash: String(kdf.hash), iterations: kdf.iterations ?? 0 }
        : {
            type: kdf.type === 'argon2i' ? 'argon2i' : 'argon2id',
            memoryKiB: kdf.memory ?? 0,
            iterations: kdf.time ?? 0,
            parallelism: kdf.cpus ?? 0,
          };
    return {
      format: 'luks2',
      version: 2,
      masterKey,
      suite,
      // dm-crypt's plain64 IV counts 512-byte units at every sector size (no iv_large_sectors in LUKS2).
      layout: { sectorBytes, ivUnitBytes: IV_UNIT, ivOffset: ivTweak },
      dataOffset,
      dataSize,
      kdf: description,
      kind: 'normal',
      header: chosen.offset === 0 ? 'primary' : 'secondary',
      keyslot: Number(slotId),
      notes,
    };
  }
  if (tried > 0 && [...(digest.keyslots ?? [])].every((slot) => tokenSlots.has(slot))) {
    throw new VaultError(
      'CANNOT_UNLOCK',
      'cannot unlock the LUKS2 volume: wrong passphrase or keyfile, and every keyslot belongs to a token (FIDO2, TPM2, ...)',
      'vault opens LUKS keyslots with a passphrase or keyfile; add one with cryptsetup luksAddKey',
    );
  }
  throw cannotUnlock();
}

async function openLuks2Slot(
  file: ContainerFile,
  slot: Luks2Keyslot,
  passphrase: Buffer,
  fileSize: number,
): Promise<Buffer | null> {
  const { kdf, af, area } = slot;
  if (!kdf?.salt || !af || af.type !== 'luks1' || !area || area.type !== 'raw') return null;
  const keyBytes = slot.key_size ?? 0;
  const stripes = af.stripes ?? 0;
  if (keyBytes < 16 || keyBytes > 128 || stripes < 1 || stripes > 100_000) return null;
  const areaSuite = sectorCipherSuite(String(area.encryption));
  const areaKeyBytes = area.key_size ?? 0;
  if (!areaSuite?.keyBytes.includes(areaKeyBytes)) return null;
  const salt = Buffer.from(kdf.salt, 'base64');
  let slotKey: Buffer;
  if (kdf.type === 'pbkdf2') {
    slotKey = await pbkdf2(prfFor(String(kdf.hash)), passphrase, salt, kdf.iterations ?? 1, areaKeyBytes);
  } else if (kdf.type === 'argon2i' || kdf.type === 'argon2id') {
    const memoryKiB = kdf.memory ?? 0;
    if (memoryKiB * 1024 > freemem()) {
      throw new VaultError(
        'NEEDS_SYSTEM',
        `this LUKS2 keyslot needs ${Math.ceil(memoryKiB / 1024)} MiB of memory for Argon2, more than is available`,
        'free some memory, or open the volume on a machine with more',
      );
    }
    slotKey = await argon2(
      { type: kdf.type, memoryKiB, iterations: kdf.time ?? 1, parallelism: kdf.cpus ?? 1 },
      passphrase,
      salt,
      areaKeyBytes,
    );
  } else return null;
  try {
    return await openArea(
      file,
      areaSuite,
      slotKey,
      Number(area.offset),
      keyBytes,
      stripes,
      prfFor(String(af.hash)),
      fileSize,
    );
  } catch (error) {
    if (error instanceof VaultError) throw error;
    return null;
  } finally {
    slotKey.fill(0);
  }
}

// VeraCrypt and TrueCrypt volumes with AES-XTS: a 512-byte header with no cleartext field (64-byte salt,
// then 448 bytes XTS-encrypted under a PBKDF2- or, VeraCrypt 1.26.2x, Argon2id-derived key), tried at the
// normal, hidden and backup positions with every KDF the format knows. Data: XTS in 512-byte units,
// tweak = absolute offset / 512.
import { createDecipheriv } from 'node:crypto';
import { freemem } from 'node:os';
import {
  type Argon2Params,
  argon2,
  crc32,
  type Prf,
  pbkdf2,
  prfAvailable,
  tcPassword,
  VERACRYPT_ARGON2_OUTPUT_BYTES,
  veracryptArgon2,
} from '../../crypto/foreign-kdf.js';
import { AES_XTS_PLAIN64 } from '../../crypto/suites.js';
import { isUsableXtsKey } from '../../crypto/xts.js';
import { VaultError } from '../errors.js';
import type { ContainerFile } from '../file.js';
import type { ForeignSecretParts, Secret } from '../secret.js';
import { ARGON2_DETECT_MAX_PIM, cannotUnlockAny, type ForeignUnlock, unsupported } from './foreign.js';

export type TcryptFlavour = 'veracrypt' | 'truecrypt';

export const TC_HEADER_BYTES = 512;
const SALT_BYTES = 64;
const HEADER_KEY_BYTES = 64; // AES-256-XTS: data key then tweak key
const UNIT = 512;
/** Offsets in the decrypted header (counted from the header's start, salt included; big-endian). */
const H = {
  magic: 64,
  version: 68,
  keysCrc: 72,
  hiddenVolumeSize: 92,
  volumeSize: 100,
  dataOffset: 108,
  dataSize: 116,
  flags: 124,
  sectorSize: 128,
  headerCrc: 252,
  keys: 256,
} as const;
const HIDDEN_HEADER_OFFSET = 65536;
const BACKUP_AREA_BYTES = 131072;
/** Smallest file that can hold a header and a data area. */
const MIN_FILE_BYTES = BACKUP_AREA_BYTES + UNIT;

/** What --hash names for these formats: a PBKDF2 hash, or VeraCrypt's Argon2id ("argon2", as VeraCrypt). */
export type TcryptHash = Prf | 'argon2';

export type TcryptKdf =
  | { type: 'pbkdf2'; prf: Prf; iterations: number }
  | { type: 'argon2id'; params: Argon2Params };

/** KDF variants in the order tried (cryptsetup lib/tcrypt and the formats' own sources), cheapest first. */
export function tcryptKdfs(
  flavour: TcryptFlavour,
  pim: number | null,
  hash?: TcryptHash,
  veracryptNamed = false,
): TcryptKdf[] {
  const pbkdf2Of = (prf: Prf, iterations: number): TcryptKdf => ({ type: 'pbkdf2', prf, iterations });
  if (flavour === 'truecrypt') {
    return [
      pbkdf2Of('ripemd160', 2000),
      pbkdf2Of('sha512', 1000),
      pbkdf2Of('whirlpool', 1000),
      pbkdf2Of('ripemd160', 1000),
      pbkdf2Of('sha1', 2000),
    ].filter((kdf) => hash === undefined || (kdf.type === 'pbkdf2' && kdf.prf === hash));
  }
  // VeraCrypt: 500,000 iterations (655,331 for RIPEMD-160); a PIM p gives 15000 + 1000 p for every PRF.
  const withPim = (iterations: number) => (pim === null ? iterations : 15000 + 1000 * pim);
  const kdfs: TcryptKdf[] = [
    pbkdf2Of('sha512', withPim(500_000)),
    pbkdf2Of('sha256', withPim(500_000)),
    pbkdf2Of('blake2s-256', withPim(500_000)),
    pbkdf2Of('whirlpool', withPim(500_000)),
    pbkdf2Of('ripemd160', withPim(655_331)),
  ].filter((kdf) => hash === undefined || (kdf.type === 'pbkdf2' && kdf.prf === hash));
  // Argon2id last: at the default PIM (12) one run takes 416 MiB and 6 passes, several PBKDF2 runs' time.
  // Detection across every format would make every wrong password (of a vault too) pay for it, so it
  // is tried only when the volume is named VeraCrypt (--type veracrypt, or a PIM), up to PIM 31.
  const named = veracryptNamed || pim !== null;
  if (hash === 'argon2' || (hash === undefined && named && (pim === null || pim <= ARGON2_DETECT_MAX_PIM)))
    kdfs.push({ type: 'argon2id', params: veracryptArgon2(pim) });
  return kdfs;
}

function kdfAvailable(kdf: TcryptKdf): boolean {
  return kdf.type === 'argon2id' || prfAvailable(kdf.prf);
}

export interface TcryptOptions {
  flavour: TcryptFlavour;
  /** Only this PBKDF2 hash, or only Argon2id (--hash). */
  hash?: TcryptHash;
  /** VeraCrypt's PIM (--pim); null or undefined: the default iterations. */
  pim?: number | null;
  /** Only the hidden headers (to protect a hidden volume). */
  hiddenOnly?: boolean;
  /** The user named the format (--type veracrypt): detection then also tries VeraCrypt's Argon2id. */
  veracryptNamed?: boolean;
}

interface HeaderPosition {
  offset: number;
  kind: 'normal' | 'hidden';
  header: 'primary' | 'backup';
}

export async function unlockTcrypt(
  file: ContainerFile,
  secret: Secret,
  options: TcryptOptions,
): Promise<ForeignUnlock> {
  const fileSize = await file.size();
  if (fileSize < MIN_FILE_BYTES) throw cannotUnlockAny([options.flavour]);
  const foreign = secret.foreign;
  if (!foreign) throw new Error('VeraCrypt/TrueCrypt need the foreign secret parts');
  const password = tcPasswordFor(foreign, options.flavour);
  const kdfs = tcryptKdfs(options.flavour, options.pim ?? null, options.hash, options.veracryptNamed).filter(
    kdfAvailable,
  );
  const groups: HeaderPosition[][] = [
    [
      { offset: 0, kind: 'normal', header: 'primary' },
      { offset: HIDDEN_HEADER_OFFSET, kind: 'hidden', header: 'primary' },
    ],
    [
      { offset: fileSize - BACKUP_AREA_BYTES, kind: 'normal', header: 'backup' },
      { offset: fileSize - HIDDEN_HEADER_OFFSET, kind: 'hidden', header: 'backup' },
    ],
  ];
  const positions = groups.map((group) =>
    group.filter((position) => !options.hiddenOnly || position.kind === 'hidden'),
  );
  try {
    // The primary headers first (two PBKDF2 runs at once: one per core), backups only when none opens.
    for (const group of positions) {
      const headers = await Promise.all(
        group.map(async (position) => {
          const bytes = Buffer.alloc(TC_HEADER_BYTES);
          await file.read(bytes, position.offset);
          return bytes;
        }),
      );
      for (const kdf of kdfs) {
        const attempt = (index: number) =>
          tryHeader(
            headers[index] as Buffer,
            password,
            kdf,
            options.flavour,
            group[index] as HeaderPosition,
            fileSize,
          );
        let results: Array<ForeignUnlock | null>;
        if (kdf.type === 'argon2id' && !argon2FitsTwice(kdf.params)) {
          // Two Argon2id runs at once only when both fit comfortably in free memory (up to 2 GiB).
          results = [];
          for (let index = 0; index < group.length; index++) {
            const result = await attempt(index);
            results.push(result);
            if (result) break;
          }
        } else {
          results = await Promise.all(group.map((_, index) => attempt(index)));
        }
        const opened = results.find((result) => result !== null);
        for (const result of results) if (result && result !== opened) result.masterKey.fill(0);
        if (opened) return opened;
      }
    }
  } finally {
    password.fill(0);
  }
  throw cannotUnlockAny([options.flavour]);
}

function tcPasswordFor(foreign: ForeignSecretParts, flavour: TcryptFlavour): Buffer {
  const limit = flavour === 'veracrypt' ? 128 : 64;
  if (foreign.password.length > limit) {
    throw new VaultError(
      'CANNOT_UNLOCK',
      `the password is longer than ${flavour === 'veracrypt' ? 'VeraCrypt' : 'TrueCrypt'} allows (${limit} bytes)`,
      'check the password',
      { reason: 'foreign-password-too-long', details: { limit } },
    );
  }
  // VeraCrypt's pool is 128 bytes only for a password longer than 64 (cryptsetup: "Really.").
  const pool = flavour === 'veracrypt' && foreign.password.length > 64 ? foreign.pool128 : foreign.pool64;
  return tcPassword(foreign.password, pool);
}

function argon2FitsTwice(params: Argon2Params): boolean {
  return 2 * params.memoryKiB * 1024 <= freemem() / 2;
}

/** The 64-byte AES-256-XTS header key. Buffer.alloc'd: caller wipes. */
async function headerKeyOf(kdf: TcryptKdf, password: Buffer, salt: Buffer): Promise<Buffer> {
  if (kdf.type === 'pbkdf2') return pbkdf2(kdf.prf, password, salt, kdf.iterations, HEADER_KEY_BYTES);
  const output = await argon2(kdf.params, password, salt, VERACRYPT_ARGON2_OUTPUT_BYTES);
  try {
    const key = Buffer.alloc(HEADER_KEY_BYTES);
    output.copy(key, 0, 0, HEADER_KEY_BYTES);
    return key;
  } finally {
    output.fill(0);
  }
}

async function tryHeader(
  header: Buffer,
  password: Buffer,
  kdf: TcryptKdf,
  flavour: TcryptFlavour,
  position: HeaderPosition,
  fileSize: number,
): Promise<ForeignUnlock | null> {
  const headerKey = await headerKeyOf(kdf, password, header.subarray(0, SALT_BYTES));
  let plain: Buffer | null = null;
  try {
    if (!isUsableXtsKey(headerKey)) return null;
    plain = decryptHeader(header, headerKey);
    const magic = plain.subarray(H.magic, H.magic + 4).toString('latin1');
    // VeraCrypt also opens TrueCrypt-made headers ("TRUE") when asked for its own PRFs and counts.
    if (magic !== 'VERA' && magic !== 'TRUE') return null;
    if (flavour === 'truecrypt' && magic !== 'TRUE') return null;
    const version = plain.readUInt16BE(H.version);
    if (version > 3 && crc32(plain.subarray(H.magic, H.headerCrc)) !== plain.readUInt32BE(H.headerCrc))
      return null;
    if (crc32(plain.subarray(H.keys, TC_HEADER_BYTES)) !== plain.readUInt32BE(H.keysCrc)) return null;
    return describe(plain, version, magic === 'VERA' ? 'veracrypt' : 'truecrypt', kdf, position, fileSize);
  } finally {
    headerKey.fill(0);
    plain?.fill(0);
  }
}

/** Bytes 64..511 are one XTS data unit with tweak 0 under the header key. */
function decryptHeader(header: Buffer, headerKey: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-xts', headerKey, Buffer.alloc(16));
  const decrypted = decipher.update(header.subarray(SALT_BYTES));
  decipher.final();
  const plain = Buffer.alloc(TC_HEADER_BYTES);
  header.copy(plain, 0, 0, SALT_BYTES);
  decrypted.copy(plain, SALT_BYTES);
  decrypted.fill(0);
  return plain;
}

function readSize(plain: Buffer, at: number): number {
  const value = plain.readBigUInt64BE(at);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function describe(
  plain: Buffer,
  version: number,
  format: 'veracrypt' | 'truecrypt',
  kdf: TcryptKdf,
  position: HeaderPosition,
  fileSize: number,
): ForeignUnlock {
  const sectorSize = version >= 5 ? plain.readUInt32BE(H.sectorSize) || UNIT : UNIT;
  if (sectorSize !== UNIT) {
    throw unsupported(
      `this ${format} volume has ${sectorSize}-byte sectors`,
      'vault opens volumes with 512-byte sectors',
    );
  }
  if (plain.readUInt32BE(H.flags) & 1) {
    throw unsupported(
      'this is a system-encryption header (an encrypted boot drive)',
      'vault opens file containers and non-system partitions',
    );
  }
  const dataOffset = readSize(plain, H.dataOffset) || UNIT;
  const dataSize =
    position.kind === 'hidden' ? readSize(plain, H.hiddenVolumeSize) : readSize(plain, H.volumeSize);
  if (dataSize === 0 || dataOffset % UNIT !== 0 || dataSize % UNIT !== 0) {
    throw new VaultError(
      'IO',
      `the ${format} header has invalid size fields (damaged)`,
      'try the backup header: VeraCrypt can restore it',
    );
  }
  if (dataOffset + dataSize > fileSize) {
    throw new VaultError(
      'IO',
      `the ${format} volume is ${dataOffset + dataSize} bytes long but the file has ${fileSize} (truncated)`,
      'check the file; compare its size with the original',
    );
  }
  const masterKey = Buffer.alloc(HEADER_KEY_BYTES);
  plain.copy(masterKey, 0, H.keys, H.keys + HEADER_KEY_BYTES);
  if (!isUsableXtsKey(masterKey)) {
    // Only a forged header holds equal XTS key halves.
    masterKey.fill(0);
    throw new VaultError(
      'IO',
      `the ${format} header holds an unusable key (damaged or forged)`,
      'restore the header from a backup',
    );
  }
  return {
    format,
    version,
    masterKey,
    suite: AES_XTS_PLAIN64,
    // The tweak is the absolute byte offset in the file / 512.
    layout: { sectorBytes: UNIT, ivUnitBytes: UNIT, ivOffset: dataOffset / UNIT },
    dataOffset,
    dataSize,
    kdf:
      kdf.type === 'pbkdf2'
        ? { type: 'pbkdf2', hash: kdf.prf, iterations: kdf.iterations }
        : { ...kdf.params, type: 'argon2id' },
    kind: position.kind,
    header: position.header,
    keyslot: null,
    notes:
      position.header === 'backup'
        ? [`the ${position.kind} header at the start is damaged; the backup header was used`]
        : [],
  };
}

// TEST ONLY: writes VeraCrypt/TrueCrypt AES-XTS volumes (VeraCrypt is not packaged for Debian). Every
// volume a test writes is checked by cryptsetup tcryptDump, an independent reader, before it is trusted.
// Layout: header at 0, hidden header at 64 KiB, data from 128 KiB, backup headers in the last 128 KiB.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { addKeyfileToPool, crc32, type Prf, pbkdf2, tcPassword } from '../../src/crypto/foreign-kdf.js';

export interface TcryptHeaderSpec {
  password: Buffer;
  /** Keyfile contents (the pool algorithm reads the first 1 MiB of each). */
  keyfiles?: Buffer[];
  /** A PBKDF2 hash, or 'argon2': VeraCrypt 1.26.2x's Argon2id at `pim`. */
  prf: Prf | 'argon2';
  /** PBKDF2 iterations (unused for argon2). */
  iterations: number;
  /** Argon2id only: VeraCrypt's PIM (0: none given, which VeraCrypt counts as 12). */
  pim?: number;
  /** Instead of `prf`: the 64-byte header key from elsewhere (src's own KDF, where independence is not the point). */
  deriveKey?: (password: Buffer, salt: Buffer) => Promise<Buffer>;
  /** Forgeries: changes the cleartext header (format offsets, salt included) before its CRCs are computed. */
  edit?: (header: Buffer) => void;
  /** Forgeries: spoils the header's or the keys' CRC-32 after computing it. */
  badCrc?: 'header' | 'keys';
}

export interface TcryptVolumeSpec extends TcryptHeaderSpec {
  flavour: 'veracrypt' | 'truecrypt';
  fileSize: number;
  /** Cleartext of the outer data area (zeros after it). */
  plain?: Buffer;
  hidden?: TcryptHeaderSpec & { dataSize: number; plain?: Buffer };
}

export interface WrittenVolume {
  masterKey: Buffer;
  dataOffset: number;
  dataSize: number;
  hidden?: { masterKey: Buffer; dataOffset: number; dataSize: number };
}

const UNIT = 512;
const DATA_OFFSET = 131072;
const BACKUP_AREA = 131072;

export async function writeTcryptVolume(path: string, spec: TcryptVolumeSpec): Promise<WrittenVolume> {
  const file = randomBytes(spec.fileSize);
  const dataSize = spec.fileSize - DATA_OFFSET - BACKUP_AREA;
  const masterKey = randomBytes(64);
  encryptArea(file, masterKey, DATA_OFFSET, dataSize, spec.plain ?? Buffer.alloc(0));
  const outerFields = { hiddenVolumeSize: 0, volumeSize: dataSize, dataOffset: DATA_OFFSET, dataSize };
  const keysArea = Buffer.concat([masterKey, randomBytes(192)]);
  for (const offset of [0, spec.fileSize - BACKUP_AREA]) {
    (await sealHeader(spec.flavour, spec, keysArea, outerFields)).copy(file, offset);
  }
  const written: WrittenVolume = { masterKey, dataOffset: DATA_OFFSET, dataSize };
  if (spec.hidden) {
    const hiddenKey = randomBytes(64);
    const hiddenOffset = spec.fileSize - BACKUP_AREA - spec.hidden.dataSize;
    encryptArea(file, hiddenKey, hiddenOffset, spec.hidden.dataSize, spec.hidden.plain ?? Buffer.alloc(0));
    const fields = {
      hiddenVolumeSize: spec.hidden.dataSize,
      volumeSize: spec.hidden.dataSize,
      dataOffset: hiddenOffset,
      dataSize: spec.hidden.dataSize,
    };
    const hiddenKeys = Buffer.concat([hiddenKey, randomBytes(192)]);
    for (const offset of [65536, spec.fileSize - 65536]) {
      (await sealHeader(spec.flavour, spec.hidden, hiddenKeys, fields)).copy(file, offset);
    }
    written.hidden = { masterKey: hiddenKey, dataOffset: hiddenOffset, dataSize: spec.hidden.dataSize };
  }
  await writeFile(path, file);
  return written;
}

/** XTS with 512-byte units, tweak = absolute byte offset / 512 (as VeraCrypt defines it). */
export function encryptArea(file: Buffer, key: Buffer, offset: number, size: number, plain: Buffer): void {
  const unit = Buffer.alloc(UNIT);
  for (let at = 0; at < size; at += UNIT) {
    unit.fill(0);
    if (at < plain.length) plain.copy(unit, 0, at, Math.min(at + UNIT, plain.length));
    const tweak = Buffer.alloc(16);
    tweak.writeBigUInt64LE(BigInt((offset + at) / UNIT));
    const cipher = createCipheriv('aes-256-xts', key, tweak);
    cipher.update(unit).copy(file, offset + at);
    cipher.final();
  }
}

/** The inverse of encryptArea: an independent decryption (node:crypto per unit) for checks. */
export function decryptArea(file: Buffer, key: Buffer, offset: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += UNIT) {
    const tweak = Buffer.alloc(16);
    tweak.writeBigUInt64LE(BigInt((offset + at) / UNIT));
    const decipher = createDecipheriv('aes-256-xts', key, tweak);
    decipher.update(file.subarray(offset + at, offset + at + UNIT)).copy(out, at);
    decipher.final();
  }
  return out;
}

async function sealHeader(
  flavour: 'veracrypt' | 'truecrypt',
  spec: TcryptHeaderSpec,
  keysArea: Buffer,
  fields: { hiddenVolumeSize: number; volumeSize: number; dataOffset: number; dataSize: number },
): Promise<Buffer> {
  const salt = randomBytes(64);
  const header = Buffer.alloc(512);
  salt.copy(header, 0);
  header.write(flavour === 'veracrypt' ? 'VERA' : 'TRUE', 64, 'latin1');
  header.writeUInt16BE(5, 68);
  header.writeUInt16BE(flavour === 'veracrypt' ? 0x010b : 0x0700, 70);
  keysArea.copy(header, 256);
  header.writeBigUInt64BE(BigInt(fields.hiddenVolumeSize), 92);
  header.writeBigUInt64BE(BigInt(fields.volumeSize), 100);
  header.writeBigUInt64BE(BigInt(fields.dataOffset), 108);
  header.writeBigUInt64BE(BigInt(fields.dataSize), 116);
  header.writeUInt32BE(0, 124);
  header.writeUInt32BE(UNIT, 128);
  spec.edit?.(header);
  header.writeUInt32BE(crc32(header.subarray(256, 512)), 72);
  if (spec.badCrc === 'keys') header.writeUInt32BE((header.readUInt32BE(72) ^ 1) >>> 0, 72);
  header.writeUInt32BE(crc32(header.subarray(64, 252)), 252);
  if (spec.badCrc === 'header') header.writeUInt32BE((header.readUInt32BE(252) ^ 1) >>> 0, 252);
  let pool: Buffer | null = null;
  if (spec.keyfiles && spec.keyfiles.length > 0) {
    pool = Buffer.alloc(flavour === 'veracrypt' && spec.password.length > 64 ? 128 : 64);
    for (const keyfile of spec.keyfiles) addKeyfileToPool(pool, keyfile);
  }
  const password = tcPassword(spec.password, pool);
  const headerKey = spec.deriveKey
    ? await spec.deriveKey(password, salt)
    : spec.prf === 'argon2'
      ? await veracryptArgon2Key(password, salt, spec.pim ?? 0)
      : await pbkdf2(spec.prf, password, salt, spec.iterations, 64);
  const cipher = createCipheriv('aes-256-xts', headerKey, Buffer.alloc(16));
  cipher.update(header.subarray(64)).copy(header, 64);
  cipher.final();
  return header;
}

/**
 * VeraCrypt's Argon2id header key, written here from VeraCrypt's Pkcs5.c (get_argon2_params,
 * derive_key_argon2) with @noble/hashes' Argon2id, independently of src/ (which uses the argon2
 * package): PIM 0 means 12; m = min(64 + 32 (PIM - 1), 1024) MiB; t = 3 + (PIM - 1) / 3 up to PIM 31,
 * then 13 + (PIM - 31); p = 1; the 64-byte salt; 192 bytes out (GetMaxPkcs5OutSize), the first 64 used.
 */
export async function veracryptArgon2Key(password: Buffer, salt: Buffer, pim: number): Promise<Buffer> {
  const level = pim === 0 ? 12 : pim;
  const m = Math.min(64 + 32 * (level - 1), 1024) * 1024;
  const t = level <= 31 ? 3 + Math.trunc((level - 1) / 3) : 13 + (level - 31);
  const out = await argon2idAsync(password, salt, { t, m, p: 1, dkLen: 192, version: 0x13 });
  return Buffer.from(out.subarray(0, 64));
}

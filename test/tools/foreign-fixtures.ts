// TEST ONLY: small foreign volumes and an independent reading of their sectors, shared by the foreign
// format tests (foreign-fast, foreign-edges, foreign-wipes). LUKS volumes come from cryptsetup at the
// smallest costs; their sectors are decrypted here by dm-crypt's rules spelled out with node:crypto.
import { execFileSync } from 'node:child_process';
import { type Cipher, createCipheriv, createDecipheriv, createHash, type Decipher } from 'node:crypto';
import { existsSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';

export const cryptsetup = ['/usr/sbin/cryptsetup', '/sbin/cryptsetup'].find((path) => existsSync(path));

/** LUKS2 with a small header (16 KiB metadata, 256 KiB keyslots, data at 1 MiB). */
export const SMALL_LUKS2 = [
  '--luks2-metadata-size',
  '16k',
  '--luks2-keyslots-size',
  '256k',
  '--offset',
  '2048',
];
export const FAST_PBKDF2 = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
export const FAST_ARGON2 = [
  '--pbkdf-memory',
  '32768',
  '--pbkdf-parallel',
  '1',
  '--pbkdf-force-iterations',
  '4',
];

/** Bytes that differ from sector to sector and from seed to seed. */
export function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 29 + seed + (i >> 9)) & 0xff;
  return bytes;
}

/** cryptsetup luksFormat on a new file of `bytes` bytes at `path` (the key file's bytes are the passphrase). */
export async function luksFormat(
  path: string,
  bytes: number,
  keyFile: string,
  args: string[],
): Promise<string> {
  await writeFile(path, Buffer.alloc(0));
  await truncate(path, bytes);
  execFileSync(cryptsetup as string, ['luksFormat', '-q', '--key-file', keyFile, ...args, path], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return path;
}

/** The volume (master) key as cryptsetup dumps it. */
export function volumeKey(path: string, keyFile: string): Buffer {
  const out = execFileSync(
    cryptsetup as string,
    ['luksDump', '-q', '--dump-volume-key', '--key-file', keyFile, path],
    { encoding: 'utf8' },
  );
  const dump = out.slice(out.indexOf('MK dump:') + 8);
  return Buffer.from((dump.match(/\b[0-9a-f]{2}\b/g) ?? []).join(''), 'hex');
}

/**
 * dm-crypt's sectors spelled out: plain64 IV = ivOffset + (sector offset in the data area / ivUnitBytes),
 * little-endian (dm-crypt counts 512-byte units at every sector size).
 */
export function dmCrypt(
  decrypt: boolean,
  data: Buffer,
  key: Buffer,
  cipher: string,
  sectorSize: number,
  ivOffset = 0,
  ivUnitBytes = 512,
): Buffer {
  const out = Buffer.alloc(data.length);
  for (let at = 0; at < data.length; at += sectorSize) {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(BigInt(ivOffset + at / ivUnitBytes));
    const chunk = data.subarray(at, at + sectorSize);
    let c: Cipher | Decipher;
    if (cipher === 'aes-xts-plain64') {
      const name = key.length === 32 ? 'aes-128-xts' : 'aes-256-xts';
      c = decrypt ? createDecipheriv(name, key, iv) : createCipheriv(name, key, iv);
    } else {
      const salt = createHash('sha256').update(key).digest();
      const essiv = createCipheriv('aes-256-ecb', salt, null).setAutoPadding(false).update(iv);
      const name = `aes-${key.length * 8}-cbc`;
      c = decrypt ? createDecipheriv(name, key, essiv) : createCipheriv(name, key, essiv);
      c.setAutoPadding(false);
    }
    Buffer.concat([c.update(chunk), c.final()]).copy(out, at);
  }
  return out;
}

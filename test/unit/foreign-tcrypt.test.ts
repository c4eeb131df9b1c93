// VeraCrypt and TrueCrypt volumes: written by the test-only writer (VeraCrypt is not packaged for
// Debian), each one first checked by cryptsetup tcryptDump (an independent reader) and its volume key,
// then opened through openVolume: read, write (also partial sectors), an independent decryption of the
// written sectors, reopen. Hidden volumes, backup headers, keyfiles, PIM and failure cases.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import { ForeignVolume } from '../../src/container/foreign-volume.js';
import { tcryptKdfs } from '../../src/container/formats/tcrypt.js';
import { Secret } from '../../src/container/secret.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';
import {
  argon2,
  crc32,
  type Prf,
  pbkdf2,
  prfAvailable,
  VERACRYPT_ARGON2_OUTPUT_BYTES,
  veracryptArgon2,
} from '../../src/crypto/foreign-kdf.js';
import { decryptArea, veracryptArgon2Key, writeTcryptVolume } from '../tools/tcrypt-writer.js';

const cryptsetup = ['/usr/sbin/cryptsetup', '/sbin/cryptsetup'].find((path) => existsSync(path));
const CRYPTSETUP_HASH: Record<Prf, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha512: 'sha512',
  ripemd160: 'ripemd160',
  whirlpool: 'whirlpool',
  'blake2s-256': 'blake2s-256',
};
/** Small PIMs keep PBKDF2 cheap: iterations = 15000 + 1000 x PIM. */
const PIM = 1;
const PIM_ITERATIONS = 15000 + 1000 * PIM;
const FILE_BYTES = 2 << 20;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-tcrypt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretOf(password: string, keyfiles: string[] = []): Promise<Secret> {
  return Secret.fromInputs(password ? { password: Buffer.from(password), keyfiles } : { keyfiles }, {
    foreign: true,
  });
}

async function open(
  path: string,
  password: string,
  options: VolumeOpenOptions = {},
  keyfiles: string[] = [],
) {
  const secret = await secretOf(password, keyfiles);
  try {
    return await openVolume(path, secret, options);
  } finally {
    secret.wipe();
  }
}

/** cryptsetup's view of the header: its volume key (hex), or null when it cannot open it. */
function tcryptDumpKey(
  path: string,
  password: string,
  options: {
    prf: Prf;
    pim?: number;
    hidden?: boolean;
    backup?: boolean;
    keyfiles?: string[];
    truecrypt?: boolean;
  },
): string | null {
  const args = ['tcryptDump', '-q', '--dump-volume-key', '--hash', CRYPTSETUP_HASH[options.prf]];
  if (!options.truecrypt) args.push('--veracrypt', '--veracrypt-pim', String(options.pim ?? 485));
  if (options.hidden) args.push('--tcrypt-hidden');
  if (options.backup) args.push('--tcrypt-backup');
  for (const keyfile of options.keyfiles ?? []) args.push('--key-file', keyfile);
  args.push(path);
  const result = spawnSync(cryptsetup as string, args, { input: password, encoding: 'utf8' });
  if (result.status !== 0) return null;
  const dump = result.stdout.slice(result.stdout.indexOf('MK dump:') + 8);
  return (dump.match(/\b[0-9a-f]{2}\b/g) ?? []).join('');
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  return bytes;
}

/** Writes through the volume, then decrypts the file independently and compares. */
async function checkWriteThrough(
  path: string,
  password: string,
  options: VolumeOpenOptions,
  key: Buffer,
  area: { dataOffset: number },
  keyfiles: string[] = [],
): Promise<void> {
  const volume = await open(path, password, options, keyfiles);
  const written = pattern(8192, 7);
  await volume.writeAt(written, 4096);
  await volume.writeAt(Buffer.from('partial sector'), 100); // read-modify-write inside sector 0
  await volume.close();
  const file = readFileSync(path);
  const plain = decryptArea(file, key, area.dataOffset, 16384);
  expect(plain.subarray(4096, 4096 + 8192).equals(written)).toBe(true);
  expect(plain.subarray(100, 114).toString()).toBe('partial sector');
  const again = await open(path, password, options, keyfiles);
  const back = Buffer.alloc(8192);
  await again.readAt(back, 4096);
  await again.close();
  expect(back.equals(written)).toBe(true);
}

// Whirlpool: node:crypto has it only with --openssl-legacy-provider; without, the addon computes it
// through a private OpenSSL context that loads the legacy provider (native/kdf.c).
const VERACRYPT_PRFS: Prf[] = ['sha512', 'sha256', 'whirlpool', 'blake2s-256', 'ripemd160'];

describe.skipIf(!cryptsetup)('VeraCrypt volumes (test writer, checked by cryptsetup tcryptDump)', () => {
  it('every PRF is available, Whirlpool too, without --openssl-legacy-provider', () => {
    expect(process.execArgv.join(' ') + (process.env.NODE_OPTIONS ?? '')).not.toMatch(/legacy-provider/);
    for (const prf of VERACRYPT_PRFS) expect(prfAvailable(prf)).toBe(true);
  });

  it("PBKDF2-Whirlpool from the addon equals node:crypto's with --openssl-legacy-provider", async () => {
    const salt = Buffer.from(Array.from({ length: 64 }, (_, i) => 255 - i));
    const ours = await pbkdf2('whirlpool', Buffer.from('correct horse'), salt, 1000, 192);
    const script = `process.stdout.write(require('node:crypto').pbkdf2Sync('correct horse', Buffer.from('${salt.toString('hex')}', 'hex'), 1000, 192, 'whirlpool').toString('hex'))`;
    const reference = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(ours.toString('hex')).toBe(reference);
  });

  for (const prf of VERACRYPT_PRFS) {
    it(`PBKDF2-${prf}, PIM ${PIM}: cryptsetup agrees, vault opens, reads and writes`, async () => {
      const path = join(dir, `vc-${prf}.hc`);
      const plain = pattern(65536, 1);
      const written = await writeTcryptVolume(path, {
        flavour: 'veracrypt',
        prf,
        iterations: PIM_ITERATIONS,
        password: Buffer.from('correct horse'),
        fileSize: FILE_BYTES,
        plain,
      });
      // cryptsetup 2.6 knows no BLAKE2s: that header is checked by Python's hashlib instead.
      if (prf === 'blake2s-256')
        expect(pythonOpensHeader(path, 'correct horse', 'blake2s', PIM_ITERATIONS)).toBe('VERA');
      else
        expect(tcryptDumpKey(path, 'correct horse', { prf, pim: PIM })).toBe(
          written.masterKey.toString('hex'),
        );

      for (const options of [{ pim: PIM }, { type: 'veracrypt' as const, pim: PIM, hash: prf }]) {
        const volume = await open(path, 'correct horse', options);
        expect(volume).toBeInstanceOf(ForeignVolume);
        const info = (volume as ForeignVolume).info();
        expect(info).toMatchObject({
          format: 'veracrypt',
          kind: 'normal',
          dataOffset: 131072,
          sectorSize: 512,
          ivOffset: 256,
        });
        expect(info.kdf).toEqual({ type: 'pbkdf2', hash: prf, iterations: PIM_ITERATIONS });
        expect(volume.size).toBe(FILE_BYTES - 262144);
        const back = Buffer.alloc(plain.length);
        await volume.readAt(back, 0);
        await volume.close();
        expect(back.equals(plain)).toBe(true);
      }
      await checkWriteThrough(
        path,
        'correct horse',
        { type: 'veracrypt', pim: PIM },
        written.masterKey,
        written,
      );
    });
  }

  it('keyfiles: the CRC-32 pool in any order, with and without a password; cryptsetup agrees', async () => {
    const path = join(dir, 'vc-keyfiles.hc');
    const one = join(dir, 'key1');
    const two = join(dir, 'key2');
    await writeFile(one, pattern(3000, 3));
    await writeFile(two, pattern((1 << 20) + 4096, 9)); // longer than 1 MiB: only the first MiB counts
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      keyfiles: [readFileSync(one), readFileSync(two)],
      fileSize: FILE_BYTES,
    });
    expect(tcryptDumpKey(path, 'pw', { prf: 'sha512', pim: PIM, keyfiles: [one, two] })).toBe(
      written.masterKey.toString('hex'),
    );
    const volume = await open(path, 'pw', { pim: PIM }, [two, one]);
    expect((volume as ForeignVolume).format).toBe('veracrypt');
    await volume.close();
    await expectCannotUnlock(open(path, 'pw', { pim: PIM }, [one]));
    await expectCannotUnlock(open(path, 'pw', { pim: PIM }));
  });

  it('hidden volume: its own secret opens the hidden area; --protect-hidden refuses writes into it', async () => {
    const path = join(dir, 'vc-hidden.hc');
    const hiddenPlain = pattern(4096, 42);
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('outer'),
      fileSize: FILE_BYTES,
      hidden: {
        prf: 'sha512',
        iterations: PIM_ITERATIONS,
        password: Buffer.from('hidden'),
        dataSize: 512 * 1024,
        plain: hiddenPlain,
      },
    });
    const hiddenInfo = written.hidden as NonNullable<typeof written.hidden>;
    expect(tcryptDumpKey(path, 'hidden', { prf: 'sha512', pim: PIM, hidden: true })).toBe(
      hiddenInfo.masterKey.toString('hex'),
    );
    const hidden = (await open(path, 'hidden', { pim: PIM })) as ForeignVolume;
    expect(hidden.info()).toMatchObject({
      kind: 'hidden',
      dataOffset: hiddenInfo.dataOffset,
      dataSize: 512 * 1024,
    });
    const back = Buffer.alloc(4096);
    await hidden.readAt(back, 0);
    await hidden.close();
    expect(back.equals(hiddenPlain)).toBe(true);
    await checkWriteThrough(path, 'hidden', { pim: PIM }, hiddenInfo.masterKey, hiddenInfo);

    const protectHidden = await secretOf('hidden');
    const outer = (await open(path, 'outer', { pim: PIM, protectHidden })) as ForeignVolume;
    protectHidden.wipe();
    await outer.writeAt(Buffer.alloc(4096, 1), 0); // far from the hidden area: allowed
    const hiddenStart = hiddenInfo.dataOffset - 131072;
    await expect(outer.writeAt(Buffer.alloc(4096, 1), hiddenStart)).rejects.toThrow(
      /protect the hidden volume/,
    );
    await expect(outer.writeAt(Buffer.alloc(4096, 1), 0)).rejects.toThrow(/read-only until dismounted/);
    expect(outer.protectionTripped).toBe(true);
    await outer.close();
    const stillThere = (await open(path, 'hidden', { pim: PIM })) as ForeignVolume;
    const check = Buffer.alloc(4096);
    await stillThere.readAt(check, 4096);
    await stillThere.close();
    expect(check.equals(pattern(8192, 7).subarray(0, 4096))).toBe(true);
  });

  it('a damaged primary header: the backup header opens it (and says so)', async () => {
    const path = join(dir, 'vc-backup.hc');
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha256',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      fileSize: FILE_BYTES,
      plain: pattern(512, 5),
    });
    const file = readFileSync(path);
    file[200] = (file[200] as number) ^ 0xff;
    await writeFile(path, file);
    expect(tcryptDumpKey(path, 'pw', { prf: 'sha256', pim: PIM })).toBeNull();
    expect(tcryptDumpKey(path, 'pw', { prf: 'sha256', pim: PIM, backup: true })).toBe(
      written.masterKey.toString('hex'),
    );
    const volume = (await open(path, 'pw', { pim: PIM })) as ForeignVolume;
    expect(volume.info().header).toBe('backup');
    expect(volume.warnings.join()).toMatch(/backup header was used/);
    const back = Buffer.alloc(512);
    await volume.readAt(back, 0);
    await volume.close();
    expect(back.equals(pattern(512, 5))).toBe(true);
  });

  it('a TrueCrypt header (TRUE, 1000 iterations) opens as TrueCrypt and not as VeraCrypt', async () => {
    const path = join(dir, 'tc.tc');
    const written = await writeTcryptVolume(path, {
      flavour: 'truecrypt',
      prf: 'sha512',
      iterations: 1000,
      password: Buffer.from('pw'),
      fileSize: FILE_BYTES,
      plain: pattern(1024, 2),
    });
    expect(tcryptDumpKey(path, 'pw', { prf: 'sha512', truecrypt: true })).toBe(
      written.masterKey.toString('hex'),
    );
    // Detection (the vault format at its cheapest cost level first, then TrueCrypt) finds it.
    const volume = (await open(path, 'pw', { costLevel: 1 })) as ForeignVolume;
    expect(volume.info()).toMatchObject({
      format: 'truecrypt',
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    });
    await volume.close();
    await expectCannotUnlock(open(path, 'pw', { type: 'veracrypt', pim: PIM }));
    await checkWriteThrough(path, 'pw', { type: 'truecrypt' }, written.masterKey, written);
  });

  it('wrong password, wrong PIM, wrong --hash, truncated and damaged files: "cannot unlock" or a clear message, nothing written', async () => {
    const path = join(dir, 'vc-bad.hc');
    await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      fileSize: FILE_BYTES,
    });
    const before = readFileSync(path);
    await expectCannotUnlock(open(path, 'wrong', { type: 'veracrypt', pim: PIM }));
    await expectCannotUnlock(open(path, 'pw', { type: 'veracrypt', pim: PIM + 1 }));
    await expectCannotUnlock(open(path, 'pw', { type: 'veracrypt', pim: PIM, hash: 'sha256' }));
    expect(readFileSync(path).equals(before)).toBe(true);
    // Truncated: the header opens but the volume does not fit the file any more.
    const short = join(dir, 'vc-short.hc');
    await writeFile(short, before);
    await truncate(short, FILE_BYTES / 2);
    await expect(open(short, 'pw', { type: 'veracrypt', pim: PIM })).rejects.toThrow(/truncated/);
    await truncate(short, 1000);
    await expectCannotUnlock(open(short, 'pw', { type: 'veracrypt', pim: PIM }));
  });
});

// VeraCrypt 1.26.2x's Argon2id. cryptsetup 2.6 (Debian 12) cannot read these headers (its tcrypt code
// knows PBKDF2 only) and VeraCrypt is not packaged, so the check is the other way round: the writer
// derives the header key with @noble/hashes' Argon2id (pure JavaScript), vault with the argon2 package
// (the reference C code), each from the parameters read in VeraCrypt's src/Common/Pkcs5.c.
describe("VeraCrypt's Argon2id (test writer with @noble/hashes; vault with the argon2 package)", () => {
  it("maps the PIM as VeraCrypt's get_argon2_params does", () => {
    const mib = (pim: number | null) => {
      const params = veracryptArgon2(pim);
      return [params.memoryKiB / 1024, params.iterations, params.parallelism];
    };
    expect(mib(null)).toEqual([416, 6, 1]); // no PIM: VeraCrypt counts it as 12
    expect(mib(1)).toEqual([64, 3, 1]);
    expect(mib(4)).toEqual([160, 4, 1]);
    expect(mib(12)).toEqual([416, 6, 1]);
    expect(mib(31)).toEqual([1024, 13, 1]);
    expect(mib(32)).toEqual([1024, 14, 1]);
    expect(mib(100)).toEqual([1024, 82, 1]);
    expect(VERACRYPT_ARGON2_OUTPUT_BYTES).toBe(192);
  });

  it('is tried last, only for a volume named VeraCrypt (--type or a PIM), up to PIM 31 (a larger PIM needs --hash argon2)', () => {
    const names = (pim: number | null, hash?: Prf | 'argon2', named = true) =>
      tcryptKdfs('veracrypt', pim, hash, named).map((kdf) => (kdf.type === 'pbkdf2' ? kdf.prf : kdf.type));
    expect(names(null)).toEqual(['sha512', 'sha256', 'blake2s-256', 'whirlpool', 'ripemd160', 'argon2id']);
    // Plain detection (no --type, no PIM) leaves it out: every wrong password of a vault would pay for it.
    expect(names(null, undefined, false)).not.toContain('argon2id');
    expect(names(12, undefined, false)).toContain('argon2id');
    expect(names(485)).not.toContain('argon2id');
    expect(names(485, 'argon2')).toEqual(['argon2id']);
    expect(names(null, 'sha256')).toEqual(['sha256']);
    expect(tcryptKdfs('truecrypt', null).some((kdf) => kdf.type === 'argon2id')).toBe(false);
  });

  it('the header key (must not change): the argon2 package and @noble/hashes agree', async () => {
    const password = Buffer.from('correct horse');
    const salt = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const ours = await argon2(veracryptArgon2(1), password, salt, VERACRYPT_ARGON2_OUTPUT_BYTES);
    const noble = await veracryptArgon2Key(password, salt, 1);
    expect(ours.subarray(0, 64).toString('hex')).toBe(noble.toString('hex'));
    expect(ours.subarray(0, 16).toString('hex')).toBe(ARGON2_PIM1_KEY_PREFIX);
  }, 120_000);

  it('PIM 1 volume: detection and --hash argon2 open it, read, write, independent decryption, reopen', async () => {
    const path = join(dir, 'vc-argon2.hc');
    const plain = pattern(65536, 11);
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'argon2',
      iterations: 0,
      pim: 1,
      password: Buffer.from('correct horse'),
      fileSize: FILE_BYTES,
      plain,
    });
    for (const options of [{ pim: 1 }, { type: 'veracrypt' as const, hash: 'argon2' as const, pim: 1 }]) {
      const volume = (await open(path, 'correct horse', options)) as ForeignVolume;
      expect(volume.info()).toMatchObject({ format: 'veracrypt', kind: 'normal', dataOffset: 131072 });
      expect(volume.info().kdf).toEqual({
        type: 'argon2id',
        memoryKiB: 65536,
        iterations: 3,
        parallelism: 1,
      });
      const back = Buffer.alloc(plain.length);
      await volume.readAt(back, 0);
      await volume.close();
      expect(back.equals(plain)).toBe(true);
    }
    await checkWriteThrough(
      path,
      'correct horse',
      { type: 'veracrypt', hash: 'argon2', pim: 1 },
      written.masterKey,
      written,
    );
    const before = readFileSync(path);
    await expectCannotUnlock(open(path, 'correct horse', { type: 'veracrypt', hash: 'argon2', pim: 2 }));
    await expectCannotUnlock(open(path, 'wrong', { type: 'veracrypt', hash: 'argon2', pim: 1 }));
    await expectCannotUnlock(open(path, 'correct horse', { type: 'veracrypt', hash: 'sha512', pim: 1 }));
    expect(readFileSync(path).equals(before)).toBe(true);
    const truecrypt = await open(path, 'correct horse', { type: 'truecrypt', hash: 'argon2' }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(isVaultError(truecrypt, 'USAGE')).toBe(true);
  }, 240_000); // eight 64-96 MiB Argon2id runs: about 25 s alone, several times that on a loaded machine
});

/** First 16 bytes of VeraCrypt's Argon2id header key for "correct horse", salt 00..3f, PIM 1. */
const ARGON2_PIM1_KEY_PREFIX = '004bf8ad694a19ebb8e330a509ee8c4f';

async function expectCannotUnlock(attempt: Promise<unknown>): Promise<void> {
  const error = await attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
}

/** Python's hashlib + cryptography: an independent PBKDF2 and XTS for hashes cryptsetup lacks. */
function pythonOpensHeader(path: string, password: string, hash: string, iterations: number): string {
  const script = `
import hashlib, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
h = open(sys.argv[1], 'rb').read(512)
key = hashlib.pbkdf2_hmac(sys.argv[2], sys.argv[3].encode(), h[:64], int(sys.argv[4]), 64)
d = Cipher(algorithms.AES(key), modes.XTS(bytes(16))).decryptor()
print((d.update(h[64:]) + d.finalize())[:4].decode('latin1'))
`;
  return execFileSync('python3', ['-c', script, path, hash, password, String(iterations)], {
    encoding: 'utf8',
  }).trim();
}

it('CRC-32 is the IEEE/zlib one', () => {
  expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
});

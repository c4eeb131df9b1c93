// The foreign formats (LUKS1/LUKS2, VeraCrypt, TrueCrypt) at the smallest costs, for mutation testing
// (scripts/mutation-area.mjs foreign): every test makes its own small volume and names the format and
// the hash, so one test takes well under a second. LUKS volumes are made by cryptsetup (1000 PBKDF2
// iterations, 32 MiB Argon2, 1 MiB files with a small LUKS2 header); their written sectors are decrypted
// here by dm-crypt's rules spelled out with node:crypto, with the key cryptsetup dumps. VeraCrypt and
// TrueCrypt volumes come from the test writer (checked against cryptsetup by foreign-tcrypt.test.ts),
// at PIM 1 (16000 iterations) and TrueCrypt's 1000. The real-cost cases stay in foreign-luks.test.ts
// and foreign-tcrypt.test.ts.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault } from '../../src/container/create.js';
import { isVaultError } from '../../src/container/errors.js';
import { ForeignVolume } from '../../src/container/foreign-volume.js';
import { cannotUnlockAny } from '../../src/container/formats/foreign.js';
import { tcryptKdfs } from '../../src/container/formats/tcrypt.js';
import { Secret } from '../../src/container/secret.js';
import { Vault } from '../../src/container/vault.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';
import { VOLUME_TYPES } from '../../src/container/volume-types.js';
import type { Prf } from '../../src/crypto/foreign-kdf.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import {
  cryptsetup,
  dmCrypt,
  volumeKey as dumpVolumeKey,
  FAST_ARGON2,
  FAST_PBKDF2,
  luksFormat as formatLuks,
  pattern,
  SMALL_LUKS2,
} from '../tools/foreign-fixtures.js';
import { decryptArea, writeTcryptVolume } from '../tools/tcrypt-writer.js';

const PASSWORD = 'fast password';
const LUKS_BYTES = 3 << 20;
const TC_BYTES = 1 << 20;
const PIM = 1;
const PIM_ITERATIONS = 16000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-foreign-fast-'));
  await writeFile(join(dir, 'pass'), PASSWORD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function open(path: string, options: VolumeOpenOptions, password = PASSWORD, keyfiles: string[] = []) {
  const secret = await Secret.fromInputs(
    password ? { password: Buffer.from(password), keyfiles } : { keyfiles },
    { foreign: true },
  );
  try {
    return (await openVolume(path, secret, { costLevel: 1, ...options })) as ForeignVolume;
  } finally {
    secret.wipe();
  }
}

async function failure(attempt: Promise<unknown>): Promise<unknown> {
  return attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
}

async function expectCode(attempt: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const error = await failure(attempt);
  expect(isVaultError(error, code as never), String(error)).toBe(true);
  if (message) expect(String((error as Error).message)).toMatch(message);
}

// ---- LUKS ----

async function luksFormat(name: string, args: string[], keyFile = join(dir, 'pass')): Promise<string> {
  return formatLuks(join(dir, name), LUKS_BYTES, keyFile, args);
}

function volumeKey(path: string, keyFile = join(dir, 'pass')): Buffer {
  return dumpVolumeKey(path, keyFile);
}

const LUKS_VARIANTS: Array<{ name: string; args: string[]; expect: Record<string, unknown> }> = [
  {
    name: 'LUKS1 aes-xts-plain64 512-bit key, PBKDF2-SHA256',
    args: ['--type', 'luks1', '--pbkdf-force-iterations', '1000'],
    expect: {
      format: 'luks1',
      formatVersion: 1,
      cipher: 'aes-xts-plain64',
      cipherName: 'AES-256-XTS',
      sectorSize: 512,
      ivUnitBytes: 512,
      ivOffset: 0,
      kind: 'normal',
      header: 'primary',
      keyslot: 0,
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 },
    },
  },
  {
    name: 'LUKS1 aes-xts-plain64 256-bit key, PBKDF2-SHA512, keyslot 3',
    args: [
      '--type',
      'luks1',
      '--key-size',
      '256',
      '--hash',
      'sha512',
      '--key-slot',
      '3',
      '--pbkdf-force-iterations',
      '1000',
    ],
    expect: {
      format: 'luks1',
      cipherName: 'AES-128-XTS',
      keyslot: 3,
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    },
  },
  {
    name: 'LUKS1 aes-cbc-essiv:sha256, PBKDF2-SHA1',
    args: [
      '--type',
      'luks1',
      '--cipher',
      'aes-cbc-essiv:sha256',
      '--key-size',
      '256',
      '--hash',
      'sha1',
      '--pbkdf-force-iterations',
      '1000',
    ],
    expect: {
      format: 'luks1',
      cipher: 'aes-cbc-essiv:sha256',
      kdf: { type: 'pbkdf2', hash: 'sha1', iterations: 1000 },
    },
  },
  {
    name: 'LUKS2 aes-xts-plain64 512-byte sectors, PBKDF2-SHA256',
    args: ['--type', 'luks2', '--sector-size', '512', ...SMALL_LUKS2, ...FAST_PBKDF2],
    expect: {
      format: 'luks2',
      formatVersion: 2,
      sectorSize: 512,
      header: 'primary',
      keyslot: 0,
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 },
    },
  },
  {
    name: 'LUKS2 aes-xts-plain64 4096-byte sectors, PBKDF2-SHA512',
    args: ['--type', 'luks2', '--sector-size', '4096', '--hash', 'sha512', ...SMALL_LUKS2, ...FAST_PBKDF2],
    expect: {
      format: 'luks2',
      sectorSize: 4096,
      ivUnitBytes: 512,
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    },
  },
  {
    name: 'LUKS2 Argon2i keyslot',
    args: ['--type', 'luks2', '--pbkdf', 'argon2i', ...SMALL_LUKS2, ...FAST_ARGON2],
    expect: { format: 'luks2', kdf: { type: 'argon2i', memoryKiB: 32768, iterations: 4, parallelism: 1 } },
  },
  {
    name: 'LUKS2 Argon2id keyslot, 4096-byte sectors',
    args: ['--type', 'luks2', '--pbkdf', 'argon2id', '--sector-size', '4096', ...SMALL_LUKS2, ...FAST_ARGON2],
    expect: {
      format: 'luks2',
      sectorSize: 4096,
      kdf: { type: 'argon2id', memoryKiB: 32768, iterations: 4, parallelism: 1 },
    },
  },
];

describe.skipIf(!cryptsetup)('LUKS at the smallest costs', () => {
  LUKS_VARIANTS.forEach((variant, index) => {
    it(`${variant.name}: opens (detected and --type luks), sizes, independent decryption of writes, reopen`, async () => {
      const path = await luksFormat(`v${index}.luks`, variant.args);
      const key = volumeKey(path);
      const detected = await open(path, {});
      expect(detected).toBeInstanceOf(ForeignVolume);
      const info = detected.info();
      expect(info).toMatchObject({ ...variant.expect, readOnly: false, fileSize: LUKS_BYTES, path });
      expect(info.dataOffset).toBeGreaterThan(0);
      expect(info.dataOffset % 512).toBe(0);
      expect(detected.size).toBe(info.dataSize);
      expect(info.dataSize).toBe(
        Math.floor((LUKS_BYTES - info.dataOffset) / info.sectorSize) * info.sectorSize,
      );
      expect(detected.warnings.some((w) => /damaged|differ/.test(w))).toBe(false);
      // What cryptsetup's key decrypts from the untouched data area is what the volume reads.
      const file0 = readFileSync(path);
      const span = 3 * info.sectorSize;
      const expected = dmCrypt(
        true,
        file0.subarray(info.dataOffset, info.dataOffset + span),
        key,
        info.cipher,
        info.sectorSize,
      );
      const first = Buffer.alloc(span);
      await detected.readAt(first, 0);
      expect(first.equals(expected)).toBe(true);
      // An unaligned read inside the sectors.
      const inner = Buffer.alloc(700);
      await detected.readAt(inner, 300);
      expect(inner.equals(expected.subarray(300, 1000))).toBe(true);
      const written = pattern(2 * 4096, index);
      await detected.writeAt(written, 4096);
      await detected.writeAt(Buffer.from('a partial write'), 1000); // read-modify-write in sector 0
      await detected.writeAt(Buffer.from('tail'), 4096 * 3 + 510); // crosses a 512-byte boundary
      await detected.flush();
      await detected.close();
      await expect(detected.readAt(Buffer.alloc(1), 0)).rejects.toThrow(/closed/);
      const file = readFileSync(path);
      const plain = dmCrypt(
        true,
        file.subarray(info.dataOffset, info.dataOffset + 4 * 4096),
        key,
        info.cipher,
        info.sectorSize,
      );
      expect(plain.subarray(4096, 4096 + written.length).equals(written)).toBe(true);
      expect(plain.subarray(1000, 1015).toString()).toBe('a partial write');
      expect(plain.subarray(0, 1000).equals(expected.subarray(0, 1000))).toBe(true);
      expect(plain.subarray(1015, 1500).equals(expected.subarray(1015, 1500))).toBe(true);
      expect(plain.subarray(4096 * 3 + 510, 4096 * 3 + 514).toString()).toBe('tail');
      // Nothing before the data area changed.
      expect(file.subarray(0, info.dataOffset).equals(file0.subarray(0, info.dataOffset))).toBe(true);
      const again = await open(path, { type: 'luks', readOnly: true });
      expect(again.info()).toMatchObject({ ...variant.expect, readOnly: true });
      const back = Buffer.alloc(written.length);
      await again.readAt(back, 4096);
      expect(back.equals(written)).toBe(true);
      // Reads at any offset and length: inside one sector, and across 512-byte and 4 KiB boundaries.
      const inside = Buffer.alloc(15);
      await again.readAt(inside, 1000);
      expect(inside.toString()).toBe('a partial write');
      const across = Buffer.alloc(6);
      await again.readAt(across, 4096 * 3 + 508);
      expect(across.equals(plain.subarray(4096 * 3 + 508, 4096 * 3 + 514))).toBe(true);
      const wide = Buffer.alloc(5000);
      await again.readAt(wide, 4000);
      expect(wide.equals(plain.subarray(4000, 9000))).toBe(true);
      await again.readAt(Buffer.alloc(0), 0);
      const refused = await failure(again.writeAt(Buffer.alloc(512), 0));
      expect(refused).toMatchObject({ code: 'IO', reason: 'read-only', hint: 'open it read-write' });
      expect(String((refused as Error).message)).toMatch(/read-only/);
      await again.close();
    });
  });

  it('a keyfile means its bytes; several keyfiles are refused; the password alone does not open it', async () => {
    const keyFile = join(dir, 'luks.key');
    await writeFile(keyFile, pattern(777, 3));
    const path = await luksFormat(
      'keyfile.luks',
      ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2],
      keyFile,
    );
    const volume = await open(path, { type: 'luks' }, '', [keyFile]);
    expect(volume.format).toBe('luks2');
    await volume.close();
    await expectCode(open(path, {}, '', [keyFile, join(dir, 'pass')]), 'USAGE', /one keyfile/);
    await expectCode(open(path, { type: 'luks' }), 'CANNOT_UNLOCK');
  });

  it('wrong passphrase: cannot unlock, as LUKS, nothing written; a hash, a PIM or hidden protection is refused', async () => {
    const path = await luksFormat('bad.luks', ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2]);
    const l1 = await luksFormat('bad.luks1', ['--type', 'luks1', '--pbkdf-force-iterations', '1000']);
    const before = readFileSync(path);
    for (const target of [path, l1]) {
      const error = await failure(open(target, {}, 'wrong'));
      expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
      expect(String((error as Error).message)).toMatch(/as LUKS:/);
      await expectCode(open(target, { type: 'luks' }, 'wrong'), 'CANNOT_UNLOCK');
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    await expectCode(open(path, { type: 'luks', pim: 1 }), 'USAGE', /hash and a PIM/);
    await expectCode(open(path, { type: 'luks', hash: 'sha512' }), 'USAGE', /hash and a PIM/);
    const protectHidden = await Secret.fromInputs({ password: Buffer.from('x') }, { foreign: true });
    await expectCode(open(path, { protectHidden }), 'USAGE', /no hidden volume/);
    protectHidden.wipe();
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('LUKS2: a damaged primary header gives way to the secondary; both damaged is a clear error', async () => {
    const path = await luksFormat('damaged.luks', ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2]);
    const healthy = await open(path, { type: 'luks' });
    const key = Buffer.from(volumeKey(path));
    const plain = Buffer.alloc(512);
    await healthy.readAt(plain, 0);
    await healthy.close();
    const file = readFileSync(path);
    file[4096 + 10] = (file[4096 + 10] as number) ^ 0x20; // the primary JSON: checksum fails
    await writeFile(path, file);
    const volume = await open(path, { type: 'luks' });
    expect(volume.info().header).toBe('secondary');
    expect(volume.warnings.join()).toMatch(/primary LUKS2 header is damaged; the secondary copy was used/);
    const back = Buffer.alloc(512);
    await volume.readAt(back, 0);
    await volume.close();
    expect(back.equals(plain)).toBe(true);
    expect(key.length).toBe(64);
    file[16384 + 4096 + 10] = (file[16384 + 4096 + 10] as number) ^ 0x20;
    await writeFile(path, file);
    await expectCode(open(path, { type: 'luks' }), 'IO', /both LUKS2 header copies are damaged/);
  });

  it('LUKS2: a damaged secondary header is noted; the primary opens', async () => {
    const path = await luksFormat('damaged2.luks', ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2]);
    const file = readFileSync(path);
    file[16384 + 4096 + 10] = (file[16384 + 4096 + 10] as number) ^ 0x20;
    await writeFile(path, file);
    const volume = await open(path, { type: 'luks' });
    expect(volume.info().header).toBe('primary');
    expect(volume.warnings).toEqual(['the secondary LUKS2 header is missing or damaged']);
    await volume.close();
  });

  it('truncated LUKS1 and LUKS2 files and a started re-encryption are refused; nothing written', async () => {
    const l1 = await luksFormat('short.luks1', ['--type', 'luks1', '--pbkdf-force-iterations', '1000']);
    const dataOffset = (await open(l1, { type: 'luks', readOnly: true }).then(async (v) => {
      const at = v.info().dataOffset;
      await v.close();
      return at;
    })) as number;
    await truncate(l1, dataOffset);
    await expectCode(open(l1, { type: 'luks' }), 'IO', /outside the file/);
    const l2 = await luksFormat('short.luks2', ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2]);
    const l2Offset = await open(l2, { type: 'luks', readOnly: true }).then(async (v) => {
      const at = v.info().dataOffset;
      await v.close();
      return at;
    });
    await truncate(l2, l2Offset);
    await expectCode(open(l2, { type: 'luks' }), 'IO', /beyond the end of the file/);
    await truncate(l2, 4000);
    await expectCode(open(l2, { type: 'luks' }), 'CANNOT_UNLOCK');
    const started = await luksFormat('reencrypt.luks', [
      '--type',
      'luks2',
      ...['--luks2-metadata-size', '16k', '--luks2-keyslots-size', '1m', '--offset', '4096'],
      ...FAST_PBKDF2,
    ]);
    execFileSync(
      cryptsetup as string,
      ['reencrypt', '--init-only', '-q', '--key-file', join(dir, 'pass'), ...FAST_PBKDF2, started],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const before = readFileSync(started);
    await expectCode(open(started, {}), 'USAGE', /re-encrypted/);
    expect(readFileSync(started).equals(before)).toBe(true);
  });

  it('a file without the LUKS magic is not LUKS', async () => {
    const path = join(dir, 'not-luks');
    await writeFile(path, pattern(65536, 1));
    await expectCode(open(path, { type: 'luks' }), 'CANNOT_UNLOCK', /as LUKS:/);
    const tiny = join(dir, 'tiny');
    await writeFile(tiny, Buffer.from('LUKS'));
    await expectCode(open(tiny, { type: 'luks' }), 'CANNOT_UNLOCK');
  });
});

// ---- VeraCrypt / TrueCrypt ----

async function checkWrites(
  path: string,
  password: string,
  options: VolumeOpenOptions,
  key: Buffer,
  area: { dataOffset: number; dataSize: number },
  keyfiles: string[] = [],
): Promise<void> {
  const volume = await open(path, options, password, keyfiles);
  expect(volume.size).toBe(area.dataSize);
  const written = pattern(8192, 7);
  await volume.writeAt(written, 4096);
  await volume.writeAt(Buffer.from('partial sector'), 100);
  await volume.writeAt(Buffer.from('across'), 1021); // ends in the next 512-byte unit
  await volume.close();
  const file = readFileSync(path);
  const plain = decryptArea(file, key, area.dataOffset, 16384);
  expect(plain.subarray(4096, 4096 + 8192).equals(written)).toBe(true);
  expect(plain.subarray(100, 114).toString()).toBe('partial sector');
  expect(plain.subarray(1021, 1027).toString()).toBe('across');
  const again = await open(path, options, password, keyfiles);
  const back = Buffer.alloc(8192 + 200);
  await again.readAt(back, 4000);
  await again.close();
  expect(back.equals(plain.subarray(4000, 4000 + 8192 + 200))).toBe(true);
}

const VERACRYPT_PRFS: Prf[] = ['sha512', 'sha256', 'whirlpool', 'blake2s-256', 'ripemd160'];

describe('VeraCrypt and TrueCrypt at the smallest costs', () => {
  for (const prf of VERACRYPT_PRFS) {
    it(`VeraCrypt PBKDF2-${prf} at PIM ${PIM}: info, reads, writes decrypt independently, reopen`, async () => {
      const path = join(dir, `vc-${prf}.hc`);
      const plain = pattern(8192, 1);
      const written = await writeTcryptVolume(path, {
        flavour: 'veracrypt',
        prf,
        iterations: PIM_ITERATIONS,
        password: Buffer.from('correct horse'),
        fileSize: TC_BYTES,
        plain,
      });
      const volume = await open(path, { type: 'veracrypt', pim: PIM, hash: prf }, 'correct horse');
      expect(volume.info()).toEqual({
        path,
        format: 'veracrypt',
        formatVersion: 5,
        fileSize: TC_BYTES,
        dataOffset: 131072,
        dataSize: TC_BYTES - 262144,
        sectorSize: 512,
        ivUnitBytes: 512,
        ivOffset: 256,
        cipher: 'aes-xts-plain64',
        cipherName: 'AES-256-XTS',
        kdf: { type: 'pbkdf2', hash: prf, iterations: PIM_ITERATIONS },
        kind: 'normal',
        header: 'primary',
        keyslot: null,
        readOnly: false,
      });
      expect(volume.warnings).toEqual([]);
      const back = Buffer.alloc(plain.length);
      await volume.readAt(back, 0);
      await volume.close();
      expect(back.equals(plain)).toBe(true);
      await checkWrites(
        path,
        'correct horse',
        { type: 'veracrypt', pim: PIM, hash: prf },
        written.masterKey,
        written,
      );
    });
  }

  it('a PIM alone names VeraCrypt: neither the vault format nor TrueCrypt is tried', async () => {
    const path = join(dir, 'vc-pim.hc');
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      fileSize: TC_BYTES,
      plain: pattern(512, 9),
    });
    const volume = await open(path, { pim: PIM }, 'pw');
    expect(volume.info()).toMatchObject({ format: 'veracrypt', kdf: { iterations: PIM_ITERATIONS } });
    await volume.close();
    const error = await failure(open(path, { pim: PIM + 1, hash: 'sha512' }, 'pw'));
    expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
    expect(String((error as Error).message)).toMatch(/as VeraCrypt:/);
    expect(written.dataSize).toBe(TC_BYTES - 262144);
  });

  it('keyfiles: the pool in any order, with the password; a missing keyfile or none does not open', async () => {
    const path = join(dir, 'vc-keyfiles.hc');
    const one = join(dir, 'key1');
    const two = join(dir, 'key2');
    await writeFile(one, pattern(3000, 3));
    await writeFile(two, pattern(5000, 9));
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      keyfiles: [readFileSync(one), readFileSync(two)],
      fileSize: TC_BYTES,
    });
    const options = { type: 'veracrypt' as const, pim: PIM, hash: 'sha512' as const };
    const volume = await open(path, options, 'pw', [two, one]);
    expect(volume.format).toBe('veracrypt');
    await volume.close();
    await checkWrites(path, 'pw', options, written.masterKey, written, [one, two]);
    await expectCode(open(path, options, 'pw', [one]), 'CANNOT_UNLOCK');
    await expectCode(open(path, options, 'pw'), 'CANNOT_UNLOCK');
  });

  it('a VeraCrypt password longer than 64 bytes (the 128-byte pool); longer than 128 is refused', async () => {
    const long = 'p'.repeat(100);
    const path = join(dir, 'vc-long.hc');
    const key = join(dir, 'key-long');
    await writeFile(key, pattern(100, 5));
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha256',
      iterations: PIM_ITERATIONS,
      password: Buffer.from(long),
      keyfiles: [readFileSync(key)],
      fileSize: TC_BYTES,
      plain: pattern(512, 4),
    });
    const options = { type: 'veracrypt' as const, pim: PIM, hash: 'sha256' as const };
    const volume = await open(path, options, long, [key]);
    const back = Buffer.alloc(512);
    await volume.readAt(back, 0);
    await volume.close();
    expect(back.equals(pattern(512, 4))).toBe(true);
    expect(written.masterKey.length).toBe(64);
    // Named types: the length is the reason given.
    await expectCode(
      open(path, options, 'p'.repeat(129), [key]),
      'CANNOT_UNLOCK',
      /^the password is longer than VeraCrypt allows \(128 bytes\)$/,
    );
    await expectCode(
      open(path, { type: 'truecrypt', hash: 'sha512' }, 'p'.repeat(65)),
      'CANNOT_UNLOCK',
      /^the password is longer than TrueCrypt allows \(64 bytes\)$/,
    );
    // Detected: what was tried, and what was not and why.
    await expectCode(
      open(path, {}, 'p'.repeat(129)),
      'CANNOT_UNLOCK',
      /^cannot unlock the volume as vault: .*; not tried as TrueCrypt or VeraCrypt: the password is longer than VeraCrypt allows \(128 bytes\)$/,
    );
    await expectCode(
      open(path, { hash: 'sha512' }, 'p'.repeat(65)),
      'CANNOT_UNLOCK',
      /^cannot unlock the volume as VeraCrypt: .*; not tried as TrueCrypt: the password is longer than TrueCrypt allows \(64 bytes\)$/,
    );
  });

  it('hidden volume: its secret opens the hidden area; --protect-hidden refuses writes into it, then all', async () => {
    const path = join(dir, 'vc-hidden.hc');
    const hiddenPlain = pattern(4096, 42);
    const hiddenBytes = 256 * 1024;
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('outer'),
      fileSize: TC_BYTES,
      hidden: {
        prf: 'sha512',
        iterations: PIM_ITERATIONS,
        password: Buffer.from('hidden'),
        dataSize: hiddenBytes,
        plain: hiddenPlain,
      },
    });
    const hiddenInfo = written.hidden as NonNullable<typeof written.hidden>;
    const options = { type: 'veracrypt' as const, pim: PIM, hash: 'sha512' as const };
    const hidden = await open(path, options, 'hidden');
    expect(hidden.info()).toMatchObject({
      kind: 'hidden',
      header: 'primary',
      dataOffset: hiddenInfo.dataOffset,
      dataSize: hiddenBytes,
      ivOffset: hiddenInfo.dataOffset / 512,
    });
    expect(hidden.size).toBe(hiddenBytes);
    const back = Buffer.alloc(4096);
    await hidden.readAt(back, 0);
    await hidden.close();
    expect(back.equals(hiddenPlain)).toBe(true);
    await checkWrites(path, 'hidden', options, hiddenInfo.masterKey, hiddenInfo);

    // The hidden secret as first secret with protection: refused (protection is for the outer volume).
    const self = await Secret.fromInputs({ password: Buffer.from('hidden') }, { foreign: true });
    await expectCode(
      open(path, { ...options, protectHidden: self }, 'hidden'),
      'USAGE',
      /first secret opens a hidden/,
    );
    const wrong = await Secret.fromInputs({ password: Buffer.from('nope') }, { foreign: true });
    // The outer secret opened it: the error names the hidden secret (not "cannot unlock the volume").
    const unprotected = await failure(open(path, { ...options, protectHidden: wrong }, 'outer'));
    expect(unprotected).toMatchObject({ code: 'CANNOT_UNLOCK', reason: 'protect-hidden-unlock' });
    expect(String((unprotected as Error).message)).toMatch(/^cannot unlock the hidden volume to protect it/);
    const protectHidden = await Secret.fromInputs({ password: Buffer.from('hidden') }, { foreign: true });
    const outer = await open(path, { ...options, protectHidden }, 'outer');
    for (const secret of [self, wrong, protectHidden]) secret.wipe();
    expect(outer.info().kind).toBe('normal');
    const hiddenStart = hiddenInfo.dataOffset - 131072;
    const raw = outer.rawAccess();
    expect(raw?.protectedRange).toEqual({ start: hiddenStart, end: hiddenStart + hiddenBytes });
    await outer.writeAt(Buffer.alloc(4096, 1), 0); // far from the hidden area: allowed
    await outer.writeAt(Buffer.alloc(512, 1), hiddenStart - 512); // just before it: allowed
    await expect(outer.writeAt(Buffer.alloc(1, 1), hiddenStart + hiddenBytes - 1)).rejects.toThrow(
      /protect the hidden volume/,
    );
    expect(outer.protectionTripped).toBe(true);
    expect(outer.rawAccess()?.protectedRange).toEqual({ start: 0, end: outer.size });
    await expect(outer.writeAt(Buffer.alloc(4096, 1), 0)).rejects.toThrow(/read-only until dismounted/);
    await outer.close();
    const stillThere = await open(path, options, 'hidden');
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
      fileSize: TC_BYTES,
      plain: pattern(512, 5),
    });
    const file = readFileSync(path);
    file[200] = (file[200] as number) ^ 0xff;
    await writeFile(path, file);
    const volume = await open(path, { type: 'veracrypt', pim: PIM, hash: 'sha256' }, 'pw');
    expect(volume.info()).toMatchObject({ header: 'backup', kind: 'normal', dataOffset: written.dataOffset });
    expect(volume.warnings).toEqual([
      'the normal header at the start is damaged; the backup header was used',
    ]);
    const back = Buffer.alloc(512);
    await volume.readAt(back, 0);
    await volume.close();
    expect(back.equals(pattern(512, 5))).toBe(true);
  });

  it('TrueCrypt (TRUE, 1000 iterations): full detection finds it after the vault format; not VeraCrypt', async () => {
    const path = join(dir, 'tc.tc');
    const written = await writeTcryptVolume(path, {
      flavour: 'truecrypt',
      prf: 'sha512',
      iterations: 1000,
      password: Buffer.from('pw'),
      fileSize: TC_BYTES,
      plain: pattern(1024, 2),
    });
    const volume = await open(path, {}, 'pw');
    expect(volume.info()).toMatchObject({
      format: 'truecrypt',
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    });
    await volume.close();
    await expectCode(open(path, { type: 'veracrypt', pim: PIM, hash: 'sha512' }, 'pw'), 'CANNOT_UNLOCK');
    await checkWrites(path, 'pw', { type: 'truecrypt', hash: 'sha512' }, written.masterKey, written);
    await expectCode(open(path, { type: 'truecrypt', pim: 1 }, 'pw'), 'USAGE', /PIM is a VeraCrypt setting/);
    await expectCode(
      open(path, { type: 'truecrypt', hash: 'argon2' }, 'pw'),
      'USAGE',
      /TrueCrypt volumes use PBKDF2 only/,
    );
  }, 60_000);

  it('wrong password, PIM or hash; truncated and tiny files: cannot unlock or a clear message, nothing written', async () => {
    const path = join(dir, 'vc-bad.hc');
    await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: PIM_ITERATIONS,
      password: Buffer.from('pw'),
      fileSize: TC_BYTES,
    });
    const before = readFileSync(path);
    await expectCode(open(path, { type: 'veracrypt', pim: PIM, hash: 'sha512' }, 'wrong'), 'CANNOT_UNLOCK');
    await expectCode(open(path, { type: 'veracrypt', pim: PIM + 1, hash: 'sha512' }, 'pw'), 'CANNOT_UNLOCK');
    await expectCode(open(path, { type: 'veracrypt', pim: PIM, hash: 'sha256' }, 'pw'), 'CANNOT_UNLOCK');
    expect(readFileSync(path).equals(before)).toBe(true);
    const short = join(dir, 'vc-short.hc');
    await writeFile(short, before);
    await truncate(short, TC_BYTES / 2);
    await expectCode(open(short, { type: 'veracrypt', pim: PIM, hash: 'sha512' }, 'pw'), 'IO', /truncated/);
    await truncate(short, 131072 + 511);
    await expectCode(open(short, { type: 'veracrypt', pim: PIM, hash: 'sha512' }, 'pw'), 'CANNOT_UNLOCK');
  });

  it('the KDFs in the order tried: TrueCrypt cheapest first, VeraCrypt by PIM, Argon2id last and only when named', () => {
    const list = (...args: Parameters<typeof tcryptKdfs>) =>
      tcryptKdfs(...args).map((kdf) => (kdf.type === 'pbkdf2' ? `${kdf.prf}:${kdf.iterations}` : kdf.type));
    expect(list('truecrypt', null)).toEqual([
      'ripemd160:2000',
      'sha512:1000',
      'whirlpool:1000',
      'ripemd160:1000',
      'sha1:2000',
    ]);
    expect(list('truecrypt', null, 'ripemd160')).toEqual(['ripemd160:2000', 'ripemd160:1000']);
    expect(list('veracrypt', null)).toEqual([
      'sha512:500000',
      'sha256:500000',
      'blake2s-256:500000',
      'whirlpool:500000',
      'ripemd160:655331',
    ]);
    expect(list('veracrypt', 3, undefined, false)).toEqual([
      'sha512:18000',
      'sha256:18000',
      'blake2s-256:18000',
      'whirlpool:18000',
      'ripemd160:18000',
      'argon2id',
    ]);
    expect(list('veracrypt', null, undefined, true).at(-1)).toBe('argon2id');
    expect(list('veracrypt', 31, undefined, true).at(-1)).toBe('argon2id');
    expect(list('veracrypt', 32, undefined, true)).not.toContain('argon2id');
    expect(list('veracrypt', 32, 'argon2')).toEqual(['argon2id']);
    expect(list('veracrypt', 5, 'sha256')).toEqual(['sha256:20000']);
  });

  it('the failed-unlock message names what was tried and what vault opens', () => {
    const error = cannotUnlockAny(['vault', 'luks', 'truecrypt', 'veracrypt']);
    expect(error.code).toBe('CANNOT_UNLOCK');
    expect(error.message).toBe(
      'cannot unlock the volume as vault, LUKS, TrueCrypt, VeraCrypt: wrong password, keyfile, cost level or PIM, or not such a volume',
    );
    expect(error.hint).toMatch(/LUKS1\/LUKS2/);
    expect(error.hint).toMatch(/above PIM 31 only with the argon2 hash/);
    expect(error.hint).not.toMatch(/Whirlpool was not tried/);
    expect(VOLUME_TYPES).toEqual(['vault', 'luks', 'veracrypt', 'truecrypt']);
  });
});

describe('the vault format through openVolume', () => {
  it('a vault opens with or without the foreign parts and with --type vault; LUKS and VeraCrypt refuse it', async () => {
    const path = join(dir, 'a.vault');
    const make = await Secret.fromInputs({ password: Buffer.from('vault pw') });
    await createVault(path, { fileSize: 2 << 20, secret: make, costLevel: MIN_COST_LEVEL, quick: true });
    make.wipe();
    const plainSecret = await Secret.fromInputs({ password: Buffer.from('vault pw') });
    const foreignSecret = await Secret.fromInputs({ password: Buffer.from('vault pw') }, { foreign: true });
    try {
      for (const [secret, options] of [
        [plainSecret, {}],
        [foreignSecret, {}],
        [foreignSecret, { type: 'vault' }],
      ] as const) {
        const volume = await openVolume(path, secret, { costLevel: MIN_COST_LEVEL, ...options });
        expect(volume).toBeInstanceOf(Vault);
        await volume.close();
      }
      await expect(openVolume(path, plainSecret, { type: 'luks' })).rejects.toThrow(/foreign: true/);
      await expectCode(openVolume(path, foreignSecret, { type: 'luks' }), 'CANNOT_UNLOCK', /as LUKS:/);
      const before = readFileSync(path);
      await expectCode(
        openVolume(path, foreignSecret, { type: 'veracrypt', pim: PIM, hash: 'sha512' }),
        'CANNOT_UNLOCK',
        /as VeraCrypt:/,
      );
      expect(readFileSync(path).equals(before)).toBe(true);
    } finally {
      plainSecret.wipe();
      foreignSecret.wipe();
    }
  });
});

// LUKS1 and LUKS2 containers made by Debian's cryptsetup on plain files (no device-mapper needed):
// every variant is opened through openVolume (detection and --type luks), read, written (partial sectors
// too), its written sectors decrypted independently with the key from `luksDump --dump-volume-key`
// (Python's cryptography), and reopened. cryptsetup's own offline encryption (`reencrypt --encrypt`)
// checks the IV rule of 4096-byte sectors independently. Failure cases at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import { ForeignVolume } from '../../src/container/foreign-volume.js';
import { Secret } from '../../src/container/secret.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';

const cryptsetup = ['/usr/sbin/cryptsetup', '/sbin/cryptsetup'].find((path) => existsSync(path));
const FILE_BYTES = 20 << 20;
const PASSWORD = 'luks password';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-luks-'));
  await writeFile(join(dir, 'pass'), PASSWORD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], input?: string): string {
  return execFileSync(cryptsetup as string, args, {
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
  });
}

async function luksFormat(name: string, args: string[], keyFile = join(dir, 'pass')): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.alloc(0));
  await truncate(path, FILE_BYTES);
  run(['luksFormat', '-q', '--key-file', keyFile, ...args, path]);
  return path;
}

function volumeKey(path: string, keyFile = join(dir, 'pass')): Buffer {
  const out = run(['luksDump', '-q', '--dump-volume-key', '--key-file', keyFile, path]);
  const dump = out.slice(out.indexOf('MK dump:') + 8);
  return Buffer.from((dump.match(/\b[0-9a-f]{2}\b/g) ?? []).join(''), 'hex');
}

async function open(
  path: string,
  options: VolumeOpenOptions = {},
  password = PASSWORD,
  keyfiles: string[] = [],
) {
  const secret = await Secret.fromInputs(
    password ? { password: Buffer.from(password), keyfiles } : { keyfiles },
    {
      foreign: true,
    },
  );
  try {
    return await openVolume(path, secret, { costLevel: 1, ...options });
  } finally {
    secret.wipe();
  }
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 13 + seed + (i >> 9)) & 0xff;
  return bytes;
}

/** Python's cryptography decrypts `length` bytes of the data area as dm-crypt would. */
function independentDecrypt(
  path: string,
  key: Buffer,
  info: { dataOffset: number; sectorSize: number; cipher: string },
  length: number,
): Buffer {
  const script = `
import sys, hashlib
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
path, key, off, sector, mode, length = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
data = open(path, 'rb').read()[off:off + length]
out = b''
for s in range(length // sector):
    iv_number = s * sector // 512            # plain64: 512-byte units
    chunk = data[s * sector:(s + 1) * sector]
    if mode == 'aes-xts-plain64':
        d = Cipher(algorithms.AES(key), modes.XTS(iv_number.to_bytes(16, 'little'))).decryptor()
    else:                                     # aes-cbc-essiv:sha256
        salt = hashlib.sha256(key).digest()
        e = Cipher(algorithms.AES(salt), modes.ECB()).encryptor()
        iv = e.update(iv_number.to_bytes(16, 'little')) + e.finalize()
        d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    out += d.update(chunk) + d.finalize()
sys.stdout.write(out.hex())
`;
  const hex = execFileSync(
    'python3',
    [
      '-c',
      script,
      path,
      key.toString('hex'),
      String(info.dataOffset),
      String(info.sectorSize),
      info.cipher,
      String(length),
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  return Buffer.from(hex, 'hex');
}

async function expectCannotUnlock(attempt: Promise<unknown>): Promise<void> {
  const error = await attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
}

const FAST_PBKDF2 = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
const FAST_ARGON2 = ['--pbkdf-memory', '32768', '--pbkdf-parallel', '1', '--pbkdf-force-iterations', '4'];

const VARIANTS: Array<{ name: string; args: string[]; expect: Record<string, unknown> }> = [
  {
    name: 'LUKS1 aes-xts-plain64, PBKDF2-SHA256',
    args: ['--type', 'luks1', '--pbkdf-force-iterations', '1000'],
    expect: {
      format: 'luks1',
      cipher: 'aes-xts-plain64',
      sectorSize: 512,
      kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 },
    },
  },
  {
    name: 'LUKS1 aes-xts-plain64 256-bit key, PBKDF2-SHA512',
    args: ['--type', 'luks1', '--key-size', '256', '--hash', 'sha512', '--pbkdf-force-iterations', '1000'],
    expect: {
      format: 'luks1',
      cipherName: 'AES-128-XTS',
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
    args: ['--type', 'luks2', '--sector-size', '512', ...FAST_PBKDF2],
    expect: { format: 'luks2', sectorSize: 512, kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 } },
  },
  {
    name: 'LUKS2 aes-xts-plain64 4096-byte sectors, PBKDF2-SHA512',
    args: ['--type', 'luks2', '--sector-size', '4096', '--hash', 'sha512', ...FAST_PBKDF2],
    expect: {
      format: 'luks2',
      sectorSize: 4096,
      ivUnitBytes: 512,
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    },
  },
  {
    name: 'LUKS2 Argon2i keyslot',
    args: ['--type', 'luks2', '--pbkdf', 'argon2i', ...FAST_ARGON2],
    expect: { format: 'luks2', kdf: { type: 'argon2i', memoryKiB: 32768, iterations: 4, parallelism: 1 } },
  },
  {
    name: 'LUKS2 Argon2id keyslot, 4096-byte sectors',
    args: ['--type', 'luks2', '--pbkdf', 'argon2id', '--sector-size', '4096', ...FAST_ARGON2],
    expect: {
      format: 'luks2',
      sectorSize: 4096,
      kdf: { type: 'argon2id', memoryKiB: 32768, iterations: 4, parallelism: 1 },
    },
  },
];

describe.skipIf(!cryptsetup)('LUKS volumes made by cryptsetup', () => {
  VARIANTS.forEach((variant, index) => {
    it(`${variant.name}: detected and with --type luks; written sectors decrypt independently; reopens`, async () => {
      const path = await luksFormat(`v${index}.luks`, variant.args);
      const key = volumeKey(path);
      for (const options of [{}, { type: 'luks' as const }]) {
        const volume = (await open(path, options)) as ForeignVolume;
        expect(volume).toBeInstanceOf(ForeignVolume);
        expect(volume.info()).toMatchObject(variant.expect);
        await volume.close();
      }
      const volume = (await open(path)) as ForeignVolume;
      const info = volume.info();
      const written = pattern(3 * 4096, index);
      await volume.writeAt(written, 8192);
      await volume.writeAt(Buffer.from('a partial write'), 4096 + 1000);
      await volume.close();
      const plain = independentDecrypt(path, key, info, 8192 + written.length);
      expect(plain.subarray(8192).equals(written)).toBe(true);
      expect(plain.subarray(5096, 5096 + 15).toString()).toBe('a partial write');
      const again = await open(path, { type: 'luks' });
      const back = Buffer.alloc(written.length);
      await again.readAt(back, 8192);
      await again.close();
      expect(back.equals(written)).toBe(true);
    });
  });

  for (const sectorSize of [512, 4096]) {
    it(`LUKS2 ${sectorSize}-byte sectors encrypted by cryptsetup itself (reencrypt --encrypt) read back as the original`, async () => {
      const path = join(dir, `enc-${sectorSize}.img`);
      const original = pattern(24 << 20, sectorSize);
      await writeFile(path, original);
      run([
        'reencrypt',
        '-q',
        '--encrypt',
        '--type',
        'luks2',
        '--sector-size',
        String(sectorSize),
        ...FAST_PBKDF2,
        '--reduce-device-size',
        '16M',
        '--key-file',
        join(dir, 'pass'),
        path,
      ]);
      const volume = await open(path, { type: 'luks' });
      // The volume starts with the original data (moved behind the header); 8 MiB of it are checked.
      const back = Buffer.alloc(8 << 20);
      await volume.readAt(back, 0);
      await volume.close();
      expect(back.equals(original.subarray(0, 8 << 20))).toBe(true);
    });
  }

  it('keyfile: cryptsetup --key-file means the file bytes; vault -k opens it, several keyfiles are refused', async () => {
    const keyFile = join(dir, 'luks.key');
    await writeFile(keyFile, pattern(777, 3));
    const path = await luksFormat('keyfile.luks', ['--type', 'luks2', ...FAST_PBKDF2], keyFile);
    const volume = (await open(path, {}, '', [keyFile])) as ForeignVolume;
    expect(volume.format).toBe('luks2');
    await volume.close();
    await expect(open(path, {}, '', [keyFile, join(dir, 'pass')])).rejects.toThrow(/one keyfile/);
  });

  it('LUKS2: a damaged primary header is replaced by the secondary copy; both damaged is a clear error', async () => {
    const path = await luksFormat('damaged.luks', ['--type', 'luks2', ...FAST_PBKDF2]);
    const file = readFileSync(path);
    file[4096 + 10] = (file[4096 + 10] as number) ^ 0x20; // inside the primary JSON area: checksum fails
    await writeFile(path, file);
    const volume = (await open(path)) as ForeignVolume;
    expect(volume.info().header).toBe('secondary');
    expect(volume.warnings.join()).toMatch(/primary LUKS2 header is damaged/);
    await volume.close();
    file[16384 + 4096 + 10] = (file[16384 + 4096 + 10] as number) ^ 0x20;
    await writeFile(path, file);
    await expect(open(path)).rejects.toThrow(/both LUKS2 header copies are damaged/);
    // cryptsetup agrees that nothing is left to recover from.
    expect(spawnSync(cryptsetup as string, ['luksDump', path]).status).not.toBe(0);
  });

  it('wrong passphrase, truncated file, reencryption in progress: cannot unlock or a clear refusal; nothing written', async () => {
    const path = await luksFormat('bad.luks', ['--type', 'luks2', ...FAST_PBKDF2]);
    const before = readFileSync(path);
    await expectCannotUnlock(open(path, {}, 'wrong'));
    await expectCannotUnlock(open(path, { type: 'luks' }, 'wrong'));
    expect(readFileSync(path).equals(before)).toBe(true);
    await truncate(path, 20000);
    await expect(open(path)).rejects.toThrow(/damaged|truncated|cannot unlock/);
    const l1 = await luksFormat('short.luks1', ['--type', 'luks1', '--pbkdf-force-iterations', '1000']);
    await truncate(l1, 1 << 20);
    await expect(open(l1)).rejects.toThrow(/outside the file|cannot unlock/);
    // A started re-encryption (cryptsetup reencrypt --init-only) leaves a requirement vault must not ignore.
    const started = await luksFormat('reencrypt.luks', ['--type', 'luks2', ...FAST_PBKDF2]);
    run(['reencrypt', '--init-only', '-q', '--key-file', join(dir, 'pass'), ...FAST_PBKDF2, started]);
    const error = await open(started).catch((caught: unknown) => caught);
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect(String(error)).toMatch(/re-encrypted/);
  });
});

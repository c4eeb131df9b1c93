// The key material of a foreign unlock, observed where it is made (scripts/mutation-area.mjs foreign):
// the KDF outputs (LUKS keyslot keys, VeraCrypt/TrueCrypt header keys), the AF-split keyslot areas and
// the keys merged from them, the VeraCrypt password buffer, the decrypted header (seen by its CRC) and
// every key checked as an XTS key (header keys and master keys) are all zero once the volume is open
// or refused: the volume keeps only its cipher's copy. The real functions run; the stand-ins only
// record the buffers they were handed or returned. Also: what a failed unlock says when this Node.js
// cannot compute Whirlpool.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ForeignVolume } from '../../src/container/foreign-volume.js';
import { cannotUnlockAny } from '../../src/container/formats/foreign.js';
import { Secret } from '../../src/container/secret.js';
import { openVolume, type VolumeOpenOptions } from '../../src/container/volume.js';
import {
  cryptsetup,
  dmCrypt,
  FAST_PBKDF2,
  luksFormat,
  SMALL_LUKS2,
  volumeKey,
} from '../tools/foreign-fixtures.js';
import { writeTcryptVolume } from '../tools/tcrypt-writer.js';
import { allZero } from '../tools/zero.js';

const seen = vi.hoisted(() => ({
  kdfOutputs: [] as Uint8Array[],
  afAreas: [] as Uint8Array[],
  merged: [] as Uint8Array[],
  passwords: [] as Uint8Array[],
  crcInputs: [] as Uint8Array[],
  xtsKeys: [] as Uint8Array[],
  whirlpool: true,
  /** Argon2 at a test's own small cost (the same for the writer and the reader). */
  argon2Cost: null as { memoryKiB: number; iterations: number } | null,
}));

vi.mock('../../src/crypto/foreign-kdf.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/crypto/foreign-kdf.js')>();
  return {
    ...real,
    pbkdf2: async (...args: Parameters<typeof real.pbkdf2>) => {
      const out = await real.pbkdf2(...args);
      seen.kdfOutputs.push(out);
      return out;
    },
    argon2: async (...args: Parameters<typeof real.argon2>) => {
      const [params, ...rest] = args;
      const out = await real.argon2(seen.argon2Cost ? { ...params, ...seen.argon2Cost } : params, ...rest);
      seen.kdfOutputs.push(out);
      return out;
    },
    afMerge: (...args: Parameters<typeof real.afMerge>) => {
      seen.afAreas.push(args[0]);
      const out = real.afMerge(...args);
      seen.merged.push(out);
      return out;
    },
    tcPassword: (...args: Parameters<typeof real.tcPassword>) => {
      const out = real.tcPassword(...args);
      seen.passwords.push(out);
      return out;
    },
    crc32: (bytes: Uint8Array) => {
      seen.crcInputs.push(bytes);
      return real.crc32(bytes);
    },
    prfAvailable: (prf: Parameters<typeof real.prfAvailable>[0]) =>
      prf === 'whirlpool' ? seen.whirlpool && real.prfAvailable(prf) : real.prfAvailable(prf),
  };
});

vi.mock('../../src/crypto/xts.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/crypto/xts.js')>();
  return {
    ...real,
    isUsableXtsKey: (key: Uint8Array) => {
      seen.xtsKeys.push(key);
      return real.isUsableXtsKey(key);
    },
  };
});

const PASSWORD = 'wiped password';
let dir: string;
let keyFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-foreign-wipes-'));
  keyFile = join(dir, 'pass');
  await writeFile(keyFile, PASSWORD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function forget(): void {
  for (const list of [
    seen.kdfOutputs,
    seen.afAreas,
    seen.merged,
    seen.passwords,
    seen.crcInputs,
    seen.xtsKeys,
  ])
    list.length = 0;
  seen.whirlpool = true;
  seen.argon2Cost = null;
}
beforeEach(forget);

async function open(path: string, options: VolumeOpenOptions, password = PASSWORD): Promise<ForeignVolume> {
  const secret = await Secret.fromInputs({ password: Buffer.from(password) }, { foreign: true });
  try {
    return (await openVolume(path, secret, options)) as ForeignVolume;
  } finally {
    secret.wipe();
  }
}

async function refusal(attempt: Promise<unknown>): Promise<unknown> {
  return attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
}

describe.skipIf(!cryptsetup)('LUKS: keyslot keys, AF areas and candidate keys are wiped', () => {
  const variants: Array<{ name: string; args: string[]; slotKeyBytes: number }> = [
    { name: 'LUKS1', args: ['--type', 'luks1', '--pbkdf-force-iterations', '1000'], slotKeyBytes: 64 },
    { name: 'LUKS2 PBKDF2', args: ['--type', 'luks2', ...SMALL_LUKS2, ...FAST_PBKDF2], slotKeyBytes: 64 },
    {
      name: 'LUKS2 Argon2id',
      args: [
        ...['--type', 'luks2', '--pbkdf', 'argon2id', ...SMALL_LUKS2],
        ...['--pbkdf-memory', '4096', '--pbkdf-parallel', '1', '--pbkdf-force-iterations', '4'],
      ],
      slotKeyBytes: 64,
    },
  ];
  for (const [index, variant] of variants.entries()) {
    it(`${variant.name}: after opening (the volume still reads right) and after a wrong passphrase`, async () => {
      const path = await luksFormat(join(dir, `v${index}.luks`), 3 << 20, keyFile, variant.args);
      const key = volumeKey(path, keyFile);
      forget();
      const volume = await open(path, { type: 'luks' });
      const slotKeys = seen.kdfOutputs.filter((out) => out.length === variant.slotKeyBytes);
      expect(slotKeys.length).toBeGreaterThan(0);
      expect(seen.afAreas.length).toBe(1);
      expect(seen.merged.length).toBe(1);
      expect(allZero(seen.kdfOutputs.filter((out) => out.length !== 20))).toBe(true);
      expect(allZero(seen.afAreas)).toBe(true);
      expect(allZero(seen.merged)).toBe(true); // the master key: the volume's cipher has its own copy
      const info = volume.info();
      const plain = Buffer.alloc(info.sectorSize);
      await volume.readAt(plain, 0);
      await volume.close();
      const file = readFileSync(path).subarray(info.dataOffset, info.dataOffset + info.sectorSize);
      expect(plain.equals(dmCrypt(true, file, key, info.cipher, info.sectorSize))).toBe(true);

      forget();
      expect(await refusal(open(path, { type: 'luks' }, 'wrong'))).toMatchObject({ code: 'CANNOT_UNLOCK' });
      expect(seen.merged.length).toBeGreaterThan(0);
      expect(allZero(seen.kdfOutputs.filter((out) => out.length !== 20))).toBe(true);
      expect(allZero(seen.afAreas)).toBe(true);
      expect(allZero(seen.merged)).toBe(true);
    });
  }
});

describe('VeraCrypt: header keys, the password buffer, the decrypted header and unused master keys are wiped', () => {
  const VC = { type: 'veracrypt', pim: 1, hash: 'sha256' } as const;

  it('after opening and after a wrong password', async () => {
    const path = join(dir, 'wipes.hc');
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha256',
      iterations: 16000,
      password: Buffer.from(PASSWORD),
      fileSize: 1 << 20,
    });
    forget();
    const volume = await open(path, VC);
    expect(seen.kdfOutputs.length).toBeGreaterThan(0);
    expect(seen.passwords.length).toBe(1);
    expect(seen.crcInputs.length).toBeGreaterThan(0);
    expect(seen.xtsKeys.some((key) => key.length === 64)).toBe(true);
    for (const list of [seen.kdfOutputs, seen.passwords, seen.crcInputs, seen.xtsKeys])
      expect(allZero(list)).toBe(true);
    expect(Buffer.from(volume.rawAccess()?.key ?? []).equals(written.masterKey)).toBe(true);
    await volume.close();

    forget();
    expect(await refusal(open(path, VC, 'wrong'))).toMatchObject({ code: 'CANNOT_UNLOCK' });
    expect(seen.kdfOutputs.length).toBe(4); // normal and hidden, then both backups
    for (const list of [seen.kdfOutputs, seen.passwords, seen.xtsKeys]) expect(allZero(list)).toBe(true);
  });

  it('one password opening both the outer and the hidden header: the outer opens, the hidden key is wiped', async () => {
    const path = join(dir, 'both.hc');
    const written = await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'sha256',
      iterations: 16000,
      password: Buffer.from(PASSWORD),
      fileSize: 1 << 20,
      hidden: { prf: 'sha256', iterations: 16000, password: Buffer.from(PASSWORD), dataSize: 128 * 1024 },
    });
    forget();
    const volume = await open(path, VC);
    expect(volume.info()).toMatchObject({ kind: 'normal', header: 'primary' });
    const masterKeys = seen.xtsKeys.filter((key) => key.length === 64);
    expect(masterKeys.length).toBe(4); // two header keys, two master keys
    expect(allZero(seen.xtsKeys)).toBe(true);
    expect(Buffer.from(volume.rawAccess()?.key ?? []).equals(written.masterKey)).toBe(true);
    await volume.close();
  });
});

describe("VeraCrypt's Argon2id: the 192-byte KDF output is wiped once the header key is taken from it", () => {
  it('after opening and after a wrong password', async () => {
    const { argon2, veracryptArgon2, VERACRYPT_ARGON2_OUTPUT_BYTES } = await import(
      '../../src/crypto/foreign-kdf.js'
    );
    const path = join(dir, 'argon2.hc');
    seen.argon2Cost = { memoryKiB: 1024, iterations: 1 };
    await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'argon2',
      iterations: 0,
      password: Buffer.from(PASSWORD),
      fileSize: 1 << 20,
      // src's Argon2id at 1 MiB, as the reader here (the writer's own, in JavaScript at VeraCrypt's
      // cost, takes seconds; foreign-tcrypt.test.ts checks the two agree at the real cost).
      deriveKey: async (password, salt) => {
        const out = await argon2(veracryptArgon2(1), password, salt, VERACRYPT_ARGON2_OUTPUT_BYTES);
        return Buffer.from(out.subarray(0, 64));
      },
    });
    const options = { type: 'veracrypt', pim: 1, hash: 'argon2' } as const;
    forget();
    seen.argon2Cost = { memoryKiB: 1024, iterations: 1 };
    const volume = await open(path, options);
    expect(volume.info().kdf).toMatchObject({ type: 'argon2id' });
    const outputs = seen.kdfOutputs.filter((out) => out.length === VERACRYPT_ARGON2_OUTPUT_BYTES);
    expect(outputs.length).toBeGreaterThan(0);
    expect(allZero(seen.kdfOutputs)).toBe(true);
    expect(allZero(seen.xtsKeys)).toBe(true);
    await volume.close();
    forget();
    seen.argon2Cost = { memoryKiB: 1024, iterations: 1 };
    expect(await refusal(open(path, options, 'wrong'))).toMatchObject({ code: 'CANNOT_UNLOCK' });
    expect(seen.kdfOutputs.length).toBe(4);
    expect(allZero(seen.kdfOutputs)).toBe(true);
  });
});

describe('a failed unlock when this Node.js cannot compute Whirlpool', () => {
  const NOTE =
    '; Whirlpool was not tried (this Node.js lacks it and the native addon is not built: run npm ci, or set NODE_OPTIONS=--openssl-legacy-provider)';

  it('VeraCrypt or TrueCrypt tried: the hint and the details say Whirlpool was not tried', () => {
    seen.whirlpool = false;
    for (const tried of [['veracrypt'], ['truecrypt'], ['vault', 'truecrypt', 'veracrypt']] as const) {
      const error = cannotUnlockAny(tried);
      expect(String(error.hint).endsWith(`only with the argon2 hash)${NOTE}`)).toBe(true);
      expect(error.details).toMatchObject({ whirlpool: NOTE, maxPim: 31 });
    }
  });

  it('LUKS or the vault format alone: nothing about Whirlpool; with Whirlpool: nothing either', () => {
    seen.whirlpool = false;
    for (const tried of [['luks'], ['vault', 'luks']] as const) {
      const error = cannotUnlockAny(tried);
      expect(String(error.hint).endsWith('only with the argon2 hash)')).toBe(true);
      expect(error.details).toMatchObject({ whirlpool: '' });
    }
    seen.whirlpool = true;
    const error = cannotUnlockAny(['veracrypt', 'truecrypt']);
    expect(error).toMatchObject({ code: 'CANNOT_UNLOCK', reason: 'foreign-cannot-unlock' });
    expect(String(error.hint).endsWith('only with the argon2 hash)')).toBe(true);
    expect(error.details).toEqual({
      opened: expect.stringMatching(/^its own vaults, LUKS1\/LUKS2/),
      maxPim: 31,
      whirlpool: '',
    });
    expect(String(error.hint)).toContain(`vault opens ${(error.details as { opened: string }).opened};`);
  });

  it('a Whirlpool volume is then not tried at all: cannot unlock, saying why', async () => {
    const path = join(dir, 'whirlpool.hc');
    await writeTcryptVolume(path, {
      flavour: 'veracrypt',
      prf: 'whirlpool',
      iterations: 16000,
      password: Buffer.from(PASSWORD),
      fileSize: 1 << 20,
    });
    seen.whirlpool = false;
    const error = await refusal(open(path, { type: 'veracrypt', pim: 1, hash: 'whirlpool' }));
    expect(error).toMatchObject({ code: 'CANNOT_UNLOCK', details: { whirlpool: NOTE } });
    seen.whirlpool = true;
    const volume = await open(path, { type: 'veracrypt', pim: 1, hash: 'whirlpool' });
    await volume.close();
  });
});

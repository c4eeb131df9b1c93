// The cipher-suite seam (src/crypto/suites.ts, src/container/vault-suites.ts): the vault's own suite
// must give the bytes it always gave (must not change), and each IV rule a foreign format needs is
// checked against the independent XTS of xts-reference.ts (noble AES, no OpenSSL).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CIPHER_AES_256_XTS, KDF_ARGON2ID_V1 } from '../../src/container/layout.js';
import { createVaultSectorCipher, VAULT_KDFS, vaultSectorCipher } from '../../src/container/vault-suites.js';
import { costParams } from '../../src/crypto/kdf.js';
import { AES_CBC_ESSIV_SHA256, AES_XTS_PLAIN64, sectorCipherSuite } from '../../src/crypto/suites.js';
import { checkXtsKey, createXts } from '../../src/crypto/xts.js';
import { referenceXts } from './xts-reference.js';

function key64(): Buffer {
  const key = randomBytes(64);
  key[0] = (key[32] as number) ^ 1; // halves differ
  return key;
}

describe('the vault suite (header ids 1/1)', () => {
  it('must not change: sector s of the data area is XTS-AES-256 over 4096 bytes with tweak s', () => {
    const key = key64();
    const plain = randomBytes(3 * 4096);
    const cipher = createVaultSectorCipher(key);
    const out = Buffer.alloc(plain.length);
    cipher.encrypt(plain, 7, out);
    expect(Buffer.from(referenceXts('encrypt', key, 4096, 7n, plain)).equals(out)).toBe(true);
    const xts = createXts(key);
    const direct = Buffer.alloc(plain.length);
    xts.encrypt(plain, 7, direct);
    expect(direct.equals(out)).toBe(true);
    cipher.decrypt(out, 7);
    expect(out.equals(plain)).toBe(true);
    cipher.destroy();
    xts.destroy();
  });

  it('is found by the ids the header stores, and nothing else is', () => {
    expect(vaultSectorCipher(CIPHER_AES_256_XTS)).toMatchObject({ keyBytes: 64, suite: AES_XTS_PLAIN64 });
    expect(vaultSectorCipher(2)).toBeNull();
    expect(VAULT_KDFS.get(KDF_ARGON2ID_V1)?.params(12)).toEqual(costParams(12));
    expect(VAULT_KDFS.has(2)).toBe(false);
  });
});

describe('the XTS key rule, stated once', () => {
  it('refuses equal halves for every key size and every user of it', () => {
    const half = randomBytes(32);
    expect(() => checkXtsKey(Buffer.concat([half, half]))).toThrow('XTS key halves must differ');
    expect(() => createXts(Buffer.concat([half, half]))).toThrow('XTS key halves must differ');
    const layout = { sectorBytes: 512, ivUnitBytes: 512, ivOffset: 0 };
    expect(() => AES_XTS_PLAIN64.create(Buffer.concat([half, half]), layout)).toThrow('halves must differ');
    const short = randomBytes(16);
    expect(() => AES_XTS_PLAIN64.create(Buffer.concat([short, short]), layout)).toThrow('halves must differ');
  });
});

describe('foreign IV rules', () => {
  it('VeraCrypt: 512-byte units, tweak = absolute offset / 512 (data offset 131072: first tweak 256)', () => {
    const key = key64();
    const plain = randomBytes(4 * 512);
    const cipher = AES_XTS_PLAIN64.create(key, { sectorBytes: 512, ivUnitBytes: 512, ivOffset: 256 });
    const out = Buffer.alloc(plain.length);
    cipher.encrypt(plain, 10, out);
    expect(Buffer.from(referenceXts('encrypt', key, 512, 266n, plain)).equals(out)).toBe(true);
    cipher.destroy();
  });

  it('LUKS2 4096-byte sectors: the plain64 IV counts 512-byte units (sector s has IV 8 s + iv_tweak)', () => {
    const key = key64();
    const plain = randomBytes(2 * 4096);
    const cipher = AES_XTS_PLAIN64.create(key, { sectorBytes: 4096, ivUnitBytes: 512, ivOffset: 3 });
    const out = Buffer.alloc(plain.length);
    cipher.encrypt(plain, 5, out);
    const first = referenceXts('encrypt', key, 4096, 3n + 40n, plain.subarray(0, 4096));
    const second = referenceXts('encrypt', key, 4096, 3n + 48n, plain.subarray(4096));
    expect(out.equals(Buffer.concat([first, second]))).toBe(true);
    cipher.decrypt(out, 5);
    expect(out.equals(plain)).toBe(true);
    cipher.destroy();
  });

  it('suites are records found by their dm-crypt names', () => {
    expect(sectorCipherSuite('aes-xts-plain64')).toBe(AES_XTS_PLAIN64);
    expect(sectorCipherSuite('aes-cbc-essiv:sha256')).toBe(AES_CBC_ESSIV_SHA256);
    expect(sectorCipherSuite('serpent-xts-plain64')).toBeNull();
    expect(AES_XTS_PLAIN64.describe(32)).toBe('AES-128-XTS');
    const essiv = AES_CBC_ESSIV_SHA256.create(randomBytes(32), {
      sectorBytes: 512,
      ivUnitBytes: 512,
      ivOffset: 0,
    });
    const plain = randomBytes(1024);
    const out = Buffer.alloc(1024);
    essiv.encrypt(plain, 0, out);
    // CBC: the two sectors have different IVs, so equal plaintext sectors differ.
    const twin = Buffer.concat([plain.subarray(0, 512), plain.subarray(0, 512)]);
    const twinOut = Buffer.alloc(1024);
    essiv.encrypt(twin, 0, twinOut);
    expect(twinOut.subarray(0, 512).equals(twinOut.subarray(512))).toBe(false);
    essiv.decrypt(out, 0);
    expect(out.equals(plain)).toBe(true);
    essiv.destroy();
  });
});

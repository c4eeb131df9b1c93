// Secret material: the byte construction against an independent one built here with @noble/hashes,
// the saved vectors (test/vectors/vault-secret-v1.json), order independence, no collisions, refusals.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { blake2b } from '@noble/hashes/blake2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costParams, deriveKdf } from '../../src/crypto/kdf.js';
import {
  createKeyfileHasher,
  KEYFILE_DIGEST_BYTES,
  SECRET_MATERIAL_LABEL,
  secretMaterial,
} from '../../src/crypto/keyfiles.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

function digestOf(content: Uint8Array): Buffer {
  const hasher = createKeyfileHasher();
  hasher.update(content);
  return hasher.digest();
}

/** The construction of docs/FORMAT.md section 6, written out independently of src/crypto/keyfiles.ts. */
function referenceMaterial(password: Uint8Array, keyfiles: readonly Uint8Array[]): Buffer {
  const u32 = (n: number): Buffer => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(n);
    return bytes;
  };
  const digests = keyfiles.map((content) => Buffer.from(blake2b(content, { dkLen: 64 })));
  digests.sort(Buffer.compare);
  return Buffer.concat([
    u32(15),
    Buffer.from('vault-secret-v1', 'ascii'),
    u32(password.length),
    password,
    u32(digests.length),
    ...digests.flatMap((digest) => [u32(64), digest]),
  ]);
}

interface SecretVector {
  name: string;
  password_utf8?: string;
  password_hex?: string;
  keyfiles: string[];
  keyfile_digests: string[];
  material: string;
  kdf_level: number;
  salt: string;
  kdf_output: string;
  source: string;
}

describe('vault-secret-v1 vectors (must not change)', () => {
  const { tests } = JSON.parse(
    readFileSync(new URL('../vectors/vault-secret-v1.json', import.meta.url), 'utf8'),
  ) as { tests: SecretVector[] };
  it('has vectors, one of them with keyfiles listed out of sorted order', () => {
    expect(tests.length).toBeGreaterThan(0);
    expect(tests.some((v) => v.keyfile_digests.join() !== [...v.keyfile_digests].sort().join())).toBe(true);
  });
  for (const v of tests) {
    it(v.name, async () => {
      const password = v.password_utf8 !== undefined ? utf8(v.password_utf8) : hex(v.password_hex ?? '');
      const keyfiles = v.keyfiles.map(hex);
      const digests = keyfiles.map(digestOf);
      expect(digests.map((d) => d.toString('hex'))).toEqual(v.keyfile_digests);
      const material = secretMaterial(password, digests);
      expect(material.toString('hex')).toBe(v.material);
      expect(referenceMaterial(password, keyfiles).toString('hex')).toBe(v.material);
      const output = await deriveKdf(material, hex(v.salt), v.kdf_level);
      expect(output.toString('hex')).toBe(v.kdf_output);
      const { memoryKiB, iterations, parallelism } = costParams(v.kdf_level);
      const reference = nobleArgon2id(material, hex(v.salt), {
        m: memoryKiB,
        t: iterations,
        p: parallelism,
        dkLen: 64,
        version: 0x13,
      });
      expect(Buffer.from(reference).toString('hex')).toBe(v.kdf_output);
    });
  }
});

describe('secretMaterial', () => {
  const keyA = digestOf(utf8('keyfile A'));
  const keyB = digestOf(utf8('keyfile B'));
  const keyC = digestOf(utf8('keyfile C'));

  it('must not change: the bytes for a fixed password and two keyfiles', () => {
    expect(secretMaterial(utf8('pw'), [keyA, keyB]).toString('hex')).toBe(
      '0000000f7661756c742d7365637265742d763100000002707700000002' +
        '00000040127de868a90dfa6da53587807eb4c94a76295decb92fab27f3a42006ce25413d' +
        'a81b830a4351215a35b6048fd1270bd397106601743f2f14b1579bc8c626c734' +
        '00000040c997435a31d355957a58019cccefabeb38ae3191648f7c16a3672fdf5f1bbbc1' +
        '27d2e8b260e28c94ab5905382b6427c2a758bb377a078c80c9fef7d40bf09ca5',
    );
  });

  it('equals the independent construction for random passwords and keyfiles', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 5 }),
        (password, keyfiles) => {
          fc.pre(password.length > 0 || keyfiles.length > 0);
          expect(
            secretMaterial(password, keyfiles.map(digestOf)).equals(referenceMaterial(password, keyfiles)),
          ).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the order of keyfiles does not matter', () => {
    const expected = secretMaterial(utf8('pw'), [keyA, keyB, keyC]);
    for (const order of [
      [keyA, keyC, keyB],
      [keyB, keyA, keyC],
      [keyB, keyC, keyA],
      [keyC, keyA, keyB],
      [keyC, keyB, keyA],
    ]) {
      expect(secretMaterial(utf8('pw'), order).equals(expected)).toBe(true);
    }
  });

  it('does not reorder or change the caller’s digests', () => {
    const digests = [keyC, keyA, keyB];
    const copies = digests.map((d) => Buffer.from(d));
    secretMaterial(utf8('pw'), digests);
    expect(digests).toEqual(copies);
  });

  it('no two different inputs give the same bytes', () => {
    const material = (password: string, ...keyfiles: Buffer[]): string =>
      secretMaterial(utf8(password), keyfiles).toString('hex');
    const cases = [
      material('ab'),
      material('a'),
      material('b'),
      material('a', keyA),
      material('ab', keyA),
      material('', keyA),
      material('', keyB),
      material('', keyA, keyB),
      material('', keyA, keyA),
      material('a', keyA, keyB),
      material('pw', keyA),
      material('pw', keyA, keyA),
      material('pw', keyA, keyB),
      // A password that spells out the encoding of a keyfile must not pass for that keyfile.
      secretMaterial(Buffer.concat([utf8('pw'), hex('00000001'), hex('00000040'), keyA]), []).toString('hex'),
      secretMaterial(Buffer.concat([utf8('pw'), hex('00000000')]), [keyA]).toString('hex'),
    ];
    expect(new Set(cases).size).toBe(cases.length);
  });

  it('a precomposed and a decomposed é are different passwords (no normalisation)', () => {
    const composed = secretMaterial(utf8('caf\u00e9'), []);
    const decomposed = secretMaterial(utf8('cafe\u0301'), []);
    expect(composed.equals(decomposed)).toBe(false);
    expect(secretMaterial(utf8(' pw '), []).equals(secretMaterial(utf8('pw'), []))).toBe(false);
  });

  it('an empty password is refused without a keyfile, accepted with one', () => {
    expect(() => secretMaterial(new Uint8Array(0), [])).toThrow(RangeError);
    expect(secretMaterial(new Uint8Array(0), [keyA]).length).toBeGreaterThan(0);
  });

  it('refuses a digest that is not 64 bytes', () => {
    expect(() => secretMaterial(utf8('pw'), [keyA.subarray(0, 32)])).toThrow(RangeError);
    expect(() => secretMaterial(utf8('pw'), [Buffer.alloc(65)])).toThrow(RangeError);
  });

  it('starts with the length-prefixed domain label', () => {
    const material = secretMaterial(utf8('pw'), []);
    expect(material.readUInt32BE(0)).toBe(SECRET_MATERIAL_LABEL.length);
    expect(material.subarray(4, 4 + SECRET_MATERIAL_LABEL.length).toString('ascii')).toBe('vault-secret-v1');
  });
});

describe('keyfile hasher', () => {
  const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));

  it('is BLAKE2b-512 of the whole file (noble and OpenSSL agree)', () => {
    const digest = digestOf(content);
    expect(digest).toHaveLength(KEYFILE_DIGEST_BYTES);
    expect(digest.equals(Buffer.from(blake2b(content, { dkLen: 64 })))).toBe(true);
    expect(digest.equals(createHash('blake2b512').update(content).digest())).toBe(true);
  });

  it('a file streamed in chunks of any size gives the one-shot digest', () => {
    const oneShot = digestOf(content);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 12 }), (cuts) => {
        const hasher = createKeyfileHasher();
        let offset = 0;
        for (const cut of cuts) {
          const end = Math.min(content.length, offset + cut);
          hasher.update(content.subarray(offset, end));
          offset = end;
        }
        hasher.update(content.subarray(offset));
        expect(hasher.bytes).toBe(content.length);
        expect(hasher.digest().equals(oneShot)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('counts bytes and refuses an empty keyfile', () => {
    const hasher = createKeyfileHasher();
    expect(hasher.bytes).toBe(0);
    hasher.update(new Uint8Array(0));
    expect(hasher.bytes).toBe(0);
    expect(() => hasher.digest()).toThrow(RangeError);
    hasher.update(utf8('abc'));
    expect(hasher.bytes).toBe(3);
    expect(hasher.digest()).toHaveLength(64);
  });

  it('one-byte keyfiles that differ give different digests', () => {
    expect(digestOf(hex('00')).equals(digestOf(hex('01')))).toBe(false);
  });

  it('cannot be reused after digest()', () => {
    const hasher = createKeyfileHasher();
    hasher.update(utf8('x'));
    hasher.digest();
    expect(() => hasher.update(utf8('y'))).toThrow(TypeError);
    expect(() => hasher.digest()).toThrow(TypeError);
  });
});

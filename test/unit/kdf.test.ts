// Argon2id cost levels and HKDF-SHA-512: RFC 9106 and Wycheproof vectors, the argon2 package against
// @noble/hashes with our exact options, bounds, and "must not change" pins of the format's outputs.
import { readFileSync } from 'node:fs';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { hash as argon2Hash, argon2id } from 'argon2';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  costMemoryCheck,
  costParams,
  DEFAULT_COST_LEVEL,
  deriveKdf,
  HKDF_SHA512_MAX_BYTES,
  hkdfSha512,
  hkdfSha512Bytes,
  KDF_OUTPUT_BYTES,
  MAX_COST_LEVEL,
  MIN_COST_LEVEL,
} from '../../src/crypto/kdf.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const loadVectors = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as T;

interface Argon2Vector {
  name: string;
  version: number;
  memoryKiB: number;
  iterations: number;
  parallelism: number;
  password: string;
  salt: string;
  secret: string;
  associatedData: string;
  tag: string;
}
interface HkdfVector {
  tcId: number;
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
}

describe('RFC 9106 Argon2id vector', () => {
  const { tests } = loadVectors<{ tests: Argon2Vector[] }>('rfc9106-argon2id.json');
  it('has vectors', () => expect(tests.length).toBeGreaterThan(0));
  for (const v of tests) {
    it(`argon2 package (the one deriveKdf uses): ${v.name}`, async () => {
      const tag = await argon2Hash(hex(v.password), {
        raw: true,
        type: argon2id,
        version: v.version,
        memoryCost: v.memoryKiB,
        timeCost: v.iterations,
        parallelism: v.parallelism,
        hashLength: v.tag.length / 2,
        salt: hex(v.salt),
        secret: hex(v.secret),
        associatedData: hex(v.associatedData),
      });
      expect(tag.toString('hex')).toBe(v.tag);
    });
    it(`@noble/hashes (the reference for the differential tests): ${v.name}`, () => {
      const tag = nobleArgon2id(hex(v.password), hex(v.salt), {
        m: v.memoryKiB,
        t: v.iterations,
        p: v.parallelism,
        version: v.version,
        dkLen: v.tag.length / 2,
        key: hex(v.secret),
        personalization: hex(v.associatedData),
      });
      expect(Buffer.from(tag).toString('hex')).toBe(v.tag);
    });
  }
});

describe('cost levels', () => {
  it('must not change: the (memory, iterations, parallelism) of every level', () => {
    // Levels are not stored in a vault: changing this table locks users out of existing vaults.
    const table = [];
    for (let level = MIN_COST_LEVEL; level <= MAX_COST_LEVEL; level++) {
      const { memoryKiB, iterations, parallelism } = costParams(level);
      table.push(`${level}:${memoryKiB}/${iterations}/${parallelism}`);
    }
    expect(table.join(' ')).toBe(
      '1:1024/1/2 2:2048/1/2 3:4096/1/2 4:8192/1/2 5:16384/1/2 6:32768/1/2 7:65536/1/2 8:131072/1/2 ' +
        '9:262144/1/2 10:524288/1/2 11:1048576/1/2 12:1048576/2/2 13:1048576/3/2 14:1048576/4/2 ' +
        '15:1048576/5/2 16:1048576/6/2 17:1048576/7/2 18:1048576/8/2 19:1048576/9/2 20:1048576/10/2 ' +
        '21:1048576/11/2 22:1048576/12/2 23:1048576/13/2 24:1048576/14/2 25:1048576/15/2 26:1048576/16/2 ' +
        '27:1048576/17/2 28:1048576/18/2 29:1048576/19/2 30:1048576/20/2',
    );
  });

  it('the default level uses at most 1 GiB and sits between the bounds', () => {
    expect(MIN_COST_LEVEL).toBeLessThan(DEFAULT_COST_LEVEL);
    expect(DEFAULT_COST_LEVEL).toBeLessThan(MAX_COST_LEVEL);
    expect(costParams(DEFAULT_COST_LEVEL).memoryKiB).toBeLessThanOrEqual(1024 * 1024);
  });

  it('every level costs more than the one below it, and no level exceeds 1 GiB', () => {
    for (let level = MIN_COST_LEVEL + 1; level <= MAX_COST_LEVEL; level++) {
      const lower = costParams(level - 1);
      const upper = costParams(level);
      expect(upper.memoryKiB * upper.iterations).toBeGreaterThan(lower.memoryKiB * lower.iterations);
      expect(upper.memoryKiB).toBeLessThanOrEqual(1024 * 1024);
    }
  });

  it.each([0, -1, MAX_COST_LEVEL + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses level %s',
    (level) => {
      expect(() => costParams(level)).toThrow(RangeError);
      expect(() => costMemoryCheck(level)).toThrow(RangeError);
    },
  );

  it('memory check: the lowest level fits here, and the need is the Argon2 memory', () => {
    const check = costMemoryCheck(MIN_COST_LEVEL);
    expect(check.neededBytes).toBe(1024 * 1024);
    expect(check.availableBytes).toBeGreaterThan(0);
    expect(check.fits).toBe(true);
    expect(costMemoryCheck(DEFAULT_COST_LEVEL).neededBytes).toBe(1024 ** 3);
  });
});

describe('deriveKdf', () => {
  const salt = Buffer.alloc(32, 0x5a);

  it('must not change: Argon2id at the lowest level of a fixed input', async () => {
    const output = await deriveKdf(Buffer.from('vault must-not-change'), salt, MIN_COST_LEVEL);
    expect(output.toString('hex')).toBe(
      '83a2df7d3ef538e86b30346b9a79753b42e3b7e60e7e021f82c9bb566e3b13a7' +
        'f1473546ebd261571428f05f0bf95bb556327af22dc21d6ee03207370277fb26',
    );
  });

  it('matches @noble/hashes argon2id with the parameters of levels 1-3', async () => {
    const material = Buffer.from('differential material \u00e9');
    for (const level of [1, 2, 3]) {
      const { memoryKiB, iterations, parallelism } = costParams(level);
      const reference = nobleArgon2id(material, salt, {
        m: memoryKiB,
        t: iterations,
        p: parallelism,
        dkLen: KDF_OUTPUT_BYTES,
        version: 0x13,
      });
      const output = await deriveKdf(material, salt, level);
      expect(output.toString('hex')).toBe(Buffer.from(reference).toString('hex'));
    }
  });

  it('the argon2 package equals noble on small parameter sets with our exact options', async () => {
    // Covers odd memory sizes, several lanes and passes, and salts/passwords of many lengths.
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        async (password, saltBytes, parallelism, extraKiB, iterations) => {
          const memoryKiB = 8 * parallelism + extraKiB;
          const options = {
            m: memoryKiB,
            t: iterations,
            p: parallelism,
            dkLen: KDF_OUTPUT_BYTES,
            version: 0x13,
          };
          const reference = Buffer.from(nobleArgon2id(password, saltBytes, options));
          const tag = await argon2Hash(Buffer.from(password), {
            raw: true,
            type: argon2id,
            version: 0x13,
            hashLength: KDF_OUTPUT_BYTES,
            memoryCost: memoryKiB,
            timeCost: iterations,
            parallelism,
            salt: Buffer.from(saltBytes),
          });
          expect(tag.equals(reference)).toBe(true);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('a different salt, level or material gives a different key', async () => {
    const material = Buffer.from('material');
    const base = await deriveKdf(material, salt, 1);
    expect(base).toHaveLength(64);
    expect((await deriveKdf(material, Buffer.alloc(32, 0x5b), 1)).equals(base)).toBe(false);
    expect((await deriveKdf(material, salt, 2)).equals(base)).toBe(false);
    expect((await deriveKdf(Buffer.from('materiaL'), salt, 1)).equals(base)).toBe(false);
  });

  it('leaves the caller’s material untouched', async () => {
    const material = Buffer.from('keep me');
    await deriveKdf(material, salt, 1);
    expect(material.toString()).toBe('keep me');
  });

  it('refuses a salt that is not 32 bytes, empty material and a bad level', async () => {
    await expect(deriveKdf(Buffer.from('x'), Buffer.alloc(16), 1)).rejects.toThrow(RangeError);
    await expect(deriveKdf(Buffer.from('x'), Buffer.alloc(33), 1)).rejects.toThrow(RangeError);
    await expect(deriveKdf(Buffer.alloc(0), salt, 1)).rejects.toThrow(RangeError);
    await expect(deriveKdf(Buffer.from('x'), salt, 0)).rejects.toThrow(RangeError);
    await expect(deriveKdf(Buffer.from('x'), salt, MAX_COST_LEVEL + 1)).rejects.toThrow(RangeError);
  });
});

describe('HKDF-SHA-512', () => {
  const { tests } = loadVectors<{ tests: HkdfVector[] }>('hkdf-sha512.json');
  it('has vectors', () => expect(tests.length).toBeGreaterThan(0));
  for (const v of tests) {
    it(`Wycheproof tcId ${v.tcId}`, () => {
      expect(hkdfSha512Bytes(hex(v.ikm), hex(v.salt), hex(v.info), v.size).toString('hex')).toBe(v.okm);
      if (v.salt === '' && v.info === '') {
        expect(hkdfSha512(hex(v.ikm), '', v.size).toString('hex')).toBe(v.okm);
      }
    });
  }

  it('must not change: the format’s labels on a fixed input', () => {
    const ikm = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    expect(hkdfSha512(ikm, 'vault v1 keyslot', 32).toString('hex')).toBe(
      '2b762e873fc5384e51eb793b9e61aeea1769f750287f895b48f23d962b1c2a06',
    );
    expect(hkdfSha512(ikm, 'vault v1 header', 32).toString('hex')).toBe(
      'c2964b8fd7aa76beaad6db6a596dfff56aa66b6d6e6a62c47d19d7da1827a20d',
    );
  });

  it('equals @noble/hashes hkdf with an empty salt and the UTF-8 label as info', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.integer({ min: 1, max: HKDF_SHA512_MAX_BYTES }),
        (ikm, label, length) => {
          const reference = nobleHkdf(
            sha512,
            ikm,
            new Uint8Array(0),
            new TextEncoder().encode(label),
            length,
          );
          expect(hkdfSha512(ikm, label, length).equals(Buffer.from(reference))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('distinct labels give unrelated keys', () => {
    const ikm = Buffer.alloc(64, 7);
    expect(hkdfSha512(ikm, 'vault v1 keyslot', 32).equals(hkdfSha512(ikm, 'vault v1 header', 32))).toBe(
      false,
    );
  });

  it('refuses empty key material and out-of-range lengths', () => {
    expect(() => hkdfSha512(Buffer.alloc(0), 'label', 32)).toThrow(RangeError);
    for (const length of [0, -1, 1.5, HKDF_SHA512_MAX_BYTES + 1]) {
      expect(() => hkdfSha512(Buffer.alloc(64, 1), 'label', length)).toThrow(RangeError);
    }
  });
});

// The foreign formats' key derivations (src/crypto/foreign-kdf.ts) at small costs, against references
// computed here from other code: PBKDF2 built in this file from @noble/hashes' HMAC (so neither
// OpenSSL's PBKDF2 nor noble's is its own judge), Whirlpool from Node's OpenSSL with its legacy
// provider, Argon2 from @noble/hashes, CRC-32 from zlib, and the published PBKDF2 vectors. The full
// volumes at real iteration counts are in foreign-tcrypt.test.ts and foreign-luks.test.ts; this file is
// what the mutation area "foreign-kdf" runs (scripts/mutation-area.mjs), in seconds.
import { execFileSync } from 'node:child_process';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { argon2i as nobleArgon2i, argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  addKeyfileToPool,
  afMerge,
  argon2,
  crc32,
  DIGEST_BYTES,
  PRFS,
  type Prf,
  parsePrf,
  pbkdf2,
  prfAvailable,
  TC_KEYFILE_BYTES,
  tcPassword,
  veracryptArgon2,
} from '../../src/crypto/foreign-kdf.js';

const NOBLE = { sha1, sha256, sha512, ripemd160, 'blake2s-256': blake2s } as const;
type NoblePrf = keyof typeof NOBLE;

/** PBKDF2 (RFC 8018 5.2) spelled out over noble's HMAC. */
function referencePbkdf2(
  prf: NoblePrf,
  password: Uint8Array,
  salt: Uint8Array,
  c: number,
  dkLen: number,
): Buffer {
  const hash = NOBLE[prf];
  const blocks: Buffer[] = [];
  for (let i = 1; blocks.length * hash.outputLen < dkLen; i++) {
    const index = Buffer.alloc(4);
    index.writeUInt32BE(i);
    let u = hmac(hash, password, Buffer.concat([salt, index]));
    const t = Buffer.from(u);
    for (let j = 1; j < c; j++) {
      u = hmac(hash, password, u);
      for (let k = 0; k < t.length; k++) t[k] = (t[k] as number) ^ (u[k] as number);
    }
    blocks.push(t);
  }
  return Buffer.concat(blocks).subarray(0, dkLen);
}

const password = Buffer.from('correct horse battery');
const salt = Buffer.from('00112233445566778899aabbccddeeff0123456789abcdef', 'hex');

describe('PRF names', () => {
  it('accepts the spellings headers and users write, and nothing else', () => {
    expect(parsePrf('sha1')).toBe('sha1');
    expect(parsePrf('SHA-256')).toBe('sha256');
    expect(parsePrf('sha_512')).toBe('sha512');
    expect(parsePrf('RIPEMD-160')).toBe('ripemd160');
    expect(parsePrf('Whirlpool')).toBe('whirlpool');
    expect(parsePrf('blake2s')).toBe('blake2s-256');
    expect(parsePrf('BLAKE2s-256')).toBe('blake2s-256');
    for (const name of ['md5', 'sha384', 'blake2b', 'argon2id', '', 'constructor', '__proto__', 'toString']) {
      expect(parsePrf(name), name).toBeNull();
    }
  });

  it('each PRF is available here and its digest size is the hash output', () => {
    expect(PRFS).toEqual(['sha1', 'sha256', 'sha512', 'ripemd160', 'whirlpool', 'blake2s-256']);
    for (const prf of PRFS) expect(prfAvailable(prf), prf).toBe(true);
    for (const prf of Object.keys(NOBLE) as NoblePrf[])
      expect(DIGEST_BYTES[prf], prf).toBe(NOBLE[prf].outputLen);
    expect(DIGEST_BYTES.whirlpool).toBe(64);
  });
});

describe('PBKDF2', () => {
  it('the published vectors: RFC 6070 (SHA-1), RFC 7914 (SHA-256), SHA-512', async () => {
    const hex = async (prf: Prf, p: string, s: string, c: number, length: number) =>
      (await pbkdf2(prf, Buffer.from(p), Buffer.from(s), c, length)).toString('hex');
    expect(await hex('sha1', 'password', 'salt', 1, 20)).toBe('0c60c80f961f0e71f3a9b524af6012062fe037a6');
    expect(await hex('sha1', 'password', 'salt', 2, 20)).toBe('ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957');
    expect(await hex('sha256', 'passwd', 'salt', 1, 64)).toBe(
      '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783',
    );
    expect(await hex('sha512', 'password', 'salt', 1, 64)).toBe(
      '867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce',
    );
  });

  it.each(Object.keys(NOBLE) as NoblePrf[])(
    '%s: equal to PBKDF2 over noble HMAC, across blocks',
    async (prf) => {
      // 2.5 digests: three blocks, the last cut; 3 iterations: the XOR of U1..U3.
      const length = Math.floor(NOBLE[prf].outputLen * 2.5);
      const ours = await pbkdf2(prf, password, salt, 3, length);
      expect(ours.toString('hex')).toBe(referencePbkdf2(prf, password, salt, 3, length).toString('hex'));
      expect((await pbkdf2(prf, password, salt, 1, 7)).toString('hex')).toBe(
        referencePbkdf2(prf, password, salt, 1, 7).toString('hex'),
      );
    },
  );

  it('whirlpool: equal to node:crypto with OpenSSL legacy provider', async () => {
    const ours = await pbkdf2('whirlpool', password, salt, 3, 160);
    const script = `process.stdout.write(require('node:crypto').pbkdf2Sync(Buffer.from('${password.toString('hex')}', 'hex'), Buffer.from('${salt.toString('hex')}', 'hex'), 3, 160, 'whirlpool').toString('hex'))`;
    const theirs = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
      encoding: 'utf8',
    });
    expect(ours.toString('hex')).toBe(theirs);
  });

  it('an empty password and salt are allowed; iterations must be a whole number >= 1', async () => {
    const empty = new Uint8Array(0);
    expect((await pbkdf2('sha256', empty, empty, 2, 32)).toString('hex')).toBe(
      referencePbkdf2('sha256', empty, empty, 2, 32).toString('hex'),
    );
    for (const iterations of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      await expect(pbkdf2('sha256', password, salt, iterations, 32), String(iterations)).rejects.toThrow(
        'PBKDF2 iterations must be >= 1',
      );
    }
  });

  it('returns a fresh Buffer of exactly the length asked, and leaves its inputs alone', async () => {
    const before = Buffer.from(password);
    const a = await pbkdf2('sha512', password, salt, 2, 100);
    const b = await pbkdf2('sha512', password, salt, 2, 100);
    expect(Buffer.isBuffer(a)).toBe(true);
    expect(a.length).toBe(100);
    expect(a).not.toBe(b);
    expect(a.equals(b)).toBe(true);
    expect(a.buffer).not.toBe(b.buffer);
    expect(password.equals(before)).toBe(true);
  });
});

describe('Argon2 as LUKS2 and VeraCrypt use it', () => {
  it.each([
    ['argon2id', 1],
    ['argon2id', 2],
    ['argon2i', 1],
    ['argon2i', 3],
  ] as const)('%s with %i lane(s): equal to @noble/hashes', async (type, parallelism) => {
    const params = { type, memoryKiB: 64, iterations: 2, parallelism };
    const ours = await argon2(params, password, salt, 48);
    const noble = type === 'argon2id' ? nobleArgon2id : nobleArgon2i;
    const theirs = noble(password, salt, { t: 2, m: 64, p: parallelism, dkLen: 48, version: 0x13 });
    expect(ours.toString('hex')).toBe(Buffer.from(theirs).toString('hex'));
    expect(ours.length).toBe(48);
  });

  it('an empty password works, and the caller keeps its bytes', async () => {
    const params = { type: 'argon2id' as const, memoryKiB: 32, iterations: 1, parallelism: 1 };
    const ours = await argon2(params, new Uint8Array(0), salt, 32);
    const theirs = nobleArgon2id(new Uint8Array(0), salt, { t: 1, m: 32, p: 1, dkLen: 32 });
    expect(ours.equals(Buffer.from(theirs))).toBe(true);
    const mine = Buffer.from(password);
    await argon2(params, mine, salt, 32);
    expect(mine.equals(password)).toBe(true);
  });

  it("VeraCrypt's parameters by PIM", () => {
    const MiB = 1024;
    const of = (pim: number | null) => veracryptArgon2(pim);
    expect(of(null)).toEqual({ type: 'argon2id', memoryKiB: 416 * MiB, iterations: 6, parallelism: 1 });
    expect(of(0)).toEqual(of(null));
    expect(of(-5)).toEqual(of(null));
    expect(of(12)).toEqual(of(null));
    expect(of(1)).toEqual({ type: 'argon2id', memoryKiB: 64 * MiB, iterations: 3, parallelism: 1 });
    expect(of(3).iterations).toBe(3);
    expect(of(4)).toMatchObject({ memoryKiB: 160 * MiB, iterations: 4 });
    expect(of(30)).toMatchObject({ memoryKiB: 992 * MiB, iterations: 12 });
    expect(of(31)).toMatchObject({ memoryKiB: 1024 * MiB, iterations: 13 });
    expect(of(32)).toMatchObject({ memoryKiB: 1024 * MiB, iterations: 14 });
    expect(of(100)).toMatchObject({ memoryKiB: 1024 * MiB, iterations: 82 });
  });
});

describe("LUKS's anti-forensic merge", () => {
  /** The diffusion spelled out: each digest-sized piece replaced by H(counter BE || piece), cut. */
  function diffuse(block: Buffer, prf: NoblePrf): Buffer {
    const size = NOBLE[prf].outputLen;
    const out = Buffer.alloc(block.length);
    for (let index = 0; index * size < block.length; index++) {
      const piece = block.subarray(index * size, Math.min((index + 1) * size, block.length));
      const counter = Buffer.alloc(4);
      counter.writeUInt32BE(index);
      out.set(NOBLE[prf](Buffer.concat([counter, piece])).subarray(0, piece.length), index * size);
    }
    return out;
  }
  const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((byte, i) => byte ^ (b[i] as number)));

  it.each([
    ['sha1', 32, 3],
    ['sha256', 64, 4],
    ['sha512', 32, 2],
    ['ripemd160', 48, 3],
  ] as const)('%s, %i-byte key, %i stripes: equal to the merge spelled out', (prf, keyBytes, stripes) => {
    const split = Buffer.from(Array.from({ length: keyBytes * stripes + 5 }, (_, i) => (i * 37 + 11) & 0xff));
    let accumulator: Buffer = Buffer.alloc(keyBytes);
    for (let i = 0; i < stripes - 1; i++) {
      accumulator = diffuse(xor(accumulator, split.subarray(i * keyBytes, (i + 1) * keyBytes)), prf);
    }
    const expected = xor(accumulator, split.subarray((stripes - 1) * keyBytes, stripes * keyBytes));
    const before = Buffer.from(split);
    expect(afMerge(split, keyBytes, stripes, prf).toString('hex')).toBe(expected.toString('hex'));
    expect(split.equals(before)).toBe(true);
  });

  it('one stripe is the key itself; the material must hold key size x stripes', () => {
    const split = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    expect(afMerge(split, 16, 1, 'sha256').equals(split)).toBe(true);
    expect(afMerge(split, 8, 2, 'sha256').length).toBe(8);
    expect(() => afMerge(split.subarray(0, 15), 8, 2, 'sha256')).toThrow('AF material is shorter');
    expect(() => afMerge(split, 8, 3, 'sha256')).toThrow(RangeError);
  });

  it('whirlpool diffusion works without the legacy provider in node:crypto', () => {
    // Not computable here without OpenSSL's legacy provider in node:crypto: it either works (then it
    // differs from the one-stripe key) or says why.
    const split = Buffer.alloc(64 * 2, 7);
    try {
      expect(afMerge(split, 64, 2, 'whirlpool').equals(split.subarray(64))).toBe(false);
    } catch (error) {
      expect((error as Error).message).toBe('whirlpool is not available in this Node.js');
    }
  });
});

describe('VeraCrypt and TrueCrypt keyfiles', () => {
  it('CRC-32 as zlib computes it', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff));
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
  });

  /** The pool spelled out with zlib: after byte i the running state is ~crc32(bytes[0..i]). */
  function referencePool(size: number, keyfiles: Buffer[]): Buffer {
    const pool = Buffer.alloc(size);
    for (const keyfile of keyfiles) {
      const data = keyfile.subarray(0, TC_KEYFILE_BYTES);
      let j = 0;
      for (let i = 0; i < data.length; i++) {
        const state = ~zlibCrc32(data.subarray(0, i + 1)) >>> 0;
        for (const shift of [24, 16, 8, 0]) {
          pool[j] = ((pool[j] as number) + ((state >>> shift) & 0xff)) & 0xff;
          j++;
        }
        j %= size;
      }
    }
    return pool;
  }

  it('adds each keyfile into the pool as the running CRC, wrapping at its end, in any order', () => {
    const first = Buffer.from(Array.from({ length: 40 }, (_, i) => (i * 59 + 3) & 0xff));
    const second = Buffer.from('a keyfile of text');
    for (const size of [64, 128]) {
      const pool = new Uint8Array(size);
      addKeyfileToPool(pool, first);
      addKeyfileToPool(pool, second);
      expect(Buffer.from(pool).toString('hex')).toBe(referencePool(size, [first, second]).toString('hex'));
      const reversed = new Uint8Array(size);
      addKeyfileToPool(reversed, second);
      addKeyfileToPool(reversed, first);
      expect(Buffer.from(reversed).equals(Buffer.from(pool))).toBe(true);
    }
  });

  it('only the first 1 MiB of a keyfile counts', () => {
    const big = Buffer.alloc(TC_KEYFILE_BYTES + 3, 0x5a);
    const pool = new Uint8Array(64);
    addKeyfileToPool(pool, big);
    const cut = new Uint8Array(64);
    addKeyfileToPool(cut, big.subarray(0, TC_KEYFILE_BYTES));
    expect(Buffer.from(pool).equals(Buffer.from(cut))).toBe(true);
    const longer = new Uint8Array(64);
    addKeyfileToPool(longer, Buffer.alloc(TC_KEYFILE_BYTES - 1, 0x5a));
    expect(Buffer.from(longer).equals(Buffer.from(cut))).toBe(false);
  });

  it('the PBKDF2 password: the password alone, or the pool with the password added in', () => {
    const plain = tcPassword(password, null);
    expect(plain.equals(password)).toBe(true);
    expect(plain).not.toBe(password);
    const pool = Buffer.from(Array.from({ length: 64 }, (_, i) => (250 + i) & 0xff));
    const poolBefore = Buffer.from(pool);
    const mixed = tcPassword(Buffer.from([1, 2, 10]), pool);
    expect(mixed.length).toBe(64);
    expect([...mixed.subarray(0, 4)]).toEqual([251, 253, 6, 253]);
    expect(mixed.subarray(3).equals(pool.subarray(3))).toBe(true);
    expect(pool.equals(poolBefore)).toBe(true);
    // A password longer than the pool: only the pool's length of it counts.
    const long = Buffer.alloc(100, 1);
    expect(tcPassword(long, Buffer.alloc(64)).equals(Buffer.alloc(64, 1))).toBe(true);
  });
});

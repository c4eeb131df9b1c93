// XTS-AES-256 sectors: the published vectors, a differential test against an independent XTS on
// @noble/ciphers AES, round trips, and the refusals, for every implementation this machine has.
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  activeXtsImplementation,
  availableXtsImplementations,
  createXts,
  SECTOR_SIZE,
  type XtsCipher,
  type XtsImplementation,
} from '../../src/crypto/xts.js';
import { referenceXts } from './xts-reference.js';

interface XtsVector {
  name: string;
  key: string;
  sectorSize: number;
  sector: string;
  plain: string;
  cipher: string;
}
interface VectorFile {
  source: string;
  vectors: XtsVector[];
}

const VECTOR_FILES = ['ieee1619-xts-aes256.json', 'nist-cavp-xts-aes256.json'];
const vectorFiles = VECTOR_FILES.map((name) => {
  const file = JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as VectorFile;
  return { name, file };
});

const implementations = availableXtsImplementations();
const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;
const TWO_POW_64 = 1n << 64n;

/** Deterministic bytes from a seed, so fast-check can shrink and replay failures. */
function seededBytes(seed: Uint8Array, length: number): Buffer {
  const stream = createCipheriv('aes-256-ctr', Buffer.from(seed), Buffer.alloc(16));
  return stream.update(Buffer.alloc(length));
}

function validKey(): Buffer {
  const key = randomBytes(64);
  key[0] = (key[32] ?? 0) ^ 1; // halves differ
  return key;
}

describe('XTS implementation in use', () => {
  it.runIf(process.env.VAULT_REQUIRE_ADDON === '1')(
    'the OpenSSL addon loaded (VAULT_REQUIRE_ADDON=1: the fallback would hide a 10x slowdown)',
    () => {
      expect(
        implementations,
        'VAULT_REQUIRE_ADDON=1 but build/Release/vault_xts.node did not load; run `npm run build` and read its output',
      ).toContain('openssl-addon');
      expect(activeXtsImplementation()).toBe(
        process.env.VAULT_XTS === 'node-crypto' ? 'node-crypto' : 'openssl-addon',
      );
    },
  );

  const savedChoice = process.env.VAULT_XTS;
  afterEach(() => {
    if (savedChoice === undefined) delete process.env.VAULT_XTS;
    else process.env.VAULT_XTS = savedChoice;
  });

  it('VAULT_XTS=node-crypto makes createXts use the node:crypto fallback', () => {
    process.env.VAULT_XTS = 'node-crypto';
    expect(activeXtsImplementation()).toBe('node-crypto');
    const xts = createXts(validKey());
    expect(xts.implementation).toBe('node-crypto');
    expect(xts.sectorSize).toBe(SECTOR_SIZE);
    xts.destroy();
  });

  it('without VAULT_XTS the addon is the default whenever it loaded', () => {
    delete process.env.VAULT_XTS;
    const expected: XtsImplementation = implementations.includes('openssl-addon')
      ? 'openssl-addon'
      : 'node-crypto';
    expect(activeXtsImplementation()).toBe(expected);
    const xts = createXts(validKey());
    expect(xts.implementation).toBe(expected);
    xts.destroy();
  });
});

describe('published vectors (IEEE 1619-2007 and NIST CAVP XTS-AES-256)', () => {
  const runners: Array<{
    label: string;
    run: (vector: XtsVector, direction: 'encrypt' | 'decrypt') => Buffer;
  }> = [
    ...implementations.map((implementation) => ({
      label: implementation,
      run: (vector: XtsVector, direction: 'encrypt' | 'decrypt') => {
        const xts = createXts(hex(vector.key), { sectorSize: vector.sectorSize, implementation });
        const input = hex(direction === 'encrypt' ? vector.plain : vector.cipher);
        const output = Buffer.alloc(input.length);
        xts[direction](input, BigInt(vector.sector), output);
        xts.destroy();
        return output;
      },
    })),
    {
      label: 'noble reference',
      run: (vector, direction) =>
        Buffer.from(
          referenceXts(
            direction,
            hex(vector.key),
            vector.sectorSize,
            BigInt(vector.sector),
            hex(direction === 'encrypt' ? vector.plain : vector.cipher),
          ),
        ),
    },
  ];

  for (const { name, file } of vectorFiles) {
    for (const { label, run } of runners) {
      it(`${label}: every vector of ${name} (${file.vectors.length}), both directions`, () => {
        expect(file.vectors.length).toBeGreaterThan(0);
        const failures: string[] = [];
        for (const vector of file.vectors) {
          if (run(vector, 'encrypt').toString('hex') !== vector.cipher)
            failures.push(`${vector.name} encrypt`);
          if (run(vector, 'decrypt').toString('hex') !== vector.plain)
            failures.push(`${vector.name} decrypt`);
        }
        expect(failures).toEqual([]);
      });
    }
  }
});

describe.each(implementations)('%s against the noble reference', (implementation) => {
  const edgeSectors: Array<number | bigint> = [
    0,
    1,
    TWO_POW_32 - 1,
    TWO_POW_32,
    TWO_POW_32 + 7,
    TWO_POW_53 - 64,
    TWO_POW_53,
    TWO_POW_64 - 64n,
  ];
  const firstSector = fc.oneof(
    fc.constantFrom(...edgeSectors),
    fc.integer({ min: 0, max: TWO_POW_32 * 4 }),
    fc.bigInt({ min: 0n, max: TWO_POW_64 - 64n }),
  );

  it('random keys, 4096-byte sectors, batches of 1..64 sectors: same bytes, both directions, in place or not', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        firstSector,
        fc.integer({ min: 1, max: 64 }),
        (seed, first, sectorCount) => {
          const key = seededBytes(seed, 64 + sectorCount * SECTOR_SIZE);
          const masterKey = key.subarray(0, 64);
          fc.pre(!masterKey.subarray(0, 32).equals(masterKey.subarray(32)));
          const plain = key.subarray(64);
          const expected = referenceXts('encrypt', masterKey, SECTOR_SIZE, BigInt(first), plain);
          const xts = createXts(masterKey, { implementation });
          try {
            const cipher = Buffer.alloc(plain.length);
            xts.encrypt(plain, first, cipher);
            expect(cipher.equals(expected)).toBe(true);

            const inPlace = Buffer.from(plain);
            xts.encrypt(inPlace, first);
            expect(inPlace.equals(cipher)).toBe(true);

            const decrypted = Buffer.alloc(plain.length);
            xts.decrypt(cipher, first, decrypted);
            expect(decrypted.equals(plain)).toBe(true);
            xts.decrypt(inPlace, first);
            expect(inPlace.equals(plain)).toBe(true);
          } finally {
            xts.destroy();
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a batch gives the same bytes as its sectors one at a time, and number and bigint indices agree', () => {
    const key = validKey();
    const xts = createXts(key, { implementation });
    for (const first of [0, TWO_POW_32 - 3, TWO_POW_53 - 32]) {
      const plain = randomBytes(32 * SECTOR_SIZE);
      const batch = Buffer.alloc(plain.length);
      xts.encrypt(plain, first, batch);
      const viaBigint = Buffer.alloc(plain.length);
      xts.encrypt(plain, BigInt(first), viaBigint);
      expect(viaBigint.equals(batch)).toBe(true);
      for (let j = 0; j < 32; j++) {
        const sector = plain.subarray(j * SECTOR_SIZE, (j + 1) * SECTOR_SIZE);
        const single = Buffer.alloc(SECTOR_SIZE);
        xts.encrypt(sector, first + j, single);
        expect(single.equals(batch.subarray(j * SECTOR_SIZE, (j + 1) * SECTOR_SIZE))).toBe(true);
      }
    }
    xts.destroy();
  });

  it('the last representable sector (2^64 - 1) works and matches the reference', () => {
    const key = validKey();
    const plain = randomBytes(SECTOR_SIZE);
    const xts = createXts(key, { implementation });
    const cipher = Buffer.alloc(SECTOR_SIZE);
    xts.encrypt(plain, TWO_POW_64 - 1n, cipher);
    expect(cipher.equals(referenceXts('encrypt', key, SECTOR_SIZE, TWO_POW_64 - 1n, plain))).toBe(true);
    xts.destroy();
  });
});

describe.runIf(implementations.length === 2)('addon and node:crypto fallback agree', () => {
  it('random keys, indices and batch sizes give identical ciphertext', () => {
    for (let round = 0; round < 40; round++) {
      const key = validKey();
      const sectorCount = 1 + (round % 64);
      const first = round % 2 === 0 ? Math.floor(Math.random() * TWO_POW_53) : TWO_POW_32 + round;
      const plain = randomBytes(sectorCount * SECTOR_SIZE);
      const [addon, fallback] = (['openssl-addon', 'node-crypto'] as const).map((implementation) =>
        createXts(key, { implementation }),
      ) as [XtsCipher, XtsCipher];
      const fromAddon = Buffer.alloc(plain.length);
      const fromFallback = Buffer.alloc(plain.length);
      addon.encrypt(plain, first, fromAddon);
      fallback.encrypt(plain, first, fromFallback);
      expect(fromAddon.equals(fromFallback)).toBe(true);
      fallback.decrypt(fromAddon, first);
      expect(fromAddon.equals(plain)).toBe(true);
      addon.destroy();
      fallback.destroy();
    }
  });
});

describe.each(implementations)('%s refuses what it cannot do, without writing anything', (implementation) => {
  const make = (key: Uint8Array, sectorSize?: number): XtsCipher =>
    createXts(key, sectorSize === undefined ? { implementation } : { implementation, sectorSize });

  it('keys: 64 bytes with differing halves only', () => {
    expect(() => make(new Uint8Array(63))).toThrow(RangeError);
    expect(() => make(new Uint8Array(65))).toThrow(RangeError);
    const half = randomBytes(32);
    expect(() => make(Buffer.concat([half, half]))).toThrow(/halves must differ/);
    expect(() => make('k'.repeat(64) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('sector sizes: multiples of 16, at least 16', () => {
    for (const sectorSize of [0, 8, 24, 4097, 1.5, -16, Number.NaN, 2 ** 25]) {
      expect(() => make(validKey(), sectorSize), String(sectorSize)).toThrow(RangeError);
    }
    expect(make(validKey(), 16).sectorSize).toBe(16);
  });

  it('buffers, indices and index overflow', () => {
    const xts = make(validKey());
    const sector = () => Buffer.alloc(SECTOR_SIZE, 7);
    const refusals: Array<[string, () => void, ErrorConstructor]> = [
      ['empty input', () => xts.encrypt(new Uint8Array(0), 0), RangeError],
      ['partial sector', () => xts.encrypt(new Uint8Array(SECTOR_SIZE + 16), 0), RangeError],
      ['short out', () => xts.encrypt(sector(), 0, new Uint8Array(SECTOR_SIZE - 16)), RangeError],
      ['not bytes', () => xts.decrypt(new Float32Array(1024) as unknown as Uint8Array, 0), TypeError],
      ['negative index', () => xts.encrypt(sector(), -1), RangeError],
      ['fractional index', () => xts.encrypt(sector(), 1.5), RangeError],
      ['NaN index', () => xts.encrypt(sector(), Number.NaN), RangeError],
      ['inexact index', () => xts.encrypt(sector(), TWO_POW_53 + 2), RangeError],
      ['negative bigint', () => xts.encrypt(sector(), -1n), RangeError],
      ['bigint 2^64', () => xts.encrypt(sector(), TWO_POW_64), RangeError],
      ['string index', () => xts.encrypt(sector(), '5' as unknown as number), TypeError],
    ];
    for (const [label, call, type] of refusals) expect(call, label).toThrow(type);

    const twoSectors = Buffer.alloc(2 * SECTOR_SIZE, 9);
    const out = Buffer.alloc(2 * SECTOR_SIZE, 5);
    expect(() => xts.encrypt(twoSectors, TWO_POW_64 - 1n, out)).toThrow(/exceeds 2\^64/);
    expect(out.every((byte) => byte === 5)).toBe(true);

    const shared = Buffer.alloc(3 * SECTOR_SIZE, 1);
    expect(() => xts.encrypt(shared.subarray(0, 2 * SECTOR_SIZE), 0, shared.subarray(SECTOR_SIZE))).toThrow(
      /overlap/,
    );
    expect(shared.every((byte) => byte === 1)).toBe(true);
    xts.destroy();
  });

  it('after destroy every call throws', () => {
    const xts = make(validKey());
    xts.destroy();
    xts.destroy();
    expect(() => xts.encrypt(Buffer.alloc(SECTOR_SIZE), 0)).toThrow(/destroyed/);
    expect(() => xts.decrypt(Buffer.alloc(SECTOR_SIZE), 0)).toThrow(/destroyed/);
  });
});

// The addon validates its own inputs too (it must never crash the process, whoever calls it).
interface RawContext {
  encrypt(input: unknown, first: unknown, out?: unknown): void;
  decrypt(input: unknown, first: unknown, out?: unknown): void;
  destroy(): void;
}
describe.runIf(implementations.includes('openssl-addon'))('the native addon on its own', () => {
  // Loaded lazily: describe bodies run even when skipped, and then the file may not exist.
  const loadNative = () =>
    createRequire(import.meta.url)('../../build/Release/vault_xts.node') as {
      XtsContext: new (key: unknown, sectorSize: unknown) => RawContext;
    };

  it('refuses bad keys and sector sizes with RangeError/TypeError', () => {
    const native = loadNative();
    const key = validKey();
    const sameHalves = Buffer.concat([key.subarray(0, 32), key.subarray(0, 32)]);
    expect(() => new native.XtsContext(key.subarray(0, 63), 4096)).toThrow(RangeError);
    expect(() => new native.XtsContext(sameHalves, 4096)).toThrow(RangeError);
    expect(() => new native.XtsContext([...key], 4096)).toThrow(TypeError);
    expect(() => new native.XtsContext(key, '4096')).toThrow(TypeError);
    const callWithoutNew = native.XtsContext as unknown as (key: unknown, sectorSize: unknown) => unknown;
    expect(() => callWithoutNew(key, 4096)).toThrow(TypeError);
    const context = new native.XtsContext(key, 4096);
    expect(() => context.encrypt.call({}, Buffer.alloc(4096), 0)).toThrow(TypeError);
    context.destroy();
    for (const sectorSize of [0, 8, 4100, 16.5, -4096, Number.POSITIVE_INFINITY, 2 ** 25]) {
      expect(() => new native.XtsContext(key, sectorSize), String(sectorSize)).toThrow(RangeError);
    }
  });

  it('refuses bad buffers and indices, and writes nothing when it does', () => {
    const context = new (loadNative().XtsContext)(validKey(), 4096);
    const sector = Buffer.alloc(4096, 3);
    const refusals: Array<[string, () => void, ErrorConstructor]> = [
      ['no arguments', () => context.encrypt(undefined, undefined), TypeError],
      ['DataView input', () => context.encrypt(new DataView(new ArrayBuffer(4096)), 0), TypeError],
      ['Uint16Array input', () => context.encrypt(new Uint16Array(2048), 0), TypeError],
      ['empty', () => context.encrypt(new Uint8Array(0), 0), RangeError],
      ['ragged', () => context.encrypt(new Uint8Array(4100), 0), RangeError],
      ['out length', () => context.encrypt(sector, 0, new Uint8Array(8192)), RangeError],
      ['negative', () => context.encrypt(sector, -1), RangeError],
      ['fraction', () => context.encrypt(sector, 0.5), RangeError],
      ['above 2^53', () => context.encrypt(sector, 2 ** 54), RangeError],
      ['infinity', () => context.encrypt(sector, Number.POSITIVE_INFINITY), RangeError],
      ['negative bigint', () => context.encrypt(sector, -5n), RangeError],
      ['bigint 2^64', () => context.encrypt(sector, TWO_POW_64), RangeError],
      ['object index', () => context.encrypt(sector, {}), TypeError],
      ['overflow', () => context.encrypt(Buffer.alloc(8192), TWO_POW_64 - 1n), RangeError],
    ];
    for (const [label, call, type] of refusals) expect(call, label).toThrow(type);
    expect(sector.every((byte) => byte === 3)).toBe(true);
    context.encrypt(sector, TWO_POW_64 - 1n); // the very last sector is fine
    expect(sector.every((byte) => byte === 3)).toBe(false);
    context.destroy();
    expect(() => context.decrypt(sector, 0)).toThrow(/destroyed/);
  });
});

// The argument checks of src/crypto that stand in front of OpenSSL and the addon: each refusal is ours
// (its own message, before anything is written), and each bound accepts its last valid value. Also the
// small pieces everything else trusts: the AEAD, wipe, randomBytes, locked key memory, the keyfile
// hasher's one-shot rule and the sector-cipher suites' layouts, keys and destroy.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AEAD_TAG_BYTES, open, seal } from '../../src/crypto/aead.js';
import { hkdfSha512, hkdfSha512Bytes } from '../../src/crypto/kdf.js';
import { createKeyfileHasher, secretMaterial } from '../../src/crypto/keyfiles.js';
import { hardenProcess, keyMemoryLocked, lockedBuffer, moveToLocked } from '../../src/crypto/memory.js';
import { nativeAddon } from '../../src/crypto/native.js';
import { randomBytes, wipe } from '../../src/crypto/random.js';
import { AES_CBC_ESSIV_SHA256, AES_XTS_PLAIN64, type SectorLayout } from '../../src/crypto/suites.js';
import {
  activeXtsImplementation,
  availableXtsImplementations,
  checkXtsKey,
  createXts,
  isUsableXtsKey,
  type XtsImplementation,
} from '../../src/crypto/xts.js';
import { referenceXts } from './xts-reference.js';

const SECTOR = 4096;

function key64(): Buffer {
  const key = nodeRandomBytes(64);
  key[0] = (key[32] as number) ^ 1;
  return key;
}

/** Runs `call`, expects our own refusal (`type`, `message`), and `out` untouched. */
function refused(call: () => void, type: ErrorConstructor, message: RegExp, out?: Uint8Array): void {
  const before = out ? Buffer.from(out) : null;
  expect(call).toThrow(type);
  expect(call).toThrow(message);
  if (out && before) expect(Buffer.from(out).equals(before)).toBe(true);
}

describe.each(availableXtsImplementations())(
  'XTS (%s): our checks refuse first, and every bound is exact',
  (name) => {
    const implementation = name as XtsImplementation;
    const make = (sectorSize = SECTOR) => createXts(key64(), { implementation, sectorSize });

    it('keys', () => {
      refused(
        () => createXts('k'.repeat(64) as unknown as Uint8Array, { implementation }),
        TypeError,
        /key must be a Uint8Array/,
      );
      refused(
        () => createXts(new Uint8Array(63), { implementation }),
        RangeError,
        /^XTS-AES-256 key must be 64 bytes$/,
      );
      const half = nodeRandomBytes(32);
      refused(
        () => createXts(Buffer.concat([half, half]), { implementation }),
        RangeError,
        /halves must differ/,
      );
    });

    it('sector sizes: a number, a multiple of 16, up to 16 MiB', () => {
      refused(() => make('4096' as unknown as number), TypeError, /sectorSize must be a number/);
      refused(() => make(2 ** 24 + 16), RangeError, /multiple of 16 between 16 and 16 MiB/);
      expect(make(2 ** 24).sectorSize).toBe(2 ** 24);
      expect(make(16).sectorSize).toBe(16);
    });

    it('buffers and sector indexes', () => {
      const xts = make();
      const sector = () => Buffer.alloc(SECTOR, 7);
      const out = Buffer.alloc(SECTOR, 5);
      refused(
        () => xts.encrypt(new Float32Array(1024) as unknown as Uint8Array, 0, out),
        TypeError,
        /input must be a Uint8Array/,
        out,
      );
      refused(
        () => xts.encrypt(sector(), 0, [...out] as unknown as Uint8Array),
        TypeError,
        /out must be a Uint8Array/,
      );
      refused(() => xts.encrypt(sector(), 0, Buffer.alloc(SECTOR - 16)), RangeError, /same length as input/);
      refused(() => xts.encrypt(new Uint8Array(0), 0), RangeError, /positive multiple of the sector size/);
      for (const index of [-1, 1.5, Number.NaN, 2 ** 53 + 2]) {
        refused(() => xts.encrypt(sector(), index, out), RangeError, /integer between 0 and 2\^53/, out);
      }
      for (const index of [-1n, 2n ** 64n]) {
        refused(() => xts.encrypt(sector(), index, out), RangeError, /bigint between 0 and 2\^64 - 1/, out);
      }
      refused(
        () => xts.encrypt(sector(), '5' as unknown as number, out),
        TypeError,
        /number or a bigint/,
        out,
      );
      // The last index of each kind is accepted and means what the reference says.
      const plain = sector();
      const key = key64();
      const exact = createXts(key, { implementation });
      for (const index of [2 ** 53, 2n ** 64n - 1n]) {
        const encrypted = Buffer.alloc(SECTOR);
        exact.encrypt(plain, index, encrypted);
        const reference = Buffer.from(referenceXts('encrypt', key, SECTOR, BigInt(index), plain));
        expect(encrypted.equals(reference), String(index)).toBe(true);
      }
      exact.destroy();
      xts.destroy();
    });

    it('out may be input itself or anywhere outside it in the same memory, never partly over it', () => {
      const xts = make();
      const shared = Buffer.alloc(3 * SECTOR, 1);
      const input = shared.subarray(SECTOR, 2 * SECTOR);
      // Right after and right before the input: fine.
      xts.encrypt(input, 0, shared.subarray(2 * SECTOR));
      xts.encrypt(input, 0, shared.subarray(0, SECTOR));
      refused(
        () => xts.encrypt(input, 0, shared.subarray(SECTOR + 16, 2 * SECTOR + 16)),
        RangeError,
        /overlap/,
      );
      refused(
        () => xts.encrypt(input, 0, shared.subarray(SECTOR - 16, 2 * SECTOR - 16)),
        RangeError,
        /overlap/,
      );
      xts.encrypt(input, 0);
      xts.destroy();
    });
  },
);

describe('which XTS implementation', () => {
  it('an unknown implementation is refused, VAULT_XTS=node-crypto forces the fallback', () => {
    refused(
      () => createXts(key64(), { implementation: 'bogus' as XtsImplementation }),
      TypeError,
      /unknown XTS implementation: bogus/,
    );
    const saved = process.env.VAULT_XTS;
    try {
      process.env.VAULT_XTS = 'node-crypto';
      expect(activeXtsImplementation()).toBe('node-crypto');
      expect(createXts(key64()).implementation).toBe('node-crypto');
    } finally {
      if (saved === undefined) delete process.env.VAULT_XTS;
      else process.env.VAULT_XTS = saved;
    }
    expect(availableXtsImplementations()).toContain('node-crypto');
    expect(availableXtsImplementations()).toContain(activeXtsImplementation());
  });

  it('checkXtsKey with other allowed sizes (its messages); isUsableXtsKey says the same as a yes/no', () => {
    expect(() => checkXtsKey(key64().subarray(0, 32), [32, 64])).not.toThrow();
    refused(() => checkXtsKey(new Uint8Array(48), [32, 64]), RangeError, /^XTS key must be 32 or 64 bytes$/);
    refused(() => checkXtsKey(new Uint8Array(64), [64, 32]), RangeError, /halves must differ/);
    refused(() => checkXtsKey(new Uint8Array(48), [64, 32]), RangeError, /^XTS key must be 64 or 32 bytes$/);
    refused(() => checkXtsKey(new Uint8Array(16), [32]), RangeError, /^XTS key must be 32 bytes$/);
    expect(isUsableXtsKey(key64())).toBe(true);
    expect(isUsableXtsKey(new Uint8Array(64))).toBe(false);
    expect(isUsableXtsKey(key64().subarray(0, 63))).toBe(false);
    expect(isUsableXtsKey(key64().subarray(0, 32), [32])).toBe(true);
  });
});

describe('the AEAD', () => {
  const key = nodeRandomBytes(32);
  const nonce = nodeRandomBytes(24);
  const ad = Buffer.from('ad');

  it('opens what it sealed (an empty plaintext too), and nothing changed or shortened', () => {
    const sealed = seal(key, nonce, Buffer.from('secret'), ad);
    expect(sealed.length).toBe(6 + AEAD_TAG_BYTES);
    expect(Buffer.from(open(key, nonce, sealed, ad) as Uint8Array).toString()).toBe('secret');
    const empty = seal(key, nonce, new Uint8Array(0), ad);
    expect(empty.length).toBe(AEAD_TAG_BYTES);
    expect(open(key, nonce, empty, ad)?.length).toBe(0);
    expect(open(key, nonce, empty.subarray(1), ad)).toBeNull();
    expect(open(key, nonce, new Uint8Array(0), ad)).toBeNull();
    const changed = Uint8Array.from(sealed);
    changed[0] = (changed[0] as number) ^ 1;
    expect(open(key, nonce, changed, ad)).toBeNull();
    expect(open(key, nonce, sealed, Buffer.from('other'))).toBeNull();
    expect(open(nodeRandomBytes(32), nonce, sealed, ad)).toBeNull();
  });

  it('refuses keys and nonces of other sizes', () => {
    refused(
      () => seal(key.subarray(0, 31), nonce, new Uint8Array(1), ad),
      RangeError,
      /AEAD key must be 32 bytes/,
    );
    refused(
      () => open(key, nonce.subarray(0, 12), new Uint8Array(32), ad),
      RangeError,
      /AEAD nonce must be 24 bytes/,
    );
  });
});

describe('wipe, randomBytes and locked key memory', () => {
  it('wipe zeroes every buffer given and skips null and undefined', () => {
    const a = Buffer.alloc(16, 0xaa);
    const b = new Uint8Array(8).fill(3);
    wipe(a, null, undefined, b);
    expect(a.every((byte) => byte === 0) && b.every((byte) => byte === 0)).toBe(true);
  });

  it('randomBytes gives fresh bytes of the length asked', () => {
    const one = randomBytes(32);
    expect(one.length).toBe(32);
    expect(one.equals(randomBytes(32))).toBe(false);
    expect(one.equals(Buffer.alloc(32))).toBe(false);
  });

  it('moveToLocked copies and wipes the source; lockedBuffer is zeroed; hardenProcess is idempotent; keyMemoryLocked is the addon answer', () => {
    const source = Buffer.alloc(64, 9);
    const locked = moveToLocked(source);
    expect(locked.length).toBe(64);
    expect(locked.every((byte) => byte === 9)).toBe(true);
    expect(source.every((byte) => byte === 0)).toBe(true);
    expect(lockedBuffer(0).length).toBe(0);
    const fresh = lockedBuffer(48);
    expect(fresh.length).toBe(48);
    expect(fresh.every((byte) => byte === 0)).toBe(true);
    const hardening = hardenProcess();
    expect(typeof hardening.dumpable).toBe('boolean');
    expect(hardenProcess()).toBe(hardening);
    expect(keyMemoryLocked()).toBe(nativeAddon ? nativeAddon.lockedPagesOk() : false);
  });

  it.runIf(nativeAddon?.lockedPagesOk() === true)(
    'with the addon, key memory is locked in RAM (VmLck grows)',
    () => {
      const lockedKiB = () =>
        Number(/^VmLck:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
      const before = lockedKiB();
      const keys = [lockedBuffer(4096), moveToLocked(Buffer.alloc(64, 1))];
      expect(lockedKiB()).toBeGreaterThanOrEqual(before + 8);
      expect(keys[1]?.[0]).toBe(1);
    },
  );
});

describe('HKDF and the keyfile hasher', () => {
  it('HKDF refuses empty key material and lengths outside 1..16320, with its own messages', () => {
    refused(() => hkdfSha512(new Uint8Array(0), 'x', 32), RangeError, /input key material is empty/);
    refused(
      () => hkdfSha512(Buffer.alloc(64, 1), 'x', 0),
      RangeError,
      /output length must be an integer from 1 to 16320/,
    );
    refused(() => hkdfSha512(Buffer.alloc(64, 1), 'x', 16321), RangeError, /from 1 to 16320/);
    expect(hkdfSha512Bytes(Buffer.alloc(64, 1), new Uint8Array(0), new Uint8Array(0), 16320).length).toBe(
      16320,
    );
    expect(hkdfSha512(Buffer.alloc(64, 1), 'x', 1).length).toBe(1);
  });

  it('a hasher gives one digest; it refuses updates after it and an empty keyfile', () => {
    const hasher = createKeyfileHasher();
    refused(() => hasher.digest(), RangeError, /an empty keyfile adds no secret/);
    hasher.update(Buffer.from('key'));
    hasher.digest();
    refused(() => hasher.update(Buffer.from('more')), TypeError, /already finished/);
    refused(() => hasher.digest(), TypeError, /already finished/);
  });

  it('secretMaterial refuses what has no secret and digests of other sizes', () => {
    refused(() => secretMaterial(new Uint8Array(0), []), RangeError, /allowed only together with a keyfile/);
    refused(
      () => secretMaterial(Buffer.from('p'), [new Uint8Array(63)]),
      RangeError,
      /must be 64 bytes, got 63/,
    );
    // A password whose length does not fit the 4-byte length prefix (a stand-in: 4 GiB cannot be allocated here).
    const huge = { length: 2 ** 32 } as unknown as Uint8Array;
    refused(() => secretMaterial(huge, []), RangeError, /password too long/);
  });
});

describe('sector-cipher suites', () => {
  const layout: SectorLayout = { sectorBytes: 512, ivUnitBytes: 512, ivOffset: 0 };

  it('refuse layouts that do not describe whole blocks and IV units', () => {
    for (const bad of [
      { sectorBytes: 0, ivUnitBytes: 512, ivOffset: 0 },
      { sectorBytes: 8, ivUnitBytes: 8, ivOffset: 0 },
      { sectorBytes: 520, ivUnitBytes: 520, ivOffset: 0 },
      { sectorBytes: 512.5, ivUnitBytes: 512, ivOffset: 0 },
    ]) {
      refused(
        () => AES_XTS_PLAIN64.create(key64(), bad),
        RangeError,
        /sectorBytes must be a positive multiple of 16/,
      );
    }
    for (const ivUnitBytes of [0, -512, 1.5, 384]) {
      refused(
        () => AES_XTS_PLAIN64.create(key64(), { ...layout, ivUnitBytes }),
        RangeError,
        /ivUnitBytes must divide/,
      );
    }
    for (const ivOffset of [-1, 0.5, 2 ** 53]) {
      refused(
        () => AES_CBC_ESSIV_SHA256.create(Buffer.alloc(32, 1), { ...layout, ivOffset }),
        RangeError,
        /ivOffset must be >= 0/,
      );
    }
    // The smallest sector is one block.
    expect(
      AES_XTS_PLAIN64.create(key64(), { sectorBytes: 16, ivUnitBytes: 16, ivOffset: 0 }).layout.sectorBytes,
    ).toBe(16);
  });

  it('AES-XTS: a 64-byte key uses the XTS implementation, a 32-byte key AES-128-XTS; both match the reference per sector; destroy twice', () => {
    const key = key64();
    const xts = AES_XTS_PLAIN64.create(key, { sectorBytes: SECTOR, ivUnitBytes: SECTOR, ivOffset: 3 });
    expect(xts.implementation).toBe(activeXtsImplementation());
    const plain = nodeRandomBytes(2 * SECTOR);
    const out = Buffer.alloc(plain.length);
    xts.encrypt(plain, 5, out);
    expect(out.equals(Buffer.from(referenceXts('encrypt', key, SECTOR, 8n, plain)))).toBe(true);
    xts.destroy();
    xts.destroy();
    refused(() => xts.encrypt(plain, 0, out), Error, /destroyed/);

    const short = key64().subarray(0, 32);
    const aes128 = AES_XTS_PLAIN64.create(short, { sectorBytes: SECTOR, ivUnitBytes: 512, ivOffset: 0 });
    expect(aes128.implementation).toBe('node-crypto');
    const encrypted = Buffer.alloc(plain.length);
    aes128.encrypt(plain, 1, encrypted);
    expect(encrypted.equals(plain)).toBe(false);
    const back = Buffer.alloc(plain.length);
    aes128.decrypt(encrypted, 1, back);
    expect(back.equals(plain)).toBe(true);
    // 4096-byte sectors with 512-byte IV units: the second sector written (data sector 2) has IV 16, as
    // sector 16 of a layout whose IV unit is the sector itself.
    const unitStride = AES_XTS_PLAIN64.create(short, {
      sectorBytes: SECTOR,
      ivUnitBytes: SECTOR,
      ivOffset: 0,
    });
    const asEight = Buffer.alloc(SECTOR);
    unitStride.decrypt(encrypted.subarray(SECTOR), 16, asEight);
    expect(asEight.equals(plain.subarray(SECTOR))).toBe(true);
    unitStride.decrypt(encrypted.subarray(SECTOR), 2, asEight);
    expect(asEight.equals(plain.subarray(SECTOR))).toBe(false);
    unitStride.destroy();
    aes128.destroy();
    refused(() => aes128.decrypt(encrypted, 1), Error, /destroyed/);
  });

  it('run checks: same-length out, whole sectors, a safe non-negative index', () => {
    for (const suite of [AES_XTS_PLAIN64, AES_CBC_ESSIV_SHA256]) {
      const cipher = suite.create(suite === AES_XTS_PLAIN64 ? key64() : Buffer.alloc(32, 2), layout);
      const out = Buffer.alloc(512, 4);
      refused(
        () => cipher.encrypt(Buffer.alloc(512), 0, Buffer.alloc(496)),
        RangeError,
        /same length as input/,
      );
      refused(
        () => cipher.encrypt(Buffer.alloc(0), 0, Buffer.alloc(0)),
        RangeError,
        /positive multiple of the sector size/,
      );
      refused(
        () => cipher.encrypt(Buffer.alloc(768), 0, Buffer.alloc(768)),
        RangeError,
        /positive multiple of the sector size/,
      );
      for (const index of [-1, 1.5, 2 ** 53]) {
        refused(() => cipher.encrypt(Buffer.alloc(512), index, out), RangeError, /non-negative integer/, out);
      }
      cipher.destroy();
    }
  });

  it('names, and the IV of a sector larger than its IV unit (CBC-ESSIV with 512-byte units)', () => {
    expect(AES_XTS_PLAIN64.describe(64)).toBe('AES-256-XTS');
    expect(AES_XTS_PLAIN64.describe(32)).toBe('AES-128-XTS');
    expect(AES_CBC_ESSIV_SHA256.describe(32)).toBe('AES-256-CBC-ESSIV:SHA256');
    expect(AES_CBC_ESSIV_SHA256.describe(16)).toBe('AES-128-CBC-ESSIV:SHA256');
    const key = nodeRandomBytes(32);
    const wide = AES_CBC_ESSIV_SHA256.create(key, { sectorBytes: SECTOR, ivUnitBytes: 512, ivOffset: 0 });
    const unit = AES_CBC_ESSIV_SHA256.create(key, { sectorBytes: SECTOR, ivUnitBytes: SECTOR, ivOffset: 0 });
    const plain = nodeRandomBytes(SECTOR);
    const a = Buffer.alloc(SECTOR);
    const b = Buffer.alloc(SECTOR);
    wide.encrypt(plain, 3, a);
    unit.encrypt(plain, 24, b);
    expect(a.equals(b)).toBe(true);
    unit.encrypt(plain, 3, b);
    expect(a.equals(b)).toBe(false);
  });

  it('CBC-ESSIV: keys of 16, 24 or 32 bytes; one IV per sector from the sector number; destroy wipes, twice', () => {
    refused(
      () => AES_CBC_ESSIV_SHA256.checkKey('k' as unknown as Uint8Array),
      TypeError,
      /key must be a Uint8Array/,
    );
    refused(() => AES_CBC_ESSIV_SHA256.create(Buffer.alloc(20), layout), RangeError, /16, 24 or 32 bytes/);
    for (const length of [16, 24, 32]) {
      const cipher = AES_CBC_ESSIV_SHA256.create(nodeRandomBytes(length), layout);
      expect(cipher.implementation).toBe('node-crypto');
      const plain = nodeRandomBytes(3 * 512);
      const all = Buffer.alloc(plain.length);
      cipher.encrypt(plain, 10, all);
      // Sector by sector gives the same bytes as the run: sector j uses IV(10 + j), nothing chains across.
      for (let j = 0; j < 3; j++) {
        const one = Buffer.alloc(512);
        cipher.encrypt(plain.subarray(j * 512, (j + 1) * 512), 10 + j, one);
        expect(one.equals(all.subarray(j * 512, (j + 1) * 512))).toBe(true);
      }
      // Identical plaintext sectors encrypt differently (the IV depends on the sector).
      const same = Buffer.alloc(1024, 7);
      const twice = Buffer.alloc(1024);
      cipher.encrypt(same, 0, twice);
      expect(twice.subarray(0, 512).equals(twice.subarray(512))).toBe(false);
      const back = Buffer.alloc(plain.length);
      cipher.decrypt(all, 10, back);
      expect(back.equals(plain)).toBe(true);
      cipher.destroy();
      cipher.destroy(); // a second destroy is harmless
      refused(() => cipher.encrypt(plain, 10, all), Error, /destroyed/);
    }
  });
});

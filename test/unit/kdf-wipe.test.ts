// What deriveKdf and HKDF do with the bytes around the secret (src/crypto/kdf.ts), observed by
// standing in for the argon2 package, node:crypto's hkdfSync and os.freemem: every intermediate that
// held secret material or key bytes is zero afterwards, the parameters of the level reach argon2, a
// wrong-length output is refused, and a level whose memory is not available is refused before any
// hashing, to the byte. The real argon2 and HKDF are pinned by kdf.test.ts and the vectors.
import { createRequire } from 'node:module';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const seen = vi.hoisted(() => ({
  password: null as Uint8Array | null,
  output: null as Buffer | null,
  options: null as Record<string, unknown> | null,
  outputLength: 64,
  fail: null as Error | null,
  hkdf: null as Uint8Array | null,
  freemem: 0,
  calls: 0,
}));

// kdf.ts loads the CommonJS argon2 package with require: this is the same module object, so its hash
// is replaced on it (vi.mock would only reach an ES import).
const argon2 = createRequire(import.meta.url)('argon2') as typeof import('argon2');
vi.spyOn(argon2, 'hash').mockImplementation((async (
  password: ArrayBuffer,
  options: Record<string, unknown>,
) => {
  seen.calls++;
  seen.password = new Uint8Array(password);
  if (seen.fail) throw seen.fail;
  seen.options = options;
  seen.output = Buffer.alloc(seen.outputLength, 0x5a);
  return seen.output;
}) as unknown as typeof argon2.hash);

vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return {
    ...original,
    hkdfSync: (...args: Parameters<typeof original.hkdfSync>) => {
      const result = original.hkdfSync(...args);
      seen.hkdf = new Uint8Array(result);
      return result;
    },
  };
});

vi.mock('node:os', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:os')>();
  return { ...original, freemem: () => seen.freemem };
});

const { argon2id } = argon2;
const { costMemoryCheck, costParams, deriveKdf, hkdfSha512 } = await import('../../src/crypto/kdf.js');
const { checkCostFits } = await import('../../src/container/header-pair.js');

const MiB = 2 ** 20;
const salt = Buffer.alloc(32, 1);

beforeEach(() => {
  seen.password = null;
  seen.output = null;
  seen.options = null;
  seen.outputLength = 64;
  seen.fail = null;
  seen.calls = 0;
  seen.freemem = 64 * 2 ** 30;
});

describe('deriveKdf around the argon2 call', () => {
  it('hands argon2 the level parameters and a private copy of the material, then wipes both copies', async () => {
    const material = Buffer.from('the secret material');
    const output = await deriveKdf(material, salt, 3);
    expect(seen.options).toMatchObject({
      raw: true,
      type: argon2id,
      version: 0x13,
      hashLength: 64,
      memoryCost: costParams(3).memoryKiB,
      timeCost: costParams(3).iterations,
      parallelism: 2,
    });
    expect(Buffer.from(seen.options?.salt as Buffer).equals(salt)).toBe(true);
    // The caller's material is untouched; the copy argon2 saw is zero now, and so is its output buffer.
    expect(material.toString()).toBe('the secret material');
    expect(seen.password?.length).toBe(material.length);
    expect(seen.password?.every((byte) => byte === 0)).toBe(true);
    expect(seen.output?.every((byte) => byte === 0)).toBe(true);
    // The result is a copy we own.
    expect(output.equals(Buffer.alloc(64, 0x5a))).toBe(true);
  });

  it('refuses an output of another length, and still wipes', async () => {
    seen.outputLength = 32;
    await expect(deriveKdf(Buffer.from('m'), salt, 1)).rejects.toThrow(/wrong-length output/);
    expect(seen.password?.every((byte) => byte === 0)).toBe(true);
    expect(seen.output?.every((byte) => byte === 0)).toBe(true);
  });

  it('an argon2 failure comes through as itself, with the material copy wiped', async () => {
    seen.fail = new Error('argon2 failed: out of memory');
    await expect(deriveKdf(Buffer.from('m'), salt, 1)).rejects.toBe(seen.fail);
    expect(seen.password?.every((byte) => byte === 0)).toBe(true);
  });

  it('refuses empty material and salts of another size before hashing', async () => {
    await expect(deriveKdf(new Uint8Array(0), salt, 1)).rejects.toThrow(/secret material is empty/);
    await expect(deriveKdf(Buffer.from('m'), salt.subarray(0, 31), 1)).rejects.toThrow(
      /KDF salt must be 32 bytes/,
    );
    await expect(deriveKdf(Buffer.from('m'), salt, 0)).rejects.toThrow(
      /cost level must be an integer from 1 to 30/,
    );
    expect(seen.calls).toBe(0);
  });
});

describe('the memory a level needs', () => {
  it('fits exactly when available, is refused one byte short, without hashing', async () => {
    seen.freemem = MiB;
    expect(costMemoryCheck(1)).toEqual({ neededBytes: MiB, availableBytes: MiB, fits: true });
    await deriveKdf(Buffer.from('m'), salt, 1);
    expect(seen.calls).toBe(1);
    seen.freemem = MiB - 1;
    expect(costMemoryCheck(1).fits).toBe(false);
    await expect(deriveKdf(Buffer.from('m'), salt, 1)).rejects.toThrow(
      /^cost level 1 needs 1 MiB of memory, only 0 MiB is available$/,
    );
    seen.freemem = 3 * MiB + MiB / 2;
    await expect(deriveKdf(Buffer.from('m'), salt, 3)).rejects.toThrow(
      /needs 4 MiB of memory, only 3 MiB is available/,
    );
    expect(seen.calls).toBe(1);
  });
});

describe('checkCostFits (every header command, before any KDF run)', () => {
  it('refuses a level whose memory is not free, as a usage error the CLI can explain', () => {
    seen.freemem = 4 * MiB;
    expect(() => checkCostFits(3)).not.toThrow();
    seen.freemem = 3 * MiB;
    expect(() => checkCostFits(3)).toThrow(
      expect.objectContaining({
        code: 'USAGE',
        reason: 'cost-needs-memory',
        message: 'cost level 3 needs 4 MiB of memory, but only 3 MiB is free',
        hint: expect.stringMatching(/free some memory/),
      }),
    );
  });
});

describe('HKDF', () => {
  it('wipes the bytes node:crypto returned once they are copied into the key', () => {
    const key = hkdfSha512(Buffer.alloc(64, 7), 'vault v1 header', 32);
    expect(key.length).toBe(32);
    expect(key.every((byte) => byte === 0)).toBe(false);
    expect(seen.hkdf?.length).toBe(32);
    expect(seen.hkdf?.every((byte) => byte === 0)).toBe(true);
  });
});

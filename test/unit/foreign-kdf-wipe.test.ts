// What the foreign formats' Argon2 (src/crypto/foreign-kdf.ts, LUKS2 keyslots and VeraCrypt's Argon2id)
// does with the bytes around the password, observed by standing in for the argon2 package: the copy
// of the password argon2 saw and the output argon2 returned are zero afterwards, the caller's password
// is left alone, and an argon2 failure comes through as itself (with the copy wiped). The real Argon2
// is pinned against @noble/hashes by foreign-kdf.test.ts.
import { createRequire } from 'node:module';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const seen = vi.hoisted(() => ({
  password: null as Buffer | null,
  output: null as Buffer | null,
  options: null as Record<string, unknown> | null,
  fail: null as Error | null,
}));

// foreign-kdf.ts loads the CommonJS argon2 package with require (kdf.ts's loadArgon2): the same module
// object, so its hash is replaced on it.
const argon2Package = createRequire(import.meta.url)('argon2') as typeof import('argon2');
vi.spyOn(argon2Package, 'hash').mockImplementation((async (
  password: Buffer,
  options: Record<string, unknown>,
) => {
  seen.password = password; // the very bytes argon2 was handed, not a copy
  if (seen.fail) throw seen.fail;
  seen.options = options;
  seen.output = Buffer.alloc(options.hashLength as number, 0xa5);
  return seen.output;
}) as unknown as typeof argon2Package.hash);

const { argon2 } = await import('../../src/crypto/foreign-kdf.js');

const salt = Buffer.alloc(64, 3);
const params = { type: 'argon2id' as const, memoryKiB: 64, iterations: 2, parallelism: 1 };

beforeEach(() => {
  seen.password = null;
  seen.output = null;
  seen.options = null;
  seen.fail = null;
});

describe('foreign-kdf argon2 around the argon2 call', () => {
  it('hands argon2 a private copy of the password, then wipes it and the output argon2 returned', async () => {
    const password = Buffer.from('a LUKS2 passphrase');
    const out = await argon2(params, password, salt, 48);
    expect(seen.options).toMatchObject({ raw: true, version: 0x13, hashLength: 48, memoryCost: 64 });
    expect(out.equals(Buffer.alloc(48, 0xa5))).toBe(true);
    expect(out).not.toBe(seen.output);
    expect(password.toString()).toBe('a LUKS2 passphrase');
    expect(seen.password?.length).toBe(password.length);
    expect(seen.password?.every((byte) => byte === 0)).toBe(true);
    expect(seen.output?.every((byte) => byte === 0)).toBe(true);
  });

  it('an argon2 failure comes through as itself, with the password copy wiped', async () => {
    seen.fail = new Error('argon2 failed: memory cost too large');
    await expect(argon2(params, Buffer.from('secret'), salt, 32)).rejects.toBe(seen.fail);
    expect(seen.password?.every((byte) => byte === 0)).toBe(true);
  });
});

// Secret (src/container/secret.ts) without a KDF: the material is the password and the BLAKE2b-512 of
// every keyfile's whole content (from a path or from bytes, the same), the refusals of empty, missing
// and non-regular keyfiles, the foreign parts (TrueCrypt/VeraCrypt pools over the first MiB, the LUKS
// keyfile up to cryptsetup's 8 MiB limit) and their round trip through the daemon's wire format.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError } from '../../src/container/errors.js';
import { LUKS_KEYFILE_MAX_BYTES, Secret } from '../../src/container/secret.js';
import { addKeyfileToPool, TC_KEYFILE_BYTES } from '../../src/crypto/foreign-kdf.js';
import { secretMaterial } from '../../src/crypto/keyfiles.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-secret-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const blake = (bytes: Uint8Array) => createHash('blake2b512').update(bytes).digest();
const password = Buffer.from('pässword', 'utf8');

function patterned(length: number, seed: number): Buffer {
  // A 251-byte period (prime, so no chunk boundary lines up with it), filled natively: fast at 8 MiB.
  const period = Buffer.alloc(251);
  for (let i = 0; i < period.length; i++) period[i] = (i * 131 + seed) & 0xff;
  return length === 0 ? Buffer.alloc(0) : Buffer.alloc(length, period);
}

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (caught: unknown) => caught,
  );
}

describe('the material', () => {
  it('is the password and the digest of each whole keyfile, read in chunks or given as bytes', async () => {
    // Longer than the 1 MiB read chunk, and differing only after it.
    const big = patterned(2 * 2 ** 20 + 5, 1);
    const small = patterned(100, 2);
    const path = await file('big.key', big);
    const fromPath = await Secret.fromInputs({ password, keyfiles: [path, await file('small.key', small)] });
    const fromBytes = await Secret.fromInputs({
      password,
      keyfiles: [small, big].map((bytes, i) => ({ name: `k${i}`, bytes })),
    });
    const expected = secretMaterial(password, [blake(big), blake(small)]);
    expect(fromPath.material.equals(expected)).toBe(true);
    expect(fromBytes.material.equals(expected)).toBe(true);
    // A keyfile that differs in its last byte only gives another material.
    const changed = Buffer.from(big);
    changed[changed.length - 1] = (changed[changed.length - 1] as number) ^ 1;
    const other = await Secret.fromInputs({ password, keyfiles: [await file('changed.key', changed)] });
    expect(other.material.equals(secretMaterial(password, [blake(changed)]))).toBe(true);
    expect(other.material.equals(secretMaterial(password, [blake(big)]))).toBe(false);
    expect(fromPath.foreign).toBeNull();
  });

  it('a password alone, or a keyfile alone, is a secret; neither is not (MISSING_SECRET, its words)', async () => {
    const alone = await Secret.fromInputs({ password });
    expect(alone.material.equals(secretMaterial(password, []))).toBe(true);
    const key = patterned(10, 3);
    const keyOnly = await Secret.fromInputs({ keyfiles: [await file('only.key', key)] });
    expect(keyOnly.material.equals(secretMaterial(new Uint8Array(0), [blake(key)]))).toBe(true);
    for (const inputs of [
      {},
      { password: new Uint8Array(0) },
      { password: new Uint8Array(0), keyfiles: [] },
    ]) {
      const error = await failure(Secret.fromInputs(inputs));
      expect(isVaultError(error, 'MISSING_SECRET')).toBe(true);
      expect(error).toMatchObject({
        reason: 'empty-secret',
        message: 'an empty password is allowed only together with a keyfile',
        hint: 'give a password, or a keyfile',
      });
    }
    // fromMaterial takes the material as it is (the daemon's side of the pipe).
    const material = Buffer.from(alone.material);
    expect(Secret.fromMaterial(material).material).toBe(material);
  });

  it('refuses empty, missing and non-regular keyfiles, each with its message and hint', async () => {
    const empty = await failure(
      Secret.fromInputs({ password, keyfiles: [await file('empty.key', Buffer.alloc(0))] }),
    );
    expect(isVaultError(empty, 'USAGE')).toBe(true);
    expect(empty).toMatchObject({
      message: `keyfile is empty: ${join(dir, 'empty.key')}`,
      hint: 'an empty keyfile adds no secret; use another file',
    });
    const emptyBytes = await failure(
      Secret.fromInputs({ password, keyfiles: [{ name: 'stdin', bytes: new Uint8Array(0) }] }),
    );
    expect(isVaultError(emptyBytes, 'USAGE')).toBe(true);
    expect(emptyBytes).toMatchObject({
      message: 'keyfile is empty: stdin',
      hint: 'an empty keyfile adds no secret; pipe the keyfile into vault',
    });
    const missing = await failure(Secret.fromInputs({ password, keyfiles: [join(dir, 'nope.key')] }));
    expect(isVaultError(missing, 'NOT_FOUND')).toBe(true);
    expect(missing).toMatchObject({
      message: `keyfile not found: ${join(dir, 'nope.key')}`,
      hint: 'check the path of the keyfile',
      reason: 'keyfile-not-found',
    });
    await mkdir(join(dir, 'a-dir'));
    const directory = await failure(Secret.fromInputs({ password, keyfiles: [join(dir, 'a-dir')] }));
    expect(isVaultError(directory, 'USAGE')).toBe(true);
    expect(directory).toMatchObject({
      message: `keyfile is not a regular file: ${join(dir, 'a-dir')}`,
      hint: 'a keyfile must be a regular file',
    });
  });

  it('is wiped by wipe(), after which it cannot be used ("secret already wiped")', async () => {
    const secret = await Secret.fromInputs({ password });
    const material = secret.material;
    secret.wipe();
    expect(material.every((byte) => byte === 0)).toBe(true);
    expect(() => secret.material).toThrow(/^secret already wiped$/);
    expect(() => secret.foreign).toThrow(/^secret already wiped$/);
  });
});

describe('the foreign parts', () => {
  it('the pools hold the first MiB of every keyfile; one keyfile is also the LUKS keyfile', async () => {
    const first = patterned(TC_KEYFILE_BYTES + 1000, 4);
    const second = patterned(5000, 5);
    const one = await Secret.fromInputs(
      { password, keyfiles: [await file('f1.key', first)] },
      { foreign: true },
    );
    const parts = one.foreign;
    if (!parts) throw new Error('no foreign parts');
    expect(parts.password.equals(password)).toBe(true);
    expect(parts.keyfileCount).toBe(1);
    const pool64 = Buffer.alloc(64);
    const pool128 = Buffer.alloc(128);
    addKeyfileToPool(pool64, first.subarray(0, TC_KEYFILE_BYTES));
    addKeyfileToPool(pool128, first.subarray(0, TC_KEYFILE_BYTES));
    expect(parts.pool64?.equals(pool64)).toBe(true);
    expect(parts.pool128?.equals(pool128)).toBe(true);
    expect(parts.luksKeyfile?.equals(first)).toBe(true);

    const two = await Secret.fromInputs(
      { password, keyfiles: [await file('f2.key', first), { name: 'second', bytes: second }] },
      { foreign: true },
    );
    addKeyfileToPool(pool64, second);
    addKeyfileToPool(pool128, second);
    expect(two.foreign?.pool64?.equals(pool64)).toBe(true);
    expect(two.foreign?.pool128?.equals(pool128)).toBe(true);
    expect(two.foreign?.luksKeyfile).toBeNull();
    expect(two.foreign?.keyfileCount).toBe(2);

    const none = await Secret.fromInputs({ password }, { foreign: true });
    expect(none.foreign).toMatchObject({ pool64: null, pool128: null, luksKeyfile: null, keyfileCount: 0 });
  });

  it('a keyfile over 8 MiB is no LUKS keyfile; one of exactly 8 MiB is', async () => {
    const limit = patterned(LUKS_KEYFILE_MAX_BYTES, 6);
    const atLimit = await Secret.fromInputs(
      { password, keyfiles: [await file('limit.key', limit)] },
      { foreign: true },
    );
    expect(atLimit.foreign?.luksKeyfile?.equals(limit)).toBe(true);
    const over = Buffer.concat([limit, Buffer.from([1])]);
    const beyond = await Secret.fromInputs(
      { password, keyfiles: [{ name: 'over', bytes: over }] },
      { foreign: true },
    );
    expect(beyond.foreign?.luksKeyfile).toBeNull();
  });

  it('survive the wire to the daemon byte for byte; a plain secret travels as its material', async () => {
    const key = patterned(3000, 7);
    const secret = await Secret.fromInputs(
      { password, keyfiles: [{ name: 'k', bytes: key }] },
      { foreign: true },
    );
    const back = Secret.fromWire(secret.toWire());
    expect(back.material.equals(secret.material)).toBe(true);
    expect(back.foreign).toEqual(secret.foreign);
    const noKeyfiles = await Secret.fromInputs({ password }, { foreign: true });
    expect(Secret.fromWire(noKeyfiles.toWire()).foreign).toEqual(noKeyfiles.foreign);
    const plain = await Secret.fromInputs({ password });
    const wire = plain.toWire();
    expect(wire.equals(plain.material)).toBe(true);
    expect(wire.buffer).not.toBe(plain.material.buffer);
    const fromWire = Secret.fromWire(wire);
    wire.fill(0);
    expect(fromWire.material.equals(plain.material)).toBe(true);
    expect(fromWire.foreign).toBeNull();
  });

  it('wipe() clears the foreign parts too', async () => {
    const secret = await Secret.fromInputs(
      { password, keyfiles: [{ name: 'k', bytes: patterned(64, 8) }] },
      { foreign: true },
    );
    const parts = secret.foreign;
    secret.wipe();
    for (const part of [parts?.password, parts?.pool64, parts?.pool128, parts?.luksKeyfile]) {
      expect(part?.every((byte) => byte === 0)).toBe(true);
    }
  });
});

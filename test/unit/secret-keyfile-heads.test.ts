// The foreign parts of a Secret (src/container/secret.ts): the VeraCrypt/TrueCrypt pools hash only the
// first 1 MiB of each keyfile, the LUKS keyfile is the whole file; each keyfile's head is wiped once it
// is in the pools, and when a keyfile fails half-way the pools already filled are wiped too.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/container/secret.js';
import { addKeyfileToPool, TC_KEYFILE_BYTES, TC_POOL_BYTES } from '../../src/crypto/foreign-kdf.js';
import { refusal } from '../tools/refusal.js';
import { allZero } from '../tools/zero.js';

// Every (pool, keyfile head) pair secret.ts adds, as the very buffers it passed.
const added = vi.hoisted(() => [] as Array<{ pool: Uint8Array; head: Uint8Array }>);
vi.mock('../../src/crypto/foreign-kdf.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/crypto/foreign-kdf.js')>();
  return {
    ...original,
    addKeyfileToPool: (pool: Uint8Array, head: Uint8Array) => {
      added.push({ pool, head });
      original.addKeyfileToPool(pool, head);
    },
  };
});

// Every vault material secret.ts computed.
const materials = vi.hoisted(() => [] as Uint8Array[]);
vi.mock('../../src/crypto/keyfiles.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/crypto/keyfiles.js')>();
  return {
    ...original,
    secretMaterial: (...args: Parameters<typeof original.secretMaterial>) => {
      const material = original.secretMaterial(...args);
      materials.push(material);
      return material;
    },
  };
});

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-keyfile-heads-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  added.length = 0;
  materials.length = 0;
});

describe('keyfiles in the foreign parts of a secret', () => {
  it('pools the first 1 MiB of a longer keyfile; LUKS gets all of it; every head wiped', async () => {
    const bytes = randomBytes(TC_KEYFILE_BYTES + 5);
    const path = join(dir, 'long.key');
    await writeFile(path, bytes);
    const expected = Buffer.alloc(TC_POOL_BYTES);
    addKeyfileToPool(expected, bytes.subarray(0, TC_KEYFILE_BYTES));
    added.length = 0;
    const secret = await Secret.fromInputs(
      { password: Buffer.from('pw'), keyfiles: [path] },
      { foreign: true },
    );
    expect(Buffer.from(secret.foreign?.pool64 ?? []).equals(expected)).toBe(true);
    expect(Buffer.from(secret.foreign?.luksKeyfile ?? []).equals(bytes)).toBe(true);
    expect(added.length).toBe(2); // the 64- and 128-byte pools, with the head read once for both
    for (const { head } of added) {
      expect(head.length).toBe(TC_KEYFILE_BYTES);
      expect(allZero(head)).toBe(true);
    }
    secret.wipe();
  });

  it('wipes the heads of piped keyfiles too, and the pools when a later keyfile fails', async () => {
    const good = { name: 'stdin', bytes: randomBytes(300) };
    let reads = 0;
    const failing = {
      name: 'second',
      get bytes(): Uint8Array {
        // Hashed first (two reads), then read again for the pools: that third read fails.
        reads++;
        if (reads > 2) throw new Error('the pipe broke');
        return Buffer.alloc(100, 9);
      },
    };
    const error = await refusal(
      Secret.fromInputs({ password: Buffer.from('pw'), keyfiles: [good, failing] }, { foreign: true }),
    );
    expect(error.message).toBe('the pipe broke');
    expect(added.length).toBe(2);
    for (const { pool, head } of added) {
      expect(allZero(head)).toBe(true);
      expect(allZero(pool)).toBe(true);
    }
    expect(good.bytes.some((byte) => byte !== 0)).toBe(true); // the caller's bytes stay the caller's
  });

  it('wipes the vault material already computed when the foreign parts fail', async () => {
    const good = { name: 'stdin', bytes: randomBytes(300) };
    let reads = 0;
    const failing = {
      name: 'second',
      get bytes(): Uint8Array {
        reads++;
        if (reads > 2) throw new Error('the pipe broke');
        return Buffer.alloc(100, 9);
      },
    };
    await refusal(
      Secret.fromInputs({ password: Buffer.from('pw'), keyfiles: [good, failing] }, { foreign: true }),
    );
    expect(materials.length).toBe(1);
    expect(allZero(materials[0])).toBe(true);
  });
});

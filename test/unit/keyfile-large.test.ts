// A multi-MiB keyfile read the way every command reads -k (src/cli/secrets.ts readSecret): its whole
// content counts (a keyfile hashed only up to 1 MiB, or any chunk dropped, changes the pinned material),
// and the material and its Argon2id output at level 1 are pinned (test/vectors/keyfile-large-v1.json).
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSecret } from '../../src/cli/secrets.js';
import { deriveKdf } from '../../src/crypto/kdf.js';

interface LargeKeyfileVector {
  length: number;
  keyfile_digest: string;
  digest_of_first_mib_only: string;
  material: string;
  kdf_level: number;
  salt: string;
  kdf_output: string;
}

const vector = JSON.parse(
  await readFile(new URL('../vectors/keyfile-large-v1.json', import.meta.url), 'utf8'),
) as LargeKeyfileVector;

function keyfileBytes(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7 * Math.floor(i / 65536)) & 0xff;
  return bytes;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-keyfile-large-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const read = (path: string) => readSecret({ keyfile: [path], nonInteractive: true }, { prompt: 'Password' });

describe('a 3 MiB keyfile through the CLI keyfile path (must not change)', () => {
  it('gives the pinned material and Argon2id output', async () => {
    const bytes = keyfileBytes(vector.length);
    expect(bytes.length).toBeGreaterThan(3 * 2 ** 20);
    // The vector's digest is BLAKE2b-512 of the whole file, by node:crypto (independent of our hasher).
    expect(createHash('blake2b512').update(bytes).digest('hex')).toBe(vector.keyfile_digest);
    expect(vector.digest_of_first_mib_only).not.toBe(vector.keyfile_digest);
    const path = join(dir, 'key.bin');
    await writeFile(path, bytes);
    const secret = await read(path);
    try {
      expect(secret.material.toString('hex')).toBe(vector.material);
      expect(secret.material.toString('hex')).toContain(vector.keyfile_digest);
      const output = await deriveKdf(secret.material, Buffer.from(vector.salt, 'hex'), vector.kdf_level);
      expect(output.toString('hex')).toBe(vector.kdf_output);
    } finally {
      secret.wipe();
    }
  });

  it('every part of it counts: the last byte, a byte after 1 MiB, one byte more or less', async () => {
    const base = keyfileBytes(vector.length);
    const variants: Array<[string, Buffer]> = [
      [
        'last byte changed',
        Buffer.concat([base.subarray(0, -1), Buffer.from([(base.at(-1) as number) ^ 1])]),
      ],
      ['byte 1 MiB + 1 changed', Buffer.from(base).fill(0, 2 ** 20 + 1, 2 ** 20 + 2)],
      ['one byte longer', Buffer.concat([base, Buffer.from([0])])],
      ['one byte shorter', base.subarray(0, -1)],
    ];
    for (const [name, bytes] of variants) {
      const path = join(dir, `${name.replace(/\W+/g, '-')}.bin`);
      await writeFile(path, bytes);
      const secret = await read(path);
      expect(secret.material.toString('hex'), name).not.toBe(vector.material);
      expect(secret.material.toString('hex'), name).toContain(
        createHash('blake2b512').update(bytes).digest('hex'),
      );
      secret.wipe();
    }
  });
});

// Must not change: the saved v1 sample vaults decode to their known cleartext forever, and every
// failure case in failures-v1.json gives its expected outcome without changing a byte of the file.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVaultError, openVault, Secret } from '../../src/container/index.js';

interface SecretSpec {
  password: string;
  keyfiles?: string[];
}
interface Sample {
  file: string;
  /** Which volume of the file the secrets open (the hidden-volume sample has an entry for each). */
  kind?: 'outer' | 'hidden';
  secrets: SecretSpec[];
  costLevel: number;
  dataSize: number;
  slotsUsed: number[];
  sequence: number;
  writes: Array<{ offset: number; hex: string }>;
  cleartextSha256: string;
}
interface FailureCase {
  name: string;
  sample?: string;
  secret?: SecretSpec;
  costLevel?: number;
  flip?: number[];
  randomize?: Array<[number, number]>;
  truncate?: number;
  zero?: number;
  random?: number;
  expect:
    | 'cannot_unlock'
    | 'truncated'
    | 'opens'
    | 'backup'
    | 'opens_backup_damaged'
    | 'opens_resize_interrupted';
}

const vectors = new URL('../vectors/', import.meta.url);
const load = async <T>(name: string): Promise<T> =>
  JSON.parse(await readFile(new URL(name, vectors), 'utf8')) as T;
const { samples } = await load<{ samples: Sample[] }>('samples-v1.json');
const { cases } = await load<{ cases: FailureCase[] }>('failures-v1.json');
let dir: string;

async function secretOf(spec: SecretSpec): Promise<Secret> {
  const keyfiles = await Promise.all(
    (spec.keyfiles ?? []).map(async (hex, index) => {
      const path = join(dir, `keyfile-${index}-${Math.random()}`);
      // "ABKEY300" stands for the 300-byte 0xab keyfile of sample-v1-keyfiles.vol.
      await writeFile(path, hex === 'ABKEY300' ? Buffer.alloc(300, 0xab) : Buffer.from(hex, 'hex'));
      return path;
    }),
  );
  return Secret.fromInputs({ password: Buffer.from(spec.password, 'utf8'), keyfiles });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-vectors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('saved sample vaults (must not change)', () => {
  for (const sample of samples) {
    it(`${sample.file}${sample.kind ? ` (${sample.kind})` : ''} opens with each of its secrets and holds the known cleartext`, async () => {
      const path = new URL(sample.file, vectors).pathname;
      const before = await readFile(path);
      for (const spec of sample.secrets) {
        const vault = await openVault(path, await secretOf(spec), {
          costLevel: sample.costLevel,
          readOnly: true,
        });
        expect(vault.size).toBe(sample.dataSize);
        expect(vault.info().kind).toBe(sample.kind ?? 'outer');
        expect(vault.warnings).toEqual([]);
        expect(vault.info().keyslots.used).toEqual(sample.slotsUsed);
        expect(vault.info().headers.primary).toEqual({ state: 'ok', sequence: sample.sequence });
        const all = Buffer.alloc(vault.size);
        await vault.readAt(all, 0);
        await vault.close();
        expect(createHash('sha256').update(all).digest('hex')).toBe(sample.cleartextSha256);
        for (const write of sample.writes) {
          const bytes = Buffer.from(write.hex, 'hex');
          expect(all.subarray(write.offset, write.offset + bytes.length).equals(bytes)).toBe(true);
        }
      }
      expect((await readFile(path)).equals(before)).toBe(true);
    });
  }
});

describe('failure cases', () => {
  for (const failure of cases) {
    it(`${failure.name}: ${failure.expect}`, async () => {
      const sampleName = failure.sample ?? 'sample-v1-password.vol';
      const sample = samples.find((candidate) => candidate.file === sampleName);
      if (!sample) throw new Error(`no sample ${sampleName}`);
      const path = join(dir, `${failure.name.replace(/\W+/g, '-')}.vol`);
      await copyFile(new URL(sampleName, vectors), path);
      if (failure.zero !== undefined) await writeFile(path, Buffer.alloc(failure.zero));
      if (failure.random !== undefined) await writeFile(path, randomBytes(failure.random));
      if (failure.truncate !== undefined) await truncate(path, failure.truncate);
      if (failure.flip || failure.randomize) {
        const raw = await readFile(path);
        const at = (offset: number) => (offset < 0 ? raw.length + offset : offset);
        for (const offset of failure.flip ?? []) raw[at(offset)] = (raw[at(offset)] as number) ^ 0x01;
        for (const [offset, length] of failure.randomize ?? []) raw.set(randomBytes(length), at(offset));
        await writeFile(path, raw);
      }
      const before = await readFile(path);
      const secret = await secretOf(failure.secret ?? (sample.secrets[0] as SecretSpec));
      const opening = openVault(path, secret, { costLevel: failure.costLevel ?? sample.costLevel });
      if (failure.expect === 'truncated') {
        // The right secret on a cut-off file: said plainly (issue 18), never the wrong-password error.
        const error = await opening.then(
          async (vault) => {
            await vault.close();
            return null;
          },
          (caught: unknown) => caught,
        );
        expect(isVaultError(error, 'IO')).toBe(true);
        expect((error as Error).message).toMatch(/is truncated: the secret opens its header/);
      } else if (failure.expect === 'cannot_unlock') {
        const error = await opening.then(
          async (vault) => {
            await vault.close();
            return null;
          },
          (caught: unknown) => caught,
        );
        expect(isVaultError(error, 'CANNOT_UNLOCK')).toBe(true);
        expect((error as Error).message).toBe(
          'cannot unlock the vault: wrong password, keyfile or cost level, or not a vault',
        );
      } else {
        const vault = await opening;
        const info = vault.info();
        await vault.close();
        if (failure.expect === 'backup') {
          expect(vault.warnings).toEqual([
            'primary header damaged, using the backup; a repair rewrites it from the backup',
          ]);
        } else if (failure.expect === 'opens_resize_interrupted') {
          expect(vault.warnings).toEqual([
            'the vault file is longer than its volume (an interrupted resize); resizing it again finishes the job',
          ]);
        } else {
          expect(vault.warnings).toEqual([]);
        }
        expect(info.headers.backup.state).toBe(failure.expect === 'opens_backup_damaged' ? 'damaged' : 'ok');
      }
      expect((await readFile(path)).equals(before)).toBe(true);
    });
  }
});

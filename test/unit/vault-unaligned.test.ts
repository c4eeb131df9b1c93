// Vault.readAt and writeAt (src/container/vault.ts) off sector boundaries, against an in-memory model
// of the volume: a read-modify-write keeps every byte of the sectors it touches that it was not asked
// to change, also after a reopen. And the secret given to protect a hidden volume must open a hidden
// header: the outer secret there is refused, not taken as "protect the whole volume".
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import {
  addKey,
  createVault,
  isVaultError,
  openVault,
  Secret,
  type Vault,
} from '../../src/container/index.js';
import { createVaultSectorCipher } from '../../src/container/vault-suites.js';
import { VAULT_WARNINGS } from '../../src/container/warnings.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { refusal } from '../tools/refusal.js';

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-unaligned-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function whole(vault: Vault): Promise<Buffer> {
  const plain = Buffer.alloc(vault.size);
  await vault.readAt(plain, 0);
  return plain;
}

/** Bytes 1, 2, 3, ... from `seed` on: no two neighbouring sectors alike. */
const pattern = (length: number, seed: number) =>
  Buffer.from(Array.from({ length }, (_, index) => (seed + index * 7) % 251));

describe('Vault reads and writes off sector boundaries', () => {
  it('each write changes exactly its bytes; each read returns exactly its bytes; the same after reopening', async () => {
    const path = join(dir, 'unaligned.vol');
    await createVault(path, { fileSize: 2 * MiB, secret: await secret('pw'), costLevel });
    let vault = await openVault(path, await secret('pw'), { costLevel });
    const model = await whole(vault);
    const writes: Array<[offset: number, length: number]> = [
      [4096, 100], // starts on a boundary, ends inside the same sector
      [5000 + 4096, 100], // inside one sector
      [3000, 7096], // from inside sector 0 to inside sector 2, the distance a multiple of 4096 sectors
      [4 * 4096 + 10, 8192], // both ends inside, three sectors
      [8 * 4096, 8192], // whole sectors
      [12 * 4096 - 1, 2], // one byte either side of a boundary
      [vault.size - 5, 5], // up to the last byte
    ];
    for (const [index, [offset, length]] of writes.entries()) {
      const plain = pattern(length, index + 1);
      await vault.writeAt(plain, offset);
      plain.copy(model, offset);
      expect((await whole(vault)).equals(model), `write ${offset}+${length}`).toBe(true);
    }
    for (const [offset, length] of [
      [100, 4096],
      [0, 100],
      [4000, 200],
      [3000, 7096],
      [vault.size - 4097, 4097],
    ] as Array<[number, number]>) {
      const plain = Buffer.alloc(length);
      await vault.readAt(plain, offset);
      expect(plain.equals(model.subarray(offset, offset + length)), `read ${offset}+${length}`).toBe(true);
    }
    await vault.close();
    vault = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
    expect((await whole(vault)).equals(model)).toBe(true);
    await vault.close();
  });
});

describe('openVault with a hidden volume to protect', () => {
  it('refuses the outer secret as the hidden one, and a hidden secret given first', async () => {
    const path = join(dir, 'protect.vol');
    await createVault(path, {
      fileSize: 4 * MiB,
      secret: await secret('outer'),
      costLevel,
      hidden: { dataSize: MiB, secret: await secret('hidden') },
    });
    const outerTwice = await refusal(
      openVault(path, await secret('outer'), { costLevel, protectHidden: await secret('outer') }),
    );
    expect(isVaultError(outerTwice, 'CANNOT_UNLOCK')).toBe(true);
    expect(outerTwice).toMatchObject({
      message:
        'cannot unlock the hidden volume to protect it: wrong hidden password, keyfile or cost level, or no hidden volume',
      hint: 'give the hidden volume secret as the second secret, or open it without protection',
      reason: 'protect-hidden-unlock',
    });
    const hiddenFirst = await refusal(
      openVault(path, await secret('hidden'), { costLevel, protectHidden: await secret('hidden') }),
    );
    expect(hiddenFirst).toMatchObject({
      code: 'USAGE',
      hint: 'give the outer volume secret first, then the hidden one',
    });
    // Any other failure while unlocking the hidden header is not reported as a wrong hidden secret.
    const tooCostly = await refusal(
      openVault(path, await secret('outer'), {
        costLevel,
        protectHidden: await secret('hidden'),
        protectHiddenCostLevel: 99,
      }),
    );
    expect(tooCostly).not.toMatchObject({ reason: 'protect-hidden-unlock' });
    // Protection itself works with the right pair: a write into the hidden area is refused.
    const vault = await openVault(path, await secret('outer'), {
      costLevel,
      protectHidden: await secret('hidden'),
    });
    await expect(vault.writeAt(Buffer.alloc(10, 1), vault.size - 10)).rejects.toThrow();
    await vault.close();
  });
});

describe('a header update cut between its two writes', () => {
  it('leaves a stale primary, and opening says so', async () => {
    const path = join(dir, 'stale.vol');
    await createVault(path, { fileSize: 2 * MiB, secret: await secret('pw'), costLevel });
    // The backup is written and synced; the power goes before the primary is written.
    let writes = 0;
    const cut: typeof openContainerFile = async (file, mode) => {
      const real = await openContainerFile(file, mode);
      return Object.assign(Object.create(real), {
        write: async (buffer: Uint8Array, position: number) => {
          writes++;
          if (writes === 2) throw Object.assign(new Error('power cut'), { code: 'EIO' });
          await real.write(buffer, position);
        },
        read: real.read.bind(real),
        size: real.size.bind(real),
        sync: real.sync.bind(real),
        identity: real.identity.bind(real),
        close: real.close.bind(real),
      });
    };
    await refusal(addKey(path, await secret('pw'), await secret('second'), { costLevel, openFile: cut }));
    expect(writes).toBe(2);
    const vault = await openVault(path, await secret('second'), { costLevel, readOnly: true });
    expect(vault.info().headers).toMatchObject({ authoritative: 'backup', primary: { state: 'stale' } });
    expect(vault.warnings).toEqual([VAULT_WARNINGS.primaryStale]);
    await vault.close();
  });
});

describe('the data-area cipher by id', () => {
  it('refuses an id no suite has (a body naming one never opens, and no key is used with a guess)', () => {
    expect(() => createVaultSectorCipher(Buffer.alloc(64, 1), 0x99)).toThrow(/^unknown vault cipher id 153$/);
  });
});

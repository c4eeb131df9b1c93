// Header updates interrupted at every write step, by fault injection through the ContainerFile layer
// (a write that tears halfway, a failing sync): afterwards the vault opens with the old or the new
// secret, never with neither, and its data is intact.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addKey,
  changeSecret,
  createVault,
  type OpenContainerFile,
  openVault,
  removeKey,
  repairHeaders,
  Secret,
} from '../../src/container/index.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { Crash, crashingOpener } from './crashing-file.js';

const costLevel = MIN_COST_LEVEL;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-faults-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

async function opensWith(path: string, text: string): Promise<boolean> {
  try {
    const vault = await openVault(path, await secret(text), { costLevel, readOnly: true });
    const data = Buffer.alloc(11);
    await vault.readAt(data, 4096 * 7);
    await vault.close();
    expect(data.toString()).toBe('survives it');
    return true;
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'CANNOT_UNLOCK') return false;
    throw error;
  }
}

type Update = (path: string, openFile: OpenContainerFile) => Promise<unknown>;
const updates: Array<{ name: string; run: Update; before: string; after: string }> = [
  {
    name: 'passwd',
    run: async (path, openFile) =>
      changeSecret(path, await secret('old'), await secret('new'), { costLevel, openFile }),
    before: 'old',
    after: 'new',
  },
  {
    name: 'key add',
    run: async (path, openFile) =>
      addKey(path, await secret('old'), await secret('new'), { costLevel, openFile }),
    before: 'old',
    after: 'new',
  },
];

describe('interrupted header updates never lose the vault', () => {
  for (const update of updates) {
    it(`${update.name}: old or new secret opens after a crash at every step`, async () => {
      let total = Number.POSITIVE_INFINITY;
      for (let crashAt = 0; crashAt < total; crashAt++) {
        const path = join(dir, `${update.name.replace(' ', '-')}-${crashAt}.vol`);
        await createVault(path, { fileSize: 2 ** 20, secret: await secret('old'), costLevel });
        const vault = await openVault(path, await secret('old'), { costLevel });
        await vault.writeAt(Buffer.from('survives it'), 4096 * 7);
        await vault.close();
        const crashing = crashingOpener(crashAt);
        const crashed = await update.run(path, crashing.open).then(
          () => false,
          (error: unknown) => {
            if (!(error instanceof Crash)) throw error;
            return true;
          },
        );
        if (!crashed) {
          total = crashAt; // the update has fewer steps than crashAt: every step has been tried
          expect(await opensWith(path, update.after)).toBe(true);
          break;
        }
        const [oldOpens, newOpens] = [
          await opensWith(path, update.before),
          await opensWith(path, update.after),
        ];
        expect(oldOpens || newOpens).toBe(true);
        // Repair with whichever works leaves two healthy copies that one of the two secrets opens.
        await repairHeaders(path, await secret(newOpens ? update.after : update.before), { costLevel });
        let healthy = 0;
        for (const text of [update.before, update.after]) {
          const repaired = await openVault(path, await secret(text), { costLevel, readOnly: true }).catch(
            () => null,
          );
          if (!repaired) continue;
          expect(repaired.warnings).toEqual([]);
          expect(repaired.info().headers.backup.state).toBe('ok');
          await repaired.close();
          healthy++;
        }
        expect(healthy).toBeGreaterThan(0);
      }
      expect(total).toBe(4); // backup write, sync, primary write, sync
    });
  }

  it('key remove interrupted: the remaining secret always opens', async () => {
    for (let crashAt = 0; crashAt < 4; crashAt++) {
      const path = join(dir, `remove-${crashAt}.vol`);
      await createVault(path, { fileSize: 2 ** 20, secret: await secret('old'), costLevel });
      const vault = await openVault(path, await secret('old'), { costLevel });
      await vault.writeAt(Buffer.from('survives it'), 4096 * 7);
      await vault.close();
      await addKey(path, await secret('old'), await secret('kept'), { costLevel });
      await expect(
        removeKey(path, await secret('old'), { costLevel, openFile: crashingOpener(crashAt).open }),
      ).rejects.toThrow(Crash);
      expect(await opensWith(path, 'kept')).toBe(true);
    }
  });
});

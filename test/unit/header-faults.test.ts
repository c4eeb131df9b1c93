// Header updates interrupted at every write step, by fault injection through the ContainerFile layer
// (a write that tears halfway, a failing sync): afterwards the vault opens with the old or the new
// secret, never with neither, and its data is intact.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContainerFile } from '../../src/container/file.js';
import {
  addKey,
  type ContainerFile,
  changeSecret,
  createVault,
  type OpenContainerFile,
  openVault,
  removeKey,
  repairHeaders,
  Secret,
} from '../../src/container/index.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const costLevel = MIN_COST_LEVEL;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-faults-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

class Crash extends Error {}

/** A file that dies at mutating step `crashAt` (writes and syncs count); the dying write lands half. */
function crashingOpener(crashAt: number): { open: OpenContainerFile; steps: () => number } {
  let step = 0;
  let dead = false;
  const open: OpenContainerFile = async (path, mode) => {
    const real = await openContainerFile(path, mode);
    const file: ContainerFile = {
      path: real.path,
      writable: real.writable,
      size: () => real.size(),
      identity: () => real.identity(),
      read: (buffer, position) => real.read(buffer, position),
      setTimes: (a, m) => real.setTimes(a, m),
      close: () => real.close(),
      async write(buffer, position) {
        if (dead) throw new Crash('dead');
        if (step++ === crashAt) {
          dead = true;
          await real.write(buffer.subarray(0, buffer.length / 2), position);
          throw new Crash('torn write');
        }
        await real.write(buffer, position);
      },
      async sync() {
        if (dead) throw new Crash('dead');
        if (step++ === crashAt) {
          dead = true;
          throw new Crash('sync failed');
        }
        await real.sync();
      },
    };
    return file;
  };
  return { open, steps: () => step };
}

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

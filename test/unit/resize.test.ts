// Growing a vault: the data survives, the new size is usable, a hidden volume survives, and a crash
// at every write step (fault injection through ContainerFile) leaves a vault that opens and that a
// second resize finishes.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVault, openVault, resizeVault, Secret } from '../../src/container/index.js';
import { MIN_COST_LEVEL } from '../../src/crypto/kdf.js';
import { Crash, crashingOpener } from './crashing-file.js';

const costLevel = MIN_COST_LEVEL;
const MiB = 2 ** 20;
let dir: string;
const secret = (text: string) => Secret.fromInputs({ password: Buffer.from(text, 'utf8') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vault-resize-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function vaultWithData(name: string, hidden = false): Promise<string> {
  const path = join(dir, name);
  await createVault(path, {
    fileSize: 4 * MiB,
    secret: await secret('pw'),
    costLevel,
    ...(hidden ? { hidden: { dataSize: MiB, secret: await secret('hidden') } } : {}),
  });
  const vault = await openVault(path, await secret('pw'), { costLevel });
  await vault.writeAt(Buffer.from('first sector'), 0);
  await vault.writeAt(Buffer.from('last sector'), vault.size - 4096);
  await vault.close();
  return path;
}

async function expectData(path: string, dataSize: number): Promise<void> {
  const vault = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
  expect(vault.size).toBe(dataSize);
  const first = Buffer.alloc(12);
  await vault.readAt(first, 0);
  expect(first.toString()).toBe('first sector');
  const old = Buffer.alloc(11);
  await vault.readAt(old, 4 * MiB - 262144 - 4096);
  expect(old.toString()).toBe('last sector');
  await vault.close();
}

describe('resizeVault', () => {
  it('grows the file, keeps the data and makes the new area usable', async () => {
    const path = await vaultWithData('grow.vol');
    expect(await resizeVault(path, await secret('pw'), 8 * MiB, { costLevel })).toEqual({
      oldDataSize: 4 * MiB - 262144,
      newDataSize: 8 * MiB - 262144,
    });
    expect((await stat(path)).size).toBe(8 * MiB);
    await expectData(path, 8 * MiB - 262144);
    const vault = await openVault(path, await secret('pw'), { costLevel });
    expect(vault.warnings).toEqual([]);
    expect(vault.info().headers).toMatchObject({ primary: { state: 'ok' }, backup: { state: 'ok' } });
    await vault.writeAt(Buffer.from('new end'), vault.size - 7);
    await vault.close();
  });

  it('refuses to shrink, and a resize to the same size changes nothing', async () => {
    const path = await vaultWithData('shrink.vol');
    await expect(resizeVault(path, await secret('pw'), 2 * MiB, { costLevel })).rejects.toMatchObject({
      code: 'USAGE',
    });
    expect(await resizeVault(path, await secret('pw'), 4 * MiB, { costLevel })).toEqual({
      oldDataSize: 4 * MiB - 262144,
      newDataSize: 4 * MiB - 262144,
    });
  });

  it('keeps a hidden volume reachable and refuses to resize with the hidden secret', async () => {
    const path = await vaultWithData('hidden.vol', true);
    const hidden = await openVault(path, await secret('hidden'), { costLevel });
    await hidden.writeAt(Buffer.from('deniable'), 0);
    await hidden.close();
    await expect(resizeVault(path, await secret('hidden'), 8 * MiB, { costLevel })).rejects.toMatchObject({
      code: 'USAGE',
    });
    await resizeVault(path, await secret('pw'), 8 * MiB, { costLevel });
    const again = await openVault(path, await secret('hidden'), { costLevel, readOnly: true });
    expect(again.warnings).toEqual([]);
    expect(again.info().headers.backup.state).toBe('ok');
    const read = Buffer.alloc(8);
    await again.readAt(read, 0);
    expect(read.toString()).toBe('deniable');
    await again.close();
  });

  it('a crash at any write step leaves a vault that opens; resizing again finishes', async () => {
    let crashAt = 0;
    for (; crashAt < 100; crashAt++) {
      const path = await vaultWithData(`crash-${crashAt}.vol`);
      const crashing = crashingOpener(crashAt).open;
      const finished = await resizeVault(path, await secret('pw'), 6 * MiB, {
        costLevel,
        openFile: crashing,
      }).then(
        () => true,
        (error: Error) => {
          expect(error).toBeInstanceOf(Crash);
          return false;
        },
      );
      if (finished) break;
      const vault = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
      const size = vault.size;
      await vault.close();
      expect([4 * MiB - 262144, 6 * MiB - 262144]).toContain(size);
      await resizeVault(path, await secret('pw'), 6 * MiB, { costLevel });
      await expectData(path, 6 * MiB - 262144);
      const healthy = await openVault(path, await secret('pw'), { costLevel, readOnly: true });
      expect(healthy.warnings).toEqual([]);
      expect(healthy.info().headers).toMatchObject({ primary: { state: 'ok' }, backup: { state: 'ok' } });
      await healthy.close();
    }
    expect(crashAt).toBeGreaterThan(5);
  });
});

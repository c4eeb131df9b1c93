// Hidden volumes as a user runs them (issue 8): two secrets, files in each survive remounts, the outer
// secret says nothing of the hidden volume, and with --protect-hidden filling the outer volume never
// changes a byte of the hidden area, turns the outer volume read-only, and tells the user.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_COST, lacks, leftovers, sh, useTempDir, vault, vaultOk } from './helpers.js';

const cost = ['--cost', FAST_COST];
const OUTER = 'outer password 1\n';
const HIDDEN = 'hidden password 2\n';
const FILE_MIB = 64;
const HIDDEN_MIB = 24;
let dir: string;

useTempDir('vault-hidden-', (made) => {
  dir = made;
});

/** SHA-256 of the hidden volume's ciphertext: the tail of the outer data area. */
async function hiddenCiphertext(file: string): Promise<string> {
  const raw = await readFile(file);
  const end = raw.length - 131072;
  return createHash('sha256')
    .update(raw.subarray(end - HIDDEN_MIB * 2 ** 20, end))
    .digest('hex');
}

describe.skipIf(lacks('mount'))('hidden volumes', () => {
  it('two volumes, two secrets; protection keeps the hidden one intact when the outer one fills up', async () => {
    const file = join(dir, 'deniable.vol');
    const outer = join(dir, 'outer');
    const hidden = join(dir, 'hidden');
    await mkdir(outer);
    await mkdir(hidden);
    const created = await vaultOk(
      ['create', `${FILE_MIB}M`, file, '--hidden', `${HIDDEN_MIB}M`, '--password-stdin'],
      OUTER + HIDDEN,
    );
    expect(created.stdout).toMatch(/hidden volume of 24 MiB/);

    await vaultOk(['mount', file, hidden, '--password-stdin'], HIDDEN);
    await writeFile(join(hidden, 'deep.txt'), 'only behind the second password');
    await vaultOk(['dismount', hidden], '');
    await vaultOk(['mount', file, outer, '--password-stdin'], OUTER);
    await writeFile(join(outer, 'decoy.txt'), 'nothing to see');
    await vaultOk(['dismount', outer], '');

    // The outer secret reveals nothing of the hidden volume.
    const outerInfo = await vaultOk(['info', file, '--password-stdin', '--json'], OUTER);
    const { path: _path, ...outerFields } = JSON.parse(outerInfo.stdout) as Record<string, unknown>;
    expect(JSON.stringify(outerFields)).not.toMatch(/hidden/);
    expect(JSON.parse(outerInfo.stdout)).toMatchObject({
      kind: 'outer',
      dataSize: FILE_MIB * 2 ** 20 - 262144,
    });
    const hiddenInfo = JSON.parse(
      (await vaultOk(['info', file, '--password-stdin', '--json'], HIDDEN)).stdout,
    );
    expect(hiddenInfo).toMatchObject({ kind: 'hidden', dataSize: HIDDEN_MIB * 2 ** 20 });

    // Protected: fill the outer volume; the hidden ciphertext must not change.
    const before = await hiddenCiphertext(file);
    await vaultOk(['mount', file, outer, '--password-stdin', '--protect-hidden'], OUTER + HIDDEN);
    expect((await vault(['list'])).stdout).toMatch(/hidden protected/);
    await sh('dd', [
      'if=/dev/urandom',
      `of=${join(outer, 'fill')}`,
      'bs=1M',
      `count=${FILE_MIB}`,
      'conv=fsync',
    ]);
    expect((await vault(['list'])).stdout).toMatch(/hidden protection tripped: read-only/);
    const dismounted = await vault(['dismount', outer]);
    expect(dismounted.code).toBe(0);
    expect(dismounted.stderr).toMatch(/vault: warning: hidden volume protection refused writes/);
    expect(await hiddenCiphertext(file)).toBe(before);

    await vaultOk(['mount', file, hidden, '--password-stdin', '--read-only'], HIDDEN);
    expect(await readFile(join(hidden, 'deep.txt'), 'utf8')).toBe('only behind the second password');
    await vaultOk(['dismount', hidden], '');
    await vaultOk(['mount', file, outer, '--password-stdin', '--read-only'], OUTER);
    expect(await readFile(join(outer, 'decoy.txt'), 'utf8')).toBe('nothing to see');
    await vaultOk(['dismount', outer], '');
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses ext4 as the outer filesystem, a wrong hidden secret for protection, and equal secrets', async () => {
    const file = join(dir, 'refused.vol');
    const ext4 = await vault(
      ['create', '16M', file, '--hidden', '4M', '--filesystem', 'ext4', '--password-stdin', ...cost],
      {
        stdin: OUTER + HIDDEN,
      },
    );
    expect(ext4.code).toBe(2);
    const same = await vault(['create', '16M', file, '--hidden', '4M', '--password-stdin', ...cost], {
      stdin: OUTER + OUTER,
    });
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/different from the outer one/);
    await vaultOk(['create', '16M', file, '--hidden', '4M', '--password-stdin'], OUTER + HIDDEN);
    const mountpoint = join(dir, 'mnt');
    await mkdir(mountpoint);
    const wrong = await vault(['mount', file, mountpoint, '--password-stdin', '--protect-hidden', ...cost], {
      stdin: `${OUTER}wrong\n`,
    });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/cannot unlock the hidden volume to protect it/);
    expect(leftovers(dir)).toEqual([]);
  });
});

// Header maintenance as a user runs it: several keyslots, a header backup kept elsewhere, a damaged
// primary header that mount survives (with the warning) and `vault repair` fixes, and a restore that
// brings back an old password. Real binary, real FUSE mount.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_COST, lacks, leftovers, useTempDir, vault, vaultOk } from './helpers.js';

const cost = ['--cost', FAST_COST];
let dir: string;

useTempDir('vault-headers-', (made) => {
  dir = made;
});

describe.skipIf(lacks('mount'))('header maintenance from the command line', () => {
  it('keyslots, header backup, damage, repair and restore', async () => {
    const file = join(dir, 'h.vol');
    const mountpoint = join(dir, 'mnt');
    await mkdir(mountpoint);
    await vaultOk(['create', '16M', file, '--password-stdin'], 'first password\n');
    await vaultOk(['mount', file, mountpoint, '--password-stdin'], 'first password\n');
    await writeFile(join(mountpoint, 'note.txt'), 'kept through it all');
    await vaultOk(['dismount', mountpoint]);

    // A second secret (a keyfile), then the first password goes.
    const key = join(dir, 'k.key');
    await vaultOk(['keyfile', 'generate', key]);
    expect(
      (await vaultOk(['key', 'add', file, '--password-stdin', '--new-keyfile', key], 'first password\n\n'))
        .stdout,
    ).toMatch(/Added keyslot 1/);
    const backup = join(dir, 'h.hdr');
    await vaultOk(['header', 'backup', file, backup, '--password-stdin'], 'first password\n');
    expect((await readFile(backup)).length).toBe(8192);
    expect((await vaultOk(['key', 'remove', file, '--password-stdin'], 'first password\n')).stdout).toMatch(
      /Removed keyslot 0/,
    );
    const gone = await vault(['info', file, '--password-stdin', ...cost], { stdin: 'first password\n' });
    expect(gone.code).toBe(3);
    const info = JSON.parse((await vaultOk(['info', file, '-k', key, '--non-interactive', '--json'])).stdout);
    expect(info.keyslots).toMatchObject({ used: [1], opened: 1 });

    // Damage the primary header: mount still works (warning), repair fixes it.
    const raw = await readFile(file);
    raw[3000] = (raw[3000] as number) ^ 0xff;
    await writeFile(file, raw);
    const mounted = await vault(['mount', file, mountpoint, '-k', key, '--non-interactive', ...cost]);
    expect(mounted.code).toBe(0);
    expect(mounted.stderr).toMatch(
      /vault: warning: primary header damaged, using the backup; run vault repair/,
    );
    expect(await readFile(join(mountpoint, 'note.txt'), 'utf8')).toBe('kept through it all');
    await vaultOk(['dismount', mountpoint]);
    expect((await vaultOk(['repair', file, '-k', key, '--non-interactive'])).stdout).toMatch(
      /Repaired the primary header/,
    );
    const healthy = JSON.parse(
      (await vaultOk(['info', file, '-k', key, '--non-interactive', '--json'])).stdout,
    );
    expect(healthy.headers.primary.state).toBe('ok');
    expect((await vaultOk(['repair', file, '-k', key, '--non-interactive'])).stdout).toMatch(
      /nothing to repair/,
    );

    // Restore the backup made while the first password was valid: it opens again.
    await vaultOk(['header', 'restore', file, backup, '--password-stdin'], 'first password\n');
    await vaultOk(['mount', file, mountpoint, '--password-stdin', '--read-only'], 'first password\n');
    expect(await readFile(join(mountpoint, 'note.txt'), 'utf8')).toBe('kept through it all');
    await vaultOk(['dismount', mountpoint]);

    // A backup never overwrites, and a restore with a wrong password changes nothing.
    const again = await vault(['header', 'backup', file, backup, '--password-stdin', ...cost], {
      stdin: 'first password\n',
    });
    expect(again.code).toBe(8);
    const before = await readFile(file);
    const wrong = await vault(['header', 'restore', file, backup, '--password-stdin', ...cost], {
      stdin: 'nope\n',
    });
    expect(wrong.code).toBe(3);
    expect((await readFile(file)).equals(before)).toBe(true);
    expect(leftovers(dir)).toEqual([]);
  });

  it('passwd changes only its own keyslot', async () => {
    const file = join(dir, 'p.vol');
    await vaultOk(['create', '4M', file, '--password-stdin', '--filesystem', 'none'], 'one\n');
    await vaultOk(['key', 'add', file, '--password-stdin'], 'one\ntwo\n');
    expect((await vaultOk(['passwd', file, '--password-stdin'], 'two\nthree\n')).stdout).toMatch(/keyslot 1/);
    for (const [password, code] of [
      ['one', 0],
      ['two', 3],
      ['three', 0],
    ] as const) {
      const result = await vault(['info', file, '--password-stdin', ...cost], { stdin: `${password}\n` });
      expect(result.code).toBe(code);
    }
  });
});

// What `vault create` tells the user to type next works when typed (issue 18 point 7): keyfiles and a
// non-default cost level are in the mount hint, quoted for the shell; the default mountpoint keeps
// the letters of a non-ASCII name.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_COST, lacks, sh, useTempDir, vault } from './helpers.js';

describe.skipIf(lacks('mount'))('hints after create', () => {
  let dir = '';
  useTempDir('vault-hints-', (made) => {
    dir = made;
  });

  it('the printed mount command, run in a shell, mounts the vault at a mountpoint named after it', async () => {
    const file = join(dir, "tëst ñø's.vol");
    const key = join(dir, 'my key.bin');
    writeFileSync(key, 'keyfile bytes, not a password');
    const created = await vault(['create', '64M', file, '-k', key, '--non-interactive', '--cost', FAST_COST]);
    expect(created.code, created.stderr).toBe(0);
    const hint = /^Mount it with: (.*)$/m.exec(created.stdout)?.[1] ?? '';
    expect(hint).toBe(`vault mount '${dir}/tëst ñø'\\''s.vol' -k '${key}' --cost ${FAST_COST}`);
    // Typed into a shell, with `vault` being this checkout's bin/vault.
    const typed = await sh('bash', [
      '-c',
      `vault() { "${process.execPath}" "${join(process.cwd(), 'bin/vault')}" "$@"; }; ${hint} --non-interactive`,
    ]);
    expect(typed.code, typed.stderr).toBe(0);
    const mountpoint = typed.stdout.trim();
    expect(mountpoint).toBe('/media/vault/tëst_ñø_s');
    expect(existsSync(join(mountpoint, 'lost+found'))).toBe(true);
    expect((await vault(['dismount', mountpoint])).code).toBe(0);
  });
});

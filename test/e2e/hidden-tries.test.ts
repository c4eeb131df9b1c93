// `vault create --hidden <size> <file>` on an existing vault, at a terminal (issue 18 point 1, left
// over): the existing vault's password is asked again after a wrong one, --tries times as mount and
// passwd do, and the new hidden password only once the existing one has unlocked.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { FAST_COST, lacks, PtyRun, useTempDir, vault, vaultOk } from './helpers.js';

let dir = '';
useTempDir('vault-hidden-tries-', (made) => {
  dir = made;
});

const OUTER = 'outer password 1';
const HIDDEN = 'hidden password 2';
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function opensWith(file: string, password: string): Promise<boolean> {
  const result = await vault(['info', file, '--password-stdin', '--type', 'vault', '--cost', FAST_COST], {
    stdin: `${password}\n`,
  });
  return result.code === 0;
}

describe.skipIf(lacks('mount', 'script'))('vault create --hidden on an existing vault, at a terminal', () => {
  let file = '';
  beforeAll(async () => {
    file = join(dir, 'outer.vol');
    await vaultOk(['create', '32M', file, '--filesystem', 'exfat', '--password-stdin'], `${OUTER}\n`);
  });

  it('asks for the existing password again after a wrong one, then for the hidden one', async () => {
    const terminal = new PtyRun(
      ['create', '--hidden', '8M', file, '--hidden-filesystem', 'none', '--cost', FAST_COST],
      { cwd: dir },
    );
    try {
      let at = await terminal.answer(`Password of the existing vault ${file}: `, 'wrong password\r');
      at = await terminal.waitFor('2 tries left', at);
      at = await terminal.answer(`Password of the existing vault ${file}: `, `${OUTER}\r`, at);
      at = await terminal.answer(
        `Password for the new HIDDEN volume in ${file} (must differ): `,
        `${HIDDEN}\r`,
        at,
      );
      await terminal.answer('Repeat the password: ', `${HIDDEN}\r`, at);
      expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    } finally {
      terminal.kill();
    }
    expect(terminal.screen).toContain('Added a hidden volume of 8 MiB (no filesystem)');
    expect(terminal.screen).not.toMatch(/outer password|hidden password/);
    expect(await opensWith(file, HIDDEN)).toBe(true);
    expect(await opensWith(file, OUTER)).toBe(true);
  });

  it('--tries 1 gives up after one wrong password (exit 3), asks nothing more and changes nothing', async () => {
    const before = digest(file);
    const terminal = new PtyRun(
      ['create', '--hidden', '8M', file, '--hidden-filesystem', 'none', '--cost', FAST_COST, '--tries', '1'],
      { cwd: dir },
    );
    try {
      await terminal.answer(`Password of the existing vault ${file}: `, 'wrong password\r');
      expect(await terminal.exit()).toBe(EXIT_CODES.CANNOT_UNLOCK);
    } finally {
      terminal.kill();
    }
    expect(terminal.screen).not.toContain('HIDDEN');
    expect(terminal.screen).not.toContain('tries left');
    expect(terminal.screen).toMatch(/vault: error: cannot unlock/);
    expect(digest(file)).toBe(before);
  });
});

// Keyfiles and keyslots as a user meets them at the command line (issue 18): `-k -` reads a keyfile
// piped on stdin, the same keyfile twice is refused by name, `vault key list` shows the slots and which
// one the secret opened, `vault key remove --slot N` removes another slot; and a truncated vault says so.
import { readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { FAST_COST, makeTempDir, removeTempDirs, vault } from './helpers.js';

const COST = ['--cost', FAST_COST];
let dir = '';
let file = '';
let key = '';

beforeAll(async () => {
  dir = await makeTempDir('vault-keys-cli-');
  file = join(dir, 'k.vol');
  key = join(dir, 'k.key');
  expect((await vault(['keyfile', 'generate', key])).code).toBe(0);
  const created = await vault([
    'create',
    '2M',
    file,
    '--filesystem',
    'none',
    '-k',
    key,
    '--non-interactive',
    ...COST,
  ]);
  expect(created.code).toBe(EXIT_CODES.OK);
});
afterAll(removeTempDirs);

describe('keyfiles on the command line', () => {
  it('-k - reads the keyfile from a pipe (as cryptsetup --key-file=-)', async () => {
    const opened = await vault(['info', file, '-k', '-', '--type', 'vault', ...COST], {
      stdin: readFileSync(key),
    });
    expect(opened.stderr).toBe('');
    expect(opened.code).toBe(EXIT_CODES.OK);
    // Other bytes on stdin are another keyfile: the one cannot-unlock answer.
    const other = await vault(['info', file, '-k', '-', '--type', 'vault', ...COST], {
      stdin: 'not the key',
    });
    expect(other.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
    const empty = await vault(['info', file, '-k', '-', ...COST], { stdin: '' });
    expect(empty.code).toBe(EXIT_CODES.USAGE);
    expect(empty.stderr).toMatch(/vault: error: keyfile is empty: the keyfile on stdin/);
    const both = await vault(['info', file, '-k', '-', '--password-stdin', ...COST], {
      stdin: readFileSync(key),
    });
    expect(both.code).toBe(EXIT_CODES.USAGE);
    expect(both.stderr).toMatch(/vault: error: -k - and --password-stdin both want stdin\nvault: hint: /);
  });

  it('the same keyfile twice is refused by name (exit code 2), also under another path', async () => {
    for (const second of [key, join(dir, '.', 'k.key')]) {
      const twice = await vault(['info', file, '-k', key, '-k', second, '--non-interactive', ...COST]);
      expect(twice.code).toBe(EXIT_CODES.USAGE);
      expect(twice.stderr).toContain(
        `vault: error: keyfile given twice: ${second}\nvault: hint: give each keyfile once`,
      );
    }
    const stdinTwice = await vault(['info', file, '-k', '-', '-k', '-', ...COST], {
      stdin: readFileSync(key),
    });
    expect(stdinTwice.code).toBe(EXIT_CODES.USAGE);
  });
});

describe('keyslots', () => {
  it('key list shows the slots in use and which one the secret opened; key remove --slot N removes another', async () => {
    const added = await vault(['key', 'add', file, '-k', key, '--password-stdin', ...COST], {
      stdin: '\nsecond password here\n',
    });
    expect(added.stdout).toBe('Added keyslot 1.\n');
    const byKeyfile = await vault(['key', 'list', file, '-k', key, '--non-interactive', ...COST]);
    expect(byKeyfile.stdout).toBe(
      'keyslot  0: in use; opened by the secret you gave (1 keyfile)\nkeyslot  1: in use\n2 of 16 keyslots in use.\n',
    );
    const byPassword = await vault(['key', 'list', file, '--password-stdin', '--json', ...COST], {
      stdin: 'second password here\n',
    });
    expect(JSON.parse(byPassword.stdout)).toEqual({ total: 16, used: [0, 1], opened: 1 });

    // The keyfile's slot goes, removed with the password of slot 1 (luksKillSlot).
    const removed = await vault(['key', 'remove', file, '--slot', '0', '--password-stdin', ...COST], {
      stdin: 'second password here\n',
    });
    expect(removed.stdout).toBe('Removed keyslot 0.\n');
    const gone = await vault(['info', file, '-k', key, '--non-interactive', '--type', 'vault', ...COST]);
    expect(gone.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
    const empty = await vault(['key', 'remove', file, '--slot', '0', '--password-stdin', ...COST], {
      stdin: 'second password here\n',
    });
    expect(empty.code).toBe(EXIT_CODES.USAGE);
    expect(empty.stderr).toMatch(/vault: error: keyslot 0 is empty/);
    const last = await vault(['key', 'remove', file, '--slot', '1', '--password-stdin', ...COST], {
      stdin: 'second password here\n',
    });
    expect(last.code).toBe(EXIT_CODES.USAGE);
    expect(last.stderr).toMatch(/vault: error: this is the last keyslot/);
    const bad = await vault(['key', 'remove', file, '--slot', '16', '--password-stdin', ...COST], {
      stdin: 'second password here\n',
    });
    expect(bad.code).toBe(EXIT_CODES.USAGE);
  });
});

describe('a truncated vault', () => {
  it('info and repair say it is truncated (exit code 9) with what is left; a wrong password still gets 3', async () => {
    const cut = join(dir, 'cut.vol');
    const created = await vault(['create', '4M', cut, '--filesystem', 'none', '--password-stdin', ...COST], {
      stdin: 'the right password\n',
    });
    expect(created.code).toBe(EXIT_CODES.OK);
    truncateSync(cut, 2 * 2 ** 20);
    for (const command of ['info', 'repair']) {
      const result = await vault([command, cut, '--password-stdin', ...COST], {
        stdin: 'the right password\n',
      });
      expect(result.code, command).toBe(EXIT_CODES.IO);
      expect(result.stderr).toMatch(
        /^vault: error: .*cut\.vol is truncated: the secret opens its header, but the file has 2097152 bytes where the header describes 4194304; 1966080 of the volume's 3932160 bytes \(50%\) are in the file/,
      );
      expect(result.stderr).toMatch(/\nvault: hint: .*truncate -s 4194304 copy\.vol.*vault repair copy\.vol/);
    }
    const wrong = await vault(['info', cut, '--password-stdin', '--type', 'vault', ...COST], {
      stdin: 'wrong\n',
    });
    expect(wrong.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
  });
});

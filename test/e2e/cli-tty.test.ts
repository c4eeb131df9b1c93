// bin/vault under a real pseudo-terminal (util-linux `script`), as a person at a keyboard meets it: the
// prompt appears, typed passwords are not echoed and are exactly what unlocks the vault later, and
// Ctrl-C at a prompt or during the fill exits 130 leaving no file behind.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import {
  FAST_COST,
  lacks,
  makeTempDir,
  removeTempDirs,
  skipTest,
  VAULT_BIN,
  vault,
  waitFor,
} from './helpers.js';

const COST = ['--cost', FAST_COST];
let dir = '';

beforeAll(async () => {
  dir = await makeTempDir('vault-cli-tty-');
});
afterAll(removeTempDirs);

/** One run of bin/vault with a pty as its stdin/stdout/stderr; we type into it and read the screen. */
class Terminal {
  readonly child: ChildProcessWithoutNullStreams;
  screen = '';
  readonly exitCode: Promise<number>;

  /** `redirect`: shell redirections appended to the command, e.g. "2>/dev/null". */
  constructor(args: readonly string[], redirect = '') {
    const command = `${['exec', process.execPath, VAULT_BIN, ...args].map(shellQuote).join(' ')} ${redirect}`;
    // script -e: exit with the child's code; -q: no banner; the log goes to /dev/null.
    this.child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, SHELL: '/bin/sh', TERM: 'dumb' },
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.screen += chunk.toString('utf8');
    });
    this.exitCode = new Promise((resolveExit) => this.child.on('close', (code) => resolveExit(code ?? -1)));
  }

  async waitFor(text: string, from = 0): Promise<number> {
    await waitFor(
      () => this.screen.indexOf(text, from) >= 0,
      `"${text}" on the terminal; it shows:\n${this.screen}`,
    );
    return this.screen.indexOf(text, from) + text.length;
  }

  type(keys: string): void {
    this.child.stdin.write(keys);
  }

  /** Waits for the prompt `text`, then types `keys` (after the prompt, as a person would). */
  async answer(text: string, keys: string, from = 0): Promise<number> {
    const after = await this.waitFor(text, from);
    this.type(keys);
    return after;
  }

  /** Ends the run if it is still going (after a failed expectation), so nothing outlives the test. */
  kill(): void {
    const children = childPids(this.child.pid);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }

  async exit(): Promise<number> {
    const code = await this.exitCode;
    this.child.stdin.end();
    return code;
  }
}

function childPids(parent: number | undefined): number[] {
  try {
    return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function shellQuote(word: string): string {
  return /^[\w./=-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

async function opensWith(file: string, password: string): Promise<boolean> {
  // --type vault: a wrong password then fails at once instead of trying the VeraCrypt/TrueCrypt KDFs.
  return (
    (await vault(['info', file, '--password-stdin', '--type', 'vault', ...COST], { stdin: `${password}\n` }))
      .code === 0
  );
}

describe.skipIf(lacks('script'))('prompts on a terminal', () => {
  it('create asks twice without echo; what was typed (after editing) is the password', async () => {
    const file = join(dir, 'typed.vol');
    const terminal = new Terminal(['create', '2M', 'typed.vol', '--filesystem', 'none', ...COST]);
    // Typo fixed with Backspace, a line restarted with Ctrl-U: the password is "correct horse battery".
    const first = await terminal.answer(
      'Password for the new vault typed.vol: ',
      'correct horsX\x7fe battery\r',
    );
    await terminal.answer('Repeat the password: ', 'oops\x15correct horse battery\r', first);
    expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    expect(terminal.screen).not.toMatch(/correct|horse|battery|oops|\*\*\*/);
    expect(terminal.screen).toContain('Created typed.vol');
    expect(await opensWith(file, 'correct horse battery')).toBe(true);
  });

  it('a short password needs a "y": Enter (no) asks for another one', async () => {
    const terminal = new Terminal(['create', '2M', 'short.vol', '--filesystem', 'none', ...COST]);
    try {
      let at = await terminal.answer('Password for the new vault short.vol: ', 'abc123\r');
      at = await terminal.answer('Repeat the password: ', 'abc123\r', at);
      at = await terminal.answer('Use it anyway? [y/N] ', '\r', at);
      // Asked again from the start; this time the short one is kept.
      at = await terminal.answer('Password for the new vault short.vol: ', 'xyz789\r', at);
      at = await terminal.answer('Repeat the password: ', 'xyz789\r', at);
      await terminal.answer('Use it anyway? [y/N] ', 'y\r', at);
      expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    } finally {
      terminal.kill();
    }
    expect(terminal.screen).toMatch(/This password has only 6 characters/);
    expect(terminal.screen).not.toMatch(/abc123|xyz789/);
    expect(await opensWith(join(dir, 'short.vol'), 'xyz789')).toBe(true);
    expect(await opensWith(join(dir, 'short.vol'), 'abc123')).toBe(false);
  });

  it('a mismatch or an empty answer asks again; --tries 1 gives up at once (exit code 2, no file)', async () => {
    const terminal = new Terminal(['create', '2M', 'retyped.vol', '--filesystem', 'none', ...COST]);
    try {
      let at = await terminal.answer('Password for the new vault retyped.vol: ', '\r');
      at = await terminal.waitFor('No password entered; try again.', at);
      at = await terminal.answer('Password for the new vault retyped.vol: ', 'first password\r', at);
      at = await terminal.answer('Repeat the password: ', 'second password\r', at);
      at = await terminal.waitFor('The passwords do not match; try again.', at);
      at = await terminal.answer('Password for the new vault retyped.vol: ', 'third password\r', at);
      await terminal.answer('Repeat the password: ', 'third password\r', at);
      expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    } finally {
      terminal.kill();
    }
    expect(await opensWith(join(dir, 'retyped.vol'), 'third password')).toBe(true);

    const once = new Terminal([
      'create',
      '2M',
      'mismatch.vol',
      '--filesystem',
      'none',
      '--tries',
      '1',
      ...COST,
    ]);
    try {
      const first = await once.answer('Password for the new vault mismatch.vol: ', 'first password\r');
      await once.answer('Repeat the password: ', 'second password\r', first);
      expect(await once.exit()).toBe(EXIT_CODES.USAGE);
    } finally {
      once.kill();
    }
    expect(once.screen).toMatch(/vault: error: the passwords do not match/);
    expect(existsSync(join(dir, 'mismatch.vol'))).toBe(false);
  });

  it('a wrong password asks again (3 tries by default), says how many are left, then exits 3', async () => {
    const file = join(dir, 'typed.vol');
    // --type vault: each wrong answer fails at once instead of trying the VeraCrypt/TrueCrypt KDFs.
    const retried = new Terminal(['info', file, '--type', 'vault', ...COST]);
    const failed = new Terminal(['info', file, '--type', 'vault', ...COST]);
    const once = new Terminal(['info', file, '--type', 'vault', '--tries', '1', ...COST]);
    try {
      let at = await retried.answer(`Password for ${file}: `, 'wrong\r');
      at = await retried.waitFor('2 tries left', at);
      await retried.answer(`Password for ${file}: `, 'correct horse battery\r', at);
      expect(await retried.exit()).toBe(EXIT_CODES.OK);
      expect(retried.screen).toMatch(/keyslots: +1 of \d+ used/);

      at = 0;
      for (const left of ['2 tries left', '1 try left']) {
        at = await failed.answer(`Password for ${file}: `, 'wrong\r', at);
        at = await failed.waitFor(left, at);
      }
      await failed.answer(`Password for ${file}: `, 'still wrong\r', at);
      expect(await failed.exit()).toBe(EXIT_CODES.CANNOT_UNLOCK);
      expect(failed.screen.split(`Password for ${file}: `).length - 1).toBe(3);

      await once.answer(`Password for ${file}: `, 'wrong\r');
      expect(await once.exit()).toBe(EXIT_CODES.CANNOT_UNLOCK);
      expect(once.screen).not.toContain('left');
    } finally {
      for (const terminal of [retried, failed, once]) terminal.kill();
    }
  });

  it('says "Unlocking (Argon2id, <memory>)..." while the key is derived', async () => {
    const file = join(dir, 'typed.vol');
    const terminal = new Terminal(['info', file, ...COST]);
    try {
      const at = await terminal.answer(`Password for ${file}: `, 'correct horse battery\r');
      await terminal.waitFor('Unlocking (Argon2id, 1 MiB)...', at);
      expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    } finally {
      terminal.kill();
    }
    // Not on a redirected stderr (scripts and logs).
    const piped = await vault(['info', file, '--password-stdin', ...COST], {
      stdin: 'correct horse battery\n',
    });
    expect(piped.stderr).not.toContain('Unlocking');
  });

  it('a missing vault, backup or keyfile is named before any prompt (exit code 4)', async () => {
    for (const args of [
      ['info', 'nope.vol'],
      ['passwd', 'nope.vol'],
      ['key', 'add', 'nope.vol'],
      ['key', 'remove', 'nope.vol'],
      ['repair', 'nope.vol'],
      ['header', 'backup', 'nope.vol', 'out.hdr'],
      ['header', 'restore', 'typed.vol', 'nope.hdr'],
      ['info', 'typed.vol', '-k', 'nope.key'],
    ]) {
      const terminal = new Terminal([...args, ...COST]);
      try {
        expect(await terminal.exit(), args.join(' ')).toBe(EXIT_CODES.NOT_FOUND);
      } finally {
        terminal.kill();
      }
      expect(terminal.screen).toMatch(/vault: error: (no such file|keyfile not found): nope/);
      expect(terminal.screen).not.toContain('Password');
    }
    const scripted = await vault(['info', join(dir, 'nope.vol'), '--non-interactive']);
    expect(scripted.code).toBe(EXIT_CODES.NOT_FOUND);
  });

  it('a password set through --password-stdin can be typed at the prompt (TAB included); one that cannot is refused', async () => {
    const created = await vault(
      ['create', '2M', join(dir, 'tab.vol'), '--filesystem', 'none', '--password-stdin', ...COST],
      { stdin: 'tab\tseparated words\n' },
    );
    expect(created.code).toBe(EXIT_CODES.OK);
    const terminal = new Terminal(['info', join(dir, 'tab.vol'), ...COST]);
    try {
      await terminal.answer('Password for', 'tab\tseparated words\r');
      expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    } finally {
      terminal.kill();
    }

    for (const password of ['bell\x07password', 'x'.repeat(4097)]) {
      const refused = await vault(
        ['create', '2M', join(dir, 'untypable.vol'), '--filesystem', 'none', '--password-stdin', ...COST],
        { stdin: `${password}\n` },
      );
      expect(refused.code).toBe(EXIT_CODES.USAGE);
      expect(refused.stderr).toMatch(
        /vault: error: this password could not be typed at the password prompt later/,
      );
      expect(existsSync(join(dir, 'untypable.vol'))).toBe(false);
    }
  });
  it('with a keyfile, an empty answer means "keyfile only"', async () => {
    const key = join(dir, 'tty.key');
    expect((await vault(['keyfile', 'generate', key])).code).toBe(0);
    const terminal = new Terminal([
      'create',
      '2M',
      'keyonly.vol',
      '--filesystem',
      'none',
      '-k',
      key,
      ...COST,
    ]);
    const first = await terminal.answer('(Enter for none, keyfiles only): ', '\r');
    await terminal.answer('Repeat the password (Enter for none): ', '\r', first);
    expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    const opened = await vault(['info', join(dir, 'keyonly.vol'), '-k', key, '--non-interactive', ...COST]);
    expect(opened.code).toBe(EXIT_CODES.OK);
  });

  it('the prompt reaches the terminal even when stderr is redirected', async () => {
    const file = join(dir, 'typed.vol');
    const terminal = new Terminal(['info', file, ...COST], '2>/dev/null');
    await terminal.answer(`Password for ${file}: `, 'correct horse battery\r');
    expect(await terminal.exit()).toBe(EXIT_CODES.OK);
  });

  it('--non-interactive never prompts, even on a terminal (exit code 7)', async () => {
    const terminal = new Terminal(['create', '2M', 'never.vol', '--filesystem', 'none', '--non-interactive']);
    expect(await terminal.exit()).toBe(EXIT_CODES.MISSING_SECRET);
    expect(terminal.screen).not.toContain('Password');
    expect(existsSync(join(dir, 'never.vol'))).toBe(false);
  });

  it('the prompt of an unlocking command opens the vault with the typed password', async () => {
    const file = join(dir, 'typed.vol');
    const terminal = new Terminal(['info', file, ...COST]);
    await terminal.answer(`Password for ${file}: `, 'correct horse battery\r');
    expect(await terminal.exit()).toBe(EXIT_CODES.OK);
    expect(terminal.screen).toMatch(/keyslots: +1 of \d+ used/);
    expect(terminal.screen).not.toContain('horse');
  });
});

describe.skipIf(lacks('script'))('Ctrl-C', () => {
  it('at the first or second prompt: exit code 130, the terminal shows no password, nothing is left', async () => {
    for (const second of [false, true]) {
      const before = readdirSync(dir).sort();
      const terminal = new Terminal(['create', '2M', 'cancelled.vol', '--filesystem', 'none', ...COST]);
      if (second) {
        const first = await terminal.answer('Password for the new vault cancelled.vol: ', 'half typed\r');
        await terminal.answer('Repeat the password: ', 'half\x03', first);
      } else {
        await terminal.answer('Password for the new vault cancelled.vol: ', 'half\x03');
      }
      expect(await terminal.exit()).toBe(EXIT_CODES.INTERRUPTED);
      expect(terminal.screen).toMatch(
        /vault: error: interrupted at the password prompt; nothing was changed/,
      );
      expect(terminal.screen).not.toContain('half');
      expect(readdirSync(dir).sort()).toEqual(before);
    }
  });

  it('during the fill: exit code 130 and the partial vault file is removed', async (context) => {
    // Big enough that the fill is still running when Ctrl-C arrives (it stops at once), small enough
    // for the free space of most disks (create refuses sizes beyond it; it used to be 8 GiB).
    const disk = statfsSync(dir);
    if (disk.bavail * disk.bsize < 3 * 2 ** 30) skipTest(context, `less than 3 GiB free in ${dir}`);
    const before = readdirSync(dir).sort();
    const terminal = new Terminal([
      'create',
      '2G',
      'big.vol',
      '--filesystem',
      'none',
      '--password-stdin',
      ...COST,
    ]);
    try {
      terminal.type('a long enough password\r');
      await terminal.waitFor('Filling');
      // The file being filled (under a temporary name until it is complete).
      await waitFor(() => readdirSync(dir).length > before.length, 'the vault file to appear');
      terminal.type('\x03'); // the terminal turns this into SIGINT for vault
      expect(await terminal.exit()).toBe(EXIT_CODES.INTERRUPTED);
    } finally {
      terminal.kill();
    }
    expect(terminal.screen).toMatch(/vault: error: .*interrupted/i);
    expect(readdirSync(dir).sort()).toEqual(before);
  });
});

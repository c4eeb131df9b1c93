// /etc/vaulttab as root uses it at boot and by hand (`vault mount --tab`, `vault dismount --tab`), with a
// vaulttab of this test's own (--tab-file) and real vaults, FUSE, loop devices and ext4: what is mounted,
// skipped, refused and why, the exit status, the trust rules for the tab and its keyfiles, a password
// line at a terminal, and the shipped unit docs/examples/vault-tab.service run line by line.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import {
  isMounted,
  lacks,
  leftovers,
  listedVault,
  mounts,
  PtyRun,
  ROOT,
  sh,
  useTempDir,
  VAULT_BIN,
  vault,
  vaultOk,
} from './helpers.js';

let dir = '';
useTempDir('vault-tab-', (made) => {
  dir = made;
});

const NOBODY = 65534;
const PASSWORD_B = 'b password 1';
let key = '';
let [a, b, c] = ['', '', ''];
const mnt = (name: string) => join(dir, 'mnt', name);

function writeTab(name: string, lines: readonly string[], mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`, { mode });
  chmodSync(path, mode);
  return path;
}

/** The usual tab: a keyfile line, a password line (nofail), a noauto read-only line. */
function mainTab(): string {
  return writeTab('vaulttab', [
    '# vault file                 mountpoint      keyfile   options',
    `${a} ${mnt('a')} ${key} cost=1,idle-dismount=10m`,
    `${b}\t${mnt('b')}\t-\tcost=1,nofail,tries=2,type=vault`,
    `${c} ${mnt('c')} ${key} cost=1,noauto,ro`,
  ]);
}

describe.skipIf(lacks('mount'))('vault mount --tab / vault dismount --tab', () => {
  beforeAll(async () => {
    key = join(dir, 'keys', 'tab.key');
    [a, b, c] = ['a.vol', 'b.vol', 'c.vol'].map((name) => join(dir, name)) as [string, string, string];
    await vaultOk(['keyfile', 'generate', key]);
    await vaultOk(['create', '16M', a, '-k', key, '--non-interactive', '--quick']);
    await vaultOk(['create', '16M', b, '--password-stdin', '--quick'], `${PASSWORD_B}\n`);
    await vaultOk(['create', '16M', c, '-k', key, '--non-interactive', '--quick']);
  });

  it('mounts every line but noauto ones, skips what is mounted, dismounts in reverse order', async () => {
    const tab = mainTab();
    const first = await vault(['mount', '--tab', '--tab-file', tab, '--non-interactive']);
    expect(first.stdout).toBe(`${mnt('a')}\n`);
    // The password line cannot be mounted without a terminal; it is nofail, so the run succeeds.
    expect(first.stderr).toBe(
      `vault: error: b (${tab} line 3): ${b} has no keyfile in the vaulttab, and --non-interactive forbids asking for its password\n` +
        'vault: hint: give the line a keyfile (vault keyfile generate, then vault key add --new-keyfile), mark it noauto, or run vault mount --tab at a terminal\n' +
        'vault: note: b is nofail: the run goes on as if it had mounted\n',
    );
    expect(first.code).toBe(EXIT_CODES.OK);
    expect(isMounted(mnt('a'))).toBe(true);
    expect(isMounted(mnt('b')) || isMounted(mnt('c'))).toBe(false);
    // The line's options reach the mount.
    expect((await listedVault(a)) as unknown).toMatchObject({ idleDismountSeconds: 600, readOnly: false });

    const again = await vault(['mount', '--tab', '--tab-file', tab, '--non-interactive']);
    expect(again.code).toBe(EXIT_CODES.OK);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain(`vault: note: ${a} is already mounted at ${mnt('a')}; skipped\n`);

    // Named, a noauto line is mounted too: c is read-only (ro).
    const named = await vault(['mount', '--tab', 'c', '--tab-file', tab]);
    expect(named.stderr).toBe('');
    expect(named.code).toBe(EXIT_CODES.OK);
    expect(named.stdout).toBe(`${mnt('c')}\n`);
    expect(
      mounts()
        .find((entry) => entry.mountpoint === mnt('c'))
        ?.options.split(','),
    ).toContain('ro');

    const down = await vault(['dismount', '--tab', '--tab-file', tab]);
    expect(down.stderr).toBe('');
    expect(down.code).toBe(EXIT_CODES.OK);
    expect(down.stdout).toBe(`dismounted ${c} from ${mnt('c')}\ndismounted ${a} from ${mnt('a')}\n`);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a failing line does not stop the others; the exit status is that of the first failure', async () => {
    const wrongKey = join(dir, 'keys', 'wrong.key');
    await vaultOk(['keyfile', 'generate', wrongKey]);
    const tab = writeTab('failing', [
      `${c} ${mnt('c')} ${wrongKey} cost=1,type=vault`,
      `${join(dir, 'missing.vol')} ${mnt('missing')} ${key} cost=1`,
      `${a} ${mnt('a')} ${key} cost=1`,
    ]);
    const result = await vault(['mount', '--tab', '--tab-file', tab, '--non-interactive']);
    expect(result.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
    expect(result.stderr).toMatch(
      new RegExp(`^vault: error: c \\(${tab} line 1\\): cannot unlock the vault: wrong password`, 'm'),
    );
    expect(result.stderr).toContain(
      `vault: error: missing (${tab} line 2): no such file: ${join(dir, 'missing.vol')}\n`,
    );
    expect(result.stdout).toBe(`${mnt('a')}\n`);
    expect(isMounted(mnt('a'))).toBe(true);
    const down = await vault(['dismount', '--tab', '--tab-file', tab]);
    expect(down.code).toBe(EXIT_CODES.OK);
    expect(down.stdout).toBe(`dismounted ${a} from ${mnt('a')}\n`);
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses a malformed line with its number (exit 2) and mounts nothing', async () => {
    const tab = writeTab('malformed', [
      `${a} ${mnt('a')} ${key} cost=1`,
      `${c} ${mnt('c')} ${key} cost=1,bogus`,
    ]);
    const result = await vault(['mount', '--tab', '--tab-file', tab, '--non-interactive']);
    expect(result.code).toBe(EXIT_CODES.USAGE);
    expect(result.stderr).toMatch(
      new RegExp(
        `^vault: error: ${tab} line 2: unknown option "bogus"\nvault: hint: options are comma-separated, from: defaults, ro, rw, noauto`,
      ),
    );
    expect(isMounted(mnt('a'))).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  it('trusts no vaulttab or keyfile another user could have written (exit 2)', async () => {
    const tab = mainTab();
    const refused = async (why: string) => {
      const result = await vault(['mount', '--tab', 'a', '--tab-file', tab, '--non-interactive']);
      expect(result.code, result.stderr).toBe(EXIT_CODES.USAGE);
      expect(result.stderr).toContain(why);
      expect(isMounted(mnt('a'))).toBe(false);
    };
    chmodSync(tab, 0o666);
    await refused(`vault: error: the vaulttab ${tab} is not safe to use: ${tab} is writable by every user\n`);
    chmodSync(tab, 0o600);
    chownSync(tab, NOBODY, NOBODY);
    await refused(`the vaulttab ${tab} is not safe to use: ${tab} belongs to another user (uid ${NOBODY})`);
    chownSync(tab, 0, 0);
    // The keyfile's directory, then the keyfile itself.
    chmodSync(join(dir, 'keys'), 0o770);
    await refused(
      `vault: error: a (${tab} line 2): the keyfile ${key} is not safe to use: ${join(dir, 'keys')} is writable by its group\n`,
    );
    chmodSync(join(dir, 'keys'), 0o700);
    chmodSync(key, 0o620);
    await refused(`the keyfile ${key} is not safe to use: ${key} is writable by its group`);
    // Readable by others: mounted, with a warning (as systemd-cryptsetup does).
    chmodSync(key, 0o644);
    // (And a relative --tab-file is the file in the current directory.)
    const readable = await vault(['mount', '--tab', 'a', '--tab-file', 'vaulttab', '--non-interactive'], {
      cwd: dir,
    });
    chmodSync(key, 0o600);
    expect(readable.code).toBe(EXIT_CODES.OK);
    expect(readable.stderr).toBe(
      `vault: warning: the keyfile ${key} can be read by other users; chmod 600 it\n`,
    );
    expect((await vault(['dismount', '--tab', 'a', '--tab-file', tab])).code).toBe(EXIT_CODES.OK);
    expect(leftovers(dir)).toEqual([]);
  });

  it('usage: unknown names (4), a missing vaulttab (4), per-vault options with --tab (2)', async () => {
    const tab = mainTab();
    const unknown = await vault(['mount', '--tab', 'a', 'nope', '--tab-file', tab, '--non-interactive']);
    expect(unknown.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(unknown.stderr).toBe(
      `vault: error: ${tab} has no vault "nope"\nvault: hint: name one by its name (a, b, c), its file or its mountpoint\n`,
    );
    const missing = await vault(['mount', '--tab', '--tab-file', join(dir, 'no-such-tab')]);
    expect(missing.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(missing.stderr).toMatch(/^vault: error: the vaulttab .*no-such-tab does not exist\n/);
    const readOnly = await vault(['mount', '--tab', '--tab-file', tab, '--read-only']);
    expect(readOnly.code).toBe(EXIT_CODES.USAGE);
    expect(readOnly.stderr).toMatch(/^vault: error: --read-only does not go with --tab\n/);
    const withFile = await vault(['mount', a, '--tab', '--tab-file', tab]);
    expect(withFile.code).toBe(EXIT_CODES.USAGE);
    const empty = writeTab('empty', ['# nothing yet']);
    const nothing = await vault(['mount', '--tab', '--tab-file', empty, '--non-interactive']);
    expect(nothing).toMatchObject({
      code: EXIT_CODES.OK,
      stdout: '',
      stderr: `vault: note: ${empty} lists nothing to mount\n`,
    });
    const bothDismount = await vault(['dismount', '--all', '--tab', '--tab-file', tab]);
    expect(bothDismount.code).toBe(EXIT_CODES.USAGE);
    expect(leftovers(dir)).toEqual([]);
  });

  it.skipIf(lacks('script'))(
    'a line without a keyfile asks for its password at a terminal, tries= times',
    async () => {
      const tab = mainTab();
      const terminal = new PtyRun(['mount', '--tab', 'b', '--tab-file', tab]);
      try {
        let at = await terminal.answer(`Password for ${b}: `, 'not it\r');
        at = await terminal.waitFor('1 try left', at);
        await terminal.answer(`Password for ${b}: `, `${PASSWORD_B}\r`, at);
        expect(await terminal.exit()).toBe(EXIT_CODES.OK);
      } finally {
        terminal.kill();
      }
      expect(terminal.screen).not.toContain(PASSWORD_B);
      expect(isMounted(mnt('b'))).toBe(true);
      expect((await vault(['dismount', '--tab', 'b', '--tab-file', tab])).code).toBe(EXIT_CODES.OK);
      expect(leftovers(dir)).toEqual([]);
    },
  );

  it('docs/examples/vault-tab.service: ExecStart mounts the vaulttab with no terminal, ExecStop dismounts', async () => {
    const unit = readFileSync(join(ROOT, 'docs/examples/vault-tab.service'), 'utf8');
    const tab = mainTab();
    const line = (key: string): string => {
      const found = unit.split('\n').find((entry) => entry.startsWith(`${key}=`));
      if (!found) throw new Error(`no ${key}= in the unit`);
      // As written, but this test's vaulttab instead of /etc/vaulttab and bin/vault of this checkout.
      return found
        .slice(key.length + 1)
        .replace('/usr/local/bin/vault', `"${process.execPath}" "${VAULT_BIN}"`)
        .replace(/ --tab\b/, ` --tab --tab-file ${tab}`);
    };
    expect(unit).toContain('ConditionPathExists=/etc/vaulttab');
    const run = (command: string) => sh('/bin/sh', ['-c', `${command} </dev/null`], 120_000);
    const started = await run(line('ExecStart'));
    expect(started.code).toBe(0);
    expect(started.stdout).toBe(`${mnt('a')}\n`);
    expect(isMounted(mnt('a'))).toBe(true);
    writeFileSync(join(mnt('a'), 'hello.txt'), 'from systemd');
    const stopped = await run(line('ExecStop'));
    expect(stopped.code).toBe(0);
    expect(isMounted(mnt('a'))).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))(
    'systemd-analyze verify finds nothing to say about the unit',
    () => {
      const unitDir = join(dir, 'units');
      mkdirSync(unitDir, { recursive: true });
      writeFileSync(
        join(unitDir, 'vault-tab.service'),
        readFileSync(join(ROOT, 'docs/examples/vault-tab.service')),
      );
      const verify = spawnSync('systemd-analyze', ['verify', join(unitDir, 'vault-tab.service')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      const aboutUnit = verify.stderr
        .split('\n')
        .filter((text) => text.includes('vault-tab') && !/is not executable|No such file/.test(text));
      expect(aboutUnit).toEqual([]);
    },
  );
});

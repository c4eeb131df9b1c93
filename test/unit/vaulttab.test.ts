// The vaulttab (src/cli/vaulttab.ts): what a line may say, what every malformed line is refused with
// (its line number and a hint, exit code 2), which lines `--tab NAME` selects; the durations of
// idle-dismount= and --idle-dismount (src/cli/duration.ts); and the trust rules for the tab and its
// keyfiles (src/host/owner.ts checkTrustedFile), on real files in a temporary directory.
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/cli/duration.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { checkVolumeOptions, parseVaulttab, selectEntries } from '../../src/cli/vaulttab.js';
import { isVaultError, type VaultError } from '../../src/container/errors.js';
import { checkTrustedFile } from '../../src/host/owner.js';

const TAB = '/etc/vaulttab';

function refusal(run: () => unknown): VaultError {
  try {
    run();
  } catch (error) {
    if (isVaultError(error)) return error;
    throw error;
  }
  throw new Error('expected a VaultError');
}

describe('parseVaulttab reads', () => {
  it('comments, blank lines, the four fields and the defaults of left-out ones', () => {
    const entries = parseVaulttab(
      [
        '# vault file            mountpoint   keyfile              options',
        '',
        '/srv/vaults/data.vol    /mnt/data    /etc/vault/data.key  ro,nofail,idle-dismount=10m',
        '  /srv/photos.vol\t/mnt/photos',
        '/srv/b.vol - none noauto,tries=5,cost=10,owner=alice\r',
      ].join('\n'),
      TAB,
    );
    expect(entries).toHaveLength(3);
    const [data, photos, b] = entries;
    expect(data).toMatchObject({
      line: 3,
      file: '/srv/vaults/data.vol',
      mountpoint: '/mnt/data',
      keyfile: '/etc/vault/data.key',
      name: 'data',
      options: { readOnly: true, nofail: true, noauto: false, idleDismountMs: 600_000 },
    });
    expect(photos).toMatchObject({
      line: 4,
      keyfile: null,
      name: 'photos',
      options: { readOnly: false, nofail: false, noauto: false, fsOptions: [] },
    });
    expect(b).toMatchObject({
      line: 5,
      mountpoint: null,
      keyfile: null,
      options: { noauto: true, tries: 5, cost: 10, owner: 'alice' },
    });
  });

  it('"-" as keyfile means none, \\040 a space, and paths are normalised', () => {
    const [entry] = parseVaulttab('/srv/my\\040vaults/a.vol /mnt/my\\040a/ - defaults', TAB);
    expect(entry).toMatchObject({ file: '/srv/my vaults/a.vol', mountpoint: '/mnt/my a', keyfile: null });
  });

  it('every option a line may carry', () => {
    const [entry] = parseVaulttab(
      '/srv/a.vol /mnt/a /k ro,preserve-timestamps,partition=2,fs=noatime,fs=commit=30,type=veracrypt,hash=sha512,pim=485',
      TAB,
    );
    expect(entry?.options).toMatchObject({
      readOnly: true,
      preserveTimestamps: true,
      partition: 2,
      fsOptions: ['noatime', 'commit=30'],
      volume: { type: 'veracrypt', hash: 'sha512', pim: '485' },
    });
  });

  it('an empty file, or one of comments only, lists nothing', () => {
    expect(parseVaulttab('', TAB)).toEqual([]);
    expect(parseVaulttab('# nothing yet\n\n   \n', TAB)).toEqual([]);
  });
});

describe('the vaulttabs the docs show', () => {
  const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

  it('docs/CLI.md: its example parses, with the options it describes', () => {
    const block = /## vaulttab[\s\S]*?```\n([\s\S]*?)```/.exec(read('docs/CLI.md'))?.[1] ?? '';
    const entries = parseVaulttab(block, TAB);
    expect(entries.map((entry) => entry.name)).toEqual(['data', 'photos', 'private']);
    expect(entries[1]?.options).toMatchObject({ readOnly: true, nofail: true });
    expect(entries[2]).toMatchObject({
      mountpoint: null,
      keyfile: null,
      options: { noauto: true, tries: 5 },
    });
  });

  it('README: the line it appends to /etc/vaulttab parses', () => {
    const line = /echo '([^']+)' >> \/etc\/vaulttab/.exec(read('README.md'))?.[1];
    expect(line).toBeDefined();
    expect(parseVaulttab(line ?? '', TAB)[0]).toMatchObject({
      name: 'data',
      options: { idleDismountMs: 3_600_000 },
    });
  });
});

describe('parseVaulttab refuses with the line number and a hint (exit code 2)', () => {
  it.each([
    ['an unknown option', '/a.vol /mnt/a - ro,noexec_typo', /line 2: unknown option "noexec_typo"/],
    ['a relative vault file', 'a.vol /mnt/a', /line 2: the vault file must be an absolute path/],
    ['a relative mountpoint', '/a.vol mnt/a', /line 2: the mountpoint must be an absolute path/],
    ['a relative keyfile', '/a.vol /mnt/a a.key', /line 2: the keyfile must be an absolute path/],
    ['one field', '/a.vol', /line 2: needs at least a vault file and a mountpoint/],
    ['five fields', '/a b.vol /mnt/a - ro', /line 2: has 5 fields, at most 4/],
    ['an unknown escape', '/a\\x.vol /mnt/a', /line 2: unknown escape "\\x\.v"/],
    ['an octal escape that is not a space', '/a\\101.vol /mnt/a', /line 2: unknown escape/],
    ['a value on a flag', '/a.vol /mnt/a - ro=1', /line 2: option "ro" takes no value/],
    ['a missing value', '/a.vol /mnt/a - tries', /line 2: option "tries" needs a value/],
    ['an empty value', '/a.vol /mnt/a - owner=', /line 2: option "owner" needs a value/],
    [
      'tries out of range',
      '/a.vol /mnt/a - tries=0',
      /line 2: tries=0: must be a whole number from 1 to 100/,
    ],
    ['a cost level out of range', '/a.vol /mnt/a - cost=99', /line 2: cost=99: must be a whole number/],
    ['a partition that is not a number', '/a.vol /mnt/a - partition=two', /line 2: partition=two/],
    ['a bad duration', '/a.vol /mnt/a - idle-dismount=10', /line 2: idle-dismount: not a duration: "10"/],
    ['a zero duration', '/a.vol /mnt/a - idle-dismount=0s', /line 2: idle-dismount: "0s" is too short/],
    ['a mount option vault refuses', '/a.vol /mnt/a - fs=suid', /line 2: fs=.*cannot include "suid"/],
    ['ro and rw together', '/a.vol /mnt/a - ro,rw', /line 2: option "rw" contradicts or repeats another/],
    ['an option twice', '/a.vol /mnt/a - nofail,nofail', /line 2: option "nofail" is given twice/],
    ['an empty option', '/a.vol /mnt/a - ro,,nofail', /line 2: empty option/],
    ['a user name with a slash', '/a.vol /mnt/a - owner=a/b', /line 2: owner=a\/b: not a user name/],
    ['a control character', '/a.vol /mnt/a\u0007', /line 2: contains a control character/],
  ])('%s', (_, line, message) => {
    const error = refusal(() => parseVaulttab(`# header\n${line}\n`, TAB));
    expect(error.code).toBe('USAGE');
    expect(EXIT_CODES[error.code]).toBe(2);
    expect(error.message).toMatch(new RegExp(`^${TAB} `));
    expect(error.message).toMatch(message);
    expect(error.hint ?? '').not.toBe('');
  });

  it('the same vault or mountpoint on two lines, naming the first', () => {
    const twice = refusal(() => parseVaulttab('/a.vol /mnt/a\n/a.vol /mnt/b', TAB));
    expect(twice.message).toBe(`${TAB} line 2: names /a.vol again (line 1)`);
    const shared = refusal(() => parseVaulttab('/a.vol /mnt/a\n/b.vol /mnt/a/', TAB));
    expect(shared.message).toBe(`${TAB} line 2: mounts on /mnt/a again (line 1)`);
  });

  it('type=, hash=, pim= are checked as --type, --hash, --pim (checkVolumeOptions), naming the line', async () => {
    const entries = parseVaulttab('# header\n/a.vol /mnt/a - type=vault\n/b.vol /mnt/b - type=zip\n', TAB);
    const error = await checkVolumeOptions(entries, TAB).then(
      () => null,
      (thrown: unknown) => thrown,
    );
    expect(isVaultError(error, 'USAGE')).toBe(true);
    expect((error as VaultError).message).toBe(`${TAB} line 3: unknown volume type "zip"`);
    await expect(checkVolumeOptions(entries.slice(0, 1), TAB)).resolves.toBeUndefined();
  });

  it('the hint for an unknown option lists the known ones', () => {
    const error = refusal(() => parseVaulttab('/a.vol /mnt/a - rox', TAB));
    expect(error.hint).toContain('noauto');
    expect(error.hint).toContain('idle-dismount=DURATION');
  });
});

describe('selectEntries', () => {
  const entries = parseVaulttab(
    ['/srv/data.vol /mnt/data', '/srv/old.vol /mnt/old - noauto', '/srv/photos.vol -'].join('\n'),
    TAB,
  );

  it('with no names: every line but noauto ones (all of them for dismount)', () => {
    expect(selectEntries(entries, [], TAB).map((entry) => entry.name)).toEqual(['data', 'photos']);
    expect(selectEntries(entries, [], TAB, { all: true })).toHaveLength(3);
  });

  it('by name, vault file or mountpoint, noauto ones too, in the order of the file', () => {
    expect(selectEntries(entries, ['photos', '/mnt/old'], TAB).map((entry) => entry.name)).toEqual([
      'old',
      'photos',
    ]);
    expect(selectEntries(entries, ['/srv/data.vol'], TAB).map((entry) => entry.name)).toEqual(['data']);
  });

  it('a name that no line has is NOT_FOUND, with the names there are', () => {
    const error = refusal(() => selectEntries(entries, ['data', 'nope'], TAB));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe(`${TAB} has no vault "nope"`);
    expect(error.hint).toContain('data, old, photos');
  });
});

describe('durations (--idle-dismount, idle-dismount=)', () => {
  it.each([
    ['30s', 30_000],
    ['1s', 1000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    [' 90s ', 90_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text, '--idle-dismount')).toBe(ms);
  });

  it.each(['', '10', '0s', '5x', '1m1h', '1.5h', '-5m', '31d', 'm', '10 m', '1h1h'])('refuses %j', (text) => {
    const error = refusal(() => parseDuration(text, '--idle-dismount'));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^--idle-dismount: /);
    expect(error.hint).toMatch(/30s, 10m, 1h/);
  });

  it('formats for list and info', () => {
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(2000)).toBe('2s');
    expect(formatDuration(90_061_000)).toBe('1d1h1m1s');
  });
});

describe.skipIf(process.getuid?.() !== 0)('checkTrustedFile (as root: files owned by another user)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-trust-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const NOBODY = 65534;

  function file(name: string, mode = 0o600): string {
    const path = join(dir, name);
    writeFileSync(path, 'x');
    chmodSync(path, mode);
    return path;
  }

  async function refused(path: string): Promise<VaultError> {
    try {
      await checkTrustedFile(path, 'the vaulttab');
    } catch (error) {
      if (isVaultError(error)) return error;
      throw error;
    }
    throw new Error(`${path} was trusted`);
  }

  it('accepts a root file 0600 or 0644 in root directories, returning its mode', async () => {
    expect(await checkTrustedFile(file('ok', 0o600), 'the vaulttab')).toBe(0o600);
    expect(await checkTrustedFile(file('readable', 0o644), 'the vaulttab')).toBe(0o644);
  });

  it('refuses a file writable by its group or by everyone', async () => {
    expect((await refused(file('g', 0o620))).message).toMatch(/is writable by its group/);
    const everyone = await refused(file('o', 0o602));
    expect(everyone.code).toBe('USAGE');
    expect(everyone.message).toMatch(/is writable by every user/);
    expect(everyone.hint).toMatch(/chmod go-w/);
  });

  it('refuses a file of another user, and a file in a directory of another user', async () => {
    const theirs = file('theirs');
    chownSync(theirs, NOBODY, NOBODY);
    expect((await refused(theirs)).message).toMatch(/belongs to another user \(uid 65534\)/);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const inside = join(sub, 'tab');
    writeFileSync(inside, 'x', { mode: 0o600 });
    chownSync(sub, NOBODY, NOBODY);
    expect((await refused(inside)).message).toMatch(new RegExp(`${sub} belongs to another user`));
    chownSync(sub, 0, 0);
    chmodSync(sub, 0o777);
    expect((await refused(inside)).message).toMatch(new RegExp(`${sub} is writable by every user`));
    chmodSync(sub, 0o1777);
    expect(await checkTrustedFile(inside, 'the vaulttab')).toBe(0o600);
  });

  it('refuses a symbolic link, a directory and a missing file (NOT_FOUND)', async () => {
    const link = join(dir, 'link');
    symlinkSync(file('target'), link);
    expect((await refused(link)).message).toMatch(/is a symbolic link/);
    expect((await refused(dir)).message).toMatch(/is not a regular file/);
    expect((await refused(join(dir, 'missing'))).code).toBe('NOT_FOUND');
  });
});

// The command line as scripts meet it: bin/vault spawned with stdin piped (no terminal). One test per
// documented exit code that a user can provoke, the error format, --password-stdin line handling, keyfiles,
// --json, completion. Prompts under a real terminal are in cli-tty.test.ts.
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import {
  FAST_COST,
  forceCleanup,
  lacks,
  leftovers,
  makeTempDir,
  ROOT,
  type RunResult,
  removeTempDirs,
  sh,
  VAULT_BIN,
  vault,
} from './helpers.js';

const COST = ['--cost', FAST_COST];
const PASSWORD = 'tr0ub4dor & 3 spaces ';
let dir = '';

beforeAll(async () => {
  dir = await makeTempDir('vault-cli-');
});

afterAll(async () => {
  await forceCleanup(dir);
  await removeTempDirs();
});

/** The two-line error format: exactly "vault: error: ..." then "vault: hint: ...", no stack trace. */
function expectError(stderr: string, what: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  const errorLine = lines.find((line) => line.startsWith('vault: error: ')) ?? '';
  expect(errorLine).toMatch(what);
  expect(lines[lines.indexOf(errorLine) + 1]).toMatch(/^vault: hint: \S/);
  expect(stderr).not.toMatch(/^\s+at /m);
}

/** A vault with PASSWORD and no filesystem (no root needed), created once and reused. */
let sharedVault = '';
async function passwordVault(): Promise<string> {
  if (sharedVault) return sharedVault;
  const file = join(dir, 'password.vol');
  const created = await vault(['create', '2M', file, '--filesystem', 'none', '--password-stdin', ...COST], {
    stdin: `${PASSWORD}\n`,
  });
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  sharedVault = file;
  return file;
}

/** A command with its own environment, stdin closed. */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args as string[], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => resolveRun({ code: code ?? 1, stdout, stderr }));
  });
}

describe('basics', () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await vault(['--version']);
    expect(result).toMatchObject({ code: EXIT_CODES.OK, stdout: `${version}\n`, stderr: '' });
  });

  it('run by its shebang, vault leaves NODE_EXTRA_CA_CERTS out (Node 20 would parse that bundle at start-up)', async () => {
    // Node warns about an unreadable bundle at start-up: proof that it reads the variable at all...
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' };
    const viaNode = await run(process.execPath, [VAULT_BIN, '--version'], env);
    expect(viaNode.stderr).toContain('/nonexistent/ca.pem');
    // ...and run as a command (the shebang: env -S -u NODE_EXTRA_CA_CERTS node), vault never sees it.
    const viaShebang = await run(VAULT_BIN, ['--version'], env);
    expect(viaShebang).toMatchObject({ code: EXIT_CODES.OK, stderr: '' });
  });

  it('--help lists every command and the exit codes on stdout', async () => {
    const result = await vault(['--help']);
    expect(result.code).toBe(EXIT_CODES.OK);
    for (const command of [
      'create',
      'mount',
      'dismount',
      'list',
      'info',
      'keyfile',
      'benchmark',
      'completion',
    ])
      expect(result.stdout).toContain(`  ${command}`);
    expect(result.stdout).toContain('Exit codes:');
  });

  it('`vault <command> --help` shows examples', async () => {
    for (const command of [['keyfile', 'generate'], ['benchmark'], ['completion']]) {
      const result = await vault([...command, '--help']);
      expect(result.code).toBe(EXIT_CODES.OK);
      expect(result.stdout).toMatch(/Examples?:\n {2}vault /);
    }
  });

  it('a reader that goes away (`vault --help | true`) is not an error', async () => {
    // `true` exits before vault writes, so the write fails with EPIPE.
    const result = await sh('/bin/bash', ['-c', `"${VAULT_BIN}" --help | true; exit \${PIPESTATUS[0]}`]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_CODES.OK);
  });
});

describe('exit code 2: usage errors', () => {
  it.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['keyfile', 'generate'], /missing required argument 'path'/],
    [['create', '2X', 'x.vol', '--filesystem', 'none'], /not a size: "2X"/],
    [['create', '0', 'x.vol', '--filesystem', 'none'], /greater than zero/],
    [['create', '1e9', 'x.vol', '--filesystem', 'none'], /not a size/],
    [['info', 'x.vol', '--cost', '99'], /invalid cost level "99"/],
    [['completion', 'fish'], /'fish' is invalid/],
  ])('vault %j', async (args, message) => {
    const result = await vault(args, { cwd: dir });
    expect(result.code).toBe(EXIT_CODES.USAGE);
    expect(result.stdout).toBe('');
    expectError(result.stderr, message);
  });

  it('a stack trace only with VAULT_DEBUG=1', async () => {
    const quiet = await vault(['create', '2X', 'x.vol'], { cwd: dir });
    expect(quiet.stderr).not.toMatch(/^\s+at /m);
    const debug = await vault(['create', '2X', 'x.vol'], { cwd: dir, env: { VAULT_DEBUG: '1' } });
    expect(debug.code).toBe(EXIT_CODES.USAGE);
    expect(debug.stderr).toMatch(/^vault: error: not a size/m);
    // The bundle's source map leads back to the source file (src/cli/size.ts in a checkout).
    expect(debug.stderr).toMatch(/^\s+at .*size\.[jt]s/m);
  });
});

describe('secrets without a terminal', () => {
  it('--password-stdin: the first line, one trailing newline (LF or CRLF) removed, spaces kept', async () => {
    const file = await passwordVault();
    for (const stdin of [
      `${PASSWORD}\n`,
      `${PASSWORD}\r\n`,
      PASSWORD,
      `${PASSWORD}\nignored second line\n`,
    ]) {
      const result = await vault(['info', file, '--password-stdin', ...COST], { stdin });
      expect(result.code).toBe(EXIT_CODES.OK);
    }
  });

  it('exit code 3: a wrong password, a trimmed password, a wrong cost level, a non-vault: one message', async () => {
    const file = await passwordVault();
    const notVault = join(dir, 'random.bin');
    writeFileSync(notVault, Buffer.alloc(2 << 20, 7));
    const attempts = [
      { args: ['info', file, '--password-stdin', ...COST], stdin: 'wrong\n' },
      { args: ['info', file, '--password-stdin', ...COST], stdin: `${PASSWORD.trim()}\n` },
      { args: ['info', file, '--password-stdin', '--cost', '2'], stdin: `${PASSWORD}\n` },
      { args: ['info', notVault, '--password-stdin', ...COST], stdin: `${PASSWORD}\n` },
    ];
    const messages = new Set<string>();
    for (const attempt of attempts) {
      const result = await vault(attempt.args, { stdin: attempt.stdin });
      expect(result.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
      expectError(result.stderr, /^vault: error: cannot unlock/);
      messages.add(result.stderr);
    }
    expect(messages.size).toBe(1);
  });

  it('exit code 7: --non-interactive without a secret, no terminal, empty stdin, a missing second line', async () => {
    const file = await passwordVault();
    const cases = [
      { args: ['info', file, '--non-interactive'], stdin: '', message: /--non-interactive/ },
      { args: ['info', file], stdin: '', message: /not a terminal/ },
      { args: ['info', file, '--password-stdin'], stdin: '', message: /no password on stdin/ },
      { args: ['info', file, '--password-stdin'], stdin: '\n', message: /empty password/ },
      {
        args: ['passwd', file, '--password-stdin', ...COST],
        stdin: `${PASSWORD}\n`,
        message: /line 2 of stdin/,
      },
    ];
    for (const { args, stdin, message } of cases) {
      const result = await vault(args, { stdin });
      expect(result.code).toBe(EXIT_CODES.MISSING_SECRET);
      expectError(result.stderr, message);
      expect(result.stderr).toMatch(/hint: .*(--password-stdin|-k|keyfile|passwords from stdin)/);
    }
  });

  it('two passwords from two stdin lines (passwd: current, then new)', async () => {
    const file = join(dir, 'passwd.vol');
    const created = await vault(['create', '2M', file, '--filesystem', 'none', '--password-stdin', ...COST], {
      stdin: 'old password\n',
    });
    expect(created.code).toBe(EXIT_CODES.OK);
    const changed = await vault(['passwd', file, '--password-stdin', ...COST], {
      stdin: 'old password\r\nnew password\r\n',
    });
    expect(changed.code).toBe(EXIT_CODES.OK);
    expect((await vault(['info', file, '--password-stdin', ...COST], { stdin: 'new password\n' })).code).toBe(
      0,
    );
    expect((await vault(['info', file, '--password-stdin', ...COST], { stdin: 'old password\n' })).code).toBe(
      3,
    );
  });

  it('keyfiles alone, unattended: generate, create, open; order of keyfiles does not matter', async () => {
    const [one, two] = [join(dir, 'one.key'), join(dir, 'two.key')];
    for (const key of [one, two]) expect((await vault(['keyfile', 'generate', key])).code).toBe(0);
    const file = join(dir, 'keyfiles.vol');
    const created = await vault([
      'create',
      '2M',
      file,
      '--filesystem',
      'none',
      '-k',
      one,
      '--keyfile',
      two,
      ...COST,
    ]);
    expect(created.code).toBe(EXIT_CODES.OK);
    const opened = await vault(['info', file, '-k', two, '-k', one, '--non-interactive', '--json', ...COST]);
    expect(opened.code).toBe(EXIT_CODES.OK);
    const onlyOne = await vault(['info', file, '-k', one, '--non-interactive', ...COST]);
    expect(onlyOne.code).toBe(EXIT_CODES.CANNOT_UNLOCK);
  });
});

describe('other exit codes', () => {
  it('exit code 4: a vault file or keyfile that does not exist', async () => {
    const missingVault = await vault(['info', join(dir, 'absent.vol'), '--password-stdin', ...COST], {
      stdin: 'x\n',
    });
    expect(missingVault.code).toBe(EXIT_CODES.NOT_FOUND);
    expectError(missingVault.stderr, /absent\.vol/);
    const missingKey = await vault(['info', await passwordVault(), '-k', join(dir, 'absent.key'), ...COST]);
    expect(missingKey.code).toBe(EXIT_CODES.NOT_FOUND);
    expectError(missingKey.stderr, /keyfile not found/);
  });

  it('exit code 8: create refuses an existing file without --force, and leaves it alone', async () => {
    const file = join(dir, 'existing.vol');
    writeFileSync(file, 'precious');
    const result = await vault(['create', '2M', file, '--filesystem', 'none', '--password-stdin', ...COST], {
      stdin: 'pw\n',
    });
    expect(result.code).toBe(EXIT_CODES.EXISTS);
    expectError(result.stderr, /exists/);
    expect(readFileSync(file, 'utf8')).toBe('precious');
  });

  it.skipIf(lacks('root'))('exit code 6: formatting without root rights', async () => {
    const shared = await makeTempDir('vault-cli-nobody-');
    await sh('/bin/chmod', ['0777', shared]);
    const result = await sh('/usr/bin/setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      VAULT_BIN,
      'create',
      '2M',
      join(shared, 'nobody.vol'),
      '--non-interactive',
      ...COST,
    ]);
    expect(result.code).toBe(EXIT_CODES.NEEDS_SYSTEM);
    expectError(result.stderr, /root/);
  });

  it.skipIf(lacks('mount'))('exit code 5: mounting a vault that is already mounted', async () => {
    const key = join(dir, 'busy.key');
    const file = join(dir, 'busy.vol');
    const mountpoint = join(dir, 'busy-mnt');
    mkdirSync(mountpoint);
    expect((await vault(['keyfile', 'generate', key])).code).toBe(0);
    expect((await vault(['create', '8M', file, '-k', key, '--non-interactive', ...COST])).code).toBe(0);
    const secret = ['-k', key, '--non-interactive', ...COST];
    expect((await vault(['mount', file, mountpoint, ...secret])).code).toBe(EXIT_CODES.OK);
    try {
      const again = await vault(['mount', file, join(dir, 'elsewhere'), ...secret]);
      expect(again.code).toBe(EXIT_CODES.BUSY);
      expectError(again.stderr, /mounted/);
    } finally {
      expect((await vault(['dismount', mountpoint])).code).toBe(EXIT_CODES.OK);
    }
    expect(leftovers(dir)).toEqual([]);
  });
});

describe.skipIf(lacks('mount'))('docs/examples/vault@.service', () => {
  it('its ExecStart mounts with the keyfile and no terminal, its ExecStop dismounts', async () => {
    const unit = readFileSync(join(ROOT, 'docs/examples/vault@.service'), 'utf8');
    const line = (key: string): string => {
      const found = unit.split('\n').find((entry) => entry.startsWith(`${key}=`));
      if (!found) throw new Error(`no ${key}= in the unit`);
      // The unit's paths, moved into this test's directory; %i = "data".
      return found
        .slice(key.length + 1)
        .replaceAll('%i', 'data')
        .replaceAll('/usr/local/bin/vault', `"${process.execPath}" "${VAULT_BIN}"`)
        .replaceAll('/srv/vaults/', `${dir}/unit-srv/`)
        .replaceAll('/etc/vault/', `${dir}/unit-etc/`)
        .replaceAll('/mnt/', `${dir}/unit-mnt/`);
    };
    for (const sub of ['unit-srv', 'unit-etc']) mkdirSync(join(dir, sub));
    const key = join(dir, 'unit-etc/data.key');
    const file = join(dir, 'unit-srv/data.vol');
    expect((await vault(['keyfile', 'generate', key])).code).toBe(0);
    // Default cost level, as the unit uses it.
    expect((await vault(['create', '8M', file, '-k', key, '--non-interactive', '--quick'])).code).toBe(0);
    const run = (command: string) => sh('/bin/sh', ['-c', `${command} </dev/null`], 120_000);
    expect((await run(line('ExecStartPre'))).code).toBe(0);
    const started = await run(line('ExecStart'));
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const mountpoint = join(dir, 'unit-mnt/data');
    expect(started.stdout.trim()).toBe(mountpoint);
    writeFileSync(join(mountpoint, 'hello.txt'), 'from systemd');
    expect((await run(line('ExecStop'))).code).toBe(0);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('vault keyfile generate', () => {
  it('writes 64 random bytes with mode 0600, different each time', async () => {
    const [a, b] = [join(dir, 'a.key'), join(dir, 'b.key')];
    for (const path of [a, b]) {
      const result = await vault(['keyfile', 'generate', path]);
      expect(result.code).toBe(EXIT_CODES.OK);
      expect(result.stdout).toBe('');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(path).size).toBe(64);
    }
    expect(readFileSync(a).equals(readFileSync(b))).toBe(false);
  });

  it('keeps mode 0600 under a permissive umask', async () => {
    const path = join(dir, 'umask.key');
    const result = await sh('/bin/sh', [
      '-c',
      `umask 000 && "${process.execPath}" "${VAULT_BIN}" keyfile generate "${path}"`,
    ]);
    expect(result.code).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('exit code 8: never overwrites a file or follows a symlink', async () => {
    const existing = join(dir, 'taken.key');
    writeFileSync(existing, 'old key');
    const overwrite = await vault(['keyfile', 'generate', existing]);
    expect(overwrite.code).toBe(EXIT_CODES.EXISTS);
    expectError(overwrite.stderr, /already exists/);
    expect(readFileSync(existing, 'utf8')).toBe('old key');

    const target = join(dir, 'symlink-target');
    const link = join(dir, 'link.key');
    symlinkSync(target, link); // dangling: O_EXCL must still refuse to create through it
    expect((await vault(['keyfile', 'generate', link])).code).toBe(EXIT_CODES.EXISTS);
    expect(() => lstatSync(target)).toThrow();
  });

  it('missing parent directories are created, mode 0700 (like the systemd story: /etc/vault/<name>.key)', async () => {
    const result = await vault(['keyfile', 'generate', join(dir, 'no/such/dir/k.key')]);
    expect(result.code, result.stderr).toBe(0);
    for (const parent of ['no', 'no/such', 'no/such/dir']) {
      expect(statSync(join(dir, parent)).mode & 0o777, parent).toBe(0o700);
    }
    expect(statSync(join(dir, 'no/such/dir/k.key')).size).toBe(64);
  });

  it.skipIf(lacks('root'))('exit code 9: a read-only filesystem', async () => {
    const readOnly = join(dir, 'ro');
    mkdirSync(readOnly);
    expect((await sh('/bin/mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly])).code).toBe(0);
    try {
      const result = await vault(['keyfile', 'generate', join(readOnly, 'k.key')]);
      expect(result.code).toBe(EXIT_CODES.IO);
      expectError(result.stderr, /cannot create keyfile.*read-only/);
    } finally {
      await sh('/bin/umount', [readOnly]);
    }
  });
});

describe('machine-readable output', () => {
  it('vault list --json is a JSON array', async () => {
    const result = await vault(['list', '--json']);
    expect(result.code).toBe(EXIT_CODES.OK);
    expect(Array.isArray(JSON.parse(result.stdout))).toBe(true);
  });

  it('vault info --json has the documented fields', async () => {
    const result = await vault(['info', await passwordVault(), '--password-stdin', '--json', ...COST], {
      stdin: `${PASSWORD}\n`,
    });
    expect(result.code).toBe(EXIT_CODES.OK);
    const info = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(info).toMatchObject({
      formatVersion: 1,
      sectorSize: 4096,
      cipher: 'aes-256-xts',
      kdf: 'argon2id',
    });
    expect(info.costLevel).toBe(Number(FAST_COST));
    expect(info).toHaveProperty('keyslots.opened', 0);
    expect(info).toHaveProperty('headers.primary.state', 'ok');
  });

  it('vault benchmark --json: both XTS directions, every level up to default+2, a recommendation', async () => {
    const result = await vault(['benchmark', '--json'], { timeoutMs: 170_000 });
    expect(result.code).toBe(EXIT_CODES.OK);
    expect(result.stderr).toBe(''); // no progress bar when stderr is a pipe
    const report = JSON.parse(result.stdout) as {
      xts: {
        active: string;
        results: Array<{ implementation: string; active: boolean; encryptMiBps: number }>;
      };
      kdf: {
        defaultLevel: number;
        recommendedLevel: number | null;
        levels: Array<{ level: number; seconds: number | null; skipped: string | null; memoryKiB: number }>;
      };
    };
    expect(report.xts.results.filter((row) => row.active).map((row) => row.implementation)).toEqual([
      report.xts.active,
    ]);
    for (const row of report.xts.results) expect(row.encryptMiBps).toBeGreaterThan(0);
    expect(report.kdf.levels.map((row) => row.level)).toEqual(
      Array.from({ length: report.kdf.defaultLevel + 2 }, (_, index) => index + 1),
    );
    for (const row of report.kdf.levels) expect(row.seconds === null).toBe(row.skipped !== null);
    // The default when it unlocks within 5 s (any other level must be typed at every unlock), else the
    // level closest to a 1-second unlock.
    const measured = report.kdf.levels.filter((row) => row.seconds !== null);
    const atDefault = measured.find((row) => row.level === report.kdf.defaultLevel);
    const closest = measured.reduce((best, row) =>
      Math.abs((row.seconds ?? 0) - 1) <= Math.abs((best.seconds ?? 0) - 1) ? row : best,
    );
    expect(report.kdf.recommendedLevel).toBe(
      atDefault && (atDefault.seconds ?? 99) <= 5 ? atDefault.level : closest.level,
    );
  });

  it('vault completion bash matches completions/vault.bash and completes commands', async () => {
    const generated = await vault(['completion', 'bash']);
    expect(generated.code).toBe(EXIT_CODES.OK);
    // If this fails after adding a command or option: bin/vault completion bash > completions/vault.bash
    // (and zsh > completions/vault.zsh).
    expect(generated.stdout).toBe(readFileSync(join(ROOT, 'completions/vault.bash'), 'utf8'));
    expect((await vault(['completion', 'zsh'])).stdout).toBe(
      readFileSync(join(ROOT, 'completions/vault.zsh'), 'utf8'),
    );
    const script = `source "${join(ROOT, 'completions/vault.bash')}"
      complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _vault; echo "\${COMPREPLY[*]}"; }
      complete_words vault cre; complete_words vault keyfile ''; complete_words vault create --filesystem e
      complete_words vault info --co`;
    const result = await new Promise<string>((resolveRun) => {
      const child = spawn('/bin/bash', ['-c', script]);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.on('close', () => resolveRun(out));
    });
    expect(result.split('\n')).toEqual(['create', 'generate', 'ext4 exfat', '--cost', '']);
  });
});

// Bad command-line input, as users get it wrong (issue 7): one table, each row run through the real
// bin/vault. Every row must give its documented exit code (src/cli/exit-codes.ts, docs/CLI.md), a
// `vault: error:` line matching the expected message, a `vault: hint:` line, leave the vault file
// byte-identical, and leave no mount, loop device, daemon, state directory or temporary file behind.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import {
  FAST_COST,
  forceCleanup,
  isMounted,
  lacks,
  leftovers,
  makeTempDir,
  RUN_DIR,
  removeTempDirs,
  VAULT_BIN,
  vault,
} from './helpers.js';

const PASSWORD = `bad-input ${process.pid}`;
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

interface Row {
  name: string;
  args: string[];
  /** stdin; default: the password and a newline. null: stdin closed (fd 0 not open at all). */
  stdin?: string | null;
  /** Run as `nobody`, or in a mount namespace without a usable /dev/fuse. */
  as?: 'nobody' | 'no-dev-fuse' | 'fake-dev-fuse' | 'only-dev-fuse';
  code: keyof typeof EXIT_CODES;
  /** The row collides with the second vault, which must be mounted at that moment. */
  needsBusy?: boolean;
  error: RegExp;
}

/** A bind mount of the real /dev/fuse, kept outside the private /dev (removed after the suite). */
const FUSE_DEV_COPY = join(tmpdir(), `vault-fuse-dev-${process.pid}`);

function run(row: Row): Promise<{ code: number; stderr: string }> {
  const vaultCommand = [process.execPath, VAULT_BIN, ...row.args];
  let command: string[] = vaultCommand;
  if (row.as === 'nobody') {
    command = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...vaultCommand];
  } else if (row.as === 'no-dev-fuse') {
    // A private mount namespace whose /dev has no fuse device: as in a container started without it.
    command = ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$@"', 'sh', ...vaultCommand];
  } else if (row.as === 'only-dev-fuse') {
    // A /dev with the FUSE device and nothing else (no /dev/null): the daemon cannot be started.
    const keep = FUSE_DEV_COPY;
    writeFileSync(keep, '');
    command = [
      'unshare',
      '-m',
      'sh',
      '-c',
      `mount --bind /dev/fuse ${keep} && mount -t tmpfs none /dev && touch /dev/fuse && mount --bind ${keep} /dev/fuse && exec "$@"`,
      'sh',
      ...vaultCommand,
    ];
  } else if (row.as === 'fake-dev-fuse') {
    // /dev/fuse present but not the FUSE device (a broken container setup).
    command = [
      'unshare',
      '-m',
      'sh',
      '-c',
      'mount --bind /dev/null /dev/fuse && exec "$@"',
      'sh',
      ...vaultCommand,
    ];
  }
  if (row.stdin === null) command = ['sh', '-c', 'exec <&- && exec "$@"', 'sh', ...command];
  return new Promise((resolveRun, reject) => {
    const child = spawn(command[0] as string, command.slice(1), {
      stdio: [row.stdin === null ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(row.stdin ?? `${PASSWORD}\n`);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? 128 : 1), stderr });
    });
  });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function fuseBridges(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountpoint) => mountpoint.startsWith(`${RUN_DIR}/bridge-`));
}

/** Runs one row; returns what went wrong (empty when the row behaved as documented). */
async function check(row: Row, file: string): Promise<string[]> {
  const dir = dirname(file);
  const hash = sha256(file);
  const listing = readdirSync(dir).sort();
  const bridges = fuseBridges();
  const result = await run(row);
  const lines = result.stderr.split('\n');
  const errorLine = lines.find((line) => line.startsWith('vault: error: ')) ?? '';
  const problems: string[] = [];
  if (result.code !== EXIT_CODES[row.code])
    problems.push(`exit ${result.code}, expected ${EXIT_CODES[row.code]}`);
  if (!row.error.test(errorLine))
    problems.push(`error line ${JSON.stringify(errorLine)} does not match ${row.error}`);
  if (!lines.some((line) => /^vault: hint: \S/.test(line))) problems.push('no hint line');
  if (sha256(file) !== hash) problems.push('the vault file changed');
  const left = leftovers(dir);
  if (left.length > 0) problems.push(`left behind: ${left.join(', ')}`);
  const after = readdirSync(dir).sort();
  if (after.join('\n') !== listing.join('\n'))
    problems.push(`files changed: ${after.filter((name) => !listing.includes(name)).join(', ')}`);
  const newBridges = fuseBridges().filter((bridge) => !bridges.includes(bridge));
  if (newBridges.length > 0) problems.push(`FUSE bridge left: ${newBridges.join(', ')}`);
  if (left.length > 0) await forceCleanup(dir);
  return problems.length > 0
    ? [`${row.name}: ${problems.join('; ')}\n    stderr: ${result.stderr.trim()}`]
    : [];
}

describe.skipIf(lacks('mount'))('bad command-line input', () => {
  let dir = '';
  let busyDir = '';

  beforeAll(async () => {
    dir = await makeTempDir('vault-bad-');
    // A second vault, mounted for the whole test in its own directory, to collide with.
    busyDir = await makeTempDir('vault-bad-busy-');
  });

  afterAll(async () => {
    rmSync(FUSE_DEV_COPY, { force: true });
    const cleaned = [...(await forceCleanup(dir)), ...(await forceCleanup(busyDir))];
    await removeTempDirs();
    expect(cleaned, 'the test left these behind').toEqual([]);
  });

  it('35+ wrong inputs: documented message, hint and exit code; vault unchanged; nothing left behind', {
    timeout: 600_000,
  }, async () => {
    const file = join(dir, 'good.vol');
    const created = await vault(['create', '16M', file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(created.code, created.stderr).toBe(0);
    const mounted = join(busyDir, 'mounted.vol');
    const busyMountpoint = join(busyDir, 'mnt');
    mkdirSync(busyMountpoint);
    expect((await vault(['create', '16M', mounted, ...secretArgs], { stdin: `${PASSWORD}\n` })).code).toBe(0);
    const link = join(busyDir, 'hard-link.vol');
    linkSync(mounted, link);
    const mountedResult = await vault(['mount', mounted, busyMountpoint, ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(mountedResult.code, mountedResult.stderr).toBe(0);

    const at = (name: string) => join(dir, name);
    mkdirSync(at('a-directory'));
    mkdirSync(at('empty-mnt'));
    mkdirSync(at('full-mnt'));
    writeFileSync(at('full-mnt/existing.txt'), 'x');
    writeFileSync(at('plain-file'), 'not a directory');
    writeFileSync(at('empty.key'), '');
    writeFileSync(at('random.bin'), randomBytes(2 << 20));
    writeFileSync(at('zero-bytes.vol'), '');
    writeFileSync(at('junk.hdr'), randomBytes(8192));
    writeFileSync(at('secret.key'), randomBytes(64));
    mkdirSync(at('theirs/mnt'), { recursive: true });
    chownSync(at('theirs'), 65534, 65534);
    execFileSync('mknod', [at('device-node'), 'c', '1', '3']);
    chmodSync(file, 0o600);
    const mnt = at('empty-mnt');
    const E = (name: keyof typeof EXIT_CODES) => name;

    const rows: Row[] = [
      // The vault file.
      {
        name: 'missing file',
        args: ['info', at('nope.vol'), ...secretArgs],
        code: E('NOT_FOUND'),
        error: /no such file/,
      },
      {
        name: 'a directory',
        args: ['info', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /is a directory/,
      },
      {
        name: 'unreadable file (not root)',
        args: ['info', file, ...secretArgs],
        as: 'nobody',
        code: 'IO',
        error: /permission denied/,
      },
      {
        name: 'not a vault',
        args: ['info', at('random.bin'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'a 0-byte file',
        args: ['info', at('zero-bytes.vol'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'wrong password',
        args: ['info', file, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'wrong cost level',
        args: ['info', file, '--password-stdin', '--non-interactive', '--cost', '2'],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'cost level 0',
        args: ['info', file, '--password-stdin', '--cost', '0'],
        code: 'USAGE',
        error: /invalid cost level "0"/,
      },
      {
        name: 'cost level "abc"',
        args: ['info', file, '--password-stdin', '--cost', 'abc'],
        code: 'USAGE',
        error: /invalid cost level "abc"/,
      },
      // Sizes and targets of create.
      {
        name: 'size 0',
        args: ['create', '0', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /size must be greater than zero/,
      },
      {
        name: 'size "2X"',
        args: ['create', '2X', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /not a size: "2X"/,
      },
      {
        name: 'size -1',
        args: ['create', '-1', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /not a size: "-1"/,
      },
      {
        name: 'size below 1 MiB',
        args: ['create', '100K', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /at least 1 MiB/,
      },
      {
        name: 'size not a multiple of 4 KiB',
        args: ['create', '1048577', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /multiple of 4 KiB|at least 1 MiB/,
      },
      {
        name: 'larger than the free space',
        args: ['create', '900T', at('new.vol'), ...secretArgs],
        code: 'IO',
        error: /not enough free space/,
      },
      {
        name: 'create over an existing file',
        args: ['create', '16M', file, ...secretArgs],
        code: 'EXISTS',
        error: /file exists/,
      },
      {
        name: 'create onto a directory',
        args: ['create', '16M', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /is a directory/,
      },
      {
        name: 'create in a missing directory',
        args: ['create', '16M', at('no-dir/new.vol'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
      },
      {
        name: 'unknown filesystem',
        args: ['create', '16M', at('new.vol'), '--filesystem', 'btrfs', ...secretArgs],
        code: 'USAGE',
        error: /unknown filesystem "btrfs"/,
      },
      {
        name: 'create as non-root (formatting)',
        args: ['create', '16M', '/tmp/vault-bad-nobody.vol', ...secretArgs],
        as: 'nobody',
        code: 'NEEDS_SYSTEM',
        error: /needs root/,
      },
      {
        name: 'create without /dev/fuse',
        args: ['create', '16M', at('new.vol'), ...secretArgs],
        as: 'no-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /\/dev\/fuse is missing/,
      },
      // Mountpoints and mounting.
      {
        name: 'mountpoint missing',
        args: ['mount', file, at('nowhere'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /mountpoint does not exist/,
      },
      {
        name: 'mountpoint is a file',
        args: ['mount', file, at('plain-file'), ...secretArgs],
        code: 'USAGE',
        error: /mountpoint is not a directory/,
      },
      {
        name: 'mountpoint not empty',
        args: ['mount', file, at('full-mnt'), ...secretArgs],
        code: 'USAGE',
        error: /mountpoint is not empty/,
      },
      {
        needsBusy: true,
        name: 'mountpoint busy',
        args: ['mount', file, busyMountpoint, ...secretArgs],
        code: 'BUSY',
        error: /already mounted at/,
      },
      {
        name: 'mountpoint in a directory another user owns',
        args: ['mount', file, at('theirs/mnt'), ...secretArgs],
        code: 'USAGE',
        error: /is not safe to mount on: .*belongs to another user/,
      },
      {
        name: 'a mount option that would undo nosuid',
        args: ['mount', file, mnt, '--fs-options', 'noatime,suid', ...secretArgs],
        code: 'USAGE',
        error: /--fs-options cannot include "suid"/,
      },
      {
        name: 'a device node as the target, with --force',
        args: ['create', '16M', at('device-node'), '--force', ...secretArgs],
        code: 'USAGE',
        error: /not a regular file: .*device-node \(a character device\)/,
      },
      {
        needsBusy: true,
        name: 'double mount',
        args: ['mount', mounted, mnt, ...secretArgs],
        code: 'BUSY',
        error: /already mounted/,
      },
      {
        needsBusy: true,
        name: 'double mount through a hard link',
        args: ['mount', link, mnt, ...secretArgs],
        code: 'BUSY',
        error: /already mounted/,
      },
      {
        name: 'mount a directory',
        args: ['mount', at('a-directory'), mnt, ...secretArgs],
        code: 'USAGE',
        error: /not a regular file/,
      },
      {
        name: 'mount a missing file',
        args: ['mount', at('nope.vol'), mnt, ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
      },
      {
        name: 'mount with the wrong password',
        args: ['mount', file, mnt, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'mount as non-root',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'nobody',
        code: 'NEEDS_SYSTEM',
        error: /needs root/,
      },
      {
        name: 'mount without /dev/fuse',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'no-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /\/dev\/fuse is missing/,
      },
      {
        name: 'mount where the daemon cannot start (no /dev/null)',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'only-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /cannot start the mount daemon/,
      },
      {
        name: '/dev/fuse that is not the FUSE device',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'fake-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /cannot mount FUSE/,
      },
      {
        name: 'dismount of something unknown',
        args: ['dismount', at('nowhere')],
        code: 'NOT_FOUND',
        error: /no mounted vault at/,
      },
      {
        name: 'dismount of a vault that is not mounted',
        args: ['dismount', file],
        code: 'NOT_FOUND',
        error: /no mounted vault at/,
      },
      {
        name: 'dismount without a target',
        args: ['dismount'],
        code: 'USAGE',
        error: /missing the mountpoint or vault file/,
      },
      // Secrets.
      {
        name: 'keyfile missing',
        args: ['info', file, '-k', at('no.key'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /keyfile not found/,
      },
      {
        name: 'keyfile empty',
        args: ['info', file, '-k', at('empty.key'), ...secretArgs],
        code: 'USAGE',
        error: /keyfile is empty/,
      },
      {
        name: 'keyfile is a directory',
        args: ['info', file, '-k', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /keyfile is not a regular file/,
      },
      {
        name: 'wrong keyfile',
        args: ['info', file, '-k', at('secret.key'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'stdin closed',
        args: ['info', file, ...secretArgs],
        stdin: null,
        code: 'MISSING_SECRET',
        error: /no password on stdin/,
      },
      {
        name: 'stdin empty',
        args: ['mount', file, mnt, ...secretArgs],
        stdin: '',
        code: 'MISSING_SECRET',
        error: /no password on stdin/,
      },
      {
        name: '--non-interactive and no secret',
        args: ['info', file, '--non-interactive', '--cost', FAST_COST],
        code: 'MISSING_SECRET',
        error: /--non-interactive forbids prompting/,
      },
      {
        name: 'passwd without the new password',
        args: ['passwd', file, ...secretArgs],
        code: 'MISSING_SECRET',
        error: /no (new )?password|second line|stdin/,
      },
      {
        name: 'removing the last keyslot',
        args: ['key', 'remove', file, ...secretArgs],
        code: 'USAGE',
        error: /last keyslot/,
      },
      {
        name: 'header restore from junk',
        args: ['header', 'restore', file, at('junk.hdr'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'header restore from a missing file',
        args: ['header', 'restore', file, at('no.hdr'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
      },
      {
        name: 'repair with the wrong password',
        args: ['repair', file, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
      },
      {
        name: 'keyfile generate over a file',
        args: ['keyfile', 'generate', at('plain-file')],
        code: 'EXISTS',
        error: /already exists/,
      },
      // The command line itself.
      { name: 'unknown command', args: ['frobnicate'], code: 'USAGE', error: /unknown command 'frobnicate'/ },
      {
        name: 'unknown option',
        args: ['info', file, '--bogus'],
        code: 'USAGE',
        error: /unknown option '--bogus'/,
      },
      { name: 'missing argument', args: ['mount'], code: 'USAGE', error: /missing required argument 'file'/ },
    ];
    expect(rows.length).toBeGreaterThanOrEqual(30);

    const failures: string[] = [];
    for (const row of rows) {
      // Another suite's `vault dismount --all` on a shared machine can take the second vault away.
      if (row.needsBusy && !isMounted(busyMountpoint)) {
        await vault(['mount', mounted, busyMountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
      }
      failures.push(...(await check(row, file)));
    }
    console.log(`bad input: ${rows.length} rows tried, ${failures.length} failed`);
    expect(failures).toEqual([]);

    const dismounted = await vault(['dismount', busyMountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    expect(leftovers(busyDir)).toEqual([]);
  });
});

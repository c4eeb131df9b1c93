// Bad command-line input, as users get it wrong (issue 7): one table, each row run through the real
// bin/vault. Every row must give its documented exit code (src/cli/exit-codes.ts, docs/CLI.md), a
// `vault: error:` line matching the expected message, exactly its hint line, leave every file the rows
// use byte-identical (the vaults, keyfiles, header backups, directories; the mounted one's headers and
// backup area), and leave no mount, loop device, daemon, state directory, FUSE bridge or file behind,
// in the test's directories or under /tmp. The README states how many rows there are.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { BACKUP_AREA_BYTES, DATA_OFFSET } from '../../src/container/layout.js';
import {
  FAST_COST,
  forceCleanup,
  isMounted,
  lacks,
  leftovers,
  makeTempDir,
  ROOT,
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
  /** The whole hint, exactly (after `vault: hint: `). */
  hint: string;
}

/**
 * The hint of a secret that opens nothing, once detection tried every format (src/cli/hints.ts). A note
 * that Whirlpool was not tried may follow: it depends on the Node.js build and the addon.
 */
const DETECTION_HINT =
  'check the password and keyfiles (-k); vault opens its own vaults, LUKS1/LUKS2 (aes-xts-plain64, ' +
  'aes-cbc-essiv:sha256; PBKDF2, Argon2i, Argon2id) and VeraCrypt/TrueCrypt volumes encrypted with AES ' +
  "(PBKDF2 with SHA-512, SHA-256, BLAKE2s, Whirlpool, RIPEMD-160, SHA-1, or VeraCrypt's Argon2id; not " +
  'Serpent, Twofish, Camellia, Kuznyechik or cascades); --type, --hash and --pim narrow the search ' +
  "(VeraCrypt's Argon2id is tried only with --type veracrypt or --pim, and above PIM 31 only with --hash argon2)";
const WHIRLPOOL_NOTE = '; Whirlpool was not tried (';

/** The README's count of the rows ("one table of N wrong command lines"). */
const README_ROWS = Number(
  /one table of (\d+)\s+wrong\s+command\s+lines/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))?.[1],
);

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

function fuseBridges(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountpoint) => mountpoint.startsWith(`${RUN_DIR}/bridge-`));
}

/**
 * Every file a row could touch, with its bytes' hash: each regular file under `dirs` (not inside a
 * mounted directory). A vault that is mounted meanwhile (`live`) counts with its header sectors and
 * backup area only: ext4 may write into its data area at any time.
 */
function snapshot(dirs: string[], live: string[]): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (path: string) => {
    const info = lstatSync(path);
    if (info.isDirectory()) {
      if (isMounted(path)) return;
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (info.isFile()) {
      let bytes = readFileSync(path);
      if (live.includes(path)) {
        bytes = Buffer.concat([
          bytes.subarray(0, DATA_OFFSET),
          bytes.subarray(bytes.length - BACKUP_AREA_BYTES),
        ]);
      }
      hashes.set(path, `${info.mode.toString(8)} ${createHash('sha256').update(bytes).digest('hex')}`);
    } else {
      hashes.set(path, `${info.mode.toString(8)} ${info.rdev}`);
    }
  };
  for (const dir of dirs) walk(dir);
  return hashes;
}

/** The one row target under /tmp (create as nobody, who cannot write into the test's directory). */
const NOBODY_TARGET = `vault-bad-nobody-${process.pid}.vol`;

/**
 * What vault itself could leave in /tmp: the targets of the rows that write there, their hidden
 * temporaries (`.<name>.vault-tmp-*`) and the run directory of a user without a home (/tmp/vault-<uid>).
 * (Not every name under /tmp: other test runs share it.)
 */
function tmpEntries(): string[] {
  return readdirSync(tmpdir())
    .filter((name) => name.includes(NOBODY_TARGET) || /\.vault-tmp-|^vault-\d+$/.test(name))
    .sort();
}

/** Runs one row; returns what went wrong (empty when the row behaved as documented). */
async function check(row: Row, dirs: string[], live: string[]): Promise<string[]> {
  const [dir] = dirs as [string];
  const before = snapshot(dirs, live);
  const tmpBefore = tmpEntries();
  const bridges = fuseBridges();
  const result = await run(row);
  const lines = result.stderr.split('\n');
  const errorLine = lines.find((line) => line.startsWith('vault: error: ')) ?? '';
  const hintLines = lines.filter((line) => line.startsWith('vault: hint: '));
  const problems: string[] = [];
  if (result.code !== EXIT_CODES[row.code])
    problems.push(`exit ${result.code}, expected ${EXIT_CODES[row.code]}`);
  if (!row.error.test(errorLine))
    problems.push(`error line ${JSON.stringify(errorLine)} does not match ${row.error}`);
  const hint = hintLines[0]?.slice('vault: hint: '.length);
  const hintOk =
    hint === row.hint || (row.hint === DETECTION_HINT && hint?.startsWith(DETECTION_HINT + WHIRLPOOL_NOTE));
  if (hintLines.length !== 1 || !hintOk)
    problems.push(`hint ${JSON.stringify(hintLines)}, expected ${JSON.stringify(row.hint)}`);
  const after = snapshot(dirs, live);
  for (const [path, hash] of before) {
    if (!after.has(path)) problems.push(`removed: ${path}`);
    else if (after.get(path) !== hash) problems.push(`changed: ${path}`);
  }
  for (const path of after.keys()) if (!before.has(path)) problems.push(`created: ${path}`);
  const tmpNew = tmpEntries().filter((name) => !tmpBefore.includes(name));
  if (tmpNew.length > 0) problems.push(`left in ${tmpdir()}: ${tmpNew.join(', ')}`);
  const left = leftovers(dir); // the second directory's vault is mounted on purpose
  if (left.length > 0) problems.push(`left behind: ${left.join(', ')}`);
  const newBridges = fuseBridges().filter((bridge) => !bridges.includes(bridge));
  if (newBridges.length > 0) problems.push(`FUSE bridge left: ${newBridges.join(', ')}`);
  if (left.length > 0) await forceCleanup(dir);
  for (const name of tmpNew) rmSync(join(tmpdir(), name), { recursive: true, force: true });
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

  it('every wrong input: documented exit code, message and exact hint; every file unchanged; nothing left behind', {
    timeout: 1_200_000, // 56 rows; on a loaded machine the detection rows alone take minutes
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
        hint: 'check the path (ls -l it)',
      },
      {
        name: 'a directory',
        args: ['info', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /is a directory/,
        hint: 'name the vault file itself',
      },
      {
        name: 'unreadable file (not root)',
        args: ['info', file, ...secretArgs],
        as: 'nobody',
        code: 'IO',
        error: /permission denied/,
        hint: 'check its permissions, or run with sudo',
      },
      {
        name: 'not a vault',
        args: ['info', at('random.bin'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'a 0-byte file',
        args: ['info', at('zero-bytes.vol'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'wrong password',
        args: ['info', file, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'wrong cost level',
        args: ['info', file, '--password-stdin', '--non-interactive', '--cost', '2'],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'cost level 0',
        args: ['info', file, '--password-stdin', '--cost', '0'],
        code: 'USAGE',
        error: /invalid cost level "0"/,
        hint: 'leave out --cost for the default (12); `vault benchmark` shows the time and memory of each level',
      },
      {
        name: 'cost level "abc"',
        args: ['info', file, '--password-stdin', '--cost', 'abc'],
        code: 'USAGE',
        error: /invalid cost level "abc"/,
        hint: 'leave out --cost for the default (12); `vault benchmark` shows the time and memory of each level',
      },
      // Sizes and targets of create.
      {
        name: 'size 0',
        args: ['create', '0', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /size must be greater than zero/,
        hint: 'write a size like 64M, 512M, 2G, 1.5T, 4096K or 1048576 (bytes); K, M, G, T are powers of 1024',
      },
      {
        name: 'size "2X"',
        args: ['create', '2X', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /not a size: "2X"/,
        hint: 'write a size like 64M, 512M, 2G, 1.5T, 4096K or 1048576 (bytes); K, M, G, T are powers of 1024',
      },
      {
        name: 'size -1',
        args: ['create', '-1', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /not a size: "-1"/,
        hint: 'write a size like 64M, 512M, 2G, 1.5T, 4096K or 1048576 (bytes); K, M, G, T are powers of 1024',
      },
      {
        name: 'size below 1 MiB',
        args: ['create', '100K', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /at least 1 MiB/,
        hint: 'give a larger size, e.g. 64M',
      },
      {
        name: 'size not a multiple of 4 KiB',
        args: ['create', '1048577', at('new.vol'), ...secretArgs],
        code: 'USAGE',
        error: /multiple of 4 KiB|at least 1 MiB/,
        hint: 'use units: 64M, 2G, 1.5T',
      },
      {
        name: 'larger than the free space',
        args: ['create', '900T', at('new.vol'), ...secretArgs],
        code: 'IO',
        error: /not enough free space/,
        hint: 'choose a smaller size or another disk',
      },
      {
        name: 'create over an existing file',
        args: ['create', '16M', file, ...secretArgs],
        code: 'EXISTS',
        error: /file exists/,
        hint: 'choose another name, or pass --force to replace it',
      },
      {
        name: 'create onto a directory',
        args: ['create', '16M', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /is a directory/,
        hint: 'name a file to create',
      },
      {
        name: 'create in a missing directory',
        args: ['create', '16M', at('no-dir/new.vol'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
        hint: 'check the path',
      },
      {
        name: 'unknown filesystem',
        args: ['create', '16M', at('new.vol'), '--filesystem', 'zfs', ...secretArgs],
        code: 'USAGE',
        error: /unknown filesystem "zfs"/,
        hint: 'choose one of: ext4, exfat, vfat, xfs, btrfs, ntfs, none',
      },
      {
        name: 'create as non-root (formatting)',
        args: ['create', '16M', join(tmpdir(), NOBODY_TARGET), ...secretArgs],
        as: 'nobody',
        code: 'NEEDS_SYSTEM',
        error: /needs root/,
        hint: 'run the command with sudo, or create it with --filesystem none',
      },
      {
        name: 'create without /dev/fuse',
        args: ['create', '16M', at('new.vol'), ...secretArgs],
        as: 'no-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /\/dev\/fuse is missing/,
        hint: 'load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
      },
      // Mountpoints and mounting.
      {
        name: 'mountpoint missing',
        args: ['mount', file, at('nowhere'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /mountpoint does not exist/,
        hint: `create it (mkdir ${at('nowhere')}), or leave it out to use /media/vault/<name>`,
      },
      {
        name: 'mountpoint is a file',
        args: ['mount', file, at('plain-file'), ...secretArgs],
        code: 'USAGE',
        error: /mountpoint is not a directory/,
        hint: 'give an empty directory',
      },
      {
        name: 'mountpoint not empty',
        args: ['mount', file, at('full-mnt'), ...secretArgs],
        code: 'USAGE',
        error: /mountpoint is not empty/,
        hint: 'give an empty directory (files there would be hidden while the vault is mounted)',
      },
      {
        needsBusy: true,
        name: 'mountpoint busy',
        args: ['mount', file, busyMountpoint, ...secretArgs],
        code: 'BUSY',
        error: /already mounted at/,
        hint: 'choose another directory, or unmount what is there',
      },
      {
        name: 'mountpoint in a directory another user owns',
        args: ['mount', file, at('theirs/mnt'), ...secretArgs],
        code: 'USAGE',
        error: /is not safe to mount on: .*belongs to another user/,
        hint: "use a directory that only root and the mount's owner can change (--owner names the owner), or leave the mountpoint out (/media/vault/<name>)",
      },
      {
        name: 'a mount option that would undo nosuid',
        args: ['mount', file, mnt, '--fs-options', 'noatime,suid', ...secretArgs],
        code: 'USAGE',
        error: /--fs-options cannot include "suid"/,
        hint: 'leave it out; nosuid and nodev keep setuid programs and device nodes inside a vault harmless',
      },
      {
        name: 'a device node as the target, with --force',
        args: ['create', '16M', at('device-node'), '--force', ...secretArgs],
        code: 'USAGE',
        error: /not a regular file: .*device-node \(a character device\)/,
        hint: 'name a new file or an existing regular file; vault never replaces devices, fifos, sockets or symlinks',
      },
      {
        needsBusy: true,
        name: 'double mount',
        args: ['mount', mounted, mnt, ...secretArgs],
        code: 'BUSY',
        error: /already mounted/,
        hint: `dismount it first: vault dismount ${busyMountpoint}`,
      },
      {
        needsBusy: true,
        name: 'double mount through a hard link',
        args: ['mount', link, mnt, ...secretArgs],
        code: 'BUSY',
        error: /already mounted/,
        hint: `dismount it first: vault dismount ${busyMountpoint}`,
      },
      {
        name: 'mount a directory',
        args: ['mount', at('a-directory'), mnt, ...secretArgs],
        code: 'USAGE',
        error: /not a regular file/,
        hint: 'give the path of a vault file',
      },
      {
        name: 'mount a missing file',
        args: ['mount', at('nope.vol'), mnt, ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
        hint: 'check the path of the vault',
      },
      {
        name: 'mount with the wrong password',
        args: ['mount', file, mnt, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'mount as non-root',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'nobody',
        code: 'NEEDS_SYSTEM',
        error: /needs root/,
        hint: 'run the command with sudo; an ext4 vault can also be mounted without root: vault mount --user',
      },
      {
        name: 'mount without /dev/fuse',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'no-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /\/dev\/fuse is missing/,
        hint: 'load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
      },
      {
        name: 'mount where the daemon cannot start (no /dev/null)',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'only-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /cannot start the mount daemon/,
        hint: 'check that node and /dev/null are usable here (in a container: a complete /dev)',
      },
      {
        name: '/dev/fuse that is not the FUSE device',
        args: ['mount', file, mnt, ...secretArgs],
        as: 'fake-dev-fuse',
        code: 'NEEDS_SYSTEM',
        error: /cannot mount FUSE/,
        hint: '/dev/fuse must be the FUSE device: load the fuse module (modprobe fuse); in a container, pass --device /dev/fuse',
      },
      {
        name: 'dismount of something unknown',
        args: ['dismount', at('nowhere')],
        code: 'NOT_FOUND',
        error: /no mounted vault at/,
        hint: '`vault list` shows the mounted vaults',
      },
      {
        name: 'dismount of a vault that is not mounted',
        args: ['dismount', file],
        code: 'NOT_FOUND',
        error: /no mounted vault at/,
        hint: '`vault list` shows the mounted vaults',
      },
      {
        name: 'dismount without a target',
        args: ['dismount'],
        code: 'USAGE',
        error: /missing the mountpoint or vault file/,
        hint: 'or use --all',
      },
      // Secrets.
      {
        name: 'keyfile missing',
        args: ['info', file, '-k', at('no.key'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /keyfile not found/,
        hint: 'check the path given with -k/--keyfile',
      },
      {
        name: 'keyfile empty',
        args: ['info', file, '-k', at('empty.key'), ...secretArgs],
        code: 'USAGE',
        error: /keyfile is empty/,
        hint: 'an empty keyfile adds no secret; use another file',
      },
      {
        name: 'keyfile is a directory',
        args: ['info', file, '-k', at('a-directory'), ...secretArgs],
        code: 'USAGE',
        error: /keyfile is not a regular file/,
        hint: 'a keyfile must be a regular file',
      },
      {
        name: 'wrong keyfile',
        args: ['info', file, '-k', at('secret.key'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: DETECTION_HINT,
      },
      {
        name: 'stdin closed',
        args: ['info', file, ...secretArgs],
        stdin: null,
        code: 'MISSING_SECRET',
        error: /no password on stdin/,
        hint: 'pipe the password into vault, e.g. from a file: vault ... --password-stdin < passfile',
      },
      {
        name: 'stdin empty',
        args: ['mount', file, mnt, ...secretArgs],
        stdin: '',
        code: 'MISSING_SECRET',
        error: /no password on stdin/,
        hint: 'pipe the password into vault, e.g. from a file: vault ... --password-stdin < passfile',
      },
      {
        name: '--non-interactive and no secret',
        args: ['info', file, '--non-interactive', '--cost', FAST_COST],
        code: 'MISSING_SECRET',
        error: /--non-interactive forbids prompting/,
        hint: 'pipe the password with --password-stdin, or give a keyfile with -k <path>',
      },
      {
        name: 'passwd without the new password',
        args: ['passwd', file, ...secretArgs],
        code: 'MISSING_SECRET',
        error: /no (new )?password|second line|stdin/,
        hint: 'this command reads 2 passwords from stdin, one per line',
      },
      {
        name: 'removing the last keyslot',
        args: ['key', 'remove', file, ...secretArgs],
        code: 'USAGE',
        error: /last keyslot/,
        hint: 'add another secret first with `vault key add`',
      },
      {
        name: 'header restore from junk',
        args: ['header', 'restore', file, at('junk.hdr'), ...secretArgs],
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: 'check the password, give every keyfile (-k) and the --cost level used at creation',
      },
      {
        name: 'header restore from a missing file',
        args: ['header', 'restore', file, at('no.hdr'), ...secretArgs],
        code: 'NOT_FOUND',
        error: /no such file/,
        hint: 'check the path (ls -l it)',
      },
      {
        name: 'repair with the wrong password',
        args: ['repair', file, ...secretArgs],
        stdin: 'wrong\n',
        code: 'CANNOT_UNLOCK',
        error: /cannot unlock/,
        hint: 'check the password, give every keyfile (-k) and the --cost level used at creation',
      },
      {
        name: 'keyfile generate over a file',
        args: ['keyfile', 'generate', at('plain-file')],
        code: 'EXISTS',
        error: /already exists/,
        hint: 'choose a new path; vault never overwrites a keyfile',
      },
      // The command line itself.
      {
        name: 'unknown command',
        args: ['frobnicate'],
        code: 'USAGE',
        error: /unknown command 'frobnicate'/,
        hint: 'see `vault --help`',
      },
      {
        name: 'unknown option',
        args: ['info', file, '--bogus'],
        code: 'USAGE',
        error: /unknown option '--bogus'/,
        hint: 'see `vault info --help`',
      },
      {
        name: 'missing argument',
        args: ['mount'],
        code: 'USAGE',
        error: /missing required argument 'file'/,
        hint: 'see `vault mount --help`',
      },
    ];
    expect(rows.length, 'the README counts the rows of this table').toBe(README_ROWS);
    expect(new Set(rows.map((row) => row.name)).size).toBe(rows.length);

    const failures: string[] = [];
    for (const row of rows) {
      // Another suite's `vault dismount --all` on a shared machine can take the second vault away.
      if (row.needsBusy && !isMounted(busyMountpoint)) {
        await vault(['mount', mounted, busyMountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
      }
      failures.push(...(await check(row, [dir, busyDir], [mounted, link])));
    }
    console.log(`bad input: ${rows.length} rows tried, ${failures.length} failed`);
    expect(failures).toEqual([]);

    const dismounted = await vault(['dismount', busyMountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    expect(leftovers(busyDir)).toEqual([]);
  });
});
